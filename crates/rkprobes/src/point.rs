//! What the hit path reads: a probe point (one patched address) and the
//! probes registered on it. Points are immutable once published; adding or
//! removing a probe at an address publishes a new point and retires the old
//! one after a grace period.

use crate::arch::current::{insn::Insn, Prepared, Run, TrapFrame};
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::Mutex;

/// What a probe is placed on (the seed's `ProbeType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeType {
    /// One instruction: `handler` before it, `post_handler` after it.
    Insn,
    /// A function: `handler` at entry, `post_handler` when it returns.
    SyncFunc,
    /// An `async fn`: `handler` at each poll, `post_handler` at completion.
    AsyncFunc,
}

/// What a pre handler asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PreAction {
    /// Execute the probed instruction, then run post handlers.
    #[default]
    Continue,
    /// Do not execute it: resume at the pc the handler set (or after the
    /// instruction if it left the pc alone). Post handlers do not run.
    Skip,
}

impl From<()> for PreAction {
    fn from(_: ()) -> Self {
        PreAction::Continue
    }
}

/// What an entry handler of a return probe asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EntryAction {
    /// Catch this call's return.
    #[default]
    Continue,
    /// Do not catch this call's return (no return handler for it).
    Cancel,
}

impl From<()> for EntryAction {
    fn from(_: ()) -> Self {
        EntryAction::Continue
    }
}

/// Per-call data an entry handler passes to the return handler of the same
/// call.
pub type RetData = [usize; 4];

/// A seed-style handler: `Arc<Mutex<dyn FnMut(&mut TrapFrame) + Send>>`.
pub type SeedHandler = Arc<Mutex<dyn FnMut(&mut TrapFrame) + Send>>;
/// A lock-free handler of the idiomatic API, with its closure's own code
/// at hand (`call_as::<G>`): the short hit path calls that directly, not
/// through the trait object's table.
pub struct PreFn {
    f: Box<dyn Fn(&mut TrapFrame) -> PreAction + Send + Sync>,
    code: unsafe fn(*const (), &mut TrapFrame) -> PreAction,
}

impl PreFn {
    pub fn new<G: Fn(&mut TrapFrame) -> PreAction + Send + Sync + 'static>(g: G) -> Self {
        PreFn {
            f: Box::new(g),
            code: call_as::<G>,
        }
    }

    /// Runs the handler, through its own code.
    #[inline(always)]
    pub fn call(&self, tf: &mut TrapFrame) -> PreAction {
        // SAFETY: `f` is the closure `code` was made for (`new`).
        unsafe { (self.code)(self.data(), tf) }
    }

    /// The closure's address, for `code`.
    fn data(&self) -> *const () {
        (&*self.f as *const (dyn Fn(&mut TrapFrame) -> PreAction + Send + Sync)).cast()
    }
}

/// Calls the closure of type `G` at `data`. In the library's section,
/// with the handler's body inlined: a probe there would only ever count
/// nested misses, so it is blacklisted with the hit path.
///
/// # Safety
/// `data` must point to a live `G` (the data pointer of a `PreFn` made
/// from a `G`).
#[link_section = ".text.rkprobes"]
unsafe fn call_as<G: Fn(&mut TrapFrame) -> PreAction>(
    data: *const (),
    tf: &mut TrapFrame,
) -> PreAction {
    // SAFETY: per the contract.
    unsafe { (*data.cast::<G>())(tf) }
}
pub type PostFn = Box<dyn Fn(&mut TrapFrame) + Send + Sync>;
pub type EntryFn = Box<dyn Fn(&mut TrapFrame, &mut RetData) -> EntryAction + Send + Sync>;
pub type RetFn = Box<dyn Fn(&mut TrapFrame, &RetData) + Send + Sync>;

pub(crate) enum Pre {
    Fn(PreFn),
    /// Runs under its own (per-probe) lock. A seed handler that changes the
    /// pc asks to skip the instruction, as in Linux.
    Seed(SeedHandler),
    /// Entry handler of a return probe, with per-call data.
    Entry(EntryFn),
}

pub(crate) enum Post {
    Fn(PostFn),
    Seed(SeedHandler),
    /// Return handler of a return probe, with per-call data.
    Ret(RetFn),
}

impl Pre {
    /// Calls the handler; `data` is the per-call data of a return probe.
    /// For a return probe, a plain handler's `Skip` also cancels the
    /// return probe for this call; an entry handler never skips.
    #[inline(always)]
    pub fn call(&self, tf: &mut TrapFrame, data: &mut RetData) -> (PreAction, EntryAction) {
        let action = match self {
            Pre::Entry(f) => return (PreAction::Continue, f(tf, data)),
            Pre::Fn(f) => f.call(tf),
            Pre::Seed(h) => {
                let pc = tf.sepc;
                (h.lock())(tf);
                if tf.sepc != pc {
                    PreAction::Skip
                } else {
                    PreAction::Continue
                }
            }
        };
        match action {
            PreAction::Skip => (PreAction::Skip, EntryAction::Cancel),
            PreAction::Continue => (PreAction::Continue, EntryAction::Continue),
        }
    }
}

impl Post {
    #[inline(always)]
    pub fn call(&self, tf: &mut TrapFrame, data: &RetData) {
        match self {
            Post::Fn(f) => f(tf),
            Post::Seed(h) => (h.lock())(tf),
            Post::Ret(f) => f(tf, data),
        }
    }

    /// `call` for a return probe's return: its usual handler tested first.
    #[inline(always)]
    pub fn call_at_return(&self, tf: &mut TrapFrame, data: &RetData) {
        if let Post::Ret(f) = self {
            return f(tf, data);
        }
        self.call(tf, data)
    }
}

/// One registered probe.
// `repr(C)`, the hit counter first: it is counted on every hit, and at
// offset 0 that takes no address arithmetic.
#[repr(C)]
pub(crate) struct Probe {
    pub hits: AtomicU64,
    pub missed: AtomicU64,
    pub id: u64,
    pub addr: usize,
    pub pre: Option<Pre>,
    pub post: Option<Post>,
    /// Return-probe state of a `SyncFunc` probe.
    pub ret: Option<crate::retprobe::RetState>,
    pub kind: ProbeType,
    pub enabled: AtomicBool,
    pub registered: AtomicBool,
}

impl Probe {
    #[inline(always)]
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }
    #[inline(always)]
    pub fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }
    #[inline(always)]
    pub fn count_miss(&self) {
        self.missed.fetch_add(1, Ordering::Relaxed);
    }
}

/// One patched address.
pub(crate) struct ProbePoint {
    pub addr: usize,
    pub prepared: Prepared,
    /// What a hit does with the instruction, bound to `addr`.
    pub run: Run,
    /// Address of the out-of-line slot, 0 when the instruction is simulated.
    /// Inside the detour for a jump probe.
    pub slot: usize,
    /// The detour a jump probe's `jal` leads to, 0 for a breakpoint probe.
    pub detour: usize,
    /// The instruction after a compressed one that its jump covers too
    /// (`arch/riscv/region.rs`): its copy in the detour runs instead.
    pub second: Option<Insn>,
    /// Where a hart goes on after the probed instruction (a handler's
    /// skip, a post handler's return): after it, or the copy of the
    /// second instruction its jump covers.
    pub resume_after: usize,
    pub probes: Box<[Arc<Probe>]>,
    /// Which pre-handler path a hit takes, known when the point is built.
    pub fast: Fast,
    /// Some probe here has a post handler to run after the instruction.
    pub has_post: bool,
}

/// The common cases get their own short path on a hit.
pub(crate) enum Fast {
    /// One instruction probe whose only handler is a plain pre handler.
    OnePre(OnePre),
    /// One instruction probe, any other handlers.
    One(Arc<Probe>),
    /// One return probe.
    OneRet(OneRet),
    /// Several probes: the general loop.
    Many,
}

/// A point's only probe and its plain pre handler, reached without going
/// through the probe's `Arc` and `Option<Pre>` (a shorter call on every
/// hit). The point's `probes` keeps both alive.
pub(crate) struct OnePre {
    probe: *const Probe,
    /// The handler's closure and its own code (`PreFn`).
    data: *const (),
    call: unsafe fn(*const (), &mut TrapFrame) -> PreAction,
}

// SAFETY: both point to `Sync` values (a `Probe`, a `Send + Sync`
// closure) that the point owns through `probes`.
unsafe impl Send for OnePre {}
// SAFETY: as above.
unsafe impl Sync for OnePre {}

impl OnePre {
    #[inline(always)]
    pub fn probe(&self) -> &Probe {
        // SAFETY: the point holding `self` holds the probe in `probes`.
        unsafe { &*self.probe }
    }

    #[inline(always)]
    pub fn call(&self, tf: &mut TrapFrame) -> PreAction {
        // SAFETY: the probe (alive, above) holds the handler in `pre`:
        // `data` is its closure, of the type `call` was made for.
        unsafe { (self.call)(self.data, tf) }
    }
}

/// A point's only probe, a return probe, with its return state reached
/// without going through the `Arc` and the `Option`. The point's `probes`
/// keeps both alive.
pub(crate) struct OneRet {
    probe: *const Probe,
    ret: *const crate::retprobe::RetState,
    /// A jump hit may leave the callee-saved registers live instead of
    /// restoring them from the frame (`hit::rkprobes_detour_fn_hit`): its
    /// entry handler is an `entry` one (documented to have no effect on
    /// them) or none, and the instruction does not write one there.
    pub light: bool,
}

// SAFETY: both point into a `Probe` (which is `Sync`) that the point owns
// through `probes`.
unsafe impl Send for OneRet {}
// SAFETY: as above.
unsafe impl Sync for OneRet {}

impl OneRet {
    #[inline(always)]
    pub fn probe(&self) -> &Probe {
        // SAFETY: the point holding `self` holds the probe in `probes`.
        unsafe { &*self.probe }
    }

    #[inline(always)]
    pub fn ret(&self) -> &crate::retprobe::RetState {
        // SAFETY: inside the probe, alive as above.
        unsafe { &*self.ret }
    }
}

/// Where a point's instruction runs (see `ProbePoint`'s fields).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Placement {
    pub slot: usize,
    pub detour: usize,
    pub second: Option<Insn>,
}

impl ProbePoint {
    pub fn new(
        addr: usize,
        prepared: Prepared,
        Placement {
            slot,
            detour,
            second,
        }: Placement,
        probes: Box<[Arc<Probe>]>,
    ) -> Self {
        let fast = match &*probes {
            [one] => match (&one.ret, &one.pre) {
                (Some(ret), pre) => Fast::OneRet(OneRet {
                    probe: Arc::as_ptr(one),
                    ret,
                    light: matches!(pre, None | Some(Pre::Entry(_)))
                        && prepared.keeps_callee_saved(),
                }),
                (None, Some(Pre::Fn(f))) if one.post.is_none() => Fast::OnePre(OnePre {
                    probe: Arc::as_ptr(one),
                    data: f.data(),
                    call: f.code,
                }),
                _ => Fast::One(one.clone()),
            },
            _ => Fast::Many,
        };
        let has_post = probes.iter().any(|p| p.ret.is_none() && p.post.is_some());
        let after = addr + prepared.len();
        let resume_after =
            crate::arch::current::detour::resume_after(detour, after, second.is_some());
        let run = match prepared.at(addr) {
            // A simulated instruction goes on to the second one's copy.
            Run::Simulate(sim) => Run::Simulate(sim.redirect(after, resume_after)),
            run => run,
        };
        ProbePoint {
            addr,
            prepared,
            run,
            slot,
            detour,
            second,
            resume_after,
            probes,
            fast,
            has_post,
        }
    }

    pub fn placement(&self) -> Placement {
        Placement {
            slot: self.slot,
            detour: self.detour,
            second: self.second,
        }
    }

    /// `pc` as handlers see it: the copy of the instruction a jump covers
    /// shows as that instruction's address.
    pub fn pc_in_text(&self, pc: usize) -> usize {
        match pc == self.resume_after {
            true => self.addr + self.prepared.len(),
            false => pc,
        }
    }

    /// `pc` to resume at: the instruction a jump covers runs from its copy
    /// (its own first parcel is the jump's upper half).
    pub fn pc_to_run(&self, pc: usize) -> usize {
        match pc == self.addr + self.prepared.len() {
            true => self.resume_after,
            false => pc,
        }
    }

    /// The `jal` to its detour that a jump probe puts at `addr`; `None`
    /// for a breakpoint probe (a compressed instruction's detour holds
    /// only its copies, unless its jump covers a second instruction).
    pub fn jump(&self) -> Option<Insn> {
        (self.detour != 0 && (!self.prepared.insn.is_compressed() || self.second.is_some()))
            .then(|| crate::arch::current::detour::jump_to(self.addr, self.detour))
            .flatten()
    }

    /// A slot of the shared area that this point holds (a jump probe's
    /// copies live in its detour instead).
    pub fn own_slot(&self) -> Option<usize> {
        (self.slot != 0 && self.detour == 0).then_some(self.slot)
    }
}

/// The handler setters of the probe builders (`Kprobe`, `Uprobe`), which
/// both have `kind: ProbeType`, `pre: Option<Pre>` and `post: Option<Post>`.
macro_rules! handler_setters {
    () => {
        /// `Insn` (default), `SyncFunc` (a return probe) or `AsyncFunc`.
        pub fn kind(mut self, kind: ProbeType) -> Self {
            self.kind = kind;
            self
        }

        /// Runs before the instruction (at entry for `SyncFunc`). Return
        /// `()` or a `PreAction`.
        pub fn pre<R: Into<PreAction>>(
            mut self,
            f: impl Fn(&mut TrapFrame) -> R + Send + Sync + 'static,
        ) -> Self {
            self.pre = Some(Pre::Fn($crate::point::PreFn::new(
                move |tf: &mut TrapFrame| f(tf).into(),
            )));
            self
        }

        /// Runs after the instruction, seeing its result; for `SyncFunc`,
        /// at the function's return, seeing the return value (`a0`, `a1`;
        /// its register writes take effect as for `ret`).
        pub fn post(mut self, f: impl Fn(&mut TrapFrame) + Send + Sync + 'static) -> Self {
            self.post = Some(Post::Fn(Box::new(f)));
            self
        }

        /// Entry handler of a return probe: sees the arguments, may cancel
        /// the return probe for this call, and may leave data for the
        /// return handler of the same call. Sets the type to `SyncFunc`.
        /// What it writes to the arguments, `sp`, `ra` and the other
        /// registers a call may clobber takes effect; its writes to the
        /// caller's own registers (`gp`, `tp`, `s0`-`s11`) may not (a
        /// detour made for return probes leaves them live): do not write
        /// them.
        pub fn entry<R: Into<EntryAction>>(
            mut self,
            f: impl Fn(&mut TrapFrame, &mut RetData) -> R + Send + Sync + 'static,
        ) -> Self {
            self.kind = ProbeType::SyncFunc;
            self.pre = Some(Pre::Entry(Box::new(move |tf, d| f(tf, d).into())));
            self
        }

        /// Return handler of a return probe: sees the return value (`a0`,
        /// `a1`) and the data its entry handler left. Sets the type to
        /// `SyncFunc`. At a kernel function's return, what it writes to
        /// the return value (`a0`/`a1`) takes effect; the caller's own
        /// registers (`sp`, `gp`, `tp`, `s0`-`s11`) come back as the
        /// function left them, and the ones a call clobbers (`ra`,
        /// `t0`-`t6`, `a2`-`a7`) mean nothing to the caller.
        pub fn ret(mut self, f: impl Fn(&mut TrapFrame, &RetData) + Send + Sync + 'static) -> Self {
            self.kind = ProbeType::SyncFunc;
            self.post = Some(Post::Ret(Box::new(f)));
            self
        }

        /// Seed-style handlers, each behind its own mutex (for
        /// `SyncFunc`, the post handler's register writes take effect as
        /// for `ret`).
        pub fn seed_handlers(mut self, pre: SeedHandler, post: Option<SeedHandler>) -> Self {
            self.pre = Some(Pre::Seed(pre));
            self.post = post.map(Post::Seed);
            self
        }
    };
}
pub(crate) use handler_setters;
