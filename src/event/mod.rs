//! The event model and everything that turns a raw audit record into an `Event`.
//!
//! `normalize` owns the per-record path: limits, UTF-8 and JSON checks, source detection, and
//! dispatch to one adapter per source (the explicit list in `normalize::ADAPTERS`). Each adapter
//! module owns one vendor's format and its session-key derivation (DESIGN.md §2).

pub mod fields;
pub mod model;
pub mod normalize;
pub mod reject;
pub mod runtime;
pub mod text;
pub mod time;

#[cfg(test)]
mod testing;

mod aws_grants;
mod cloudtrail;
mod entra;
mod github;
mod kubernetes;
mod mcp;
mod ocsf;
mod okta;
pub mod otel;

pub use fields::Fields;
pub use model::{
    Action, Agent, Client, Event, Lineage, Network, Operation, Outcome, Principal, Resource,
    Session, SessionKey, SessionKind, Source, Status,
};
pub use normalize::{Normalizer, DEFAULT_MAX_DEPTH, DEFAULT_MAX_RECORD_BYTES};
pub use reject::{Reject, RejectReason};
pub use text::Text;
pub use time::Timestamp;
