//! `sessionguard run --archive DIR`, the binary against librdkafka's in-process mock cluster
//! (a real Kafka protocol server on a local port):
//!
//! - the scenario fixtures are produced in two halves to one partition; between them the
//!   running `run` closes its archive files by time (`--archive-roll-interval 1s`), so closed,
//!   readable files exist while it runs, and the second half goes to new files;
//! - stopped by SIGTERM, `run` closes its files and writes the manifest: nothing is left
//!   `.partial`, every record and every decision is in the archive;
//! - `replay DIR` of that archive gives, byte for byte, the decisions `run` produced to the
//!   actions topic — evidence origins included (topic, partition, offset).
//!
//! Every wait polls for what it waits for, with a deadline; none is a fixed sleep.
#![cfg(all(feature = "kafka", feature = "parquet"))]
#![allow(
    clippy::disallowed_methods,
    reason = "timeouts and timing of a test run, not engine time"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use serde_json::Value;
use sessionguard::history::Manifest;
use sessionguard::kafka::demo::{produce, read_topic, records_of};

#[path = "support/kafka.rs"]
mod support;
use support::{replay_decisions, root, scenario_paths, wait_until};

/// The Parquet files under `dir` (recursively), closed ones and `.partial` ones apart.
fn parquet_files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut closed, mut partial) = (Vec::new(), Vec::new());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".parquet") {
                closed.push(path);
            } else if name.ends_with(".parquet.partial") {
                partial.push(path);
            }
        }
    }
    closed.sort();
    partial.sort();
    (closed, partial)
}

/// The newest position a progress record on `topic` says is delivered (`-1`: none yet).
fn progress_committed(brokers: &str, topic: &str) -> i64 {
    read_topic(brokers, topic)
        .unwrap()
        .iter()
        .filter_map(|f| serde_json::from_slice::<Value>(&f.payload).ok()?["committed"].as_i64())
        .max()
        .unwrap_or(-1)
}

/// Ends `child` with SIGTERM, as a service manager would; its exit status.
fn terminate(child: &mut Child, stderr: &Path) -> i32 {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(
            Instant::now() < deadline,
            "run did not stop within 60 s of SIGTERM:\n{}",
            std::fs::read_to_string(stderr).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_archives_what_it_decides_rolls_by_time_and_replays_to_the_same_decisions() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let name = "runarchive";
    let (input, actions, progress) = (
        format!("{name}.in"),
        format!("{name}.actions"),
        format!("{name}.progress"),
    );
    cluster.create_topic(&input, 1, 1).unwrap();
    for topic in [&actions, &progress, &format!("{name}.dead")] {
        cluster.create_topic(topic, 1, 1).unwrap();
    }
    let files = scenario_paths();
    let records = records_of(&files).unwrap();
    let half = records.len() / 2;
    produce(&brokers, &input, &records[..half], Some(0)).unwrap();

    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("run-archive");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let archive = work.join("archive");
    let stderr = work.join("run.stderr");
    let mut run = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .args(["run", "--brokers", &brokers, "--group", "run-archive"])
        .args(["--topics", &input, "--actions-topic", &actions])
        .args(["--progress-topic", &progress])
        .args(["--dead-letter-topic", &format!("{name}.dead")])
        .args(["--rules", "rules", "--archive"])
        .arg(&archive)
        .args(["--archive-roll-interval", "1s"])
        .args([
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=500",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&stderr).unwrap_or_default();

    // The first half is read and, a second later, its files are closed by time: readable
    // while `run` goes on, with no manifest yet (the archive is complete only at the stop).
    wait_until(Duration::from_secs(60), "the first half read", || {
        progress_committed(&brokers, &progress) >= half as i64
    });
    wait_until(Duration::from_secs(30), "files closed by time", || {
        let (closed, partial) = parquet_files(&archive.join("events"));
        !closed.is_empty() && partial.is_empty()
    });
    assert!(
        !archive.join(sessionguard::history::MANIFEST).exists(),
        "no manifest while running"
    );
    let (first_files, _) = parquet_files(&archive.join("events"));
    for file in &first_files {
        let reader =
            parquet::file::reader::SerializedFileReader::new(std::fs::File::open(file).unwrap());
        assert!(
            reader.is_ok(),
            "{} unreadable while running",
            file.display()
        );
    }

    produce(&brokers, &input, &records[half..], Some(0)).unwrap();
    let expected = replay_decisions(&files);
    assert!(expected.len() > 20, "the scenarios should decide");
    wait_until(
        Duration::from_secs(60),
        "every record read and delivered",
        || {
            progress_committed(&brokers, &progress) >= records.len() as i64
                && read_topic(&brokers, &actions).unwrap().len() >= expected.len()
        },
    );
    assert_eq!(terminate(&mut run, &stderr), 0, "{}", log());

    // Closed cleanly: a manifest, nothing half-written, every record and decision.
    let manifest = Manifest::read(&archive).unwrap_or_else(|e| panic!("{e}\n{}", log()));
    assert_eq!(manifest.events, records.len() as u64);
    assert_eq!(manifest.decisions, expected.len() as u64);
    assert_eq!(manifest.origin_files, vec![format!("kafka://{input}/0")]);
    let (closed, partial) = parquet_files(&archive);
    assert!(partial.is_empty(), "left half-written: {partial:?}");
    assert_eq!(closed.len(), manifest.files.len());
    // The roll by time started new files for the second half.
    assert!(
        manifest
            .files
            .iter()
            .any(|f| f.ends_with("part-00001.parquet")),
        "no file rolled by time: {:?}",
        manifest.files
    );

    // The archive replays to what `run` produced, byte for byte.
    let produced: Vec<String> = read_topic(&brokers, &actions)
        .unwrap()
        .iter()
        .map(|f| String::from_utf8(f.payload.clone()).unwrap())
        .collect();
    let replayed = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .args([
            "replay",
            "--rules",
            "rules",
            "--no-final-timers",
            "--no-progress",
        ])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let replayed: Vec<String> = String::from_utf8(replayed.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(replayed.len(), produced.len());
    for (got, want) in replayed.iter().zip(&produced) {
        assert_eq!(got, want);
    }
    let first: Value = serde_json::from_str(&replayed[0]).unwrap();
    assert_eq!(
        first["evidence"]["events"][0]["origin"]["topic"],
        input.as_str(),
        "evidence names the Kafka record"
    );
}
