//! rkprobes: dynamic tracing for kernels written in Rust.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod arch;
