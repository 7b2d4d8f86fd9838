//! Falco rules as written: the files under `fixtures/falco/` are in Falco's rule format — a
//! sequence of `list`, `macro` and `rule` items, Falco's condition language and field names,
//! `append`, `override`, `exceptions`, `enabled` — with no sessionguard key in them. They must
//! load unchanged and fire on Falco's own Kubernetes audit traces (vendored under
//! `fixtures/third_party/k8s-audit-falco/`) exactly where their conditions say, and nowhere
//! else. (They are sessionguard's own rules written in Falco's format; Falco's rule files are
//! not vendored here.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

const TRACES: &str = "fixtures/third_party/k8s-audit-falco";

/// A decision: (rule, severity, line of the record that triggered it).
type Decision = (&'static str, &'static str, u64);

/// Each trace with every decision the Falco-format rules make on it. A trace not listed makes
/// none.
const EXPECTED: &[(&str, &[Decision])] = &[
    // `ka.user.name = "system:anonymous"` and `ka.auth.decision`, an annotation whose key has
    // dots and a slash. The namespace rule's appended condition leaves the anonymous caller out.
    (
        "anonymous_creates_namespace_foo.json",
        &[("falco.anonymous_request_allowed", "critical", 1)],
    ),
    // `jevt.value[/stage] = ResponseStarted` and `subresource in (exec, attach)`.
    ("attach_pod.json", &[("falco.shell_into_a_pod", "low", 1)]),
    ("exec_pod.json", &[("falco.shell_into_a_pod", "low", 1)]),
    // `intersects ("*")`: the star is a value, not a wildcard — a role with `get`/`list` on
    // named resources does not match.
    (
        "create_cluster_role_wildcard_resources.json",
        &[("falco.role_granting_everything", "critical", 1)],
    ),
    // `icontains "AWS_ACCESS_KEY_ID"` finds `aws_access_key_id` (line 1), not
    // `aws-access-key-id`; the cased `contains "PASSWORD"` does not find `password` (line 5);
    // the overriding `or … contains passphrase` finds line 6.
    (
        "create_configmap_sensitive_values.json",
        &[
            ("falco.credentials_in_a_configmap", "high", 1),
            ("falco.credentials_in_a_configmap", "high", 6),
        ],
    ),
    (
        "create_nginx_pod_hostnetwork.json",
        &[("falco.pod_on_the_host_network", "low", 1)],
    ),
    // `not ka.req.pod.containers.image.repository in (vetted_images)`: `in` on a list field
    // asks that every image is vetted. `mysql:latest` is (its repository is `mysql`), `nginx`
    // is not, so the pods with both still fire.
    (
        "create_nginx_pod_privileged.json",
        &[("falco.privileged_pod_from_an_unvetted_image", "medium", 1)],
    ),
    (
        "create_nginx_pod_privileged_2nd_container.json",
        &[("falco.privileged_pod_from_an_unvetted_image", "medium", 1)],
    ),
    (
        "create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json",
        &[("falco.privileged_pod_from_an_unvetted_image", "medium", 1)],
    ),
    // `pmatch` with a path appended to the list later in the file: `/etc` itself.
    (
        "create_nginx_pod_sensitive_mount.json",
        &[("falco.pod_mounts_a_host_path_that_matters", "high", 1)],
    ),
    (
        "create_nginx_pod_sensitive_mount_2nd_container.json",
        &[("falco.pod_mounts_a_host_path_that_matters", "high", 1)],
    ),
    (
        "create_nginx_service_nodeport.json",
        &[("falco.nodeport_service", "medium", 1)],
    ),
    // The overridden macro `trusted_user` leaves `minikube-user` out; the appended condition
    // leaves `system:anonymous` out.
    (
        "some-user_creates_namespace_foo.json",
        &[("falco.namespace_outside_the_known_ones", "informational", 1)],
    ),
];

/// The decisions on one trace, replayed alone: the traces are separate captures of the same
/// users, months apart, so together most records would be late for their session.
fn replay(trace: &Path) -> Vec<Value> {
    replay_with(Path::new("fixtures/falco"), trace)
}

/// The decisions of the rules under `rules` on one file.
fn replay_with(rules: &Path, trace: &Path) -> Vec<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_sessionguard"))
        .current_dir(root())
        .args(["replay", "--no-progress", "--rules"])
        .arg(rules)
        .arg(trace)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "replay of {} failed: {}",
        trace.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// (rule, severity, line) of each decision on one trace.
fn decisions(trace: &Path) -> BTreeSet<(String, String, u64)> {
    replay(trace)
        .into_iter()
        .map(|d| {
            let origin = &d["evidence"]["events"][0]["origin"];
            assert!(origin["file"]
                .as_str()
                .unwrap()
                .ends_with(trace.file_name().unwrap().to_str().unwrap()));
            (
                d["rule"]["id"].as_str().unwrap().to_owned(),
                d["severity"].as_str().unwrap().to_owned(),
                origin["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn falco_rules_load_unchanged_and_fire_on_their_traces_only() {
    let mut traces: Vec<PathBuf> = std::fs::read_dir(root().join(TRACES))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    traces.sort();
    assert!(traces.len() > 40, "{} traces", traces.len());
    for (name, _) in EXPECTED {
        assert!(
            traces.iter().any(|t| t.ends_with(name)),
            "{name} is not a trace"
        );
    }
    for trace in &traces {
        let name = trace.file_name().unwrap().to_str().unwrap();
        let want: BTreeSet<(String, String, u64)> = EXPECTED
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&[][..], |(_, d)| d)
            .iter()
            .map(|(rule, severity, line)| ((*rule).to_owned(), (*severity).to_owned(), *line))
            .collect();
        assert_eq!(decisions(trace), want, "decisions on {name}");
    }
}

/// A Falco exception of one field, written as a scalar (`fields: ka.target.namespace`) with a
/// list of values: a pod mounting a sensitive host path in one of those namespaces is left
/// out; in any other namespace, including one that only starts like them, it fires.
#[test]
fn a_one_field_exception_leaves_out_its_values_only() {
    let trace = std::fs::read_to_string(
        root()
            .join(TRACES)
            .join("create_nginx_pod_sensitive_mount.json"),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("sg-falco-exception-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut fired = Vec::new();
    for namespace in ["kube-system", "kube-public", "kube-systems", "monitoring"] {
        let mut record: Value = serde_json::from_str(&trace).unwrap();
        record["objectRef"]["namespace"] = Value::from(namespace);
        let path = dir.join(format!("{namespace}.json"));
        std::fs::write(&path, record.to_string()).unwrap();
        if replay(&path)
            .iter()
            .any(|d| d["rule"]["id"] == "falco.pod_mounts_a_host_path_that_matters")
        {
            fired.push(namespace);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(fired, ["kube-systems", "monitoring"]);
}

/// A Falco rule is for `source: k8s_audit`, and reads Kubernetes audit records only: one that
/// holds on any record lacking a verb fires on a Kubernetes request, never on a CloudTrail or
/// Okta record.
#[test]
fn a_falco_rule_reads_kubernetes_audit_records_only() {
    let dir = std::env::temp_dir().join(format!("sg-falco-source-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("not-a-read.yaml"),
        "- rule: Not a read\n  desc: Any request but a read.\n  \
         condition: not ka.verb in (get, list, watch)\n  output: '%ka.verb'\n  \
         priority: NOTICE\n  source: k8s_audit\n",
    )
    .unwrap();
    let fired: Vec<usize> = [
        "fixtures/events/cloudtrail/aws.persistence.iam-create-admin-user.json",
        "fixtures/events/okta/session-handwritten.jsonl",
        "fixtures/third_party/k8s-audit-falco/create_nginx_service_nodeport.json",
    ]
    .iter()
    .map(|trace| replay_with(&dir, Path::new(trace)).len())
    .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(fired, [0, 0, 1]);
}

/// What a Falco rule becomes: its name is the title, the id is made from it, its tags are
/// kept, and a rule with `enabled: false` is not loaded.
#[test]
fn rule_names_tags_and_disabled_rules() {
    let set = sessionguard::rule::RuleSet::load(&[root().join("fixtures/falco")])
        .unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "falco.role_granting_everything",
            "falco.anonymous_request_allowed",
            "falco.namespace_outside_the_known_ones",
            "falco.credentials_in_a_configmap",
            "falco.nodeport_service",
            "falco.privileged_pod_from_an_unvetted_image",
            "falco.pod_mounts_a_host_path_that_matters",
            "falco.pod_on_the_host_network",
            "falco.shell_into_a_pod",
        ]
    );
    let privileged = &set.rules[5];
    assert_eq!(privileged.title, "Privileged pod from an unvetted image");
    assert_eq!(privileged.tags, ["k8s", "privilege"]);
}

/// A Falco rule's `output` is its decisions' reason, with the record's values in it (`<NA>`
/// where the record has none, as Falco prints it).
#[test]
fn the_output_is_the_reason() {
    let reasons = |trace: &str| -> Vec<String> {
        replay(&root().join(TRACES).join(trace))
            .iter()
            .map(|d| d["evidence"]["reason"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        reasons("exec_pod.json"),
        ["exec into default/nginx-deployment-7998647bdf-phvq7 by minikube-user"]
    );
    assert_eq!(
        reasons("create_nginx_pod_privileged_2nd_container.json"),
        [
            r#"privileged pod in default by system:serviceaccount:kube-system:replicaset-controller (images ["nginx","mysql:latest"])"#
        ]
    );
    assert_eq!(
        reasons("anonymous_creates_namespace_foo.json"),
        ["anonymous create of /api/v1/namespaces allowed (impersonating <NA>)"]
    );
}
