//! uretprobes: per-call instances of one process, found again at the
//! return by the user stack pointer (which a function restores before it
//! returns), as the kernel's `retprobe.rs`. A bounded pool per process,
//! taken and released without locks; a call that finds none runs
//! unprobed and counts as missed. The pool lives in the process's state:
//! exit and exec drop it, fork copies it (the child's stack is a copy).

use crate::point::RetData;
use alloc::boxed::Box;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// Calls in flight per process.
pub const MAX_INSTANCES: usize = 16;

const _: () = assert!(MAX_INSTANCES <= 32, "`ready` is a 32-bit mask");

const FREE: u8 = 0;
const CLAIMED: u8 = 1;
const READY: u8 = 2;

#[derive(Default)]
pub(crate) struct Instance {
    state: AtomicU8,
    probe: AtomicU64,
    ret_addr: AtomicUsize,
    sp: AtomicUsize,
    seq: AtomicU64,
    data: [AtomicUsize; 4],
}

/// What a return needs from its call's entry.
pub(crate) struct Call {
    pub probe: u64,
    pub ret_addr: usize,
    pub data: RetData,
}

pub(crate) struct Instances {
    pool: Box<[Instance]>,
    next_seq: AtomicU64,
    /// Bit i: instance i is `READY` (set after it is, cleared before it is
    /// freed), so a return looks at calls in flight only.
    ready: AtomicU32,
}

impl Instances {
    pub fn new() -> Self {
        Instances {
            pool: (0..MAX_INSTANCES).map(|_| Instance::default()).collect(),
            next_seq: AtomicU64::new(0),
            ready: AtomicU32::new(0),
        }
    }

    /// A copy for a forked child: the same calls in flight.
    pub fn fork(&self) -> Self {
        let copy = Instances::new();
        copy.next_seq
            .store(self.next_seq.load(Ordering::Relaxed), Ordering::Relaxed);
        let mut ready = 0;
        for (n, (from, to)) in self.pool.iter().zip(copy.pool.iter()).enumerate() {
            if from.state.load(Ordering::Acquire) != READY {
                continue;
            }
            to.probe
                .store(from.probe.load(Ordering::Relaxed), Ordering::Relaxed);
            to.ret_addr
                .store(from.ret_addr.load(Ordering::Relaxed), Ordering::Relaxed);
            to.sp
                .store(from.sp.load(Ordering::Relaxed), Ordering::Relaxed);
            to.seq
                .store(from.seq.load(Ordering::Relaxed), Ordering::Relaxed);
            for (a, b) in from.data.iter().zip(to.data.iter()) {
                b.store(a.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            to.state.store(READY, Ordering::Release);
            ready |= 1 << n;
        }
        copy.ready.store(ready, Ordering::Release);
        copy
    }

    /// Claims a free instance for a call; `None` when the pool is full.
    pub fn claim(&self) -> Option<usize> {
        self.pool.iter().position(|i| {
            i.state
                .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Gives back a claimed instance (the entry handler cancelled).
    pub fn unclaim(&self, index: usize) {
        self.pool[index].state.store(FREE, Ordering::Release);
    }

    /// Fills claimed instance `index`: a call entered with `sp` that
    /// returns to `ret_addr`.
    pub fn fill(&self, index: usize, probe: u64, sp: usize, ret_addr: usize, data: &RetData) {
        let inst = &self.pool[index];
        inst.probe.store(probe, Ordering::Relaxed);
        inst.ret_addr.store(ret_addr, Ordering::Relaxed);
        inst.sp.store(sp, Ordering::Relaxed);
        for (slot, v) in inst.data.iter().zip(data) {
            slot.store(*v, Ordering::Relaxed);
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        inst.seq.store(seq, Ordering::Relaxed);
        inst.state.store(READY, Ordering::Release);
        self.ready.fetch_or(1 << index, Ordering::Release);
    }

    #[cfg(test)]
    fn push(&self, probe: u64, sp: usize, ret_addr: usize, data: &RetData) -> bool {
        self.claim()
            .map(|i| self.fill(i, probe, sp, ret_addr, data))
            .is_some()
    }

    /// Takes the newest call entered with `sp` (tail calls into probed
    /// functions share one). Only the thread owning that stack takes its
    /// calls, so no other thread frees one of them meanwhile.
    pub fn pop(&self, sp: usize) -> Option<Call> {
        let mut bits = self.ready.load(Ordering::Acquire);
        let mut best: Option<(usize, u64)> = None;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let inst = &self.pool[i];
            if inst.state.load(Ordering::Acquire) == READY && inst.sp.load(Ordering::Relaxed) == sp
            {
                let seq = inst.seq.load(Ordering::Relaxed);
                if best.is_none_or(|(_, s)| seq > s) {
                    best = Some((i, seq));
                }
            }
        }
        let (i, _) = best?;
        let inst = &self.pool[i];
        let call = Call {
            probe: inst.probe.load(Ordering::Relaxed),
            ret_addr: inst.ret_addr.load(Ordering::Relaxed),
            data: core::array::from_fn(|i| inst.data[i].load(Ordering::Relaxed)),
        };
        // The bit first: once free, another call may claim it and set it.
        self.ready.fetch_and(!(1 << i), Ordering::Relaxed);
        inst.state.store(FREE, Ordering::Release);
        Some(call)
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.pool
            .iter()
            .filter(|i| i.state.load(Ordering::Relaxed) != FREE)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_call_with_the_same_sp_returns_first() {
        let p = Instances::new();
        assert!(p.push(1, 0x100, 0xa, &[1, 0, 0, 0]));
        assert!(p.push(2, 0x100, 0xb, &[2, 0, 0, 0]));
        assert!(p.push(3, 0x200, 0xc, &[3, 0, 0, 0]));
        let child = p.fork();
        assert_eq!(p.pop(0x100).map(|c| (c.probe, c.ret_addr)), Some((2, 0xb)));
        assert_eq!(p.pop(0x100).map(|c| c.data[0]), Some(1));
        assert!(p.pop(0x100).is_none());
        assert_eq!(p.in_flight(), 1);
        // The fork's copy still has all three.
        assert_eq!(child.in_flight(), 3);
        assert_eq!(child.pop(0x100).map(|c| c.ret_addr), Some(0xb));
    }

    /// A claimed call is found only once filled; a popped or cancelled
    /// one never again, and its instance is reused.
    #[test]
    fn only_ready_calls_return() {
        let p = Instances::new();
        let a = p.claim().unwrap();
        assert!(p.pop(0x100).is_none() && p.pop(0).is_none());
        p.fill(a, 1, 0x100, 0xa, &[0; 4]);
        let b = p.claim().unwrap();
        assert_ne!(a, b);
        p.unclaim(b);
        assert_eq!(p.ready.load(Ordering::Relaxed), 1 << a);
        assert_eq!(p.pop(0x100).map(|c| c.ret_addr), Some(0xa));
        assert!(p.pop(0x100).is_none());
        assert_eq!((p.ready.load(Ordering::Relaxed), p.in_flight()), (0, 0));
        assert_eq!(p.claim(), Some(a));
    }

    #[test]
    fn pool_is_bounded() {
        let p = Instances::new();
        for i in 0..MAX_INSTANCES {
            assert!(p.push(1, i, 0, &[0; 4]));
        }
        assert!(!p.push(1, 99, 0, &[0; 4]));
        assert!(p.pop(3).is_some());
        assert!(p.push(1, 99, 0, &[0; 4]));
    }
}
