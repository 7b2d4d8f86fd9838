//! `sessionguard actuate` end to end: the binary against a Shared Signals receiver written in
//! the test (tests/support/ssf_receiver.rs) that verifies every SET against the transmitter's
//! JWKS, deduplicates on `jti`, and fails on purpose.
#![cfg(feature = "actuate")]
#![allow(
    clippy::disallowed_methods,
    reason = "waiting for a process and its receiver is wall-clock by nature"
)]

#[path = "support/ssf_receiver.rs"]
mod ssf_receiver;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use josekit::jws::ES256;
use serde_json::Value;
use ssf_receiver::{Fault, Plan, Receiver};

const ISSUER: &str = "https://sessionguard.test";
const AUDIENCE: &str = "https://idp.test";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sg-actuate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The kill decisions the engine wrote for the scenario fixtures (their reviewed goldens),
/// `copies` times over with distinct ids, so there are enough to stop a run half-way.
fn decisions(copies: usize) -> Vec<Value> {
    let mut files: Vec<PathBuf> = walk(Path::new("fixtures/scenarios"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".decisions.golden"))
        .collect();
    files.sort();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for copy in 0..copies {
        for file in &files {
            for line in std::fs::read_to_string(file).unwrap().lines() {
                let mut d: Value = serde_json::from_str(line).unwrap();
                if d["mode"] != "enforce" || !d["action"].as_str().unwrap().starts_with("revoke_") {
                    continue;
                }
                let id = format!("{}{copy:02}", &d["decision_id"].as_str().unwrap()[..30]);
                if seen.insert(id.clone()) {
                    d["decision_id"] = Value::String(id);
                    out.push(d);
                }
            }
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn write_lines(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|d| format!("{d}\n")).collect();
    std::fs::write(path, text).unwrap();
}

struct Setup {
    dir: PathBuf,
    config: PathBuf,
    listen: u16,
}

fn setup(name: &str, receiver_endpoint: &str, extra: &str) -> Setup {
    let dir = scratch(name);
    let key = ES256.generate_key_pair().unwrap().to_pem_private_key();
    std::fs::write(dir.join("es256.pem"), key).unwrap();
    let listen = free_port();
    let config = dir.join("actuate.yml");
    std::fs::write(
        &config,
        format!(
            "issuer: {ISSUER}\n\
             signing_key: {{ alg: ES256, kid: test-1, key: {{ file: es256.pem }} }}\n\
             listen: 127.0.0.1:{listen}\n\
             state: actuate.state\n\
             records: records.ndjson\n\
             max_in_flight: 8\n\
             receivers:\n\
             - name: idp\n  endpoint: {receiver_endpoint}\n  audience: {AUDIENCE}\n  \
               authorization: {{ env: SG_TEST_RECEIVER_TOKEN }}\n  timeout: 300ms\n  \
               retry: {{ initial: 20ms, max: 200ms }}\n  breaker: {{ failures: 4, open_for: 100ms }}\n\
             {extra}"
        ),
    )
    .unwrap();
    Setup {
        dir,
        config,
        listen,
    }
}

/// Numbers the runs' stderr files.
static RUNS: AtomicUsize = AtomicUsize::new(0);

const TOKEN: &str = "receiver-token-7f3a9c-do-not-print";

fn actuate(setup: &Setup, decisions: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args(["actuate", "--config"])
        .arg(&setup.config)
        .arg("--decisions")
        .arg(decisions)
        .env("SG_TEST_RECEIVER_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(
                setup
                    .dir
                    .join(format!("stderr-{}", RUNS.fetch_add(1, Ordering::Relaxed))),
            )
            .unwrap(),
        )
        .spawn()
        .unwrap()
}

fn wait(child: &mut Child, limit: Duration) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(
            start.elapsed() < limit,
            "actuate did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn records(setup: &Setup) -> Vec<Value> {
    std::fs::read_to_string(setup.dir.join("records.ndjson"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stderr_text(setup: &Setup) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(&setup.dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("stderr-")
        {
            text.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    text
}

#[test]
fn every_decision_reaches_the_receiver_once_by_jti_through_faults_and_a_crash() {
    let all = decisions(4);
    assert!(all.len() >= 150, "{} kill decisions", all.len());
    let ids: BTreeSet<String> = all
        .iter()
        .map(|d| d["decision_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), all.len());
    let refused = all[10]["decision_id"].as_str().unwrap().to_owned();

    let listen = free_port();
    let receiver = Receiver::start(Plan {
        // Every 4th request a 503, every 9th taken but answered after the transmitter's
        // timeout, every 5th slow; the rest at once.
        fault: Box::new(|n| match n {
            n if n % 4 == 0 => Fault::Unavailable,
            n if n % 9 == 0 => Fault::Late(Duration::from_millis(600)),
            n if n % 5 == 0 => Fault::Slow(Duration::from_millis(60)),
            _ => Fault::None,
        }),
        refuse: HashSet::from([refused.clone()]),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_url: format!("http://127.0.0.1:{listen}/jwks.json"),
        authorization: Some(format!("Bearer {TOKEN}")),
    });
    let mut setup = setup("crash", &receiver.endpoint(), "");
    // The receiver fetches the JWKS from the port in the config.
    let config = std::fs::read_to_string(&setup.config).unwrap().replace(
        &format!("127.0.0.1:{}", setup.listen),
        &format!("127.0.0.1:{listen}"),
    );
    std::fs::write(&setup.config, config).unwrap();
    setup.listen = listen;
    let input = setup.dir.join("decisions.ndjson");
    write_lines(&input, &all);

    // First run: killed (SIGKILL, no chance to save anything) once half is accepted.
    let mut first = actuate(&setup, &input);
    let start = Instant::now();
    while receiver.log().accepted.len() < all.len() / 2 {
        assert!(
            first.try_wait().unwrap().is_none(),
            "actuate ended early:\n{}",
            stderr_text(&setup)
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "too slow:\n{}",
            stderr_text(&setup)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let accepted_before_crash = receiver.log().accepted.len();
    assert!(
        accepted_before_crash < all.len(),
        "the crash came too late to test anything"
    );

    // Second run: from the saved position to the end of the input.
    let mut second = actuate(&setup, &input);
    let code = wait(&mut second, Duration::from_secs(120));
    assert_eq!(code, 0, "{}", stderr_text(&setup));

    let log = receiver.log();
    assert!(
        log.bad.is_empty(),
        "SETs that failed verification: {:?}",
        log.bad
    );
    assert_eq!(log.unauthorized, 0);
    // No decision lost: every decision's jti accepted (but the one refused on purpose).
    let accepted: BTreeSet<String> = log.accepted.keys().cloned().collect();
    let mut expected = ids.clone();
    expected.remove(&refused);
    let lost: Vec<_> = expected.difference(&accepted).collect();
    let unknown: Vec<_> = accepted.difference(&expected).collect();
    assert!(
        lost.is_empty(),
        "{} decisions never delivered: {lost:?}",
        lost.len()
    );
    assert!(
        unknown.is_empty(),
        "SETs under a jti that is no decision id: {unknown:?}"
    );
    // None under a new jti: every jti that came is a decision id (the set above equals them).
    // Duplicates (same jti) come only from answers the transmitter never saw and from the
    // decisions in flight at the crash.
    let duplicates: u32 = log.accepted.values().map(|n| n - 1).sum();
    eprintln!(
        "{} decisions, {accepted_before_crash} accepted before the crash, {duplicates} duplicates, {} requests, faults {:?}",
        all.len(),
        log.requests,
        log.faults
    );
    let late = log.faults.get("late").copied().unwrap_or(0);
    assert!(
        u64::from(duplicates) < late + accepted_before_crash as u64 / 2,
        "{duplicates} duplicates ({late} from late answers): the second run started over instead of going on"
    );
    assert!(
        log.faults.get("unavailable").copied().unwrap_or(0) > 10,
        "{:?}",
        log.faults
    );
    assert!(late > 3, "{:?}", log.faults);
    // The refusal is final: sent once per run at most, not retried.
    assert!(
        log.refused.len() <= 2 && !log.refused.is_empty(),
        "{:?}",
        log.refused
    );
    // The SETs say what the decisions say.
    for d in &all {
        let id = d["decision_id"].as_str().unwrap();
        if id == refused {
            continue;
        }
        let claims = &log.claims[id];
        assert_eq!(claims["sub_id"]["format"], "complex");
        assert_eq!(claims["sub_id"]["session"]["id"], d["session"]["key"]);
        let event = &claims["events"]
            ["https://schemas.openid.net/secevent/caep/event-type/session-revoked"];
        assert_eq!(event["event_timestamp"], d["caep"]["iat"], "{id}");
    }
    drop(log);

    // The records of the second run name each decision it settled; the refused one says why.
    let records = records(&setup);
    let settled: BTreeSet<&str> = records
        .iter()
        .filter(|r| r["outcome"] == "delivered")
        .map(|r| r["decision_id"].as_str().unwrap())
        .collect();
    assert_eq!(settled.len(), expected.len(), "every delivery recorded");
    let refusal = records
        .iter()
        .find(|r| r["outcome"] == "refused")
        .expect("the refusal recorded");
    assert_eq!(refusal["decision_id"], refused.as_str());
    assert_eq!(refusal["reason"], "HTTP 400: jwtAud: not for this audience");
    assert!(records
        .iter()
        .any(|r| r["outcome"] == "delivered" && r["attempts"].as_u64() > Some(1)));
    // The token never reaches a log line or a record.
    let stderr = stderr_text(&setup);
    assert!(
        !stderr.contains(TOKEN)
            && !std::fs::read_to_string(setup.dir.join("records.ndjson"))
                .unwrap()
                .contains(TOKEN)
    );
    assert!(
        stderr.contains("actuate_resumed"),
        "the second run went on from the saved position:\n{stderr}"
    );
}

/// `count` kill decisions of one rule a second apart, one principal each; `who(i)` names them.
fn burst(rule: &str, count: usize, who: impl Fn(usize) -> String) -> Vec<Value> {
    (0..count)
        .map(|i| {
            serde_json::json!({
                "decision_id": format!("{:032x}", 0xb0_0000 + i),
                "time": format!("2024-10-12T02:{:02}:{:02}.000Z", 10 + i / 60, i % 60),
                "mode": "enforce",
                "action": "revoke_session",
                "severity": "high",
                "rule": { "id": rule, "version": "1", "title": "A rule gone wrong" },
                "session": { "key": format!("okta:session-{i}"), "kind": "sign_in", "derived": false,
                             "started": "2024-10-12T02:00:00.000Z" },
                "principal": { "type": "User", "name": who(i) },
                "evidence": { "reason": "matched" },
            })
        })
        .collect()
}

#[test]
fn a_rule_that_suddenly_matches_everyone_is_switched_to_dry_run_and_never_kill_holds() {
    let listen = free_port();
    let receiver = Receiver::start(Plan {
        fault: Box::new(|_| Fault::None),
        refuse: HashSet::new(),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_url: format!("http://127.0.0.1:{listen}/jwks.json"),
        authorization: Some(format!("Bearer {TOKEN}")),
    });
    let mut setup = setup(
        "guard",
        &receiver.endpoint(),
        "guard:\n  never_kill: [breakglass@corp.example]\n  per_rule: { per_minute: 5 }\n  cool_off: 30m\n",
    );
    let config = std::fs::read_to_string(&setup.config).unwrap().replace(
        &format!("127.0.0.1:{}", setup.listen),
        &format!("127.0.0.1:{listen}"),
    );
    std::fs::write(&setup.config, config).unwrap();
    setup.listen = listen;
    // Forty sessions in forty seconds; the second principal is the break-glass account.
    let mut decisions = burst("sg.bad_rule", 40, |i| {
        if i == 1 {
            "breakglass@corp.example".into()
        } else {
            format!("user{i}@corp.example")
        }
    });
    // Another rule, in the same minute, is not affected by the trip.
    decisions.extend(
        burst("sg.good_rule", 2, |i| format!("other{i}@corp.example"))
            .into_iter()
            .map(|mut d| {
                let id = d["decision_id"].as_str().unwrap().replace("b0", "c0");
                d["decision_id"] = Value::String(id);
                d
            }),
    );
    let input = setup.dir.join("decisions.ndjson");
    write_lines(&input, &decisions);
    let code = wait(&mut actuate(&setup, &input), Duration::from_secs(60));
    assert_eq!(code, 0, "{}", stderr_text(&setup));

    // The break-glass account (2nd) is held back; the 1st, 3rd, 4th, 5th and 6th kills make
    // five within a minute; the 7th trips the rule; the good rule's two go through.
    let log = receiver.log();
    let got: BTreeSet<String> = log.accepted.keys().cloned().collect();
    let want: BTreeSet<String> = [0, 2, 3, 4, 5]
        .iter()
        .map(|i| decisions[*i]["decision_id"].as_str().unwrap().to_owned())
        .chain(
            decisions[40..]
                .iter()
                .map(|d| d["decision_id"].as_str().unwrap().to_owned()),
        )
        .collect();
    assert_eq!(got, want);
    drop(log);
    let records = records(&setup);
    let alerts: Vec<&Value> = records.iter().filter(|r| r["outcome"] == "alert").collect();
    assert_eq!(alerts.len(), 1, "one alert for one trip: {alerts:?}");
    assert_eq!(alerts[0]["rule"], "sg.bad_rule");
    let held: Vec<&Value> = records
        .iter()
        .filter(|r| r["outcome"] == "held_back")
        .collect();
    assert_eq!(held.len(), 40 - 5);
    assert!(held.iter().any(|r| r["reason"]
        .as_str()
        .unwrap()
        .starts_with("never-kill list: breakglass@corp.example")));
    assert!(
        held.iter()
            .filter(|r| r["reason"].as_str().unwrap().contains("dry_run"))
            .count()
            == 34
    );
    assert!(stderr_text(&setup).contains("guard_tripped"));
}

#[test]
fn a_config_with_problems_lists_them_all_and_prints_no_secret() {
    let dir = scratch("config");
    std::fs::write(dir.join("rsa.pem"), RS256_NOT_A_KEY).unwrap();
    let config = dir.join("actuate.yml");
    std::fs::write(
        &config,
        "issuer: https://sg.test\n\
         signing_key: { alg: ES256, kid: k, key: { file: rsa.pem } }\n\
         listen: localhost\n\
         receivers:\n\
         - name: a\n  endpoint: ftp://idp.test/events\n  subject: iss_sub\n  take: { actions: [revoke_everything] }\n\
         - name: a\n  endpoint: http://idp.test/events\n  retry: { initial: soon }\n\
         guard: { per_rule: { per_minute: 0 } }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args(["actuate", "--config"])
        .arg(&config)
        .args(["--decisions", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "signing_key: the key is not a ES256 private key",
        "listen:",
        "receivers[0] (a): endpoint \"ftp://idp.test/events\"",
        "receivers[0] (a): subject iss_sub needs subject_issuer",
        "receivers[0] (a): take.actions: \"revoke_everything\"",
        "receivers[1] (a): the name is used twice",
        "receivers[1] (a): retry.initial: \"soon\"",
        "guard: per_rule: a limit of 0",
    ] {
        assert!(
            stderr.contains(problem),
            "missing {problem:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("8 problem(s)"), "{stderr}");
    assert!(
        !stderr.contains("MIIB"),
        "the key file's content is printed:\n{stderr}"
    );
}

/// Looks like a PEM key but is none: its text must not reach an error message.
const RS256_NOT_A_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIBVgIBADANBgkqhkiG9w0BAQEFAASCAUAwggE8AgEAAkEA\n-----END PRIVATE KEY-----\n";

/// Ends `child` with SIGTERM, as a service manager would, and returns its exit status.
fn terminate(child: &mut Child) -> i32 {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait(child, Duration::from_secs(30))
}

#[test]
fn the_actions_topic_is_read_and_its_offsets_committed_only_once_settled() {
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("sg.actions", 2, 1).unwrap();
    cluster.create_topic("sg.actuations", 1, 1).unwrap();
    let first: Vec<Value> = decisions(1).into_iter().take(30).collect();
    let payloads = |ds: &[Value]| {
        ds.iter()
            .map(|d| d.to_string().into_bytes())
            .collect::<Vec<_>>()
    };
    sessionguard::kafka::demo::produce(&brokers, "sg.actions", &payloads(&first), None).unwrap();

    let listen = free_port();
    let receiver = Receiver::start(Plan {
        // A receiver that is often down: offsets must wait for the retries.
        fault: Box::new(|n| {
            if n % 3 == 0 {
                Fault::Unavailable
            } else {
                Fault::None
            }
        }),
        refuse: HashSet::new(),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_url: format!("http://127.0.0.1:{listen}/jwks.json"),
        authorization: Some(format!("Bearer {TOKEN}")),
    });
    // The mock cluster lets a restarted member rejoin after the session timeout: a short one.
    let kafka = format!(
        "kafka:\n  brokers: '{brokers}'\n  topic: sg.actions\n  group: sg-actuate-test\n  \
         properties: {{ session.timeout.ms: '6000', heartbeat.interval.ms: '500' }}\n  \
         records_topic: sg.actuations\n"
    );
    let mut setup = setup("topic", &receiver.endpoint(), &kafka);
    let config = std::fs::read_to_string(&setup.config).unwrap().replace(
        &format!("127.0.0.1:{}", setup.listen),
        &format!("127.0.0.1:{listen}"),
    );
    std::fs::write(&setup.config, config).unwrap();
    setup.listen = listen;
    let spawn = |setup: &Setup| {
        Command::new(env!("CARGO_BIN_EXE_sessionguard"))
            .args(["actuate", "--config"])
            .arg(&setup.config)
            .env("SG_TEST_RECEIVER_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(
                    setup
                        .dir
                        .join(format!("stderr-{}", RUNS.fetch_add(1, Ordering::Relaxed))),
                )
                .unwrap(),
            )
            .spawn()
            .unwrap()
    };
    let wait_for = |count: usize| {
        let start = Instant::now();
        while receiver.log().accepted.len() < count {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{} of {count} delivered:\n{}",
                receiver.log().accepted.len(),
                stderr_text(&setup)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    let t0 = Instant::now();
    let mut run = spawn(&setup);
    wait_for(first.len());
    eprintln!("first run delivered all in {:?}", t0.elapsed());
    // Give the last settled offsets a moment to be stored before the stop (they are stored
    // as each settles; the stop commits them).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(terminate(&mut run), 0, "{}", stderr_text(&setup));

    // One more decision, then a second run of the same group: it starts after the committed
    // offsets, so only the new decision comes (in each partition, after anything resent).
    let last: Vec<Value> = decisions(2)
        .into_iter()
        .skip(first.len() + 60)
        .take(1)
        .collect();
    sessionguard::kafka::demo::produce(&brokers, "sg.actions", &payloads(&last), None).unwrap();
    let t1 = Instant::now();
    let mut run = spawn(&setup);
    wait_for(first.len() + 1);
    eprintln!("second run delivered the new one in {:?}", t1.elapsed());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(terminate(&mut run), 0, "{}", stderr_text(&setup));

    let log = receiver.log();
    assert!(log.bad.is_empty(), "{:?}", log.bad);
    assert!(
        log.faults.get("unavailable").copied().unwrap_or(0) >= 10,
        "{:?}",
        log.faults
    );
    let twice: Vec<_> = log.accepted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent again after a clean stop: {twice:?}");
    let want: BTreeSet<String> = first
        .iter()
        .chain(&last)
        .map(|d| d["decision_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(log.accepted.keys().cloned().collect::<BTreeSet<_>>(), want);
    drop(log);
    // The actuation records are on the audit topic too, keyed by decision id.
    let audit = sessionguard::kafka::demo::read_topic(&brokers, "sg.actuations").unwrap();
    let delivered: BTreeSet<String> = audit
        .iter()
        .map(|f| serde_json::from_slice::<Value>(&f.payload).unwrap())
        .filter(|r| r["outcome"] == "delivered")
        .map(|r| r["decision_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered, want);
}

/// One request as a vendor API received it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// A stand-in for Okta's and Microsoft Graph's APIs: records every request and answers as the
/// vendor documents a success (Okta 204, Graph 200 `{"value": true}`), failing the first
/// request with a 503 to show the vendor path retries too.
fn vendor_api() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
    use http_body_util::{BodyExt, Full};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Seen>::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let log = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let log = log.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let log = log.clone();
                        async move {
                            let header = |n: &str| req.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
                            let mut seen = Seen {
                                method: req.method().to_string(),
                                path: req.uri().to_string(),
                                headers: req
                                    .headers()
                                    .iter()
                                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                                    .collect(),
                                authorization: header("authorization"),
                                content_type: header("content-type"),
                                body: Vec::new(),
                            };
                            seen.body = req.into_body().collect().await.unwrap().to_bytes().to_vec();
                            let first = {
                                let mut log = log.lock().unwrap();
                                log.push(seen.clone());
                                log.len() == 1
                            };
                            let (status, body) = if first {
                                (503, "")
                            } else if seen.path.contains("/members/") {
                                (404, r#"{"message":"Not Found"}"#)
                            } else if seen.path.starts_with("/api/v1/") {
                                (204, "")
                            } else if seen.path == "/" {
                                (200, "<PutRolePolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ResponseMetadata><RequestId>7a62c49f</RequestId></ResponseMetadata></PutRolePolicyResponse>")
                            } else {
                                (200, r#"{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean","value":true}"#)
                            };
                            let mut response = hyper::Response::new(Full::new(bytes::Bytes::from(body)));
                            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    (format!("http://{}", rx.recv().unwrap()), seen)
}

fn golden_first(path: &str) -> Value {
    serde_json::from_str(
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn okta_and_graph_get_their_documented_revocation_calls_and_dry_run_sends_nothing() {
    let (base, seen) = vendor_api();
    let okta = golden_first("fixtures/scenarios/mfa-failures/attack-okta.jsonl.decisions.golden");
    let entra = golden_first("fixtures/scenarios/mfa-failures/attack-entra.jsonl.decisions.golden");
    let dir = scratch("vendor");
    let key = ES256.generate_key_pair().unwrap().to_pem_private_key();
    std::fs::write(dir.join("es256.pem"), key).unwrap();
    let config = dir.join("actuate.yml");
    let receivers = |dry_run: bool| {
        format!(
            "issuer: {ISSUER}\n\
             signing_key: {{ alg: ES256, kid: k, key: {{ file: es256.pem }} }}\n\
             records: records-{dry_run}.ndjson\n\
             receivers:\n\
             - name: okta\n  kind: okta\n  endpoint: {base}\n  dry_run: {dry_run}\n  \
               authorization: {{ env: SG_TEST_OKTA_TOKEN }}\n  retry: {{ initial: 10ms }}\n\
             - name: entra\n  kind: graph\n  endpoint: {base}/\n  dry_run: {dry_run}\n  \
               authorization: {{ env: SG_TEST_GRAPH_TOKEN }}\n  retry: {{ initial: 10ms }}\n"
        )
    };
    let input = dir.join("decisions.ndjson");
    write_lines(&input, &[okta.clone(), entra.clone()]);
    let run = |dry_run: bool| {
        std::fs::write(&config, receivers(dry_run)).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
            .args(["actuate", "--config"])
            .arg(&config)
            .arg("--decisions")
            .arg(&input)
            .env("SG_TEST_OKTA_TOKEN", "00okta-api-token")
            .env("SG_TEST_GRAPH_TOKEN", "eyJgraph.token")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // Dry run first: each call is built and logged, none is sent.
    let stderr = run(true);
    assert!(
        seen.lock().unwrap().is_empty(),
        "dry_run sent {:?}",
        seen.lock().unwrap()
    );
    assert!(
        stderr.contains("DELETE http://")
            && stderr.contains("/api/v1/users/00ugr9bfDTn78g1YzqDf/sessions?oauthTokens=true"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/v1.0/users/ea054251-d159-4725-ba0e-522ffa78fe0d/revokeSignInSessions"),
        "{stderr}"
    );
    let dry: Vec<Value> = std::fs::read_to_string(dir.join("records-true.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        dry.iter().filter(|r| r["outcome"] == "dry_run").count(),
        2,
        "{dry:?}"
    );

    // Enforced: each vendor gets exactly its call (after one 503, retried).
    run(false);
    let mut calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    calls.sort_by(|a, b| a.path.cmp(&b.path));
    calls.dedup_by(|a, b| a.path == b.path && a.method == b.method);
    assert_eq!(
        calls.len(),
        2,
        "the 503 was retried with the same call: {calls:?}"
    );
    let okta_call = &calls[0];
    assert_eq!(okta_call.method, "DELETE");
    assert_eq!(
        okta_call.path,
        "/api/v1/users/00ugr9bfDTn78g1YzqDf/sessions?oauthTokens=true"
    );
    assert_eq!(
        okta_call.authorization.as_deref(),
        Some("SSWS 00okta-api-token")
    );
    assert!(okta_call.body.is_empty());
    let graph_call = &calls[1];
    assert_eq!(graph_call.method, "POST");
    assert_eq!(
        graph_call.path,
        "/v1.0/users/ea054251-d159-4725-ba0e-522ffa78fe0d/revokeSignInSessions"
    );
    assert_eq!(
        graph_call.authorization.as_deref(),
        Some("Bearer eyJgraph.token")
    );
    assert!(graph_call.body.is_empty() && graph_call.content_type.is_none());
    let records: Vec<Value> = std::fs::read_to_string(dir.join("records-false.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let delivered: BTreeSet<(&str, u64)> = records
        .iter()
        .filter(|r| r["outcome"] == "delivered")
        .map(|r| {
            (
                r["receiver"].as_str().unwrap(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(delivered, BTreeSet::from([("entra", 200), ("okta", 204)]));
}

/// The golden decision of `path` whose session key starts with `prefix`.
fn golden_with(path: &str, prefix: &str) -> Value {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|d| d["session"]["key"].as_str().unwrap().starts_with(prefix))
        .unwrap()
}

#[test]
fn github_and_kubernetes_get_their_documented_calls_and_dry_run_sends_nothing() {
    let (base, seen) = vendor_api();
    let service_account = golden_with(
        "fixtures/scenarios/token-reuse/attack-k8s.jsonl.decisions.golden",
        "k8s:jti:",
    );
    let certificate = golden_with(
        "fixtures/scenarios/scope-escalation-k8s/attack.jsonl.decisions.golden",
        "k8s:x509:",
    );
    let hashed = golden_with(
        "fixtures/scenarios/bulk-export/attack-github.jsonl.decisions.golden",
        "github:token:",
    );
    let mut by_id = hashed.clone();
    by_id["decision_id"] = "0badc0de0badc0de0badc0de0badc0de".into();
    by_id["session"]["key"] = "github:token-id:131415926".into();
    let dir = scratch("github-k8s");
    let key = ES256.generate_key_pair().unwrap().to_pem_private_key();
    std::fs::write(dir.join("es256.pem"), key).unwrap();
    let config = dir.join("actuate.yml");
    let input = dir.join("decisions.ndjson");
    write_lines(
        &input,
        &[
            service_account.clone(),
            certificate.clone(),
            hashed.clone(),
            by_id.clone(),
        ],
    );
    let run = |dry_run: bool| {
        std::fs::write(
            &config,
            format!(
                "issuer: {ISSUER}\n\
                 signing_key: {{ alg: ES256, kid: k, key: {{ file: es256.pem }} }}\n\
                 records: records-{dry_run}.ndjson\n\
                 receivers:\n\
                 - name: gh-token\n  kind: github\n  endpoint: {base}\n  dry_run: {dry_run}\n  \
                   github: {{ org: northwind-labs }}\n  \
                   authorization: {{ env: SG_TEST_GITHUB_TOKEN }}\n  retry: {{ initial: 10ms }}\n\
                 - name: gh-members\n  kind: github\n  endpoint: {base}\n  dry_run: {dry_run}\n  \
                   github: {{ org: northwind-labs, action: membership }}\n  \
                   authorization: {{ env: SG_TEST_GITHUB_TOKEN }}\n  retry: {{ initial: 10ms }}\n\
                 - name: cluster\n  kind: kubernetes\n  endpoint: {base}\n  dry_run: {dry_run}\n  \
                   authorization: {{ env: SG_TEST_K8S_TOKEN }}\n  retry: {{ initial: 10ms }}\n"
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
            .args(["actuate", "--config"])
            .arg(&config)
            .arg("--decisions")
            .arg(&input)
            .env("SG_TEST_GITHUB_TOKEN", "ghs_test-app-token")
            .env("SG_TEST_K8S_TOKEN", "eyJk8s.api-server.token")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            !stderr.contains("ghs_test") && !stderr.contains("eyJk8s"),
            "{stderr}"
        );
        let records: Vec<Value> =
            std::fs::read_to_string(dir.join(format!("records-{dry_run}.ndjson")))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        (stderr, records)
    };
    let outcome = |records: &[Value], receiver: &str, id: &Value| -> (String, String) {
        let r = records
            .iter()
            .find(|r| r["receiver"] == receiver && r["decision_id"] == id["decision_id"])
            .unwrap_or_else(|| panic!("no record for {receiver} {}", id["decision_id"]));
        (
            r["outcome"].as_str().unwrap().to_owned(),
            r["reason"].as_str().unwrap_or("").to_owned(),
        )
    };

    // Dry run: the calls are built and logged, nothing is sent.
    let (stderr, dry) = run(true);
    assert!(seen.lock().unwrap().is_empty(), "dry_run sent a request");
    assert!(
        stderr.contains("DELETE http://")
            && stderr.contains("/orgs/northwind-labs/credential-authorizations/131415926")
            && stderr.contains("/api/v1/namespaces/payments/serviceaccounts/api"),
        "{stderr}"
    );
    assert_eq!(outcome(&dry, "cluster", &service_account).0, "dry_run");
    assert_eq!(outcome(&dry, "gh-members", &hashed).0, "dry_run");
    // What no call can do is refused in a dry run too, with the reason.
    let (refused, why) = outcome(&dry, "gh-token", &hashed);
    assert_eq!(refused, "refused");
    assert!(why.contains("hash"), "{why}");

    // Enforced.
    let (_, records) = run(false);
    let calls = seen.lock().unwrap().clone();
    let find = |path: &str| -> Seen {
        calls
            .iter()
            .rev()
            .find(|c| c.path == path)
            .unwrap_or_else(|| panic!("no call to {path}: {calls:?}"))
            .clone()
    };
    let header = |c: &Seen, name: &str| -> Option<String> {
        c.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let sso = find("/orgs/northwind-labs/credential-authorizations/131415926");
    let member = find("/orgs/northwind-labs/members/ext-contractor-ops");
    for c in [&sso, &member] {
        assert_eq!(c.method, "DELETE");
        assert_eq!(
            c.authorization.as_deref(),
            Some("Bearer ghs_test-app-token")
        );
        assert_eq!(
            header(c, "accept").as_deref(),
            Some("application/vnd.github+json")
        );
        assert_eq!(
            header(c, "x-github-api-version").as_deref(),
            Some("2022-11-28")
        );
        assert!(
            header(c, "user-agent").is_some(),
            "GitHub refuses calls without one"
        );
        assert!(c.body.is_empty());
    }
    let sa = find("/api/v1/namespaces/payments/serviceaccounts/api");
    assert_eq!(sa.method, "DELETE");
    assert_eq!(
        sa.authorization.as_deref(),
        Some("Bearer eyJk8s.api-server.token")
    );
    assert_eq!(sa.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        serde_json::from_slice::<Value>(&sa.body).unwrap(),
        serde_json::json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
    );
    assert_eq!(header(&sa, "accept").as_deref(), Some("application/json"));
    // Nothing else was called: no Kubernetes call for the certificate, no GitHub call for
    // the hashed token by the token actuator.
    let paths: BTreeSet<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        BTreeSet::from([
            "/orgs/northwind-labs/credential-authorizations/131415926",
            "/orgs/northwind-labs/members/ext-contractor-ops",
            "/api/v1/namespaces/payments/serviceaccounts/api",
        ])
    );

    assert_eq!(outcome(&records, "gh-token", &by_id).0, "delivered");
    assert_eq!(outcome(&records, "gh-token", &hashed).0, "refused");
    assert_eq!(
        outcome(&records, "cluster", &service_account).0,
        "delivered"
    );
    let (refused, why) = outcome(&records, "cluster", &certificate);
    assert_eq!(refused, "refused");
    assert!(why.contains("client certificate"), "{why}");
    // GitHub's 404 is a refusal with GitHub's words: it also means "this token may not see
    // the organization", and a kill that did not land is not recorded as done.
    for d in [&hashed, &by_id] {
        let (refused, why) = outcome(&records, "gh-members", d);
        assert_eq!(refused, "refused");
        assert_eq!(why, "HTTP 404: Not Found");
    }
}

/// A local API that records every request and answers with `answer(request, n)` (n counts
/// the requests to the same path, from 1).
fn recording_api(
    answer: impl Fn(&Seen, usize) -> (u16, String) + Send + Sync + 'static,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
    use http_body_util::{BodyExt, Full};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Seen>::new()));
    let answer = std::sync::Arc::new(answer);
    let (tx, rx) = std::sync::mpsc::channel();
    let log = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (log, answer) = (log.clone(), answer.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (log, answer) = (log.clone(), answer.clone());
                            async move {
                                let header = |n: &str| {
                                    req.headers().get(n).map(|v| v.to_str().unwrap().to_owned())
                                };
                                let mut seen = Seen {
                                    method: req.method().to_string(),
                                    path: req.uri().to_string(),
                                    headers: Vec::new(),
                                    authorization: header("authorization"),
                                    content_type: header("content-type"),
                                    body: Vec::new(),
                                };
                                seen.body =
                                    req.into_body().collect().await.unwrap().to_bytes().to_vec();
                                let n = {
                                    let mut log = log.lock().unwrap();
                                    log.push(seen.clone());
                                    log.iter().filter(|s| s.path == seen.path).count()
                                };
                                let (status, body) = answer(&seen, n);
                                let mut response =
                                    hyper::Response::new(Full::new(bytes::Bytes::from(body)));
                                *response.status_mut() =
                                    hyper::StatusCode::from_u16(status).unwrap();
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    (format!("http://{}", rx.recv().unwrap()), seen)
}

#[test]
fn graph_tokens_come_from_the_tenants_token_endpoint_and_are_cached_until_expiry() {
    const TOKEN_PATH: &str = "/tenant-1/oauth2/v2.0/token";
    const BAD_PATH: &str = "/tenant-2/oauth2/v2.0/token";
    const SECRET: &str = "graph-client-secret~Zq8";
    let (base, seen) = recording_api(|req, n| {
        if req.path == TOKEN_PATH {
            // Tokens live two seconds: the second is fetched once the first is nearly spent.
            (
                200,
                format!(
                    r#"{{"token_type":"Bearer","expires_in":2,"ext_expires_in":2,"access_token":"tok-{n}"}}"#
                ),
            )
        } else if req.path == BAD_PATH {
            (
                401,
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 0d7c"}"#.into(),
            )
        } else {
            (200, r#"{"value":true}"#.into())
        }
    });
    let entra = golden_first("fixtures/scenarios/mfa-failures/attack-entra.jsonl.decisions.golden");
    let copy = |n: u32| {
        let mut d = entra.clone();
        d["decision_id"] = format!("{:032x}", 0xe0 + n).into();
        d
    };
    let dir = scratch("graph-oauth");
    let key = ES256.generate_key_pair().unwrap().to_pem_private_key();
    std::fs::write(dir.join("es256.pem"), key).unwrap();
    let config = dir.join("actuate.yml");
    std::fs::write(
        &config,
        format!(
            "issuer: {ISSUER}\n\
             signing_key: {{ alg: ES256, kid: k, key: {{ file: es256.pem }} }}\n\
             records: records.ndjson\n\
             receivers:\n\
             - name: entra\n  kind: graph\n  endpoint: {base}\n  retry: {{ initial: 10ms }}\n  \
               client_credentials:\n    token_endpoint: {base}{TOKEN_PATH}\n    \
               client_id: app-1\n    client_secret: {{ env: SG_TEST_GRAPH_SECRET }}\n\
             - name: entra-misconfigured\n  kind: graph\n  endpoint: {base}\n  \
               client_credentials:\n    token_endpoint: {base}{BAD_PATH}\n    \
               client_id: app-2\n    client_secret: {{ env: SG_TEST_GRAPH_SECRET }}\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args(["actuate", "--config"])
        .arg(&config)
        .args(["--decisions", "-"])
        .env("SG_TEST_GRAPH_SECRET", SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let records = || -> Vec<Value> {
        std::fs::read_to_string(dir.join("records.ndjson"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let delivered = || {
        records()
            .iter()
            .filter(|r| r["outcome"] == "delivered")
            .count()
    };
    let wait_for = |n: usize| {
        let start = Instant::now();
        while delivered() < n {
            assert!(start.elapsed() < Duration::from_secs(20), "{:?}", records());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    use std::io::Write as _;
    writeln!(stdin, "{}\n{}", copy(1), copy(2)).unwrap();
    stdin.flush().unwrap();
    wait_for(2);
    std::thread::sleep(Duration::from_millis(2100));
    writeln!(stdin, "{}", copy(3)).unwrap();
    stdin.flush().unwrap();
    wait_for(3);
    drop(stdin);
    assert_eq!(wait(&mut child, Duration::from_secs(20)), 0);

    let calls = seen.lock().unwrap().clone();
    let tokens: Vec<&Seen> = calls.iter().filter(|c| c.path == TOKEN_PATH).collect();
    assert_eq!(
        tokens.len(),
        2,
        "one token for two calls, a new one once it expired"
    );
    for t in &tokens {
        assert_eq!(t.method, "POST");
        assert_eq!(
            t.content_type.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(t.authorization, None);
        let mut form: Vec<&str> = std::str::from_utf8(&t.body).unwrap().split('&').collect();
        form.sort();
        assert_eq!(
            form,
            [
                "client_id=app-1",
                &format!("client_secret={SECRET}"),
                "grant_type=client_credentials",
                "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
            ]
        );
    }
    let graph: Vec<&Seen> = calls
        .iter()
        .filter(|c| c.path.ends_with("/revokeSignInSessions"))
        .collect();
    assert_eq!(graph.len(), 3, "{calls:?}");
    let used: Vec<&str> = graph
        .iter()
        .map(|c| c.authorization.as_deref().unwrap())
        .collect();
    assert_eq!(used, ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]);
    assert!(graph.iter().all(|c| c.method == "POST"));

    // A token endpoint that refuses the client: each decision refused at that receiver, with
    // Entra's words, and no Graph call made for it.
    let records = records();
    let refusals: Vec<&Value> = records
        .iter()
        .filter(|r| r["receiver"] == "entra-misconfigured")
        .collect();
    assert_eq!(refusals.len(), 3);
    for r in refusals {
        assert_eq!(r["outcome"], "refused");
        assert_eq!(
            r["reason"],
            "the token endpoint answered HTTP 401: invalid_client: AADSTS7000215: Invalid client secret provided."
        );
    }
    let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap();
    assert!(
        !stderr.contains(SECRET) && !stderr.contains("tok-"),
        "{stderr}"
    );
}

#[test]
fn aws_role_sessions_and_user_keys_get_sigv4_signed_iam_calls() {
    use sessionguard::actuate::aws::AwsSigner;
    use sessionguard::actuate::secret::Secret;

    let (base, seen) = vendor_api();
    let all = decisions(1);
    let pick = |prefix: &str| {
        all.iter()
            .find(|d| d["session"]["key"].as_str().unwrap().contains(prefix))
            .unwrap()
            .clone()
    };
    let role = pick(":sts:ASIA");
    let role_name = role["principal"]["id"]
        .as_str()
        .unwrap()
        .split('/')
        .nth(1)
        .unwrap()
        .to_owned();
    let user_key = pick(":iam-key:AKIAYVP2UNNS3AS7K2SP");
    let okta = golden_first("fixtures/scenarios/mfa-failures/attack-okta.jsonl.decisions.golden");
    let dir = scratch("aws");
    let key = ES256.generate_key_pair().unwrap().to_pem_private_key();
    std::fs::write(dir.join("es256.pem"), key).unwrap();
    std::fs::write(
        dir.join("secret"),
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n",
    )
    .unwrap();
    let config = dir.join("actuate.yml");
    std::fs::write(
        &config,
        format!(
            "issuer: {ISSUER}\n\
             signing_key: {{ alg: ES256, kid: k, key: {{ file: es256.pem }} }}\n\
             records: records.ndjson\n\
             receivers:\n\
             - name: aws\n  kind: aws\n  endpoint: {base}\n  retry: {{ initial: 10ms }}\n  \
               aws: {{ access_key_id: {{ env: SG_TEST_AWS_KEY }}, secret_access_key: {{ file: secret }} }}\n"
        ),
    )
    .unwrap();
    let input = dir.join("decisions.ndjson");
    write_lines(&input, &[role.clone(), okta, user_key.clone()]);
    let out = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args(["actuate", "--config"])
        .arg(&config)
        .arg("--decisions")
        .arg(&input)
        .env("SG_TEST_AWS_KEY", "AKIDEXAMPLE")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wJalrXUtnFEMI"));

    // The first answer was a 503: three calls for two decisions (the Okta one is not AWS's).
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    let signer = AwsSigner {
        access_key_id: Secret::from_bytes(b"AKIDEXAMPLE".to_vec(), "test"),
        secret_access_key: Secret::from_bytes(
            b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec(),
            "test",
        ),
        session_token: None,
        region: "us-east-1".into(),
        service: "iam".into(),
    };
    let mut bodies = BTreeSet::new();
    for call in &calls {
        assert_eq!((call.method.as_str(), call.path.as_str()), ("POST", "/"));
        assert_eq!(
            call.content_type.as_deref(),
            Some("application/x-www-form-urlencoded; charset=utf-8")
        );
        let header = |name: &str| {
            call.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        let date = header("x-amz-date");
        assert_eq!(date.len(), 16, "{date}");
        // The signature is the one IAM would compute for these bytes (the algorithm is
        // checked against AWS's worked examples in src/actuate/aws.rs).
        let expected = signer
            .sign(
                "POST",
                "/",
                "",
                &[
                    ("host", header("host")),
                    ("content-type", header("content-type")),
                ],
                &call.body,
                date,
            )
            .unwrap();
        let auth = &expected
            .iter()
            .find(|(k, _)| *k == "authorization")
            .unwrap()
            .1;
        assert_eq!(call.authorization.as_deref(), Some(auth.as_str()));
        assert!(auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=", &date[..8])));
        bodies.insert(String::from_utf8(call.body.clone()).unwrap());
    }
    assert_eq!(bodies.len(), 2, "the 503 was retried with the same request");
    let put = bodies
        .iter()
        .find(|b| b.starts_with("Action=PutRolePolicy"))
        .expect("PutRolePolicy");
    assert!(put.contains(&format!("RoleName={role_name}&")), "{put}");
    let when = format!("{}Z", &role["time"].as_str().unwrap()[..19]).replace(':', "%3A");
    assert!(
        put.contains(&format!("aws%3ATokenIssueTime%22%3A%22{when}%22")),
        "{put}"
    );
    assert!(bodies.contains(&format!(
        "AccessKeyId=AKIAYVP2UNNS3AS7K2SP&Action=UpdateAccessKey&Status=Inactive&UserName={}&Version=2010-05-08",
        user_key["principal"]["name"].as_str().unwrap()
    )));
}

/// One IAM query call to `base`, signed as actuate signs them; the response body.
fn iam(base: &str, params: &[(&str, &str)]) -> (u16, String) {
    use http_body_util::{BodyExt, Full};
    use sessionguard::actuate::aws::{amz_date, encode, AwsSigner};
    use sessionguard::actuate::secret::Secret;
    let signer = AwsSigner {
        access_key_id: Secret::from_bytes(b"AKIDEXAMPLE".to_vec(), "test"),
        secret_access_key: Secret::from_bytes(b"testing-secret".to_vec(), "test"),
        session_token: None,
        region: "us-east-1".into(),
        service: "iam".into(),
    };
    let mut pairs: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    pairs.push("Version=2010-05-08".into());
    pairs.sort();
    let body = pairs.join("&");
    let uri: hyper::Uri = format!("{base}/").parse().unwrap();
    let host = uri.authority().unwrap().to_string();
    let form = "application/x-www-form-urlencoded; charset=utf-8";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let headers = signer
        .sign(
            "POST",
            "/",
            "",
            &[("host", &host), ("content-type", form)],
            body.as_bytes(),
            &amz_date(now),
        )
        .unwrap();
    let mut request = hyper::Request::post(uri)
        .header("host", &host)
        .header("content-type", form);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let request = request.body(Full::new(bytes::Bytes::from(body))).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<bytes::Bytes>>();
        let response = client
            .request(request)
            .await
            .expect("the AWS emulator answers");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    })
}

/// Against moto's IAM (scripts/test.sh installs it from PyPI into a venv and starts it, then
/// runs this with `--ignored`): the role really gets the deny policy, the key really becomes
/// inactive.
#[test]
#[ignore = "needs the AWS emulator: SESSIONGUARD_TEST_MOTO (scripts/test.sh starts moto_server)"]
fn aws_iam_really_changes_on_the_emulator() {
    let base = std::env::var("SESSIONGUARD_TEST_MOTO")
        .expect("SESSIONGUARD_TEST_MOTO: the AWS emulator's URL (scripts/test.sh starts one)");
    let stamp = std::process::id();
    let role_name = format!("data-admin-{stamp}");
    let user_name = format!("svc-reporting-{stamp}");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let (status, body) = iam(
        &base,
        &[
            ("Action", "CreateRole"),
            ("RoleName", &role_name),
            ("AssumeRolePolicyDocument", trust),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = iam(&base, &[("Action", "CreateUser"), ("UserName", &user_name)]);
    assert_eq!(status, 200, "{body}");
    let (status, body) = iam(
        &base,
        &[("Action", "CreateAccessKey"), ("UserName", &user_name)],
    );
    assert_eq!(status, 200, "{body}");
    let key_id = body
        .split("<AccessKeyId>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();

    let all = decisions(1);
    let mut role = all
        .iter()
        .find(|d| d["session"]["key"].as_str().unwrap().contains(":sts:ASIA"))
        .unwrap()
        .clone();
    role["principal"]["id"] = Value::String(format!(
        "arn:aws:sts::123456789012:assumed-role/{role_name}/someone"
    ));
    let mut user = all
        .iter()
        .find(|d| {
            d["session"]["key"]
                .as_str()
                .unwrap()
                .contains(":iam-key:AKIA")
        })
        .unwrap()
        .clone();
    user["session"]["key"] = Value::String(format!("aws:123456789012:iam-key:{key_id}"));
    user["principal"]["name"] = Value::String(user_name.clone());

    let dir = scratch("moto");
    let key = ES256.generate_key_pair().unwrap().to_pem_private_key();
    std::fs::write(dir.join("es256.pem"), key).unwrap();
    let config = dir.join("actuate.yml");
    std::fs::write(
        &config,
        format!(
            "issuer: {ISSUER}\n\
             signing_key: {{ alg: ES256, kid: k, key: {{ file: es256.pem }} }}\n\
             records: records.ndjson\n\
             receivers:\n\
             - name: aws\n  kind: aws\n  endpoint: {base}\n  \
               aws: {{ access_key_id: {{ env: SG_TEST_AWS_KEY }}, secret_access_key: {{ env: SG_TEST_AWS_SECRET }} }}\n"
        ),
    )
    .unwrap();
    let input = dir.join("decisions.ndjson");
    write_lines(&input, &[role.clone(), user]);
    let out = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args(["actuate", "--config"])
        .arg(&config)
        .arg("--decisions")
        .arg(&input)
        .env("SG_TEST_AWS_KEY", "AKIDEXAMPLE")
        .env("SG_TEST_AWS_SECRET", "testing-secret")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (status, body) = iam(
        &base,
        &[
            ("Action", "GetRolePolicy"),
            ("RoleName", &role_name),
            ("PolicyName", "sessionguard-revoke-older-sessions"),
        ],
    );
    assert_eq!(status, 200, "the deny policy is on the role: {body}");
    let when = format!("{}Z", &role["time"].as_str().unwrap()[..19]);
    assert!(
        body.contains("TokenIssueTime") && body.contains(&when.replace(':', "%3A"))
            || body.contains(&when),
        "{body}"
    );
    let (status, body) = iam(
        &base,
        &[("Action", "ListAccessKeys"), ("UserName", &user_name)],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("<AccessKeyId>{key_id}</AccessKeyId>"))
            && body.contains("<Status>Inactive</Status>"),
        "{body}"
    );
}

/// Produces `payload` to `topic` with `headers`, and waits for the acknowledgement.
fn produce_with_headers(brokers: &str, topic: &str, payload: &[u8], headers: &[(&str, &[u8])]) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let mut owned = OwnedHeaders::new();
    for (key, value) in headers {
        owned = owned.insert(Header {
            key,
            value: Some(*value),
        });
    }
    producer
        .send(
            BaseRecord::<[u8], [u8]>::to(topic)
                .payload(payload)
                .headers(owned),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// `run` signs its decisions (SESSIONGUARD_DECISION_MAC_KEY); `actuate` with `trust:` acts on
/// those and on nothing someone else wrote to the actions topic.
#[test]
fn only_decisions_authenticated_by_run_are_acted_on() {
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    for topic in ["sg.in", "sg.actions", "sg.dead"] {
        cluster.create_topic(topic, 1, 1).unwrap();
    }
    let attack = PathBuf::from("fixtures/scenarios/mfa-failures/attack-okta.jsonl");
    let events = sessionguard::kafka::demo::records_of(std::slice::from_ref(&attack)).unwrap();
    sessionguard::kafka::demo::produce(&brokers, "sg.in", &events, None).unwrap();
    const KEY: &str = "a-decision-key-shared-by-run-and-actuate";
    let run = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args([
            "run",
            "--brokers",
            &brokers,
            "--group",
            "sg-run",
            "--topics",
            "sg.in",
        ])
        .args([
            "--actions-topic",
            "sg.actions",
            "--dead-letter-topic",
            "sg.dead",
            "--rules",
            "rules",
        ])
        .args(["--max-events", &events.len().to_string()])
        .env("SESSIONGUARD_DECISION_MAC_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let genuine: Vec<Value> = std::fs::read_to_string(
        "fixtures/scenarios/mfa-failures/attack-okta.jsonl.decisions.golden",
    )
    .unwrap()
    .lines()
    .map(|l| serde_json::from_str::<Value>(l).unwrap())
    .filter(|d| d["mode"] == "enforce" && d["action"].as_str().unwrap().starts_with("revoke_"))
    .collect();
    assert!(!genuine.is_empty());

    // Someone with write access to the topic asks for kills of their own.
    let mut forged = genuine[0].clone();
    forged["decision_id"] = Value::String("f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0".into());
    forged["session"]["key"] = Value::String("okta:the-ceo-session".into());
    let forged = forged.to_string().into_bytes();
    produce_with_headers(&brokers, "sg.actions", &forged, &[]);
    let wrong = sessionguard::decision::decision_mac(b"a-guessed-key-of-sixteen-bytes", &forged);
    produce_with_headers(
        &brokers,
        "sg.actions",
        &forged,
        &[("sessionguard_mac", wrong.as_bytes())],
    );
    // A genuine MAC moved onto other bytes.
    let genuine_mac =
        sessionguard::decision::decision_mac(KEY.as_bytes(), genuine[0].to_string().as_bytes());
    produce_with_headers(
        &brokers,
        "sg.actions",
        &forged,
        &[("sessionguard_mac", genuine_mac.as_bytes())],
    );

    let listen = free_port();
    let receiver = Receiver::start(Plan {
        fault: Box::new(|_| Fault::None),
        refuse: HashSet::new(),
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_url: format!("http://127.0.0.1:{listen}/jwks.json"),
        authorization: Some(format!("Bearer {TOKEN}")),
    });
    let extra = format!(
        "kafka:\n  brokers: '{brokers}'\n  topic: sg.actions\n  group: sg-actuate-trust\n\
         trust: {{ decision_mac_key: {{ env: SG_TEST_DECISION_KEY }} }}\n"
    );
    let mut setup = setup("trust", &receiver.endpoint(), &extra);
    let config = std::fs::read_to_string(&setup.config).unwrap().replace(
        &format!("127.0.0.1:{}", setup.listen),
        &format!("127.0.0.1:{listen}"),
    );
    std::fs::write(&setup.config, config).unwrap();
    setup.listen = listen;
    let mut actuate = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args(["actuate", "--config"])
        .arg(&setup.config)
        .env("SG_TEST_RECEIVER_TOKEN", TOKEN)
        .env("SG_TEST_DECISION_KEY", KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(setup.dir.join("stderr-trust")).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let rejected = records(&setup)
            .iter()
            .filter(|r| r["outcome"] == "rejected")
            .count();
        if receiver.log().accepted.len() >= genuine.len() && rejected >= 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{rejected} rejected, {:?}:\n{}",
            receiver.log().accepted,
            stderr_text(&setup)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(terminate(&mut actuate), 0);
    let got: BTreeSet<String> = receiver.log().accepted.keys().cloned().collect();
    let want: BTreeSet<String> = genuine
        .iter()
        .map(|d| d["decision_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, want, "only run's decisions are acted on");
    let reasons: Vec<String> = records(&setup)
        .iter()
        .filter(|r| r["outcome"] == "rejected")
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        reasons,
        [
            "untrusted: the decision carries no MAC",
            "untrusted: the decision's MAC does not match",
            "untrusted: the decision's MAC does not match",
        ]
    );
}

/// The README's loop: `ssf-receiver` (bundled) beside `actuate`, from the command line.
#[test]
fn the_bundled_receiver_verifies_and_prints_what_actuate_sends() {
    let receiver_port = free_port();
    let setup = setup(
        "bundled",
        &format!("http://127.0.0.1:{receiver_port}/events"),
        "",
    );
    let kills = decisions(1);
    let input = setup.dir.join("decisions.ndjson");
    write_lines(&input, &kills);
    let mut receiver = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args([
            "ssf-receiver",
            "--listen",
            &format!("127.0.0.1:{receiver_port}"),
        ])
        .args([
            "--jwks",
            &format!("http://127.0.0.1:{}/jwks.json", setup.listen),
        ])
        .args(["--token-env", "SG_TEST_EXPECTED_TOKEN"])
        .env("SG_TEST_EXPECTED_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let code = wait(&mut actuate(&setup, &input), Duration::from_secs(60));
    assert_eq!(code, 0, "{}", stderr_text(&setup));
    // A push without the receiver's token, or with another, is turned away.
    for auth in [None, Some("Bearer someone-elses-token")] {
        let (status, body) = push_to(
            &format!("http://127.0.0.1:{receiver_port}/events"),
            auth,
            "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
        );
        assert_eq!(
            (status, body.as_str()),
            (401, r#"{"err":"authentication_failed"}"#)
        );
    }
    assert_eq!(terminate(&mut receiver), 0);
    let mut out = String::new();
    std::io::Read::read_to_string(&mut receiver.stdout.take().unwrap(), &mut out).unwrap();
    let got: BTreeSet<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["jti"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let want: BTreeSet<String> = kills
        .iter()
        .map(|d| d["decision_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, want);
}

/// POSTs `set` as a push (RFC 8935) to `url`; the status and body of the answer.
fn push_to(url: &str, authorization: Option<&str>, set: &str) -> (u16, String) {
    use http_body_util::{BodyExt, Full};
    let mut request = hyper::Request::post(url).header("content-type", "application/secevent+jwt");
    if let Some(auth) = authorization {
        request = request.header("authorization", auth);
    }
    let request = request
        .body(Full::new(bytes::Bytes::from(set.to_owned())))
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<bytes::Bytes>>();
        let response = client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    })
}

/// A TLS receiver answering `202` to one request per connection (HTTP/1.1 by hand over
/// OpenSSL), with a certificate for `localhost` only, made by the openssl command; its port
/// and the certificate's path.
/// Every request's head (request line and headers, as sent) is kept in the returned log.
type Heads = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

fn tls_receiver(dir: &Path) -> (u16, PathBuf, Heads) {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
    use std::io::{BufRead, BufReader, Read};
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args([
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .output()
        .expect("the openssl command (scripts/test.sh installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    acceptor
        .set_private_key_file(&key, SslFiletype::PEM)
        .unwrap();
    acceptor.set_certificate_chain_file(&cert).unwrap();
    let acceptor = std::sync::Arc::new(acceptor.build());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Heads::default();
    let log = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (acceptor, log) = (acceptor.clone(), log.clone());
            std::thread::spawn(move || {
                let Ok(tls) = acceptor.accept(stream) else {
                    return;
                };
                let mut reader = BufReader::new(tls);
                let mut length = 0usize;
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push_str(&line);
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                log.lock().unwrap().push(head);
                let _ = std::io::Write::write_all(
                    reader.get_mut(),
                    b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            });
        }
    });
    (port, cert, heads)
}

#[test]
fn https_receivers_are_verified_by_ca_and_host_name() {
    let dir = scratch("tls");
    let (port, cert, heads) = tls_receiver(&dir);
    let key = ES256.generate_key_pair().unwrap().to_pem_private_key();
    std::fs::write(dir.join("es256.pem"), key).unwrap();
    let receiver = |name: &str, host: &str, ca: bool| {
        format!(
            "- name: {name}\n  endpoint: https://{host}:{port}/events\n  timeout: 2s\n  \
             retry: {{ initial: 20ms, max: 50ms, give_up_after: 300ms }}\n  \
             breaker: {{ open_for: 100ms }}\n{}",
            if ca {
                format!("  ca_file: {}\n", cert.display())
            } else {
                String::new()
            }
        )
    };
    std::fs::write(
        dir.join("actuate.yml"),
        format!(
            "issuer: {ISSUER}\nsigning_key: {{ alg: ES256, kid: k, key: {{ file: es256.pem }} }}\n\
             records: records.ndjson\nreceivers:\n{}{}{}",
            receiver("trusted", "localhost", true),
            receiver("unknown-ca", "localhost", false),
            receiver("wrong-host", "127.0.0.1", true),
        ) + &format!(
            // A Kubernetes API server reached over TLS with the cluster's CA and a bearer token.
            "- name: cluster\n  kind: kubernetes\n  endpoint: https://localhost:{port}\n  \
             ca_file: {}\n  authorization: {{ env: SG_TEST_K8S_TOKEN }}\n",
            cert.display()
        ),
    )
    .unwrap();
    let input = dir.join("decisions.ndjson");
    let service_account = golden_with(
        "fixtures/scenarios/token-reuse/attack-k8s.jsonl.decisions.golden",
        "k8s:jti:",
    );
    write_lines(&input, &[decisions(1)[0].clone(), service_account]);
    let out = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args(["actuate", "--config"])
        .arg(dir.join("actuate.yml"))
        .arg("--decisions")
        .arg(&input)
        .env("SG_TEST_K8S_TOKEN", "eyJk8s.tls-token")
        .output()
        .unwrap();
    // Settled everywhere, but not delivered everywhere: status 4.
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = std::fs::read_to_string(dir.join("records.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outcome = |name: &str| {
        let r = records.iter().find(|r| r["receiver"] == name).unwrap();
        (
            r["outcome"].as_str().unwrap().to_owned(),
            r["reason"].as_str().unwrap_or("").to_owned(),
        )
    };
    assert_eq!(outcome("trusted").0, "delivered");
    let (unknown, why) = outcome("unknown-ca");
    assert_eq!(unknown, "failed");
    assert!(why.contains("certificate verify failed"), "{why}");
    let (wrong, why) = outcome("wrong-host");
    assert_eq!(wrong, "failed");
    assert!(why.contains("certificate verify failed"), "{why}");
    assert_eq!(outcome("cluster").0, "delivered");
    let heads = heads.lock().unwrap();
    let delete = heads
        .iter()
        .find(|h| h.starts_with("DELETE "))
        .expect("the Kubernetes call came over TLS");
    assert!(
        delete.starts_with("DELETE /api/v1/namespaces/payments/serviceaccounts/api HTTP/1.1\r\n"),
        "{delete}"
    );
    assert!(
        delete
            .to_ascii_lowercase()
            .contains("authorization: bearer eyjk8s.tls-token\r\n"),
        "{delete}"
    );
}
