//! Okta adapter (being written).

use super::model::{Event, Source};
use super::normalize::{Adapter, Record};
use super::reject::{Reject, RejectReason};

pub const ADAPTER: Adapter = Adapter {
    source: Source::Okta,
    detect,
    normalize,
};

fn detect(_fields: &super::fields::Fields<'_>) -> bool {
    false
}

fn normalize(_record: Record<'_>) -> Result<Event<'_>, Reject> {
    Err(Reject::new(
        RejectReason::UnknownSource,
        "the okta adapter is not written yet",
    ))
}
