//! A fresh program image: an address space holding the program's segments
//! and a stack with its arguments, and the register frame that starts it.

use crate::loader::{self, LoadError};
use crate::mm::frame::FRAME_SIZE;
use crate::mm::paging::{R, W};
use crate::mm::user::AddressSpace;
use crate::trap::KernelFrame;
use abi::{ArgPair, MAX_ARGS, MAX_ARG_LEN};
use alloc::vec::Vec;
use rkprobes::TrapFrame;

/// The user stack ends here (exclusive), well below the kernel's root
/// entries; nothing is mapped below it, so an overflow faults.
pub const USER_STACK_TOP: usize = 0x4000_0000;
pub const USER_STACK_SIZE: usize = 8 * FRAME_SIZE;

const SSTATUS_SPP: usize = 1 << 8;
const SSTATUS_SIE: usize = 1 << 1;
const SSTATUS_SPIE: usize = 1 << 5;
const SSTATUS_FS: usize = 3 << 13;
const SSTATUS_SUM: usize = 1 << 18;

pub struct Image {
    pub space: AddressSpace,
    pub frame: KernelFrame,
}

/// Loads the program at `path` with `args` (`args[0]` is, by convention,
/// its name).
pub fn build(path: &str, args: &[&str]) -> Result<Image, LoadError> {
    if args.len() > MAX_ARGS || args.iter().any(|a| a.len() > MAX_ARG_LEN) {
        return Err(LoadError::BadArgs);
    }
    let file = loader::file(path).ok_or(LoadError::NotFound)?;
    let mut space = AddressSpace::new()?;
    let entry = loader::load(file, &mut space)?;
    for page in (USER_STACK_TOP - USER_STACK_SIZE..USER_STACK_TOP).step_by(FRAME_SIZE) {
        space.map_page(page, R | W)?;
    }
    // The argument strings at the top of the stack, then their pairs.
    let mut sp = USER_STACK_TOP;
    let mut pairs: Vec<ArgPair> = Vec::with_capacity(args.len());
    for arg in args {
        sp -= arg.len();
        space
            .write(sp, arg.as_bytes(), R | W)
            .expect("arguments fit in the stack");
        pairs.push([sp, arg.len()]);
    }
    sp = (sp - pairs.len() * size_of::<ArgPair>()) & !15;
    let argv = sp;
    for (i, pair) in pairs.iter().enumerate() {
        let bytes: Vec<u8> = pair.iter().flat_map(|w| w.to_le_bytes()).collect();
        space
            .write(argv + i * size_of::<ArgPair>(), &bytes, R | W)
            .expect("arguments fit in the stack");
    }
    let mut tf = TrapFrame {
        sepc: entry,
        sstatus: user_sstatus(),
        ..TrapFrame::default()
    };
    tf.x[TrapFrame::SP] = sp;
    tf.x[TrapFrame::A0] = args.len();
    tf.x[TrapFrame::A0 + 1] = argv;
    Ok(Image {
        space,
        frame: KernelFrame::new(tf),
    })
}

/// `sstatus` for entering user mode: previous mode U, interrupts enabled
/// after `sret`, the FPU off (user FP state is not saved across switches,
/// so a program using it faults rather than corrupting another's).
fn user_sstatus() -> usize {
    let now: usize;
    // SAFETY: reading a CSR.
    unsafe { core::arch::asm!("csrr {}, sstatus", out(reg) now) };
    (now & !(SSTATUS_SPP | SSTATUS_SIE | SSTATUS_FS | SSTATUS_SUM)) | SSTATUS_SPIE
}
