//! Registration, removal, and the process lifecycle (exec, fork, exit):
//! everything that changes the snapshot, serialised by the registry lock.
//! Never on the hit path.

use super::layout::{self, SLOT_PAGE_SIZE};
use super::os::{ProcessId, UprobeOs};
use super::state::{PathId, ProcState, Snapshot, UPoint, UProbe};
use super::{Target, Uprobe, UprobeHandle, Uprobes};
use crate::arch::current::{self as arch, breakpoint, Prepared};
use crate::calls::CallPool;
use crate::error::{Error, Result};
use crate::point::ProbeType;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub(crate) struct Registry {
    paths: Vec<String>,
    next_id: u64,
    /// Per process: the slot indices written into its slot page. A slot
    /// index is reused only when no live process has it, so a thread
    /// preempted inside a removed probe's slot still finds its code.
    installed: BTreeMap<ProcessId, BTreeSet<usize>>,
}

impl Registry {
    pub const fn new() -> Self {
        Registry {
            paths: Vec::new(),
            next_id: 1,
            installed: BTreeMap::new(),
        }
    }

    fn find_path(&self, path: &str) -> Option<PathId> {
        self.paths
            .iter()
            .position(|p| p == path)
            .map(|i| i as PathId)
    }

    fn intern(&mut self, path: &str) -> PathId {
        self.find_path(path).unwrap_or_else(|| {
            self.paths.push(path.into());
            (self.paths.len() - 1) as PathId
        })
    }

    fn path(&self, id: PathId) -> &str {
        &self.paths[id as usize]
    }

    fn alloc_slot(&self, snap: &Snapshot) -> Result<usize> {
        (1..layout::MAX_SLOTS)
            .find(|i| {
                !snap.slots.contains_key(i) && self.installed.values().all(|s| !s.contains(i))
            })
            .ok_or(Error::NoSpace)
    }

    /// Forgets removed points whose slot no live process holds.
    fn collect_slots(&self, snap: &mut Snapshot) {
        let points = &snap.points;
        snap.slots.retain(|i, p| {
            let live = points
                .get(&(p.path, p.addr))
                .is_some_and(|q| Arc::ptr_eq(p, q));
            live || self.installed.values().any(|s| s.contains(i))
        });
    }
}

/// Checks the place and decodes the instruction there from the file.
fn check(os: &dyn UprobeOs, path: &str, addr: usize, kind: ProbeType) -> Result<Prepared> {
    let text = os.text_range(path).ok_or(Error::UnknownPath)?;
    if !text.contains(&addr) {
        return Err(Error::OutsideText { addr });
    }
    if !addr.is_multiple_of(arch::INSN_ALIGN) {
        return Err(Error::Misaligned { addr });
    }
    let (start, _) = os
        .function_at(path, addr)
        .ok_or(Error::NoFunction { addr })?;
    let len_at = |a: usize| {
        let mut b = [0u8; 2];
        os.read_file_text(path, a, &mut b)
            .then(|| arch::insn_len_at(&b))
            .flatten()
    };
    if !layout::is_boundary(start, addr, len_at) {
        return Err(Error::NotInstructionBoundary {
            addr,
            function: start,
        });
    }
    let len = len_at(addr).ok_or(Error::OutsideText { addr })?;
    let mut bytes = [0u8; 4];
    if !os.read_file_text(path, addr, &mut bytes[..len.min(4)]) {
        return Err(Error::OutsideText { addr });
    }
    let prepared = arch::prepare(&bytes[..len.min(4)]).map_err(|(mnemonic, reason)| {
        Error::UnsupportedInstruction {
            addr,
            mnemonic,
            reason,
        }
    })?;
    match kind {
        ProbeType::SyncFunc if addr != start => Err(Error::NotFunctionEntry { addr }),
        ProbeType::AsyncFunc => Err(Error::UnsupportedType),
        _ => Ok(prepared),
    }
}

fn resolve(os: &dyn UprobeOs, path: &str, target: &Target) -> Result<usize> {
    Ok(match target {
        Target::Addr(a) => *a,
        Target::Offset(o) => os.text_range(path).ok_or(Error::UnknownPath)?.start + o,
        Target::Symbol(spec) => {
            os.text_range(path).ok_or(Error::UnknownPath)?;
            let (name, off) = layout::split_spec(spec).ok_or(Error::UnknownSymbol)?;
            let (addr, size) = os.elf_symbol(path, name).ok_or(Error::UnknownSymbol)?;
            if off >= size.max(1) {
                return Err(Error::UnknownSymbol);
            }
            addr + off
        }
    })
}

/// Writes `point`'s slot code and breakpoint into process `pid`.
fn install_point(os: &dyn UprobeOs, path: &str, pid: ProcessId, slot_va: usize, point: &UPoint) {
    if point.slot != 0 {
        let at = slot_va + layout::slot_offset(point.slot);
        let code = layout::slot_code(point.prepared.insn, at, point.addr);
        os.write_user_text(pid, path, at, &code);
    }
    for store in breakpoint::arm(point.prepared.insn, point.addr).steps() {
        os.write_user_text(pid, path, point.addr + store.offset, store.bytes());
    }
}

fn remove_point(os: &dyn UprobeOs, path: &str, pid: ProcessId, point: &UPoint) {
    for store in breakpoint::disarm(point.prepared.insn, point.addr).steps() {
        os.write_user_text(pid, path, point.addr + store.offset, store.bytes());
    }
}

impl Uprobes {
    fn os(&self) -> Result<&'static dyn UprobeOs> {
        self.os.get().copied().ok_or(Error::NotInitialized)
    }

    /// The registry, unless called from a handler (whose hit path a
    /// writer would wait for).
    fn lock(&self) -> Result<(&'static dyn UprobeOs, spin::MutexGuard<'_, Registry>)> {
        let os = self.os()?;
        if self.published.is_in_handler(os.hart_id()) {
            return Err(Error::InHandler);
        }
        Ok((os, self.registry.lock()))
    }

    /// A new record for `pid` running `path`, its slot page mapped, every
    /// point of `path` installed (after the snapshot holding it is out).
    fn new_record(
        os: &dyn UprobeOs,
        reg: &mut Registry,
        snap: &mut Snapshot,
        pid: ProcessId,
        path: PathId,
    ) -> Option<Arc<ProcState>> {
        let slot_va = os.map_slot_page(pid, reg.path(path))?;
        let installed = snap
            .points
            .range((path, 0)..=(path, usize::MAX))
            .map(|(_, p)| p.slot)
            .filter(|&s| s != 0)
            .collect();
        reg.installed.insert(pid, installed);
        let state = Arc::new(ProcState {
            pid,
            path,
            slot_va,
            instances: CallPool::with_owners(super::MAX_INSTANCES),
        });
        snap.procs.insert(pid, state.clone());
        Some(state)
    }

    fn install_all(os: &dyn UprobeOs, path: &str, snap: &Snapshot, state: &ProcState) {
        let trampoline = layout::trampoline_code();
        os.write_user_text(state.pid, path, state.slot_va, &trampoline);
        for (_, point) in snap
            .points
            .range((state.path, 0)..=(state.path, usize::MAX))
        {
            install_point(os, path, state.pid, state.slot_va, point);
        }
    }

    pub(crate) fn register(&self, b: Uprobe) -> Result<UprobeHandle> {
        let (os, mut guard) = self.lock()?;
        let reg = &mut *guard;
        let addr = resolve(os, &b.path, &b.target)?;
        let prepared = check(os, &b.path, addr, b.kind)?;
        let mut snap = self.published.get();
        let path = reg.intern(&b.path);
        let probe = Arc::new(UProbe {
            id: reg.next_id,
            path,
            addr,
            kind: b.kind,
            pre: b.pre,
            post: b.post,
            hits: AtomicU64::new(0),
            missed: AtomicU64::new(0),
            registered: AtomicBool::new(true),
        });
        let existing = snap.points.get(&(path, addr)).cloned();
        let slot = match &existing {
            Some(p) => p.slot,
            None if prepared.needs_slot() => reg.alloc_slot(&snap)?,
            None => 0,
        };
        reg.next_id += 1;
        let probes = existing
            .iter()
            .flat_map(|p| p.probes.iter().cloned())
            .chain([probe.clone()])
            .collect();
        let point = Arc::new(UPoint::new(path, addr, prepared, slot, probes));
        snap.points.insert((path, addr), point.clone());
        if slot != 0 {
            snap.slots.insert(slot, point.clone());
        }
        snap.probes.insert(probe.id, probe.clone());
        // Processes already running the program: new ones get a record
        // (slot page and every point), known ones this point.
        let mut fresh = Vec::new();
        let mut known = Vec::new();
        for pid in os.processes_running(&b.path) {
            match snap.procs.get(&pid) {
                Some(state) if state.path == path => known.push(state.clone()),
                _ => fresh.extend(Self::new_record(os, reg, &mut snap, pid, path)),
            }
        }
        for state in &known {
            if slot != 0 {
                reg.installed.entry(state.pid).or_default().insert(slot);
            }
        }
        let path_str = reg.path(path);
        // Visible to the hit path before any breakpoint is.
        self.published.publish(snap.clone());
        for state in &fresh {
            Self::install_all(os, path_str, &snap, state);
        }
        if existing.is_none() {
            for state in &known {
                install_point(os, path_str, state.pid, state.slot_va, &point);
            }
        }
        Ok(UprobeHandle {
            probe,
            path: b.path,
        })
    }

    pub(crate) fn unregister(&self, id: u64) -> Result<()> {
        let (os, mut guard) = self.lock()?;
        let reg = &mut *guard;
        let mut snap = self.published.get();
        let probe = snap.probes.remove(&id).ok_or(Error::NotRegistered)?;
        probe.registered.store(false, Ordering::Release);
        let key = (probe.path, probe.addr);
        let point = snap.points.remove(&key).ok_or(Error::NotRegistered)?;
        let rest: Vec<_> = point
            .probes
            .iter()
            .filter(|p| p.id != id)
            .cloned()
            .collect();
        if rest.is_empty() {
            // The original instruction back in every process before the
            // point leaves the snapshot: a thread that trapped before
            // still finds it.
            let path = reg.path(point.path);
            for state in snap.procs.values().filter(|s| s.path == point.path) {
                remove_point(os, path, state.pid, &point);
            }
        } else {
            let next = Arc::new(UPoint::new(
                point.path,
                point.addr,
                point.prepared,
                point.slot,
                rest.into(),
            ));
            if next.slot != 0 {
                snap.slots.insert(next.slot, next.clone());
            }
            snap.points.insert(key, next);
        }
        reg.collect_slots(&mut snap);
        self.published.publish(snap);
        Ok(())
    }

    /// At exec (the process now runs its new program): forgets what the
    /// old image had, then installs the new program's probes.
    pub(crate) fn init_process(&self, pid: ProcessId) -> Result<()> {
        let (os, mut guard) = self.lock()?;
        let reg = &mut *guard;
        let mut snap = self.published.get();
        let had = snap.procs.remove(&pid).is_some() | reg.installed.remove(&pid).is_some();
        let path = os
            .process_path(pid)
            .and_then(|p| reg.find_path(&p))
            .filter(|&id| {
                snap.points
                    .range((id, 0)..=(id, usize::MAX))
                    .next()
                    .is_some()
            });
        let Some(path) = path else {
            if had {
                reg.collect_slots(&mut snap);
                self.published.publish(snap);
            }
            return Ok(());
        };
        let state = Self::new_record(os, reg, &mut snap, pid, path);
        reg.collect_slots(&mut snap);
        self.published.publish(snap.clone());
        if let Some(state) = state {
            Self::install_all(os, reg.path(path), &snap, &state);
        }
        Ok(())
    }

    /// Process `pid` exited: its record and calls in flight go.
    pub(crate) fn exit(&self, pid: ProcessId) {
        let Ok((_, mut guard)) = self.lock() else {
            return;
        };
        let reg = &mut *guard;
        let mut snap = self.published.get();
        if snap.procs.remove(&pid).is_some() | reg.installed.remove(&pid).is_some() {
            reg.collect_slots(&mut snap);
            self.published.publish(snap);
        }
    }

    /// `copy` makes the child (its memory a copy of `parent`'s, breakpoints
    /// and slot page included) while no probe can change; the child then
    /// gets the parent's record and calls in flight.
    pub(crate) fn fork<T, E>(
        &self,
        parent: ProcessId,
        copy: impl FnOnce() -> core::result::Result<(T, ProcessId), E>,
    ) -> core::result::Result<T, E> {
        let Ok((os, mut guard)) = self.lock() else {
            return copy().map(|(t, _)| t);
        };
        let reg = &mut *guard;
        let (t, child) = copy()?;
        // Called by the forking thread: the child is that thread alone.
        let thread = os.current_thread();
        let mut snap = self.published.get();
        if let Some(p) = snap.procs.get(&parent).cloned() {
            let state = ProcState {
                pid: child,
                path: p.path,
                slot_va: p.slot_va,
                instances: p.instances.fork(thread),
            };
            snap.procs.insert(child, Arc::new(state));
            let slots = reg.installed.get(&parent).cloned().unwrap_or_default();
            reg.installed.insert(child, slots);
            self.published.publish(snap);
        }
        Ok(t)
    }

    pub(crate) fn list_inner(&self) -> Vec<super::UprobeInfo> {
        let Ok((_, guard)) = self.lock() else {
            return Vec::new();
        };
        let snap = self.published.get();
        let mut out: Vec<_> = snap
            .probes
            .values()
            .map(|p| super::UprobeInfo {
                id: p.id,
                path: guard.path(p.path).into(),
                addr: p.addr,
                kind: p.kind,
                hits: p.hits.load(Ordering::Relaxed),
                missed: p.missed.load(Ordering::Relaxed),
            })
            .collect();
        out.sort_by_key(|p| p.id);
        out
    }

    /// Processes that have a slot page (for tests and statistics).
    pub(crate) fn probed_processes_inner(&self) -> Vec<(ProcessId, usize)> {
        let Ok((_, _guard)) = self.lock() else {
            return Vec::new();
        };
        let snap = self.published.get();
        snap.procs.values().map(|s| (s.pid, s.slot_va)).collect()
    }

    pub(crate) fn thread_exit_inner(&self, pid: ProcessId, thread: u64) -> usize {
        let Ok((_, _guard)) = self.lock() else {
            return 0;
        };
        let snap = self.published.get();
        snap.procs
            .get(&pid)
            .map_or(0, |s| s.instances.reclaim_thread(thread))
    }

    /// Calls in flight of process `pid`'s return probes.
    pub(crate) fn calls_in_flight_inner(&self, pid: ProcessId) -> usize {
        let Ok((_, _guard)) = self.lock() else {
            return 0;
        };
        let snap = self.published.get();
        snap.procs.get(&pid).map_or(0, |s| s.instances.in_flight())
    }
}

const _: () = assert!(SLOT_PAGE_SIZE.is_power_of_two());
