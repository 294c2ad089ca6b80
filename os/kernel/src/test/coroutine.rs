//! Stackful coroutines for tests: a kernel "task" that can stop inside a
//! function and be resumed later, on any hart.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

/// Callee-saved state of a switched-out context.
#[repr(C)]
#[derive(Default)]
struct Context {
    ra: usize,
    sp: usize,
    s: [usize; 12],
}

core::arch::global_asm!(
    r#"
    .pushsection .text.kt_switch, "ax", @progbits
    .globl kt_switch
    .type kt_switch, @function
    .p2align 2
kt_switch:
    sd      ra, 0(a0)
    sd      sp, 8(a0)
    sd      s0, 16(a0)
    sd      s1, 24(a0)
    sd      s2, 32(a0)
    sd      s3, 40(a0)
    sd      s4, 48(a0)
    sd      s5, 56(a0)
    sd      s6, 64(a0)
    sd      s7, 72(a0)
    sd      s8, 80(a0)
    sd      s9, 88(a0)
    sd      s10, 96(a0)
    sd      s11, 104(a0)
    ld      ra, 0(a1)
    ld      sp, 8(a1)
    ld      s0, 16(a1)
    ld      s1, 24(a1)
    ld      s2, 32(a1)
    ld      s3, 40(a1)
    ld      s4, 48(a1)
    ld      s5, 56(a1)
    ld      s6, 64(a1)
    ld      s7, 72(a1)
    ld      s8, 80(a1)
    ld      s9, 88(a1)
    ld      s10, 96(a1)
    ld      s11, 104(a1)
    ret
    .size kt_switch, . - kt_switch

    .globl kt_coroutine_start
    .type kt_coroutine_start, @function
kt_coroutine_start:
    mv      a0, s0
    call    kt_coroutine_main
    .size kt_coroutine_start, . - kt_coroutine_start
    .popsection
"#
);

extern "C" {
    fn kt_switch(from: *mut Context, to: *const Context);
    fn kt_coroutine_start();
}

/// What a coroutine runs.
type Body = Box<dyn FnOnce(&Yielder)>;

pub struct Coroutine {
    ctx: Context,
    caller: Context,
    stack: Vec<u8>,
    body: Option<Body>,
    done: bool,
}

/// Lets a coroutine's body stop and hand control back to `resume`.
pub struct Yielder(*mut Coroutine);

impl Yielder {
    pub fn yield_now(&self) {
        // SAFETY: the coroutine is alive (boxed) while its body runs.
        let co = unsafe { &mut *self.0 };
        // SAFETY: `caller` was filled by the `resume` that is running us.
        unsafe { kt_switch(&mut co.ctx, &co.caller) };
    }
}

#[no_mangle]
extern "C" fn kt_coroutine_main(co: *mut Coroutine) -> ! {
    // SAFETY: `resume` passed its boxed coroutine through s0.
    let body = unsafe { (*co).body.take() };
    if let Some(body) = body {
        body(&Yielder(co));
    }
    // SAFETY: as above.
    unsafe {
        (*co).done = true;
        kt_switch(&mut (*co).ctx, &(*co).caller);
    }
    unreachable!("a finished coroutine was resumed");
}

impl Coroutine {
    pub fn new(body: impl FnOnce(&Yielder) + 'static) -> Box<Self> {
        let mut co = Box::new(Coroutine {
            ctx: Context::default(),
            caller: Context::default(),
            stack: vec![0; 32 * 1024],
            body: Some(Box::new(body)),
            done: false,
        });
        let top = (co.stack.as_ptr() as usize + co.stack.len()) & !15;
        co.ctx.ra = kt_coroutine_start as *const () as usize;
        co.ctx.sp = top;
        co.ctx.s[0] = &mut *co as *mut Coroutine as usize;
        co
    }

    /// Runs the coroutine until it yields or finishes; returns `is_done()`.
    pub fn resume(&mut self) -> bool {
        assert!(!self.done, "resumed a finished coroutine");
        // SAFETY: `ctx` is a context saved by `kt_switch` or set up by
        // `new`; its stack lives as long as `self`.
        unsafe { kt_switch(&mut self.caller, &self.ctx) };
        self.done
    }

    pub fn stack_range(&self) -> Range<usize> {
        let base = self.stack.as_ptr() as usize;
        base..base + self.stack.len()
    }
}

// SAFETY: a coroutine runs on one hart at a time (`resume` takes &mut);
// tests hand it between harts only while it is switched out.
unsafe impl Send for Coroutine {}
