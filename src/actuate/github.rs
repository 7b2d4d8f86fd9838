//! The GitHub actuator (`kind: github`): a decision on a GitHub session (`github:…`) turned
//! into the GitHub REST API call that ends what the session can do, per the receiver's
//! `github.action` (docs/actuation.md, "GitHub and Kubernetes"):
//!
//! - `token` (the default): remove the token's SAML SSO authorization for the organization —
//!   `DELETE /orgs/{org}/credential-authorizations/{credential_id}` — so the token no longer
//!   reaches the organization's resources. It needs the token's id, which the audit log gives
//!   as `token_id` (sessions `github:token-id:<id>`); a token GitHub names only by its hash
//!   (`github:token:<hashed_token>`) is refused with the reason: no API takes a hash.
//! - `membership`: remove the user from the organization — `DELETE
//!   /orgs/{org}/members/{username}` — which ends every token and session the user has there.
//! - `suspend` (GitHub Enterprise Server, a site administrator's token): `PUT
//!   /users/{username}/suspended` with the reason; every session of the user ends.
//!
//! Each call carries GitHub's media type and API version, `Authorization: Bearer`. `204` is
//! done. A `404` is a refusal, not "already gone": GitHub also answers `404` to a token that
//! may not see the organization, and a kill that did not land must not be recorded as done.

use anyhow::{bail, Result};
use bytes::Bytes;
use hyper::Method;
use serde_json::json;

use super::set::DecisionIn;
use super::vendor::{segment, Call};

/// What the GitHub actuator does with a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GithubAction {
    /// Remove the token's SAML SSO authorization for the organization.
    Token,
    /// Remove the user from the organization.
    Membership,
    /// Suspend the user (GitHub Enterprise Server).
    Suspend,
}

impl GithubAction {
    pub fn parse(name: &str) -> Option<GithubAction> {
        match name {
            "token" => Some(GithubAction::Token),
            "membership" => Some(GithubAction::Membership),
            "suspend" => Some(GithubAction::Suspend),
            _ => None,
        }
    }
}

/// A GitHub actuator's target: the organization and what to do.
#[derive(Clone, Debug)]
pub struct GithubTarget {
    pub org: String,
    pub action: GithubAction,
}

/// The headers every GitHub REST call carries.
fn headers() -> Vec<(&'static str, String)> {
    vec![
        ("accept", "application/vnd.github+json".into()),
        ("x-github-api-version", "2022-11-28".into()),
        ("user-agent", "sessionguard-actuate".into()),
    ]
}

/// The call for `decision`, or why there is none.
pub fn call(target: &GithubTarget, decision: &DecisionIn) -> Result<Call> {
    let key = decision.session.key.as_str();
    if !key.starts_with("github:") {
        bail!("not a GitHub session");
    }
    let org = segment(&target.org);
    let login = || -> Result<String> {
        match decision.principal.name.as_deref() {
            Some(login) if !login.is_empty() => Ok(segment(login)),
            _ => bail!("the decision names no GitHub login"),
        }
    };
    let (method, path, body) = match target.action {
        GithubAction::Token => {
            let Some(id) = key.strip_prefix("github:token-id:") else {
                bail!(
                    "GitHub names this token only by its hash, which no revocation API takes \
                     (github.action: membership ends the user's access instead)"
                );
            };
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
                bail!("the token id {id:?} is not a number");
            }
            (
                Method::DELETE,
                format!("/orgs/{org}/credential-authorizations/{id}"),
                None,
            )
        }
        GithubAction::Membership => (
            Method::DELETE,
            format!("/orgs/{org}/members/{}", login()?),
            None,
        ),
        GithubAction::Suspend => (
            Method::PUT,
            format!("/users/{}/suspended", login()?),
            Some(json!({ "reason": format!("sessionguard: {}", decision.rule.id) })),
        ),
    };
    Ok(Call {
        absent_is_done: false,
        method,
        path,
        content_type: body.as_ref().map(|_| "application/json"),
        body: body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string())),
        headers: headers(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(key: &str, login: Option<&str>) -> DecisionIn {
        let mut line = json!({
            "decision_id": "d1", "time": "2024-10-03T15:06:04.000Z", "mode": "enforce",
            "action": "revoke_credential", "rule": {"id": "sg.github.clone_burst"},
            "session": {"key": key, "kind": "token"}, "principal": {"id": "90817263"},
        });
        if let Some(login) = login {
            line["principal"]["name"] = json!(login);
        }
        DecisionIn::parse(line.to_string().as_bytes()).unwrap()
    }

    fn target(action: GithubAction) -> GithubTarget {
        GithubTarget {
            org: "northwind-labs".into(),
            action,
        }
    }

    #[test]
    fn each_action_is_its_documented_call() {
        let d = decision("github:token-id:131415926", Some("ext-ops"));
        let c = call(&target(GithubAction::Token), &d).unwrap();
        assert_eq!(
            (c.method, c.path.as_str()),
            (
                Method::DELETE,
                "/orgs/northwind-labs/credential-authorizations/131415926"
            )
        );
        assert!(!c.absent_is_done && c.body.is_empty());
        let c = call(&target(GithubAction::Membership), &d).unwrap();
        assert_eq!(c.path, "/orgs/northwind-labs/members/ext-ops");
        let c = call(&target(GithubAction::Suspend), &d).unwrap();
        assert_eq!(
            (c.method, c.path.as_str()),
            (Method::PUT, "/users/ext-ops/suspended")
        );
        assert_eq!(
            c.body,
            Bytes::from(r#"{"reason":"sessionguard: sg.github.clone_burst"}"#)
        );
    }

    #[test]
    fn what_cannot_be_named_is_refused_and_names_stay_in_their_segment() {
        let hashed = decision("github:token:gks1notpLGbG=", Some("ext-ops"));
        let why = call(&target(GithubAction::Token), &hashed).unwrap_err();
        assert!(why.to_string().contains("hash"), "{why}");
        let no_login = decision("github:token:x", None);
        assert!(call(&target(GithubAction::Membership), &no_login).is_err());
        let odd = decision("github:token-id:12/../34", Some("x"));
        assert!(call(&target(GithubAction::Token), &odd).is_err());
        let hostile = decision("github:token:x", Some("../../orgs/other?x"));
        let c = call(&target(GithubAction::Membership), &hostile).unwrap();
        assert_eq!(
            c.path,
            "/orgs/northwind-labs/members/..%2F..%2Forgs%2Fother%3Fx"
        );
        let not_github = decision("okta:idx1", Some("x"));
        assert!(call(&target(GithubAction::Membership), &not_github).is_err());
    }
}
