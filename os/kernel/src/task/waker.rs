//! Waking a task: a small state machine that puts a task on the run queue
//! at most once, and never loses a wake that arrives while it is polled.
//!
//! ```text
//!            wake                 popped                 poll Pending
//!   Idle ------------> Queued ------------> Running -------------------> Idle
//!                        ^                     | wake
//!                        |   poll Pending      v
//!                        +----------------- Notified
//! ```
//!
//! A wake in `Queued` or `Notified` does nothing: a poll is already due.

use super::executor::{enqueue, Task};
use alloc::sync::Arc;
use alloc::task::Wake;
use core::sync::atomic::AtomicU8;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Release};

const IDLE: u8 = 0;
const QUEUED: u8 = 1;
const RUNNING: u8 = 2;
const NOTIFIED: u8 = 3;

pub(super) struct Schedule(AtomicU8);

impl Schedule {
    /// A new task goes straight onto the queue.
    pub(super) const fn queued() -> Self {
        Schedule(AtomicU8::new(QUEUED))
    }

    /// Records a wake; true if the caller must put the task on the queue.
    fn wake(&self) -> bool {
        let mut state = self.0.load(Acquire);
        loop {
            let next = match state {
                IDLE => QUEUED,
                RUNNING => NOTIFIED,
                _ => return false,
            };
            match self.0.compare_exchange_weak(state, next, AcqRel, Acquire) {
                Ok(_) => return next == QUEUED,
                Err(now) => state = now,
            }
        }
    }

    /// The task was taken off the queue and is about to be polled.
    pub(super) fn start_poll(&self) {
        self.0.store(RUNNING, Release);
    }

    /// The poll returned Pending; true if it was woken meanwhile and the
    /// caller must put it back on the queue.
    pub(super) fn end_poll(&self) -> bool {
        match self.0.compare_exchange(RUNNING, IDLE, AcqRel, Acquire) {
            Ok(_) => false,
            Err(_) => {
                // Only a wake moves Running to Notified.
                self.0.store(QUEUED, Release);
                true
            }
        }
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        if self.schedule.wake() {
            enqueue(self);
        }
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.schedule.wake() {
            enqueue(self.clone());
        }
    }
}
