//! Broken and hostile input costs only itself (issue 11):
//!
//! - every file of `fixtures/hostile/` (written by `scripts/hostile.py`: 20 valid records and
//!   one broken stretch each — a bad first line, NUL bytes, garbage after a record, a syntax
//!   error in pretty-printed records, a broken element of an array or envelope) keeps its 20
//!   records and rejects the stretch once, with its bytes;
//! - a log directory holding a truncated gzip, a dangling symlink and a FIFO is read to the end
//!   without hanging: the readable records are kept (those before the gzip's fault too), each
//!   fault is an `unreadable` reject naming the file, and `replay` exits 3 ("completed with
//!   unreadable input"), distinct from success (0) and failure (2).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::event::RejectReason;
use sessionguard::replay::{replay, ReplayOptions};
use sessionguard::rule::RuleSet;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn each_broken_stretch_costs_only_itself() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/hostile"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 8, "the hostile corpus: {files:?}");
    for file in files {
        let rules = RuleSet::load(&[root().join("rules")]).unwrap();
        let mut engine = Engine::new(rules, EngineConfig::default());
        let mut rejects: Vec<(RejectReason, Vec<u8>)> = Vec::new();
        let summary = replay(
            std::slice::from_ref(&file),
            &mut engine,
            &ReplayOptions::default(),
            &mut |_| Ok(()),
            &mut |_, _, reject, bytes| {
                rejects.push((reject.reason, bytes.to_vec()));
                Ok(())
            },
        )
        .unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(summary.events(), 20, "{name}: every valid record is kept");
        assert_eq!(rejects.len(), 1, "{name}: {rejects:?}");
        let (reason, bytes) = &rejects[0];
        assert_eq!(*reason, RejectReason::NotJson, "{name}");
        assert!(!bytes.is_empty(), "{name}: the reject carries its bytes");
        assert!(
            bytes.len() < 5_000,
            "{name}: the reject is the broken stretch, not the file ({} bytes)",
            bytes.len()
        );
    }
}

fn records(n: usize) -> String {
    let corpus =
        std::fs::read_to_string(root().join("fixtures/hostile/ndjson-garbage-first-line.jsonl"))
            .unwrap();
    corpus
        .lines()
        .skip(1)
        .take(n)
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn a_log_directory_with_bad_files_is_read_to_the_end() {
    let dir = std::env::temp_dir().join(format!("sg-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // a-good: 5 records. b-cut.json.gz: 2,000 records, the gzip cut in half. c-gone.jsonl: a
    // dangling symlink. d-pipe.jsonl: a FIFO nobody writes to. e-good: 5 more records.
    std::fs::write(dir.join("a-good.jsonl"), records(5)).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Large enough for several deflate blocks, so the first half decompresses to records.
    for _ in 0..100 {
        gz.write_all(records(20).as_bytes()).unwrap();
    }
    let gz = gz.finish().unwrap();
    std::fs::write(dir.join("b-cut.json.gz"), &gz[..gz.len() / 2]).unwrap();
    std::os::unix::fs::symlink(dir.join("nowhere.jsonl"), dir.join("c-gone.jsonl")).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(dir.join("d-pipe.jsonl"))
        .status()
        .expect("mkfifo");
    assert!(fifo.success());
    std::fs::write(dir.join("e-good.jsonl"), records(5)).unwrap();

    let rejects = dir.join("rejects.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .arg("replay")
        .arg(&dir)
        .arg("--rules")
        .arg(root().join("rules"))
        .arg("--rejects")
        .arg(&rejects)
        .arg("--no-progress")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("replay hung on the log directory");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(3), "{stderr}");
    let events: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("events").map(|n| n.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no events line: {stderr}"));
    assert!(
        events > 10 + 100 && events < 10 + 2_000,
        "both good files and the gzip's readable part are kept: {events}\n{stderr}"
    );
    let written = std::fs::read_to_string(&rejects).unwrap();
    let unreadable: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["reason"] == "unreadable")
        .collect();
    let named = |file: &str| {
        unreadable
            .iter()
            .any(|r| r["origin"]["file"].as_str().unwrap_or("").ends_with(file))
    };
    assert_eq!(unreadable.len(), 3, "{written}");
    assert!(
        named("b-cut.json.gz") && named("c-gone.jsonl") && named("d-pipe.jsonl"),
        "{written}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
