//! `sessionguard query`: SQL over an archive, or over raw logs, with DataFusion.
//!
//! Over an archive, two tables are registered over its directories as listing tables:
//! `events` (partitioned by `date` and `source`) and `decisions` (by `date`), with the
//! archive's own schemas ([`super::schema`]) so nothing is inferred. A filter on `date` or
//! `source` prunes whole directories before a file is opened; other filters are pushed into the
//! Parquet scan (row groups skipped by their statistics, rows filtered while decoding).
//!
//! Over raw logs (`--logs`), the caller replays them (the same normalizer and rules as
//! `replay`) into [`LogTables`]: the same rows an archive would hold, built with the archive's
//! own column builders, kept in memory with `date` and `source` as ordinary columns, and
//! registered as in-memory tables of the same names and schemas — so a query, saved hunting
//! queries included, reads the same over the logs as over their archive. Results are written
//! as an aligned table, CSV or NDJSON.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::schema::{
    DecisionColumns, EventColumns, RawColumn, BATCH_RECORD_BYTES, DECISIONS, EVENTS,
};
use crate::decision::Decision;
use crate::event::{Event, Timestamp};

/// Rows gathered before a batch of the in-memory tables is closed.
const BATCH_ROWS: usize = 8192;

/// How `query` writes its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a header, for a terminal.
    Table,
    /// A header line, then one line per row.
    Csv,
    /// One JSON object per row (NDJSON); null columns left out.
    Json,
}

/// Runs `sql` over the archive at `archive` and writes the result to `out` in `format`.
pub fn run(sql: &str, archive: &Path, format: Format, out: &mut dyn Write) -> Result<()> {
    if !super::is_archive(archive) {
        bail!(
            "{}: not an archive (no {}); write one with `sessionguard archive LOGS --to DIR`",
            archive.display(),
            super::MANIFEST
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads())
        .enable_all()
        .build()
        .context("starting the query runtime")?;
    let batches = runtime.block_on(collect(sql, archive))?;
    write(&batches, format, out)
}

/// Runs `sql` over the tables `logs` holds (raw logs replayed) and writes the result.
pub fn run_on_logs(sql: &str, logs: LogTables, format: Format, out: &mut dyn Write) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads())
        .enable_all()
        .build()
        .context("starting the query runtime")?;
    let batches = runtime.block_on(async {
        let ctx = logs.context()?;
        let frame = ctx.sql(sql).await.context("the query")?;
        frame.collect().await.context("running the query")
    })?;
    write(&batches, format, out)
}

/// The `events` and `decisions` tables of raw logs, in memory: what an archive of them would
/// hold, with the partition columns (`date`, `source`) as ordinary columns at the end.
pub struct LogTables {
    events: EventColumns,
    /// The records of the rows in `events`.
    raw: RawColumn,
    event_partitions: (StringBuilder, StringBuilder),
    event_batches: Vec<RecordBatch>,
    decisions: DecisionColumns,
    decision_dates: StringBuilder,
    decision_batches: Vec<RecordBatch>,
    next_event: u64,
    next_decision: u64,
}

impl Default for LogTables {
    fn default() -> Self {
        LogTables {
            events: EventColumns::default(),
            raw: RawColumn::default(),
            event_partitions: (StringBuilder::new(), StringBuilder::new()),
            event_batches: Vec::new(),
            decisions: DecisionColumns::default(),
            decision_dates: StringBuilder::new(),
            decision_batches: Vec::new(),
            next_event: 0,
            next_decision: 0,
        }
    }
}

/// `YYYY-MM-DD` of an event time (UTC), as the archive's `date` partition names it.
fn date_of(time: Timestamp) -> String {
    let text = time.to_string();
    text[..text.find('T').unwrap_or(text.len())].to_owned()
}

/// The archive's schema of a table with its partition columns appended (as DataFusion shows
/// an archive's tables).
fn with_partitions(schema: &SchemaRef, partitions: &[&str]) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(
        partitions
            .iter()
            .map(|p| Field::new(*p, DataType::Utf8, false)),
    );
    Arc::new(Schema::new(fields))
}

impl LogTables {
    /// One normalized event, as the archive would store it.
    pub fn event(&mut self, event: &Event<'_>, origin: (&str, u64), raw: &[u8]) -> Result<()> {
        self.events.push(self.next_event, event, origin);
        self.raw.push(raw);
        self.next_event += 1;
        self.event_partitions.0.append_value(date_of(event.time));
        self.event_partitions.1.append_value(event.source.as_str());
        if self.events.rows() >= BATCH_ROWS || self.raw.bytes() >= BATCH_RECORD_BYTES {
            self.close_events()?;
        }
        Ok(())
    }

    /// One decision, as the archive would store it.
    pub fn decision(&mut self, decision: &Decision) -> Result<()> {
        let json = serde_json::to_string(decision)?;
        self.decisions.push(self.next_decision, decision, &json);
        self.next_decision += 1;
        self.decision_dates.append_value(date_of(decision.time));
        if self.decisions.rows() >= BATCH_ROWS {
            self.close_decisions()?;
        }
        Ok(())
    }

    fn close_events(&mut self) -> Result<()> {
        let batch = self.events.finish(std::mem::take(&mut self.raw))?;
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns.push(Arc::new(self.event_partitions.0.finish()));
        columns.push(Arc::new(self.event_partitions.1.finish()));
        let schema = with_partitions(&EVENTS, &["date", "source"]);
        self.event_batches
            .push(RecordBatch::try_new(schema, columns)?);
        Ok(())
    }

    fn close_decisions(&mut self) -> Result<()> {
        let batch = self.decisions.finish()?;
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns.push(Arc::new(self.decision_dates.finish()));
        let schema = with_partitions(&DECISIONS, &["date"]);
        self.decision_batches
            .push(RecordBatch::try_new(schema, columns)?);
        Ok(())
    }

    /// Events and decisions held.
    pub fn counts(&self) -> (u64, u64) {
        (self.next_event, self.next_decision)
    }

    /// A session with both tables registered.
    fn context(mut self) -> Result<SessionContext> {
        if self.events.rows() > 0 {
            self.close_events()?;
        }
        if self.decisions.rows() > 0 {
            self.close_decisions()?;
        }
        let ctx = SessionContext::new_with_config(session_config()?);
        let tables = [
            (
                "events",
                with_partitions(&EVENTS, &["date", "source"]),
                self.event_batches,
            ),
            (
                "decisions",
                with_partitions(&DECISIONS, &["date"]),
                self.decision_batches,
            ),
        ];
        for (name, schema, batches) in tables {
            let table = MemTable::try_new(schema, vec![batches])
                .with_context(|| format!("building the {name} table"))?;
            ctx.register_table(name, Arc::new(table))
                .with_context(|| format!("registering the {name} table"))?;
        }
        Ok(ctx)
    }
}

/// DataFusion's settings: its defaults but for the settings below, each overridden by its
/// `DATAFUSION_*` variable in the environment, as any other setting is
/// (`DATAFUSION_EXECUTION_BATCH_SIZE=32768`, …: the names of DataFusion's configuration keys,
/// upper-cased, dots as underscores). Measured on 2 cores over 10 M events (docs/history.md,
/// "Measured"):
///
/// - Two partitions per core: the scan's byte ranges are cut evenly by size, not by the rows a
///   filter keeps, so one partition per core leaves a core idle while the other finishes the
///   heavier half; with twice as many, the runtime hands the rest to whichever core is free
///   (`sessions-by-bytes`: 0.57 s → 0.46 s).
/// - Partial aggregation is given up after 10,000 rows (DataFusion: 100,000) when they made at
///   least 0.3 groups a row (DataFusion: 0.8). Hunting queries group by session or address,
///   where a partition's rows rarely share a group: aggregating them twice, before and after
///   the repartition, is work for nothing (`sessions-by-bytes`: 0.50 s → 0.43 s). A query with
///   few groups still aggregates partially, as before.
fn session_config() -> Result<SessionConfig> {
    let mut config = SessionConfig::from_env()
        .context("reading the DATAFUSION_* settings from the environment")?;
    let unset = |name: &str| std::env::var_os(name).is_none();
    if unset("DATAFUSION_EXECUTION_TARGET_PARTITIONS") {
        config = config.with_target_partitions(2 * threads());
    }
    let execution = &mut config.options_mut().execution;
    if unset("DATAFUSION_EXECUTION_SKIP_PARTIAL_AGGREGATION_PROBE_RATIO_THRESHOLD") {
        execution.skip_partial_aggregation_probe_ratio_threshold = 0.3;
    }
    if unset("DATAFUSION_EXECUTION_SKIP_PARTIAL_AGGREGATION_PROBE_ROWS_THRESHOLD") {
        execution.skip_partial_aggregation_probe_rows_threshold = 10_000;
    }
    Ok(config)
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `schema` with its string columns read as string views (`Utf8View`): the Parquet reader then
/// points into the decoded pages instead of copying every value, and grouping by a string
/// column hashes views — the same values, faster to scan and group.
fn as_string_views(schema: &SchemaRef) -> SchemaRef {
    fn view(data_type: &DataType) -> DataType {
        match data_type {
            DataType::Utf8 => DataType::Utf8View,
            DataType::List(item) => DataType::List(Arc::new(
                item.as_ref().clone().with_data_type(view(item.data_type())),
            )),
            other => other.clone(),
        }
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_data_type(view(f.data_type())))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// A session with `events` and `decisions` registered over `archive`.
pub async fn context(archive: &Path) -> Result<SessionContext> {
    // Filter pushdown into the Parquet decoder stays off (DataFusion's default): the hunting
    // queries keep most rows, and decoding the filter columns first, then the rest, was slower
    // than decoding once and filtering (docs/history.md, "Measured").
    let ctx = SessionContext::new_with_config(session_config()?);
    let root =
        std::fs::canonicalize(archive).with_context(|| format!("reading {}", archive.display()))?;
    let tables = [
        ("events", as_string_views(&EVENTS), &["date", "source"][..]),
        ("decisions", as_string_views(&DECISIONS), &["date"][..]),
    ];
    for (name, schema, partitions) in tables {
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(
                partitions
                    .iter()
                    .map(|p| (p.to_string(), DataType::Utf8))
                    .collect(),
            );
        let dir = format!("{}/", root.join(name).display());
        ctx.register_listing_table(name, &dir, options, Some(schema), None)
            .await
            .with_context(|| format!("registering the {name} table over {dir}"))?;
    }
    Ok(ctx)
}

async fn collect(sql: &str, archive: &Path) -> Result<Vec<RecordBatch>> {
    let ctx = context(archive).await?;
    let frame = ctx.sql(sql).await.context("the query")?;
    frame.collect().await.context("running the query")
}

/// Writes `batches` in `format`.
pub fn write(batches: &[RecordBatch], format: Format, out: &mut dyn Write) -> Result<()> {
    use datafusion::arrow::{csv, json, util::pretty};
    match format {
        Format::Table => {
            let table = pretty::pretty_format_batches(batches).context("formatting")?;
            writeln!(out, "{table}")?;
        }
        Format::Csv => {
            let mut writer = csv::WriterBuilder::new().with_header(true).build(out);
            for batch in batches {
                writer.write(batch).context("writing CSV")?;
            }
        }
        Format::Json => {
            let mut writer = json::LineDelimitedWriter::new(out);
            for batch in batches {
                writer.write(batch).context("writing JSON")?;
            }
            writer.finish().context("writing JSON")?;
        }
    }
    Ok(())
}
