//! Registration and removal: everything that changes probes, serialised by
//! one lock that the hit path never takes.
//!
//! Order of operations keeps every hart safe without stopping them:
//! - install: build the slot, publish the point, then write the breakpoint;
//! - remove: restore the original bytes, unpublish, wait until no hart can
//!   be in the point's handlers or slot, then free point and slot.

use crate::arch::current::{self as arch, trampoline::RET_STUB_SIZE, Prepared, SLOT_SIZE};
use crate::error::{Error, Result};
use crate::global::Kprobes;
use crate::hart;
use crate::point::{Probe, ProbePoint};
use crate::text;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;
use core::sync::atomic::Ordering;

const STUB_SLOTS: usize = RET_STUB_SIZE.div_ceil(SLOT_SIZE);

pub(crate) struct Registry {
    slot_base: usize,
    slot_used: Vec<bool>,
    pub probes: BTreeMap<u64, Arc<Probe>>,
    /// Unregistered return probes whose calls are still in flight.
    zombies: Vec<Arc<Probe>>,
    next_id: u64,
    max_points: usize,
    points: usize,
}

impl Registry {
    pub fn new(slots: Range<usize>, max_points: usize) -> Self {
        let n = (slots.end - slots.start) / SLOT_SIZE;
        Registry {
            slot_base: slots.start,
            slot_used: vec![false; n],
            probes: BTreeMap::new(),
            zombies: Vec::new(),
            next_id: 1,
            max_points,
            points: 0,
        }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }

    /// `n` contiguous free slots.
    fn alloc_slots(&mut self, n: usize) -> Option<usize> {
        let i = self
            .slot_used
            .windows(n)
            .position(|w| w.iter().all(|u| !u))?;
        self.slot_used[i..i + n].iter_mut().for_each(|u| *u = true);
        Some(self.slot_base + i * SLOT_SIZE)
    }

    fn free_slots(&mut self, slot: usize, n: usize) {
        let i = (slot - self.slot_base) / SLOT_SIZE;
        self.slot_used[i..i + n].iter_mut().for_each(|u| *u = false);
    }

    pub fn zombies(&self) -> impl Iterator<Item = &Arc<Probe>> {
        self.zombies.iter()
    }

    /// A trampoline stub for a return probe (not yet written).
    pub fn alloc_stub(&mut self) -> Result<usize> {
        self.alloc_slots(STUB_SLOTS).ok_or(Error::NoSpace)
    }

    pub fn free_stub(&mut self, stub: usize) {
        self.free_slots(stub, STUB_SLOTS);
    }

    /// Frees the stubs of unregistered return probes with no call left.
    pub fn reap(&mut self) {
        let (done, live): (Vec<_>, Vec<_>) = core::mem::take(&mut self.zombies)
            .into_iter()
            .partition(|p| {
                p.ret
                    .as_ref()
                    .is_none_or(|r| r.in_flight.load(Ordering::Acquire) == 0)
            });
        self.zombies = live;
        for p in done {
            if let Some(ret) = &p.ret {
                self.free_stub(ret.stub);
            }
        }
    }

    pub fn points(&self) -> usize {
        self.points
    }

    /// Bytes allocated once at `init` (the slot bitmap).
    pub fn fixed_bytes(&self) -> usize {
        self.slot_used.len()
    }

    pub fn slots_in_use(&self) -> usize {
        self.slot_used.iter().filter(|u| **u).count()
    }
}

/// Checks `addr` and decodes the instruction there. Changes nothing.
pub(crate) fn check_addr(kp: &Kprobes, addr: usize) -> Result<(Prepared, usize)> {
    if !addr.is_multiple_of(arch::INSN_ALIGN) {
        return Err(Error::Misaligned { addr });
    }
    let text = kp.os.text_range();
    if !text.contains(&addr) || kp.slots.contains(&addr) {
        return Err(Error::OutsideText { addr });
    }
    if kp.os.is_blacklisted(addr) {
        return Err(Error::Blacklisted { addr });
    }
    let func = kp.os.symbol_at(addr).ok_or(Error::NoFunction { addr })?;
    // Walk from the function's start; where a probe already sits, the text
    // holds a breakpoint, so take the original instruction's length.
    let mut at = func.addr;
    while at < addr {
        let len = match kp.table.lookup(at) {
            Some(point) => point.prepared.len(),
            None => arch::insn_len_at(&text::read(at, 2)).unwrap_or(0),
        };
        if len == 0 {
            break;
        }
        at += len;
    }
    if at != addr {
        return Err(Error::NotInstructionBoundary {
            addr,
            function: func.addr,
        });
    }
    if let Some(point) = kp.table.lookup(addr) {
        return Ok((point.prepared, func.addr));
    }
    let first = text::read(addr, 2);
    let n = arch::insn_len_at(&first).unwrap_or(2).min(4);
    if addr + n > text.end {
        return Err(Error::OutsideText { addr });
    }
    let prepared = arch::prepare(&text::read(addr, n)).map_err(|(mnemonic, reason)| {
        Error::UnsupportedInstruction {
            addr,
            mnemonic,
            reason,
        }
    })?;
    Ok((prepared, func.addr))
}

fn not_in_handler(kp: &Kprobes) -> Result<()> {
    if kp.hart().is_inside() {
        Err(Error::InHandler)
    } else {
        Ok(())
    }
}

fn synchronize(kp: &Kprobes) {
    hart::synchronize(&kp.harts, || kp.os.relax());
}

/// Frees a point that is no longer published, after a grace period.
fn retire(kp: &Kprobes, old: *mut ProbePoint) {
    if old.is_null() {
        return;
    }
    synchronize(kp);
    // SAFETY: `old` came from `Box::into_raw`, is unpublished, and the grace
    // period guarantees no hart still holds a reference to it.
    drop(unsafe { Box::from_raw(old) });
}

/// Adds `probe` at its address (already checked by `check_addr`).
pub(crate) fn install(
    kp: &Kprobes,
    reg: &mut Registry,
    probe: Arc<Probe>,
    prepared: Prepared,
) -> Result<()> {
    not_in_handler(kp)?;
    let addr = probe.addr;
    if let Some(old) = kp.table.lookup(addr) {
        let mut probes: Vec<Arc<Probe>> = old.probes.to_vec();
        probes.push(probe.clone());
        let point = Box::new(ProbePoint {
            addr,
            prepared: old.prepared,
            slot: old.slot,
            probes: probes.into(),
        });
        let old = kp
            .table
            .publish(Box::into_raw(point))
            .map_err(|_| Error::NoSpace)?;
        reg.probes.insert(probe.id, probe);
        retire(kp, old);
        return Ok(());
    }
    if reg.points >= reg.max_points {
        return Err(Error::NoSpace);
    }
    let slot = if prepared.needs_slot() {
        let slot = reg.alloc_slots(1).ok_or(Error::NoSpace)?;
        kp.os.write_text(slot, &prepared.slot_code());
        kp.os.sync_icache_all_harts();
        slot
    } else {
        0
    };
    let point = Box::into_raw(Box::new(ProbePoint {
        addr,
        prepared,
        slot,
        probes: Box::new([probe.clone()]),
    }));
    if kp.table.publish(point).is_err() {
        // SAFETY: never published, so ours alone.
        drop(unsafe { Box::from_raw(point) });
        if slot != 0 {
            reg.free_slots(slot, 1);
        }
        return Err(Error::NoSpace);
    }
    for &(off, parcel) in arch::breakpoint::arm(prepared.insn).steps() {
        text::write_parcel(kp.os, addr + off, parcel);
    }
    reg.points += 1;
    reg.probes.insert(probe.id, probe);
    Ok(())
}

/// Removes the probe `id`.
pub(crate) fn remove(kp: &Kprobes, reg: &mut Registry, id: u64) -> Result<()> {
    not_in_handler(kp)?;
    let probe = reg.probes.get(&id).cloned().ok_or(Error::NotRegistered)?;
    let addr = probe.addr;
    let old = kp.table.lookup(addr).ok_or(Error::NotRegistered)?;
    let rest: Vec<Arc<Probe>> = old.probes.iter().filter(|p| p.id != id).cloned().collect();
    if rest.is_empty() {
        for &(off, parcel) in arch::breakpoint::disarm(old.prepared.insn).steps() {
            text::write_parcel(kp.os, addr + off, parcel);
        }
        let slot = old.slot;
        let old = kp.table.remove(addr).unwrap_or(core::ptr::null_mut());
        retire(kp, old);
        if slot != 0 {
            reg.free_slots(slot, 1);
        }
        reg.points -= 1;
    } else {
        let point = Box::new(ProbePoint {
            addr,
            prepared: old.prepared,
            slot: old.slot,
            probes: rest.into(),
        });
        let old = kp
            .table
            .publish(Box::into_raw(point))
            .map_err(|_| Error::NoSpace)?;
        retire(kp, old);
    }
    probe.registered.store(false, Ordering::Release);
    reg.probes.remove(&id);
    // The grace period above means no hart can still be taking a new
    // instance: calls in flight only finish from here on.
    if probe.ret.is_some() {
        reg.zombies.push(probe);
    }
    reg.reap();
    Ok(())
}
