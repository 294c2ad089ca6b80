//! Building the demo kernel in `os/` (its own cargo workspace).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{ensure, Context, Result};

use crate::env::KERNEL_TARGET;
use crate::os_dir;
use crate::process::{describe, run_checked};

pub const KERNEL_PACKAGE: &str = "kernel";
/// The user runtime and programs (`os/user`), embedded in the kernel image.
pub const USER_PACKAGE: &str = "user";
/// Tells the kernel build where the user programs are (`include_bytes!`).
pub const USER_BIN_DIR_VAR: &str = "USER_BIN_DIR";

/// Where `cargo build --release` in `os/` leaves its binaries.
pub fn release_dir() -> PathBuf {
    os_dir().join("target").join(KERNEL_TARGET).join("release")
}

/// Where `cargo build --release` in `os/` leaves the kernel ELF.
pub fn kernel_elf_path() -> PathBuf {
    release_dir().join(KERNEL_PACKAGE)
}

/// Cargo's variable for the Rust flags of the kernel's target, set for the
/// user programs' build only.
fn target_rustflags_var() -> String {
    let triple = KERNEL_TARGET.to_uppercase().replace('-', "_");
    format!("CARGO_TARGET_{triple}_RUSTFLAGS")
}

/// Builds the user programs (release); returns the folder holding them.
pub fn build_user() -> Result<PathBuf> {
    let mut cmd = os_cargo();
    // The kernel is built without frame pointers (fewer instructions per
    // probe hit); the user programs keep them: the uprobe tests name their
    // instructions by offset from a symbol (`step+0xc`), in the code this
    // flag gives.
    cmd.env(target_rustflags_var(), "-Cforce-frame-pointers=yes");
    cmd.args(["build", "--release", "--package", USER_PACKAGE]);
    eprintln!("xtask: {} (in os/)", describe(&cmd));
    run_checked(&mut cmd).context("building the user programs")?;
    Ok(release_dir())
}

/// Environment variables that must not reach the nested kernel build.
///
/// The outer cargo (running xtask, or a test of xtask) exports variables
/// describing *its* build: the host toolchain override, host rustflags,
/// the host target dir, per-package metadata. Any of them leaking into
/// `cargo build` in `os/` would build the kernel with host settings or into
/// the wrong folder. User-level settings that are not about a build
/// (cargo's home, network, registries, terminal) are kept.
pub fn leaks_into_nested_build(name: &str) -> bool {
    const KEEP_PREFIXES: &[&str] = &[
        "CARGO_HOME",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
        "CARGO_TERM_",
    ];
    const STRIP_EXACT: &[&str] = &[
        "CARGO",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "RUSTDOC",
    ];
    if KEEP_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    // CARGO_* covers CARGO_ENCODED_RUSTFLAGS, CARGO_TARGET_DIR,
    // CARGO_TARGET_<triple>_*, CARGO_BUILD_*, CARGO_MANIFEST_*, CARGO_PKG_*,
    // CARGO_CFG_*, CARGO_PROFILE_*, CARGO_MAKEFLAGS ... ; RUSTC* covers
    // RUSTC_WRAPPER, RUSTC_WORKSPACE_WRAPPER, RUSTC_LINKER, RUSTC_BOOTSTRAP.
    STRIP_EXACT.contains(&name)
        || name.starts_with("CARGO_")
        || name.starts_with("RUSTC")
        || name.starts_with("__CARGO")
}

/// A `cargo` command run in `os/`, cleaned of the outer build's variables.
/// rustup then picks the toolchain pinned by the repository's
/// `rust-toolchain.toml`, and `os/.cargo/config.toml` picks the target.
pub fn os_cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(os_dir()).stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str() {
            if leaks_into_nested_build(name) {
                cmd.env_remove(name);
            }
        }
    }
    cmd
}

/// Builds the kernel (release) with the given cargo features and returns
/// the path of the finished ELF, after any post-link steps.
pub fn build_kernel(features: &[&str]) -> Result<PathBuf> {
    // The kernel embeds the user programs: they come first.
    let user_dir = build_user()?;
    let mut cmd = os_cargo();
    cmd.env(USER_BIN_DIR_VAR, &user_dir);
    cmd.args(["build", "--release", "--package", KERNEL_PACKAGE]);
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    eprintln!("xtask: {} (in os/)", describe(&cmd));
    run_checked(&mut cmd).context("building the kernel")?;

    let elf = kernel_elf_path();
    ensure!(
        elf.is_file(),
        "kernel build succeeded but {} does not exist",
        elf.display()
    );

    // ==================== POST-LINK HOOK ====================
    // Every step that rewrites the linked ELF (e.g. embedding the kernel's
    // own symbol table for rkprobes' symbol lookup) goes in `post_link`,
    // so `run`, `test`, `bench` and the integration tests all get it.
    post_link(&elf, features)?;
    // ========================================================

    Ok(elf)
}

/// Post-link steps on the freshly linked kernel ELF. Each is cheap and
/// idempotent and runs on every build, since cargo may skip relinking.
fn post_link(elf: &std::path::Path, _features: &[&str]) -> Result<()> {
    crate::ksyms::post_link(elf).context("embedding the kernel symbol table")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_outer_build_variables() {
        for name in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTUP_TOOLCHAIN",
            "CARGO",
            "CARGO_MANIFEST_DIR",
            "CARGO_PKG_NAME",
            "CARGO_BUILD_TARGET",
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER",
            "RUSTC",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            assert!(leaks_into_nested_build(name), "{name} should be removed");
        }
    }

    #[test]
    fn keeps_user_settings() {
        for name in [
            "PATH",
            "HOME",
            "CARGO_HOME",
            "RUSTUP_HOME",
            "CARGO_NET_OFFLINE",
            "CARGO_TERM_COLOR",
            "CARGO_REGISTRIES_CRATES_IO_PROTOCOL",
        ] {
            assert!(!leaks_into_nested_build(name), "{name} should be kept");
        }
    }

    #[test]
    fn elf_path_is_in_os_target() {
        let p = kernel_elf_path();
        assert!(p.ends_with("os/target/riscv64gc-unknown-none-elf/release/kernel"));
    }

    #[test]
    fn user_programs_sit_beside_the_kernel() {
        assert_eq!(kernel_elf_path().parent(), Some(release_dir().as_path()));
        assert!(release_dir()
            .join("hello")
            .ends_with("riscv64gc-unknown-none-elf/release/hello"));
    }

    #[test]
    fn user_bin_dir_reaches_the_nested_build() {
        // The variable is ours, not the outer build's: it must not be
        // stripped like CARGO_*/RUSTC* (the command sets it explicitly,
        // but a user-set one must survive too).
        assert!(!leaks_into_nested_build(USER_BIN_DIR_VAR));
    }
}
