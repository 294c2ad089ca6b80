//! Capturing what processes print, for byte-for-byte checks.
//!
//! Between `begin` and `end`, every `write` system call (one per user
//! `print!`/`println!`) and every kernel message about a process (such as
//! `[KERNEL] process 3 (/bin/fault) killed: ...`) is recorded with the
//! pid it belongs to, in the order the writes happened, besides going to
//! the console as always.

use crate::arch::IrqGuard;
use alloc::string::String;
use alloc::vec::Vec;
use spin::Mutex;

/// One write: the pid and the bytes.
pub type Record = (usize, Vec<u8>);

static CAPTURE: Mutex<Option<Vec<Record>>> = Mutex::new(None);

/// Output recorded between `begin` and `end`.
#[derive(Debug, Default)]
pub struct Captured {
    pub records: Vec<Record>,
}

impl Captured {
    /// Everything process `pid` wrote, in order.
    pub fn of(&self, pid: usize) -> String {
        self.text(|p| p == pid)
    }

    /// Everything every process wrote, in the order of the writes.
    pub fn all(&self) -> String {
        self.text(|_| true)
    }

    fn text(&self, keep: impl Fn(usize) -> bool) -> String {
        let bytes: Vec<u8> = self
            .records
            .iter()
            .filter(|(pid, _)| keep(*pid))
            .flat_map(|(_, b)| b.iter().copied())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Starts recording (dropping anything recorded before).
pub fn begin() {
    let _irq = IrqGuard::new();
    *CAPTURE.lock() = Some(Vec::new());
}

/// Stops recording and returns what was recorded.
pub fn end() -> Captured {
    let _irq = IrqGuard::new();
    Captured {
        records: CAPTURE.lock().take().unwrap_or_default(),
    }
}

/// Records `bytes` written by (or about) process `pid`.
pub(crate) fn record(pid: usize, bytes: &[u8]) {
    let _irq = IrqGuard::new();
    if let Some(records) = CAPTURE.lock().as_mut() {
        records.push((pid, bytes.to_vec()));
    }
}
