//! `KprobeAuxiliaryOps` for the demo OS: what the `kprobe` crate needs from
//! its host. Kernel probes only; the benchmark has no user processes.

use super::exec_pages;
use crate::boot::MAX_HARTS;
use crate::{arch, mm, rkprobes_os};
use alloc::vec::Vec;
use kprobe::retprobe::RetprobeInstance;
use kprobe::KprobeAuxiliaryOps;
use rkprobes::KprobeOs;
use spin::Mutex;

#[derive(Debug)]
pub struct DemoAux;

/// Return-probe instances, per hart (kernel code on this OS does not
/// migrate between harts), for the `kretprobe` row.
static RET_STACKS: [Mutex<Vec<RetprobeInstance>>; MAX_HARTS] =
    [const { Mutex::new(Vec::new()) }; MAX_HARTS];

/// Room for `n` calls in flight on every hart, allocated now: a first
/// push that grows the stack would land in the measured loop.
pub fn reserve_ret_stacks(n: usize) {
    for s in &RET_STACKS {
        let mut s = s.lock();
        let more = n.saturating_sub(s.len());
        s.reserve(more);
    }
}

impl KprobeAuxiliaryOps for DemoAux {
    fn copy_memory(src: *const u8, dst: *mut u8, len: usize, user_pid: Option<i32>) {
        assert!(user_pid.is_none(), "no user processes in the benchmark");
        // SAFETY: the crate reads kernel text (identity mapped, readable)
        // into a local of at least `len` bytes.
        unsafe { core::ptr::copy_nonoverlapping(src, dst, len) };
    }

    fn set_writeable_for_address<F: FnOnce(*mut u8)>(
        address: usize,
        _len: usize,
        user_pid: Option<i32>,
        action: F,
    ) {
        assert!(user_pid.is_none(), "no user processes in the benchmark");
        // Text is never writable; its linear alias is.
        action(mm::linear_alias(address) as *mut u8);
        // The crate patches text and never syncs the instruction stream.
        rkprobes_os::OS.sync_icache_all_harts();
    }

    fn alloc_kernel_exec_memory() -> *mut u8 {
        exec_pages::alloc()
    }

    fn free_kernel_exec_memory(ptr: *mut u8) {
        exec_pages::free(ptr)
    }

    fn alloc_user_exec_memory<F: FnOnce(*mut u8)>(_pid: Option<i32>, _action: F) -> *mut u8 {
        unreachable!("the benchmark registers kernel probes only")
    }

    fn free_user_exec_memory(_pid: Option<i32>, _ptr: *mut u8) {
        unreachable!("the benchmark registers kernel probes only")
    }

    fn insert_kretprobe_instance_to_task(instance: RetprobeInstance) {
        RET_STACKS[arch::hart_id()].lock().push(instance);
    }

    fn pop_kretprobe_instance_from_task() -> RetprobeInstance {
        RET_STACKS[arch::hart_id()]
            .lock()
            .pop()
            .expect("kretprobe return without an entry on this hart")
    }
}
