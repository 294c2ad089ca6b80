//! Console output through SBI: the DBCN extension where the firmware has it
//! (OpenSBI >= 1.2), the legacy putchar call otherwise (OpenSBI 1.1 in
//! Debian bookworm's QEMU 7.2).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static HAS_DBCN: AtomicBool = AtomicBool::new(false);
/// Owner (hart id + 1) of the console; serialises whole lines so harts do
/// not interleave characters. Re-entrant on one hart: a probe handler may
/// print while the code it interrupted was printing.
static OWNER: AtomicUsize = AtomicUsize::new(0);

pub fn init() {
    let dbcn = sbi_rt::probe_extension(sbi_rt::Console).is_available();
    HAS_DBCN.store(dbcn, Ordering::Relaxed);
}

pub fn has_dbcn() -> bool {
    HAS_DBCN.load(Ordering::Relaxed)
}

fn put_byte(b: u8) {
    if has_dbcn() {
        sbi_rt::console_write_byte(b);
    } else {
        #[allow(deprecated)]
        sbi_rt::legacy::console_putchar(b as usize);
    }
}

struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(put_byte);
        Ok(())
    }
}

pub fn print(args: fmt::Arguments) {
    // Printing from a trap taken while this hart holds the lock would
    // deadlock; interrupts are masked for the duration instead.
    let guard = crate::arch::IrqGuard::new();
    let me = crate::arch::hart_id() + 1;
    let reentered = OWNER.load(Ordering::Relaxed) == me;
    if !reentered {
        while OWNER
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
    }
    Console.write_fmt(args).ok();
    if !reentered {
        OWNER.store(0, Ordering::Release);
    }
    drop(guard);
}

/// Writes without taking the lock: for the panic path only.
pub fn print_unlocked(args: fmt::Arguments) {
    Console.write_fmt(args).ok();
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        println!("[{:>5}] {}", record.level(), record.args());
    }
    fn flush(&self) {}
}

pub fn init_log(level: log::LevelFilter) {
    static LOGGER: Logger = Logger;
    log::set_logger(&LOGGER).ok();
    log::set_max_level(level);
}
