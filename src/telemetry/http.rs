//! `/metrics`, `/healthz` and `/readyz` over HTTP/1.1: hyper on a one-thread tokio runtime that
//! belongs to this server alone, so nothing on the HTTP side can hold the pipeline back, and no
//! client can hold the other clients back.
//!
//! What a hostile or broken client meets ([`Limits`]):
//! - connections are served concurrently: a slow one is a parked future, not a busy thread;
//! - the whole request head must arrive within [`Limits::head_timeout`] of the first byte
//!   (hyper's `header_read_timeout`, a deadline for the head, not per read), and a
//!   keep-alive connection that sends nothing for as long is closed too;
//! - a head larger than [`Limits::max_head_bytes`] is answered `431` and the connection closed;
//! - at most [`Limits::max_connections`] connections are open; past that a new one is closed at
//!   once (a probe retries), and every connection is closed after
//!   [`Limits::connection_lifetime`] whatever it does;
//! - an unknown method is answered `405`, an unknown path `404`, both with `Connection: close`.
//!
//! `/readyz` answers `503` with the reason in words while not ready ([`Telemetry::readiness`]):
//! the brokers cannot be reached (which, and why), no partition is assigned yet, or partitions
//! are still catching up.
//!
//! Shutdown: setting the stop flag ends the accept loop within [`STOP_POLL`]; the runtime is
//! then dropped with every connection still open, so `run` exits as promptly as it would
//! without the server. The listener binds where `--metrics-addr` says; the default address
//! (a bare port) is loopback (`crate::config`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::Telemetry;

/// Bounds on what one client may cost.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// From the first byte of a request head to its end; also how long an idle keep-alive
    /// connection is kept.
    pub head_timeout: Duration,
    /// Largest request head (hyper's read buffer; 8 KiB is its minimum).
    pub max_head_bytes: usize,
    /// Connections open at once.
    pub max_connections: usize,
    /// Longest life of one connection, keep-alive included.
    pub connection_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            head_timeout: Duration::from_secs(2),
            max_head_bytes: 8 * 1024,
            max_connections: 512,
            connection_lifetime: Duration::from_secs(60),
        }
    }
}

/// How often the accept loop looks at the stop flag.
pub const STOP_POLL: Duration = Duration::from_millis(50);

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` from a background thread until `stop`
/// is set. Binding happens before this returns (its error is the caller's); returns the bound
/// address (useful with port 0).
pub fn serve(
    addr: SocketAddr,
    telemetry: Arc<Telemetry>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<SocketAddr> {
    serve_with(addr, telemetry, stop, Limits::default())
}

/// [`serve`] with explicit limits.
pub fn serve_with(
    addr: SocketAddr,
    telemetry: Arc<Telemetry>,
    stop: Arc<AtomicBool>,
    limits: Limits,
) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("sessionguard-http".into())
        .spawn(move || {
            runtime.block_on(accept_loop(listener, telemetry, stop, limits));
            // Dropping the runtime drops every connection still open.
        })?;
    Ok(bound)
}

async fn accept_loop(
    listener: std::net::TcpListener,
    telemetry: Arc<Telemetry>,
    stop: Arc<AtomicBool>,
    limits: Limits,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // `accept` is cancel-safe: a timeout loses no connection.
        let Ok(accepted) = tokio::time::timeout(STOP_POLL, listener.accept()).await else {
            continue;
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors or similar: back off instead of spinning.
            tokio::time::sleep(STOP_POLL).await;
            continue;
        };
        // Over the limit: closed at once, before reading anything.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let telemetry = telemetry.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = respond(&request, &telemetry);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.head_timeout)
                .max_buf_size(limits.max_head_bytes.max(8192))
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(limits.connection_lifetime, connection).await;
            drop(slot);
        });
    }
}

/// The answer to one request. Request bodies are never read (none of the paths takes one).
fn respond(request: &Request<Incoming>, telemetry: &Telemetry) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let (status, content_type, body, close) = match (request.method(), path) {
        (&Method::GET | &Method::HEAD, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            telemetry.render(),
            false,
        ),
        (&Method::GET | &Method::HEAD, "/healthz") => {
            (StatusCode::OK, "text/plain", "ok\n".to_owned(), false)
        }
        (&Method::GET | &Method::HEAD, "/readyz") => match telemetry.readiness() {
            Ok(()) => (StatusCode::OK, "text/plain", "ready\n".to_owned(), false),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {why}\n"),
                false,
            ),
        },
        (&Method::GET | &Method::HEAD, _) => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
            true,
        ),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n".to_owned(),
            true,
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}
