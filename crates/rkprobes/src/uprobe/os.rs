//! The trait an OS implements to host uprobes: processes, their memory and
//! the program files they run.

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

/// An OS's process id, opaque to the library.
pub type ProcessId = u64;

/// Services for probes in user programs. Methods the hit path calls
/// (`current`, `hart_id`, `current_process`, `read_user`) must not be
/// kprobe targets.
pub trait UprobeOs: Sync {
    /// The calling hart's index: the same value every time on one hart
    /// (it names the hart's reader counters, and tells a handler's own
    /// registration attempt apart from another hart's).
    fn hart_id(&self) -> usize;

    /// The process the calling hart runs (the one that trapped).
    fn current_process(&self) -> Option<ProcessId>;

    /// `current_process` and `hart_id` at once: what the hit path asks on
    /// every hit (one call; an OS may answer both more cheaply). Must
    /// agree with those two.
    fn current(&self) -> Option<(ProcessId, usize)> {
        Some((self.current_process()?, self.hart_id()))
    }

    /// The calling thread (unique in its process while it lives; 0 for an
    /// OS with one thread per process). A uretprobe call belongs to the
    /// thread that made it: `Uprobes::thread_exit` drops the calls of a
    /// thread that ends, and a fork copies only the forking thread's.
    /// Called on a uretprobe's entry: keep it out of probeable text.
    fn current_thread(&self) -> u64 {
        0
    }

    /// The program file `pid` runs (the path of its last exec).
    fn process_path(&self, pid: ProcessId) -> Option<String>;

    /// Every live process running the program at `path`.
    fn processes_running(&self, path: &str) -> Vec<ProcessId>;

    /// Reads `pid`'s readable user memory.
    fn read_user(&self, pid: ProcessId, va: usize, buf: &mut [u8]) -> bool;

    /// Writes `bytes` into `pid`'s private copy of its text (or its slot
    /// page) at `va`, only if `pid` still runs `path`, checked atomically
    /// with the write (an exec in between must not receive another
    /// program's patch). A 2- or 4-byte write aligned to its size is one
    /// store. Every hart's instruction fetch sees the write on return.
    fn write_user_text(&self, pid: ProcessId, path: &str, va: usize, bytes: &[u8]) -> bool;

    /// Maps the slot page into `pid` (if it still runs `path`): one page of
    /// `SLOT_PAGE_SIZE` bytes, executable and readable for user mode, not
    /// writable by it, zero-filled. Idempotent: a second call returns the
    /// same address. The page belongs to the process's address space, so it
    /// goes away with it at exit and exec and is copied at fork.
    fn map_slot_page(&self, pid: ProcessId, path: &str) -> Option<usize>;

    /// Reads the program file's text at virtual address `va` (as loaded),
    /// for decoding at registration, independent of any process.
    fn read_file_text(&self, path: &str, va: usize, buf: &mut [u8]) -> bool;

    /// The executable range of the program at `path`; `None` if there is
    /// no such program.
    fn text_range(&self, path: &str) -> Option<Range<usize>>;

    /// Address and size of symbol `name` in the program's ELF symbols.
    fn elf_symbol(&self, path: &str, name: &str) -> Option<(usize, usize)>;

    /// Start and size of the function containing `addr` in the program.
    fn function_at(&self, path: &str, addr: usize) -> Option<(usize, usize)>;
}
