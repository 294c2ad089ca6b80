//! RISC-V (RV64GC) backend.
