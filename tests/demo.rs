//! `sessionguard demo`, the README's first command, as a newcomer runs it (from the repository
//! root, librdkafka's in-process mock cluster: no broker to install): it ends with a verdict
//! that matches the scenarios' ground truth — every attack decided, no lookalike flagged, the
//! counts being those of `fixtures/scenarios.expected.json` — explains the
//! `kill_not_enforced` decisions, and shows the parent of a chained session.
#![cfg(feature = "kafka")]

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// (scenario files whose ground truth lists decisions, files that list none).
fn attacks_and_lookalikes() -> (usize, usize) {
    let text = std::fs::read_to_string(root().join("fixtures/scenarios.expected.json")).unwrap();
    let truth: serde_json::Value = serde_json::from_str(&text).unwrap();
    let files = truth.as_object().unwrap();
    let attacks = files
        .values()
        .filter(|f| !f["decisions"].as_array().unwrap().is_empty())
        .count();
    (attacks, files.len() - attacks)
}

#[test]
fn the_demo_ends_with_the_ground_truths_verdict() {
    let out = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .arg("demo")
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{stdout}");
    let (attacks, lookalikes) = attacks_and_lookalikes();
    assert!(attacks > 0 && lookalikes > 0);
    assert_eq!(
        stdout.lines().last(),
        Some(
            format!("verdict: all {attacks} attacks decided, 0 of {lookalikes} lookalikes flagged")
                .as_str()
        ),
        "{stdout}"
    );
    // Every scenario has its heading, saying which kind it is.
    let headings = stdout
        .lines()
        .filter(|l| {
            l.contains(".jsonl") && (l.contains("— attack: ") || l.contains("— lookalike: "))
        })
        .count();
    assert_eq!(headings, attacks + lookalikes, "{stdout}");
    assert!(
        stdout.contains("sessionguard.kill_not_enforced: ") && stdout.contains("until actuation"),
        "kill_not_enforced is not explained:\n{stdout}"
    );
    // The kill decisions reach the bundled Shared Signals receiver as verified SETs.
    #[cfg(feature = "actuate")]
    {
        let kills = stdout
            .split("actuation (sessionguard actuate")
            .nth(1)
            .unwrap_or_else(|| panic!("no actuation paragraph:\n{stdout}"));
        let sent: usize = kills
            .split(": ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(sent > 0, "{stdout}");
        let joined = kills.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            joined.contains(&format!("accepted {sent} (0 refused, 0 duplicates)")),
            "{stdout}"
        );
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("  SET ES256 ") && l.contains(" session-revoked → ")),
            "{stdout}"
        );
    }
    // The child of a killed session, with the session it was issued from.
    assert!(
        stdout.contains(
            "aws:482915736014:sts:ASIA7G77UD4TUS2ZRVCU → aws:482915736014:sts:ASIA72EGJYM4IJLWOLUY"
        ),
        "{stdout}"
    );
    for line in stdout.lines() {
        let words = line.split_whitespace().filter(|w| *w != "→").count();
        assert!(
            line.chars().count() <= 100 || words == 1,
            "wider than COLUMNS=100: {line:?}"
        );
    }
}
