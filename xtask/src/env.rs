//! Prerequisites shared by `run`, `test` and `bench`: the RISC-V target of
//! the pinned toolchain, and QEMU.

use std::path::{Path, PathBuf};
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
    qemu_version_line_of(Path::new(QEMU))
}

/// The first line of `<qemu> --version`, or None if it fails.
pub fn qemu_version_line_of(qemu: &Path) -> Option<String> {
    let out = Command::new(qemu)
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
    QemuBin::system().version()
}

/// A QEMU binary to boot with: the system's (on `PATH`), or one unpacked
/// into a folder of its own, which then needs its own module folder (QEMU
/// refuses modules of another build, e.g. the system QEMU's) and its own
/// data folder (`-L`: else `-bios default` loads the system QEMU's
/// OpenSBI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuBin {
    pub path: PathBuf,
    pub module_dir: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
}

impl QemuBin {
    pub fn system() -> Self {
        QemuBin {
            path: PathBuf::from(QEMU),
            module_dir: None,
            data_dir: None,
        }
    }

    /// The version number, e.g. `10.0.2`.
    pub fn version(&self) -> Result<String> {
        let shown = self.path.display();
        let line = qemu_version_line_of(&self.path)
            .with_context(|| format!("`{shown} --version` failed"))?;
        parse_qemu_version(&line).with_context(|| format!("unrecognised QEMU version line: {line}"))
    }
}

/// The oldest QEMU the bench runs under. Under 7.2 (Debian bookworm's)
/// with `-icount`, a hart woken from `wfi` can be passed over
/// indefinitely while another spins, so the 4-hart machine hangs in
/// `smp::run_on_all`; 10.0 runs it.
pub const BENCH_QEMU_MAJOR: u32 = 10;

/// Where `cargo xtask bench` unpacks QEMU from Debian bookworm-backports
/// when the system QEMU is older than `BENCH_QEMU_MAJOR`; the system QEMU
/// (which the test suites use) stays in place.
pub const BENCH_QEMU_DIR: &str = "/opt/qemu10";

/// The Debian packages unpacked into `BENCH_QEMU_DIR`: the emulator, its
/// data and firmware (OpenSBI, which `-bios default` loads).
const BENCH_QEMU_PACKAGES: [&str; 4] = [
    "qemu-system-riscv",
    "qemu-system-common",
    "qemu-system-data",
    "opensbi",
];

const BACKPORTS_SOURCES: &str = "/etc/apt/sources.list.d/bookworm-backports.sources";
const BACKPORTS_ENTRY: &str = "Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

fn major(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

fn recent_enough(q: &QemuBin) -> bool {
    q.version()
        .ok()
        .and_then(|v| major(&v))
        .is_some_and(|m| m >= BENCH_QEMU_MAJOR)
}

fn unpacked_qemu() -> QemuBin {
    let root = Path::new(BENCH_QEMU_DIR).join("usr");
    // `<prefix>/lib/<multiarch triple>/qemu`.
    let module_dir = std::fs::read_dir(root.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("qemu"))
        .find(|p| p.is_dir());
    QemuBin {
        path: root.join("bin").join(QEMU),
        module_dir,
        data_dir: Some(root.join("share").join("qemu")),
    }
}

/// The QEMU for `cargo xtask bench`: the system QEMU if it is at least
/// `BENCH_QEMU_MAJOR`, else the one in `BENCH_QEMU_DIR`, unpacked there
/// from bookworm-backports first if missing (as root; apt-get).
pub fn bench_qemu() -> Result<QemuBin> {
    let system = QemuBin::system();
    if recent_enough(&system) {
        return Ok(system);
    }
    let unpacked = unpacked_qemu();
    if recent_enough(&unpacked) {
        return Ok(unpacked);
    }
    if !is_root() {
        bail!(
            "the bench needs QEMU {BENCH_QEMU_MAJOR} or later (the system QEMU is older) and \
             xtask is not running as root, so it cannot unpack one into {BENCH_QEMU_DIR}: run \
             `cargo xtask bench` as root once, or install {QEMU_PACKAGE} from \
             bookworm-backports"
        );
    }
    install_bench_qemu()?;
    let unpacked = unpacked_qemu();
    if !recent_enough(&unpacked) {
        bail!(
            "unpacked {} into {BENCH_QEMU_DIR} but `{} --version` does not give QEMU \
             {BENCH_QEMU_MAJOR} or later (missing shared libraries? try `ldd` on it)",
            BENCH_QEMU_PACKAGES.join(" "),
            unpacked.path.display()
        );
    }
    Ok(unpacked)
}

fn apt_get(args: &[&str], dir: &Path) -> Result<()> {
    run_checked(
        Command::new("apt-get")
            .args(args)
            .current_dir(dir)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null()),
    )
}

/// Downloads the bookworm-backports QEMU packages and unpacks them into
/// `BENCH_QEMU_DIR` (`dpkg -x`: nothing of the system's is replaced). Its
/// shared libraries are the system QEMU's, installed by
/// `ensure_prerequisites`.
fn install_bench_qemu() -> Result<()> {
    eprintln!(
        "xtask: the bench needs QEMU {BENCH_QEMU_MAJOR}+; unpacking it from bookworm-backports \
         into {BENCH_QEMU_DIR}"
    );
    let listed = std::fs::read_dir("/etc/apt/sources.list.d")
        .into_iter()
        .flatten()
        .flatten()
        .chain(
            std::fs::read_dir("/etc/apt")
                .into_iter()
                .flatten()
                .flatten(),
        )
        .filter(|e| e.path().is_file())
        .any(|e| {
            std::fs::read_to_string(e.path()).is_ok_and(|t| {
                t.lines()
                    .any(|l| !l.trim_start().starts_with('#') && l.contains("bookworm-backports"))
            })
        });
    if !listed {
        std::fs::write(BACKPORTS_SOURCES, BACKPORTS_ENTRY)
            .with_context(|| format!("writing {BACKPORTS_SOURCES}"))?;
    }
    let download = std::env::temp_dir().join("rkprobes-bench-qemu");
    let _ = std::fs::remove_dir_all(&download);
    std::fs::create_dir_all(&download)
        .with_context(|| format!("creating {}", download.display()))?;
    apt_get(&["update"], &download)?;
    let mut args = vec!["download", "-t", "bookworm-backports"];
    args.extend(BENCH_QEMU_PACKAGES);
    apt_get(&args, &download)?;
    std::fs::create_dir_all(BENCH_QEMU_DIR)
        .with_context(|| format!("creating {BENCH_QEMU_DIR}"))?;
    for deb in std::fs::read_dir(&download)? {
        let deb = deb?.path();
        if deb.extension().is_some_and(|e| e == "deb") {
            run_checked(
                Command::new("dpkg")
                    .arg("-x")
                    .arg(&deb)
                    .arg(BENCH_QEMU_DIR)
                    .stdin(Stdio::null()),
            )?;
        }
    }
    let _ = std::fs::remove_dir_all(&download);
    Ok(())
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
        assert_eq!(major("10.0.2"), Some(10));
        assert_eq!(major("7.2.22"), Some(7));
    }
}
