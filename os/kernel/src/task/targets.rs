//! `async fn`s that async-probe tests attach to, one per shape of result.
//!
//! They are only ever run through the executor, which polls every spawned
//! future through its own `dyn Future` vtable, so each poll function stays
//! an out-of-line function in kernel text (see `test/executor.rs`, which
//! finds them in the kernel symbol table). `#[inline(never)]` pins the
//! constructors (the `fn` that builds the future) as well.
//!
//! # How the poll functions look (rustc 1.95, os release profile, opt-level 2)
//!
//! An `async fn f` compiles to a constructor `kernel::task::targets::f`
//! (stores the arguments into the state machine and returns it; tiny, and
//! identical ones may be folded into one address) and a poll function, the
//! coroutine's resume, named in the kernel symbol table (hash and
//! `.llvm.NNN` suffix stripped) `kernel::task::targets::f::{{closure}}`.
//! It is `Future::poll(self: Pin<&mut Self>, cx: &mut Context) -> Poll<T>`.
//! Seen in `llvm-objdump -d` of the kernel:
//!
//! | target             | `Poll<T>` returned            | self | cx |
//! |--------------------|-------------------------------|------|----|
//! | `await_n`          | a0: 0 Ready, 1 Pending        | a0   | a1 |
//! | `sleepy`           | a0: 0 Ready, 1 Pending        | a0   | a1 |
//! | `sum_after_yields` | a0: 0 Ready, 1 Pending; a1: the usize when Ready | a0 | a1 |
//! | `checked`          | memory at the pointer in a0   | a1   | a2 |
//! | `big`              | memory at the pointer in a0   | a1   | a2 |
//!
//! Only `Poll<()>` (one scalar) and `Poll<usize>` (a scalar pair: tag, value)
//! come back in registers. `Poll<Result<u64, TargetError>>` is 16 bytes, yet
//! not a scalar pair (tag, error byte, u64), so the Rust ABI returns it
//! through a hidden pointer in a0 like the 40-byte `Poll<Big>`; the state
//! machine and the context then move to a1 and a2. Layouts in that memory:
//! - `Poll<Result<u64, TargetError>>`: byte 0 = 0 Ok / 1 Err / 2 Pending
//!   (niche in Result's tag), byte 1 = the `TargetError` (0 Zero,
//!   1 Overflow), u64 at +8 = the Ok value.
//! - `Poll<Big>`: u64 at +0 = 0 Ready / 1 Pending, `Big { a, b, c, d }` at
//!   +8, +16, +24, +32.
//!
//! The hidden pointer is the caller's: a return probe must read it at entry
//! (a0) and the value at return, since a0 on return is not the result.
//! In the state machine a byte holds the coroutine state: 0 unresumed,
//! 1 returned, 2 panicked, 3.. suspended at an await (offset varies).

use super::{sleep_ticks, yield_now};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Held across a target's awaits so that its drop glue is a function of its
/// own. Glues that compile to the same code (futures that hold only a
/// `YieldNow`) may be merged into one, and which name survives depends on
/// symbol hashes, i.e. on the build: `AsyncProbe` finds a glue by name.
struct Mark<const ID: usize>;

/// Marks dropped, by target: what makes each `Mark<ID>`'s drop (and so
/// each glue) code of its own; nothing reads it.
static MARKS_DROPPED: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];

impl<const ID: usize> Drop for Mark<ID> {
    fn drop(&mut self) {
        MARKS_DROPPED[ID].fetch_add(1, Ordering::Relaxed);
    }
}

/// Yields `n` times.
#[inline(never)]
pub async fn await_n(n: usize) {
    let _mark = Mark::<0>;
    for _ in 0..n {
        yield_now().await;
    }
}

/// 1 + 2 + .. + n, yielding before each addition.
#[inline(never)]
pub async fn sum_after_yields(n: usize) -> usize {
    let _mark = Mark::<1>;
    let mut sum = 0;
    for i in 1..=n {
        yield_now().await;
        sum += i;
    }
    sum
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    Zero,
    Overflow,
}

/// `2 * n` after one yield; zero and overflow are errors.
#[inline(never)]
pub async fn checked(n: u64) -> Result<u64, TargetError> {
    let _mark = Mark::<2>;
    yield_now().await;
    match n {
        0 => Err(TargetError::Zero),
        _ => n.checked_mul(2).ok_or(TargetError::Overflow),
    }
}

/// Larger than two registers, so `Poll<Big>` cannot come back in a0/a1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Big {
    pub a: u64,
    pub b: u64,
    pub c: u64,
    pub d: u64,
}

/// `Big { n, 2n, 3n, 4n }` after one yield.
#[inline(never)]
pub async fn big(n: u64) -> Big {
    let _mark = Mark::<3>;
    yield_now().await;
    Big {
        a: n,
        b: n.wrapping_mul(2),
        c: n.wrapping_mul(3),
        d: n.wrapping_mul(4),
    }
}

/// Sleeps `ticks` ticks of the `time` CSR.
#[inline(never)]
pub async fn sleepy(ticks: u64) {
    sleep_ticks(ticks).await;
}
