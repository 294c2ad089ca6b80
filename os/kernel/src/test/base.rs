//! Tests of the base OS layer: harts, heap, timer, paging, traps.

use super::{Test, TestResult};
use crate::mm::{self, paging};
use crate::{arch, bootargs, check, check_eq, smp, timer};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

pub fn tests() -> Vec<Test> {
    alloc::vec![
        Test::new("base::all_harts_online", all_harts_online),
        Test::new("base::jobs_run_on_every_hart", jobs_run_on_every_hart),
        Test::new("base::heap_allocates_and_frees", heap_allocates_and_frees),
        Test::new("base::timer_ticks_on_every_hart", timer_ticks),
        Test::new("base::text_is_read_execute_only", text_is_read_execute_only),
        Test::new("base::linear_alias_sees_text", linear_alias_sees_text),
        Test::new("base::unowned_ebreak_reported_and_skipped", unowned_ebreak),
    ]
}

fn all_harts_online() -> TestResult {
    check_eq!(smp::online(), bootargs::info().harts);
    check_eq!(smp::harts().count(), smp::online());
    Ok(())
}

fn jobs_run_on_every_hart() -> TestResult {
    let mask = AtomicUsize::new(0);
    smp::run_on_all(true, &|hart| {
        mask.fetch_or(1 << hart, Ordering::Relaxed);
    });
    let expected = smp::harts().fold(0, |m, h| m | (1 << h));
    check_eq!(mask.load(Ordering::Relaxed), expected);
    Ok(())
}

fn heap_allocates_and_frees() -> TestResult {
    let before = mm::heap::allocations_on_this_hart();
    let v: Vec<u64> = (0..10_000).collect();
    check_eq!(v.iter().sum::<u64>(), 10_000 * 9_999 / 2);
    check!(mm::heap::allocations_on_this_hart() > before);
    Ok(())
}

fn timer_ticks() -> TestResult {
    let start = timer::ticks();
    let deadline = arch::time() + timer::TICKS_PER_SEC;
    // Every online hart takes its own tick, so ticks grow by at least the
    // number of harts within a few periods.
    while timer::ticks() < start + 4 * smp::online() as u64 {
        check!(
            arch::time() < deadline,
            "timer ticks stalled at {}",
            timer::ticks()
        );
        core::hint::spin_loop();
    }
    Ok(())
}

fn text_is_read_execute_only() -> TestResult {
    let text = mm::sym(mm::stext);
    let flags = paging::flags_of(text).ok_or("kernel text unmapped")?;
    check!(flags & paging::X != 0, "text not executable: {flags:#x}");
    check!(flags & paging::W == 0, "text is writable: {flags:#x}");
    let slots = mm::sym(mm::skprobe_slots);
    let flags = paging::flags_of(slots).ok_or("slot area unmapped")?;
    check!(
        flags & paging::X != 0 && flags & paging::W == 0,
        "slot area: {flags:#x}"
    );
    let alias = paging::flags_of(mm::linear_alias(text)).ok_or("alias unmapped")?;
    check!(
        alias & paging::W != 0 && alias & paging::X == 0,
        "alias flags {alias:#x}"
    );
    Ok(())
}

fn linear_alias_sees_text() -> TestResult {
    let text = mm::sym(mm::stext);
    // SAFETY: both addresses map the same readable physical bytes.
    let (a, b) = unsafe {
        (
            (text as *const u64).read_volatile(),
            (mm::linear_alias(text) as *const u64).read_volatile(),
        )
    };
    check_eq!(a, b);
    Ok(())
}

fn unowned_ebreak() -> TestResult {
    let before = rkprobes::unowned_breakpoints();
    let mut after_break: usize = 0;
    // SAFETY: an ebreak nobody owns is reported and skipped by the trap
    // handler; execution continues with the next instruction.
    unsafe {
        core::arch::asm!(
            ".option push",
            ".option norvc",
            "ebreak",
            ".option pop",
            "li {0}, 1",
            inout(reg) after_break,
        )
    };
    check_eq!(after_break, 1);
    check_eq!(rkprobes::unowned_breakpoints(), before + 1);
    Ok(())
}
