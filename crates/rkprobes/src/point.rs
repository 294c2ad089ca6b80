//! What the hit path reads: a probe point (one patched address) and the
//! probes registered on it. Points are immutable once published; adding or
//! removing a probe at an address publishes a new point and retires the old
//! one after a grace period.

use crate::arch::current::{Prepared, TrapFrame};
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

/// A seed-style handler: `Arc<Mutex<dyn FnMut(&mut TrapFrame) + Send>>`.
pub type SeedHandler = Arc<Mutex<dyn FnMut(&mut TrapFrame) + Send>>;
/// A lock-free handler of the idiomatic API.
pub type PreFn = Box<dyn Fn(&mut TrapFrame) -> PreAction + Send + Sync>;
pub type PostFn = Box<dyn Fn(&mut TrapFrame) + Send + Sync>;

pub(crate) enum Pre {
    Fn(PreFn),
    /// Runs under its own (per-probe) lock. A seed handler that changes the
    /// pc asks to skip the instruction, as in Linux.
    Seed(SeedHandler),
}

pub(crate) enum Post {
    Fn(PostFn),
    Seed(SeedHandler),
}

impl Pre {
    #[inline(always)]
    pub fn call(&self, tf: &mut TrapFrame) -> PreAction {
        match self {
            Pre::Fn(f) => f(tf),
            Pre::Seed(h) => {
                let pc = tf.sepc;
                (h.lock())(tf);
                if tf.sepc != pc {
                    PreAction::Skip
                } else {
                    PreAction::Continue
                }
            }
        }
    }
}

impl Post {
    #[inline(always)]
    pub fn call(&self, tf: &mut TrapFrame) {
        match self {
            Post::Fn(f) => f(tf),
            Post::Seed(h) => (h.lock())(tf),
        }
    }
}

/// One registered probe.
pub(crate) struct Probe {
    pub id: u64,
    pub addr: usize,
    pub kind: ProbeType,
    pub pre: Option<Pre>,
    pub post: Option<Post>,
    pub enabled: AtomicBool,
    pub hits: AtomicU64,
    pub missed: AtomicU64,
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
    /// Address of the out-of-line slot, 0 when the instruction is simulated.
    pub slot: usize,
    pub probes: Box<[Arc<Probe>]>,
}
