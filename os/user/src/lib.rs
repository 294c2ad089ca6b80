//! The user runtime of the demo OS: `_start`, system call wrappers,
//! `print!`/`println!` and a panic handler.
//!
//! A program is `#![no_std] #![no_main]` and defines
//! `#[no_mangle] fn main(args: &[&str]) -> i32`; returning from it exits
//! the process with that code.
#![no_std]

#[macro_use]
pub mod console;
mod start;
pub mod syscall;

pub use syscall::{
    exec, exit, fork, gethartid, getpid, gettid, thread_exit, thread_join, thread_spawn, wait,
    write, yield_now,
};
