//! What the hit path reads: an immutable snapshot of every uprobe point and
//! every probed process, published with one atomic store and freed after a
//! grace period (an RCU-style scheme with two reader counters per hart,
//! as in SRCU, so a reader may even finish on another hart).
//!
//! Writers edit the snapshot's B-trees; `publish` also builds an [`Index`]
//! from them, the flat tables the hit path searches (sorted arrays and a
//! slot table), so a hit walks no tree and allocates nothing.

use super::layout::MAX_SLOTS;
use super::os::ProcessId;
use crate::arch::current::{Prepared, Run};
use crate::calls::CallPool;
use crate::point::{Post, Pre, ProbeType};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// An interned program path (index into the registry's path list).
pub(crate) type PathId = u32;

/// One registered uprobe.
pub(crate) struct UProbe {
    pub id: u64,
    pub path: PathId,
    pub addr: usize,
    pub kind: ProbeType,
    pub pre: Option<Pre>,
    pub post: Option<Post>,
    pub hits: AtomicU64,
    pub missed: AtomicU64,
    pub registered: AtomicBool,
}

impl UProbe {
    pub fn live(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }
}

/// One probed instruction of one program (all probes there).
pub(crate) struct UPoint {
    pub path: PathId,
    pub addr: usize,
    pub prepared: Prepared,
    /// What a hit does with the instruction, bound to `addr`.
    pub run: Run,
    /// Slot index in the slot page, 0 when simulated.
    pub slot: usize,
    pub probes: Box<[Arc<UProbe>]>,
    /// Some instruction probe here has a post handler (return probes'
    /// run at the return).
    pub has_post: bool,
    /// One instruction probe, no post handler, its pre handler (if any)
    /// a plain one: the hit path's short way.
    pub solo: bool,
}

impl UPoint {
    pub fn new(
        path: PathId,
        addr: usize,
        prepared: Prepared,
        slot: usize,
        probes: Box<[Arc<UProbe>]>,
    ) -> Self {
        let has_post = probes
            .iter()
            .any(|p| p.kind != ProbeType::SyncFunc && p.post.is_some());
        let solo = match &*probes {
            [p] => {
                p.kind != ProbeType::SyncFunc
                    && p.post.is_none()
                    && matches!(p.pre, None | Some(Pre::Fn(_)))
            }
            _ => false,
        };
        UPoint {
            path,
            addr,
            prepared,
            run: prepared.at(addr),
            slot,
            probes,
            has_post,
            solo,
        }
    }
}

/// A process that has the slot page and probes of its program.
pub(crate) struct ProcState {
    pub pid: ProcessId,
    pub path: PathId,
    pub slot_va: usize,
    pub instances: CallPool,
}

/// Everything the hit path looks up.
#[derive(Clone, Default)]
pub(crate) struct Snapshot {
    pub points: BTreeMap<(PathId, usize), Arc<UPoint>>,
    /// Slot index -> its point; a removed point stays here while some
    /// process may still step its slot.
    pub slots: BTreeMap<usize, Arc<UPoint>>,
    pub procs: BTreeMap<ProcessId, Arc<ProcState>>,
    /// Registered probes by id (return probes' returns find them here).
    pub probes: BTreeMap<u64, Arc<UProbe>>,
}

/// The points of one program, sorted by address.
#[derive(Default)]
struct PathPoints {
    addrs: Box<[usize]>,
    points: Box<[Arc<UPoint>]>,
}

/// The hit path's tables, built from a snapshot when it is published.
pub(crate) struct Index {
    /// Probed processes, sorted by pid, and their states.
    pids: Box<[ProcessId]>,
    procs: Box<[Arc<ProcState>]>,
    /// Indexed by path id.
    paths: Box<[PathPoints]>,
    /// Indexed by slot index (`MAX_SLOTS` entries).
    slots: Box<[Option<Arc<UPoint>>]>,
    /// Registered probes, sorted by id.
    probe_ids: Box<[u64]>,
    probes: Box<[Arc<UProbe>]>,
}

impl Index {
    fn new(snap: &Snapshot) -> Self {
        let paths_len = snap.points.keys().last().map_or(0, |k| k.0 as usize + 1);
        let mut paths: Vec<(Vec<usize>, Vec<Arc<UPoint>>)> =
            (0..paths_len).map(|_| Default::default()).collect();
        // B-tree order: by path, then address.
        for (&(path, addr), point) in &snap.points {
            let (addrs, points) = &mut paths[path as usize];
            addrs.push(addr);
            points.push(point.clone());
        }
        let mut slots: Vec<Option<Arc<UPoint>>> = (0..MAX_SLOTS).map(|_| None).collect();
        for (&i, point) in &snap.slots {
            slots[i] = Some(point.clone());
        }
        Index {
            pids: snap.procs.keys().copied().collect(),
            procs: snap.procs.values().cloned().collect(),
            paths: paths
                .into_iter()
                .map(|(a, p)| PathPoints {
                    addrs: a.into(),
                    points: p.into(),
                })
                .collect(),
            slots: slots.into(),
            probe_ids: snap.probes.keys().copied().collect(),
            probes: snap.probes.values().cloned().collect(),
        }
    }

    /// The state of probed process `pid`.
    #[inline(always)]
    pub fn proc(&self, pid: ProcessId) -> Option<&ProcState> {
        let i = self.pids.binary_search(&pid).ok()?;
        self.procs.get(i).map(|s| &**s)
    }

    /// The point of program `path` at `addr`.
    #[inline(always)]
    pub fn point(&self, path: PathId, addr: usize) -> Option<&UPoint> {
        let p = self.paths.get(path as usize)?;
        let i = p.addrs.binary_search(&addr).ok()?;
        p.points.get(i).map(|p| &**p)
    }

    /// The point stepped in slot `index`.
    #[inline(always)]
    pub fn slot(&self, index: usize) -> Option<&UPoint> {
        self.slots.get(index)?.as_deref()
    }

    /// A removed point of program `path` at `addr` whose slot is still in
    /// the slot page and passes `check` (a cold path: a scan).
    pub fn retired(
        &self,
        path: PathId,
        addr: usize,
        check: impl Fn(&UPoint) -> bool,
    ) -> Option<&UPoint> {
        self.slots
            .iter()
            .flatten()
            .map(|p| &**p)
            .find(|p| p.path == path && p.addr == addr && check(p))
    }

    /// Registered probe `id`.
    #[inline(always)]
    pub fn probe(&self, id: u64) -> Option<&UProbe> {
        let i = self.probe_ids.binary_search(&id).ok()?;
        self.probes.get(i).map(|p| &**p)
    }
}

/// A published snapshot with its index.
struct Hot {
    snap: Snapshot,
    index: Index,
}

const HART_SLOTS: usize = 64;

/// The published snapshot and its readers.
pub(crate) struct Published {
    current: AtomicPtr<Hot>,
    epoch: AtomicUsize,
    readers: [[AtomicUsize; 2]; HART_SLOTS],
    /// Per hart: handlers running (registration from one would wait for
    /// itself).
    in_handler: [AtomicUsize; HART_SLOTS],
}

/// A read-side critical section: the snapshot stays alive until drop.
pub(crate) struct Reader<'a> {
    counter: &'a AtomicUsize,
    index: Option<&'a Index>,
}

impl Reader<'_> {
    pub fn index(&self) -> Option<&Index> {
        self.index
    }
}

impl Drop for Reader<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Release);
    }
}

impl Published {
    pub const fn new() -> Self {
        Published {
            current: AtomicPtr::new(core::ptr::null_mut()),
            epoch: AtomicUsize::new(0),
            readers: [const { [AtomicUsize::new(0), AtomicUsize::new(0)] }; HART_SLOTS],
            in_handler: [const { AtomicUsize::new(0) }; HART_SLOTS],
        }
    }

    #[inline(always)]
    pub fn read(&self, hart: usize) -> Reader<'_> {
        // Which counter does not matter for safety (as `srcu_read_lock`
        // reads its index with a plain load): `synchronize` flips twice and
        // waits for both, and the increment below is what it must see.
        let idx = self.epoch.load(Ordering::Relaxed) & 1;
        let counter = &self.readers[hart % HART_SLOTS][idx];
        // Store-buffering against `publish` (swap `current`, then read the
        // counters): both sides SeqCst, so either the writer sees this
        // increment or this load sees the new snapshot.
        counter.fetch_add(1, Ordering::SeqCst);
        let p = self.current.load(Ordering::SeqCst);
        // SAFETY: a published snapshot is freed only after `synchronize`
        // saw this reader's counter drop to zero.
        let index = unsafe { p.as_ref() }.map(|h| &h.index);
        Reader { counter, index }
    }

    /// Runs a handler, marked so that it cannot register or unregister.
    #[inline(always)]
    pub fn in_handler<T>(&self, hart: usize, f: impl FnOnce() -> T) -> T {
        let c = &self.in_handler[hart % HART_SLOTS];
        c.fetch_add(1, Ordering::Relaxed);
        let r = f();
        c.fetch_sub(1, Ordering::Relaxed);
        r
    }

    pub fn is_in_handler(&self, hart: usize) -> bool {
        self.in_handler[hart % HART_SLOTS].load(Ordering::Relaxed) != 0
    }

    /// The current snapshot, for writers (who hold the registry lock).
    pub fn get(&self) -> Snapshot {
        // SAFETY: only writers, serialised by the registry lock, free
        // snapshots; the caller is one of them.
        unsafe { self.current.load(Ordering::Acquire).as_ref() }
            .map(|h| h.snap.clone())
            .unwrap_or_default()
    }

    /// Publishes `next` and frees the previous snapshot once no reader
    /// can hold it. Caller holds the registry lock.
    pub fn publish(&self, next: Snapshot) {
        let hot = Hot {
            index: Index::new(&next),
            snap: next,
        };
        let old = self
            .current
            .swap(Box::into_raw(Box::new(hot)), Ordering::SeqCst);
        self.synchronize();
        if !old.is_null() {
            // SAFETY: `old` came from `Box::into_raw` and no reader holds
            // it any more.
            drop(unsafe { Box::from_raw(old) });
        }
    }

    /// Waits until every reader that may have seen an older snapshot is
    /// gone: flips the epoch twice, each time waiting for the counters of
    /// the previous index to drain (new readers use the other one).
    fn synchronize(&self) {
        for _ in 0..2 {
            let old = self.epoch.fetch_add(1, Ordering::SeqCst) & 1;
            while self
                .readers
                .iter()
                .map(|r| r[old].load(Ordering::SeqCst))
                .sum::<usize>()
                != 0
            {
                core::hint::spin_loop();
            }
        }
    }
}
