//! From record bytes to an `Event`: limits, validation, source detection and dispatch.
//!
//! Detection looks only at the record's top-level keys, read in one shallow pass: a key that
//! appears at the top level cannot be forged from inside a string value or a nested object, so an
//! attacker who controls a request body cannot steer which adapter reads the event. Adapters are
//! tried in the order of `ADAPTERS`, most specific first. When none matches, common pipeline
//! envelopes are opened once (EventBridge `detail`, a JSON string in `message`), keeping the
//! envelope's time as the pipeline time.

use std::net::IpAddr;

use bumpalo::Bump;

use serde::de::MapAccess;

use super::fields::{Capture, Fields};
use super::model::{Agent, Event, Source};
use super::reject::{Reject, RejectReason};
use super::text::Text;
use super::time::Timestamp;
use super::{cloudtrail, entra, github, kubernetes, mcp, ocsf, okta, otel};

/// The default bound on one record's size.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// The default bound on nesting: serde_json's own recursion limit, so that every record
/// sessionguard accepts (and may forward) can be read by the common JSON readers. Real audit
/// records stay far below it (a Kubernetes pod spec in `requestObject` reaches about 15).
pub const DEFAULT_MAX_DEPTH: usize = 128;

/// One source format: how to recognise it and how to read it.
pub struct Adapter {
    pub source: Source,
    /// True when the record's top-level keys are this source's.
    pub detect: fn(&Fields<'_>) -> bool,
    pub normalize: for<'a> fn(Record<'a>) -> Result<Event<'a>, Reject>,
}

/// What an adapter gets: the record's top-level members, the pipeline's time if an envelope
/// had one, an arena for strings that must be unescaped from embedded JSON, and the members the
/// first pass already read into typed values.
pub struct Record<'a> {
    pub fields: Fields<'a>,
    /// The enclosing envelope's time; the record's own pipeline keys are read on demand
    /// (`pipeline_time_of`).
    pub pipeline_time: Option<Timestamp>,
    pub scratch: &'a Bump,
    pub captured: Captures<'a>,
}

/// Members read into typed values in the first pass (`Capture`), per source. Each is a cache:
/// valid only for the member at its recorded position, which must be the one `Fields::get`
/// reads, and equal to what parsing that member's raw JSON gives.
#[derive(Default)]
pub struct Captures<'a> {
    pub(super) cloudtrail: cloudtrail::Captured<'a>,
    pub(super) okta: okta::Captured<'a>,
    pub(super) kubernetes: kubernetes::Captured<'a>,
}

impl<'de> Capture<'de> for Captures<'de> {
    #[inline]
    fn capture<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        seen: &Fields<'_>,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        Ok(self.cloudtrail.capture(key, seen, map)?
            || self.okta.capture(key, seen, map)?
            || self.kubernetes.capture(key, seen, map)?)
    }
}

/// A captured value, when it was read from the member `fields.get(key)` reads.
pub(super) fn captured<T>(
    slot: Option<(usize, Option<T>)>,
    fields: &Fields<'_>,
    key: &str,
) -> Option<Option<T>> {
    let (position, value) = slot?;
    (fields.position(key) == Some(position)).then_some(value)
}

/// Every adapter, most specific detection first.
pub const ADAPTERS: &[Adapter] = &[
    kubernetes::ADAPTER,
    ocsf::ADAPTER,
    cloudtrail::ADAPTER,
    okta::ADAPTER,
    entra::ADAPTER,
    github::ADAPTER,
    mcp::ADAPTER,
    otel::ADAPTER,
];

/// Keys that log pipelines (Logstash, Fluentd, Vector, Panther …) add for their own time.
const PIPELINE_TIME_KEYS: &[&str] = &["@timestamp", "timestamp", "p_event_time", "_time"];

/// Turns record bytes into events. Cheap to share; holds only settings.
#[derive(Clone, Debug)]
pub struct Normalizer {
    /// Read every record as this source instead of detecting it.
    pub forced: Option<Source>,
    /// Records larger than this are rejected unread.
    pub max_record_bytes: usize,
    /// Records nested deeper than this (objects and arrays) are rejected.
    pub max_depth: usize,
}

impl Default for Normalizer {
    fn default() -> Self {
        Normalizer {
            forced: None,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

impl Normalizer {
    /// Normalizes one record. Strings unescaped from embedded JSON live in `scratch`; callers
    /// reset it between batches.
    pub fn normalize<'a>(&self, record: &'a [u8], scratch: &'a Bump) -> Result<Event<'a>, Reject> {
        if record.len() > self.max_record_bytes {
            return Err(Reject::new(
                RejectReason::TooLarge,
                format!(
                    "record is {} bytes, the limit is {}",
                    record.len(),
                    self.max_record_bytes
                ),
            ));
        }
        let text = std::str::from_utf8(record).map_err(|e| {
            Reject::new(
                RejectReason::InvalidUtf8,
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            )
        })?;
        let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
        if !trimmed.starts_with('{') {
            return Err(Reject::new(
                RejectReason::NotJson,
                "expected a JSON object (one audit record)",
            ));
        }
        check_depth(trimmed.as_bytes(), self.max_depth)?;
        let mut captured = Captures::default();
        let fields = match Fields::parse_capturing(trimmed, scratch, &mut captured) {
            Ok(fields) => fields,
            Err(_) => {
                // Malformed, or a member the capture expected typed is not: read it plainly,
                // as the adapters would, and let them and `parse` decide.
                captured = Captures::default();
                Fields::parse(trimmed, scratch)?
            }
        };
        self.dispatch(fields, captured, None, scratch, true)
    }

    fn dispatch<'a>(
        &self,
        fields: Fields<'a>,
        captured: Captures<'a>,
        pipeline_time: Option<Timestamp>,
        scratch: &'a Bump,
        may_unwrap: bool,
    ) -> Result<Event<'a>, Reject> {
        let adapter = match self.forced {
            Some(source) => ADAPTERS.iter().find(|a| a.source == source),
            None => ADAPTERS.iter().find(|a| (a.detect)(&fields)),
        };
        if let Some(adapter) = adapter {
            let mut event = (adapter.normalize)(Record {
                fields,
                pipeline_time,
                scratch,
                captured,
            })?;
            if event.agent.is_none() {
                event.agent = pipeline_agent(&event.raw, scratch);
            }
            return Ok(event);
        }
        if may_unwrap {
            if let Some(inner) = unwrap_envelope(&fields, scratch)? {
                // The envelope's time, as the pipeline's; an adapter reads its own record's
                // pipeline keys only when it has no vendor time (`Record::time`).
                let pipeline_time = pipeline_time.or_else(|| pipeline_time_of(&fields));
                return self.dispatch(inner, Captures::default(), pipeline_time, scratch, false);
            }
        }
        Err(unknown_source(&fields))
    }
}

/// Rejects records nested deeper than `max_depth`.
///
/// Nesting cannot exceed the number of opening brackets, and counting those is one vectorised
/// pass (`[` and `{` differ only in bit 5; per-chunk byte counters keep the lanes narrow). The
/// exact walk, which must skip strings, runs only for the rare records with more brackets than
/// the bound. Nothing in sessionguard recurses on nesting (serde_json skips unread values
/// iteratively), so the bound protects the systems the records are forwarded to.
fn check_depth(bytes: &[u8], max_depth: usize) -> Result<(), Reject> {
    let opening: usize = bytes
        .chunks(255)
        .map(|chunk| {
            chunk
                .iter()
                .map(|&b| u8::from(b | 0x20 == b'{'))
                .fold(0u8, u8::wrapping_add) as usize
        })
        .sum();
    if opening <= max_depth {
        return Ok(());
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(Reject::new(
                        RejectReason::TooDeep,
                        format!("nested deeper than {max_depth} levels"),
                    ));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// EventBridge (`detail`) and log shippers (`message`, `event` as a JSON string) wrap records.
fn unwrap_envelope<'a>(
    fields: &Fields<'a>,
    scratch: &'a Bump,
) -> Result<Option<Fields<'a>>, Reject> {
    for key in ["detail", "message", "event"] {
        if let Some(raw) = fields.value(key) {
            let json = raw.get();
            let looks_like_object = json.starts_with('{') || json.starts_with("\"{");
            if looks_like_object {
                if let Ok(Some(inner)) = super::fields::raw_object(raw, key, scratch) {
                    return Ok(Some(inner));
                }
            }
        }
    }
    Ok(None)
}

/// An `agent` object (`{"id", "task"}`) that an agent platform or pipeline added to the record:
/// the vendor-neutral way to bind events to an autonomous agent and its approved task.
fn pipeline_agent<'a>(fields: &Fields<'a>, scratch: &'a Bump) -> Option<Agent<'a>> {
    let raw = fields.value("agent")?;
    if !raw.get().starts_with('{') {
        return None;
    }
    let agent = Fields::parse(raw.get(), scratch).ok()?;
    let id = non_empty(agent.text("id").ok().flatten());
    let task = non_empty(agent.text("task").ok().flatten());
    (id.is_some() || task.is_some()).then_some(Agent { id, task })
}

pub(super) fn pipeline_time_of(fields: &Fields<'_>) -> Option<Timestamp> {
    PIPELINE_TIME_KEYS.iter().find_map(|k| {
        let raw = fields.value(k)?;
        let text = super::fields::raw_text(raw, k).ok()??;
        Timestamp::parse(&text)
    })
}

fn unknown_source(fields: &Fields<'_>) -> Reject {
    let keys: Vec<&str> = fields.iter().take(8).map(|(k, _)| k).collect();
    let more = if fields.len() > 8 { ", …" } else { "" };
    Reject::new(
        RejectReason::UnknownSource,
        format!(
            "no adapter recognises a record with top-level keys [{}{more}]",
            keys.join(", ")
        ),
    )
}

impl Record<'_> {
    /// The event time from the first vendor key present that reads as a time, else the
    /// pipeline's time. A vendor time that is present but unreadable is named in the error when
    /// there is no pipeline time to fall back on.
    pub fn time(&self, vendor_keys: &[&str]) -> Result<Timestamp, Reject> {
        let mut unreadable = None;
        for key in vendor_keys {
            let Some(raw) = self.fields.value(key) else {
                continue;
            };
            let json = raw.get();
            let parsed = if json.starts_with('"') {
                super::fields::raw_text(raw, key)
                    .ok()
                    .flatten()
                    .and_then(|t| Timestamp::parse(&t))
            } else {
                super::fields::raw_i64(raw, key)
                    .ok()
                    .flatten()
                    .and_then(Timestamp::from_epoch)
            };
            match parsed {
                Some(t) => return Ok(t),
                None => unreadable = unreadable.or(Some((*key, json))),
            }
        }
        if let Some(t) = self
            .pipeline_time
            .or_else(|| pipeline_time_of(&self.fields))
        {
            return Ok(t);
        }
        Err(match unreadable {
            Some((key, json)) => Reject::new(
                RejectReason::BadTimestamp,
                format!(
                    "{key} is not a time: {}",
                    json.chars().take(48).collect::<String>()
                ),
            ),
            None => Reject::new(
                RejectReason::BadTimestamp,
                format!(
                    "no event time: none of {} is present",
                    vendor_keys.join(", ")
                ),
            ),
        })
    }
}

/// Reads an IP address, tolerating ports, brackets and zone suffixes; `None` for anything else.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    if let Some(ip) = dotted_quad(t.as_bytes()) {
        return Some(IpAddr::V4(ip));
    }
    if let Ok(ip) = t.parse() {
        return Some(ip);
    }
    // "[2001:db8::1]:443", "1.2.3.4:5678", "fe80::1%eth0"
    let t = t
        .strip_prefix('[')
        .map_or(t, |rest| rest.split(']').next().unwrap_or(rest));
    if let Ok(ip) = t.parse() {
        return Some(ip);
    }
    if let Some((host, _port)) = t.rsplit_once(':') {
        if let Ok(ip) = host.parse() {
            return Some(ip);
        }
    }
    t.split('%').next().and_then(|h| h.parse().ok())
}

/// A plain dotted-quad IPv4 address, read without the general parser. It accepts a subset of
/// what `Ipv4Addr::from_str` accepts (four decimal octets, no leading zeros), with the same
/// result; anything else is left to the general path.
fn dotted_quad(t: &[u8]) -> Option<std::net::Ipv4Addr> {
    if t.len() > 15 {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut count = 0;
    for part in t.split(|b| *b == b'.') {
        if count == 4 || part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let mut value = 0u16;
        for &b in part {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u16::from(b - b'0');
        }
        octets[count] = u8::try_from(value).ok()?;
        count += 1;
    }
    (count == 4).then(|| std::net::Ipv4Addr::from(octets))
}

/// A non-empty text, or `None`. Vendors write "" and "null" for absent values.
pub fn non_empty(text: Option<Text<'_>>) -> Option<Text<'_>> {
    text.filter(|t| !t.is_empty() && t.as_str() != "null")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(record: &[u8]) -> RejectReason {
        let scratch = Bump::new();
        Normalizer::default()
            .normalize(record, &scratch)
            .unwrap_err()
            .reason
    }

    #[test]
    fn structural_rejects_have_their_reasons() {
        assert_eq!(reason(b"{\"a\": \xff}"), RejectReason::InvalidUtf8);
        assert_eq!(reason(b"not json"), RejectReason::NotJson);
        assert_eq!(reason(b"[1, 2]"), RejectReason::NotJson);
        assert_eq!(reason(b"{\"a\": 1"), RejectReason::NotJson);
        assert_eq!(reason(b"{\"kind\": 0}"), RejectReason::UnknownSource);
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(reason(deep.as_bytes()), RejectReason::TooDeep);
        // Brackets inside strings do not count as nesting.
        let quoted = format!("{{\"a\":\"{}\"}}", "[".repeat(200));
        assert_eq!(reason(quoted.as_bytes()), RejectReason::UnknownSource);
        let big = Normalizer {
            max_record_bytes: 10,
            ..Normalizer::default()
        };
        let scratch = Bump::new();
        assert_eq!(
            big.normalize(b"{\"a\": 12345678}", &scratch)
                .unwrap_err()
                .reason,
            RejectReason::TooLarge
        );
    }

    fn reject(normalizer: &Normalizer, record: &[u8]) -> Reject {
        normalizer
            .normalize(record, &Bump::new())
            .map(|event| event.time)
            .unwrap_err()
    }

    /// A minimal CloudTrail record with `extra` members after its identity.
    fn trail(extra: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"GetObject",
            "userIdentity":{{"accountId":"1","accessKeyId":"ASIAX"}}{extra}}}"#
        )
    }

    fn time_of(record: &str) -> Result<String, Reject> {
        let scratch = Bump::new();
        Normalizer::default()
            .normalize(record.as_bytes(), &scratch)
            .map(|event| event.time.to_string())
    }

    #[test]
    fn size_and_depth_limits_hold_at_their_edges_and_say_what_they_were() {
        let record = br#"{"a":[[1]]}"#; // 11 bytes, nested 3 deep
        let at = |bytes, depth| Normalizer {
            max_record_bytes: bytes,
            max_depth: depth,
            ..Normalizer::default()
        };
        assert_eq!(
            reject(&at(11, 3), record).reason,
            RejectReason::UnknownSource
        );
        let large = reject(&at(10, 3), record);
        assert_eq!(large.reason, RejectReason::TooLarge);
        assert_eq!(large.detail, "record is 11 bytes, the limit is 10");
        let deep = reject(&at(11, 2), record);
        assert_eq!(deep.reason, RejectReason::TooDeep);
        assert_eq!(deep.detail, "nested deeper than 2 levels");
        // More brackets than the bound, but closed as they go: the exact walk counts depth.
        let wide = br#"{"a":[1],"b":{"c":2},"d":[3]}"#;
        assert_eq!(
            reject(&at(100, 2), wide).reason,
            RejectReason::UnknownSource
        );
        // An escaped quote does not end a string; the brackets after it are still text.
        let quoted = br#"{"a":"\"{[{[{[","b":[1]}"#;
        assert_eq!(
            reject(&at(100, 2), quoted).reason,
            RejectReason::UnknownSource
        );
        let bad = reject(&Normalizer::default(), b"{\"abc\": \"\xff\"}");
        assert_eq!(bad.detail, "invalid UTF-8 at byte 9");
        // A byte order mark and blank space before the object are passed over.
        let padded = format!(
            "\u{feff} \r\n\t{}",
            trail(r#","eventTime":"2024-08-01T10:00:00Z""#)
        );
        assert_eq!(time_of(&padded).unwrap(), "2024-08-01T10:00:00.000Z");
    }

    #[test]
    fn an_unknown_record_names_its_first_eight_keys() {
        let keys = |n: usize| {
            let members: Vec<String> = (1..=n).map(|i| format!("\"k{i}\":{i}")).collect();
            format!("{{{}}}", members.join(","))
        };
        let eight = reject(&Normalizer::default(), keys(8).as_bytes());
        assert_eq!(
            eight.detail,
            "no adapter recognises a record with top-level keys [k1, k2, k3, k4, k5, k6, k7, k8]"
        );
        let nine = reject(&Normalizer::default(), keys(9).as_bytes());
        assert_eq!(
            nine.detail,
            "no adapter recognises a record with top-level keys [k1, k2, k3, k4, k5, k6, k7, k8, …]"
        );
    }

    #[test]
    fn the_event_time_is_the_vendors_else_the_pipelines_else_a_named_reject() {
        assert_eq!(
            time_of(&trail(r#","eventTime":1722519208"#)).unwrap(),
            "2024-08-01T13:33:28.000Z"
        );
        // An unreadable vendor time gives way to the pipeline's own key.
        assert_eq!(
            time_of(&trail(
                r#","eventTime":"yesterday","@timestamp":"2024-08-01T10:00:00Z""#
            ))
            .unwrap(),
            "2024-08-01T10:00:00.000Z"
        );
        assert_eq!(
            time_of(&trail(r#","p_event_time":"2024-08-01 10:00:01""#)).unwrap(),
            "2024-08-01T10:00:01.000Z"
        );
        let unreadable = time_of(&trail(r#","eventTime":"yesterday""#)).unwrap_err();
        assert_eq!(unreadable.reason, RejectReason::BadTimestamp);
        assert_eq!(unreadable.detail, r#"eventTime is not a time: "yesterday""#);
        let absent = time_of(&trail("")).unwrap_err();
        assert_eq!(absent.detail, "no event time: none of eventTime is present");
    }

    #[test]
    fn an_envelope_is_opened_once_and_lends_its_time() {
        let inner = trail("");
        // EventBridge: the record in `detail`, the envelope's time its pipeline time.
        let bridge = format!(r#"{{"detail":{inner},"@timestamp":"2024-08-01T10:00:02Z"}}"#);
        assert_eq!(time_of(&bridge).unwrap(), "2024-08-01T10:00:02.000Z");
        // A shipper: the record as a JSON string in `message`, its own time kept.
        let timed = trail(r#","eventTime":"2024-08-01T09:00:00Z""#);
        let shipped = format!(
            r#"{{"message":{},"_time":"2024-08-01T10:00:03Z"}}"#,
            serde_json::to_string(&timed).unwrap()
        );
        assert_eq!(time_of(&shipped).unwrap(), "2024-08-01T09:00:00.000Z");
        let event = format!(r#"{{"event":{timed}}}"#);
        assert_eq!(time_of(&event).unwrap(), "2024-08-01T09:00:00.000Z");
        // Only once: an envelope inside an envelope is not opened.
        let twice = format!(r#"{{"detail":{{"detail":{timed}}}}}"#);
        assert_eq!(
            time_of(&twice).unwrap_err().reason,
            RejectReason::UnknownSource
        );
        // A `message` that is text, not a record, leaves the record unknown.
        let text = time_of(r#"{"message":"{ not json","detail":"x"}"#).unwrap_err();
        assert_eq!(text.reason, RejectReason::UnknownSource);
    }

    #[test]
    fn a_pipeline_agent_needs_an_object_with_an_id_or_a_task() {
        let agent = |value: &str| {
            let record = trail(&format!(
                r#","eventTime":"2024-08-01T10:00:00Z","agent":{value}"#
            ));
            let scratch = Bump::new();
            let event = Normalizer::default()
                .normalize(record.as_bytes(), &scratch)
                .unwrap();
            event
                .agent
                .map(|a| (a.id.map(|t| t.to_string()), a.task.map(|t| t.to_string())))
        };
        assert_eq!(agent(r#""reconciler-7""#), None);
        assert_eq!(agent(r#"{"id":"","task":"null"}"#), None);
        assert_eq!(
            agent(r#"{"task":"task-42"}"#),
            Some((None, Some("task-42".into())))
        );
        assert_eq!(agent(r#"{"id":"r-7"}"#), Some((Some("r-7".into()), None)));
    }

    #[test]
    fn the_first_pass_reads_every_fixture_record_of_every_source() {
        // A capture that failed on a valid record would cost a second parse of every record,
        // silently: the plain read that follows gives the same event. Every record under
        // `fixtures/` that an adapter detects must pass the first pass with its captures.
        let records = super::super::testing::fixture_records();
        let detected: usize = ADAPTERS
            .iter()
            .map(|a| super::super::testing::first_pass_each(&records, a.detect, |_, _, _| {}))
            .sum();
        assert!(detected > 500, "{detected} records");
    }

    #[test]
    fn a_duplicated_member_is_read_as_its_last_occurrence_even_when_the_first_was_captured() {
        // The second `userIdentity` is spelled with an escape, so the first pass captures only
        // the first; the record's reading is the last, as everywhere else.
        let record = r#"{"eventVersion":"1.08","eventSource":"s3.amazonaws.com",
            "eventName":"GetObject",
            "userIdentity":{"accountId":"1","accessKeyId":"ASIAFIRST"},
            "eventTime":"2024-08-01T10:00:00Z",
            "userIdentit\u0079":{"accountId":"1","accessKeyId":"ASIALAST"}}"#;
        let scratch = Bump::new();
        let event = Normalizer::default()
            .normalize(record.as_bytes(), &scratch)
            .unwrap();
        assert_eq!(event.session.key.to_string(), "aws:1:sts:ASIALAST");
    }

    #[test]
    fn a_forced_source_reads_every_record_with_that_adapter() {
        // No `eventVersion`: detection would not take it for CloudTrail.
        let record = r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject",
            "eventTime":"2024-08-01T10:00:00Z",
            "userIdentity":{"accountId":"1","accessKeyId":"ASIAX"}}"#;
        let scratch = Bump::new();
        let detected = Normalizer::default().normalize(record.as_bytes(), &scratch);
        assert_eq!(detected.unwrap_err().reason, RejectReason::UnknownSource);
        for source in [Source::Cloudtrail, Source::Okta] {
            let forced = Normalizer {
                forced: Some(source),
                ..Normalizer::default()
            };
            match forced.normalize(record.as_bytes(), &scratch) {
                Ok(event) => assert_eq!(event.source, source),
                Err(reject) => assert_ne!(source, Source::Cloudtrail, "{reject}"),
            }
        }
    }

    #[test]
    fn a_pipeline_agent_object_binds_the_event_to_an_agent_task() {
        let record = br#"{"eventVersion":"1.08","eventTime":"2024-08-01T10:00:00Z",
            "eventSource":"s3.amazonaws.com","eventName":"GetObject",
            "userIdentity":{"accountId":"1","accessKeyId":"ASIAX"},
            "agent":{"id":"reconciler-7","task":"task-42"}}"#;
        let scratch = Bump::new();
        let event = Normalizer::default().normalize(record, &scratch).unwrap();
        let agent = event.agent.unwrap();
        assert_eq!(agent.id.as_deref(), Some("reconciler-7"));
        assert_eq!(agent.task.as_deref(), Some("task-42"));
    }

    #[test]
    fn dotted_quads_read_as_the_standard_parser_does() {
        let mut cases: Vec<String> = [
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1..2.3",
            "1.2.3.4.",
            ".1.2.3",
            "1.2.3.-4",
            "1.2.3.4 ",
            "1234.1.1.1",
            "",
            "...",
            "0.00.0.0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for a in [0, 7, 10, 99, 100, 199, 255, 256, 999] {
            cases.push(format!("{a}.{}.1.{a}", 255 - a.min(255)));
        }
        for case in &cases {
            let std = case.parse::<std::net::Ipv4Addr>().ok();
            if let Some(ip) = dotted_quad(case.as_bytes()) {
                assert_eq!(Some(ip), std, "{case}");
            }
        }
        assert!(dotted_quad(b"203.0.113.9").is_some());
    }

    #[test]
    fn ip_addresses_tolerate_ports_and_brackets() {
        for (text, ip) in [
            ("10.0.0.1", "10.0.0.1"),
            ("10.0.0.1:443", "10.0.0.1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            (" 10.0.0.1 ", "10.0.0.1"),
            ("fe80::1%eth0", "fe80::1"),
            ("[fe80::1]", "fe80::1"),
        ] {
            assert_eq!(parse_ip(text).unwrap().to_string(), ip);
        }
        assert_eq!(parse_ip("athena.amazonaws.com"), None);
        assert_eq!(parse_ip("075.050.255.67"), None);
    }
}
