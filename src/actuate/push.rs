//! Push delivery of SETs (RFC 8935) to one receiver: the HTTP client (HTTPS verified by
//! OpenSSL against the system's CAs or the receiver's `ca_file`), the answer's meaning,
//! retries with exponential backoff and jitter, and the receiver's circuit breaker.
//!
//! What an answer means:
//! - `202 Accepted` (or any 2xx): delivered. A `400` whose `err` is `dup`: the receiver had it
//!   already under this `jti`, so delivered too.
//! - any other 4xx but `408` and `429`: refused, definitively — the receiver read the SET and
//!   will not take it (bad signature, audience, subject); retrying sends the same bytes. The
//!   refusal is recorded with the receiver's `err` and `description`.
//! - `408`, `429`, 5xx, a timeout, a connection refused or reset: retried after
//!   `initial · 2^n` (at most `max`), half of it drawn at random so receivers coming back are
//!   not hit by every transmitter at once, until `give_up_after` has passed since the first
//!   attempt; then failed.
//!
//! The breaker: after `failures` failed attempts in a row the receiver's circuit opens for
//! `open_for`; deliveries wait (without spending attempts) instead of piling onto a receiver
//! that is down, then one probe goes through (half-open) and its answer closes or reopens it.
#![allow(
    clippy::disallowed_methods,
    reason = "delivery latency, timeouts and backoff are wall-clock by nature"
)]

use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use hyper_openssl::client::legacy::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use openssl::ssl::{SslConnector, SslMethod};

use super::config::ReceiverSettings;

/// The media type of a pushed SET (RFC 8935 §2).
pub const SET_MEDIA_TYPE: &str = "application/secevent+jwt";

/// The largest answer body read (an error description).
const MAX_ANSWER_BYTES: usize = 16 * 1024;

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How a delivery ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Delivered,
    /// The receiver will not take this SET; the reason is its own words.
    Refused(String),
    /// Every attempt failed within `give_up_after`; the last failure.
    Failed(String),
    /// The process is stopping: not settled, delivered again after the restart.
    Interrupted,
}

#[derive(Clone, Debug)]
pub struct Delivery {
    pub outcome: Outcome,
    pub attempts: u32,
    pub retries: u32,
    /// From the first attempt to the answer that settled it.
    pub latency: Duration,
    /// The HTTP status of the last answer, if any.
    pub status: Option<u16>,
}

/// One attempt's answer, classified.
enum Attempt {
    Delivered(u16),
    Refused(u16, String),
    Retry(Option<u16>, String),
}

/// One request to send (and to send again, the same, on a retry); the receiver's credentials
/// are added by the [`Pusher`].
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub method: Method,
    pub uri: hyper::Uri,
    pub content_type: Option<&'static str>,
    pub body: Bytes,
    /// More headers (an `accept` here replaces `application/json`).
    pub headers: Vec<(&'static str, String)>,
    /// A `404` answer means done (see `vendor::Call::absent_is_done`).
    pub absent_is_done: bool,
}

impl Outgoing {
    /// A SET pushed to an SSF receiver's endpoint.
    pub fn set(endpoint: &hyper::Uri, token: String) -> Outgoing {
        Outgoing {
            method: Method::POST,
            uri: endpoint.clone(),
            content_type: Some(SET_MEDIA_TYPE),
            body: Bytes::from(token),
            headers: Vec::new(),
            absent_is_done: false,
        }
    }
}

/// One receiver: its settings, its client and its breaker.
pub struct Pusher {
    pub settings: ReceiverSettings,
    client: HttpsClient,
    breaker: Breaker,
    authorization: Option<HeaderValue>,
    /// With `client_credentials:`, the bearer token comes from here instead.
    tokens: Option<super::oauth::TokenSource>,
}

impl Pusher {
    pub fn new(settings: ReceiverSettings) -> Result<Pusher> {
        let mut tls = SslConnector::builder(SslMethod::tls_client())?;
        match &settings.ca_file {
            Some(file) => tls
                .set_ca_file(file)
                .with_context(|| format!("reading the CA file {}", file.display()))?,
            None => {
                tls.set_default_verify_paths()?;
                // A vendored OpenSSL looks in its own build prefix; the system's bundle is
                // where Debian, Ubuntu, Fedora and Alpine keep it.
                for bundle in [
                    "/etc/ssl/certs/ca-certificates.crt",
                    "/etc/pki/tls/certs/ca-bundle.crt",
                    "/etc/ssl/cert.pem",
                ] {
                    if std::path::Path::new(bundle).exists() {
                        let _ = tls.set_ca_file(bundle);
                        break;
                    }
                }
            }
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.timeout));
        let connector = HttpsConnector::with_connector(http, tls)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let authorization = match &settings.authorization {
            None => None,
            Some(secret) => {
                let scheme = settings.kind.scheme();
                let mut value =
                    HeaderValue::from_str(&format!("{scheme} {}", secret.expose_str()?)).context(
                        "the receiver's authorization token is not a valid header value",
                    )?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Pusher {
            tokens: settings
                .client_credentials
                .clone()
                .map(super::oauth::TokenSource::new),
            breaker: Breaker::new(settings.breaker_failures, settings.breaker_open_for),
            settings,
            client,
            authorization,
        })
    }

    /// Sends `value` as the whole `Authorization` header (an SSF stream's
    /// `authorization_header`, scheme included) instead of the configured token.
    pub fn set_authorization_header(&mut self, value: &str) -> Result<()> {
        let mut value = HeaderValue::from_str(value)
            .context("the stream's authorization_header is not a valid header value")?;
        value.set_sensitive(true);
        self.authorization = Some(value);
        Ok(())
    }

    /// Delivers one signed SET until it is settled or `stop` says the process is ending.
    /// `on_retry` is told of every failed attempt (for the log and the metrics).
    pub async fn deliver(
        &self,
        request: &Outgoing,
        stop: &tokio::sync::watch::Receiver<bool>,
        on_retry: &(dyn Fn(&str) + Sync),
    ) -> Delivery {
        let started = Instant::now();
        let mut attempts = 0u32;
        let mut rng = Jitter::new();
        let mut last_status = None;
        let retry = self.settings.retry;
        loop {
            if *stop.borrow() {
                return self.settled(Outcome::Interrupted, attempts, started, last_status);
            }
            let mut stop_wait = stop.clone();
            tokio::select! {
                _ = self.breaker.permit() => {}
                _ = stop_wait.wait_for(|s| *s) => {
                    return self.settled(Outcome::Interrupted, attempts, started, last_status);
                }
            }
            attempts += 1;
            let answer = self.attempt(request).await;
            let (status, reason) = match answer {
                Attempt::Delivered(status) => {
                    self.breaker.success();
                    return self.settled(Outcome::Delivered, attempts, started, Some(status));
                }
                Attempt::Refused(status, reason) => {
                    // The receiver answered: it is up.
                    self.breaker.success();
                    return self.settled(Outcome::Refused(reason), attempts, started, Some(status));
                }
                Attempt::Retry(status, reason) => (status, reason),
            };
            last_status = status.or(last_status);
            self.breaker.failure();
            on_retry(&reason);
            let backoff = backoff(retry.initial, retry.max, attempts, &mut rng);
            if started.elapsed() + backoff > retry.give_up_after {
                return self.settled(Outcome::Failed(reason), attempts, started, last_status);
            }
            let mut stop_wait = stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop_wait.wait_for(|s| *s) => {
                    return self.settled(Outcome::Interrupted, attempts, started, last_status);
                }
            }
        }
    }

    fn settled(
        &self,
        outcome: Outcome,
        attempts: u32,
        started: Instant,
        status: Option<u16>,
    ) -> Delivery {
        Delivery {
            outcome,
            attempts,
            retries: attempts.saturating_sub(1),
            latency: started.elapsed(),
            status,
        }
    }

    async fn attempt(&self, out: &Outgoing) -> Attempt {
        let mut request = Request::builder()
            .method(out.method.clone())
            .uri(out.uri.clone());
        if !out.headers.iter().any(|(name, _)| *name == "accept") {
            request = request.header(ACCEPT, "application/json");
        }
        for (name, value) in &out.headers {
            request = request.header(*name, value.as_str());
        }
        if let Some(kind) = out.content_type {
            request = request.header(CONTENT_TYPE, kind);
        }
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if let Some(tokens) = &self.tokens {
            match tokens.bearer(&self.client, self.settings.timeout).await {
                Ok(auth) => request = request.header(AUTHORIZATION, auth),
                Err(super::oauth::TokenError::Retry(reason)) => {
                    return Attempt::Retry(None, reason)
                }
                Err(super::oauth::TokenError::Refused(status, reason)) => {
                    return Attempt::Refused(status, reason)
                }
            }
        }
        if let Some(aws) = &self.settings.aws {
            // Signed at each attempt: a signature is good for five minutes, a retry may come
            // later.
            let host = out
                .uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default();
            let mut query: Vec<&str> = out
                .uri
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .collect();
            query.sort_unstable();
            let mut signed = vec![("host", host.as_str())];
            if let Some(kind) = out.content_type {
                signed.push(("content-type", kind));
            }
            let headers = aws.sign(
                out.method.as_str(),
                out.uri.path(),
                &query.join("&"),
                &signed,
                &out.body,
                &super::aws::amz_date(super::record::now_ms()),
            );
            match headers {
                Ok(headers) => {
                    request = request.header(hyper::header::HOST, host.as_str());
                    for (name, value) in headers {
                        request = request.header(name, value);
                    }
                }
                Err(e) => return Attempt::Refused(0, format!("signing the request: {e:#}")),
            }
        }
        let request = match request.body(Full::new(out.body.clone())) {
            Ok(request) => request,
            Err(e) => return Attempt::Refused(0, format!("the request cannot be built: {e}")),
        };
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, hyper_util::client::legacy::Error>((status, body))
        };
        match tokio::time::timeout(self.settings.timeout, exchange).await {
            Err(_) => Attempt::Retry(
                None,
                format!("no answer within {} ms", self.settings.timeout.as_millis()),
            ),
            Ok(Err(e)) => Attempt::Retry(None, error_chain(&e)),
            Ok(Ok((status, _))) if status == StatusCode::NOT_FOUND && out.absent_is_done => {
                Attempt::Delivered(status.as_u16())
            }
            Ok(Ok((status, body))) => classify(status, &body),
        }
    }
}

/// The answer's meaning (see the module comment).
fn classify(status: StatusCode, body: &[u8]) -> Attempt {
    let code = status.as_u16();
    if status.is_success() {
        return Attempt::Delivered(code);
    }
    let (err, description) = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => {
            let text = |pointer: &str| {
                v.pointer(pointer)
                    .and_then(|e| e.as_str())
                    .map(str::to_owned)
            };
            // RFC 8935 `err`/`description`; else the vendor's own words: Okta
            // `errorCode`/`errorSummary`, Graph `error.code`/`error.message`, a Kubernetes
            // Status's `reason`/`message`, GitHub's `message`.
            (
                text("/err")
                    .or_else(|| text("/errorCode"))
                    .or_else(|| text("/error/code"))
                    .or_else(|| text("/reason")),
                text("/description")
                    .or_else(|| text("/errorSummary"))
                    .or_else(|| text("/error/message"))
                    .or_else(|| text("/message")),
            )
        }
        Err(_) => (None, None),
    };
    if code == 400 && err.as_deref() == Some("dup") {
        return Attempt::Delivered(code);
    }
    let reason = match (err, description) {
        (Some(err), Some(description)) => format!("HTTP {code}: {err}: {description}"),
        (Some(err), None) => format!("HTTP {code}: {err}"),
        (None, Some(description)) => format!("HTTP {code}: {description}"),
        (None, None) => format!("HTTP {code}"),
    };
    if status.is_client_error()
        && status != StatusCode::REQUEST_TIMEOUT
        && status != StatusCode::TOO_MANY_REQUESTS
    {
        Attempt::Refused(code, reason)
    } else {
        Attempt::Retry(Some(code), reason)
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `initial · 2^(attempt-1)`, at most `max`, the upper half drawn at random ("equal jitter").
fn backoff(initial: Duration, max: Duration, attempt: u32, rng: &mut Jitter) -> Duration {
    let exp = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let full = exp.min(max);
    let half = full / 2;
    half + half.mul_f64(rng.unit())
}

/// A small xorshift generator seeded from the process's random hasher keys: enough to spread
/// retries, no dependency.
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x9e37_79b9_7f4a_7c15);
        Jitter(hasher.finish() | 1)
    }

    /// A number in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum BreakerState {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; the others wait for its answer.
    HalfOpen,
}

/// A per-receiver circuit breaker (see the module comment).
pub struct Breaker {
    state: Mutex<BreakerState>,
    failures_to_open: u32,
    open_for: Duration,
}

impl Breaker {
    pub fn new(failures_to_open: u32, open_for: Duration) -> Breaker {
        Breaker {
            state: Mutex::new(BreakerState::Closed { failures: 0 }),
            failures_to_open,
            open_for,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until an attempt may go out.
    pub async fn permit(&self) {
        loop {
            let wait = {
                let mut state = self.lock();
                match *state {
                    BreakerState::Closed { .. } => return,
                    BreakerState::Open { until } if Instant::now() >= until => {
                        *state = BreakerState::HalfOpen;
                        return;
                    }
                    BreakerState::Open { until } => until - Instant::now(),
                    BreakerState::HalfOpen => (self.open_for / 10).max(Duration::from_millis(5)),
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    pub fn success(&self) {
        *self.lock() = BreakerState::Closed { failures: 0 };
    }

    pub fn failure(&self) {
        let mut state = self.lock();
        *state = match *state {
            BreakerState::Closed { failures } if failures + 1 < self.failures_to_open => {
                BreakerState::Closed {
                    failures: failures + 1,
                }
            }
            _ => BreakerState::Open {
                until: Instant::now() + self.open_for,
            },
        };
    }

    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), BreakerState::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_as_rfc_8935_says() {
        let class = |code: u16, body: &str| match classify(
            StatusCode::from_u16(code).unwrap(),
            body.as_bytes(),
        ) {
            Attempt::Delivered(_) => "delivered",
            Attempt::Refused(..) => "refused",
            Attempt::Retry(..) => "retry",
        };
        assert_eq!(class(202, ""), "delivered");
        assert_eq!(class(200, ""), "delivered");
        assert_eq!(class(400, r#"{"err":"dup"}"#), "delivered");
        assert_eq!(
            class(400, r#"{"err":"jwtCrypto","description":"bad sig"}"#),
            "refused"
        );
        assert_eq!(class(401, ""), "refused");
        assert_eq!(class(429, ""), "retry");
        assert_eq!(class(408, ""), "retry");
        assert_eq!(class(503, "<html>"), "retry");
        match classify(
            StatusCode::BAD_REQUEST,
            br#"{"err":"jwtAud","description":"wrong aud"}"#,
        ) {
            Attempt::Refused(400, reason) => assert_eq!(reason, "HTTP 400: jwtAud: wrong aud"),
            _ => panic!("a refusal"),
        }
        // Vendors' own error shapes.
        for (code, body, want) in [
            (
                404,
                r#"{"errorCode":"E0000007","errorSummary":"Not found: Resource not found: x (User)"}"#,
                "HTTP 404: E0000007: Not found: Resource not found: x (User)",
            ),
            (
                403,
                r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}"#,
                "HTTP 403: Authorization_RequestDenied: Insufficient privileges to complete the operation.",
            ),
            (
                403,
                r#"{"kind":"Status","status":"Failure","message":"serviceaccounts \"api\" is forbidden","reason":"Forbidden","code":403}"#,
                r#"HTTP 403: Forbidden: serviceaccounts "api" is forbidden"#,
            ),
            (
                404,
                r#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}"#,
                "HTTP 404: Not Found",
            ),
        ] {
            match classify(StatusCode::from_u16(code).unwrap(), body.as_bytes()) {
                Attempt::Refused(_, reason) => assert_eq!(reason, want),
                _ => panic!("a refusal: {body}"),
            }
        }
    }

    #[test]
    fn backoff_doubles_within_its_cap_with_jitter_in_the_upper_half() {
        let mut rng = Jitter::new();
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 1..=12u32 {
            let full = (initial * 2u32.pow(attempt - 1)).min(max);
            let got = backoff(initial, max, attempt, &mut rng);
            assert!(
                got >= full / 2 && got <= full,
                "attempt {attempt}: {got:?} vs {full:?}"
            );
        }
        let draws: std::collections::HashSet<_> = (0..20)
            .map(|_| backoff(initial, max, 5, &mut rng))
            .collect();
        assert!(draws.len() > 10, "jitter spreads retries: {draws:?}");
    }

    #[test]
    fn the_breaker_opens_after_failures_in_a_row_and_a_success_closes_it() {
        let breaker = Breaker::new(3, Duration::from_millis(50));
        breaker.failure();
        breaker.failure();
        assert!(!breaker.is_open());
        breaker.success();
        breaker.failure();
        breaker.failure();
        assert!(!breaker.is_open(), "a success starts the count again");
        breaker.failure();
        assert!(breaker.is_open());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let waited = rt.block_on(async {
            let start = Instant::now();
            breaker.permit().await;
            start.elapsed()
        });
        assert!(
            waited >= Duration::from_millis(40),
            "waited {waited:?} while open"
        );
        assert_eq!(*breaker.lock(), BreakerState::HalfOpen);
        breaker.failure();
        assert!(
            matches!(*breaker.lock(), BreakerState::Open { .. }),
            "a failed probe reopens"
        );
        breaker.success();
        assert!(!breaker.is_open());
    }
}
