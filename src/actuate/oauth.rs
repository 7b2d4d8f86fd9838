//! OAuth 2.0 client-credentials tokens for a direct actuator (RFC 6749 §4.4), as Microsoft
//! Graph wants them: the receiver's `client_credentials:` names the tenant's token endpoint,
//! the client id and secret, and the scope; `actuate` fetches a token when it needs one,
//! keeps it until shortly before it expires (`expires_in` less a tenth of it, at most 60 s),
//! and fetches the next. Concurrent deliveries share one fetch. The secret and the tokens are
//! never logged; a token endpoint's refusal is recorded with its `error` and
//! `error_description` (Entra's `AADSTS…` code), and is final, like a 4xx from the API.

#![allow(
    clippy::disallowed_methods,
    reason = "a token's lifetime is wall-clock by nature"
)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request};
use serde::Deserialize;

use super::aws::encode;
use super::secret::Secret;

/// The checked `client_credentials:` of a receiver.
#[derive(Clone)]
pub struct ClientCredentials {
    pub token_endpoint: hyper::Uri,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: String,
}

/// Why no token: worth trying again later, or not.
pub enum TokenError {
    Retry(String),
    Refused(u16, String),
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenRefusal {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Fetches and caches the bearer token.
pub struct TokenSource {
    credentials: ClientCredentials,
    cached: tokio::sync::Mutex<Option<(HeaderValue, Instant)>>,
}

impl TokenSource {
    pub fn new(credentials: ClientCredentials) -> TokenSource {
        TokenSource {
            credentials,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The `Authorization` header value: the cached token while it is fresh, else a new one.
    pub async fn bearer<C>(&self, client: &C, timeout: Duration) -> Result<HeaderValue, TokenError>
    where
        C: Fetch,
    {
        let mut cached = self.cached.lock().await;
        if let Some((value, until)) = cached.as_ref() {
            if Instant::now() < *until {
                return Ok(value.clone());
            }
        }
        let c = &self.credentials;
        let secret = c
            .client_secret
            .expose_str()
            .map_err(|e| TokenError::Refused(0, format!("{e:#}")))?;
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
            encode(&c.client_id),
            encode(secret),
            encode(&c.scope)
        );
        let request = Request::builder()
            .method(Method::POST)
            .uri(c.token_endpoint.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| TokenError::Refused(0, format!("the token request: {e}")))?;
        let fetched_at = Instant::now();
        let (status, body) = match tokio::time::timeout(timeout, client.fetch(request)).await {
            Err(_) => {
                return Err(TokenError::Retry(format!(
                    "the token endpoint did not answer within {} ms",
                    timeout.as_millis()
                )))
            }
            Ok(Err(e)) => return Err(TokenError::Retry(format!("the token endpoint: {e}"))),
            Ok(Ok(answer)) => answer,
        };
        if !(200..300).contains(&status) {
            let refusal = serde_json::from_slice::<TokenRefusal>(&body).ok();
            let what = refusal
                .map(|r| {
                    [r.error, r.error_description]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": ")
                })
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "no error given".into());
            // Entra's descriptions span lines (trace and correlation ids): the first is the
            // message.
            let what = what.lines().next().unwrap_or("").to_owned();
            let reason = format!("the token endpoint answered HTTP {status}: {what}");
            return Err(if status == 408 || status == 429 || status >= 500 {
                TokenError::Retry(reason)
            } else {
                TokenError::Refused(status, reason)
            });
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
            TokenError::Retry("the token endpoint's answer has no access_token".into())
        })?;
        if answer
            .token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(TokenError::Refused(
                status,
                "the token endpoint issued a token that is not a bearer token".into(),
            ));
        }
        let mut value = HeaderValue::from_str(&format!("Bearer {}", answer.access_token))
            .map_err(|_| TokenError::Retry("the access token is not a header value".into()))?;
        value.set_sensitive(true);
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(300));
        let margin = (lifetime / 10).min(Duration::from_secs(60));
        *cached = Some((value.clone(), fetched_at + lifetime - margin));
        Ok(value)
    }
}

/// One HTTP exchange: the pusher's client, so the token endpoint gets the same TLS checks.
pub trait Fetch {
    fn fetch(
        &self,
        request: Request<Full<Bytes>>,
    ) -> impl std::future::Future<Output = Result<(u16, Bytes), String>> + Send;
}

impl<C> Fetch for hyper_util::client::legacy::Client<C, Full<Bytes>>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    async fn fetch(&self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        let response = self.request(request).await.map_err(|e| {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        })?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| e.to_string())?;
        Ok((status, body))
    }
}
