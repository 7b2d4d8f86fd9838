//! Broken and hostile input costs only itself (issue 11):
//!
//! - every file of `fixtures/hostile/` (written by `scripts/hostile.py`: 20 valid records and
//!   one broken stretch each — a bad first line, NUL bytes, garbage after a record (also
//!   ending in a brace), a syntax error in pretty-printed records, a broken element of an array
//!   or envelope, a byte count out of range) keeps its 20 records and rejects the stretch once,
//!   with its bytes;
//! - a log directory holding a truncated gzip, a dangling symlink and a FIFO is read to the end
//!   without hanging: the readable records are kept (those before the gzip's fault too), each
//!   fault is an `unreadable` reject naming the file, and `replay` (and `normalize`) exit 3
//!   ("completed with unreadable input"), distinct from success (0) and failure (2);
//! - memory stays bounded under a 300 MB address-space limit: a gzip bomb is one reject, a
//!   distinct-value flood one decision, with peak memory that does not grow with the flood;
//! - SIGTERM stops `replay` (and `replay --threads`) after the record in hand with every
//!   decision made written as whole lines, exactly those of a replay of the records read.
#![allow(
    clippy::disallowed_methods,
    reason = "timeouts and timing of a test run, not engine time"
)]

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
        let expected = if name.starts_with("odd-number-") {
            RejectReason::InvalidField
        } else {
            RejectReason::NotJson
        };
        assert_eq!(*reason, expected, "{name}");
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

/// A log directory with a good file, a truncated gzip, a dangling symlink, a FIFO nobody
/// writes to and another good file.
fn bad_log_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sg-{name}-{}", std::process::id()));
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
    dir
}

#[test]
fn a_log_directory_with_bad_files_is_read_to_the_end() {
    let dir = bad_log_dir("hostile");
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

/// Waits for `child` to exit, failing the test past `secs`.
fn exit_within(child: &mut std::process::Child, secs: u64, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: no exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &std::process::Child, name: &str) {
    let sent = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Synthetic traffic with attacks, from `sessionguard gen`.
fn generated(dir: &Path, events: u64) -> PathBuf {
    let path = dir.join("traffic.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args(["gen", "--sessions", "300", "--attack-rate", "1000"])
        .args(["--events-per-second-of-event-time", "5", "--events"])
        .arg(events.to_string())
        .arg("--out")
        .arg(&path)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    path
}

fn decision_ids(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            let d: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a torn or broken decision line ({e}): {l:?}"));
            d["decision_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// What a replay of the first `lines` lines of `input` decides with the input left open (no
/// end-of-input timers): what a replay stopped after that line must have written.
fn decided_by_first(dir: &Path, input: &str, lines: usize) -> Vec<String> {
    let head: String = input
        .lines()
        .take(lines)
        .map(|l| format!("{l}\n"))
        .collect();
    let path = dir.join("head.jsonl");
    std::fs::write(&path, head).unwrap();
    let rules = RuleSet::load(&[root().join("rules")]).unwrap();
    let mut engine = Engine::new(rules, EngineConfig::default());
    let mut decided = Vec::new();
    let options = ReplayOptions {
        end_of_input: false,
        ..ReplayOptions::default()
    };
    replay(
        &[path],
        &mut engine,
        &options,
        &mut |d| {
            decided.push(d.decision_id.clone());
            Ok(())
        },
        &mut |_, _, _, _| Ok(()),
    )
    .unwrap();
    decided
}

/// The line after which a stopped replay says it stopped.
fn stopped_after(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("stopped by a signal after "))
        .unwrap_or_else(|| panic!("no stop line: {stderr}"));
    let number = line
        .split(" line ")
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap();
    number.parse().unwrap()
}

/// SIGTERM while reading a stream: the record in hand is finished, every decision made is in
/// `--out` (whole lines, exactly those a replay of the records read makes), the summary says
/// where reading stopped, and the exit status is 143.
#[test]
fn a_terminated_replay_keeps_every_decision_made() {
    let dir = std::env::temp_dir().join(format!("sg-stop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let traffic = std::fs::read_to_string(generated(&dir, 8_000)).unwrap();
    let mut fed: String = traffic
        .lines()
        .take(6_000)
        .map(|l| format!("{l}\n"))
        .collect();
    let some = decided_by_first(&dir, &fed, 6_000).len() / 2;
    assert!(some >= 2, "the fed records make decisions");

    let out = dir.join("decisions.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args(["replay", "-", "--no-progress", "--rules"])
        .arg(root().join("rules"))
        .arg("--out")
        .arg(&out)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(fed.as_bytes()).unwrap();
    stdin.flush().unwrap();
    // Decisions are written as they are made: stop once half of them are out.
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(&out).map_or(0, |t| t.lines().count()) < some {
        assert!(
            Instant::now() < deadline,
            "the decisions never reached --out"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&child, "TERM");
    // Should the stream be idle by now, one more (broken) line is the record in hand after
    // which reading stops. Had it stopped already, the process may be gone and the pipe
    // closed: the line was then never read, which `stopped_after` accounts for.
    let _ = stdin
        .write_all(b"not a record\n")
        .and_then(|()| stdin.flush());
    fed.push_str("not a record\n");
    let status = exit_within(&mut child, 60, "replay after SIGTERM");
    drop(stdin);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.ends_with('\n'), "no torn last line");
    let read = stopped_after(&stderr);
    assert_eq!(
        decision_ids(&written),
        decided_by_first(&dir, &fed, read),
        "stopped after line {read}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same with `--threads`: reading stops, the shards finish what was read, and `--out`
/// holds exactly the decisions of the records read, as whole lines.
#[test]
fn a_terminated_sharded_replay_keeps_every_decision_made() {
    let dir = std::env::temp_dir().join(format!("sg-stop-sharded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let traffic = generated(&dir, 60_000);
    let out = dir.join("decisions.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args(["replay", "--threads", "2", "--no-progress", "--rules"])
        .arg(root().join("rules"))
        .arg(&traffic)
        .arg("--out")
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stop once decisions are being written.
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(&out).map_or(0, |t| t.lines().count()) < 2 {
        assert!(Instant::now() < deadline, "replay never decided");
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&child, "TERM");
    let status = exit_within(&mut child, 60, "sharded replay after SIGTERM");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.ends_with('\n'), "no torn last line");
    let read = stopped_after(&stderr);
    let input = std::fs::read_to_string(&traffic).unwrap();
    assert_eq!(
        decision_ids(&written),
        decided_by_first(&dir, &input, read),
        "stopped after line {read}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The count a replay summary line starting with `label` shows.
fn summary_count(summary: &str, label: &str) -> u64 {
    summary
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix(label)?;
            rest.starts_with(' ').then(|| rest.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {label:?} line: {summary}"))
}

/// Runs `sessionguard ARGS` under a 300 MB address-space limit with `stdin` fed from `input`;
/// returns the exit code, stderr and the peak resident memory in KiB (from its summary).
fn run_bounded(args: &[&str], input: impl FnOnce(&mut dyn Write) + Send) -> (i32, String, i64) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 300000 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_sessionguard"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stderr_pipe, &mut text).unwrap();
            text
        });
        input(&mut stdin);
        drop(stdin);
        reader.join().unwrap()
    });
    let status = exit_within(&mut child, 300, "replay under a memory limit");
    let peak_kib = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak memory (KiB)"))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no peak memory line: {stderr}"));
    (status.code().unwrap_or(-1), stderr, peak_kib)
}

/// 256 MiB of NUL bytes in a 256 KiB gzip (a decompression bomb), then one record: the
/// stretch is one reject with its first MiB, the record after it is kept, in bounded memory.
#[test]
fn a_gzip_bomb_is_one_reject_in_bounded_memory() {
    let dir = std::env::temp_dir().join(format!("sg-bomb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bomb = dir.join("bomb.json.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        gz.write_all(&zeros).unwrap();
    }
    gz.write_all(b"\n").unwrap();
    gz.write_all(records(1).as_bytes()).unwrap();
    std::fs::write(&bomb, gz.finish().unwrap()).unwrap();
    let rejects = dir.join("rejects.jsonl");
    let (code, stderr, peak_kib) = run_bounded(
        &[
            "replay",
            bomb.to_str().unwrap(),
            "--no-progress",
            "--rules",
            root().join("rules").to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ],
        |_| {},
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary_count(&stderr, "events"), 1, "{stderr}");
    let written = std::fs::read_to_string(&rejects).unwrap();
    let rejected: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rejected.len(), 1, "{written:.300}");
    let detail = rejected[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("268435456 bytes, the first 1048576 kept"),
        "{detail:.300}"
    );
    assert!(
        peak_kib < 100 * 1024,
        "peak RSS {peak_kib} KiB for a 256 MiB stretch"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One session reading ever more distinct secrets, counted by a `value_count` that alerts (the
/// session lives on): one decision, and memory that does not grow with the flood.
#[test]
fn a_distinct_value_flood_is_one_decision_in_bounded_memory() {
    let dir = std::env::temp_dir().join(format!("sg-flood-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("flood.yml"),
        "title: Many distinct secrets in an hour\nid: test.distinct_secrets\nversion: 1\n\
         level: high\ndetection:\n  reads:\n    action: secretsmanager:GetSecretValue\n\
         \x20 condition: reads\nsession:\n\
         \x20 value_count: {field: resource.id, timespan: 1h, gt: 1000}\n\
         action: {kind: alert, mode: enforce}\nsuppress: 2h\n",
    )
    .unwrap();
    let template: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(root().join("fixtures/scenarios/bulk-export/attack-secrets.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let flood = |n: usize| {
        let template = template.clone();
        move |stdin: &mut dyn Write| {
            let mut record = template;
            let mut out = std::io::BufWriter::new(stdin);
            for i in 0..n {
                // 40 a second: the first 144,000 inside the rule's hour.
                let second = i / 40;
                record["eventTime"] = format!(
                    "2024-10-05T{:02}:{:02}:{:02}Z",
                    12 + second / 3600,
                    second / 60 % 60,
                    second % 60
                )
                .into();
                record["requestParameters"]["secretId"] = format!("flood/secret-{i}").into();
                record["eventID"] = format!("flood-{i}").into();
                serde_json::to_writer(&mut out, &record).unwrap();
                out.write_all(b"\n").unwrap();
            }
            out.flush().unwrap();
        }
    };
    let rules = dir.join("flood.yml");
    let args = [
        "replay",
        "-",
        "--no-progress",
        "--rules",
        rules.to_str().unwrap(),
    ];
    let (small_code, small_err, small_kib) = run_bounded(&args, flood(10_000));
    let (code, stderr, kib) = run_bounded(&args, flood(90_000));
    eprintln!("peak RSS {small_kib} KiB for 10k distinct values, {kib} KiB for 90k");
    assert_eq!((small_code, code), (0, 0), "{small_err}\n{stderr}");
    assert_eq!(
        summary_count(&stderr, "  test.distinct_secrets"),
        1,
        "{stderr}"
    );
    // Unbounded, the 80,000 more distinct values held would cost about 5 MB more.
    assert!(
        kib - small_kib < 2 * 1024,
        "peak RSS {small_kib} KiB for 10k distinct values, {kib} KiB for 90k"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `normalize` reads the same directory to the end too, with the same rejects and status.
#[test]
fn normalize_reads_a_log_directory_with_bad_files_to_the_end() {
    let dir = bad_log_dir("hostile-normalize");
    let rejects = dir.join("rejects.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .arg("normalize")
        .arg(&dir)
        .arg("--quiet")
        .arg("--rejects")
        .arg(&rejects)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = exit_within(&mut child, 60, "normalize on the log directory");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(3), "{stderr}");
    let written = std::fs::read_to_string(&rejects).unwrap();
    let unreadable = written
        .lines()
        .filter(|l| l.contains("\"unreadable\""))
        .count();
    assert_eq!(unreadable, 3, "{written}");
    assert!(stderr.contains("normalized "), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
