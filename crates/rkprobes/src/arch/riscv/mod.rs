//! RISC-V (RV64GC) backend: decoding, simulation, breakpoints, slots.
pub mod breakpoint;
pub mod decode;
pub mod detour;
pub mod frame;
pub mod insn;
pub mod order;
pub mod prepare;
pub mod region;
pub mod scratch;
pub mod simulate;
pub mod slot;
pub mod trampoline;

pub use decode::RejectReason;
pub use frame::{CallRegs, ReturnRegs, TrapFrame, UserContext};
pub use prepare::{
    insn_len_at, mask_irqs_on_return, prepare, restore_irqs, Exec, Prepared, Run, INSN_ALIGN,
};
pub use slot::SLOT_SIZE;
