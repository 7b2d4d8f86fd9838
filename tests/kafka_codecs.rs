//! The Kafka runtime on records compressed with every codec a SIEM pipeline's producers may
//! choose (gzip, snappy, lz4, zstd), against librdkafka's in-process mock cluster, through the
//! library API `run` uses: each codec's topic gives exactly `replay`'s decisions. The same
//! check over a real broker and the `run` binary is in `tests/kafka_tls.rs`.
//!
//! Also: the client settings the issue reproduced as build-time failures (`security.protocol`
//! ssl and sasl_ssl with SCRAM, zstd) are accepted by this build's librdkafka.
#![cfg(feature = "kafka")]

use std::sync::Arc;

use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::BaseProducer;
use serde_json::Value;
use sessionguard::kafka::demo::{read_topic, records_of};
use sessionguard::kafka::{run, Control, Mode};
use sessionguard::rule::RuleSet;
use sessionguard::telemetry::Telemetry;

#[path = "support/kafka.rs"]
mod support;
use support::{ids, produce_compressed, replay_decisions, root, scenario_paths, settings};

const CODECS: [&str; 4] = ["gzip", "snappy", "lz4", "zstd"];

#[test]
fn every_codec_is_consumed_and_decided_on() {
    let _logs = support::capture_logs();
    let files = scenario_paths();
    let records = records_of(&files).unwrap();
    let expected = ids(&replay_decisions(&files));
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
        produce_compressed(&brokers, &[], &input, &records, codec);
        let mut s = settings(&brokers, &format!("{codec}-group"), &[&input], codec);
        // Only the input, actions and dead-letter topics exist here.
        s.progress_topic = None;
        s.max_events = Some(records.len() as u64);
        let summary = run(
            Mode::Evaluate(rules.clone()),
            &s,
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
    let _logs = support::capture_logs();
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
