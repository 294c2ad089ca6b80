//! Architecture backends. The core only talks to `arch::current`.
pub mod riscv;

pub use riscv as current;
