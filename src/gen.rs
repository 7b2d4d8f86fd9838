//! The traffic generator (crate `sessionguard-gen`, docs/gen.md) seen through the engine's
//! types: its records and ground truth name their source with [`crate::event::Source`], so
//! tests and benches compare what it meant with what the engine read. The generator itself
//! shares no code with the engine (it is the oracle); this module only renames its sources.

use std::io::Write;

use anyhow::Result;
pub use sessionguard_gen::{
    parse_sources, Config, Delivery, Output, Summary, DEFAULT_START_MS, DEFAULT_WEIGHTS,
};

use crate::event::Source;

/// A record as it was written, for callers that check the output.
pub type Record<'a> = sessionguard_gen::Record<'a, Source>;

/// One injected attack's ground truth.
pub type Truth = sessionguard_gen::Truth<Source>;

impl From<sessionguard_gen::Source> for Source {
    fn from(source: sessionguard_gen::Source) -> Source {
        match source {
            sessionguard_gen::Source::Cloudtrail => Source::Cloudtrail,
            sessionguard_gen::Source::Okta => Source::Okta,
            sessionguard_gen::Source::Kubernetes => Source::Kubernetes,
            sessionguard_gen::Source::Github => Source::Github,
        }
    }
}

/// [`sessionguard_gen::generate`], its records and truth in the engine's [`Source`]: writes
/// `cfg.events` records to `out`; returns the summary and the ground truth (ordered by line).
/// `observe` sees every record with the session key it was meant for (pass `None` for speed).
pub fn generate(
    cfg: &Config,
    out: &mut dyn Write,
    observe: Option<&mut dyn FnMut(&Record<'_>)>,
) -> Result<(Summary, Vec<Truth>)> {
    let mut renamed = observe.map(|observe| {
        move |r: &sessionguard_gen::Record<'_>| observe(&r.with_source(Source::from(r.source)))
    });
    let observe = renamed
        .as_mut()
        .map(|f| f as &mut dyn FnMut(&sessionguard_gen::Record<'_>));
    let (summary, truth) = sessionguard_gen::generate(cfg, out, observe)?;
    let truth = truth
        .into_iter()
        .map(|t| t.map_source(Source::from))
        .collect();
    Ok((summary, truth))
}
