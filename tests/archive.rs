//! The archive (docs/history.md), through the binary as a user runs it:
//!
//! - `archive LOGS --to DIR`, then `replay DIR`, gives byte for byte the decisions `replay LOGS`
//!   gives — on the scenario fixtures with Security Lake Parquet beside them, and on `gen`
//!   output in delivery order over two days — and the archive is partitioned by date and
//!   source and rolled by size (a file is closed past the size after a batch of 8,192 rows);
//! - pyarrow (a reader we did not write) reads every event and every decision back
//!   (`#[ignore]`d: it needs pyarrow; scripts/test.sh makes a venv with it and runs it);
//! - an archive is never written over; a damaged file costs only its own rows (exit 3).

#![cfg(feature = "parquet")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sessionguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .args(args)
        .args(["--no-progress"])
        .output()
        .expect("sessionguard runs")
}

fn ok(out: Output, what: &str) -> Output {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A fresh, empty directory for one test.
fn scratch(label: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("archive-{label}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A count from the summary table `replay` prints on stderr (`events`, `cloudtrail` …): the
/// last number on the first line whose first word is `label`.
fn summary_count(stderr: &[u8], label: &str) -> Option<u64> {
    String::from_utf8_lossy(stderr).lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(label))
            .then(|| words.last()?.parse().ok())
            .flatten()
    })
}

const SOURCES: [&str; 6] = [
    "cloudtrail",
    "okta",
    "kubernetes",
    "github",
    "entra",
    "ocsf",
];

/// Every Parquet file under `dir`, relative, sorted.
fn parquet_files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Archives `inputs`, replays them and the archive, and checks the decisions are the same;
/// returns the archive's directory and the stderr of `replay LOGS`.
fn round_trip(label: &str, inputs: &[&str], roll_size: &str) -> (PathBuf, Vec<u8>) {
    let dir = scratch(label);
    let archive = dir.join("archive");
    let (archive_s, direct_out, again_out, archived_out) = (
        archive.display().to_string(),
        dir.join("direct.ndjson").display().to_string(),
        dir.join("again.ndjson").display().to_string(),
        dir.join("archived.ndjson").display().to_string(),
    );
    let mut args = vec!["replay"];
    args.extend_from_slice(inputs);
    args.extend(["--rules", "rules", "--out", &direct_out]);
    let direct = ok(sessionguard(&args), "replay LOGS");
    let mut args = vec!["archive"];
    args.extend_from_slice(inputs);
    args.extend([
        "--rules",
        "rules",
        "--to",
        &archive_s,
        "--roll-size",
        roll_size,
    ]);
    args.extend(["--out", &archived_out]);
    let archived = ok(sessionguard(&args), "archive LOGS");
    let said = String::from_utf8_lossy(&archived.stderr);
    assert!(
        said.contains(&format!("to {archive_s}")),
        "archive says where it wrote: {said}"
    );
    ok(
        sessionguard(&[
            "replay", &archive_s, "--rules", "rules", "--out", &again_out,
        ]),
        "replay ARCHIVE",
    );
    let (direct_text, again_text) = (text(Path::new(&direct_out)), text(Path::new(&again_out)));
    assert!(
        direct_text.lines().count() > 0,
        "the inputs give decisions to compare"
    );
    assert!(
        direct_text == again_text,
        "replaying the archive gives the decisions of the logs, byte for byte:\n{}",
        first_difference(&direct_text, &again_text)
    );
    assert_eq!(
        text(Path::new(&archived_out)),
        direct_text,
        "`archive --out` writes the decisions `replay` does"
    );
    (archive, direct.stderr)
}

fn first_difference(a: &str, b: &str) -> String {
    let (mut la, mut lb) = (a.lines(), b.lines());
    for n in 1.. {
        match (la.next(), lb.next()) {
            (None, None) => break,
            (x, y) if x == y => continue,
            (x, y) => return format!("line {n}:\n  logs:    {x:?}\n  archive: {y:?}"),
        }
    }
    String::new()
}

/// `date=…` and `source=…` directories of the events, with their file counts.
fn partitions(archive: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for file in parquet_files(archive) {
        let dir = Path::new(&file).parent().unwrap().display().to_string();
        *out.entry(dir).or_default() += 1;
    }
    out
}

#[test]
fn an_archive_of_the_fixtures_replays_to_their_decisions() {
    let (archive, direct) = round_trip(
        "fixtures",
        &["fixtures/scenarios", "fixtures/ocsf-lake"],
        "128MiB",
    );
    let parts = partitions(&archive);
    // The scenario sources and the lake's OCSF, each in its own partition.
    for source in [
        "cloudtrail",
        "okta",
        "kubernetes",
        "github",
        "entra",
        "ocsf",
    ] {
        assert!(
            parts
                .keys()
                .any(|p| p.starts_with("events/date=") && p.ends_with(&format!("source={source}"))),
            "a {source} partition: {parts:?}"
        );
    }
    assert!(
        parts.keys().any(|p| p.starts_with("decisions/date=")),
        "decisions by date: {parts:?}"
    );
    // Every event the replay counted is in the archive.
    let manifest: serde_json::Value =
        serde_json::from_str(&text(&archive.join("_sessionguard_archive.json"))).unwrap();
    assert_eq!(
        manifest["events"].as_u64(),
        summary_count(&direct, "events"),
        "the manifest counts every event"
    );
    assert_eq!(
        manifest["files"].as_array().map(Vec::len),
        Some(parquet_files(&archive).len()),
        "the manifest lists every file"
    );
    assert!(
        !parquet_files(&archive).is_empty()
            && std::fs::read_dir(&archive)
                .unwrap()
                .flatten()
                .all(|e| !e.path().to_string_lossy().ends_with(".partial")),
        "no file left half-written"
    );
}

#[test]
fn an_archive_of_gen_output_in_delivery_order_replays_to_its_decisions() {
    let dir = scratch("gen-input");
    let logs = dir.join("traffic.jsonl").display().to_string();
    ok(
        Command::new(env!("CARGO_BIN_EXE_sessionguard"))
            .args([
                "gen",
                "--events",
                "40000",
                "--sessions",
                "400",
                "--attacks",
                "12",
                "--delivery",
                "realistic",
                "--events-per-second-of-event-time",
                "0.3",
                "--start",
                "2024-11-04T12:00:00Z",
                "--out",
                &logs,
                "-q",
            ])
            .output()
            .unwrap(),
        "gen",
    );
    let (archive, _) = round_trip("gen", &[&logs], "256KiB");
    let parts = partitions(&archive);
    assert!(
        parts
            .iter()
            .any(|(p, files)| p.ends_with("source=cloudtrail") && *files > 1),
        "a day's cloudtrail events (over 8,192 rows, a batch) fill more than a 256 KiB file: \
         {parts:?}"
    );
    let days: Vec<String> = parts
        .into_keys()
        .filter(|p| p.starts_with("events/"))
        .filter_map(|p| p.split('/').nth(1).map(str::to_owned))
        .collect();
    assert!(
        days.contains(&"date=2024-11-04".to_owned())
            && days.contains(&"date=2024-11-05".to_owned()),
        "a day and a half of event time spans two date partitions: {days:?}"
    );
}

#[test]
fn an_archive_reads_records_as_the_replay_does_with_a_forced_source() {
    let dir = scratch("forced");
    let logs = dir.join("undetected.jsonl");
    // No `eventVersion`: detected, these are no source's; read as CloudTrail, they are events.
    let records: Vec<String> = ["GetObject", "ListBuckets", "PutObject"]
        .iter()
        .map(|name| {
            format!(
                r#"{{"eventSource":"s3.amazonaws.com","eventName":"{name}","eventTime":"2024-08-01T10:00:00Z","userIdentity":{{"accountId":"1","accessKeyId":"ASIAX"}}}}"#
            )
        })
        .collect();
    std::fs::write(&logs, records.join("\n") + "\n").unwrap();
    let (logs, archive) = (
        logs.display().to_string(),
        dir.join("archive").display().to_string(),
    );
    let args = ["archive", &logs, "--rules", "rules", "--to", &archive];
    let detected = ok(sessionguard(&args), "archive, sources detected");
    let said = String::from_utf8_lossy(&detected.stderr);
    assert!(said.contains("archived 0 events"), "{said}");

    let archive = dir.join("archive-forced").display().to_string();
    let args = [
        "archive",
        &logs,
        "--rules",
        "rules",
        "--source",
        "cloudtrail",
        "--to",
        &archive,
    ];
    let forced = ok(sessionguard(&args), "archive --source cloudtrail");
    let said = String::from_utf8_lossy(&forced.stderr);
    assert!(said.contains("archived 3 events"), "{said}");
    assert_eq!(
        parquet_files(Path::new(&archive)),
        ["events/date=2024-08-01/source=cloudtrail/part-00000.parquet"]
    );
}

#[test]
fn an_archive_is_never_written_over() {
    let dir = scratch("twice");
    let archive = dir.join("archive").display().to_string();
    let input = "fixtures/scenarios/agent-drift/attack.jsonl";
    ok(
        sessionguard(&["archive", input, "--rules", "rules", "--to", &archive]),
        "the first archive",
    );
    let before = parquet_files(Path::new(&archive));
    let again = sessionguard(&["archive", input, "--rules", "rules", "--to", &archive]);
    assert_eq!(again.status.code(), Some(2));
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("already holds an archive"),
        "says why: {said}"
    );
    assert_eq!(
        parquet_files(Path::new(&archive)),
        before,
        "nothing touched"
    );
}

#[test]
fn a_damaged_archive_file_costs_only_its_rows() {
    let (archive, before) = round_trip("damaged", &["fixtures/scenarios"], "128MiB");
    let victim = parquet_files(&archive)
        .into_iter()
        .find(|f| f.contains("source=okta"))
        .expect("an okta file");
    let path = archive.join(&victim);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let dir = archive.parent().unwrap();
    let rejects = dir.join("rejects.ndjson").display().to_string();
    let out = sessionguard(&[
        "replay",
        &archive.display().to_string(),
        "--rules",
        "rules",
        "--out",
        &dir.join("after.ndjson").display().to_string(),
        "--rejects",
        &rejects,
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "completed with unreadable input: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unreadable: Vec<serde_json::Value> = text(Path::new(&rejects))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["reason"] == "unreadable")
        .collect();
    assert_eq!(unreadable.len(), 1, "one reject: {unreadable:?}");
    assert!(
        unreadable[0]["origin"]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with(&victim)),
        "it names the damaged file: {unreadable:?}"
    );
    let count = |stderr: &[u8], source| summary_count(stderr, source).unwrap_or(0);
    assert!(
        count(&out.stderr, "okta") < count(&before, "okta"),
        "the damaged file's okta events are lost"
    );
    for source in ["cloudtrail", "kubernetes", "github", "entra"] {
        assert_eq!(
            count(&out.stderr, source),
            count(&before, source),
            "every {source} event is read"
        );
    }
}

/// The python with pyarrow that scripts/test.sh installs.
fn python() -> String {
    std::env::var("SESSIONGUARD_TEST_PYTHON")
        .expect("SESSIONGUARD_TEST_PYTHON names a python with pyarrow (scripts/test.sh makes one)")
}

#[test]
#[ignore = "needs pyarrow: scripts/test.sh runs it with SESSIONGUARD_TEST_PYTHON"]
fn pyarrow_reads_every_event_and_decision() {
    let (archive, direct) = round_trip(
        "pyarrow",
        &["fixtures/scenarios", "fixtures/ocsf-lake"],
        "64KiB",
    );
    let out = ok(
        Command::new(python())
            .arg(root().join("scripts/history/read-archive.py"))
            .arg(&archive)
            .output()
            .expect("python runs"),
        "read-archive.py",
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["events"].as_u64(), summary_count(&direct, "events"));
    for source in SOURCES {
        assert_eq!(
            read["by_source"][source].as_u64(),
            summary_count(&direct, source),
            "{source} events"
        );
    }
    let columns: Vec<&str> = read["event_columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    for column in [
        "time",
        "session_key",
        "action",
        "src_ip",
        "raw",
        "date",
        "source",
    ] {
        assert!(columns.contains(&column), "{column} in {columns:?}");
    }
    assert_eq!(read["codecs"], serde_json::json!(["ZSTD"]));
    // The first record read keeps its bytes: the first line of the first scenario file.
    let first = text(&root().join("fixtures/scenarios/agent-drift/attack.jsonl"));
    assert_eq!(read["raw_first"].as_str(), first.lines().next());
    let decisions = text(&archive.parent().unwrap().join("direct.ndjson"));
    let read_lines: Vec<&str> = read["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d.as_str())
        .collect();
    assert_eq!(read_lines, decisions.lines().collect::<Vec<_>>());
}
