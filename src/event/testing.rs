//! Helpers for the adapters' unit tests: normalize one record and check what came out.

use bumpalo::Bump;

use super::model::{Event, Source};
use super::normalize::Normalizer;
use super::reject::Reject;

/// Normalizes `json`, asserts it was read as `source`, and hands the event to `check`.
pub fn with_event<R>(source: Source, json: &str, check: impl FnOnce(&Event<'_>) -> R) -> R {
    let scratch = Bump::new();
    let event = Normalizer::default()
        .normalize(json.as_bytes(), &scratch)
        .unwrap_or_else(|r| panic!("rejected: {r}"));
    assert_eq!(event.source, source);
    check(&event)
}

/// The rejection of `json`; panics when it normalizes.
pub fn rejected(json: &str) -> Reject {
    let scratch = Bump::new();
    let result = Normalizer::default()
        .normalize(json.as_bytes(), &scratch)
        .map(|e| e.session.key.to_string());
    match result {
        Ok(key) => panic!("normalized as {key}"),
        Err(r) => r,
    }
}
