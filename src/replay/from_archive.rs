//! Replaying an archive (`replay DIR`, where DIR holds `_sessionguard_archive.json`): its
//! events in the order the archiving replay read them, each with the file and line it came
//! from (or the Kafka partition and offset, for an archive `run` wrote), so the engine sees
//! what it saw then and decides the same, evidence included.

use std::io;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::Ordering;

use anyhow::Context as _;

use super::{Callbacks, Reading, ReplayOptions, ReplaySummary};
use crate::event::{Reject, RejectReason};
use crate::history::archive::parse_kafka_origin;
use crate::history::read::{archive_bytes, read_events, ArchivedItem};
use crate::history::Manifest;
use crate::source::Origin;

impl Reading<'_, '_> {
    /// Reads the archive at `path` through the evaluator; the file and line it stopped at
    /// when a stop was asked for.
    pub(super) fn archive(
        &mut self,
        path: &Path,
        options: &ReplayOptions,
        summary: &mut ReplaySummary,
    ) -> anyhow::Result<Option<(String, u64)>> {
        let manifest = match Manifest::read(path) {
            Ok(manifest) => manifest,
            Err(e) => {
                let id = self.file_id(path.display().to_string());
                let reject = Reject::new(RejectReason::Unreadable, format!("the archive: {e}"));
                self.broken(id, 0, &reject)?;
                return Ok(None);
            }
        };
        // The origins' ids as the archiving replay gave them: its files, in its order. A record
        // `run` archived names its Kafka partition (`kafka://TOPIC/PARTITION`, the offset as
        // its line) and replays with that origin, so evidence points where `run`'s did; the
        // full name is registered too, so archiving this replay again keeps it.
        let origins: Vec<Origin> = manifest
            .origin_files
            .iter()
            .map(|name| {
                let file = self.file_id(name.clone());
                match parse_kafka_origin(name) {
                    Some((topic, partition)) => Origin::Kafka {
                        topic: self.file_id(topic.to_owned()),
                        partition,
                        offset: 0,
                    },
                    None => Origin::File { file, line: 0 },
                }
            })
            .collect();
        let mut stopped_at = None;
        let mut failure: Option<io::Error> = None;
        let mut broken = Vec::new();
        let mut records = summary.records;
        let Reading {
            evaluator,
            names,
            on_decision,
            on_reject,
            recorder,
            ..
        } = self;
        let mut sink = Callbacks {
            names,
            on_decision: &mut **on_decision,
            on_reject: &mut **on_reject,
            recorder: recorder.as_deref_mut(),
        };
        read_events(path, &manifest, &mut |item| {
            match item {
                ArchivedItem::Record {
                    origin_file,
                    line,
                    raw,
                } => {
                    records += 1;
                    let origin = match manifest.origin_files.iter().position(|n| n == origin_file) {
                        Some(i) => match origins[i] {
                            Origin::File { file, .. } => Origin::File { file, line },
                            Origin::Kafka {
                                topic, partition, ..
                            } => Origin::Kafka {
                                topic,
                                partition,
                                offset: line as i64,
                            },
                        },
                        None => {
                            broken.push((
                                path.display().to_string(),
                                format!("a record names {origin_file}, which the manifest does not list"),
                            ));
                            return ControlFlow::Continue(());
                        }
                    };
                    if let Err(e) = evaluator.push(raw, origin, &mut sink) {
                        failure = Some(e);
                        return ControlFlow::Break(());
                    }
                    if options.stop.load(Ordering::Relaxed) {
                        stopped_at = Some((origin_file.to_owned(), line));
                        return ControlFlow::Break(());
                    }
                }
                ArchivedItem::Broken { path, detail } => broken.push((path, detail)),
            }
            ControlFlow::Continue(())
        });
        summary.records = records;
        if let Some(e) = failure {
            return Err(e).context("writing output");
        }
        for (file, detail) in broken {
            let id = self.file_id(file);
            let reject = Reject::new(RejectReason::Unreadable, detail);
            self.broken(id, 0, &reject)?;
        }
        summary.bytes += archive_bytes(path, &manifest);
        Ok(stopped_at)
    }
}
