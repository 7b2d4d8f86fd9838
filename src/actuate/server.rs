//! The transmitter's own HTTP endpoints: `/.well-known/ssf-configuration` (SSF 1.0 transmitter
//! metadata), `/jwks.json` (the public signing key, for receivers to verify SETs) and
//! `/metrics`. Read-only and unauthenticated, as SSF specifies for the metadata and the JWKS:
//! nothing here is secret. hyper HTTP/1.1 on `actuate`'s runtime, with a deadline for the
//! request head.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;

use super::metrics::Metrics;

/// What the endpoints serve, made once.
pub struct Endpoints {
    pub configuration: String,
    pub jwks: String,
    pub metrics: Arc<Metrics>,
}

impl Endpoints {
    /// `issuer` is this transmitter's URL: the metadata lives under it (SSF 1.0 §7.1).
    pub fn new(issuer: &str, jwks: &serde_json::Value, metrics: Arc<Metrics>) -> Endpoints {
        let base = issuer.trim_end_matches('/');
        let configuration = json!({
            "spec_version": "1_0",
            "issuer": issuer,
            "jwks_uri": format!("{base}/jwks.json"),
            "delivery_methods_supported": ["urn:ietf:rfc:8935"],
            "critical_subject_members": [],
            "authorization_schemes": [{ "spec_urn": "urn:ietf:rfc:6749" }],
        });
        Endpoints {
            configuration: configuration.to_string(),
            jwks: jwks.to_string(),
            metrics,
        }
    }

    fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let (status, kind, body) = match (request.method(), request.uri().path()) {
            (&Method::GET, "/.well-known/ssf-configuration") => (
                StatusCode::OK,
                "application/json",
                self.configuration.clone(),
            ),
            (&Method::GET, "/jwks.json") => (
                StatusCode::OK,
                "application/jwk-set+json",
                self.jwks.clone(),
            ),
            (&Method::GET, "/metrics") => (
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics.render(),
            ),
            (&Method::GET, _) => (StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
            _ => (
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "GET only\n".into(),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(kind) = kind.parse() {
            response.headers_mut().insert(CONTENT_TYPE, kind);
        }
        response
    }
}

/// Binds `addr` and serves until the runtime ends.
pub async fn serve(addr: SocketAddr, endpoints: Arc<Endpoints>) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the SSF endpoints to {addr}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let endpoints = endpoints.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let response = endpoints.answer(&request);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(2))
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(bound)
}
