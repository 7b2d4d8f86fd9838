//! `run --archive DIR`: the archive `run` writes beside its decisions — every normalized
//! record it evaluates and every decision it emits, in the layout `sessionguard archive`
//! writes (`crate::history::archive`), so `replay DIR` gives `run`'s decisions back.
//!
//! The consumer thread only copies each record into the archive's next shipment; the
//! archive's own threads build its columns, then encode, compress and write. Files roll by
//! size (in the writer) and by time (here: every `roll_interval` of wall time every open file
//! is closed, however small), so a quiet stream still gives readable files; the manifest is
//! written when the run stops cleanly. Records read again to rebuild a partition's state were
//! archived by the run that first read them and are not archived again. A record is named by
//! its partition, `kafka://TOPIC/PARTITION`, with its offset as its line.
//!
//! Writing must never cost a decision: when it fails (a full disk), the failure is logged
//! once and archiving stops while evaluation goes on.

use std::time::{Duration, Instant};

use super::events;
use crate::config::ArchiveSettings;
use crate::decision::Decision;
use crate::event::{Event, Normalizer};
use crate::history::archive::kafka_origin;
use crate::history::ArchiveWriter;
use crate::telemetry::Telemetry;

/// The archive of one `run`.
pub struct RunArchive {
    dir: String,
    writer: Option<ArchiveWriter>,
    roll_interval: Duration,
    rolled_at: Instant,
    /// The partitions' origin names, in the order records of them were first archived.
    origins: Vec<String>,
}

impl RunArchive {
    /// Starts the archive (`dir` must not hold one: each run archives into a new directory).
    /// `normalizer`: the one the run reads with (the archive normalizes each record again).
    pub fn create(
        settings: &ArchiveSettings,
        normalizer: &Normalizer,
    ) -> anyhow::Result<RunArchive> {
        let writer = ArchiveWriter::create(&settings.dir, settings.roll_bytes, normalizer.clone())
            .map_err(|e| {
                anyhow::anyhow!("creating the archive in {}: {e}", settings.dir.display())
            })?;
        Ok(RunArchive {
            dir: settings.dir.display().to_string(),
            writer: Some(writer),
            roll_interval: settings.roll_interval,
            rolled_at: Instant::now(),
            origins: Vec::new(),
        })
    }

    /// The origin name of a partition, remembered for the manifest.
    pub fn origin(&mut self, topic: &str, partition: i32) -> String {
        let name = kafka_origin(topic, partition);
        if !self.origins.contains(&name) {
            self.origins.push(name.clone());
        }
        name
    }

    /// Archives one normalized record of `origin` (a name [`RunArchive::origin`] gave).
    pub fn event(
        &mut self,
        event: &Event<'_>,
        origin: &str,
        offset: i64,
        bytes: &[u8],
        telemetry: &Telemetry,
    ) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let result = writer.event(event, (origin, offset.max(0) as u64), bytes);
        self.check(result, telemetry);
    }

    /// Archives one emitted decision.
    pub fn decision(&mut self, decision: &Decision, telemetry: &Telemetry) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let result = writer.decision(decision);
        self.check(result, telemetry);
    }

    /// Between polls: closes every open file once `roll_interval` has passed since the last
    /// roll (when anything was written since).
    pub fn tick(&mut self, now: Instant, telemetry: &Telemetry) {
        if now.saturating_duration_since(self.rolled_at) < self.roll_interval {
            return;
        }
        self.rolled_at = now;
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let result = writer.roll();
        self.check(result, telemetry);
    }

    /// At a clean stop: writes what is buffered, closes every file, writes the manifest.
    pub fn finish(mut self, telemetry: &Telemetry) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        match writer.finish(std::mem::take(&mut self.origins)) {
            Ok(manifest) => events::ArchiveClosed {
                dir: &self.dir,
                events: manifest.events,
                decisions: manifest.decisions,
                files: manifest.files.len() as u64,
            }
            .emit(telemetry),
            Err(e) => events::ArchiveFailed {
                dir: &self.dir,
                error: &e.to_string(),
            }
            .emit(telemetry),
        }
    }

    fn check(&mut self, result: std::io::Result<()>, telemetry: &Telemetry) {
        if let Err(e) = result {
            events::ArchiveFailed {
                dir: &self.dir,
                error: &e.to_string(),
            }
            .emit(telemetry);
            // Dropping the writer ends its thread, which closes the files it had open.
            self.writer = None;
        }
    }
}
