//! Registration and removal: everything that changes probes, serialised by
//! one lock that the hit path never takes.
//!
//! Order of operations keeps every hart safe without stopping them:
//! - install: build the slot, publish the point, then write the breakpoint;
//! - remove: restore the original bytes, unpublish, wait until no hart can
//!   be in the point's handlers or slot, then free point and slot.

use crate::arch::current::insn::Insn;
use crate::arch::current::{
    self as arch,
    detour::{self, WayIn, DETOUR_SIZE},
    trampoline::ret_stub_size,
    Prepared, SLOT_SIZE,
};
use crate::error::{Error, Result};
use crate::global::{DetourFor, Kprobes};
use crate::hart;
use crate::point::{Placement, Probe, ProbePoint};
use crate::text;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;
use core::sync::atomic::Ordering;

/// Slots a return probe's stub takes.
fn stub_slots(calls: usize) -> usize {
    ret_stub_size(calls).div_ceil(SLOT_SIZE)
}

pub(crate) struct Registry {
    slot_base: usize,
    slot_used: Vec<bool>,
    pub probes: BTreeMap<u64, Arc<Probe>>,
    /// Unregistered return probes whose calls are still in flight.
    zombies: Vec<Arc<Probe>>,
    next_id: u64,
    max_points: usize,
    points: usize,
    /// Detours written so far, by probed address and way in (kept for
    /// re-use: a detour never changes, see `Kprobes::detours`).
    detour_of: BTreeMap<(usize, WayIn), usize>,
    detours_written: usize,
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
            detour_of: BTreeMap::new(),
            detours_written: 0,
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
    pub fn alloc_stub(&mut self, calls: usize) -> Result<usize> {
        self.alloc_slots(stub_slots(calls)).ok_or(Error::NoSpace)
    }

    pub fn free_stub(&mut self, ret: &crate::retprobe::RetState) {
        self.free_slots(ret.stub, stub_slots(ret.maxactive()));
    }

    /// Frees the stubs of unregistered return probes with no call left,
    /// after a grace period: a return frees its call before its handler
    /// runs (`rkprobes_ret_handler`), and reads the probe until it leaves
    /// the hit path.
    pub fn reap(&mut self, kp: &Kprobes) {
        let (done, live): (Vec<_>, Vec<_>) = core::mem::take(&mut self.zombies)
            .into_iter()
            .partition(|p| p.ret.as_ref().is_none_or(|r| r.in_flight() == 0));
        self.zombies = live;
        if done.is_empty() {
            return;
        }
        synchronize(kp);
        for p in done {
            if let Some(ret) = &p.ret {
                self.free_stub(ret);
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

    /// Bytes of detours written.
    pub fn detour_bytes(&self) -> usize {
        self.detours_written * DETOUR_SIZE
    }

    /// Detours that can still be written.
    pub fn detours_free(&self, kp: &Kprobes) -> usize {
        kp.detour_info.len() - self.detours_written
    }

    /// The detour for a jump probe at `addr`, or for the copies of a
    /// compressed instruction run out of line (see `detour::code`), written
    /// (and its info set) if it is new. `None`: a breakpoint probe that
    /// steps through a slot or simulates (jump probes off, a compressed
    /// instruction that is simulated and covers no `second`, out of reach,
    /// the detour area full).
    ///
    /// `way`: how it enters the library, for the kind of the probes it is
    /// made for (`way_in`), for good: rewriting the 32-bit `jal` later
    /// could be fetched torn, and every way in serves any point.
    fn detour_for(
        &mut self,
        kp: &Kprobes,
        addr: usize,
        prepared: Prepared,
        second: Option<Insn>,
        way: WayIn,
    ) -> Option<usize> {
        if !kp.jump_probes.load(Ordering::Relaxed)
            || (prepared.insn.is_compressed() && !prepared.needs_slot() && second.is_none())
        {
            return None;
        }
        let wanted = DetourFor {
            addr,
            prepared,
            second,
        };
        // Re-used only for the same instructions, and the same way in (the
        // light one takes `t0`/`t1`, free at a function's entry only): the
        // text at `addr` may have been rewritten since (code loaded anew, a
        // JIT). An outdated detour is left as it is, for a hart that may
        // still be in it.
        // A compressed instruction keeping its breakpoint runs only its
        // detour's copies: any way in will do.
        let way = match prepared.insn.is_compressed() && second.is_none() {
            true => WayIn::Common,
            false => way,
        };
        let reusable = |way| {
            self.detour_of
                .get(&(addr, way))
                .copied()
                .filter(|&d| kp.detour_at(d).is_some_and(|(_, info)| *info == wanted))
        };
        if let Some(d) = reusable(way) {
            return Some(d);
        }
        let i = self.detours_written;
        let Some(info) = kp.detour_info.get(i) else {
            // The area is used up: one with another way in serves too.
            return [WayIn::Common, WayIn::Function, WayIn::Call]
                .into_iter()
                .find_map(reusable);
        };
        let d = kp.detours.start + i * DETOUR_SIZE;
        let entries = detour::entries_for(d, kp.detour_entry);
        let cell = kp.detour_cell(d)? as *const _ as usize;
        let out_of_line = prepared.needs_slot();
        let code = detour::code(
            prepared.insn,
            (addr, d),
            (entries, way),
            out_of_line,
            cell,
            second,
        )?;
        kp.os.write_text(d, &code);
        info.call_once(|| wanted);
        self.detour_of.insert((addr, way), d);
        self.detours_written += 1;
        Some(d)
    }
}

/// The original instruction at `at`: a probe's, where one sits (the text
/// holds its breakpoint or jump), else the text's.
fn original_insn(kp: &Kprobes, at: usize) -> Option<Insn> {
    if let Some(point) = kp.table.lookup(at) {
        return Some(point.prepared.insn);
    }
    // The second instruction a jump over two covers (its first parcel is
    // the jump's).
    let before = at.checked_sub(arch::INSN_ALIGN)?;
    if let Some(second) = kp.table.lookup(before).and_then(|p| p.second) {
        return Some(second);
    }
    let n = arch::insn_len_at(&text::read(at, 2))?;
    Insn::from_bytes(&text::read(at, n))
}

/// The instruction after the compressed one at `addr` that its jump may
/// cover too (`arch/riscv/region.rs`), if the OS can make that safe and
/// no probe sits there or is being placed there (`placing`).
fn second_for(
    kp: &Kprobes,
    addr: usize,
    prepared: &Prepared,
    placing: impl Fn(usize) -> bool,
) -> Option<Insn> {
    if !kp.jumps_over_two || !prepared.insn.is_compressed() {
        return None;
    }
    let next = addr + prepared.len();
    // A symbol there may be entered from anywhere (a fix-up address).
    if placing(next)
        || kp.table.lookup(next).is_some()
        || kp.os.symbol_at(next).is_some_and(|s| s.addr == next)
    {
        return None;
    }
    let func = kp.os.symbol_at(addr)?;
    arch::region::second_for_jump(prepared, addr, func.addr..func.addr + func.size, |at| {
        original_insn(kp, at)
    })
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
    // The library's own code outside its blacklisted sections (handler
    // adapters, generic code the kernel instantiates) runs in the hit
    // path: a probe there could only count nested misses.
    if is_library_code(func.name) {
        return Err(Error::Blacklisted { addr });
    }
    // Walk from the function's start; where a probe already sits, the text
    // holds a breakpoint or a jump, so take the original instructions.
    let mut at = func.addr;
    while at < addr {
        let len = match kp.table.lookup(at) {
            // A jump over two: past both, unless `addr` is the second.
            Some(p) => match p.second {
                Some(second) if at + p.prepared.len() != addr => p.prepared.len() + second.len(),
                _ => p.prepared.len(),
            },
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
    // The original: an instruction a jump covers starts with the jump's
    // upper half (`install_many` uncovers it first).
    let insn = original_insn(kp, addr).ok_or(Error::OutsideText { addr })?;
    let n = insn.len();
    if addr + n > text.end {
        return Err(Error::OutsideText { addr });
    }
    let prepared = arch::prepare(&insn.to_bytes()[..n]).map_err(|(mnemonic, reason)| {
        Error::UnsupportedInstruction {
            addr,
            mnemonic,
            reason,
        }
    })?;
    Ok((prepared, func.addr))
}

/// Whether a (demangled) function name is the library's own code.
pub(crate) fn is_library_code(name: &str) -> bool {
    let name = name.trim_start_matches('<');
    name.starts_with("rkprobes::")
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

/// Publishes `point` in the table and, for a jump probe, in its detour's
/// cell; returns the point it replaces (see `Table::publish`).
fn publish(kp: &Kprobes, point: *mut ProbePoint) -> core::result::Result<*mut ProbePoint, ()> {
    let old = kp.table.publish(point)?;
    // SAFETY: the caller passes a live point it owns.
    let detour = unsafe { (*point).detour };
    if detour != 0 {
        kp.set_detour_point(detour, point);
    }
    Ok(old)
}

/// Frees points that are no longer published, after one grace period.
fn retire_all(kp: &Kprobes, olds: Vec<*mut ProbePoint>) {
    let olds: Vec<_> = olds.into_iter().filter(|p| !p.is_null()).collect();
    if olds.is_empty() {
        return;
    }
    synchronize(kp);
    for old in olds {
        // SAFETY: `old` came from `Box::into_raw`, is unpublished, and the
        // grace period guarantees no hart still holds a reference to it.
        drop(unsafe { Box::from_raw(old) });
    }
}

/// Writes the patch sequences of many points, with one sync of every hart
/// per step instead of per point and step. After the first step, waits
/// until no hart is stopped in any of `waits` (jumps over two
/// instructions, whose `c.ebreak` the first step wrote).
fn patch_all(kp: &Kprobes, seqs: &[(usize, arch::breakpoint::PatchSeq)], waits: &[Range<usize>]) {
    let steps = seqs.iter().map(|(_, s)| s.steps().len()).max().unwrap_or(0);
    for i in 0..steps {
        for (addr, seq) in seqs {
            if let Some(store) = seq.steps().get(i) {
                kp.os.write_text(addr + store.offset, store.bytes());
            }
        }
        kp.os.sync_icache_all_harts();
        if i == 0 && !waits.is_empty() {
            kp.os.wait_harts_out_of(waits);
        }
    }
}

/// Groups item indices by probe address.
fn by_addr<'a>(addrs: impl Iterator<Item = (usize, usize)> + 'a) -> BTreeMap<usize, Vec<usize>> {
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, addr) in addrs {
        groups.entry(addr).or_default().push(i);
    }
    groups
}

/// The stores that arm `p` (its detour's `jal`, or a breakpoint), or, with
/// `arm` false, put back what that replaced.
fn patch_seq(p: &ProbePoint, arm: bool) -> arch::breakpoint::PatchSeq {
    use arch::breakpoint as bp;
    let (insn, addr) = (p.prepared.insn, p.addr);
    match (p.jump(), p.second, arm) {
        (Some(jal), Some(second), true) => bp::arm_over_two(insn, second, addr, jal),
        (Some(jal), Some(second), false) => bp::disarm_over_two(insn, second, addr, jal),
        (Some(jal), None, true) => bp::arm_with(insn, addr, jal),
        (Some(jal), None, false) => bp::disarm_from(insn, addr, jal),
        (None, _, true) => bp::arm(insn, addr),
        (None, _, false) => bp::disarm(insn, addr),
    }
}

/// Where a new point's instruction runs: its detour if it gets one (see
/// `Registry::detour_for`), else a shared slot if it is stepped out of
/// line (written here). `None`: no space. `room`: a point may be added.
fn place(
    kp: &Kprobes,
    reg: &mut Registry,
    addr: usize,
    prepared: Prepared,
    second: Option<Insn>,
    way: WayIn,
    room: bool,
) -> Option<Placement> {
    let detour = match room {
        true => reg.detour_for(kp, addr, prepared, second, way).unwrap_or(0),
        false => 0,
    };
    let slot = match (prepared.needs_slot(), detour) {
        _ if !room => None,
        (false, _) => Some(0),
        (true, 0) => reg.alloc_slots(1),
        (true, d) => Some(d + detour::STEP_AT),
    }?;
    if slot != 0 && detour == 0 {
        kp.os.write_text(slot, &prepared.slot_code());
    }
    Some(Placement {
        slot,
        detour,
        second: second.filter(|_| detour != 0),
    })
}

/// The way into the library for a detour made for `probes` at an
/// instruction `prepared` at `addr`: the light one for a lone return
/// probe whose entry handler is none or an `on_call` one and whose
/// instruction runs out of line (`point::OneRet::call`), in a function
/// that leaves `t0`/`t1` free; the function-entry one for other return
/// probes.
fn way_in<'a>(
    kp: &Kprobes,
    addr: usize,
    probes: impl Iterator<Item = &'a Probe> + Clone,
    prepared: &Prepared,
) -> WayIn {
    use crate::point::Pre;
    if !probes.clone().all(|p| p.ret.is_some()) {
        return WayIn::Common;
    }
    let mut probes = probes;
    let light = match (probes.next(), probes.next()) {
        (Some(p), None) => prepared.needs_slot() && matches!(p.pre, None | Some(Pre::Call(_))),
        _ => false,
    };
    // The light way takes `t0`/`t1`: not where the function reads them
    // on entry (code entered through `jalr t0`).
    let free = || {
        kp.os.symbol_at(addr).is_some_and(|f| {
            arch::scratch::entry_leaves_t0_t1_free(f.addr..f.addr + f.size, |at| {
                original_insn(kp, at)
            })
        })
    };
    match light && free() {
        true => WayIn::Call,
        false => WayIn::Function,
    }
}

/// Before a probe is placed on an instruction that the jump of the probe
/// before it covers: makes that one a jump over its own instruction alone
/// or a breakpoint, with all its probes (a point of its own at `addr`
/// must not depend on that jump). Returns the point it replaced, to be
/// freed after a grace period, or null if nothing covered `addr`.
fn uncover(kp: &Kprobes, reg: &mut Registry, addr: usize) -> Result<*mut ProbePoint> {
    let Some(cover) = addr
        .checked_sub(arch::INSN_ALIGN)
        .and_then(|c| kp.table.lookup(c))
        .filter(|c| c.addr + c.prepared.len() == addr)
    else {
        return Ok(core::ptr::null_mut());
    };
    let (Some(second), Some(jal)) = (cover.second, cover.jump()) else {
        return Ok(core::ptr::null_mut());
    };
    let way = way_in(
        kp,
        cover.addr,
        cover.probes.iter().map(|p| &**p),
        &cover.prepared,
    );
    let placement =
        place(kp, reg, cover.addr, cover.prepared, None, way, true).ok_or(Error::NoSpace)?;
    let point = ProbePoint::new(cover.addr, cover.prepared, placement, cover.probes.clone());
    let (at, old_detour) = (cover.addr, cover.detour);
    // Its new detour or slot before the point that leads there.
    kp.os.sync_icache_all_harts();
    let old = publish(kp, Box::into_raw(Box::new(point))).unwrap_or(core::ptr::null_mut());
    // The breakpoint (and the covered parcel back) only after that point.
    core::sync::atomic::fence(Ordering::SeqCst);
    let seq = arch::breakpoint::uncover(second, at, jal);
    patch_all(kp, &[(at, seq)], &[]);
    core::sync::atomic::fence(Ordering::SeqCst);
    // A hart still on its way through the old jump runs both copies.
    kp.set_detour_point(old_detour, core::ptr::null_mut());
    Ok(old)
}

/// Adds probes (each already checked by `check_addr`, stubs written). All
/// new breakpoints are armed together. One result per item.
pub(crate) fn install_many(
    kp: &Kprobes,
    reg: &mut Registry,
    items: Vec<(Arc<Probe>, Prepared)>,
) -> Vec<Result<()>> {
    if let Err(e) = not_in_handler(kp) {
        return vec![Err(e); items.len()];
    }
    let mut results: Vec<Result<()>> = vec![Ok(()); items.len()];
    let mut olds = Vec::new();
    let mut fresh: Vec<(*mut ProbePoint, Vec<usize>)> = Vec::new();
    let mut replacements = Vec::new();
    let groups = by_addr(items.iter().map(|(p, _)| p.addr).enumerate());
    for (addr, idxs) in &groups {
        if kp.table.lookup(*addr).is_none() {
            match uncover(kp, reg, *addr) {
                Ok(old) if old.is_null() => {}
                Ok(old) => olds.push(old),
                Err(e) => idxs.iter().for_each(|&i| results[i] = Err(e)),
            }
        }
    }
    let placing = |a: usize| items.iter().any(|(p, _)| p.addr == a);
    for (addr, idxs) in groups {
        if results[idxs[0]].is_err() {
            continue;
        }
        let group = idxs.iter().map(|&i| items[i].0.clone());
        if let Some(old) = kp.table.lookup(addr) {
            let probes: Vec<Arc<Probe>> = old.probes.iter().cloned().chain(group).collect();
            let point = ProbePoint::new(addr, old.prepared, old.placement(), probes.into());
            replacements.push(Box::into_raw(Box::new(point)));
            continue;
        }
        let prepared = items[idxs[0]].1;
        let way = way_in(kp, addr, idxs.iter().map(|&i| &*items[i].0), &prepared);
        let second = second_for(kp, addr, &prepared, placing);
        let room = reg.points < reg.max_points;
        let Some(placement) = place(kp, reg, addr, prepared, second, way, room) else {
            idxs.iter().for_each(|&i| results[i] = Err(Error::NoSpace));
            continue;
        };
        let point = ProbePoint::new(addr, prepared, placement, group.collect::<Vec<_>>().into());
        reg.points += 1;
        fresh.push((Box::into_raw(Box::new(point)), idxs));
    }
    // Slots and trampoline stubs must be visible before any hart can reach
    // them through a published point.
    if !items.is_empty() {
        kp.os.sync_icache_all_harts();
    }
    for point in replacements {
        // Replacing an existing address cannot run out of buckets.
        olds.push(publish(kp, point).unwrap_or(core::ptr::null_mut()));
    }
    let mut arm = Vec::new();
    let mut waits = Vec::new();
    for (point, idxs) in fresh {
        if publish(kp, point).is_ok() {
            // SAFETY: just published; only this registry frees it.
            let p = unsafe { &*point };
            let seq = patch_seq(p, true);
            if let (Some(second), true) = (p.second, seq.steps().len() > 1) {
                let next = p.addr + p.prepared.len();
                waits.push(next..next + second.len());
            }
            arm.push((p.addr, seq));
            continue;
        }
        // SAFETY: never published, so ours alone.
        let point = unsafe { Box::from_raw(point) };
        if let Some(slot) = point.own_slot() {
            reg.free_slots(slot, 1);
        }
        reg.points -= 1;
        idxs.iter().for_each(|&i| results[i] = Err(Error::NoSpace));
    }
    // The breakpoint stores must not become visible before the points
    // they belong to: a release store orders what came before it, not
    // what comes after (compiler and RVWMO may move a later store up).
    core::sync::atomic::fence(Ordering::SeqCst);
    patch_all(kp, &arm, &waits);
    for ((probe, _), result) in items.into_iter().zip(&results) {
        if result.is_ok() {
            reg.probes.insert(probe.id, probe);
        }
    }
    retire_all(kp, olds);
    results
}

/// Removes the probes `ids`; all emptied breakpoints are disarmed together
/// and one grace period covers them all. One result per id.
pub(crate) fn remove_many(kp: &Kprobes, reg: &mut Registry, ids: &[u64]) -> Vec<Result<()>> {
    if let Err(e) = not_in_handler(kp) {
        return vec![Err(e); ids.len()];
    }
    let mut results: Vec<Result<()>> = vec![Ok(()); ids.len()];
    let known = ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| match reg.probes.get(id) {
            Some(p) => Some((i, p.addr)),
            None => {
                results[i] = Err(Error::NotRegistered);
                None
            }
        });
    let groups = by_addr(known.collect::<Vec<_>>().into_iter());
    let mut disarm = Vec::new();
    let mut emptied = Vec::new();
    let mut olds = Vec::new();
    for (addr, idxs) in &groups {
        let Some(old) = kp.table.lookup(*addr) else {
            idxs.iter()
                .for_each(|&i| results[i] = Err(Error::NotRegistered));
            continue;
        };
        let gone = |p: &Arc<Probe>| idxs.iter().any(|&i| ids[i] == p.id);
        let rest: Vec<Arc<Probe>> = old.probes.iter().filter(|p| !gone(p)).cloned().collect();
        if rest.is_empty() {
            disarm.push((*addr, patch_seq(old, false)));
            emptied.push((*addr, old.detour, old.own_slot()));
        } else {
            let point = ProbePoint::new(*addr, old.prepared, old.placement(), rest.into());
            olds.push(publish(kp, Box::into_raw(Box::new(point))).unwrap_or(core::ptr::null_mut()));
        }
    }
    // Before the grace period: a return handler checks this once inside
    // (`rkprobes_ret_handler`), so none runs after the unregistration.
    for (i, id) in ids.iter().enumerate() {
        if let (Ok(()), Some(probe)) = (&results[i], reg.probes.get(id)) {
            probe.registered.store(false, Ordering::Release);
        }
    }
    // Original bytes back first, then unpublish: a hart that still traps
    // on an old breakpoint finds no point and re-runs the original.
    patch_all(kp, &disarm, &[]);
    core::sync::atomic::fence(Ordering::SeqCst);
    for &(addr, detour, _) in &emptied {
        if detour != 0 {
            kp.set_detour_point(detour, core::ptr::null_mut());
        }
        olds.push(kp.table.remove(addr).unwrap_or(core::ptr::null_mut()));
    }
    retire_all(kp, olds);
    for &(_, _, slot) in &emptied {
        if let Some(slot) = slot {
            reg.free_slots(slot, 1);
        }
    }
    reg.points -= emptied.len();
    for (i, id) in ids.iter().enumerate() {
        if results[i].is_err() {
            continue;
        }
        if let Some(probe) = reg.probes.remove(id) {
            // After the grace period no hart can still be taking a new
            // instance: calls in flight only finish from here on.
            if probe.ret.is_some() {
                reg.zombies.push(probe);
            }
        }
    }
    reg.reap(kp);
    results
}
