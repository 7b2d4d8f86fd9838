//! Golden files for the tests that compare output with a reviewed snapshot (`tests/golden.rs`,
//! `tests/scenarios.rs`, `tests/third_party.rs`): one policy, in one place.
//!
//! - A golden is compared byte for byte; a mismatch is a failure with a line diff.
//! - A missing golden is a failure (never read as empty).
//! - A golden whose input is gone (an orphan) is a failure.
//! - `UPDATE_GOLDEN=1`, exactly, rewrites goldens instead of comparing; any other value compares.
//!   Under CI (`CI` set, and not `false` or `0`) the update is refused and the test fails, so a
//!   stray variable cannot turn a wrong golden green there.
//!
//! Included by each test binary with `#[path = "support/golden.rs"] mod golden;`.
#![allow(dead_code)] // each binary uses a different part

use std::path::{Path, PathBuf};

/// What the golden tests do with a golden file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Compare,
    Update,
}

/// The mode for the values of `UPDATE_GOLDEN` and `CI` (`None`: unset).
pub fn mode_of(update_golden: Option<&str>, ci: Option<&str>) -> Result<Mode, String> {
    let under_ci = ci.is_some_and(|v| !matches!(v.trim(), "" | "false" | "0"));
    match update_golden {
        Some("1") if under_ci => Err(
            "UPDATE_GOLDEN=1 under CI: golden files are rewritten only on a developer's machine, \
             after review; refusing to rewrite them here"
                .to_owned(),
        ),
        Some("1") => Ok(Mode::Update),
        _ => Ok(Mode::Compare),
    }
}

/// The mode of this test run; panics (fails the test) when an update is asked for under CI.
pub fn mode() -> Mode {
    let update = std::env::var("UPDATE_GOLDEN").ok();
    let ci = std::env::var("CI").ok();
    mode_of(update.as_deref(), ci.as_deref()).unwrap_or_else(|e| panic!("{e}"))
}

/// Compares `actual` with the golden file `golden` (or rewrites it under `Mode::Update`).
/// `Err` carries a message for the failure list: a diff, or the missing file.
pub fn check(mode: Mode, golden: &Path, actual: &str) -> Result<(), String> {
    if mode == Mode::Update {
        std::fs::write(golden, actual)
            .map_err(|e| format!("{}: cannot write: {e}", golden.display()))?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(golden).map_err(|e| {
        format!(
            "{}: no golden file ({e}); write it with UPDATE_GOLDEN=1 and review it",
            golden.display()
        )
    })?;
    if expected == actual {
        return Ok(());
    }
    let diff = similar::TextDiff::from_lines(expected.as_str(), actual);
    Err(format!(
        "{} differs from the output (UPDATE_GOLDEN=1 rewrites it, after review):\n{}",
        golden.display(),
        diff.unified_diff().context_radius(1)
    ))
}

/// Golden files under `dir` (recursively) named `<input><suffix>` whose input is not one of
/// `inputs`: left behind by a renamed or deleted input, they would never be compared again.
pub fn orphans(dir: &Path, suffix: &str, inputs: &[PathBuf]) -> Vec<String> {
    let mut found = Vec::new();
    walk(dir, &mut found);
    found.sort();
    found
        .into_iter()
        .filter_map(|path| {
            let name = path.to_str()?;
            let input = name.strip_suffix(suffix)?;
            let has_input = inputs.iter().any(|i| i.as_os_str() == input);
            (!has_input).then(|| {
                format!(
                    "{name}: orphan golden file (no input {input}); delete it or restore the input"
                )
            })
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}
