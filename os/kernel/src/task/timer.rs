//! `sleep_ticks`: a future ready once the `time` CSR has advanced by `n`
//! ticks (10 MHz on QEMU virt).
//!
//! Sleepers wait in one global map ordered by deadline. The executor loop
//! on every hart calls [`expire`], which wakes those whose deadline passed;
//! a cheap atomic check of the earliest deadline keeps the lock off the
//! common path. The timer interrupt is what keeps `time` moving while harts
//! are otherwise idle; it does not touch this map (no lock in interrupt
//! context).

use crate::arch;
use alloc::collections::BTreeMap;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering::*};
use core::task::{Context, Poll, Waker};
use spin::Mutex;

/// (deadline, unique id) -> waker of the sleeping task.
type Key = (u64, u64);
static SLEEPERS: Mutex<BTreeMap<Key, Waker>> = Mutex::new(BTreeMap::new());
/// Earliest deadline in `SLEEPERS` (`u64::MAX`: none); written under its lock.
static NEXT_DEADLINE: AtomicU64 = AtomicU64::new(u64::MAX);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Sleeps at least `n` ticks of the `time` CSR, counted from this call.
pub fn sleep_ticks(n: u64) -> Sleep {
    Sleep {
        deadline: arch::time().saturating_add(n),
        key: None,
    }
}

pub struct Sleep {
    deadline: u64,
    /// Where this sleeper's waker sits in `SLEEPERS`, once registered.
    key: Option<Key>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if arch::time() >= self.deadline {
            self.unregister();
            return Poll::Ready(());
        }
        let deadline = self.deadline;
        let key = *self
            .key
            .get_or_insert_with(|| (deadline, NEXT_ID.fetch_add(1, Relaxed)));
        let mut sleepers = SLEEPERS.lock();
        sleepers.insert(key, cx.waker().clone());
        NEXT_DEADLINE.fetch_min(deadline, SeqCst);
        Poll::Pending
    }
}

impl Sleep {
    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            SLEEPERS.lock().remove(&key);
        }
    }
}

impl Drop for Sleep {
    /// A cancelled sleeper leaves no waker behind.
    fn drop(&mut self) {
        self.unregister();
    }
}

/// Wakes every sleeper whose deadline is at or before `now`.
pub(super) fn expire(now: u64) {
    if now < NEXT_DEADLINE.load(SeqCst) {
        return;
    }
    let due = {
        let mut sleepers = SLEEPERS.lock();
        let later = sleepers.split_off(&(now.saturating_add(1), 0));
        let due = core::mem::replace(&mut *sleepers, later);
        let next = sleepers.first_key_value().map_or(u64::MAX, |(k, _)| k.0);
        NEXT_DEADLINE.store(next, SeqCst);
        due
    };
    // Wake outside the lock: a wake takes the run-queue lock.
    for waker in due.into_values() {
        waker.wake();
    }
}
