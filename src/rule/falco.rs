//! Falco rule files as written: a YAML sequence of `rule:`, `macro:` and `list:` items (and
//! `required_engine_version`, `required_plugin_versions`, accepted and not checked), read into
//! the documents `compile` reads for every rule file, so that there is one compiler.
//!
//! # Layout
//!
//! - Reading (`Defs`): items in file order; `append: true` and `override:` change an earlier
//!   item of the same name, a plain redefinition replaces it, `enabled: false` leaves a rule
//!   out — all before any rule is translated, as Falco resolves macros and lists only once the
//!   whole file is read.
//! - The condition language (`parse_condition`): `and`, `or`, `not`, parentheses, macro names
//!   and `field op value` comparisons, parsed into `Cond` with the position of every token.
//! - Translation (`Translate`): each enabled rule's condition with its macros expanded and its
//!   lists spliced into the values; each comparison becomes a one-entry selection
//!   (`raw.verb|cased: [create]`) and the condition a boolean expression over them. The rule
//!   gets a Kubernetes audit `logsource`, so it sees only those records and its values are
//!   literal, as for a Sigma rule; its `output` becomes the text of its decisions' reason.
//!   Expansion is bounded (terms, values, nesting): a hostile file ends in an error.
//!
//! Fields go through a table, `falco-fields.yml` (as Sigma's names go through
//! `sigma-pipeline.yml`). A field the table cannot map makes the rule fail to load, with an
//! error at the field; an error inside a macro is reported for each rule that uses it, as
//! Falco reports it in the context of the rule. Matching is Falco's: case-sensitive (except
//! `icontains`, `iglob`), values literal (`*` is a star), `in` on a list-valued field asks that
//! every value is in the set and `intersects` that one is, and a comparison on a missing field
//! is false (`!=` too).
//!
//! Macros are expanded here rather than handed to `compile` as condition macros: a Falco
//! macro holds comparisons, not only names, and its mistakes belong to the rules that use it.
//! Lists are spliced here too: how a value is matched depends on the operator it meets
//! (literal for `=`, a path and what is under it for `pmatch`, an image name for a
//! repository). Items change each other within one file; a second file appending to the first
//! is not read yet.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::OnceLock;

use serde::Deserialize;

use super::detection::Glob;
use super::sigma;
use super::spec::{
    did_you_mean, DetectionSpec, Doc, EntrySpec, ExceptionSpec, Item, Keys, LogsourceSpec, Node,
    OutputPart, Pos, Reader, Scalar, SelectionSpec, SpecError, Str, ValuesSpec, Yaml,
};

/// The built-in field table.
const FIELD_TABLE: &str = include_str!("falco-fields.yml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    fields: HashMap<String, FieldDef>,
    not_read: HashMap<String, String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct FieldDef {
    /// `raw.<path>`, or an engine field.
    to: String,
    #[serde(default)]
    list: bool,
    #[serde(default)]
    take: Option<Take>,
    #[serde(default)]
    divide: Option<f64>,
}

/// A part of the value the plugin gives instead of the value.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Take {
    /// An image name up to its first `:` or `@`.
    ImageRepository,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_saphyr::from_str(FIELD_TABLE).expect("the built-in Falco field table is valid YAML")
    })
}

const RULE_KEYS: &[&str] = &[
    "rule",
    "desc",
    "condition",
    "output",
    "priority",
    "source",
    "tags",
    "enabled",
    "exceptions",
    "append",
    "override",
    "skip-if-unknown-filter",
    "warn_evttypes",
    "capture",
    "capture_duration",
];
/// Rule keys `append` adds to; the others can only be replaced.
const RULE_APPENDABLE: &[&str] = &["condition", "output", "desc", "tags", "exceptions"];
const MACRO_KEYS: &[&str] = &["macro", "condition", "append", "override"];
const LIST_KEYS: &[&str] = &["list", "items", "append", "override"];

/// Falco priorities and the levels they are.
const PRIORITIES: &[(&str, &str)] = &[
    ("emergency", "critical"),
    ("alert", "critical"),
    ("critical", "critical"),
    ("error", "high"),
    ("warning", "medium"),
    ("notice", "low"),
    ("informational", "informational"),
    ("info", "informational"),
    ("debug", "informational"),
];

/// The one Falco source read.
const SOURCE: &str = "k8s_audit";

struct ListDef {
    items: Vec<Str>,
}

struct MacroDef {
    name: Str,
    /// The definition's text, then each appended text.
    condition: Vec<Str>,
}

struct RuleDef {
    name: Str,
    pos: Pos,
    desc: Option<Str>,
    condition: Vec<Str>,
    output: Option<Str>,
    priority: Option<Str>,
    source: Option<Str>,
    tags: Vec<Str>,
    enabled: bool,
    exceptions: Vec<ExceptionDef>,
    skip_unknown: bool,
    /// Its definition or a change to it had an error (reported): the rule is not loaded.
    broken: bool,
}

impl RuleDef {
    fn new(name: Str, pos: Pos) -> RuleDef {
        RuleDef {
            name,
            pos,
            desc: None,
            condition: Vec::new(),
            output: None,
            priority: None,
            source: None,
            tags: Vec::new(),
            enabled: true,
            exceptions: Vec::new(),
            skip_unknown: false,
            broken: false,
        }
    }
}

/// Falco's exception: `fields` and `comps`, and `values` tuples; an event matching a tuple
/// (every field compared with its value) never matches the rule.
struct ExceptionDef {
    name: Str,
    fields: Vec<Str>,
    /// `fields: one.field`: each value is a tuple of one, compared with `in` by default.
    single: bool,
    comps: Vec<Str>,
    values: Vec<Tuple>,
}

/// One of an exception's `values` as written: a scalar, or a list of scalars and lists. Which
/// it must be depends on the exception's `fields`, which an appended one leaves out.
struct Tuple {
    pos: Pos,
    values: Vec<TupleValue>,
    list: bool,
}

enum TupleValue {
    One(Str),
    Many(Vec<Str>),
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Append,
    Replace,
}

/// How an item changes an earlier one of its name.
enum Change {
    /// A definition (a new one, or one replacing the earlier).
    Define,
    /// `append: true` or `override:`: each key it gives, appended or replaced.
    Modify(Vec<(Str, Mode)>),
}

/// Everything the file defines, after appends and overrides, by name.
#[derive(Default)]
struct Defs {
    lists: Vec<ListDef>,
    list_index: HashMap<String, usize>,
    macros: Vec<MacroDef>,
    macro_index: HashMap<String, usize>,
    rules: Vec<RuleDef>,
    rule_index: HashMap<String, usize>,
    /// Where each item starts.
    items: Vec<Pos>,
}

/// Reads a Falco rule file (its top-level sequences) into documents: one per rule that loads,
/// and one empty, non-rule document per item, so that an error is never laid at the door of
/// the rule written before it.
pub(super) fn read(r: &mut Reader<'_>, trees: &[&Yaml]) -> Vec<Doc> {
    let mut defs = Defs::default();
    for tree in trees {
        let Node::Seq(items) = &tree.value else {
            r.err(
                Pos::of(&tree.referenced),
                "a Falco rule file is one YAML sequence of `rule:`, `macro:` and `list:` items",
            );
            continue;
        };
        for item in items {
            defs.item(r, item);
        }
    }
    Translate::new(&defs).docs(r)
}

/// An `append` or `override` with nothing before it to change.
fn no_earlier(what: &str, kind: &str) -> String {
    format!(
        "{what}: `append` and `override` change an earlier {kind} of that name in this file, \
         and there is none (one in another file cannot be changed yet)"
    )
}

/// `falco.` and the rule's name in lower case, runs of other characters as one `_`.
fn rule_id(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('_') {
            slug.push('_');
        }
    }
    while slug.ends_with('_') {
        slug.pop();
    }
    if slug.is_empty() {
        slug.push_str("unnamed");
    }
    format!("falco.{slug}")
}

impl Defs {
    fn item(&mut self, r: &mut Reader<'_>, y: &Yaml) {
        let pos = Pos::of(&y.referenced);
        self.items.push(pos);
        let Node::Map(entries) = &y.value else {
            r.err(
                pos,
                "a Falco item must be a mapping (`- rule: …`, `- macro: …`, `- list: …`)",
            );
            return;
        };
        let has = |name: &str| {
            entries
                .iter()
                .any(|(k, _)| matches!(&k.value, Node::Str(s) if s == name))
        };
        if has("rule") {
            self.rule(r, y);
        } else if has("macro") {
            self.macro_def(r, y);
        } else if has("list") {
            self.list(r, y);
        } else if !has("required_engine_version") && !has("required_plugin_versions") {
            r.err(
                pos,
                "a Falco item needs one of `rule`, `macro`, `list` (or `required_engine_version`, \
                 `required_plugin_versions`)",
            );
        }
    }

    /// `append: true`, `override: {key: append|replace}`, or neither.
    fn change(
        r: &mut Reader<'_>,
        keys: &Keys<'_>,
        what: &str,
        appendable: &[&str],
    ) -> Option<Change> {
        let append = keys.get("append");
        let overrides = keys.get("override");
        // The keys the item gives, but its name and these two.
        let given: Vec<&Str> = keys
            .entries
            .iter()
            .map(|(k, _)| k)
            .filter(|k| !matches!(k.value.as_str(), "rule" | "macro" | "list"))
            .filter(|k| k.value != "append" && k.value != "override")
            .collect();
        if let (Some(_), Some(_)) = (append, overrides) {
            let pos = keys.key("override").map_or(keys.pos, |k| k.pos);
            r.err(
                pos,
                format!("{what}: use either `append: true` or `override:`"),
            );
            return None;
        }
        if let Some(a) = append {
            match a.value {
                Node::Bool(false) => return Some(Change::Define),
                Node::Bool(true) => {}
                _ => {
                    r.err(Pos::of(&a.referenced), "`append` is `true` or `false`");
                    return None;
                }
            }
            let mut changes = Vec::new();
            for k in given {
                if appendable.contains(&k.value.as_str()) {
                    changes.push((k.clone(), Mode::Append));
                } else {
                    r.err(
                        k.pos,
                        format!(
                            "{what}: `append: true` adds to {}; to change `{}` use \
                             `override: {{{}: replace}}`",
                            appendable.join(", "),
                            k.value,
                            k.value
                        ),
                    );
                }
            }
            return Some(Change::Modify(changes));
        }
        let Some(o) = overrides else {
            return Some(Change::Define);
        };
        let modes = r.map(o, "override")?;
        let mut changes = Vec::new();
        for (k, v) in &modes.entries {
            let mode = match &v.value {
                Node::Str(m) if m == "append" => Mode::Append,
                Node::Str(m) if m == "replace" => Mode::Replace,
                _ => {
                    r.err(
                        Pos::of(&v.referenced),
                        "an override is `append` or `replace`",
                    );
                    continue;
                }
            };
            if mode == Mode::Append && !appendable.contains(&k.value.as_str()) {
                r.err(
                    k.pos,
                    format!("{what}: `{}` can be replaced, not appended", k.value),
                );
            } else if !given.iter().any(|g| g.value == k.value) {
                r.err(
                    k.pos,
                    format!(
                        "{what}: `override` names `{}`, which the item does not give",
                        k.value
                    ),
                );
            } else {
                changes.push((k.clone(), mode));
            }
        }
        for g in given {
            if !modes.entries.iter().any(|(k, _)| k.value == g.value) {
                r.err(
                    g.pos,
                    format!("{what}: `{}` is given but not named in `override`", g.value),
                );
            }
        }
        Some(Change::Modify(changes))
    }

    fn list(&mut self, r: &mut Reader<'_>, y: &Yaml) {
        let Some(keys) = r.fields(y, "list", LIST_KEYS) else {
            return;
        };
        let Some(name) = keys.get("list").and_then(|n| r.text(n, "list name")) else {
            return;
        };
        let what = format!("list `{}`", name.value);
        let change = Self::change(r, &keys, &what, &["items"]);
        let items = match keys.get("items") {
            None => {
                r.err(keys.pos, format!("{what}: missing `items`"));
                return;
            }
            Some(i) if matches!(i.value, Node::Null) => Vec::new(),
            Some(i) if matches!(i.value, Node::Seq(_)) => r.texts(i, "a list item"),
            Some(i) => {
                r.err(
                    Pos::of(&i.referenced),
                    format!("{what}: `items` must be a list"),
                );
                return;
            }
        };
        let existing = self.list_index.get(&name.value).copied();
        match (change, existing) {
            (None, _) => {}
            (Some(Change::Define), Some(i)) => self.lists[i].items = items,
            (Some(Change::Define), None) => {
                self.list_index.insert(name.value.clone(), self.lists.len());
                self.lists.push(ListDef { items });
            }
            (Some(Change::Modify(changes)), Some(i)) => {
                for (_, mode) in changes {
                    match mode {
                        Mode::Append => self.lists[i].items.extend(items.iter().cloned()),
                        Mode::Replace => self.lists[i].items.clone_from(&items),
                    }
                }
            }
            (Some(Change::Modify(_)), None) => r.err(name.pos, no_earlier(&what, "list")),
        }
    }

    fn macro_def(&mut self, r: &mut Reader<'_>, y: &Yaml) {
        let Some(keys) = r.fields(y, "macro", MACRO_KEYS) else {
            return;
        };
        let Some(name) = keys.get("macro").and_then(|n| r.text(n, "macro name")) else {
            return;
        };
        let what = format!("macro `{}`", name.value);
        let change = Self::change(r, &keys, &what, &["condition"]);
        let Some(condition) = r
            .required(&keys, "condition", &what)
            .and_then(|c| r.text(c, "condition"))
        else {
            return;
        };
        let existing = self.macro_index.get(&name.value).copied();
        match (change, existing) {
            (None, _) => {}
            (Some(Change::Define), Some(i)) => self.macros[i].condition = vec![condition],
            (Some(Change::Define), None) => {
                self.macro_index
                    .insert(name.value.clone(), self.macros.len());
                self.macros.push(MacroDef {
                    name,
                    condition: vec![condition],
                });
            }
            (Some(Change::Modify(changes)), Some(i)) => {
                for (_, mode) in changes {
                    match mode {
                        Mode::Append => self.macros[i].condition.push(condition.clone()),
                        Mode::Replace => self.macros[i].condition = vec![condition.clone()],
                    }
                }
            }
            (Some(Change::Modify(_)), None) => r.err(name.pos, no_earlier(&what, "macro")),
        }
    }

    fn rule(&mut self, r: &mut Reader<'_>, y: &Yaml) {
        let before = r.errors.len();
        let Some(keys) = r.fields(y, "rule", RULE_KEYS) else {
            return;
        };
        let Some(name) = keys.get("rule").and_then(|n| r.text(n, "rule name")) else {
            return;
        };
        let id = rule_id(&name.value);
        let what = format!("rule `{}`", name.value);
        let change = Self::change(r, &keys, &what, RULE_APPENDABLE);
        let existing = self.rule_index.get(&name.value).copied();
        // `- rule: X` with only `enabled:` switches an earlier rule on or off (Falco's older
        // way, before `override`).
        let only_enabled = keys.entries.len() == 2 && keys.get("enabled").is_some();
        let target = match (change, existing) {
            (None, _) => existing,
            (Some(Change::Define), Some(i)) if only_enabled => {
                Self::set(r, &mut self.rules[i], &keys, "enabled", Mode::Replace);
                Some(i)
            }
            (Some(Change::Define), _) => {
                let mut rule = RuleDef::new(name.clone(), keys.pos);
                for (k, _) in &keys.entries {
                    Self::set(r, &mut rule, &keys, &k.value, Mode::Replace);
                }
                for required in ["condition", "output", "priority", "desc"] {
                    if keys.get(required).is_none() {
                        r.err(keys.pos, format!("{what}: missing `{required}`"));
                    }
                }
                Some(match existing {
                    Some(i) => {
                        self.rules[i] = rule;
                        i
                    }
                    None => {
                        self.rule_index.insert(name.value.clone(), self.rules.len());
                        self.rules.push(rule);
                        self.rules.len() - 1
                    }
                })
            }
            (Some(Change::Modify(changes)), Some(i)) => {
                for (k, mode) in changes {
                    Self::set(r, &mut self.rules[i], &keys, &k.value, mode);
                }
                Some(i)
            }
            (Some(Change::Modify(_)), None) => {
                r.err(name.pos, no_earlier(&what, "rule"));
                None
            }
        };
        // Problems with the item are the rule's: it does not load.
        for e in &mut r.errors[before..] {
            e.rule.get_or_insert_with(|| id.clone());
        }
        if r.errors.len() > before {
            if let Some(i) = target {
                self.rules[i].broken = true;
            }
        }
    }

    /// Sets (or appends to) one key of a rule from the item's value of it.
    fn set(r: &mut Reader<'_>, rule: &mut RuleDef, keys: &Keys<'_>, key: &str, mode: Mode) {
        let Some(v) = keys.get(key) else {
            return;
        };
        let append = mode == Mode::Append;
        match key {
            "condition" => {
                if let Some(c) = r.text(v, "condition") {
                    if !append {
                        rule.condition.clear();
                    }
                    rule.condition.push(c);
                }
            }
            "output" | "desc" => {
                let Some(text) = r.text(v, key) else {
                    return;
                };
                let slot = if key == "output" {
                    &mut rule.output
                } else {
                    &mut rule.desc
                };
                *slot = Some(match (append, slot.take()) {
                    (true, Some(old)) => {
                        Str::synthetic(format!("{} {}", old.value, text.value), old.pos)
                    }
                    _ => text,
                });
            }
            "priority" => rule.priority = r.text(v, "priority"),
            "source" => rule.source = r.text(v, "source"),
            "tags" => {
                let tags = r.texts(v, "a tag");
                if !append {
                    rule.tags.clear();
                }
                rule.tags.extend(tags);
            }
            "enabled" | "skip-if-unknown-filter" => {
                let Node::Bool(b) = v.value else {
                    r.err(
                        Pos::of(&v.referenced),
                        format!("`{key}` is `true` or `false`"),
                    );
                    return;
                };
                if key == "enabled" {
                    rule.enabled = b;
                } else {
                    rule.skip_unknown = b;
                }
            }
            "exceptions" => {
                let new = exceptions(r, v);
                if append {
                    merge_exceptions(r, &mut rule.exceptions, new);
                } else {
                    rule.exceptions = new;
                }
            }
            // Syscall-only settings: nothing to do for audit records.
            _ => {}
        }
    }
}

/// A rule's `exceptions:` list.
fn exceptions(r: &mut Reader<'_>, y: &Yaml) -> Vec<ExceptionDef> {
    let Node::Seq(items) = &y.value else {
        r.err(
            Pos::of(&y.referenced),
            "exceptions must be a list of `{name, fields, comps, values}`",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let Some(keys) = r.fields(item, "exception", &["name", "fields", "comps", "values"]) else {
            continue;
        };
        let Some(name) = r
            .required(&keys, "name", "exception")
            .and_then(|n| r.text(n, "exception name"))
        else {
            continue;
        };
        let (fields, single) = match keys.get("fields") {
            Some(f) => (
                r.texts(f, "an exception field"),
                !matches!(f.value, Node::Seq(_)),
            ),
            None => (Vec::new(), false),
        };
        let comps = keys
            .get("comps")
            .map_or_else(Vec::new, |c| r.texts(c, "an exception comparison"));
        let mut values = Vec::new();
        if let Some(v) = keys.get("values") {
            match &v.value {
                Node::Seq(tuples) => {
                    for t in tuples {
                        values.extend(tuple(r, t));
                    }
                }
                Node::Null => {}
                _ => r.err(Pos::of(&v.referenced), "exception `values` must be a list"),
            }
        }
        out.push(ExceptionDef {
            name,
            fields,
            single,
            comps,
            values,
        });
    }
    out
}

/// One entry of an exception's `values`: a scalar, or a list of scalars and lists.
fn tuple(r: &mut Reader<'_>, y: &Yaml) -> Option<Tuple> {
    let pos = Pos::of(&y.referenced);
    let value = |r: &mut Reader<'_>, y: &Yaml| match &y.value {
        Node::Seq(_) => Some(TupleValue::Many(r.texts(y, "an exception value"))),
        _ => r.text(y, "an exception value").map(TupleValue::One),
    };
    let Node::Seq(parts) = &y.value else {
        return Some(Tuple {
            pos,
            values: vec![value(r, y)?],
            list: false,
        });
    };
    let values = parts.iter().filter_map(|p| value(r, p)).collect();
    Some(Tuple {
        pos,
        values,
        list: true,
    })
}

/// `append` on exceptions: values of an exception already named are added to it; others are
/// new exceptions.
fn merge_exceptions(r: &mut Reader<'_>, to: &mut Vec<ExceptionDef>, new: Vec<ExceptionDef>) {
    for e in new {
        let Some(old) = to.iter_mut().find(|o| o.name.value == e.name.value) else {
            to.push(e);
            continue;
        };
        let same = |a: &[Str], b: &[Str]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.value == y.value)
        };
        if (!e.fields.is_empty() && !same(&e.fields, &old.fields))
            || (!e.comps.is_empty() && !same(&e.comps, &old.comps))
        {
            r.err(
                e.name.pos,
                format!(
                    "exception `{}`: appended values take the fields and comparisons it has",
                    e.name.value
                ),
            );
            continue;
        }
        old.values.extend(e.values);
    }
}

// ---------------------------------------------------------------------------------------------
// The condition language.

/// A parsed condition: names not yet resolved, every token with its place in the file.
#[derive(Clone, Debug)]
enum Cond {
    Macro(String, Pos),
    Cmp(Box<Cmp>),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

/// `field[arg] op value`, `field op (v1, v2)` or `field exists`.
#[derive(Clone, Debug)]
struct Cmp {
    field: String,
    arg: Option<String>,
    field_pos: Pos,
    op: Op,
    op_pos: Pos,
    values: Vec<Val>,
}

#[derive(Clone, Debug)]
struct Val {
    text: String,
    pos: Pos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    BContains,
    StartsWith,
    BStartsWith,
    EndsWith,
    Glob,
    IGlob,
    PMatch,
    In,
    Intersects,
    Exists,
    Regex,
}

const SYMBOL_OPS: &[(&str, Op)] = &[
    ("==", Op::Eq),
    ("!=", Op::Ne),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("=", Op::Eq),
    ("<", Op::Lt),
    (">", Op::Gt),
];
const WORD_OPS: &[(&str, Op)] = &[
    ("contains", Op::Contains),
    ("icontains", Op::IContains),
    ("bcontains", Op::BContains),
    ("startswith", Op::StartsWith),
    ("bstartswith", Op::BStartsWith),
    ("endswith", Op::EndsWith),
    ("glob", Op::Glob),
    ("iglob", Op::IGlob),
    ("pmatch", Op::PMatch),
    ("in", Op::In),
    ("intersects", Op::Intersects),
    ("exists", Op::Exists),
    ("regex", Op::Regex),
];

impl Op {
    fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::PMatch)
    }

    fn name(self) -> &'static str {
        if self == Op::Eq {
            return "=";
        }
        SYMBOL_OPS
            .iter()
            .chain(WORD_OPS)
            .find(|(_, op)| *op == self)
            .map_or("?", |(n, _)| n)
    }

    /// A comparison as an exception's `comps` writes it.
    fn from_word(word: &str) -> Option<Op> {
        SYMBOL_OPS
            .iter()
            .chain(WORD_OPS)
            .find(|(n, _)| *n == word)
            .map(|(_, op)| *op)
    }
}

/// Nesting deeper than this is refused (no stack overflow on a hostile rule file).
const MAX_DEPTH: usize = 64;

/// A condition's text: its definition and each appended text, joined by spaces (as Falco
/// joins them), with the way back from an offset to its place in the file.
struct Text<'a> {
    s: String,
    parts: Vec<(usize, &'a Str)>,
}

impl<'a> Text<'a> {
    fn new(parts: &'a [Str]) -> Text<'a> {
        let mut s = String::new();
        let mut starts = Vec::with_capacity(parts.len());
        for part in parts {
            if !s.is_empty() {
                s.push(' ');
            }
            starts.push((s.len(), part));
            s.push_str(&part.value);
        }
        Text { s, parts: starts }
    }

    fn pos(&self, offset: usize) -> Pos {
        let k = self
            .parts
            .partition_point(|(start, _)| *start <= offset)
            .saturating_sub(1);
        match self.parts.get(k) {
            Some((start, part)) => part.at(offset.saturating_sub(*start)),
            None => Pos::default(),
        }
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
}

/// Parses a Falco condition (a definition and its appends).
fn parse_condition(parts: &[Str]) -> Result<Cond, SpecError> {
    let text = Text::new(parts);
    let mut p = Parser {
        t: &text,
        b: text.s.as_bytes(),
        i: 0,
        depth: 0,
    };
    p.ws();
    if p.i == p.b.len() {
        return Err(p.error(0, "empty condition"));
    }
    let cond = p.or()?;
    p.ws();
    if p.i < p.b.len() {
        let rest: String = text.s[p.i..].chars().take(20).collect();
        return Err(p.error(p.i, format!("expected `and` or `or` before `{rest}`")));
    }
    Ok(cond)
}

struct Parser<'t> {
    t: &'t Text<'t>,
    b: &'t [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, offset: usize, message: impl Into<String>) -> SpecError {
        SpecError::new(self.t.pos(offset), message)
    }

    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn keyword(&mut self, kw: &str) -> bool {
        self.ws();
        let end = self.i + kw.len();
        if self.b.get(self.i..end) == Some(kw.as_bytes())
            && !self.b.get(end).copied().is_some_and(is_ident)
        {
            self.i = end;
            return true;
        }
        false
    }

    fn or(&mut self) -> Result<Cond, SpecError> {
        let mut items = vec![self.and()?];
        while self.keyword("or") {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self) -> Result<Cond, SpecError> {
        let mut items = vec![self.not()?];
        while self.keyword("and") {
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Cond::And(items)
        })
    }

    fn deeper(&mut self) -> Result<(), SpecError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(self.i, "condition nested too deeply"));
        }
        Ok(())
    }

    fn not(&mut self) -> Result<Cond, SpecError> {
        if self.keyword("not") {
            self.deeper()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Cond::Not(Box::new(inner)));
        }
        self.atom()
    }

    fn ident(&mut self) -> &str {
        let start = self.i;
        while self.b.get(self.i).copied().is_some_and(is_ident) {
            self.i += 1;
        }
        &self.t.s[start..self.i]
    }

    fn atom(&mut self) -> Result<Cond, SpecError> {
        self.ws();
        let start = self.i;
        match self.b.get(start) {
            None => {
                return Err(self.error(
                    start,
                    "the condition ends early: expected a macro, a comparison or `(`",
                ))
            }
            Some(b'(') => {
                self.deeper()?;
                self.i += 1;
                let inner = self.or()?;
                self.ws();
                if self.b.get(self.i) != Some(&b')') {
                    return Err(match self.b.get(self.i) {
                        Some(_) => self.error(self.i, "expected `)`"),
                        None => self.error(start, "unclosed `(`"),
                    });
                }
                self.i += 1;
                self.depth -= 1;
                return Ok(inner);
            }
            Some(b')') => return Err(self.error(start, "unexpected `)`")),
            Some(_) => {}
        }
        let name = self.ident().to_owned();
        if name.is_empty() {
            let c = self.t.s[start..].chars().next().unwrap_or('?');
            return Err(self.error(
                start,
                format!("expected a macro, a comparison or `(`, not `{c}`"),
            ));
        }
        if name == "and" || name == "or" {
            return Err(self.error(
                start,
                format!("expected a macro or a comparison before `{name}`"),
            ));
        }
        if self.b.get(self.i) == Some(&b'(') {
            return Err(self.error(
                start,
                format!("`{name}(…)`: field transformers are not read yet"),
            ));
        }
        if !name.contains('.') {
            return Ok(Cond::Macro(name, self.t.pos(start)));
        }
        self.comparison(name, start).map(|c| Cond::Cmp(Box::new(c)))
    }

    /// The rest of a comparison whose field name was read from `start`.
    fn comparison(&mut self, field: String, start: usize) -> Result<Cmp, SpecError> {
        let arg = if self.b.get(self.i) == Some(&b'[') {
            let open = self.i;
            let Some(len) = self.t.s[open..].find(']') else {
                return Err(self.error(open, "unclosed `[`"));
            };
            self.i = open + len + 1;
            let arg = self.t.s[open + 1..open + len].trim();
            Some(arg.trim_matches(|c| c == '"' || c == '\'').to_owned())
        } else {
            None
        };
        self.ws();
        let op_start = self.i;
        let op = self.op().ok_or_else(|| {
            self.error(
                op_start,
                format!(
                    "expected a comparison after `{field}`: =, !=, <, <=, >, >=, contains, \
                     icontains, startswith, endswith, glob, pmatch, in, intersects or exists"
                ),
            )
        })?;
        let values = if op == Op::Exists {
            Vec::new()
        } else if op.takes_list() {
            self.list(op)?
        } else {
            self.ws();
            if self.b.get(self.i) == Some(&b'(') {
                return Err(self.error(
                    self.i,
                    format!(
                        "`{}` takes one value; a list is for `in`, `intersects` or `pmatch`",
                        op.name()
                    ),
                ));
            }
            vec![self.value(op)?]
        };
        Ok(Cmp {
            field,
            arg,
            field_pos: self.t.pos(start),
            op,
            op_pos: self.t.pos(op_start),
            values,
        })
    }

    fn op(&mut self) -> Option<Op> {
        let rest = &self.b[self.i..];
        if let Some((sym, op)) = SYMBOL_OPS
            .iter()
            .find(|(s, _)| rest.starts_with(s.as_bytes()))
        {
            self.i += sym.len();
            return Some(*op);
        }
        let len = rest.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let word = std::str::from_utf8(&rest[..len]).ok()?;
        let op = WORD_OPS.iter().find(|(w, _)| *w == word)?.1;
        if rest.get(len).copied().is_some_and(is_ident) {
            return None;
        }
        self.i += len;
        Some(op)
    }

    /// `(a, "b", c)`, possibly empty.
    fn list(&mut self, op: Op) -> Result<Vec<Val>, SpecError> {
        self.ws();
        if self.b.get(self.i) != Some(&b'(') {
            return Err(self.error(
                self.i,
                format!("`{}` takes a list in parentheses: `(a, b)`", op.name()),
            ));
        }
        let open = self.i;
        self.i += 1;
        let mut values = Vec::new();
        self.ws();
        if self.b.get(self.i) == Some(&b')') {
            self.i += 1;
            return Ok(values);
        }
        loop {
            values.push(self.value(op)?);
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b')') => {
                    self.i += 1;
                    return Ok(values);
                }
                Some(_) => return Err(self.error(self.i, "expected `,` or `)` in the list")),
                None => return Err(self.error(open, "unclosed `(`")),
            }
        }
    }

    /// A quoted or bare value.
    fn value(&mut self, op: Op) -> Result<Val, SpecError> {
        self.ws();
        let start = self.i;
        if let Some(&q @ (b'"' | b'\'')) = self.b.get(start) {
            return self.quoted(q);
        }
        while self
            .b
            .get(self.i)
            .is_some_and(|b| !b.is_ascii_whitespace() && !b"()\"',=".contains(b))
        {
            self.i += 1;
        }
        if self.i == start {
            return Err(self.error(start, format!("expected a value after `{}`", op.name())));
        }
        if self.b.get(self.i) == Some(&b'(') {
            return Err(self.error(
                start,
                "a value that is a function (`val(…)`, a transformer) is not read yet",
            ));
        }
        Ok(Val {
            text: self.t.s[start..self.i].to_owned(),
            pos: self.t.pos(start),
        })
    }

    fn quoted(&mut self, quote: u8) -> Result<Val, SpecError> {
        let start = self.i;
        self.i += 1;
        let mut text = String::new();
        loop {
            let Some(c) = self.t.s[self.i..].chars().next() else {
                return Err(self.error(start, "unclosed quote"));
            };
            self.i += c.len_utf8();
            if c as u32 == u32::from(quote) {
                break;
            }
            if c != '\\' {
                text.push(c);
                continue;
            }
            let Some(e) = self.t.s[self.i..].chars().next() else {
                return Err(self.error(start, "unclosed quote"));
            };
            self.i += e.len_utf8();
            text.push(match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                other => other,
            });
        }
        Ok(Val {
            text,
            pos: self.t.pos(start + 1),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Translation into the engine's selections.

/// A boolean expression over a rule's selections (by index).
enum Expr {
    Sel(usize),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// A Falco field as the engine reads it.
struct Resolved {
    /// The field name a rule under a Kubernetes `logsource` writes (`raw.…`, `event.time`).
    key: String,
    name: String,
    pos: Pos,
    list: bool,
    take: Option<Take>,
    divide: Option<f64>,
}

/// One selection entry: `key: [values]`.
struct Entry {
    key: String,
    pos: Pos,
    values: Vec<Item>,
    list: bool,
}

impl Entry {
    fn signature(&self) -> String {
        let mut s = self.key.clone();
        for v in &self.values {
            let _ = write!(s, "\u{0}{:?}", v.value);
        }
        s
    }

    fn into_spec(self) -> EntrySpec {
        EntrySpec {
            key: Str::synthetic(self.key, self.pos),
            values: ValuesSpec {
                pos: self.pos,
                list: self.list,
                items: self.values,
            },
        }
    }
}

/// One rule being translated: its selections (a comparison written twice is one), and the
/// problems found.
#[derive(Default)]
struct Out {
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    errors: Vec<SpecError>,
    /// How many of `errors` are fields that cannot be read (`skip-if-unknown-filter`).
    field_errors: usize,
    /// Terms the expanded condition may still have: macros that each use another twice
    /// double it at every level, and a hostile file must not hang the load.
    budget: usize,
}

/// The most terms a rule's condition may have once its macros are expanded.
const MAX_TERMS: usize = 100_000;

/// The most values a list comparison may have once its lists are expanded.
const MAX_VALUES: usize = 1_000_000;

impl Out {
    fn add(&mut self, entry: Entry) -> Expr {
        let signature = entry.signature();
        if let Some(&i) = self.index.get(&signature) {
            return Expr::Sel(i);
        }
        self.index.insert(signature, self.entries.len());
        self.entries.push(entry);
        Expr::Sel(self.entries.len() - 1)
    }
}

struct Translate<'d> {
    defs: &'d Defs,
    /// Each macro's condition, parsed on first use.
    parsed: Vec<Option<Result<Cond, SpecError>>>,
    vendor: sigma::Vendor,
}

/// Falco's `source: k8s_audit`, as the Sigma logsource that routes a rule to the Kubernetes
/// audit adapter.
fn k8s_logsource(pos: Pos) -> LogsourceSpec {
    LogsourceSpec {
        pos,
        product: Some(Str::synthetic("kubernetes", pos)),
        service: Some(Str::synthetic("audit", pos)),
        category: None,
    }
}

impl<'d> Translate<'d> {
    fn new(defs: &'d Defs) -> Translate<'d> {
        Translate {
            defs,
            parsed: defs.macros.iter().map(|_| None).collect(),
            vendor: sigma::route(&k8s_logsource(Pos::default()))
                .expect("the Kubernetes audit log is read"),
        }
    }

    /// The documents of the file: one empty non-rule document per item, and one per rule
    /// that loads; errors into `r`.
    fn docs(mut self, r: &mut Reader<'_>) -> Vec<Doc> {
        let defs = self.defs;
        let mut docs: Vec<Doc> = defs
            .items
            .iter()
            .map(|&pos| Doc {
                pos,
                ..Doc::default()
            })
            .collect();
        for rule in defs.rules.iter().filter(|r| r.enabled && !r.broken) {
            let id = rule_id(&rule.name.value);
            match self.rule(rule, &id) {
                Ok(doc) => docs.push(doc),
                // Falco's way to say the rule may name fields this engine lacks.
                Err(out) if rule.skip_unknown && out.errors.len() == out.field_errors => {}
                Err(out) => r.errors.extend(out.errors.into_iter().map(|mut e| {
                    e.rule = Some(id.clone());
                    e
                })),
            }
        }
        // A macro no rule uses is still checked for syntax, as Falco does.
        for (m, parsed) in self.parsed.iter().enumerate() {
            if parsed.is_none() {
                if let Err(e) = parse_condition(&defs.macros[m].condition) {
                    r.errors.push(e);
                }
            }
        }
        // Stable: an item's empty document stays before the rule read from it.
        docs.sort_by_key(|d| d.pos);
        docs
    }

    fn rule(&mut self, rule: &RuleDef, id: &str) -> Result<Doc, Out> {
        let mut out = Out {
            budget: MAX_TERMS,
            ..Out::default()
        };
        match &rule.source {
            None => out.errors.push(SpecError::new(
                rule.name.pos,
                format!(
                    "a Falco rule without `source:` is for system calls; sessionguard reads \
                     `source: {SOURCE}` rules only"
                ),
            )),
            Some(s) if s.value != SOURCE => out.errors.push(SpecError::new(
                s.pos,
                format!(
                    "source `{}` is not read: sessionguard reads Falco rules for `{SOURCE}` only",
                    s.value
                ),
            )),
            Some(_) => {}
        }
        if !out.errors.is_empty() {
            // A rule for another source: its fields are that source's, not worth a word each.
            return Err(out);
        }
        let level = rule.priority.as_ref().and_then(|p| {
            let found = PRIORITIES
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(&p.value));
            if found.is_none() {
                let names: Vec<String> = PRIORITIES.iter().map(|(n, _)| n.to_uppercase()).collect();
                out.errors.push(SpecError::new(
                    p.pos,
                    format!(
                        "unknown priority `{}` (expected one of: {})",
                        p.value,
                        names.join(", ")
                    ),
                ));
            }
            found.map(|(_, level)| Str::synthetic(*level, p.pos))
        });
        let cond_pos = rule.condition.first().map_or(rule.pos, |c| c.pos);
        let expr = match parse_condition(&rule.condition) {
            Ok(cond) => self.expr(&cond, &mut out, &mut Vec::new()),
            Err(e) => {
                out.errors.push(e);
                None
            }
        };
        if out.budget == 0 {
            out.errors.push(SpecError::new(
                cond_pos,
                format!(
                    "the condition has more than {MAX_TERMS} terms once its macros are expanded"
                ),
            ));
        }
        let exceptions = self.exceptions(rule, &mut out);
        let Some(expr) = expr.filter(|_| out.errors.is_empty()) else {
            return Err(out);
        };
        let mut condition = String::new();
        render(&expr, &mut condition);
        let selections = out
            .entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let name = Str::synthetic(format!("c{}", i + 1), e.pos);
                let pos = e.pos;
                let spec = SelectionSpec {
                    pos,
                    groups: vec![vec![e.into_spec()]],
                };
                (name, spec)
            })
            .collect();
        Ok(Doc {
            pos: rule.pos,
            is_rule: true,
            title: Some(rule.name.clone()),
            id: Some(Str::synthetic(id, rule.name.pos)),
            level,
            tags: rule.tags.clone(),
            logsource: Some(k8s_logsource(
                rule.source.as_ref().map_or(rule.pos, |s| s.pos),
            )),
            detection: Some(DetectionSpec {
                pos: cond_pos,
                selections,
                condition: Some(Str::synthetic(condition, cond_pos)),
                condition_written: true,
            }),
            exceptions,
            output: rule
                .output
                .as_ref()
                .map(|o| self.output(o))
                .unwrap_or_default(),
            ..Doc::default()
        })
    }

    /// A rule's `output`: text with `%field` (or `%field[arg]`) in it. A field rendered as
    /// something else than Falco would (an image repository, the time in Falco's nanoseconds)
    /// or not read at all stays as written.
    fn output(&self, text: &Str) -> Vec<OutputPart> {
        let (s, b) = (&text.value, text.value.as_bytes());
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while let Some(at) = s[i..].find('%').map(|k| i + k) {
            literal.push_str(&s[i..at]);
            let start = at + 1;
            let mut end = start;
            while b.get(end).copied().is_some_and(is_ident) {
                end += 1;
            }
            // `by %ka.user.name.`: the sentence's full stop is not the field's.
            while end > start && b[end - 1] == b'.' {
                end -= 1;
            }
            let name = &s[start..end];
            let mut arg = None;
            if end > start && b.get(end) == Some(&b'[') {
                if let Some(len) = s[end..].find(']') {
                    arg = Some(&s[end + 1..end + len]);
                    end += len + 1;
                }
            }
            let mut ignored = Out::default();
            match self.field(name, arg, text.at(start), &mut ignored) {
                Some(f) if f.take.is_none() && f.divide.is_none() => {
                    if !literal.is_empty() {
                        parts.push(OutputPart::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(OutputPart::Field(Str::synthetic(f.key, f.pos)));
                }
                _ => literal.push_str(&s[at..end]),
            }
            i = end;
        }
        literal.push_str(&s[i..]);
        if !literal.is_empty() {
            parts.push(OutputPart::Text(literal));
        }
        parts
    }

    /// The condition with its macros expanded, as an expression over selections; `None` after
    /// reporting what stands in the way.
    fn expr(&mut self, c: &Cond, out: &mut Out, stack: &mut Vec<usize>) -> Option<Expr> {
        // Reported once, by the rule.
        out.budget = out.budget.checked_sub(1)?;
        match c {
            Cond::Not(inner) => match self.expr(inner, out, stack)? {
                Expr::Not(e) => Some(*e),
                e => Some(Expr::Not(Box::new(e))),
            },
            Cond::And(items) | Cond::Or(items) => {
                let and = matches!(c, Cond::And(_));
                let mut all = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items {
                    match self.expr(item, out, stack) {
                        // `a and (b and c)`: one level, to keep the text shallow.
                        Some(Expr::And(inner)) if and => all.extend(inner),
                        Some(Expr::Or(inner)) if !and => all.extend(inner),
                        Some(e) => all.push(e),
                        None => ok = false,
                    }
                }
                ok.then_some(if and { Expr::And(all) } else { Expr::Or(all) })
            }
            Cond::Macro(name, pos) => {
                let Some(&m) = self.defs.macro_index.get(name) else {
                    let hint = did_you_mean(name, self.defs.macro_index.keys().map(String::as_str));
                    out.errors.push(SpecError::new(
                        *pos,
                        format!("unknown macro `{name}`{hint}"),
                    ));
                    return None;
                };
                if stack.len() >= MAX_DEPTH {
                    out.errors.push(SpecError::new(
                        *pos,
                        format!("macros nested more than {MAX_DEPTH} deep"),
                    ));
                    return None;
                }
                if let Some(from) = stack.iter().position(|&s| s == m) {
                    let path: Vec<&str> = stack[from..]
                        .iter()
                        .chain([&m])
                        .map(|&s| self.defs.macros[s].name.as_str())
                        .collect();
                    out.errors.push(SpecError::new(
                        *pos,
                        format!("macro cycle: {}", path.join(" → ")),
                    ));
                    return None;
                }
                let parsed = self.parsed[m]
                    .get_or_insert_with(|| parse_condition(&self.defs.macros[m].condition));
                let cond = match parsed {
                    Ok(cond) => cond.clone(),
                    Err(e) => {
                        out.errors.push(e.clone());
                        return None;
                    }
                };
                stack.push(m);
                let e = self.expr(&cond, out, stack);
                stack.pop();
                e
            }
            Cond::Cmp(cmp) => self.comparison(cmp, out),
        }
    }

    fn comparison(&mut self, c: &Cmp, out: &mut Out) -> Option<Expr> {
        let field = self.field(&c.field, c.arg.as_deref(), c.field_pos, out)?;
        let values = match self.expand(&c.values, c.op.takes_list()) {
            Ok(values) => values,
            Err(why) => {
                out.errors.push(SpecError::new(c.op_pos, why));
                return None;
            }
        };
        if c.op == Op::Ne {
            // Falco compares only a field that is there: `!=` is false on a missing one.
            let exists = entry(&field, Op::Exists, c.op_pos, &[], &mut out.errors)?;
            let equal = entry(&field, Op::Eq, c.op_pos, &values, &mut out.errors)?;
            let (exists, equal) = (out.add(exists), out.add(equal));
            return Some(Expr::And(vec![exists, Expr::Not(Box::new(equal))]));
        }
        let e = entry(&field, c.op, c.op_pos, &values, &mut out.errors)?;
        Some(out.add(e))
    }

    /// The values of a list comparison with list names replaced by their items (lists may
    /// hold lists); a name that is no list is a value.
    fn expand(&self, values: &[Val], lists: bool) -> Result<Vec<Val>, String> {
        let mut out = Vec::with_capacity(values.len());
        if !lists {
            out.extend(values.iter().cloned());
            return Ok(out);
        }
        let mut stack = Vec::new();
        for v in values {
            self.expand_one(v, &mut out, &mut stack)?;
        }
        Ok(out)
    }

    fn expand_one(
        &self,
        v: &Val,
        out: &mut Vec<Val>,
        stack: &mut Vec<usize>,
    ) -> Result<(), String> {
        match self.defs.list_index.get(&v.text) {
            Some(&l) if !stack.contains(&l) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("lists nested more than {MAX_DEPTH} deep"));
                }
                stack.push(l);
                for item in &self.defs.lists[l].items {
                    let item = Val {
                        text: item.value.clone(),
                        pos: item.pos,
                    };
                    self.expand_one(&item, out, stack)?;
                }
                stack.pop();
            }
            _ if out.len() >= MAX_VALUES => {
                return Err(format!(
                    "more than {MAX_VALUES} values once the lists are expanded"
                ));
            }
            _ => out.push(v.clone()),
        }
        Ok(())
    }

    /// A Falco field through the table; an error at it when it cannot be read.
    fn field(&self, name: &str, arg: Option<&str>, pos: Pos, out: &mut Out) -> Option<Resolved> {
        let name = match name.strip_prefix("json.") {
            Some(rest) => format!("jevt.{rest}"),
            None => name.to_owned(),
        };
        let fail = |out: &mut Out, message: String| {
            out.errors.push(SpecError::new(pos, message));
            out.field_errors += 1;
            None
        };
        let table = table();
        if name == "jevt.value" {
            let Some(pointer) = arg else {
                return fail(
                    out,
                    "`jevt.value` needs a JSON pointer: `jevt.value[/objectRef/name]`".into(),
                );
            };
            let key = match pointer_path(pointer) {
                Ok(key) => key,
                Err(why) => return fail(out, format!("`jevt.value[{pointer}]`: {why}")),
            };
            if let Some(why) = self.vendor.never_present(&key) {
                return fail(out, why);
            }
            return Some(Resolved {
                key,
                name: format!("jevt.value[{pointer}]"),
                pos,
                list: false,
                take: None,
                divide: None,
            });
        }
        if let Some(why) = table.not_read.get(&name) {
            return fail(out, format!("Falco field `{name}` is not read yet: {why}"));
        }
        let Some(def) = table.fields.get(&name) else {
            let hint = did_you_mean(&name, table.fields.keys().map(String::as_str));
            let hint = if hint.is_empty() {
                " (the k8saudit plugin's `ka.*` fields and `jevt.value[/pointer]` are read)"
                    .to_owned()
            } else {
                hint
            };
            return fail(out, format!("unknown Falco field `{name}`{hint}"));
        };
        if let Some(arg) = arg {
            return fail(
                out,
                format!("`{name}[{arg}]`: an argument to this field is not read yet"),
            );
        }
        let key = if def.to.starts_with("raw.") {
            def.to.clone()
        } else {
            format!("event.{}", def.to)
        };
        Some(Resolved {
            key,
            name,
            pos,
            list: def.list,
            take: def.take,
            divide: def.divide,
        })
    }

    /// A rule's exceptions as selections: each tuple of values one group.
    fn exceptions(&self, rule: &RuleDef, out: &mut Out) -> Vec<ExceptionSpec> {
        let mut specs = Vec::new();
        for exc in rule.exceptions.iter().filter(|e| !e.values.is_empty()) {
            let what = format!("exception `{}`", exc.name.value);
            if exc.fields.is_empty() {
                out.errors.push(SpecError::new(
                    exc.name.pos,
                    format!("{what}: missing `fields`"),
                ));
                continue;
            }
            if !exc.comps.is_empty() && exc.comps.len() != exc.fields.len() {
                out.errors.push(SpecError::new(
                    exc.comps[0].pos,
                    format!(
                        "{what}: {} comparisons for {} fields",
                        exc.comps.len(),
                        exc.fields.len()
                    ),
                ));
                continue;
            }
            let fields: Vec<Option<Resolved>> = exc
                .fields
                .iter()
                .map(|f| self.field(&f.value, None, f.pos, out))
                .collect();
            let mut ops = Vec::with_capacity(exc.fields.len());
            for (i, f) in exc.fields.iter().enumerate() {
                let op = match exc.comps.get(i) {
                    None if exc.single => Some((Op::In, f.pos)),
                    None => Some((Op::Eq, f.pos)),
                    Some(c) => match Op::from_word(&c.value) {
                        Some(Op::Ne) | None => {
                            out.errors.push(SpecError::new(
                                c.pos,
                                format!("{what}: comparison `{}` is not read here", c.value),
                            ));
                            None
                        }
                        Some(op) => Some((op, c.pos)),
                    },
                };
                ops.push(op);
            }
            let mut groups = Vec::new();
            for t in &exc.values {
                let single;
                let written = if exc.single && t.list {
                    // `fields: one.field` with a list: the list is the one value.
                    let items = t.values.iter().flat_map(|v| match v {
                        TupleValue::One(s) => std::slice::from_ref(s),
                        TupleValue::Many(items) => items.as_slice(),
                    });
                    single = [TupleValue::Many(items.cloned().collect())];
                    &single[..]
                } else if !exc.single && !t.list {
                    out.errors.push(SpecError::new(
                        t.pos,
                        format!("{what}: each of `values` is a list, one value per field"),
                    ));
                    continue;
                } else {
                    &t.values[..]
                };
                if written.len() != exc.fields.len() {
                    out.errors.push(SpecError::new(
                        t.pos,
                        format!(
                            "{what}: {} values for {} fields",
                            written.len(),
                            exc.fields.len()
                        ),
                    ));
                    continue;
                }
                let mut group = Vec::new();
                for ((field, op), value) in fields.iter().zip(&ops).zip(written) {
                    let (Some(field), Some((op, op_pos))) = (field, op) else {
                        continue;
                    };
                    let written: Vec<Val> = match value {
                        TupleValue::One(s) => vec![val(s)],
                        TupleValue::Many(items) => items.iter().map(val).collect(),
                    };
                    let values = match self.expand(&written, op.takes_list()) {
                        Ok(values) => values,
                        Err(why) => {
                            out.errors.push(SpecError::new(*op_pos, why));
                            continue;
                        }
                    };
                    if let Some(e) = entry(field, *op, *op_pos, &values, &mut out.errors) {
                        group.push(e.into_spec());
                    }
                }
                groups.push(group);
            }
            specs.push(ExceptionSpec {
                pos: exc.name.pos,
                name: Some(exc.name.clone()),
                selection: SelectionSpec {
                    pos: exc.name.pos,
                    groups,
                },
            });
        }
        specs
    }
}

fn val(s: &Str) -> Val {
    Val {
        text: s.value.clone(),
        pos: s.pos,
    }
}

/// A JSON pointer (`/requestObject/spec/tls`) as a raw path.
fn pointer_path(pointer: &str) -> Result<String, String> {
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err("a JSON pointer starts with `/`".into());
    };
    let mut path = String::from("raw");
    for segment in rest.split('/') {
        let key = segment.replace("~1", "/").replace("~0", "~");
        if key.is_empty() || key.contains(['"', '|']) || key.ends_with('?') {
            return Err(format!(
                "the key `{key}` cannot be read (it is empty, holds `\"` or `|`, or ends in `?`)"
            ));
        }
        if key.contains('.') {
            let _ = write!(path, ".\"{key}\"");
        } else {
            let _ = write!(path, ".{key}");
        }
    }
    Ok(path)
}

/// One comparison as a selection entry: the engine's modifiers for Falco's operator, and the
/// values as patterns.
fn entry(
    field: &Resolved,
    op: Op,
    op_pos: Pos,
    values: &[Val],
    errors: &mut Vec<SpecError>,
) -> Option<Entry> {
    let fail = |errors: &mut Vec<SpecError>, message: String| {
        errors.push(SpecError::new(op_pos, message));
        None
    };
    let text = |v: &Val, t: String| Item::new(Scalar::Str(t), v.pos);
    let mut entry = Entry {
        key: field.key.clone(),
        pos: field.pos,
        values: Vec::with_capacity(values.len()),
        list: true,
    };
    match op {
        Op::Exists => {
            entry.key.push_str("|exists");
            entry.values.push(Item::new(Scalar::Bool(true), op_pos));
            entry.list = false;
            return Some(entry);
        }
        Op::BContains | Op::BStartsWith => {
            return fail(
                errors,
                format!(
                    "`{}` compares bytes; audit records are text: use `contains` or `startswith`",
                    op.name()
                ),
            )
        }
        Op::Regex => return fail(errors, "`regex` is not read yet".into()),
        // No caller passes `!=` today (a condition's becomes `exists and not =`, an exception's
        // is refused); kept so a new caller cannot turn it into `=`.
        Op::Ne => return fail(errors, "`!=` is not read here".into()),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            entry.key.push_str(match op {
                Op::Lt => "|lt",
                Op::Le => "|lte",
                Op::Gt => "|gt",
                _ => "|gte",
            });
            entry.values = numbers(op, values, field.divide.unwrap_or(1.0), errors)?;
            return Some(entry);
        }
        _ => {}
    }
    if let Some(divide) = field.divide {
        if !matches!(op, Op::Eq | Op::In | Op::Intersects) {
            return fail(
                errors,
                format!(
                    "`{}` does not apply to `{}`, a number",
                    op.name(),
                    field.name
                ),
            );
        }
        entry.values = numbers(op, values, divide, errors)?;
        return Some(entry);
    }
    // Falco's `in` on a list field: every value in the set. Its other operators (which Falco
    // refuses on a list field) hold when one value does, as `intersects`.
    if field.list && op == Op::In {
        entry.key.push_str("|every");
    }
    let (modifier, cased) = match op {
        Op::Contains => ("|contains", true),
        Op::IContains => ("|contains", false),
        Op::StartsWith => ("|startswith", true),
        Op::EndsWith => ("|endswith", true),
        Op::IGlob => ("", false),
        _ => ("", true),
    };
    entry.key.push_str(modifier);
    if cased {
        entry.key.push_str("|cased");
    }
    if field.take == Some(Take::ImageRepository) {
        if !matches!(op, Op::Eq | Op::In | Op::Intersects | Op::StartsWith) {
            return fail(
                errors,
                format!(
                    "`{}` is not read for `{}` (a part of the image name): use =, in, \
                     intersects, startswith or exists",
                    op.name(),
                    field.name
                ),
            );
        }
        // The repository is the name up to the first `:` or `@`; a value holding either is
        // never one, as in Falco.
        for v in values.iter().filter(|v| !v.text.contains([':', '@'])) {
            let repo = Glob::escape(&v.text);
            entry.values.push(text(v, repo.clone()));
            if op != Op::StartsWith {
                entry.values.push(text(v, format!("{repo}:*")));
                entry.values.push(text(v, format!("{repo}@*")));
            }
        }
        return Some(entry);
    }
    for v in values {
        match op {
            Op::Glob | Op::IGlob => {
                if v.text.contains('[') {
                    errors.push(SpecError::new(
                        v.pos,
                        "character classes (`[…]`) in a glob are not read yet",
                    ));
                    return None;
                }
                entry.values.push(text(v, v.text.clone()));
            }
            Op::PMatch => {
                // A path and what is under it.
                let path = v.text.trim_end_matches('/');
                if !path.is_empty() {
                    entry.values.push(text(v, Glob::escape(path)));
                }
                entry
                    .values
                    .push(text(v, format!("{}/*", Glob::escape(path))));
            }
            _ => entry.values.push(text(v, Glob::escape(&v.text))),
        }
    }
    Some(entry)
}

/// Values that must be numbers, in the engine field's unit (Falco's divided by `divide`).
fn numbers(op: Op, values: &[Val], divide: f64, errors: &mut Vec<SpecError>) -> Option<Vec<Item>> {
    let mut items = Vec::with_capacity(values.len());
    for v in values {
        let Ok(n) = v.text.trim().parse::<f64>() else {
            errors.push(SpecError::new(
                v.pos,
                format!("`{}` needs a number, not `{}`", op.name(), v.text),
            ));
            return None;
        };
        items.push(Item::new(Scalar::Float(n / divide), v.pos));
    }
    Some(items)
}

/// The expression as condition text over the selection names `c1`, `c2`, …
fn render(e: &Expr, out: &mut String) {
    // `not` binds tighter than `and` and `or`: only those need parentheses.
    fn group(e: &Expr, out: &mut String) {
        if matches!(e, Expr::Sel(_) | Expr::Not(_)) {
            render(e, out);
        } else {
            out.push('(');
            render(e, out);
            out.push(')');
        }
    }
    match e {
        Expr::Sel(i) => {
            let _ = write!(out, "c{}", i + 1);
        }
        Expr::Not(inner) => {
            out.push_str("not ");
            group(inner, out);
        }
        Expr::And(items) | Expr::Or(items) => {
            let join = if matches!(e, Expr::And(_)) {
                " and "
            } else {
                " or "
            };
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(join);
                }
                group(item, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::field::Field;
    use crate::rule::spec::read_file;

    /// A condition's tree, compactly: `and(m:a, not(x.y=[1]))`.
    fn shape(c: &Cond) -> String {
        let list = |items: &[Cond]| items.iter().map(shape).collect::<Vec<_>>().join(", ");
        match c {
            Cond::Macro(name, _) => format!("m:{name}"),
            Cond::Not(inner) => format!("not({})", shape(inner)),
            Cond::And(items) => format!("and({})", list(items)),
            Cond::Or(items) => format!("or({})", list(items)),
            Cond::Cmp(cmp) => {
                let values: Vec<&str> = cmp.values.iter().map(|v| v.text.as_str()).collect();
                let arg = cmp.arg.as_ref().map_or(String::new(), |a| format!("[{a}]"));
                format!("{}{arg} {} {values:?}", cmp.field, cmp.op.name())
            }
        }
    }

    fn parse(text: &str) -> Result<String, String> {
        parse_condition(&[Str::synthetic(text, Pos::default())])
            .map(|c| shape(&c))
            .map_err(|e| e.message)
    }

    #[test]
    fn the_condition_language() {
        assert_eq!(
            parse("a or not b and c").unwrap(),
            "or(m:a, and(not(m:b), m:c))"
        );
        assert_eq!(
            parse("(a)and not(ka.verb=get)").unwrap(),
            r#"and(m:a, not(ka.verb = ["get"]))"#
        );
        assert_eq!(
            parse("ka.target.namespace!=kube-system").unwrap(),
            r#"ka.target.namespace != ["kube-system"]"#
        );
        assert_eq!(
            parse("ka.uri startswith /healthz? or ka.response.code >= 400").unwrap(),
            r#"or(ka.uri startswith ["/healthz?"], ka.response.code >= ["400"])"#
        );
        assert_eq!(
            parse(r#"x.y in (a, "b c",'d\'e' , notable) and x.z intersects ()"#).unwrap(),
            r#"and(x.y in ["a", "b c", "d'e", "notable"], x.z intersects [])"#
        );
        assert_eq!(
            parse("jevt.value[/stage] exists and andy and ornament").unwrap(),
            r#"and(jevt.value[/stage] exists [], m:andy, m:ornament)"#
        );
        // An argument may be quoted, either way.
        assert_eq!(
            parse(r#"jevt.value["/stage"] = a or ka.uri.param['command'] = b"#).unwrap(),
            r#"or(jevt.value[/stage] = ["a"], ka.uri.param[command] = ["b"])"#
        );
        assert_eq!(
            parse(r#"x.y = "a \"quoted\" (value)""#).unwrap(),
            r#"x.y = ["a \"quoted\" (value)"]"#
        );
        for (text, fragment) in [
            ("x.y = (a)", "`=` takes one value"),
            ("x.y in a", "`in` takes a list in parentheses"),
            ("x.y foo z", "expected a comparison after `x.y`"),
            ("tolower(x.y) = a", "field transformers are not read yet"),
            ("x.y = val(z.w)", "`val(…)`"),
            ("a b", "expected `and` or `or` before `b`"),
            ("a and", "ends early"),
            (
                "and x.y = a",
                "expected a macro or a comparison before `and`",
            ),
            (
                "a and or x.y = a",
                "expected a macro or a comparison before `or`",
            ),
            ("(a or b", "unclosed `(`"),
            ("x.y in (a b)", "expected `,` or `)`"),
            ("x.y = \"open", "unclosed quote"),
            ("", "empty condition"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(fragment), "{text}: {e}");
        }
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).unwrap_err().contains("too deeply"));
    }

    /// The selections and condition a one-rule Falco file becomes: `c1 key: [values]` lines.
    fn translated(items: &str, condition: &str) -> Result<(Vec<String>, String), Vec<String>> {
        let src = format!(
            "{items}\n- rule: R\n  desc: d\n  condition: {condition}\n  output: o\n  \
             priority: INFO\n  source: k8s_audit\n"
        );
        let (docs, errors) = read_file(&src).unwrap();
        if !errors.is_empty() {
            return Err(errors
                .iter()
                .map(|e| format!("{}: {}", e.pos, e.message))
                .collect());
        }
        let doc = docs.iter().find(|d| d.is_rule).expect("the rule");
        let detection = doc.detection.as_ref().unwrap();
        let entries = detection
            .selections
            .iter()
            .map(|(name, sel)| {
                let e = &sel.groups[0][0];
                let values: Vec<String> =
                    e.values.items.iter().map(|i| i.value.to_string()).collect();
                format!("{} {}: [{}]", name.value, e.key.value, values.join(", "))
            })
            .collect();
        Ok((entries, detection.condition.clone().unwrap().value))
    }

    #[test]
    fn comparisons_become_entries_with_falco_semantics() {
        let (e, c) = translated("", "ka.target.namespace != kube-system").unwrap();
        assert_eq!(
            e,
            [
                "c1 raw.objectRef.namespace|exists: [true]",
                "c2 raw.objectRef.namespace|cased: [kube-system]"
            ]
        );
        assert_eq!(c, "c1 and not c2");
        // Values are literal: the engine's wildcards are escaped.
        let (e, _) =
            translated("", "ka.uri startswith /healthz? or ka.uri icontains 'a*b'").unwrap();
        assert_eq!(
            e,
            [
                r"c1 raw.requestURI|startswith|cased: [/healthz\?]",
                r"c2 raw.requestURI|contains: [a\*b]"
            ]
        );
        // `in` on a list field is every value; a repository is an image name's first part, and
        // a value with `:` is never one.
        let (e, _) = translated(
            "- list: ok_images\n  items: [nginx, \"reg:5000/x\"]",
            "ka.req.pod.containers.image.repository in (ok_images) \
             and ka.req.role.rules.verbs intersects (\"*\")",
        )
        .unwrap();
        assert_eq!(
            e,
            [
                "c1 raw.requestObject.spec.containers.image|every|cased: [nginx, nginx:*, nginx@*]",
                r"c2 raw.requestObject.rules.verbs|cased: [\*]"
            ]
        );
        let (e, _) = translated("", "ka.req.pod.volumes.hostpath pmatch (/etc/, /)").unwrap();
        assert_eq!(
            e,
            ["c1 raw.requestObject.spec.volumes.hostPath.path|cased: [/etc, /etc/*, /*]"]
        );
        // The event's time, in Falco's nanoseconds.
        let (e, _) = translated(
            "",
            "jevt.rawtime exists and json.rawtime = 0 and jevt.rawtime > 2000000",
        )
        .unwrap();
        assert_eq!(
            e,
            [
                "c1 event.time|exists: [true]",
                "c2 event.time: [0]",
                "c3 event.time|gt: [2]"
            ]
        );
        let (e, _) = translated(
            "",
            r#"jevt.value[/requestObject/metadata/labels/app.kubernetes.io~1name] = web and ka.auth.decision = allow"#,
        )
        .unwrap();
        assert_eq!(
            e,
            [
                r#"c1 raw.requestObject.metadata.labels."app.kubernetes.io/name"|cased: [web]"#,
                r#"c2 raw.annotations."authorization.k8s.io/decision"|cased: [allow]"#
            ]
        );
        // A key no raw path can name is refused, whichever way it cannot.
        for pointer in ["/a//b", "/a\"b", "/a|b", "/a?"] {
            let e = translated("", &format!("jevt.value[{pointer}] = x")).unwrap_err();
            assert!(e[0].contains("cannot be read"), "{pointer}: {e:?}");
        }
        // Each ordering and suffix comparison, and the ones not read.
        let (e, _) = translated(
            "",
            "ka.response.code < 400 and ka.response.code <= 401 and ka.uri endswith /exec \
             and ka.uri glob '/api/*' and ka.uri iglob '/API/*'",
        )
        .unwrap();
        assert_eq!(
            e,
            [
                "c1 raw.responseStatus.code|lt: [400]",
                "c2 raw.responseStatus.code|lte: [401]",
                "c3 raw.requestURI|endswith|cased: [/exec]",
                "c4 raw.requestURI|cased: [/api/*]",
                "c5 raw.requestURI: [/API/*]"
            ]
        );
        // A quoted value's mistake is shown at its first character, inside the quote.
        let e = translated("", "ka.response.code >= 'high'").unwrap_err();
        assert_eq!(e, ["4:35: `>=` needs a number, not `high`"]);
        for (condition, fragment) in [
            ("ka.uri bcontains 2f65", "`bcontains` compares bytes"),
            ("ka.uri bstartswith 2f", "`bstartswith` compares bytes"),
            ("ka.uri regex '^/api'", "`regex` is not read yet"),
        ] {
            let e = translated("", condition).unwrap_err();
            assert!(e[0].contains(fragment), "{condition}: {e:?}");
        }
    }

    #[test]
    fn macros_lists_appends_and_overrides() {
        let items = "\
- list: l
  items: [a]
- list: inner
  items: [c]
- list: l
  items: [b, inner]
  append: true
- macro: m
  condition: ka.verb in (l)
- macro: m
  condition: or ka.verb = z
  override:
    condition: append
- macro: twice
  condition: (m and m)";
        let (e, c) = translated(items, "twice and not (m or ka.verb = z)").unwrap();
        assert_eq!(
            e,
            ["c1 raw.verb|cased: [a, b, c]", "c2 raw.verb|cased: [z]"]
        );
        assert_eq!(c, "(c1 or c2) and (c1 or c2) and not (c1 or c2 or c2)");
        // A list naming itself among its items: the name is a value there, not a loop.
        let (e, _) = translated("- list: l\n  items: [a, l]", "ka.verb in (l)").unwrap();
        assert_eq!(e, ["c1 raw.verb|cased: [a, l]"]);
        let errors = translated(
            "- macro: a\n  condition: b\n- macro: b\n  condition: a",
            "a",
        )
        .unwrap_err();
        assert_eq!(errors, ["4:14: macro cycle: a → b → a"]);
        // A mistake in an appended condition is found where the append wrote it.
        let errors = translated(
            "- macro: m\n  condition: ka.verb = get\n- macro: m\n  condition: or ka.verb in (a, b\n  \
             append: true",
            "m",
        )
        .unwrap_err();
        assert_eq!(errors, ["4:28: unclosed `(`"]);
        let errors =
            translated("- macro: kcreate\n  condition: ka.verb = create", "kcreat").unwrap_err();
        assert_eq!(
            errors,
            ["5:14: unknown macro `kcreat` (did you mean `kcreate`?)"]
        );
    }

    /// The rule documents a Falco file gives; it must load without an error.
    fn rule_docs(src: &str) -> Vec<Doc> {
        let (docs, errors) = read_file(src).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        docs.into_iter().filter(|d| d.is_rule).collect()
    }

    /// The rules a file loads, by title.
    fn loaded(src: &str) -> Vec<String> {
        rule_docs(src)
            .iter()
            .map(|d| d.title.as_ref().unwrap().value.clone())
            .collect()
    }

    #[test]
    fn rules_switched_off_replaced_or_skipped() {
        let rule = |name: &str, condition: &str, extra: &str| {
            format!(
                "- rule: {name}\n  desc: d\n  condition: {condition}\n  output: o\n  \
                 priority: INFO\n  source: k8s_audit\n{extra}"
            )
        };
        let src = [
            rule("A", "ka.verb = get", ""),
            rule("B", "ka.verb = get", ""),
            rule(
                "C",
                "ka.uri.param[command] = ls",
                "  skip-if-unknown-filter: true\n",
            ),
            // Falco's older way to switch a rule off, and the newer one.
            "- rule: A\n  enabled: false\n".to_owned(),
            "- rule: B\n  enabled: false\n  override:\n    enabled: replace\n".to_owned(),
            rule("D", "ka.verb = get", "  enabled: false\n"),
            "- rule: D\n  enabled: true\n".to_owned(),
            // A redefinition replaces: E's first condition would not parse.
            rule("E", "(", ""),
            rule("E", "ka.verb = list", ""),
        ]
        .concat();
        assert_eq!(loaded(&src), ["D", "E"]);
        // A whole redefinition that also says `enabled: true` replaces, not only switches on.
        let src = [
            rule("F", "ka.verb = get", ""),
            rule("F", "ka.verb = get", "  enabled: true\n").replace("INFO", "CRITICAL"),
        ]
        .concat();
        let docs = rule_docs(&src);
        let levels: Vec<&str> = docs
            .iter()
            .filter_map(|d| d.level.as_ref())
            .map(|l| l.value.as_str())
            .collect();
        assert_eq!(levels, ["critical"]);
    }

    #[test]
    fn tags_are_appended_or_replaced_and_a_rule_sits_where_it_was_last_defined() {
        let rule = |name: &str, tags: &str| {
            format!(
                "- rule: {name}\n  desc: d\n  condition: ka.verb = get\n  output: o\n  \
                 priority: INFO\n  source: k8s_audit\n  tags: [{tags}]\n"
            )
        };
        let src = [
            rule("A", "a1"),
            rule("B", "b1"),
            "- rule: A\n  tags: [a2]\n  append: true\n".to_owned(),
            "- rule: B\n  tags: [b2]\n  override:\n    tags: replace\n".to_owned(),
            // A whole redefinition: C's place is its second definition's, after D.
            rule("C", "c1"),
            rule("D", "d1"),
            rule("C", "c2"),
        ]
        .concat();
        let rules: Vec<String> = rule_docs(&src)
            .iter()
            .map(|d| {
                let tags: Vec<&str> = d.tags.iter().map(|t| t.value.as_str()).collect();
                format!("{}: {}", d.title.as_ref().unwrap().value, tags.join(" "))
            })
            .collect();
        assert_eq!(rules, ["A: a1 a2", "B: b2", "D: d1", "C: c2"]);
    }

    #[test]
    fn a_rule_with_a_mistake_in_its_item_costs_one_error() {
        let rule = "- rule: R\n  desc: d\n  condition: [ka.verb = get]\n  output: o\n  \
                    priority: INFO\n  source: k8s_audit\n";
        assert_eq!(load_errors(rule), ["3:14: condition must be text"]);
    }

    /// A Falco file's load errors, `line:col: message`.
    fn load_errors(src: &str) -> Vec<String> {
        let (_, errors) = read_file(src).unwrap();
        errors
            .iter()
            .map(|e| format!("{}: {}", e.pos, e.message))
            .collect()
    }

    #[test]
    fn rule_ids_are_the_names_slugged() {
        let ids = |src: &str| -> Vec<String> {
            rule_docs(src)
                .iter()
                .map(|d| d.id.as_ref().unwrap().value.clone())
                .collect()
        };
        let rule = |name: &str| {
            format!(
                "- rule: '{name}'\n  desc: d\n  condition: ka.verb = get\n  output: o\n  \
                 priority: INFO\n  source: k8s_audit\n"
            )
        };
        let src = [
            rule("Attach to Cluster-Admin Pod"),
            // Leading, trailing and runs of other characters: one `_` between words only.
            rule("  -- K8s  Secret // Get --  "),
            rule("!!!"),
        ]
        .concat();
        assert_eq!(
            ids(&src),
            [
                "falco.attach_to_cluster_admin_pod",
                "falco.k8s_secret_get",
                "falco.unnamed"
            ]
        );
    }

    #[test]
    fn item_kinds_and_the_forms_of_a_change() {
        let rule = "- rule: R\n  desc: d\n  condition: ka.verb = get\n  output: o\n  \
                    priority: INFO\n  source: k8s_audit\n";
        // The version items Falco files open with are read and passed over; anything else
        // that names no kind is an error.
        let src = format!(
            "- required_engine_version: 0.26.0\n- required_plugin_versions: []\n{rule}\
             - rul: S\n  condition: ka.verb = get\n"
        );
        assert_eq!(
            load_errors(&src),
            [
                "9:3: a Falco item needs one of `rule`, `macro`, `list` (or \
              `required_engine_version`, `required_plugin_versions`)"
            ]
        );
        // `append: false` is a definition like no `append` at all: the second R replaces.
        let src = format!(
            "{rule}- rule: R\n  desc: d2\n  condition: ka.verb = list\n  output: o\n  \
             priority: INFO\n  source: k8s_audit\n  append: false\n"
        );
        assert_eq!(loaded(&src), ["R"]);
        let (e, c) = translated(
            "- macro: m\n  condition: ka.verb = a\n- macro: m\n  condition: ka.verb = b\n  \
             append: false",
            "m",
        )
        .unwrap();
        assert_eq!(
            (e, c),
            (vec!["c1 raw.verb|cased: [b]".to_owned()], "c1".into())
        );
        // An override's mode is `append` or `replace`, nothing else.
        let src = format!(
            "{rule}- rule: R\n  condition: ka.verb = list\n  override:\n    condition: prepend\n"
        );
        assert_eq!(
            load_errors(&src),
            ["10:16: an override is `append` or `replace`"]
        );
        // A list's `items` may be empty, and is otherwise a sequence.
        let (e, c) = translated(
            "- list: none\n  items:\n- list: some\n  items: [a, none]",
            "ka.verb in (some)",
        )
        .unwrap();
        assert_eq!(
            (e, c),
            (vec!["c1 raw.verb|cased: [a]".to_owned()], "c1".into())
        );
        assert_eq!(
            load_errors(&format!("- list: shells\n  items: bash\n{rule}")),
            ["2:10: list `shells`: `items` must be a list"]
        );
    }

    #[test]
    fn exceptions_are_selections_of_tuples() {
        let src = "\
- list: admins
  items: [alice, bob]
- rule: R
  desc: d
  condition: ka.verb = create
  output: o
  priority: INFO
  source: k8s_audit
  exceptions:
    - name: admin_in_ns
      fields: [ka.user.name, ka.target.namespace]
      comps: [in, startswith]
      values: [[admins, team-], [[carol], ops]]
    - name: by_name
      fields: ka.target.name
      values: [a, b]
- rule: R
  exceptions:
    - name: by_name
      values: [c]
  append: true
";
        let docs = rule_docs(src);
        let doc = &docs[0];
        let groups: Vec<Vec<String>> = doc
            .exceptions
            .iter()
            .flat_map(|e| &e.selection.groups)
            .map(|g| {
                g.iter()
                    .map(|e| {
                        let v: Vec<String> =
                            e.values.items.iter().map(|i| i.value.to_string()).collect();
                        format!("{}: {}", e.key.value, v.join(","))
                    })
                    .collect()
            })
            .collect();
        assert_eq!(
            groups,
            [
                vec![
                    "raw.user.username|cased: alice,bob",
                    "raw.objectRef.namespace|startswith|cased: team-"
                ],
                vec![
                    "raw.user.username|cased: carol",
                    "raw.objectRef.namespace|startswith|cased: ops"
                ],
                vec!["raw.objectRef.name|cased: a"],
                vec!["raw.objectRef.name|cased: b"],
                vec!["raw.objectRef.name|cased: c"],
            ]
        );
    }

    /// The parts of the one rule's output: `"text"` and `<field>`.
    fn output_parts(src: &str) -> Vec<String> {
        rule_docs(src)[0]
            .output
            .iter()
            .map(|p| match p {
                OutputPart::Text(t) => format!("{t:?}"),
                OutputPart::Field(f) => format!("<{}>", f.value),
            })
            .collect()
    }

    #[test]
    fn an_exception_without_comparisons_is_in_for_one_field_and_equals_for_more() {
        let groups = |exception: &str| -> Vec<String> {
            let src = format!(
                "- list: admins\n  items: [alice, bob]\n- rule: R\n  desc: d\n  \
                 condition: ka.verb = create\n  output: o\n  priority: INFO\n  \
                 source: k8s_audit\n  exceptions:\n    - name: e\n{exception}"
            );
            rule_docs(&src)[0]
                .exceptions
                .iter()
                .flat_map(|e| &e.selection.groups)
                .flatten()
                .map(|e| {
                    let v: Vec<String> =
                        e.values.items.iter().map(|i| i.value.to_string()).collect();
                    format!("{}: {}", e.key.value, v.join(","))
                })
                .collect()
        };
        // One field: its values are a list, as with `in`, so a list's name stands for its items.
        assert_eq!(
            groups("      fields: ka.user.name\n      values: [admins]\n"),
            ["raw.user.username|cased: alice,bob"]
        );
        // More fields: each is compared with `=`, so the name is the value.
        assert_eq!(
            groups(
                "      fields: [ka.user.name, ka.target.namespace]\n      \
                 values: [[admins, ops]]\n"
            ),
            [
                "raw.user.username|cased: admins",
                "raw.objectRef.namespace|cased: ops"
            ]
        );
    }

    #[test]
    fn an_exception_may_start_empty_and_takes_appends_of_its_own_shape() {
        let rule = "- rule: R\n  desc: d\n  condition: ka.verb = create\n  output: o\n  \
                    priority: INFO\n  source: k8s_audit\n  exceptions:\n    - name: by_name\n      \
                    fields: [ka.target.name]\n      values:\n";
        // Falco's files declare an exception with no values for others to append to.
        let src = format!(
            "{rule}- rule: R\n  exceptions:\n    - name: by_name\n      values: [[a]]\n  \
             append: true\n"
        );
        let docs = rule_docs(&src);
        let doc = &docs[0];
        let keys: Vec<&str> = doc
            .exceptions
            .iter()
            .flat_map(|e| &e.selection.groups)
            .flatten()
            .map(|e| e.key.value.as_str())
            .collect();
        assert_eq!(keys, ["raw.objectRef.name|cased"]);
        // An append may repeat the exception's fields.
        let src = format!(
            "{rule}- rule: R\n  exceptions:\n    - name: by_name\n      \
             fields: [ka.target.name]\n      values: [[a]]\n  append: true\n"
        );
        assert_eq!(load_errors(&src), Vec::<String>::new());
        // An append naming other fields, as many as the exception has, is refused.
        let src = format!(
            "{rule}- rule: R\n  exceptions:\n    - name: by_name\n      \
             fields: [ka.target.namespace]\n      values: [[a]]\n  append: true\n"
        );
        assert_eq!(
            load_errors(&src),
            ["13:13: exception `by_name`: appended values take the fields and comparisons it has"]
        );
        // With comparisons: an append may give values alone or repeat them, not change them.
        let with_comps = "- rule: R\n  desc: d\n  condition: ka.verb = create\n  output: o\n  \
                          priority: INFO\n  source: k8s_audit\n  exceptions:\n    - name: by_place\n      \
                          fields: [ka.target.name, ka.target.namespace]\n      \
                          comps: [=, startswith]\n      values: [[a, b]]\n";
        let append = |extra: &str| {
            format!(
                "{with_comps}- rule: R\n  exceptions:\n    - name: by_place\n{extra}      \
                 values: [[c, d]]\n  append: true\n"
            )
        };
        assert_eq!(load_errors(&append("")), Vec::<String>::new());
        assert_eq!(
            load_errors(&append("      comps: [=, startswith]\n")),
            Vec::<String>::new()
        );
        assert_eq!(
            load_errors(&append("      comps: [=, =]\n")),
            ["14:13: exception `by_place`: appended values take the fields and comparisons it has"]
        );
    }

    #[test]
    fn output_fields_become_engine_fields() {
        let src = "- rule: R\n  desc: d\n  condition: ka.verb = get\n  priority: INFO\n  \
                   source: k8s_audit\n  output: '100% by %ka.user.name. at %jevt.value[/stage] \
                   cmd=%ka.uri.param[command] repo=%ka.req.pod.containers.image.repository'\n";
        // An appended output goes after the one before, a space between.
        let appended = "- rule: R\n  desc: d\n  condition: ka.verb = get\n  priority: INFO\n  \
                        source: k8s_audit\n  output: created\n\
                        - rule: R\n  output: by %ka.user.name\n  append: true\n";
        assert_eq!(
            output_parts(appended),
            [r#""created by ""#, "<raw.user.username>"]
        );
        assert_eq!(
            output_parts(src),
            [
                r#""100% by ""#,
                "<raw.user.username>",
                r#"". at ""#,
                "<raw.stage>",
                r#"" cmd=%ka.uri.param[command] repo=%ka.req.pod.containers.image.repository""#,
            ]
        );
    }

    #[test]
    fn hostile_files_end_in_errors_not_hangs() {
        // Each macro uses the one before twice: 2^40 terms once expanded.
        let mut items = String::from("- macro: m0\n  condition: ka.verb = get\n");
        for i in 1..=40 {
            let _ = write!(
                items,
                "- macro: m{i}\n  condition: m{} or m{}\n",
                i - 1,
                i - 1
            );
        }
        let e = translated(&items, "m40").unwrap_err();
        assert!(e[0].contains("more than 100000 terms"), "{e:?}");
        // The same with lists.
        let mut items = String::from("- list: l0\n  items: [a, b]\n");
        for i in 1..=40 {
            let _ = write!(items, "- list: l{i}\n  items: [l{}, l{}]\n", i - 1, i - 1);
        }
        let e = translated(&items, "ka.verb in (l40)").unwrap_err();
        assert!(e[0].contains("more than 1000000 values"), "{e:?}");
        // A chain of macros deeper than the parser's nesting.
        let mut items = String::new();
        for i in 0..200 {
            let _ = write!(items, "- macro: m{i}\n  condition: m{}\n", i + 1);
        }
        items.push_str("- macro: m200\n  condition: ka.verb = get\n");
        let e = translated(&items, "m0").unwrap_err();
        assert!(e[0].contains("nested more than 64 deep"), "{e:?}");
    }

    #[test]
    fn a_condition_nests_64_deep_and_no_deeper() {
        let nested = |n: usize, open: &str, close: &str| {
            format!("{}ka.verb = get{}", open.repeat(n), close.repeat(n))
        };
        for (open, close) in [("not ", ""), ("(", ")")] {
            assert!(translated("", &nested(64, open, close)).is_ok(), "{open}");
            let e = translated("", &nested(65, open, close)).unwrap_err();
            assert!(e[0].ends_with("condition nested too deeply"), "{e:?}");
        }
        // Depth is nesting, not length: a hundred negations side by side are one level each.
        for term in ["not ka.verb = get", "(ka.verb = get)"] {
            let side_by_side = vec![term; 100].join(" and ");
            assert!(translated("", &side_by_side).is_ok(), "{term}");
        }
    }

    /// The fixture files with each line deleted, duplicated or given an odd value: the loader
    /// reports, it never panics.
    #[test]
    fn mutated_falco_files_never_panic_the_loader() {
        let odd = [
            "",
            "(",
            ")",
            "\"",
            "%",
            "[",
            "-",
            "in (",
            "=",
            "é",
            "x.y",
            "not",
            "append: true",
        ];
        for src in [
            include_str!("../../fixtures/falco/pods.yaml"),
            include_str!("../../fixtures/falco/access.yaml"),
        ] {
            // Two of the odd values on each line, in turn (all of them: a slow test).
            for v in crate::rule::testing::mangled_lines(src, &odd, 5) {
                let _ = crate::rule::RuleSet::from_yaml("m.yaml", &v);
            }
        }
    }

    #[test]
    fn the_field_table_maps_onto_fields_the_engine_reads() {
        let t = table();
        let vendor = sigma::route(&k8s_logsource(Pos::default())).unwrap();
        for (name, def) in &t.fields {
            let field = Field::parse(&def.to);
            assert!(field.is_some(), "{name}: `{}` is not a field", def.to);
            assert_eq!(vendor.never_present(&def.to), None, "{name}");
            assert!(
                !t.not_read.contains_key(name),
                "{name} is both read and not"
            );
        }
    }
}
