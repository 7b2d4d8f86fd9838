//! AWS: the direct actuator for AWS sessions and keys, and the Signature Version 4 signing its
//! IAM calls need (HMAC-SHA-256 on the `sha2` already in the tree; checked against the worked
//! example of AWS's General Reference).
//!
//! What a decision becomes (IAM query API, `POST /`, form-encoded, `Version=2010-05-08`):
//! - a temporary session of an assumed role (`aws:…:sts:ASIA…`) — `PutRolePolicy` on the role:
//!   an inline policy `sessionguard-revoke-older-sessions` denying everything to credentials
//!   issued before the decision's time (`aws:TokenIssueTime`), as the console's "Revoke active
//!   sessions" does. Every session of the role issued before then ends; newer ones work.
//! - a long-term access key (`aws:…:iam-key:AKIA…`) of an IAM user — `UpdateAccessKey`
//!   `Status=Inactive` for that key of that user.
//!
//! Anything else (root, federated users, services) is refused with the reason.

use anyhow::{bail, Result};
use sha2::{Digest, Sha256};

use super::secret::Secret;
use super::set::DecisionIn;
use super::vendor::Call;
use crate::decision::hmac_sha256 as hmac;
use crate::event::Timestamp;

pub const POLICY_NAME: &str = "sessionguard-revoke-older-sessions";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Credentials and scope of the signing.
#[derive(Clone, Debug)]
pub struct AwsSigner {
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    pub region: String,
    pub service: String,
}

/// The IAM call for `decision`.
pub fn call(decision: &DecisionIn) -> Result<Call> {
    let key = decision.session.key.as_str();
    let mut parts = key.splitn(4, ':');
    let (Some("aws"), Some(_account), Some(kind), Some(credential)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        bail!("not an AWS session key: {key}");
    };
    let params: Vec<(&str, String)> = match kind {
        "sts" => {
            let role = assumed_role(decision)
                .ok_or_else(|| anyhow::anyhow!("the session is not an assumed role's"))?;
            let time = Timestamp::from_millis(decision.time_ms()).to_string();
            // Whole seconds: IAM reads `2024-10-15T10:00:31Z`.
            let time = format!("{}Z", &time[..19]);
            let policy = serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": { "DateLessThan": { "aws:TokenIssueTime": time } },
                }],
            });
            vec![
                ("Action", "PutRolePolicy".into()),
                ("PolicyDocument", policy.to_string()),
                ("PolicyName", POLICY_NAME.into()),
                ("RoleName", role),
                ("Version", "2010-05-08".into()),
            ]
        }
        "iam-key" if credential.starts_with("AKIA") => {
            let Some(user) = decision.principal.name.as_deref() else {
                bail!("the decision names no IAM user for the key");
            };
            vec![
                ("AccessKeyId", credential.to_owned()),
                ("Action", "UpdateAccessKey".into()),
                ("Status", "Inactive".into()),
                ("UserName", user.to_owned()),
                ("Version", "2010-05-08".into()),
            ]
        }
        other => bail!("no AWS revocation for a session of kind {other}"),
    };
    let body = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    Ok(Call {
        method: hyper::Method::POST,
        path: "/".into(),
        content_type: Some(FORM),
        body: body.into(),
        headers: Vec::new(),
        absent_is_done: false,
    })
}

/// The role of an assumed-role session: from `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
fn assumed_role(decision: &DecisionIn) -> Option<String> {
    let arn = decision.principal.id.as_deref()?;
    let rest = arn.split_once(":assumed-role/")?.1;
    Some(rest.split('/').next()?.to_owned()).filter(|r| !r.is_empty())
}

/// RFC 3986 encoding as SigV4 wants it: everything but unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl AwsSigner {
    fn signing_key(&self, date: &str) -> [u8; 32] {
        let mut secret = b"AWS4".to_vec();
        secret.extend_from_slice(self.secret_access_key.expose());
        let k_date = hmac(&secret, date.as_bytes());
        let k_region = hmac(&k_date, self.region.as_bytes());
        let k_service = hmac(&k_region, self.service.as_bytes());
        hmac(&k_service, b"aws4_request")
    }

    /// The headers that sign a request made at `amz_date` (`YYYYMMDDTHHMMSSZ`): `x-amz-date`,
    /// `x-amz-security-token` (with a session token) and `authorization`. `query` is the
    /// canonical query string (sorted, encoded); `headers` the other headers to sign,
    /// lower-case (`host` and `content-type`).
    pub fn sign(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        amz_date: &str,
    ) -> Result<Vec<(&'static str, String)>> {
        let token = self
            .session_token
            .as_ref()
            .map(Secret::expose_str)
            .transpose()?;
        let mut signed: Vec<(&str, String)> = headers
            .iter()
            .map(|(k, v)| (*k, v.trim().to_owned()))
            .collect();
        signed.push(("x-amz-date", amz_date.to_owned()));
        if let Some(token) = token {
            signed.push(("x-amz-security-token", token.to_owned()));
        }
        signed.sort_by(|a, b| a.0.cmp(b.0));
        let names = signed.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(";");
        let canonical_headers: String = signed.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let canonical = format!(
            "{method}\n{path}\n{query}\n{canonical_headers}\n{names}\n{}",
            hex(&Sha256::digest(body))
        );
        let date = &amz_date[..8];
        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let signature = hex(&hmac(&self.signing_key(date), to_sign.as_bytes()));
        let mut out = vec![("x-amz-date", amz_date.to_owned())];
        if let Some(token) = token {
            out.push(("x-amz-security-token", token.to_owned()));
        }
        out.push((
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={names}, Signature={signature}",
                self.access_key_id.expose_str()?
            ),
        ));
        Ok(out)
    }
}

/// `YYYYMMDDTHHMMSSZ` for a time in milliseconds since the epoch.
pub fn amz_date(ms: i64) -> String {
    let text = Timestamp::from_millis(ms).to_string();
    // 2015-08-30T12:36:00.000Z
    format!(
        "{}{}{}T{}{}{}Z",
        &text[0..4],
        &text[5..7],
        &text[8..10],
        &text[11..13],
        &text[14..16],
        &text[17..19]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_signer(region: &str) -> AwsSigner {
        AwsSigner {
            access_key_id: Secret::from_bytes(b"AKIDEXAMPLE".to_vec(), "test"),
            secret_access_key: Secret::from_bytes(
                b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec(),
                "test",
            ),
            session_token: None,
            region: region.into(),
            service: "iam".into(),
        }
    }

    /// AWS General Reference, "Examples of how to derive a signing key for Signature Version 4".
    #[test]
    fn the_signing_key_is_awss_worked_example() {
        let key = example_signer("us-east-1").signing_key("20120215");
        assert_eq!(
            hex(&key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    /// AWS General Reference, the complete signing example: IAM `ListUsers` at
    /// 2015-08-30T12:36:00Z.
    #[test]
    fn a_request_is_signed_as_in_awss_worked_example() {
        let headers = example_signer("us-east-1")
            .sign(
                "GET",
                "/",
                "Action=ListUsers&Version=2010-05-08",
                &[("content-type", FORM), ("host", "iam.amazonaws.com")],
                b"",
                "20150830T123600Z",
            )
            .unwrap();
        let auth = &headers
            .iter()
            .find(|(k, _)| *k == "authorization")
            .unwrap()
            .1;
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn decision(key: &str, id: &str, name: &str) -> DecisionIn {
        let line = serde_json::json!({
            "decision_id": "d1", "time": "2024-10-15T10:00:31.250Z", "mode": "enforce",
            "action": "revoke_session", "rule": {"id": "r"}, "session": {"key": key},
            "principal": {"id": id, "name": name},
        });
        DecisionIn::parse(line.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn role_sessions_get_a_token_issue_time_deny_and_user_keys_are_deactivated() {
        let role = call(&decision(
            "aws:482915736014:sts:ASIA4BETBYU3UR7RMWTI",
            "arn:aws:sts::482915736014:assumed-role/data-admin/d.kaur@northwind.example",
            "data-admin",
        ))
        .unwrap();
        let body = String::from_utf8(role.body.to_vec()).unwrap();
        assert!(
            body.starts_with("Action=PutRolePolicy&PolicyDocument=%7B"),
            "{body}"
        );
        assert!(
            body.contains("aws%3ATokenIssueTime%22%3A%222024-10-15T10%3A00%3A31Z%22"),
            "{body}"
        );
        assert!(body.ends_with("&PolicyName=sessionguard-revoke-older-sessions&RoleName=data-admin&Version=2010-05-08"), "{body}");
        let key = call(&decision(
            "aws:482915736014:iam-key:AKIAYVP2UNNS3AS7K2SP",
            "arn:aws:iam::482915736014:user/svc-reporting",
            "svc-reporting",
        ))
        .unwrap();
        assert_eq!(
            key.body,
            "AccessKeyId=AKIAYVP2UNNS3AS7K2SP&Action=UpdateAccessKey&Status=Inactive&UserName=svc-reporting&Version=2010-05-08"
        );
        assert!(call(&decision("okta:x", "00u1", "a")).is_err());
        assert!(call(&decision("aws:1:root:x", "arn:aws:iam::1:root", "root")).is_err());
    }

    #[test]
    fn amz_dates_are_compact_utc() {
        assert_eq!(amz_date(1_440_938_160_000), "20150830T123600Z");
    }
}
