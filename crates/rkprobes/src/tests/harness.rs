//! Playing the hart: trap frames, a breakpoint hit including the step of
//! an out-of-line slot, and the locks that order tests sharing the one
//! library instance.

use super::fake_os::os;
use super::fake_text::*;
use crate::{handle_breakpoint, kprobes_fault_handler, KprobeOs, TrapFrame};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub const SSTATUS_SPIE: usize = 1 << 5;
const SSTATUS_SPP: usize = 1 << 8;

static LOCK: RwLock<()> = RwLock::new(());

/// For tests that only touch their own fake function.
pub fn shared() -> RwLockReadGuard<'static, ()> {
    os();
    LOCK.read().unwrap_or_else(PoisonError::into_inner)
}

/// For tests that look at global state.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    os();
    LOCK.write().unwrap_or_else(PoisonError::into_inner)
}

/// A kernel-mode frame trapped at `pc`, interrupts enabled before the trap.
pub fn frame(pc: usize) -> TrapFrame {
    TrapFrame {
        sepc: pc,
        sstatus: SSTATUS_SPIE | SSTATUS_SPP,
        ..TrapFrame::default()
    }
}

/// How a hit the library owned went on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The library sent the hart to `slot`; we stepped it and came back.
    Stepped { slot: usize },
    /// Resumed at `tf.sepc` after one trap (simulated, skipped, or the
    /// breakpoint was already gone).
    Resumed,
}

/// A breakpoint trap at `tf.sepc`, with the slot step if the library asks
/// for one. Never panics and never leaves the hart inside the hit path: a
/// failed step is abandoned as a fault would abandon it.
pub fn try_hit(tf: &mut TrapFrame) -> Result<Path, String> {
    let addr = tf.sepc;
    if !handle_breakpoint(tf) {
        return Err(format!("breakpoint at {addr:#x} not owned"));
    }
    let slot = tf.sepc;
    if !os().slot_area().contains(&slot) {
        return Ok(Path::Resumed);
    }
    let r = step(addr, slot, tf);
    if r.is_err() {
        let mut fault = frame(slot);
        kprobes_fault_handler(&mut fault);
    }
    r
}

/// `try_hit` that must succeed (not for use inside handlers).
pub fn hit(tf: &mut TrapFrame) -> Path {
    try_hit(tf).unwrap_or_else(|e| panic!("{e}"))
}

fn step(addr: usize, slot: usize, tf: &mut TrapFrame) -> Result<Path, String> {
    let sstatus = tf.sstatus | SSTATUS_SPIE; // frames from `frame` have SPIE
    if tf.sstatus & SSTATUS_SPIE != 0 {
        return Err(format!("slot {slot:#x} entered with interrupts unmasked"));
    }
    let len = os().insn_len(addr);
    let code = os().bytes(slot, len + 4);
    let mut want = os().pristine(addr, len);
    want.extend(EBREAK.to_le_bytes());
    if code != want {
        return Err(format!(
            "slot {slot:#x} for {addr:#x} holds {code:x?}, not {want:x?}"
        ));
    }
    emulate(&code[..len], tf)?;
    tf.sepc = slot + len;
    if !handle_breakpoint(tf) {
        return Err(format!("slot return {:#x} not owned", slot + len));
    }
    if tf.sepc != addr + len {
        return Err(format!(
            "after the step pc {:#x}, not {:#x}",
            tf.sepc,
            addr + len
        ));
    }
    if tf.sstatus != sstatus {
        return Err(format!("sstatus {:#x} not restored", tf.sstatus));
    }
    Ok(Path::Stepped { slot })
}

/// Runs one of the fake text's out-of-line instructions on `tf` (what the
/// hart would do in the slot).
pub fn emulate(code: &[u8], tf: &mut TrapFrame) -> Result<(), String> {
    const A0: usize = 10;
    const A1: usize = 11;
    let lo = u16::from_le_bytes([code[0], code[1]]);
    let raw = if code.len() == 4 {
        lo as u32 | (u16::from_le_bytes([code[2], code[3]]) as u32) << 16
    } else {
        lo as u32
    };
    match raw {
        r if r == C_LI_A0_1 as u32 || r == ADDI_A0_ZERO_1 => tf.x[A0] = 1,
        r if r == C_MV_A1_A0 as u32 => tf.x[A1] = tf.x[A0],
        ADDI_A0_A0_5 => tf.x[A0] = tf.x[A0].wrapping_add(5),
        ADD_A0_A0_A1 => tf.x[A0] = tf.x[A0].wrapping_add(tf.x[A1]),
        _ => return Err(format!("cannot emulate {raw:#x}")),
    }
    Ok(())
}

/// A shared counter and a closure that bumps it, for handlers.
pub fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

pub fn get(c: &AtomicUsize) -> usize {
    c.load(Ordering::SeqCst)
}
