//! Golden tests for normalization: every input under `fixtures/events/` is normalized and the
//! result compared with the reviewed `<input>.golden` beside it.
//!
//! Each golden line is one input record (an OpenTelemetry export of several spans: one line per
//! span, each with the export's line), in order: `{"line":N,"event":{…}}` for an event, or
//! `{"line":N,"reject":{"reason":…,"detail":…}}` for a rejected record. On a mismatch the test
//! prints a line diff; a missing golden, or a golden without its input, fails too.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the files (refused under CI); review the
//! diff (`git diff fixtures/`) before committing it. The policy lives in `support/golden.rs`,
//! shared with the scenario and third-party tests; its own tests are here.

use std::path::{Path, PathBuf};

#[path = "support/golden.rs"]
mod golden;

use bumpalo::Bump;
use sessionguard::event::{otel, Normalizer};
use sessionguard::source::file::{self, Item};

fn fixture_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events")
}

/// `value` with every object's keys in sorted order: the goldens' form, whether or not a
/// dependency turns on serde_json's `preserve_order` (josekit, under feature `actuate`, does;
/// objects then keep the order the event's fields are serialized in).
fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

/// Renders what normalization makes of one input file, one line per record.
fn render(path: &Path) -> String {
    let normalizer = Normalizer::default();
    let mut scratch = Bump::new();
    let mut out = String::new();
    file::open_records(path)
        .unwrap()
        .for_each(&mut |item| {
            let lines = match item {
                Item::Record { bytes, line } => {
                    // An OpenTelemetry export of several spans is one event per span, each
                    // with the export's line, as `normalize`, `replay` and `run` read it.
                    let parts = otel::split_export(bytes).unwrap_or_else(|| vec![bytes.to_vec()]);
                    parts
                        .iter()
                        .map(|part| {
                            scratch.reset();
                            match normalizer.normalize(part, &scratch) {
                                Ok(event) => serde_json::json!({ "line": line, "event": event }),
                                Err(r) => serde_json::json!({
                                    "line": line,
                                    "reject": { "reason": r.reason, "detail": r.detail }
                                }),
                            }
                        })
                        .collect()
                }
                Item::Broken { line, reject, .. } => vec![serde_json::json!({
                    "line": line,
                    "reject": { "reason": reject.reason, "detail": reject.detail }
                })],
            };
            for line in lines {
                out.push_str(&sorted(line).to_string());
                out.push('\n');
            }
        })
        .unwrap();
    out
}

#[test]
fn normalized_fixtures_match_their_golden_files() {
    let mode = golden::mode();
    let inputs = file::expand_paths(&[fixture_root()]).unwrap();
    assert!(
        !inputs.is_empty(),
        "no fixtures under {}",
        fixture_root().display()
    );
    let mut failures = golden::orphans(&fixture_root(), ".golden", &inputs);
    for input in &inputs {
        let golden_path = PathBuf::from(format!("{}.golden", input.display()));
        if let Err(e) = golden::check(mode, &golden_path, &render(input)) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn goldens_are_rewritten_only_with_update_golden_1_and_never_under_ci() {
    use golden::{mode_of, Mode};
    assert_eq!(mode_of(None, None), Ok(Mode::Compare));
    assert_eq!(mode_of(Some("1"), None), Ok(Mode::Update));
    // "Is it set" is not enough: any value but 1 compares.
    for stray in ["0", "", "true", "yes", "2"] {
        assert_eq!(mode_of(Some(stray), None), Ok(Mode::Compare), "{stray:?}");
    }
    for ci in ["true", "1", "yes"] {
        assert!(mode_of(Some("1"), Some(ci)).is_err(), "CI={ci}");
        assert_eq!(mode_of(None, Some(ci)), Ok(Mode::Compare));
    }
    for not_ci in ["", "false", "0"] {
        assert_eq!(
            mode_of(Some("1"), Some(not_ci)),
            Ok(Mode::Update),
            "CI={not_ci:?}"
        );
    }
}

#[test]
fn a_wrong_missing_or_orphan_golden_fails() {
    let dir = std::env::temp_dir().join(format!("sessionguard-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("a.json");
    std::fs::write(&input, "{}\n").unwrap();
    let gold = dir.join("a.json.golden");

    // Missing: a failure naming the file, not an empty golden.
    let missing = golden::check(golden::Mode::Compare, &gold, "out\n").unwrap_err();
    assert!(missing.contains("no golden file"), "{missing}");

    std::fs::write(&gold, "old\n").unwrap();
    let wrong = golden::check(golden::Mode::Compare, &gold, "new\n").unwrap_err();
    assert!(wrong.contains("-old") && wrong.contains("+new"), "{wrong}");
    assert_eq!(
        std::fs::read_to_string(&gold).unwrap(),
        "old\n",
        "compare never writes"
    );
    assert_eq!(golden::check(golden::Mode::Compare, &gold, "old\n"), Ok(()));

    golden::check(golden::Mode::Update, &gold, "new\n").unwrap();
    assert_eq!(std::fs::read_to_string(&gold).unwrap(), "new\n");

    let inputs = vec![input.clone()];
    assert!(golden::orphans(&dir, ".golden", &inputs).is_empty());
    std::fs::write(dir.join("gone.json.golden"), "").unwrap();
    let orphans = golden::orphans(&dir, ".golden", &inputs);
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    assert!(orphans[0].contains("gone.json.golden"), "{orphans:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
