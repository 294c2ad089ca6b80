//! Calls in flight of a return probe (kernel `retprobe.rs`, one pool per
//! probe; uretprobes, one pool per process in `uprobe/state.rs`): a
//! bounded pool, taken and released without locks.
//!
//! Each call is found again at its return by the stack pointer, which a
//! function restores before it returns; tail calls into probed functions
//! share one, and then the newest call (highest `seq`) is the one
//! returning. Two bit masks keep the hit path short: `taken` (a free slot
//! is one compare-and-swap away) and `ready` (a return looks only at calls
//! in flight, not at the whole pool).

use crate::point::RetData;
use alloc::boxed::Box;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What a return needs from its call's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    /// Whatever the owner keeps per call (the uprobe's id).
    pub tag: u64,
    pub ret_addr: usize,
    pub data: RetData,
}

#[derive(Default)]
struct Slot {
    tag: AtomicU64,
    /// The thread that made the call (0 where the owner has no threads):
    /// its calls go when it exits, and a fork keeps only the forker's.
    thread: AtomicU64,
    ret_addr: AtomicUsize,
    sp: AtomicUsize,
    seq: AtomicU64,
    data: [AtomicUsize; 4],
}

pub(crate) struct CallPool {
    slots: Box<[Slot]>,
    /// Bit `i % 64` of word `i / 64`: slot `i` is taken (claimed or ready).
    /// The bits past the last slot are set for good.
    taken: Box<[AtomicU64]>,
    /// Bit of slot `i`: its fields are written and its call is in flight.
    /// Set after the fields (release), cleared before the slot is freed.
    ready: Box<[AtomicU64]>,
    next_seq: AtomicU64,
}

fn bit(i: usize) -> (usize, u64) {
    (i / 64, 1 << (i % 64))
}

/// Index of the lowest set bit of `bits` (not zero). A shift loop, not
/// `trailing_zeros`: RV64GC has no count instruction (its software
/// version costs about ten), and the bits looked for here are the low
/// ones (pools are small and filled from slot 0).
#[inline(always)]
fn lowest(mut bits: u64) -> usize {
    let mut i = 0;
    while bits & 1 == 0 {
        bits >>= 1;
        i += 1;
    }
    i
}

impl CallPool {
    /// A pool of `n` slots (at least one).
    pub fn new(n: usize) -> Self {
        let n = n.max(1);
        let words = n.div_ceil(64);
        let past_end = |w: usize| match n - w * 64 {
            k if k >= 64 => 0,
            k => !((1u64 << k) - 1),
        };
        CallPool {
            slots: (0..n).map(|_| Slot::default()).collect(),
            taken: (0..words).map(|w| AtomicU64::new(past_end(w))).collect(),
            ready: (0..words).map(|_| AtomicU64::new(0)).collect(),
            next_seq: AtomicU64::new(0),
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Claims a free slot for a call; `None` when the pool is full.
    #[inline(always)]
    pub fn claim(&self) -> Option<usize> {
        for (w, word) in self.taken.iter().enumerate() {
            let mut cur = word.load(Ordering::Relaxed);
            while cur != u64::MAX {
                let i = lowest(!cur);
                match word.compare_exchange_weak(
                    cur,
                    cur | 1 << i,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(w * 64 + i),
                    Err(now) => cur = now,
                }
            }
        }
        None
    }

    /// Fills claimed slot `i`: a call of `thread` entered with `sp` that
    /// returns to `ret_addr`, now in flight.
    #[inline(always)]
    pub fn fill(
        &self,
        i: usize,
        (tag, thread): (u64, u64),
        sp: usize,
        ret_addr: usize,
        data: &RetData,
    ) {
        let slot = &self.slots[i];
        slot.tag.store(tag, Ordering::Relaxed);
        slot.thread.store(thread, Ordering::Relaxed);
        slot.ret_addr.store(ret_addr, Ordering::Relaxed);
        slot.sp.store(sp, Ordering::Relaxed);
        for (d, v) in slot.data.iter().zip(data) {
            d.store(*v, Ordering::Relaxed);
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        slot.seq.store(seq, Ordering::Relaxed);
        let (w, b) = bit(i);
        self.ready[w].fetch_or(b, Ordering::Release);
    }

    /// The slots whose calls are in flight (their fields written: the
    /// acquire load of each mask word pairs with `fill`'s release). For
    /// the cold paths (reclaim, fork); `find` walks the masks itself.
    #[inline(always)]
    fn ready_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.ready.iter().enumerate().flat_map(|(w, word)| {
            let mut bits = word.load(Ordering::Acquire);
            core::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let i = lowest(bits);
                    bits &= bits - 1;
                    w * 64 + i
                })
            })
        })
    }

    /// The newest call in flight entered with `sp`. On the return path:
    /// plain loops, not `ready_slots` (iterator adapters are generic code
    /// the kernel may keep out of line under `core::` names, where a probe
    /// would make every return a nested hit).
    #[inline(always)]
    pub fn find(&self, sp: usize) -> Option<usize> {
        let mut best: Option<(usize, u64)> = None;
        for (w, word) in self.ready.iter().enumerate() {
            let mut bits = word.load(Ordering::Acquire);
            while bits != 0 {
                let i = w * 64 + lowest(bits);
                bits &= bits - 1;
                let slot = &self.slots[i];
                if slot.sp.load(Ordering::Relaxed) == sp {
                    let seq = slot.seq.load(Ordering::Relaxed);
                    if best.is_none_or(|(_, s)| seq > s) {
                        best = Some((i, seq));
                    }
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// What the entry of the call in slot `i` left.
    #[inline(always)]
    pub fn call(&self, i: usize) -> Call {
        let slot = &self.slots[i];
        Call {
            tag: slot.tag.load(Ordering::Relaxed),
            ret_addr: slot.ret_addr.load(Ordering::Relaxed),
            data: core::array::from_fn(|k| slot.data[k].load(Ordering::Relaxed)),
        }
    }

    /// Frees slot `i` (a call that returned, or a claim its entry handler
    /// cancelled). The ready bit first: once the slot is free, another
    /// call may claim it and set the bit again.
    #[inline(always)]
    pub fn release(&self, i: usize) {
        let (w, b) = bit(i);
        self.ready[w].fetch_and(!b, Ordering::Release);
        self.taken[w].fetch_and(!b, Ordering::Release);
    }

    /// Takes the newest call entered with `sp`.
    pub fn take(&self, sp: usize) -> Option<Call> {
        let i = self.find(sp)?;
        let call = self.call(i);
        self.release(i);
        Some(call)
    }

    /// Slots taken (calls in flight and claims being filled in).
    pub fn in_flight(&self) -> usize {
        let bits: usize = self
            .taken
            .iter()
            .map(|w| w.load(Ordering::Acquire).count_ones() as usize)
            .sum();
        bits - (self.taken.len() * 64 - self.capacity())
    }

    /// Frees the calls in flight whose stack pointer lies in `stack`
    /// (frames that will never return); returns how many.
    pub fn reclaim(&self, stack: &Range<usize>) -> usize {
        self.release_where(|slot| stack.contains(&slot.sp.load(Ordering::Relaxed)))
    }

    /// Frees the calls in flight of `thread`, which exited; returns how
    /// many.
    pub fn reclaim_thread(&self, thread: u64) -> usize {
        self.release_where(|slot| slot.thread.load(Ordering::Relaxed) == thread)
    }

    fn release_where(&self, gone: impl Fn(&Slot) -> bool) -> usize {
        let mut n = 0;
        for i in self.ready_slots() {
            if gone(&self.slots[i]) {
                self.release(i);
                n += 1;
            }
        }
        n
    }

    /// A copy for a child forked by `thread`: its calls in flight (the
    /// child has no other thread to return the others').
    pub fn fork(&self, thread: u64) -> Self {
        let copy = CallPool::new(self.capacity());
        copy.next_seq
            .store(self.next_seq.load(Ordering::Relaxed), Ordering::Relaxed);
        let mine = |&i: &usize| self.slots[i].thread.load(Ordering::Relaxed) == thread;
        for i in self.ready_slots().filter(mine) {
            let (from, to) = (&self.slots[i], &copy.slots[i]);
            for (a, b) in [(&from.ret_addr, &to.ret_addr), (&from.sp, &to.sp)]
                .into_iter()
                .chain(from.data.iter().zip(to.data.iter()))
            {
                b.store(a.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            for (a, b) in [(&from.tag, &to.tag), (&from.seq, &to.seq)] {
                b.store(a.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            to.thread.store(thread, Ordering::Relaxed);
            let (w, b) = bit(i);
            copy.taken[w].fetch_or(b, Ordering::Relaxed);
            copy.ready[w].fetch_or(b, Ordering::Release);
        }
        copy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(p: &CallPool, tag: u64, sp: usize, ret: usize, d0: usize) -> bool {
        p.claim()
            .map(|i| p.fill(i, (tag, 0), sp, ret, &[d0, 0, 0, 0]))
            .is_some()
    }

    #[test]
    fn newest_call_with_the_same_sp_returns_first() {
        let p = CallPool::new(16);
        assert!(push(&p, 1, 0x100, 0xa, 1));
        assert!(push(&p, 2, 0x100, 0xb, 2));
        assert!(push(&p, 3, 0x200, 0xc, 3));
        let child = p.fork(0);
        assert_eq!(p.take(0x100).map(|c| (c.tag, c.ret_addr)), Some((2, 0xb)));
        assert_eq!(p.take(0x100).map(|c| c.data[0]), Some(1));
        assert!(p.take(0x100).is_none());
        assert_eq!(p.in_flight(), 1);
        // The fork's copy still has all three.
        assert_eq!(child.in_flight(), 3);
        assert_eq!(child.take(0x100).map(|c| c.ret_addr), Some(0xb));
        assert_eq!(child.take(0x200).map(|c| (c.tag, c.data[0])), Some((3, 3)));
    }

    /// A claimed call is found only once filled; a taken or cancelled one
    /// never again, and its slot is reused.
    #[test]
    fn only_ready_calls_return() {
        let p = CallPool::new(4);
        let a = p.claim().unwrap();
        assert!(p.find(0x100).is_none() && p.find(0).is_none());
        p.fill(a, (1, 0), 0x100, 0xa, &[0; 4]);
        let b = p.claim().unwrap();
        assert_ne!(a, b);
        p.release(b);
        assert_eq!(p.ready[0].load(Ordering::Relaxed), 1 << a);
        assert_eq!(p.take(0x100).map(|c| c.ret_addr), Some(0xa));
        assert!(p.take(0x100).is_none());
        assert_eq!((p.ready[0].load(Ordering::Relaxed), p.in_flight()), (0, 0));
        assert_eq!(p.claim(), Some(a));
    }

    /// Bounded at any size, across mask words; a full pool refuses and a
    /// freed slot is claimed again.
    #[test]
    fn pool_is_bounded_across_words() {
        for n in [1, 10, 63, 64, 65, 130] {
            let p = CallPool::new(n);
            for i in 0..n {
                assert!(push(&p, 1, 0x1000 + i, 0, 0), "slot {i} of {n}");
            }
            assert!(!push(&p, 1, 99, 0, 0), "pool of {n} is full");
            assert_eq!(p.in_flight(), n);
            let last = 0x1000 + n - 1;
            assert!(p.take(last).is_some());
            assert!(push(&p, 1, 99, 0, 0));
            assert_eq!(p.find(99), Some(n - 1), "the freed slot");
        }
    }

    #[test]
    fn reclaim_frees_only_frames_in_the_stack() {
        let p = CallPool::new(8);
        assert!(push(&p, 0, 0x100, 1, 0));
        assert!(push(&p, 0, 0x180, 2, 0));
        assert!(push(&p, 0, 0x900, 3, 0));
        assert_eq!(p.reclaim(&(0x100..0x200)), 2);
        assert_eq!(p.in_flight(), 1);
        assert_eq!(p.take(0x900).map(|c| c.ret_addr), Some(3));
    }
}
