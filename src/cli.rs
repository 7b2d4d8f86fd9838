//! The `sessionguard` command line: argument parsing, the subcommands' drivers, and the exit
//! statuses every command shares ([`exit`], mapped from a command's result by [`exit_code`]).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bumpalo::Bump;
use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::decision::{Decision, EvidenceOrigin};
use crate::engine::{Engine, EngineConfig};
use crate::event::{Normalizer, Reject, RejectReason, Source, DEFAULT_MAX_RECORD_BYTES};
use crate::replay::{
    peak_memory_kib, replay, replay_recording, replay_sharded, ReplayOptions, ReplaySummary,
};
use crate::rule::{RuleSet, RuleTest, TestExpect};
use crate::sink::{write_dead_letter, write_decision};
use crate::source::file::{self, Item};
use crate::units::{parse_duration_ms, plural};

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
    /// Evaluate rules over audit log files and write the decisions (NDJSON).
    Replay(ReplayArgs),
    /// Lint every rule file and run every rule's inline tests.
    Check(CheckArgs),
    /// Replay audit logs into an archive: the normalized events and the decisions as Parquet,
    /// partitioned by date and source (docs/history.md).
    #[cfg(feature = "parquet")]
    Archive(ArchiveArgs),
    /// Replay history through new rules and a baseline; print the decisions that change.
    Backtest(BacktestArgs),
    /// One session's lineage, events and decisions from an archive, as a timeline.
    #[cfg(feature = "parquet")]
    Explain(ExplainArgs),
    /// SQL over an archive's `events` and `decisions` tables (DataFusion; docs/history.md).
    #[cfg(feature = "history")]
    Query(QueryArgs),
    /// Write synthetic audit traffic (CloudTrail, Okta, Kubernetes, GitHub) with injected
    /// attacks and their ground truth (docs/gen.md).
    Gen(GenArgs),
    /// Consume audit topics as a consumer group; produce kill decisions to the actions topic.
    #[cfg(feature = "kafka")]
    Run(Box<RunArgs>),
    /// Re-produce raw SIEM records keyed by session key, so each session reaches one evaluator.
    #[cfg(feature = "kafka")]
    Rekey(RekeyArgs),
    /// Zero setup: the fixtures through an in-process Kafka mock cluster, decisions printed.
    #[cfg(feature = "kafka")]
    Demo,
    /// Make kills land: decisions to Shared Signals receivers as signed CAEP events, behind
    /// the blast-radius guard (docs/actuation.md).
    #[cfg(feature = "actuate")]
    Actuate(ActuateArgs),
    /// A Shared Signals push receiver for trying `actuate` out: verifies each SET against the
    /// transmitter's JWKS and prints it (docs/actuation.md).
    #[cfg(feature = "actuate")]
    SsfReceiver(SsfReceiverArgs),
}

/// Flags `run` and `rekey` share. Every one can also come from `--config` or a
/// `SESSIONGUARD_*` variable; flags win over the environment, which wins over the file.
#[cfg(feature = "kafka")]
#[derive(clap::Args, Debug)]
pub struct KafkaArgs {
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT…] [env: SESSIONGUARD_BROKERS]
    #[arg(long)]
    pub brokers: Option<String>,
    /// Consumer group id [env: SESSIONGUARD_GROUP]
    #[arg(long)]
    pub group: Option<String>,
    /// Input topics, comma-separated [env: SESSIONGUARD_TOPICS]
    #[arg(long)]
    pub topics: Option<String>,
    /// Rejected records go here with Kafka Connect's error headers [env: SESSIONGUARD_DEAD_LETTER_TOPIC]
    #[arg(long)]
    pub dead_letter_topic: Option<String>,
    /// Read every record as this source instead of detecting it per record.
    #[arg(long)]
    pub source: Option<String>,
    /// Serve /metrics, /healthz and /readyz here: a port (loopback) or ADDR:PORT, e.g. 0.0.0.0:9464 to expose them [env: SESSIONGUARD_METRICS_ADDR]
    #[arg(long)]
    pub metrics_addr: Option<String>,
    /// A librdkafka property passed through, e.g. -X security.protocol=ssl (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = crate::config::parse_property)]
    pub property: Vec<(String, String)>,
    /// Settings file (YAML or JSON) with the same keys as the flags.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Stop (with a final commit) after this many records.
    #[arg(long)]
    pub max_events: Option<u64>,
    /// Stop (with a final commit) when no record arrived for this long (wall clock), e.g. 5s.
    #[arg(long)]
    pub exit_when_idle: Option<String>,
}

#[cfg(feature = "kafka")]
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Decisions go here: key = session key, value = decision JSON [env: SESSIONGUARD_ACTIONS_TOPIC]
    #[arg(long)]
    pub actions_topic: Option<String>,
    /// Compacted topic of rebuild positions per input partition [env: SESSIONGUARD_PROGRESS_TOPIC]
    #[arg(long)]
    pub progress_topic: Option<String>,
    /// Task grants and completions of autonomous agents, as an orchestrator publishes them;
    /// every instance reads it whole (docs/agents.md) [env: SESSIONGUARD_TASKS_TOPIC]
    #[arg(long)]
    pub tasks_topic: Option<String>,
    /// Task grant files or directories, applied at start (docs/agents.md), repeatable
    /// [env: SESSIONGUARD_TASKS, comma-separated]
    #[arg(long, value_name = "DIR")]
    pub tasks: Option<Vec<String>>,
    /// Rule files or directories (default: rules) [env: SESSIONGUARD_RULES]
    #[arg(long)]
    pub rules: Option<Vec<String>>,
    /// As in `replay`, comma-separated (default 20m).
    #[arg(long, value_name = "[SOURCE=]DURATION,…")]
    pub grace: Option<String>,
    /// As in `replay` (default 30m).
    #[arg(long)]
    pub max_skew: Option<String>,
    /// As in `replay` (default 12h).
    #[arg(long)]
    pub idle_timeout: Option<String>,
    /// As in `replay` (default urn:sessionguard).
    #[arg(long)]
    pub caep_issuer: Option<String>,
    /// Sessions held per input partition (default 4000000, about 1 KiB each under the shipped
    /// pack); beyond it the one idle longest is evicted, deterministically, and counted.
    #[arg(long)]
    pub max_sessions: Option<u64>,
    /// Benchmark aid: the same consumer loop, offsets and delivery tracking, but no normalize
    /// and no rules; one small record (the input offset) per input record to the actions topic
    /// (docs/kafka.md, "The null engine").
    #[arg(long, hide = true)]
    pub null_engine: bool,
    /// Also archive every normalized record and every decision in DIR, as `sessionguard
    /// archive` does (Parquet, docs/history.md); DIR must not hold an archive already.
    #[cfg(feature = "parquet")]
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,
    /// With --archive: close a file when it reaches this size…
    #[cfg(feature = "parquet")]
    #[arg(long, default_value = "128MiB", value_parser = parse_size_flag)]
    pub archive_roll_size: u64,
    /// …or when it has been open this long (wall clock), e.g. 1m, 1h.
    #[cfg(feature = "parquet")]
    #[arg(long, default_value = "5m", value_parser = parse_duration_flag)]
    pub archive_roll_interval: i64,
}

#[cfg(all(feature = "kafka", feature = "parquet"))]
impl RunArgs {
    fn archive_settings(&self) -> Option<crate::config::ArchiveSettings> {
        Some(crate::config::ArchiveSettings {
            dir: self.archive.clone()?,
            roll_bytes: self.archive_roll_size,
            roll_interval: std::time::Duration::from_millis(
                self.archive_roll_interval.max(1) as u64
            ),
        })
    }
}

#[cfg(feature = "kafka")]
#[derive(clap::Args, Debug)]
pub struct RekeyArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The session-keyed topic records are re-produced to [env: SESSIONGUARD_OUTPUT_TOPIC]
    #[arg(long)]
    pub output_topic: Option<String>,
}

#[cfg(feature = "actuate")]
#[derive(clap::Args, Debug)]
pub struct ActuateArgs {
    /// The actuate config file: issuer, signing key, receivers, guard (docs/actuation.md).
    #[arg(long)]
    pub config: PathBuf,
    /// Decisions (NDJSON, as `replay` and `run` write them); `-` reads standard input.
    /// Without it: the actions topic of the config's `kafka:` section, else standard input.
    #[arg(long)]
    pub decisions: Option<PathBuf>,
}

#[cfg(feature = "actuate")]
#[derive(clap::Args, Debug)]
pub struct SsfReceiverArgs {
    /// Where to take pushed SETs (POST /events).
    #[arg(long, default_value = "127.0.0.1:8472")]
    pub listen: std::net::SocketAddr,
    /// The transmitter's JWKS, e.g. http://127.0.0.1:8471/jwks.json (actuate's `listen:`).
    #[arg(long)]
    pub jwks: String,
    /// Take only pushes that carry `Authorization: Bearer <the value of this variable>`.
    #[arg(long, value_name = "VARIABLE")]
    pub token_env: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Files or directories to read (JSON, NDJSON, CloudTrail envelopes; plain or gzip); `-`
    /// reads standard input as it arrives (`tail -F log | sessionguard replay -`), writing
    /// each decision as it is made.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Rule files or directories [default: rules, in the current directory]
    #[arg(long)]
    pub rules: Vec<PathBuf>,
    /// Write decisions here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write rejected records here as NDJSON (origin, reason, detail, the record).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Read every record as this source instead of detecting it per record.
    #[arg(long, value_parser = parse_source)]
    pub source: Option<Source>,
    /// No progress line on stderr.
    #[arg(long)]
    pub no_progress: bool,
    /// End as `run` would: timers due in the last grace of the input wait for records that
    /// never come, instead of firing because the input ended.
    #[arg(long)]
    pub no_final_timers: bool,
    /// Engine threads, sharded by session key (decisions as with one thread, in record order;
    /// --max-sessions is split between the shards)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// Also write every normalized event and every decision to a new archive in DIR (Parquet,
    /// docs/history.md). An archive given as an input path is replayed in its original order.
    #[cfg(feature = "parquet")]
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,
    /// Start a new archive file when one reaches this size (with --archive).
    #[cfg(feature = "parquet")]
    #[arg(long, default_value = "128MiB", value_parser = parse_size_flag)]
    pub roll_size: u64,
}

/// `archive`: `replay` with its events and decisions written to an archive.
#[cfg(feature = "parquet")]
#[derive(clap::Args, Debug)]
pub struct ArchiveArgs {
    /// Files or directories to read (as `replay` reads them; an archive too).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The archive's directory: created, and it must not hold an archive already.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Rule files or directories [default: rules, in the current directory]
    #[arg(long)]
    pub rules: Vec<PathBuf>,
    /// Also write the decisions here as NDJSON (they always go to the archive).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write rejected records here as NDJSON (origin, reason, detail, the record).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Read every record as this source instead of detecting it per record.
    #[arg(long, value_parser = parse_source)]
    pub source: Option<Source>,
    /// Start a new file when one reaches this size.
    #[arg(long, default_value = "128MiB", value_parser = parse_size_flag)]
    pub roll_size: u64,
    /// No progress line on stderr.
    #[arg(long)]
    pub no_progress: bool,
}

/// `backtest`.
#[derive(clap::Args, Debug)]
pub struct BacktestArgs {
    /// Logs or archives to replay (as `replay` reads them).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The new rule files or directories.
    #[arg(long, required = true)]
    pub rules: Vec<PathBuf>,
    /// The rules to compare with [default: rules, in the current directory]
    #[arg(long)]
    pub baseline: Vec<PathBuf>,
    /// Write the diff as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Exit with status 1 when the new rules kill more than N sessions the baseline did not.
    #[arg(long, value_name = "N")]
    pub max_new_kills: Option<u64>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Read every record as this source instead of detecting it per record.
    #[arg(long, value_parser = parse_source)]
    pub source: Option<Source>,
}

fn backtest_command(args: BacktestArgs) -> Result<i32> {
    use crate::replay::backtest::{self, Diff};
    check_inputs(&args.paths)?;
    let baseline_paths = rule_paths(&args.baseline, "pass the baseline with --baseline DIR")?;
    let baseline = load_rules(&baseline_paths)?;
    let new = load_rules(&rule_paths(&args.rules, "")?)?;
    let options = ReplayOptions {
        normalizer: Normalizer {
            forced: args.source,
            ..Normalizer::default()
        },
        ..ReplayOptions::default()
    };
    let ((before, _), (after, summary)) = backtest::run(
        &args.paths,
        baseline,
        new,
        &args.engine.engine_config()?,
        &options,
    )?;
    let diff = Diff::between(&before, &after);
    let mut out = io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &diff).context("writing the diff")?;
        writeln!(out)?;
    } else {
        write!(out, "{}", diff.render())?;
    }
    out.flush()?;
    eprintln!(
        "backtest: {} events replayed through both rule sets",
        summary.events()
    );
    if let Some(limit) = args.max_new_kills {
        let kills = diff.new_kills();
        if kills > limit {
            eprintln!(
                "sessionguard: the new rules kill {kills} sessions the baseline did not \
                 (--max-new-kills {limit})"
            );
            return Ok(exit::FINDINGS);
        }
    }
    Ok(exit::OK)
}

/// `explain`.
#[cfg(feature = "parquet")]
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// The session key, as decisions name it (`aws:123456789012:sts:ASIA…`).
    pub session: String,
    /// The archive to read.
    #[arg(long, value_name = "DIR", default_value = "archive")]
    pub archive: PathBuf,
    /// Rules whose state on the session is shown as it moved (the session's archived records
    /// replayed through them) [default: rules, when present]
    #[arg(long)]
    pub rules: Vec<PathBuf>,
    /// Also write the story as a self-contained HTML page with a time chart.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `query`.
#[cfg(feature = "history")]
#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// The SQL, or a file holding it (a saved query: queries/*.sql).
    pub sql: String,
    /// The archive to query.
    #[arg(long, value_name = "DIR", default_value = "archive")]
    pub archive: PathBuf,
    /// Query raw logs instead of an archive: files or directories, read and normalized as
    /// `replay` reads them, with the decisions of --rules; the tables are what an archive of
    /// them would hold.
    #[arg(long, value_name = "FILE_OR_DIR", num_args = 1.., conflicts_with = "archive")]
    pub logs: Vec<PathBuf>,
    /// With --logs: the rules whose decisions fill `decisions` [default: rules]
    #[arg(long, requires = "logs")]
    pub rules: Vec<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// How to write the result [default: table on a terminal, csv otherwise]
    #[arg(long, value_enum)]
    pub format: Option<crate::history::query::Format>,
}

#[cfg(feature = "history")]
fn query_command(args: QueryArgs) -> Result<i32> {
    use crate::history::query::{self, Format};
    use std::io::IsTerminal;
    let sql = if args.sql.trim_end().ends_with(".sql") && !args.sql.contains(char::is_whitespace) {
        std::fs::read_to_string(&args.sql).with_context(|| format!("reading {}", args.sql))?
    } else {
        args.sql.clone()
    };
    let stdout = io::stdout();
    let format = args.format.unwrap_or(if stdout.is_terminal() {
        Format::Table
    } else {
        Format::Csv
    });
    let mut out = BufWriter::new(stdout.lock());
    if args.logs.is_empty() {
        query::run(&sql, &args.archive, format, &mut out)?;
    } else {
        let tables = log_tables(&args)?;
        query::run_on_logs(&sql, tables, format, &mut out)?;
    }
    out.flush().context("writing the result")?;
    Ok(exit::OK)
}

/// `query --logs`: the logs replayed (as `replay` reads them) into the tables an archive of
/// them would hold.
#[cfg(feature = "history")]
fn log_tables(args: &QueryArgs) -> Result<crate::history::query::LogTables> {
    use crate::history::query::LogTables;

    /// The replay's records and decisions go into the tables.
    struct Tables(LogTables);

    impl crate::replay::Recorder for Tables {
        fn event(
            &mut self,
            event: &crate::event::Event<'_>,
            origin: (&str, u64),
            bytes: &[u8],
        ) -> io::Result<()> {
            self.0.event(event, origin, bytes).map_err(io::Error::other)
        }

        fn decision(&mut self, decision: &Decision) -> io::Result<()> {
            self.0.decision(decision).map_err(io::Error::other)
        }
    }

    check_inputs(&args.logs)?;
    let rules = load_rules(&rule_paths(&args.rules, "pass another with --rules DIR")?)?;
    let mut engine = Engine::new(rules, args.engine.engine_config()?);
    let options = ReplayOptions {
        progress: false,
        ..ReplayOptions::default()
    };
    let mut tables = Tables(LogTables::default());
    let (summary, _) = replay_recording(
        &args.logs,
        &mut engine,
        &options,
        &mut |_| Ok(()),
        &mut |_, _, _, _| Ok(()),
        Some(&mut tables),
    )?;
    let rejected: u64 = summary.rejects_by_reason.values().sum();
    if rejected > 0 {
        eprintln!(
            "sessionguard: {} did not normalize and are not in `events` (replay --rejects FILE \
             lists them)",
            plural(rejected as usize, "record")
        );
    }
    Ok(tables.0)
}

#[cfg(feature = "parquet")]
fn parse_size_flag(text: &str) -> Result<u64, String> {
    crate::units::parse_size(text)
        .filter(|n| *n >= 1.0)
        .map(|n| n as u64)
        .ok_or_else(|| format!("'{text}' is not a size (e.g. 64MiB, 1GB)"))
}

/// Settings that decide what the engine decides; `replay` and `run` share them.
#[derive(clap::Args, Debug, Clone)]
pub struct EngineArgs {
    /// How much older than its session's newest record a record may arrive and still count,
    /// in event-time order: `20m` for every source, `okta=2m` for one (repeatable). Older ones
    /// are late: not applied, written to --rejects. Timers run this far behind their source.
    #[arg(long, value_name = "[SOURCE=]DURATION", default_value = "20m")]
    pub grace: Vec<String>,
    /// A record this far ahead of every source's newest record is held until a second record
    /// of its source confirms the time; unconfirmed, it is rejected as `future`.
    #[arg(long, default_value = "30m", value_parser = parse_duration_flag)]
    pub max_skew: i64,
    /// A source with no records follows the newest other source this far behind, so its
    /// timers still fire.
    #[arg(long, default_value = "1h", value_parser = parse_duration_flag)]
    pub quiet_source: i64,
    /// Replaced by --grace (records are now ordered per session, without holding decisions).
    #[arg(long, hide = true)]
    pub allowed_lateness: Option<String>,
    /// Forget a session after this long without events (event time).
    #[arg(long, default_value = "12h", value_parser = parse_duration_flag)]
    pub idle_timeout: i64,
    /// `iss` of the CAEP claims in kill decisions.
    #[arg(long, default_value = "urn:sessionguard")]
    pub caep_issuer: String,
    /// Hold at most this many sessions (about 1 KiB each under the shipped pack); beyond it
    /// the session idle longest is evicted, deterministically, and counted.
    #[arg(long, default_value_t = EngineConfig::default().max_sessions)]
    pub max_sessions: usize,
    /// Task grants and completions of autonomous agents: files or directories of `*.yml`,
    /// `*.yaml`, `*.json`, `*.jsonl`, `*.ndjson` task records (docs/agents.md). Repeatable.
    #[arg(long, value_name = "DIR")]
    pub tasks: Vec<PathBuf>,
}

impl EngineArgs {
    pub fn engine_config(&self) -> Result<EngineConfig> {
        if self.allowed_lateness.is_some() {
            bail!(
                "--allowed-lateness is gone: records are ordered per session within --grace \
                 (default 20m), and no decision waits for it (docs/decisions.md, \"Event time\")"
            );
        }
        let mut time = crate::time::TimeConfig {
            max_skew_ms: self.max_skew,
            quiet_source_ms: self.quiet_source,
            ..crate::time::TimeConfig::default()
        };
        for grace in &self.grace {
            time.set_grace(grace)
                .map_err(|e| anyhow::anyhow!("--grace: {e}"))?;
        }
        let tasks = crate::grant::load(&self.tasks).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            anyhow::anyhow!(
                "--tasks: {} not loaded:\n{}",
                plural(errors.len(), "task record problem"),
                lines.join("\n")
            )
        })?;
        Ok(EngineConfig {
            idle_timeout_ms: self.idle_timeout,
            caep_issuer: self.caep_issuer.clone(),
            max_sessions: self.max_sessions,
            time,
            tasks: tasks.into(),
            ..EngineConfig::default()
        })
    }
}

/// `gen`: see docs/gen.md.
#[derive(clap::Args, Debug)]
pub struct GenArgs {
    /// Records to write (attack records included).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Concurrent sessions; sessions end and new ones start, so more are seen over the run.
    #[arg(long, default_value_t = 10_000)]
    pub sessions: u64,
    /// Attacks to inject [default: one per 50 000 records, when the run covers enough event time].
    #[arg(long, conflicts_with = "attack_rate")]
    pub attacks: Option<u64>,
    /// Attacks per million records, instead of --attacks.
    #[arg(long, value_name = "PER_MILLION")]
    pub attack_rate: Option<f64>,
    /// Sources and weights: `cloudtrail,okta` (default weights) or `cloudtrail=5,github=1`.
    #[arg(long, default_value = "cloudtrail=50,okta=20,kubernetes=15,github=15")]
    pub sources: String,
    /// Write here instead of stdout; the ground truth goes to FILE.truth.jsonl.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Ground truth file [default: the --out file with .truth.jsonl appended].
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// gzip the output.
    #[arg(long)]
    pub gzip: bool,
    /// Event time of the first record (RFC 3339).
    #[arg(long, default_value = "2024-11-04T08:00:00Z")]
    pub start: String,
    /// How fast the global event-time clock runs: records per second of event time.
    #[arg(long, default_value_t = 1000.0, value_name = "RATE")]
    pub events_per_second_of_event_time: f64,
    /// Write CloudTrail records in S3 delivery envelopes `{"Records":[…]}`, up to N per line.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "100")]
    pub envelope: Option<usize>,
    /// The order records are written in (docs/gen.md, "Delivery order").
    #[arg(long, value_enum, default_value_t = GenDelivery::Sorted)]
    pub delivery: GenDelivery,
    /// Random seed: the same seed and flags give byte-identical output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Agents bound to task grants: grant every agent the platform runs a task, inject task
    /// agents that leave their grant or outlive their task, and write the grants and
    /// completions to `<out>.tasks.ndjson` (for `replay --tasks`; docs/agents.md).
    #[arg(long)]
    pub agent_tasks: bool,
    /// No summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `gen --delivery`: [`sessionguard_gen::Delivery`] as a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GenDelivery {
    /// By event time: one global clock, rendered time never goes backwards.
    Sorted,
    /// As a SIEM topic receives them: vendor batches, each after its lag (CloudTrail files
    /// 5–20 min late and shuffled inside, Okta polled each minute, Kubernetes webhook
    /// batches each second, GitHub streaming within a minute).
    Realistic,
}

impl GenArgs {
    /// The generator's settings and files these flags ask for.
    pub fn settings(&self) -> Result<(sessionguard_gen::Config, sessionguard_gen::Output)> {
        let start_ms = crate::event::Timestamp::parse(&self.start)
            .with_context(|| format!("--start '{}' is not an RFC 3339 time", self.start))?
            .millis();
        let attacks = match (self.attacks, self.attack_rate) {
            (Some(n), _) => Some(n),
            (None, Some(rate)) => Some((self.events as f64 * rate / 1e6).round() as u64),
            (None, None) => None,
        };
        let cfg = sessionguard_gen::Config {
            events: self.events,
            sessions: self.sessions.max(1),
            attacks,
            weights: sessionguard_gen::parse_sources(&self.sources)?,
            rate: self.events_per_second_of_event_time,
            start_ms,
            seed: self.seed,
            envelope: self.envelope.unwrap_or(0),
            delivery: match self.delivery {
                GenDelivery::Sorted => sessionguard_gen::Delivery::Sorted,
                GenDelivery::Realistic => sessionguard_gen::Delivery::Realistic,
            },
            agent_tasks: self.agent_tasks,
        };
        let output = sessionguard_gen::Output {
            records: self.out.clone(),
            truth: self.truth.clone(),
            gzip: self.gzip,
            quiet: self.quiet,
        };
        Ok((cfg, output))
    }
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Rule files or directories [default: rules, in the current directory]
    pub rules: Vec<PathBuf>,
}

fn parse_duration_flag(text: &str) -> Result<i64, String> {
    parse_duration_ms(text)
        .ok_or_else(|| format!("'{text}' is not a duration (e.g. 500ms, 30s, 5m, 1h)"))
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

/// Exit statuses, one table for every command (README, "Exit status").
pub mod exit {
    /// Done. Also: the reader of standard output went away (`replay … | head`), and `run` or
    /// `rekey` stopped by SIGTERM or SIGINT, which is how a service ends.
    pub const OK: i32 = 0;
    /// `check` found something: a rule file that does not load, or a rule's failing test;
    /// `backtest`: the new rules cross a limit set on the command line (`--max-new-kills`).
    pub const FINDINGS: i32 = 1;
    /// Nothing useful was done: bad arguments, an input path or rules directory that does not
    /// exist, rules that do not load (outside `check`), output that cannot be written, Kafka
    /// settings refused.
    pub const FAILURE: i32 = 2;
    /// `replay` and `normalize` completed, but some input could not be read (the rejects say
    /// which).
    pub const UNREADABLE_INPUT: i32 = 3;
    /// `actuate` settled every decision, but some could not be delivered to a receiver within
    /// its `give_up_after` (its actuation records say which).
    pub const UNDELIVERED: i32 = 4;
    /// `replay` stopped by SIGINT (128 + 2), after the record in hand.
    pub const STOPPED_BY_SIGINT: i32 = 130;
    /// `replay` stopped by SIGTERM (128 + 15), after the record in hand.
    pub const STOPPED_BY_SIGTERM: i32 = 143;
}

/// The exit status of a command's result, and the error line to print, if any. A closed
/// standard output (its reader ended: `| head`) is a quiet, successful end, whatever the
/// command was doing: the reader has what it wanted.
pub fn exit_code(result: Result<i32>) -> (i32, Option<String>) {
    match result {
        Ok(code) => (code, None),
        Err(error) if closed_pipe(&error) => (exit::OK, None),
        Err(error) => (
            exit::FAILURE,
            Some(format!("sessionguard: error: {error:#}")),
        ),
    }
}

fn closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The rule paths a command reads: those given, or the default `rules` in the current
/// directory. A path that does not exist is a usage mistake, reported before anything is read,
/// with a word on where the default came from and how to name another (`how_to_pass`).
fn rule_paths(given: &[PathBuf], how_to_pass: &str) -> Result<Vec<PathBuf>> {
    if given.is_empty() {
        let default = PathBuf::from("rules");
        if !default.exists() {
            let here = std::env::current_dir().map_or_else(
                |_| "the current directory".to_owned(),
                |d| d.display().to_string(),
            );
            bail!(
                "no rules directory: `rules` (the default) does not exist in {here}; {how_to_pass}"
            );
        }
        return Ok(vec![default]);
    }
    for path in given {
        if missing(path) {
            bail!("rules: {}: no such file or directory", path.display());
        }
    }
    Ok(given.to_vec())
}

/// Nothing at `path` (a broken symlink is something: reading it is what fails).
fn missing(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
}

/// Input paths named on the command line must exist (`-` is standard input). What a directory
/// holds is another matter: a bad file in it is an `unreadable` reject, and the run goes on.
fn check_inputs(paths: &[PathBuf]) -> Result<()> {
    for path in paths {
        if path.as_os_str() != "-" && missing(path) {
            bail!("{}: no such file or directory", path.display());
        }
    }
    Ok(())
}

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Normalize(args) => normalize(args),
        Command::Replay(args) => replay_command(args, true),
        #[cfg(feature = "history")]
        Command::Query(args) => query_command(args),
        Command::Backtest(args) => backtest_command(args),
        #[cfg(feature = "parquet")]
        Command::Explain(args) => {
            let mut story = crate::history::explain::story(&args.archive, &args.session)?;
            // Rule states need the rules: those given, else `rules` when it is there.
            let rules = if args.rules.is_empty() && missing(std::path::Path::new("rules")) {
                eprintln!("sessionguard: no rules directory: rule states left out (--rules DIR)");
                None
            } else {
                Some(load_rules(&rule_paths(
                    &args.rules,
                    "pass another with --rules DIR",
                )?)?)
            };
            if let Some(rules) = rules {
                story
                    .replay_states(&args.archive, std::sync::Arc::new(rules))
                    .context("rebuilding the rule states")?;
            }
            if let Some(path) = &args.html {
                std::fs::write(path, crate::history::page::render(&story))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            let mut out = io::stdout().lock();
            out.write_all(story.render().as_bytes())?;
            out.flush()?;
            Ok(exit::OK)
        }
        #[cfg(feature = "parquet")]
        Command::Archive(args) => {
            let printed = args.out.is_some();
            replay_command(
                ReplayArgs {
                    paths: args.paths,
                    rules: args.rules,
                    out: args.out,
                    rejects: args.rejects,
                    engine: args.engine,
                    source: args.source,
                    no_progress: args.no_progress,
                    no_final_timers: false,
                    threads: 1,
                    archive: Some(args.to),
                    roll_size: args.roll_size,
                },
                printed,
            )
        }
        Command::Check(args) => check(args),
        Command::Gen(args) => {
            let (cfg, output) = args.settings()?;
            sessionguard_gen::write(&cfg, &output)?;
            Ok(0)
        }
        #[cfg(feature = "kafka")]
        Command::Run(args) => kafka_command(
            crate::config::Purpose::Run,
            args.layer(),
            args.kafka.config.as_deref(),
            args.null_engine,
            #[cfg(feature = "parquet")]
            args.archive_settings(),
            #[cfg(not(feature = "parquet"))]
            None,
        ),
        #[cfg(feature = "kafka")]
        Command::Rekey(args) => kafka_command(
            crate::config::Purpose::Rekey,
            args.layer(),
            args.kafka.config.as_deref(),
            false,
            None,
        ),
        #[cfg(feature = "kafka")]
        Command::Demo => demo(),
        #[cfg(feature = "actuate")]
        Command::SsfReceiver(args) => {
            crate::actuate::receiver::command(args.listen, &args.jwks, args.token_env.as_deref())?;
            Ok(exit::OK)
        }
        #[cfg(feature = "actuate")]
        Command::Actuate(args) => {
            let input = match args.decisions {
                Some(path) if path.as_os_str() == "-" => crate::actuate::Input::Stdin,
                Some(path) => {
                    check_inputs(std::slice::from_ref(&path))?;
                    crate::actuate::Input::File(path)
                }
                None => crate::actuate::Input::Default,
            };
            let summary = crate::actuate::command(&args.config, input)?;
            Ok(if summary.stopped || summary.failed == 0 {
                exit::OK
            } else {
                // Every decision was settled, but some could not be delivered: the records
                // say which.
                exit::UNDELIVERED
            })
        }
    }
}

#[cfg(feature = "kafka")]
impl KafkaArgs {
    fn layer(&self) -> crate::config::Layer {
        crate::config::Layer {
            brokers: self.brokers.clone(),
            group: self.group.clone(),
            topics: self.topics.clone().map(crate::config::Topics::Text),
            dead_letter_topic: self.dead_letter_topic.clone(),
            source: self.source.clone(),
            metrics_addr: self.metrics_addr.clone(),
            max_events: self.max_events,
            exit_when_idle: self.exit_when_idle.clone(),
            librdkafka: crate::config::Properties(
                self.property
                    .iter()
                    .map(|(k, v)| (k.clone(), crate::config::Scalar::Text(v.clone())))
                    .collect(),
            ),
            ..crate::config::Layer::default()
        }
    }
}

#[cfg(feature = "kafka")]
impl RunArgs {
    fn layer(&self) -> crate::config::Layer {
        crate::config::Layer {
            actions_topic: self.actions_topic.clone(),
            progress_topic: self.progress_topic.clone(),
            tasks_topic: self.tasks_topic.clone(),
            tasks: self.tasks.clone(),
            rules: self.rules.clone(),
            grace: self.grace.clone(),
            max_skew: self.max_skew.clone(),
            idle_timeout: self.idle_timeout.clone(),
            caep_issuer: self.caep_issuer.clone(),
            max_sessions: self.max_sessions,
            ..self.kafka.layer()
        }
    }
}

#[cfg(feature = "kafka")]
impl RekeyArgs {
    fn layer(&self) -> crate::config::Layer {
        crate::config::Layer {
            output_topic: self.output_topic.clone(),
            ..self.kafka.layer()
        }
    }
}

/// `run` and `rekey`: merge flags, environment and file; serve metrics; stop on SIGTERM/SIGINT.
#[cfg(feature = "kafka")]
fn kafka_command(
    purpose: crate::config::Purpose,
    flags: crate::config::Layer,
    config: Option<&std::path::Path>,
    null_engine: bool,
    archive: Option<crate::config::ArchiveSettings>,
) -> Result<i32> {
    use crate::config::librdkafka;
    use crate::config::{Layer, Purpose};
    use crate::kafka::{security, Control, Mode};
    use crate::telemetry::{self, Level, Telemetry};
    use std::sync::Arc;

    if let Some(level) = std::env::var("SESSIONGUARD_LOG")
        .ok()
        .and_then(|l| Level::from_name(&l))
    {
        telemetry::set_log_level(level);
    }
    let file = match config {
        Some(path) => Layer::from_file(path).map_err(anyhow::Error::msg)?,
        None => Layer::default(),
    };
    let mut env = Layer::from_env(&|name| std::env::var(name).ok()).map_err(anyhow::Error::msg)?;
    env.librdkafka = crate::config::Properties(
        librdkafka::from_env(std::env::vars())
            .into_iter()
            .map(|(k, v)| (k, crate::config::Scalar::Text(v)))
            .collect(),
    );
    for (key, value) in &flags.librdkafka.0 {
        let literal =
            !matches!(value, crate::config::Scalar::Text(v) if v.trim().starts_with("${"));
        if librdkafka::is_secret(key) && literal {
            telemetry::log(
                Level::Warn,
                "secret_on_command_line",
                "a secret given with -X is visible to every local user (ps, /proc); use \
                 -X 'KEY=${file:PATH}', -X 'KEY=${env:NAME}' or a SESSIONGUARD_KAFKA_* variable",
                &[("property", telemetry::V::S(key))],
            );
        }
    }
    let rules_given = flags.rules.is_some() || env.rules.is_some() || file.rules.is_some();
    let mut settings = flags
        .over(env.over(file))
        .settings(purpose)
        .map_err(|errors| anyhow::anyhow!("invalid settings:\n{errors}"))?;
    settings.archive = archive;
    // Rules first: a mistake in them is found without waiting for a broker.
    let mode = match purpose {
        Purpose::Run if null_engine => Mode::Null,
        Purpose::Run => {
            let given = if rules_given {
                settings.rules.clone()
            } else {
                Vec::new()
            };
            let paths = rule_paths(
                &given,
                "pass another with --rules DIR (or SESSIONGUARD_RULES, or `rules` in --config)",
            )?;
            Mode::Evaluate(Arc::new(load_rules(&paths)?))
        }
        Purpose::Rekey => Mode::Rekey,
    };
    security::log_warnings(&librdkafka::check(&settings.librdkafka));
    security::preflight(&settings)?;
    let control = Control::new();
    for signal in [SIGTERM, SIGINT] {
        signal_hook::flag::register(signal, control.stop_flag())
            .context("installing the signal handler")?;
    }
    let telemetry = Telemetry::new();
    let http_stop = Arc::new(AtomicBool::new(false));
    if let Some(addr) = settings.metrics_addr {
        let bound = telemetry::serve(addr, telemetry.clone(), http_stop.clone())
            .with_context(|| format!("serving metrics on {addr}"))?;
        let text = bound.to_string();
        telemetry::log(
            Level::Info,
            "metrics_serving",
            "serving /metrics, /healthz, /readyz",
            &[("addr", telemetry::V::S(&text))],
        );
    }
    let summary = crate::kafka::run(mode, &settings, &control, telemetry.clone());
    http_stop.store(true, Ordering::Relaxed);
    let summary = summary?;
    eprintln!(
        "records {} (rebuild {}), events {}, rejected {}, late {}, decisions {}, dead letters {}, rekeyed {}",
        summary.records,
        summary.replayed,
        summary.events,
        summary.rejects.values().sum::<u64>(),
        summary.late,
        summary.decisions,
        summary.dead_letters,
        summary.rekeyed
    );
    // A stop by SIGTERM or SIGINT is how a service ends: 0, unlike `replay` (`exit`).
    Ok(exit::OK)
}

#[cfg(feature = "kafka")]
fn demo() -> Result<i32> {
    use crate::telemetry::{self, Level};
    telemetry::set_log_level(
        std::env::var("SESSIONGUARD_LOG")
            .ok()
            .and_then(|l| Level::from_name(&l))
            .unwrap_or(Level::Error),
    );
    let root = std::env::current_dir().context("reading the current directory")?;
    let report = crate::kafka::demo::run_demo(&root)?;
    let mut out = io::stdout().lock();
    out.write_all(report.render(crate::kafka::demo::output_width()).as_bytes())?;
    out.flush()?;
    Ok(exit::OK)
}

/// Counts shown in the summary of a normalize run.
#[derive(Default)]
pub struct NormalizeSummary {
    pub events_by_source: BTreeMap<Source, u64>,
    pub rejects_by_reason: BTreeMap<RejectReason, u64>,
    pub sessions: HashSet<String>,
}

/// `normalize` over the spans of one OpenTelemetry export (crate::event::otel::split_export),
/// each written as its own event or reject, with the export's line.
fn normalize_parts(
    normalizer: &Normalizer,
    parts: &[Vec<u8>],
    (name, line): (&str, u64),
    (summary, rejects, out): (
        &mut NormalizeSummary,
        &mut NormalizeRejects,
        &mut impl Write,
    ),
    quiet: bool,
) -> io::Result<()> {
    let scratch = Bump::new();
    for part in parts {
        match normalizer.normalize(part, &scratch) {
            Ok(event) => {
                *summary.events_by_source.entry(event.source).or_default() += 1;
                summary.sessions.insert(event.session.key.to_string());
                if !quiet {
                    serde_json::to_writer(&mut *out, &event).map_err(io::Error::from)?;
                    out.write_all(b"\n")?;
                }
            }
            Err(reject) => rejects.note(summary, name, line, &reject, part)?,
        }
    }
    Ok(())
}

fn normalize(args: NormalizeArgs) -> Result<i32> {
    let normalizer = Normalizer {
        forced: args.source,
        max_record_bytes: args.max_record_bytes,
        ..Normalizer::default()
    };
    check_inputs(&args.paths)?;
    let file::Expanded { files, skipped } = file::expand(&args.paths);
    if files.is_empty() && skipped.is_empty() {
        bail!("no input files found under the given paths");
    }
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let rejects_out = match &args.rejects {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    let mut summary = NormalizeSummary::default();
    let mut rejects = NormalizeRejects {
        out: rejects_out,
        shown: 0,
    };
    let mut scratch = Bump::new();
    let mut write_error: Option<io::Error> = None;
    let unreadable = |detail: String| Reject::new(RejectReason::Unreadable, detail);
    // What a directory walk left out comes first, as rejects of its own.
    for (path, why) in &skipped {
        let name = path.display().to_string();
        let reject = unreadable(format!("skipped: {why}"));
        rejects
            .note(&mut summary, &name, 0, &reject, &[])
            .context("writing rejects")?;
    }
    for path in &files {
        let name = path.display().to_string();
        let reader = match file::open_records(path) {
            Ok(reader) => reader,
            Err(e) => {
                let reject = unreadable(format!("opening the file: {e}"));
                rejects
                    .note(&mut summary, &name, 0, &reject, &[])
                    .context("writing rejects")?;
                continue;
            }
        };
        let mut last_line = 0;
        let read = reader.frame(args.max_record_bytes, &mut |item| {
            let (line, result) = match item {
                Item::Record { bytes, line } => {
                    // An OpenTelemetry export of several spans: one event per span, as
                    // replay and run read it (crate::event::otel).
                    if let Some(parts) = crate::event::otel::split_export(bytes) {
                        last_line = line;
                        let at = (name.as_str(), line);
                        let sinks = (&mut summary, &mut rejects, &mut out);
                        let written = normalize_parts(&normalizer, &parts, at, sinks, args.quiet);
                        return match written {
                            Ok(()) => ControlFlow::Continue(()),
                            Err(e) => {
                                write_error.get_or_insert(e);
                                ControlFlow::Break(())
                            }
                        };
                    }
                    scratch.reset();
                    (
                        line,
                        normalizer
                            .normalize(bytes, &scratch)
                            .map_err(|r| (r, bytes)),
                    )
                }
                Item::Broken {
                    line,
                    reject,
                    bytes,
                } => (line, Err((reject, bytes))),
            };
            last_line = line;
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
                Err((reject, bytes)) => rejects.note(&mut summary, &name, line, &reject, bytes),
            };
            match written {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    write_error.get_or_insert(e);
                    ControlFlow::Break(())
                }
            }
        });
        if let Some(e) = write_error.take() {
            // A closed standard output ends quietly with 0 (`exit_code`).
            return Err(e).context("writing output");
        }
        if let Err(e) = read {
            let reject = unreadable(format!(
                "reading stopped after line {last_line}: {e}; the records before it were kept"
            ));
            rejects
                .note(&mut summary, &name, last_line, &reject, &[])
                .context("writing rejects")?;
        }
    }
    out.flush().context("writing output")?;
    if let Some(w) = rejects.out.as_mut() {
        w.flush().context("writing rejects")?;
    }
    let rejected: u64 = summary.rejects_by_reason.values().sum();
    if rejected > rejects.shown {
        eprintln!("… {} more rejects not shown", rejected - rejects.shown);
    }
    eprint!("{}", render_summary(&summary, files.len()));
    // As `replay`: completed, but some input could not be read.
    Ok(
        if summary
            .rejects_by_reason
            .contains_key(&RejectReason::Unreadable)
        {
            exit::UNREADABLE_INPUT
        } else {
            exit::OK
        },
    )
}

/// Where `normalize` reports rejects: the first 20 on stderr, all in `--rejects`.
struct NormalizeRejects {
    out: Option<BufWriter<File>>,
    shown: u64,
}

impl NormalizeRejects {
    fn note(
        &mut self,
        summary: &mut NormalizeSummary,
        name: &str,
        line: u64,
        reject: &Reject,
        bytes: &[u8],
    ) -> io::Result<()> {
        *summary.rejects_by_reason.entry(reject.reason).or_default() += 1;
        if self.shown < 20 {
            eprintln!("{name}:{line}: rejected: {reject}");
            self.shown += 1;
        }
        match self.out.as_mut() {
            Some(w) => write_dead_letter(w, name, line, reject, bytes),
            None => Ok(()),
        }
    }
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

fn load_rules(paths: &[PathBuf]) -> Result<RuleSet> {
    RuleSet::load(paths).map_err(|errors| {
        eprintln!("{errors}");
        anyhow::anyhow!(
            "the rules did not load ({}; listed above)",
            plural(errors.errors.len(), "error")
        )
    })
}

/// `replay` (and `archive`): decisions to `--out`, else to standard output when
/// `print_decisions`.
fn replay_command(args: ReplayArgs, print_decisions: bool) -> Result<i32> {
    check_inputs(&args.paths)?;
    let rules = load_rules(&rule_paths(&args.rules, "pass another with --rules DIR")?)?;
    let options = ReplayOptions {
        normalizer: Normalizer {
            forced: args.source,
            ..Normalizer::default()
        },
        progress: !args.no_progress,
        end_of_input: !args.no_final_timers,
        stop: Arc::default(),
    };
    // SIGTERM or SIGINT: stop reading after the record in hand, write what was decided, print
    // the summary. A second signal ends the process at once (an idle pipe never yields a next
    // record to stop after).
    let terminated = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&options.stop))
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&options.stop)))
            .context("installing the signal handler")?;
    }
    signal_hook::flag::register(SIGTERM, Arc::clone(&terminated))
        .context("installing the signal handler")?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None if print_decisions => Box::new(BufWriter::new(io::stdout().lock())),
        None => Box::new(io::sink()),
    };
    let mut rejects_out = match &args.rejects {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    // Each decision is written out whole as it is made, not when a buffer fills: a process
    // killed at any moment leaves complete lines, every decision taken before the last one
    // written, and a live stream (`-`) is followed without delay. Decisions are few beside
    // the records, so the write per decision costs nothing measurable.
    let mut on_decision = |decision: &Decision| {
        write_decision(&mut out, decision)?;
        out.flush()
    };
    let mut on_reject =
        |file: &str, line: u64, reject: &Reject, bytes: &[u8]| match rejects_out.as_mut() {
            Some(w) => write_dead_letter(w, file, line, reject, bytes),
            None => Ok(()),
        };
    // A correlation's groups span sessions, and shards split sessions: with correlations, one
    // engine evaluates everything, so the decisions are those of one thread.
    let threads = if args.threads > 1 && rules.has_correlations() {
        eprintln!(
            "sessionguard: the rules include Sigma correlations, whose groups span sessions: \
             evaluating on one engine (--threads {} ignored)",
            args.threads
        );
        1
    } else {
        args.threads
    };
    #[cfg(feature = "parquet")]
    let (threads, mut archive) = archive::open(&args, threads, &options.normalizer)?;
    let summary = if threads > 1 {
        replay_sharded(
            &args.paths,
            Arc::new(rules),
            args.engine.engine_config()?,
            threads.into(),
            &options,
            &mut on_decision,
            &mut on_reject,
        )?
    } else {
        let mut engine = Engine::new(rules, args.engine.engine_config()?);
        #[cfg(feature = "parquet")]
        let recorder = archive
            .as_mut()
            .map(|(_, w)| w as &mut dyn crate::replay::Recorder);
        #[cfg(not(feature = "parquet"))]
        let recorder = None;
        let (summary, names) = replay_recording(
            &args.paths,
            &mut engine,
            &options,
            &mut on_decision,
            &mut on_reject,
            recorder,
        )?;
        #[cfg(feature = "parquet")]
        archive::close(archive, names)?;
        #[cfg(not(feature = "parquet"))]
        let _ = names;
        summary
    };
    out.flush().context("writing decisions")?;
    if let Some(w) = rejects_out.as_mut() {
        w.flush().context("writing rejects")?;
    }
    let summary = ReplaySummary {
        peak_memory_kib: peak_memory_kib(),
        ..summary
    };
    eprint!("{}", summary.render());
    if summary.stopped_at.is_some() {
        return Ok(if terminated.load(Ordering::Relaxed) {
            exit::STOPPED_BY_SIGTERM
        } else {
            exit::STOPPED_BY_SIGINT
        });
    }
    // Completed, but some input could not be read (reported as `unreadable` rejects): a status
    // of its own, so scripts can tell it from success (0) and from failure (2).
    let unreadable = summary
        .rejects_by_reason
        .get(&RejectReason::Unreadable)
        .copied()
        .unwrap_or(0);
    if unreadable > 0 {
        eprintln!(
            "sessionguard: completed with {}; see the rejects (exit status 3)",
            plural(unreadable as usize, "unreadable input")
        );
        return Ok(exit::UNREADABLE_INPUT);
    }
    Ok(exit::OK)
}

/// `replay --archive` and `archive`: the archive written beside the decisions.
#[cfg(feature = "parquet")]
mod archive {
    use std::path::PathBuf;

    use anyhow::{Context, Result};

    use super::ReplayArgs;
    use crate::decision::Decision;
    use crate::event::{Event, Normalizer};
    use crate::history::{is_archive, ArchiveWriter};
    use crate::replay::Recorder;

    /// What a replay records goes into the archive (history does not know replay: replay
    /// reads archives).
    pub(super) struct Archiving(pub ArchiveWriter);

    impl Recorder for Archiving {
        fn event(
            &mut self,
            event: &Event<'_>,
            origin: (&str, u64),
            bytes: &[u8],
        ) -> std::io::Result<()> {
            self.0.event(event, origin, bytes)
        }

        fn decision(&mut self, decision: &Decision) -> std::io::Result<()> {
            self.0.decision(decision)
        }
    }

    /// The archive `args` ask for, opened, and the engine threads to use: one when archiving
    /// or reading an archive (the archive keeps the order one engine reads in).
    pub(super) fn open(
        args: &ReplayArgs,
        threads: u16,
        normalizer: &Normalizer,
    ) -> Result<(u16, Option<(PathBuf, Archiving)>)> {
        let reads_archive = args.paths.iter().any(|p| is_archive(p));
        let threads = if threads > 1 && (args.archive.is_some() || reads_archive) {
            eprintln!(
                "sessionguard: archives are written and read in the order one engine reads: \
                 evaluating on one engine (--threads {threads} ignored)"
            );
            1
        } else {
            threads
        };
        let Some(dir) = &args.archive else {
            return Ok((threads, None));
        };
        let writer = ArchiveWriter::create(dir, args.roll_size, normalizer.clone())
            .with_context(|| format!("creating the archive in {}", dir.display()))?;
        Ok((threads, Some((dir.clone(), Archiving(writer)))))
    }

    /// Closes the archive, writes its manifest and says what it holds.
    pub(super) fn close(
        archive: Option<(PathBuf, Archiving)>,
        origin_files: Vec<String>,
    ) -> Result<()> {
        let Some((dir, Archiving(writer))) = archive else {
            return Ok(());
        };
        let manifest = writer
            .finish(origin_files)
            .with_context(|| format!("writing the archive in {}", dir.display()))?;
        let bytes = crate::history::read::archive_bytes(&dir, &manifest);
        eprintln!(
            "archived {} events and {} decisions in {} ({:.1} MiB) to {}",
            manifest.events,
            manifest.decisions,
            crate::units::plural(manifest.files.len(), "Parquet file"),
            bytes as f64 / (1 << 20) as f64,
            dir.display()
        );
        Ok(())
    }
}

/// Lints the rules (any load error fails), then runs each rule's inline tests with only that
/// rule loaded, so another rule's kill cannot mask it. The results — each failing test, then
/// the summary line — go to standard output; why the rules did not load goes to standard error.
fn check(args: CheckArgs) -> Result<i32> {
    let paths = rule_paths(&args.rules, "pass another as `sessionguard check DIR`")?;
    let rules = match RuleSet::load(&paths) {
        Ok(rules) => rules,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{}; no rule was loaded",
                plural(errors.errors.len(), "error")
            );
            return Ok(exit::FINDINGS);
        }
    };
    // The status says how the tests went even when nobody reads their report: a closed
    // standard output stops the report, not the tests.
    let mut out = Report {
        out: io::stdout().lock(),
        closed: false,
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    for (index, rule) in rules.rules.iter().enumerate() {
        for test in &rule.tests {
            let location = format!("{}:{}", rule.file.display(), test.line);
            match run_rule_test(&rules, index, test) {
                Ok(problems) if problems.is_empty() => passed += 1,
                Ok(problems) => {
                    failed += 1;
                    for problem in problems {
                        out.line(format_args!(
                            "{location}: rule {} test '{}': {problem}",
                            rule.id, test.name
                        ))?;
                    }
                }
                Err(e) => {
                    failed += 1;
                    out.line(format_args!(
                        "{location}: rule {} test '{}': {e:#}",
                        rule.id, test.name
                    ))?;
                }
            }
        }
    }
    out.line(format_args!(
        "{} loaded; {passed} passed, {failed} failed",
        plural(rules.rules.len(), "rule")
    ))?;
    Ok(if failed == 0 {
        exit::OK
    } else {
        exit::FINDINGS
    })
}

/// Lines to standard output that stop, quietly, once its reader is gone.
struct Report<W: Write> {
    out: W,
    closed: bool,
}

impl<W: Write> Report<W> {
    fn line(&mut self, text: std::fmt::Arguments<'_>) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match writeln!(self.out, "{text}").and_then(|()| self.out.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

/// Replays one inline test's events with only its rule loaded (a correlation: with the rules
/// it refers to); returns how the outcome differs from what the test expects (empty: it
/// passed). Rejected records count against the test unless it expects them (`rejects: N`).
fn run_rule_test(rules: &RuleSet, index: usize, test: &RuleTest) -> Result<Vec<String>> {
    let rule = &rules.rules[index];
    let mut engine = Engine::new(rules.subset(index), EngineConfig::default());
    // (line of the last evidence record, session, rule) of every decision, in order.
    let mut decisions: Vec<(u64, String, String)> = Vec::new();
    let mut rejects: Vec<String> = Vec::new();
    replay(
        std::slice::from_ref(&test.events),
        &mut engine,
        &ReplayOptions::default(),
        &mut |d| {
            let line = d
                .evidence
                .events
                .iter()
                .filter_map(|e| match e.origin {
                    EvidenceOrigin::File { line, .. } => Some(line),
                    EvidenceOrigin::Kafka { .. } => None,
                })
                .max()
                .unwrap_or(0);
            decisions.push((line, d.session.key.clone(), d.rule.id.clone()));
            Ok(())
        },
        &mut |file, line, reject, _| {
            rejects.push(format!("{file}:{line}: {}", reject.reason));
            Ok(())
        },
    )?;
    let mut problems = Vec::new();
    if rejects.len() as u64 != test.rejects {
        let shown: Vec<&str> = rejects.iter().take(3).map(String::as_str).collect();
        problems.push(format!(
            "expected {} rejected record(s), got {}{}",
            test.rejects,
            rejects.len(),
            if shown.is_empty() {
                String::new()
            } else {
                format!(
                    " ({}{})",
                    shown.join("; "),
                    if rejects.len() > 3 { "; …" } else { "" }
                )
            }
        ));
    }
    match &test.expect {
        TestExpect::Count(want) => {
            let got = decisions.iter().filter(|(_, _, r)| *r == rule.id).count();
            if got != *want {
                problems.push(format!("expected {want} decision(s), got {got}"));
            }
        }
        TestExpect::Decisions(want) => {
            let want: Vec<(u64, &str, &str)> = want
                .iter()
                .map(|w| {
                    (
                        w.line,
                        w.session.as_str(),
                        w.rule.as_deref().unwrap_or(&rule.id),
                    )
                })
                .collect();
            let got: Vec<(u64, &str, &str)> = decisions
                .iter()
                .map(|(l, s, r)| (*l, s.as_str(), r.as_str()))
                .collect();
            if want != got {
                let list = |ds: &[(u64, &str, &str)]| {
                    ds.iter()
                        .map(|(l, s, r)| format!("\n    line {l}, {s}, {r}"))
                        .collect::<String>()
                };
                problems.push(format!(
                    "expected {} decision(s):{}\n  got {}:{}",
                    want.len(),
                    list(&want),
                    got.len(),
                    list(&got)
                ));
            }
        }
    }
    Ok(problems)
}
