//! System calls: `ecall` from user mode, numbers and conventions in the
//! `abi` crate. Arguments that point into user memory are copied in and
//! out through the process's page table, never dereferenced directly.

use crate::arch;
use crate::loader::LoadError;
use crate::process::{self, ExecError, Process};
use crate::trap::KernelFrame;
use abi::*;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// Longest `write` handled at once; a longer one is a short write.
const MAX_WRITE: usize = 4096;

/// Handles the system call in `frame` and puts its result in `a0`.
pub fn syscall(frame: &mut KernelFrame) {
    // Another thread called `exit`: this one ends here.
    process::exit_if_exiting();
    // Resume after the `ecall` (a fork's child copies this pc too).
    frame.tf.sepc += 4;
    let x = &frame.tf.x;
    let (nr, a) = (x[17], [x[10], x[11], x[12], x[13]]);
    let ret = match nr {
        SYS_WRITE => sys_write(a[0], a[1], a[2]),
        SYS_EXIT => process::exit(a[0] as i32),
        SYS_YIELD => {
            process::yield_now();
            0
        }
        SYS_GETHARTID => arch::hart_id() as isize,
        SYS_GETPID => me().pid() as isize,
        SYS_FORK => process::fork(frame).map_or(ENOMEM, |pid| pid as isize),
        SYS_EXEC => match sys_exec(frame, a[0], a[1], a[2], a[3]) {
            // The frame now starts the new program: leave its a0 alone.
            Ok(()) => return,
            Err(e) => e,
        },
        SYS_WAIT => sys_wait(a[0] as isize, a[1]),
        SYS_THREAD_CREATE => {
            process::thread_create(frame, a[0], a[1], a[2], a[3]).map_or(EAGAIN, |t| t as isize)
        }
        SYS_THREAD_EXIT => process::thread_exit(a[0] as i32),
        SYS_THREAD_JOIN => sys_thread_join(a[0], a[1]),
        SYS_GETTID => process::current_thread().map_or(0, |t| t.tid() as isize),
        _ => ENOSYS,
    };
    frame.tf.x[10] = ret as usize;
}

fn me() -> alloc::sync::Arc<Process> {
    process::current().expect("system call outside a process")
}

fn sys_write(fd: usize, ptr: usize, len: usize) -> isize {
    if fd != 1 && fd != 2 {
        return EBADF;
    }
    let mut buf = vec![0u8; len.min(MAX_WRITE)];
    if process::copy_from_user(&me(), ptr, &mut buf).is_err() {
        return EFAULT;
    }
    process::console_write(&buf);
    buf.len() as isize
}

/// A UTF-8 string of at most `MAX_ARG_LEN` bytes from user memory.
fn user_str(process: &Process, ptr: usize, len: usize) -> Result<String, isize> {
    if len > MAX_ARG_LEN {
        return Err(EINVAL);
    }
    let mut buf = vec![0u8; len];
    process::copy_from_user(process, ptr, &mut buf).map_err(|_| EFAULT)?;
    String::from_utf8(buf).map_err(|_| EINVAL)
}

fn sys_exec(
    frame: &mut KernelFrame,
    path_ptr: usize,
    path_len: usize,
    args_ptr: usize,
    argc: usize,
) -> Result<(), isize> {
    let me = me();
    let path = user_str(&me, path_ptr, path_len)?;
    if argc > MAX_ARGS {
        return Err(EINVAL);
    }
    let mut raw = vec![0u8; argc * size_of::<ArgPair>()];
    process::copy_from_user(&me, args_ptr, &mut raw).map_err(|_| EFAULT)?;
    let args = raw
        .chunks_exact(size_of::<ArgPair>())
        .map(|pair| {
            let word = |i: usize| usize::from_le_bytes(pair[i * 8..i * 8 + 8].try_into().unwrap());
            user_str(&me, word(0), word(1))
        })
        .collect::<Result<Vec<String>, isize>>()?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    process::exec(frame, &path, &args).map_err(|e| match e {
        ExecError::Threads => EBUSY,
        ExecError::Load(LoadError::NotFound) => ENOENT,
        ExecError::Load(LoadError::OutOfMemory) => ENOMEM,
        ExecError::Load(LoadError::BadElf | LoadError::BadSegment | LoadError::BadArgs) => EINVAL,
    })?;
    // The new program is loaded (process `me` now runs `path`) and `frame`
    // starts it at its entry when this system call returns.
    // Install the probes registered for it (and drop the old image's).
    rkprobes::Uprobes::get().uprobes_init();
    Ok(())
}

fn sys_wait(pid: isize, status_ptr: usize) -> isize {
    let want = usize::try_from(pid).ok();
    let Some((child, code)) = process::wait(want) else {
        return ECHILD;
    };
    if status_ptr != 0 && process::copy_to_user(&me(), status_ptr, &code.to_le_bytes()).is_err() {
        return EFAULT;
    }
    child as isize
}

fn sys_thread_join(tid: usize, status_ptr: usize) -> isize {
    let Some(code) = process::thread_join(tid) else {
        return ESRCH;
    };
    if status_ptr != 0 && process::copy_to_user(&me(), status_ptr, &code.to_le_bytes()).is_err() {
        return EFAULT;
    }
    tid as isize
}
