//! SSF 1.0 streams over real HTTP: a receiver sets up a stream with `sessionguard actuate`'s
//! management API (create, read, update, replace, delete, status, subjects, verification),
//! authenticated by its bearer token, and gets the signed SETs on its push endpoint (the test
//! receiver of tests/support/ssf_receiver.rs verifies each against the JWKS), or polls for
//! them (RFC 8936).
#![cfg(feature = "actuate")]
#![allow(
    clippy::disallowed_methods,
    reason = "waiting for a process and its receiver is wall-clock by nature"
)]

#[path = "support/ssf_receiver.rs"]
mod ssf_receiver;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use josekit::jws::ES256;
use serde_json::{json, Value};
use ssf_receiver::{Fault, Plan, Receiver};

const ISSUER_HOST: &str = "127.0.0.1";
const IDP_TOKEN: &str = "idp-stream-token-5b1e0c9a";
const OTHER_TOKEN: &str = "other-stream-token-77d2aa01";
const PUSH_AUTH: &str = "Bearer push-token-for-the-idp-3c9";
const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sg-streams-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Transmitter {
    dir: PathBuf,
    config: PathBuf,
    base: String,
}

impl Transmitter {
    fn new(name: &str) -> Transmitter {
        Transmitter::with(name, |_| String::new())
    }

    /// With more config after the streams (`receivers:` …), made knowing the issuer URL.
    fn with(name: &str, extra: impl Fn(&str) -> String) -> Transmitter {
        let dir = scratch(name);
        std::fs::write(
            dir.join("es256.pem"),
            ES256.generate_key_pair().unwrap().to_pem_private_key(),
        )
        .unwrap();
        let port = free_port();
        let base = format!("http://{ISSUER_HOST}:{port}");
        let config = dir.join("actuate.yml");
        std::fs::write(
            &config,
            format!(
                "issuer: {base}\n\
                 signing_key: {{ alg: ES256, kid: test-1, key: {{ file: es256.pem }} }}\n\
                 listen: 127.0.0.1:{port}\n\
                 records: records.ndjson\n\
                 streams:\n\
                 \x20 file: streams.json\n\
                 \x20 min_verification_interval: 1h\n\
                 \x20 clients:\n\
                 \x20 - {{ name: idp, token: {{ env: SG_TEST_IDP_TOKEN }}, audience: https://idp.test }}\n\
                 \x20 - {{ name: other, token: {{ env: SG_TEST_OTHER_TOKEN }} }}\n{}",
                extra(&base)
            ),
        )
        .unwrap();
        Transmitter { dir, config, base }
    }

    /// `actuate` reading decisions from a pipe the test writes to.
    fn start(&self) -> (Child, ChildStdin) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
            .args(["actuate", "--config"])
            .arg(&self.config)
            .args(["--decisions", "-"])
            .env("SG_TEST_IDP_TOKEN", IDP_TOKEN)
            .env("SG_TEST_OTHER_TOKEN", OTHER_TOKEN)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let start = Instant::now();
        while call(
            "GET",
            &format!("{}/.well-known/ssf-configuration", self.base),
            None,
            None,
        )
        .is_none()
        {
            assert!(start.elapsed() < Duration::from_secs(30), "no endpoints");
            std::thread::sleep(Duration::from_millis(50));
        }
        (child, stdin)
    }

    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("records.ndjson"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn api(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let (status, _, body) = call(
            method,
            &format!("{}{path}", self.base),
            Some(&format!("Bearer {token}")),
            body,
        )
        .expect("the transmitter answers");
        (status, body)
    }
}

/// One HTTP call; `None` when nothing answers. The body as JSON (`Null` when empty).
fn call(
    method: &str,
    url: &str,
    authorization: Option<&str>,
    body: Option<Value>,
) -> Option<(u16, hyper::HeaderMap, Value)> {
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(auth) = authorization {
        request = request.header("authorization", auth);
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = request.body(Full::new(bytes::Bytes::from(body))).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<bytes::Bytes>>();
        let response = client.request(request).await.ok()?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or(Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        Some((status, headers, json))
    })
}

/// A kill decision about `who` (an e-mail address) with id `id`.
fn kill(id: &str, who: &str) -> Value {
    json!({
        "decision_id": id,
        "time": "2026-12-04T18:00:00.000Z",
        "mode": "enforce",
        "action": "revoke_session",
        "severity": "high",
        "rule": { "id": "sg.test.streams", "version": "1", "title": "Streams test" },
        "session": { "key": format!("okta:sess-{id}") },
        "principal": { "type": "User", "id": format!("00u{id}"), "name": who },
        "evidence": { "reason": "test" },
    })
}

fn send(stdin: &mut ChildStdin, decisions: &[Value]) {
    for d in decisions {
        writeln!(stdin, "{d}").unwrap();
    }
    stdin.flush().unwrap();
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn finish(mut child: Child, stdin: ChildStdin) {
    drop(stdin);
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "actuate did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn receiver(base: &str) -> Receiver {
    Receiver::start(Plan {
        fault: Box::new(|_| Fault::None),
        refuse: Default::default(),
        issuer: base.to_owned(),
        audience: "https://idp.test".into(),
        jwks_url: format!("{base}/jwks.json"),
        authorization: Some(PUSH_AUTH.into()),
    })
}

#[test]
fn stream_endpoints_refuse_callers_without_a_clients_token_and_reveal_nothing() {
    let t = Transmitter::new("auth");
    let (child, stdin) = t.start();
    let (_, _, metadata) = call(
        "GET",
        &format!("{}/.well-known/ssf-configuration", t.base),
        None,
        None,
    )
    .unwrap();
    assert_eq!(metadata["issuer"], t.base.as_str());
    assert_eq!(
        metadata["configuration_endpoint"],
        format!("{}/ssf/stream", t.base)
    );
    for member in [
        "status_endpoint",
        "add_subject_endpoint",
        "remove_subject_endpoint",
        "verification_endpoint",
    ] {
        let url = metadata[member].as_str().unwrap();
        assert!(url.starts_with(&format!("{}/ssf/", t.base)), "{member}");
    }
    assert_eq!(
        metadata["delivery_methods_supported"],
        json!(["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"])
    );

    let (status, created) = t.api(
        "POST",
        "/ssf/stream",
        IDP_TOKEN,
        Some(json!({ "delivery": { "method": "urn:ietf:rfc:8936" }, "events_requested": [SESSION_REVOKED] })),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["stream_id"].as_str().unwrap().to_owned();

    let paths = [
        ("GET", format!("/ssf/stream?stream_id={id}")),
        ("GET", "/ssf/stream".to_owned()),
        ("DELETE", format!("/ssf/stream?stream_id={id}")),
        ("GET", format!("/ssf/status?stream_id={id}")),
        ("POST", "/ssf/status".to_owned()),
        ("POST", "/ssf/verify".to_owned()),
        ("POST", "/ssf/subjects:add".to_owned()),
        ("POST", format!("/ssf/poll/{id}")),
    ];
    let body = json!({ "stream_id": id, "status": "disabled", "state": "x" });
    for (method, path) in &paths {
        for auth in [
            None,
            Some("Bearer not-a-token-anyone-has".to_owned()),
            Some(format!("Bearer {IDP_TOKEN}x")),
            Some(format!("Basic {IDP_TOKEN}")),
            Some(IDP_TOKEN.to_owned()),
        ] {
            let (status, headers, answer) = call(
                method,
                &format!("{}{path}", t.base),
                auth.as_deref(),
                Some(body.clone()),
            )
            .unwrap();
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {answer}");
            assert_eq!(headers["www-authenticate"], "Bearer");
            assert!(!answer.to_string().contains(&id), "{answer}");
        }
    }
    // Another client does not see the stream, nor can it touch it.
    let (status, _) = t.api(
        "GET",
        &format!("/ssf/stream?stream_id={id}"),
        OTHER_TOKEN,
        None,
    );
    assert_eq!(status, 404);
    assert_eq!(
        t.api("GET", "/ssf/stream", OTHER_TOKEN, None),
        (200, json!([]))
    );
    let (status, _) = t.api(
        "DELETE",
        &format!("/ssf/stream?stream_id={id}"),
        OTHER_TOKEN,
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = t.api(
        "POST",
        "/ssf/status",
        OTHER_TOKEN,
        Some(json!({ "stream_id": id, "status": "disabled" })),
    );
    assert_eq!(status, 404);
    // After all that, the stream is as it was.
    let (status, state) = t.api(
        "GET",
        &format!("/ssf/status?stream_id={id}"),
        IDP_TOKEN,
        None,
    );
    assert_eq!((status, &state["status"]), (200, &json!("enabled")));
    finish(child, stdin);
    let stderr = std::fs::read_to_string(t.dir.join("stderr")).unwrap();
    for secret in [IDP_TOKEN, OTHER_TOKEN] {
        assert!(!stderr.contains(secret), "a token in the log");
    }
}

#[test]
fn a_push_stream_is_managed_verified_paused_disabled_and_survives_a_restart() {
    let t = Transmitter::new("push");
    let receiver = receiver(&t.base);
    let (child, mut stdin) = t.start();

    // Create: the receiver's properties are kept, the transmitter's are filled in.
    let (status, created) = t.api(
        "POST",
        "/ssf/stream",
        IDP_TOKEN,
        Some(json!({
            "delivery": { "method": "urn:ietf:rfc:8935", "endpoint_url": receiver.endpoint(),
                          "authorization_header": PUSH_AUTH },
            "events_requested": [SESSION_REVOKED, VERIFICATION, "urn:example:not-sent-here"],
            "description": "the IdP's stream",
        })),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["stream_id"].as_str().unwrap().to_owned();
    assert_eq!(created["iss"], t.base.as_str());
    assert_eq!(created["aud"], "https://idp.test");
    assert_eq!(
        created["events_delivered"],
        json!([SESSION_REVOKED, VERIFICATION])
    );
    assert_eq!(
        created["delivery"]["endpoint_url"],
        receiver.endpoint().as_str()
    );
    assert!(
        !created.to_string().contains("push-token"),
        "the receiver's push token is never answered: {created}"
    );
    // One stream per client (the default): a second is a conflict.
    let (status, _) = t.api(
        "POST",
        "/ssf/stream",
        IDP_TOKEN,
        Some(json!({ "delivery": { "method": "urn:ietf:rfc:8936" } })),
    );
    assert_eq!(status, 409);
    // Bad requests are 400 and change nothing.
    for bad in [
        json!({ "delivery": { "method": "urn:example:carrier-pigeon" } }),
        json!({ "delivery": { "method": "urn:ietf:rfc:8935" } }),
        json!({ "delivery": { "method": "urn:ietf:rfc:8935", "endpoint_url": "ftp://x" } }),
    ] {
        let (status, _) = t.api(
            "PUT",
            "/ssf/stream",
            IDP_TOKEN,
            Some(json!({ "stream_id": id, "delivery": bad["delivery"] })),
        );
        assert_eq!(status, 400, "{bad}");
    }
    let (status, answer) = t.api(
        "POST",
        "/ssf/status",
        IDP_TOKEN,
        Some(json!(["not", "an object"])),
    );
    assert_eq!(status, 400, "{answer}");

    // Verification: the SET carries the receiver's state; a second request so soon is 429.
    let (status, _) = t.api(
        "POST",
        "/ssf/verify",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "state": "state-8e1f" })),
    );
    assert_eq!(status, 204);
    wait_until("the verification SET", Duration::from_secs(20), || {
        receiver.log().claims.len() == 1
    });
    {
        let log = receiver.log();
        let claims = log.claims.values().next().unwrap();
        assert_eq!(claims["events"][VERIFICATION]["state"], "state-8e1f");
        assert_eq!(claims["sub_id"], json!({ "format": "opaque", "id": id }));
        assert!(log.bad.is_empty(), "{:?}", log.bad);
    }
    let (status, _) = t.api(
        "POST",
        "/ssf/verify",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "state": "again" })),
    );
    assert_eq!(status, 429);

    // Enabled: kills arrive, signed, about their subject.
    send(
        &mut stdin,
        &[
            kill("a1", "ann@northwind.example"),
            kill("a2", "bob@northwind.example"),
        ],
    );
    wait_until("two kills", Duration::from_secs(20), || {
        let log = receiver.log();
        log.accepted.contains_key("a1") && log.accepted.contains_key("a2")
    });
    assert_eq!(
        receiver.log().claims["a1"]["sub_id"]["user"],
        json!({ "format": "email", "email": "ann@northwind.example" })
    );

    // Paused: kills are held, not sent; enabled again, they arrive in order.
    let (status, answer) = t.api(
        "POST",
        "/ssf/status",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "status": "paused", "reason": "maintenance" })),
    );
    assert_eq!((status, &answer["status"]), (200, &json!("paused")));
    send(
        &mut stdin,
        &[
            kill("p1", "ann@northwind.example"),
            kill("p2", "cy@northwind.example"),
        ],
    );
    wait_until("p1 and p2 held", Duration::from_secs(20), || {
        t.records()
            .iter()
            .filter(|r| {
                r["outcome"] == "held"
                    && r["decision_id"]
                        .as_str()
                        .is_some_and(|d| d.starts_with('p'))
            })
            .count()
            == 2
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !receiver.log().accepted.contains_key("p1"),
        "sent while paused"
    );
    let (_, answer) = t.api(
        "GET",
        &format!("/ssf/status?stream_id={id}"),
        IDP_TOKEN,
        None,
    );
    assert_eq!(
        answer,
        json!({ "stream_id": id, "status": "paused", "reason": "maintenance" })
    );
    let (status, _) = t.api(
        "POST",
        "/ssf/status",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "status": "enabled" })),
    );
    assert_eq!(status, 200);
    wait_until("the held kills", Duration::from_secs(20), || {
        let log = receiver.log();
        log.accepted.contains_key("p1") && log.accepted.contains_key("p2")
    });

    // A subject removed is not sent about; added back, it is.
    let ann = json!({ "format": "email", "email": "ann@northwind.example" });
    let (status, _) = t.api(
        "POST",
        "/ssf/subjects:remove",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "subject": ann })),
    );
    assert_eq!(status, 204);
    send(
        &mut stdin,
        &[
            kill("r1", "ann@northwind.example"),
            kill("r2", "bob@northwind.example"),
        ],
    );
    wait_until("r2", Duration::from_secs(20), || {
        receiver.log().accepted.contains_key("r2")
    });
    let r1: Vec<Value> = t
        .records()
        .into_iter()
        .filter(|r| r["decision_id"] == "r1")
        .collect();
    assert_eq!(r1.len(), 1, "{r1:?}");
    assert_eq!(r1[0]["outcome"], "not_taken");
    let (status, _) = t.api(
        "POST",
        "/ssf/subjects:add",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "subject": ann, "verified": true })),
    );
    assert_eq!(status, 200);

    // Disabled: nothing is held; enabled again, what came meanwhile never arrives.
    t.api(
        "POST",
        "/ssf/status",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "status": "disabled" })),
    );
    send(&mut stdin, &[kill("d1", "ann@northwind.example")]);
    wait_until("d1 settled", Duration::from_secs(20), || {
        t.records().iter().any(|r| r["decision_id"] == "d1")
    });
    t.api(
        "POST",
        "/ssf/status",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "status": "enabled" })),
    );

    // Update (PATCH keeps what is not named) and replace (PUT drops it).
    let (status, patched) = t.api(
        "PATCH",
        "/ssf/stream",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "description": "renamed" })),
    );
    assert_eq!(status, 200);
    assert_eq!(patched["description"], "renamed");
    assert_eq!(patched["events_requested"], created["events_requested"]);
    let (status, _) = t.api(
        "PATCH",
        "/ssf/stream",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "iss": "https://someone-else.example" })),
    );
    assert_eq!(
        status, 400,
        "a transmitter-supplied property that does not match"
    );

    // Paused, then a restart: the held SETs and the stream survive it.
    t.api(
        "POST",
        "/ssf/status",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "status": "paused" })),
    );
    send(
        &mut stdin,
        &[
            kill("s1", "ann@northwind.example"),
            kill("s2", "bob@northwind.example"),
        ],
    );
    wait_until("s1 and s2 held", Duration::from_secs(20), || {
        t.records()
            .iter()
            .filter(|r| {
                r["outcome"] == "held"
                    && r["decision_id"]
                        .as_str()
                        .is_some_and(|d| d.starts_with('s'))
            })
            .count()
            == 2
    });
    finish(child, stdin);
    let (child, stdin) = t.start();
    let (status, read) = t.api(
        "GET",
        &format!("/ssf/stream?stream_id={id}"),
        IDP_TOKEN,
        None,
    );
    assert_eq!((status, &read["description"]), (200, &json!("renamed")));
    t.api(
        "POST",
        "/ssf/status",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "status": "enabled" })),
    );
    wait_until(
        "the kills held across the restart",
        Duration::from_secs(20),
        || {
            let log = receiver.log();
            log.accepted.contains_key("s1") && log.accepted.contains_key("s2")
        },
    );

    {
        let log = receiver.log();
        assert!(
            !log.accepted.contains_key("d1"),
            "held by a disabled stream"
        );
        assert!(!log.accepted.contains_key("r1"), "about a removed subject");
        assert!(log.accepted.values().all(|n| *n == 1), "{:?}", log.accepted);
        assert!(log.bad.is_empty() && log.unauthorized == 0, "{:?}", log.bad);
        let want = ["a1", "a2", "p1", "p2", "r2", "s1", "s2"];
        let kills: Vec<&str> = log
            .accepted
            .keys()
            .map(String::as_str)
            .filter(|k| k.len() == 2)
            .collect();
        assert_eq!(kills, want);
    }

    // Delete: gone, for reads and status alike.
    let (status, body) = t.api(
        "DELETE",
        &format!("/ssf/stream?stream_id={id}"),
        IDP_TOKEN,
        None,
    );
    assert_eq!((status, body), (204, Value::Null));
    let (status, _) = t.api(
        "GET",
        &format!("/ssf/stream?stream_id={id}"),
        IDP_TOKEN,
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = t.api(
        "GET",
        &format!("/ssf/status?stream_id={id}"),
        IDP_TOKEN,
        None,
    );
    assert_eq!(status, 404);
    finish(child, stdin);
}

/// A polling receiver's view of one poll: the SETs by `jti`, verified against the
/// transmitter's JWKS (signature, `typ`, `iss`, `aud`), and `moreAvailable`.
struct Polled {
    sets: std::collections::BTreeMap<String, String>,
    claims: std::collections::BTreeMap<String, Value>,
    more: bool,
}

fn poll(t: &Transmitter, id: &str, request: Value) -> Polled {
    poll_with(t, IDP_TOKEN, id, request, "https://idp.test")
}

fn poll_with(t: &Transmitter, token: &str, id: &str, request: Value, audience: &str) -> Polled {
    let (status, body) = t.api("POST", &format!("/ssf/poll/{id}"), token, Some(request));
    assert_eq!(status, 200, "{body}");
    let (_, _, jwks) = call("GET", &format!("{}/jwks.json", t.base), None, None).unwrap();
    let jwk = josekit::jwk::Jwk::from_map(jwks["keys"][0].as_object().unwrap().clone()).unwrap();
    let verifier = ES256.verifier_from_jwk(&jwk).unwrap();
    let mut polled = Polled {
        sets: Default::default(),
        claims: Default::default(),
        more: body["moreAvailable"] == true,
    };
    for (jti, set) in body["sets"].as_object().unwrap() {
        let set = set.as_str().unwrap();
        let (payload, header) = josekit::jws::deserialize_compact(set, &verifier).unwrap();
        assert_eq!(header.token_type(), Some("secevent+jwt"));
        let claims: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            claims["jti"],
            jti.as_str(),
            "the map's key is the SET's jti"
        );
        assert_eq!(claims["iss"], t.base.as_str());
        assert_eq!(claims["aud"], audience);
        polled.sets.insert(jti.clone(), set.to_owned());
        polled.claims.insert(jti.clone(), claims);
    }
    polled
}

fn keys(polled: &Polled) -> Vec<&str> {
    polled.sets.keys().map(String::as_str).collect()
}

#[test]
fn a_poll_stream_holds_sets_until_acknowledged_across_a_crash() {
    let t = Transmitter::new("poll");
    let (mut child, mut stdin) = t.start();
    let (status, created) = t.api(
        "POST",
        "/ssf/stream",
        IDP_TOKEN,
        Some(json!({ "delivery": { "method": "urn:ietf:rfc:8936" }, "events_requested": [SESSION_REVOKED] })),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["stream_id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["delivery"]["endpoint_url"],
        format!("{}/ssf/poll/{id}", t.base)
    );
    // Nothing held yet: an immediate poll is empty.
    let empty = poll(&t, &id, json!({ "returnImmediately": true }));
    assert!(empty.sets.is_empty() && !empty.more);

    let kills: Vec<Value> = (1..=10)
        .map(|n| kill(&format!("k{n:02}"), &format!("u{n}@northwind.example")))
        .collect();
    send(&mut stdin, &kills);
    wait_until("ten kills held", Duration::from_secs(20), || {
        t.records()
            .iter()
            .filter(|r| r["outcome"] == "held")
            .count()
            == 10
    });

    let first = poll(
        &t,
        &id,
        json!({ "maxEvents": 4, "returnImmediately": true }),
    );
    assert_eq!(keys(&first), ["k01", "k02", "k03", "k04"]);
    assert!(first.more);
    assert_eq!(
        first.claims["k01"]["sub_id"]["user"],
        json!({ "format": "email", "email": "u1@northwind.example" })
    );
    // Acknowledged and refused SETs leave the stream; the one not acknowledged comes again.
    let second = poll(
        &t,
        &id,
        json!({ "maxEvents": 4, "returnImmediately": true, "ack": ["k01", "k02"],
                "setErrs": { "k03": { "err": "jwtAud", "description": "not for us" } } }),
    );
    assert_eq!(keys(&second), ["k04", "k05", "k06", "k07"]);
    assert_eq!(
        second.sets["k04"], first.sets["k04"],
        "the same SET, not a new one"
    );

    // A crash: what was acknowledged stays acknowledged, nothing held is lost.
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    let (child, mut stdin) = t.start();
    let third = poll(&t, &id, json!({ "returnImmediately": true }));
    assert_eq!(
        keys(&third),
        ["k04", "k05", "k06", "k07", "k08", "k09", "k10"]
    );
    assert!(!third.more);
    for (jti, set) in &second.sets {
        assert_eq!(&third.sets[jti], set, "{jti} under its own jti, unchanged");
    }
    let acks: Vec<&str> = keys(&third);
    let after = poll(&t, &id, json!({ "ack": acks, "returnImmediately": true }));
    assert!(after.sets.is_empty(), "{:?}", keys(&after));

    // A long poll waits for the next SET.
    let waiting = std::thread::spawn({
        let (base, dir, config, id) = (t.base.clone(), t.dir.clone(), t.config.clone(), id.clone());
        move || {
            poll(
                &Transmitter { dir, config, base },
                &id,
                json!({ "maxEvents": 5 }),
            )
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    send(&mut stdin, &[kill("k11", "u11@northwind.example")]);
    let woken = waiting.join().unwrap();
    assert_eq!(keys(&woken), ["k11"]);
    // `maxEvents: 0` only acknowledges.
    let acked = poll(&t, &id, json!({ "maxEvents": 0, "ack": ["k11"] }));
    assert!(acked.sets.is_empty());
    let last = poll(&t, &id, json!({ "returnImmediately": true }));
    assert!(last.sets.is_empty());

    // A paused stream hands out nothing it holds until it is enabled again.
    t.api(
        "POST",
        "/ssf/status",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "status": "paused" })),
    );
    send(&mut stdin, &[kill("k12", "u12@northwind.example")]);
    wait_until("k12 held", Duration::from_secs(20), || {
        t.records()
            .iter()
            .any(|r| r["decision_id"] == "k12" && r["outcome"] == "held")
    });
    assert!(poll(&t, &id, json!({ "returnImmediately": true }))
        .sets
        .is_empty());
    t.api(
        "POST",
        "/ssf/status",
        IDP_TOKEN,
        Some(json!({ "stream_id": id, "status": "enabled" })),
    );
    let resumed = poll(&t, &id, json!({ "returnImmediately": true }));
    assert_eq!(keys(&resumed), ["k12"]);
    poll(&t, &id, json!({ "ack": ["k12"], "maxEvents": 0 }));

    // Polls of another stream, or malformed, are refused.
    let (status, _) = t.api(
        "POST",
        "/ssf/poll/no-such-stream",
        IDP_TOKEN,
        Some(json!({})),
    );
    assert_eq!(status, 404);
    for bad in [
        json!({ "maxEvents": "ten" }),
        json!({ "ack": "k01" }),
        json!([1]),
    ] {
        let (status, _) = t.api(
            "POST",
            &format!("/ssf/poll/{id}"),
            IDP_TOKEN,
            Some(bad.clone()),
        );
        assert_eq!(status, 400, "{bad}");
    }
    finish(child, stdin);

    // Every kill settled exactly once at the stream: delivered when acknowledged, refused
    // with the receiver's words when it reported an error.
    let mut settled = std::collections::BTreeMap::new();
    for r in t.records() {
        if r["outcome"] == "delivered" || r["outcome"] == "refused" {
            let id = r["decision_id"].as_str().unwrap().to_owned();
            assert!(
                settled.insert(id.clone(), r.clone()).is_none(),
                "{id} settled twice"
            );
        }
    }
    assert_eq!(settled.len(), 12);
    assert_eq!(settled["k03"]["outcome"], "refused");
    assert_eq!(settled["k03"]["reason"], "jwtAud: not for us");
    assert!(settled
        .iter()
        .filter(|(k, _)| *k != "k03")
        .all(|(_, r)| r["outcome"] == "delivered"));
}

/// A decision with `action` on a session of `kind`.
fn decision(id: &str, action: &str, kind: &str) -> Value {
    let mut d = kill(id, &format!("{id}@northwind.example"));
    d["action"] = json!(action);
    d["session"]["kind"] = json!(kind);
    d["session"]["key"] = json!(format!("aws:482915736014:iam-key:AKIA{id}"));
    d
}

#[test]
fn each_receiver_gets_the_caep_event_a_decision_calls_for_among_those_it_takes() {
    const CREDENTIAL_CHANGE: &str =
        "https://schemas.openid.net/secevent/caep/event-type/credential-change";
    const ASSURANCE: &str =
        "https://schemas.openid.net/secevent/caep/event-type/assurance-level-change";
    let static_port = free_port();
    let t = Transmitter::with("events", |_| {
        format!(
            "receivers:\n\
             - name: keys\n  endpoint: http://127.0.0.1:{static_port}/events\n  \
               audience: https://keys.test\n  events: [credential-change]\n  \
               take: {{ actions: [revoke_credential] }}\n"
        )
    });
    let keys = Receiver::start(Plan {
        fault: Box::new(|_| Fault::None),
        refuse: Default::default(),
        issuer: t.base.clone(),
        audience: "https://keys.test".into(),
        jwks_url: format!("{}/jwks.json", t.base),
        authorization: None,
    });
    // The test receiver listens where it can; the static receiver is sent to its port.
    let keys_endpoint = keys.endpoint();
    let config = std::fs::read_to_string(&t.config).unwrap().replace(
        &format!("http://127.0.0.1:{static_port}/events"),
        &keys_endpoint,
    );
    std::fs::write(&t.config, config).unwrap();

    let (child, mut stdin) = t.start();
    let create = |token: &str, events: Value| {
        let (status, created) = t.api(
            "POST",
            "/ssf/stream",
            token,
            Some(json!({ "delivery": { "method": "urn:ietf:rfc:8936" }, "events_requested": events })),
        );
        assert_eq!(status, 201, "{created}");
        created["stream_id"].as_str().unwrap().to_owned()
    };
    let rich = create(
        IDP_TOKEN,
        json!([SESSION_REVOKED, CREDENTIAL_CHANGE, ASSURANCE]),
    );
    let plain = create(OTHER_TOKEN, json!([SESSION_REVOKED]));
    send(
        &mut stdin,
        &[
            decision("rs", "revoke_session", "sign_in"),
            decision("rc", "revoke_credential", "long_term_credential"),
            decision("su", "step_up", "sign_in"),
        ],
    );
    wait_until("three decisions settled", Duration::from_secs(20), || {
        let records = t.records();
        ["rs", "rc", "su"]
            .iter()
            .all(|id| records.iter().any(|r| r["decision_id"] == *id))
            && keys.log().accepted.contains_key("rc")
    });
    let immediately = json!({ "returnImmediately": true });
    let rich_sets = poll_with(
        &t,
        IDP_TOKEN,
        &rich,
        immediately.clone(),
        "https://idp.test",
    );
    let plain_sets = poll_with(&t, OTHER_TOKEN, &plain, immediately, "other");
    let event_of = |polled: &Polled, id: &str| -> Option<String> {
        polled.claims.get(id).map(|claims| {
            let events = claims["events"].as_object().unwrap();
            assert_eq!(events.len(), 1, "one event per SET");
            events.keys().next().unwrap().clone()
        })
    };
    assert_eq!(event_of(&rich_sets, "rs").as_deref(), Some(SESSION_REVOKED));
    assert_eq!(
        event_of(&rich_sets, "rc").as_deref(),
        Some(CREDENTIAL_CHANGE)
    );
    assert_eq!(event_of(&rich_sets, "su").as_deref(), Some(ASSURANCE));
    assert_eq!(
        event_of(&plain_sets, "rs").as_deref(),
        Some(SESSION_REVOKED)
    );
    assert_eq!(
        event_of(&plain_sets, "rc").as_deref(),
        Some(SESSION_REVOKED),
        "a receiver that does not take credential-change still ends the session"
    );
    assert_eq!(event_of(&plain_sets, "su"), None, "no event for a step-up");
    let rc = &rich_sets.claims["rc"]["events"][CREDENTIAL_CHANGE];
    assert_eq!(rc["credential_type"], "api-key");
    assert_eq!(rc["change_type"], "revoke");
    assert_eq!(rc["friendly_name"], "aws:482915736014:iam-key:AKIArc");
    let su = &rich_sets.claims["su"]["events"][ASSURANCE];
    assert_eq!(
        (
            &su["namespace"],
            &su["current_level"],
            &su["change_direction"]
        ),
        (&json!("NIST-AAL"), &json!("nist-aal1"), &json!("decrease"))
    );
    // The configured receiver takes only credential revocations, as credential-change.
    {
        let log = keys.log();
        assert_eq!(log.accepted.keys().collect::<Vec<_>>(), ["rc"]);
        assert!(log.claims["rc"]["events"][CREDENTIAL_CHANGE]["change_type"] == "revoke");
        assert!(log.bad.is_empty(), "{:?}", log.bad);
    }
    finish(child, stdin);
}

#[test]
fn a_stream_that_holds_as_many_sets_as_it_may_fails_the_next_kill_and_says_why() {
    let t = Transmitter::with("full", |_| "  max_held: 2\n".into());
    let (mut child, mut stdin) = t.start();
    let (status, created) = t.api(
        "POST",
        "/ssf/stream",
        IDP_TOKEN,
        Some(json!({ "delivery": { "method": "urn:ietf:rfc:8936" }, "events_requested": [SESSION_REVOKED] })),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["stream_id"].as_str().unwrap().to_owned();
    send(
        &mut stdin,
        &[
            kill("f1", "a@northwind.example"),
            kill("f2", "b@northwind.example"),
            kill("f3", "c@northwind.example"),
        ],
    );
    wait_until("three kills settled", Duration::from_secs(20), || {
        t.records().len() == 3
    });
    drop(stdin);
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "actuate did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        code,
        Some(4),
        "settled, but not everything could be delivered"
    );
    let records = t.records();
    let outcome = |id: &str| records.iter().find(|r| r["decision_id"] == id).unwrap();
    assert_eq!(outcome("f1")["outcome"], "held");
    assert_eq!(outcome("f2")["outcome"], "held");
    assert_eq!(outcome("f3")["outcome"], "failed");
    assert_eq!(
        outcome("f3")["reason"],
        "the stream holds as many SETs as it may (max_held)"
    );
    // What it holds is still there for the receiver after the restart.
    let (child, stdin) = t.start();
    let polled = poll(&t, &id, json!({ "returnImmediately": true }));
    assert_eq!(keys(&polled), ["f1", "f2"]);
    finish(child, stdin);
}

#[test]
fn hostile_bodies_get_4xx_and_change_nothing() {
    let t = Transmitter::new("hostile");
    let (child, stdin) = t.start();
    let (status, created) = t.api(
        "POST",
        "/ssf/stream",
        IDP_TOKEN,
        Some(json!({ "delivery": { "method": "urn:ietf:rfc:8936" }, "events_requested": [SESSION_REVOKED] })),
    );
    assert_eq!(status, 201);
    let id = created["stream_id"].as_str().unwrap().to_owned();
    let bodies = [
        json!(null),
        json!("a string"),
        json!(12),
        json!([]),
        json!({}),
        json!({ "stream_id": 7 }),
        json!({ "stream_id": id, "status": "on fire" }),
        json!({ "stream_id": id, "status": 1 }),
        json!({ "stream_id": id, "subject": "not an object" }),
        json!({ "stream_id": id, "subject": { "email": "no format" } }),
        json!({ "stream_id": id, "delivery": null }),
        json!({ "stream_id": id, "delivery": { "method": 8935 } }),
        json!({ "stream_id": id, "delivery": { "method": "urn:ietf:rfc:8935", "endpoint_url": "http://" } }),
        json!({ "stream_id": id, "delivery": { "method": "urn:ietf:rfc:8935", "endpoint_url": "http://x/", "authorization_header": "a\nb" } }),
        json!({ "stream_id": id, "events_requested": "all" }),
        json!({ "stream_id": id, "events_requested": [1, 2] }),
        json!({ "stream_id": "../../etc/passwd", "state": "x" }),
        json!({ "maxEvents": -1 }),
        json!({ "returnImmediately": "yes" }),
        json!({ "setErrs": [] }),
    ];
    let calls = [
        ("PUT", "/ssf/stream".to_owned()),
        ("PATCH", "/ssf/stream".to_owned()),
        ("POST", "/ssf/status".to_owned()),
        ("POST", "/ssf/subjects:add".to_owned()),
        ("POST", "/ssf/subjects:remove".to_owned()),
        ("POST", "/ssf/verify".to_owned()),
        ("POST", format!("/ssf/poll/{id}")),
        ("GET", "/ssf/stream?stream_id=%00%ff%".to_owned()),
        ("GET", "/ssf/unknown".to_owned()),
        ("DELETE", "/ssf/status".to_owned()),
    ];
    for (method, path) in &calls {
        for body in &bodies {
            let (status, answer) = t.api(method, path, IDP_TOKEN, Some(body.clone()));
            // Members a call does not know are ignored: a body that names the stream and
            // nothing wrong for the call is a valid PATCH, verification or poll.
            let names_it = body["stream_id"] == id.as_str();
            let fine = (200..300).contains(&status)
                && (path.starts_with("/ssf/poll/")
                    || (names_it && (*method == "PATCH" || path == "/ssf/verify")));
            assert!(
                (400..500).contains(&status) || fine,
                "{method} {path} {body}: {status} {answer}"
            );
        }
    }
    // A body too large is refused without being read to its end.
    let big = json!({ "stream_id": id, "description": "x".repeat(100_000) });
    let (status, _) = t.api("PATCH", "/ssf/stream", IDP_TOKEN, Some(big));
    assert_eq!(status, 400);
    // The stream is as it was, and the transmitter still answers.
    let (status, read) = t.api(
        "GET",
        &format!("/ssf/stream?stream_id={id}"),
        IDP_TOKEN,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(read["delivery"], created["delivery"]);
    assert_eq!(read["events_requested"], created["events_requested"]);
    let (_, state) = t.api(
        "GET",
        &format!("/ssf/status?stream_id={id}"),
        IDP_TOKEN,
        None,
    );
    assert_eq!(state["status"], "enabled");
    finish(child, stdin);
}
