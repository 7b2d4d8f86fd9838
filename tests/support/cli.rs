//! The `sessionguard` binary as a test runs it: from the repository root, output captured.

use std::path::Path;
use std::process::{Command, Output};

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn sessionguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("sessionguard runs")
}
