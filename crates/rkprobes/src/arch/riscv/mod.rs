//! RISC-V (RV64GC) backend.
pub mod decode;
pub mod frame;
pub mod insn;
pub mod simulate;
