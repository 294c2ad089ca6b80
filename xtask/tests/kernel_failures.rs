//! Boots the real kernel with fault-injection bootargs and checks that the
//! verdict `cargo xtask test` uses judges every one a failure, and that the
//! overall exit decision is non-zero.
//!
//! These need the kernel in `os/` to build and to honour
//! `inject=fail|panic|hang`. Nothing here is skipped: a kernel that cannot
//! be built or booted fails these tests.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use xtask::env::ensure_prerequisites;
use xtask::kernel::build_kernel;
use xtask::process::Termination;
use xtask::qemu::{run_qemu, Boot};
use xtask::verdict::{judge_suite, HostVerdict, LibtestSummary, SuiteVerdict, Totals};

/// Builds the kernel once for all tests of this file.
fn kernel() -> PathBuf {
    static ELF: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ELF.get_or_init(|| {
        ensure_prerequisites().map_err(|e| format!("prerequisites: {e:#}"))?;
        build_kernel(&[]).map_err(|e| format!("{e:#}"))
    })
    .clone()
    .unwrap_or_else(|e| panic!("cannot build the kernel in os/: {e}"))
}

/// Boots with `bootargs` on 4 harts and judges the run.
fn boot(bootargs: &str, timeout: Duration) -> (Termination, SuiteVerdict) {
    let elf = kernel();
    let cap = run_qemu(
        &elf,
        &Boot {
            bootargs,
            smp: 4,
            timeout,
            extra_args: &[],
        },
        false,
    )
    .expect("starting QEMU");
    // Shown by libtest only when the test fails.
    println!("---- console ({bootargs}) ----\n{}", cap.output);
    let verdict = judge_suite(&cap.output, cap.termination);
    println!("---- verdict ----\n{verdict:#?}");
    (cap.termination, verdict)
}

/// What `cargo xtask test` would exit with if the host tests all passed
/// and this were the kernel suite.
fn overall_exit(verdict: &SuiteVerdict) -> i32 {
    let host = HostVerdict {
        summary: LibtestSummary {
            passed: 10,
            failed: 0,
            ignored: 0,
            results: 1,
        },
        termination: Termination::Exited(0),
    };
    let mut totals = Totals::default();
    totals.add_host(&host);
    totals.add_suite(verdict);
    assert!(totals.failed > 0, "totals count no failure: {totals}");
    totals.exit_code()
}

#[test]
fn injected_test_failure_is_a_failure() {
    let (term, v) = boot("mode=test inject=fail", Duration::from_secs(120));
    assert!(!v.ok(), "inject=fail judged ok");
    assert!(
        v.failed > 0 && !v.failed_tests.is_empty(),
        "inject=fail should report at least one `[TEST] ... FAILED` line"
    );
    assert!(
        !matches!(term, Termination::TimedOut(_)),
        "inject=fail should end by itself, not time out"
    );
    assert_eq!(
        term,
        Termination::Exited(1),
        "kernel should exit with status 1 after failed tests"
    );
    assert_ne!(overall_exit(&v), 0);
}

#[test]
fn injected_panic_is_a_failure() {
    let (term, v) = boot("mode=test inject=panic", Duration::from_secs(120));
    assert!(!v.ok(), "inject=panic judged ok");
    assert!(
        v.problems.iter().any(|p| p.starts_with("kernel panicked:")),
        "expected a `[PANIC]` line, problems: {:?}",
        v.problems
    );
    assert_eq!(
        term,
        Termination::Exited(3),
        "a panic should exit with status 3"
    );
    assert_ne!(overall_exit(&v), 0);
}

#[test]
fn injected_hang_is_a_failure() {
    let timeout = Duration::from_secs(20);
    let (term, v) = boot("mode=test inject=hang", timeout);
    assert!(!v.ok(), "inject=hang judged ok");
    assert_eq!(
        term,
        Termination::TimedOut(timeout),
        "inject=hang should hang"
    );
    assert!(
        v.problems
            .iter()
            .any(|p| p == "timed out after 20s (hung kernel?)"),
        "problems: {:?}",
        v.problems
    );
    assert_ne!(overall_exit(&v), 0);
}
