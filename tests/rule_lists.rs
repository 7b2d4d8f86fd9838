//! Lists from plain files, and long lists matched through an index (a hash set for equality,
//! Aho–Corasick for `contains`/`startswith`/`endswith`): the answers must be the ones the
//! values give compared one by one.
//!
//! Each generated list is written three ways — inline in YAML, as a list file, and as one
//! single-value selection per entry (`1 of sel_*`, the comparison path, never indexed) — and
//! every generated event must get the same answer from all three, for every modifier.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use bumpalo::Bump;
use sessionguard::event::Normalizer;
use sessionguard::rule::{EvalCx, RuleSet};

/// A scratch directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("sg-lists-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// A word over a small alphabet, so that entries share prefixes, suffixes and substrings.
fn word(rng: &mut Rng, max: usize) -> String {
    const ALPHABET: &[u8] = b"abcAB-.:/e9";
    let len = 1 + rng.below(max);
    (0..len).map(|_| *rng.pick(ALPHABET) as char).collect()
}

/// Changes the case of some ASCII letters.
fn recase(rng: &mut Rng, s: &str) -> String {
    s.chars()
        .map(|c| {
            if rng.chance(40) {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// Text entries: words, wildcards, escapes, and texts that read as numbers, flags and
/// addresses, so every typed comparison is exercised.
fn text_entries(rng: &mut Rng, n: usize) -> Vec<String> {
    const TYPED: &[&str] = &[
        "5",
        "5.0",
        "-0",
        "0",
        "1e3",
        "1000",
        "12.5",
        "true",
        "FALSE",
        "True",
        "null-ish",
        "10.0.0.1",
        "2001:DB8::1",
        "::ffff:10.0.0.2",
    ];
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let entry = match rng.below(10) {
            0 => (*rng.pick(TYPED)).to_owned(),
            1 => format!("{}*{}", word(rng, 3), word(rng, 3)),
            2 => format!("{}?", word(rng, 4)),
            3 => format!("{}\\*", word(rng, 4)),
            4 => format!("*{}", word(rng, 4)),
            5 => format!("{}*", word(rng, 4)),
            _ => word(rng, 7),
        };
        out.push(entry);
    }
    out
}

fn ip_entries(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 5 {
            0 => format!("10.0.{}.{}", rng.below(4), rng.below(8)),
            1 => format!("2001:DB8::{:x}", rng.below(40)),
            2 => format!("::ffff:10.0.{}.{}", rng.below(4), rng.below(8)),
            3 => format!("10.0.{}.*", rng.below(4)),
            _ => format!("2001:db8:0:0::{:X}", rng.below(40)),
        })
        .collect()
}

fn size_entries(rng: &mut Rng, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 4 {
            0 => rng.below(300).to_string(),
            1 => format!("{}.0", rng.below(300)),
            2 => format!("{}KiB", rng.below(3)),
            _ => format!("{}e1", rng.below(30)),
        })
        .collect()
}

/// YAML single-quoted.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// (field, modifiers, list) of every rule: one rule each, `r0`, `r1` …
const ENTRIES: &[(&str, &str, &str)] = &[
    ("raw.requestParameters.v", "", "words"),
    ("raw.requestParameters.v", "|cased", "words"),
    ("raw.requestParameters.v", "|contains", "words"),
    ("raw.requestParameters.v", "|contains|cased", "words"),
    ("raw.requestParameters.v", "|startswith", "words"),
    ("raw.requestParameters.v", "|startswith|cased", "words"),
    ("raw.requestParameters.v", "|endswith", "words"),
    ("raw.requestParameters.v", "|endswith|cased", "words"),
    ("client.user_agent", "|in", "words"),
    ("client.user_agent", "|contains", "words"),
    ("network.ip", "|in", "ips"),
    ("raw.sourceIPAddress", "", "ips"),
    ("bytes", "", "sizes"),
    ("raw.additionalEventData.bytesTransferredOut", "", "sizes"),
];

/// The three forms of the same rules.
fn write_packs(dir: &Dir, lists: &[(&str, &[String])]) -> [PathBuf; 3] {
    let mut inline = String::from("lists:\n");
    let mut from_file = String::from("lists:\n");
    for (name, entries) in lists {
        let _ = writeln!(inline, "  {name}:");
        for e in *entries {
            let _ = writeln!(inline, "    - {}", quoted(e));
        }
        let _ = writeln!(from_file, "  {name}: {{file: {name}.txt}}");
        let mut text = format!("# {name}, generated\n\n");
        for e in *entries {
            let _ = writeln!(text, "{e}");
        }
        dir.write(&format!("file/{name}.txt"), &text);
    }
    let mut single = String::new();
    for (i, (field, modifiers, list)) in ENTRIES.iter().enumerate() {
        let rule = format!(
            "---\nid: r{i}\ndetection:\n  sel: {{{field}{modifiers}: ${list}}}\n  condition: sel\n"
        );
        inline.push_str(&rule);
        from_file.push_str(&rule);
        let _ = write!(single, "---\nid: r{i}\ndetection:\n");
        let entries = lists.iter().find(|(n, _)| n == list).unwrap().1;
        for (j, e) in entries.iter().enumerate() {
            let _ = writeln!(single, "  sel_{j}: {{{field}{modifiers}: {}}}", quoted(e));
        }
        single.push_str("  condition: 1 of sel_*\n");
    }
    [
        dir.write("inline/rules.yml", &inline),
        dir.write("file/rules.yml", &from_file),
        dir.write("single/rules.yml", &single),
    ]
}

/// A CloudTrail S3 read whose `requestParameters.v`, user agent, source address and bytes
/// are given.
fn record(v: &serde_json::Value, agent: &str, ip: &str, bytes: &serde_json::Value) -> String {
    serde_json::json!({
        "eventVersion": "1.08", "eventTime": "2024-08-01T10:00:00Z",
        "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "readOnly": true,
        "sourceIPAddress": ip, "userAgent": agent,
        "additionalEventData": {"bytesTransferredOut": bytes},
        "requestParameters": {"bucketName": "finance", "key": "q3.csv", "v": v},
        "userIdentity": {"type": "AssumedRole", "accountId": "1", "accessKeyId": "ASIAANALYST"}
    })
    .to_string()
}

/// A value near the list: an entry as written, in other case, inside a longer text, cut
/// short, or unrelated; as text, a number, a flag or an array.
fn near(rng: &mut Rng, entries: &[String]) -> String {
    let e = rng.pick(entries).replace(['*', '?', '\\'], "");
    match rng.below(6) {
        0 => e,
        1 => recase(rng, &e),
        2 => format!("{}{}", word(rng, 3), recase(rng, &e)),
        3 => format!("{}{}", e, word(rng, 3)),
        4 => e.chars().skip(1).collect(),
        _ => word(rng, 8),
    }
}

fn events(rng: &mut Rng, words: &[String], ips: &[String], sizes: &[String]) -> Vec<String> {
    use serde_json::Value;
    (0..600)
        .map(|_| {
            let v = match rng.below(8) {
                0 => Value::from(*rng.pick(&[5.0, 1000.0, 12.5, -0.0, 0.0, 7.0])),
                1 => Value::from(*rng.pick(&[5_i64, 1000, 0, 3])),
                2 => Value::from(rng.chance(50)),
                3 => Value::from(vec![near(rng, words), near(rng, words)]),
                _ => Value::from(near(rng, words)),
            };
            let ip = match rng.below(4) {
                0 => format!("10.0.{}.{}", rng.below(5), rng.below(9)),
                1 => format!("2001:db8::{:x}", rng.below(50)),
                2 => format!("::ffff:10.0.{}.{}", rng.below(5), rng.below(9)),
                _ => near(rng, ips),
            };
            let bytes = match rng.below(3) {
                0 => Value::from(rng.below(300) as f64),
                1 => Value::from(rng.below(3) as f64 * 1024.0),
                // Whole, not negative, within 2^53: another byte count rejects the record.
                _ => Value::from(
                    near(rng, sizes)
                        .parse::<f64>()
                        .map_or(7.0, |x| x.abs().trunc().min(1e15)),
                ),
            };
            record(&v, &near(rng, words), &ip, &bytes)
        })
        .collect()
}

fn load(path: &Path) -> RuleSet {
    RuleSet::load(&[path.to_path_buf()]).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_list_inline_from_a_file_or_compared_one_by_one_gives_the_same_answers() {
    let dir = Dir::new("same");
    let mut rng = Rng(0x5EED_1157);
    let words = text_entries(&mut rng, 300);
    let ips = ip_entries(&mut rng, 200);
    let sizes = size_entries(&mut rng, 100);
    let packs = write_packs(&dir, &[("words", &words), ("ips", &ips), ("sizes", &sizes)]);
    let [inline, file, single] = packs.map(|p| load(&p));
    let records = events(&mut rng, &words, &ips, &sizes);

    let normalizer = Normalizer::default();
    let mut cx = EvalCx::default();
    let mut hits = vec![0usize; ENTRIES.len()];
    let mut differences = Vec::new();
    for r in &records {
        let scratch = Bump::new();
        let event = normalizer
            .normalize(r.as_bytes(), &scratch)
            .unwrap_or_else(|e| panic!("{e}: {r}"));
        for (i, entry) in ENTRIES.iter().enumerate() {
            let mut answer = |set: &RuleSet| {
                cx.reset();
                set.rules[i].detection.matches(&event, &mut cx)
            };
            let want = answer(&single);
            let got = (answer(&inline), answer(&file));
            if got != (want, want) {
                differences.push(format!(
                    "{entry:?}: one by one {want}, inline and file {got:?}: {r}"
                ));
            }
            hits[i] += usize::from(want);
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // Every rule both matched and missed: the comparison is not of two constant answers.
    for (i, entry) in ENTRIES.iter().enumerate() {
        assert!(
            hits[i] > 0 && hits[i] < records.len(),
            "{entry:?} matched {} of {} events",
            hits[i],
            records.len()
        );
    }
}

#[test]
fn list_files_take_lines_as_written() {
    let dir = Dir::new("lines");
    dir.write(
        "names.txt",
        "\u{FEFF}# blocked accounts\r\n\r\n  mallory  \r\n#not-a-comment is a comment\r\nEve\t\r\nbob # not a comment\r\nwild*card\n",
    );
    let rules = dir.write(
        "rules.yml",
        "lists:\n  names: {file: names.txt}\n  more: [$names, trudy]\n\
         id: blocked\ndetection:\n  sel: {raw.requestParameters.v: $more}\n  condition: sel\n",
    );
    let set = load(&rules);
    let normalizer = Normalizer::default();
    let check = |v: &str| {
        let scratch = Bump::new();
        let r = record(&v.into(), "ua", "10.0.0.1", &1.0.into());
        let event = normalizer.normalize(r.as_bytes(), &scratch).unwrap();
        set.rules[0]
            .detection
            .matches(&event, &mut EvalCx::default())
    };
    for yes in [
        "mallory",
        "MALLORY",
        "eve",
        "bob # not a comment",
        "wildXcard",
        "trudy",
    ] {
        assert!(check(yes), "{yes}");
    }
    for no in [
        "  mallory",
        "# blocked accounts",
        "#not-a-comment is a comment",
        "bob",
        "",
    ] {
        assert!(!check(no), "{no}");
    }
}

/// Equality only: at this size an automaton takes tens of seconds to build in a debug build;
/// `benches/ratios.rs` (`lists/…`) builds and times them at a million entries.
#[test]
fn a_million_entry_list_file_loads_and_matches() {
    let dir = Dir::new("million");
    let mut text = String::with_capacity(24 << 20);
    for i in 0..1_000_000u32 {
        let _ = writeln!(text, "host-{i:07}.bad.example");
    }
    dir.write("bad-hosts.txt", &text);
    let rules = dir.write(
        "rules.yml",
        "lists:\n  bad_hosts: {file: bad-hosts.txt}\n\
         id: exact\ndetection:\n  sel: {raw.requestParameters.v|in: $bad_hosts}\n  condition: sel\n",
    );
    let set = load(&rules);
    let normalizer = Normalizer::default();
    let check = |v: &str| {
        let scratch = Bump::new();
        let r = record(&v.into(), "ua", "10.0.0.1", &1.0.into());
        let event = normalizer.normalize(r.as_bytes(), &scratch).unwrap();
        set.rules[0]
            .detection
            .matches(&event, &mut EvalCx::default())
    };
    assert!(check("host-0999999.bad.example"));
    assert!(check("HOST-0000000.Bad.Example"));
    assert!(check("host-0531441.bad.example"));
    assert!(!check("host-1000000.bad.example"));
    assert!(!check("host-0999999.bad.example."));
    assert!(!check("host-099999.bad.example"));
}
