//! `/healthz`, `/readyz` and `/metrics` stay answerable while hostile clients hold connections:
//! 50 connections that trickle bytes and never finish their request do not delay an answer
//! past 100 ms, and `run` still exits promptly on SIGTERM with them open; oversize heads and
//! unknown methods get a clean 4xx and a closed connection. Through the library's server
//! (`telemetry::serve`, what `run --metrics-addr` starts) and the binary.
#![cfg(feature = "kafka")]
#![allow(
    clippy::disallowed_methods,
    reason = "timeouts and timing of a test run, not engine time"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sessionguard::telemetry::{serve, Telemetry};

/// 50 connections that each send the start of a request, then one more byte every 300 ms,
/// until `stop` is set (bounded: at most 30 s).
fn tricklers(addr: SocketAddr, stop: Arc<AtomicBool>) -> Vec<thread::JoinHandle<()>> {
    (0..50)
        .map(|i| {
            let stop = stop.clone();
            thread::spawn(move || {
                let Ok(mut s) = TcpStream::connect(addr) else {
                    return;
                };
                let _ = write!(s, "GET /metrics HTTP/1.1\r\nX-Slow-{i}: ");
                let until = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    if s.write_all(b"a").is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(300));
                }
            })
        })
        .collect()
}

/// One request on a new connection; the status line and how long the answer took.
fn timed_get(addr: SocketAddr, path: &str) -> (String, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.lines().next().unwrap_or("").to_owned();
    (status, started.elapsed())
}

#[test]
fn fifty_trickling_connections_do_not_delay_the_probes() {
    let telemetry = Telemetry::new();
    telemetry.set_ready(true);
    let stop_server = Arc::new(AtomicBool::new(false));
    let addr = serve(
        "127.0.0.1:0".parse().unwrap(),
        telemetry,
        stop_server.clone(),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let slow = tricklers(addr, stop.clone());
    thread::sleep(Duration::from_millis(500));
    // Several rounds, across the 2 s head deadline of the first slow connections.
    for round in 0..5 {
        for (path, want) in [("/healthz", "200"), ("/readyz", "200"), ("/metrics", "200")] {
            let (status, took) = timed_get(addr, path);
            assert!(status.contains(want), "round {round} {path}: {status:?}");
            assert!(
                took < Duration::from_millis(100),
                "round {round} {path} took {took:?} with 50 slow clients"
            );
        }
        thread::sleep(Duration::from_millis(600));
    }
    stop.store(true, Ordering::Relaxed);
    for t in slow {
        t.join().unwrap();
    }
    stop_server.store(true, Ordering::Relaxed);
}

/// Sends `request`, reads until the server closes; the whole answer, or a failure if the
/// connection stays open for 5 s.
fn answer_then_close(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("the connection was not closed after the error answer");
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn oversize_heads_and_unknown_methods_get_a_4xx_and_a_closed_connection() {
    let stop = Arc::new(AtomicBool::new(false));
    let addr = serve(
        "127.0.0.1:0".parse().unwrap(),
        Telemetry::new(),
        stop.clone(),
    )
    .unwrap();

    let mut big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 64 * 1024));
    big.extend(b"\r\n\r\n");
    let out = answer_then_close(addr, &big);
    assert!(out.starts_with("HTTP/1.1 431"), "oversize head: {out:?}");

    for method in ["BREW", "POST", "DELETE"] {
        let out = answer_then_close(
            addr,
            format!("{method} /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        );
        assert!(out.starts_with("HTTP/1.1 405"), "{method}: {out:?}");
        assert!(
            out.to_ascii_lowercase().contains("connection: close"),
            "{method}: {out:?}"
        );
    }

    let out = answer_then_close(addr, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 404"), "unknown path: {out:?}");

    // Not HTTP at all.
    let out = answer_then_close(addr, b"\x16\x03\x01garbage\r\n\r\n");
    assert!(
        out.is_empty() || out.starts_with("HTTP/1.1 4"),
        "garbage: {out:?}"
    );

    // A head that never ends is cut off by the deadline (2 s), not kept.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "an unfinished head was kept {:?}",
        started.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
}

#[test]
fn run_exits_promptly_on_sigterm_with_slow_clients_connected() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    /// Killed when dropped, so a failed assertion leaves no `run` behind.
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // No broker listens on port 9: `run` waits for one, serving its endpoints.
    let mut guard = Guard(
        Command::new(env!("CARGO_BIN_EXE_sessionguard"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "run",
                "--brokers",
                "127.0.0.1:9",
                "--group",
                "g",
                "--topics",
                "in",
            ])
            .args([
                "--actions-topic",
                "out",
                "--dead-letter-topic",
                "dlq",
                "--rules",
                "rules",
            ])
            .args(["--metrics-addr", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut guard.0;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the metrics server did not start"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let slow = tricklers(addr, stop.clone());
    thread::sleep(Duration::from_millis(500));
    let (status, took) = timed_get(addr, "/healthz");
    assert!(
        status.contains("200") && took < Duration::from_millis(100),
        "{status} {took:?}"
    );

    let sent = Instant::now();
    let _ = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("run did not exit within 5 s of SIGTERM with 50 slow clients");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let took = sent.elapsed();
    eprintln!("health: run exited {took:?} after SIGTERM with 50 slow clients connected");
    assert!(status.success(), "run exited with {status}");
    assert!(
        took < Duration::from_secs(1),
        "run took {took:?} to exit after SIGTERM"
    );
    stop.store(true, Ordering::Relaxed);
    for t in slow {
        t.join().unwrap();
    }
}
