//! Helpers for the adapters' unit tests: normalize one record and check what came out, and
//! read every fixture record as the first pass reads it.

use bumpalo::Bump;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::fields::Fields;
use super::model::{Event, Source};
use super::normalize::{Captures, Normalizer};
use super::reject::Reject;

/// Normalizes `json`, asserts it was read as `source`, and hands the event to `check`.
pub fn with_event<R>(source: Source, json: &str, check: impl FnOnce(&Event<'_>) -> R) -> R {
    let scratch = Bump::new();
    let event = Normalizer::default()
        .normalize(json.as_bytes(), &scratch)
        .unwrap_or_else(|r| panic!("rejected: {r}"));
    assert_eq!(event.source, source);
    check(&event)
}

/// The rejection of `json`; panics when it normalizes.
pub fn rejected(json: &str) -> Reject {
    let scratch = Bump::new();
    let result = Normalizer::default()
        .normalize(json.as_bytes(), &scratch)
        .map(|e| e.session.key.to_string());
    match result {
        Ok(key) => panic!("normalized as {key}"),
        Err(r) => r,
    }
}

/// Every record of every file under `fixtures/` (NDJSON lines, or a JSON array or `Records`
/// envelope), as text: for checks that must hold on every real record the project holds.
pub fn fixture_records() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            match path.extension().and_then(|e| e.to_str()) {
                Some("jsonl") => out.extend(text.lines().map(str::to_owned)),
                Some("json") => {
                    #[derive(Deserialize)]
                    struct Envelope<'a> {
                        #[serde(rename = "Records", borrow)]
                        records: Vec<&'a RawValue>,
                    }
                    let records = serde_json::from_str::<Vec<&RawValue>>(&text)
                        .or_else(|_| serde_json::from_str::<Envelope<'_>>(&text).map(|e| e.records))
                        .unwrap_or_default();
                    out.extend(records.iter().map(|r| r.get().to_owned()));
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"),
        &mut out,
    );
    out
}

/// Runs `check` on each of `records` as the normalizer's first pass reads it: the record, its
/// fields and what the first pass captured. Records that do not parse at all are left out; one
/// `detect` takes for its source must pass the first pass, since a capture that fails costs a
/// second parse of the record. Returns how many `detect` took.
pub fn first_pass_each(
    records: &[String],
    detect: fn(&Fields<'_>) -> bool,
    mut check: impl for<'a> FnMut(&str, &Fields<'a>, Captures<'a>),
) -> usize {
    let mut taken = 0;
    for record in records {
        let scratch = Bump::new();
        let Ok(plain) = Fields::parse(record, &scratch) else {
            continue;
        };
        let ours = detect(&plain);
        let mut captures = Captures::default();
        match Fields::parse_capturing(record, &scratch, &mut captures) {
            Ok(fields) => check(record, &fields, captures),
            Err(e) if ours => panic!("{e}: {record}"),
            Err(_) => continue,
        }
        taken += usize::from(ours);
    }
    taken
}
