//! The mistakes a newcomer makes in the first hour, each as they would make it, with the exit
//! status and the first line of what sessionguard says (README, "Exit status"):
//!
//! - an input file that does not exist: status 2, `sessionguard: error: PATH: no such file or
//!   directory`, from `replay` and `normalize` alike;
//! - a rules directory that does not exist: status 2 from `replay` and `check` alike; when it
//!   is the default `rules`, the message says so and how to name another;
//! - a flag that does not exist: status 2, clap's `error: unexpected argument …`;
//! - output to a pipe whose reader has gone (`replay … | head`): status 0, nothing said;
//! - a broker nobody listens on (`run`): the first error line names the broker and the cause,
//!   once, however often librdkafka retries; `/readyz` says why it is not ready; SIGTERM ends
//!   it with 0 and a shutdown line that does not claim a commit;
//! - `gen --out` into a directory that does not exist yet: made;
//! - a Parquet file piped to `replay -`: status 3, a reject that says to pass its path.
#![allow(
    clippy::disallowed_methods,
    reason = "timeouts and timing of a test run, not engine time"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sessionguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sessionguard"))
}

/// A fresh, empty directory: a place with no `rules/`.
fn empty_dir(label: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("first_hour-{label}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// Exit status and the first line of standard error.
fn said(out: &Output) -> (i32, String) {
    (out.status.code().unwrap_or(-1), first_line(&out.stderr))
}

fn scenario() -> PathBuf {
    root().join("fixtures/scenarios/agent-drift/attack.jsonl")
}

#[test]
fn an_input_file_that_does_not_exist() {
    let missing = root().join("fixtures/scenaros/attack.jsonl");
    let want = format!(
        "sessionguard: error: {}: no such file or directory",
        missing.display()
    );
    let out = sessionguard()
        .arg("replay")
        .arg(&missing)
        .arg("--rules")
        .arg(root().join("rules"))
        .output()
        .unwrap();
    assert_eq!(said(&out), (2, want.clone()), "replay");
    let out = sessionguard()
        .arg("normalize")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(said(&out), (2, want), "normalize");
}

#[test]
fn the_default_rules_directory_missing_is_named_as_the_default() {
    let dir = empty_dir("no-rules");
    let want = format!(
        "sessionguard: error: no rules directory: `rules` (the default) does not exist in {}; ",
        dir.display()
    );
    let out = sessionguard()
        .current_dir(&dir)
        .arg("replay")
        .arg(scenario())
        .output()
        .unwrap();
    let (code, line) = said(&out);
    assert_eq!(code, 2, "replay: {line}");
    assert_eq!(
        line,
        format!("{want}pass another with --rules DIR"),
        "replay"
    );
    let out = sessionguard()
        .current_dir(&dir)
        .arg("check")
        .output()
        .unwrap();
    let (code, line) = said(&out);
    assert_eq!(code, 2, "check: {line}");
    assert_eq!(
        line,
        format!("{want}pass another as `sessionguard check DIR`"),
        "check"
    );
}

#[test]
fn a_named_rules_directory_missing_gives_the_same_status_everywhere() {
    let missing = root().join("rulez");
    let want = format!(
        "sessionguard: error: rules: {}: no such file or directory",
        missing.display()
    );
    let replay = sessionguard()
        .arg("replay")
        .arg(scenario())
        .arg("--rules")
        .arg(&missing)
        .output()
        .unwrap();
    let check = sessionguard().arg("check").arg(&missing).output().unwrap();
    assert_eq!(said(&replay), (2, want.clone()), "replay");
    assert_eq!(said(&check), (2, want), "check");
}

#[test]
fn one_broken_rule_is_one_error() {
    let dir = empty_dir("one-broken-rule");
    std::fs::write(
        dir.join("rule.yml"),
        "id: t.broken\ndetection:\n  sel: {action: s3:GetObject}\n  condition: nosuch\naction: alert\n",
    )
    .unwrap();
    let out = sessionguard().arg("check").arg(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("1 error; no rule was loaded"),
        "{stderr}"
    );
    let out = sessionguard()
        .arg("replay")
        .arg(scenario())
        .arg("--rules")
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("sessionguard: error: the rules did not load (1 error; listed above)"),
        "{stderr}"
    );
}

#[test]
fn a_flag_that_does_not_exist() {
    let out = sessionguard()
        .arg("replay")
        .arg("--nope")
        .arg(scenario())
        .output()
        .unwrap();
    assert_eq!(
        said(&out),
        (2, "error: unexpected argument '--nope' found".to_owned())
    );
}

/// Runs `args` with standard output a pipe whose reading end is already closed: every write
/// fails as it does under `| head` once head has what it wants.
fn into_a_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    sessionguard()
        .current_dir(root())
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn output_to_a_closed_pipe_ends_quietly_with_0() {
    for args in [
        &["replay", "fixtures/scenarios", "--no-progress"][..],
        &[
            "replay",
            "fixtures/scenarios",
            "--no-progress",
            "--threads",
            "2",
        ],
        &["normalize", "fixtures/scenarios"],
        &["gen", "--events", "20000", "--quiet"],
        &["check", "rules"],
    ] {
        let out = into_a_closed_pipe(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("error") && !stderr.contains("panicked"),
            "{args:?} said: {stderr}"
        );
    }
}

/// `run` against a port nobody listens on, for a few seconds, then SIGTERM.
#[cfg(feature = "kafka")]
#[test]
fn run_against_an_unreachable_broker_says_so_once() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    // A port that was free a moment ago and that nothing listens on now.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let brokers = format!("127.0.0.1:{port}");
    let mut child = sessionguard()
        .current_dir(root())
        .args(["run", "--brokers", &brokers, "--group", "first-hour"])
        .args(["--topics", "audit", "--actions-topic", "actions"])
        .args([
            "--dead-letter-topic",
            "dead",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let json = |line: &str| serde_json::from_str::<serde_json::Value>(line).ok();
    let mut seen: Vec<String> = Vec::new();
    // Until the first error line, and the address /readyz is served on.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut addr = None;
    let first_error = loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("no error line within 60 s:\n{}", seen.join("\n"))
            });
        seen.push(line.clone());
        let Some(v) = json(&line) else { continue };
        if v["event"] == "metrics_serving" {
            addr = v["addr"].as_str().map(str::to_owned);
        }
        if v["level"] == "error" {
            break v;
        }
    };
    assert_eq!(first_error["event"], "broker_unreachable", "{first_error}");
    let msg = first_error["msg"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "cannot reach the Kafka brokers at {brokers}: Connection refused"
        )),
        "{msg}"
    );
    // /readyz says why; the gauge says the same.
    let get = |path: &str| {
        let mut s = TcpStream::connect(addr.as_deref().expect("metrics address logged")).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let ready = get("/readyz");
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(
        ready.contains(&format!(
            "not ready: cannot reach the Kafka brokers at {brokers}: Connection refused"
        )),
        "{ready}"
    );
    assert!(get("/metrics").contains("\nsessionguard_broker_connected 0\n"));
    // A few seconds of librdkafka retrying (dozens of attempts), then a graceful stop.
    std::thread::sleep(Duration::from_secs(3));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    reader.join().unwrap();
    seen.extend(lines.try_iter());
    let log = seen.join("\n");
    assert!(status.success(), "run exited with {status}\n{log}");
    let events: Vec<serde_json::Value> = seen.iter().filter_map(|l| json(l)).collect();
    let named = |event: &str| events.iter().filter(|v| v["event"] == event).count();
    // Said once, not once per retry: no other error, and no retry forwarded as a warning.
    assert_eq!(named("broker_unreachable"), 1, "{log}");
    let loud: Vec<&serde_json::Value> = events
        .iter()
        .filter(|v| v["level"] == "error" || v["level"] == "warn")
        .filter(|v| v["event"] != "broker_unreachable" && v["event"] != "broker_connection_failed")
        .collect();
    assert!(loud.is_empty(), "{loud:#?}");
    // A failed attempt before the outage is known (each client makes one) may be a warning;
    // its identical repeats are counted, and a count still held at the end is written once
    // with `"repeated": N` (the log's design, src/telemetry.rs): a summary, not a second
    // saying. So at most one line says it and at most one counts what followed.
    let failed: Vec<&serde_json::Value> = events
        .iter()
        .filter(|v| v["event"] == "broker_connection_failed")
        .collect();
    let (counts, says): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) =
        failed.iter().partition(|v| v.get("repeated").is_some());
    assert!(says.len() <= 1, "{log}");
    assert!(
        counts.len() <= says.len(),
        "a count of repeats with nothing said first\n{log}"
    );
    assert!(
        counts
            .iter()
            .all(|v| v["repeated"].as_u64().is_some_and(|n| n >= 1)),
        "{log}"
    );
    let stopped = events
        .iter()
        .find(|v| v["event"] == "pipeline_stopped")
        .unwrap_or_else(|| panic!("no pipeline_stopped line\n{log}"));
    assert_eq!(
        stopped["msg"],
        "stopped; nothing was committed: the brokers could not be reached"
    );
}

#[test]
fn gen_makes_the_directory_it_is_told_to_write_into() {
    let dir = empty_dir("gen-out").join("not/yet");
    let out = sessionguard()
        .args([
            "gen",
            "--events",
            "200",
            "--attacks",
            "0",
            "--quiet",
            "--out",
        ])
        .arg(dir.join("mix.jsonl"))
        .output()
        .unwrap();
    assert_eq!(said(&out), (0, String::new()));
    let written = std::fs::read_to_string(dir.join("mix.jsonl")).unwrap();
    assert_eq!(written.lines().count(), 200);
}

#[test]
fn a_parquet_file_on_standard_input_is_a_reject_that_says_to_pass_its_path() {
    let parquet = root().join("fixtures/events/ocsf/stratus-secretsmanager-as-ocsf.parquet");
    let dir = empty_dir("parquet-stdin");
    let rejects = dir.join("rejects.jsonl");
    let out = sessionguard()
        .args(["replay", "--no-progress", "--rules"])
        .arg(root().join("rules"))
        .arg("--rejects")
        .arg(&rejects)
        .arg("-")
        .stdin(std::fs::File::open(parquet).unwrap())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rejects = std::fs::read_to_string(rejects).unwrap();
    assert_eq!(rejects.lines().count(), 1, "{rejects}");
    assert!(rejects.contains("pass its path"), "{rejects}");
}
