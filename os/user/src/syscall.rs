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
