//! The run queue, `spawn`, task handles and the loop every hart runs.
//!
//! One global FIFO of woken tasks, shared by all harts. A task is polled by
//! whichever hart pops it, so over its life it may run on several harts.
//! `LIVE` counts tasks that have neither completed nor been cancelled; the
//! harts leave the loop when it reaches zero.
//!
//! Every spawned future is boxed as `dyn Future` on its own and polled
//! through that vtable (see [`Capture`]): an `async fn`'s poll function is
//! therefore never inlined into the executor and stays a probe target.
//!
//! Nothing here may be used from interrupt context: the locks are plain
//! spin locks taken with interrupts enabled.

use super::timer;
use super::waker::Schedule;
use crate::boot::MAX_HARTS;
use crate::{arch, smp};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use core::task::{Context, Poll, Waker};
use spin::Mutex;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

static QUEUE: Mutex<VecDeque<Arc<Task>>> = Mutex::new(VecDeque::new());
static LIVE: AtomicUsize = AtomicUsize::new(0);

pub(super) struct Task {
    /// `None` once the task completed or was cancelled. Held while polled.
    future: Mutex<Option<BoxFuture<()>>>,
    pub(super) schedule: Schedule,
    cancelled: AtomicBool,
    finished: AtomicBool,
    /// Bit `h` set: polled at least once on hart `h`.
    polled_on: AtomicUsize,
    polls: AtomicUsize,
}

pub(super) fn enqueue(task: Arc<Task>) {
    QUEUE.lock().push_back(task);
}

impl Task {
    /// Polls the task once on this hart, unless it is already gone.
    fn run(self: &Arc<Self>) {
        if self.cancelled.load(SeqCst) {
            self.drop_future();
            return;
        }
        let mut slot = self.future.lock();
        let Some(future) = slot.as_mut() else {
            return;
        };
        self.schedule.start_poll();
        self.polled_on.fetch_or(1 << arch::hart_id(), Relaxed);
        self.polls.fetch_add(1, Relaxed);
        let waker = Waker::from(self.clone());
        let ready = future
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready();
        let done = if ready { slot.take() } else { None };
        let requeue = !ready && self.schedule.end_poll();
        drop(slot);
        if done.is_some() {
            drop(done);
            self.finish();
        } else if requeue {
            enqueue(self.clone());
        }
        // A `cancel` that found the future locked by this poll left the drop
        // to us; the flag is read only after the lock was released.
        if self.cancelled.load(SeqCst) {
            self.drop_future();
        }
    }

    /// Drops the future if still there (outside the lock: its destructor
    /// may wake or spawn) and counts the task as gone.
    fn drop_future(&self) {
        let future = self.future.lock().take();
        if future.is_some() {
            drop(future);
            self.finish();
        }
    }

    fn finish(&self) {
        self.finished.store(true, SeqCst);
        LIVE.fetch_sub(1, SeqCst);
    }
}

/// Polls the spawned future through its own vtable and keeps its output
/// for the handle.
struct Capture<T> {
    inner: BoxFuture<T>,
    output: Arc<Mutex<Option<T>>>,
}

impl<T> Future for Capture<T> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.inner.as_mut().poll(cx) {
            Poll::Ready(value) => {
                *self.output.lock() = Some(value);
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A spawned task. Dropping the handle detaches the task (it keeps running).
pub struct TaskHandle<T = ()> {
    task: Arc<Task>,
    output: Arc<Mutex<Option<T>>>,
}

/// Queues `future` as a new task; it runs during the next `run_on_harts`.
pub fn spawn<F>(future: F) -> TaskHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let output = Arc::new(Mutex::new(None));
    let capture = Capture {
        inner: Box::pin(future),
        output: output.clone(),
    };
    let task = Arc::new(Task {
        future: Mutex::new(Some(Box::pin(capture))),
        schedule: Schedule::queued(),
        cancelled: AtomicBool::new(false),
        finished: AtomicBool::new(false),
        polled_on: AtomicUsize::new(0),
        polls: AtomicUsize::new(0),
    });
    LIVE.fetch_add(1, SeqCst);
    enqueue(task.clone());
    TaskHandle { task, output }
}

impl<T> TaskHandle<T> {
    /// Cancels the task: its future is dropped now, or, if a hart is
    /// polling it at this moment (the task itself included), right after
    /// that poll returns. A task that already completed keeps its output.
    pub fn cancel(&self) {
        self.task.cancelled.store(true, SeqCst);
        if let Some(mut slot) = self.task.future.try_lock() {
            let future = slot.take();
            drop(slot);
            if future.is_some() {
                drop(future);
                self.task.finish();
            }
        }
    }

    /// Completed or cancelled (and its future dropped).
    pub fn is_finished(&self) -> bool {
        self.task.finished.load(SeqCst)
    }

    /// The output, once the task has completed; `None` if cancelled.
    pub fn take_output(&self) -> Option<T> {
        self.output.lock().take()
    }

    /// Mask of the harts that polled the task (bit `h` for hart `h`).
    pub fn polled_on(&self) -> usize {
        self.task.polled_on.load(Relaxed)
    }

    /// How many times the task was polled.
    pub fn polls(&self) -> usize {
        self.task.polls.load(Relaxed)
    }
}

/// What each hart did during one `run_on_harts`.
pub struct RunStats {
    /// Polls made by hart `h`.
    pub polls: [usize; MAX_HARTS],
}

impl RunStats {
    /// How many harts polled at least one task.
    pub fn harts_used(&self) -> usize {
        self.polls.iter().filter(|&&p| p > 0).count()
    }
}

/// Runs the executor loop on every online hart until every spawned task
/// has completed or been cancelled; returns once all harts left it.
pub fn run_on_harts() -> RunStats {
    let polls = [const { AtomicUsize::new(0) }; MAX_HARTS];
    smp::run_on_all(true, &|hart| polls[hart].store(run_loop(), Relaxed));
    RunStats {
        polls: polls.map(|p| p.into_inner()),
    }
}

/// One hart's share of the work: returns how many polls it made.
fn run_loop() -> usize {
    let mut polls = 0;
    while LIVE.load(SeqCst) != 0 {
        timer::expire(arch::time());
        let next = QUEUE.lock().pop_front();
        match next {
            Some(task) => {
                task.run();
                polls += 1;
            }
            None => core::hint::spin_loop(),
        }
    }
    polls
}
