//! Harts: starting them through SBI HSM and handing them work.
//!
//! After boot every secondary hart waits in `secondary_loop` for a job: a
//! function that all harts (the caller included, if it asks) run at once.

use crate::boot::MAX_HARTS;
use crate::{arch, mm, timer, trap};
use core::sync::atomic::{AtomicUsize, Ordering};

static ONLINE: AtomicUsize = AtomicUsize::new(1);
static HART_MASK: AtomicUsize = AtomicUsize::new(0);

/// Current job: the address of a `&(dyn Fn(usize) + Sync)` on the stack of
/// `run_on_all`, which stays alive until every hart is done with it.
static JOB: AtomicUsize = AtomicUsize::new(0);
static JOB_SEQ: AtomicUsize = AtomicUsize::new(0);
static JOB_DONE: AtomicUsize = AtomicUsize::new(0);
static JOB_LOCK: spin::Mutex<()> = spin::Mutex::new(());

pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// Ids of all online harts.
pub fn harts() -> impl Iterator<Item = usize> {
    let mask = HART_MASK.load(Ordering::Acquire);
    (0..MAX_HARTS).filter(move |h| mask & (1 << h) != 0)
}

/// Mask of every online hart except the calling one.
pub fn others_mask() -> usize {
    let me = arch::hart_id();
    harts().filter(|&h| h != me).fold(0, |m, h| m | (1 << h))
}

/// Makes text written through the linear map visible to every hart's
/// instruction fetch: `fence.i` here, SBI remote `fence.i` on the others
/// (OpenSBI returns only after every hart in the mask has fenced).
pub fn sync_icache_all() {
    arch::fence_i();
    let others = others_mask();
    if others != 0 {
        sbi_rt::remote_fence_i(sbi_rt::HartMask::from_mask_base(others, 0));
    }
}

/// Starts every other hart and waits until they are online.
pub fn start_secondaries(boot_hart: usize, count: usize) {
    HART_MASK.fetch_or(1 << boot_hart, Ordering::AcqRel);
    let mut expected = 1;
    for hart in (0..MAX_HARTS)
        .filter(|&h| h != boot_hart)
        .take(count.saturating_sub(1))
    {
        let ret = sbi_rt::hart_start(hart, crate::boot::_secondary_start as *const () as usize, 0);
        if ret.is_ok() {
            expected += 1;
        }
    }
    while online() < expected {
        core::hint::spin_loop();
    }
}

#[no_mangle]
extern "C" fn rust_secondary_main(hartid: usize) -> ! {
    // SAFETY: first thing on this hart's boot path.
    unsafe { arch::set_hart_id(hartid) };
    mm::paging::enable_hart();
    trap::init_hart();
    timer::init_hart();
    enable_ipi();
    HART_MASK.fetch_or(1 << hartid, Ordering::AcqRel);
    ONLINE.fetch_add(1, Ordering::AcqRel);
    arch::irq_enable();
    secondary_loop()
}

/// Supervisor software interrupt enable bit of `sie`.
const SIE_SSIE: usize = 1 << 1;

/// Lets `run_on_all`'s IPI wake this hart from `wfi`.
fn enable_ipi() {
    // SAFETY: enables the supervisor software interrupt source only.
    unsafe { core::arch::asm!("csrs sie, {}", in(reg) SIE_SSIE) };
}

/// Sends a wake-up IPI to every online hart but the calling one.
pub fn ipi_others() {
    sbi_rt::send_ipi(sbi_rt::HartMask::from_mask_base(others_mask(), 0));
}

/// An IPI from `run_on_all` (it only wakes the hart) or from
/// `wait_harts_out_of` (is this hart outside the range?); clear it.
/// `interrupted_pc`: where the hart was when the IPI came.
pub fn on_ipi(interrupted_pc: usize) {
    // SAFETY: clears sip.SSIP, the pending bit of the interrupt being taken.
    unsafe { core::arch::asm!("csrc sip, {}", in(reg) SIE_SSIE) };
    // Seqlock read of the request: an odd epoch is being written.
    let epoch = OUT_EPOCH.load(Ordering::Acquire);
    if epoch % 2 == 1 {
        return;
    }
    let range = OUT_START.load(Ordering::Relaxed)..OUT_END.load(Ordering::Relaxed);
    core::sync::atomic::fence(Ordering::Acquire);
    if OUT_EPOCH.load(Ordering::Relaxed) == epoch && !range.contains(&interrupted_pc) {
        OUT_SEEN[arch::hart_id()].store(epoch, Ordering::Release);
    }
}

/// `wait_harts_out_of`'s request: the range, under a seqlock epoch (odd
/// while written), and per hart the last epoch it was seen outside it.
static OUT_EPOCH: AtomicUsize = AtomicUsize::new(0);
static OUT_START: AtomicUsize = AtomicUsize::new(0);
static OUT_END: AtomicUsize = AtomicUsize::new(0);
static OUT_SEEN: [AtomicUsize; MAX_HARTS] = [const { AtomicUsize::new(0) }; MAX_HARTS];
static OUT_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Returns once every other online hart has taken an IPI with its pc
/// outside `range` (the hook rkprobes needs to cover two instructions with
/// one jump). This kernel never preempts kernel code: a task switches out
/// only where it calls the scheduler, so a hart is stopped with its pc in
/// `range` only while an interrupt it took there is in progress. Once
/// back, it runs on (rkprobes has put a breakpoint in front, so it does
/// not come back) and is seen outside at a later IPI.
pub fn wait_harts_out_of(range: core::ops::Range<usize>) {
    let _one_at_a_time = OUT_LOCK.lock();
    OUT_EPOCH.fetch_add(1, Ordering::AcqRel);
    OUT_START.store(range.start, Ordering::Relaxed);
    OUT_END.store(range.end, Ordering::Relaxed);
    let epoch = OUT_EPOCH.fetch_add(1, Ordering::AcqRel) + 1;
    loop {
        let pending = harts()
            .filter(|&h| h != arch::hart_id())
            .filter(|&h| OUT_SEEN[h].load(Ordering::Acquire) != epoch)
            .fold(0, |m, h| m | (1 << h));
        if pending == 0 {
            return;
        }
        sbi_rt::send_ipi(sbi_rt::HartMask::from_mask_base(pending, 0));
        for _ in 0..1000 {
            core::hint::spin_loop();
        }
    }
}

fn secondary_loop() -> ! {
    let mut seen = 0;
    loop {
        // Idle harts sleep in `wfi` instead of spinning, so an emulator
        // gives the busy harts the host's CPUs. Interrupts are masked
        // between the check and `wfi`, so a wake-up cannot be lost: `wfi`
        // returns on a pending interrupt even while they are masked.
        let irqs = arch::irq_disable();
        let seq = JOB_SEQ.load(Ordering::Acquire);
        if seq == seen {
            arch::wfi();
        }
        if irqs {
            arch::irq_enable();
        }
        if seq == seen {
            continue;
        }
        seen = seq;
        let job = JOB.load(Ordering::Acquire) as *const &(dyn Fn(usize) + Sync);
        // SAFETY: `run_on_all` stored the address of a live reference and
        // keeps it alive until every hart has counted itself done.
        let job = unsafe { *job };
        job(arch::hart_id());
        JOB_DONE.fetch_add(1, Ordering::AcqRel);
    }
}

/// Runs `job(hart_id)` on every secondary hart and, with `include_self`, on
/// the calling hart too; returns when all have finished.
pub fn run_on_all(include_self: bool, job: &(dyn Fn(usize) + Sync)) {
    let _one_at_a_time = JOB_LOCK.lock();
    let others = online() - 1;
    JOB_DONE.store(0, Ordering::Release);
    let job_ref: &(dyn Fn(usize) + Sync) = job;
    JOB.store(&job_ref as *const _ as usize, Ordering::Release);
    JOB_SEQ.fetch_add(1, Ordering::AcqRel);
    ipi_others();
    if include_self {
        job(arch::hart_id());
    }
    while JOB_DONE.load(Ordering::Acquire) < others {
        core::hint::spin_loop();
    }
}
