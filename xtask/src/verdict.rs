//! Judging test output: the kernel's `[TEST]` protocol and libtest's
//! `test result:` lines, and the overall pass/fail decision.
//!
//! Kernel protocol (all other lines are free text):
//! - `[TEST] <name> ... ok`
//! - `[TEST] <name> ... FAILED: <reason>`
//! - `[TESTS] done: P passed, F failed`, then exit through `sifive_test`:
//!   status 0 iff F == 0 and P > 0, else 1.
//! - `[PANIC] ...` on a kernel panic, then exit status 3.

use std::fmt;

use crate::process::Termination;

/// A failed kernel test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedTest {
    pub name: String,
    pub reason: String,
}

/// The judgement of one QEMU test suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteVerdict {
    /// `[TEST] ... ok` lines seen.
    pub passed: usize,
    /// `[TEST] ... FAILED` lines seen.
    pub failed: usize,
    pub failed_tests: Vec<FailedTest>,
    /// Suite-level problems (panic, hang, crash, inconsistent output...).
    /// Empty when the run itself was sound, even if some tests failed.
    pub problems: Vec<String>,
}

impl SuiteVerdict {
    /// True when every test passed and the run was sound.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.failed == 0 && self.passed > 0
    }

    /// What the suite adds to the overall failed count: its failed tests,
    /// plus one if the suite itself went wrong (crashed, timed out, ran no
    /// test, ...).
    pub fn failed_count(&self) -> usize {
        self.failed + usize::from(!self.problems.is_empty())
    }

    pub fn failed_names(&self) -> Vec<&str> {
        self.failed_tests.iter().map(|t| t.name.as_str()).collect()
    }
}

/// Parses `P passed, F failed` (the tail of the kernel's done line).
fn parse_counts(s: &str) -> Option<(usize, usize)> {
    let (p, f) = s.split_once(',')?;
    let p = p.trim().strip_suffix("passed")?.trim().parse().ok()?;
    let f = f.trim().strip_suffix("failed")?.trim().parse().ok()?;
    Some((p, f))
}

/// Judges a QEMU test-suite run from its console transcript and how QEMU
/// ended. Pure: no I/O.
pub fn judge_suite(output: &str, termination: Termination) -> SuiteVerdict {
    let mut v = SuiteVerdict {
        passed: 0,
        failed: 0,
        failed_tests: Vec::new(),
        problems: Vec::new(),
    };
    let mut done: Vec<(usize, usize)> = Vec::new();
    let mut panic_line: Option<String> = None;

    for raw in output.lines() {
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix("[TEST] ") {
            match rest.split_once(" ... ") {
                Some((_, "ok")) => v.passed += 1,
                Some((name, result)) if result.starts_with("FAILED") => {
                    let reason = result["FAILED".len()..]
                        .trim_start_matches(':')
                        .trim()
                        .to_string();
                    v.failed += 1;
                    v.failed_tests.push(FailedTest {
                        name: name.trim().to_string(),
                        reason,
                    });
                }
                None if rest.ends_with("...") => {
                    let name = rest.trim_end_matches('.').trim();
                    v.problems
                        .push(format!("test `{name}` started but never finished"));
                }
                _ => v.problems.push(format!("unrecognised test line: {line}")),
            }
        } else if let Some(rest) = line.strip_prefix("[TESTS] done:") {
            match parse_counts(rest) {
                Some(counts) => done.push(counts),
                None => v.problems.push(format!("malformed done line: {line}")),
            }
        } else if line.starts_with("[PANIC]") && panic_line.is_none() {
            panic_line = Some(line.to_string());
        }
    }

    if let Some(p) = &panic_line {
        v.problems.push(format!("kernel panicked: {p}"));
    }

    match termination {
        Termination::TimedOut(t) => v
            .problems
            .push(format!("timed out after {}s (hung kernel?)", t.as_secs())),
        Termination::Signaled => v.problems.push("QEMU was killed by a signal".to_string()),
        Termination::Exited(_) => {}
    }

    match done.as_slice() {
        [] => {
            // A timeout or panic already says why the summary is missing.
            if panic_line.is_none() && !matches!(termination, Termination::TimedOut(_)) {
                v.problems
                    .push("no [TESTS] done line: kernel crashed or hung".to_string());
            }
        }
        [(p, f)] => {
            if (*p, *f) != (v.passed, v.failed) {
                v.problems.push(format!(
                    "done line says {p} passed, {f} failed but the [TEST] lines show {} passed, {} failed",
                    v.passed, v.failed
                ));
            }
        }
        _ => v
            .problems
            .push(format!("{} [TESTS] done lines (expected one)", done.len())),
    }

    if v.passed + v.failed == 0 && done.iter().all(|&(p, f)| p + f == 0) {
        v.problems.push("suite ran no test".to_string());
    }

    if let Termination::Exited(code) = termination {
        // Status 1 with failed tests and a sound transcript is the kernel
        // reporting those failures: nothing more to say. Status 3 goes with
        // a [PANIC] line, already reported.
        let explained = match code {
            0 => true,
            1 => v.failed > 0 && done.len() == 1,
            3 => panic_line.is_some(),
            _ => false,
        };
        if !explained {
            v.problems.push(format!("QEMU exited with status {code}"));
        }
        if code == 0 && v.failed > 0 {
            v.problems
                .push("kernel reported failed tests but exited with status 0".to_string());
        }
    }

    v
}

/// Counts summed over every `test result:` line of a `cargo test` run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LibtestSummary {
    pub passed: usize,
    pub failed: usize,
    pub ignored: usize,
    /// How many `test result:` lines were seen.
    pub results: usize,
}

/// Sums `test result: ok. N passed; M failed; K ignored; ...` lines.
pub fn parse_libtest(output: &str) -> LibtestSummary {
    let mut s = LibtestSummary::default();
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("test result:") else {
            continue;
        };
        // "ok. 3 passed; 0 failed; ..." or "FAILED. 1 passed; 2 failed; ..."
        let Some((_, counts)) = rest.split_once('.') else {
            continue;
        };
        s.results += 1;
        for part in counts.split(';') {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else {
                continue;
            };
            match what {
                "passed" => s.passed += n,
                "failed" => s.failed += n,
                "ignored" => s.ignored += n,
                _ => {}
            }
        }
    }
    s
}

/// Host tests as judged by `cargo xtask test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVerdict {
    pub summary: LibtestSummary,
    pub termination: Termination,
}

impl HostVerdict {
    /// Failed tests, plus one when cargo failed without a failing test to
    /// show for it (a compile error, a crashed test binary, a timeout).
    pub fn failed_count(&self) -> usize {
        let unexplained = !self.termination.success() && self.summary.failed == 0;
        self.summary.failed + usize::from(unexplained)
    }
}

/// Everything `cargo xtask test` ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
}

impl Totals {
    pub fn add_host(&mut self, host: &HostVerdict) {
        self.passed += host.summary.passed;
        self.failed += host.failed_count();
    }

    pub fn add_suite(&mut self, suite: &SuiteVerdict) {
        self.passed += suite.passed;
        self.failed += suite.failed_count();
    }

    /// One failure that is not a test (e.g. the kernel did not build).
    pub fn add_failure(&mut self) {
        self.failed += 1;
    }

    /// The process exit status: non-zero on any failure, or if nothing ran.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.failed > 0 || self.passed == 0)
    }
}

impl fmt::Display for Totals {
    /// Exactly `N passed, M failed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const BANNER: &str = "\nOpenSBI v1.1\nPlatform Name : riscv-virtio,qemu\nrkprobes demo kernel booting on 4 harts\n";

    fn transcript(body: &str) -> String {
        format!("{BANNER}{body}")
    }

    #[test]
    fn passing_transcript() {
        let out = transcript(
            "[TEST] probe_hit ... ok\n\
             some free text in between\n\
             [TEST] kretprobe_basic ... ok\r\n\
             [TEST] smp_four_harts ... ok\n\
             [TESTS] done: 3 passed, 0 failed\n",
        );
        let v = judge_suite(&out, Termination::Exited(0));
        assert!(v.ok(), "{v:?}");
        assert_eq!((v.passed, v.failed), (3, 0));
        assert_eq!(v.failed_count(), 0);
        assert!(v.problems.is_empty());
    }

    #[test]
    fn failing_test() {
        let out = transcript(
            "[TEST] probe_hit ... ok\n\
             [TEST] kretprobe_basic ... FAILED: expected 1 hit, got 0\n\
             [TESTS] done: 1 passed, 1 failed\n",
        );
        let v = judge_suite(&out, Termination::Exited(1));
        assert!(!v.ok());
        assert_eq!((v.passed, v.failed), (1, 1));
        assert_eq!(v.failed_names(), vec!["kretprobe_basic"]);
        assert_eq!(v.failed_tests[0].reason, "expected 1 hit, got 0");
        // A clean report of a failing test is not a suite problem.
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.failed_count(), 1);
    }

    #[test]
    fn failures_with_status_zero_are_inconsistent() {
        let out = "[TEST] a ... FAILED: x\n[TESTS] done: 0 passed, 1 failed\n";
        let v = judge_suite(out, Termination::Exited(0));
        assert!(!v.ok());
        assert!(v
            .problems
            .iter()
            .any(|p| p.contains("exited with status 0")));
    }

    #[test]
    fn panic() {
        let out = transcript(
            "[TEST] probe_hit ... ok\n\
             [PANIC] hart 2 panicked at kernel/src/trap.rs:88:9: unexpected scause 0x2\n",
        );
        let v = judge_suite(&out, Termination::Exited(3));
        assert!(!v.ok());
        assert_eq!(v.passed, 1);
        assert_eq!(
            v.problems,
            vec!["kernel panicked: [PANIC] hart 2 panicked at kernel/src/trap.rs:88:9: unexpected scause 0x2"]
        );
        assert_eq!(v.failed_count(), 1);
    }

    #[test]
    fn panic_after_done_line_still_fails() {
        let out = "[TEST] a ... ok\n[TESTS] done: 1 passed, 0 failed\n[PANIC] in shutdown\n";
        let v = judge_suite(out, Termination::Exited(3));
        assert!(!v.ok());
        assert!(v.problems[0].starts_with("kernel panicked"));
    }

    #[test]
    fn hang() {
        let out = transcript("[TEST] probe_hit ... ok\n[TEST] smp_four_harts ... ");
        let v = judge_suite(&out, Termination::TimedOut(Duration::from_secs(600)));
        assert!(!v.ok());
        assert_eq!(v.passed, 1);
        assert_eq!(
            v.problems,
            vec![
                "test `smp_four_harts` started but never finished",
                "timed out after 600s (hung kernel?)",
            ]
        );
        assert_eq!(v.failed_count(), 1);
    }

    #[test]
    fn timeout_after_done_line_fails() {
        let out = "[TEST] a ... ok\n[TESTS] done: 1 passed, 0 failed\n";
        let v = judge_suite(out, Termination::TimedOut(Duration::from_secs(5)));
        assert!(!v.ok());
        assert_eq!(v.problems, vec!["timed out after 5s (hung kernel?)"]);
    }

    #[test]
    fn crash() {
        let out = transcript("[TEST] probe_hit ... ok\n");
        let v = judge_suite(&out, Termination::Exited(1));
        assert!(!v.ok());
        assert!(v
            .problems
            .contains(&"no [TESTS] done line: kernel crashed or hung".to_string()));
        assert!(v
            .problems
            .contains(&"QEMU exited with status 1".to_string()));
        assert_eq!(v.failed_count(), 1);
    }

    #[test]
    fn crash_with_zero_status_is_still_a_crash() {
        let out = "[TEST] a ... ok\n";
        let v = judge_suite(out, Termination::Exited(0));
        assert!(!v.ok());
        assert_eq!(
            v.problems,
            vec!["no [TESTS] done line: kernel crashed or hung"]
        );
    }

    #[test]
    fn killed_by_signal() {
        let out = "[TEST] a ... ok\n[TESTS] done: 1 passed, 0 failed\n";
        let v = judge_suite(out, Termination::Signaled);
        assert!(!v.ok());
        assert_eq!(v.problems, vec!["QEMU was killed by a signal"]);
    }

    #[test]
    fn count_mismatch() {
        let out = "[TEST] a ... ok\n[TEST] b ... ok\n[TESTS] done: 3 passed, 0 failed\n";
        let v = judge_suite(out, Termination::Exited(0));
        assert!(!v.ok());
        assert_eq!(
            v.problems,
            vec!["done line says 3 passed, 0 failed but the [TEST] lines show 2 passed, 0 failed"]
        );
        assert_eq!(v.failed_count(), 1);
    }

    #[test]
    fn zero_tests() {
        let v = judge_suite("[TESTS] done: 0 passed, 0 failed\n", Termination::Exited(1));
        assert!(!v.ok());
        assert!(v.problems.contains(&"suite ran no test".to_string()));
        assert_eq!(v.failed_count(), 1);
        // Even if the kernel wrongly exits 0.
        let v = judge_suite("[TESTS] done: 0 passed, 0 failed\n", Termination::Exited(0));
        assert_eq!(v.problems, vec!["suite ran no test"]);
    }

    #[test]
    fn empty_output() {
        let v = judge_suite("", Termination::Exited(0));
        assert!(!v.ok());
        assert!(v.problems.contains(&"suite ran no test".to_string()));
        assert!(v
            .problems
            .contains(&"no [TESTS] done line: kernel crashed or hung".to_string()));
    }

    #[test]
    fn two_done_lines_and_odd_lines() {
        let out = "[TEST] a ... ok\n[TEST] b ... skipped\n[TESTS] done: 1 passed, 0 failed\n[TESTS] done: 1 passed, 0 failed\n";
        let v = judge_suite(out, Termination::Exited(0));
        assert!(!v.ok());
        assert!(v
            .problems
            .contains(&"unrecognised test line: [TEST] b ... skipped".to_string()));
        assert!(v
            .problems
            .contains(&"2 [TESTS] done lines (expected one)".to_string()));
    }

    #[test]
    fn malformed_done_line() {
        let out = "[TEST] a ... ok\n[TESTS] done: lots\n";
        let v = judge_suite(out, Termination::Exited(0));
        assert!(!v.ok());
        assert!(v
            .problems
            .contains(&"malformed done line: [TESTS] done: lots".to_string()));
    }

    #[test]
    fn libtest_summary() {
        let out = "\
running 3 tests
test a ... ok
test b ... FAILED
test c ... ignored
test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s

running 12 tests
test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s

   Doc-tests rkprobes
running 2 tests
test result: ok. 0 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.00s

test result: ok. 4 passed; 0 failed; 0 ignored; 0 measured; 3 filtered out; finished in 1.20s
";
        let s = parse_libtest(out);
        assert_eq!(
            s,
            LibtestSummary {
                passed: 17,
                failed: 1,
                ignored: 3,
                results: 4
            }
        );
    }

    #[test]
    fn host_failure_without_failed_test_counts_once() {
        let host = HostVerdict {
            summary: LibtestSummary::default(),
            termination: Termination::Exited(101),
        };
        assert_eq!(host.failed_count(), 1);
        let host = HostVerdict {
            summary: LibtestSummary {
                passed: 3,
                failed: 2,
                ignored: 0,
                results: 1,
            },
            termination: Termination::Exited(101),
        };
        assert_eq!(host.failed_count(), 2);
    }

    #[test]
    fn totals_and_exit_code() {
        let host = HostVerdict {
            summary: parse_libtest("test result: ok. 5 passed; 0 failed; 0 ignored;\n"),
            termination: Termination::Exited(0),
        };
        let good = judge_suite(
            "[TEST] a ... ok\n[TESTS] done: 1 passed, 0 failed\n",
            Termination::Exited(0),
        );
        let mut t = Totals::default();
        t.add_host(&host);
        t.add_suite(&good);
        assert_eq!(t.to_string(), "6 passed, 0 failed");
        assert_eq!(t.exit_code(), 0);

        let hung = judge_suite(
            "[TEST] a ... ok\n",
            Termination::TimedOut(Duration::from_secs(1)),
        );
        t.add_suite(&hung);
        assert_eq!(t.to_string(), "7 passed, 1 failed");
        assert_eq!(t.exit_code(), 1);

        assert_eq!(Totals::default().exit_code(), 1, "nothing ran");
    }
}
