//! The scheduler: one ready queue of threads shared by every hart, round
//! robin, one timer tick per time slice. Harts run threads only inside
//! `run_until_idle`, each switching from its own scheduler context (on the
//! hart's boot stack) into a thread and back; a preempted thread goes to
//! the back of the queue and may resume on any hart.

use super::switch::{self, Context};
use super::{Process, Thread};
use crate::arch::{self, IrqGuard};
use crate::boot::MAX_HARTS;
use crate::mm::paging;
use crate::smp;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};
use spin::Mutex;

struct Hart {
    /// Where a process switches to when it gives up the hart.
    scheduler: UnsafeCell<Context>,
    /// The thread this hart runs, if any.
    current: UnsafeCell<Option<Arc<Thread>>>,
}

// SAFETY: a `Hart` is only touched by its own hart, with interrupts masked.
unsafe impl Sync for Hart {}

static HARTS: [Hart; MAX_HARTS] = [const {
    Hart {
        scheduler: UnsafeCell::new(switch::EMPTY),
        current: UnsafeCell::new(None),
    }
}; MAX_HARTS];

static READY: Mutex<VecDeque<Arc<Thread>>> = Mutex::new(VecDeque::new());
/// Threads admitted and not yet exited and switched out for good.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Harts that ran a process since the last `take_busy_harts`.
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// Per hart: the pid of the process whose thread it runs (0: none), kept
/// beside `current` for the uprobe hit path.
static CURRENT_PID: [AtomicUsize; MAX_HARTS] = [const { AtomicUsize::new(0) }; MAX_HARTS];
/// Per hart: the id of the thread it runs, beside `CURRENT_PID`.
static CURRENT_TID: [AtomicUsize; MAX_HARTS] = [const { AtomicUsize::new(0) }; MAX_HARTS];

/// The pid of the process running on this hart (no reference taken, no
/// lock: the uprobe hit path asks for it on every hit). Call with
/// interrupts masked (as in a trap handler), so the thread cannot move to
/// another hart between reading the hart id and its slot.
#[inline]
pub fn current_pid() -> Option<usize> {
    let pid = CURRENT_PID[arch::hart_id()].load(Ordering::Relaxed);
    (pid != 0).then_some(pid)
}

/// The id of the thread running on this hart, as `current_pid` (0:
/// none).
#[inline]
pub fn current_tid() -> usize {
    CURRENT_TID[arch::hart_id()].load(Ordering::Relaxed)
}

/// The process whose thread runs on this hart.
pub fn current() -> Option<Arc<Process>> {
    let _irq = IrqGuard::new();
    // SAFETY: this hart's own slot, interrupts masked.
    unsafe {
        (*HARTS[arch::hart_id()].current.get())
            .as_ref()
            .map(|t| t.process.clone())
    }
}

/// The thread running on this hart.
pub fn current_thread() -> Option<Arc<Thread>> {
    let _irq = IrqGuard::new();
    // SAFETY: this hart's own slot, interrupts masked.
    unsafe { (*HARTS[arch::hart_id()].current.get()).clone() }
}

/// Makes a new thread runnable.
pub(super) fn admit(thread: Arc<Thread>) {
    LIVE.fetch_add(1, Ordering::AcqRel);
    make_ready(thread);
}

fn make_ready(thread: Arc<Thread>) {
    let _irq = IrqGuard::new();
    READY.lock().push_back(thread);
}

/// Threads not yet finished (0: every process is done).
pub fn live() -> usize {
    LIVE.load(Ordering::Acquire)
}

/// Mask of the harts that ran a process since the last call.
pub fn take_busy_harts() -> usize {
    BUSY.swap(0, Ordering::AcqRel)
}

/// Every hart (this one included) runs threads until none is left;
/// then all harts are back where they were.
pub fn run_until_idle() {
    smp::run_on_all(true, &schedule);
}

/// `run_until_idle`, but this hart first runs `first` (which may watch
/// or change what the other harts' processes do) and then joins them.
pub fn run_until_idle_with(first: &(dyn Fn() + Sync)) {
    let me = arch::hart_id();
    smp::run_on_all(true, &|hart| {
        if hart == me {
            first();
        }
        schedule(hart);
    });
}

fn schedule(hart: usize) {
    loop {
        let irq = IrqGuard::new();
        let next = READY.lock().pop_front();
        match next {
            Some(thread) => {
                let exited = run(hart, thread);
                // With interrupts on: `reclaim_stack` waits for the probe
                // registry, whose holder may wait for this hart to take
                // an IPI (`smp::wait_harts_out_of`).
                drop(irq);
                if let Some(thread) = exited {
                    finish(thread);
                }
            }
            None => {
                drop(irq);
                if LIVE.load(Ordering::Acquire) == 0 {
                    return;
                }
                // Sleep until the next tick rather than spin: the host
                // may have fewer cores than the machine has harts.
                arch::wfi();
            }
        }
    }
}

/// Loads an address space on this hart.
pub(super) fn activate(satp: usize) {
    // SAFETY: every address space maps the kernel exactly as the kernel
    // table does, so the running kernel code and stack stay mapped.
    unsafe { core::arch::asm!("csrw satp, {}", "sfence.vma", in(reg) satp) };
}

/// Runs `thread` on this hart until it gives the hart back; returns it if
/// it exited (for `finish`).
fn run(hart: usize, thread: Arc<Thread>) -> Option<Arc<Thread>> {
    let process: &Process = &thread.process;
    process.harts.fetch_or(1 << hart, Ordering::Relaxed);
    BUSY.fetch_or(1 << hart, Ordering::Relaxed);
    let Some(satp) = process.satp() else {
        unreachable!("process {} on the ready queue has exited", process.pid);
    };
    activate(satp);
    let to = thread.context.get();
    let me = &HARTS[hart];
    CURRENT_PID[hart].store(process.pid(), Ordering::Relaxed);
    CURRENT_TID[hart].store(thread.tid(), Ordering::Relaxed);
    // SAFETY: this hart's own slot; interrupts are masked by the caller.
    unsafe { *me.current.get() = Some(thread) };
    // SAFETY: the thread came off the ready queue, so it is switched out
    // and no other hart can resume it; its kernel stack lives as long as
    // the `Arc` in `current`.
    unsafe { switch::switch(me.scheduler.get(), to) };
    activate(paging::kernel_satp());
    CURRENT_PID[hart].store(0, Ordering::Relaxed);
    // SAFETY: as above; back on this hart's scheduler context.
    let thread = unsafe { (*me.current.get()).take() }.expect("current thread");
    if thread.exited.load(Ordering::Acquire) {
        return Some(thread);
    }
    make_ready(thread);
    None
}

/// After a thread exited and left its hart.
fn finish(thread: Arc<Thread>) {
    // The kernel functions it was in on its way out (the system call that
    // ended it) never return: calls in flight of their return probes go.
    // SAFETY: the thread exited and is off every hart: nothing on its
    // kernel stack runs again.
    unsafe { rkprobes::reclaim_stack(thread.kernel_stack()) };
    // The last thread off its hart: no hart is on the page table, the
    // memory can go.
    if thread.process.unfinished.fetch_sub(1, Ordering::AcqRel) == 1 {
        thread.process.release_memory();
    }
    LIVE.fetch_sub(1, Ordering::AcqRel);
}

/// Gives this hart back to its scheduler; the calling thread runs again
/// later, maybe on another hart (unless it has exited).
pub fn yield_now() {
    let _irq = IrqGuard::new();
    let me = &HARTS[arch::hart_id()];
    // SAFETY: this hart's own slot, interrupts masked.
    let from = unsafe { (*me.current.get()).as_ref() }
        .expect("yield outside a process")
        .context
        .get();
    // SAFETY: the scheduler context was saved by `run` on this hart, whose
    // stack is alive while it runs processes; only this hart resumes it.
    unsafe { switch::switch(from, me.scheduler.get()) };
}
