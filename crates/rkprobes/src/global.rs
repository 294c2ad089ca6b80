//! The library's one global instance, created by `init`.

use crate::arch::current::detour::{self, DETOUR_SIZE, ENTRY_STUB_SIZE};
use crate::arch::current::{insn::Insn, Prepared, SLOT_SIZE};
use crate::error::{Error, Result};
use crate::hart::HartState;
use crate::os::KprobeOs;
use crate::point::ProbePoint;
use crate::registry::Registry;
use crate::table::Table;
use alloc::boxed::Box;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use spin::{Mutex, MutexGuard, Once};

/// Sizes fixed at `init`, so the hit path never allocates.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Most distinct probed addresses at once.
    pub max_points: usize,
    /// Place a jump instead of a breakpoint where the architecture can
    /// (a hit then takes no trap; see `arch/riscv/detour.rs`).
    pub jump_probes: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_points: 16 * 1024,
            jump_probes: true,
        }
    }
}

pub(crate) struct Kprobes {
    pub os: &'static dyn KprobeOs,
    /// This hart's state in one call (see `hart`): `hart_of::<O>` for the
    /// OS's type, or `hart_of_dyn`; set together with `os`.
    hart_of: unsafe fn(&Kprobes) -> &HartState,
    pub table: Table,
    pub harts: Box<[HartState]>,
    pub slots: Range<usize>,
    /// The part of `slots` holding detours (jump probes), one per address,
    /// never reused for another address. Empty when jump probes are off.
    pub detours: Range<usize>,
    /// Per detour: what it was written for, set once before the detour
    /// can be reached.
    pub detour_info: Box<[Once<DetourFor>]>,
    /// Per detour: the point published for its address while its `jal` is
    /// armed, else null. The detour holds its cell's address, so a jump
    /// hit finds its point with two loads (no table lookup).
    pub detour_points: Box<[AtomicPtr<ProbePoint>]>,
    /// Where detours enter the library when its entries are out of `jal`
    /// reach: stubs next to them that jump on. `None` on hosts, where
    /// tests name an entry themselves.
    pub detour_entry: Option<detour::Entries>,
    /// Whether new probe points may be jump probes (`set_jump_probes`).
    pub jump_probes: AtomicBool,
    /// Whether a compressed instruction's jump may cover the next
    /// instruction too (`KprobeOs::can_wait_harts_out_of`).
    pub jumps_over_two: bool,
    pub registry: Mutex<Registry>,
    pub unowned: AtomicU64,
}

/// What a detour was written for: the probed address, its instruction
/// and, for a jump over two instructions, the second one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DetourFor {
    pub addr: usize,
    pub prepared: Prepared,
    pub second: Option<Insn>,
}

static KPROBES: Once<Kprobes> = Once::new();
/// `KPROBES` once initialized: one load on the hit path.
static READY: AtomicPtr<Kprobes> = AtomicPtr::new(core::ptr::null_mut());

#[inline(always)]
pub(crate) fn get() -> Option<&'static Kprobes> {
    let p: *mut Kprobes = crate::arch::current::order::load_published_static!(READY);
    // SAFETY: non-null only once it points into `KPROBES`, initialized
    // and never dropped (a static).
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Sets the library up for `os`. Call once, before registering probes and
/// before breakpoints can reach `kprobes_trap_handler`. Later calls are
/// ignored. Fails with `NoSpace` if the slot area cannot hold one scratch
/// slot per hart and some shared slots.
pub fn init<O: KprobeOs>(os: &'static O, config: Config) -> Result<()> {
    init_with(os, hooks::<Typed<O>>(), config)
}

/// `init` for an OS behind a trait object; its `hart_id` then costs each
/// hit a `dyn` call.
pub fn init_dyn(os: &'static dyn KprobeOs, config: Config) -> Result<()> {
    init_with(os, hooks::<Dyn>(), config)
}

/// How the hit path finds this hart's state: `hart_id` of the OS's type
/// inlined (`Typed<O>`), or through `dyn` (`Dyn`).
pub(crate) trait FindHart {
    /// # Safety
    /// `kp.os` must be of the type this was made for.
    unsafe fn hart(kp: &Kprobes) -> &HartState;
}

pub(crate) struct Typed<O>(core::marker::PhantomData<O>);
pub(crate) struct Dyn;

impl<O: KprobeOs> FindHart for Typed<O> {
    #[inline(always)]
    unsafe fn hart(kp: &Kprobes) -> &HartState {
        // SAFETY: per the contract.
        let os = unsafe { &*(kp.os as *const dyn KprobeOs).cast::<O>() };
        &kp.harts[os.hart_id()]
    }
}

impl FindHart for Dyn {
    #[inline(always)]
    unsafe fn hart(kp: &Kprobes) -> &HartState {
        hart_of_dyn(kp)
    }
}

/// The functions made for the OS's type at `init`.
struct Hooks {
    hart_of: unsafe fn(&Kprobes) -> &HartState,
    call_hit: usize,
    return_hit: usize,
}

fn hooks<F: FindHart>() -> Hooks {
    Hooks {
        hart_of: hart_of::<F>,
        call_hit: crate::retprobe::call_hit::<F> as *const () as usize,
        return_hit: crate::retprobe::return_hit::<F> as *const () as usize,
    }
}

/// A function probe's light ways in and out (`retprobe::call_hit`,
/// `retprobe::return_hit`), made for the OS's type at `init` so that they
/// find this hart without a call: the assembly calls them through these
/// words (arch/riscv/detour.rs, trampoline.rs), set before any detour or
/// stub can lead there.
#[no_mangle]
pub(crate) static RKPROBES_CALL_HIT: AtomicUsize = AtomicUsize::new(0);
#[no_mangle]
pub(crate) static RKPROBES_RETURN_HIT: AtomicUsize = AtomicUsize::new(0);

/// `hooks` must be made for `os`'s type.
fn init_with(os: &'static dyn KprobeOs, hooks: Hooks, config: Config) -> Result<()> {
    let hart_of = hooks.hart_of;
    let slots = os.slot_area();
    if slots.end.saturating_sub(slots.start) < (os.max_harts() + 16) * SLOT_SIZE {
        return Err(Error::NoSpace);
    }
    KPROBES.call_once(|| {
        // The first slots are each hart's scratch slot (see `hit.rs`); then
        // half of the rest holds detours (nearest to the text, which their
        // `jal`s must reach), followed by the four stubs they enter the
        // library through; the other half is shared slots (a breakpoint
        // probe's step) and return probes' stubs.
        let first = (slots.start + os.max_harts() * SLOT_SIZE).next_multiple_of(16);
        let stubs_size = 4 * ENTRY_STUB_SIZE;
        let n_detours = match config.jump_probes {
            true => slots.end.saturating_sub(first + stubs_size) / 2 / DETOUR_SIZE,
            false => 0,
        };
        let detours = first..first + n_detours * DETOUR_SIZE;
        let stubs = detour::Entries {
            pre: detours.end,
            post: detours.end + ENTRY_STUB_SIZE,
            func: detours.end + 2 * ENTRY_STUB_SIZE,
            call: detours.end + 3 * ENTRY_STUB_SIZE,
        };
        RKPROBES_CALL_HIT.store(hooks.call_hit, Ordering::Relaxed);
        RKPROBES_RETURN_HIT.store(hooks.return_hit, Ordering::Relaxed);
        let entries = detour::common_entries();
        let detour_entry = (n_detours > 0 && entries.pre != 0).then(|| {
            for (stub, entry) in [
                (stubs.pre, entries.pre),
                (stubs.post, entries.post),
                (stubs.func, entries.func),
            ] {
                os.write_text(stub, &detour::entry_stub_code(entry));
            }
            os.write_text(stubs.call, &detour::call_stub_code(entries.call));
            os.sync_icache_all_harts();
            stubs
        });
        let shared = match detour_entry {
            Some(_) => detours.end + stubs_size..slots.end,
            None => detours.end..slots.end,
        };
        Kprobes {
            os,
            hart_of,
            detours,
            detour_entry,
            detour_info: (0..n_detours).map(|_| Once::new()).collect(),
            detour_points: (0..n_detours)
                .map(|_| AtomicPtr::new(core::ptr::null_mut()))
                .collect(),
            jump_probes: AtomicBool::new(config.jump_probes),
            jumps_over_two: os.can_wait_harts_out_of(),
            table: Table::new(config.max_points * 2),
            harts: (0..os.max_harts()).map(|_| HartState::default()).collect(),
            registry: Mutex::new(Registry::new(shared, config.max_points)),
            slots,
            unowned: AtomicU64::new(0),
        }
    });
    if let Some(kp) = KPROBES.get() {
        READY.store(kp as *const Kprobes as *mut Kprobes, Ordering::Release);
    }
    Ok(())
}

/// `kp.harts[os.hart_id()]` in one call, for the hit paths not made for
/// the OS's type: with `O::hart_id` inlined (`Typed<O>`), that call needs
/// none of its caller's registers kept across it (a `dyn` call would need
/// `kp` again after it).
///
/// # Safety
/// `kp.os` must be of the type `F` was made for.
#[link_section = ".text.rkprobes"]
unsafe fn hart_of<F: FindHart>(kp: &Kprobes) -> &HartState {
    // SAFETY: per the contract.
    unsafe { F::hart(kp) }
}

/// `hart_of` for `init_dyn`.
#[inline(always)]
fn hart_of_dyn(kp: &Kprobes) -> &HartState {
    &kp.harts[kp.os.hart_id()]
}

impl Kprobes {
    #[inline(always)]
    pub fn hart(&self) -> &HartState {
        // SAFETY: `init_with` set `hart_of` together with the `os` it was
        // made for.
        unsafe { (self.hart_of)(self) }
    }

    /// The registry, for changes. A probe handler must not wait for it: the
    /// holder may be waiting for this hart to leave its probe.
    pub fn registry(&self) -> Result<MutexGuard<'_, Registry>> {
        if self.hart().is_inside() {
            return Err(Error::InHandler);
        }
        Ok(self.registry.lock())
    }

    /// The registry, for reading; `None` from inside a handler while
    /// another hart holds it.
    pub fn registry_read(&self) -> Option<MutexGuard<'_, Registry>> {
        if self.hart().is_inside() {
            return self.registry.try_lock();
        }
        Some(self.registry.lock())
    }

    /// This hart's scratch slot, for re-executing an instruction whose
    /// probe was just removed.
    pub fn scratch_slot(&self) -> usize {
        self.slots.start + self.os.hart_id() * SLOT_SIZE
    }

    /// Index of the detour containing `addr`, if in the detour area.
    fn detour_index(&self, addr: usize) -> Option<usize> {
        let i = addr.checked_sub(self.detours.start)? / DETOUR_SIZE;
        (i < self.detour_points.len()).then_some(i)
    }

    /// The point cell of the detour at `detour`.
    pub fn detour_cell(&self, detour: usize) -> Option<&AtomicPtr<ProbePoint>> {
        self.detour_points.get(self.detour_index(detour)?)
    }

    /// Publishes `point` (already in the table) for its detour's hits, or
    /// unpublishes the detour at `detour` when `point` is null.
    pub fn set_detour_point(&self, detour: usize, point: *mut ProbePoint) {
        if let Some(cell) = self.detour_cell(detour) {
            cell.store(point, Ordering::Release);
        }
    }

    /// The detour containing `addr` (its start) and what it was built for.
    #[inline(always)]
    pub fn detour_at(&self, addr: usize) -> Option<(usize, &DetourFor)> {
        let i = self.detour_index(addr)?;
        let info = self.detour_info.get(i)?.get()?;
        Some((self.detours.start + i * DETOUR_SIZE, info))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::fake_os::{os, FakeOs};

    /// `init`'s monomorphized lookup and `init_dyn`'s `dyn` one find the
    /// same per-hart state, on every thread (each is a fake hart).
    #[test]
    fn both_hart_lookups_agree() {
        fn this_hart() -> usize {
            os();
            let kp = get().expect("initialized");
            // SAFETY: the fake OS initialized the library with `init`.
            let a = unsafe { hart_of::<Typed<FakeOs>>(kp) };
            assert!(core::ptr::eq(a, hart_of_dyn(kp)));
            a as *const HartState as usize
        }
        let mine = this_hart();
        let other = std::thread::spawn(this_hart).join().unwrap();
        assert_ne!(mine, other, "another thread is another hart");
    }
}
