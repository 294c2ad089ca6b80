//! User processes: each has its own Sv39 address space, the path of the
//! program it runs, and one or more threads (each with a kernel stack and
//! its own user stack) that share the address space.
//!
//! The kernel starts programs with [`spawn`] (or [`run`]) and lets every
//! hart run them with [`run_until_idle`]; processes fork, exec, wait and
//! exit through system calls (`crate::syscall`). A process spawned by the
//! kernel has parent 0: nobody waits for it, and its exit code stays in its
//! `Process` for the kernel to read.
//!
//! Threads: `thread_create` starts another thread in the calling process
//! (its user stack is the caller's choice), `thread_exit` ends one,
//! `thread_join` waits for one and returns its exit code. `exit` ends the
//! whole process: the other threads end at their next entry into the
//! kernel. The process exits when its last thread does (with the code of
//! `exit` if one was called, else the last thread's); its memory goes once
//! every thread is off every hart.
//!
//! For probes in user programs: [`all`] lists processes ([`Process::path`]
//! tells which program each runs), [`user_text_write`] patches one
//! process's private copy of a text page, [`copy_from_user`] reads its
//! memory.

pub mod capture;
pub mod demo;
mod image;
mod sched;
mod switch;

pub use image::{USER_STACK_SIZE, USER_STACK_TOP};
pub use sched::{
    current, current_pid, current_thread, current_tid, live, run_until_idle, run_until_idle_with,
    take_busy_harts, yield_now,
};

use crate::loader::LoadError;
use crate::mm::paging::{R, X};
use crate::mm::user::{AddressSpace, OutOfMemory, UserFault};
use crate::smp;
use crate::trap::KernelFrame;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use spin::Mutex;
use switch::Context;

pub const KERNEL_STACK_SIZE: usize = 64 * 1024;

pub struct Process {
    pid: usize,
    /// Mask of the harts its threads ran on.
    harts: AtomicUsize,
    /// Threads not yet off their hart for good; the last one's switch-out
    /// releases the memory.
    unfinished: AtomicUsize,
    /// `exit` was called: every thread ends at its next kernel entry.
    exiting: AtomicBool,
    inner: Mutex<Inner>,
}

struct Inner {
    parent: usize,
    path: String,
    /// `None` once the process has exited and its memory is released.
    space: Option<AddressSpace>,
    exit_code: Option<i32>,
    /// The code `exit` asked for (the process's, whichever thread ends last).
    group_code: Option<i32>,
    /// Threads not yet exited.
    alive: usize,
    /// Threads not yet joined: tid and exit code once exited.
    threads: Vec<(usize, Option<i32>)>,
}

/// One thread of a process: a kernel stack and the kernel context while
/// switched out.
pub struct Thread {
    tid: usize,
    process: Arc<Process>,
    /// The kernel context while the thread is switched out.
    context: UnsafeCell<Context>,
    /// Traps from user mode land at its top (`sscratch`).
    kernel_stack: Box<[u128]>,
    /// It has exited: it is never resumed again.
    exited: AtomicBool,
}

// SAFETY: `context` is only touched by the hart that switches the thread
// in or out; the ready queue's lock orders one hart's save before the next
// hart's resume. Everything else is atomic or immutable.
unsafe impl Sync for Thread {}
// SAFETY: as above; nothing in a thread is tied to one hart.
unsafe impl Send for Thread {}

/// Every process that is running, runnable, or exited and not yet waited for.
static TABLE: Mutex<BTreeMap<usize, Arc<Process>>> = Mutex::new(BTreeMap::new());

static NEXT_TID: AtomicUsize = AtomicUsize::new(1);

impl Thread {
    /// A thread of `process` that will enter user mode with `frame`.
    fn new(process: Arc<Process>, tid: usize, frame: KernelFrame) -> Arc<Self> {
        let mut stack = vec![0u128; KERNEL_STACK_SIZE / size_of::<u128>()].into_boxed_slice();
        let top = stack.as_mut_ptr() as usize + KERNEL_STACK_SIZE;
        let frame_at = top - size_of::<KernelFrame>();
        // SAFETY: `frame_at` is inside the stack we own, 16-byte aligned
        // (`KernelFrame` is 36 words).
        unsafe { (frame_at as *mut KernelFrame).write(frame) };
        process.unfinished.fetch_add(1, Ordering::AcqRel);
        Arc::new(Thread {
            tid,
            process,
            context: UnsafeCell::new(Context::to_user(frame_at)),
            kernel_stack: stack,
            exited: AtomicBool::new(false),
        })
    }

    pub fn tid(&self) -> usize {
        self.tid
    }

    /// Its kernel stack: once it has exited, no frame there returns.
    fn kernel_stack(&self) -> core::ops::Range<usize> {
        let start = self.kernel_stack.as_ptr() as usize;
        start..start + self.kernel_stack.len() * size_of::<u128>()
    }
}

impl Process {
    /// A process with one thread (its tid is the pid) that will enter user
    /// mode with `frame`.
    fn new(
        parent: usize,
        path: &str,
        space: AddressSpace,
        frame: KernelFrame,
    ) -> (Arc<Self>, Arc<Thread>) {
        let pid = NEXT_TID.fetch_add(1, Ordering::Relaxed);
        let process = Arc::new(Process {
            pid,
            harts: AtomicUsize::new(0),
            unfinished: AtomicUsize::new(0),
            exiting: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                parent,
                path: path.to_string(),
                space: Some(space),
                exit_code: None,
                group_code: None,
                alive: 1,
                threads: vec![(pid, None)],
            }),
        });
        let thread = Thread::new(process.clone(), pid, frame);
        (process, thread)
    }

    pub fn pid(&self) -> usize {
        self.pid
    }

    /// The program it runs: the path of its last exec (or spawn).
    pub fn path(&self) -> String {
        self.inner.lock().path.clone()
    }

    pub fn parent(&self) -> usize {
        self.inner.lock().parent
    }

    pub fn exit_code(&self) -> Option<i32> {
        self.inner.lock().exit_code
    }

    pub fn has_exited(&self) -> bool {
        self.exit_code().is_some()
    }

    /// Mask of the harts its threads have run on.
    pub fn harts_seen(&self) -> usize {
        self.harts.load(Ordering::Relaxed)
    }

    /// Threads not yet exited.
    pub fn threads_alive(&self) -> usize {
        self.inner.lock().alive
    }

    /// `exit` was called (or it was killed): its threads are ending.
    pub fn is_exiting(&self) -> bool {
        self.exiting.load(Ordering::Acquire)
    }

    fn satp(&self) -> Option<usize> {
        self.inner.lock().space.as_ref().map(AddressSpace::satp)
    }

    /// Physical address and PTE flags of user address `va`.
    pub fn translate(&self, va: usize) -> Option<(usize, u64)> {
        self.inner.lock().space.as_ref()?.translate(va)
    }

    /// User pages it has mapped (0 once exited).
    pub fn page_count(&self) -> usize {
        self.inner
            .lock()
            .space
            .as_ref()
            .map_or(0, AddressSpace::page_count)
    }

    fn release_memory(&self) {
        let space = self.inner.lock().space.take();
        drop(space);
    }
}

/// Reads `buf.len()` bytes of `process`'s memory at `va` (readable user
/// pages only).
pub fn copy_from_user(process: &Process, va: usize, buf: &mut [u8]) -> Result<(), UserFault> {
    let inner = process.inner.lock();
    let space = inner.space.as_ref().ok_or(UserFault { va })?;
    space.read(va, buf, R)
}

/// Writes `bytes` into `process`'s memory at `va`, which must be user
/// memory the process may write.
pub fn copy_to_user(process: &Process, va: usize, bytes: &[u8]) -> Result<(), UserFault> {
    let inner = process.inner.lock();
    let space = inner.space.as_ref().ok_or(UserFault { va })?;
    space.write(va, bytes, crate::mm::paging::W)
}

/// Writes `bytes` into `process`'s text at `user_va` (executable user
/// pages, which the process itself cannot write), through the kernel's
/// linear alias of the physical page. Every process has private copies of
/// its pages, so only this process sees the change. Instruction caches of
/// every hart are synchronised before returning.
pub fn user_text_write(process: &Process, user_va: usize, bytes: &[u8]) -> Result<(), UserFault> {
    {
        let inner = process.inner.lock();
        let space = inner.space.as_ref().ok_or(UserFault { va: user_va })?;
        space.write(user_va, bytes, X)?;
    }
    smp::sync_icache_all();
    Ok(())
}

/// `user_text_write`, only while `process` runs the program at `path`
/// (checked under the same lock as the write: an exec in between never
/// receives another program's patch).
pub fn user_text_write_if_running(
    process: &Process,
    path: &str,
    user_va: usize,
    bytes: &[u8],
) -> Result<(), UserFault> {
    {
        let inner = process.inner.lock();
        let space = inner.space.as_ref().filter(|_| inner.path == path);
        space
            .ok_or(UserFault { va: user_va })?
            .write(user_va, bytes, X)?;
    }
    smp::sync_icache_all();
    Ok(())
}

/// Maps a zeroed page at `user_va` with `flags` (R/W/X, user) into
/// `process` while it runs `path`; a page already there is kept.
pub fn map_user_page_if_running(
    process: &Process,
    path: &str,
    user_va: usize,
    flags: u64,
) -> Result<(), UserFault> {
    let mut inner = process.inner.lock();
    if inner.path != path {
        return Err(UserFault { va: user_va });
    }
    let space = inner.space.as_mut().ok_or(UserFault { va: user_va })?;
    space
        .map_page(user_va, flags)
        .map_err(|_| UserFault { va: user_va })?;
    Ok(())
}

/// Every process not yet exited, by pid.
pub fn all() -> Vec<Arc<Process>> {
    let table = TABLE.lock();
    table
        .values()
        .filter(|p| !p.has_exited())
        .cloned()
        .collect()
}

/// The process with `pid`, if it is in the table.
pub fn find(pid: usize) -> Option<Arc<Process>> {
    TABLE.lock().get(&pid).cloned()
}

fn admit(process: Arc<Process>, thread: Arc<Thread>) {
    TABLE.lock().insert(process.pid, process);
    sched::admit(thread);
}

/// Creates a process running `path` with `args`; it runs on the next
/// `run_until_idle`.
pub fn spawn(path: &str, args: &[&str]) -> Result<Arc<Process>, LoadError> {
    let image = image::build(path, args)?;
    let (process, thread) = Process::new(0, path, image.space, image.frame);
    TABLE.lock().insert(process.pid, process.clone());
    // Probed as its file says from its first instruction.
    rkprobes::Uprobes::get().process_started(process.pid as u64);
    sched::admit(thread);
    Ok(process)
}

/// Runs `path` with `args` (and anything else runnable) until no process
/// is left; returns its exit code.
pub fn run(path: &str, args: &[&str]) -> Result<i32, LoadError> {
    let process = spawn(path, args)?;
    run_until_idle();
    Ok(process.exit_code().expect("all processes have exited"))
}

fn current_or_panic() -> Arc<Process> {
    current().expect("no process on this hart")
}

/// `fork`: a copy of the calling process (whose trap frame is `frame`)
/// that returns 0 from the system call. Only the calling thread is copied.
pub(crate) fn fork(frame: &KernelFrame) -> Result<usize, OutOfMemory> {
    let parent = current_or_panic();
    // The copy is made while no uprobe changes, and the child inherits
    // the parent's probe state (its slot page is copied with the rest).
    let (child, thread) = rkprobes::Uprobes::get().fork_process(parent.pid as u64, || {
        let (space, path) = {
            let inner = parent.inner.lock();
            let space = inner.space.as_ref().expect("running process has memory");
            (space.try_clone()?, inner.path.clone())
        };
        let mut child_frame = KernelFrame::new(frame.tf);
        child_frame.tf.x[rkprobes::TrapFrame::A0] = 0;
        let (child, thread) = Process::new(parent.pid, &path, space, child_frame);
        let pid = child.pid as u64;
        Ok::<_, OutOfMemory>(((child, thread), pid))
    })?;
    let pid = child.pid;
    admit(child, thread);
    Ok(pid)
}

/// Why `exec` failed.
pub(crate) enum ExecError {
    Load(LoadError),
    /// The process has other threads.
    Threads,
}

/// `exec`: replaces the calling process's program. On success `frame`
/// starts the new program when the system call returns. Refused while the
/// process has other threads.
pub(crate) fn exec(frame: &mut KernelFrame, path: &str, args: &[&str]) -> Result<(), ExecError> {
    let me = current_or_panic();
    if me.threads_alive() != 1 {
        return Err(ExecError::Threads);
    }
    let image = image::build(path, args).map_err(ExecError::Load)?;
    let old = {
        let mut inner = me.inner.lock();
        inner.path = path.to_string();
        sched::activate(image.space.satp());
        inner.space.replace(image.space)
    };
    // No longer on the old page table: its memory can go.
    drop(old);
    *frame = image.frame;
    Ok(())
}

/// `wait`: reaps an exited child (`pid`, or any child if `None`); returns
/// its pid and exit code, or `None` if there is no such child.
pub(crate) fn wait(pid: Option<usize>) -> Option<(usize, i32)> {
    let me = current_or_panic().pid;
    loop {
        {
            let mut table = TABLE.lock();
            let mut children = table
                .values()
                .filter(|p| p.parent() == me && pid.is_none_or(|want| p.pid == want));
            let mut any = false;
            let exited = children.find_map(|p| {
                any = true;
                p.exit_code().map(|code| (p.pid, code))
            });
            if let Some((child, code)) = exited {
                table.remove(&child);
                return Some((child, code));
            }
            if !any {
                return None;
            }
        }
        yield_now();
        exit_if_exiting();
    }
}

/// `thread_create`: a new thread of the calling process that enters user
/// mode at `entry` with `a0`, `a1` and stack pointer `sp` (`gp` and `tp`
/// as the caller's `frame`). Returns its tid.
pub(crate) fn thread_create(
    frame: &KernelFrame,
    entry: usize,
    a0: usize,
    a1: usize,
    sp: usize,
) -> Option<usize> {
    let me = current_or_panic();
    let tid = NEXT_TID.fetch_add(1, Ordering::Relaxed);
    {
        let mut inner = me.inner.lock();
        if me.is_exiting() || inner.space.is_none() {
            return None;
        }
        inner.alive += 1;
        inner.threads.push((tid, None));
    }
    let mut tf = rkprobes::TrapFrame {
        sepc: entry,
        sstatus: frame.tf.sstatus,
        ..rkprobes::TrapFrame::default()
    };
    for r in [3, 4] {
        tf.x[r] = frame.tf.x[r];
    }
    tf.x[rkprobes::TrapFrame::SP] = sp;
    tf.x[rkprobes::TrapFrame::A0] = a0;
    tf.x[rkprobes::TrapFrame::A0 + 1] = a1;
    let thread = Thread::new(me, tid, KernelFrame::new(tf));
    sched::admit(thread);
    Some(tid)
}

/// `thread_join`: waits until thread `tid` of the calling process has
/// exited; returns its exit code (`None`: no such thread, or it is the
/// caller or already joined).
pub(crate) fn thread_join(tid: usize) -> Option<i32> {
    if current_thread().is_some_and(|t| t.tid == tid) {
        return None;
    }
    loop {
        {
            // Not held across `exit_if_exiting`, which does not return.
            let me = current_or_panic();
            let mut inner = me.inner.lock();
            let at = inner.threads.iter().position(|&(t, _)| t == tid)?;
            if let (_, Some(code)) = inner.threads[at] {
                inner.threads.swap_remove(at);
                return Some(code);
            }
        }
        yield_now();
        exit_if_exiting();
    }
}

/// Ends the calling thread if its process is exiting (`exit` called by
/// another thread, or killed). Called where a thread enters the kernel or
/// waits in it.
pub(crate) fn exit_if_exiting() {
    if current_thread().is_some_and(|t| t.process.is_exiting()) {
        thread_exit(abi::KILLED);
    }
}

/// Ends the calling process with `code`: every other thread ends at its
/// next entry into the kernel.
pub(crate) fn exit(code: i32) -> ! {
    let me = current_or_panic();
    {
        let mut inner = me.inner.lock();
        inner.group_code.get_or_insert(code);
        me.exiting.store(true, Ordering::Release);
    }
    drop(me);
    thread_exit(code)
}

/// Ends the calling thread with `code`; the last thread to end ends the
/// process.
pub(crate) fn thread_exit(code: i32) -> ! {
    let thread = current_thread().expect("no thread on this hart");
    let me = thread.process.clone();
    let last = {
        let mut inner = me.inner.lock();
        if let Some(entry) = inner.threads.iter_mut().find(|(t, _)| *t == thread.tid) {
            entry.1 = Some(code);
        }
        inner.alive -= 1;
        (inner.alive == 0).then(|| inner.group_code.unwrap_or(code))
    };
    // The scheduler drops it once it is off this hart.
    thread.exited.store(true, Ordering::Release);
    let tid = thread.tid;
    drop(thread);
    match last {
        Some(code) => process_exit(&me, code),
        // Its uretprobe calls in flight can never return.
        None => {
            rkprobes::Uprobes::get().thread_exit(me.pid as u64, tid as u64);
        }
    }
    drop(me);
    yield_now();
    unreachable!("an exited thread was resumed");
}

/// The last thread of `me` ended: the process exits with `code`.
fn process_exit(me: &Process, code: i32) {
    // Its uprobe state (calls in flight, slot page record) goes; the slot
    // page itself goes with its memory.
    rkprobes::Uprobes::get().process_exit(me.pid as u64);
    let mut table = TABLE.lock();
    // Children outlive their parent without one: nobody will wait for
    // them, so those already exited leave the table now.
    for p in table.values() {
        let mut inner = p.inner.lock();
        if inner.parent == me.pid {
            inner.parent = 0;
        }
    }
    table.retain(|_, p| !(p.parent() == 0 && p.has_exited()));
    let mut inner = me.inner.lock();
    inner.exit_code = Some(code);
    if inner.parent == 0 {
        table.remove(&me.pid);
    }
}

/// Kills the calling process after a fault in user mode, with a message on
/// the console (and in the capture).
pub(crate) fn kill(fault: core::fmt::Arguments, pc: usize) -> ! {
    let me = current_or_panic();
    let message = alloc::format!(
        "[KERNEL] process {} ({}) killed: {fault} at {pc:#x}\n",
        me.pid,
        me.path()
    );
    print!("{message}");
    capture::record(me.pid, message.as_bytes());
    drop(me);
    exit(abi::KILLED)
}

/// `write` to the console: `bytes` come from the calling process.
pub(crate) fn console_write(bytes: &[u8]) {
    let me = current_or_panic();
    print!("{}", String::from_utf8_lossy(bytes));
    capture::record(me.pid, bytes);
}
