//! Prerequisites shared by `run`, `test` and `bench`: the RISC-V target of
//! the pinned toolchain, and QEMU.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::process::run_checked;
use crate::workspace_root;

pub const KERNEL_TARGET: &str = "riscv64gc-unknown-none-elf";
pub const QEMU: &str = "qemu-system-riscv64";
pub const QEMU_PACKAGE: &str = "qemu-system-misc";

/// Makes sure the kernel can be built and booted: installs the rustup
/// target if missing, and QEMU through apt when running as root.
pub fn ensure_prerequisites() -> Result<()> {
    ensure_rust_target()?;
    ensure_qemu()?;
    Ok(())
}

fn ensure_rust_target() -> Result<()> {
    // Run inside the workspace so rustup answers for the pinned toolchain.
    let listed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output();
    let listed = match listed {
        Ok(out) if out.status.success() => out,
        Ok(out) => bail!(
            "`rustup target list --installed` failed with {}",
            out.status
        ),
        Err(e) => {
            eprintln!(
                "xtask: warning: cannot run rustup ({e}); assuming target {KERNEL_TARGET} is installed"
            );
            return Ok(());
        }
    };
    let installed = String::from_utf8_lossy(&listed.stdout);
    if installed.lines().any(|l| l.trim() == KERNEL_TARGET) {
        return Ok(());
    }
    eprintln!("xtask: installing Rust target {KERNEL_TARGET}");
    run_checked(
        Command::new("rustup")
            .args(["target", "add", KERNEL_TARGET])
            .current_dir(workspace_root())
            .stdin(Stdio::null()),
    )
}

/// The first line of `qemu-system-riscv64 --version`, or None if it fails.
pub fn qemu_version_line() -> Option<String> {
    let out = Command::new(QEMU)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

/// The bare version number, e.g. `7.2.22` out of
/// `QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)`.
pub fn parse_qemu_version(line: &str) -> Option<String> {
    let rest = line.split("version").nth(1)?;
    rest.split_whitespace().next().map(str::to_string)
}

/// The installed QEMU's version number.
pub fn qemu_version() -> Result<String> {
    let line = qemu_version_line().with_context(|| format!("`{QEMU} --version` failed"))?;
    parse_qemu_version(&line).with_context(|| format!("unrecognised QEMU version line: {line}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn ensure_qemu() -> Result<()> {
    if qemu_version_line().is_some() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "`{QEMU}` is missing and xtask is not running as root, so it cannot install it: \
             install the Debian package `{QEMU_PACKAGE}` (sudo apt-get install {QEMU_PACKAGE})"
        );
    }
    eprintln!("xtask: {QEMU} missing; installing {QEMU_PACKAGE} with apt-get");
    for args in [&["update"][..], &["install", "-y", QEMU_PACKAGE][..]] {
        run_checked(
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null()),
        )?;
    }
    if qemu_version_line().is_none() {
        bail!("installed `{QEMU_PACKAGE}` but `{QEMU} --version` still fails");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_version_number() {
        assert_eq!(
            parse_qemu_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)")
                .as_deref(),
            Some("7.2.22")
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 9.2.0").as_deref(),
            Some("9.2.0")
        );
        assert_eq!(parse_qemu_version("garbage"), None);
    }
}
