//! rkprobes demo OS: a small RISC-V kernel that integrates rkprobes the way
//! the seed document says and proves every feature under QEMU.
#![no_std]
#![no_main]

extern crate alloc;

#[macro_use]
mod console;
mod arch;
#[cfg(feature = "bench")]
mod bench;
mod boot;
mod bootargs;
mod demo;
mod exit;
mod loader;
mod mm;
mod process;
mod rkprobes_os;
mod smp;
mod symbols;
mod syscall;
mod task;
mod test;
mod timer;
mod trap;
mod uprobes_os;

use core::sync::atomic::{AtomicBool, Ordering};

fn clear_bss() {
    let (start, end) = (mm::sym(mm::sbss), mm::sym(mm::ebss));
    // SAFETY: [sbss, ebss) is this kernel's .bss, not in use yet.
    unsafe { core::ptr::write_bytes(start as *mut u8, 0, end - start) };
}

#[no_mangle]
extern "C" fn rust_main(hartid: usize, dtb: usize) -> ! {
    clear_bss();
    // SAFETY: first thing on the boot hart.
    unsafe { arch::set_hart_id(hartid) };
    console::init();
    console::init_log(log::LevelFilter::Info);
    let heap_end = mm::heap::init();
    symbols::init();
    let info = bootargs::init(dtb);
    // The device tree (near the end of RAM) is parsed: RAM after the heap
    // is free for user pages.
    mm::frame::init(heap_end, info.ram_end);
    mm::paging::init(info.ram_end);
    mm::paging::enable_hart();
    trap::init_hart();
    timer::init_hart();
    rkprobes_os::init();
    uprobes_os::init();
    smp::start_secondaries(hartid, info.harts);
    // IPIs reach this hart too: a probe registered on another hart waits
    // for this one to take one (`smp::wait_harts_out_of`).
    smp::enable_ipi();
    arch::irq_enable();

    println!("rkprobes demo OS");
    println!(
        "  console: {}",
        if console::has_dbcn() {
            "SBI DBCN"
        } else {
            "SBI legacy putchar"
        }
    );
    println!("  symbols: {} kernel functions", symbols::count());
    println!("  harts online: {} (boot hart {hartid})", smp::online());
    println!(
        "  text   {:#x}..{:#x} (r-x)",
        mm::sym(mm::stext),
        mm::sym(mm::etext)
    );
    println!(
        "  slots  {:#x}..{:#x} (r-x)",
        mm::sym(mm::skprobe_slots),
        mm::sym(mm::ekprobe_slots)
    );
    println!(
        "  rodata {:#x}..{:#x} (r--)",
        mm::sym(mm::srodata),
        mm::sym(mm::erodata)
    );
    println!(
        "  data   {:#x}..{:#x} (rw-)",
        mm::sym(mm::sdata),
        mm::sym(mm::ekernel)
    );
    println!("  heap   {:#x}..{heap_end:#x}", mm::sym(mm::ekernel));
    println!(
        "  ram    ..{:#x}, linear map at {:#x}",
        info.ram_end,
        mm::LINEAR_OFFSET
    );
    println!("  bootargs: {:?}", info.args);

    let code = match bootargs::get("mode").unwrap_or("demo") {
        "test" => {
            let (passed, failed) = test::run_all(bootargs::get("filter"));
            u32::from(failed > 0 || passed == 0)
        }
        #[cfg(feature = "bench")]
        "bench" => bench::run(),
        _ => {
            demo::run();
            task::demo::run();
            task::trace_demo::run();
            process::demo::run();
            0
        }
    };
    exit::exit(code)
}

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if !PANICKING.swap(true, Ordering::SeqCst) {
        console::print_unlocked(format_args!("[PANIC] hart {}: {info}\n", arch::hart_id()));
    }
    exit::exit(3)
}
