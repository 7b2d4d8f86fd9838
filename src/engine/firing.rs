//! Turning a firing into a decision: evidence, principal, CAEP claims — and the small text
//! helpers the reasons use. Nothing here keeps state.

use std::fmt::Write as _;
use std::hash::Hasher;
use std::net::IpAddr;

use crate::decision::{
    self, caep_claims, Decision, Evidence, EvidenceEvent, EvidenceOrigin, Group, PrincipalRef,
    RuleRef, SessionRef, Window,
};
use crate::event::{Event, SessionKind, Timestamp};
use crate::rule::field::Value;
use crate::rule::{ActionKind, Mode, Severity, Threshold, Tolerance};
use crate::source::{Origin, OriginNames};

use super::EngineConfig;

/// What a firing rule hands to the decision builder.
pub struct Firing {
    pub aggregate: &'static str,
    pub reason: String,
    pub value: Option<f64>,
    pub threshold: Option<String>,
    pub window_start: i64,
    /// Earlier events, oldest first, then omitted count.
    pub earlier: Vec<(i64, Origin)>,
    pub omitted: u64,
    pub trigger_value: Option<String>,
    /// Who acted, when the decision is taken without an event in hand (timers).
    pub principal: Option<PrincipalRef>,
    /// The record that brought the finding, when the decision is taken after it (a held
    /// baseline finding): its time, origin and action, shown last in the evidence as a
    /// record in hand would be.
    pub held_trigger: Option<(i64, Origin, Box<str>)>,
    /// A correlation's group; part of the decision's id, since one session's record can
    /// complete several groups at once.
    pub group: Option<Group>,
}

impl Firing {
    /// A firing with only a reason; the rest filled in by the caller.
    pub fn new(aggregate: &'static str, reason: String, window_start: i64) -> Firing {
        Firing {
            aggregate,
            reason,
            value: None,
            threshold: None,
            window_start,
            earlier: Vec::new(),
            omitted: 0,
            trigger_value: None,
            principal: None,
            held_trigger: None,
            group: None,
        }
    }
}

/// The session a decision is about, as the decision shows it.
pub struct SessionView<'s> {
    pub key: &'s str,
    pub kind: SessionKind,
    pub derived: bool,
    pub started: i64,
    /// The sessions this one was issued from, parent first (AWS role chaining).
    pub chain: Vec<&'s str>,
    /// The chain's first session, when the walk reached it.
    pub root: Option<&'s str>,
}

#[allow(clippy::too_many_arguments)]
pub fn build_decision(
    config: &EngineConfig,
    names: &OriginNames,
    rule: RuleRef,
    severity: Severity,
    action: ActionKind,
    mode: Mode,
    session: &SessionView<'_>,
    t: i64,
    ordinal: u64,
    trigger: Option<(&Event<'_>, Origin)>,
    firing: Firing,
) -> Decision {
    let time = Timestamp::from_millis(t);
    let decision_id = match &firing.group {
        None => decision::decision_id(&rule.id, &rule.version, session.key, time, ordinal),
        Some(group) => {
            let key = format!("{}\n{}", session.key, group.key);
            decision::decision_id(&rule.id, &rule.version, &key, time, ordinal)
        }
    };
    let principal = match trigger {
        Some((event, _)) => principal_of(event),
        None => firing.principal.clone().unwrap_or_default(),
    };
    let mut events: Vec<EvidenceEvent> = firing
        .earlier
        .iter()
        .map(|(time, origin)| EvidenceEvent {
            time: Timestamp::from_millis(*time),
            origin: EvidenceOrigin::resolve(*origin, names),
            action: None,
            value: None,
        })
        .collect();
    let shown = match (trigger, &firing.held_trigger) {
        (Some((event, origin)), _) => Some((event.time, origin, event.action.to_string())),
        (None, Some((time, origin, action))) => {
            Some((Timestamp::from_millis(*time), *origin, action.to_string()))
        }
        (None, None) => None,
    };
    if let Some((time, origin, action)) = shown {
        events.push(EvidenceEvent {
            time,
            origin: EvidenceOrigin::resolve(origin, names),
            action: Some(action),
            value: firing.trigger_value.clone(),
        });
    }
    let caep = action.is_kill().then(|| {
        caep_claims(
            &config.caep_issuer,
            &decision_id,
            time,
            session.key,
            &principal,
            &format!("{}: {}", rule.title, firing.reason),
        )
    });
    Decision {
        decision_id,
        time,
        mode,
        action,
        severity,
        rule,
        session: SessionRef {
            key: session.key.to_string(),
            kind: session.kind.as_str(),
            derived: session.derived,
            started: Timestamp::from_millis(session.started),
            parent: session.chain.first().map(|p| (*p).to_owned()),
            chain: session.chain.iter().map(|k| (*k).to_owned()).collect(),
            root: session.root.map(str::to_owned),
        },
        principal,
        evidence: Evidence {
            reason: firing.reason,
            aggregate: firing.aggregate,
            value: firing.value,
            threshold: firing.threshold,
            group: firing.group,
            window: Window {
                start: Timestamp::from_millis(firing.window_start.min(t)),
                end: time,
            },
            events,
            events_omitted: firing.omitted,
        },
        caep,
    }
}

pub fn principal_of(event: &Event<'_>) -> PrincipalRef {
    PrincipalRef {
        kind: event.principal.kind.as_ref().map(|t| t.to_string()),
        id: event.principal.id.as_ref().map(|t| t.to_string()),
        name: event.principal.name.as_ref().map(|t| t.to_string()),
    }
}

/// A fixed-key hash of a value's text, with IP prefixes masked under `IpPrefix`. Fixed keys
/// keep runs reproducible; the text is left in `buf` for evidence.
pub fn value_hash(value: &Value<'_>, tolerance: Tolerance, buf: &mut String) -> i64 {
    value.write_text(buf);
    if let Tolerance::IpPrefix { v4, v6 } = tolerance {
        let ip = match value {
            Value::Ip(ip) => Some(*ip),
            _ => buf.parse::<IpAddr>().ok(),
        };
        if let Some(ip) = ip {
            let masked = mask(ip, v4, v6);
            buf.clear();
            let bits = if ip.is_ipv4() { v4 } else { v6 };
            let _ = write!(buf, "{masked}/{bits}");
        }
    }
    text_hash(buf)
}

pub fn text_hash(text: &str) -> i64 {
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new();
    hasher.write(text.as_bytes());
    hasher.finish() as i64
}

pub fn mask(ip: IpAddr, v4: u8, v6: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let keep = u32::from(v4.min(32));
            let m = if keep == 0 {
                0
            } else {
                u32::MAX << (32 - keep)
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let keep = u32::from(v6.min(128));
            let m = if keep == 0 {
                0
            } else {
                u128::MAX << (128 - keep)
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// What an event weighs in an `event_count`: the items a batch call touched (`records`, where
/// the adapter knows them), else 1.
pub fn items(event: &Event<'_>) -> i64 {
    event
        .records
        .map_or(1, |n| i64::try_from(n).unwrap_or(i64::MAX).max(1))
}

pub fn numeric(value: &Value<'_>) -> Option<f64> {
    match value {
        Value::Int(n) => Some(*n as f64),
        Value::Str(s) => s.trim().parse().ok(),
        Value::Raw(raw) => raw.get().trim_matches('"').parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

pub fn threshold_text(threshold: &Threshold) -> String {
    use crate::rule::CmpOp::*;
    let op = match threshold.op {
        Gt => ">",
        Gte => ">=",
        Lt => "<",
        Lte => "<=",
        Eq => "==",
    };
    format!("{op} {}", trim_float(threshold.value))
}

/// A threshold or value as text: Rust writes a whole `f64` without a fraction or an exponent
/// (`5`, `100000000000000000000`), so only `-0` needs a word.
pub fn trim_float(x: f64) -> String {
    if x == 0.0 {
        "0".to_owned()
    } else {
        format!("{x}")
    }
}

/// `90s` → `1m30s`; milliseconds only when below a second.
pub fn human_ms(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let mut rest = ms / 1000;
    let mut s = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if rest >= size {
            let _ = write!(s, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use bumpalo::Bump;

    use super::*;
    use crate::event::normalize::Normalizer;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_address_keeps_only_its_prefix_bits() {
        assert_eq!(mask(ip("10.1.2.3"), 24, 64), ip("10.1.2.0"));
        assert_eq!(mask(ip("10.1.2.3"), 0, 64), ip("0.0.0.0"));
        let v6 = ip("2001:db8:abcd:1234::7");
        assert_eq!(mask(v6, 24, 48), ip("2001:db8:abcd::"));
        assert_eq!(mask(v6, 24, 0), ip("::"));
        assert_eq!(mask(v6, 24, 128), v6);
        assert_eq!(
            mask(v6, 24, 200),
            v6,
            "a prefix longer than the address keeps it whole"
        );
    }

    #[test]
    fn an_event_weighs_its_batch_items_and_at_least_one() {
        const OKTA: &str = r#"{"uuid":"e1","published":"2024-11-04T08:00:00.000Z","eventType":"user.session.start","actor":{"id":"00u1","type":"User"},"authenticationContext":{"externalSessionId":"idx1"},"outcome":{"result":"SUCCESS"}}"#;
        let scratch = Bump::new();
        let mut event = Normalizer::default()
            .normalize(OKTA.as_bytes(), &scratch)
            .unwrap();
        assert_eq!(items(&event), 1, "a call without a batch");
        event.records = Some(500);
        assert_eq!(items(&event), 500);
        event.records = Some(0);
        assert_eq!(items(&event), 1, "an empty batch is still a call");
        event.records = Some(u64::MAX);
        assert_eq!(items(&event), i64::MAX);
    }

    #[test]
    fn a_number_written_as_text_is_numeric() {
        assert_eq!(numeric(&Value::Str(" 42.5 ")), Some(42.5));
        assert_eq!(numeric(&Value::Int(7)), Some(7.0));
        assert_eq!(numeric(&Value::Str("many")), None);
        assert_eq!(numeric(&Value::Str("NaN")), None, "only finite numbers");
    }

    #[test]
    fn a_float_is_written_without_a_needless_fraction() {
        assert_eq!(trim_float(5.0), "5");
        assert_eq!(trim_float(2.5), "2.5");
        assert_eq!(trim_float(-3.0), "-3");
        assert_eq!(trim_float(-0.0), "0");
        assert_eq!(trim_float(1e20), "100000000000000000000");
    }

    #[test]
    fn a_duration_is_written_in_its_largest_units() {
        assert_eq!(human_ms(0), "0ms");
        assert_eq!(human_ms(999), "999ms");
        assert_eq!(human_ms(1000), "1s");
        assert_eq!(human_ms(90_000), "1m30s");
        assert_eq!(human_ms(90_061_000), "1d1h1m1s");
    }
}
