//! Why a record was not turned into an event.
//!
//! Every rejected record carries one `RejectReason` (a small, stable label used in metrics,
//! summaries and dead-letter headers) and a human detail. Rejecting is never an error of the run:
//! the caller counts it, sends the record to its dead-letter place and goes on.

use std::fmt;

use serde::Serialize;

/// The class of a rejection: what the operator should look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The bytes are not valid UTF-8.
    InvalidUtf8,
    /// The bytes are not a JSON value (or not a JSON object).
    NotJson,
    /// JSON nested deeper than the parser allows.
    TooDeep,
    /// The record is larger than the configured maximum.
    TooLarge,
    /// No adapter recognises the record.
    UnknownSource,
    /// The record has no session or credential identity to key it by.
    NoSessionIdentity,
    /// The event time is absent or cannot be read.
    BadTimestamp,
    /// A field the adapter needs has the wrong type or shape.
    InvalidField,
    /// More than its source's grace older than the newest record of its session: not applied.
    Late,
    /// Dated far ahead of every clock, and no other record of its source confirmed the time.
    Future,
    /// A file, or the rest of one, could not be read: it could not be opened, is not a regular
    /// file, or failed mid-way (a truncated or corrupt gzip). What was read before is kept.
    Unreadable,
}

impl RejectReason {
    pub const ALL: [RejectReason; 11] = [
        RejectReason::InvalidUtf8,
        RejectReason::NotJson,
        RejectReason::TooDeep,
        RejectReason::TooLarge,
        RejectReason::UnknownSource,
        RejectReason::NoSessionIdentity,
        RejectReason::BadTimestamp,
        RejectReason::InvalidField,
        RejectReason::Late,
        RejectReason::Future,
        RejectReason::Unreadable,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::NotJson => "not_json",
            RejectReason::TooDeep => "too_deep",
            RejectReason::TooLarge => "too_large",
            RejectReason::UnknownSource => "unknown_source",
            RejectReason::NoSessionIdentity => "no_session_identity",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::Late => "late",
            RejectReason::Future => "future",
            RejectReason::Unreadable => "unreadable",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected record: the reason class and what exactly was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub reason: RejectReason,
    pub detail: String,
}

impl Reject {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Reject {
            reason,
            detail: detail.into(),
        }
    }

    pub fn invalid_field(field: &str, error: impl fmt::Display) -> Self {
        Reject::new(RejectReason::InvalidField, format!("{field}: {error}"))
    }

    pub fn no_session(detail: impl Into<String>) -> Self {
        Reject::new(RejectReason::NoSessionIdentity, detail)
    }

    /// Classifies a serde_json error raised while reading the record's structure.
    pub fn from_json(error: &serde_json::Error) -> Self {
        let message = error.to_string();
        if message.starts_with("recursion limit exceeded") {
            Reject::new(RejectReason::TooDeep, message)
        } else if error.is_data() {
            Reject::new(RejectReason::InvalidField, message)
        } else {
            Reject::new(RejectReason::NotJson, message)
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for Reject {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reject_reads_as_its_label_and_detail() {
        let reject = Reject::invalid_field("eventTime", "not a time");
        assert_eq!(reject.to_string(), "invalid_field: eventTime: not a time");
        assert_eq!(
            Reject::no_session("no key").to_string(),
            "no_session_identity: no key"
        );
        let labels: Vec<&str> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), 11);
        let serialized = serde_json::to_string(&RejectReason::ALL).unwrap();
        assert_eq!(serialized, serde_json::to_string(&labels).unwrap());
    }

    #[test]
    fn a_json_error_is_classed_by_what_went_wrong() {
        let class = |json: &str| {
            let error = serde_json::from_str::<Vec<u8>>(json).unwrap_err();
            Reject::from_json(&error).reason
        };
        assert_eq!(class("[1,"), RejectReason::NotJson);
        assert_eq!(class("[1, \"a\"]"), RejectReason::InvalidField);
        let deep = serde_json::from_str::<serde_json::Value>(&"[".repeat(200)).unwrap_err();
        assert_eq!(Reject::from_json(&deep).reason, RejectReason::TooDeep);
    }
}
