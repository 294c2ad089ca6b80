//! uprobes: where a registration lands (by address, offset or symbol),
//! which processes receive the breakpoint (every one running the program,
//! no other, the file never), the process lifecycle (start, exec, fork,
//! exit), removal, and every refused request changing nothing.

use super::fake_text::{off, ADDI_A0_A0_5, C_EBREAK, EBREAK};
use super::fake_uos::*;
use crate::arch::current::RejectReason;
use crate::uprobe::ProcessId;
use crate::{Error, ProbeType, SeedHandler, TrapFrame, Uprobe, UprobeInfo, Uprobes};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Text addresses where `pid`'s text differs from its program file.
fn changed(pid: ProcessId) -> Vec<usize> {
    let p = uos().process(pid);
    let file = uos().file(p.path, TEXT_BASE, p.text.len());
    (0..file.len())
        .filter(|&i| p.text[i] != file[i])
        .map(|i| TEXT_BASE + i)
        .collect()
}

/// `pid` has a breakpoint at `addr` over an instruction of `len` bytes.
fn breakpoint_at(pid: ProcessId, addr: usize, len: usize) -> bool {
    let want = match len {
        2 => C_EBREAK.to_le_bytes().to_vec(),
        _ => EBREAK.to_le_bytes().to_vec(),
    };
    uos().mem(pid, addr, len) == want
}

/// `pid`'s text is its file's but for a breakpoint at `addr`.
fn armed(pid: ProcessId, addr: usize, len: usize) -> bool {
    breakpoint_at(pid, addr, len) && changed(pid).iter().all(|a| (addr..addr + len).contains(a))
}

fn probed(pid: ProcessId) -> bool {
    Uprobes::get()
        .probed_processes()
        .iter()
        .any(|&(p, _)| p == pid)
}

/// Processes the library wrote into since log position `from`.
fn written(from: usize) -> Vec<ProcessId> {
    let mut pids: Vec<_> = uos()
        .events_since(from)
        .into_iter()
        .filter_map(|e| match e {
            Event::Write { pid, .. } => Some(pid),
            Event::MapSlotPage { .. } => None,
        })
        .collect();
    pids.dedup();
    pids
}

#[test]
fn offset_is_counted_from_the_start_of_the_text() {
    let _w = world();
    let h = Uprobe::new(A).offset(0x40 + off::ADDI).register().unwrap();
    assert_eq!(h.addr(), TEXT_BASE + 0x40 + off::ADDI);
    assert_eq!(h.addr(), uos().sym(A, "work") + off::ADDI);
    assert_eq!(h.path(), A);
    let info = UprobeInfo {
        id: h.id(),
        path: String::from(A),
        addr: h.addr(),
        kind: ProbeType::Insn,
        hits: 0,
        missed: 0,
    };
    assert_eq!(Uprobes::get().list(), [info]);
    h.unregister().unwrap();
    assert_eq!(Uprobes::get().list(), []);
}

#[test]
fn symbol_plus_offset_resolves_in_that_programs_symbols() {
    let _w = world();
    // `main` is the first function of /bin/a, the third of /bin/b.
    let ha = Uprobe::new(A).symbol("main+0x2").register().unwrap();
    let hb = Uprobe::new(B).symbol("main+2").register().unwrap();
    let entry = Uprobe::new(B).symbol("work").register().unwrap();
    assert_eq!(ha.addr(), uos().sym(A, "main") + 2);
    assert_eq!(hb.addr(), uos().sym(B, "main") + 2);
    assert_ne!(ha.addr(), hb.addr());
    assert_eq!(entry.addr(), uos().sym(B, "work"));
    for h in [ha, hb, entry] {
        h.unregister().unwrap();
    }
}

#[test]
fn breakpoint_goes_into_every_process_of_the_program_and_no_other() {
    let _w = world();
    let (a1, a2, b) = (start(A), start(A), start(B));
    let log = uos().log_len();
    let addr = uos().sym(A, "work") + off::ADDI;
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    assert!(armed(a1, addr, 4), "a1 changed at {:x?}", changed(a1));
    assert!(armed(a2, addr, 4), "a2 changed at {:x?}", changed(a2));
    assert_eq!(changed(b), [], "/bin/b written");
    assert!(uos().process(b).slot.is_none(), "/bin/b got a slot page");
    assert_eq!(written(log), [a1, a2]);
    // The file keeps its instruction (a new process starts from it).
    assert_eq!(uos().file(A, addr, 4), ADDI_A0_A0_5.to_le_bytes());
    h.unregister().unwrap();
}

#[test]
fn compressed_instruction_gets_a_compressed_breakpoint() {
    let _w = world();
    let pid = start(A);
    let addr = uos().sym(A, "work") + off::C_LI;
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    assert!(armed(pid, addr, 2), "changed at {:x?}", changed(pid));
    h.unregister().unwrap();
}

#[test]
fn word_at_two_mod_four_is_armed_parcel_by_parcel() {
    let _w = world();
    let pid = start(A);
    let addr = uos().sym(A, "work") + off::ADDI; // 2 mod 4
    let log = uos().log_len();
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    let stores: Vec<_> = uos()
        .events_since(log)
        .into_iter()
        .filter_map(|e| match e {
            Event::Write { va, bytes, .. } if !in_slot_page(va) => Some((va, bytes)),
            _ => None,
        })
        .collect();
    let e = EBREAK.to_le_bytes();
    // Always the original, `c.ebreak` or `ebreak` at `addr`.
    assert_eq!(
        stores,
        [
            (addr, C_EBREAK.to_le_bytes().to_vec()),
            (addr + 2, e[2..].to_vec()),
            (addr, e[..2].to_vec()),
        ]
    );
    h.unregister().unwrap();
    assert_eq!(changed(pid), []);
}

#[test]
fn slot_page_holds_the_trampoline_and_the_stepped_instruction() {
    let _w = world();
    let pid = start(A);
    assert!(
        uos().process(pid).slot.is_none(),
        "slot page before a probe"
    );
    let addr = uos().sym(A, "work") + off::ADDI;
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    assert_eq!(Uprobes::get().probed_processes(), [(pid, SLOT_VA)]);
    let page = uos().process(pid).slot.expect("slot page");
    assert_eq!(page[..4], EBREAK.to_le_bytes(), "trampoline");
    // Slot 1 (16 bytes): the jumping copy (`ebreak` after it here: the
    // fake slot page is out of `jal` reach), then the stepping copy.
    let copy = [ADDI_A0_A0_5.to_le_bytes(), EBREAK.to_le_bytes()].concat();
    assert_eq!(page[16..24], copy[..], "jump copy, out of reach");
    assert_eq!(page[24..32], copy[..], "step copy");
    assert!(page[32..].iter().all(|&b| b == 0), "more than one slot");
    h.unregister().unwrap();
}

#[test]
fn simulated_instruction_takes_no_slot() {
    let _w = world();
    let pid = start(A);
    let addr = uos().sym(A, "work") + off::JAL;
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    let page = uos().process(pid).slot.expect("slot page");
    assert!(page[4..].iter().all(|&b| b == 0), "a slot was written");
    h.unregister().unwrap();
}

#[test]
fn process_started_later_gets_the_registered_probes() {
    let _w = world();
    let addr = uos().sym(A, "main") + off::C_MV;
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    let pid = uos().spawn(A);
    assert_eq!(changed(pid), [], "written before the hook");
    Uprobes::get().process_started(pid);
    assert!(armed(pid, addr, 2), "changed at {:x?}", changed(pid));
    assert!(probed(pid));
    h.unregister().unwrap();
}

#[test]
fn exec_installs_the_probes_of_the_new_program() {
    let _w = world();
    let pid = start(B);
    let addr = uos().sym(A, "work") + off::ADD;
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    assert!(!probed(pid));
    exec(pid, A);
    assert!(armed(pid, addr, 4), "changed at {:x?}", changed(pid));
    assert!(probed(pid));
    h.unregister().unwrap();
}

#[test]
fn exec_into_an_unprobed_program_releases_the_process() {
    let _w = world();
    let pid = start(A);
    let addr = uos().sym(A, "work") + off::ADD;
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    assert!(probed(pid));
    exec(pid, B);
    assert!(!probed(pid), "still probed after exec");
    assert_eq!(changed(pid), []);
    assert!(!trap(pid, &mut frame(addr)), "a trap in /bin/b owned");
    // Removing the probe writes nothing into what is now /bin/b.
    let log = uos().log_len();
    h.unregister().unwrap();
    assert_eq!(written(log), []);
}

#[test]
fn exec_of_the_same_program_rearms_the_fresh_image() {
    let _w = world();
    let pid = start(A);
    let addr = uos().sym(A, "work") + off::ADDI;
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    exec(pid, A);
    assert!(armed(pid, addr, 4), "changed at {:x?}", changed(pid));
    assert!(matches!(hit(pid, &mut frame(addr)), Path::Stepped { .. }));
    assert_eq!(h.hits(), 1);
    h.unregister().unwrap();
}

#[test]
fn unregister_restores_the_original_bytes_in_every_process() {
    let _w = world();
    let (a1, a2) = (start(A), start(A));
    let work = uos().sym(A, "work");
    let places = [
        (off::C_LI, 2),
        (off::ADDI, 4),
        (off::JAL, 4),
        (off::ADDI_ZERO, 4),
    ];
    let hs: Vec<_> = places
        .iter()
        .map(|(o, _)| Uprobe::new(A).addr(work + o).register().unwrap())
        .collect();
    let a3 = fork(a1);
    for pid in [a1, a2, a3] {
        for &(o, len) in &places {
            assert!(breakpoint_at(pid, work + o, len), "pid {pid} +{o}");
        }
    }
    for h in hs {
        h.unregister().unwrap();
    }
    for pid in [a1, a2, a3] {
        assert_eq!(changed(pid), [], "pid {pid}");
    }
    assert_eq!(Uprobes::get().list(), []);
}

#[test]
fn one_of_two_probes_at_an_address_leaves_the_breakpoint() {
    let _w = world();
    let pid = start(A);
    let addr = uos().sym(A, "work") + off::AUIPC;
    let first = Uprobe::new(A).addr(addr).register().unwrap();
    let second = Uprobe::new(A).addr(addr).register().unwrap();
    first.unregister().unwrap();
    assert!(armed(pid, addr, 4), "changed at {:x?}", changed(pid));
    assert_eq!(hit(pid, &mut frame(addr)), Path::Resumed);
    assert_eq!(second.hits(), 1);
    second.unregister().unwrap();
    assert_eq!(changed(pid), []);
}

#[test]
fn forked_child_has_the_probes() {
    let _w = world();
    let parent = start(A);
    let addr = uos().sym(A, "work") + off::ADDI;
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    let child = fork(parent);
    assert!(armed(child, addr, 4), "changed at {:x?}", changed(child));
    assert!(probed(child));
    assert!(matches!(hit(child, &mut frame(addr)), Path::Stepped { .. }));
    assert!(matches!(
        hit(parent, &mut frame(addr)),
        Path::Stepped { .. }
    ));
    assert_eq!(h.hits(), 2);
    h.unregister().unwrap();
    assert_eq!(changed(child), []);
}

#[test]
fn fork_of_an_unprobed_process_leaves_the_child_unprobed() {
    let _w = world();
    let h = Uprobe::new(A).symbol("work").register().unwrap();
    let parent = start(B);
    let child = fork(parent);
    assert!(!probed(child));
    assert_eq!(changed(child), []);
    h.unregister().unwrap();
}

#[test]
fn exit_releases_the_process() {
    let _w = world();
    let (gone, stays) = (start(A), start(A));
    let addr = uos().sym(A, "work");
    let h = Uprobe::new(A)
        .addr(addr)
        .kind(ProbeType::SyncFunc)
        .register()
        .unwrap();
    hit(gone, &mut frame(addr));
    assert_eq!(Uprobes::get().calls_in_flight(gone), 1);
    exit(gone);
    assert_eq!(Uprobes::get().probed_processes(), [(stays, SLOT_VA)]);
    assert_eq!(Uprobes::get().calls_in_flight(gone), 0);
    let log = uos().log_len();
    h.unregister().unwrap();
    assert_eq!(written(log), [stays]);
}

/// Registers `b`, which must fail with `want`, and checks that nothing
/// changed: no process's memory, no write, no probe, no probed process.
fn refused(what: &str, want: Error, b: Uprobe) {
    let procs = uos().processes();
    let log = uos().log_len();
    let up = Uprobes::get();
    let (list, probed) = (up.list(), up.probed_processes());
    assert_eq!(b.register().err(), Some(want), "{what}");
    assert!(uos().processes() == procs, "{what}: a process changed");
    assert_eq!(uos().events_since(log), [], "{what}: wrote or mapped");
    assert_eq!(up.list(), list, "{what}: probes changed");
    assert_eq!(up.probed_processes(), probed, "{what}: processes changed");
}

#[test]
fn unknown_program_is_refused() {
    let _w = world();
    let _ = (start(A), start(B));
    for (what, b) in [
        ("offset", Uprobe::new("/bin/none").offset(0)),
        ("address", Uprobe::new("/bin/none").addr(TEXT_BASE)),
        ("symbol", Uprobe::new("/bin/none").symbol("main")),
    ] {
        refused(what, Error::UnknownPath, b);
    }
}

#[test]
fn place_outside_the_text_or_inside_an_instruction_is_refused() {
    let _w = world();
    let _ = (start(A), start(B));
    let end = uos().text_end(A);
    let work = uos().sym(A, "work");
    let cases = [
        (
            "offset at the end of the text",
            Uprobe::new(A).offset(end - TEXT_BASE),
            Error::OutsideText { addr: end },
        ),
        (
            "offset far beyond the text",
            Uprobe::new(A).offset(0x10_0000),
            Error::OutsideText {
                addr: TEXT_BASE + 0x10_0000,
            },
        ),
        (
            "address below the text",
            Uprobe::new(A).addr(TEXT_BASE - 2),
            Error::OutsideText {
                addr: TEXT_BASE - 2,
            },
        ),
        (
            "slot page",
            Uprobe::new(A).addr(SLOT_VA),
            Error::OutsideText { addr: SLOT_VA },
        ),
        (
            "odd address",
            Uprobe::new(A).addr(work + 1),
            Error::Misaligned { addr: work + 1 },
        ),
        (
            "second half of addi",
            Uprobe::new(A).symbol("work+4"),
            Error::NotInstructionBoundary {
                addr: work + 4,
                function: work,
            },
        ),
        (
            "padding after a function",
            Uprobe::new(A).addr(work + off::PADDING),
            Error::NoFunction {
                addr: work + off::PADDING,
            },
        ),
    ];
    for (what, b, want) in cases {
        refused(what, want, b);
    }
}

#[test]
fn unknown_symbol_is_refused() {
    let _w = world();
    let _ = start(A);
    for spec in ["nope", "work+0x40", "work+zz", "+4", ""] {
        refused(spec, Error::UnknownSymbol, Uprobe::new(A).symbol(spec));
    }
}

#[test]
fn unprobeable_instruction_is_refused() {
    let _w = world();
    let _ = start(A);
    let at = |name: &str, o: usize| uos().sym(A, name) + o;
    let cases = [
        ("work+28", at("work", off::CSRR), "csrrs", RejectReason::Csr),
        ("sys", at("sys", 0), "ecall", RejectReason::Ecall),
        (
            "foreign",
            at("foreign", 0),
            "c.ebreak",
            RejectReason::Ebreak,
        ),
        (
            "foreign+2",
            at("foreign", 2),
            "ebreak",
            RejectReason::Ebreak,
        ),
    ];
    for (spec, addr, mnemonic, reason) in cases {
        let want = Error::UnsupportedInstruction {
            addr,
            mnemonic,
            reason,
        };
        refused(spec, want, Uprobe::new(A).symbol(spec));
    }
}

#[test]
fn uretprobe_away_from_a_function_entry_is_refused() {
    let _w = world();
    let _ = start(A);
    let addr = uos().sym(A, "work") + off::ADDI;
    let b = Uprobe::new(A).addr(addr).kind(ProbeType::SyncFunc);
    refused("SyncFunc", Error::NotFunctionEntry { addr }, b);
    let b = Uprobe::new(A).symbol("work").kind(ProbeType::AsyncFunc);
    refused("AsyncFunc", Error::UnsupportedType, b);
}

fn seed(f: impl FnMut(&mut TrapFrame) + Send + 'static) -> SeedHandler {
    Arc::new(crate::Mutex::new(f))
}

#[test]
fn seed_api_registers_and_removes_by_path_and_address() {
    let _w = world();
    let pid = start(A);
    let addr = uos().sym(A, "work") + off::ADD;
    let up = Uprobes::get();
    let h = seed(|tf: &mut TrapFrame| tf.x[TrapFrame::A0] = 7);
    assert_eq!(
        up.register_uprobes(A.into(), addr, h, None, ProbeType::Insn),
        0
    );
    assert!(armed(pid, addr, 4), "changed at {:x?}", changed(pid));
    let mut tf = frame(addr);
    tf.x[TrapFrame::A0 + 1] = 1;
    hit(pid, &mut tf);
    assert_eq!(tf.x[TrapFrame::A0], 8, "handler's a0, then add a0, a0, a1");
    assert_eq!(up.unregister_uprobes(A, addr), 0);
    assert_eq!(changed(pid), []);
    assert_eq!(up.unregister_uprobes(A, addr), -2, "removed twice");
}

#[test]
fn seed_api_refusals_are_errnos_that_change_nothing() {
    let _w = world();
    let _ = start(A);
    let up = Uprobes::get();
    let work = uos().sym(A, "work");
    // ENOENT, EFAULT, EINVAL, EOPNOTSUPP.
    let cases = [
        ("/bin/none", work, -2),
        (A, uos().text_end(A), -14),
        (A, work + 4, -22),
        (A, work + off::CSRR, -95),
    ];
    for (path, addr, errno) in cases {
        let procs = uos().processes();
        let log = uos().log_len();
        let r = up.register_uprobes(path.into(), addr, seed(|_| {}), None, ProbeType::Insn);
        assert_eq!(r, errno, "{path} {addr:#x}");
        assert!(uos().processes() == procs, "{path} {addr:#x}: changed");
        assert_eq!(uos().events_since(log), [], "{path} {addr:#x}: wrote");
    }
    assert_eq!(up.list(), []);
}
