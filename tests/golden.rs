//! Golden tests for normalization: every input under `fixtures/events/` is normalized and the
//! result compared with the reviewed `<input>.golden` beside it.
//!
//! Each golden line is one input record, in order: `{"line":N,"event":{…}}` for an event, or
//! `{"line":N,"reject":{"reason":…,"detail":…}}` for a rejected record. On a mismatch the test
//! prints a line diff. `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the files; review the
//! diff (`git diff fixtures/`) before committing it.

use std::path::{Path, PathBuf};

use bumpalo::Bump;
use sessionguard::event::Normalizer;
use sessionguard::source::file::{self, Item};

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events")
}

/// Renders what normalization makes of one input file, one line per record.
fn render(path: &Path) -> String {
    let normalizer = Normalizer::default();
    let mut scratch = Bump::new();
    let mut out = String::new();
    let reader = file::open(path).unwrap();
    file::for_each_record(reader, &mut |item| {
        let line = match item {
            Item::Record { bytes, line } => {
                scratch.reset();
                match normalizer.normalize(bytes, &scratch) {
                    Ok(event) => serde_json::json!({ "line": line, "event": event }),
                    Err(r) => serde_json::json!({
                        "line": line,
                        "reject": { "reason": r.reason, "detail": r.detail }
                    }),
                }
            }
            Item::Broken { line, reject, .. } => serde_json::json!({
                "line": line,
                "reject": { "reason": reject.reason, "detail": reject.detail }
            }),
        };
        out.push_str(&line.to_string());
        out.push('\n');
    })
    .unwrap();
    out
}

#[test]
fn normalized_fixtures_match_their_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let inputs = file::expand_paths(&[fixture_root()]).unwrap();
    assert!(
        !inputs.is_empty(),
        "no fixtures under {}",
        fixture_root().display()
    );
    let mut failures = Vec::new();
    for input in &inputs {
        let actual = render(input);
        let golden = PathBuf::from(format!("{}.golden", input.display()));
        if update {
            std::fs::write(&golden, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != actual {
            let diff = similar::TextDiff::from_lines(&expected, &actual);
            failures.push(format!(
                "{} differs from {} (UPDATE_GOLDEN=1 rewrites after review):\n{}",
                input.display(),
                golden.display(),
                diff.unified_diff().context_radius(1)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
