//! `cargo xtask <command>`: see `usage()`.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use xtask::bench::{merge_reports, parse_bench, render_table, write_json};
use xtask::env::{bench_qemu, ensure_prerequisites};
use xtask::kernel::build_kernel;
use xtask::process::{run_captured, Termination};
use xtask::qemu::{run_qemu, run_qemu_with, Boot};
use xtask::suites::SUITES;
use xtask::verdict::{judge_suite, parse_libtest, HostVerdict, SuiteVerdict, Totals};
use xtask::workspace_root;

const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const RUN_SMP: u32 = 4;
const BENCH_TIMEOUT: Duration = Duration::from_secs(900);
// The bench boots twice: a 1-hart machine (every `harts=1` row) and a
// 4-hart one (the `harts=4` per-hit rows); see os/kernel/src/bench/.
const BENCH_SMP: [u32; 2] = [1, 4];
const BENCH_QEMU_ARGS: [&str; 4] = [
    "-icount",
    "shift=0,sleep=off",
    // No audio back-end probing (QEMU 10 would try to load audio modules).
    "-audio",
    "none",
];

fn usage() -> &'static str {
    "usage: cargo xtask <command>

commands:
  build               build the kernel (os/, release)
  run                 build and boot the kernel in QEMU (mode=demo)
  test                host tests, then every QEMU test suite
  bench [--json PATH] build with feature `bench`, boot it on 1 and on 4 harts
                      (mode=bench, QEMU 10 -icount), print the comparison
                      table, optionally write JSON
  bench --quick       the trap floor and rkprobes' kernel per-hit rows alone,
                      on 1 hart (for working on the hit path)
  lint                rustfmt and clippy for the host workspace and the kernel"
}

enum Cmd {
    Build,
    Run,
    Test,
    Bench { json: Option<PathBuf>, quick: bool },
    Lint,
    Help,
}

fn parse_args(args: &[String]) -> Result<Cmd> {
    let Some((cmd, rest)) = args.split_first() else {
        bail!("no command given");
    };
    let no_more = |rest: &[String]| -> Result<()> {
        if let Some(extra) = rest.first() {
            bail!("unexpected argument `{extra}` for `{cmd}`");
        }
        Ok(())
    };
    match cmd.as_str() {
        "build" => no_more(rest).map(|_| Cmd::Build),
        "run" => no_more(rest).map(|_| Cmd::Run),
        "test" => no_more(rest).map(|_| Cmd::Test),
        "lint" => no_more(rest).map(|_| Cmd::Lint),
        "bench" => {
            let mut json = None;
            let mut quick = false;
            let mut it = rest.iter();
            while let Some(arg) = it.next() {
                if arg == "--quick" {
                    quick = true;
                } else if arg == "--json" {
                    let path = it.next().context("--json needs a PATH")?;
                    json = Some(PathBuf::from(path));
                } else if let Some(path) = arg.strip_prefix("--json=") {
                    json = Some(PathBuf::from(path));
                } else {
                    bail!("unexpected argument `{arg}` for `bench`");
                }
            }
            Ok(Cmd::Bench { json, quick })
        }
        "help" | "-h" | "--help" => Ok(Cmd::Help),
        other => bail!("unknown command `{other}`"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match parse_args(&args) {
        Ok(cmd) => cmd,
        Err(e) => {
            eprintln!("xtask: {e}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let result = match cmd {
        Cmd::Build => build_kernel(&[]).map(|elf| {
            println!("{}", elf.display());
            0
        }),
        Cmd::Run => run(),
        Cmd::Test => test(),
        Cmd::Bench { json, quick } => bench(json, quick),
        Cmd::Lint => xtask::lint::lint().map(|_| 0),
        Cmd::Help => {
            println!("{}", usage());
            Ok(0)
        }
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<i32> {
    ensure_prerequisites()?;
    let elf = build_kernel(&[])?;
    let boot = Boot {
        bootargs: "mode=demo",
        smp: RUN_SMP,
        timeout: RUN_TIMEOUT,
        extra_args: &[],
    };
    let cap = run_qemu(&elf, &boot, true)?;
    match cap.termination {
        Termination::Exited(code) => eprintln!("xtask: QEMU exited with status {code}"),
        Termination::Signaled => eprintln!("xtask: QEMU was killed by a signal"),
        Termination::TimedOut(t) => {
            eprintln!("xtask: timed out after {}s; QEMU killed", t.as_secs())
        }
    }
    Ok(cap.termination.exit_code())
}

/// `cargo test --workspace` of the host workspace, echoed and captured.
/// `--no-fail-fast` so one failing test binary does not hide the counts of
/// the others.
fn host_tests() -> Result<HostVerdict> {
    let mut cmd = Command::new("cargo");
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .current_dir(workspace_root());
    // Variables cargo set for the xtask binary itself describe this package,
    // not the workspace under test.
    for (name, _) in std::env::vars() {
        if name == "CARGO"
            || [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_PRIMARY_",
            ]
            .iter()
            .any(|p| name.starts_with(p))
        {
            cmd.env_remove(&name);
        }
    }
    eprintln!("xtask: cargo test --workspace --no-fail-fast");
    let cap = run_captured(cmd, None, true)?;
    Ok(HostVerdict {
        summary: parse_libtest(&cap.output),
        termination: cap.termination,
    })
}

fn test() -> Result<i32> {
    ensure_prerequisites()?;
    let mut totals = Totals::default();
    let mut report: Vec<String> = Vec::new();

    let host = host_tests()?;
    totals.add_host(&host);
    let mut line = format!(
        "host: {} passed, {} failed, {} ignored",
        host.summary.passed, host.summary.failed, host.summary.ignored
    );
    if !host.termination.success() {
        line.push_str(&format!(
            " (cargo test exited with status {})",
            host.termination.exit_code()
        ));
    }
    report.push(line);

    match build_kernel(&[]) {
        Err(e) => {
            totals.add_failure();
            report.push(format!("kernel build FAILED: {e:#}; no QEMU suite run"));
        }
        Ok(elf) => {
            for suite in SUITES {
                let boot = Boot {
                    bootargs: suite.bootargs,
                    smp: suite.smp,
                    timeout: suite.timeout,
                    extra_args: &[],
                };
                eprintln!("xtask: suite `{}`", suite.name);
                let verdict = match run_qemu(&elf, &boot, true) {
                    Ok(cap) => judge_suite(&cap.output, cap.termination),
                    Err(e) => SuiteVerdict {
                        passed: 0,
                        failed: 0,
                        failed_tests: Vec::new(),
                        problems: vec![format!("could not run QEMU: {e:#}")],
                    },
                };
                totals.add_suite(&verdict);
                report.extend(suite_summary(suite.name, &verdict));
            }
        }
    }

    println!("\n==== summary ====");
    for line in &report {
        println!("{line}");
    }
    println!("{totals}");
    Ok(totals.exit_code())
}

fn suite_summary(name: &str, v: &SuiteVerdict) -> Vec<String> {
    let status = if v.ok() { "ok" } else { "FAILED" };
    let mut lines = vec![format!(
        "suite {name}: {status}: {} passed, {} failed",
        v.passed, v.failed
    )];
    for t in &v.failed_tests {
        lines.push(format!("  failed: {}: {}", t.name, t.reason));
    }
    for p in &v.problems {
        lines.push(format!("  error: {p}"));
    }
    lines
}

fn bench(json: Option<PathBuf>, quick: bool) -> Result<i32> {
    ensure_prerequisites()?;
    let qemu = bench_qemu()?;
    let version = qemu.version()?;
    let elf = build_kernel(&["bench"])?;
    let mut boots = Vec::new();
    let (bootargs, smps): (_, &[u32]) = match quick {
        true => ("mode=bench bench=hits", &[1]),
        false => ("mode=bench", &BENCH_SMP),
    };
    for &smp in smps {
        let boot = Boot {
            bootargs,
            smp,
            timeout: BENCH_TIMEOUT,
            extra_args: &BENCH_QEMU_ARGS,
        };
        let cap = run_qemu_with(&qemu, &elf, &boot, true)?;
        let label = format!("{smp}-hart machine");
        boots.push((label, parse_bench(&cap.output, cap.termination)));
    }
    let report = merge_reports(boots);
    println!(
        "\nQEMU {version}, -icount shift=0,sleep=off; harts=1 rows on a 1-hart machine, \
         harts=4 rows on a 4-hart one\n"
    );
    print!("{}", render_table(&report));
    if let Some(path) = &json {
        write_json(&report, &version, path)?;
        println!("\nwrote {}", path.display());
    }
    if report.ok() {
        Ok(0)
    } else {
        for p in &report.problems {
            eprintln!("xtask: bench error: {p}");
        }
        Ok(1)
    }
}
