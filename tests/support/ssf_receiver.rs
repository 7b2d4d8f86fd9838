//! A Shared Signals push receiver written for the tests (RFC 8935), on hyper: it fetches the
//! transmitter's JWKS from `/jwks.json`, verifies every SET's signature and header, checks
//! `iss` and `aud`, deduplicates on `jti`, and fails on purpose when told to (a 5xx, an answer
//! later than the transmitter's timeout, a slow answer, a refusal for one `jti`).
//!
//! Included with `#[path = "support/ssf_receiver.rs"] mod ssf_receiver;`.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use josekit::jwk::JwkSet;
use josekit::jws::{JwsHeader, JwsVerifier, ES256, RS256};
use serde_json::Value;

/// What the receiver does to the n-th request (1-based), whatever it carries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    None,
    /// `503` without reading the SET.
    Unavailable,
    /// Takes the SET, then answers after this delay (past the transmitter's timeout: the
    /// transmitter sees a failure and sends the same SET again).
    Late(Duration),
    /// Answers `202` after this delay.
    Slow(Duration),
}

pub struct Plan {
    pub fault: Box<dyn Fn(u64) -> Fault + Send + Sync>,
    /// `jti`s answered `400 {"err": "jwtAud"}`: refused.
    pub refuse: HashSet<String>,
    pub issuer: String,
    pub audience: String,
    pub jwks_url: String,
    /// Required `Authorization` header value.
    pub authorization: Option<String>,
}

#[derive(Default, Debug)]
pub struct Log {
    pub requests: u64,
    /// Every verified SET's `jti`, and how many times it came.
    pub accepted: BTreeMap<String, u32>,
    /// Claims of the first arrival of each `jti`.
    pub claims: BTreeMap<String, Value>,
    pub refused: Vec<String>,
    /// SETs whose signature, header or claims were wrong, with why.
    pub bad: Vec<String>,
    pub faults: BTreeMap<&'static str, u64>,
    pub unauthorized: u64,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Log>>,
}

impl Receiver {
    /// Serves on a thread of its own (a one-thread tokio runtime) until the test ends.
    pub fn start(plan: Plan) -> Receiver {
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = Arc::new((plan, log.clone(), tokio::sync::OnceCell::<Keys>::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let shared = shared.clone();
                            async move { Ok::<_, Infallible>(answer(&shared, request).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        let addr = addr_rx.recv().unwrap();
        Receiver { addr, log }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }
}

type Shared = (Plan, Arc<Mutex<Log>>, tokio::sync::OnceCell<Keys>);

/// The transmitter's published keys, as verifiers by `kid`.
type Keys = Vec<(String, Box<dyn JwsVerifier>)>;

fn reply(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response
}

async fn answer(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (plan, log, jwks) = shared;
    let n = {
        let mut log = log.lock().unwrap();
        log.requests += 1;
        log.requests
    };
    if request.method() != hyper::Method::POST || request.uri().path() != "/events" {
        return reply(StatusCode::NOT_FOUND, "");
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if header("content-type").as_deref() != Some("application/secevent+jwt") {
        log.lock()
            .unwrap()
            .bad
            .push(format!("content-type {:?}", header("content-type")));
        return reply(StatusCode::BAD_REQUEST, r#"{"err":"invalid_request"}"#);
    }
    if let Some(expected) = &plan.authorization {
        if header("authorization").as_deref() != Some(expected.as_str()) {
            log.lock().unwrap().unauthorized += 1;
            return reply(
                StatusCode::UNAUTHORIZED,
                r#"{"err":"authentication_failed"}"#,
            );
        }
    }
    let fault = (plan.fault)(n);
    if fault == Fault::Unavailable {
        *log.lock().unwrap().faults.entry("unavailable").or_default() += 1;
        return reply(StatusCode::SERVICE_UNAVAILABLE, "down for a moment");
    }
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let token = String::from_utf8_lossy(&body).into_owned();
    let keys = jwks.get_or_init(|| fetch_jwks(&plan.jwks_url)).await;
    let claims = match verify(keys, &token, plan) {
        Ok(claims) => claims,
        Err(why) => {
            log.lock().unwrap().bad.push(why);
            return reply(StatusCode::BAD_REQUEST, r#"{"err":"jwtCrypto"}"#);
        }
    };
    let jti = claims["jti"].as_str().unwrap_or_default().to_owned();
    if plan.refuse.contains(&jti) {
        log.lock().unwrap().refused.push(jti);
        return reply(
            StatusCode::BAD_REQUEST,
            r#"{"err":"jwtAud","description":"not for this audience"}"#,
        );
    }
    {
        let mut log = log.lock().unwrap();
        *log.accepted.entry(jti.clone()).or_default() += 1;
        log.claims.entry(jti).or_insert(claims);
    }
    match fault {
        Fault::Late(delay) => {
            *log.lock().unwrap().faults.entry("late").or_default() += 1;
            tokio::time::sleep(delay).await;
        }
        Fault::Slow(delay) => {
            *log.lock().unwrap().faults.entry("slow").or_default() += 1;
            tokio::time::sleep(delay).await;
        }
        _ => {}
    }
    reply(StatusCode::ACCEPTED, "")
}

async fn fetch_jwks(url: &str) -> Keys {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let response = client
        .get(url.parse().unwrap())
        .await
        .expect("the transmitter's JWKS");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let set = JwkSet::from_bytes(&body).expect("a JWK set");
    set.keys()
        .into_iter()
        .map(|jwk| {
            assert!(
                jwk.parameter("d").is_none(),
                "a private key published in the JWKS"
            );
            let verifier: Box<dyn JwsVerifier> = match jwk.algorithm() {
                Some("ES256") => Box::new(ES256.verifier_from_jwk(jwk).unwrap()),
                Some("RS256") => Box::new(RS256.verifier_from_jwk(jwk).unwrap()),
                other => panic!("a JWK for {other:?}"),
            };
            (jwk.key_id().expect("a kid").to_owned(), verifier)
        })
        .collect()
}

/// The SET's claims, when its signature verifies against the JWKS key its `kid` names (for
/// the algorithm that key is for) and its header and claims are what a SET for this receiver
/// must carry.
fn verify(keys: &Keys, token: &str, plan: &Plan) -> Result<Value, String> {
    let select = |header: &JwsHeader| -> Result<Option<&dyn JwsVerifier>, josekit::JoseError> {
        let kid = header.key_id().unwrap_or_default();
        Ok(keys
            .iter()
            .find(|(k, v)| k == kid && Some(v.algorithm().name()) == header.algorithm())
            .map(|(_, v)| v.as_ref()))
    };
    let (payload, header) = josekit::jws::deserialize_compact_with_selector(token, select)
        .map_err(|e| format!("signature: {e}"))?;
    if header.token_type() != Some("secevent+jwt") {
        return Err(format!("typ {:?}", header.token_type()));
    }
    let claims: Value = serde_json::from_slice(&payload).map_err(|e| e.to_string())?;
    if claims["iss"] != plan.issuer.as_str() || claims["aud"] != plan.audience.as_str() {
        return Err(format!("iss/aud {} {}", claims["iss"], claims["aud"]));
    }
    if claims["events"].as_object().is_none_or(|e| e.is_empty()) || claims["jti"].as_str().is_none()
    {
        return Err("no events or no jti".into());
    }
    Ok(claims)
}
