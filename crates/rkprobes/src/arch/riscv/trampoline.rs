//! Return-probe trampolines.
//!
//! A probed function returns into a per-probe stub (in the slot area):
//! ```text
//!  stub + 0   auipc t0, 0          t0 = stub, which names the probe
//!  stub + 4   ld    t1, 16(t0)
//!  stub + 8   jr    t1             -> rkprobes_ret_trampoline
//!  stub + 12  nop
//!  stub + 16  .quad rkprobes_ret_trampoline
//!  stub + 24  .quad probe           (the library's `*const Probe`)
//! ```
//! `t0`/`t1` are dead at a function return (caller-saved), so the stub may
//! use them. The common trampoline saves a full `TrapFrame`, masks
//! interrupts, calls `rkprobes_ret_handler(&mut TrapFrame) -> real return
//! address`, restores the (possibly edited) registers and jumps there: no
//! second trap.

/// Bytes of one stub (four 8-byte slots).
pub const RET_STUB_SIZE: usize = 32;
const PROBE_PTR_OFFSET: usize = 24;

const AUIPC_T0_0: u32 = 0x0000_0297;
const LD_T1_16_T0: u32 = 0x0102_b303;
const JR_T1: u32 = 0x0003_0067;
const NOP: u32 = 0x0000_0013;

/// The stub's bytes for the probe at `probe`.
pub fn ret_stub_code(probe: usize) -> [u8; RET_STUB_SIZE] {
    const _: () = assert!(
        PROBE_PTR_OFFSET == 4 * 4 + 8,
        "after the trampoline's address"
    );
    super::insn::code_bytes(
        &[AUIPC_T0_0, LD_T1_16_T0, JR_T1, NOP],
        &[common_trampoline() as u64, probe as u64],
    )
}

/// The probe a stub names. `stub` must be a stub written by `ret_stub_code`.
#[inline(always)]
pub fn stub_probe(stub: usize) -> usize {
    // SAFETY: the caller passes the address of a live stub (the trampoline
    // got it from `auipc` in that stub); its probe word is 8-byte aligned.
    unsafe { ((stub + PROBE_PTR_OFFSET) as *const usize).read_volatile() }
}

/// The register that holds the stub address when the trampoline runs.
pub const STUB_REG: usize = 5; // t0

#[cfg(target_arch = "riscv64")]
core::arch::global_asm!(
    r#"
    .pushsection .text.rkprobes.trampoline, "ax", @progbits
    .globl rkprobes_ret_trampoline
    .type rkprobes_ret_trampoline, @function
    .p2align 2
rkprobes_ret_trampoline:
    addi    sp, sp, -288
    sd      x1, 1*8(sp)
    .irp i, 3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    sd      x\i, \i*8(sp)
    .endr
    addi    t1, sp, 288
    sd      t1, 2*8(sp)
    sd      t0, 32*8(sp)
    /* The handler runs with interrupts masked: it uses per-hart state. */
    csrrci  t1, sstatus, 2
    sd      t1, 33*8(sp)
    mv      a0, sp
    call    rkprobes_ret_handler
    mv      t0, a0
    ld      t1, 33*8(sp)
    andi    t1, t1, 2
    csrs    sstatus, t1
    /* x5 (t0) holds the target; everything else comes back. */
    .irp i, 1,3,4,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld      x\i, \i*8(sp)
    .endr
    addi    sp, sp, 288
    jr      t0
    .size rkprobes_ret_trampoline, . - rkprobes_ret_trampoline
    .popsection
"#
);

/// Address of the common trampoline (0 on hosts, where it is not built).
pub fn common_trampoline() -> usize {
    #[cfg(target_arch = "riscv64")]
    {
        extern "C" {
            fn rkprobes_ret_trampoline();
        }
        rkprobes_ret_trampoline as *const () as usize
    }
    #[cfg(not(target_arch = "riscv64"))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::riscv::decode::{decode, Action};
    use crate::arch::riscv::insn::Insn;

    #[test]
    fn stub_decodes_as_intended() {
        let code = ret_stub_code(0x1234_5678);
        let names: std::vec::Vec<_> = (0..4)
            .map(|i| decode(Insn::from_bytes(&code[i * 4..]).unwrap()).mnemonic)
            .collect();
        assert_eq!(names, ["auipc", "ld", "jalr", "addi"]);
        assert!(matches!(
            decode(Insn::from_bytes(&code[4..]).unwrap()).action,
            Action::OutOfLine
        ));
        assert_eq!(
            u64::from_le_bytes(code[24..32].try_into().unwrap()),
            0x1234_5678
        );
    }
}
