//! System call wrappers (see the `abi` crate for the calling convention).

use abi::*;
use core::arch::asm;

fn syscall(nr: usize, args: [usize; 4]) -> isize {
    let ret: isize;
    // SAFETY: `ecall` enters the kernel, which reads a0..a3 and a7 and
    // writes a0; it touches only memory the arguments point to.
    unsafe {
        asm!(
            "ecall",
            inlateout("a0") args[0] => ret,
            in("a1") args[1],
            in("a2") args[2],
            in("a3") args[3],
            in("a7") nr,
        )
    };
    ret
}

/// Writes `bytes` to `fd` (1: standard output); returns bytes written or
/// a negative error.
pub fn write(fd: usize, bytes: &[u8]) -> isize {
    syscall(SYS_WRITE, [fd, bytes.as_ptr() as usize, bytes.len(), 0])
}

pub fn exit(code: i32) -> ! {
    syscall(SYS_EXIT, [code as isize as usize, 0, 0, 0]);
    unreachable!("exit returned")
}

pub fn yield_now() {
    syscall(SYS_YIELD, [0; 4]);
}

pub fn getpid() -> usize {
    syscall(SYS_GETPID, [0; 4]) as usize
}

/// The hart this process runs on right now.
pub fn gethartid() -> usize {
    syscall(SYS_GETHARTID, [0; 4]) as usize
}

/// `Some(child pid)` in the parent, `Some(0)` in the child, `None` on error.
pub fn fork() -> Option<usize> {
    let ret = syscall(SYS_FORK, [0; 4]);
    (ret >= 0).then_some(ret as usize)
}

/// Replaces this program by `path`; returns the (negative) error if that
/// failed.
pub fn exec(path: &str, args: &[&str]) -> isize {
    let mut pairs: [ArgPair; MAX_ARGS] = [[0; 2]; MAX_ARGS];
    if args.len() > MAX_ARGS {
        return EINVAL;
    }
    for (pair, arg) in pairs.iter_mut().zip(args) {
        *pair = [arg.as_ptr() as usize, arg.len()];
    }
    let argp = pairs.as_ptr() as usize;
    syscall(
        SYS_EXEC,
        [path.as_ptr() as usize, path.len(), argp, args.len()],
    )
}

/// Waits for child `pid` (`None`: any child); returns its pid and exit code.
pub fn wait(pid: Option<usize>) -> Option<(usize, i32)> {
    let mut code: i32 = 0;
    let pid = pid.map_or(-1, |p| p as isize) as usize;
    let ret = syscall(SYS_WAIT, [pid, &mut code as *mut i32 as usize, 0, 0]);
    (ret >= 0).then_some((ret as usize, code))
}

/// This thread's id (the first thread's is the pid).
pub fn gettid() -> usize {
    syscall(SYS_GETTID, [0; 4]) as usize
}

/// Ends the calling thread with `code` (the process too if it is the
/// last one).
pub fn thread_exit(code: i32) -> ! {
    syscall(SYS_THREAD_EXIT, [code as isize as usize, 0, 0, 0]);
    unreachable!("thread_exit returned")
}

/// Waits for thread `tid` of this process to end; its exit code.
pub fn thread_join(tid: usize) -> Option<i32> {
    let mut code: i32 = 0;
    let ret = syscall(SYS_THREAD_JOIN, [tid, &mut code as *mut i32 as usize, 0, 0]);
    (ret >= 0).then_some(code)
}

/// The first code a new thread runs: `f(arg)`, then `thread_exit` with
/// its result.
extern "C" fn thread_start(f: usize, arg: usize) -> ! {
    // SAFETY: `thread_spawn` passes a function of exactly this type.
    let f: extern "C" fn(usize) -> i32 = unsafe { core::mem::transmute(f) };
    thread_exit(f(arg))
}

/// Starts a thread of this process running `f(arg)` on `stack` (which it
/// owns until it ends: join it before reusing the stack); returns its tid.
pub fn thread_spawn(
    f: extern "C" fn(usize) -> i32,
    arg: usize,
    stack: &'static mut [u8],
) -> Option<usize> {
    // 16-byte aligned, as the calling convention wants.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    let ret = syscall(
        SYS_THREAD_CREATE,
        [thread_start as *const () as usize, f as usize, arg, top],
    );
    (ret >= 0).then_some(ret as usize)
}
