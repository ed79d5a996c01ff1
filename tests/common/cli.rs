//! Running the real `mule` binary from the tests: one command to completion, its output checked.
#![allow(dead_code)] // not every test binary runs the CLI

use std::path::Path;
use std::process::{Command, Output};

/// The `mule` binary cargo built for these tests.
pub const MULE: &str = env!("CARGO_BIN_EXE_mule");

/// Runs `mule --data-dir DIR ARGS...` to completion.
pub fn mule(dir: &Path, args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(MULE)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()?)
}

/// The stdout of a run that succeeded; the exit status and stderr in the error otherwise.
pub fn ok_stdout(out: Output) -> anyhow::Result<String> {
    anyhow::ensure!(
        out.status.success(),
        "mule failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}
