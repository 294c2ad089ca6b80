//! The user/kernel interface of the demo OS, shared by both sides.
//!
//! A system call is `ecall` with the number in `a7`, arguments in `a0..a5`
//! and the result in `a0`: a value >= 0, or a negative error below.
//! Numbers follow Linux's RISC-V table where a call has a Linux sibling.
#![no_std]

/// `write(fd, ptr, len) -> len`: fd 1 and 2 go to the console.
pub const SYS_WRITE: usize = 64;
/// `exit(code) -> !`.
pub const SYS_EXIT: usize = 93;
/// `yield() -> 0`: gives the hart to another process.
pub const SYS_YIELD: usize = 124;
/// `gethartid() -> hart`: the hart running the caller (like `getcpu`).
pub const SYS_GETHARTID: usize = 168;
/// `getpid() -> pid`.
pub const SYS_GETPID: usize = 172;
/// `fork() -> child pid` in the parent, 0 in the child.
pub const SYS_FORK: usize = 220;
/// `exec(path_ptr, path_len, args_ptr, argc)`: `args_ptr` points to `argc`
/// `[ptr, len]` pairs. Returns only on error.
pub const SYS_EXEC: usize = 221;
/// `wait(pid, status_ptr) -> pid`: waits for child `pid` (-1: any child)
/// to exit, stores its exit code (an `i32`) at `status_ptr` unless null.
pub const SYS_WAIT: usize = 260;
/// `thread_create(entry, a0, a1, sp) -> tid`: a new thread of the calling
/// process, sharing its memory, starts at `entry` with `a0`, `a1` and stack
/// pointer `sp` (its stack is the caller's to provide). It should end with
/// `thread_exit`; returning from `entry` is undefined.
pub const SYS_THREAD_CREATE: usize = 1000;
/// `thread_exit(code) -> !`: ends the calling thread; the last thread of
/// a process to end ends the process (with `code`, unless `exit` was
/// called: `exit` ends every thread of the process).
pub const SYS_THREAD_EXIT: usize = 1001;
/// `thread_join(tid, status_ptr) -> tid`: waits until thread `tid` of the
/// calling process has ended, stores its exit code (an `i32`) at
/// `status_ptr` unless null. `ESRCH`: no such thread (or the caller, or
/// already joined).
pub const SYS_THREAD_JOIN: usize = 1002;
/// `gettid() -> tid` (the first thread's tid is the pid).
pub const SYS_GETTID: usize = 178;

pub const ENOENT: isize = -2;
pub const ESRCH: isize = -3;
pub const EBADF: isize = -9;
pub const EAGAIN: isize = -11;
pub const ECHILD: isize = -10;
pub const ENOMEM: isize = -12;
pub const EFAULT: isize = -14;
pub const EBUSY: isize = -16;
pub const EINVAL: isize = -22;
pub const ENOSYS: isize = -38;

/// At most this many arguments reach a program.
pub const MAX_ARGS: usize = 8;
/// At most this many bytes in one argument or path.
pub const MAX_ARG_LEN: usize = 256;

/// Exit code of a process the kernel killed for a fault.
pub const KILLED: i32 = -1;

/// A new program starts with `a0 = argc` and `a1` pointing to `argc`
/// `[ptr, len]` pairs of UTF-8 arguments on its stack; `argv[0]` is its path.
pub type ArgPair = [usize; 2];
