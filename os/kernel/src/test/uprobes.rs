//! uprobes and uretprobes in user programs: output byte for byte with and
//! without probes, exact counts, return values, several programs and
//! harts, registration and removal while programs run, fork, exec and
//! exit with probes armed, and every refused request.

use super::{Test, TestResult};
use crate::mm::frame;
use crate::process::{self, capture, Process};
use crate::{check, check_eq, loader};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use rkprobes::uprobe::MAX_INSTANCES;
use rkprobes::{Error, PreAction, ProbeType, Uprobe, UprobeHandle, UprobeOs, Uprobes};

pub fn tests() -> Vec<Test> {
    alloc::vec![
        Test::new("uprobes::output_unchanged_exact_counts", output_and_counts),
        Test::new("uprobes::simulated_branches_counted", simulated_branches),
        Test::new(
            "uprobes::slot_jumps_back_one_trap_per_hit",
            one_trap_per_hit_unless_post
        ),
        Test::new("uprobes::uretprobe_return_values", uretprobe_values),
        Test::new(
            "uprobes::uretprobe_recursion_and_overflow",
            uretprobe_recursion
        ),
        Test::new("uprobes::only_the_probed_program", only_probed_program),
        Test::new("uprobes::probed_program_on_several_harts", several_harts),
        Test::new(
            "uprobes::registered_while_running",
            registered_while_running
        ),
        Test::new(
            "uprobes::unregistered_while_running",
            unregistered_while_running
        ),
        Test::new("uprobes::fork_exec_exit_with_probes_armed", fork_exec_exit),
        Test::new("uprobes::skip_changes_the_program", skip_changes_program),
        Test::new(
            "uprobes::foreign_breakpoint_still_kills",
            foreign_breakpoint
        ),
        Test::new("uprobes::fault_in_slot_reported_at_probe", fault_in_slot),
        Test::new("uprobes::bad_requests_typed_errors", bad_requests),
        Test::new("uprobes::seed_api", seed_api),
        Test::new(
            "uprobes::threads_uprobe_and_uretprobe_exact_on_several_harts",
            threads_out_of_line_and_return
        ),
        Test::new(
            "uprobes::threads_simulated_pc_relative_on_several_harts",
            threads_simulated
        ),
        Test::new(
            "uprobes::thread_ending_inside_frees_its_calls",
            thread_ending_inside
        ),
        Test::new(
            "uprobes::threads_hitting_while_unregistered",
            threads_unregistered_while_hitting
        ),
    ]
}

const UPROBED: &str = "/bin/uprobed";

fn spawn(path: &str, args: &[&str]) -> Result<Arc<Process>, String> {
    process::spawn(path, args).map_err(|e| format!("spawn {path}: {e:?}"))
}

/// Runs `path args` alone to the end; its output and exit code.
fn run_one(path: &str, args: &[&str]) -> Result<(String, i32), String> {
    capture::begin();
    let p = spawn(path, args);
    process::run_until_idle();
    let out = capture::end();
    let p = p?;
    Ok((out.of(p.pid()), p.exit_code().ok_or("not exited")?))
}

fn reg(b: Uprobe) -> Result<UprobeHandle, String> {
    b.register().map_err(|e| format!("register: {e}"))
}

fn unreg(h: UprobeHandle) -> TestResult {
    h.unregister().map_err(|e| format!("unregister: {e}"))
}

fn sym(path: &str, name: &str) -> Result<usize, String> {
    loader::elf_symbol(path, name)
        .map(|(a, _)| a)
        .ok_or_else(|| format!("no {name} in {path}"))
}

/// No probe state is left in any process.
fn no_probed_processes() -> TestResult {
    let left = Uprobes::get().probed_processes();
    check!(left.is_empty(), "processes still probed: {left:?}");
    Ok(())
}

fn output_and_counts() -> TestResult {
    let bare = run_one(UPROBED, &["uprobed", "work", "10"])?;
    let step = sym(UPROBED, "step")?;
    let args = Arc::new(AtomicU64::new(0));
    let posts = Arc::new(AtomicU64::new(0));
    let a = args.clone();
    let p = posts.clone();
    // The entry (`addi sp`), a 32-bit `lui` at 2 mod 4, and a `mul`.
    let entry = reg(Uprobe::new(UPROBED)
        .symbol("step")
        .pre(move |tf| {
            a.fetch_add(tf.arg(0) as u64, Ordering::Relaxed);
        })
        .post(move |_| {
            p.fetch_add(1, Ordering::Relaxed);
        }))?;
    let lui = reg(Uprobe::new(UPROBED).symbol("step+0xc"))?;
    let mul = reg(Uprobe::new(UPROBED).addr(step + 0x20))?;
    let probed = run_one(UPROBED, &["uprobed", "work", "10"]);
    let counts = (entry.hits(), lui.hits(), mul.hits());
    unreg(entry)?;
    unreg(lui)?;
    unreg(mul)?;
    check_eq!(probed?, bare);
    check_eq!(counts, (10, 10, 10));
    // `step(i)` for i in 0..10.
    check_eq!(args.load(Ordering::Relaxed), 45);
    check_eq!(posts.load(Ordering::Relaxed), 10);
    no_probed_processes()
}

/// A slot within reach jumps straight back: one trap per hit. A post
/// handler needs the result, so its slot ends in a breakpoint: two.
fn one_trap_per_hit_unless_post() -> TestResult {
    let bare = run_one(UPROBED, &["uprobed", "work", "10"])?;
    let step = sym(UPROBED, "step")?;
    let mut traps = Vec::new();
    for with_post in [false, true] {
        let mut b = Uprobe::new(UPROBED).addr(step + 0x20); // `mul`
        if with_post {
            b = b.post(|_| ());
        }
        let mul = reg(b)?;
        let before = crate::trap::user_breakpoints();
        let probed = run_one(UPROBED, &["uprobed", "work", "10"]);
        traps.push(crate::trap::user_breakpoints() - before);
        let hits = mul.hits();
        unreg(mul)?;
        check_eq!(probed?, bare);
        check_eq!(hits, 10);
    }
    check_eq!(traps, [10, 20]);
    no_probed_processes()
}

fn simulated_branches() -> TestResult {
    let bare = run_one("/bin/fib", &["fib", "20"])?;
    check_eq!(bare, (String::from("fib(20) = 6765\n"), 0));
    // `beqz a0` at compute+0x8 (once), `bnez a0` closing the loop at
    // compute+0x1a (20 times), `j` at compute+0x1c (once).
    let beqz = reg(Uprobe::new("/bin/fib").symbol("compute+0x8"))?;
    let bnez = reg(Uprobe::new("/bin/fib").symbol("compute+0x1a"))?;
    let j = reg(Uprobe::new("/bin/fib").symbol("compute+0x1c"))?;
    let probed = run_one("/bin/fib", &["fib", "20"]);
    let counts = (beqz.hits(), bnez.hits(), j.hits());
    for h in [beqz, bnez, j] {
        unreg(h)?;
    }
    check_eq!(probed?, bare);
    check_eq!(counts, (1, 20, 1));
    Ok(())
}

fn uretprobe_values() -> TestResult {
    let ret = Arc::new(AtomicUsize::new(0));
    let arg = Arc::new(AtomicUsize::new(0));
    let (r, a) = (ret.clone(), arg.clone());
    let h = reg(Uprobe::new("/bin/fib")
        .symbol("compute")
        .kind(ProbeType::SyncFunc)
        .pre(move |tf| a.store(tf.arg(0), Ordering::Relaxed))
        .post(move |tf| r.store(tf.ret(), Ordering::Relaxed)))?;
    let out = run_one("/bin/fib", &["fib", "20"]);
    let (hits, missed) = (h.hits(), h.missed());
    let got = (arg.load(Ordering::Relaxed), ret.load(Ordering::Relaxed));
    // Entry data reaches the return handler of the same call.
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let h2 = reg(Uprobe::new("/bin/fib")
        .symbol("compute")
        .entry(|tf, data| data[0] = tf.arg(0) * 1000)
        .ret(move |tf, data| s.store(data[0] + tf.ret(), Ordering::Relaxed)))?;
    let out2 = run_one("/bin/fib", &["fib", "10"]);
    unreg(h)?;
    unreg(h2)?;
    check_eq!(out?, (String::from("fib(20) = 6765\n"), 0));
    check_eq!(out2?, (String::from("fib(10) = 55\n"), 0));
    check_eq!((hits, missed), (1, 0));
    check_eq!(got, (20, 6765));
    check_eq!(seen.load(Ordering::Relaxed), 10_055);
    no_probed_processes()
}

fn uretprobe_recursion() -> TestResult {
    let sum = Arc::new(AtomicUsize::new(0));
    let returns = Arc::new(AtomicUsize::new(0));
    let (s, n) = (sum.clone(), returns.clone());
    let h = reg(Uprobe::new(UPROBED)
        .symbol("depth")
        .kind(ProbeType::SyncFunc)
        .post(move |tf| {
            s.fetch_add(tf.ret(), Ordering::Relaxed);
            n.fetch_add(1, Ordering::Relaxed);
        }))?;
    let small = run_one(UPROBED, &["uprobed", "rec", "5"]);
    let small_counts = (h.hits(), h.missed(), returns.load(Ordering::Relaxed));
    let small_sum = sum.load(Ordering::Relaxed);
    // 21 nested calls: the pool holds MAX_INSTANCES, the rest are missed
    // and run normally.
    let big = run_one(UPROBED, &["uprobed", "rec", "20"]);
    let big_counts = (h.hits(), h.missed());
    unreg(h)?;
    check_eq!(small?, (String::from("uprobed: depth(5) = 15\n"), 0));
    // depth(5..=0) returned 15, 10, 6, 3, 1, 0.
    check_eq!(small_counts, (6, 0, 6));
    check_eq!(small_sum, 35);
    check_eq!(big?, (String::from("uprobed: depth(20) = 210\n"), 0));
    let m = MAX_INSTANCES as u64;
    check_eq!(big_counts, (6 + m, 21 - m));
    no_probed_processes()
}

fn only_probed_program() -> TestResult {
    let h = reg(Uprobe::new("/bin/fib").symbol("compute"))?;
    capture::begin();
    let spawned = (|| {
        Ok::<_, String>((
            spawn("/bin/fib", &["fib", "15"])?,
            spawn("/bin/hello", &["hello"])?,
            spawn(UPROBED, &["uprobed", "work", "3"])?,
        ))
    })();
    // Only the fib process got a slot page.
    let probed = Uprobes::get().probed_processes();
    process::run_until_idle();
    let out = capture::end();
    let hits = h.hits();
    unreg(h)?;
    let (fib, hello, other) = spawned?;
    check_eq!(hits, 1);
    check_eq!(probed.len(), 1);
    check_eq!(probed[0].0, fib.pid() as u64);
    check_eq!(out.of(fib.pid()), "fib(15) = 610\n");
    check_eq!(out.of(hello.pid()), "Hello from user mode!\n");
    check!(out.of(other.pid()).starts_with("uprobed: 3 rounds, "));
    // The unprobed processes' text was never touched.
    no_probed_processes()
}

fn several_harts() -> TestResult {
    let bare = run_one(UPROBED, &["uprobed", "work", "40"])?;
    let h = reg(Uprobe::new(UPROBED).symbol("step+0xc"))?;
    let entry = reg(Uprobe::new(UPROBED)
        .symbol("step")
        .kind(ProbeType::SyncFunc))?;
    let count = crate::smp::online() + 2;
    process::take_busy_harts();
    capture::begin();
    let procs: Result<Vec<_>, String> = (0..count)
        .map(|_| spawn(UPROBED, &["uprobed", "work", "40"]))
        .collect();
    process::run_until_idle();
    let out = capture::end();
    let busy = process::take_busy_harts();
    let counts = (h.hits(), entry.hits(), entry.missed());
    unreg(h)?;
    unreg(entry)?;
    let procs = procs?;
    for p in &procs {
        check_eq!(out.of(p.pid()), bare.0);
    }
    let n = 40 * count as u64;
    check_eq!(counts, (n, n, 0));
    check!(
        busy.count_ones() >= 2,
        "harts that ran processes: {busy:#b}"
    );
    no_probed_processes()
}

/// Waits (bounded) until `cond` holds.
fn wait_for(cond: impl Fn() -> bool) -> bool {
    for _ in 0..200_000_000u64 {
        if cond() {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

fn registered_while_running() -> TestResult {
    let bare = run_one(UPROBED, &["uprobed", "work", "3000"])?;
    capture::begin();
    let procs: Result<Vec<_>, String> = (0..3)
        .map(|_| spawn(UPROBED, &["uprobed", "work", "3000"]))
        .collect();
    let handle = spin::Mutex::new(None);
    let started = AtomicUsize::new(0);
    if let Ok(procs) = &procs {
        process::run_until_idle_with(&|| {
            let running = wait_for(|| procs.iter().all(|p| p.harts_seen() != 0));
            started.store(usize::from(running), Ordering::Relaxed);
            *handle.lock() = Some(Uprobe::new(UPROBED).symbol("step").register());
        });
    } else {
        process::run_until_idle();
    }
    let out = capture::end();
    let procs = procs?;
    let h = handle
        .lock()
        .take()
        .ok_or("not registered")?
        .map_err(|e| format!("{e}"))?;
    let hits = h.hits();
    unreg(h)?;
    check_eq!(started.load(Ordering::Relaxed), 1);
    for p in &procs {
        check_eq!(out.of(p.pid()), bare.0);
    }
    check!(hits > 0 && hits < 9000, "hits {hits}");
    no_probed_processes()
}

/// Runs the processes started so far until they end, while another hart
/// waits for `min` hits of `watch` and then unregisters it and `other`.
/// Returns `watch`'s hits at removal.
fn unregister_while_running(
    watch: UprobeHandle,
    other: UprobeHandle,
    min: u64,
) -> Result<u64, String> {
    let result = spin::Mutex::new(Ok(0));
    let handles = spin::Mutex::new(Some((watch, other)));
    process::run_until_idle_with(&|| {
        let (watch, other) = handles.lock().take().expect("handles");
        wait_for(|| watch.hits() >= min);
        let hits = watch.hits();
        let r = watch.unregister().and(other.unregister());
        *result.lock() = r.map(|()| hits).map_err(|e| format!("{e}"));
    });
    result.into_inner()
}

fn unregistered_while_running() -> TestResult {
    let bare = run_one(UPROBED, &["uprobed", "work", "3000"])?;
    let h = reg(Uprobe::new(UPROBED).symbol("step+0xc"))?;
    let sim = reg(Uprobe::new(UPROBED).symbol("step"))?;
    capture::begin();
    let procs: Result<Vec<_>, String> = (0..3)
        .map(|_| spawn(UPROBED, &["uprobed", "work", "3000"]))
        .collect();
    let removed_at = unregister_while_running(h, sim, 30);
    let out = capture::end();
    let procs = procs?;
    let removed_at = removed_at?;
    check!(
        (30..9000).contains(&removed_at),
        "hits at removal {removed_at}"
    );
    for p in &procs {
        check_eq!(out.of(p.pid()), bare.0);
        check_eq!(p.exit_code(), Some(0));
    }
    no_probed_processes()
}

fn fork_exec_exit() -> TestResult {
    let frames = frame::free_frames();
    let step = reg(Uprobe::new(UPROBED).symbol("step+0x20"))?;
    let rets = Arc::new(AtomicUsize::new(0));
    let r = rets.clone();
    let compute = reg(Uprobe::new("/bin/fib")
        .symbol("compute")
        .kind(ProbeType::SyncFunc)
        .post(move |tf| r.store(tf.ret(), Ordering::Relaxed)))?;
    // Fork: parent and child both run `step` 10 times.
    capture::begin();
    let parent = spawn(UPROBED, &["uprobed", "fork", "10"]);
    process::run_until_idle();
    let out = capture::end();
    let parent = parent?;
    let fork_hits = step.hits();
    // Exec: 10 `step`s, then the new image is fib, probed as its file says.
    let exec = run_one(UPROBED, &["uprobed", "exec", "10"]);
    let exec_counts = (step.hits(), compute.hits(), rets.load(Ordering::Relaxed));
    let after = Uprobes::get().probed_processes();
    unreg(step)?;
    unreg(compute)?;
    check_eq!(fork_hits, 20);
    let text = out.all();
    check!(
        text.contains("uprobed child: 10 rounds, ")
            && text.contains(&format!("uprobed parent {}: 10 rounds, ", parent.pid()))
            && text.contains("child Some(7)"),
        "output {text:?}"
    );
    let exec = exec?;
    check!(
        exec.0.starts_with("uprobed: 10 rounds, ") && exec.0.ends_with("\nfib(12) = 144\n"),
        "output {:?}",
        exec.0
    );
    check_eq!(exec_counts, (30, 1, 144));
    // Exit and exec released every process's probe state and slot page.
    check!(after.is_empty(), "still probed: {after:?}");
    check_eq!(frame::free_frames(), frames);
    Ok(())
}

fn skip_changes_program() -> TestResult {
    // Skipping `compute`'s body: return 42 at once (pc := ra, a0 := 42).
    let h = reg(Uprobe::new("/bin/fib").symbol("compute").pre(|tf| {
        tf.set_reg(rkprobes::TrapFrame::A0, 42);
        tf.set_pc(tf.ra());
        PreAction::Skip
    }))?;
    let out = run_one("/bin/fib", &["fib", "20"]);
    unreg(h)?;
    check_eq!(out?, (String::from("fib(20) = 42\n"), 0));
    // And without the probe, the program is itself again.
    check_eq!(
        run_one("/bin/fib", &["fib", "20"])?,
        (String::from("fib(20) = 6765\n"), 0)
    );
    Ok(())
}

fn foreign_breakpoint() -> TestResult {
    // The program is probed, but its own `ebreak` is nobody's.
    let h = reg(Uprobe::new("/bin/ebreak").symbol("main"))?;
    let out = run_one("/bin/ebreak", &["ebreak"]);
    let hits = h.hits();
    unreg(h)?;
    let (text, code) = out?;
    check_eq!(hits, 1);
    check_eq!(code, abi::KILLED);
    check!(
        text.starts_with("ebreak: before\n[KERNEL] process ")
            && text.contains("killed: breakpoint at"),
        "output {text:?}"
    );
    no_probed_processes()
}

/// Address of the first instruction encoded `word` in function `name`.
fn find_insn(path: &str, name: &str, word: u32) -> Result<usize, String> {
    let (start, size) = loader::elf_symbol(path, name).ok_or("no such function")?;
    let os = &crate::uprobes_os::UPROBE_OS;
    let mut at = start;
    while at < start + size {
        let mut b = [0u8; 4];
        check!(os.read_file_text(path, at, &mut b[..2]), "read {at:#x}");
        let len = if b[0] & 3 == 3 { 4 } else { 2 };
        if len == 4 {
            check!(os.read_file_text(path, at, &mut b), "read {at:#x}");
            if u32::from_le_bytes(b) == word {
                return Ok(at);
            }
        }
        at += len;
    }
    Err(format!("{word:#x} not in {name}"))
}

fn fault_in_slot() -> TestResult {
    // `ld t0, 0(zero)` runs out of line in the slot page and faults there.
    let load = find_insn("/bin/fault", "main", 0x0000_3283)?;
    let h = reg(Uprobe::new("/bin/fault").addr(load))?;
    let out = run_one("/bin/fault", &["fault", "null"]);
    let hits = h.hits();
    unreg(h)?;
    let (text, code) = out?;
    check_eq!(hits, 1);
    check_eq!(code, abi::KILLED);
    check!(
        text.ends_with(&format!(
            "killed: load page fault (address 0x0) at {load:#x}\n"
        )),
        "output {text:?}"
    );
    no_probed_processes()
}

fn bad_requests() -> TestResult {
    let step = sym(UPROBED, "step")?;
    let text = loader::text_range(UPROBED).ok_or("no text")?;
    let err = |b: Uprobe| b.register().err();
    check_eq!(
        err(Uprobe::new("/bin/nothing").addr(step)),
        Some(Error::UnknownPath)
    );
    check_eq!(
        err(Uprobe::new(UPROBED).addr(text.end + 0x10)),
        Some(Error::OutsideText {
            addr: text.end + 0x10
        })
    );
    check_eq!(
        err(Uprobe::new(UPROBED).offset(text.end - text.start)),
        Some(Error::OutsideText { addr: text.end })
    );
    // step+0x12 is the middle of the 32-bit `lui` at step+0x10 (0x106fe).
    check_eq!(
        err(Uprobe::new(UPROBED).symbol("step+0x12")),
        Some(Error::NotInstructionBoundary {
            addr: step + 0x12,
            function: step
        })
    );
    check_eq!(
        err(Uprobe::new(UPROBED).addr(step + 1)),
        Some(Error::Misaligned { addr: step + 1 })
    );
    let ecall = find_insn(UPROBED, "main", 0x0000_0073)?;
    match err(Uprobe::new(UPROBED).addr(ecall)) {
        Some(Error::UnsupportedInstruction { mnemonic, .. }) => check_eq!(mnemonic, "ecall"),
        other => return Err(format!("ecall: {other:?}")),
    }
    check_eq!(
        err(Uprobe::new(UPROBED).symbol("no_such_function")),
        Some(Error::UnknownSymbol)
    );
    check_eq!(
        err(Uprobe::new(UPROBED).symbol("step+0x10000")),
        Some(Error::UnknownSymbol)
    );
    check_eq!(
        err(Uprobe::new(UPROBED)
            .symbol("step+4")
            .kind(ProbeType::SyncFunc)),
        Some(Error::NotFunctionEntry { addr: step + 4 })
    );
    // A second unregister of the same probe.
    let h = reg(Uprobe::new(UPROBED).symbol("step"))?;
    let id = h.id();
    unreg(h)?;
    check_eq!(
        Uprobes::get().unregister_uprobes(UPROBED, step),
        Error::NotRegistered.errno()
    );
    check!(Uprobes::get().list().iter().all(|p| p.id != id));
    Ok(())
}

fn seed_api() -> TestResult {
    let u = Uprobes::get();
    let compute = sym("/bin/fib", "compute")?;
    let calls = Arc::new(AtomicUsize::new(0));
    let ret = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let r = ret.clone();
    let handler: rkprobes::SeedHandler =
        Arc::new(rkprobes::Mutex::new(move |_: &mut rkprobes::TrapFrame| {
            c.fetch_add(1, Ordering::Relaxed);
        }));
    let post: rkprobes::SeedHandler =
        Arc::new(rkprobes::Mutex::new(move |tf: &mut rkprobes::TrapFrame| {
            r.store(tf.ret(), Ordering::Relaxed);
        }));
    check_eq!(
        u.register_uprobes(
            "/bin/fib".into(),
            compute,
            handler.clone(),
            Some(post),
            ProbeType::SyncFunc
        ),
        0
    );
    check_eq!(
        u.register_uprobes(
            "/bin/none".into(),
            compute,
            handler.clone(),
            None,
            ProbeType::Insn
        ),
        Error::UnknownPath.errno()
    );
    check_eq!(
        u.register_uprobes(
            "/bin/fib".into(),
            compute + 0x10,
            handler,
            None,
            ProbeType::Insn
        ),
        Error::NotInstructionBoundary {
            addr: compute + 0x10,
            function: compute
        }
        .errno()
    );
    let out = run_one("/bin/fib", &["fib", "11"]);
    check_eq!(u.unregister_uprobes("/bin/fib", compute), 0);
    check_eq!(out?, (String::from("fib(11) = 89\n"), 0));
    check_eq!(calls.load(Ordering::Relaxed), 1);
    check_eq!(ret.load(Ordering::Relaxed), 89);
    // Gone: a run after unregistering is not seen.
    run_one("/bin/fib", &["fib", "11"])?;
    check_eq!(calls.load(Ordering::Relaxed), 1);
    Ok(())
}

const THREADS: &str = "/bin/threads";
/// `tstep` calls per thread of `/bin/threads work`.
const THREAD_CALLS: u64 = 2000;

/// A handler's record of the harts it ran on.
fn note_hart(mask: &AtomicUsize) {
    mask.fetch_or(1 << crate::arch::hart_id(), Ordering::Relaxed);
}

/// Runs `threads work THREAD_CALLS` (4 threads of one process); its
/// output must be the unprobed one.
fn run_threads() -> TestResult {
    let want = super::process::threads_output(THREAD_CALLS);
    let n = format!("{THREAD_CALLS}");
    let got = run_one(THREADS, &["threads", "work", &n])?;
    check_eq!(got, (want, 0));
    Ok(())
}

/// A uprobe on `tstep`'s first instruction (an `slli`, stepped out of
/// line) and a uretprobe on `tstep`, hit by 4 threads of one process at
/// once: exact counts, every return value right for its own call's
/// argument, the output unchanged, the handlers ran on several harts.
fn threads_out_of_line_and_return() -> TestResult {
    run_threads()?;
    let harts = Arc::new(AtomicUsize::new(0));
    let (entries, returns, wrong) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let (h, e) = (harts.clone(), entries.clone());
    let step = reg(Uprobe::new(THREADS).symbol("tstep").pre(move |tf| {
        note_hart(&h);
        // The thread's own argument: 1_000_000 k + i.
        if tf.arg(0) as u64 % 1_000_000 < THREAD_CALLS {
            e.fetch_add(1, Ordering::Relaxed);
        }
    }))?;
    let (h, r, w) = (harts.clone(), returns.clone(), wrong.clone());
    let ret = reg(Uprobe::new(THREADS)
        .symbol("tstep")
        .entry(|tf, data| data[0] = tf.arg(0))
        .ret(move |tf, data| {
            note_hart(&h);
            r.fetch_add(1, Ordering::Relaxed);
            if tf.ret() as u64 != super::process::tstep(data[0] as u64) {
                w.fetch_add(1, Ordering::Relaxed);
            }
        }))?;
    let before = crate::trap::user_breakpoints();
    let out = run_threads();
    let traps = crate::trap::user_breakpoints() - before;
    let counts = (step.hits(), ret.hits(), ret.missed());
    unreg(step)?;
    unreg(ret)?;
    out?;
    let n = 4 * THREAD_CALLS;
    check_eq!(counts, (n, n, 0));
    check_eq!(entries.load(Ordering::Relaxed), n);
    check_eq!(returns.load(Ordering::Relaxed), n);
    check_eq!(wrong.load(Ordering::Relaxed), 0);
    // One trap at the entry (the slot jumps back), one at the return.
    check_eq!(traps, 2 * n);
    let harts = harts.load(Ordering::Relaxed);
    check!(harts.count_ones() >= 2, "handlers ran on harts {harts:#b}");
    no_probed_processes()
}

/// 20 threads end inside a uretprobed function (`texit`): their calls
/// can never return, and each thread's exit frees its call. Without that
/// the process's pool (16) would fill and later calls would be missed.
fn thread_ending_inside() -> TestResult {
    let returns = Arc::new(AtomicU64::new(0));
    let r = returns.clone();
    let h = reg(Uprobe::new(THREADS)
        .symbol("texit")
        .kind(ProbeType::SyncFunc)
        .post(move |tf| {
            if tf.ret() == 7 {
                r.fetch_add(1, Ordering::Relaxed);
            }
        }))?;
    let run = run_one(THREADS, &["threads", "exitin"]);
    let counts = (h.hits(), h.missed());
    unreg(h)?;
    let (out, code) = run?;
    check_eq!(code, 0);
    check_eq!(out, "threads: 20 ended inside texit, texit(0) = 7\n");
    check_eq!(counts, (21, 0));
    check_eq!(returns.load(Ordering::Relaxed), 1);
    no_probed_processes()
}

/// Probes on `tstep`'s `auipc` (PC relative: simulated, its result finds
/// the constant `tstep` adds) and on its `bnez`, hit by 4 threads at once.
fn threads_simulated() -> TestResult {
    run_threads()?;
    let tstep = sym(THREADS, "tstep")?;
    let harts = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicU64::new(0));
    let (h, s) = (harts.clone(), seen.clone());
    // The `auipc t0` at tstep+4: its handler sees the probe's own pc.
    let auipc = reg(Uprobe::new(THREADS).addr(tstep + 4).pre(move |tf| {
        note_hart(&h);
        if tf.pc() == tstep + 4 {
            s.fetch_add(1, Ordering::Relaxed);
        }
    }))?;
    let bnez = reg(Uprobe::new(THREADS).addr(tstep + 16))?;
    let before = crate::trap::user_breakpoints();
    let out = run_threads();
    let traps = crate::trap::user_breakpoints() - before;
    let counts = (auipc.hits(), bnez.hits());
    unreg(auipc)?;
    unreg(bnez)?;
    out?;
    let n = 4 * THREAD_CALLS;
    check_eq!(counts, (n, n));
    check_eq!(seen.load(Ordering::Relaxed), n);
    // Simulated: one trap per hit, never a step in the slot page.
    check_eq!(traps, 2 * n);
    let harts = harts.load(Ordering::Relaxed);
    check!(harts.count_ones() >= 2, "handler ran on harts {harts:#b}");
    no_probed_processes()
}

/// 4 threads hit an out-of-line uprobe and a uretprobe on `tstep` while
/// another hart removes both: calls in flight still return to their
/// callers, threads in the slot come back, the output is unchanged.
fn threads_unregistered_while_hitting() -> TestResult {
    let want = super::process::threads_output(THREAD_CALLS);
    let step = reg(Uprobe::new(THREADS).symbol("tstep"))?;
    let ret = reg(Uprobe::new(THREADS)
        .symbol("tstep")
        .kind(ProbeType::SyncFunc))?;
    let n = format!("{THREAD_CALLS}");
    capture::begin();
    let p = spawn(THREADS, &["threads", "work", &n]);
    let removed_at = unregister_while_running(ret, step, 200);
    let out = capture::end();
    let p = p?;
    let removed_at = removed_at?;
    check!(
        (200..4 * THREAD_CALLS).contains(&removed_at),
        "hits at removal {removed_at}"
    );
    check_eq!(out.of(p.pid()), want);
    check_eq!(p.exit_code(), Some(0));
    no_probed_processes()
}
