//! History: what sessionguard has seen and decided, kept for later questions.
//!
//! - [`schema`]: the archive's Arrow schemas (`events`, `decisions`) and their row builders.
//! - [`archive`]: writing an archive — Parquet, hive-partitioned by date and source, zstd,
//!   rolled by size, encoded on a thread of its own — and its manifest.
//! - [`read`]: reading an archive's events back in their original order, for `replay DIR`.
//! - [`explain`]: one session's lineage, events, rule states and decisions as a timeline.
//! - [`page`]: that story as a self-contained HTML page with an SVG time chart.
//! - `query` (feature `history`): SQL over an archive's `events` and `decisions` with
//!   DataFusion.
//!
//! The format is documented in docs/history.md.

pub mod archive;
pub mod explain;
pub mod page;
#[cfg(feature = "history")]
pub mod query;
pub mod read;
pub mod schema;

pub use archive::{is_archive, ArchiveWriter, Manifest, DEFAULT_ROLL_BYTES, MANIFEST};
