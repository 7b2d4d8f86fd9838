//! A small Shared Signals push receiver (RFC 8935) bundled for the demo: it verifies every
//! SET's signature against the transmitter's JWKS (given to it, as a receiver configured with
//! the transmitter's keys), checks `typ`, deduplicates on `jti`, and answers `202 Accepted`
//! (`400` with the RFC's `err` for a SET it cannot verify). Given a bearer token, it takes
//! only pushes that present it (`Authorization: Bearer …`, compared as SHA-256 digests in
//! constant time; `401` with `authentication_failed` otherwise, before the body is read).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use josekit::jwk::JwkSet;
use josekit::jws::{JwsHeader, JwsVerifier, ES256, RS256};
use serde_json::Value;

use super::set::SET_TYPE;

/// A SET the receiver accepted: its `jti`, the session and user it names, its event.
#[derive(Clone, Debug)]
pub struct ReceivedSet {
    pub jti: String,
    pub alg: String,
    pub session: String,
    pub user: String,
    pub event: String,
}

/// What the receiver has seen.
#[derive(Default, Debug)]
pub struct Received {
    /// First arrivals, in order.
    pub sets: Vec<ReceivedSet>,
    /// SETs that came again under a `jti` already seen.
    pub duplicates: u64,
    /// SETs refused: bad signature, header or body.
    pub refused: u64,
    /// Pushes without the bearer token.
    pub unauthorized: u64,
}

type Keys = Vec<(String, Box<dyn JwsVerifier>)>;

/// Serves on `addr` (port 0: any) on the current tokio runtime; the bound address and what it
/// receives. With `echo`, each SET accepted is also printed on standard output, one JSON line.
pub async fn serve(
    addr: SocketAddr,
    jwks: &Value,
    echo: bool,
    token: Option<&[u8]>,
) -> Result<(SocketAddr, Arc<Mutex<Received>>)> {
    use sha2::{Digest, Sha256};
    let token: Option<[u8; 32]> = token.map(|t| Sha256::digest(t).into());
    let set = JwkSet::from_bytes(jwks.to_string()).map_err(|e| anyhow!("the JWKS: {e}"))?;
    let mut keys: Keys = Vec::new();
    for jwk in set.keys() {
        let verifier: Box<dyn JwsVerifier> = match jwk.algorithm() {
            Some("ES256") => Box::new(ES256.verifier_from_jwk(jwk)?),
            Some("RS256") => Box::new(RS256.verifier_from_jwk(jwk)?),
            other => return Err(anyhow!("a JWK for {other:?}")),
        };
        keys.push((jwk.key_id().unwrap_or_default().to_owned(), verifier));
    }
    let keys = Arc::new(keys);
    let received = Arc::new(Mutex::new(Received::default()));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let shared = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (keys, received) = (keys.clone(), shared.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (keys, received) = (keys.clone(), received.clone());
                    async move {
                        if let Some(expected) = &token {
                            let presented = request
                                .headers()
                                .get(hyper::header::AUTHORIZATION)
                                .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
                                .map(|t| <[u8; 32]>::from(Sha256::digest(t)));
                            if !presented.is_some_and(|p| openssl::memcmp::eq(&p, expected)) {
                                received
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .unauthorized += 1;
                                let mut response = Response::new(Full::new(Bytes::from_static(
                                    br#"{"err":"authentication_failed"}"#,
                                )));
                                *response.status_mut() = StatusCode::UNAUTHORIZED;
                                return Ok::<_, Infallible>(response);
                            }
                        }
                        Ok::<_, Infallible>(answer(&keys, &received, request, echo).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((bound, received))
}

async fn answer(
    keys: &Keys,
    received: &Mutex<Received>,
    request: Request<Incoming>,
    echo: bool,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = status;
        response
    };
    let body = match Limited::new(request.into_body(), 64 * 1024).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return reply(StatusCode::BAD_REQUEST, r#"{"err":"invalid_request"}"#),
    };
    let lock = || received.lock().unwrap_or_else(|e| e.into_inner());
    let Some(set) = verify(keys, &body) else {
        lock().refused += 1;
        return reply(StatusCode::BAD_REQUEST, r#"{"err":"invalid_key"}"#);
    };
    let mut received = lock();
    if received.sets.iter().any(|s| s.jti == set.jti) {
        received.duplicates += 1;
    } else {
        if echo {
            let line = serde_json::json!({
                "jti": set.jti, "alg": set.alg, "event": set.event,
                "session": set.session, "user": set.user,
            });
            println!("{line}");
        }
        received.sets.push(set);
    }
    reply(StatusCode::ACCEPTED, "")
}

fn verify(keys: &Keys, token: &[u8]) -> Option<ReceivedSet> {
    let select = |header: &JwsHeader| -> Result<Option<&dyn JwsVerifier>, josekit::JoseError> {
        let kid = header.key_id().unwrap_or_default();
        Ok(keys
            .iter()
            .find(|(k, v)| k == kid && Some(v.algorithm().name()) == header.algorithm())
            .map(|(_, v)| v.as_ref()))
    };
    let (payload, header) = josekit::jws::deserialize_compact_with_selector(token, select).ok()?;
    if header.token_type() != Some(SET_TYPE) {
        return None;
    }
    let claims: Value = serde_json::from_slice(&payload).ok()?;
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let user = &claims["sub_id"]["user"];
    Some(ReceivedSet {
        jti: claims["jti"].as_str()?.to_owned(),
        alg: header.algorithm().unwrap_or("").to_owned(),
        session: text(&claims["sub_id"]["session"]["id"]),
        user: if user["email"].is_string() {
            text(&user["email"])
        } else {
            text(&user["id"])
        },
        event: claims["events"]
            .as_object()?
            .keys()
            .next()?
            .rsplit('/')
            .next()?
            .to_owned(),
    })
}

/// `sessionguard ssf-receiver`: fetches the transmitter's JWKS from `jwks_url` (waiting up to
/// 30 s for it to come up), then serves on `listen` until SIGTERM/SIGINT, printing each SET it
/// accepts.
pub fn command(listen: SocketAddr, jwks_url: &str, token_env: Option<&str>) -> Result<()> {
    let token = match token_env {
        None => None,
        Some(name) => match std::env::var(name) {
            Ok(token) if !token.is_empty() => Some(token.into_bytes()),
            _ => return Err(anyhow!("--token-env {name}: the variable is not set")),
        },
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())?;
    }
    let uri: hyper::Uri = jwks_url
        .parse()
        .map_err(|e| anyhow!("--jwks {jwks_url}: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<Bytes>>();
        let mut waited = 0;
        let jwks: Value = loop {
            match client.get(uri.clone()).await {
                Ok(response) if response.status().is_success() => {
                    let body = Limited::new(response.into_body(), 64 * 1024)
                        .collect()
                        .await
                        .map_err(|e| anyhow!("reading the JWKS: {e}"))?
                        .to_bytes();
                    break serde_json::from_slice(&body).map_err(|e| anyhow!("the JWKS: {e}"))?;
                }
                _ if waited < 300 && !stop.load(std::sync::atomic::Ordering::Relaxed) => {
                    waited += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Ok(response) => return Err(anyhow!("{jwks_url} answered {}", response.status())),
                Err(e) => return Err(anyhow!("{jwks_url}: {e}")),
            }
        };
        let (bound, received) = serve(listen, &jwks, true, token.as_deref()).await?;
        eprintln!("ssf-receiver: listening on http://{bound}/events, verifying against {jwks_url}");
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let received = received.lock().unwrap_or_else(|e| e.into_inner());
        eprintln!(
            "ssf-receiver: {} SETs accepted, {} duplicates, {} refused, {} without the token",
            received.sets.len(),
            received.duplicates,
            received.refused,
            received.unauthorized
        );
        Ok(())
    })
}
