//! The idiomatic API: a builder, handles, typed errors, a listing.

use crate::arch::current::TrapFrame;
use crate::error::{Error, Result};
use crate::global::{self, Kprobes};
use crate::point::{Post, Pre, PreAction, Probe, ProbeType, SeedHandler};
use crate::registry;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

enum Target {
    Addr(usize),
    Symbol(String),
}

/// Builds a kprobe: `Kprobe::at(addr).pre(|tf| ..).post(|tf| ..).register()`.
#[must_use = "a probe does nothing until `register` is called"]
pub struct Kprobe {
    target: Target,
    kind: ProbeType,
    pre: Option<Pre>,
    post: Option<Post>,
    enabled: bool,
}

impl Kprobe {
    /// A probe on the instruction at `addr`.
    pub fn at(addr: usize) -> Self {
        Kprobe {
            target: Target::Addr(addr),
            kind: ProbeType::Insn,
            pre: None,
            post: None,
            enabled: true,
        }
    }

    /// A probe at `name` or `name+offset` from the OS's symbol table.
    pub fn symbol(spec: &str) -> Self {
        Kprobe {
            target: Target::Symbol(spec.into()),
            ..Kprobe::at(0)
        }
    }

    pub fn kind(mut self, kind: ProbeType) -> Self {
        self.kind = kind;
        self
    }

    /// Runs before the instruction. Return `()` or a `PreAction`.
    pub fn pre<R: Into<PreAction>>(
        mut self,
        f: impl Fn(&mut TrapFrame) -> R + Send + Sync + 'static,
    ) -> Self {
        self.pre = Some(Pre::Fn(Box::new(move |tf| f(tf).into())));
        self
    }

    /// Runs after the instruction, seeing its result.
    pub fn post(mut self, f: impl Fn(&mut TrapFrame) + Send + Sync + 'static) -> Self {
        self.post = Some(Post::Fn(Box::new(f)));
        self
    }

    /// Seed-style handlers, each behind its own mutex.
    pub fn seed_handlers(mut self, pre: SeedHandler, post: Option<SeedHandler>) -> Self {
        self.pre = Some(Pre::Seed(pre));
        self.post = post.map(Post::Seed);
        self
    }

    /// Registers the probe disabled; `ProbeHandle::enable` arms it.
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    pub fn register(self) -> Result<ProbeHandle> {
        let kp = global::get().ok_or(Error::NotInitialized)?;
        let addr = match &self.target {
            Target::Addr(a) => *a,
            Target::Symbol(s) => crate::symbols::resolve(s)?,
        };
        if self.kind != ProbeType::Insn {
            return Err(Error::UnsupportedType);
        }
        let mut reg = kp.registry.lock();
        let (prepared, _function) = registry::check_addr(kp, addr)?;
        let probe = Arc::new(Probe {
            id: reg.next_id(),
            addr,
            kind: self.kind,
            pre: self.pre,
            post: self.post,
            enabled: AtomicBool::new(self.enabled),
            hits: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            registered: AtomicBool::new(true),
        });
        registry::install(kp, &mut reg, probe.clone(), prepared)?;
        Ok(ProbeHandle(probe))
    }
}

/// A registered probe. Dropping the handle leaves the probe registered;
/// `unregister` removes it.
pub struct ProbeHandle(Arc<Probe>);

impl ProbeHandle {
    pub fn id(&self) -> u64 {
        self.0.id
    }
    pub fn addr(&self) -> usize {
        self.0.addr
    }
    /// Hits that ran the handlers.
    pub fn hits(&self) -> u64 {
        self.0.hits.load(Ordering::Relaxed)
    }
    /// Hits whose handlers were skipped (nested in another handler).
    pub fn missed(&self) -> u64 {
        self.0.missed.load(Ordering::Relaxed)
    }
    pub fn enable(&self) {
        self.0.enabled.store(true, Ordering::Release);
    }
    pub fn disable(&self) {
        self.0.enabled.store(false, Ordering::Release);
    }
    pub fn is_registered(&self) -> bool {
        self.0.registered.load(Ordering::Acquire)
    }
    /// Removes the probe; returns once no hart can be in it any more.
    pub fn unregister(self) -> Result<()> {
        unregister_id(self.0.id)
    }
}

/// Removes the probe with this id.
pub fn unregister_id(id: u64) -> Result<()> {
    let kp = global::get().ok_or(Error::NotInitialized)?;
    let mut reg = kp.registry.lock();
    registry::remove(kp, &mut reg, id)
}

/// Removes every probe at `addr`; returns how many there were.
pub fn unregister_addr(addr: usize) -> Result<usize> {
    let kp = global::get().ok_or(Error::NotInitialized)?;
    let mut reg = kp.registry.lock();
    let ids: Vec<u64> = reg
        .probes
        .values()
        .filter(|p| p.addr == addr)
        .map(|p| p.id)
        .collect();
    if ids.is_empty() {
        return Err(Error::NotRegistered);
    }
    for id in &ids {
        registry::remove(kp, &mut reg, *id)?;
    }
    Ok(ids.len())
}

/// One line of the probe listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeInfo {
    pub id: u64,
    pub addr: usize,
    /// `name+0xoff` when the OS knows the function.
    pub symbol: Option<String>,
    pub kind: ProbeType,
    pub enabled: bool,
    pub hits: u64,
    pub missed: u64,
}

/// All registered probes, by id.
pub fn probes() -> Vec<ProbeInfo> {
    let Some(kp) = global::get() else {
        return Vec::new();
    };
    let reg = kp.registry.lock();
    reg.probes.values().map(|p| info(kp, p)).collect()
}

fn info(kp: &Kprobes, p: &Probe) -> ProbeInfo {
    use alloc::format;
    ProbeInfo {
        id: p.id,
        addr: p.addr,
        symbol: kp
            .os
            .symbol_at(p.addr)
            .map(|s| format!("{}+{:#x}", s.name, p.addr - s.addr)),
        kind: p.kind,
        enabled: p.enabled.load(Ordering::Relaxed),
        hits: p.hits.load(Ordering::Relaxed),
        missed: p.missed.load(Ordering::Relaxed),
    }
}

/// Slots in use, for memory accounting.
pub fn slots_in_use() -> usize {
    global::get().map_or(0, |kp| kp.registry.lock().slots_in_use())
}

/// Memory the library uses for probes, for the benchmark's accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryStats {
    /// Probed addresses.
    pub points: usize,
    /// Registered probes.
    pub probes: usize,
    /// Bytes of executable slot memory in use.
    pub slot_bytes: usize,
    /// Bytes of bookkeeping: points, probes and their lists (handlers'
    /// own captures not included), plus the fixed lookup table.
    pub bookkeeping_bytes: usize,
    /// Of `bookkeeping_bytes`, the fixed part allocated at `init`.
    pub fixed_bytes: usize,
}

/// Current memory use.
pub fn memory_stats() -> MemoryStats {
    use crate::arch::current::SLOT_SIZE;
    use crate::point::ProbePoint;
    use core::mem::size_of;
    let Some(kp) = global::get() else {
        return MemoryStats {
            points: 0,
            probes: 0,
            slot_bytes: 0,
            bookkeeping_bytes: 0,
            fixed_bytes: 0,
        };
    };
    let reg = kp.registry.lock();
    let probes = reg.probes.len();
    let points = reg.points();
    let fixed =
        kp.table.bytes() + kp.harts.len() * size_of::<crate::hart::HartState>() + reg.fixed_bytes();
    // Per probe: the probe itself in its Arc (two counters), its entry in
    // the id map, and one list element in its point.
    let per_probe = size_of::<Probe>()
        + 2 * size_of::<usize>()
        + 3 * size_of::<usize>()
        + size_of::<Arc<Probe>>();
    MemoryStats {
        points,
        probes,
        slot_bytes: reg.slots_in_use() * SLOT_SIZE,
        bookkeeping_bytes: fixed + points * size_of::<ProbePoint>() + probes * per_probe,
        fixed_bytes: fixed,
    }
}
