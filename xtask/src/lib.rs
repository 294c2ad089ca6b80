//! Orchestration for the rkprobes workspace: building the demo kernel in
//! `os/`, booting it under QEMU, judging its test output, and benchmarks.
//!
//! `main.rs` is a thin argument parser over these modules; the integration
//! tests in `tests/` call the same functions.

pub mod bench;
pub mod env;
pub mod kernel;
pub mod ksyms;
pub mod lint;
pub mod process;
pub mod qemu;
pub mod suites;
pub mod verdict;

use std::path::{Path, PathBuf};

/// Root of the host workspace (the folder holding `xtask/` and `os/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits one level below the workspace root")
        .to_path_buf()
}

/// Root of the kernel's own cargo workspace.
pub fn os_dir() -> PathBuf {
    workspace_root().join("os")
}
