//! `async_probe`: one poll of a traced `async fn`. A future that completes
//! on its first poll is created and polled once, N times, with and
//! without an `AsyncProbe` on it; per poll = the difference over N.

use super::measure::{counted, N};
use super::Report;
use alloc::format;
use alloc::string::String;
use core::future::Future;
use core::hint::black_box;
use core::pin::{pin, Pin};
use core::task::{Context, Poll, Waker};
use rkprobes::AsyncProbe;

/// The traced `async fn`: ready on its first poll.
#[inline(never)]
pub async fn bench_ready(x: usize) -> usize {
    x.wrapping_add(1)
}

const SYMBOL: &str = "kernel::bench::async_row::bench_ready";

/// Instructions retired by `n` futures each polled once; also how many
/// were ready. The poll goes through a `dyn Future` hidden from the
/// optimiser, so the poll function (`bench_ready::{{closure}}`) is called
/// out of line, as an executor calls it, and never inlined into the loop.
#[inline(never)]
fn polls(n: u64) -> (u64, u64) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut ready = 0;
    let count = counted(|| {
        for i in 0..n {
            let mut fut = pin!(bench_ready(i as usize));
            let fut: Pin<&mut dyn Future<Output = usize>> = black_box(fut.as_mut());
            if let Poll::Ready(v) = fut.poll(&mut cx) {
                black_box(v);
                ready += 1;
            }
        }
    });
    (count, ready)
}

/// Cost per poll; checks the probe saw N futures start, be polled once
/// and complete.
fn cost(floor: f64) -> Result<f64, String> {
    let (base, ready) = polls(N);
    // Every future completes, so its drop says nothing: drops are not
    // watched (a row of one poll, not of poll + drop).
    let h = AsyncProbe::<usize>::symbol(SYMBOL)
        .without_drop_detection()
        .on_event(|_| ())
        .register()
        .map_err(|e| format!("register: {e}"))?;
    let (probed, probed_ready) = polls(N);
    let seen = (h.started(), h.polls(), h.completed(), h.missed());
    h.unregister().map_err(|e| format!("unregister: {e}"))?;
    if (ready, probed_ready) != (N, N) {
        return Err(format!(
            "{ready} / {probed_ready} futures ready, expected {N}"
        ));
    }
    if seen != (N, N, N, 0) {
        return Err(format!(
            "started, polls, completed, missed = {seen:?}, expected ({N}, {N}, {N}, 0)"
        ));
    }
    let v = probed.wrapping_sub(base) as i64 as f64 / N as f64;
    if v < floor {
        return Err(format!(
            "{v:.2} instructions per poll is below the trap floor"
        ));
    }
    Ok(v)
}

pub fn row(floor: f64, report: &mut Report) {
    match cost(floor) {
        Ok(v) => report.row("async_probe", "rkprobes", 1, 1, v, N),
        Err(e) => report.skip("async_probe", "rkprobes", 1, &e),
    }
}
