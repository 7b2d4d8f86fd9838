//! The Kafka runtime on records compressed with every codec a SIEM pipeline's producers may
//! choose (gzip, snappy, lz4, zstd), against librdkafka's in-process mock cluster, through the
//! library API `run` uses: each codec's topic gives exactly `replay`'s decisions. The same
//! check over a real broker and the `run` binary is in `tests/kafka_tls.rs`.
//!
//! Also: the client settings the issue reproduced as build-time failures (`security.protocol`
//! ssl and sasl_ssl with SCRAM, zstd) are accepted by this build's librdkafka.
#![cfg(feature = "kafka")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DefaultProducerContext, Producer, ThreadedProducer,
};
use serde_json::Value;
use sessionguard::config::Settings;
use sessionguard::engine::{Engine, EngineConfig};
use sessionguard::kafka::demo::{fixture_files, read_topic, records_of};
use sessionguard::kafka::{run, Control, Mode};
use sessionguard::replay::{replay, ReplayOptions};
use sessionguard::rule::RuleSet;
use sessionguard::telemetry::Telemetry;

const CODECS: [&str; 4] = ["gzip", "snappy", "lz4", "zstd"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scenario_files() -> Vec<PathBuf> {
    let files = fixture_files(&root().join("fixtures/scenarios")).unwrap();
    assert!(files.len() > 10, "scenario fixtures missing");
    files
}

fn replay_ids(files: &[PathBuf]) -> Vec<String> {
    let mut engine = Engine::new(
        RuleSet::load(&[root().join("rules")]).unwrap(),
        EngineConfig::default(),
    );
    let mut out = Vec::new();
    replay(
        files,
        &mut engine,
        &ReplayOptions {
            end_of_input: false,
            ..ReplayOptions::default()
        },
        &mut |d| {
            out.push(d.decision_id.to_string());
            Ok(())
        },
        &mut |_, _, _, _| Ok(()),
    )
    .unwrap();
    out
}

fn produce(brokers: &str, topic: &str, records: &[Vec<u8>], codec: &str) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("compression.type", codec)
        // Batches of many records, so the codec really compresses several at once.
        .set("linger.ms", "50")
        .set("enable.idempotence", "true")
        .create()
        .unwrap_or_else(|e| panic!("a producer with compression.type={codec}: {e}"));
    for record in records {
        let mut r = Some(
            BaseRecord::<[u8], [u8]>::to(topic)
                .payload(record)
                .partition(0),
        );
        while let Some(rec) = r.take() {
            if let Err((_, back)) = producer.send(rec) {
                std::thread::sleep(Duration::from_millis(10));
                r = Some(back);
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn settings(brokers: &str, input: &str, name: &str) -> Settings {
    Settings {
        brokers: brokers.to_owned(),
        group: format!("{name}-group"),
        topics: vec![input.to_owned()],
        actions_topic: format!("{name}.actions"),
        dead_letter_topic: Some(format!("{name}.dead")),
        progress_topic: None,
        output_topic: String::new(),
        rules: vec![root().join("rules")],
        source: None,
        metrics_addr: None,
        librdkafka: vec![
            ("session.timeout.ms".into(), "6000".into()),
            ("heartbeat.interval.ms".into(), "500".into()),
            ("log_level".into(), "3".into()),
        ],
        max_events: None,
        exit_when_idle: Some(Duration::from_secs(3)),
        time: sessionguard::time::TimeConfig::default(),
        idle_timeout_ms: 12 * 3_600_000,
        caep_issuer: "urn:sessionguard".to_owned(),
        max_sessions: EngineConfig::default().max_sessions,
    }
}

#[test]
fn every_codec_is_consumed_and_decided_on() {
    let files = scenario_files();
    let records = records_of(&files).unwrap();
    let expected = replay_ids(&files);
    assert!(expected.len() > 20, "the scenarios should decide");
    let rules = Arc::new(RuleSet::load(&[root().join("rules")]).unwrap());
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    for codec in CODECS {
        let input = format!("{codec}.in");
        for (topic, partitions) in [
            (input.as_str(), 1),
            (&format!("{codec}.actions"), 1),
            (&format!("{codec}.dead"), 1),
        ] {
            cluster.create_topic(topic, partitions, 1).unwrap();
        }
        produce(&brokers, &input, &records, codec);
        let mut s = settings(&brokers, &input, codec);
        s.max_events = Some(records.len() as u64);
        let summary = run(
            Mode::Evaluate,
            &s,
            Some(rules.clone()),
            &Control::new(),
            Telemetry::new(),
        )
        .unwrap_or_else(|e| panic!("{codec}: {e:#}"));
        assert_eq!(
            summary.records,
            records.len() as u64,
            "{codec}: records read"
        );
        assert_eq!(summary.rejects.values().sum::<u64>(), 0, "{codec}: rejects");
        let got: Vec<String> = read_topic(&brokers, &format!("{codec}.actions"))
            .unwrap()
            .iter()
            .map(|f| {
                let v: Value = serde_json::from_slice(&f.payload).unwrap();
                v["decision_id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(got, expected, "{codec}: decisions differ from replay's");
    }
}

/// The settings the issue reproduced ("OpenSSL not available at build time", "libzstd not
/// available at build time") now make clients, and so does every SASL mechanism but GSSAPI.
#[test]
fn tls_sasl_oidc_and_zstd_are_built_in() {
    let cases: &[&[(&str, &str)]] = &[
        &[("security.protocol", "ssl")],
        &[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ],
        &[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ],
        &[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ],
        &[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.oauthbearer.config", "principal=sessionguard"),
        ],
        &[("compression.type", "zstd")],
        &[("compression.type", "lz4")],
        &[("compression.type", "snappy")],
        &[("compression.type", "gzip")],
    ];
    for case in cases {
        let mut config = ClientConfig::new();
        // Nothing listens here; creating the client is what fails when a feature is missing.
        config.set("bootstrap.servers", "127.0.0.1:9");
        for (k, v) in *case {
            config.set(*k, *v);
        }
        let made: Result<BaseProducer, _> = config.create();
        if let Err(e) = made {
            panic!("{case:?}: {e}");
        }
    }
}
