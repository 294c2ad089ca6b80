//! What the benchmark needs from a probe library, and rkprobes' answer.
//! The `kprobe` crate's answer is in `kprobe06/`.

use alloc::format;
use alloc::string::String;
use rkprobes::{Kprobe, ProbeHandle};

/// Handlers a probe is registered with; all of them are empty, so a row
/// measures the library, not the handler.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Handlers {
    Pre,
    PrePost,
    /// A return probe: entry and return handlers on a function's entry.
    EntryReturn,
    /// A function probe: call and return handlers that see the arguments
    /// and the return value alone (a library without that kind uses its
    /// return probe).
    CallReturn,
}

/// Memory a library holds for its probes, in bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub slot_bytes: usize,
    pub bookkeeping_bytes: usize,
    /// Of `bookkeeping_bytes`, the part that does not depend on probes.
    pub fixed_bytes: usize,
}

pub trait Tracer {
    /// The `impl=` name in the report.
    const IMPL: &'static str;
    type Probe;
    /// Registers a kprobe on the instruction at `addr`.
    fn register(&self, addr: usize, handlers: Handlers) -> Result<Self::Probe, String>;
    fn unregister(&self, probe: Self::Probe) -> Result<(), String>;
    /// Hits the library counted on `probe`, if it counts them (a check
    /// that the measured loop really hit the probe).
    fn hits(&self, probe: &Self::Probe) -> Option<u64>;
    fn memory(&self) -> Memory;
    /// How the memory figures were obtained, for the report's comment line.
    const MEMORY_NOTE: &'static str;
}

pub struct Rkprobes;

impl Tracer for Rkprobes {
    const IMPL: &'static str = "rkprobes";
    type Probe = ProbeHandle;

    fn register(&self, addr: usize, handlers: Handlers) -> Result<ProbeHandle, String> {
        let k = match handlers {
            Handlers::Pre => Kprobe::at(addr).pre(|_| ()),
            Handlers::PrePost => Kprobe::at(addr).pre(|_| ()).post(|_| ()),
            Handlers::EntryReturn => Kprobe::function(addr).entry(|_, _| ()).ret(|_, _| ()),
            Handlers::CallReturn => Kprobe::function(addr)
                .on_call(|_, _| ())
                .on_return(|_, _| ()),
        };
        k.register().map_err(|e| format!("{e:?}"))
    }

    fn unregister(&self, probe: ProbeHandle) -> Result<(), String> {
        probe.unregister().map_err(|e| format!("{e:?}"))
    }

    fn hits(&self, probe: &ProbeHandle) -> Option<u64> {
        Some(probe.hits())
    }

    fn memory(&self) -> Memory {
        let m = rkprobes::memory_stats();
        Memory {
            slot_bytes: m.slot_bytes,
            bookkeeping_bytes: m.bookkeeping_bytes,
            fixed_bytes: m.fixed_bytes,
        }
    }

    const MEMORY_NOTE: &'static str = "from rkprobes::memory_stats()";
}
