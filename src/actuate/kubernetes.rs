//! The Kubernetes actuator (`kind: kubernetes`): a decision on a service account's token
//! (`k8s:jti:…`, principal `system:serviceaccount:<namespace>:<name>`) turned into the API
//! server call that makes every token of that service account stop authenticating: delete the
//! ServiceAccount — `DELETE /api/v1/namespaces/{namespace}/serviceaccounts/{name}` with
//! `DeleteOptions` (background propagation). Bound tokens are checked against the service
//! account they name, so they fail at once; legacy token Secrets are garbage-collected with
//! it. A workload that needs the account is recreated by whoever deploys it (the guard's
//! `never_kill` keeps system accounts safe: `system:serviceaccount:kube-system:*`).
//!
//! Sent with the API server's bearer token (`authorization`) over TLS verified against the
//! cluster's CA (`ca_file`). `200`/`202` is done; `404` means the account is already gone,
//! which is done too. A client certificate (`k8s:x509:…`) cannot be revoked in Kubernetes,
//! and a user is not an object the API can delete: both are refused with the reason.

use anyhow::{bail, Result};
use bytes::Bytes;
use hyper::Method;

use super::set::DecisionIn;
use super::vendor::Call;

const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// Whether `name` is a Kubernetes object name (RFC 1123 subdomain: lowercase letters, digits,
/// `-` and `.`, starting and ending with a letter or digit, at most 253 bytes).
fn is_object_name(name: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| alnum(b) || b == b'-' || b == b'.')
        && name.bytes().next().is_some_and(alnum)
        && name.bytes().last().is_some_and(alnum)
}

/// The call for `decision`, or why there is none.
pub fn call(decision: &DecisionIn) -> Result<Call> {
    let key = decision.session.key.as_str();
    if key.starts_with("k8s:x509:") {
        bail!(
            "Kubernetes cannot revoke a client certificate (no revocation list): remove the \
             user's bindings or rotate the CA"
        );
    }
    if !key.starts_with("k8s:") {
        bail!("not a Kubernetes session");
    }
    let Some(account) = decision
        .principal
        .name
        .as_deref()
        .and_then(|n| n.strip_prefix(SERVICE_ACCOUNT_PREFIX))
    else {
        bail!("the principal is not a service account (system:serviceaccount:<namespace>:<name>)");
    };
    let Some((namespace, name)) = account.split_once(':') else {
        bail!("the service account {account:?} has no namespace");
    };
    if !is_object_name(namespace) || !is_object_name(name) {
        bail!("{namespace:?}/{name:?} is not a Kubernetes namespace and object name");
    }
    Ok(Call {
        method: Method::DELETE,
        path: format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}"),
        content_type: Some("application/json"),
        body: Bytes::from_static(
            br#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}"#,
        ),
        headers: Vec::new(),
        absent_is_done: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(key: &str, name: &str) -> DecisionIn {
        let line = serde_json::json!({
            "decision_id": "d1", "time": "2024-10-25T09:27:41.508Z", "mode": "enforce",
            "action": "revoke_session", "rule": {"id": "r"},
            "session": {"key": key, "kind": "token"}, "principal": {"name": name},
        });
        DecisionIn::parse(line.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_service_accounts_token_deletes_the_service_account() {
        let d = decision("k8s:jti:0f8a3c52", "system:serviceaccount:payments:api");
        let c = call(&d).unwrap();
        assert_eq!(c.method, Method::DELETE);
        assert_eq!(c.path, "/api/v1/namespaces/payments/serviceaccounts/api");
        assert!(c.absent_is_done);
        let options: serde_json::Value = serde_json::from_slice(&c.body).unwrap();
        assert_eq!(options["propagationPolicy"], "Background");
    }

    #[test]
    fn certificates_users_and_odd_names_are_refused() {
        for (key, name, why) in [
            ("k8s:x509:9c1e", "system:admin", "certificate"),
            (
                "k8s:jti:1",
                "jane@northwind.example",
                "not a service account",
            ),
            ("k8s:jti:1", "system:serviceaccount:web", "no namespace"),
            (
                "k8s:jti:1",
                "system:serviceaccount:web:../secrets",
                "not a Kubernetes",
            ),
            (
                "k8s:jti:1",
                "system:serviceaccount:Web:api",
                "not a Kubernetes",
            ),
            (
                "okta:1",
                "system:serviceaccount:web:api",
                "not a Kubernetes session",
            ),
        ] {
            let err = call(&decision(key, name)).unwrap_err().to_string();
            assert!(err.contains(why), "{key} {name}: {err}");
        }
    }
}
