//! What the hit path reads: a probe point (one patched address) and the
//! probes registered on it. Points are immutable once published; adding or
//! removing a probe at an address publishes a new point and retires the old
//! one after a grace period.

use crate::arch::current::{insn::Insn, CallRegs, Prepared, ReturnRegs, Run, TrapFrame};
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
/// A lock-free handler of the idiomatic API, with code made for its
/// closure's type at hand (`hit`, given the closure's address, `data`):
/// the short hit paths call that directly, not through the trait
/// object's table. Such code sits in the library's section, with the
/// handler's body inlined: a probe there would only ever count nested
/// misses, so it is blacklisted with the hit path.
pub struct Handler<C: ?Sized, H> {
    f: Box<C>,
    pub(crate) hit: H,
}

impl<C: ?Sized, H> Handler<C, H> {
    /// The closure's address, for `hit`.
    #[inline(always)]
    pub(crate) fn data(&self) -> *const () {
        (&*self.f as *const C).cast()
    }
}

type PreClosure = dyn Fn(&mut TrapFrame) -> PreAction + Send + Sync;
type CallClosure = dyn Fn(&mut CallRegs, &mut RetData) -> EntryAction + Send + Sync;
type ReturnClosure = dyn Fn(&mut ReturnRegs, &RetData) + Send + Sync;

/// A plain pre handler, with the code that calls it.
pub type PreFn = Handler<PreClosure, unsafe fn(*const (), &mut TrapFrame) -> PreAction>;
/// A function probe's call handler (`on_call`), with the whole call of
/// its probe made for it (`retprobe::call_with::<G>`, the handler
/// inlined): the light way in makes one call, which keeps nothing across
/// the handler.
pub type CallFn = Handler<CallClosure, crate::retprobe::CallHit>;
/// A function probe's return handler (`on_return`), with the part of its
/// return that runs it made for it (`retprobe::return_with::<G>`).
pub type ReturnFn = Handler<ReturnClosure, crate::retprobe::ReturnHit>;

impl PreFn {
    pub fn new<G: Fn(&mut TrapFrame) -> PreAction + Send + Sync + 'static>(g: G) -> Self {
        /// Calls the closure of type `G` at `data`.
        ///
        /// # Safety
        /// `data` must point to a live `G`.
        #[link_section = ".text.rkprobes"]
        unsafe fn call_as<G: Fn(&mut TrapFrame) -> PreAction>(
            data: *const (),
            tf: &mut TrapFrame,
        ) -> PreAction {
            // SAFETY: per the contract.
            unsafe { (*data.cast::<G>())(tf) }
        }
        Handler {
            f: Box::new(g),
            hit: call_as::<G>,
        }
    }

    /// Runs the handler, through its own code.
    #[inline(always)]
    pub fn call(&self, tf: &mut TrapFrame) -> PreAction {
        // SAFETY: `hit` was made for the closure `f` (`new`).
        unsafe { (self.hit)(self.data(), tf) }
    }
}

impl CallFn {
    pub fn new<G>(g: G) -> Self
    where
        G: Fn(&mut CallRegs, &mut RetData) -> EntryAction + Send + Sync + 'static,
    {
        Handler {
            f: Box::new(g),
            hit: crate::retprobe::call_with::<G>,
        }
    }

    /// Runs the handler (off the light way).
    pub fn call(&self, regs: &mut CallRegs, data: &mut RetData) -> EntryAction {
        (self.f)(regs, data)
    }
}

impl ReturnFn {
    pub fn new<G: Fn(&mut ReturnRegs, &RetData) + Send + Sync + 'static>(g: G) -> Self {
        Handler {
            f: Box::new(g),
            hit: crate::retprobe::return_with::<G>,
        }
    }

    /// Runs the handler (off the light way).
    pub fn call(&self, regs: &mut ReturnRegs, data: &RetData) {
        (self.f)(regs, data)
    }
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
    /// Call handler of a function probe: the arguments alone.
    Call(CallFn),
}

pub(crate) enum Post {
    Fn(PostFn),
    Seed(SeedHandler),
    /// Return handler of a return probe, with per-call data.
    Ret(RetFn),
    /// Return handler of a function probe: the return value alone.
    Return(ReturnFn),
}

impl Pre {
    /// Calls the handler; `data` is the per-call data of a return probe.
    /// For a return probe, a plain handler's `Skip` also cancels the
    /// return probe for this call; an entry handler never skips.
    #[inline(always)]
    pub fn call(&self, tf: &mut TrapFrame, data: &mut RetData) -> (PreAction, EntryAction) {
        let action = match self {
            Pre::Entry(f) => return (PreAction::Continue, f(tf, data)),
            Pre::Call(f) => return (PreAction::Continue, call_on_frame(f, tf, data)),
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
            Post::Return(f) => return_on_frame(f, tf, data),
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

/// A function probe's call handler on a full frame (a call through a
/// breakpoint or a common detour, a uprobe's): out of line, so the paths
/// that reach it keep their registers.
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn call_on_frame(f: &CallFn, tf: &mut TrapFrame, data: &mut RetData) -> EntryAction {
    f.call(CallRegs::of(tf), data)
}

/// A function probe's return handler on a full frame (a uretprobe's).
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn return_on_frame(f: &ReturnFn, tf: &mut TrapFrame, data: &RetData) {
    ReturnRegs::with_frame(tf, |r| f.call(r, data))
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

/// The common cases get their own short path on a hit. A plain tag byte
/// first (`repr(u8)`): each hit tests its case with a load and a compare,
/// the most common (`OnePre`, tag 0) with a load alone.
#[repr(u8)]
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
    /// A return probe whose entry handler is an `on_call` one or none
    /// and whose instruction runs in its detour: the light way in, where
    /// its detour has one, takes it (`retprobe::call_hit`), through the
    /// call made for its handler (`CallFn::hit`, or the one for none) and
    /// the handler's closure.
    pub call: Option<(crate::retprobe::CallHit, *const ())>,
}

// SAFETY: `probe` and `ret` point into a `Probe` (which is `Sync`) that
// the point owns through `probes`, `call` to a function and to the
// closure (`Send + Sync`) that probe holds in `pre`.
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
                    light: matches!(pre, None | Some(Pre::Entry(_) | Pre::Call(_)))
                        && prepared.keeps_callee_saved(),
                    // The light way in saves no callee-saved register: for
                    // a copy run in the detour, and handlers that see none.
                    call: match pre {
                        _ if detour == 0 || !prepared.needs_slot() => None,
                        Some(Pre::Call(f)) => Some((f.hit, f.data())),
                        None => Some(crate::retprobe::NO_CALL_HANDLER),
                        Some(_) => None,
                    },
                }),
                (None, Some(Pre::Fn(f))) if one.post.is_none() => Fast::OnePre(OnePre {
                    probe: Arc::as_ptr(one),
                    data: f.data(),
                    call: f.hit,
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
        /// `SyncFunc`. (A kernel return probe without an entry handler, or
        /// with an `on_call` one, enters through the light way in: see
        /// `on_call`.) At a kernel function's return, what it writes to
        /// the return value (`a0`/`a1`) takes effect; the caller's own
        /// registers (`sp`, `gp`, `tp`, `s0`-`s11`) come back as the
        /// function left them, and the ones a call clobbers (`ra`,
        /// `t0`-`t6`, `a2`-`a7`) mean nothing to the caller.
        pub fn ret(mut self, f: impl Fn(&mut TrapFrame, &RetData) + Send + Sync + 'static) -> Self {
            self.kind = ProbeType::SyncFunc;
            self.post = Some(Post::Ret(Box::new(f)));
            self
        }

        /// Call handler of a function probe, the light kind of return
        /// probe: sees the arguments (`a0`..`a7`, which it may change),
        /// `sp`, the return address and the function's address, may
        /// cancel the return handler for this call and may leave data for
        /// it. Sets the type to `SyncFunc`. With `on_return` for the
        /// return (or none), a kernel function probe alone at its
        /// function, whose first instruction runs out of line (most do),
        /// saves only what these views show: its call and return cost
        /// about half of `entry` and `ret`'s, which see every register
        /// (bench rows `fprobe` and `kretprobe`). That way in uses `t0`
        /// and `t1` as scratch, as Linux's ftrace uses `t0`: no calling
        /// convention passes a value in them (a function entered
        /// otherwise, such as `jal t0` millicode, cannot have return
        /// probes anyway).
        pub fn on_call<R: Into<EntryAction>>(
            mut self,
            f: impl Fn(&mut $crate::arch::current::CallRegs, &mut RetData) -> R
                + Send
                + Sync
                + 'static,
        ) -> Self {
            self.kind = ProbeType::SyncFunc;
            self.pre = Some(Pre::Call($crate::point::CallFn::new(
                move |r: &mut $crate::arch::current::CallRegs, d: &mut RetData| f(r, d).into(),
            )));
            self
        }

        /// Return handler of a function probe (see `on_call`): sees the
        /// return value (`a0`, `a1`, which it may change), the caller's
        /// `sp`, where the call returns to, and the data its call handler
        /// left. Sets the type to `SyncFunc`.
        pub fn on_return(
            mut self,
            f: impl Fn(&mut $crate::arch::current::ReturnRegs, &RetData) + Send + Sync + 'static,
        ) -> Self {
            self.kind = ProbeType::SyncFunc;
            self.post = Some(Post::Return($crate::point::ReturnFn::new(f)));
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
