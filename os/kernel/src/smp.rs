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

/// Lets IPIs in: `run_on_all`'s wakes this hart from `wfi`,
/// `wait_harts_out_of`'s asks where it is.
pub fn enable_ipi() {
    // SAFETY: enables the supervisor software interrupt source only.
    unsafe { core::arch::asm!("csrs sie, {}", in(reg) SIE_SSIE) };
}

/// Sends a wake-up IPI to every online hart but the calling one.
pub fn ipi_others() {
    sbi_rt::send_ipi(sbi_rt::HartMask::from_mask_base(others_mask(), 0));
}

/// An IPI from `run_on_all` (it only wakes the hart) or from
/// `wait_harts_out_of` (where was this hart?); clear it.
/// `interrupted_pc`: where the hart was when the IPI came.
pub fn on_ipi(interrupted_pc: usize) {
    // SAFETY: clears sip.SSIP, the pending bit of the interrupt being taken.
    unsafe { core::arch::asm!("csrc sip, {}", in(reg) SIE_SSIE) };
    let h = arch::hart_id();
    let asked = WHERE_EPOCH.load(Ordering::Acquire);
    WHERE_PC[h].store(interrupted_pc, Ordering::Relaxed);
    WHERE_SEEN[h].store(asked, Ordering::Release);
}

/// `wait_harts_out_of`'s questions: each round a new epoch; a hart's
/// answer is the pc its IPI interrupted, under the epoch it read.
static WHERE_EPOCH: AtomicUsize = AtomicUsize::new(0);
static WHERE_SEEN: [AtomicUsize; MAX_HARTS] = [const { AtomicUsize::new(0) }; MAX_HARTS];
static WHERE_PC: [AtomicUsize; MAX_HARTS] = [const { AtomicUsize::new(0) }; MAX_HARTS];
static WHERE_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Returns once every other online hart has taken an IPI with its pc
/// outside all of `ranges` (the hook rkprobes needs to cover two
/// instructions with one jump). This kernel never preempts kernel code:
/// a task switches out only where it calls the scheduler, so a hart is
/// stopped with its pc in a range only while an interrupt it took there
/// is in progress. Once back, it runs on (rkprobes has put a breakpoint
/// in front, so it does not come back) and is seen outside at a later
/// IPI. An answer counts if given after the question: the hart was
/// stopped at that pc then, after the breakpoint was in place.
pub fn wait_harts_out_of(ranges: &[core::ops::Range<usize>]) {
    let _one_at_a_time = WHERE_LOCK.lock();
    let inside = |pc: usize| ranges.iter().any(|r| r.contains(&pc));
    let mut pending = others_mask();
    let mut rounds = 0u64;
    while pending != 0 {
        let epoch = WHERE_EPOCH.fetch_add(1, Ordering::AcqRel) + 1;
        sbi_rt::send_ipi(sbi_rt::HartMask::from_mask_base(pending, 0));
        for _ in 0..1000 {
            core::hint::spin_loop();
        }
        let asked = pending;
        for h in (0..MAX_HARTS).filter(|h| asked & (1 << h) != 0) {
            if WHERE_SEEN[h].load(Ordering::Acquire) == epoch
                && !inside(WHERE_PC[h].load(Ordering::Relaxed))
            {
                pending &= !(1 << h);
            }
        }
        rounds += 1;
        if rounds == 100_000 {
            log::warn!("wait_harts_out_of: harts {pending:#x} take no IPI (interrupts masked?)");
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
