//! RISC-V (RV64GC) backend.
pub mod frame;
