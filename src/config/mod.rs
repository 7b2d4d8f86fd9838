//! Settings of the Kafka commands (`run`, `rekey`): a config file, environment variables and
//! flags, merged and validated into one [`Settings`].
//!
//! Precedence: flags over environment (`SESSIONGUARD_BROKERS`, `SESSIONGUARD_GROUP`, …) over
//! the file. The file is YAML (JSON is YAML too), read with serde-saphyr, which the rule loader
//! already uses — no second format parser. Its keys are the flags' names with `_` or `-`:
//!
//! ```yaml
//! brokers: 127.0.0.1:9092
//! group: sessionguard
//! topics: [audit.cloudtrail, audit.okta]   # or "a,b"
//! actions_topic: sessionguard.actions
//! dead_letter_topic: sessionguard.dead-letters
//! progress_topic: sessionguard.progress
//! tasks_topic: agents.tasks    # task grants and completions (docs/agents.md)
//! tasks: [tasks]               # task grant files, applied before the topic's records
//! rules: [rules]
//! metrics_addr: 127.0.0.1:9464
//! grace: 20m,okta=2m         # per session order; timers trail their source by it
//! max_skew: 30m
//! idle_timeout: 12h
//! max_sessions: 4000000   # per input partition
//! librdkafka:                  # any librdkafka property; see docs/kafka.md for TLS and SASL
//!   security.protocol: sasl_ssl
//!   sasl.mechanism: SCRAM-SHA-512
//!   sasl.username: sessionguard
//!   sasl.password: ${file:/run/secrets/kafka-password}   # or ${env:NAME}
//! ```
//!
//! librdkafka properties also come from `SESSIONGUARD_KAFKA_*` variables
//! (`SESSIONGUARD_KAFKA_SASL_PASSWORD` is `sasl.password`), between the file and `-X`. Secret
//! values are resolved here and redacted wherever settings are shown
//! ([`librdkafka`]).
//!
//! The text form ([`Layer`]) only mirrors what was written; [`Layer::settings`] checks
//! everything, collects every problem, and returns the built form or all the errors at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::event::Source;
use crate::units::parse_duration_ms;

pub mod librdkafka;

/// Which command the settings are for: each requires different topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Run,
    Rekey,
}

/// One layer of settings as written (file, environment or flags); everything optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub brokers: Option<String>,
    pub group: Option<String>,
    pub topics: Option<Topics>,
    #[serde(alias = "actions-topic")]
    pub actions_topic: Option<String>,
    #[serde(alias = "dead-letter-topic")]
    pub dead_letter_topic: Option<String>,
    #[serde(alias = "progress-topic")]
    pub progress_topic: Option<String>,
    #[serde(alias = "tasks-topic")]
    pub tasks_topic: Option<String>,
    pub tasks: Option<Vec<String>>,
    #[serde(alias = "output-topic")]
    pub output_topic: Option<String>,
    pub rules: Option<Vec<String>>,
    pub source: Option<String>,
    #[serde(alias = "metrics-addr")]
    pub metrics_addr: Option<String>,
    #[serde(alias = "max-events")]
    pub max_events: Option<u64>,
    #[serde(alias = "exit-when-idle")]
    pub exit_when_idle: Option<String>,
    /// Gone: replaced by `grace` (reported as an error when set).
    #[serde(alias = "allowed-lateness")]
    pub allowed_lateness: Option<String>,
    pub grace: Option<String>,
    #[serde(alias = "max-skew")]
    pub max_skew: Option<String>,
    #[serde(alias = "idle-timeout")]
    pub idle_timeout: Option<String>,
    #[serde(alias = "caep-issuer")]
    pub caep_issuer: Option<String>,
    #[serde(alias = "max-sessions")]
    pub max_sessions: Option<u64>,
    /// librdkafka properties passed through (values may be `${file:PATH}` or `${env:NAME}`).
    #[serde(default)]
    pub librdkafka: Properties,
}

/// librdkafka properties as written; `Debug` redacts the secrets among them.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Properties(pub BTreeMap<String, Scalar>);

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let text = v.text();
                (k.clone(), librdkafka::shown(k, &text).to_owned())
            }))
            .finish()
    }
}

/// Topics as a list or as one comma-separated string.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Topics {
    List(Vec<String>),
    Text(String),
}

impl Topics {
    fn names(&self) -> Vec<String> {
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        };
        match self {
            Topics::List(list) => list.iter().flat_map(|t| split(t)).collect(),
            Topics::Text(text) => split(text),
        }
    }
}

/// A librdkafka property value as YAML writes it (`1000`, `true`, `ssl`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(x) => x.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

/// Validated settings of `run` and `rekey`. `Debug` redacts secret librdkafka properties.
#[derive(Clone)]
pub struct Settings {
    pub brokers: String,
    pub group: String,
    pub topics: Vec<String>,
    /// `run`: where decisions go.
    pub actions_topic: String,
    /// Rejected records; `rekey` may go without (rejects are then only counted and logged).
    pub dead_letter_topic: Option<String>,
    /// `run`: the compacted topic of rebuild positions.
    pub progress_topic: Option<String>,
    /// `run`: task grants and completions of agents, read whole by every instance.
    pub tasks_topic: Option<String>,
    /// `run`: task grant files, applied before the tasks topic's records.
    pub tasks: Vec<PathBuf>,
    /// `rekey`: the session-keyed topic.
    pub output_topic: String,
    pub rules: Vec<PathBuf>,
    pub source: Option<Source>,
    pub metrics_addr: Option<SocketAddr>,
    /// librdkafka properties (`-X key=value`), applied after sessionguard's defaults; secret
    /// references already resolved, so never print these without
    /// `librdkafka::shown`.
    pub librdkafka: Vec<(String, String)>,
    pub max_events: Option<u64>,
    pub exit_when_idle: Option<Duration>,
    /// Graces, the future bound, quiet sources.
    pub time: crate::time::TimeConfig,
    pub idle_timeout_ms: i64,
    pub caep_issuer: String,
    /// Sessions held per input partition (each partition has its own engine).
    pub max_sessions: usize,
    /// `run --archive`: where the events and decisions are archived, and how files roll.
    pub archive: Option<ArchiveSettings>,
}

/// `run --archive DIR`: the archive `run` writes beside its decisions (docs/history.md).
#[derive(Clone, Debug, PartialEq)]
pub struct ArchiveSettings {
    pub dir: PathBuf,
    /// A file is closed when it reaches this size…
    pub roll_bytes: u64,
    /// …or when it has been open this long (wall clock), whichever comes first.
    pub roll_interval: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let librdkafka: Vec<(&str, &str)> = self
            .librdkafka
            .iter()
            .map(|(k, v)| (k.as_str(), librdkafka::shown(k, v)))
            .collect();
        f.debug_struct("Settings")
            .field("brokers", &self.brokers)
            .field("group", &self.group)
            .field("topics", &self.topics)
            .field("actions_topic", &self.actions_topic)
            .field("dead_letter_topic", &self.dead_letter_topic)
            .field("progress_topic", &self.progress_topic)
            .field("tasks_topic", &self.tasks_topic)
            .field("tasks", &self.tasks)
            .field("output_topic", &self.output_topic)
            .field("rules", &self.rules)
            .field("source", &self.source)
            .field("metrics_addr", &self.metrics_addr)
            .field("librdkafka", &librdkafka)
            .field("max_events", &self.max_events)
            .field("exit_when_idle", &self.exit_when_idle)
            .field("time", &self.time)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("caep_issuer", &self.caep_issuer)
            .field("max_sessions", &self.max_sessions)
            .field("archive", &self.archive)
            .finish()
    }
}

impl Layer {
    /// Reads a YAML (or JSON) config file.
    pub fn from_file(path: &Path) -> Result<Layer, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the config file: {e}", path.display()))?;
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The `SESSIONGUARD_*` variables that are set, read through `var`.
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Layer, String> {
        let get = |name: &str| var(&format!("SESSIONGUARD_{name}")).filter(|v| !v.is_empty());
        let max_events =
            match get("MAX_EVENTS") {
                None => None,
                Some(text) => Some(text.trim().parse::<u64>().map_err(|_| {
                    format!("SESSIONGUARD_MAX_EVENTS: '{text}' is not a whole number")
                })?),
            };
        let max_sessions = match get("MAX_SESSIONS") {
            None => None,
            Some(text) => Some(text.trim().parse::<u64>().map_err(|_| {
                format!("SESSIONGUARD_MAX_SESSIONS: '{text}' is not a whole number")
            })?),
        };
        Ok(Layer {
            brokers: get("BROKERS"),
            group: get("GROUP"),
            topics: get("TOPICS").map(Topics::Text),
            actions_topic: get("ACTIONS_TOPIC"),
            dead_letter_topic: get("DEAD_LETTER_TOPIC"),
            progress_topic: get("PROGRESS_TOPIC"),
            tasks_topic: get("TASKS_TOPIC"),
            tasks: get("TASKS").map(|r| r.split(',').map(|s| s.trim().to_owned()).collect()),
            output_topic: get("OUTPUT_TOPIC"),
            rules: get("RULES").map(|r| r.split(',').map(|s| s.trim().to_owned()).collect()),
            source: get("SOURCE"),
            metrics_addr: get("METRICS_ADDR"),
            max_events,
            exit_when_idle: get("EXIT_WHEN_IDLE"),
            allowed_lateness: get("ALLOWED_LATENESS"),
            grace: get("GRACE"),
            max_skew: get("MAX_SKEW"),
            idle_timeout: get("IDLE_TIMEOUT"),
            caep_issuer: get("CAEP_ISSUER"),
            max_sessions,
            librdkafka: Properties::default(),
        })
    }

    /// `self` over `lower`: every setting of `self` wins; librdkafka maps are merged.
    pub fn over(self, lower: Layer) -> Layer {
        let mut librdkafka = lower.librdkafka;
        librdkafka.0.extend(self.librdkafka.0);
        Layer {
            brokers: self.brokers.or(lower.brokers),
            group: self.group.or(lower.group),
            topics: self.topics.or(lower.topics),
            actions_topic: self.actions_topic.or(lower.actions_topic),
            dead_letter_topic: self.dead_letter_topic.or(lower.dead_letter_topic),
            progress_topic: self.progress_topic.or(lower.progress_topic),
            tasks_topic: self.tasks_topic.or(lower.tasks_topic),
            tasks: self.tasks.or(lower.tasks),
            output_topic: self.output_topic.or(lower.output_topic),
            rules: self.rules.or(lower.rules),
            source: self.source.or(lower.source),
            metrics_addr: self.metrics_addr.or(lower.metrics_addr),
            max_events: self.max_events.or(lower.max_events),
            exit_when_idle: self.exit_when_idle.or(lower.exit_when_idle),
            allowed_lateness: self.allowed_lateness.or(lower.allowed_lateness),
            grace: self.grace.or(lower.grace),
            max_skew: self.max_skew.or(lower.max_skew),
            idle_timeout: self.idle_timeout.or(lower.idle_timeout),
            caep_issuer: self.caep_issuer.or(lower.caep_issuer),
            max_sessions: self.max_sessions.or(lower.max_sessions),
            librdkafka,
        }
    }

    /// Checks the merged settings for `purpose`; every problem is reported, one per line.
    pub fn settings(self, purpose: Purpose) -> Result<Settings, String> {
        let mut errors: Vec<String> = Vec::new();
        let mut required = |value: Option<String>, flag: &str, env: &str| -> String {
            match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
                Some(v) => v,
                None => {
                    errors.push(format!(
                        "--{flag} is required (or SESSIONGUARD_{env}, or `{}` in --config)",
                        flag.replace('-', "_")
                    ));
                    String::new()
                }
            }
        };
        let brokers = required(self.brokers, "brokers", "BROKERS");
        let group = required(self.group, "group", "GROUP");
        let topics = self.topics.map(|t| t.names()).unwrap_or_default();
        let (actions_topic, output_topic) = match purpose {
            Purpose::Run => (
                required(self.actions_topic, "actions-topic", "ACTIONS_TOPIC"),
                String::new(),
            ),
            Purpose::Rekey => (
                String::new(),
                required(self.output_topic, "output-topic", "OUTPUT_TOPIC"),
            ),
        };
        let dead_letter_topic = match purpose {
            Purpose::Run => Some(required(
                self.dead_letter_topic,
                "dead-letter-topic",
                "DEAD_LETTER_TOPIC",
            )),
            Purpose::Rekey => self.dead_letter_topic.filter(|t| !t.trim().is_empty()),
        };
        if topics.is_empty() {
            errors.push(
                "--topics is required: one or more input topics, comma-separated (or SESSIONGUARD_TOPICS)"
                    .to_owned(),
            );
        }
        let outputs: Vec<&str> = [
            Some(actions_topic.as_str()),
            Some(output_topic.as_str()),
            dead_letter_topic.as_deref(),
            self.progress_topic.as_deref(),
            self.tasks_topic.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|t| !t.is_empty())
        .collect();
        for t in &topics {
            if outputs.contains(&t.as_str()) {
                errors.push(format!(
                    "topic '{t}' is both an input and an output; that would feed the output back in"
                ));
            }
        }
        let source = self
            .source
            .as_deref()
            .and_then(|name| source_named(name, &mut errors));
        let metrics_addr = self
            .metrics_addr
            .as_deref()
            .and_then(|text| metrics_addr(text, &mut errors));
        let mut duration = |value: Option<String>, flag: &str, default: i64| -> i64 {
            match value {
                None => default,
                Some(text) => parse_duration_ms(&text).unwrap_or_else(|| {
                    errors.push(format!(
                        "--{flag}: '{text}' is not a duration (e.g. 500ms, 30s, 5m, 1h)"
                    ));
                    default
                }),
            }
        };
        let idle_timeout_ms = duration(self.idle_timeout, "idle-timeout", 12 * 3_600_000);
        let exit_when_idle = self
            .exit_when_idle
            .map(|t| duration(Some(t), "exit-when-idle", 0))
            .map(|ms| Duration::from_millis(ms.max(0) as u64));
        let mut time = crate::time::TimeConfig::default();
        time.max_skew_ms = duration(self.max_skew, "max-skew", time.max_skew_ms);
        if self.allowed_lateness.is_some() {
            errors.push(
                "allowed-lateness is gone: records are ordered per session within `grace` \
                 (default 20m), and no decision waits for it"
                    .to_owned(),
            );
        }
        for part in self.grace.iter().flat_map(|g| g.split(',')) {
            if let Err(e) = time.set_grace(part) {
                errors.push(format!("--grace: {e}"));
            }
        }
        if idle_timeout_ms <= 0 {
            errors.push("--idle-timeout must be longer than 0".to_owned());
        }
        if self.max_sessions == Some(0) {
            errors.push("--max-sessions must be at least 1".to_owned());
        }
        if self.max_events == Some(0) {
            errors.push("--max-events must be at least 1".to_owned());
        }
        let librdkafka = self.librdkafka.resolved(&mut errors);
        if !errors.is_empty() {
            return Err(errors.join("\n"));
        }
        Ok(Settings {
            brokers,
            group,
            topics,
            actions_topic,
            dead_letter_topic,
            progress_topic: self.progress_topic.filter(|t| !t.trim().is_empty()),
            tasks_topic: self.tasks_topic.filter(|t| !t.trim().is_empty()),
            tasks: self
                .tasks
                .unwrap_or_default()
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            output_topic,
            rules: self
                .rules
                .unwrap_or_else(|| vec!["rules".to_owned()])
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            source,
            metrics_addr,
            librdkafka,
            max_events: self.max_events,
            exit_when_idle,
            time,
            idle_timeout_ms,
            caep_issuer: self
                .caep_issuer
                .unwrap_or_else(|| "urn:sessionguard".to_owned()),
            max_sessions: self
                .max_sessions
                .map_or(crate::engine::EngineConfig::default().max_sessions, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
            archive: None,
        })
    }
}

/// `--source NAME`; an unknown name is an error listing the known ones.
fn source_named(name: &str, errors: &mut Vec<String>) -> Option<Source> {
    let source = Source::from_name(name);
    if source.is_none() {
        let names: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
        errors.push(format!(
            "--source: unknown source '{name}'; expected one of {}",
            names.join(", ")
        ));
    }
    source
}

/// `--metrics-addr`: an address, or a bare port on loopback (exposing the endpoints is a
/// choice: 0.0.0.0:PORT).
fn metrics_addr(text: &str, errors: &mut Vec<String>) -> Option<SocketAddr> {
    let text = text.trim();
    let addr = text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<u16>()
            .ok()
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
    });
    if addr.is_none() {
        errors.push(format!(
            "--metrics-addr: '{text}' is not an address like 127.0.0.1:9464"
        ));
    }
    addr
}

impl Properties {
    /// The properties as librdkafka takes them: `${file:…}` and `${env:…}` references
    /// resolved, then the TLS, SASL and compression settings checked together. Problems go to
    /// `errors`, secrets never.
    fn resolved(&self, errors: &mut Vec<String>) -> Vec<(String, String)> {
        let var = |name: &str| std::env::var(name).ok();
        let mut out = Vec::with_capacity(self.0.len());
        let mut broken = false;
        for (key, value) in &self.0 {
            match librdkafka::resolve(key, &value.text(), &var) {
                Ok(v) => out.push((key.clone(), v)),
                Err(e) => {
                    broken = true;
                    errors.push(format!("librdkafka property {e}"));
                }
            }
        }
        if !broken {
            errors.extend(librdkafka::check(&out).errors);
        }
        out
    }
}

/// Parses `-X key=value`. The error never repeats the text: it may hold a secret.
pub fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(
            "expected KEY=VALUE, a librdkafka property like fetch.max.bytes=1048576 \
             (the text given is not repeated here: it may hold a secret)"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn flags_override_env_override_file() {
        let file: Layer = serde_saphyr::from_str(
            "brokers: file:9092\ngroup: g-file\ntopics: [a, b]\nactions_topic: act\n\
             dead-letter-topic: dlq\nmax_sessions: 10\n\
             librdkafka: { fetch.max.bytes: 1000, enable.idempotence: true }\n",
        )
        .unwrap();
        let env = Layer::from_env(&env(&[
            ("SESSIONGUARD_GROUP", "g-env"),
            ("SESSIONGUARD_BROKERS", "env:9092"),
            ("SESSIONGUARD_MAX_SESSIONS", "20"),
        ]))
        .unwrap();
        let flags = Layer {
            brokers: Some("flag:9092".into()),
            ..Layer::default()
        };
        let s = flags.over(env.over(file)).settings(Purpose::Run).unwrap();
        assert_eq!(s.brokers, "flag:9092");
        assert_eq!(s.group, "g-env");
        assert_eq!(s.topics, ["a", "b"]);
        assert_eq!(s.dead_letter_topic.as_deref(), Some("dlq"));
        assert_eq!(s.max_sessions, 20);
        assert!(s
            .librdkafka
            .contains(&("fetch.max.bytes".to_owned(), "1000".to_owned())));
        assert!(s
            .librdkafka
            .contains(&("enable.idempotence".to_owned(), "true".to_owned())));
    }

    #[test]
    fn every_problem_is_reported() {
        let layer = Layer {
            topics: Some(Topics::Text("audit,act".into())),
            actions_topic: Some("act".into()),
            metrics_addr: Some("nowhere".into()),
            idle_timeout: Some("soon".into()),
            max_sessions: Some(0),
            ..Layer::default()
        };
        let errors = layer.settings(Purpose::Run).unwrap_err();
        for needle in [
            "--brokers is required",
            "--group is required",
            "--dead-letter-topic is required",
            "'act' is both an input and an output",
            "--metrics-addr",
            "--idle-timeout: 'soon'",
            "--max-sessions must be at least 1",
        ] {
            assert!(errors.contains(needle), "{needle} missing from:\n{errors}");
        }
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        assert!(serde_saphyr::from_str::<Layer>("brokerz: x\n").is_err());
    }

    #[test]
    fn rekey_needs_an_output_topic_not_an_actions_topic() {
        let layer = Layer {
            brokers: Some("b:1".into()),
            group: Some("g".into()),
            topics: Some(Topics::Text("raw".into())),
            ..Layer::default()
        };
        let errors = layer.clone().settings(Purpose::Rekey).unwrap_err();
        assert!(errors.contains("--output-topic is required"));
        assert!(!errors.contains("actions"));
        let ok = Layer {
            output_topic: Some("keyed".into()),
            ..layer
        }
        .settings(Purpose::Rekey)
        .unwrap();
        assert_eq!(ok.dead_letter_topic, None);
    }
}
