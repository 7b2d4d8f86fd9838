//! Direct actuators: a decision turned into an identity provider's own revocation call, for
//! receivers of `kind: okta` or `kind: graph` (docs/actuation.md, "Direct actuators"). Each
//! builds one HTTP request ([`Call`]); delivery, retries, the breaker and the records are the
//! push path's. With `dry_run: true` the request is built, logged and recorded, never sent.
//!
//! - **Okta** — clear the user's sessions (Okta Users API): `DELETE
//!   {base}/api/v1/users/{user}/sessions?oauthTokens=true`, `Authorization: SSWS {token}`; the
//!   user is the principal's Okta id (`00u…`), else its login. `204` when done.
//! - **Microsoft Graph** — revoke sign-in sessions: `POST
//!   {base}/v1.0/users/{user}/revokeSignInSessions`, `Authorization: Bearer {token}`; the user
//!   is the principal's object id, else its user principal name. `200` when done.
//! - **AWS** — IAM, signed with Signature Version 4: see [`super::aws`].
//! - **GitHub**, **Kubernetes**: see [`super::github`], [`super::kubernetes`].

use anyhow::{bail, Result};
use bytes::Bytes;
use hyper::Method;

use super::set::DecisionIn;

/// What a receiver is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An OpenID Shared Signals receiver: SETs pushed (RFC 8935).
    Ssf,
    Okta,
    Graph,
    /// AWS IAM, SigV4-signed (`super::aws`).
    Aws,
    /// The GitHub REST API (`super::github`).
    Github,
    /// A Kubernetes API server (`super::kubernetes`).
    Kubernetes,
}

impl Kind {
    pub fn parse(name: &str) -> Option<Kind> {
        match name {
            "ssf" => Some(Kind::Ssf),
            "okta" => Some(Kind::Okta),
            "graph" => Some(Kind::Graph),
            "aws" => Some(Kind::Aws),
            "github" => Some(Kind::Github),
            "kubernetes" => Some(Kind::Kubernetes),
            _ => None,
        }
    }

    /// The `Authorization` scheme its token is sent with.
    pub fn scheme(self) -> &'static str {
        match self {
            Kind::Okta => "SSWS",
            Kind::Ssf | Kind::Graph | Kind::Aws | Kind::Github | Kind::Kubernetes => "Bearer",
        }
    }

    /// The session keys it can act on by default (its own identity provider's).
    pub fn default_sessions(self) -> Option<Vec<String>> {
        match self {
            Kind::Ssf => None,
            Kind::Okta => Some(vec!["okta:".into()]),
            Kind::Graph => Some(vec!["entra:".into()]),
            Kind::Aws => Some(vec!["aws:".into()]),
            Kind::Github => Some(vec!["github:".into()]),
            Kind::Kubernetes => Some(vec!["k8s:".into()]),
        }
    }
}

/// One HTTP call, before the credentials are added.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    /// Path and query, appended to the receiver's endpoint.
    pub path: String,
    pub content_type: Option<&'static str>,
    pub body: Bytes,
    /// Headers the vendor asks for (an `accept` here replaces `application/json`).
    pub headers: Vec<(&'static str, String)>,
    /// A `404` means the thing is already gone: done (a DELETE sent again after a restart).
    pub absent_is_done: bool,
}

/// The vendor call for `decision`, or why there is none (a refusal: no retry can help).
pub fn call(kind: Kind, decision: &DecisionIn) -> Result<Call> {
    let principal = &decision.principal;
    match kind {
        Kind::Ssf => bail!("an SSF receiver takes SETs, not a vendor call"),
        Kind::Aws => super::aws::call(decision),
        Kind::Kubernetes => super::kubernetes::call(decision),
        Kind::Github => bail!("a GitHub actuator needs its `github:` settings"),
        Kind::Okta => {
            let user = principal
                .id
                .as_deref()
                .filter(|id| id.starts_with("00u"))
                .or(principal.name.as_deref())
                .or(principal.id.as_deref());
            let Some(user) = user else {
                bail!("the decision names no Okta user");
            };
            Ok(Call {
                method: Method::DELETE,
                path: format!("/api/v1/users/{}/sessions?oauthTokens=true", segment(user)),
                content_type: None,
                body: Bytes::new(),
                headers: Vec::new(),
                absent_is_done: false,
            })
        }
        Kind::Graph => {
            let Some(user) = principal.id.as_deref().or(principal.name.as_deref()) else {
                bail!("the decision names no Entra user");
            };
            Ok(Call {
                method: Method::POST,
                path: format!("/v1.0/users/{}/revokeSignInSessions", segment(user)),
                content_type: None,
                body: Bytes::new(),
                headers: Vec::new(),
                absent_is_done: false,
            })
        }
    }
}

/// `text` as one URL path segment: every byte but the unreserved ones percent-encoded, so a
/// user name cannot add a path segment or a query.
pub fn segment(text: &str) -> String {
    if text == "." || text == ".." {
        return text.replace('.', "%2E");
    }
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(id: Option<&str>, name: Option<&str>) -> DecisionIn {
        let mut principal = serde_json::Map::new();
        if let Some(id) = id {
            principal.insert("id".into(), id.into());
        }
        if let Some(name) = name {
            principal.insert("name".into(), name.into());
        }
        let line = serde_json::json!({
            "decision_id": "d1", "time": "2024-10-12T02:16:35.338Z", "mode": "enforce",
            "action": "revoke_session", "rule": {"id": "r"}, "session": {"key": "okta:idx1"},
            "principal": principal,
        });
        DecisionIn::parse(line.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn okta_clears_the_users_sessions_by_id_else_login() {
        let by_id = call(Kind::Okta, &decision(Some("00ugr9bf"), Some("a@b.example"))).unwrap();
        assert_eq!(by_id.method, Method::DELETE);
        assert_eq!(
            by_id.path,
            "/api/v1/users/00ugr9bf/sessions?oauthTokens=true"
        );
        let by_login = call(Kind::Okta, &decision(Some("not-okta"), Some("a@b.example"))).unwrap();
        assert_eq!(
            by_login.path,
            "/api/v1/users/a@b.example/sessions?oauthTokens=true"
        );
        assert!(call(Kind::Okta, &decision(None, None)).is_err());
    }

    #[test]
    fn graph_revokes_sign_in_sessions_and_names_cannot_escape_their_segment() {
        let c = call(
            Kind::Graph,
            &decision(Some("6e7b768e-07e2-4810-8459-485f84f8f204"), None),
        )
        .unwrap();
        assert_eq!(c.method, Method::POST);
        assert_eq!(
            c.path,
            "/v1.0/users/6e7b768e-07e2-4810-8459-485f84f8f204/revokeSignInSessions"
        );
        let hostile = call(Kind::Graph, &decision(Some("../../groups?x=1#"), None)).unwrap();
        assert_eq!(
            hostile.path,
            "/v1.0/users/..%2F..%2Fgroups%3Fx%3D1%23/revokeSignInSessions"
        );
    }
}
