//! The bounded table of future instances an async probe is following.
//!
//! Allocated once at registration; the hit path only flips atomics. An
//! instance is keyed by its state machine's address. A future is polled and
//! dropped through `&mut`/`Pin<&mut>`, so at most one hart at a time works
//! on a given key: the scan-then-claim below cannot create two entries for
//! one future, and an entry's fields are only written by the hart that
//! currently polls (or drops) that future. Freeing an entry is the release
//! store of `key = 0`.

use alloc::boxed::Box;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// What one instance did, reported at completion or cancellation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AsyncSummary {
    /// Polls seen, the last one included.
    pub polls: u64,
    /// Ticks from the entry of the first poll to completion (the exit of
    /// the last poll) or to the drop.
    pub total_ticks: u64,
    /// Ticks spent inside polls (entry to exit), summed.
    pub poll_ticks: u64,
    /// Bit `h` set: hart `h` polled the instance at least once.
    pub harts: usize,
}

#[derive(Default)]
struct Entry {
    /// Address of the future's state machine; 0: free.
    key: AtomicUsize,
    seq: AtomicU64,
    polls: AtomicU64,
    start: AtomicU64,
    poll_ticks: AtomicU64,
    harts: AtomicUsize,
}

/// A poll entry as the table saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Polled {
    /// Index of the instance's entry.
    pub slot: usize,
    /// The instance's number (1, 2, ..) in this probe's life.
    pub seq: u64,
    /// This poll's number, 1 for the first.
    pub poll: u64,
}

/// Counters of one async probe.
#[derive(Default)]
pub struct Counters {
    pub started: AtomicU64,
    pub completed: AtomicU64,
    pub cancelled: AtomicU64,
    pub polls: AtomicU64,
    /// Instances not followed because the table was full.
    pub missed: AtomicU64,
}

pub struct Table {
    entries: Box<[Entry]>,
    next_seq: AtomicU64,
    pub counters: Counters,
}

impl Table {
    pub fn new(capacity: usize) -> Self {
        Table {
            entries: (0..capacity.max(1)).map(|_| Entry::default()).collect(),
            next_seq: AtomicU64::new(1),
            counters: Counters::default(),
        }
    }

    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Instances being followed now.
    pub fn live(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.key.load(Ordering::Relaxed) != 0)
            .count()
    }

    fn find(&self, key: usize) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.key.load(Ordering::Acquire) == key)
    }

    /// A poll of the future at `key` begins on `hart` at `now`. Returns the
    /// entry and whether this is the instance's first poll, or `None` (a
    /// new instance and the table is full: counted as missed).
    pub fn poll_enter(&self, key: usize, hart: usize, now: u64) -> Option<(Polled, bool)> {
        self.counters.polls.fetch_add(1, Ordering::Relaxed);
        let (slot, first) = match self.find(key) {
            Some(i) => (i, false),
            None => (self.claim(key, now)?, true),
        };
        let e = &self.entries[slot];
        e.harts
            .fetch_or(1 << (hart % usize::BITS as usize), Ordering::Relaxed);
        let poll = e.polls.fetch_add(1, Ordering::Relaxed) + 1;
        let seq = e.seq.load(Ordering::Relaxed);
        Some((Polled { slot, seq, poll }, first))
    }

    fn claim(&self, key: usize, now: u64) -> Option<usize> {
        let Some(i) = self.entries.iter().position(|e| {
            e.key
                .compare_exchange(0, key, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        }) else {
            self.counters.missed.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let e = &self.entries[i];
        e.seq.store(
            self.next_seq.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        e.polls.store(0, Ordering::Relaxed);
        e.start.store(now, Ordering::Relaxed);
        e.poll_ticks.store(0, Ordering::Relaxed);
        e.harts.store(0, Ordering::Relaxed);
        self.counters.started.fetch_add(1, Ordering::Relaxed);
        Some(i)
    }

    /// The instance number and current poll number of `slot`.
    pub fn seq_poll(&self, slot: usize) -> (u64, u64) {
        let e = &self.entries[slot];
        (
            e.seq.load(Ordering::Relaxed),
            e.polls.load(Ordering::Relaxed),
        )
    }

    /// The poll that entered at `entered` returned at `now`.
    pub fn poll_exit(&self, slot: usize, entered: u64, now: u64) {
        self.entries[slot]
            .poll_ticks
            .fetch_add(now.saturating_sub(entered), Ordering::Relaxed);
    }

    fn summary(&self, slot: usize, now: u64) -> AsyncSummary {
        let e = &self.entries[slot];
        AsyncSummary {
            polls: e.polls.load(Ordering::Relaxed),
            total_ticks: now.saturating_sub(e.start.load(Ordering::Relaxed)),
            poll_ticks: e.poll_ticks.load(Ordering::Relaxed),
            harts: e.harts.load(Ordering::Relaxed),
        }
    }

    /// The instance in `slot` returned `Ready` at `now`: frees its entry.
    pub fn complete(&self, slot: usize, now: u64) -> AsyncSummary {
        let s = self.summary(slot, now);
        self.entries[slot].key.store(0, Ordering::Release);
        self.counters.completed.fetch_add(1, Ordering::Relaxed);
        s
    }

    /// The future at `key` is being dropped at `now`. If it is followed
    /// (so it never completed), frees its entry and returns its number and
    /// summary: it was cancelled.
    pub fn dropped(&self, key: usize, now: u64) -> Option<(u64, AsyncSummary)> {
        let slot = self.find(key)?;
        let seq = self.entries[slot].seq.load(Ordering::Relaxed);
        let s = self.summary(slot, now);
        self.entries[slot].key.store(0, Ordering::Release);
        self.counters.cancelled.fetch_add(1, Ordering::Relaxed);
        Some((seq, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    #[test]
    fn start_polls_complete() {
        let t = Table::new(4);
        let (p, first) = t.poll_enter(0x1000, 0, 10).unwrap();
        assert!(first);
        assert_eq!((p.seq, p.poll), (1, 1));
        t.poll_exit(p.slot, 10, 13);
        let (q, first) = t.poll_enter(0x1000, 2, 20).unwrap();
        assert!(!first);
        assert_eq!((q.slot, q.seq, q.poll), (p.slot, 1, 2));
        t.poll_exit(q.slot, 20, 24);
        let s = t.complete(q.slot, 24);
        assert_eq!(
            s,
            AsyncSummary {
                polls: 2,
                total_ticks: 14,
                poll_ticks: 7,
                harts: 0b101
            }
        );
        assert_eq!(t.live(), 0);
        assert_eq!(count(&t.counters.started), 1);
        assert_eq!(count(&t.counters.completed), 1);
        assert_eq!(count(&t.counters.polls), 2);
        // Completed: a later drop of the same future is no cancellation.
        assert_eq!(t.dropped(0x1000, 30), None);
        assert_eq!(count(&t.counters.cancelled), 0);
    }

    #[test]
    fn instances_stay_apart_and_reuse_starts_fresh() {
        let t = Table::new(4);
        let (a, _) = t.poll_enter(0xa0, 0, 0).unwrap();
        let (b, _) = t.poll_enter(0xb0, 1, 0).unwrap();
        assert_ne!(a.slot, b.slot);
        assert_eq!((a.seq, b.seq), (1, 2));
        t.poll_enter(0xa0, 0, 1).unwrap();
        assert_eq!(t.complete(a.slot, 2).polls, 2);
        assert_eq!(t.complete(b.slot, 2).polls, 1);
        // A new future at a freed address is a new instance.
        let (c, first) = t.poll_enter(0xa0, 3, 5).unwrap();
        assert!(first);
        assert_eq!((c.seq, c.poll), (3, 1));
    }

    #[test]
    fn dropped_unfinished_is_cancelled() {
        let t = Table::new(2);
        let (p, _) = t.poll_enter(0x40, 1, 100).unwrap();
        t.poll_exit(p.slot, 100, 101);
        assert_eq!(t.dropped(0x80, 150), None, "never polled: not followed");
        let (seq, s) = t.dropped(0x40, 150).unwrap();
        assert_eq!(seq, 1);
        assert_eq!(
            s,
            AsyncSummary {
                polls: 1,
                total_ticks: 50,
                poll_ticks: 1,
                harts: 0b10
            }
        );
        assert_eq!(t.live(), 0);
        assert_eq!(count(&t.counters.cancelled), 1);
    }

    #[test]
    fn overflow_is_missed_and_recovers() {
        let t = Table::new(2);
        t.poll_enter(1, 0, 0).unwrap();
        let (b, _) = t.poll_enter(2, 0, 0).unwrap();
        assert_eq!(t.poll_enter(3, 0, 0), None);
        assert_eq!(count(&t.counters.missed), 1);
        // Followed ones go on being followed.
        assert!(!t.poll_enter(1, 0, 0).unwrap().1);
        t.complete(b.slot, 1);
        assert!(t.poll_enter(3, 0, 0).unwrap().1);
        assert_eq!(count(&t.counters.started), 3);
    }
}
