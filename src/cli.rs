//! The `sessionguard` command line: argument parsing and the subcommands' drivers.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use bumpalo::Bump;
use clap::{Parser, Subcommand};

use crate::event::{Normalizer, RejectReason, Source, DEFAULT_MAX_RECORD_BYTES};
use crate::source::file::{self, Item};

#[derive(Parser, Debug)]
#[command(
    name = "sessionguard",
    version,
    about = "Streaming detection engine for session security"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print audit records as normalized events (NDJSON on stdout, a summary on stderr).
    Normalize(NormalizeArgs),
}

#[derive(clap::Args, Debug)]
pub struct NormalizeArgs {
    /// Files or directories to read (JSON, NDJSON, CloudTrail envelopes; plain or gzip).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Read every record as this source instead of detecting it per record.
    #[arg(long, value_parser = parse_source)]
    pub source: Option<Source>,
    /// Reject records larger than this many bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_RECORD_BYTES)]
    pub max_record_bytes: usize,
    /// Write rejected records here as NDJSON (origin, reason, detail, the record).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Print only the summary.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_source(name: &str) -> Result<Source, String> {
    Source::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
        format!(
            "unknown source '{name}'; expected one of {}",
            names.join(", ")
        )
    })
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Normalize(args) => normalize(args),
    }
}

/// Counts shown in the summary of a normalize run.
#[derive(Default)]
pub struct NormalizeSummary {
    pub events_by_source: BTreeMap<Source, u64>,
    pub rejects_by_reason: BTreeMap<RejectReason, u64>,
    pub sessions: HashSet<String>,
}

fn normalize(args: NormalizeArgs) -> Result<i32> {
    let normalizer = Normalizer {
        forced: args.source,
        max_record_bytes: args.max_record_bytes,
        ..Normalizer::default()
    };
    let files = file::expand_paths(&args.paths).context("listing input paths")?;
    if files.is_empty() {
        bail!("no input files found under the given paths");
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut rejects_out = match &args.rejects {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let mut summary = NormalizeSummary::default();
    let mut scratch = Bump::new();
    let mut shown_rejects = 0;
    let mut write_error: Option<io::Error> = None;
    for path in &files {
        let reader = file::open(path).with_context(|| format!("opening {}", path.display()))?;
        let name = path.display().to_string();
        file::for_each_record(reader, &mut |item| {
            let (line, result) = match item {
                Item::Record { bytes, line } => {
                    scratch.reset();
                    (
                        line,
                        normalizer
                            .normalize(bytes, &scratch)
                            .map_err(|r| (r, bytes)),
                    )
                }
                Item::Broken { line, reject } => (line, Err((reject, &[][..]))),
            };
            let written = match result {
                Ok(event) => {
                    *summary.events_by_source.entry(event.source).or_default() += 1;
                    let key = event.session.key.to_string();
                    if !summary.sessions.contains(&key) {
                        summary.sessions.insert(key);
                    }
                    if args.quiet {
                        Ok(())
                    } else {
                        serde_json::to_writer(&mut out, &event)
                            .map_err(io::Error::from)
                            .and_then(|()| out.write_all(b"\n"))
                    }
                }
                Err((reject, bytes)) => {
                    *summary.rejects_by_reason.entry(reject.reason).or_default() += 1;
                    if shown_rejects < 20 {
                        eprintln!("{name}:{line}: rejected: {reject}");
                        shown_rejects += 1;
                    }
                    match rejects_out.as_mut() {
                        Some(w) => write_reject(w, &name, line, &reject, bytes),
                        None => Ok(()),
                    }
                }
            };
            if let Err(e) = written {
                write_error.get_or_insert(e);
            }
        })
        .with_context(|| format!("reading {}", path.display()))?;
        if let Some(e) = write_error.take() {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(e).context("writing output");
        }
    }
    out.flush().context("writing output")?;
    if let Some(w) = rejects_out.as_mut() {
        w.flush().context("writing rejects")?;
    }
    let rejected: u64 = summary.rejects_by_reason.values().sum();
    if rejected > shown_rejects {
        eprintln!("… {} more rejects not shown", rejected - shown_rejects);
    }
    eprint!("{}", render_summary(&summary, files.len()));
    Ok(0)
}

/// The bounded copy of a rejected record kept for the dead-letter file.
const REJECT_COPY_BYTES: usize = 64 * 1024;

fn write_reject(
    w: &mut impl Write,
    file: &str,
    line: u64,
    reject: &crate::event::Reject,
    bytes: &[u8],
) -> io::Result<()> {
    let copy = &bytes[..bytes.len().min(REJECT_COPY_BYTES)];
    let record = serde_json::json!({
        "origin": { "file": file, "line": line },
        "reason": reject.reason,
        "detail": reject.detail,
        "truncated": bytes.len() > copy.len(),
        "record": String::from_utf8_lossy(copy),
    });
    serde_json::to_writer(&mut *w, &record)?;
    w.write_all(b"\n")
}

pub fn render_summary(summary: &NormalizeSummary, files: usize) -> String {
    use std::fmt::Write as _;
    let events: u64 = summary.events_by_source.values().sum();
    let rejects: u64 = summary.rejects_by_reason.values().sum();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "normalized {events} events in {} sessions from {files} files; rejected {rejects}",
        summary.sessions.len()
    );
    for (source, n) in &summary.events_by_source {
        let _ = writeln!(s, "  events   {:<20} {n:>8}", source.as_str());
    }
    for (reason, n) in &summary.rejects_by_reason {
        let _ = writeln!(s, "  rejected {:<20} {n:>8}", reason.as_str());
    }
    s
}
