//! Part (h) of the benchmark, actuation (issue 13):
//!
//! - **signing**: SETs signed per second on one core, ES256 beside RS256 (2048-bit), each
//!   from a real decision (the claims built as `actuate` builds them, then signed).
//! - **latency**: decision → acknowledged SET. The `actuate` binary reads decisions from its
//!   standard input, written at a paced rate (default 1,000/s) with `time` = the moment each is
//!   written; a local receiver (hyper, answering `202`) takes the SETs; each actuation record's
//!   `decision_to_ack_ms` (acknowledgement − decision time) gives p50 and p99.
//!
//! - **stream hold**: kills held on an SSF poll stream per second, each settled once the
//!   streams file holding it is synced (what makes a held SET survive a crash; writes
//!   grouped, 64 kills in flight as in `actuate`), beside the same with the streams kept in
//!   memory, with 1,000 SETs held at the end.
//!
//! `cargo bench --bench actuate -- --bench [--decisions N] [--rate R]` (release build);
//! without `--bench` (`cargo test --benches`) each part runs briefly, as a smoke test.
#![allow(
    clippy::disallowed_methods,
    reason = "benchmark timing is wall-clock by nature"
)]

use std::convert::Infallible;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use josekit::jws::{ES256, RS256};
use serde_json::Value;
use sessionguard::actuate::secret::Secret;
use sessionguard::actuate::set::{self, DecisionIn, SetSigner, SigningAlg, SubjectFormat};

const DECISION: &str = r#"{"decision_id":"28c6c0272960df9f463027da6a514710","time":"2024-10-12T02:16:35.338Z","mode":"enforce","action":"revoke_session","severity":"high","rule":{"id":"sg.session.mfa_failures","version":"1","title":"Repeated failed MFA or push approvals in one session"},"session":{"key":"okta:idxSCGgtc9g5VMWZXp2Otl8Cn","kind":"sign_in","derived":false,"started":"2024-10-12T02:14:03.512Z"},"principal":{"type":"User","id":"00ugr9bfDTn78g1YzqDf","name":"a.kowalski@northwind.example"},"evidence":{"reason":"event_count 4 >= 4 within 10m"}}"#;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn signing(full: bool) {
    let decision = DecisionIn::parse(DECISION.as_bytes()).unwrap();
    let n = if full { 5_000 } else { 50 };
    for alg in [SigningAlg::Es256, SigningAlg::Rs256] {
        let pem = match alg {
            SigningAlg::Es256 => ES256.generate_key_pair().unwrap().to_pem_private_key(),
            SigningAlg::Rs256 => RS256.generate_key_pair(2048).unwrap().to_pem_private_key(),
        };
        let signer = SetSigner::new(alg, "bench", &Secret::from_bytes(pem, "bench")).unwrap();
        let start = Instant::now();
        let mut bytes = 0;
        for i in 0..n {
            let subject = SubjectFormat::Complex.subject(&decision).unwrap();
            let claims = set::claims(
                "https://sg.bench",
                Some("https://idp.bench"),
                subject,
                &decision,
                sessionguard::decision::CAEP_SESSION_REVOKED,
                i,
            );
            bytes += signer.sign(&claims).unwrap().len();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "(h) signing {}: {:.0} SETs/s on one core ({n} SETs, {} bytes each)",
            alg.name(),
            n as f64 / secs,
            bytes / n as usize
        );
    }
}

/// A receiver answering 202 to everything, on a thread of its own; its address.
fn receiver() -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
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
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_req| async {
                        let mut r =
                            hyper::Response::new(http_body_util::Empty::<bytes::Bytes>::new());
                        *r.status_mut() = hyper::StatusCode::ACCEPTED;
                        Ok::<_, Infallible>(r)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    rx.recv().unwrap()
}

fn now_rfc3339() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    sessionguard::event::Timestamp::from_millis(ms).to_string()
}

fn latency(full: bool) {
    let count: usize = arg("--decisions")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 20_000 } else { 200 });
    let rate: f64 = arg("--rate")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000.0);
    let addr = receiver();
    let dir = std::env::temp_dir().join(format!("sg-bench-actuate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("es256.pem"),
        ES256.generate_key_pair().unwrap().to_pem_private_key(),
    )
    .unwrap();
    std::fs::write(
        dir.join("actuate.yml"),
        format!(
            "issuer: https://sg.bench\nsigning_key: {{ alg: ES256, kid: b, key: {{ file: es256.pem }} }}\n\
             records: records.ndjson\nmax_in_flight: 256\nreceivers:\n\
             - name: local\n  endpoint: http://{addr}/events\n  audience: https://idp.bench\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .args(["actuate", "--config"])
        .arg(dir.join("actuate.yml"))
        .args(["--decisions", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let template: Value = serde_json::from_str(DECISION).unwrap();
    let start = Instant::now();
    for i in 0..count {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut d = template.clone();
        d["decision_id"] = Value::String(format!("{i:032x}"));
        d["time"] = Value::String(now_rfc3339());
        writeln!(stdin, "{d}").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let mut ms: Vec<i64> = std::fs::read_to_string(dir.join("records.ndjson"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["outcome"] == "delivered")
        .filter_map(|r| r["decision_to_ack_ms"].as_i64())
        .collect();
    assert_eq!(ms.len(), count, "every decision delivered");
    ms.sort_unstable();
    let q = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    println!(
        "(h) decision -> acknowledged SET at {rate:.0} decisions/s ({count} decisions): p50 {} ms, p99 {} ms, max {} ms",
        q(0.5),
        q(0.99),
        ms[ms.len() - 1]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn stream_hold(full: bool) {
    use sessionguard::actuate::stream::{StreamSettings, Streams, StreamsSpec};
    let n = if full { 1_000 } else { 20 };
    // The stream's creation is logged at info; the figures are what this prints.
    sessionguard::telemetry::set_log_level(sessionguard::telemetry::Level::Warn);
    let dir = std::env::temp_dir().join(format!("sg-bench-streams-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_var("SG_BENCH_STREAM_TOKEN", "bench-stream-token-0123456789");
    let pem = ES256.generate_key_pair().unwrap().to_pem_private_key();
    let signer = std::sync::Arc::new(
        SetSigner::new(
            SigningAlg::Es256,
            "bench",
            &Secret::from_bytes(pem, "bench"),
        )
        .unwrap(),
    );
    let decision: Value = serde_json::from_str(DECISION).unwrap();
    let mut rates = Vec::new();
    for file in [true, false] {
        let spec: StreamsSpec = serde_json::from_value(serde_json::json!({
            "file": if file { Some("streams.json") } else { None },
            "clients": [{ "name": "idp", "token": { "env": "SG_BENCH_STREAM_TOKEN" } }],
        }))
        .unwrap();
        let _ = std::fs::remove_file(dir.join("streams.json"));
        let settings = StreamSettings::build(spec, &dir).unwrap();
        let streams = Streams::open(settings, "https://sg.bench", signer.clone()).unwrap();
        let client = &streams.settings.clients[0];
        let created = streams.handle(
            client,
            &hyper::Method::POST,
            "/ssf/stream",
            None,
            br#"{"delivery":{"method":"urn:ietf:rfc:8936"},"events_requested":["https://schemas.openid.net/secevent/caep/event-type/session-revoked"]}"#,
        );
        assert_eq!(created.status, 201);
        let streams = std::sync::Arc::new(streams);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let start = Instant::now();
        rt.block_on(async {
            tokio::spawn(sessionguard::actuate::stream::write_streams(
                streams.clone(),
            ));
            // As `actuate` does: up to 64 decisions in flight, each settled once the file
            // holds it.
            let mut inflight = std::collections::VecDeque::new();
            for i in 0..n {
                let mut d = decision.clone();
                d["decision_id"] = Value::String(format!("{i:032x}"));
                let d = DecisionIn::parse(d.to_string().as_bytes()).unwrap();
                let (offered, change) = streams.offer(&d);
                assert_eq!(offered.len(), 1);
                inflight.push_back(change.unwrap());
                if inflight.len() == 64 {
                    assert!(streams.written(inflight.pop_front().unwrap()).await);
                }
            }
            for change in inflight {
                assert!(streams.written(change).await);
            }
        });
        let rate = n as f64 / start.elapsed().as_secs_f64();
        println!(
            "(h) stream hold, streams {}: {rate:.0} kills held per second ({n} kills, 64 in flight)",
            if file {
                "file, grouped syncs"
            } else {
                "in memory"
            }
        );
        rates.push(rate);
    }
    println!(
        "(h) stream hold: the synced file costs {:.1}x (in memory / file)",
        rates[1] / rates[0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    signing(full);
    latency(full);
    stream_hold(full);
}
