//! Booting a kernel ELF under QEMU (riscv64 `virt`) with a time limit.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::env::QemuBin;
use crate::process::{describe, run_captured, Captured};

/// One QEMU boot.
#[derive(Debug, Clone)]
pub struct Boot<'a> {
    /// Kernel command line, passed with `-append`.
    pub bootargs: &'a str,
    pub smp: u32,
    pub timeout: Duration,
    /// Extra QEMU options placed before `-kernel` (e.g. `-icount ...`).
    pub extra_args: &'a [&'a str],
}

/// The full QEMU command line for `boot` of `elf`.
///
/// `-monitor none` is needed: with `-nographic` the monitor would otherwise
/// also claim stdio and QEMU refuses `-serial stdio` ("cannot use stdio by
/// multiple character devices").
pub fn qemu_command(elf: &Path, boot: &Boot) -> Command {
    qemu_command_for(&QemuBin::system(), elf, boot)
}

/// `qemu_command` with the given QEMU binary (and its module folder).
pub fn qemu_command_for(qemu: &QemuBin, elf: &Path, boot: &Boot) -> Command {
    let mut cmd = Command::new(&qemu.path);
    if let Some(dir) = &qemu.module_dir {
        cmd.env("QEMU_MODULE_DIR", dir);
    }
    if let Some(dir) = &qemu.data_dir {
        cmd.arg("-L").arg(dir);
    }
    cmd.args([
        "-machine",
        "virt",
        "-nographic",
        "-bios",
        "default",
        "-m",
        "128M",
    ])
    .arg("-smp")
    .arg(boot.smp.to_string())
    .args(boot.extra_args)
    .arg("-kernel")
    .arg(elf)
    .arg("-append")
    .arg(boot.bootargs)
    .args(["-monitor", "none", "-serial", "stdio"]);
    cmd
}

/// Boots `elf`, echoing the console live when `echo` is set; returns the
/// whole console transcript (stdout and stderr merged) and how QEMU ended.
/// QEMU is killed if it outlives `boot.timeout`.
pub fn run_qemu(elf: &Path, boot: &Boot, echo: bool) -> Result<Captured> {
    run_qemu_with(&QemuBin::system(), elf, boot, echo)
}

/// `run_qemu` with the given QEMU binary.
pub fn run_qemu_with(qemu: &QemuBin, elf: &Path, boot: &Boot, echo: bool) -> Result<Captured> {
    let cmd = qemu_command_for(qemu, elf, boot);
    eprintln!("xtask: {}", describe(&cmd));
    run_captured(cmd, Some(boot.timeout), echo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line() {
        let boot = Boot {
            bootargs: "mode=bench",
            smp: 4,
            timeout: Duration::from_secs(1),
            extra_args: &["-icount", "shift=0,sleep=off"],
        };
        let cmd = qemu_command(Path::new("/k"), &boot);
        assert_eq!(
            describe(&cmd),
            "qemu-system-riscv64 -machine virt -nographic -bios default -m 128M -smp 4 \
             -icount shift=0,sleep=off -kernel /k -append mode=bench -monitor none -serial stdio"
        );
        let unpacked = QemuBin {
            path: "/opt/q/usr/bin/qemu-system-riscv64".into(),
            module_dir: Some("/opt/q/usr/lib/x86_64-linux-gnu/qemu".into()),
            data_dir: Some("/opt/q/usr/share/qemu".into()),
        };
        let cmd = qemu_command_for(&unpacked, Path::new("/k"), &boot);
        assert!(describe(&cmd).starts_with(
            "/opt/q/usr/bin/qemu-system-riscv64 -L /opt/q/usr/share/qemu -machine virt"
        ));
        let envs: Vec<_> = cmd.get_envs().collect();
        assert_eq!(
            envs,
            vec![(
                std::ffi::OsStr::new("QEMU_MODULE_DIR"),
                Some(std::ffi::OsStr::new("/opt/q/usr/lib/x86_64-linux-gnu/qemu"))
            )]
        );
    }
}
