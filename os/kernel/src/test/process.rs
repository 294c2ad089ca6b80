//! Tests of user processes: programs from `os/user`, their output byte for
//! byte, fork/exec/wait, preemption across harts, faults that kill only the
//! faulting process, and the pieces uprobes build on (private text pages,
//! user memory access, ELF symbols).

use super::{Test, TestResult};
use crate::mm::frame;
use crate::mm::paging::{U, W, X};
use crate::process::{self, capture, Process};
use crate::{check, check_eq, loader, smp};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

pub fn tests() -> Vec<Test> {
    alloc::vec![
        Test::new("process::hello_output_byte_for_byte", hello_output),
        Test::new("process::exit_codes", exit_codes),
        Test::new("process::fork_children_and_wait", fork_and_wait),
        Test::new("process::exec_replaces_image", exec_replaces_image),
        Test::new("process::getpid_and_yield", getpid_and_yield),
        Test::new("process::preempted_across_all_harts", across_harts),
        Test::new("process::ebreak_kills_only_that_process", ebreak_kills),
        Test::new(
            "process::page_fault_kills_only_that_process",
            page_fault_kills
        ),
        Test::new("process::elf_symbols_resolve", elf_symbols),
        Test::new("process::text_pages_are_private", text_pages_private),
        Test::new("process::user_memory_access_checks", user_memory_access),
        Test::new("process::frames_freed_after_exit", frames_freed),
        Test::new(
            "process::threads_run_join_and_share_memory",
            threads_run_and_join
        ),
        Test::new(
            "process::thread_exit_codes_and_exit_ends_every_thread",
            thread_exits
        ),
        Test::new(
            "process::ended_threads_kernel_frames_free_their_return_probe_calls",
            ended_threads_free_kernel_calls
        ),
    ]
}

/// `process::thread_exit` never returns: a return probe on it has a call
/// in flight on the kernel stack of every thread that ends. The
/// scheduler reclaims them when it drops the thread (`reclaim_stack`);
/// without that the probe's pool (16) would fill after 16 threads and the
/// rest would be missed.
fn ended_threads_free_kernel_calls() -> TestResult {
    let p = rkprobes::Kprobe::symbol("kernel::process::thread_exit")
        .kind(rkprobes::ProbeType::SyncFunc)
        .register()
        .map_err(|e| format!("register: {e}"))?;
    let run = captured(|| spawn("/bin/threads", &["threads", "exitin"]));
    let counts = (p.hits(), p.missed(), p.in_flight());
    p.unregister().map_err(|e| format!("unregister: {e}"))?;
    let (child, _) = run?;
    check_eq!(exit_code(&child)?, 0);
    // 20 threads ending inside, and the first thread at the end.
    check_eq!(counts, (21, 0, 0));
    Ok(())
}

fn spawn(path: &str, args: &[&str]) -> Result<Arc<Process>, String> {
    process::spawn(path, args).map_err(|e| format!("spawn {path}: {e:?}"))
}

/// Runs what is spawned inside `f` until every process is done, capturing
/// their output.
fn captured<T>(f: impl FnOnce() -> Result<T, String>) -> Result<(T, capture::Captured), String> {
    capture::begin();
    let spawned = f();
    process::run_until_idle();
    let out = capture::end();
    check_eq!(process::live(), 0);
    Ok((spawned?, out))
}

fn exit_code(p: &Process) -> Result<i32, String> {
    p.exit_code()
        .ok_or_else(|| format!("process {} has not exited", p.pid()))
}

fn hello_output() -> TestResult {
    let (p, out) = captured(|| spawn("/bin/hello", &["hello"]))?;
    check_eq!(out.all(), "Hello from user mode!\n");
    check_eq!(out.of(p.pid()), "Hello from user mode!\n");
    check_eq!(exit_code(&p)?, 0);
    Ok(())
}

fn exit_codes() -> TestResult {
    // Through the exit system call, and by returning from `main`.
    check_eq!(process::run("/bin/exit", &["exit", "42"]), Ok(42));
    check_eq!(process::run("/bin/exit", &["exit", "-3"]), Ok(-3));
    check_eq!(process::run("/bin/exit", &["exit"]), Ok(0));
    check_eq!(process::run("/bin/hello", &["hello"]), Ok(0));
    check_eq!(
        process::run("/bin/nothing", &[]),
        Err(loader::LoadError::NotFound)
    );
    Ok(())
}

fn fork_and_wait() -> TestResult {
    let (p, out) = captured(|| spawn("/bin/forktest", &["forktest"]))?;
    // The children's codes 10 + 11 + 12, collected through wait.
    check_eq!(exit_code(&p)?, 33);
    let mut children: Vec<usize> = out
        .records
        .iter()
        .map(|(pid, _)| *pid)
        .filter(|&pid| pid != p.pid())
        .collect();
    children.dedup();
    children.sort();
    children.dedup();
    check!(children.len() == 3, "children: {children:?}");
    let mut parent = String::new();
    for (i, child) in children.iter().enumerate() {
        check_eq!(out.of(*child), format!("child {i}: pid {child}\n"));
        parent += &format!("parent: child {child} exited with {}\n", 10 + i);
    }
    check_eq!(out.of(p.pid()), parent);
    Ok(())
}

fn exec_replaces_image() -> TestResult {
    let (p, out) = captured(|| spawn("/bin/exec", &["exec"]))?;
    let expected = format!(
        "exec: pid {}\nexec: /bin/missing failed with {}\nfib(10) = 55\n",
        p.pid(),
        abi::ENOENT
    );
    check_eq!(out.all(), expected);
    check_eq!(p.path(), "/bin/fib");
    check_eq!(exit_code(&p)?, 0);
    Ok(())
}

fn getpid_and_yield() -> TestResult {
    let (p, out) = captured(|| spawn("/bin/ids", &["ids"]))?;
    check_eq!(
        out.all(),
        format!("ids: pid {}, stable across 10 yields\n", p.pid())
    );
    check_eq!(exit_code(&p)?, (p.pid() % 100) as i32);
    Ok(())
}

fn across_harts() -> TestResult {
    let all_harts = smp::harts().fold(0, |m, h| m | (1 << h));
    // More processes than harts, each many time slices long: preempted
    // processes go back to the shared queue and resume wherever a hart is
    // free.
    let count = smp::online() + 2;
    process::take_busy_harts();
    let (procs, out) = captured(|| {
        (0..count)
            .map(|_| spawn("/bin/spin", &["spin", "40"]))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let busy = process::take_busy_harts();
    check!(busy == all_harts, "harts that ran processes: {busy:#b}");
    for p in &procs {
        check_eq!(exit_code(p)?, 0);
        let text = out.of(p.pid());
        check!(
            text.starts_with(&format!("spin: pid {} done, 40 rounds", p.pid())),
            "output {text:?}"
        );
    }
    let migrated = procs.iter().filter(|p| p.harts_seen().count_ones() >= 2);
    check!(
        migrated.count() >= 1,
        "no process ran on two harts: {:?}",
        procs.iter().map(|p| p.harts_seen()).collect::<Vec<_>>()
    );
    Ok(())
}

fn ebreak_kills() -> TestResult {
    let ((bad, good), out) = captured(|| {
        Ok((
            spawn("/bin/ebreak", &["ebreak"])?,
            spawn("/bin/hello", &["hello"])?,
        ))
    })?;
    check_eq!(exit_code(&bad)?, abi::KILLED);
    let text = out.of(bad.pid());
    let prefix = format!(
        "ebreak: before\n[KERNEL] process {} (/bin/ebreak) killed: breakpoint at 0x",
        bad.pid()
    );
    check!(text.starts_with(&prefix), "output {text:?}");
    let pc = usize::from_str_radix(text[prefix.len()..].trim_end(), 16)
        .map_err(|e| format!("pc in {text:?}: {e}"))?;
    check_eq!(
        loader::symbol_at("/bin/ebreak", pc).map(|s| s.0),
        Some("main")
    );
    check_eq!(out.of(good.pid()), "Hello from user mode!\n");
    check_eq!(exit_code(&good)?, 0);
    Ok(())
}

fn page_fault_kills() -> TestResult {
    let ((null, text, good), out) = captured(|| {
        Ok((
            spawn("/bin/fault", &["fault", "null"])?,
            spawn("/bin/fault", &["fault", "text"])?,
            spawn("/bin/hello", &["hello"])?,
        ))
    })?;
    check_eq!(exit_code(&null)?, abi::KILLED);
    check_eq!(exit_code(&text)?, abi::KILLED);
    let (main, _) = loader::elf_symbol("/bin/fault", "main").ok_or("no main")?;
    let null_out = out.of(null.pid());
    let expect = format!(
        "fault: null\n[KERNEL] process {} (/bin/fault) killed: load page fault (address 0x0) at 0x",
        null.pid()
    );
    check!(null_out.starts_with(&expect), "output {null_out:?}");
    // Text is mapped without W: the store into it faults.
    let text_out = out.of(text.pid());
    let expect = format!(
        "fault: text\n[KERNEL] process {} (/bin/fault) killed: store page fault (address {main:#x}) at 0x",
        text.pid()
    );
    check!(text_out.starts_with(&expect), "output {text_out:?}");
    check!(!out.all().contains("survived"));
    check_eq!(out.of(good.pid()), "Hello from user mode!\n");
    Ok(())
}

fn elf_symbols() -> TestResult {
    let text = loader::text_range("/bin/fib").ok_or("no text segment")?;
    let (compute, size) = loader::elf_symbol("/bin/fib", "compute").ok_or("no compute")?;
    check!(
        text.contains(&compute) && size > 0 && compute + size <= text.end,
        "compute {compute:#x}+{size:#x} outside text {text:x?}"
    );
    check_eq!(
        loader::symbol_at("/bin/fib", compute + 2),
        Some(("compute", compute, size))
    );
    check_eq!(loader::elf_symbol("/bin/fib", "no_such_symbol"), None);
    check_eq!(loader::elf_symbol("/bin/none", "compute"), None);
    check!(loader::paths().any(|p| p == "/bin/hello"));
    Ok(())
}

/// `c.ebreak`, little-endian.
const C_EBREAK: [u8; 2] = [0x02, 0x90];

fn text_pages_private() -> TestResult {
    let (compute, _) = loader::elf_symbol("/bin/fib", "compute").ok_or("no compute")?;
    let ((patched, clean, original), out) = captured(|| {
        let patched = spawn("/bin/fib", &["fib", "20"])?;
        let clean = spawn("/bin/fib", &["fib", "20"])?;
        let (pa_patched, flags) = patched.translate(compute).ok_or("compute unmapped")?;
        let (pa_clean, _) = clean.translate(compute).ok_or("compute unmapped")?;
        check!(
            pa_patched != pa_clean,
            "text page shared at {pa_patched:#x}"
        );
        check!(
            flags & (X | U) == X | U && flags & W == 0,
            "text flags {flags:#x}"
        );
        let mut original = [0u8; 2];
        process::copy_from_user(&clean, compute, &mut original).map_err(|e| format!("{e:?}"))?;
        // What uprobes do: a breakpoint in one process's private copy.
        process::user_text_write(&patched, compute, &C_EBREAK).map_err(|e| format!("{e:?}"))?;
        let (mut now_patched, mut now_clean) = ([0u8; 2], [0u8; 2]);
        process::copy_from_user(&patched, compute, &mut now_patched)
            .map_err(|e| format!("{e:?}"))?;
        process::copy_from_user(&clean, compute, &mut now_clean).map_err(|e| format!("{e:?}"))?;
        check_eq!(now_patched, C_EBREAK);
        check_eq!(now_clean, original);
        Ok((patched, clean, original))
    })?;
    check!(original != C_EBREAK);
    // The patched process stops at the breakpoint in `compute`; the other
    // one runs the unpatched program.
    check_eq!(
        out.of(patched.pid()),
        format!(
            "[KERNEL] process {} (/bin/fib) killed: breakpoint at {compute:#x}\n",
            patched.pid()
        )
    );
    check_eq!(out.of(clean.pid()), "fib(20) = 6765\n");
    check_eq!(exit_code(&clean)?, 0);
    Ok(())
}

fn user_memory_access() -> TestResult {
    let p = spawn("/bin/hello", &["hello"])?;
    let text = loader::text_range("/bin/hello").ok_or("no text")?;
    let result = (|| {
        // Listed as running its program, with its pages mapped.
        check!(process::all()
            .iter()
            .any(|q| q.pid() == p.pid() && q.path() == "/bin/hello"));
        check!(process::find(p.pid()).is_some());
        let stack_pages = process::USER_STACK_SIZE / frame::FRAME_SIZE;
        check!(p.page_count() > stack_pages, "{} pages", p.page_count());
        let mut buf = [0u8; 8];
        // The stack is readable and writable from the kernel's side.
        let sp = process::USER_STACK_TOP - 64;
        process::copy_to_user(&p, sp, b"rkprobes").map_err(|e| format!("{e:?}"))?;
        process::copy_from_user(&p, sp, &mut buf).map_err(|e| format!("{e:?}"))?;
        check_eq!(&buf, b"rkprobes");
        // A read across the end of the stack, and one of unmapped memory.
        check!(process::copy_from_user(&p, process::USER_STACK_TOP - 4, &mut buf).is_err());
        check!(process::copy_from_user(&p, 0, &mut buf).is_err());
        // Kernel memory is not user memory.
        check!(process::copy_from_user(&p, crate::mm::sym(crate::mm::stext), &mut buf).is_err());
        // copy_to_user honours the user's permissions: text is not writable.
        check!(process::copy_to_user(&p, text.start, b"x").is_err());
        check!(process::user_text_write(&p, process::USER_STACK_TOP - 64, b"x").is_err());
        Ok(())
    })();
    // Let it finish either way, so no process outlives the test.
    process::run_until_idle();
    result?;
    check_eq!(p.page_count(), 0);
    check!(process::all().iter().all(|q| q.pid() != p.pid()));
    check!(process::find(p.pid()).is_none());
    Ok(())
}

fn frames_freed() -> TestResult {
    let before = frame::free_frames();
    check_eq!(process::run("/bin/forktest", &["forktest"]), Ok(33));
    check_eq!(process::run("/bin/exec", &["exec"]), Ok(0));
    check_eq!(frame::free_frames(), before);
    Ok(())
}

/// `/bin/threads`' `tstep(i)`, computed here.
pub fn tstep(i: u64) -> u64 {
    let a = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    (if a == 0 { 1 } else { a }) ^ (i << 1)
}

/// What `threads work n` prints: each thread's result and exit code, the
/// total, and a second join of a joined thread refused.
pub fn threads_output(n: u64) -> String {
    let mut out = String::new();
    let mut total = 0u64;
    for k in 0..4u64 {
        let r = (0..n).fold(0u64, |acc, i| acc.wrapping_add(tstep(k * 1_000_000 + i)));
        total = total.wrapping_add(r);
        out += &format!("thread {k}: result {r:#x}, exit code Some({})\n", 10 + k);
    }
    out += &format!("threads: 4 x {n} calls, total {total:#x}, join again None\n");
    out
}

fn threads_run_and_join() -> TestResult {
    let frames = frame::free_frames();
    let (p, out) = captured(|| spawn("/bin/threads", &["threads", "work", "600"]))?;
    // The threads' results reach the first thread through shared memory.
    check_eq!(out.of(p.pid()), threads_output(600));
    check_eq!(out.all(), threads_output(600));
    check_eq!(exit_code(&p)?, 0);
    check_eq!(p.threads_alive(), 0);
    check!(
        p.harts_seen().count_ones() >= 2,
        "harts seen {:#b}",
        p.harts_seen()
    );
    check_eq!(frame::free_frames(), frames);
    Ok(())
}

fn thread_exits() -> TestResult {
    let frames = frame::free_frames();
    // Thread 2 calls `exit(5)` while three threads and the first one spin:
    // they all end, the process with 5.
    let (p, out) = captured(|| spawn("/bin/threads", &["threads", "exit"]))?;
    check_eq!(out.all(), "");
    check_eq!(exit_code(&p)?, 5);
    check_eq!(p.threads_alive(), 0);
    // The first thread ends with 3 before the other ends with 4: the
    // process's code is the last thread's.
    check_eq!(process::run("/bin/threads", &["threads", "last"]), Ok(4));
    check_eq!(process::live(), 0);
    check_eq!(frame::free_frames(), frames);
    Ok(())
}
