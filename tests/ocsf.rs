//! OCSF as a first-class input: a CloudTrail record and its OCSF mapping are one session and
//! give the same decisions, so a pipeline that delivers some sources raw and some mapped to
//! OCSF (Security Lake beside a SIEM) does not split a session in two.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const RAW: &str =
    "fixtures/events/cloudtrail/aws.credential-access.secretsmanager-batch-retrieve-secrets.json";
const MAPPED: &str = "fixtures/events/ocsf/stratus-secretsmanager-as-ocsf.jsonl";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Vec<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What must agree between the raw and the mapped record: everything but the source and the
/// vendor record.
fn model(event: &Value) -> Value {
    let mut e = event.clone();
    let o = e.as_object_mut().unwrap();
    o.remove("source");
    o.remove("raw");
    e
}

#[test]
fn a_cloudtrail_record_and_its_ocsf_mapping_are_one_session() {
    let raw = run(&["normalize", RAW]);
    let mapped = run(&["normalize", MAPPED]);
    assert_eq!(raw.len(), 5);
    assert_eq!(mapped.len(), raw.len());
    for (r, m) in raw.iter().zip(&mapped) {
        assert_eq!(r["source"], "cloudtrail");
        assert_eq!(m["source"], "ocsf");
        assert_eq!(
            m["session"]["key"],
            "aws:165109126369:iam-key:AKIALK3Q0HKBKZJ2XBYP"
        );
        // Key, kind, principal, action, outcome, operation, network, client: the same event.
        assert_eq!(model(m), model(r));
    }
}

/// A rule on the model's fields decides the same on either form, and on both together (one
/// session: the windows count the raw and the mapped records alike).
#[test]
fn a_cloudtrail_record_and_its_ocsf_mapping_give_the_same_decisions() {
    let dir = std::env::temp_dir().join(format!("sg-ocsf-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("batch.yml"),
        "\
id: test.secrets_batches
detection:
  batch: {action: 'secretsmanager:BatchGetSecretValue', outcome: success}
  condition: batch
session:
  event_count: {timespan: 5m, gte: 3}
action: revoke_session
",
    )
    .unwrap();
    let rules = dir.to_str().unwrap();
    let decided = |files: &[&str]| -> Vec<(String, String, String)> {
        let mut args = vec!["replay", "--no-progress", "--rules", rules];
        args.extend(files);
        run(&args)
            .iter()
            .map(|d| {
                (
                    d["rule"]["id"].as_str().unwrap().to_owned(),
                    d["session"]["key"].as_str().unwrap().to_owned(),
                    d["time"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let raw = decided(&[RAW]);
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert_eq!(decided(&[MAPPED]), raw);
    // Both forms of the same five records: one session, decided once on the third record;
    // the mapped records that follow are that killed session still acting, reported once as
    // `kill_not_enforced` under the same key (two sessions would each have been decided).
    let both = decided(&[RAW, MAPPED]);
    assert_eq!(both[0], raw[0]);
    let rest: Vec<(&str, &str)> = both[1..]
        .iter()
        .map(|(rule, key, _)| (rule.as_str(), key.as_str()))
        .collect();
    assert_eq!(
        rest,
        [("sessionguard.kill_not_enforced", raw[0].1.as_str())],
        "{both:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Amazon Security Lake's layout: `fixtures/ocsf-lake/lake` holds the OCSF records of
/// `events.ocsf.jsonl.gz` as Parquet written by pyarrow (scripts/ocsf-lake.py), partitioned by
/// region, account and day, files named at random, zstd, gzip and snappy in turn.
#[cfg(feature = "parquet")]
mod security_lake {
    use std::path::{Path, PathBuf};

    use parquet::file::reader::{FileReader, SerializedFileReader};
    use serde_json::Value;
    use sessionguard::event::Normalizer;
    use sessionguard::source::file::{self, Item};

    use super::{root, run};

    const LAKE: &str = "fixtures/ocsf-lake/lake";
    const JSON: &str = "fixtures/ocsf-lake/events.ocsf.jsonl.gz";

    /// A decision without where its evidence was read (a file line, or a Parquet row).
    fn placeless(decision: &Value) -> String {
        let mut d = decision.clone();
        for e in d["evidence"]["events"].as_array_mut().unwrap() {
            e.as_object_mut().unwrap().remove("origin");
        }
        d.to_string()
    }

    #[test]
    fn a_security_lake_directory_gives_the_decisions_of_its_json() {
        let from_lake = run(&["replay", "--no-progress", LAKE]);
        let from_json = run(&["replay", "--no-progress", JSON]);
        let rules: std::collections::BTreeSet<&str> = from_json
            .iter()
            .map(|d| d["rule"]["id"].as_str().unwrap())
            .collect();
        assert!(
            from_json.len() >= 5 && rules.len() >= 4,
            "the fixture should decide on several rules: {rules:?}"
        );
        // The same decisions; the lake's files are read in another order than the JSON's
        // lines, so the order they are written in may differ.
        let mut lake: Vec<String> = from_lake.iter().map(placeless).collect();
        let mut json: Vec<String> = from_json.iter().map(placeless).collect();
        lake.sort();
        json.sort();
        assert_eq!(lake, json);
        // Sharded by session over two engine threads, the lake decides the same again.
        let threads = run(&["replay", "--no-progress", "--threads", "2", LAKE]);
        assert_eq!(threads, from_lake);
        // Evidence names the Parquet file and the row.
        for d in &from_lake {
            for e in d["evidence"]["events"].as_array().unwrap() {
                let origin = &e["origin"];
                let file = origin["file"].as_str().unwrap();
                assert!(
                    file.starts_with(LAKE) && file.ends_with(".parquet"),
                    "{origin}"
                );
                assert!(origin["line"].as_u64().unwrap() >= 1, "{origin}");
            }
        }
    }

    /// The event times of every record of `path`, in the order read.
    fn times(path: &Path) -> Vec<String> {
        let normalizer = Normalizer::default();
        let scratch = bumpalo::Bump::new();
        let mut times = Vec::new();
        file::open_records(path)
            .unwrap()
            .for_each(&mut |item| {
                if let Item::Record { bytes, .. } = item {
                    if let Ok(event) = normalizer.normalize(bytes, &scratch) {
                        times.push(event.time.to_string());
                    }
                }
            })
            .unwrap();
        times
    }

    #[test]
    fn lake_files_are_read_in_the_order_of_their_earliest_event_time() {
        let files = file::expand_paths(&[root().join(LAKE)]).unwrap();
        assert_eq!(files.len(), 9);
        let earliest: Vec<String> = files
            .iter()
            .map(|f| times(f).into_iter().min().unwrap())
            .collect();
        let mut sorted = earliest.clone();
        sorted.sort();
        assert_eq!(earliest, sorted, "{files:#?}");
        // Name order (region first) would not be time order in this lake.
        let mut by_name = files.clone();
        by_name.sort();
        assert_ne!(by_name, files);
    }

    /// The lake's largest file (three row groups of 100 rows), copied into a directory of its
    /// own after `damage`.
    fn damaged(name: &str, damage: impl FnOnce(&Path, &mut Vec<u8>)) -> PathBuf {
        let files = file::expand_paths(&[root().join(LAKE)]).unwrap();
        let largest = files
            .iter()
            .max_by_key(|f| (std::fs::metadata(f).unwrap().len(), f.to_path_buf()))
            .unwrap();
        let mut bytes = std::fs::read(largest).unwrap();
        damage(largest, &mut bytes);
        let dir = std::env::temp_dir().join(format!("sg-lake-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("damaged.parquet");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Every record of `path` read: rows kept, and the rejects with their row and detail.
    fn read(path: &Path) -> (usize, Vec<(u64, String)>) {
        let mut rows = 0;
        let mut rejects = Vec::new();
        file::open_records(path)
            .unwrap()
            .for_each(&mut |item| match item {
                Item::Record { .. } => rows += 1,
                Item::Broken { line, reject, .. } => rejects.push((line, reject.detail)),
            })
            .unwrap();
        (rows, rejects)
    }

    #[test]
    fn a_cut_parquet_file_is_one_reject_and_the_rest_is_read() {
        let path = damaged("cut", |_, b| b.truncate(b.len() / 2));
        let error = file::open_records(&path)
            .err()
            .expect("a cut file does not open");
        assert!(error.to_string().contains("footer"), "{error}");
        // In a replay the file is one reject (exit status 3: an input was unreadable), and the
        // lake beside it is read whole.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sessionguard"))
            .current_dir(root())
            .args(["replay", "--no-progress"])
            .arg(&path)
            .arg(LAKE)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains("unreadable                                                1"),
            "{stderr}"
        );
        // Every record of the lake is read: the events line is the JSON's.
        let events_line = |stderr: &str| -> String {
            stderr
                .lines()
                .find(|l| l.starts_with("events "))
                .unwrap_or("")
                .to_owned()
        };
        let json = std::process::Command::new(env!("CARGO_BIN_EXE_sessionguard"))
            .current_dir(root())
            .args(["replay", "--no-progress", JSON])
            .output()
            .unwrap();
        let want = events_line(&String::from_utf8_lossy(&json.stderr));
        assert!(want.ends_with("1200"), "{want}");
        assert_eq!(events_line(&stderr), want, "{stderr}");
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn a_damaged_row_group_costs_its_rows_and_the_groups_around_it_are_read() {
        let path = damaged("group", |original, bytes| {
            // Overwrite the second row group's column chunks, page headers and all.
            let reader = SerializedFileReader::new(std::fs::File::open(original).unwrap()).unwrap();
            let groups = reader.metadata().row_groups();
            assert_eq!(groups.len(), 3);
            let start = |g: usize| {
                let c = groups[g].column(0);
                c.dictionary_page_offset().unwrap_or(c.data_page_offset()) as usize
            };
            bytes[start(1)..start(2)].fill(0xa5);
        });
        let (rows, rejects) = read(&path);
        assert_eq!(rows, 200, "{rejects:?}");
        assert_eq!(rejects.len(), 1, "{rejects:?}");
        let (row, detail) = &rejects[0];
        assert_eq!(*row, 101);
        assert!(
            detail.starts_with("rows 101-200 (row group 2) cannot be decoded"),
            "{detail}"
        );
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }
}
