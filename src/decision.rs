//! Decisions: what sessionguard tells responders and identity providers to do, with the
//! evidence behind it.
//!
//! A decision is fully owned (it outlives the records that caused it) and serializes to one
//! JSON line in a fixed field order. Its `decision_id` is a hash of what the decision is about —
//! rule id and version, session key, the event time it was taken at, and how many decisions the
//! rule had already taken on that session — and never of where the events were read from, so a
//! replay over files and a run over Kafka give the same ids, and consumers of an at-least-once
//! stream deduplicate on it. `caep` holds an unsigned OpenID CAEP `session-revoked` Security
//! Event Token claims set for Shared Signals receivers.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::event::Timestamp;
use crate::rule::{ActionKind, Mode, Severity};
use crate::source::{Origin, OriginNames};

/// The CAEP event type URI for a revoked session.
pub const CAEP_SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

/// The Kafka header `run` puts on each decision when a decision key is set
/// (`SESSIONGUARD_DECISION_MAC_KEY` or `…_KEY_FILE`): [`decision_mac`] of the record's value,
/// which `actuate` checks before acting (docs/actuation.md, "Trust model").
pub const MAC_HEADER: &str = "sessionguard_mac";

/// The rule id of the engine's own finding: activity on a session after it was killed.
pub const KILL_NOT_ENFORCED: &str = "sessionguard.kill_not_enforced";

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub decision_id: String,
    /// Event time at which the decision was taken.
    pub time: Timestamp,
    pub mode: Mode,
    pub action: ActionKind,
    pub severity: Severity,
    pub rule: RuleRef,
    pub session: SessionRef,
    pub principal: PrincipalRef,
    pub evidence: Evidence,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caep: Option<CaepClaims>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleRef {
    pub id: String,
    pub version: String,
    pub title: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionRef {
    pub key: String,
    pub kind: &'static str,
    pub derived: bool,
    /// The session's first event or issuing time.
    pub started: Timestamp,
    /// The session this one was issued from (AWS role chaining), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Every session up the role chain, parent first: who assumed this session's role, from
    /// which session, back to the root. Empty (left out) for a session issued by none known.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// The session at the root of the chain — the person, workload or agent that started it
    /// — when every link up to it is still known; left out otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PrincipalRef {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Why the rule fired.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    /// Human summary: `event_count 50 >= 50 within 5m`.
    pub reason: String,
    /// The aggregate that fired (`event_count`, `value_count`, `value_sum`, `new_value`,
    /// `sequence`, `duration`, `scope_growth`, `agent_grant`, `match`, `kill_not_enforced`; a correlation's:
    /// `event_count`, `value_count`, `value_sum`, `temporal`, `temporal_ordered`).
    pub aggregate: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
    /// A correlation's group: the values of its group-by fields the decision is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Group>,
    /// The event-time window the aggregate covers.
    pub window: Window,
    /// The events that led to the decision, oldest first (at most a bounded number; the
    /// triggering event is always last).
    pub events: Vec<EvidenceEvent>,
    /// Events left out of `events` to keep decisions small.
    #[serde(skip_serializing_if = "is_zero")]
    pub events_omitted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The group a correlation decided on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Group {
    /// The group's values in group-by order, as one JSON array: what its state is kept by.
    pub key: String,
    /// Each group-by field (an alias or a field name, as the correlation writes it) and its
    /// value.
    pub fields: Vec<GroupField>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupField {
    pub name: String,
    pub value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvidenceEvent {
    pub time: Timestamp,
    pub origin: EvidenceOrigin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The value the aggregate looked at, for distinct-value and new-value rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Where an evidence event was read from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EvidenceOrigin {
    File {
        file: String,
        line: u64,
    },
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
}

impl EvidenceOrigin {
    pub fn resolve(origin: Origin, names: &OriginNames) -> Self {
        match origin {
            Origin::File { file, line } => EvidenceOrigin::File {
                file: names.name(file).to_owned(),
                line,
            },
            Origin::Kafka {
                topic,
                partition,
                offset,
            } => EvidenceOrigin::Kafka {
                topic: names.name(topic).to_owned(),
                partition,
                offset,
            },
        }
    }
}

/// An unsigned CAEP `session-revoked` SET claims set (OpenID Shared Signals, CAEP 1.0).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaepClaims {
    pub iss: String,
    pub jti: String,
    /// Seconds since the epoch (event time of the decision).
    pub iat: i64,
    pub sub_id: CaepSubject,
    pub events: CaepEvents,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaepSubject {
    pub format: &'static str,
    pub session: CaepIdentifier,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<CaepIdentifier>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaepIdentifier {
    pub format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaepEvents {
    #[serde(rename = "https://schemas.openid.net/secevent/caep/event-type/session-revoked")]
    pub session_revoked: CaepSessionRevoked,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaepSessionRevoked {
    pub event_timestamp: i64,
    pub initiating_entity: &'static str,
    pub reason_admin: ReasonText,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReasonText {
    pub en: String,
}

/// HMAC-SHA-256 (RFC 2104) of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The MAC of a decision record's bytes: `hmac-sha256=` and 64 hex digits.
pub fn decision_mac(key: &[u8], payload: &[u8]) -> String {
    let mut text = String::with_capacity(12 + 64);
    text.push_str("hmac-sha256=");
    for byte in hmac_sha256(key, payload) {
        use std::fmt::Write as _;
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Whether `mac` is the MAC of `payload`, compared in constant time.
pub fn decision_mac_matches(key: &[u8], payload: &[u8], mac: &[u8]) -> bool {
    let expected = decision_mac(key, payload);
    expected.len() == mac.len()
        && expected
            .bytes()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The deterministic id of a decision: 32 hex digits of SHA-256 over its identity.
pub fn decision_id(
    rule_id: &str,
    version: &str,
    session_key: &str,
    time: Timestamp,
    ordinal: u64,
) -> String {
    let mut hash = Sha256::new();
    for part in [rule_id, version, session_key] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hash.update(time.millis().to_le_bytes());
    hash.update(ordinal.to_le_bytes());
    let digest = hash.finalize();
    let mut hex = String::with_capacity(32);
    for byte in &digest[..16] {
        use std::fmt::Write as _;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The CAEP claims for a kill decision. `issuer` names this sessionguard deployment.
pub fn caep_claims(
    issuer: &str,
    decision_id: &str,
    time: Timestamp,
    session_id: &str,
    principal: &PrincipalRef,
    reason: &str,
) -> CaepClaims {
    let user = principal
        .name
        .as_ref()
        .or(principal.id.as_ref())
        .map(|who| {
            if who.contains('@') {
                CaepIdentifier {
                    format: "email",
                    id: None,
                    email: Some(who.clone()),
                }
            } else {
                CaepIdentifier {
                    format: "opaque",
                    id: Some(who.clone()),
                    email: None,
                }
            }
        });
    let seconds = time.millis().div_euclid(1000);
    CaepClaims {
        iss: issuer.to_owned(),
        jti: decision_id.to_owned(),
        iat: seconds,
        sub_id: CaepSubject {
            format: "complex",
            session: CaepIdentifier {
                format: "opaque",
                id: Some(session_id.to_owned()),
                email: None,
            },
            user,
        },
        events: CaepEvents {
            session_revoked: CaepSessionRevoked {
                event_timestamp: seconds,
                initiating_entity: "policy",
                reason_admin: ReasonText {
                    en: reason.to_owned(),
                },
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_every_identity_part_and_nothing_else() {
        let t = Timestamp::from_millis(1_722_519_208_000);
        let base = decision_id("r", "1", "aws:1:sts:ASIA", t, 0);
        assert_eq!(base.len(), 32);
        assert_eq!(base, decision_id("r", "1", "aws:1:sts:ASIA", t, 0));
        for other in [
            decision_id("r2", "1", "aws:1:sts:ASIA", t, 0),
            decision_id("r", "2", "aws:1:sts:ASIA", t, 0),
            decision_id("r", "1", "aws:1:sts:ASIB", t, 0),
            decision_id("r", "1", "aws:1:sts:ASIA", Timestamp::from_millis(1), 0),
            decision_id("r", "1", "aws:1:sts:ASIA", t, 1),
            // Length prefixes keep parts from sliding into each other.
            decision_id("r1", "", "aws:1:sts:ASIA", t, 0),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn decision_macs_are_rfc_4231_hmacs_and_checked_whole() {
        let mac = decision_mac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            mac,
            "hmac-sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let payload = br#"{"decision_id":"x"}"#;
        let good = decision_mac(b"k", payload);
        assert!(decision_mac_matches(b"k", payload, good.as_bytes()));
        assert!(!decision_mac_matches(b"other", payload, good.as_bytes()));
        assert!(!decision_mac_matches(
            b"k",
            br#"{"decision_id":"y"}"#,
            good.as_bytes()
        ));
        assert!(!decision_mac_matches(b"k", payload, &good.as_bytes()[..40]));
        assert!(!decision_mac_matches(b"k", payload, b""));
    }

    #[test]
    fn caep_claims_name_the_session_and_user() {
        let principal = PrincipalRef {
            name: Some("alice@example.com".into()),
            ..PrincipalRef::default()
        };
        let claims = caep_claims(
            "https://sessionguard.example",
            "abc",
            Timestamp::from_millis(1_722_519_208_500),
            "okta:102abc",
            &principal,
            "bulk export",
        );
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["sub_id"]["format"], "complex");
        assert_eq!(json["sub_id"]["session"]["id"], "okta:102abc");
        assert_eq!(json["sub_id"]["user"]["email"], "alice@example.com");
        let event = &json["events"][CAEP_SESSION_REVOKED];
        assert_eq!(event["event_timestamp"], 1_722_519_208);
        assert_eq!(event["initiating_entity"], "policy");
        assert_eq!(event["reason_admin"]["en"], "bulk export");
    }
}
