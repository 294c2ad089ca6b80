//! `cargo xtask lint`: rustfmt and clippy, for the host workspace and for
//! the kernel (which needs the user programs built first, like a build).

use anyhow::{ensure, Result};
use std::process::Command;

use crate::kernel::{build_user, os_cargo, USER_BIN_DIR_VAR};
use crate::workspace_root;

fn check(mut cmd: Command, what: &str) -> Result<()> {
    eprintln!("xtask: lint: {what}");
    let status = cmd.status()?;
    ensure!(status.success(), "{what} failed");
    Ok(())
}

/// Runs every check, reports all failures, fails if any failed.
pub fn lint() -> Result<()> {
    let mut failed = Vec::new();
    let mut host = |args: &[&str], what: &'static str| {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(workspace_root()).args(args);
        if check(cmd, what).is_err() {
            failed.push(what);
        }
    };
    host(&["fmt", "--all", "--", "--check"], "rustfmt (host)");
    host(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        "clippy (host)",
    );
    let user_dir = build_user()?;
    let mut os = |args: &[&str], what: &'static str| {
        let mut cmd = os_cargo();
        cmd.env(USER_BIN_DIR_VAR, &user_dir).args(args);
        if check(cmd, what).is_err() {
            failed.push(what);
        }
    };
    os(&["fmt", "--all", "--", "--check"], "rustfmt (kernel)");
    os(
        &["clippy", "--release", "--", "-D", "warnings"],
        "clippy (kernel)",
    );
    os(
        &[
            "clippy",
            "--release",
            "--features",
            "bench",
            "--",
            "-D",
            "warnings",
        ],
        "clippy (kernel, bench build)",
    );
    ensure!(failed.is_empty(), "lint failed: {}", failed.join(", "));
    Ok(())
}
