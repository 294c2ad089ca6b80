//! uprobes and uretprobes: probes in user programs.
//!
//! A probe names a place in a program file, `(path, address)` or
//! `(path, "symbol+0x10")`, and applies to every process running that
//! file: installed at each exec (`uprobes_init`), into processes already
//! running it at registration, removed from all at unregister. The
//! breakpoint goes into each process's private copy of its text; the
//! instruction is decoded and run as kprobes do (simulated when
//! PC-relative, else stepped in the process's slot page).
//!
//! - `os.rs`: the trait the OS implements (`UprobeOs`);
//! - `state.rs`: the snapshot the hit path reads, and its grace period;
//! - `hit.rs`: the hit path; `ret.rs`: uretprobe calls in flight;
//! - `registry.rs`: registration and the process lifecycle;
//! - `layout.rs`: the slot page and other pure helpers.

mod hit;
mod layout;
mod os;
mod registry;
mod state;

pub use layout::SLOT_PAGE_SIZE;
pub use os::{ProcessId, UprobeOs};
/// uretprobe calls in flight per process (a bounded pool, `calls.rs`:
/// exit and exec drop it, fork copies it).
pub const MAX_INSTANCES: usize = 16;

use crate::arch::current::{TrapFrame, UserContext};
use crate::error::{Error, Result};
use crate::point::{EntryAction, Post, Pre, PreAction, ProbeType, RetData, SeedHandler};
use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use registry::Registry;
use spin::{Mutex, Once};
use state::{Published, UProbe};

/// The uprobes manager: one global instance, `Uprobes::get()`.
pub struct Uprobes {
    os: Once<&'static dyn UprobeOs>,
    registry: Mutex<Registry>,
    published: Published,
}

static UPROBES: Uprobes = Uprobes {
    os: Once::new(),
    registry: Mutex::new(Registry::new()),
    published: Published::new(),
};

/// Sets uprobes up for `os`. Call once, before user breakpoints can reach
/// `uprobes_trap_handler`; later calls are ignored.
pub fn init_uprobes(os: &'static dyn UprobeOs) {
    UPROBES.os.call_once(|| os);
}

impl Uprobes {
    /// The global manager (usable before `init_uprobes`: registrations
    /// then fail with `NotInitialized`, traps are not handled).
    pub fn get() -> &'static Uprobes {
        &UPROBES
    }

    /// Seed API: registers a probe at user address `addr` of the program
    /// at `path`. Returns 0 or a negative errno (`Error::errno`).
    pub fn register_uprobes(
        &self,
        path: String,
        addr: usize,
        handler: SeedHandler,
        post_handler: Option<SeedHandler>,
        probe_type: ProbeType,
    ) -> isize {
        let b = Uprobe::new(&path)
            .addr(addr)
            .kind(probe_type)
            .seed_handlers(handler, post_handler);
        match self.register(b) {
            // The seed API has no handle: the probe stays registered until
            // `unregister_uprobes` (dropping a handle keeps it).
            Ok(_) => 0,
            Err(e) => e.errno(),
        }
    }

    /// Seed-style removal of every probe at `addr` of `path`. Returns 0 or
    /// a negative errno (-ENOENT when none is there).
    pub fn unregister_uprobes(&self, path: &str, addr: usize) -> isize {
        let ids: Vec<u64> = self
            .list()
            .into_iter()
            .filter(|p| p.path == path && p.addr == addr)
            .map(|p| p.id)
            .collect();
        if ids.is_empty() {
            return Error::NotRegistered.errno();
        }
        for id in ids {
            if let Err(e) = self.unregister(id) {
                return e.errno();
            }
        }
        0
    }

    /// Seed API: call from the OS's handler of breakpoints from user mode.
    /// Returns whether a probe owned the breakpoint (`cx` then says where
    /// the thread resumes); on `false` the OS treats it as a fault.
    #[link_section = ".text.rkprobes"]
    pub fn uprobes_trap_handler(&self, cx: &mut UserContext) -> bool {
        self.trap(cx)
    }

    /// Seed API: call in `exec` once the calling process runs its new
    /// program: installs the probes registered for that program, and
    /// releases what the old image had (slot page state, calls in flight).
    pub fn uprobes_init(&self) {
        if let Some(pid) = self.os.get().and_then(|os| os.current_process()) {
            let _ = self.init_process(pid);
        }
    }

    /// `uprobes_init` for process `pid` that the OS started itself (not
    /// through exec by the process): call before it first runs.
    pub fn process_started(&self, pid: ProcessId) {
        let _ = self.init_process(pid);
    }

    /// Call from the OS's handler of other user exceptions: a fault while
    /// a probed instruction ran in the slot page is moved to the probe's
    /// address (returned), where the OS reports it.
    pub fn uprobes_fault_handler(&self, cx: &mut UserContext) -> Option<usize> {
        self.fault(cx)
    }

    /// Call when process `pid` exits: its probe state goes.
    pub fn process_exit(&self, pid: ProcessId) {
        self.exit(pid)
    }

    /// Call when thread `thread` (`UprobeOs::current_thread`) of process
    /// `pid` ends while the process goes on: its uretprobe calls in flight
    /// can never return and their slots are freed. Returns how many.
    pub fn thread_exit(&self, pid: ProcessId, thread: u64) -> usize {
        self.thread_exit_inner(pid, thread)
    }

    /// Call for `fork`, from the forking thread: `copy` creates the child
    /// (copying `parent`'s memory) and returns it with its id; it runs
    /// while no probe changes, and the child is then probed as its parent
    /// (its copied slot page and breakpoints, and the forking thread's
    /// calls in flight).
    pub fn fork_process<T, E>(
        &self,
        parent: ProcessId,
        copy: impl FnOnce() -> core::result::Result<(T, ProcessId), E>,
    ) -> core::result::Result<T, E> {
        self.fork(parent, copy)
    }

    /// Every registered uprobe (empty from inside a handler).
    pub fn list(&self) -> Vec<UprobeInfo> {
        self.list_inner()
    }

    /// Processes that currently have a slot page, with its address.
    pub fn probed_processes(&self) -> Vec<(ProcessId, usize)> {
        self.probed_processes_inner()
    }

    /// Return-probe calls in flight in process `pid`.
    pub fn calls_in_flight(&self, pid: ProcessId) -> usize {
        self.calls_in_flight_inner(pid)
    }
}

/// A registered uprobe, as `Uprobes::list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UprobeInfo {
    pub id: u64,
    pub path: String,
    pub addr: usize,
    pub kind: ProbeType,
    pub hits: u64,
    pub missed: u64,
}

pub(crate) enum Target {
    Addr(usize),
    Offset(usize),
    Symbol(String),
}

/// Builds a uprobe: `Uprobe::new("/bin/fib").symbol("compute").pre(..)`.
#[must_use = "a probe does nothing until `register` is called"]
pub struct Uprobe {
    path: String,
    target: Target,
    kind: ProbeType,
    pre: Option<Pre>,
    post: Option<Post>,
}

impl Uprobe {
    /// A probe in the program at `path` (at its first instruction until
    /// `addr`, `offset` or `symbol` says otherwise).
    pub fn new(path: &str) -> Self {
        Uprobe {
            path: path.into(),
            target: Target::Offset(0),
            kind: ProbeType::Insn,
            pre: None,
            post: None,
        }
    }

    /// At user virtual address `addr` of the program (as linked).
    pub fn addr(mut self, addr: usize) -> Self {
        self.target = Target::Addr(addr);
        self
    }

    /// At `offset` bytes from the start of the program's text.
    pub fn offset(mut self, offset: usize) -> Self {
        self.target = Target::Offset(offset);
        self
    }

    /// At `name` or `name+offset` from the program's ELF symbols.
    pub fn symbol(mut self, spec: &str) -> Self {
        self.target = Target::Symbol(spec.into());
        self
    }

    crate::point::handler_setters!();

    pub fn register(self) -> Result<UprobeHandle> {
        Uprobes::get().register(self)
    }
}

/// A registered uprobe. Dropping the handle leaves the probe registered;
/// `unregister` removes it from every process.
pub struct UprobeHandle {
    probe: Arc<UProbe>,
    path: String,
}

impl UprobeHandle {
    pub fn id(&self) -> u64 {
        self.probe.id
    }
    pub fn addr(&self) -> usize {
        self.probe.addr
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    /// Times a thread hit it (entries, for a uretprobe).
    pub fn hits(&self) -> u64 {
        self.probe.hits.load(Ordering::Relaxed)
    }
    /// Hits not handled: a uretprobe entry that found its process's pool
    /// of calls in flight full.
    pub fn missed(&self) -> u64 {
        self.probe.missed.load(Ordering::Relaxed)
    }
    /// Removes the probe from every process running its program.
    pub fn unregister(self) -> Result<()> {
        Uprobes::get().unregister(self.probe.id)
    }
}
