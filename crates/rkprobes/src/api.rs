//! The idiomatic API: a builder, handles, typed errors, a listing.

use crate::arch::current::Prepared;
use crate::arch::current::TrapFrame;
use crate::error::{Error, Result};
use crate::global::{self, Kprobes};
use crate::point::{EntryAction, Post, Pre, PreAction, Probe, ProbeType, RetData, SeedHandler};
use crate::registry;
use crate::retprobe::{self, RetState};
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
    maxactive: Option<usize>,
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
            maxactive: None,
        }
    }

    /// A probe at `name` or `name+offset` from the OS's symbol table.
    pub fn symbol(spec: &str) -> Self {
        Kprobe {
            target: Target::Symbol(spec.into()),
            ..Kprobe::at(0)
        }
    }

    crate::point::handler_setters!();

    /// A return probe (`SyncFunc`) on the function at `addr`.
    pub fn function(addr: usize) -> Self {
        Kprobe::at(addr).kind(ProbeType::SyncFunc)
    }

    /// Most calls of a return probe in flight at once (default
    /// max(10, 2 * harts), at most `MAX_ACTIVE`); a call beyond that runs
    /// unprobed and counts as missed.
    pub fn maxactive(mut self, n: usize) -> Self {
        self.maxactive = Some(n);
        self
    }

    /// Registers the probe disabled; `ProbeHandle::enable` arms it.
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// Places the probe; its handlers may run on any hart from here on.
    ///
    /// What a handler sees: the hit path reads the probe the way Linux's
    /// kprobes do (`rcu_dereference`: a load ordered only for what is
    /// reached through it, see `arch/riscv/order.rs`), so everything a
    /// handler reaches through its closure (captures, and what they point
    /// to, such as an `Arc`'s contents) is seen at least as it was at
    /// `register`.
    /// Other state written just before `register` (a `static`, say) is
    /// not guaranteed to be seen yet on a weakly ordered hart: hand it to
    /// the handler through its closure.
    pub fn register(self) -> Result<ProbeHandle> {
        register_many(alloc::vec![self])
            .pop()
            .unwrap_or(Err(Error::NotInitialized))
    }

    /// An `AsyncFunc` probe: an async probe (see `asyncprobe.rs`) whose
    /// `pre` runs at each poll's entry and `post` at completion.
    fn register_async(self) -> Result<ProbeHandle> {
        let target = match self.target {
            Target::Addr(a) => crate::asyncprobe::Target::Addr(a),
            Target::Symbol(s) => crate::asyncprobe::Target::Symbol(s),
        };
        crate::asyncprobe::register_kprobe(
            target,
            self.pre,
            self.post,
            self.enabled,
            self.maxactive,
        )
    }

    /// Checks the target and builds the probe; writes its return stub
    /// (made visible by `install_many`). Changes nothing on error.
    fn build(self, kp: &Kprobes, reg: &mut registry::Registry) -> Result<(Arc<Probe>, Prepared)> {
        let addr = match &self.target {
            Target::Addr(a) => *a,
            Target::Symbol(s) => crate::symbols::resolve(s)?,
        };
        let (prepared, function) = registry::check_addr(kp, addr)?;
        let ret = if self.kind == ProbeType::SyncFunc {
            if function != addr {
                return Err(Error::NotFunctionEntry { addr });
            }
            let maxactive = self
                .maxactive
                .unwrap_or_else(|| retprobe::default_maxactive(kp));
            if !(1..=retprobe::MAX_ACTIVE).contains(&maxactive) {
                return Err(Error::BadMaxactive {
                    requested: maxactive,
                    max: retprobe::MAX_ACTIVE,
                });
            }
            let stub = reg.alloc_stub(maxactive)?;
            Some(RetState::new(stub, maxactive, self.post.as_ref()))
        } else {
            None
        };
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
            ret,
        });
        if let Some(ret) = &probe.ret {
            let code = crate::arch::current::trampoline::ret_stub_code(
                ret.stub,
                Arc::as_ptr(&probe) as usize,
                ret.maxactive(),
                RetState::is_light(probe.post.as_ref()),
            );
            kp.os.write_text(ret.stub, &code);
        }
        Ok((probe, prepared))
    }
}

/// Registers many probes at once: each is accepted or refused on its own
/// (one result per builder, in order), and all accepted breakpoints are
/// armed together, with a few syncs of every hart instead of a few per
/// probe.
pub fn register_many(builders: Vec<Kprobe>) -> Vec<Result<ProbeHandle>> {
    if builders.iter().any(|b| b.kind == ProbeType::AsyncFunc) {
        // An async probe registers probes of its own: one builder at a time.
        return builders
            .into_iter()
            .map(|b| match b.kind {
                ProbeType::AsyncFunc => b.register_async(),
                _ => b.register(),
            })
            .collect();
    }
    let Some(kp) = global::get() else {
        return builders
            .iter()
            .map(|_| Err(Error::NotInitialized))
            .collect();
    };
    let mut reg = match kp.registry() {
        Ok(reg) => reg,
        Err(e) => return builders.iter().map(|_| Err(e)).collect(),
    };
    let built: Vec<Result<(Arc<Probe>, Prepared)>> = builders
        .into_iter()
        .map(|b| b.build(kp, &mut reg))
        .collect();
    let ok: Vec<(Arc<Probe>, Prepared)> = built
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let mut installed = registry::install_many(kp, &mut reg, ok).into_iter();
    built
        .into_iter()
        .map(|r| {
            let (probe, _) = r?;
            match installed.next().unwrap_or(Err(Error::NoSpace)) {
                Ok(()) => Ok(ProbeHandle(probe)),
                Err(e) => {
                    if let Some(ret) = &probe.ret {
                        reg.free_stub(ret);
                    }
                    Err(e)
                }
            }
        })
        .collect()
}

/// Unregisters many probes at once (one result per handle, in order).
pub fn unregister_many(handles: Vec<ProbeHandle>) -> Vec<Result<()>> {
    let mut ids: Vec<u64> = handles.iter().map(|h| h.id()).collect();
    let n = ids.len();
    let Some(kp) = global::get() else {
        return ids.iter().map(|_| Err(Error::NotInitialized)).collect();
    };
    // The registry first: an async probe's companions are taken only when
    // they will be removed with it.
    let mut results = match kp.registry() {
        Ok(mut reg) => {
            ids.extend(crate::asyncprobe::take_companions(&ids));
            registry::remove_many(kp, &mut reg, &ids)
        }
        Err(e) => ids.iter().map(|_| Err(e)).collect(),
    };
    // Results for the handles given, not for their async companions.
    results.truncate(n);
    results
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
    /// A return probe's pool size (0 for other probes).
    pub fn maxactive(&self) -> usize {
        self.0.ret.as_ref().map_or(0, |r| r.maxactive())
    }
    /// Calls of a return probe whose return is still to come.
    pub fn in_flight(&self) -> usize {
        self.0.ret.as_ref().map_or(0, |r| r.in_flight())
    }
    pub fn is_registered(&self) -> bool {
        self.0.registered.load(Ordering::Acquire)
    }
    /// Removes the probe. Once this returns, none of its handlers runs
    /// any more and its shared slot (a breakpoint probe's) is free. Code
    /// it leaves behind may still be passed through: a detour (never
    /// rewritten or freed), whose copy of the instruction jumps back into
    /// the probed text, by a hart that was already on its way; and a
    /// return probe's stub, through which calls in flight still return
    /// (to their real callers, without the handler) until the last one
    /// has or `reclaim_stack` frees them. So text that is unloaded must
    /// not have been probed through a detour.
    pub fn unregister(self) -> Result<()> {
        unregister_id(self.0.id)
    }
}

/// Removes the probe with this id.
pub fn unregister_id(id: u64) -> Result<()> {
    let kp = global::get().ok_or(Error::NotInitialized)?;
    let mut ids = alloc::vec![id];
    let mut reg = kp.registry()?;
    ids.extend(crate::asyncprobe::take_companions(&ids));
    registry::remove_many(kp, &mut reg, &ids)
        .into_iter()
        .next()
        .unwrap_or(Err(Error::NotRegistered))
}

/// Removes every probe at `addr`; returns how many there were.
pub fn unregister_addr(addr: usize) -> Result<usize> {
    let kp = global::get().ok_or(Error::NotInitialized)?;
    // Async probes registered on `addr` sit on its poll function.
    let async_polls = crate::asyncprobe::polls_registered_at(addr);
    let mut reg = kp.registry()?;
    let mut ids: Vec<u64> = reg
        .probes
        .values()
        .filter(|p| p.addr == addr || async_polls.contains(&p.id))
        .map(|p| p.id)
        .collect();
    if ids.is_empty() {
        return Err(Error::NotRegistered);
    }
    let found = ids.len();
    ids.extend(crate::asyncprobe::take_companions(&ids));
    registry::remove_many(kp, &mut reg, &ids)
        .into_iter()
        .collect::<Result<Vec<()>>>()?;
    Ok(found)
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
    /// For a return probe: its instance pool size and calls in flight.
    pub maxactive: Option<usize>,
    pub in_flight: usize,
    /// Placed as a jump to a detour (a hit takes no trap), not as a
    /// breakpoint.
    pub jump: bool,
    /// The address of the next instruction when the jump covers it too (a
    /// compressed instruction's, see `arch/riscv/region.rs`). A probe
    /// placed there later makes this one a breakpoint first.
    pub covers: Option<usize>,
    /// The probed instruction (the original, whatever the text now holds
    /// there), e.g. `c.addi`.
    pub mnemonic: &'static str,
}

/// All registered probes, by id.
pub fn probes() -> Vec<ProbeInfo> {
    let Some(kp) = global::get() else {
        return Vec::new();
    };
    let Some(reg) = kp.registry_read() else {
        return Vec::new();
    };
    reg.probes.values().map(|p| info(kp, p)).collect()
}

fn info(kp: &Kprobes, p: &Probe) -> ProbeInfo {
    use alloc::format;
    let point = kp.table.lookup(p.addr);
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
        maxactive: p.ret.as_ref().map(|r| r.maxactive()),
        in_flight: p.ret.as_ref().map_or(0, |r| r.in_flight()),
        // The caller holds the registry, so the point cannot go away.
        jump: point.is_some_and(|pt| pt.jump().is_some()),
        covers: point
            .filter(|pt| pt.second.is_some())
            .map(|pt| pt.addr + pt.prepared.len()),
        mnemonic: point.map_or("", |pt| pt.prepared.mnemonic),
    }
}

/// Whether addresses probed from now on may get jump probes (a `jal` to a
/// detour, no trap per hit) where the architecture allows; off: always a
/// breakpoint. Probes already placed keep their kind. Returns the previous
/// setting. The initial one is `Config::jump_probes`; if that was off, no
/// detour area was set aside and turning this on changes nothing.
pub fn set_jump_probes(on: bool) -> bool {
    global::get().is_some_and(|kp| kp.jump_probes.swap(on, Ordering::Relaxed))
}

/// The current `set_jump_probes` setting.
pub fn jump_probes() -> bool {
    global::get().is_some_and(|kp| kp.jump_probes.load(Ordering::Relaxed))
}

/// Slots in use, for memory accounting.
pub fn slots_in_use() -> usize {
    global::get()
        .and_then(|kp| kp.registry_read())
        .map_or(0, |r| r.slots_in_use())
}

/// Memory the library uses for probes, for the benchmark's accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Probed addresses.
    pub points: usize,
    /// Registered probes.
    pub probes: usize,
    /// Bytes of executable slot memory in use: shared slots, return
    /// probes' stubs and every detour written (detours are never freed).
    pub slot_bytes: usize,
    /// Bytes of bookkeeping: points, probes and their lists, return
    /// probes' pools of calls in flight (handlers' own captures not
    /// included), plus the fixed lookup table.
    pub bookkeeping_bytes: usize,
    /// Of `bookkeeping_bytes`, the fixed part allocated at `init`.
    pub fixed_bytes: usize,
    /// Detours (jump probes, compressed copies) that can still be
    /// written; at 0 new addresses get breakpoints and shared slots.
    pub detours_free: usize,
}

/// Current memory use.
pub fn memory_stats() -> MemoryStats {
    use crate::arch::current::SLOT_SIZE;
    use crate::point::ProbePoint;
    use core::mem::size_of;
    let Some(kp) = global::get() else {
        return MemoryStats::default();
    };
    let Some(reg) = kp.registry_read() else {
        return MemoryStats::default();
    };
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
    // Return probes' calls in flight, unregistered ones' with calls left
    // included (their stubs are in `slot_bytes`).
    let call_pools: usize = reg
        .probes
        .values()
        .chain(reg.zombies())
        .filter_map(|p| p.ret.as_ref())
        .map(|r| r.calls.bytes())
        .sum();
    MemoryStats {
        points,
        probes,
        slot_bytes: reg.slots_in_use() * SLOT_SIZE + reg.detour_bytes(),
        bookkeeping_bytes: fixed
            + points * size_of::<ProbePoint>()
            + probes * per_probe
            + call_pools,
        fixed_bytes: fixed,
        detours_free: reg.detours_free(kp),
    }
}
