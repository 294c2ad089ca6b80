//! The one trait an OS implements to host rkprobes.
//!
//! Everything OS-specific the library needs goes through here: patching
//! text, making patched code visible to every hart, the executable area for
//! out-of-line slots, hart identity, symbols and the OS's own blacklist.

use core::ops::Range;

/// A function as the OS's symbol table knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: &'static str,
    pub addr: usize,
    pub size: usize,
}

impl Symbol {
    pub fn contains(&self, addr: usize) -> bool {
        addr >= self.addr && addr < self.addr + self.size
    }
}

/// Services the OS provides. Methods that the hit path calls (`hart_id`)
/// must not be probeable: keep them in the OS's blacklisted trap text.
pub trait KprobeOs: Sync {
    /// Writes `bytes` over kernel text at `addr`. Kernel text is normally
    /// not writable; write through a writable alias (a linear map, a
    /// temporary mapping). Must not fail for addresses in `text_range` or
    /// `slot_area`. A write of 2 or 4 bytes to an address aligned to its
    /// size must be one store (other harts fetch either old or new bytes).
    fn write_text(&self, addr: usize, bytes: &[u8]);

    /// Makes all earlier `write_text`s visible to instruction fetch on every
    /// hart (RISC-V: local `fence.i` plus SBI remote `fence.i`) before it
    /// returns.
    fn sync_icache_all_harts(&self);

    /// Makes earlier `write_text`s visible to this hart's own instruction
    /// fetch (RISC-V: `fence.i`). Called from the hit path, interrupts
    /// masked: the default (a sync of every hart) is correct but slow and
    /// may wait on other harts from a trap; implement it.
    fn sync_icache_local(&self) {
        self.sync_icache_all_harts();
    }

    /// The calling hart's index, below `max_harts()`.
    fn hart_id(&self) -> usize;

    /// A monotonic clock in the OS's timer ticks, for async probes'
    /// timings. Called from the hit path: keep it out of probeable text.
    /// Default: no clock (all timings read 0).
    fn now_ticks(&self) -> u64 {
        0
    }

    /// Upper bound of hart indices.
    fn max_harts(&self) -> usize;

    /// Kernel text that may be probed (blacklist applies on top).
    fn text_range(&self) -> Range<usize>;

    /// An executable area, mapped for the kernel, that the library owns for
    /// out-of-line slots and trampolines. Written with `write_text`.
    fn slot_area(&self) -> Range<usize>;

    /// The function containing `addr`, for instruction-boundary checks and
    /// for naming addresses.
    fn symbol_at(&self, _addr: usize) -> Option<Symbol> {
        None
    }

    /// A function by name (demangled, e.g. `kernel::test::kprobes::sum`).
    fn symbol_by_name(&self, _name: &str) -> Option<Symbol> {
        None
    }

    /// Addresses the OS forbids probing beyond the library's own rules:
    /// its trap entry, its `hart_id`, the code that runs with the library's
    /// hit path (`.text.rkprobes` sections), anything marked no-probe.
    fn is_blacklisted(&self, addr: usize) -> bool;

    /// Whether this OS implements `wait_harts_out_of`. If it does, a
    /// compressed instruction may get a jump probe (no trap per hit) that
    /// covers the start of the next instruction too. Default: no (such
    /// instructions keep a breakpoint).
    ///
    /// Say yes only if, besides, kernel code is entered only at function
    /// starts, symbols of the symbol table, return addresses (`ra` or a
    /// link register set by a call) and through each function's own
    /// direct branches: no unwinder landing pads, no fault fix-up
    /// addresses that are not symbols, no code addresses made in one
    /// function and jumped to from another. The library checks direct
    /// branches, `auipc`-made addresses and indirect jumps in the function
    /// (`arch/riscv/region.rs`). Also: no hart may wait for the library's
    /// registry (`register`, `unregister`, `reclaim_stack`) with
    /// interrupts masked, and none registers from a trap handler, as the
    /// registering hart waits for the others to take an interrupt. And a
    /// fault in the covered instruction's copy is reported at that
    /// instruction (`kprobes_fault_handler`'s result) while the frame's pc
    /// stays in the copy: restart at the frame's pc, not at the result.
    fn can_wait_harts_out_of(&self) -> bool {
        false
    }

    /// Returns once no other hart is stopped with its pc in any of
    /// `ranges`: none interrupted there (a trap in progress returns into
    /// it) and no task switched out there. Harts that run on get there no
    /// more: the library has put a breakpoint in front. For example:
    /// interrupt every other hart until each was interrupted outside the
    /// ranges; with kernel preemption, also wait until no preempted
    /// task's pc is in them (Linux waits for an RCU-tasks grace period).
    /// Called with the library's registry lock held, never from the hit
    /// path, once per batch of probes.
    fn wait_harts_out_of(&self, _ranges: &[Range<usize>]) {}

    /// Called while waiting for other harts to leave a probe.
    fn relax(&self) {
        core::hint::spin_loop();
    }
}
