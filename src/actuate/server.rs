//! The transmitter's own HTTP endpoints: `/.well-known/ssf-configuration` (SSF 1.0 transmitter
//! metadata), `/jwks.json` (the public signing key, for receivers to verify SETs) and
//! `/metrics`, unauthenticated as SSF specifies for the metadata and the JWKS (nothing there
//! is secret); and, with `streams:` configured, the stream management endpoints under `/ssf/`
//! ([`super::stream`]), where a call without a client's bearer token gets `401` and nothing
//! else. hyper HTTP/1.1 on `actuate`'s runtime, with deadlines for the request head and body
//! and a cap on the body's size.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;

use super::metrics::Metrics;
use super::stream::{self, Streams};

/// The largest request body read by the stream endpoints.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the endpoints serve, made once.
pub struct Endpoints {
    pub configuration: String,
    pub jwks: String,
    pub metrics: Arc<Metrics>,
    pub streams: Option<Arc<Streams>>,
}

impl Endpoints {
    /// `issuer` is this transmitter's URL: the metadata lives under it (SSF 1.0 §7.1).
    pub fn new(
        issuer: &str,
        jwks: &serde_json::Value,
        metrics: Arc<Metrics>,
        streams: Option<Arc<Streams>>,
    ) -> Endpoints {
        let base = issuer.trim_end_matches('/');
        let mut configuration = json!({
            "spec_version": "1_0",
            "issuer": issuer,
            "jwks_uri": format!("{base}/jwks.json"),
            "delivery_methods_supported": [stream::PUSH],
            "critical_subject_members": [],
            "authorization_schemes": [{ "spec_urn": "urn:ietf:rfc:6750" }],
        });
        if let Some(streams) = &streams {
            configuration["delivery_methods_supported"] = json!([stream::PUSH, stream::POLL]);
            if let (Some(all), serde_json::Value::Object(more)) =
                (configuration.as_object_mut(), streams.metadata(base))
            {
                all.extend(more);
            }
        }
        Endpoints {
            configuration: configuration.to_string(),
            jwks: jwks.to_string(),
            metrics,
            streams,
        }
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if let Some(streams) = &self.streams {
            if request.uri().path().starts_with("/ssf/") {
                return stream_call(streams, request).await;
            }
        }
        self.public(&request)
    }

    fn public(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
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

/// A call to the stream endpoints: the client is authenticated before the body is read.
async fn stream_call(streams: &Streams, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let client = streams.authenticate(
        request
            .headers()
            .get(AUTHORIZATION)
            .map(|value| value.as_bytes()),
    );
    let Some(client) = client else {
        let mut response = json_response(
            StatusCode::UNAUTHORIZED,
            Some(&json!({ "err": "authentication_failed" })),
        );
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
        return response;
    };
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        Limited::new(body, MAX_BODY_BYTES).collect(),
    )
    .await;
    let body = match read {
        Ok(Ok(body)) => body.to_bytes(),
        _ => {
            return json_response(
                StatusCode::BAD_REQUEST,
                Some(
                    &json!({ "err": "invalid_request", "description": "the body cannot be read (at most 64 KiB, within 10 s)" }),
                ),
            )
        }
    };
    let path = parts.uri.path();
    let answer = match path.strip_prefix(stream::POLL_PREFIX) {
        Some(id) if parts.method == hyper::Method::POST => streams.poll(client, id, &body).await,
        _ => streams.handle(client, &parts.method, path, parts.uri.query(), &body),
    };
    json_response(answer.status, answer.body.as_ref())
}

fn json_response(status: StatusCode, body: Option<&serde_json::Value>) -> Response<Full<Bytes>> {
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    if body.is_some() {
        headers.insert(
            CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
    }
    response
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
                    let endpoints = endpoints.clone();
                    async move { Ok::<_, Infallible>(endpoints.answer(request).await) }
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
