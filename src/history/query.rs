//! `sessionguard query`: SQL over an archive with DataFusion.
//!
//! Two tables are registered over the archive's directories as listing tables: `events`
//! (partitioned by `date` and `source`) and `decisions` (by `date`), with the archive's own
//! schemas ([`super::schema`]) so nothing is inferred. A filter on `date` or `source` prunes
//! whole directories before a file is opened; other filters are pushed into the Parquet scan
//! (row groups skipped by their statistics, rows filtered while decoding). Results are
//! written as an aligned table, CSV or NDJSON.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::schema::{DECISIONS, EVENTS};

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

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A session with `events` and `decisions` registered over `archive`.
pub async fn context(archive: &Path) -> Result<SessionContext> {
    let config = SessionConfig::new()
        .with_target_partitions(threads())
        .set_bool("datafusion.execution.parquet.pushdown_filters", true)
        .set_bool("datafusion.execution.parquet.reorder_filters", true);
    let ctx = SessionContext::new_with_config(config);
    let root =
        std::fs::canonicalize(archive).with_context(|| format!("reading {}", archive.display()))?;
    let tables = [
        ("events", EVENTS.clone(), &["date", "source"][..]),
        ("decisions", DECISIONS.clone(), &["date"][..]),
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
