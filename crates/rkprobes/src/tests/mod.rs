//! Host tests of the library core (registry, hit path, counters) against a
//! fake OS whose "kernel text" is host memory holding hand-assembled RISC-V.
//!
//! The library has one global instance, so every test shares one fake OS
//! and works on its own function of the fake text. Tests that look at
//! global state (memory statistics, the whole text, the write log, unowned
//! breakpoints) take the `exclusive` lock; the others run in parallel under
//! `shared`. Nothing executes RISC-V: a test calls `handle_breakpoint` as
//! the trap would, and `harness` plays the hart that steps a slot.
//!
//! uprobes (`uprobes`, `uprobe_hits`) have their own fake OS, `fake_uos`,
//! with fake programs and processes; their tests run one at a time under
//! `fake_uos::world()`.
//!
//! Handlers never assert: a panic inside the hit path would leave the hart
//! "inside" for ever and hang every later unregistration. They record what
//! they saw, and the test checks it afterwards.

pub(crate) mod fake_os;
mod fake_text;
mod fake_uos;
mod harness;

mod concurrency;
mod counters;
mod errors;
mod handlers;
mod jumps;
mod nested;
mod patching;
mod retprobes;
mod unowned;
mod uprobe_hits;
mod uprobes;
