//! Calls in flight of a return probe (kernel `retprobe.rs`, one pool per
//! probe; uretprobes, one pool per process in `uprobe/state.rs`): a
//! bounded pool, taken and released without locks.
//!
//! A kernel return comes back through its own call's entry in the probe's
//! stub, which names the slot (`returning`, no search). A uretprobe's
//! return is found by the stack pointer, which a function restores before
//! it returns (`find`); tail calls into probed functions share one, and
//! then the newest call (highest `seq`) is the one returning. Two bit
//! masks keep the hit path short: `taken` (a free slot is one
//! `amoor` away) and `ready` (a return looks only at calls in
//! flight, not at the whole pool).

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

/// What a return needs of its call, one cache line per call (no two harts
/// write the same line for calls of their own; and a slot's address is
/// one shift from its index).
#[derive(Default)]
#[repr(C, align(64))]
struct Slot {
    ret_addr: AtomicUsize,
    sp: AtomicUsize,
    // Atomic words: a uretprobe pool's cold paths (`reclaim_thread`,
    // `fork`) are safe functions, and an OS passing them a live thread
    // must not make this a data race. A kernel pool hands a slot's data
    // to its entry handler in place: before the call is published
    // (`Claim::zeroed_data`), or, for a function probe, just after
    // (`Claim::publish_zeroed`: nothing reads a call's data before it
    // returns, which it cannot do before its entry handler is done); only
    // `reclaim_stack`, an unsafe function, could free it under a live
    // call.
    data: [AtomicUsize; 4],
}

/// Who made a call, for pools whose calls are found by `sp` (uprobes').
#[derive(Default)]
struct Owner {
    /// Whatever the pool's owner keeps per call (the uprobe's id).
    tag: AtomicU64,
    /// The thread that made the call: its calls go when it exits, and a
    /// fork keeps only the forker's.
    thread: AtomicU64,
    /// Tells the newest of several calls with one `sp` (tail calls).
    seq: AtomicU64,
}

pub(crate) struct CallPool {
    slots: Box<[Slot]>,
    /// Word `i / 64` holds the bits `1 << (i % 64)` of slot `i`.
    masks: Box<[Masks]>,
    /// For a pool `with_owners` (else `None`: a return probe's pool is no
    /// bigger for them).
    owners: Option<Box<Owners>>,
}

struct Owners {
    /// One per slot.
    of: Box<[Owner]>,
    next_seq: AtomicU64,
}

/// The state bits of 64 slots.
struct Masks {
    /// Taken (claimed or ready). The bits past the last slot are set for
    /// good.
    taken: AtomicU64,
    /// The slot's fields are written and its call is in flight. Set after
    /// the fields (release), cleared before the slot is freed.
    ready: AtomicU64,
}

impl Masks {
    /// Frees a slot (a call that returned, or a claim its entry handler
    /// cancelled). The ready bit first: once the slot is free, another
    /// call may claim it and set the bit again.
    #[inline(always)]
    fn release(&self, bit: u64) {
        self.ready.fetch_and(!bit, Ordering::Release);
        self.taken.fetch_and(!bit, Ordering::Release);
    }
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
    /// A pool of `n` slots (at least one) whose calls are found by index
    /// (`returning`): a kernel return probe's.
    pub fn new(n: usize) -> Self {
        Self::with(n, false)
    }

    /// A pool of `n` slots whose calls carry their owner (`fill`) and are
    /// found by `sp` (`find`, `take`): a process's uretprobes.
    pub fn with_owners(n: usize) -> Self {
        Self::with(n, true)
    }

    fn with(n: usize, owners: bool) -> Self {
        let n = n.max(1);
        let words = n.div_ceil(64);
        let past_end = |w: usize| match n - w * 64 {
            k if k >= 64 => 0,
            k => !((1u64 << k) - 1),
        };
        CallPool {
            slots: (0..n).map(|_| Slot::default()).collect(),
            owners: owners.then(|| {
                Box::new(Owners {
                    of: (0..n).map(|_| Owner::default()).collect(),
                    next_seq: AtomicU64::new(0),
                })
            }),
            masks: (0..words)
                .map(|w| Masks {
                    taken: AtomicU64::new(past_end(w)),
                    ready: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Bytes the pool holds.
    pub fn bytes(&self) -> usize {
        use core::mem::size_of;
        self.slots.len() * size_of::<Slot>()
            + self
                .owners
                .as_ref()
                .map_or(0, |o| size_of::<Owners>() + o.of.len() * size_of::<Owner>())
            + self.masks.len() * size_of::<Masks>()
    }

    /// Claims a free slot for a call; `None` when the pool is full.
    /// The lowest free slot of the first 64 is tried first, with one
    /// `amoor`; anything else (a race lost, a busy first word) takes the
    /// full search, out of line.
    #[inline(always)]
    pub fn claim(&self) -> Option<Claim<'_>> {
        match self.claim_first() {
            Some(c) => Some(c),
            // SAFETY: just claimed.
            None => self.claim_any().map(|i| unsafe { self.claimed(i) }),
        }
    }

    /// `claim`'s first try alone: the lowest free slot of the first 64.
    #[inline(always)]
    pub fn claim_first(&self) -> Option<Claim<'_>> {
        // SAFETY: a pool has a slot at least, so a mask word (`with`).
        let masks = unsafe { self.masks.get_unchecked(0) };
        let free = !masks.taken.load(Ordering::Relaxed);
        if free == 0 {
            return None;
        }
        let i = lowest(free);
        let bit = 1 << i;
        // One `amoor`: setting a bit another hart set first changes
        // nothing, and then `claim_any` tries the next free one.
        let was = masks.taken.fetch_or(bit, Ordering::Acquire);
        (was & bit == 0).then_some(Claim {
            pool: self,
            // SAFETY: the bits past the last slot stay set, so a bit taken
            // names a slot.
            slot: unsafe { self.slots.get_unchecked(i) },
            masks,
            bit,
            index: i,
        })
    }

    /// The claim of slot `index`.
    ///
    /// # Safety
    /// `index` must be a slot this caller claimed, not yet published or
    /// cancelled.
    #[inline(always)]
    pub unsafe fn claimed(&self, index: usize) -> Claim<'_> {
        // SAFETY: a claimed index is below the capacity (`claim`).
        let at = unsafe { self.at_unchecked(index) };
        Claim {
            pool: self,
            slot: at.slot,
            masks: at.masks,
            bit: at.bit,
            index,
        }
    }

    /// `claim` with its full search inlined too: a caller that makes no
    /// call keeps no registers (a function probe's light way in).
    #[inline(always)]
    pub fn claim_inline(&self) -> Option<Claim<'_>> {
        match self.claim_first() {
            Some(c) => Some(c),
            // SAFETY: just claimed.
            None => self.claim_scan().map(|i| unsafe { self.claimed(i) }),
        }
    }

    /// `claim`'s full search, out of line; the index claimed.
    #[inline(never)]
    #[link_section = ".text.rkprobes"]
    fn claim_any(&self) -> Option<usize> {
        self.claim_scan()
    }

    /// Every word, retrying a bit another hart set first.
    #[inline(always)]
    fn claim_scan(&self) -> Option<usize> {
        for (w, masks) in self.masks.iter().enumerate() {
            let mut cur = masks.taken.load(Ordering::Relaxed);
            while cur != u64::MAX {
                let i = lowest(!cur);
                let bit = 1 << i;
                let was = masks.taken.fetch_or(bit, Ordering::Acquire);
                if was & bit != 0 {
                    cur = was | bit;
                    continue;
                }
                return Some(w * 64 + i);
            }
        }
        None
    }

    /// The slots whose calls are in flight (their fields written: the
    /// acquire load of each mask word pairs with `publish`'s release). For
    /// the cold paths (reclaim, fork); `find` walks the masks itself.
    #[inline(always)]
    fn ready_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.masks.iter().enumerate().flat_map(|(w, masks)| {
            let mut bits = masks.ready.load(Ordering::Acquire);
            core::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let i = lowest(bits);
                    bits &= bits - 1;
                    w * 64 + i
                })
            })
        })
    }

    /// The newest call in flight entered with `sp`, for its return. On the
    /// return path:
    /// plain loops, not `ready_slots` (iterator adapters are generic code
    /// the kernel may keep out of line under `core::` names, where a probe
    /// would make every return a nested hit).
    #[inline(always)]
    pub fn find(&self, sp: usize) -> Option<Found<'_>> {
        let mut best: Option<(At<'_>, u64)> = None;
        for (w, masks) in self.masks.iter().enumerate() {
            let mut bits = masks.ready.load(Ordering::Acquire);
            while bits != 0 {
                let i = lowest(bits);
                bits &= bits - 1;
                let index = w * 64 + i;
                let Some(slot) = self.slots.get(index) else {
                    break; // never: ready bits are claimed slots
                };
                if slot.sp.load(Ordering::Relaxed) == sp {
                    let seq = self.owner(index, |o| o.seq.load(Ordering::Relaxed));
                    if best.as_ref().is_none_or(|&(_, s)| seq > s) {
                        let bit = 1 << i;
                        let at = At {
                            slot,
                            masks,
                            bit,
                            index,
                        };
                        best = Some((at, seq));
                    }
                }
            }
        }
        best.map(|(at, _)| Found { at })
    }

    /// The call in flight in slot `i`, entered with `sp`, for its return;
    /// `None` if there is none (its slot was freed, or taken by another
    /// call since).
    #[inline(always)]
    pub fn returning(&self, i: usize, sp: usize) -> Option<Found<'_>> {
        Self::found_if(self.at(i)?, sp, Ordering::Acquire)
    }

    /// `returning` for slot `i` without the bounds check (a kernel
    /// return probe's stub names only its pool's slots), the ready bit
    /// read without a fence: the call's fields are this hart's own
    /// writes, or, for a task that moved, ordered by the OS's switch.
    ///
    /// # Safety
    /// `i` must be below the capacity.
    #[inline(always)]
    pub unsafe fn returning_at(&self, i: usize, sp: usize) -> Option<Found<'_>> {
        // SAFETY: per the contract.
        Self::found_if(unsafe { self.at_unchecked(i) }, sp, Ordering::Relaxed)
    }

    /// The call at `at`, if it is in flight and was entered with `sp`
    /// (its ready bit read with `order`).
    #[inline(always)]
    fn found_if(at: At<'_>, sp: usize, order: Ordering) -> Option<Found<'_>> {
        let ready = at.masks.ready.load(order) & at.bit != 0;
        (ready && at.slot.sp.load(Ordering::Relaxed) == sp).then_some(Found { at })
    }

    /// Ends a call `publish_zeroed` put in flight whose entry handler
    /// cancelled it.
    #[cold]
    #[inline(never)]
    #[link_section = ".text.rkprobes"]
    pub fn unpublish(&self, i: usize) {
        if let Some(at) = self.at(i) {
            at.masks.release(at.bit);
        }
    }

    /// Slot `i` and its bit, if the pool has one.
    #[inline(always)]
    fn at(&self, index: usize) -> Option<At<'_>> {
        // SAFETY: checked against the capacity first.
        (index < self.capacity()).then(|| unsafe { self.at_unchecked(index) })
    }

    /// `at` without the check.
    ///
    /// # Safety
    /// `index` must be below the capacity.
    #[inline(always)]
    unsafe fn at_unchecked(&self, index: usize) -> At<'_> {
        debug_assert!(index < self.capacity());
        // SAFETY: per the contract; there is a mask word for every 64
        // slots (`with`).
        unsafe {
            At {
                slot: self.slots.get_unchecked(index),
                masks: self.masks.get_unchecked(index / 64),
                bit: 1 << (index % 64),
                index,
            }
        }
    }

    /// A word of slot `index`'s owner; 0 in a pool without owners.
    #[inline(always)]
    fn owner(&self, index: usize, word: impl Fn(&Owner) -> u64) -> u64 {
        self.owner_at(index).map_or(0, word)
    }

    #[inline(always)]
    fn owner_at(&self, index: usize) -> Option<&Owner> {
        self.owners.as_ref()?.of.get(index)
    }

    /// Takes the newest call entered with `sp`.
    #[inline(always)]
    pub fn take(&self, sp: usize) -> Option<Call> {
        let found = self.find(sp)?;
        let call = Call {
            tag: self.owner(found.at.index, |o| o.tag.load(Ordering::Relaxed)),
            ret_addr: found.ret_addr(),
            data: found.data(),
        };
        found.release();
        Some(call)
    }

    /// Slots taken (calls in flight and claims being filled in).
    pub fn in_flight(&self) -> usize {
        let bits: usize = self
            .masks
            .iter()
            .map(|m| m.taken.load(Ordering::Acquire).count_ones() as usize)
            .sum();
        bits - (self.masks.len() * 64 - self.capacity())
    }

    /// Frees the calls in flight whose stack pointer lies in `stack`
    /// (frames that will never return); returns how many.
    pub fn reclaim(&self, stack: &Range<usize>) -> usize {
        self.release_where(|at| stack.contains(&at.slot.sp.load(Ordering::Relaxed)))
    }

    /// Frees the calls in flight of `thread`, which exited; returns how
    /// many. Only a pool `with_owners` knows its calls' threads.
    pub fn reclaim_thread(&self, thread: u64) -> usize {
        self.release_where(|at| {
            self.owner_at(at.index)
                .is_some_and(|o| o.thread.load(Ordering::Relaxed) == thread)
        })
    }

    fn release_where(&self, gone: impl Fn(&At<'_>) -> bool) -> usize {
        let mut n = 0;
        for at in self.ready_slots().filter_map(|i| self.at(i)) {
            if gone(&at) {
                at.masks.release(at.bit);
                n += 1;
            }
        }
        n
    }

    /// A copy for a child forked by `thread`: its calls in flight (the
    /// child has no other thread to return the others').
    pub fn fork(&self, thread: u64) -> Self {
        let copy = CallPool::with(self.capacity(), self.owners.is_some());
        if let (Some(from), Some(to)) = (&self.owners, &copy.owners) {
            to.next_seq
                .store(from.next_seq.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        let mine = |&i: &usize| self.owner(i, |o| o.thread.load(Ordering::Relaxed)) == thread;
        for i in self.ready_slots().filter(mine) {
            let (from, to) = (&self.slots[i], &copy.slots[i]);
            for (a, b) in [(&from.ret_addr, &to.ret_addr), (&from.sp, &to.sp)]
                .into_iter()
                .chain(from.data.iter().zip(to.data.iter()))
            {
                b.store(a.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            if let (Some(from), Some(to)) = (self.owner_at(i), copy.owner_at(i)) {
                for (a, b) in [(&from.tag, &to.tag), (&from.seq, &to.seq)] {
                    b.store(a.load(Ordering::Relaxed), Ordering::Relaxed);
                }
                to.thread.store(thread, Ordering::Relaxed);
            }
            let (masks, bit) = (&copy.masks[i / 64], 1 << (i % 64));
            masks.taken.fetch_or(bit, Ordering::Relaxed);
            masks.ready.fetch_or(bit, Ordering::Release);
        }
        copy
    }
}

/// Where a found call lives: its slot, its bit, its index.
struct At<'a> {
    slot: &'a Slot,
    masks: &'a Masks,
    bit: u64,
    index: usize,
}

/// A slot claimed for a call: its entry handler runs, then the call is
/// published or the claim cancelled. Only the claimer touches a claimed
/// slot until it is published: the other paths look at ready slots only.
pub(crate) struct Claim<'a> {
    pool: &'a CallPool,
    slot: &'a Slot,
    /// The slot's mask word and bit in it.
    masks: &'a Masks,
    bit: u64,
    /// Below the pool's capacity (`claim`).
    index: usize,
}

impl<'a> Claim<'a> {
    /// The slot's index (a kernel return probe's return address names it).
    #[inline(always)]
    pub fn index(&self) -> usize {
        self.index
    }

    #[inline(always)]
    fn slot(&self) -> &'a Slot {
        self.slot
    }

    #[inline(always)]
    fn release(self) {
        self.masks.release(self.bit);
    }

    /// The call's data, zeroed (again on every call of this), for its
    /// entry handler to fill in place (`publish` then hands it to the
    /// return).
    #[inline(always)]
    pub fn zeroed_data(&mut self) -> &mut RetData {
        // SAFETY: nobody else reads or writes a claimed slot before it is
        // published (the cold paths and returns look at ready slots only),
        // and the borrow of `self` ends before `publish`.
        unsafe { &mut *self.zero_data() }
    }

    /// The slot's data, zeroed, as plain words (`[AtomicUsize; 4]` has the
    /// layout of `[usize; 4]`, and its cells may be written through a
    /// shared reference).
    #[inline(always)]
    fn zero_data(&self) -> *mut RetData {
        let data = &self.slot().data;
        for d in data {
            d.store(0, Ordering::Relaxed);
        }
        data.as_ptr().cast_mut().cast::<RetData>()
    }

    /// Puts the call in flight: entered with `sp`, returning to
    /// `ret_addr`, with the data its entry handler left in `data`. Its
    /// return finds it by index (`returning`). For a pool without owners
    /// (`new`); `fill` for one `with_owners`, whose calls are found by
    /// `sp`.
    #[inline(always)]
    pub fn publish(self, sp: usize, ret_addr: usize) {
        debug_assert!(
            self.pool.owners.is_none(),
            "`publish` on a pool that `fill`s"
        );
        self.put(sp, ret_addr);
    }

    #[inline(always)]
    fn put(self, sp: usize, ret_addr: usize) {
        let slot = self.slot();
        slot.ret_addr.store(ret_addr, Ordering::Relaxed);
        slot.sp.store(sp, Ordering::Relaxed);
        self.masks.ready.fetch_or(self.bit, Ordering::Release);
    }

    /// `publish` with the call's data zeroed, before its entry handler
    /// runs: the handler then fills the data in place (nothing reads a
    /// call's data before it returns, and it cannot return before its
    /// entry handler is done). `CallPool::unpublish` undoes it.
    #[inline(always)]
    pub fn publish_zeroed(self, sp: usize, ret_addr: usize) -> &'a mut RetData {
        debug_assert!(
            self.pool.owners.is_none(),
            "`publish_zeroed` on a pool that `fill`s"
        );
        let data = self.zero_data();
        self.put(sp, ret_addr);
        // SAFETY: the call is the caller's: only its return (after the
        // handler), `unpublish` or an unsafe `reclaim` ends it.
        unsafe { &mut *data }
    }

    /// `publish` for a call of `thread` (`tag`: the owner's word), with
    /// `data`, numbered so that `find` tells the newest of several calls
    /// with one `sp` (tail calls).
    #[inline(always)]
    pub fn fill(self, (tag, thread): (u64, u64), sp: usize, ret_addr: usize, data: &RetData) {
        debug_assert!(
            self.pool.owners.is_some(),
            "`fill` on a pool without owners"
        );
        if let Some(owners) = &self.pool.owners {
            // Checked, though `index` is below the capacity (`claim`):
            // without the check this path came out 6 instructions longer.
            let owner = &owners.of[self.index];
            let seq = owners.next_seq.fetch_add(1, Ordering::Relaxed);
            owner.seq.store(seq, Ordering::Relaxed);
            owner.tag.store(tag, Ordering::Relaxed);
            owner.thread.store(thread, Ordering::Relaxed);
        }
        let slot = self.slot();
        for (d, v) in slot.data.iter().zip(data) {
            d.store(*v, Ordering::Relaxed);
        }
        self.put(sp, ret_addr);
    }

    /// The entry handler cancelled: the slot is free again.
    #[inline(always)]
    pub fn cancel(self) {
        self.release();
    }
}

/// A call in flight found at its return; released once its return
/// handler is done.
pub(crate) struct Found<'a> {
    at: At<'a>,
}

impl Found<'_> {
    #[cfg(test)]
    pub fn index(&self) -> usize {
        self.at.index
    }

    #[inline(always)]
    pub fn ret_addr(&self) -> usize {
        self.at.slot.ret_addr.load(Ordering::Relaxed)
    }

    /// What the entry handler left, for the return handler.
    #[inline(always)]
    pub fn data(&self) -> RetData {
        core::array::from_fn(|k| self.at.slot.data[k].load(Ordering::Relaxed))
    }

    /// What the entry handler left, in place, until the call is released.
    #[inline(always)]
    pub fn data_ref(&self) -> &RetData {
        // SAFETY: `[AtomicUsize; 4]` has the layout of `[usize; 4]`. A
        // returning call's data is written by nobody: its entry handler
        // is done with it, and its slot is claimed again only after
        // `release`, which takes `self` (the borrow ends first).
        unsafe { &*self.at.slot.data.as_ptr().cast::<RetData>() }
    }

    #[inline(always)]
    pub fn release(self) {
        self.at.masks.release(self.at.bit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn push(p: &CallPool, tag: u64, sp: usize, ret: usize, d0: usize) -> bool {
        p.claim()
            .map(|c| c.fill((tag, 0), sp, ret, &[d0, 0, 0, 0]))
            .is_some()
    }

    #[test]
    fn newest_call_with_the_same_sp_returns_first() {
        let p = CallPool::with_owners(16);
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
        let p = CallPool::with_owners(4);
        let claim = p.claim().unwrap();
        let a = claim.index();
        assert!(p.find(0x100).is_none() && p.find(0).is_none());
        claim.fill((1, 0), 0x100, 0xa, &[0; 4]);
        let b = p.claim().unwrap();
        assert_ne!(a, b.index());
        b.cancel();
        assert_eq!(p.masks[0].ready.load(Ordering::Relaxed), 1 << a);
        assert_eq!(p.take(0x100).map(|c| c.ret_addr), Some(0xa));
        assert!(p.take(0x100).is_none());
        assert_eq!(
            (p.masks[0].ready.load(Ordering::Relaxed), p.in_flight()),
            (0, 0)
        );
        assert_eq!(p.claim().map(|c| c.index()), Some(a));
    }

    /// An entry handler fills its call's data in place: a slot used
    /// before hands out zeros, and the return sees what was written.
    #[test]
    fn claimed_data_starts_zeroed_and_reaches_the_return() {
        let p = CallPool::new(2);
        let mut c = p.claim().unwrap();
        let i = c.index();
        *c.zeroed_data() = [1, 2, 3, 4];
        c.publish(0x100, 0xa);
        let found = p.returning(i, 0x100).expect("in flight");
        assert_eq!(found.data(), [1, 2, 3, 4]);
        found.release();
        let mut again = p.claim().unwrap();
        assert_eq!(again.index(), i, "the same slot");
        assert_eq!(*again.zeroed_data(), [0; 4]);
        again.zeroed_data()[3] = 9;
        again.publish(0x200, 0xb);
        assert_eq!(p.returning(i, 0x200).map(|f| f.data()), Some([0, 0, 0, 9]));
    }

    /// A kernel return finds its call by slot index: only while the call
    /// is in flight (published, not yet released) with the same `sp`, in
    /// any mask word.
    #[test]
    fn returning_finds_a_call_by_index_only_while_in_flight() {
        let p = CallPool::new(70);
        let mut claims: Vec<_> = (0..66).map(|_| p.claim().unwrap()).collect();
        let mut last = claims.pop().unwrap();
        let i = last.index();
        assert_eq!(i, 65, "slots are claimed from the lowest");
        assert!(p.returning(i, 0x100).is_none(), "claimed, not published");
        last.zeroed_data()[0] = 7;
        last.publish(0x100, 0xabc);
        assert!(p.returning(i, 0x200).is_none(), "another sp");
        let found = p.returning(i, 0x100).expect("in flight");
        assert_eq!((found.ret_addr(), found.data()[0]), (0xabc, 7));
        found.release();
        assert!(p.returning(i, 0x100).is_none(), "released");
        assert!(p.returning(64, 0).is_none() && p.returning(70, 0).is_none());
        assert_eq!(p.in_flight(), 65);
        claims.into_iter().for_each(Claim::cancel);
        assert_eq!(p.in_flight(), 0);
    }

    /// Bounded at any size, across mask words; a full pool refuses and a
    /// freed slot is claimed again.
    #[test]
    fn pool_is_bounded_across_words() {
        for n in [1, 10, 63, 64, 65, 130] {
            let p = CallPool::with_owners(n);
            for i in 0..n {
                assert!(push(&p, 1, 0x1000 + i, 0, 0), "slot {i} of {n}");
            }
            assert!(!push(&p, 1, 99, 0, 0), "pool of {n} is full");
            assert_eq!(p.in_flight(), n);
            let last = 0x1000 + n - 1;
            assert!(p.take(last).is_some());
            assert!(push(&p, 1, 99, 0, 0));
            assert_eq!(p.find(99).map(|f| f.index()), Some(n - 1), "the freed slot");
        }
    }

    /// A function probe's call: published before its handler fills the
    /// data in place, found at its return by index, released after; a
    /// cancel takes it back at once.
    #[test]
    fn published_before_the_handler_and_found_by_index() {
        let p = CallPool::new(70);
        let first: Vec<_> = (0..64).map(|_| p.claim_first().unwrap()).collect();
        assert!(p.claim_first().is_none(), "the first word is full");
        let far = p.claim_inline().expect("the second word");
        assert_eq!(far.index(), 64);
        let data = far.publish_zeroed(0x100, 0xabc);
        assert_eq!(*data, [0; 4]);
        data[2] = 7;
        // SAFETY: 64 is below the capacity.
        let found = unsafe { p.returning_at(64, 0x100) }.expect("in flight");
        assert_eq!((found.ret_addr(), *found.data_ref()), (0xabc, [0, 0, 7, 0]));
        // SAFETY: as above.
        assert!(unsafe { p.returning_at(64, 0x200) }.is_none(), "another sp");
        found.release();
        // SAFETY: as above.
        assert!(unsafe { p.returning_at(64, 0x100) }.is_none(), "released");
        // Cancelled: free again, and never found.
        let c = p.claim_inline().unwrap();
        let i = c.index();
        c.publish_zeroed(0x300, 0xdef)[0] = 1;
        p.unpublish(i);
        // SAFETY: `i` was claimed from this pool.
        assert!(unsafe { p.returning_at(i, 0x300) }.is_none());
        assert_eq!(p.claim_inline().map(|c| c.index()), Some(i));
        first.into_iter().for_each(Claim::cancel);
        assert_eq!(p.in_flight(), 1);
    }

    #[test]
    fn reclaim_frees_only_frames_in_the_stack() {
        let p = CallPool::with_owners(8);
        assert!(push(&p, 0, 0x100, 1, 0));
        assert!(push(&p, 0, 0x180, 2, 0));
        assert!(push(&p, 0, 0x900, 3, 0));
        assert_eq!(p.reclaim(&(0x100..0x200)), 2);
        assert_eq!(p.in_flight(), 1);
        assert_eq!(p.take(0x900).map(|c| c.ret_addr), Some(3));
    }
}
