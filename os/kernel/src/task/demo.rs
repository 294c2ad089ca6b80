//! A short async run for `mode=demo`: one line per task.

use super::{run_on_harts, spawn, targets};
use alloc::vec::Vec;

pub fn run() {
    println!("async tasks on all harts:");
    let handles: Vec<_> = (1..=4)
        .map(|k| spawn(targets::sum_after_yields(10 * k)))
        .collect();
    run_on_harts();
    for (k, h) in (1..=4).map(|k| 10 * k).zip(&handles) {
        println!(
            "  sum_after_yields({k}) = {:?}, {} polls on harts {:#b}",
            h.take_output(),
            h.polls(),
            h.polled_on()
        );
    }
}
