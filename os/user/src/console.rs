//! `print!` and `println!`: each call formats into a buffer and hands it
//! to the kernel in one `write`, so a line is never split between harts.

use core::fmt::{self, Write};

const BUF: usize = 256;

struct LineBuf {
    buf: [u8; BUF],
    len: usize,
}

impl LineBuf {
    fn flush(&mut self) {
        if self.len > 0 {
            crate::syscall::write(1, &self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == BUF {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

pub fn print(args: fmt::Arguments) {
    let mut line = LineBuf {
        buf: [0; BUF],
        len: 0,
    };
    line.write_fmt(args).ok();
    line.flush();
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
