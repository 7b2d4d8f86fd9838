//! Field references: the names rules use for event fields, resolved once at load time into a
//! `Field`, and read from an `Event` without allocating.
//!
//! Model fields have fixed names (`action`, `network.ip`, `session.kind` …, listed in
//! `Field::NAMES`); anything under `raw.` is a path into the vendor record
//! (`raw.userIdentity.sessionContext.sourceIdentity`, array indexes allowed). Keys match
//! exactly, or else in any ASCII case. A segment ending in `?` is optional: `raw.properties?.status`
//! reads `properties.status`, or `status` where that is absent (Entra's diagnostic export wraps
//! what Graph's API returns at the top in `properties`). A key with dots in it is written in
//! double quotes: `raw.annotations."authorization.k8s.io/decision"`.

use std::fmt;
use std::net::IpAddr;

use bumpalo::Bump;
use serde_json::value::RawValue;

use crate::event::{Event, Fields, Text};

/// A resolved field reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Source,
    Time,
    EventId,
    SessionKey,
    SessionKind,
    SessionDerived,
    SessionIssuer,
    SessionMfa,
    PrincipalType,
    PrincipalId,
    PrincipalName,
    /// `service:operation`.
    Action,
    ActionService,
    ActionOperation,
    ActionVendor,
    Outcome,
    OutcomeReason,
    Operation,
    ResourceType,
    ResourceId,
    ResourceName,
    ResourceContainer,
    Bytes,
    Records,
    NetworkIp,
    NetworkViaService,
    NetworkAsn,
    NetworkCountry,
    NetworkCity,
    UserAgent,
    /// The user agent's software family (`crate::event::runtime`).
    Runtime,
    Device,
    Scopes,
    AgentId,
    AgentTask,
    LineageChild,
    LineageChildRole,
    SourceIdentity,
    /// A path into the vendor record, below `raw.` (a segment ending in `?` is optional).
    Raw(Box<[Box<str>]>),
    /// Every string of the vendor record, at any depth: what a Sigma keyword (a value without
    /// a field) is searched for in. Written as an entry with no field name, never by name.
    Keywords,
}

impl Field {
    /// Every model field name a rule may use, with its field.
    pub const NAMES: &'static [(&'static str, Field)] = &[
        ("source", Field::Source),
        ("time", Field::Time),
        ("id", Field::EventId),
        ("session.key", Field::SessionKey),
        ("session.kind", Field::SessionKind),
        ("session.derived", Field::SessionDerived),
        ("session.issuer", Field::SessionIssuer),
        ("session.mfa", Field::SessionMfa),
        ("principal.type", Field::PrincipalType),
        ("principal.id", Field::PrincipalId),
        ("principal.name", Field::PrincipalName),
        ("action", Field::Action),
        ("action.service", Field::ActionService),
        ("action.operation", Field::ActionOperation),
        ("action.vendor", Field::ActionVendor),
        ("outcome", Field::Outcome),
        ("outcome.result", Field::Outcome),
        ("outcome.reason", Field::OutcomeReason),
        ("operation", Field::Operation),
        ("resource.type", Field::ResourceType),
        ("resource.id", Field::ResourceId),
        ("resource.name", Field::ResourceName),
        ("resource.container", Field::ResourceContainer),
        ("bytes", Field::Bytes),
        ("records", Field::Records),
        ("network.ip", Field::NetworkIp),
        ("network.via_service", Field::NetworkViaService),
        ("network.asn", Field::NetworkAsn),
        ("network.country", Field::NetworkCountry),
        ("network.city", Field::NetworkCity),
        ("client.user_agent", Field::UserAgent),
        ("client.runtime", Field::Runtime),
        ("client.device", Field::Device),
        ("scopes", Field::Scopes),
        ("agent.id", Field::AgentId),
        ("agent.task", Field::AgentTask),
        ("lineage.child", Field::LineageChild),
        ("lineage.child_role", Field::LineageChildRole),
        ("lineage.source_identity", Field::SourceIdentity),
    ];

    /// Resolves a field name; `None` for a name that is neither a model field nor `raw.<path>`.
    pub fn parse(name: &str) -> Option<Field> {
        if let Some(path) = name.strip_prefix("raw.") {
            let segments = raw_segments(path)?;
            if segments.iter().any(|s| s.trim_end_matches('?').is_empty())
                || segments.last().is_some_and(|s| s.ends_with('?'))
            {
                return None;
            }
            return Some(Field::Raw(segments.into_boxed_slice()));
        }
        Field::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f.clone())
    }

    /// The field's value in `event`. Raw paths may unescape embedded JSON into `scratch`.
    pub fn get<'e>(&self, event: &'e Event<'_>, scratch: &'e Bump) -> Value<'e> {
        fn text<'e>(t: &'e Option<Text<'_>>) -> Value<'e> {
            t.as_ref()
                .map_or(Value::Missing, |t| Value::Str(t.as_str()))
        }
        let resource = event.resource.as_ref();
        let agent = event.agent.as_ref();
        let lineage = event.lineage.as_ref();
        match self {
            Field::Source => Value::Str(event.source.as_str()),
            Field::Time => Value::Int(event.time.millis()),
            Field::EventId => text(&event.id),
            Field::SessionKey => Value::Key(&event.session.key),
            Field::SessionKind => Value::Str(event.session.kind.as_str()),
            Field::SessionDerived => Value::Bool(event.session.derived),
            Field::SessionIssuer => text(&event.session.issuer),
            Field::SessionMfa => event.session.mfa.map_or(Value::Missing, Value::Bool),
            Field::PrincipalType => text(&event.principal.kind),
            Field::PrincipalId => text(&event.principal.id),
            Field::PrincipalName => text(&event.principal.name),
            Field::Action => Value::Pair(&event.action.service, &event.action.operation),
            Field::ActionService => Value::Str(&event.action.service),
            Field::ActionOperation => Value::Str(&event.action.operation),
            Field::ActionVendor => Value::Str(&event.action.vendor),
            Field::Outcome => Value::Str(event.outcome.result.as_str()),
            Field::OutcomeReason => text(&event.outcome.reason),
            Field::Operation => Value::Str(event.operation.as_str()),
            Field::ResourceType => resource.map_or(Value::Missing, |r| text(&r.kind)),
            Field::ResourceId => resource.map_or(Value::Missing, |r| text(&r.id)),
            Field::ResourceName => resource.map_or(Value::Missing, |r| text(&r.name)),
            Field::ResourceContainer => resource.map_or(Value::Missing, |r| text(&r.container)),
            Field::Bytes => event
                .bytes
                .map_or(Value::Missing, |b| Value::Int(saturate(b))),
            Field::Records => event
                .records
                .map_or(Value::Missing, |r| Value::Int(saturate(r))),
            Field::NetworkIp => event.network.ip.map_or(Value::Missing, Value::Ip),
            Field::NetworkViaService => text(&event.network.via_service),
            Field::NetworkAsn => event
                .network
                .asn
                .map_or(Value::Missing, |a| Value::Int(i64::from(a))),
            Field::NetworkCountry => text(&event.network.country),
            Field::NetworkCity => text(&event.network.city),
            Field::UserAgent => text(&event.client.user_agent),
            Field::Runtime => event
                .client
                .user_agent
                .as_ref()
                .and_then(|ua| crate::event::runtime::runtime(ua.as_str()))
                .map_or(Value::Missing, Value::Str),
            Field::Device => text(&event.client.device),
            Field::Scopes => Value::List(&event.scopes),
            Field::AgentId => agent.map_or(Value::Missing, |a| text(&a.id)),
            Field::AgentTask => agent.map_or(Value::Missing, |a| text(&a.task)),
            Field::LineageChild => lineage
                .and_then(|l| l.child.as_ref())
                .map_or(Value::Missing, Value::Key),
            Field::LineageChildRole => lineage.map_or(Value::Missing, |l| text(&l.child_role)),
            Field::SourceIdentity => lineage.map_or(Value::Missing, |l| text(&l.source_identity)),
            Field::Raw(path) => {
                let segments: smallvec::SmallVec<[&str; 8]> = path.iter().map(|s| &**s).collect();
                raw_path(event, &segments, scratch).map_or(Value::Missing, Value::Raw)
            }
            Field::Keywords => Value::Record(event.raw),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Field::Raw(path) = self {
            f.write_str("raw")?;
            for segment in path {
                let key = segment.trim_end_matches('?');
                if key.contains('.') {
                    write!(f, ".\"{key}\"{}", &segment[key.len()..])?;
                } else {
                    write!(f, ".{segment}")?;
                }
            }
            return Ok(());
        }
        if *self == Field::Keywords {
            return f.write_str("keywords");
        }
        let name = Field::NAMES
            .iter()
            .find(|(_, field)| field == self)
            .map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

/// The segments of a raw path: split at dots, except inside a double-quoted key
/// (`annotations."authorization.k8s.io/decision"`), which may be followed by `?`. `None` for
/// an unclosed quote, a quote inside a key, or a quoted key ending in `?` (that would read as
/// optional).
fn raw_segments(path: &str) -> Option<Vec<Box<str>>> {
    let mut segments = Vec::new();
    let mut rest = path;
    loop {
        let (segment, after) = match rest.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                let key = &quoted[..end];
                if key.is_empty() || key.ends_with('?') {
                    return None;
                }
                let after = &quoted[end + 1..];
                let (optional, after) = match after.strip_prefix('?') {
                    Some(a) => ("?", a),
                    None => ("", after),
                };
                if !(after.is_empty() || after.starts_with('.')) {
                    return None;
                }
                (format!("{key}{optional}"), after)
            }
            None => {
                let end = rest.find('.').unwrap_or(rest.len());
                if rest[..end].contains('"') {
                    return None;
                }
                (rest[..end].to_owned(), &rest[end..])
            }
        };
        segments.push(segment.into_boxed_str());
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None => return Some(segments),
        }
    }
}

/// The value at `segments` in the vendor record; an optional segment (`x?`) is tried with,
/// then without.
fn raw_path<'e>(
    event: &'e Event<'_>,
    segments: &[&str],
    scratch: &'e Bump,
) -> Option<&'e RawValue> {
    let Some(at) = segments.iter().position(|s| s.ends_with('?')) else {
        return event.raw.path(segments, scratch);
    };
    let mut with: smallvec::SmallVec<[&str; 8]> = segments.into();
    with[at] = segments[at].trim_end_matches('?');
    let without: smallvec::SmallVec<[&str; 8]> = segments[..at]
        .iter()
        .chain(&segments[at + 1..])
        .copied()
        .collect();
    raw_path(event, &with, scratch).or_else(|| raw_path(event, &without, scratch))
}

fn saturate(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A field's value as rules see it, borrowed from the event.
#[derive(Clone, Copy, Debug)]
pub enum Value<'e> {
    Missing,
    Str(&'e str),
    /// `service:operation`, kept in parts.
    Pair(&'e str, &'e str),
    Key(&'e crate::event::SessionKey<'e>),
    Int(i64),
    Bool(bool),
    Ip(IpAddr),
    List(&'e [Text<'e>]),
    /// A vendor field, unparsed JSON.
    Raw(&'e RawValue),
    /// The whole vendor record, for keywords: matched string by string.
    Record(Fields<'e>),
}

impl Value<'_> {
    pub fn is_missing(&self) -> bool {
        match self {
            Value::Missing => true,
            Value::Raw(raw) => raw.get() == "null",
            Value::Record(fields) => fields.is_empty(),
            _ => false,
        }
    }

    /// Writes the value as text into `buf` (cleared first) — the form string modifiers and
    /// distinct-value aggregates use. Lists write their items separated by newlines.
    pub fn write_text(&self, buf: &mut String) {
        use std::fmt::Write as _;
        buf.clear();
        match self {
            Value::Missing => {}
            Value::Str(s) => buf.push_str(s),
            Value::Pair(a, b) => {
                buf.push_str(a);
                buf.push(':');
                buf.push_str(b);
            }
            Value::Key(k) => {
                let _ = write!(buf, "{k}");
            }
            Value::Int(n) => {
                let _ = write!(buf, "{n}");
            }
            Value::Bool(b) => buf.push_str(if *b { "true" } else { "false" }),
            Value::Ip(ip) => {
                let _ = write!(buf, "{ip}");
            }
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        buf.push('\n');
                    }
                    buf.push_str(item);
                }
            }
            Value::Raw(raw) => {
                let json = raw.get();
                match serde_json::from_str::<Text<'_>>(json) {
                    Ok(text) => buf.push_str(&text),
                    Err(_) => buf.push_str(json),
                }
            }
            // Keywords are matched string by string, never as one text (no rule reads the
            // record as a value: the field has no name).
            Value::Record(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_and_print_back() {
        for (name, field) in Field::NAMES {
            assert_eq!(Field::parse(name).as_ref(), Some(field));
        }
        let raw = Field::parse("raw.userIdentity.sessionContext.sourceIdentity").unwrap();
        assert_eq!(
            raw.to_string(),
            "raw.userIdentity.sessionContext.sourceIdentity"
        );
        assert_eq!(Field::parse("nope"), None);
        assert_eq!(Field::parse("raw."), None);
        assert_eq!(Field::parse("raw.a..b"), None);
        // A quoted key holds dots and slashes; it prints back quoted.
        let quoted = Field::parse(r#"raw.annotations."authorization.k8s.io/decision""#).unwrap();
        assert_eq!(
            quoted,
            Field::Raw(["annotations".into(), "authorization.k8s.io/decision".into()].into())
        );
        assert_eq!(
            quoted.to_string(),
            r#"raw.annotations."authorization.k8s.io/decision""#
        );
        let optional = Field::parse(r#"raw."a.b"?.c"#).unwrap();
        assert_eq!(optional.to_string(), r#"raw."a.b"?.c"#);
        for bad in [
            r#"raw."a.b"#,
            r#"raw."a"b"#,
            r#"raw.a"b"#,
            r#"raw."what?""#,
            r#"raw."""#,
            // A quoted key ending in `?` would read back as an optional key, wherever it is.
            r#"raw."what?".b"#,
        ] {
            assert_eq!(Field::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_list_is_written_as_its_items_one_a_line() {
        // The text string modifiers and distinct counts see, and evidence shows.
        let mut buf = String::from("left over");
        let items = [Text::borrowed("s3:read"), Text::borrowed("iam:admin")];
        Value::List(&items).write_text(&mut buf);
        assert_eq!(buf, "s3:read\niam:admin");
        Value::List(&items[..1]).write_text(&mut buf);
        assert_eq!(buf, "s3:read");
        Value::List(&[]).write_text(&mut buf);
        assert_eq!(buf, "");
    }
}
