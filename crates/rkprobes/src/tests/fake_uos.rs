//! A `UprobeOs` over host memory: two fake program files of hand-assembled
//! RISC-V (`/bin/a`, `/bin/b`, the same functions in another order), fake
//! processes (a program, a private copy of its text, the slot page once
//! mapped), a log of what the library wrote, and the calling thread's
//! current process. Plus playing the user thread: a breakpoint trap, the
//! step of an out-of-line slot, exec, fork and exit.
//!
//! The uprobes manager is one global instance, so the tests of uprobes run
//! one at a time: `world()` takes the lock and clears what an earlier
//! (maybe failed) test left behind.

use super::fake_text::{Op, C_NOP, C_RET, EBREAK, FN_STRIDE, FOREIGN_BREAKPOINTS, STANDARD};
use super::harness::emulate;
use crate::uprobe::{ProcessId, SLOT_PAGE_SIZE};
use crate::{init_uprobes, TrapFrame, UprobeOs, Uprobes};
use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// Where every program's text is linked.
pub const TEXT_BASE: usize = 0x1_0000;
/// Where the fake OS maps every process's slot page.
pub const SLOT_VA: usize = 0x3fff_f000;
/// The user stack pointer and return address of `frame`.
pub const STACK: usize = 0x3fff_0000;
pub const CALLER: usize = 0x2_0000;

pub const A: &str = "/bin/a";
pub const B: &str = "/bin/b";

pub const ECALL: u32 = 0x0000_0073; // ecall
const SYSCALL: &[Op] = &[Op::W(ECALL), Op::C(C_RET)];

/// A program's functions, `FN_STRIDE` apart from `TEXT_BASE`.
type Functions = &'static [(&'static str, &'static [Op])];

const PROGRAMS: &[(&str, Functions)] = &[
    (
        A,
        &[
            ("main", STANDARD),
            ("work", STANDARD),
            ("sys", SYSCALL),
            ("foreign", FOREIGN_BREAKPOINTS),
        ],
    ),
    (
        B,
        &[
            ("foreign", FOREIGN_BREAKPOINTS),
            ("work", STANDARD),
            ("main", STANDARD),
        ],
    ),
];

struct Program {
    path: &'static str,
    text: Vec<u8>,
    /// `(name, address, size)`.
    symbols: Vec<(&'static str, usize, usize)>,
}

impl Program {
    fn new(path: &'static str, functions: &[(&'static str, &[Op])]) -> Self {
        let mut text = Vec::new();
        let mut symbols = Vec::new();
        for (name, ops) in functions {
            let start = text.len();
            for op in *ops {
                match *op {
                    Op::C(p) => text.extend(p.to_le_bytes()),
                    Op::W(w) => text.extend(w.to_le_bytes()),
                }
            }
            symbols.push((*name, TEXT_BASE + start, text.len() - start));
            while text.len() < start + FN_STRIDE {
                text.extend(C_NOP.to_le_bytes());
            }
        }
        Program {
            path,
            text,
            symbols,
        }
    }

    fn range(&self) -> Range<usize> {
        TEXT_BASE..TEXT_BASE + self.text.len()
    }
}

/// One fake process: its program, its own copy of the text, and the slot
/// page once the library asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub path: &'static str,
    pub text: Vec<u8>,
    pub slot: Option<Vec<u8>>,
}

impl Process {
    /// The bytes at `va` (text or slot page), if all of them are mapped.
    fn mem(&mut self, va: usize, n: usize) -> Option<&mut [u8]> {
        let (base, bytes) = if va >= SLOT_VA {
            (SLOT_VA, self.slot.as_deref_mut()?)
        } else {
            (TEXT_BASE, &mut self.text[..])
        };
        let from = va.checked_sub(base)?;
        bytes.get_mut(from..from.checked_add(n)?)
    }
}

/// What the library asked the OS to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Write {
        pid: ProcessId,
        va: usize,
        bytes: Vec<u8>,
    },
    MapSlotPage {
        pid: ProcessId,
    },
}

pub struct FakeUos {
    programs: Vec<Program>,
    procs: Mutex<BTreeMap<ProcessId, Process>>,
    next_pid: AtomicU64,
    log: Mutex<Vec<Event>>,
}

static NEXT_HART: AtomicUsize = AtomicUsize::new(0);
std::thread_local! {
    static HART: Cell<Option<usize>> = const { Cell::new(None) };
    static CURRENT: Cell<Option<ProcessId>> = const { Cell::new(None) };
    static THREAD: Cell<u64> = const { Cell::new(0) };
}

/// The thread the calling test thread "is" in its process (what
/// `current_thread` says).
pub fn set_thread(thread: u64) {
    THREAD.with(|t| t.set(thread));
}

/// The process the calling test thread "runs" (what `current_process`
/// says).
pub fn set_current(pid: Option<ProcessId>) {
    CURRENT.with(|c| c.set(pid));
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The one fake OS, with uprobes initialised on it.
pub fn uos() -> &'static FakeUos {
    static OS: OnceLock<&'static FakeUos> = OnceLock::new();
    OS.get_or_init(|| {
        let os: &'static FakeUos = Box::leak(Box::new(FakeUos::new()));
        init_uprobes(os);
        os
    })
}

/// The uprobes tests' turn: the lock, with no probe and no process left.
pub fn world() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = lock(&LOCK);
    let os = uos();
    let up = Uprobes::get();
    for p in up.list() {
        let _ = up.unregister(p.id);
    }
    let pids: Vec<_> = lock(&os.procs).keys().copied().collect();
    for pid in pids {
        exit(pid);
    }
    assert!(up.list().is_empty(), "probes left over");
    assert!(up.probed_processes().is_empty(), "processes left over");
    set_current(None);
    guard
}

impl FakeUos {
    fn new() -> Self {
        FakeUos {
            programs: PROGRAMS
                .iter()
                .map(|(path, fns)| Program::new(path, fns))
                .collect(),
            procs: Mutex::new(BTreeMap::new()),
            next_pid: AtomicU64::new(1),
            log: Mutex::new(Vec::new()),
        }
    }

    fn program(&self, path: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.path == path)
    }

    /// Address of function `name` of the program at `path`.
    pub fn sym(&self, path: &str, name: &str) -> usize {
        self.elf_symbol(path, name)
            .unwrap_or_else(|| panic!("no {name} in {path}"))
            .0
    }

    pub fn text_end(&self, path: &str) -> usize {
        self.program(path).expect("program").range().end
    }

    /// `n` bytes of the program file at `va`.
    pub fn file(&self, path: &str, va: usize, n: usize) -> Vec<u8> {
        let mut buf = alloc::vec![0; n];
        assert!(self.read_file_text(path, va, &mut buf), "{path} {va:#x}");
        buf
    }

    /// A new process running `path` (the OS's part of spawning it).
    pub fn spawn(&self, path: &str) -> ProcessId {
        let prog = self.program(path).expect("program");
        let pid = self.next_pid.fetch_add(1, Ordering::Relaxed);
        let p = Process {
            path: prog.path,
            text: prog.text.clone(),
            slot: None,
        };
        lock(&self.procs).insert(pid, p);
        pid
    }

    /// `pid` now runs `path`: a fresh text, no slot page (the OS's part
    /// of exec).
    pub fn replace_image(&self, pid: ProcessId, path: &str) {
        let prog = self.program(path).expect("program");
        let mut procs = lock(&self.procs);
        let p = procs.get_mut(&pid).expect("process");
        *p = Process {
            path: prog.path,
            text: prog.text.clone(),
            slot: None,
        };
    }

    /// A copy of `parent`, memory and all (the OS's part of fork).
    pub fn copy_process(&self, parent: ProcessId) -> ProcessId {
        let pid = self.next_pid.fetch_add(1, Ordering::Relaxed);
        let mut procs = lock(&self.procs);
        let copy = procs.get(&parent).expect("parent").clone();
        procs.insert(pid, copy);
        pid
    }

    /// `n` bytes of `pid`'s memory (text or slot page) at `va`.
    pub fn mem(&self, pid: ProcessId, va: usize, n: usize) -> Vec<u8> {
        let mut procs = lock(&self.procs);
        let p = procs.get_mut(&pid).expect("process");
        p.mem(va, n)
            .unwrap_or_else(|| panic!("pid {pid}: {va:#x} not mapped"))
            .to_vec()
    }

    /// The whole of one process.
    pub fn process(&self, pid: ProcessId) -> Process {
        lock(&self.procs).get(&pid).expect("process").clone()
    }

    /// Every process, for "nothing changed" checks.
    pub fn processes(&self) -> BTreeMap<ProcessId, Process> {
        lock(&self.procs).clone()
    }

    pub fn log_len(&self) -> usize {
        lock(&self.log).len()
    }

    pub fn events_since(&self, start: usize) -> Vec<Event> {
        lock(&self.log)[start..].to_vec()
    }
}

impl UprobeOs for FakeUos {
    fn hart_id(&self) -> usize {
        HART.with(|h| {
            let id = h
                .get()
                .unwrap_or_else(|| NEXT_HART.fetch_add(1, Ordering::Relaxed));
            h.set(Some(id));
            id
        })
    }

    fn current_process(&self) -> Option<ProcessId> {
        CURRENT.with(|c| c.get())
    }

    fn current_thread(&self) -> u64 {
        THREAD.with(|t| t.get())
    }

    fn process_path(&self, pid: ProcessId) -> Option<String> {
        lock(&self.procs).get(&pid).map(|p| p.path.to_owned())
    }

    fn processes_running(&self, path: &str) -> Vec<ProcessId> {
        lock(&self.procs)
            .iter()
            .filter(|(_, p)| p.path == path)
            .map(|(&pid, _)| pid)
            .collect()
    }

    fn read_user(&self, pid: ProcessId, va: usize, buf: &mut [u8]) -> bool {
        let mut procs = lock(&self.procs);
        let Some(bytes) = procs.get_mut(&pid).and_then(|p| p.mem(va, buf.len())) else {
            return false;
        };
        buf.copy_from_slice(bytes);
        true
    }

    fn write_user_text(&self, pid: ProcessId, path: &str, va: usize, bytes: &[u8]) -> bool {
        let mut procs = lock(&self.procs);
        let Some(p) = procs.get_mut(&pid).filter(|p| p.path == path) else {
            return false;
        };
        let to = p
            .mem(va, bytes.len())
            .unwrap_or_else(|| panic!("pid {pid}: write outside text and slot page at {va:#x}"));
        to.copy_from_slice(bytes);
        lock(&self.log).push(Event::Write {
            pid,
            va,
            bytes: bytes.to_vec(),
        });
        true
    }

    fn map_slot_page(&self, pid: ProcessId, path: &str) -> Option<usize> {
        let mut procs = lock(&self.procs);
        let p = procs.get_mut(&pid).filter(|p| p.path == path)?;
        if p.slot.is_none() {
            p.slot = Some(alloc::vec![0; SLOT_PAGE_SIZE]);
            lock(&self.log).push(Event::MapSlotPage { pid });
        }
        Some(SLOT_VA)
    }

    fn read_file_text(&self, path: &str, va: usize, buf: &mut [u8]) -> bool {
        let Some(prog) = self.program(path) else {
            return false;
        };
        let from = va.wrapping_sub(TEXT_BASE);
        match prog.text.get(from..from.saturating_add(buf.len())) {
            Some(bytes) if va >= TEXT_BASE => {
                buf.copy_from_slice(bytes);
                true
            }
            _ => false,
        }
    }

    fn text_range(&self, path: &str) -> Option<Range<usize>> {
        self.program(path).map(Program::range)
    }

    fn elf_symbol(&self, path: &str, name: &str) -> Option<(usize, usize)> {
        let prog = self.program(path)?;
        let &(_, addr, size) = prog.symbols.iter().find(|s| s.0 == name)?;
        Some((addr, size))
    }

    fn function_at(&self, path: &str, addr: usize) -> Option<(usize, usize)> {
        let prog = self.program(path)?;
        let &(_, start, size) = prog
            .symbols
            .iter()
            .find(|&&(_, start, size)| (start..start + size).contains(&addr))?;
        Some((start, size))
    }
}

// The process lifecycle as the OS runs it, with the library's hooks.

/// Spawns a process of `path` and lets uprobes install into it.
pub fn start(path: &str) -> ProcessId {
    let pid = uos().spawn(path);
    Uprobes::get().process_started(pid);
    pid
}

/// `pid` execs `path` (the library hook runs in the process itself).
pub fn exec(pid: ProcessId, path: &str) {
    uos().replace_image(pid, path);
    set_current(Some(pid));
    Uprobes::get().uprobes_init();
}

/// `parent` forks; returns the child.
pub fn fork(parent: ProcessId) -> ProcessId {
    let copy = || {
        Ok::<_, ()>({
            let child = uos().copy_process(parent);
            (child, child)
        })
    };
    Uprobes::get().fork_process(parent, copy).expect("fork")
}

/// `pid` exits.
pub fn exit(pid: ProcessId) {
    lock(&uos().procs).remove(&pid);
    Uprobes::get().process_exit(pid);
}

// Playing the user thread.

/// A user-mode frame trapped at `pc`, called from `CALLER` with `STACK`.
pub fn frame(pc: usize) -> TrapFrame {
    let mut tf = TrapFrame {
        sepc: pc,
        ..TrapFrame::default()
    };
    tf.set_reg(TrapFrame::SP, STACK);
    tf.set_reg(TrapFrame::RA, CALLER);
    tf
}

/// A breakpoint trap of process `pid` at `tf.sepc`: whether uprobes owned
/// it.
pub fn trap(pid: ProcessId, tf: &mut TrapFrame) -> bool {
    set_current(Some(pid));
    Uprobes::get().uprobes_trap_handler(tf)
}

pub fn in_slot_page(pc: usize) -> bool {
    (SLOT_VA..SLOT_VA + SLOT_PAGE_SIZE).contains(&pc)
}

/// How a hit the library owned went on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Sent to the slot at `slot`, stepped there and brought back.
    Stepped { slot: usize },
    /// Resumed at `tf.sepc` after one trap.
    Resumed,
}

/// A breakpoint trap at `tf.sepc`, with the step through the slot page if
/// the library sends the thread there: the slot must hold the file's
/// instruction and a breakpoint, which must bring it back after the
/// instruction.
pub fn try_hit(pid: ProcessId, tf: &mut TrapFrame) -> Result<Path, String> {
    let addr = tf.pc();
    if !trap(pid, tf) {
        return Err(format!("breakpoint at {addr:#x} not owned"));
    }
    let slot = tf.pc();
    if !in_slot_page(slot) {
        return Ok(Path::Resumed);
    }
    let path = uos().process(pid).path;
    let len = if uos().file(path, addr, 2)[0] & 0b11 == 0b11 {
        4
    } else {
        2
    };
    let code = uos().mem(pid, slot, len + 4);
    let mut want = uos().file(path, addr, len);
    want.extend(EBREAK.to_le_bytes());
    if code != want {
        return Err(format!(
            "slot {slot:#x} for {addr:#x} holds {code:x?}, not {want:x?}"
        ));
    }
    emulate(&code[..len], tf)?;
    tf.set_pc(slot + len);
    if !trap(pid, tf) {
        return Err(format!("slot return {:#x} not owned", slot + len));
    }
    if tf.pc() != addr + len {
        return Err(format!(
            "after the step pc {:#x}, not {:#x}",
            tf.pc(),
            addr + len
        ));
    }
    Ok(Path::Stepped { slot })
}

/// `try_hit` that must succeed.
pub fn hit(pid: ProcessId, tf: &mut TrapFrame) -> Path {
    try_hit(pid, tf).unwrap_or_else(|e| panic!("pid {pid}: {e}"))
}
