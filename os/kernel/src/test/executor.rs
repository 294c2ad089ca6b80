//! The async executor: tasks complete, move between harts, sleep, yield,
//! can be cancelled, run the probe targets, and leave the harts free.

use super::{Test, TestResult};
use crate::task::targets::{self, Big, TargetError};
use crate::task::{run_on_harts, sleep_ticks, spawn, yield_now, TaskHandle};
use crate::{arch, check, check_eq, smp, symbols};
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::pin;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use core::task::{Context, Waker};

pub fn tests() -> Vec<Test> {
    alloc::vec![
        Test::new("executor::many_tasks_complete", many_tasks_complete),
        Test::new("executor::tasks_polled_on_several_harts", several_harts),
        Test::new("executor::sleep_ticks_waits_at_least_n", sleep_waits),
        Test::new("executor::yield_now_requeues_once", yield_requeues),
        Test::new("executor::cancel_drops_pending_task", cancel_drops_pending),
        Test::new("executor::cancel_before_run", cancel_before_run),
        Test::new(
            "executor::async_targets_return_values",
            targets_return_values
        ),
        Test::new("executor::async_target_poll_symbols", target_poll_symbols),
        Test::new("executor::harts_idle_after_run", harts_idle_after_run),
    ]
}

/// How long a test waits for other harts to do their part: QEMU's vCPU
/// threads can be descheduled for a while on a loaded host.
const PATIENCE: u64 = 5 * crate::timer::TICKS_PER_SEC;

fn all_finished<T>(handles: &[TaskHandle<T>]) -> TestResult {
    for (i, h) in handles.iter().enumerate() {
        check!(h.is_finished(), "task {i} not finished after the run");
    }
    Ok(())
}

fn many_tasks_complete() -> TestResult {
    const TASKS: usize = 64;
    let done = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..TASKS)
        .map(|i| {
            let done = done.clone();
            spawn(async move {
                for _ in 0..i % 5 {
                    yield_now().await;
                }
                done.fetch_add(1, SeqCst);
                i * 3
            })
        })
        .collect();
    run_on_harts();
    check_eq!(done.load(SeqCst), TASKS);
    all_finished(&handles)?;
    for (i, h) in handles.iter().enumerate() {
        check_eq!(h.take_output(), Some(i * 3));
    }
    Ok(())
}

/// Yields until polled on two harts (or `deadline`); returns the harts it
/// saw itself running on.
async fn yield_until_moved(deadline: u64) -> usize {
    let mut seen: usize = 1 << arch::hart_id();
    while seen.count_ones() < 2 && arch::time() < deadline {
        yield_now().await;
        seen |= 1 << arch::hart_id();
    }
    seen
}

fn several_harts() -> TestResult {
    check!(
        smp::online() >= 2,
        "needs 2 harts, {} online",
        smp::online()
    );
    // The other harts join the run when they pick up the job, which under a
    // loaded host can be late: the tasks keep yielding until then.
    let deadline = arch::time() + PATIENCE;
    let handles: Vec<_> = (0..16)
        .map(|_| spawn(yield_until_moved(deadline)))
        .collect();
    let stats = run_on_harts();
    all_finished(&handles)?;
    let mut moved = 0;
    for h in &handles {
        let seen = h.take_output().ok_or("no output")?;
        // The executor's record of the polls covers what the task saw.
        check_eq!(h.polled_on() & seen, seen);
        moved += usize::from(h.polled_on().count_ones() >= 2);
    }
    check!(
        moved >= 1,
        "no task was polled on two harts; masks {:?}",
        handles.iter().map(|h| h.polled_on()).collect::<Vec<_>>()
    );
    check!(stats.harts_used() >= 2, "polls per hart {:?}", stats.polls);
    println!(
        "  {moved}/16 tasks moved between harts; polls per hart {:?}",
        &stats.polls[..smp::online()]
    );
    Ok(())
}

fn sleep_waits() -> TestResult {
    let lengths = [0u64, 1_000, 50_000, 200_000];
    let handles: Vec<_> = lengths
        .iter()
        .map(|&n| {
            spawn(async move {
                let start = arch::time();
                sleep_ticks(n).await;
                arch::time() - start
            })
        })
        .collect();
    run_on_harts();
    for (h, &n) in handles.iter().zip(&lengths) {
        let slept = h.take_output().ok_or("a sleeper has no output")?;
        check!(slept >= n, "sleep_ticks({n}) returned after {slept} ticks");
        // A real wait was Pending once and woken by the deadline check. A
        // short one may already be over at its first poll (every function
        // probed, or the host descheduling a hart for milliseconds: `time`
        // follows the host clock), so only the longest (20 ms) must wait.
        let expected_polls = if n < 200_000 { 1 } else { 2 };
        check!(
            h.polls() >= expected_polls,
            "sleep_ticks({n}): {} polls",
            h.polls()
        );
    }
    Ok(())
}

/// Counts wakes, to watch `yield_now` outside the executor.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn yield_requeues() -> TestResult {
    // By hand: Pending once with a wake of its own task, then Ready.
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(yield_now());
    check!(fut.as_mut().poll(&mut cx).is_pending());
    check_eq!(counter.0.load(SeqCst), 1);
    check!(fut.as_mut().poll(&mut cx).is_ready());
    check_eq!(counter.0.load(SeqCst), 1);
    // In the executor: each yield puts the task back on the queue for
    // exactly one more poll, and nothing else wakes it.
    let handles: Vec<_> = (0..8).map(|k| spawn(targets::await_n(k))).collect();
    run_on_harts();
    for (k, h) in handles.iter().enumerate() {
        check_eq!(h.polls(), k + 1);
    }
    Ok(())
}

/// Sets its flag when dropped: shows a cancelled future was destroyed.
struct DropGuard(Arc<AtomicBool>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

/// Pending forever: nothing ever wakes it.
async fn wait_forever(guard: DropGuard) {
    let _guard = guard;
    core::future::pending::<()>().await;
}

fn cancel_drops_pending() -> TestResult {
    let dropped = Arc::new(AtomicBool::new(false));
    let victim = Arc::new(spawn(wait_forever(DropGuard(dropped.clone()))));
    let deadline = arch::time() + PATIENCE;
    let v = victim.clone();
    // Cancels the victim from another task once it has been polled (so it
    // is pending, not just queued). If another hart is inside its poll at
    // that moment, the drop happens right after that poll returns; either
    // way it has happened once the executor has no live task left.
    let canceller = spawn(async move {
        while v.polls() == 0 && arch::time() < deadline {
            yield_now().await;
        }
        let was_pending = v.polls() > 0 && !v.is_finished();
        v.cancel();
        was_pending
    });
    // Returns only because the cancel let the live-task count reach zero.
    run_on_harts();
    check_eq!(canceller.take_output(), Some(true));
    check!(dropped.load(SeqCst));
    check!(victim.is_finished());
    check!(
        victim.take_output().is_none(),
        "a cancelled task has output"
    );
    Ok(())
}

fn cancel_before_run() -> TestResult {
    let dropped = Arc::new(AtomicBool::new(false));
    let ran = Arc::new(AtomicBool::new(false));
    let (d, r) = (DropGuard(dropped.clone()), ran.clone());
    let handle = spawn(async move {
        let _guard = d;
        r.store(true, SeqCst);
    });
    check!(!handle.is_finished());
    handle.cancel();
    check!(dropped.load(SeqCst), "cancel did not drop the future");
    check!(handle.is_finished());
    // The cancelled task is still on the queue: the run skips it.
    let stats = run_on_harts();
    check!(!ran.load(SeqCst), "a cancelled task was polled");
    check_eq!(handle.polls(), 0);
    check!(
        stats.polls.iter().sum::<usize>() <= 1,
        "polls {:?}",
        stats.polls
    );
    Ok(())
}

fn targets_return_values() -> TestResult {
    let a = spawn(targets::await_n(3));
    let s = spawn(targets::sum_after_yields(10));
    let ok = spawn(targets::checked(21));
    let zero = spawn(targets::checked(0));
    let over = spawn(targets::checked(u64::MAX));
    let b = spawn(targets::big(5));
    let start = arch::time();
    let z = spawn(targets::sleepy(10_000));
    run_on_harts();
    check_eq!(a.take_output(), Some(()));
    check_eq!(a.polls(), 4);
    check_eq!(s.take_output(), Some(55));
    check_eq!(ok.take_output(), Some(Ok(42)));
    check_eq!(zero.take_output(), Some(Err(TargetError::Zero)));
    check_eq!(over.take_output(), Some(Err(TargetError::Overflow)));
    check_eq!(
        b.take_output(),
        Some(Big {
            a: 5,
            b: 10,
            c: 15,
            d: 20
        })
    );
    check_eq!(z.take_output(), Some(()));
    check!(arch::time() - start >= 10_000, "sleepy returned early");
    Ok(())
}

/// The poll functions of the targets, as async probes will look them up.
pub const TARGET_POLL_FNS: [&str; 5] = [
    "kernel::task::targets::await_n::{{closure}}",
    "kernel::task::targets::sum_after_yields::{{closure}}",
    "kernel::task::targets::checked::{{closure}}",
    "kernel::task::targets::big::{{closure}}",
    "kernel::task::targets::sleepy::{{closure}}",
];

fn target_poll_symbols() -> TestResult {
    let found: Vec<_> = symbols::all()
        .filter(|s| s.name.starts_with("kernel::task::targets::"))
        .collect();
    for s in &found {
        println!("  {:#x} +{:#x} {}", s.addr, s.size, s.name);
    }
    for name in TARGET_POLL_FNS {
        let hits = found.iter().filter(|s| s.name == name).count();
        check!(hits == 1, "{name}: {hits} symbols, expected 1");
    }
    Ok(())
}

fn harts_idle_after_run() -> TestResult {
    let handles: Vec<_> = (0..8).map(|_| spawn(targets::sleepy(1_000))).collect();
    run_on_harts();
    all_finished(&handles)?;
    // Every hart must have left the loop to take this job.
    let mask = AtomicUsize::new(0);
    smp::run_on_all(true, &|hart| {
        mask.fetch_or(1 << hart, Relaxed);
    });
    let expected = smp::harts().fold(0, |m, h| m | (1 << h));
    check_eq!(mask.load(Relaxed), expected);
    // With nothing spawned the run returns at once, polling nothing.
    let stats = run_on_harts();
    check!(
        stats.polls.iter().all(|&p| p == 0),
        "polls {:?}",
        stats.polls
    );
    Ok(())
}
