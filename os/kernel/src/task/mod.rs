//! Kernel tasks: a small async executor shared by every hart.
//!
//! `spawn` puts a future on one global run queue; `run_on_harts` makes every
//! hart pull from that queue until no task is left, so a task may be polled
//! on a different hart each time it is woken. `sleep_ticks` and `yield_now`
//! are the two leaf futures tasks await; `targets` holds the `async fn`s
//! that async-probe tests attach to.

pub mod demo;
mod executor;
mod timer;
mod waker;
mod yield_now;

pub mod targets;
pub mod trace_demo;

pub use executor::{run_on_harts, spawn, TaskHandle};
pub use timer::sleep_ticks;
pub use yield_now::yield_now;
