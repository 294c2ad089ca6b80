//! rkprobes: dynamic tracing for kernels written in Rust.
//!
//! - `os.rs`: the trait an OS implements (`KprobeOs`);
//! - `hit.rs`: the hit path (`kprobes_trap_handler`);
//! - `registry.rs`: registration and removal;
//! - `arch/riscv/`: decoder, simulator, breakpoints, slots.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod api;
pub mod arch;
mod asyncprobe;
mod calls;
mod error;
mod global;
mod hart;
mod hit;
mod os;
mod point;
mod registry;
mod retprobe;
mod seed;
pub mod symbols;
mod table;
#[cfg(test)]
mod tests;
mod text;
pub mod uprobe;

pub use api::{
    jump_probes, memory_stats, probes, register_many, set_jump_probes, unregister_addr,
    unregister_id, unregister_many, Kprobe, MemoryStats, ProbeHandle, ProbeInfo,
};
pub use arch::current::{CallRegs, ReturnRegs, TrapFrame, UserContext};
pub use asyncprobe::{AsyncEvent, AsyncEventKind, AsyncHandle, AsyncProbe, AsyncSummary, Returned};
pub use error::{Error, Result};
pub use global::{init, init_dyn, Config};
pub use hit::{
    handle_breakpoint, kprobes_fault_handler, kprobes_trap_handler, unowned_breakpoints,
};
pub use os::{KprobeOs, Symbol};
pub use point::{EntryAction, PreAction, ProbeType, RetData, SeedHandler};
pub use retprobe::{reclaim_stack, MAX_ACTIVE};
pub use seed::{kprobe_register, kprobe_unregister};
/// The mutex of the seed API's handler type.
pub use spin::Mutex;
pub use uprobe::{init_uprobes, Uprobe, UprobeHandle, UprobeInfo, UprobeOs, Uprobes};
