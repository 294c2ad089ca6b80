//! `mode=demo`: async probes tracing the life of `async fn` calls on the
//! executor, one line per future instance.
//!
//! Handlers only store what they see (into space reserved beforehand); the
//! lines are printed after the run.

use super::{run_on_harts, spawn, targets, yield_now};
use crate::arch;
use alloc::sync::Arc;
use alloc::vec::Vec;
use rkprobes::{AsyncEvent, AsyncEventKind, AsyncProbe, AsyncSummary};
use spin::Mutex;

/// One instance's life as the demo reports it.
#[derive(Clone, Copy, Default)]
struct Life {
    instance: u64,
    start_hart: usize,
    /// The `Ready` value, for outputs that have one worth showing.
    value: Option<usize>,
    /// (completed, summary); completed = false: cancelled.
    end: Option<(bool, AsyncSummary)>,
}

type Lives = Arc<Mutex<Vec<Life>>>;

fn record<T: 'static>(
    lives: &Lives,
    shown: fn(&T) -> Option<usize>,
) -> impl Fn(&AsyncEvent<'_, T>) + Send + Sync + 'static {
    let lives = lives.clone();
    move |e| {
        let mut l = lives.lock();
        let known = l.iter().position(|x| x.instance == e.instance);
        match (&e.kind, known) {
            (AsyncEventKind::Start, None) if l.len() < l.capacity() => l.push(Life {
                instance: e.instance,
                start_hart: e.hart,
                ..Life::default()
            }),
            (AsyncEventKind::PollExit { value: Some(v), .. }, Some(i)) => l[i].value = shown(v),
            (AsyncEventKind::Complete(s), Some(i)) => l[i].end = Some((true, *s)),
            (AsyncEventKind::Cancelled(s), Some(i)) => l[i].end = Some((false, *s)),
            _ => {}
        }
    }
}

fn print(name: &str, lives: &Lives) {
    for life in lives.lock().iter() {
        let mut line = alloc::format!(
            "[async] {name} #{} started on hart {}",
            life.instance,
            life.start_hart
        );
        match life.end {
            Some((done, s)) => {
                let what = if done { "completed" } else { "cancelled" };
                let value = life
                    .value
                    .map(|v| alloc::format!(" = {v}"))
                    .unwrap_or_default();
                line += &alloc::format!(
                    ", {what}{value} after {} poll{}, {} hart{}, {} ticks ({} in polls)",
                    s.polls,
                    if s.polls == 1 { "" } else { "s" },
                    s.harts.count_ones(),
                    if s.harts.count_ones() == 1 { "" } else { "s" },
                    s.total_ticks,
                    s.poll_ticks
                );
            }
            None => line += ", still running",
        }
        println!("{line}");
    }
}

fn lives() -> Lives {
    Arc::new(Mutex::new(Vec::with_capacity(16)))
}

pub fn run() {
    println!("async probes: the life of each async fn call");
    let (waits, sums, sleeps) = (lives(), lives(), lives());
    let probes = [
        AsyncProbe::<()>::symbol("kernel::task::targets::await_n")
            .on_event(record(&waits, |_| None))
            .register(),
        // Its drop glue has no name of its own (folded with others'), and
        // these calls all complete.
        AsyncProbe::<usize>::symbol("kernel::task::targets::sum_after_yields")
            .without_drop_detection()
            .on_event(record(&sums, |v| Some(*v)))
            .register(),
        AsyncProbe::<()>::symbol("kernel::task::targets::sleepy")
            .on_event(record(&sleeps, |_| None))
            .register(),
    ];
    let probes: Vec<_> = match probes.into_iter().collect::<Result<_, _>>() {
        Ok(p) => p,
        Err(e) => {
            println!("  cannot register async probes: {e}");
            return;
        }
    };
    for n in [3, 8, 20] {
        spawn(targets::await_n(n));
    }
    spawn(targets::sum_after_yields(10));
    spawn(targets::sleepy(50_000));
    // A sleeper cancelled once it is waiting.
    let victim = Arc::new(spawn(targets::sleepy(u64::MAX / 2)));
    let v = victim.clone();
    let deadline = arch::time() + crate::timer::TICKS_PER_SEC;
    spawn(async move {
        while v.polls() == 0 && arch::time() < deadline {
            yield_now().await;
        }
        v.cancel();
    });
    run_on_harts();
    print("kernel::task::targets::await_n", &waits);
    print("kernel::task::targets::sum_after_yields", &sums);
    print("kernel::task::targets::sleepy", &sleeps);
    for p in probes {
        let _ = p.unregister();
    }
}
