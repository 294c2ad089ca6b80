//! One assembly function per probed instruction form (see `asm_case!`).
//! Columns: function, label on the probed instruction, code before it, the
//! probed instruction, code after it.

use super::asm_case::asm_case;

asm_case!(
    kt_auipc,
    kt_auipc_at,
    "",
    ".option push\n.option norvc\nauipc a0, 0\n.option pop",
    "ret"
);
asm_case!(
    kt_jal,
    kt_jal_at,
    "mv t1, ra",
    ".option push\n.option norvc\njal ra, 1f\n.option pop",
    "li a0, 1\nmv ra, t1\nret\n1: mv a0, ra\nmv ra, t1\nret"
);
asm_case!(
    kt_jalr,
    kt_jalr_at,
    "la t1, 1f",
    ".option push\n.option norvc\njalr t0, 0(t1)\n.option pop",
    "li a0, 1\nret\n1: mv a0, t0\nret"
);
asm_case!(
    kt_jalr_rd_is_rs1,
    kt_jalr_rd_is_rs1_at,
    "la t1, 1f",
    ".option push\n.option norvc\njalr t1, 0(t1)\n.option pop",
    "li a0, 1\nret\n1: mv a0, t1\nret"
);
asm_case!(
    kt_jalr_offset,
    kt_jalr_offset_at,
    "la t1, 1f\naddi t1, t1, -8",
    ".option push\n.option norvc\njalr t0, 8(t1)\n.option pop",
    "li a0, 1\nret\n1: mv a0, t0\nret"
);
asm_case!(
    kt_beq,
    kt_beq_at,
    "",
    ".option push\n.option norvc\nbeq a0, a1, 1f\n.option pop",
    "li a0, 10\nret\n1: li a0, 20\nret"
);
asm_case!(
    kt_bne,
    kt_bne_at,
    "",
    ".option push\n.option norvc\nbne a0, a1, 1f\n.option pop",
    "li a0, 10\nret\n1: li a0, 20\nret"
);
asm_case!(
    kt_blt,
    kt_blt_at,
    "",
    ".option push\n.option norvc\nblt a0, a1, 1f\n.option pop",
    "li a0, 10\nret\n1: li a0, 20\nret"
);
asm_case!(
    kt_bge,
    kt_bge_at,
    "",
    ".option push\n.option norvc\nbge a0, a1, 1f\n.option pop",
    "li a0, 10\nret\n1: li a0, 20\nret"
);
asm_case!(
    kt_bltu,
    kt_bltu_at,
    "",
    ".option push\n.option norvc\nbltu a0, a1, 1f\n.option pop",
    "li a0, 10\nret\n1: li a0, 20\nret"
);
asm_case!(
    kt_bgeu,
    kt_bgeu_at,
    "",
    ".option push\n.option norvc\nbgeu a0, a1, 1f\n.option pop",
    "li a0, 10\nret\n1: li a0, 20\nret"
);
asm_case!(
    kt_beq_backward,
    kt_beq_backward_at,
    "j 2f\n1: li a0, 20\nret\n2:",
    ".option push\n.option norvc\nbeq a0, a1, 1b\n.option pop",
    "li a0, 10\nret"
);
asm_case!(
    kt_beq_2mod4,
    kt_beq_2mod4_at,
    "c.nop",
    ".option push\n.option norvc\nbeq a0, a1, 1f\n.option pop",
    "li a0, 10\nret\n1: li a0, 20\nret"
);
asm_case!(
    kt_c_j,
    kt_c_j_at,
    "",
    "c.j 1f",
    "li a0, 10\nret\n1: li a0, 20\nret"
);
asm_case!(
    kt_c_jr,
    kt_c_jr_at,
    "la t1, 1f",
    "c.jr t1",
    "li a0, 10\nret\n1: li a0, 20\nret"
);
asm_case!(
    kt_c_jalr,
    kt_c_jalr_at,
    "mv t2, ra\nla t1, 1f",
    "c.jalr t1",
    "li a0, 10\nmv ra, t2\nret\n1: mv a0, ra\nmv ra, t2\nret"
);
asm_case!(
    kt_c_beqz,
    kt_c_beqz_at,
    "",
    "c.beqz a0, 1f",
    "li a0, 10\nret\n1: li a0, 20\nret"
);
asm_case!(
    kt_c_bnez,
    kt_c_bnez_at,
    "",
    "c.bnez a0, 1f",
    "li a0, 10\nret\n1: li a0, 20\nret"
);
asm_case!(
    kt_add,
    kt_add_at,
    "",
    ".option push\n.option norvc\nadd a0, a0, a1\n.option pop",
    "ret"
);
asm_case!(
    kt_add_2mod4,
    kt_add_2mod4_at,
    "c.nop",
    ".option push\n.option norvc\nadd a0, a0, a1\n.option pop",
    "ret"
);
asm_case!(
    kt_addi,
    kt_addi_at,
    "",
    ".option push\n.option norvc\naddi a0, a0, -7\n.option pop",
    "ret"
);
asm_case!(
    kt_lui,
    kt_lui_at,
    "",
    ".option push\n.option norvc\nlui a0, 0x12345\n.option pop",
    "ret"
);
asm_case!(
    kt_slli,
    kt_slli_at,
    "",
    ".option push\n.option norvc\nslli a0, a0, 13\n.option pop",
    "ret"
);
asm_case!(
    kt_srai,
    kt_srai_at,
    "",
    ".option push\n.option norvc\nsrai a0, a0, 3\n.option pop",
    "ret"
);
asm_case!(
    kt_sltu,
    kt_sltu_at,
    "",
    ".option push\n.option norvc\nsltu a0, a0, a1\n.option pop",
    "ret"
);
asm_case!(
    kt_xor,
    kt_xor_at,
    "",
    ".option push\n.option norvc\nxor a0, a0, a1\n.option pop",
    "ret"
);
asm_case!(
    kt_addw,
    kt_addw_at,
    "",
    ".option push\n.option norvc\naddw a0, a0, a1\n.option pop",
    "ret"
);
asm_case!(
    kt_sraiw,
    kt_sraiw_at,
    "",
    ".option push\n.option norvc\nsraiw a0, a0, 5\n.option pop",
    "ret"
);
asm_case!(
    kt_mul,
    kt_mul_at,
    "",
    ".option push\n.option norvc\nmul a0, a0, a1\n.option pop",
    "ret"
);
asm_case!(
    kt_mulhu,
    kt_mulhu_at,
    "",
    ".option push\n.option norvc\nmulhu a0, a0, a1\n.option pop",
    "ret"
);
asm_case!(
    kt_div,
    kt_div_at,
    "",
    ".option push\n.option norvc\ndiv a0, a0, a1\n.option pop",
    "ret"
);
asm_case!(
    kt_remu,
    kt_remu_at,
    "",
    ".option push\n.option norvc\nremu a0, a0, a1\n.option pop",
    "ret"
);
asm_case!(
    kt_divw,
    kt_divw_at,
    "",
    ".option push\n.option norvc\ndivw a0, a0, a1\n.option pop",
    "ret"
);
asm_case!(
    kt_ld,
    kt_ld_at,
    "",
    ".option push\n.option norvc\nld a0, 8(a0)\n.option pop",
    "ret"
);
asm_case!(
    kt_ld_2mod4,
    kt_ld_2mod4_at,
    "c.nop",
    ".option push\n.option norvc\nld a0, 8(a0)\n.option pop",
    "ret"
);
asm_case!(
    kt_lw,
    kt_lw_at,
    "",
    ".option push\n.option norvc\nlw a0, 4(a0)\n.option pop",
    "ret"
);
asm_case!(
    kt_lbu,
    kt_lbu_at,
    "",
    ".option push\n.option norvc\nlbu a0, 3(a0)\n.option pop",
    "ret"
);
asm_case!(
    kt_sd,
    kt_sd_at,
    "",
    ".option push\n.option norvc\nsd a1, 16(a0)\n.option pop",
    "ld a0, 16(a0)\nret"
);
asm_case!(
    kt_sb,
    kt_sb_at,
    "",
    ".option push\n.option norvc\nsb a1, 17(a0)\n.option pop",
    "ld a0, 16(a0)\nret"
);
asm_case!(
    kt_amoadd_d,
    kt_amoadd_d_at,
    "",
    ".option push\n.option norvc\namoadd.d a0, a1, (a0)\n.option pop",
    "ret"
);
asm_case!(
    kt_amoswap_w,
    kt_amoswap_w_at,
    "",
    ".option push\n.option norvc\namoswap.w a0, a1, (a0)\n.option pop",
    "ret"
);
asm_case!(
    kt_amomaxu_d,
    kt_amomaxu_d_at,
    "mv t0, a0",
    ".option push\n.option norvc\namomaxu.d a0, a1, (a0)\n.option pop",
    "ld a0, 0(t0)\nret"
);
asm_case!(
    kt_fence,
    kt_fence_at,
    "",
    ".option push\n.option norvc\nfence rw, rw\n.option pop",
    "add a0, a0, a1\nret"
);
asm_case!(
    kt_fadd_d,
    kt_fadd_d_at,
    "fmv.d.x fa0, a0\nfmv.d.x fa1, a1",
    ".option push\n.option norvc\nfadd.d fa0, fa0, fa1\n.option pop",
    "fmv.x.d a0, fa0\nret"
);
asm_case!(
    kt_fmul_d,
    kt_fmul_d_at,
    "fmv.d.x fa0, a0\nfmv.d.x fa1, a1",
    ".option push\n.option norvc\nfmul.d fa0, fa0, fa1\n.option pop",
    "fmv.x.d a0, fa0\nret"
);
asm_case!(
    kt_fdiv_d,
    kt_fdiv_d_at,
    "fmv.d.x fa0, a0\nfmv.d.x fa1, a1",
    ".option push\n.option norvc\nfdiv.d fa0, fa0, fa1\n.option pop",
    "fmv.x.d a0, fa0\nret"
);
asm_case!(
    kt_fsqrt_d,
    kt_fsqrt_d_at,
    "fmv.d.x fa0, a0",
    ".option push\n.option norvc\nfsqrt.d fa0, fa0\n.option pop",
    "fmv.x.d a0, fa0\nret"
);
asm_case!(
    kt_fmadd_d,
    kt_fmadd_d_at,
    "fmv.d.x fa0, a0\nfmv.d.x fa1, a1",
    ".option push\n.option norvc\nfmadd.d fa0, fa0, fa1, fa0\n.option pop",
    "fmv.x.d a0, fa0\nret"
);
asm_case!(
    kt_fcvt_l_d,
    kt_fcvt_l_d_at,
    "fmv.d.x fa0, a0",
    ".option push\n.option norvc\nfcvt.l.d a0, fa0, rtz\n.option pop",
    "ret"
);
asm_case!(
    kt_fadd_s,
    kt_fadd_s_at,
    "fmv.w.x fa0, a0\nfmv.w.x fa1, a1",
    ".option push\n.option norvc\nfadd.s fa0, fa0, fa1\n.option pop",
    "fmv.x.w a0, fa0\nret"
);
asm_case!(
    kt_fld,
    kt_fld_at,
    "",
    ".option push\n.option norvc\nfld fa0, 8(a0)\n.option pop",
    "fmv.x.d a0, fa0\nret"
);
asm_case!(
    kt_fsd,
    kt_fsd_at,
    "fmv.d.x fa0, a1",
    ".option push\n.option norvc\nfsd fa0, 0(a0)\n.option pop",
    "ld a0, 0(a0)\nret"
);
asm_case!(kt_c_addi, kt_c_addi_at, "", "c.addi a0, 5", "ret");
asm_case!(kt_c_li, kt_c_li_at, "", "c.li a0, -7", "ret");
asm_case!(kt_c_mv, kt_c_mv_at, "", "c.mv a0, a1", "ret");
asm_case!(kt_c_add, kt_c_add_at, "", "c.add a0, a1", "ret");
asm_case!(kt_c_sub, kt_c_sub_at, "", "c.sub a0, a1", "ret");
asm_case!(kt_c_slli, kt_c_slli_at, "", "c.slli a0, 3", "ret");
asm_case!(kt_c_srli, kt_c_srli_at, "", "c.srli a0, 3", "ret");
asm_case!(kt_c_andi, kt_c_andi_at, "", "c.andi a0, 6", "ret");
asm_case!(kt_c_lui, kt_c_lui_at, "", "c.lui a0, 5", "ret");
asm_case!(kt_c_addiw, kt_c_addiw_at, "", "c.addiw a0, 1", "ret");
asm_case!(kt_c_addw, kt_c_addw_at, "", "c.addw a0, a1", "ret");
asm_case!(kt_c_ld, kt_c_ld_at, "", "c.ld a0, 8(a0)", "ret");
asm_case!(kt_c_lw, kt_c_lw_at, "", "c.lw a0, 4(a0)", "ret");
asm_case!(
    kt_c_sd,
    kt_c_sd_at,
    "",
    "c.sd a1, 0(a0)",
    "ld a0, 0(a0)\nret"
);
asm_case!(
    kt_c_sw,
    kt_c_sw_at,
    "",
    "c.sw a1, 0(a0)",
    "ld a0, 0(a0)\nret"
);
asm_case!(
    kt_c_ldsp,
    kt_c_ldsp_at,
    "addi sp, sp, -16\nsd a1, 8(sp)",
    "c.ldsp a0, 8(sp)",
    "addi sp, sp, 16\nret"
);
asm_case!(
    kt_c_sdsp,
    kt_c_sdsp_at,
    "addi sp, sp, -16",
    "c.sdsp a1, 8(sp)",
    "ld a0, 8(sp)\naddi sp, sp, 16\nret"
);
asm_case!(
    kt_c_addi16sp,
    kt_c_addi16sp_at,
    "mv t0, sp",
    "c.addi16sp sp, -32",
    "sub a0, t0, sp\nmv sp, t0\nret"
);
asm_case!(
    kt_c_addi4spn,
    kt_c_addi4spn_at,
    "",
    "c.addi4spn a0, sp, 16",
    "sub a0, a0, sp\nret"
);
asm_case!(
    kt_c_fld,
    kt_c_fld_at,
    "",
    "c.fld fa0, 8(a0)",
    "fmv.x.d a0, fa0\nret"
);
asm_case!(
    kt_c_fsd,
    kt_c_fsd_at,
    "fmv.d.x fa0, a1",
    "c.fsd fa0, 0(a0)",
    "ld a0, 0(a0)\nret"
);
asm_case!(kt_c_nop, kt_c_nop_at, "", "c.nop", "add a0, a0, a1\nret");

/// Every case, in the order they run.
pub fn cases() -> alloc::vec::Vec<super::kprobes::Case> {
    use super::kprobes::{case, Inputs};
    alloc::vec![
        case!("auipc", kt_auipc, kt_auipc_at, true, Inputs::Any),
        case!("jal", kt_jal, kt_jal_at, false, Inputs::Any),
        case!("jalr", kt_jalr, kt_jalr_at, false, Inputs::Any),
        case!(
            "jalr_rd_is_rs1",
            kt_jalr_rd_is_rs1,
            kt_jalr_rd_is_rs1_at,
            false,
            Inputs::Any
        ),
        case!(
            "jalr_offset",
            kt_jalr_offset,
            kt_jalr_offset_at,
            false,
            Inputs::Any
        ),
        case!("beq", kt_beq, kt_beq_at, false, Inputs::Compare),
        case!("bne", kt_bne, kt_bne_at, false, Inputs::Compare),
        case!("blt", kt_blt, kt_blt_at, false, Inputs::Compare),
        case!("bge", kt_bge, kt_bge_at, false, Inputs::Compare),
        case!("bltu", kt_bltu, kt_bltu_at, false, Inputs::Compare),
        case!("bgeu", kt_bgeu, kt_bgeu_at, false, Inputs::Compare),
        case!(
            "beq_backward",
            kt_beq_backward,
            kt_beq_backward_at,
            false,
            Inputs::Compare
        ),
        case!(
            "beq_2mod4",
            kt_beq_2mod4,
            kt_beq_2mod4_at,
            false,
            Inputs::Compare
        ),
        case!("c_j", kt_c_j, kt_c_j_at, false, Inputs::Any),
        case!("c_jr", kt_c_jr, kt_c_jr_at, false, Inputs::Any),
        case!("c_jalr", kt_c_jalr, kt_c_jalr_at, false, Inputs::Any),
        case!("c_beqz", kt_c_beqz, kt_c_beqz_at, false, Inputs::Compare),
        case!("c_bnez", kt_c_bnez, kt_c_bnez_at, false, Inputs::Compare),
        case!("add", kt_add, kt_add_at, true, Inputs::Alu),
        case!(
            "add_2mod4",
            kt_add_2mod4,
            kt_add_2mod4_at,
            true,
            Inputs::Alu
        ),
        case!("addi", kt_addi, kt_addi_at, true, Inputs::Alu),
        case!("lui", kt_lui, kt_lui_at, true, Inputs::Any),
        case!("slli", kt_slli, kt_slli_at, true, Inputs::Alu),
        case!("srai", kt_srai, kt_srai_at, true, Inputs::Alu),
        case!("sltu", kt_sltu, kt_sltu_at, true, Inputs::Compare),
        case!("xor", kt_xor, kt_xor_at, true, Inputs::Alu),
        case!("addw", kt_addw, kt_addw_at, true, Inputs::Alu),
        case!("sraiw", kt_sraiw, kt_sraiw_at, true, Inputs::Alu),
        case!("mul", kt_mul, kt_mul_at, true, Inputs::Alu),
        case!("mulhu", kt_mulhu, kt_mulhu_at, true, Inputs::Alu),
        case!("div", kt_div, kt_div_at, true, Inputs::Alu),
        case!("remu", kt_remu, kt_remu_at, true, Inputs::Alu),
        case!("divw", kt_divw, kt_divw_at, true, Inputs::Alu),
        case!("ld", kt_ld, kt_ld_at, true, Inputs::Memory),
        case!(
            "ld_2mod4",
            kt_ld_2mod4,
            kt_ld_2mod4_at,
            true,
            Inputs::Memory
        ),
        case!("lw", kt_lw, kt_lw_at, true, Inputs::Memory),
        case!("lbu", kt_lbu, kt_lbu_at, true, Inputs::Memory),
        case!("sd", kt_sd, kt_sd_at, false, Inputs::Memory),
        case!("sb", kt_sb, kt_sb_at, false, Inputs::Memory),
        case!(
            "amoadd_d",
            kt_amoadd_d,
            kt_amoadd_d_at,
            true,
            Inputs::Memory
        ),
        case!(
            "amoswap_w",
            kt_amoswap_w,
            kt_amoswap_w_at,
            true,
            Inputs::Memory
        ),
        case!(
            "amomaxu_d",
            kt_amomaxu_d,
            kt_amomaxu_d_at,
            false,
            Inputs::Memory
        ),
        case!("fence", kt_fence, kt_fence_at, false, Inputs::Alu),
        case!("fadd_d", kt_fadd_d, kt_fadd_d_at, false, Inputs::Float),
        case!("fmul_d", kt_fmul_d, kt_fmul_d_at, false, Inputs::Float),
        case!("fdiv_d", kt_fdiv_d, kt_fdiv_d_at, false, Inputs::Float),
        case!("fsqrt_d", kt_fsqrt_d, kt_fsqrt_d_at, false, Inputs::Float),
        case!("fmadd_d", kt_fmadd_d, kt_fmadd_d_at, false, Inputs::Float),
        case!("fcvt_l_d", kt_fcvt_l_d, kt_fcvt_l_d_at, true, Inputs::Float),
        case!("fadd_s", kt_fadd_s, kt_fadd_s_at, false, Inputs::Float),
        case!("fld", kt_fld, kt_fld_at, false, Inputs::Memory),
        case!("fsd", kt_fsd, kt_fsd_at, false, Inputs::Memory),
        case!("c_addi", kt_c_addi, kt_c_addi_at, true, Inputs::Alu),
        case!("c_li", kt_c_li, kt_c_li_at, true, Inputs::Any),
        case!("c_mv", kt_c_mv, kt_c_mv_at, true, Inputs::Alu),
        case!("c_add", kt_c_add, kt_c_add_at, true, Inputs::Alu),
        case!("c_sub", kt_c_sub, kt_c_sub_at, true, Inputs::Alu),
        case!("c_slli", kt_c_slli, kt_c_slli_at, true, Inputs::Alu),
        case!("c_srli", kt_c_srli, kt_c_srli_at, true, Inputs::Alu),
        case!("c_andi", kt_c_andi, kt_c_andi_at, true, Inputs::Alu),
        case!("c_lui", kt_c_lui, kt_c_lui_at, true, Inputs::Any),
        case!("c_addiw", kt_c_addiw, kt_c_addiw_at, true, Inputs::Alu),
        case!("c_addw", kt_c_addw, kt_c_addw_at, true, Inputs::Alu),
        case!("c_ld", kt_c_ld, kt_c_ld_at, true, Inputs::Memory),
        case!("c_lw", kt_c_lw, kt_c_lw_at, true, Inputs::Memory),
        case!("c_sd", kt_c_sd, kt_c_sd_at, false, Inputs::Memory),
        case!("c_sw", kt_c_sw, kt_c_sw_at, false, Inputs::Memory),
        case!("c_ldsp", kt_c_ldsp, kt_c_ldsp_at, true, Inputs::Alu),
        case!("c_sdsp", kt_c_sdsp, kt_c_sdsp_at, false, Inputs::Alu),
        case!(
            "c_addi16sp",
            kt_c_addi16sp,
            kt_c_addi16sp_at,
            false,
            Inputs::Any
        ),
        case!(
            "c_addi4spn",
            kt_c_addi4spn,
            kt_c_addi4spn_at,
            false,
            Inputs::Any
        ),
        case!("c_fld", kt_c_fld, kt_c_fld_at, false, Inputs::Memory),
        case!("c_fsd", kt_c_fsd, kt_c_fsd_at, false, Inputs::Memory),
        case!("c_nop", kt_c_nop, kt_c_nop_at, false, Inputs::Alu),
    ]
}
