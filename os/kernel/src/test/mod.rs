//! The in-kernel test framework.
//!
//! Every test is registered in `ALL` below. Each runs on its own and
//! returns `Err(reason)` on failure, so a failing assertion fails that test
//! and the run goes on. The output is the protocol `cargo xtask test` reads:
//! `[TEST] name ... ok`, `[TEST] name ... FAILED: reason`, then
//! `[TESTS] done: P passed, F failed`. QEMU exits with 0 only if nothing
//! failed and something ran.

mod asm_case;
mod asyncprobes;
mod base;
mod coroutine;
mod executor;
mod insn_cases;
mod insn_diff;
mod jumps;
mod kprobes;
mod probe_all;
mod process;
mod retprobes;
mod uprobes;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

pub type TestResult = Result<(), String>;

pub struct Test {
    pub name: String,
    pub run: Box<dyn Fn() -> TestResult>,
}

impl Test {
    pub fn new(name: &str, run: impl Fn() -> TestResult + 'static) -> Self {
        Test {
            name: name.into(),
            run: Box::new(run),
        }
    }
}

/// Runs `f` with jump probes off: every probe it places is a breakpoint.
pub fn with_breakpoints<R>(f: impl FnOnce() -> R) -> R {
    let before = rkprobes::set_jump_probes(false);
    let r = f();
    rkprobes::set_jump_probes(before);
    r
}

/// Every suite, in the order they run: each returns its tests.
const ALL: &[fn() -> Vec<Test>] = &[
    base::tests,
    kprobes::tests,
    jumps::tests,
    retprobes::tests,
    executor::tests,
    asyncprobes::tests,
    insn_diff::tests,
    process::tests,
    uprobes::tests,
];

/// Fails the current test with a formatted reason unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr) => {
        if !$cond {
            return Err(alloc::format!("{}:{}: check failed: {}", file!(), line!(), stringify!($cond)));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(alloc::format!("{}:{}: {}", file!(), line!(), alloc::format!($($fmt)+)));
        }
    };
}

/// Fails the current test unless `left == right`, showing both.
#[macro_export]
macro_rules! check_eq {
    ($left:expr, $right:expr $(,)?) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            return Err(alloc::format!(
                "{}:{}: {} == {} failed: {:?} != {:?}",
                file!(),
                line!(),
                stringify!($left),
                stringify!($right),
                l,
                r
            ));
        }
    }};
}

fn injected_failure() -> TestResult {
    Err("failure injected by inject=fail".into())
}

/// Runs every test whose name contains `filter`; returns (passed, failed).
pub fn run_all(filter: Option<&str>) -> (usize, usize) {
    let (mut passed, mut failed) = (0, 0);
    let inject = crate::bootargs::get("inject");
    let (first, last) = probe_all::tests();
    let always: Vec<String> = first.iter().chain(&last).map(|t| t.name.clone()).collect();
    let mut tests: Vec<Test> = first;
    tests.extend(ALL.iter().flat_map(|suite| suite()));
    tests.extend(last);
    if inject == Some("fail") {
        tests.push(Test::new("harness::injected_failure", injected_failure));
    }
    for test in &tests {
        if filter.is_some_and(|f| !test.name.contains(f)) && !always.contains(&test.name) {
            continue;
        }
        match inject {
            Some("panic") => panic!("panic injected by inject=panic"),
            Some("hang") => loop {
                crate::arch::wfi();
            },
            _ => {}
        }
        match (test.run)() {
            Ok(()) => {
                passed += 1;
                println!("[TEST] {} ... ok", test.name);
            }
            Err(reason) => {
                failed += 1;
                println!("[TEST] {} ... FAILED: {}", test.name, reason);
            }
        }
    }
    println!("[TESTS] done: {passed} passed, {failed} failed");
    (passed, failed)
}
