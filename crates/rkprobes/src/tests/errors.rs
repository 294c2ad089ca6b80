//! Every refused operation returns its typed error (and, through the seed
//! API, its errno) and changes nothing: no byte of text or slot area, no
//! write, no point, no slot.

use super::fake_os::os;
use super::fake_text::{off, BLACKLISTED};
use super::harness::*;
use crate::arch::current::RejectReason;
use crate::{
    kprobe_register, kprobe_unregister, memory_stats, unregister_addr, unregister_id, Error,
    Kprobe, KprobeOs, ProbeType, SeedHandler, TrapFrame,
};
use alloc::sync::Arc;

/// Runs `f`, which must fail with `want`, and checks nothing changed.
fn refused<T>(what: &str, want: Error, f: impl FnOnce() -> crate::Result<T>) {
    let snap = os().snapshot();
    let stats = memory_stats();
    let log = os().log_len();
    assert_eq!(f().err(), Some(want), "{what}");
    assert!(os().snapshot() == snap, "{what}: text or slots changed");
    assert_eq!(
        memory_stats(),
        stats,
        "{what}: points, probes or slots changed"
    );
    assert_eq!(os().events_since(log), [], "{what}: wrote or synced");
}

fn seed_handler() -> SeedHandler {
    Arc::new(crate::Mutex::new(|_: &mut TrapFrame| {}))
}

/// The same refusal through the seed API: its errno, and again no change.
fn refused_seed(what: &str, addr: usize, want: Error, errno: isize) {
    assert_eq!(want.errno(), errno, "{what}: errno of {want:?}");
    refused(what, want, || {
        match kprobe_register(addr, seed_handler(), None, ProbeType::Insn) {
            0 => Ok(()),
            e if e == errno => Err(want),
            e => panic!("{what}: seed API returned {e}, not {errno}"),
        }
    });
}

#[test]
fn refused_registrations_change_nothing() {
    let _g = exclusive();
    let f = os().func("errors");
    let text = os().text_range();
    let cases = [
        (
            "odd address",
            f.addr + 1,
            Error::Misaligned { addr: f.addr + 1 },
            -22,
        ),
        (
            "end of text",
            text.end,
            Error::OutsideText { addr: text.end },
            -14,
        ),
        (
            "before text",
            text.start - 2,
            Error::OutsideText {
                addr: text.start - 2,
            },
            -14,
        ),
        (
            "slot area",
            os().slot_area().start,
            Error::OutsideText {
                addr: os().slot_area().start,
            },
            -14,
        ),
        (
            "middle of a 32-bit instruction",
            f.addr + off::ADDI + 2,
            Error::NotInstructionBoundary {
                addr: f.addr + off::ADDI + 2,
                function: f.addr,
            },
            -22,
        ),
        (
            "blacklisted",
            os().addr(BLACKLISTED, off::ADDI),
            Error::Blacklisted {
                addr: os().addr(BLACKLISTED, off::ADDI),
            },
            -1,
        ),
        (
            "csrr",
            f.addr + off::CSRR,
            Error::UnsupportedInstruction {
                addr: f.addr + off::CSRR,
                mnemonic: "csrrs",
                reason: RejectReason::Csr,
            },
            -95,
        ),
        (
            "c.ebreak",
            os().addr("foreign", 0),
            Error::UnsupportedInstruction {
                addr: os().addr("foreign", 0),
                mnemonic: "c.ebreak",
                reason: RejectReason::Ebreak,
            },
            -95,
        ),
        (
            "ebreak",
            os().addr("foreign", 2),
            Error::UnsupportedInstruction {
                addr: os().addr("foreign", 2),
                mnemonic: "ebreak",
                reason: RejectReason::Ebreak,
            },
            -95,
        ),
        (
            "no function",
            f.addr + off::PADDING,
            Error::NoFunction {
                addr: f.addr + off::PADDING,
            },
            -22,
        ),
    ];
    for (what, addr, want, errno) in cases {
        refused(what, want, || Kprobe::at(addr).register());
        refused_seed(what, addr, want, errno);
    }
}

#[test]
fn bad_symbols_and_unknown_probes_are_refused() {
    let _g = exclusive();
    let f = os().func("errors");
    for spec in ["no_such_function", "errors+0x100", "errors+zz", "errors+"] {
        refused(spec, Error::UnknownSymbol, || {
            Kprobe::symbol(spec).register()
        });
    }
    // A good symbol still goes through the address checks.
    refused(
        "errors+0x4",
        Error::NotInstructionBoundary {
            addr: f.addr + 4,
            function: f.addr,
        },
        || Kprobe::symbol("errors+0x4").register(),
    );

    refused("unknown id", Error::NotRegistered, || {
        unregister_id(u64::MAX)
    });
    refused("unknown address", Error::NotRegistered, || {
        unregister_addr(f.addr)
    });
    assert_eq!(kprobe_unregister(f.addr), -2);

    // Double removal, by id and by address.
    let h = Kprobe::symbol("errors+0x2").register().expect("register");
    assert_eq!(h.addr(), f.addr + off::ADDI);
    let id = h.id();
    unregister_id(id).expect("first unregister");
    assert_eq!(os().bytes(f.addr, f.size), os().pristine(f.addr, f.size));
    refused("second unregister", Error::NotRegistered, || {
        unregister_id(id)
    });

    assert_eq!(
        kprobe_register(f.addr, seed_handler(), None, ProbeType::Insn),
        0
    );
    assert_eq!(kprobe_unregister(f.addr), 0);
    assert_eq!(os().bytes(f.addr, f.size), os().pristine(f.addr, f.size));
    assert_eq!(kprobe_unregister(f.addr), -2);
}

#[test]
fn walk_uses_the_original_length_of_probed_instructions() {
    let _g = shared();
    let f = os().func("walk");
    let a = Kprobe::at(f.addr + off::ADDI).register().expect("register");
    let armed = os().bytes(f.addr, f.size);
    // Inside the probed (now `ebreak`) 32-bit instruction.
    assert_eq!(
        Kprobe::at(f.addr + off::ADDI + 2).register().err(),
        Some(Error::NotInstructionBoundary {
            addr: f.addr + off::ADDI + 2,
            function: f.addr,
        })
    );
    assert_eq!(os().bytes(f.addr, f.size), armed);
    // Right after it, and further on.
    let b = Kprobe::at(f.addr + off::ADD)
        .register()
        .expect("after a probe");
    let c = Kprobe::at(f.addr + off::C_BEQZ)
        .register()
        .expect("further");
    assert_eq!(
        Kprobe::at(f.addr + off::C_BEQZ + 1).register().err(),
        Some(Error::Misaligned {
            addr: f.addr + off::C_BEQZ + 1
        })
    );
    for h in [a, b, c] {
        h.unregister().expect("unregister");
    }
    assert_eq!(os().bytes(f.addr, f.size), os().pristine(f.addr, f.size));
}

/// The library's own code (here a handler adapter the kernel instantiates)
/// is refused like the OS's blacklist, and the text stays as it was.
#[test]
fn library_code_is_blacklisted() {
    let _g = shared();
    let addr = os().addr("rkprobes::api::Kprobe::pre::{{closure}}", 0);
    let before = os().bytes(addr, 4);
    assert_eq!(
        Kprobe::at(addr).register().err(),
        Some(Error::Blacklisted { addr })
    );
    assert_eq!(os().bytes(addr, 4), before);
    assert!(crate::registry::is_library_code(
        "<rkprobes::Foo as core::fmt::Debug>::fmt"
    ));
    assert!(!crate::registry::is_library_code(
        "kernel::rkprobes_os::hart_id"
    ));
}
