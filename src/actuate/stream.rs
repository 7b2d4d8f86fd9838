//! SSF 1.0 event streams (OpenID Shared Signals Framework 1.0 §8): the streams receivers set up
//! themselves through the management API — configuration create/read/update/replace/delete,
//! status (enabled / paused / disabled), add/remove subject, verification — and the SETs held
//! for each stream until they are pushed (RFC 8935) or polled (RFC 8936).
//!
//! A kill that passed the guard is signed once per stream that takes it and appended to the
//! stream's queue; the decision counts as settled once the store holding it is written
//! (temporary file, sync, rename), so a held SET survives a crash of `actuate`. Writes are
//! grouped: one write, off the runtime thread, covers every change made while the last was
//! syncing, so holding kills is not one disk sync per kill. An enabled push stream's
//! queue is drained in order by a delivery task; a paused stream holds its SETs (and is
//! drained once enabled again); a disabled stream takes nothing (SSF 1.0: "will not hold any
//! events"). A decision re-read after a crash is not queued twice: the queue is keyed by `jti`.
//!
//! Callers authenticate with a bearer token per client named in the config (SSF 1.0 §9, RFC
//! 6750), compared as SHA-256 digests in constant time; a stream belongs to the client that
//! created it and is invisible (404) to the others.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Notify};

use super::config::{ReceiverSettings, Retry, Take};
use super::push::{Outcome, Outgoing, Pusher};
use super::record::{now_ms, Record};
use super::secret::{Secret, SecretSpec};
use super::set::{self, DecisionIn, SetSigner, SubjectFormat};
use super::vendor::Kind;
use super::Shared;
use crate::telemetry::{self, Level, V};
use crate::units::parse_duration_ms;

/// The push delivery method (RFC 8935).
pub const PUSH: &str = "urn:ietf:rfc:8935";
/// The poll delivery method (RFC 8936).
pub const POLL: &str = "urn:ietf:rfc:8936";
/// SSF 1.0 §8.1.4: the verification event.
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";

/// Where the management endpoints live under the transmitter's URL.
pub const CONFIGURATION_PATH: &str = "/ssf/stream";
pub const STATUS_PATH: &str = "/ssf/status";
pub const ADD_SUBJECT_PATH: &str = "/ssf/subjects:add";
pub const REMOVE_SUBJECT_PATH: &str = "/ssf/subjects:remove";
pub const VERIFICATION_PATH: &str = "/ssf/verify";
/// Poll streams: `/ssf/poll/{stream_id}` (RFC 8936).
pub const POLL_PREFIX: &str = "/ssf/poll/";

/// How long a poll without `returnImmediately` waits for a SET (RFC 8936 §2.4 long polling).
const LONG_POLL: Duration = Duration::from_secs(20);
/// SETs one poll returns at most, whatever `maxEvents` asks.
const MAX_EVENTS: usize = 1000;
/// Subjects added (or removed) per stream at most.
const MAX_SUBJECTS: usize = 10_000;

/// The `streams:` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsSpec {
    /// Where streams and their held SETs are kept (default: in memory, lost at a stop).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The receivers allowed to manage streams, each with its bearer token.
    pub clients: Vec<ClientSpec>,
    /// Streams one client may have (default 1; one more is `409`).
    #[serde(default)]
    pub max_streams_per_client: Option<usize>,
    /// `ALL` (the default: every subject until removed) or `NONE` (only subjects added).
    #[serde(default)]
    pub default_subjects: Option<String>,
    /// SETs held per stream at most (default 100,000); a kill past it is `failed`.
    #[serde(default)]
    pub max_held: Option<usize>,
    /// The subject format of the SETs (as for receivers; default `complex`).
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub subject_issuer: Option<String>,
    /// Between two verification requests on a stream (default 5s; sooner is `429`).
    #[serde(default)]
    pub min_verification_interval: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    pub name: String,
    /// The bearer token the client presents (`Authorization: Bearer …`).
    pub token: SecretSpec,
    /// `aud` of the SETs on its streams (default: the client's name).
    #[serde(default)]
    pub audience: Option<String>,
}

/// A client allowed to manage streams.
pub struct Client {
    pub name: String,
    token_digest: [u8; 32],
    pub audience: String,
}

/// The checked `streams:` section.
pub struct StreamSettings {
    pub file: Option<PathBuf>,
    pub clients: Vec<Client>,
    pub max_streams_per_client: usize,
    pub default_all: bool,
    pub max_held: usize,
    pub subject: SubjectFormat,
    pub min_verification_interval: Duration,
}

impl StreamSettings {
    /// The checked form of `spec`, or every problem in it.
    pub fn build(spec: StreamsSpec, base: &Path) -> Result<StreamSettings, Vec<String>> {
        let mut errors = Vec::new();
        let mut clients = Vec::new();
        let mut names = HashSet::new();
        for (index, c) in spec.clients.into_iter().enumerate() {
            let label = format!("clients[{index}] ({})", c.name);
            if !names.insert(c.name.clone()) {
                errors.push(format!("{label}: the name is used twice"));
            }
            match Secret::load(&c.token, base) {
                Ok(token) if token.expose().len() >= 16 => clients.push(Client {
                    token_digest: Sha256::digest(token.expose()).into(),
                    audience: c.audience.unwrap_or_else(|| c.name.clone()),
                    name: c.name,
                }),
                Ok(_) => errors.push(format!("{label}: token shorter than 16 bytes")),
                Err(e) => errors.push(format!("{label}: token: {e:#}")),
            }
        }
        if clients.is_empty() && errors.is_empty() {
            errors.push("clients: none configured".into());
        }
        let default_all = match spec.default_subjects.as_deref().unwrap_or("ALL") {
            "ALL" => true,
            "NONE" => false,
            other => {
                errors.push(format!("default_subjects {other:?}: ALL or NONE"));
                true
            }
        };
        let subject = match SubjectFormat::parse(
            spec.subject.as_deref().unwrap_or("complex"),
            spec.subject_issuer.as_deref(),
        ) {
            Ok(format) => format,
            Err(e) => {
                errors.push(e);
                SubjectFormat::Complex
            }
        };
        let min_verification_interval = match spec.min_verification_interval.as_deref() {
            None => Duration::from_secs(5),
            Some(text) => match parse_duration_ms(text) {
                Some(ms) if ms >= 0 => Duration::from_millis(ms as u64),
                _ => {
                    errors.push(format!(
                        "min_verification_interval: {text:?} is not a duration"
                    ));
                    Duration::from_secs(5)
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(StreamSettings {
            file: spec.file.map(|p| base.join(p)),
            clients,
            max_streams_per_client: spec.max_streams_per_client.unwrap_or(1).max(1),
            default_all,
            max_held: spec.max_held.unwrap_or(100_000).max(1),
            subject,
            min_verification_interval,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Enabled,
    Paused,
    Disabled,
}

impl Status {
    fn parse(text: &str) -> Option<Status> {
        match text {
            "enabled" => Some(Status::Enabled),
            "paused" => Some(Status::Paused),
            "disabled" => Some(Status::Disabled),
            _ => None,
        }
    }
}

/// How a stream's SETs reach its receiver.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    pub method: String,
    /// Push: the receiver's endpoint. Poll: ours (transmitter-supplied).
    pub endpoint_url: String,
    /// Push: the `Authorization` header value to send (kept in the store, never answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_header: Option<String>,
}

/// A signed SET waiting for its stream's receiver.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Held {
    pub jti: String,
    pub set: String,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub session: Option<String>,
    /// The decision's time (ms), for the end-to-end latency.
    #[serde(default)]
    pub decision_ms: Option<i64>,
}

/// One stream, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stream {
    pub stream_id: String,
    pub owner: String,
    pub aud: String,
    pub delivery: Delivery,
    pub events_requested: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub status: Status,
    #[serde(default)]
    pub reason: Option<String>,
    /// Subjects added (with `default_subjects: NONE`, the only ones delivered).
    #[serde(default)]
    pub subjects_added: Vec<Value>,
    /// Subjects removed (with `ALL`, not delivered).
    #[serde(default)]
    pub subjects_removed: Vec<Value>,
    /// SETs not yet acknowledged, oldest first.
    #[serde(default)]
    pub held: VecDeque<Held>,
    #[serde(default)]
    pub last_verification_ms: i64,
}

/// The event types this transmitter sends.
pub fn events_supported() -> Vec<&'static str> {
    vec![
        crate::decision::CAEP_SESSION_REVOKED,
        set::CAEP_CREDENTIAL_CHANGE,
        set::CAEP_ASSURANCE_LEVEL_CHANGE,
        VERIFICATION,
    ]
}

impl Stream {
    fn events_delivered(&self) -> Vec<&str> {
        let supported = events_supported();
        self.events_requested
            .iter()
            .map(String::as_str)
            .filter(|e| supported.contains(e))
            .collect()
    }

    /// The configuration as SSF 1.0 §8.1.1 writes it (the authorization header left out).
    fn configuration(&self, issuer: &str, min_verification_interval: Duration) -> Value {
        let mut delivery = json!({
            "method": self.delivery.method,
            "endpoint_url": self.delivery.endpoint_url,
        });
        if self.delivery.authorization_header.is_some() {
            delivery["authorization_header"] = json!("(set)");
        }
        let mut config = json!({
            "stream_id": self.stream_id,
            "iss": issuer,
            "aud": self.aud,
            "delivery": delivery,
            "events_supported": events_supported(),
            "events_requested": self.events_requested,
            "events_delivered": self.events_delivered(),
            "min_verification_interval": min_verification_interval.as_secs(),
        });
        if let Some(description) = &self.description {
            config["description"] = json!(description);
        }
        config
    }

    /// The event a SET about `decision` is sent as on this stream, if it requested one.
    fn event_for(&self, decision: &DecisionIn) -> Option<&'static str> {
        let delivered = self.events_delivered();
        set::event_for(decision, |event| delivered.contains(&event))
    }

    /// Whether SETs about `decision` go on this stream (its subjects).
    fn wants(&self, decision: &DecisionIn, default_all: bool) -> bool {
        let names = subject_names(decision);
        let named = |list: &[Value]| list.iter().any(|s| subject_matches(s, &names));
        if default_all {
            !named(&self.subjects_removed)
        } else {
            named(&self.subjects_added) && !named(&self.subjects_removed)
        }
    }
}

/// The simple subjects a decision can be named by: the user's address, the session key, the
/// principal's id.
fn subject_names(decision: &DecisionIn) -> Vec<Value> {
    let mut names = vec![json!({ "format": "opaque", "id": decision.session.key })];
    if let Some(email) = decision.email() {
        names.push(json!({ "format": "email", "email": email }));
    }
    if let Some(id) = decision.user_id() {
        names.push(json!({ "format": "opaque", "id": id }));
    }
    names
}

/// A subject (simple, or complex with `user`/`session`/…) names the decision when it, or any
/// member of it, is one of `names`; `iss_sub` matches on `sub` alone.
fn subject_matches(subject: &Value, names: &[Value]) -> bool {
    let simple = |s: &Value| {
        names.contains(s)
            || (s.get("format").and_then(Value::as_str) == Some("iss_sub")
                && s.get("sub").and_then(Value::as_str).is_some_and(|sub| {
                    names
                        .iter()
                        .any(|n| n.get("id").and_then(Value::as_str) == Some(sub))
                }))
    };
    match subject.get("format").and_then(Value::as_str) {
        Some("complex") => subject
            .as_object()
            .is_some_and(|members| members.values().any(simple)),
        Some(_) => simple(subject),
        None => false,
    }
}

/// An answer of the management API: status and JSON body (none for `204`).
pub struct Answer {
    pub status: StatusCode,
    pub body: Option<Value>,
}

impl Answer {
    fn json(status: StatusCode, body: Value) -> Answer {
        Answer {
            status,
            body: Some(body),
        }
    }

    fn empty(status: StatusCode) -> Answer {
        Answer { status, body: None }
    }

    fn error(status: StatusCode, description: &str) -> Answer {
        let err = match status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
            _ => "invalid_request",
        };
        Answer::json(status, json!({ "err": err, "description": description }))
    }
}

/// Whether a stream took a kill, for its record.
pub enum Offered {
    Held,
    Full,
}

/// The streams, their held SETs, and where they are kept.
pub struct Streams {
    pub settings: StreamSettings,
    issuer: String,
    signer: Arc<SetSigner>,
    data: Mutex<BTreeMap<String, Stream>>,
    /// Woken when a stream may have work (a SET held, a stream enabled).
    pub changed: Notify,
    /// Where acknowledgements by poll are recorded (set once `actuate` runs).
    pub(super) reporter: std::sync::OnceLock<std::sync::Weak<Shared>>,
    /// Counts changes; [`Self::flushed`] says up to which one the file holds.
    generation: AtomicU64,
    flushed: watch::Sender<u64>,
    /// One writer of the file at a time, each writing what is there when it starts.
    file_lock: Mutex<()>,
    /// Woken (a stored permit) when a change waits to be written.
    dirty: Notify,
}

impl Streams {
    /// Loads the streams kept in the file, if any.
    pub fn open(settings: StreamSettings, issuer: &str, signer: Arc<SetSigner>) -> Result<Streams> {
        let data = match &settings.file {
            None => BTreeMap::new(),
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => {
                    let streams: Vec<Stream> =
                        serde_json::from_slice(&bytes).with_context(|| {
                            format!("{}: not actuate's streams file", path.display())
                        })?;
                    streams
                        .into_iter()
                        .map(|s| (s.stream_id.clone(), s))
                        .collect()
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            },
        };
        Ok(Streams {
            settings,
            issuer: issuer.to_owned(),
            signer,
            data: Mutex::new(data),
            changed: Notify::new(),
            reporter: std::sync::OnceLock::new(),
            generation: AtomicU64::new(0),
            flushed: watch::channel(0).0,
            file_lock: Mutex::new(()),
            dirty: Notify::new(),
        })
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Stream>> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes every stream as it is now (temporary file, sync, rename) and marks every change
    /// made before as written. Called without the data lock held.
    pub fn persist(&self) -> Result<()> {
        let _writer = self.file_lock.lock().unwrap_or_else(|e| e.into_inner());
        let (bytes, generation) = {
            let data = self.lock();
            let generation = self.generation.load(Ordering::SeqCst);
            let bytes = match &self.settings.file {
                Some(_) => Some(serde_json::to_vec(&data.values().collect::<Vec<_>>())?),
                None => None,
            };
            (bytes, generation)
        };
        if let (Some(path), Some(bytes)) = (&self.settings.file, bytes) {
            let tmp = path.with_extension("tmp");
            let write = || -> std::io::Result<()> {
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(&tmp)?;
                file.write_all(&bytes)?;
                file.sync_all()?;
                std::fs::rename(&tmp, path)?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    // The rename itself is durable once the directory is synced.
                    std::fs::File::open(dir)?.sync_all()?;
                }
                Ok(())
            };
            write().with_context(|| format!("writing the streams file {}", path.display()))?;
        }
        self.flushed.send_if_modified(|flushed| {
            let newer = generation > *flushed;
            if newer {
                *flushed = generation;
            }
            newer
        });
        Ok(())
    }

    /// Counts a change (made under the data lock) and asks the writer to write it; the
    /// change's number, for [`Self::written`].
    fn touch(&self) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.dirty.notify_one();
        generation
    }

    /// Waits until change `generation` is in the file (at most 30 s: false then).
    pub async fn written(&self, generation: u64) -> bool {
        let mut flushed = self.flushed.subscribe();
        let reached = tokio::time::timeout(
            Duration::from_secs(30),
            flushed.wait_for(|f| *f >= generation),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        reached
    }

    /// The client presenting `authorization` (`Bearer TOKEN`), if any.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Option<&Client> {
        let token = authorization?.strip_prefix(b"Bearer ")?;
        let digest: [u8; 32] = Sha256::digest(token).into();
        // Every client is compared, in constant time, whichever matches.
        let mut found = None;
        for client in &self.settings.clients {
            if openssl::memcmp::eq(&digest, &client.token_digest) {
                found = Some(client);
            }
        }
        found
    }

    /// Whether some stream (not disabled) takes a SET about `decision`.
    pub fn takes(&self, decision: &DecisionIn) -> bool {
        self.lock().values().any(|s| {
            s.status != Status::Disabled
                && s.event_for(decision).is_some()
                && s.wants(decision, self.settings.default_all)
        })
    }

    /// Signs a SET about `decision` for every stream that takes it and holds it there. Per
    /// stream: what happened, for the records; and the change to wait for ([`Self::written`])
    /// before the decision counts as settled, if there is one.
    pub fn offer(&self, decision: &DecisionIn) -> (Vec<(String, Result<Offered>)>, Option<u64>) {
        let mut data = self.lock();
        let mut offered = Vec::new();
        for stream in data.values_mut() {
            let Some(event) = stream.event_for(decision) else {
                continue;
            };
            if stream.status == Status::Disabled
                || !stream.wants(decision, self.settings.default_all)
            {
                continue;
            }
            let label = format!("{}/{}", stream.owner, stream.stream_id);
            if stream.held.iter().any(|h| h.jti == decision.decision_id) {
                offered.push((label, Ok(Offered::Held)));
                continue;
            }
            if stream.held.len() >= self.settings.max_held {
                offered.push((label, Ok(Offered::Full)));
                continue;
            }
            let signed = self.settings.subject.subject(decision).and_then(|subject| {
                let claims = set::claims(
                    &self.issuer,
                    Some(&stream.aud),
                    subject,
                    decision,
                    event,
                    now_ms() / 1000,
                );
                self.signer.sign(&claims)
            });
            match signed {
                Ok(token) => {
                    stream.held.push_back(Held {
                        jti: decision.decision_id.clone(),
                        set: token,
                        rule: Some(decision.rule.id.clone()),
                        session: Some(decision.session.key.clone()),
                        decision_ms: Some(decision.time_ms()),
                    });
                    offered.push((label, Ok(Offered::Held)));
                }
                Err(e) => offered.push((label, Err(e))),
            }
        }
        let change = (!offered.is_empty()).then(|| self.touch());
        drop(data);
        if change.is_some() {
            self.changed.notify_waiters();
        }
        (offered, change)
    }

    /// Handles one call to the management API by `client`.
    pub fn handle(
        &self,
        client: &Client,
        method: &hyper::Method,
        path: &str,
        query: Option<&str>,
        body: &[u8],
    ) -> Answer {
        use hyper::Method;
        let stream_id = query_param(query, "stream_id");
        let parsed = || -> Result<Value, Answer> {
            serde_json::from_slice::<Value>(body)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    Answer::error(StatusCode::BAD_REQUEST, "the body is not a JSON object")
                })
        };
        let answer = match (method, path) {
            (&Method::POST, CONFIGURATION_PATH) => parsed().map(|b| self.create(client, &b)),
            (&Method::GET, CONFIGURATION_PATH) => Ok(self.read(client, stream_id.as_deref())),
            (&Method::PATCH, CONFIGURATION_PATH) => {
                parsed().map(|b| self.update(client, &b, false))
            }
            (&Method::PUT, CONFIGURATION_PATH) => parsed().map(|b| self.update(client, &b, true)),
            (&Method::DELETE, CONFIGURATION_PATH) => Ok(self.delete(client, stream_id.as_deref())),
            (&Method::GET, STATUS_PATH) => Ok(self.status(client, stream_id.as_deref())),
            (&Method::POST, STATUS_PATH) => parsed().map(|b| self.set_status(client, &b)),
            (&Method::POST, ADD_SUBJECT_PATH) => parsed().map(|b| self.subject(client, &b, true)),
            (&Method::POST, REMOVE_SUBJECT_PATH) => {
                parsed().map(|b| self.subject(client, &b, false))
            }
            (&Method::POST, VERIFICATION_PATH) => parsed().map(|b| self.verify(client, &b)),
            (_, CONFIGURATION_PATH | STATUS_PATH) => Ok(Answer::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed here",
            )),
            (_, ADD_SUBJECT_PATH | REMOVE_SUBJECT_PATH | VERIFICATION_PATH) => {
                Ok(Answer::error(StatusCode::METHOD_NOT_ALLOWED, "POST only"))
            }
            _ => Ok(Answer::error(StatusCode::NOT_FOUND, "no such endpoint")),
        };
        answer.unwrap_or_else(|bad| bad)
    }

    fn owned<'a>(
        data: &'a mut BTreeMap<String, Stream>,
        client: &Client,
        stream_id: Option<&str>,
    ) -> Result<&'a mut Stream, Answer> {
        let Some(id) = stream_id else {
            return Err(Answer::error(
                StatusCode::BAD_REQUEST,
                "stream_id is missing",
            ));
        };
        match data.get_mut(id) {
            Some(stream) if stream.owner == client.name => Ok(stream),
            _ => Err(Answer::error(StatusCode::NOT_FOUND, "no such stream")),
        }
    }

    /// Releases the data lock, writes the change, then answers (or says it cannot).
    fn saved(
        &self,
        data: std::sync::MutexGuard<'_, BTreeMap<String, Stream>>,
        answer: Answer,
    ) -> Answer {
        self.generation.fetch_add(1, Ordering::SeqCst);
        drop(data);
        match self.persist() {
            Ok(()) => answer,
            Err(e) => {
                telemetry::log(
                    Level::Error,
                    "streams_save_failed",
                    "cannot write the streams file",
                    &[("error", V::S(&format!("{e:#}")))],
                );
                Answer::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the transmitter cannot store the change",
                )
            }
        }
    }

    /// Checks the receiver-supplied `delivery` and `events_requested` of a request.
    fn delivery_of(&self, stream_id: &str, body: &Value) -> Result<Delivery, Answer> {
        let bad = |why: &str| Answer::error(StatusCode::BAD_REQUEST, why);
        let delivery = body
            .get("delivery")
            .ok_or_else(|| bad("delivery is missing"))?;
        let method = delivery
            .get("method")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("delivery.method is missing"))?;
        match method {
            PUSH => {
                let url = delivery
                    .get("endpoint_url")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("delivery.endpoint_url is missing (push)"))?;
                let uri: hyper::Uri = url
                    .parse()
                    .map_err(|_| bad("delivery.endpoint_url is not a URL"))?;
                if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                    return Err(bad("delivery.endpoint_url is not an http(s) URL"));
                }
                let authorization_header = match delivery.get("authorization_header") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(h)) if hyper::header::HeaderValue::from_str(h).is_ok() => {
                        Some(h.clone())
                    }
                    Some(_) => {
                        return Err(bad("delivery.authorization_header is not a header value"))
                    }
                };
                Ok(Delivery {
                    method: PUSH.into(),
                    endpoint_url: url.to_owned(),
                    authorization_header,
                })
            }
            POLL => Ok(Delivery {
                method: POLL.into(),
                endpoint_url: format!(
                    "{}{POLL_PREFIX}{stream_id}",
                    self.issuer.trim_end_matches('/')
                ),
                authorization_header: None,
            }),
            _ => Err(bad(&format!(
                "delivery.method: {PUSH} (push) or {POLL} (poll)"
            ))),
        }
    }

    fn events_of(body: &Value) -> Result<Vec<String>, Answer> {
        match body.get("events_requested") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(list)) => list
                .iter()
                .map(|e| e.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    Answer::error(
                        StatusCode::BAD_REQUEST,
                        "events_requested is not a list of strings",
                    )
                }),
            Some(_) => Err(Answer::error(
                StatusCode::BAD_REQUEST,
                "events_requested is not a list",
            )),
        }
    }

    /// SSF 1.0 §8.1.1.1: create a stream.
    fn create(&self, client: &Client, body: &Value) -> Answer {
        let stream_id = random_hex(16);
        let made = (|| {
            Ok::<_, Answer>(Stream {
                delivery: self.delivery_of(&stream_id, body)?,
                events_requested: Self::events_of(body)?,
                description: body
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                stream_id: stream_id.clone(),
                owner: client.name.clone(),
                aud: client.audience.clone(),
                status: Status::Enabled,
                reason: None,
                subjects_added: Vec::new(),
                subjects_removed: Vec::new(),
                held: VecDeque::new(),
                last_verification_ms: 0,
            })
        })();
        let stream = match made {
            Ok(stream) => stream,
            Err(bad) => return bad,
        };
        let mut data = self.lock();
        let owned = data.values().filter(|s| s.owner == client.name).count();
        if owned >= self.settings.max_streams_per_client {
            return Answer::error(
                StatusCode::CONFLICT,
                "this receiver has as many streams as it may",
            );
        }
        let config = stream.configuration(&self.issuer, self.settings.min_verification_interval);
        data.insert(stream_id, stream);
        telemetry::log(
            Level::Info,
            "ssf_stream_created",
            "a receiver created a stream",
            &[("client", V::S(&client.name))],
        );
        self.saved(data, Answer::json(StatusCode::CREATED, config))
    }

    /// §8.1.1.2: one stream, or all of the client's.
    fn read(&self, client: &Client, stream_id: Option<&str>) -> Answer {
        let mut data = self.lock();
        match stream_id {
            None => Answer::json(
                StatusCode::OK,
                Value::Array(
                    data.values()
                        .filter(|s| s.owner == client.name)
                        .map(|s| {
                            s.configuration(&self.issuer, self.settings.min_verification_interval)
                        })
                        .collect(),
                ),
            ),
            Some(id) => match Self::owned(&mut data, client, Some(id)) {
                Ok(stream) => Answer::json(
                    StatusCode::OK,
                    stream.configuration(&self.issuer, self.settings.min_verification_interval),
                ),
                Err(answer) => answer,
            },
        }
    }

    /// §8.1.1.3 (PATCH: what is present changes) and §8.1.1.4 (PUT: what is missing is
    /// removed). Transmitter-supplied properties present must match.
    fn update(&self, client: &Client, body: &Value, replace: bool) -> Answer {
        let stream_id = body.get("stream_id").and_then(Value::as_str);
        let mut data = self.lock();
        let stream = match Self::owned(&mut data, client, stream_id) {
            Ok(stream) => stream,
            Err(answer) => return answer,
        };
        if body
            .get("iss")
            .is_some_and(|iss| iss.as_str() != Some(self.issuer.as_str()))
            || body
                .get("aud")
                .is_some_and(|aud| aud.as_str() != Some(stream.aud.as_str()))
        {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                "a transmitter-supplied property does not match",
            );
        }
        let id = stream.stream_id.clone();
        let delivery = match (body.get("delivery"), replace) {
            (None, false) => stream.delivery.clone(),
            _ => match self.delivery_of(&id, body) {
                Ok(delivery) => delivery,
                Err(bad) => return bad,
            },
        };
        let events = match (body.get("events_requested"), replace) {
            (None, false) => stream.events_requested.clone(),
            _ => match Self::events_of(body) {
                Ok(events) => events,
                Err(bad) => return bad,
            },
        };
        let description = match (body.get("description"), replace) {
            (None, false) => stream.description.clone(),
            (value, _) => value.and_then(Value::as_str).map(str::to_owned),
        };
        stream.delivery = delivery;
        stream.events_requested = events;
        stream.description = description;
        let config = stream.configuration(&self.issuer, self.settings.min_verification_interval);
        let answer = self.saved(data, Answer::json(StatusCode::OK, config));
        self.changed.notify_waiters();
        answer
    }

    /// §8.1.1.5: delete a stream and what it holds.
    fn delete(&self, client: &Client, stream_id: Option<&str>) -> Answer {
        let mut data = self.lock();
        let id = match Self::owned(&mut data, client, stream_id) {
            Ok(stream) => stream.stream_id.clone(),
            Err(answer) => return answer,
        };
        data.remove(&id);
        self.saved(data, Answer::empty(StatusCode::NO_CONTENT))
    }

    /// §8.1.2.1: read the status.
    fn status(&self, client: &Client, stream_id: Option<&str>) -> Answer {
        let mut data = self.lock();
        match Self::owned(&mut data, client, stream_id) {
            Ok(stream) => Answer::json(StatusCode::OK, status_body(stream)),
            Err(answer) => answer,
        }
    }

    /// §8.1.2.2: update the status. Disabling drops what the stream holds.
    fn set_status(&self, client: &Client, body: &Value) -> Answer {
        let stream_id = body.get("stream_id").and_then(Value::as_str);
        let Some(status) = body.get("status").and_then(Value::as_str) else {
            return Answer::error(StatusCode::BAD_REQUEST, "status is missing");
        };
        let Some(status) = Status::parse(status) else {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                "status: enabled, paused or disabled",
            );
        };
        let mut data = self.lock();
        let stream = match Self::owned(&mut data, client, stream_id) {
            Ok(stream) => stream,
            Err(answer) => return answer,
        };
        stream.status = status;
        stream.reason = body
            .get("reason")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if status == Status::Disabled {
            stream.held.clear();
        }
        let answer = Answer::json(StatusCode::OK, status_body(stream));
        let answer = self.saved(data, answer);
        self.changed.notify_waiters();
        answer
    }

    /// §8.1.3: add (or remove) a subject.
    fn subject(&self, client: &Client, body: &Value, add: bool) -> Answer {
        let stream_id = body.get("stream_id").and_then(Value::as_str);
        let Some(subject) = body
            .get("subject")
            .filter(|s| s.get("format").and_then(Value::as_str).is_some())
        else {
            return Answer::error(
                StatusCode::BAD_REQUEST,
                "subject is missing or has no format",
            );
        };
        let mut data = self.lock();
        let stream = match Self::owned(&mut data, client, stream_id) {
            Ok(stream) => stream,
            Err(answer) => return answer,
        };
        let (into, from) = if add {
            (&mut stream.subjects_added, &mut stream.subjects_removed)
        } else {
            (&mut stream.subjects_removed, &mut stream.subjects_added)
        };
        from.retain(|s| s != subject);
        if !into.contains(subject) {
            if into.len() >= MAX_SUBJECTS {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    "the stream names as many subjects as it may",
                );
            }
            into.push(subject.clone());
        }
        let status = if add {
            StatusCode::OK
        } else {
            StatusCode::NO_CONTENT
        };
        self.saved(data, Answer::empty(status))
    }

    /// §8.1.4.2: a verification SET with the receiver's `state` goes on the stream (held like
    /// any other; a disabled stream drops it).
    fn verify(&self, client: &Client, body: &Value) -> Answer {
        let stream_id = body.get("stream_id").and_then(Value::as_str);
        let state = match body.get("state") {
            None | Some(Value::Null) => None,
            Some(Value::String(state)) => Some(state.as_str()),
            Some(_) => return Answer::error(StatusCode::BAD_REQUEST, "state is not a string"),
        };
        let mut data = self.lock();
        let stream = match Self::owned(&mut data, client, stream_id) {
            Ok(stream) => stream,
            Err(answer) => return answer,
        };
        let now = now_ms();
        let interval = self.settings.min_verification_interval.as_millis() as i64;
        if stream.last_verification_ms > 0 && now - stream.last_verification_ms < interval {
            return Answer::error(
                StatusCode::TOO_MANY_REQUESTS,
                "verification requested again within min_verification_interval",
            );
        }
        stream.last_verification_ms = now;
        if stream.status != Status::Disabled {
            let jti = random_hex(16);
            let mut event = json!({});
            if let Some(state) = state {
                event["state"] = json!(state);
            }
            let claims = json!({
                "iss": self.issuer,
                "jti": jti,
                "iat": now / 1000,
                "aud": stream.aud,
                "sub_id": { "format": "opaque", "id": stream.stream_id },
                "events": { VERIFICATION: event },
            });
            match self.signer.sign(&claims) {
                Ok(token) => stream.held.push_back(Held {
                    jti,
                    set: token,
                    rule: None,
                    session: None,
                    decision_ms: None,
                }),
                Err(e) => {
                    telemetry::log(
                        Level::Error,
                        "verification_not_signed",
                        "cannot sign a verification SET",
                        &[("error", V::S(&format!("{e:#}")))],
                    );
                    return Answer::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the verification event cannot be signed",
                    );
                }
            }
        }
        let answer = self.saved(data, Answer::empty(StatusCode::NO_CONTENT));
        self.changed.notify_waiters();
        answer
    }

    /// The metadata members naming the management endpoints (SSF 1.0 §7.1).
    pub fn metadata(&self, base: &str) -> Value {
        json!({
            "configuration_endpoint": format!("{base}{CONFIGURATION_PATH}"),
            "status_endpoint": format!("{base}{STATUS_PATH}"),
            "add_subject_endpoint": format!("{base}{ADD_SUBJECT_PATH}"),
            "remove_subject_endpoint": format!("{base}{REMOVE_SUBJECT_PATH}"),
            "verification_endpoint": format!("{base}{VERIFICATION_PATH}"),
            "default_subjects": if self.settings.default_all { "ALL" } else { "NONE" },
        })
    }
}

impl Streams {
    /// RFC 8936 poll: `ack` and `setErrs` settle SETs (they leave the stream, with a
    /// `delivered` or `refused` record), then up to `maxEvents` held SETs are returned, oldest
    /// first — those returned before and not yet acknowledged included, under the same `jti`.
    /// Without `returnImmediately: true` and with nothing to return, the call waits up to 20 s
    /// for a SET. `maxEvents: 0` only acknowledges.
    pub async fn poll(&self, client: &Client, stream_id: &str, body: &[u8]) -> Answer {
        let request = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Default::default())
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return Answer::error(StatusCode::BAD_REQUEST, "the body is not a JSON object")
                }
            }
        };
        let max_events = match request.get("maxEvents") {
            None => MAX_EVENTS,
            Some(n) => match n.as_u64() {
                Some(n) => (n as usize).min(MAX_EVENTS),
                None => return Answer::error(StatusCode::BAD_REQUEST, "maxEvents is not a number"),
            },
        };
        let return_immediately = match request.get("returnImmediately") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    "returnImmediately is not a boolean",
                )
            }
        };
        let acks: Vec<&str> = match request.get("ack") {
            None => Vec::new(),
            Some(Value::Array(list)) => match list.iter().map(Value::as_str).collect() {
                Some(acks) => acks,
                None => return Answer::error(StatusCode::BAD_REQUEST, "ack is not a list of jti"),
            },
            Some(_) => return Answer::error(StatusCode::BAD_REQUEST, "ack is not a list"),
        };
        let errs: Vec<(&str, String)> = match request.get("setErrs") {
            None => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(jti, e)| {
                    let err = e
                        .get("err")
                        .and_then(Value::as_str)
                        .unwrap_or("unspecified");
                    let description = e.get("description").and_then(Value::as_str);
                    let text = match description {
                        Some(d) => format!("{err}: {d}"),
                        None => err.to_owned(),
                    };
                    (jti.as_str(), text)
                })
                .collect(),
            Some(_) => return Answer::error(StatusCode::BAD_REQUEST, "setErrs is not an object"),
        };
        let settled = {
            let mut data = self.lock();
            let stream = match Self::owned(&mut data, client, Some(stream_id)) {
                Ok(stream) => stream,
                Err(answer) => return answer,
            };
            if stream.delivery.method != POLL {
                return Answer::error(StatusCode::BAD_REQUEST, "not a poll stream");
            }
            let mut settled = Vec::new();
            let outcomes = acks
                .iter()
                .map(|jti| (*jti, None))
                .chain(errs.iter().map(|(jti, e)| (*jti, Some(e.as_str()))));
            for (jti, err) in outcomes {
                if let Some(at) = stream.held.iter().position(|h| h.jti == jti) {
                    let held = stream.held.remove(at).expect("found");
                    settled.push((held, err.map(str::to_owned)));
                }
            }
            let change = (!settled.is_empty()).then(|| self.touch());
            (settled, change)
        };
        let (settled, change) = settled;
        // The acknowledgement is in the file before the answer: after a crash, what was
        // acknowledged is not handed out again.
        if let Some(change) = change {
            if !self.written(change).await {
                return Answer::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the transmitter cannot store the acknowledgement",
                );
            }
        }
        let label = format!("{}/{stream_id}", client.name);
        self.report_settled(&label, &client.name, settled);
        let deadline = tokio::time::Instant::now() + LONG_POLL;
        loop {
            let notified = self.changed.notified();
            let (sets, more) = {
                let mut data = self.lock();
                let Ok(stream) = Self::owned(&mut data, client, Some(stream_id)) else {
                    return Answer::error(StatusCode::NOT_FOUND, "no such stream");
                };
                if stream.status != Status::Enabled || max_events == 0 {
                    (serde_json::Map::new(), false)
                } else {
                    let sets: serde_json::Map<String, Value> = stream
                        .held
                        .iter()
                        .take(max_events)
                        .map(|h| (h.jti.clone(), json!(h.set)))
                        .collect();
                    let more = stream.held.len() > sets.len();
                    (sets, more)
                }
            };
            if !sets.is_empty()
                || return_immediately
                || max_events == 0
                || tokio::time::Instant::now() >= deadline
            {
                let mut body = json!({ "sets": sets });
                if more {
                    body["moreAvailable"] = json!(true);
                }
                return Answer::json(StatusCode::OK, body);
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Records and counts SETs a poll settled.
    fn report_settled(&self, receiver: &str, client: &str, settled: Vec<(Held, Option<String>)>) {
        let Some(ctx) = self.reporter.get().and_then(std::sync::Weak::upgrade) else {
            return;
        };
        for (held, err) in settled {
            let outcome = if err.is_some() {
                "refused"
            } else {
                "delivered"
            };
            let end_to_end = held.decision_ms.map(|t| now_ms() - t);
            ctx.metrics.delivery(client, outcome, 0, end_to_end);
            super::write_record(
                &ctx,
                Record {
                    outcome,
                    decision_id: Some(&held.jti),
                    rule: held.rule.as_deref(),
                    session: held.session.as_deref(),
                    receiver: Some(receiver),
                    reason: err.as_deref(),
                    decision_to_ack_ms: end_to_end,
                    ..Record::default()
                },
            );
        }
    }
}

fn status_body(stream: &Stream) -> Value {
    let mut body = json!({ "stream_id": stream.stream_id, "status": stream.status });
    if let Some(reason) = &stream.reason {
        body["reason"] = json!(reason);
    }
    body
}

/// One `name=value` of a query string, percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let pair = bytes
            .get(i + 1..i + 3)
            .and_then(|p| Some(hex(p[0])? * 16 + hex(p[1])?));
        match (bytes[i], pair) {
            (b'%', Some(b)) => {
                out.push(b as u8);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `bytes` random bytes as hex (stream ids, verification `jti`s).
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if openssl::rand::rand_bytes(&mut buf).is_err() {
        // OpenSSL's generator failing is not recoverable; fall back to the hasher's keys so
        // an id is still unpredictable enough to be unique.
        use std::hash::{BuildHasher, Hasher};
        for chunk in buf.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_i64(now_ms());
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Pushes what enabled push streams hold, in order, until `stop`: one delivery task per stream
/// with work; each SET leaves the queue once delivered, refused or failed for good.
pub(super) async fn push_streams(
    ctx: Arc<Shared>,
    streams: Arc<Streams>,
    stop: watch::Receiver<bool>,
) {
    let busy: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut stop_wait = stop.clone();
    loop {
        let notified = streams.changed.notified();
        let work: Vec<String> = {
            let data = streams.lock();
            let busy = busy.lock().unwrap_or_else(|e| e.into_inner());
            data.values()
                .filter(|s| {
                    s.status == Status::Enabled
                        && s.delivery.method == PUSH
                        && !s.held.is_empty()
                        && !busy.contains(&s.stream_id)
                })
                .map(|s| s.stream_id.clone())
                .collect()
        };
        for id in work {
            busy.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone());
            let (ctx, streams, stop, busy) =
                (ctx.clone(), streams.clone(), stop.clone(), busy.clone());
            tokio::spawn(async move {
                drain(&ctx, &streams, &id, &stop).await;
                busy.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                streams.changed.notify_waiters();
            });
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop_wait.wait_for(|s| *s) => return,
        }
    }
}

/// Writes the streams file whenever a change waits, one write at a time off the runtime
/// thread; what changes while one write syncs goes in the next.
pub async fn write_streams(streams: Arc<Streams>) {
    loop {
        tokio::select! {
            _ = streams.dirty.notified() => {}
            // A failed write is tried again.
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if streams.generation.load(Ordering::SeqCst) <= *streams.flushed.borrow() {
            continue;
        }
        let writer = streams.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || writer.persist()).await {
            telemetry::log(
                Level::Error,
                "streams_save_failed",
                "cannot write the streams file; the kills held for streams wait for it",
                &[("error", V::S(&format!("{e:#}")))],
            );
        }
    }
}

/// The settings a stream's pusher runs on.
fn push_settings(stream: &Stream) -> Result<ReceiverSettings> {
    Ok(ReceiverSettings {
        name: format!("{}/{}", stream.owner, stream.stream_id),
        kind: Kind::Ssf,
        dry_run: false,
        endpoint: stream.delivery.endpoint_url.parse()?,
        audience: Some(stream.aud.clone()),
        authorization: None,
        subject: SubjectFormat::Complex,
        events: Vec::new(),
        take: Take {
            rules: None,
            sessions: None,
            actions: Vec::new(),
            modes: Vec::new(),
        },
        timeout: Duration::from_secs(5),
        retry: Retry {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
            give_up_after: Duration::from_secs(3600),
        },
        breaker_failures: 5,
        breaker_open_for: Duration::from_secs(30),
        ca_file: None,
        aws: None,
        github: None,
        client_credentials: None,
    })
}

/// Delivers the front of one stream's queue until it is empty, the stream is no longer an
/// enabled push stream, or the process stops.
async fn drain(ctx: &Shared, streams: &Streams, id: &str, stop: &watch::Receiver<bool>) {
    let mut pusher: Option<(Delivery, Pusher)> = None;
    loop {
        let (front, delivery, owner) = {
            let data = streams.lock();
            let Some(stream) = data.get(id) else { return };
            if stream.status != Status::Enabled || stream.delivery.method != PUSH {
                return;
            }
            let Some(front) = stream.held.front() else {
                return;
            };
            (front.clone(), stream.delivery.clone(), stream.owner.clone())
        };
        let current = pusher.as_ref().is_some_and(|(d, _)| {
            d.endpoint_url == delivery.endpoint_url
                && d.authorization_header == delivery.authorization_header
        });
        if !current {
            let built = streams
                .lock()
                .get(id)
                .map(push_settings)
                .transpose()
                .and_then(|s| s.map(Pusher::new).transpose());
            match built {
                Ok(Some(mut p)) => {
                    if let Some(header) = &delivery.authorization_header {
                        if p.set_authorization_header(header).is_err() {
                            return;
                        }
                    }
                    pusher = Some((delivery.clone(), p));
                }
                _ => return,
            }
        }
        let Some((_, p)) = &pusher else { return };
        let receiver = format!("{owner}/{id}");
        let request = Outgoing::set(&p.settings.endpoint, front.set.clone());
        let on_retry = |_: &str| ctx.metrics.retry(&owner);
        let delivery = p.deliver(&request, stop, &on_retry).await;
        let (outcome, reason) = match &delivery.outcome {
            Outcome::Delivered => ("delivered", None),
            Outcome::Refused(r) => ("refused", Some(r.as_str())),
            Outcome::Failed(r) => ("failed", Some(r.as_str())),
            Outcome::Interrupted => return,
        };
        {
            // Written with the next change: lost in a crash, the SET is sent again, under its
            // own `jti`, which the receiver deduplicates.
            let mut data = streams.lock();
            if let Some(stream) = data.get_mut(id) {
                stream.held.retain(|h| h.jti != front.jti);
            }
            streams.touch();
        }
        let end_to_end = front.decision_ms.map(|t| now_ms() - t);
        ctx.metrics.delivery(
            &owner,
            outcome,
            delivery.latency.as_micros() as u64,
            end_to_end,
        );
        super::write_record(
            ctx,
            Record {
                outcome,
                decision_id: Some(&front.jti),
                rule: front.rule.as_deref(),
                session: front.session.as_deref(),
                receiver: Some(&receiver),
                reason,
                attempts: Some(delivery.attempts),
                status: delivery.status,
                latency_ms: Some(delivery.latency.as_secs_f64() * 1000.0),
                decision_to_ack_ms: end_to_end,
                ..Record::default()
            },
        );
    }
}
