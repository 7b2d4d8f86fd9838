//! The text form of rule files: what the YAML says, with the line and column of every item.
//!
//! A file is parsed once into a generic YAML tree whose every node and key carries its location
//! (serde-saphyr's `Spanned`), then read into the plain structs below. Reading checks shape only
//! — which keys exist, what is a mapping, a list or a scalar, what is required — and keeps going
//! after an error so that one load reports every problem. Meaning (field names, modifiers,
//! regexes, durations, conditions) is checked by `compile`.
//!
//! Why not `#[derive(Deserialize)]` on these structs: serde stops at the first error, and
//! `deny_unknown_fields` would report one unknown key per document. Falco's rule reader works
//! the same way, over position-carrying YAML nodes.
//!
//! # The language
//!
//! A file holds one rule, or several YAML documents separated by `---`. A file of only
//! `lists:`/`placeholders:`/`macros:` is shared by the other files of its directory. A file
//! whose top level is a sequence is a Falco rule file, read by `falco` into the same documents.
//! A document with `filter:` is a Sigma filter (`FilterSpec`).
//!
//! ```yaml
//! id: example.escalate_then_bulk_read      # required, unique in the pack
//! name: escalate_then_bulk_read           # optional, unique: correlations refer by it too
//! title: Bulk read after privilege escalation   # default: the id
//! version: 3                              # text or number, default "1"
//! level: critical                         # informational|low|medium|high|critical (medium)
//! tags: [attack.collection]
//! description: …                          # also references, author, date, modified,
//!                                         # status, falsepositives, license: not used
//! lists:
//!   bulk_kinds: [object, secret, $more_kinds]   # `$name` refers to a list, `$$` is a `$`
//!   bad_domains: {file: bad-domains.txt}  # one entry a line, next to this file
//! macros:
//!   successful: {outcome: success}        # a selection…
//!   trusted: from_office or break_glass   # …or a condition over macros
//! detection:
//!   escalation:                           # a list of maps: any of them
//!     - action|in: $iam_admin_actions
//!     - action: 'okta:user.account.privilege.*'   # `*` and `?` wildcards
//!   bulk_read:                            # a map: all entries hold
//!     operation: read
//!     resource.type|in: $bulk_kinds
//!     bytes|gte: 1MiB
//!   condition: escalation or bulk_read and not 1 of filter_*   # not > and > or
//! exceptions:                             # an event matching one never matches the rule
//!   - {name: break_glass, match: {principal.name|startswith: breakglass-}}
//!   - {name: analytics, fields: [network.via_service], values: [[athena.amazonaws.com]]}
//! session:                                # exactly one kind; none = fire on every match
//!   event_count: {timespan: 5m, gte: 50}
//!   # value_count: {field: network.ip, timespan: 10m, gt: 3}
//!   # value_sum: {field: bytes, timespan: 10m, gt: 1GiB}
//!   # new_value: {field: network.ip, learn: {events: 5, timespan: 10m},
//!   #             tolerance: exact | ip_prefix | {ipv4_prefix: 24, ipv6_prefix: 48}}
//!   # sequence: {maxspan: 15m, until: logout,
//!   #            steps: [{match: escalation}, {match: bulk_read,
//!   #                     aggregate: {event_count: {timespan: 5m, gte: 50}}}]}
//!   # duration: {since: session_start|first_match, limit: 12h, fire: on_timer|on_event,
//!   #            until: logout,             # `until` ends the session for this rule
//!   #            active_within: 2h}         # a timer needs activity this recent
//!   # scope_growth: {field: scopes, learn: {events: 5}}
//! action: {kind: revoke_session, mode: dry_run}   # or `action: step_up`; default alert, enforce
//! suppress: 1h
//! tests:
//!   - {name: escalation then reads, events: escalation.jsonl, expect: {decisions: 1}}
//!   - name: the same, each decision named        # every decision of the replay, in order:
//!     events: escalation.jsonl                   # the line of its last evidence record, its
//!     expect:                                    # session, its rule (default: this one)
//!       decisions:
//!         - {line: 62, session: "aws:111122223333:sts:ASIA…"}
//!         - {line: 63, session: "aws:…", rule: sessionguard.kill_not_enforced}
//!       rejects: 0                               # records allowed to be rejected (default 0)
//! ```
//!
//! A Sigma correlation rule has `correlation:` (and `generate:`) instead of `detection:`; its
//! keys are read and resolved in `correlation`.
//!
//! Modifiers are listed in `modifier` — among them `fieldref`, which compares two fields of
//! the same event (`resource.name|fieldref: principal.name`); the condition grammar is in
//! `condition`. A sequence rule may leave out `condition`: it then looks at the events of any
//! step or of `until`.

use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Location, Spanned};

/// A position in a rule file, 1-based; `0:0` when the file as a whole is meant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub(super) fn of(location: &Location) -> Pos {
        Pos {
            line: usize::try_from(location.line()).unwrap_or(usize::MAX),
            col: usize::try_from(location.column()).unwrap_or(usize::MAX),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One YAML node, as parsed.
#[derive(Debug)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Yaml>),
    Map(Vec<(Yaml, Yaml)>),
}

pub type Yaml = Spanned<Node>;

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    let value = map.next_value()?;
                    entries.push((key, value));
                }
                Ok(Node::Map(entries))
            }
        }
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// A string from the file. `content` says where its characters sit in the source, so that
/// offsets inside it — a token of a condition, a modifier in a key — map to exact lines and
/// columns: where the first one is when the text appears verbatim (plain or simply quoted), or
/// where each run after a fold is when YAML folded it (a block scalar, a plain or quoted scalar
/// over several lines).
#[derive(Clone, Debug)]
pub struct Str {
    pub value: String,
    pub pos: Pos,
    content: Option<Content>,
}

#[derive(Clone, Debug)]
enum Content {
    Verbatim(Pos),
    /// (byte offset in the text, its position), ascending; between two, the text is verbatim.
    Folded(Rc<[(usize, Pos)]>),
}

impl Str {
    /// Text the loader made rather than read: every position in it is `pos`.
    pub fn synthetic(value: impl Into<String>, pos: Pos) -> Str {
        Str {
            value: value.into(),
            pos,
            content: None,
        }
    }

    /// The position of byte `offset` of the text (the string's own position when the text is
    /// not verbatim in the source, e.g. a block scalar or an escaped string).
    pub fn at(&self, offset: usize) -> Pos {
        let offset = offset.min(self.value.len());
        let (from, p) = match &self.content {
            Some(Content::Verbatim(p)) => (0, *p),
            Some(Content::Folded(anchors)) => {
                let k = anchors.partition_point(|(o, _)| *o <= offset);
                match k.checked_sub(1) {
                    Some(k) => anchors[k],
                    None => return self.pos,
                }
            }
            None => return self.pos,
        };
        Pos {
            line: p.line,
            col: p.col
                + self
                    .value
                    .get(from..offset)
                    .map_or(0, |t| t.chars().count()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// This text with its first `len` bytes replaced by `head` (a Sigma field name the
    /// pipeline rewrote): what follows the head keeps its place in the source, so a modifier
    /// after a rewritten field name is still reported where it is written.
    pub fn with_head(&self, len: usize, head: &str) -> Str {
        let rest = self.value.get(len..).unwrap_or_default();
        let anchors: Rc<[(usize, Pos)]> = Rc::from([(0, self.at(0)), (head.len(), self.at(len))]);
        Str {
            value: format!("{head}{rest}"),
            pos: self.pos,
            content: self.content.as_ref().map(|_| Content::Folded(anchors)),
        }
    }
}

/// A scalar value.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("null"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(n) => write!(f, "{n}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Str(s) => f.write_str(s),
        }
    }
}

/// A scalar with its position: in the rule file, or in the list file it was read from.
#[derive(Clone, Debug)]
pub struct Item {
    pub value: Scalar,
    pub pos: Pos,
    /// The list file the item is a line of; `None` for an item written in the rule file.
    pub origin: Option<Rc<ListFile>>,
}

impl Item {
    pub fn new(value: Scalar, pos: Pos) -> Item {
        Item {
            value,
            pos,
            origin: None,
        }
    }
}

/// A plain-text list file (`lists: {name: {file: path}}`), where its entries came from.
#[derive(Debug, PartialEq, Eq)]
pub struct ListFile {
    pub path: PathBuf,
    /// What the file holds: "list", or "placeholder".
    pub what: &'static str,
    /// The list's name in the rule file.
    pub name: String,
}

/// One document of a rule file: a rule, a Sigma filter, or only `lists:`/`placeholders:`/`macros:`
/// definitions.
#[derive(Debug, Default)]
pub struct Doc {
    /// Where the document's mapping starts.
    pub pos: Pos,
    /// True when the document has any key besides `lists`, `placeholders` and `macros` (a rule,
    /// or a filter: see `filter`).
    pub is_rule: bool,
    pub title: Option<Str>,
    pub id: Option<Str>,
    /// Sigma's `name` of a rule (unique in the pack), by which filters and correlations may
    /// refer to it.
    pub name: Option<Str>,
    pub version: Option<Str>,
    pub level: Option<Str>,
    pub tags: Vec<Str>,
    /// Sigma's `logsource`: the rule is for these sources, in their vendors' field names.
    pub logsource: Option<LogsourceSpec>,
    pub detection: Option<DetectionSpec>,
    pub lists: Vec<ListSpec>,
    /// Values for Sigma's `%name%` placeholders (`field|expand: '%name%'`), written like lists.
    pub placeholders: Vec<ListSpec>,
    pub macros: Vec<MacroSpec>,
    pub exceptions: Vec<ExceptionSpec>,
    pub session: Option<SessionSpec>,
    pub action: Option<ActionSpec>,
    pub suppress: Option<Item>,
    pub tests: Vec<TestSpec>,
    /// The text a decision gives as its reason, with event fields in it (a Falco rule's
    /// `output`; rule files do not write one).
    pub output: Vec<OutputPart>,
    /// Set when the document is a Sigma filter rather than a rule.
    pub filter: Option<FilterSpec>,
    /// A Sigma correlation rule: over the matches of the rules it names.
    pub correlation: Option<super::correlation::CorrelationSpec>,
    /// A correlation's `generate`: the rules it names also decide on their own.
    pub generate: Option<Item>,
}

impl Doc {
    /// A rule (not definitions only, not a filter).
    pub fn is_rule_doc(&self) -> bool {
        self.is_rule && self.filter.is_none()
    }
}

/// A Sigma filter (`filter:`): the rules it applies to, and the selections and condition each
/// of their matches must also meet (`condition: not selection` drops what `selection` matches).
#[derive(Debug)]
pub struct FilterSpec {
    /// `None` when missing or unusable (reported while reading).
    pub rules: Option<FilterRules>,
    pub selections: Vec<(Str, SelectionSpec)>,
    pub condition: Option<Str>,
}

/// What `rules:` of a filter names.
#[derive(Debug)]
pub enum FilterRules {
    /// Rule ids or names.
    Named(Vec<Str>),
    /// `any` (or `all`): every rule whose logsource the filter's covers.
    Any(Str),
}

/// A piece of a rule's output text.
#[derive(Debug)]
pub enum OutputPart {
    Text(String),
    /// A field name, as a selection key writes it.
    Field(Str),
}

/// Sigma's `logsource`: `product`, `service`, `category` (and `definition`, prose).
#[derive(Debug)]
pub struct LogsourceSpec {
    pub pos: Pos,
    pub product: Option<Str>,
    pub service: Option<Str>,
    pub category: Option<Str>,
}

#[derive(Debug)]
pub struct DetectionSpec {
    pub pos: Pos,
    pub selections: Vec<(Str, SelectionSpec)>,
    pub condition: Option<Str>,
    /// `condition` is written, though perhaps in error (then reported where it is).
    pub condition_written: bool,
}

/// A selection: any of `groups` (a list of maps), each of whose entries must all hold (a map).
#[derive(Debug)]
pub struct SelectionSpec {
    pub pos: Pos,
    pub groups: Vec<Vec<EntrySpec>>,
}

/// `field|modifier|modifier: value` (or a list of values).
#[derive(Debug)]
pub struct EntrySpec {
    pub key: Str,
    pub values: ValuesSpec,
}

#[derive(Debug)]
pub struct ValuesSpec {
    pub pos: Pos,
    /// Written as a YAML list (a single value otherwise).
    pub list: bool,
    pub items: Vec<Item>,
}

#[derive(Debug)]
pub struct ListSpec {
    pub name: Str,
    pub body: ListBody,
}

/// A list's entries: written in the rule file, or one per line of a plain-text file.
#[derive(Debug)]
pub enum ListBody {
    Items(Vec<Item>),
    /// `{file: blocklist.txt}`, relative to the rule file's directory.
    File(Str),
}

#[derive(Debug)]
pub struct MacroSpec {
    pub name: Str,
    pub body: MacroBody,
}

#[derive(Debug)]
pub enum MacroBody {
    /// A selection, as in `detection`.
    Selection(SelectionSpec),
    /// A condition over other macros (Falco style).
    Condition(Str),
}

#[derive(Debug)]
pub struct ExceptionSpec {
    pub pos: Pos,
    pub name: Option<Str>,
    pub selection: SelectionSpec,
}

/// `gt: 10` (exactly one comparison of gt/gte/lt/lte/eq).
#[derive(Debug)]
pub struct ThresholdSpec {
    pub op: Str,
    pub value: Item,
}

#[derive(Debug, Default)]
pub struct LearnSpec {
    pub events: Option<Item>,
    pub timespan: Option<Item>,
}

#[derive(Debug)]
pub enum ToleranceSpec {
    /// `exact`, `ip_prefix`, … written as a word.
    Named(Str),
    Prefixes {
        pos: Pos,
        v4: Option<Item>,
        v6: Option<Item>,
    },
}

/// `event_count`, `value_count` or `value_sum`, in `session:` or a sequence step's `aggregate:`.
#[derive(Debug)]
pub struct AggregateSpec {
    /// The kind's key (`event_count` …).
    pub kind: Str,
    pub field: Option<Str>,
    pub timespan: Item,
    pub threshold: ThresholdSpec,
}

#[derive(Debug)]
pub struct StepSpec {
    pub pos: Pos,
    pub condition: Str,
    pub aggregate: Option<AggregateSpec>,
}

#[derive(Debug)]
pub enum SessionSpec {
    Aggregate(AggregateSpec),
    NewValue {
        kind: Str,
        field: Str,
        learn: Option<LearnSpec>,
        tolerance: Option<ToleranceSpec>,
    },
    Sequence {
        kind: Str,
        maxspan: Item,
        steps: Vec<StepSpec>,
        until: Option<Str>,
    },
    Duration {
        kind: Str,
        since: Option<Str>,
        limit: Item,
        fire: Option<Str>,
        until: Option<Str>,
        active_within: Option<Item>,
    },
    ScopeGrowth {
        kind: Str,
        field: Option<Str>,
        learn: Option<LearnSpec>,
    },
    /// `agent_grant: {check: outside | ended | budget | role}` (docs/agents.md).
    AgentGrant {
        kind: Str,
        check: Str,
    },
}

#[derive(Debug)]
pub struct ActionSpec {
    pub kind: Option<Str>,
    pub mode: Option<Str>,
}

#[derive(Debug)]
pub struct TestSpec {
    pub pos: Pos,
    pub name: Option<Str>,
    pub events: Str,
    pub decisions: DecisionsSpec,
    /// How many records of `events` may be rejected; absent: none.
    pub rejects: Option<Item>,
}

/// `expect: {decisions: …}`: a count of the rule's decisions, or every decision listed.
#[derive(Debug)]
pub enum DecisionsSpec {
    Count(Item),
    List(Vec<DecisionSpec>),
}

/// One listed decision: `{line: 12, session: "aws:…", rule: sessionguard.kill_not_enforced}`.
#[derive(Debug)]
pub struct DecisionSpec {
    pub pos: Pos,
    pub line: Item,
    pub session: Str,
    pub rule: Option<Str>,
}

/// A shape or syntax problem found while reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub pos: Pos,
    pub message: String,
    /// Set when `pos` is in a list file rather than in the rule file.
    pub origin: Option<Rc<ListFile>>,
    /// The rule the problem makes unloadable, when that is not the one written around `pos`
    /// (a Falco macro is checked in each rule that uses it).
    pub rule: Option<String>,
}

impl SpecError {
    pub fn new(pos: Pos, message: impl Into<String>) -> SpecError {
        SpecError {
            pos,
            message: message.into(),
            origin: None,
            rule: None,
        }
    }

    /// A problem with one item, wherever the item was read from.
    pub fn item(item: &Item, message: impl Into<String>) -> SpecError {
        SpecError {
            pos: item.pos,
            message: message.into(),
            origin: item.origin.clone(),
            rule: None,
        }
    }
}

/// Keys a rule document may have.
const RULE_KEYS: &[&str] = &[
    "title",
    "id",
    "name",
    "version",
    "description",
    "level",
    "tags",
    "references",
    "author",
    "date",
    "modified",
    "status",
    "falsepositives",
    "license",
    "related",
    "fields",
    "taxonomy",
    "scope",
    "regression_tests_path",
    "simulation",
    "correlation",
    "generate",
    "logsource",
    "filter",
    "detection",
    "lists",
    "placeholders",
    "macros",
    "exceptions",
    "session",
    "action",
    "suppress",
    "tests",
];

/// Session kinds, each the single key of `session:`.
pub const SESSION_KINDS: &[&str] = &[
    "event_count",
    "value_count",
    "value_sum",
    "new_value",
    "sequence",
    "duration",
    "scope_growth",
    "agent_grant",
];

const AGGREGATE_KINDS: &[&str] = &["event_count", "value_count", "value_sum"];
const COMPARISONS: &[&str] = &["gt", "gte", "lt", "lte", "eq"];

/// Parses a rule file into its documents. `Err` when the YAML itself is broken: nothing of the
/// file can be trusted then. Otherwise the documents read, with every shape error found.
pub fn read_file(src: &str) -> Result<(Vec<Doc>, Vec<SpecError>), SpecError> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    // YAML 1.2 booleans only: `on`, `yes`, `no` stay strings (Okta event types, country `NO`).
    options.strict_booleans = true;
    let trees = serde_saphyr::from_multiple_with_options::<Yaml>(src, options)
        .map_err(|e| yaml_error(&e))?;
    let mut reader = Reader::new(src);
    let trees: Vec<&Yaml> = trees
        .iter()
        .filter(|tree| !matches!(tree.value, Node::Null))
        .collect();
    // A file whose top level is a sequence is Falco's: items of `rule:`, `macro:`, `list:`.
    if trees
        .first()
        .is_some_and(|tree| matches!(tree.value, Node::Seq(_)))
    {
        let docs = super::falco::read(&mut reader, &trees);
        return Ok((docs, reader.errors));
    }
    let docs = trees
        .into_iter()
        .filter_map(|tree| reader.doc(tree))
        .collect();
    Ok((docs, reader.errors))
}

fn yaml_error(e: &serde_saphyr::Error) -> SpecError {
    let pos = e
        .location()
        .map_or(Pos { line: 1, col: 1 }, |l| Pos::of(&l));
    let mut message = e.to_string();
    // The location is reported separately; drop serde-saphyr's trailing copy of it.
    if let Some(i) = message.rfind(" at line ") {
        if message[i..].contains("column") {
            message.truncate(i);
        }
    }
    // The parser's size budget (it stops pathological YAML): a file this large is a list
    // that belongs in a list file.
    if let serde_saphyr::Error::Budget {
        breach:
            breach @ (BudgetBreach::Nodes { .. }
            | BudgetBreach::Events { .. }
            | BudgetBreach::ScalarBytes { .. }),
        ..
    } = e
    {
        return SpecError::new(
            pos,
            format!(
                "the file is too large for a rule file ({breach:?}); a long list belongs in a \
                 list file: `lists: {{name: {{file: list.txt}}}}`"
            ),
        );
    }
    SpecError::new(pos, format!("invalid YAML: {message}"))
}

/// Where each run of a folded text starts in the source `raw` (whose first byte is at
/// `start`): the text and the source hold the same characters but for whitespace — YAML turned
/// line breaks and indentation into a space or a newline. `None` when they differ otherwise
/// (escapes in a quoted scalar): positions in the text then fall back to the scalar's.
fn fold_anchors(raw: &str, text: &str, start: Pos) -> Option<Vec<(usize, Pos)>> {
    let (rb, tb) = (raw.as_bytes(), text.as_bytes());
    let mut pos = start;
    let mut j = 0;
    if matches!(rb.first(), Some(b'"' | b'\'')) {
        j = 1;
        pos.col += 1;
    }
    let mut anchors = vec![(0, pos)];
    let mut i = 0;
    while i < tb.len() {
        if tb[i].is_ascii_whitespace() {
            while i < tb.len() && tb[i].is_ascii_whitespace() {
                i += 1;
            }
            while j < rb.len() && rb[j].is_ascii_whitespace() {
                if rb[j] == b'\n' {
                    pos.line += 1;
                    pos.col = 1;
                } else {
                    pos.col += 1;
                }
                j += 1;
            }
            anchors.push((i, pos));
            continue;
        }
        if rb.get(j) != Some(&tb[i]) {
            return None;
        }
        // Columns count characters: a continuation byte is part of the one before.
        if tb[i] & 0xC0 != 0x80 {
            pos.col += 1;
        }
        i += 1;
        j += 1;
    }
    Some(anchors)
}

/// " (did you mean `x`?)" when `name` is a likely misspelling of one of `candidates`.
pub fn did_you_mean<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> String {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(&name.to_ascii_lowercase(), &c.to_ascii_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    match best {
        // Distance 0 is the same name in other case: the hint gives the spelling that works.
        Some((d, c)) if d <= (name.chars().count() / 3).clamp(1, 3) => {
            format!(" (did you mean `{c}`?)")
        }
        _ => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    // Optimal string alignment: a swap of two neighbours (`titel`) counts as one edit.
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The keys of one mapping, checked against the allowed set.
pub(super) struct Keys<'y> {
    pub(super) pos: Pos,
    pub(super) entries: Vec<(Str, &'y Yaml)>,
}

impl<'y> Keys<'y> {
    pub(super) fn get(&self, name: &str) -> Option<&'y Yaml> {
        self.entries
            .iter()
            .find(|(k, _)| k.value == name)
            .map(|(_, v)| *v)
    }

    pub(super) fn key(&self, name: &str) -> Option<&Str> {
        self.entries
            .iter()
            .find(|(k, _)| k.value == name)
            .map(|(k, _)| k)
    }
}

pub(super) struct Reader<'s> {
    src: &'s str,
    pub(super) errors: Vec<SpecError>,
}

impl<'s> Reader<'s> {
    pub(super) fn new(src: &'s str) -> Reader<'s> {
        Reader {
            src,
            errors: Vec::new(),
        }
    }

    pub(super) fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(SpecError::new(pos, message));
    }

    fn str_of(&self, y: &Yaml, value: String) -> Str {
        let pos = Pos::of(&y.referenced);
        let span = y.referenced.span();
        let content = span
            .byte_offset()
            .zip(span.byte_len())
            .and_then(|(off, len)| {
                let off = usize::try_from(off).ok()?;
                let len = usize::try_from(len).ok()?;
                self.src.get(off..off.checked_add(len)?)
            })
            .and_then(|raw| {
                if raw == value {
                    Some(Content::Verbatim(pos))
                } else {
                    // Quoted, folded or both: one anchor for a quoted scalar on one line.
                    fold_anchors(raw, &value, pos).map(|a| Content::Folded(a.into()))
                }
            });
        Str {
            value,
            pos,
            content,
        }
    }

    /// A mapping's entries; keys must be strings (numbers and booleans are taken as written).
    pub(super) fn map<'y>(&mut self, y: &'y Yaml, what: &str) -> Option<Keys<'y>> {
        let Node::Map(entries) = &y.value else {
            self.err(Pos::of(&y.referenced), format!("{what} must be a mapping"));
            return None;
        };
        let mut keys = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match self.scalar_text(k) {
                Some(s) => keys.push((s, v)),
                None => self.err(Pos::of(&k.referenced), format!("{what}: keys must be text")),
            }
        }
        Some(Keys {
            pos: Pos::of(&y.referenced),
            entries: keys,
        })
    }

    /// Like `map`, reporting keys outside `allowed`.
    pub(super) fn fields<'y>(
        &mut self,
        y: &'y Yaml,
        what: &str,
        allowed: &[&str],
    ) -> Option<Keys<'y>> {
        let keys = self.map(y, what)?;
        for (k, _) in &keys.entries {
            if !allowed.contains(&k.value.as_str()) {
                let hint = did_you_mean(&k.value, allowed.iter().copied());
                let message = if hint.is_empty() {
                    format!(
                        "unknown key `{}` in {what} (expected one of: {})",
                        k.value,
                        allowed.join(", ")
                    )
                } else {
                    format!("unknown key `{}` in {what}{hint}", k.value)
                };
                self.err(k.pos, message);
            }
        }
        Some(keys)
    }

    fn scalar_text(&self, y: &Yaml) -> Option<Str> {
        let text = match &y.value {
            Node::Str(s) => s.clone(),
            Node::Int(n) => n.to_string(),
            Node::Float(x) => x.to_string(),
            Node::Bool(b) => b.to_string(),
            Node::Null | Node::Seq(_) | Node::Map(_) => return None,
        };
        Some(self.str_of(y, text))
    }

    /// A text scalar (numbers are taken as written, e.g. `version: 2`).
    pub(super) fn text(&mut self, y: &Yaml, what: &str) -> Option<Str> {
        let s = self.scalar_text(y);
        if s.is_none() {
            self.err(Pos::of(&y.referenced), format!("{what} must be text"));
        }
        s
    }

    /// The number as written in the source (`1.10` stays `1.10`), else as parsed.
    fn text_as_written(&mut self, y: &Yaml, what: &str) -> Option<Str> {
        let mut s = self.text(y, what)?;
        if matches!(y.value, Node::Float(_) | Node::Int(_)) {
            let span = y.referenced.span();
            let written = span.byte_offset().zip(span.byte_len()).and_then(|(o, l)| {
                let o = usize::try_from(o).ok()?;
                self.src.get(o..o + usize::try_from(l).ok()?)
            });
            if let Some(w) = written {
                s.value = w.to_owned();
            }
        }
        Some(s)
    }

    pub(super) fn item(&mut self, y: &Yaml, what: &str) -> Option<Item> {
        let pos = Pos::of(&y.referenced);
        let value = match &y.value {
            Node::Null => Scalar::Null,
            Node::Bool(b) => Scalar::Bool(*b),
            Node::Int(n) => Scalar::Int(*n),
            Node::Float(x) => Scalar::Float(*x),
            Node::Str(s) => Scalar::Str(s.clone()),
            Node::Seq(_) | Node::Map(_) => {
                self.err(pos, format!("{what} must be a single value"));
                return None;
            }
        };
        Some(Item::new(value, pos))
    }

    /// A list of text, or one text.
    pub(super) fn texts(&mut self, y: &Yaml, what: &str) -> Vec<Str> {
        match &y.value {
            Node::Seq(items) => items.iter().filter_map(|i| self.text(i, what)).collect(),
            Node::Null => Vec::new(),
            _ => self.text(y, what).into_iter().collect(),
        }
    }

    fn doc(&mut self, y: &Yaml) -> Option<Doc> {
        let keys = self.map(y, "a rule document")?;
        let mut doc = Doc {
            pos: keys.pos,
            ..Doc::default()
        };
        for (k, v) in &keys.entries {
            let v: &Yaml = v;
            match k.value.as_str() {
                "lists" => {
                    doc.lists = self.lists(v, "list");
                    continue;
                }
                "placeholders" => {
                    doc.placeholders = self.lists(v, "placeholder");
                    continue;
                }
                "macros" => {
                    doc.macros = self.macros(v);
                    continue;
                }
                _ => doc.is_rule = true,
            }
            match k.value.as_str() {
                "title" => doc.title = self.text(v, "title"),
                "id" => doc.id = self.text(v, "id"),
                "name" => doc.name = self.text(v, "name"),
                "filter" => doc.filter = self.filter(v),
                "version" => doc.version = self.text_as_written(v, "version"),
                "level" => doc.level = self.text(v, "level"),
                "tags" => doc.tags = self.texts(v, "tags"),
                "description"
                | "references"
                | "author"
                | "date"
                | "modified"
                | "status"
                | "falsepositives"
                | "license"
                | "related"
                | "fields"
                | "taxonomy"
                | "scope"
                | "regression_tests_path"
                | "simulation" => {}
                "correlation" => doc.correlation = self.correlation(v),
                "generate" => doc.generate = self.item(v, "generate"),
                "logsource" => doc.logsource = self.logsource(v),
                "detection" => doc.detection = self.detection(v),
                "exceptions" => doc.exceptions = self.exceptions(v),
                "session" => doc.session = self.session(v),
                "action" => doc.action = self.action(v),
                "suppress" => doc.suppress = self.item(v, "suppress"),
                "tests" => doc.tests = self.tests(v),
                other => {
                    let hint = did_you_mean(other, RULE_KEYS.iter().copied());
                    self.err(k.pos, format!("unknown key `{other}` in rule{hint}"));
                }
            }
        }
        if doc.filter.is_some() {
            self.filter_doc(&doc, &keys);
        } else if doc.is_rule && doc.id.is_none() {
            self.err(doc.pos, "missing required key `id`");
        }
        Some(doc)
    }

    /// A filter document has a logsource and no rule logic of its own.
    fn filter_doc(&mut self, doc: &Doc, keys: &Keys<'_>) {
        if doc.logsource.is_none() && keys.get("logsource").is_none() {
            self.err(doc.pos, "a Sigma filter needs a `logsource`");
        }
        for key in [
            "detection",
            "session",
            "exceptions",
            "action",
            "suppress",
            "tests",
        ] {
            if let Some(k) = keys.key(key) {
                let message = if key == "detection" {
                    "a Sigma filter has no `detection`: its selections and condition go under \
                     `filter:`"
                        .to_owned()
                } else {
                    format!("`{key}` does not apply to a Sigma filter")
                };
                self.err(k.pos, message);
            }
        }
    }

    /// `filter:` — `rules`, `condition`, and selections under any other name.
    fn filter(&mut self, y: &Yaml) -> Option<FilterSpec> {
        let keys = self.map(y, "filter")?;
        let mut selections = Vec::new();
        for (k, v) in &keys.entries {
            if k.value != "rules" && k.value != "condition" {
                let what = format!("filter selection `{}`", k.value);
                if let Some(sel) = self.selection(v, &what) {
                    selections.push((k.clone(), sel));
                }
            }
        }
        let rules = keys.get("rules").and_then(|v| match &v.value {
            Node::Str(s) if s.eq_ignore_ascii_case("any") || s.eq_ignore_ascii_case("all") => {
                Some(FilterRules::Any(self.str_of(v, s.clone())))
            }
            _ => {
                let named = self.texts(v, "a rule id or name");
                if named.is_empty() {
                    self.err(
                        Pos::of(&v.referenced),
                        "filter: `rules` is empty; name the rules (ids or names), or write \
                         `rules: any` for every rule of the logsource",
                    );
                    return None;
                }
                Some(FilterRules::Named(named))
            }
        });
        if keys.get("rules").is_none() {
            self.err(
                keys.pos,
                "filter: missing `rules` (the ids or names of the rules it applies to, or `any`)",
            );
        }
        let condition = self
            .required(&keys, "condition", "filter")
            .and_then(|c| self.condition(c, "filter condition"));
        if selections.is_empty() {
            self.err(keys.pos, "filter: needs a selection for its condition");
        }
        Some(FilterSpec {
            rules,
            selections,
            condition,
        })
    }

    fn detection(&mut self, y: &Yaml) -> Option<DetectionSpec> {
        let keys = self.map(y, "detection")?;
        let mut spec = DetectionSpec {
            pos: keys.pos,
            selections: Vec::new(),
            condition: None,
            condition_written: false,
        };
        for (k, v) in &keys.entries {
            if k.value == "condition" {
                spec.condition = self.condition(v, "condition");
                spec.condition_written = true;
            } else if k.value == "timeframe" {
                self.err(
                    k.pos,
                    "`timeframe` is not used: windows go in `session:` \
                     (e.g. `event_count: {timespan: 5m, gte: 10}`)",
                );
            } else if let Some(sel) = self.selection(v, &format!("selection `{}`", k.value)) {
                spec.selections.push((k.clone(), sel));
            }
        }
        Some(spec)
    }

    fn condition(&mut self, y: &Yaml, what: &str) -> Option<Str> {
        match &y.value {
            Node::Str(s) => Some(self.str_of(y, s.clone())),
            Node::Seq(_) => {
                self.err(
                    Pos::of(&y.referenced),
                    format!("{what} must be one expression; join alternatives with `or`"),
                );
                None
            }
            _ => {
                self.err(Pos::of(&y.referenced), format!("{what} must be text"));
                None
            }
        }
    }

    fn selection(&mut self, y: &Yaml, what: &str) -> Option<SelectionSpec> {
        let pos = Pos::of(&y.referenced);
        let scalar = |y: &Yaml| {
            matches!(
                y.value,
                Node::Str(_) | Node::Int(_) | Node::Float(_) | Node::Bool(_)
            )
        };
        let groups = match &y.value {
            Node::Map(_) => vec![self.entries(y, what)?],
            Node::Seq(items) if items.iter().all(|i| matches!(i.value, Node::Map(_))) => {
                items.iter().filter_map(|i| self.entries(i, what)).collect()
            }
            // Sigma's keywords: values without a field, searched for in the whole record. The
            // entry has no field name (a map key `'|all'` is the same with modifiers).
            Node::Seq(items) if items.iter().all(scalar) => vec![self.keywords(y, what)?],
            _ if scalar(y) => vec![self.keywords(y, what)?],
            Node::Seq(_) => {
                self.err(
                    pos,
                    format!(
                        "{what} mixes `field: value` maps and keywords: write them as two \
                         selections"
                    ),
                );
                return None;
            }
            _ => {
                self.err(
                    pos,
                    format!(
                        "{what} must be a mapping of `field: value`, a list of them, or a list \
                         of keywords"
                    ),
                );
                return None;
            }
        };
        if groups.is_empty() {
            self.err(pos, format!("{what} is empty"));
            return None;
        }
        Some(SelectionSpec { pos, groups })
    }

    /// A selection of keywords: one entry without a field name.
    fn keywords(&mut self, y: &Yaml, what: &str) -> Option<Vec<EntrySpec>> {
        let values = self.values(y, what)?;
        let key = Str::synthetic("", values.pos);
        Some(vec![EntrySpec { key, values }])
    }

    fn entries(&mut self, y: &Yaml, what: &str) -> Option<Vec<EntrySpec>> {
        let keys = self.map(y, what)?;
        if keys.entries.is_empty() {
            self.err(keys.pos, format!("{what} is empty"));
            return None;
        }
        let mut out = Vec::with_capacity(keys.entries.len());
        for (k, v) in keys.entries {
            if let Some(values) = self.values(v, &k.value) {
                out.push(EntrySpec { key: k, values });
            }
        }
        Some(out)
    }

    fn values(&mut self, y: &Yaml, key: &str) -> Option<ValuesSpec> {
        let pos = Pos::of(&y.referenced);
        match &y.value {
            Node::Seq(items) => {
                let before = self.errors.len();
                let items: Vec<Item> = items
                    .iter()
                    .filter_map(|i| self.item(i, &format!("a value of `{key}`")))
                    .collect();
                if items.is_empty() && self.errors.len() == before {
                    self.err(pos, format!("`{key}`: empty list of values"));
                }
                Some(ValuesSpec {
                    pos,
                    list: true,
                    items,
                })
            }
            Node::Map(_) => {
                self.err(
                    pos,
                    format!("`{key}`: a value must be a scalar or a list of scalars"),
                );
                None
            }
            _ => Some(ValuesSpec {
                pos,
                list: false,
                items: vec![self.item(y, key)?],
            }),
        }
    }

    /// `lists:`, or `placeholders:` (`kind` "placeholder"): each a YAML list or `{file: …}`.
    fn lists(&mut self, y: &Yaml, kind: &str) -> Vec<ListSpec> {
        let Some(keys) = self.map(y, &format!("{kind}s")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, v) in keys.entries {
            let body = match &v.value {
                Node::Seq(items) => ListBody::Items(
                    items
                        .iter()
                        .filter_map(|i| self.item(i, &format!("a {kind} item")))
                        .collect(),
                ),
                Node::Map(_) => {
                    let what = format!("{kind} `{}`", name.value);
                    let Some(keys) = self.fields(v, &what, &["file"]) else {
                        continue;
                    };
                    let Some(file) = self
                        .required(&keys, "file", &what)
                        .and_then(|f| self.text(f, "file"))
                    else {
                        continue;
                    };
                    ListBody::File(file)
                }
                _ => {
                    self.err(
                        Pos::of(&v.referenced),
                        format!(
                            "{kind} `{}` must be a YAML list or `{{file: path}}`",
                            name.value
                        ),
                    );
                    continue;
                }
            };
            out.push(ListSpec { name, body });
        }
        out
    }

    fn macros(&mut self, y: &Yaml) -> Vec<MacroSpec> {
        let Some(keys) = self.map(y, "macros") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, v) in keys.entries {
            let body = match &v.value {
                Node::Str(s) => MacroBody::Condition(self.str_of(v, s.clone())),
                _ => match self.selection(v, &format!("macro `{}`", name.value)) {
                    Some(sel) => MacroBody::Selection(sel),
                    None => continue,
                },
            };
            out.push(MacroSpec { name, body });
        }
        out
    }

    fn exceptions(&mut self, y: &Yaml) -> Vec<ExceptionSpec> {
        let Node::Seq(items) = &y.value else {
            self.err(
                Pos::of(&y.referenced),
                "exceptions must be a list of `{name, match}`",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let Some(keys) = self.fields(
                item,
                "exception",
                &["name", "match", "fields", "comps", "values"],
            ) else {
                continue;
            };
            let name = keys
                .get("name")
                .and_then(|n| self.text(n, "exception name"));
            let what = name.as_ref().map_or_else(
                || "exception".to_owned(),
                |n| format!("exception `{}`", n.value),
            );
            let selection = match (keys.get("match"), keys.get("fields")) {
                (Some(m), None) => self.selection(m, &what),
                (None, Some(fields)) => self.falco_exception(&keys, fields, &what),
                (Some(_), Some(_)) => {
                    let pos = keys.key("fields").map_or(keys.pos, |k| k.pos);
                    self.err(
                        pos,
                        format!("{what}: use either `match` or `fields`/`values`"),
                    );
                    None
                }
                (None, None) => {
                    self.err(keys.pos, format!("{what}: missing `match`"));
                    None
                }
            };
            if let Some(selection) = selection {
                out.push(ExceptionSpec {
                    pos: keys.pos,
                    name,
                    selection,
                });
            }
        }
        out
    }

    /// Falco's form: `fields: [a, b]`, optional `comps: [=, in]`, `values: [[x, y], …]`; or a
    /// single `fields: a` with `values: [x, y]`. Each tuple becomes one group of the selection.
    fn falco_exception(
        &mut self,
        keys: &Keys<'_>,
        fields: &Yaml,
        what: &str,
    ) -> Option<SelectionSpec> {
        let single = !matches!(fields.value, Node::Seq(_));
        let names = self.texts(fields, "exception field");
        let comps: Vec<Str> = match keys.get("comps") {
            Some(c) => self.texts(c, "exception comparison"),
            None => Vec::new(),
        };
        if !comps.is_empty() && comps.len() != names.len() {
            self.err(
                comps[0].pos,
                format!(
                    "{what}: {} comparisons for {} fields",
                    comps.len(),
                    names.len()
                ),
            );
            return None;
        }
        let mut modifiers = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            let m = match comps.get(i).map(|c| c.value.as_str()) {
                None | Some("=") => "",
                Some("in") => "|in",
                Some("contains" | "icontains") => "|contains",
                Some("startswith") => "|startswith",
                Some("endswith") => "|endswith",
                Some(other) => {
                    self.err(
                        comps[i].pos,
                        format!(
                            "{what}: unsupported comparison `{other}` \
                             (use =, in, contains, startswith or endswith)"
                        ),
                    );
                    return None;
                }
            };
            modifiers.push(m);
        }
        let Some(values) = keys.get("values") else {
            self.err(keys.pos, format!("{what}: missing `values`"));
            return None;
        };
        let Node::Seq(tuples) = &values.value else {
            self.err(
                Pos::of(&values.referenced),
                format!("{what}: `values` must be a list"),
            );
            return None;
        };
        let entry = |reader: &mut Self, i: usize, y: &Yaml| -> Option<EntrySpec> {
            let name = &names[i];
            let key = Str {
                value: format!("{}{}", name.value, modifiers[i]),
                pos: name.pos,
                content: None,
            };
            let values = reader.values(y, &name.value)?;
            Some(EntrySpec { key, values })
        };
        let mut groups = Vec::new();
        if single {
            if names.len() == 1 {
                let mut key_values = Vec::new();
                for v in tuples {
                    key_values.extend(self.item(v, "an exception value"));
                }
                let key = Str {
                    value: format!("{}{}", names[0].value, modifiers[0]),
                    pos: names[0].pos,
                    content: None,
                };
                groups.push(vec![EntrySpec {
                    key,
                    values: ValuesSpec {
                        pos: Pos::of(&values.referenced),
                        list: true,
                        items: key_values,
                    },
                }]);
            }
        } else {
            for tuple in tuples {
                let Node::Seq(parts) = &tuple.value else {
                    self.err(
                        Pos::of(&tuple.referenced),
                        format!("{what}: each of `values` must be a list of {}", names.len()),
                    );
                    continue;
                };
                if parts.len() != names.len() {
                    self.err(
                        Pos::of(&tuple.referenced),
                        format!("{what}: {} values for {} fields", parts.len(), names.len()),
                    );
                    continue;
                }
                let group: Vec<EntrySpec> = parts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| entry(self, i, p))
                    .collect();
                if group.len() == names.len() {
                    groups.push(group);
                }
            }
        }
        if groups.is_empty() {
            self.err(Pos::of(&values.referenced), format!("{what}: no values"));
            return None;
        }
        Some(SelectionSpec {
            pos: keys.pos,
            groups,
        })
    }

    fn session(&mut self, y: &Yaml) -> Option<SessionSpec> {
        let keys = self.fields(y, "session", SESSION_KINDS)?;
        let known: Vec<&(Str, &Yaml)> = keys
            .entries
            .iter()
            .filter(|(k, _)| SESSION_KINDS.contains(&k.value.as_str()))
            .collect();
        match known.as_slice() {
            [] => {
                if keys.entries.is_empty() {
                    self.err(
                        keys.pos,
                        format!("session needs one of: {}", SESSION_KINDS.join(", ")),
                    );
                }
                None
            }
            [(kind, body)] => self.session_kind(kind, body),
            [(first, _), (second, _), ..] => {
                self.err(
                    second.pos,
                    format!(
                        "session takes exactly one kind: found both `{}` and `{}`",
                        first.value, second.value
                    ),
                );
                None
            }
        }
    }

    fn session_kind(&mut self, kind: &Str, y: &Yaml) -> Option<SessionSpec> {
        let what = format!("session `{}`", kind.value);
        match kind.value.as_str() {
            "event_count" | "value_count" | "value_sum" => {
                self.aggregate(kind, y, &what).map(SessionSpec::Aggregate)
            }
            "new_value" => {
                let keys = self.fields(y, &what, &["field", "learn", "tolerance"])?;
                let field = self.required(&keys, "field", &what)?;
                let field = self.text(field, "field")?;
                let learn = keys.get("learn").and_then(|l| self.learn(l));
                let tolerance = keys.get("tolerance").and_then(|t| self.tolerance(t));
                Some(SessionSpec::NewValue {
                    kind: kind.clone(),
                    field,
                    learn,
                    tolerance,
                })
            }
            "sequence" => {
                let keys = self.fields(y, &what, &["maxspan", "steps", "until"])?;
                let maxspan = self.required(&keys, "maxspan", &what);
                let maxspan = maxspan.and_then(|m| self.item(m, "maxspan"));
                let until = keys.get("until").and_then(|u| self.condition(u, "until"));
                let steps = self.required(&keys, "steps", &what)?;
                let Node::Seq(items) = &steps.value else {
                    self.err(Pos::of(&steps.referenced), "steps must be a list");
                    return None;
                };
                if items.is_empty() {
                    self.err(Pos::of(&steps.referenced), "a sequence needs steps");
                }
                let steps = items.iter().filter_map(|s| self.step(s)).collect();
                Some(SessionSpec::Sequence {
                    kind: kind.clone(),
                    maxspan: maxspan?,
                    steps,
                    until,
                })
            }
            "duration" => {
                let keys = self.fields(
                    y,
                    &what,
                    &["since", "limit", "fire", "until", "active_within"],
                )?;
                let since = keys.get("since").and_then(|s| self.text(s, "since"));
                let fire = keys.get("fire").and_then(|f| self.text(f, "fire"));
                let until = keys.get("until").and_then(|u| self.condition(u, "until"));
                let limit = self.required(&keys, "limit", &what)?;
                let active_within = match keys.get("active_within") {
                    Some(a) => Some(self.item(a, "active_within")?),
                    None => None,
                };
                Some(SessionSpec::Duration {
                    kind: kind.clone(),
                    since,
                    limit: self.item(limit, "limit")?,
                    fire,
                    until,
                    active_within,
                })
            }
            "scope_growth" => {
                // `scope_growth: {}` or a bare `scope_growth:` takes every default.
                let (field, learn) = if matches!(y.value, Node::Null) {
                    (None, None)
                } else {
                    let keys = self.fields(y, &what, &["field", "learn"])?;
                    (
                        keys.get("field").and_then(|f| self.text(f, "field")),
                        keys.get("learn").and_then(|l| self.learn(l)),
                    )
                };
                Some(SessionSpec::ScopeGrowth {
                    kind: kind.clone(),
                    field,
                    learn,
                })
            }
            "agent_grant" => {
                let keys = self.fields(y, &what, &["check"])?;
                let check = self.required(&keys, "check", &what)?;
                let check = self.text(check, "check")?;
                Some(SessionSpec::AgentGrant {
                    kind: kind.clone(),
                    check,
                })
            }
            _ => None,
        }
    }

    pub(super) fn required<'y>(
        &mut self,
        keys: &Keys<'y>,
        name: &str,
        what: &str,
    ) -> Option<&'y Yaml> {
        let v = keys.get(name);
        if v.is_none() {
            self.err(keys.pos, format!("{what}: missing `{name}`"));
        }
        v
    }

    fn aggregate(&mut self, kind: &Str, y: &Yaml, what: &str) -> Option<AggregateSpec> {
        let with_field = kind.value != "event_count";
        let allowed: &[&str] = if with_field {
            &["field", "timespan", "gt", "gte", "lt", "lte", "eq"]
        } else {
            &["timespan", "gt", "gte", "lt", "lte", "eq"]
        };
        let keys = self.fields(y, what, allowed)?;
        let field = if with_field {
            self.required(&keys, "field", what)
                .and_then(|f| self.text(f, "field"))
        } else {
            None
        };
        let timespan = self
            .required(&keys, "timespan", what)
            .and_then(|t| self.item(t, "timespan"));
        let threshold = self.threshold(&keys, what);
        if with_field && field.is_none() {
            return None;
        }
        Some(AggregateSpec {
            kind: kind.clone(),
            field,
            timespan: timespan?,
            threshold: threshold?,
        })
    }

    fn threshold(&mut self, keys: &Keys<'_>, what: &str) -> Option<ThresholdSpec> {
        let mut found: Option<ThresholdSpec> = None;
        for (k, v) in &keys.entries {
            if !COMPARISONS.contains(&k.value.as_str()) {
                continue;
            }
            if let Some(first) = &found {
                self.err(
                    k.pos,
                    format!(
                        "{what}: one comparison only (found `{}` and `{}`)",
                        first.op.value, k.value
                    ),
                );
                return None;
            }
            let value = self.item(v, &k.value)?;
            found = Some(ThresholdSpec {
                op: k.clone(),
                value,
            });
        }
        if found.is_none() {
            self.err(
                keys.pos,
                format!("{what}: needs a comparison, one of gt, gte, lt, lte, eq"),
            );
        }
        found
    }

    fn learn(&mut self, y: &Yaml) -> Option<LearnSpec> {
        let keys = self.fields(y, "learn", &["events", "timespan"])?;
        Some(LearnSpec {
            events: keys.get("events").and_then(|e| self.item(e, "events")),
            timespan: keys.get("timespan").and_then(|t| self.item(t, "timespan")),
        })
    }

    fn tolerance(&mut self, y: &Yaml) -> Option<ToleranceSpec> {
        if let Node::Map(_) = y.value {
            let keys = self.fields(y, "tolerance", &["ipv4_prefix", "ipv6_prefix"])?;
            return Some(ToleranceSpec::Prefixes {
                pos: keys.pos,
                v4: keys
                    .get("ipv4_prefix")
                    .and_then(|v| self.item(v, "ipv4_prefix")),
                v6: keys
                    .get("ipv6_prefix")
                    .and_then(|v| self.item(v, "ipv6_prefix")),
            });
        }
        self.text(y, "tolerance").map(ToleranceSpec::Named)
    }

    fn step(&mut self, y: &Yaml) -> Option<StepSpec> {
        let keys = self.fields(y, "sequence step", &["match", "aggregate"])?;
        let condition = self
            .required(&keys, "match", "sequence step")
            .and_then(|m| self.condition(m, "match"));
        let aggregate = match keys.get("aggregate") {
            None => None,
            Some(a) => {
                let akeys = self.fields(a, "aggregate", AGGREGATE_KINDS)?;
                match akeys.entries.as_slice() {
                    [(kind, body)] if AGGREGATE_KINDS.contains(&kind.value.as_str()) => {
                        let what = format!("aggregate `{}`", kind.value);
                        Some(self.aggregate(kind, body, &what)?)
                    }
                    [] => {
                        self.err(
                            akeys.pos,
                            "aggregate needs one of: event_count, value_count, value_sum",
                        );
                        return None;
                    }
                    [_] => return None,
                    [_, (second, _), ..] => {
                        self.err(second.pos, "aggregate takes exactly one kind");
                        return None;
                    }
                }
            }
        };
        Some(StepSpec {
            pos: keys.pos,
            condition: condition?,
            aggregate,
        })
    }

    fn logsource(&mut self, y: &Yaml) -> Option<LogsourceSpec> {
        let keys = self.fields(
            y,
            "logsource",
            &["product", "service", "category", "definition"],
        )?;
        Some(LogsourceSpec {
            pos: Pos::of(&y.referenced),
            product: keys.get("product").and_then(|v| self.text(v, "product")),
            service: keys.get("service").and_then(|v| self.text(v, "service")),
            category: keys.get("category").and_then(|v| self.text(v, "category")),
        })
    }

    fn action(&mut self, y: &Yaml) -> Option<ActionSpec> {
        if let Node::Map(_) = y.value {
            let keys = self.fields(y, "action", &["kind", "mode"])?;
            return Some(ActionSpec {
                kind: keys.get("kind").and_then(|k| self.text(k, "action kind")),
                mode: keys.get("mode").and_then(|m| self.text(m, "action mode")),
            });
        }
        Some(ActionSpec {
            kind: Some(self.text(y, "action")?),
            mode: None,
        })
    }

    fn tests(&mut self, y: &Yaml) -> Vec<TestSpec> {
        let Node::Seq(items) = &y.value else {
            self.err(Pos::of(&y.referenced), "tests must be a list");
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let Some(keys) = self.fields(item, "test", &["name", "events", "expect"]) else {
                continue;
            };
            let name = keys.get("name").and_then(|n| self.text(n, "test name"));
            let events = self
                .required(&keys, "events", "test")
                .and_then(|e| self.text(e, "events"));
            let expect = self
                .required(&keys, "expect", "test")
                .and_then(|e| self.fields(e, "expect", &["decisions", "rejects"]));
            let decisions = expect.as_ref().and_then(|e| {
                let d = self.required(e, "decisions", "expect")?;
                self.expected_decisions(d)
            });
            let rejects = expect
                .as_ref()
                .and_then(|e| e.get("rejects"))
                .and_then(|r| self.item(r, "rejects"));
            if let (Some(events), Some(decisions)) = (events, decisions) {
                out.push(TestSpec {
                    pos: keys.pos,
                    name,
                    events,
                    decisions,
                    rejects,
                });
            }
        }
        out
    }

    /// `decisions: 3`, or a list of `{line, session[, rule]}`.
    fn expected_decisions(&mut self, y: &Yaml) -> Option<DecisionsSpec> {
        let Node::Seq(items) = &y.value else {
            return self.item(y, "decisions").map(DecisionsSpec::Count);
        };
        let mut list = Vec::new();
        for item in items {
            let Some(keys) = self.fields(item, "expected decision", &["line", "session", "rule"])
            else {
                continue;
            };
            let line = self
                .required(&keys, "line", "expected decision")
                .and_then(|l| self.item(l, "line"));
            let session = self
                .required(&keys, "session", "expected decision")
                .and_then(|s| self.text(s, "session"));
            let rule = keys.get("rule").and_then(|r| self.text(r, "rule"));
            if let (Some(line), Some(session)) = (line, session) {
                list.push(DecisionSpec {
                    pos: keys.pos,
                    line,
                    session,
                    rule,
                });
            }
        }
        Some(DecisionsSpec::List(list))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_values_and_condition_tokens() {
        let src = "id: a\ndetection:\n  sel:\n    action|in: [iam:A, \"iam:B\"]\n  condition: \"sel and x\"\n";
        let (docs, errors) = read_file(src).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let d = docs[0].detection.as_ref().unwrap();
        let (name, sel) = &d.selections[0];
        assert_eq!(name.pos, Pos { line: 3, col: 3 });
        let entry = &sel.groups[0][0];
        assert_eq!(entry.key.at(7), Pos { line: 4, col: 12 });
        assert_eq!(entry.values.items[1].pos, Pos { line: 4, col: 24 });
        let cond = d.condition.as_ref().unwrap();
        // The quote is skipped: byte 8 of the text is `x`.
        assert_eq!(cond.at(8), Pos { line: 5, col: 23 });
    }

    /// The detection condition of a one-rule file.
    fn condition_of(src: &str) -> Str {
        let (docs, _) = read_file(src).unwrap();
        docs[0]
            .detection
            .as_ref()
            .unwrap()
            .condition
            .clone()
            .unwrap()
    }

    /// A rule's version is its text as written: `1.10` is not `1.1`, and a decision id hashes
    /// the version, so reading it as a number would merge two versions' ids.
    #[test]
    fn a_version_keeps_its_digits_as_written() {
        let version = |written: &str| {
            let (docs, errors) = read_file(&format!("id: a\nversion: {written}\n")).unwrap();
            assert!(errors.is_empty(), "{errors:?}");
            docs[0].version.clone().unwrap().value
        };
        assert_eq!(version("1.10"), "1.10");
        assert_eq!(version("007"), "007");
        assert_eq!(version("2"), "2");
        assert_eq!(version("\"3.0\""), "3.0");
    }

    /// A filter's `rules:` is `any` or `all` in any case, else the ids or names it lists — one
    /// written alone is a list of one, not every rule.
    #[test]
    fn a_filters_rules_are_any_or_the_ones_named() {
        let rules = |written: &str| {
            let src = format!(
                "title: f\nlogsource: {{product: aws}}\nfilter:\n  rules: {written}\n  \
                 sel: {{a: 1}}\n  condition: not sel\n"
            );
            let (docs, errors) = read_file(&src).unwrap();
            assert!(errors.is_empty(), "{errors:?}");
            match docs[0].filter.as_ref().unwrap().rules.as_ref().unwrap() {
                FilterRules::Any(_) => vec!["<any>".to_owned()],
                FilterRules::Named(names) => names.iter().map(|n| n.value.clone()).collect(),
            }
        };
        assert_eq!(rules("any"), ["<any>"]);
        assert_eq!(rules("ALL"), ["<any>"]);
        assert_eq!(rules("one_rule"), ["one_rule"]);
        assert_eq!(rules("[one_rule, other]"), ["one_rule", "other"]);
    }

    /// A Falco-form exception over one field may name it alone, with a flat list of values:
    /// one group, the field equal to any of them — as `fields: [f]` with `values: [[x], [y]]`.
    #[test]
    fn a_one_field_exception_may_name_its_field_alone() {
        let groups = |exception: &str| {
            let (docs, errors) =
                read_file(&format!("id: a\nexceptions:\n  - {exception}\n")).unwrap();
            assert!(errors.is_empty(), "{errors:?}");
            docs[0].exceptions[0]
                .selection
                .groups
                .iter()
                .map(|group| {
                    group
                        .iter()
                        .map(|e| {
                            let values: Vec<String> =
                                e.values.items.iter().map(|i| i.value.to_string()).collect();
                            format!("{}: {}", e.key.value, values.join(" "))
                        })
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            groups("{name: staff, fields: principal.name, values: [alice, bob]}"),
            [["principal.name: alice bob"]]
        );
        assert_eq!(
            groups("{name: staff, fields: [principal.name], values: [[alice], [bob]]}"),
            [["principal.name: alice"], ["principal.name: bob"]]
        );
    }

    #[test]
    fn positions_inside_folded_text() {
        let src =
            "id: a\ndetection:\n  sel: {a: 1}\n  condition: >\n    sel and\n      x\n    or é y\n";
        let cond = condition_of(src);
        assert_eq!(cond.value, "sel and\n  x\nor é y\n");
        let at = |word: &str| cond.at(cond.value.find(word).unwrap());
        assert_eq!(at("sel"), Pos { line: 5, col: 5 });
        assert_eq!(at("and"), Pos { line: 5, col: 9 });
        assert_eq!(at("x"), Pos { line: 6, col: 7 });
        assert_eq!(at("or"), Pos { line: 7, col: 5 });
        assert_eq!(at("y"), Pos { line: 7, col: 10 });
        // A plain scalar over two lines; a quoted one with an escape is not followed.
        let src = "id: a\ndetection:\n  condition: sel and\n    x\n";
        let cond = condition_of(src);
        assert_eq!(cond.at(8), Pos { line: 4, col: 5 });
        // A quoted scalar over two lines: its first line starts after the quote.
        let src = "id: a\ndetection:\n  condition: \"sel and\n    x\"\n";
        let cond = condition_of(src);
        assert_eq!(cond.value, "sel and x");
        assert_eq!(cond.at(0), Pos { line: 3, col: 15 });
        assert_eq!(cond.at(4), Pos { line: 3, col: 19 });
        assert_eq!(cond.at(8), Pos { line: 4, col: 5 });
        assert!(fold_anchors(r#""a\tb c""#, "a\tb c", Pos { line: 1, col: 1 }).is_none());
    }

    #[test]
    fn several_shape_errors_in_one_document() {
        let src =
            "id: a\ntitel: x\nsession:\n  event_count: {timespan: 5m}\n  duration: {limit: 1h}\n";
        let (_, errors) = read_file(src).unwrap();
        let got: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.pos, e.message))
            .collect();
        assert_eq!(
            got,
            [
                "2:1: unknown key `titel` in rule (did you mean `title`?)",
                "5:3: session takes exactly one kind: found both `event_count` and `duration`",
            ]
        );
    }

    #[test]
    fn yaml_errors_have_positions() {
        let e = read_file("id: a\ndetection: {sel: {a: 1}\n").unwrap_err();
        assert_eq!(e.pos.line, 2);
        assert!(e.message.starts_with("invalid YAML: "), "{}", e.message);
        assert!(!e.message.contains(" at line "), "{}", e.message);
    }

    #[test]
    fn a_list_too_long_for_a_rule_file_points_to_list_files() {
        let mut src = String::from("lists:\n  big:\n");
        for i in 0..250_001 {
            src.push_str(&format!("    - v{i}\n"));
        }
        let e = read_file(&src).unwrap_err();
        assert!(
            e.message
                .starts_with("the file is too large for a rule file")
                && e.message.ends_with("`lists: {name: {file: list.txt}}`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("netwrk.ip", ["network.ip", "bytes"]),
            " (did you mean `network.ip`?)"
        );
        assert_eq!(did_you_mean("zzz", ["network.ip", "bytes"]), "");
        // A swap of two neighbours is one edit.
        assert_eq!(edit_distance("titel", "title"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("ab", "abc"), 1);
        // Up to a third of the name's characters may differ (at most 3): 2 of 12 here.
        assert_eq!(
            did_you_mean("sesion.kindd", ["session.kind"]),
            " (did you mean `session.kind`?)"
        );
        assert_eq!(
            did_you_mean("Network.IP", ["network.ip", "bytes"]),
            " (did you mean `network.ip`?)"
        );
    }
}
