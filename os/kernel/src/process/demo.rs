//! The demo's user-process part: a few programs on every hart.

use super::{run_until_idle, spawn};

pub fn run() {
    println!("[demo] user processes: /bin/hello, /bin/fib 30, /bin/forktest");
    let programs: [(&str, &[&str]); 3] = [
        ("/bin/hello", &["hello"]),
        ("/bin/fib", &["fib", "30"]),
        ("/bin/forktest", &["forktest"]),
    ];
    let spawned: alloc::vec::Vec<_> = programs
        .iter()
        .filter_map(|(path, args)| spawn(path, args).ok().map(|p| (path, p)))
        .collect();
    run_until_idle();
    for (path, p) in spawned {
        println!(
            "[demo] {path} (pid {}) exited with {:?}, ran on harts {:#b}",
            p.pid(),
            p.exit_code(),
            p.harts_seen()
        );
    }
}
