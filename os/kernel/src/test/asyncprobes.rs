//! Async probes (`AsyncFunc`) on the executor's real tasks: poll counts,
//! completion, cancellation, several harts, many instances at once, the
//! `Poll<T>` of each target decoded from the real return, the seed form.

use super::{Test, TestResult};
use crate::task::targets::{Big, TargetError};
use crate::task::{run_on_harts, spawn, yield_now};
use crate::{arch, check, check_eq, smp, symbols};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use rkprobes::{
    AsyncEvent, AsyncEventKind, AsyncHandle, AsyncProbe, AsyncSummary, Error, ProbeType, Returned,
};
use spin::Mutex;

pub fn tests() -> Vec<Test> {
    alloc::vec![
        Test::new("asyncprobes::await_n_polls_n_plus_one", await_n_polls),
        Test::new("asyncprobes::polls_on_several_harts", several_harts),
        Test::new("asyncprobes::cancelled_future_reported", cancelled),
        Test::new("asyncprobes::concurrent_instances_apart", concurrent),
        Test::new("asyncprobes::decodes_unit", decodes_unit),
        Test::new("asyncprobes::decodes_result_u64_indirect", decodes_result),
        Test::new("asyncprobes::decodes_big_struct_indirect", decodes_big),
        Test::new("asyncprobes::table_overflow_counted_missed", overflow),
        Test::new("asyncprobes::seed_form_async_func", seed_form),
    ]
}

const AWAIT_N: &str = "kernel::task::targets::await_n";
const SUM: &str = "kernel::task::targets::sum_after_yields";
const CHECKED: &str = "kernel::task::targets::checked";
const BIG: &str = "kernel::task::targets::big";
const SLEEPY: &str = "kernel::task::targets::sleepy";

fn err(e: Error) -> String {
    format!("{e}")
}

fn addr_of(name: &str) -> Result<usize, String> {
    symbols::symbol_by_name(name)
        .map(|s| s.addr)
        .ok_or(format!("no symbol {name}"))
}

/// Unregisters on every way out of a test, failures included.
struct Registered(Option<AsyncHandle>);

impl Registered {
    fn h(&self) -> &AsyncHandle {
        self.0.as_ref().expect("registered until dropped")
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.unregister().expect("unregister an async probe");
        }
    }
}

/// An async probe on `await_n` that records every event in `log`.
fn record_await_n(log: &Log<()>) -> Result<Registered, String> {
    let p = AsyncProbe::<()>::symbol(AWAIT_N)
        .on_event(recorder(log))
        .register()
        .map_err(err)?;
    Ok(Registered(Some(p)))
}

/// What a test keeps of the events: pushed from the hit path into
/// capacity reserved beforehand (no allocation in the handler).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Seen<T> {
    Start {
        instance: u64,
    },
    Exit {
        instance: u64,
        ready: bool,
        value: Option<T>,
    },
    Complete {
        instance: u64,
        s: AsyncSummary,
    },
    Cancelled {
        instance: u64,
        s: AsyncSummary,
    },
}

type Log<T> = Arc<Mutex<Vec<Seen<T>>>>;

fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::with_capacity(4096)))
}

fn recorder<T: Copy + Send + 'static>(
    log: &Log<T>,
) -> impl Fn(&AsyncEvent<'_, T>) + Send + Sync + 'static {
    let log = log.clone();
    move |e| {
        let seen = match e.kind {
            AsyncEventKind::Start => Seen::Start {
                instance: e.instance,
            },
            AsyncEventKind::PollExit { ready, value, .. } => Seen::Exit {
                instance: e.instance,
                ready,
                value: value.copied(),
            },
            AsyncEventKind::Complete(s) => Seen::Complete {
                instance: e.instance,
                s,
            },
            AsyncEventKind::Cancelled(s) => Seen::Cancelled {
                instance: e.instance,
                s,
            },
            AsyncEventKind::PollEnter { .. } => return,
        };
        let mut l = log.lock();
        if l.len() < l.capacity() {
            l.push(seen);
        }
    }
}

fn completions<T: Copy>(log: &Log<T>) -> Vec<(u64, AsyncSummary)> {
    log.lock()
        .iter()
        .filter_map(|s| match *s {
            Seen::Complete { instance, s } => Some((instance, s)),
            _ => None,
        })
        .collect()
}

/// The `Ready` value each instance returned, by instance.
fn ready_values<T: Copy>(log: &Log<T>) -> Vec<(u64, Option<T>)> {
    log.lock()
        .iter()
        .filter_map(|s| match *s {
            Seen::Exit {
                instance,
                ready: true,
                value,
            } => Some((instance, value)),
            _ => None,
        })
        .collect()
}

fn pending_exits<T: Copy>(log: &Log<T>) -> usize {
    log.lock()
        .iter()
        .filter(|s| matches!(s, Seen::Exit { ready: false, .. }))
        .count()
}

fn await_n_polls() -> TestResult {
    let log = log::<()>();
    let p = record_await_n(&log)?;
    check_eq!(
        p.h().poll_fn(),
        addr_of("kernel::task::targets::await_n::{{closure}}")?
    );
    check_eq!(p.h().returned(), Returned::Registers);
    check!(p.h().drop_glue().is_some());
    let handles: Vec<_> = (0..8)
        .map(|n| spawn(crate::task::targets::await_n(n)))
        .collect();
    run_on_harts();
    check_eq!(p.h().started(), 8);
    check_eq!(p.h().completed(), 8);
    check_eq!(p.h().cancelled(), 0);
    check_eq!(p.h().missed(), 0);
    check_eq!(p.h().in_flight(), 0);
    // await_n(n) for n in 0..8: 1 + 2 + .. + 8 polls.
    check_eq!(p.h().polls(), 36);
    let mut polls: Vec<u64> = completions(&log).iter().map(|(_, s)| s.polls).collect();
    polls.sort_unstable();
    check_eq!(polls, (1..=8).collect::<Vec<u64>>());
    // The executor's own count agrees, task by task.
    let mut exec: Vec<usize> = handles.iter().map(|h| h.polls()).collect();
    exec.sort_unstable();
    check_eq!(exec, (1..=8).collect::<Vec<usize>>());
    for (_, s) in completions(&log) {
        check!(s.harts != 0, "no hart recorded: {s:?}");
        check!(s.poll_ticks <= s.total_ticks, "{s:?}");
    }
    check_eq!(pending_exits(&log), 36 - 8);
    Ok(())
}

fn several_harts() -> TestResult {
    check!(
        smp::online() >= 2,
        "needs 2 harts, {} online",
        smp::online()
    );
    let log = log::<()>();
    let p = record_await_n(&log)?;
    const N: usize = 40;
    // Other harts join a run when they pick up the job, which on a loaded
    // host can be late: a few runs until one instance moved.
    const RUNS: u64 = 40;
    for run in 1..=RUNS {
        log.lock().clear();
        let handles: Vec<_> = (0..8)
            .map(|_| spawn(crate::task::targets::await_n(N)))
            .collect();
        run_on_harts();
        let done = completions(&log);
        check_eq!(done.len(), 8);
        for (_, s) in &done {
            check_eq!(s.polls, N as u64 + 1);
        }
        // The probe saw every hart the executor polled each task on.
        let mut probe_masks: Vec<usize> = done.iter().map(|(_, s)| s.harts).collect();
        let mut exec_masks: Vec<usize> = handles.iter().map(|h| h.polled_on()).collect();
        probe_masks.sort_unstable();
        exec_masks.sort_unstable();
        check_eq!(probe_masks, exec_masks);
        if let Some((i, s)) = done.iter().find(|(_, s)| s.harts.count_ones() >= 2) {
            println!(
                "  run {run}: instance #{i} polled {} times on harts {:#b}",
                s.polls, s.harts
            );
            check_eq!(p.h().completed(), 8 * run);
            return Ok(());
        }
    }
    Err(format!(
        "no instance was polled on two harts in {RUNS} runs"
    ))
}

fn cancelled() -> TestResult {
    let log = log::<()>();
    // By the async fn's address: resolved to its poll fn and drop glue.
    let p = Registered(Some(
        AsyncProbe::<()>::at(addr_of(SLEEPY)?)
            .on_event(recorder(&log))
            .register()
            .map_err(err)?,
    ));
    check_eq!(
        p.h().poll_fn(),
        addr_of("kernel::task::targets::sleepy::{{closure}}")?
    );
    check_eq!(
        p.h().drop_glue(),
        Some(addr_of(
            "core::ptr::drop_in_place<kernel::task::targets::sleepy::{{closure}}>"
        )?)
    );
    let victim = Arc::new(spawn(crate::task::targets::sleepy(u64::MAX / 2)));
    let short = spawn(crate::task::targets::sleepy(20_000));
    let deadline = arch::time() + 5 * crate::timer::TICKS_PER_SEC;
    let v = victim.clone();
    let canceller = spawn(async move {
        while v.polls() == 0 && arch::time() < deadline {
            yield_now().await;
        }
        v.cancel();
        v.polls()
    });
    run_on_harts();
    check_eq!(canceller.take_output(), Some(1));
    check!(victim.is_finished() && victim.take_output().is_none());
    check_eq!(short.take_output(), Some(()));
    check_eq!(p.h().started(), 2);
    check_eq!(p.h().completed(), 1);
    check_eq!(p.h().cancelled(), 1);
    check!(
        p.h().in_flight() == 0,
        "leaked in the table: {}",
        p.h().in_flight()
    );
    let l = log.lock().clone();
    let cancels: Vec<_> = l
        .iter()
        .filter_map(|s| match s {
            Seen::Cancelled { instance, s } => Some((*instance, *s)),
            _ => None,
        })
        .collect();
    check_eq!(cancels.len(), 1);
    let (ci, cs) = cancels[0];
    check_eq!(cs.polls, 1);
    check!(cs.total_ticks >= cs.poll_ticks, "{cs:?}");
    // The cancelled instance never had a Ready exit; the other one did,
    // after at least its 20000 ticks of sleep.
    check!(!l
        .iter()
        .any(|s| matches!(s, Seen::Exit { instance, ready: true, .. } if *instance == ci)));
    let done = completions(&log);
    check_eq!(done.len(), 1);
    check!(done[0].0 != ci);
    check!(done[0].1.total_ticks >= 20_000, "{:?}", done[0].1);
    check!(done[0].1.polls >= 2, "{:?}", done[0].1);
    Ok(())
}

fn concurrent() -> TestResult {
    const TASKS: usize = 32;
    let log = log::<usize>();
    let p = Registered(Some(
        // Drops not watched: every instance here completes.
        AsyncProbe::<usize>::symbol(SUM)
            .without_drop_detection()
            .capacity(TASKS)
            .on_event(recorder(&log))
            .register()
            .map_err(err)?,
    ));
    let handles: Vec<_> = (0..TASKS)
        .map(|n| spawn(crate::task::targets::sum_after_yields(n)))
        .collect();
    run_on_harts();
    for (n, h) in handles.iter().enumerate() {
        check_eq!(h.take_output(), Some(n * (n + 1) / 2));
    }
    check_eq!(p.h().completed(), TASKS as u64);
    check_eq!(p.h().missed(), 0);
    // Each instance: its Ready value tells which n it was, and it must
    // have been polled exactly n + 1 times.
    let done = completions(&log);
    let values = ready_values(&log);
    check_eq!(done.len(), TASKS);
    check_eq!(values.len(), TASKS);
    let mut ns = Vec::new();
    for (instance, value) in values {
        let sum = value.ok_or("a usize Ready without a value")?;
        let n = (0..TASKS)
            .find(|n| n * (n + 1) / 2 == sum)
            .ok_or(format!("instance #{instance}: {sum} is no triangle number"))?;
        let s = done
            .iter()
            .find(|(i, _)| *i == instance)
            .ok_or(format!("instance #{instance} never completed"))?
            .1;
        check!(
            s.polls == n as u64 + 1,
            "instance #{instance}, n = {n}: {s:?}"
        );
        ns.push(n);
    }
    ns.sort_unstable();
    check_eq!(ns, (0..TASKS).collect::<Vec<_>>());
    Ok(())
}

fn decodes_unit() -> TestResult {
    let log = log::<()>();
    let _p = record_await_n(&log)?;
    spawn(crate::task::targets::await_n(2));
    run_on_harts();
    let l = log.lock().clone();
    let exits: Vec<(bool, Option<()>)> = l
        .iter()
        .filter_map(|s| match *s {
            Seen::Exit { ready, value, .. } => Some((ready, value)),
            _ => None,
        })
        .collect();
    check_eq!(
        exits,
        alloc::vec![(false, None), (false, None), (true, Some(()))]
    );
    Ok(())
}

/// `Poll<Result<u64, E>>` is 16 bytes and not a scalar pair: returned
/// through the hidden pointer, which the probe is told.
fn decodes_result() -> TestResult {
    // With drop detection: the target's drop glue is its own (its `Mark`).
    AsyncProbe::<Result<u64, TargetError>>::symbol(CHECKED)
        .returned_indirectly(true)
        .register()
        .map_err(err)?
        .unregister()
        .map_err(err)?;
    let log = log::<Result<u64, TargetError>>();
    let p = Registered(Some(
        AsyncProbe::<Result<u64, TargetError>>::symbol(CHECKED)
            .returned_indirectly(true)
            .without_drop_detection()
            .on_event(recorder(&log))
            .register()
            .map_err(err)?,
    ));
    check_eq!(p.h().returned(), Returned::Indirect);
    let inputs = [21u64, 0, u64::MAX, 7];
    for n in inputs {
        spawn(crate::task::targets::checked(n));
    }
    run_on_harts();
    let mut got: Vec<Result<u64, TargetError>> = ready_values(&log)
        .into_iter()
        .map(|(_, v)| v.ok_or("no value"))
        .collect::<Result<_, _>>()?;
    got.sort_by_key(|r| format!("{r:?}"));
    let mut want = alloc::vec![
        Ok(42),
        Err(TargetError::Zero),
        Err(TargetError::Overflow),
        Ok(14)
    ];
    want.sort_by_key(|r| format!("{r:?}"));
    check_eq!(got, want);
    // One yield each: Pending once, then Ready.
    check_eq!(pending_exits(&log), inputs.len());
    for (_, s) in completions(&log) {
        check_eq!(s.polls, 2);
    }
    Ok(())
}

/// `Poll<Big>` (40 bytes) is returned through the hidden pointer: chosen
/// from its size alone.
fn decodes_big() -> TestResult {
    let log = log::<Big>();
    let p = Registered(Some(
        AsyncProbe::<Big>::symbol(BIG)
            .without_drop_detection()
            .on_event(recorder(&log))
            .register()
            .map_err(err)?,
    ));
    check_eq!(p.h().returned(), Returned::Indirect);
    for n in [1u64, 5, 1 << 40] {
        spawn(crate::task::targets::big(n));
    }
    run_on_harts();
    let mut got: Vec<Big> = ready_values(&log)
        .into_iter()
        .map(|(_, v)| v.ok_or("no value"))
        .collect::<Result<_, _>>()?;
    got.sort_by_key(|b| b.a);
    let want: Vec<Big> = [1u64, 5, 1 << 40]
        .iter()
        .map(|&n| Big {
            a: n,
            b: n * 2,
            c: n * 3,
            d: n * 4,
        })
        .collect();
    check_eq!(got, want);
    check_eq!(pending_exits(&log), 3);
    check_eq!(p.h().completed(), 3);
    Ok(())
}

fn overflow() -> TestResult {
    let log = log::<()>();
    let p = Registered(Some(
        AsyncProbe::<()>::symbol(AWAIT_N)
            .capacity(2)
            .on_event(recorder(&log))
            .register()
            .map_err(err)?,
    ));
    // Six long futures polled in turn from one queue, two table entries.
    for _ in 0..6 {
        spawn(crate::task::targets::await_n(50));
    }
    run_on_harts();
    let h = p.h();
    check!(
        h.missed() > 0,
        "6 interleaved futures, capacity 2: none missed"
    );
    check_eq!(h.polls(), 6 * 51);
    check_eq!(h.started(), h.completed());
    check_eq!(h.in_flight(), 0);
    // Every poll was either followed (in some instance's summary) or
    // counted missed: nothing lost, nothing counted twice.
    let followed: u64 = completions(&log).iter().map(|(_, s)| s.polls).sum();
    check_eq!(followed + h.missed(), 6 * 51);
    Ok(())
}

/// The seed test's target: `kprobe_unregister(addr)` removes every probe
/// at its address, so the probe-all suite leaves `kt_` functions alone.
/// Holding an `Arc` gives its future drop glue of its own (with a name).
#[inline(never)]
async fn kt_seed_target(n: usize, done: Arc<AtomicUsize>) {
    for _ in 0..n {
        yield_now().await;
    }
    done.fetch_add(1, SeqCst);
}

fn seed_form() -> TestResult {
    let polls = Arc::new(AtomicUsize::new(0));
    let completions = Arc::new(AtomicUsize::new(0));
    let (pc, cc) = (polls.clone(), completions.clone());
    let handler: rkprobes::SeedHandler =
        Arc::new(rkprobes::Mutex::new(move |_: &mut rkprobes::TrapFrame| {
            pc.fetch_add(1, SeqCst);
        }));
    let post: rkprobes::SeedHandler =
        Arc::new(rkprobes::Mutex::new(move |_: &mut rkprobes::TrapFrame| {
            cc.fetch_add(1, SeqCst);
        }));
    let addr = addr_of("kernel::test::asyncprobes::kt_seed_target")?;
    let ids = || rkprobes::probes().iter().map(|p| p.id).collect::<Vec<_>>();
    let before = ids();
    check_eq!(
        rkprobes::kprobe_register(addr, handler, Some(post), ProbeType::AsyncFunc),
        0
    );
    // A poll probe (on the poll function, not at `addr`) and a drop probe.
    let new: Vec<u64> = ids().into_iter().filter(|i| !before.contains(i)).collect();
    let result = (|| {
        check_eq!(new.len(), 2);
        let done = Arc::new(AtomicUsize::new(0));
        for n in [3, 0, 5] {
            spawn(kt_seed_target(n, done.clone()));
        }
        run_on_harts();
        check_eq!(done.load(SeqCst), 3);
        check_eq!(polls.load(SeqCst), 4 + 1 + 6);
        check_eq!(completions.load(SeqCst), 3);
        Ok(())
    })();
    check_eq!(rkprobes::kprobe_unregister(addr), 0);
    let left: Vec<u64> = ids().into_iter().filter(|i| new.contains(i)).collect();
    check!(left.is_empty(), "probes {left:?} left behind");
    result
}
