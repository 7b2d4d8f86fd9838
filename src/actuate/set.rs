//! Security Event Tokens (RFC 8417) made from decisions: the decision as `actuate` reads it
//! ([`DecisionIn`]), the subject identifier formats receivers expect (RFC 9493 and the SSF 1.0
//! complex subject), the CAEP `session-revoked` event, and the signature (JWS compact, ES256 or
//! RS256, by josekit on OpenSSL). `jti` is the decision id, so a receiver deduplicates a SET
//! delivered twice (after a retry, or a restart) whatever the transport did.

use anyhow::{anyhow, bail, Context, Result};
use josekit::jwk::Jwk;
use josekit::jws::{JwsHeader, JwsSigner, ES256, RS256};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::secret::Secret;
use crate::decision::CAEP_SESSION_REVOKED;
use crate::event::Timestamp;

/// The `typ` of a SET (RFC 8417 §2.3).
pub const SET_TYPE: &str = "secevent+jwt";

/// What `actuate` reads of a decision line (docs/decisions.md has the whole record).
#[derive(Clone, Debug, Deserialize)]
pub struct DecisionIn {
    pub decision_id: String,
    pub time: String,
    pub mode: String,
    pub action: String,
    #[serde(default)]
    pub severity: Option<String>,
    pub rule: RuleIn,
    pub session: SessionIn,
    #[serde(default)]
    pub principal: PrincipalIn,
    #[serde(default)]
    pub evidence: Option<EvidenceIn>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RuleIn {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct SessionIn {
    pub key: String,
    /// `sign_in`, `temporary_credential`, `long_term_credential`, `token`, `certificate`,
    /// `principal`.
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PrincipalIn {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct EvidenceIn {
    #[serde(default)]
    pub reason: Option<String>,
}

impl DecisionIn {
    /// Parses one decision line; the error says what is wrong, never panics.
    pub fn parse(line: &[u8]) -> Result<DecisionIn> {
        let decision: DecisionIn = serde_json::from_slice(line).context("not a decision record")?;
        if decision.decision_id.is_empty() {
            bail!("decision_id is empty");
        }
        Timestamp::parse(&decision.time)
            .ok_or_else(|| anyhow!("time {:?} is not an RFC 3339 time", decision.time))?;
        Ok(decision)
    }

    /// The decision's event time in milliseconds since the epoch (checked by [`Self::parse`]).
    pub fn time_ms(&self) -> i64 {
        Timestamp::parse(&self.time).map_or(0, Timestamp::millis)
    }

    /// The principal's e-mail address, when its name or id is one.
    pub fn email(&self) -> Option<&str> {
        [&self.principal.name, &self.principal.id]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .find(|who| who.contains('@'))
    }

    /// The principal as the identity provider names it: its id, else its name.
    pub fn user_id(&self) -> Option<&str> {
        self.principal
            .id
            .as_deref()
            .or(self.principal.name.as_deref())
    }

    fn reason(&self) -> String {
        let title = self.rule.title.as_deref().unwrap_or(&self.rule.id);
        match self.evidence.as_ref().and_then(|e| e.reason.as_deref()) {
            Some(reason) => format!("{title}: {reason}"),
            None => title.to_owned(),
        }
    }
}

/// How a receiver wants the subject of a SET named.
#[derive(Clone, Debug, PartialEq)]
pub enum SubjectFormat {
    /// SSF complex subject: `session` (opaque, the session key) and `user` (email or opaque).
    Complex,
    /// The principal's e-mail address (RFC 9493 `email`).
    Email,
    /// `iss` (the identity provider, from config) and `sub` (the principal's id).
    IssSub(String),
    /// The session key (RFC 9493 `opaque`).
    Opaque,
}

impl SubjectFormat {
    /// From the config's `subject` (and `subject_issuer` for `iss_sub`).
    pub fn parse(name: &str, issuer: Option<&str>) -> Result<SubjectFormat, String> {
        match (name, issuer) {
            ("complex", _) => Ok(SubjectFormat::Complex),
            ("email", _) => Ok(SubjectFormat::Email),
            ("opaque", _) => Ok(SubjectFormat::Opaque),
            ("iss_sub", Some(iss)) => Ok(SubjectFormat::IssSub(iss.to_owned())),
            ("iss_sub", None) => Err("subject iss_sub needs subject_issuer".into()),
            (other, _) => Err(format!(
                "subject {other:?}: complex, email, iss_sub or opaque"
            )),
        }
    }

    /// The `sub_id` for `decision`; an error when the decision lacks what the format needs,
    /// which is a refusal: no retry can supply it.
    pub fn subject(&self, decision: &DecisionIn) -> Result<Value> {
        match self {
            SubjectFormat::Complex => {
                let mut subject = json!({
                    "format": "complex",
                    "session": { "format": "opaque", "id": decision.session.key },
                });
                let user = match (decision.email(), decision.user_id()) {
                    (Some(email), _) => Some(json!({ "format": "email", "email": email })),
                    (None, Some(id)) => Some(json!({ "format": "opaque", "id": id })),
                    (None, None) => None,
                };
                if let Some(user) = user {
                    subject["user"] = user;
                }
                Ok(subject)
            }
            SubjectFormat::Email => match decision.email() {
                Some(email) => Ok(json!({ "format": "email", "email": email })),
                None => bail!("the subject format is email and the principal has no address"),
            },
            SubjectFormat::IssSub(iss) => match decision.principal.id.as_deref() {
                Some(sub) => Ok(json!({ "format": "iss_sub", "iss": iss, "sub": sub })),
                None => bail!("the subject format is iss_sub and the principal has no id"),
            },
            SubjectFormat::Opaque => Ok(json!({ "format": "opaque", "id": decision.session.key })),
        }
    }
}

/// CAEP 1.0 §3.3: a credential was created, changed, revoked or deleted.
pub const CAEP_CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";
/// CAEP 1.0 §3.4: the session's authentication assurance changed.
pub const CAEP_ASSURANCE_LEVEL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/assurance-level-change";

/// The CAEP events `actuate` sends, by the short names the config uses.
pub const CAEP_EVENTS: [(&str, &str); 3] = [
    ("session-revoked", CAEP_SESSION_REVOKED),
    ("credential-change", CAEP_CREDENTIAL_CHANGE),
    ("assurance-level-change", CAEP_ASSURANCE_LEVEL_CHANGE),
];

/// The event URI of a short name (`session-revoked`) or of the URI itself.
pub fn caep_event(name: &str) -> Option<&'static str> {
    CAEP_EVENTS
        .iter()
        .find(|(short, uri)| *short == name || *uri == name)
        .map(|(_, uri)| *uri)
}

/// The CAEP event a decision is sent as to a receiver that takes the events `accepts` says
/// yes to, if any: only enforcing decisions are sent.
///
/// - `revoke_session` → `session-revoked`;
/// - `revoke_credential` → `credential-change` (`change_type: revoke`) when the receiver takes
///   it, else `session-revoked` (the session the credential opened ends);
/// - `step_up` → `assurance-level-change` (the session's assurance drops: receivers that
///   require more ask for it again).
pub fn event_for(decision: &DecisionIn, accepts: impl Fn(&str) -> bool) -> Option<&'static str> {
    if decision.mode != "enforce" {
        return None;
    }
    let candidates: &[&'static str] = match decision.action.as_str() {
        "revoke_session" => &[CAEP_SESSION_REVOKED],
        "revoke_credential" => &[CAEP_CREDENTIAL_CHANGE, CAEP_SESSION_REVOKED],
        "step_up" => &[CAEP_ASSURANCE_LEVEL_CHANGE],
        _ => &[],
    };
    candidates.iter().copied().find(|event| accepts(event))
}

/// The CAEP `credential_type` of the credential behind a session: `x509` for a client
/// certificate, `api-key` for access keys and temporary credentials, `token` for bearer
/// tokens (the last two are not in CAEP 1.0's list, which allows "any other credential type
/// supported mutually by the Transmitter and the Receiver"), `password` for a sign-in.
pub fn credential_type(decision: &DecisionIn) -> &'static str {
    match decision.session.kind.as_deref() {
        Some("certificate") => "x509",
        Some("long_term_credential" | "temporary_credential") => "api-key",
        Some("token") => "token",
        _ => "password",
    }
}

/// The SET claims for `decision`: `iat` is when it is made (seconds), the event's
/// `event_timestamp` the decision's time.
pub fn claims(
    issuer: &str,
    audience: Option<&str>,
    subject: Value,
    decision: &DecisionIn,
    event_type: &str,
    issued_at: i64,
) -> Value {
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(issuer));
    claims.insert("jti".into(), json!(decision.decision_id));
    claims.insert("iat".into(), json!(issued_at));
    if let Some(aud) = audience {
        claims.insert("aud".into(), json!(aud));
    }
    claims.insert("txn".into(), json!(decision.decision_id));
    claims.insert("sub_id".into(), subject);
    let mut event = json!({
        "event_timestamp": decision.time_ms().div_euclid(1000),
        "initiating_entity": "policy",
        "reason_admin": { "en": decision.reason() },
    });
    match event_type {
        CAEP_CREDENTIAL_CHANGE => {
            event["credential_type"] = json!(credential_type(decision));
            event["change_type"] = json!("revoke");
            event["friendly_name"] = json!(decision.session.key);
        }
        CAEP_ASSURANCE_LEVEL_CHANGE => {
            // What the session proved no longer counts: it stands at single-factor assurance
            // until the user authenticates again, which receivers requiring more will ask for.
            event["namespace"] = json!("NIST-AAL");
            event["current_level"] = json!("nist-aal1");
            event["change_direction"] = json!("decrease");
        }
        _ => {}
    }
    claims.insert(
        "events".into(),
        Value::Object(Map::from_iter([(event_type.to_owned(), event)])),
    );
    Value::Object(claims)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlg {
    Es256,
    Rs256,
}

impl SigningAlg {
    pub fn name(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::Rs256 => "RS256",
        }
    }
}

/// The transmitter's signing key, and its public half as a JWK.
pub struct SetSigner {
    signer: Box<dyn JwsSigner>,
    public: Jwk,
    alg: SigningAlg,
    kid: String,
}

impl SetSigner {
    /// From a PEM private key (PKCS#8, SEC1 for EC, PKCS#1 for RSA).
    pub fn new(alg: SigningAlg, kid: &str, pem: &Secret) -> Result<SetSigner> {
        let bad = |e: josekit::JoseError| {
            // josekit's message can quote the input: name the algorithm, not the key.
            anyhow!(
                "the key is not a {} private key in PEM ({})",
                alg.name(),
                e.to_string()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(80)
                    .collect::<String>()
            )
        };
        let (signer, mut public): (Box<dyn JwsSigner>, Jwk) = match alg {
            SigningAlg::Es256 => {
                let pair = ES256.key_pair_from_pem(pem.expose()).map_err(bad)?;
                let public = josekit::jwk::KeyPair::to_jwk_public_key(&pair);
                (
                    Box::new(ES256.signer_from_pem(pem.expose()).map_err(bad)?),
                    public,
                )
            }
            SigningAlg::Rs256 => {
                let pair = RS256.key_pair_from_pem(pem.expose()).map_err(bad)?;
                let public = josekit::jwk::KeyPair::to_jwk_public_key(&pair);
                (
                    Box::new(RS256.signer_from_pem(pem.expose()).map_err(bad)?),
                    public,
                )
            }
        };
        public.set_key_id(kid);
        public.set_algorithm(alg.name());
        public.set_key_use("sig");
        Ok(SetSigner {
            signer,
            public,
            alg,
            kid: kid.to_owned(),
        })
    }

    /// The SET as a JWS compact serialization.
    pub fn sign(&self, claims: &Value) -> Result<String> {
        let mut header = JwsHeader::new();
        header.set_token_type(SET_TYPE);
        header.set_key_id(&self.kid);
        header.set_algorithm(self.alg.name());
        let payload = serde_json::to_vec(claims)?;
        josekit::jws::serialize_compact(&payload, &header, self.signer.as_ref())
            .map_err(|e| anyhow!("signing a SET: {e}"))
    }

    /// `{"keys": [the public key]}` for the JWKS endpoint.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [Value::Object(self.public.as_ref().clone())] })
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECISION: &str = r#"{"decision_id":"28c6c0272960df9f463027da6a514710","time":"2024-10-12T02:16:35.338Z","mode":"enforce","action":"revoke_session","severity":"high","rule":{"id":"sg.session.mfa_failures","version":"1","title":"Repeated failed MFA"},"session":{"key":"okta:idxSCG","kind":"sign_in","derived":false,"started":"2024-10-12T02:14:03.512Z"},"principal":{"type":"User","id":"00ugr9bf","name":"a.kowalski@northwind.example"},"evidence":{"reason":"event_count 4 >= 4 within 10m"}}"#;

    fn key(alg: SigningAlg) -> Secret {
        let pem = match alg {
            SigningAlg::Es256 => ES256.generate_key_pair().unwrap().to_pem_private_key(),
            SigningAlg::Rs256 => RS256.generate_key_pair(2048).unwrap().to_pem_private_key(),
        };
        Secret::from_bytes(pem, "test")
    }

    #[test]
    fn sets_verify_against_the_published_jwk_for_both_algorithms() {
        let decision = DecisionIn::parse(DECISION.as_bytes()).unwrap();
        for alg in [SigningAlg::Es256, SigningAlg::Rs256] {
            let signer = SetSigner::new(alg, "k1", &key(alg)).unwrap();
            let subject = SubjectFormat::Complex.subject(&decision).unwrap();
            let claims = claims(
                "https://sg.example",
                Some("https://idp"),
                subject,
                &decision,
                CAEP_SESSION_REVOKED,
                1,
            );
            let token = signer.sign(&claims).unwrap();
            let jwks = josekit::jwk::JwkSet::from_bytes(signer.jwks().to_string()).unwrap();
            let jwk = jwks.get("k1")[0];
            let (payload, header) = match alg {
                SigningAlg::Es256 => josekit::jws::deserialize_compact(
                    &token,
                    &ES256.verifier_from_jwk(jwk).unwrap(),
                ),
                SigningAlg::Rs256 => josekit::jws::deserialize_compact(
                    &token,
                    &RS256.verifier_from_jwk(jwk).unwrap(),
                ),
            }
            .unwrap();
            assert_eq!(header.token_type(), Some(SET_TYPE));
            let got: Value = serde_json::from_slice(&payload).unwrap();
            assert_eq!(got["jti"], "28c6c0272960df9f463027da6a514710");
            assert_eq!(got["aud"], "https://idp");
            assert_eq!(got["sub_id"]["session"]["id"], "okta:idxSCG");
            assert_eq!(
                got["sub_id"]["user"]["email"],
                "a.kowalski@northwind.example"
            );
            let event = &got["events"][CAEP_SESSION_REVOKED];
            assert_eq!(event["event_timestamp"], 1_728_699_395);
            assert!(
                jwk.parameter("d").is_none(),
                "the JWKS must hold no private part"
            );
        }
    }

    #[test]
    fn subjects_in_each_format_or_a_refusal() {
        let decision = DecisionIn::parse(DECISION.as_bytes()).unwrap();
        assert_eq!(
            SubjectFormat::Email.subject(&decision).unwrap(),
            json!({"format": "email", "email": "a.kowalski@northwind.example"})
        );
        assert_eq!(
            SubjectFormat::IssSub("https://northwind.okta.com".into())
                .subject(&decision)
                .unwrap(),
            json!({"format": "iss_sub", "iss": "https://northwind.okta.com", "sub": "00ugr9bf"})
        );
        assert_eq!(
            SubjectFormat::Opaque.subject(&decision).unwrap(),
            json!({"format": "opaque", "id": "okta:idxSCG"})
        );
        let mut service = decision.clone();
        service.principal = PrincipalIn {
            kind: None,
            id: Some("svc-reporting".into()),
            name: None,
        };
        assert!(SubjectFormat::Email.subject(&service).is_err());
        assert_eq!(
            SubjectFormat::Complex.subject(&service).unwrap()["user"],
            json!({"format": "opaque", "id": "svc-reporting"})
        );
    }

    #[test]
    fn bad_decision_lines_are_errors() {
        for line in [
            "",
            "{",
            "{}",
            r#"{"decision_id":"x","time":"yesterday","mode":"enforce","action":"revoke_session","rule":{"id":"r"},"session":{"key":"k"}}"#,
        ] {
            assert!(DecisionIn::parse(line.as_bytes()).is_err(), "{line}");
        }
    }

    #[test]
    fn a_key_of_the_wrong_kind_is_refused() {
        let rsa = key(SigningAlg::Rs256);
        assert!(SetSigner::new(SigningAlg::Es256, "k", &rsa).is_err());
        let junk = Secret::from_bytes(b"not a key".to_vec(), "test");
        assert!(SetSigner::new(SigningAlg::Rs256, "k", &junk).is_err());
    }

    fn decision(action: &str, mode: &str, kind: &str) -> DecisionIn {
        let mut d: Value = serde_json::from_str(DECISION).unwrap();
        d["action"] = json!(action);
        d["mode"] = json!(mode);
        d["session"]["kind"] = json!(kind);
        DecisionIn::parse(d.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn each_action_is_sent_as_the_caep_event_the_receiver_takes() {
        let all = |_: &str| true;
        let only_revoked = |e: &str| e == CAEP_SESSION_REVOKED;
        let cases = [
            (
                "revoke_session",
                "enforce",
                &all as &dyn Fn(&str) -> bool,
                Some(CAEP_SESSION_REVOKED),
            ),
            (
                "revoke_credential",
                "enforce",
                &all,
                Some(CAEP_CREDENTIAL_CHANGE),
            ),
            (
                "revoke_credential",
                "enforce",
                &only_revoked,
                Some(CAEP_SESSION_REVOKED),
            ),
            (
                "step_up",
                "enforce",
                &all,
                Some(CAEP_ASSURANCE_LEVEL_CHANGE),
            ),
            ("step_up", "enforce", &only_revoked, None),
            ("alert", "enforce", &all, None),
            ("revoke_session", "dry_run", &all, None),
        ];
        for (action, mode, accepts, want) in cases {
            let d = decision(action, mode, "sign_in");
            assert_eq!(event_for(&d, accepts), want, "{action} {mode}");
        }
        assert_eq!(
            caep_event("credential-change"),
            Some(CAEP_CREDENTIAL_CHANGE)
        );
        assert_eq!(
            caep_event(CAEP_ASSURANCE_LEVEL_CHANGE),
            Some(CAEP_ASSURANCE_LEVEL_CHANGE)
        );
        assert_eq!(caep_event("session-established"), None);
    }

    #[test]
    fn credential_change_and_assurance_level_change_carry_their_required_claims() {
        for (kind, credential) in [
            ("long_term_credential", "api-key"),
            ("temporary_credential", "api-key"),
            ("certificate", "x509"),
            ("token", "token"),
            ("sign_in", "password"),
        ] {
            let d = decision("revoke_credential", "enforce", kind);
            let subject = SubjectFormat::Complex.subject(&d).unwrap();
            let c = claims("https://sg", None, subject, &d, CAEP_CREDENTIAL_CHANGE, 7);
            let event = &c["events"][CAEP_CREDENTIAL_CHANGE];
            assert_eq!(event["credential_type"], credential, "{kind}");
            assert_eq!(event["change_type"], "revoke");
            assert_eq!(event["friendly_name"], "okta:idxSCG");
            assert_eq!(event["event_timestamp"], 1728699395);
            assert_eq!(
                c["events"].as_object().unwrap().len(),
                1,
                "one event per SET"
            );
        }
        let d = decision("step_up", "enforce", "sign_in");
        let subject = SubjectFormat::Complex.subject(&d).unwrap();
        let c = claims(
            "https://sg",
            None,
            subject,
            &d,
            CAEP_ASSURANCE_LEVEL_CHANGE,
            7,
        );
        let event = &c["events"][CAEP_ASSURANCE_LEVEL_CHANGE];
        assert_eq!(event["namespace"], "NIST-AAL");
        assert_eq!(event["current_level"], "nist-aal1");
        assert_eq!(event["change_direction"], "decrease");
        assert_eq!(event["initiating_entity"], "policy");
    }
}
