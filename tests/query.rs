//! `sessionguard query` (feature `history`): the saved hunting queries in `queries/` over an
//! archive of the scenario fixtures and the Security Lake sample, each against a reviewed golden
//! CSV (`fixtures/queries/NAME.csv.golden`; `UPDATE_GOLDEN=1` rewrites them); the three output
//! formats; partition pruning (a `date` filter reads only that day's files); and the errors a
//! user meets (not an archive, bad SQL).
//!
//! `--logs`: the same saved queries over the raw logs (NDJSON, CloudTrail, the Security Lake
//! Parquet sample) give the same reviewed goldens as over their archive; a query over one
//! NDJSON file against a golden of its own (`fixtures/queries/logs-actions.csv.golden`); a
//! file that is not there is a clear error.
#![cfg(feature = "history")]

#[path = "support/golden.rs"]
mod golden;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

#[path = "support/cli.rs"]
mod cli;
use cli::{root, sessionguard};

fn stdout(out: Output, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One archive of the fixtures, shared by the tests of this binary.
fn archive() -> &'static str {
    static ARCHIVE: OnceLock<String> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("query-archive");
        let _ = std::fs::remove_dir_all(&dir);
        let dir_s = dir.display().to_string();
        stdout(
            sessionguard(&[
                "archive",
                "fixtures/scenarios",
                "fixtures/ocsf-lake",
                "--rules",
                "rules",
                "--to",
                &dir_s,
                "--no-progress",
            ]),
            "archive",
        );
        dir_s
    })
}

fn query(sql: &str, format: &str) -> String {
    stdout(
        sessionguard(&["query", sql, "--archive", archive(), "--format", format]),
        sql,
    )
}

fn saved_queries() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("queries"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_saved_hunting_queries_give_their_reviewed_results() {
    let mode = golden::mode();
    let queries = saved_queries();
    assert!(queries.len() >= 3, "three saved queries: {queries:?}");
    let mut failures = Vec::new();
    for sql in &queries {
        let name = sql.file_stem().unwrap().to_string_lossy();
        let relative = format!("queries/{name}.sql");
        let result = query(&relative, "csv");
        assert!(
            result.lines().count() > 1,
            "{relative} finds something on the fixtures:\n{result}"
        );
        let gold = root().join(format!("fixtures/queries/{name}.csv.golden"));
        if let Err(e) = golden::check(mode, &gold, &result) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn kills_per_rule_agree_with_the_decisions_replay_writes() {
    // The decisions table holds what replay decided: count the kills in replay's own output.
    let decisions = stdout(
        sessionguard(&[
            "replay",
            "fixtures/scenarios",
            "fixtures/ocsf-lake",
            "--rules",
            "rules",
            "--no-progress",
        ]),
        "replay",
    );
    let kills = decisions
        .lines()
        .filter(|l| {
            l.contains(r#""action":"revoke_session""#)
                || l.contains(r#""action":"revoke_credential""#)
        })
        .count();
    let counted = query(
        "SELECT count(*) AS n FROM decisions WHERE action IN ('revoke_session', 'revoke_credential')",
        "csv",
    );
    assert_eq!(counted, format!("n\n{kills}\n"));
    let all = query("SELECT count(*) AS n FROM decisions", "csv");
    assert_eq!(all, format!("n\n{}\n", decisions.lines().count()));
}

#[test]
fn a_date_filter_reads_only_that_days_files() {
    // EXPLAIN ANALYZE names the files the scan opened: one day's partition, not the rest.
    let plan = query(
        "EXPLAIN ANALYZE SELECT count(DISTINCT session_key) FROM events WHERE date = '2024-11-04'",
        "csv",
    );
    assert!(
        plan.contains("date=2024-11-04"),
        "that day is read:\n{plan}"
    );
    assert!(
        !plan.contains("date=2024-10-01"),
        "other days are pruned before a file is opened:\n{plan}"
    );
    let one_day = query(
        "SELECT count(*) AS n FROM events WHERE date = '2024-11-04'",
        "csv",
    );
    let by_hand = query(
        "SELECT count(*) AS n FROM events WHERE time >= TIMESTAMP '2024-11-04T00:00:00Z' \
         AND time < TIMESTAMP '2024-11-05T00:00:00Z'",
        "csv",
    );
    assert_eq!(
        one_day, by_hand,
        "the partition holds exactly that day's events"
    );
}

#[test]
fn results_come_as_a_table_csv_or_json() {
    let sql = "SELECT rule_id, count(*) AS n FROM decisions GROUP BY rule_id ORDER BY n DESC, rule_id LIMIT 2";
    let csv = query(sql, "csv");
    let json = query(sql, "json");
    let table = query(sql, "table");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (row, object) in rows.iter().zip(&objects) {
        let (rule, n) = row.split_once(',').unwrap();
        assert_eq!(object["rule_id"], rule);
        assert_eq!(object["n"].to_string(), n);
        assert!(table.contains(rule), "the table shows {rule}:\n{table}");
    }
    assert!(
        table.lines().next().is_some_and(|l| l.starts_with('+')),
        "an aligned table with borders:\n{table}"
    );
}

#[test]
fn a_directory_that_is_not_an_archive_and_bad_sql_are_clear_errors() {
    let out = sessionguard(&["query", "SELECT 1", "--archive", "fixtures/scenarios"]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not an archive"), "{said}");
    let out = sessionguard(&["query", "SELECT nope FROM events", "--archive", archive()]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("nope"), "names the unknown column: {said}");
}

/// `query` over the shared archive with `env` set; the output.
fn query_with_env(sql: &str, env: &[(&str, &str)]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .args(["query", sql, "--archive", archive(), "--format", "csv"])
        .envs(env.iter().copied())
        .output()
        .expect("sessionguard runs")
}

#[test]
fn datafusion_settings_come_from_the_environment_over_our_defaults() {
    // `SHOW` needs the information schema, itself a setting from the environment.
    let catalog = ("DATAFUSION_CATALOG_INFORMATION_SCHEMA", "true");
    let shown = |setting: &str, env: &[(&str, &str)]| {
        let mut env = env.to_vec();
        env.push(catalog);
        let csv = stdout(query_with_env(&format!("SHOW {setting}"), &env), setting);
        let row = csv.lines().nth(1).unwrap_or_default().to_owned();
        row.rsplit(',').next().unwrap_or_default().to_owned()
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    assert_eq!(
        shown("datafusion.execution.target_partitions", &[]),
        (2 * cores).to_string(),
        "two partitions per core by default"
    );
    // Partial aggregation is given up sooner than DataFusion's defaults (100,000 rows, 0.8).
    let (rows, ratio) = (
        "datafusion.execution.skip_partial_aggregation_probe_rows_threshold",
        "datafusion.execution.skip_partial_aggregation_probe_ratio_threshold",
    );
    assert_eq!(shown(rows, &[]), "10000");
    assert_eq!(shown(ratio, &[]), "0.3");
    let set = [
        ("DATAFUSION_EXECUTION_TARGET_PARTITIONS", "3"),
        ("DATAFUSION_EXECUTION_BATCH_SIZE", "1234"),
        (
            "DATAFUSION_EXECUTION_SKIP_PARTIAL_AGGREGATION_PROBE_ROWS_THRESHOLD",
            "100000",
        ),
        (
            "DATAFUSION_EXECUTION_SKIP_PARTIAL_AGGREGATION_PROBE_RATIO_THRESHOLD",
            "0.8",
        ),
    ];
    assert_eq!(shown("datafusion.execution.target_partitions", &set), "3");
    assert_eq!(shown("datafusion.execution.batch_size", &set), "1234");
    assert_eq!(shown(rows, &set), "100000");
    assert_eq!(shown(ratio, &set), "0.8");

    let out = query_with_env(
        "SELECT count(*) FROM events",
        &[("DATAFUSION_EXECUTION_BATCH_SIZE", "lots")],
    );
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("DATAFUSION_"),
        "says where the bad setting came from: {said}"
    );
    assert!(said.contains("lots"), "names the bad value: {said}");
}

const LOGS: [&str; 2] = ["fixtures/scenarios", "fixtures/ocsf-lake"];

fn query_logs(sql: &str, logs: &[&str]) -> String {
    let mut args = vec![
        "query", sql, "--format", "csv", "--rules", "rules", "--logs",
    ];
    args.extend_from_slice(logs);
    stdout(sessionguard(&args), sql)
}

#[test]
fn the_saved_queries_over_raw_logs_give_the_archive_s_goldens() {
    let mut failures = Vec::new();
    for sql in saved_queries() {
        let name = sql.file_stem().unwrap().to_string_lossy();
        let result = query_logs(&format!("queries/{name}.sql"), &LOGS);
        let gold = root().join(format!("fixtures/queries/{name}.csv.golden"));
        // Checked, never rewritten from here: these goldens belong to the archive's test.
        if let Err(e) = golden::check(golden::Mode::Compare, &gold, &result) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every table, row for row: the counts of the archive.
    for sql in [
        "SELECT count(*) AS n, count(DISTINCT session_key) AS sessions FROM events",
        "SELECT source, date, count(*) AS n FROM events GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT date, rule_id, count(*) AS n FROM decisions GROUP BY 1, 2 ORDER BY 1, 2",
    ] {
        assert_eq!(query_logs(sql, &LOGS), query(sql, "csv"), "{sql}");
    }
}

#[test]
fn a_query_over_one_ndjson_file_gives_its_reviewed_result() {
    let result = query_logs(
        "SELECT action, outcome, count(*) AS n, count(DISTINCT session_key) AS sessions, \
         min(origin_line) AS first_line FROM events GROUP BY 1, 2 ORDER BY n DESC, action",
        &["fixtures/scenarios/scope-escalation-aws/attack.jsonl"],
    );
    let gold = root().join("fixtures/queries/logs-actions.csv.golden");
    golden::check(golden::mode(), &gold, &result).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn missing_logs_are_a_clear_error() {
    let out = sessionguard(&["query", "SELECT 1", "--logs", "fixtures/no-such-file.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no-such-file.jsonl: no such file"), "{said}");
}
