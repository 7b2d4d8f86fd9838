//! Sigma correlation rules: rules over the matches of other rules (sigma-specification 2.1).
//!
//! A correlation document — `correlation:` with `type`, `rules`, `group-by`, `timespan`,
//! `condition` and `aliases`, and `generate` beside it — is read here into its text form. Once
//! every rule of the pack is compiled, its references are resolved by id or `name` (chains
//! through other correlations included; a cycle is an error), and each group-by name is
//! resolved for each rule it refers to: through `aliases`, then through that rule's Sigma
//! pipeline when it has a `logsource` (the vendor's field names), or as one of the group-by
//! fields of a correlation it chains. The result is a [`Correlation`], whose state the engine
//! keeps per group of values (`engine::correlation`). Every problem is an error at its place in
//! the file, collected with the rest of the pack's.
//!
//! As Sigma specifies, a rule a correlation refers to only feeds it unless the correlation says
//! `generate: true`: correlations chained in one file decide once, at the outermost.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use super::field::Field;
use super::modifier;
use super::sigma;
use super::spec::{did_you_mean, Doc, Item, Node, Pos, Reader, Scalar, Str, ThresholdSpec, Yaml};
use super::{Rule, RuleSet};

/// A compiled correlation.
#[derive(Clone, Debug)]
pub struct Correlation {
    pub kind: CorrelationKind,
    pub timespan_ms: i64,
    /// What the aggregate must satisfy: the count of events, of distinct values, the sum, or
    /// (temporal kinds) the count of distinct rules matched.
    pub condition: Bounds,
    /// The group-by names as written (aliases or field names), in order.
    pub group_by: Vec<String>,
    /// One per rule of `rules:`, in that order.
    pub inputs: Vec<CorrelationInput>,
    /// `generate: true`: the rules it refers to also decide on their own.
    pub generate: bool,
    /// `value_percentile` with `percentile: P` (as pySigma's backends read it): the P-th
    /// percentile of the span's values is compared. Without it, the specification's reading:
    /// the share, in percent, of the span's matches that carry the completing match's value
    /// ("a process name seen in under 1 % of the processes").
    pub percentile: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorrelationKind {
    EventCount,
    ValueCount,
    ValueSum,
    /// The mean of a numeric field over the span.
    ValueAvg,
    /// A percentile of a numeric field over the span, or how rare a value is in it.
    ValuePercentile,
    /// Every rule (or as many as the condition asks) matched within the span, in any order.
    Temporal,
    /// Every rule matched within the span, in the order of `rules:`.
    TemporalOrdered,
}

impl CorrelationKind {
    /// Its aggregate is not monotone (adding a match can move it either way): a span is
    /// decided once no match that belongs to it can still arrive.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            CorrelationKind::ValueAvg | CorrelationKind::ValuePercentile
        )
    }

    /// It reads a field of each match (`condition: {field: …}`).
    pub fn is_valued(self) -> bool {
        matches!(
            self,
            CorrelationKind::ValueCount
                | CorrelationKind::ValueSum
                | CorrelationKind::ValueAvg
                | CorrelationKind::ValuePercentile
        )
    }

    /// It reads the field as a number: sums and averages, and a percentile (`percentile` set;
    /// without it a `value_percentile` ranks values of any kind by how often they occur).
    pub fn sums_numbers(self, percentile: Option<f64>) -> bool {
        match self {
            CorrelationKind::ValueSum | CorrelationKind::ValueAvg => true,
            CorrelationKind::ValuePercentile => percentile.is_some(),
            _ => false,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CorrelationKind::EventCount => "event_count",
            CorrelationKind::ValueCount => "value_count",
            CorrelationKind::ValueSum => "value_sum",
            CorrelationKind::ValueAvg => "value_avg",
            CorrelationKind::ValuePercentile => "value_percentile",
            CorrelationKind::Temporal => "temporal",
            CorrelationKind::TemporalOrdered => "temporal_ordered",
        }
    }
}

/// How one referenced rule's matches enter a correlation.
#[derive(Clone, Debug)]
pub struct CorrelationInput {
    /// The referenced rule's index in the rule set.
    pub rule: u32,
    /// Each group-by name, as this rule's matches give it.
    pub group: Vec<MatchField>,
    /// `value_count` (distinct tuples of these) and `value_sum` (one field): the field.
    pub value: Vec<MatchField>,
}

/// Where a value of a match is read.
#[derive(Clone, Debug)]
pub enum MatchField {
    /// A field of the event that matched.
    Event(Field),
    /// The value of a group-by field (by position) of the chained correlation that matched.
    Group(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

/// One comparison of a correlation's condition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    pub op: Compare,
    pub value: f64,
}

impl Bound {
    pub fn holds(&self, x: f64) -> bool {
        match self.op {
            Compare::Gt => x > self.value,
            Compare::Gte => x >= self.value,
            Compare::Lt => x < self.value,
            Compare::Lte => x <= self.value,
            Compare::Eq => x == self.value,
            Compare::Neq => x != self.value,
        }
    }
}

/// A correlation's condition: every comparison holds (`gt: 100` with `lte: 200` is a range).
#[derive(Clone, Debug, PartialEq)]
pub struct Bounds {
    pub all: Vec<Bound>,
}

impl Bounds {
    pub fn holds(&self, x: f64) -> bool {
        self.all.iter().all(|b| b.holds(x))
    }

    /// Only `gt`/`gte`: adding to the aggregate can only make it hold.
    pub fn is_upward(&self) -> bool {
        !self.all.is_empty()
            && self
                .all
                .iter()
                .all(|b| matches!(b.op, Compare::Gt | Compare::Gte))
    }

    /// The largest value compared with.
    pub fn largest(&self) -> f64 {
        self.all.iter().map(|b| b.value).fold(0.0, f64::max)
    }

    /// `>= 10`, `> 100 and <= 200`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, b) in self.all.iter().enumerate() {
            if i > 0 {
                out.push_str(" and ");
            }
            let op = match b.op {
                Compare::Gt => ">",
                Compare::Gte => ">=",
                Compare::Lt => "<",
                Compare::Lte => "<=",
                Compare::Eq => "==",
                Compare::Neq => "!=",
            };
            // A float shows as written: `100`, `2.5` (never with an exponent).
            let _ = write!(out, "{op} {}", b.value);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The text form.

/// `correlation:` as written.
#[derive(Debug)]
pub struct CorrelationSpec {
    pub pos: Pos,
    pub kind: Option<Str>,
    pub rules: Vec<Str>,
    pub group_by: Vec<Str>,
    pub timespan: Option<Item>,
    pub condition: Option<ConditionSpec>,
    pub aliases: Vec<AliasSpec>,
}

/// `condition:` of a correlation: comparisons (all must hold) and, for `value_*`, `field`.
#[derive(Debug)]
pub struct ConditionSpec {
    pub pos: Pos,
    /// Where `field` is written, and its names.
    pub field: Option<(Pos, Vec<Str>)>,
    /// `percentile: P` (`value_percentile`).
    pub percentile: Option<Item>,
    pub bounds: Vec<ThresholdSpec>,
}

/// `aliases: {name: {rule: field, …}}`.
#[derive(Debug)]
pub struct AliasSpec {
    pub name: Str,
    /// (rule name or id, field of its events).
    pub fields: Vec<(Str, Str)>,
}

const KEYS: &[&str] = &[
    "type",
    "rules",
    "group-by",
    "timespan",
    "condition",
    "aliases",
];
const COMPARISONS: &[&str] = &["gt", "gte", "lt", "lte", "eq", "neq"];

impl Reader<'_> {
    /// A `correlation:` mapping; what is required of it by type is checked when it is
    /// resolved.
    pub(super) fn correlation(&mut self, y: &Yaml) -> Option<CorrelationSpec> {
        let what = "correlation";
        let keys = self.fields(y, what, KEYS)?;
        let kind = self
            .required(&keys, "type", what)
            .and_then(|t| self.text(t, "type"));
        let mut rules = Vec::new();
        if let Some(r) = self.required(&keys, "rules", what) {
            rules = self.texts(r, "a rule of `rules`");
            if rules.is_empty() && matches!(r.value, Node::Seq(_) | Node::Null) {
                self.err(Pos::of(&r.referenced), "`rules` is empty");
            }
        }
        let group_by = keys
            .get("group-by")
            .map(|g| self.texts(g, "a `group-by` field"))
            .unwrap_or_default();
        let timespan = self
            .required(&keys, "timespan", what)
            .and_then(|t| self.item(t, "timespan"));
        let condition = keys.get("condition").and_then(|c| self.corr_condition(c));
        let aliases = keys
            .get("aliases")
            .map(|a| self.aliases(a))
            .unwrap_or_default();
        Some(CorrelationSpec {
            pos: keys.pos,
            kind,
            rules,
            group_by,
            timespan,
            condition,
            aliases,
        })
    }

    fn corr_condition(&mut self, y: &Yaml) -> Option<ConditionSpec> {
        let mut allowed = COMPARISONS.to_vec();
        allowed.extend(["field", "percentile"]);
        let keys = self.fields(y, "correlation condition", &allowed)?;
        let mut bounds = Vec::new();
        let mut field = None;
        let mut percentile = None;
        for (k, v) in &keys.entries {
            if k.value == "field" {
                field = Some((k.pos, self.texts(v, "field")));
            } else if k.value == "percentile" {
                percentile = self.item(v, "percentile");
            } else if COMPARISONS.contains(&k.value.as_str()) {
                if let Some(value) = self.item(v, &k.value) {
                    bounds.push(ThresholdSpec {
                        op: k.clone(),
                        value,
                    });
                }
            }
        }
        Some(ConditionSpec {
            pos: keys.pos,
            field,
            percentile,
            bounds,
        })
    }

    fn aliases(&mut self, y: &Yaml) -> Vec<AliasSpec> {
        let Some(keys) = self.map(y, "aliases") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (name, v) in keys.entries {
            let what = format!("alias `{}`", name.value);
            let Some(per_rule) = self.map(v, &what) else {
                continue;
            };
            let fields = per_rule
                .entries
                .iter()
                .filter_map(|(rule, f)| Some((rule.clone(), self.text(f, "an alias field")?)))
                .collect();
            out.push(AliasSpec { name, fields });
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Resolving references, once every rule is compiled.

/// One rule document of the pack.
pub(super) struct PackDoc<'d> {
    /// Index of its file.
    pub file: usize,
    pub doc: &'d Doc,
    /// Its index in the rule set; `None` when it did not compile (its errors are reported).
    pub index: Option<u32>,
}

/// An error at a place in a file (by index).
pub(super) type Located = (usize, Pos, String);

/// The correlation of each document (`None` for other documents, or one with errors).
pub(super) fn resolve(
    paths: &[&Path],
    docs: &[PackDoc<'_>],
    errors: &mut Vec<Located>,
) -> Vec<Option<Correlation>> {
    let mut r = Resolver {
        paths,
        docs,
        errors: Vec::new(),
        by_id: HashMap::new(),
        by_name: HashMap::new(),
    };
    r.names();
    let refs: Vec<Vec<Option<usize>>> = (0..docs.len()).map(|d| r.references(d)).collect();
    r.cycles(&refs);
    let out = (0..docs.len())
        .map(|d| {
            let spec = docs[d].doc.correlation.as_ref()?;
            r.correlation(d, spec, &refs[d])
        })
        .collect();
    errors.append(&mut r.errors);
    out
}

struct Resolver<'p, 'd> {
    paths: &'p [&'p Path],
    docs: &'p [PackDoc<'d>],
    errors: Vec<Located>,
    by_id: HashMap<&'d str, usize>,
    by_name: HashMap<&'d str, usize>,
}

impl<'d> Resolver<'_, 'd> {
    fn err(&mut self, d: usize, pos: Pos, message: impl Into<String>) {
        self.errors.push((self.docs[d].file, pos, message.into()));
    }

    /// Ids (their duplicates are reported by the compiler) and names, which must be unique.
    fn names(&mut self) {
        for (d, doc) in self.docs.iter().enumerate() {
            if let Some(id) = &doc.doc.id {
                self.by_id.entry(id.as_str()).or_insert(d);
            }
        }
        for d in 0..self.docs.len() {
            let Some(name) = &self.docs[d].doc.name else {
                continue;
            };
            match self.by_name.get(name.as_str()) {
                Some(&first) => {
                    let at = self.docs[first]
                        .doc
                        .name
                        .as_ref()
                        .map_or(Pos::default(), |n| n.pos);
                    let file = self.paths[self.docs[first].file].display();
                    let message = format!(
                        "rule name `{}` is already used at {file}:{at}: correlations refer to \
                         rules by name, so a name is unique in the pack",
                        name.value
                    );
                    self.err(d, name.pos, message);
                }
                None => {
                    self.by_name.insert(name.as_str(), d);
                }
            }
        }
    }

    /// A rule referred to by id, else by name.
    fn find(&self, text: &str) -> Option<usize> {
        self.by_id
            .get(text)
            .or_else(|| self.by_name.get(text))
            .copied()
    }

    /// The documents a correlation's `rules` name, each reported where it is unknown.
    fn references(&mut self, d: usize) -> Vec<Option<usize>> {
        let Some(spec) = &self.docs[d].doc.correlation else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(spec.rules.len());
        for (i, name) in spec.rules.iter().enumerate() {
            if spec.rules[..i].iter().any(|n| n.value == name.value) {
                self.err(
                    d,
                    name.pos,
                    format!("rule `{}` is listed twice", name.value),
                );
                out.push(None);
                continue;
            }
            let found = self.find(&name.value);
            if found.is_none() {
                let known = self.by_id.keys().chain(self.by_name.keys()).copied();
                let hint = did_you_mean(&name.value, known);
                self.err(
                    d,
                    name.pos,
                    format!(
                        "unknown rule `{}`: no rule of the pack has this id or name{hint}",
                        name.value
                    ),
                );
            }
            out.push(found);
        }
        out
    }

    /// A correlation that refers to itself, directly or through others, is an error at the
    /// reference that closes the loop. Depth-first without recursion: chains can be long.
    fn cycles(&mut self, refs: &[Vec<Option<usize>>]) {
        // 0: not visited, 1: on the path, 2: done.
        let mut state = vec![0u8; self.docs.len()];
        for root in 0..self.docs.len() {
            if state[root] != 0 || refs[root].is_empty() {
                continue;
            }
            // (document, next reference to follow)
            let mut path: Vec<(usize, usize)> = vec![(root, 0)];
            state[root] = 1;
            while let Some(&mut (d, ref mut next)) = path.last_mut() {
                let Some(&target) = refs[d].get(*next) else {
                    state[d] = 2;
                    path.pop();
                    continue;
                };
                let at = *next;
                *next += 1;
                let Some(t) = target else { continue };
                match state[t] {
                    0 if !refs[t].is_empty() => {
                        state[t] = 1;
                        path.push((t, 0));
                    }
                    1 => {
                        let from = path.iter().position(|&(p, _)| p == t).unwrap_or(0);
                        let names: Vec<String> = path[from..]
                            .iter()
                            .map(|&(p, _)| p)
                            .chain([t])
                            .map(|p| self.label(p))
                            .collect();
                        let pos = self.docs[d]
                            .doc
                            .correlation
                            .as_ref()
                            .and_then(|c| c.rules.get(at))
                            .map_or(self.docs[d].doc.pos, |s| s.pos);
                        self.err(d, pos, format!("correlation cycle: {}", names.join(" → ")));
                    }
                    _ => {}
                }
            }
        }
    }

    /// How a rule is named in messages: its name, else its id.
    fn label(&self, d: usize) -> String {
        let doc = self.docs[d].doc;
        doc.name
            .as_ref()
            .or(doc.id.as_ref())
            .map_or_else(|| "?".to_owned(), |s| s.value.clone())
    }

    fn correlation(
        &mut self,
        d: usize,
        spec: &CorrelationSpec,
        refs: &[Option<usize>],
    ) -> Option<Correlation> {
        let before = self.errors.len();
        let kind = spec.kind.as_ref().and_then(|k| self.kind(d, k));
        let timespan_ms = spec.timespan.as_ref().and_then(|t| self.timespan(d, t));
        let condition = kind.and_then(|kind| self.condition(d, spec, kind));
        let generate = self.generate(d);
        self.check_aliases(d, spec, refs);
        let mut inputs = Vec::with_capacity(refs.len());
        for (i, r) in refs.iter().enumerate() {
            let Some(r) = *r else { continue };
            let group = spec
                .group_by
                .iter()
                .map(|g| self.group_field(d, spec, g, r, &spec.rules[i]))
                .collect::<Option<Vec<_>>>();
            let value = match (&spec.condition, kind) {
                (
                    Some(ConditionSpec {
                        field: Some((_, names)),
                        ..
                    }),
                    Some(kind),
                ) if kind.is_valued() => names
                    .iter()
                    .map(|n| self.group_field(d, spec, n, r, &spec.rules[i]))
                    .collect::<Option<Vec<_>>>(),
                _ => Some(Vec::new()),
            };
            if let (Some(group), Some(value), Some(rule)) = (group, value, self.docs[r].index) {
                inputs.push(CorrelationInput { rule, group, value });
            }
        }
        let percentile = match (kind, &spec.condition) {
            (Some(CorrelationKind::ValuePercentile), Some(c)) => self.percentile(d, c),
            (
                Some(kind),
                Some(ConditionSpec {
                    percentile: Some(p),
                    ..
                }),
            ) => {
                let message = format!(
                    "`percentile` is for value_percentile, not `{}`",
                    kind.name()
                );
                self.err(d, p.pos, message);
                None
            }
            _ => Some(None),
        };
        if let Some(kind) = kind.filter(|k| k.sums_numbers(percentile.flatten())) {
            self.numeric_values(d, spec, kind, &inputs);
        }
        if self.errors.len() > before || inputs.len() != refs.len() {
            return None;
        }
        Some(Correlation {
            kind: kind?,
            timespan_ms: timespan_ms?,
            condition: condition?,
            group_by: spec.group_by.iter().map(|g| g.value.clone()).collect(),
            inputs,
            generate: generate?,
            percentile: percentile?,
        })
    }

    /// `percentile:` of a `value_percentile` condition, a number from 0 to 100; `Some(None)`
    /// when it is not written.
    fn percentile(&mut self, d: usize, c: &ConditionSpec) -> Option<Option<f64>> {
        let Some(p) = &c.percentile else {
            return Some(None);
        };
        match modifier::number(&p.value) {
            Some(v) if (0.0..=100.0).contains(&v) => Some(Some(v)),
            _ => {
                let message = format!("`percentile: {}` must be a number from 0 to 100", p.value);
                self.err(d, p.pos, message);
                None
            }
        }
    }

    fn kind(&mut self, d: usize, k: &Str) -> Option<CorrelationKind> {
        let kind = match k.as_str() {
            "event_count" => CorrelationKind::EventCount,
            "value_count" => CorrelationKind::ValueCount,
            "value_sum" => CorrelationKind::ValueSum,
            "temporal" => CorrelationKind::Temporal,
            "temporal_ordered" => CorrelationKind::TemporalOrdered,
            "value_avg" => CorrelationKind::ValueAvg,
            "value_percentile" => CorrelationKind::ValuePercentile,
            other => {
                let known = [
                    "event_count",
                    "value_count",
                    "value_sum",
                    "temporal",
                    "temporal_ordered",
                    "value_avg",
                    "value_percentile",
                ];
                let hint = did_you_mean(other, known);
                self.err(
                    d,
                    k.pos,
                    format!(
                        "unknown correlation type `{other}` (expected one of: {}){hint}",
                        known.join(", ")
                    ),
                );
                return None;
            }
        };
        Some(kind)
    }

    fn timespan(&mut self, d: usize, t: &Item) -> Option<i64> {
        let text = t.value.to_string();
        let problem = match crate::units::parse_duration_ms(&text) {
            Some(ms) if ms > 0 => return Some(ms),
            Some(_) => "must be more than zero",
            None => "expected a number with a unit, e.g. 30s, 5m, 1h, 2d",
        };
        self.err(d, t.pos, format!("invalid timespan `{text}`: {problem}"));
        None
    }

    fn generate(&mut self, d: usize) -> Option<bool> {
        match &self.docs[d].doc.generate {
            None => Some(false),
            Some(Item {
                value: Scalar::Bool(b),
                ..
            }) => Some(*b),
            Some(other) => {
                let message = format!("`generate` must be true or false, not `{}`", other.value);
                self.err(d, other.pos, message);
                None
            }
        }
    }

    /// The condition, checked for what the type needs: comparisons for the counted types,
    /// `field` for `value_*` only; temporal kinds count the rules matched (all, by default).
    fn condition(
        &mut self,
        d: usize,
        spec: &CorrelationSpec,
        kind: CorrelationKind,
    ) -> Option<Bounds> {
        let rules = spec.rules.len();
        let temporal = matches!(
            kind,
            CorrelationKind::Temporal | CorrelationKind::TemporalOrdered
        );
        let Some(c) = &spec.condition else {
            if temporal {
                return Some(Bounds {
                    all: vec![Bound {
                        op: Compare::Gte,
                        value: rules as f64,
                    }],
                });
            }
            let message = format!(
                "correlation: missing `condition` (`{}` needs one, e.g. `condition: {{gte: 10}}`)",
                kind.name()
            );
            self.err(d, spec.pos, message);
            return None;
        };
        let valued = kind.is_valued();
        match (&c.field, valued) {
            (None, true) => {
                let message = format!(
                    "correlation condition: missing `field` (`{}` needs the field whose values \
                     it {})",
                    kind.name(),
                    match kind {
                        CorrelationKind::ValueSum => "sums",
                        CorrelationKind::ValueAvg => "averages",
                        CorrelationKind::ValuePercentile => "ranks",
                        _ => "counts",
                    }
                );
                self.err(d, c.pos, message);
            }
            (Some((pos, _)), false) => {
                let message = format!(
                    "`field` is for the value_* correlations, not `{}`",
                    kind.name()
                );
                self.err(d, *pos, message);
            }
            (Some((pos, names)), true)
                if matches!(kind, CorrelationKind::ValueSum | CorrelationKind::ValueAvg)
                    && names.len() != 1 =>
            {
                let message = format!("`{}` reads one field", kind.name());
                self.err(d, *pos, message);
            }
            _ => {}
        }
        if c.bounds.is_empty() {
            let message = "correlation condition: needs a comparison, one of gt, gte, lt, lte, \
                           eq, neq (two make a range)";
            self.err(d, c.pos, message);
            return None;
        }
        let mut all = Vec::with_capacity(c.bounds.len());
        for b in &c.bounds {
            all.push(self.bound(d, b, kind)?);
        }
        let bounds = Bounds { all };
        if temporal {
            self.temporal_condition(d, c.pos, &bounds, kind, rules)?;
        }
        Some(bounds)
    }

    fn bound(&mut self, d: usize, b: &ThresholdSpec, kind: CorrelationKind) -> Option<Bound> {
        let op = match b.op.as_str() {
            "gt" => Compare::Gt,
            "gte" => Compare::Gte,
            "lt" => Compare::Lt,
            "lte" => Compare::Lte,
            "eq" => Compare::Eq,
            _ => Compare::Neq,
        };
        // Amounts (sums, averages, percentiles) may be fractional; counts and shares are whole.
        let sum = kind.sums_numbers(None) || kind == CorrelationKind::ValuePercentile;
        match modifier::number(&b.value.value) {
            Some(v) if v.is_finite() && sum && v.abs() <= 9e12 => Some(Bound { op, value: v }),
            Some(v) if !sum && v.fract() == 0.0 && (0.0..=10_000_000.0).contains(&v) => {
                Some(Bound { op, value: v })
            }
            _ => {
                let what = if sum {
                    "a number up to 9 × 10¹² in size"
                } else {
                    "a whole number from 0 to 10000000"
                };
                let message = format!(
                    "`{}: {}` cannot be right for `{}`: it needs {what}",
                    b.op.value,
                    b.value.value,
                    kind.name()
                );
                self.err(d, b.value.pos, message);
                None
            }
        }
    }

    /// A temporal condition counts the distinct rules matched: it must hold for some count
    /// from 1 to the number of rules; an ordered one must ask for all of them.
    fn temporal_condition(
        &mut self,
        d: usize,
        pos: Pos,
        bounds: &Bounds,
        kind: CorrelationKind,
        rules: usize,
    ) -> Option<()> {
        let holding: Vec<usize> = (1..=rules).filter(|&n| bounds.holds(n as f64)).collect();
        if holding.is_empty() {
            let message = format!(
                "the condition `{}` can never hold: it counts the rules matched, 1 to {rules}",
                bounds.text()
            );
            self.err(d, pos, message);
            return None;
        }
        if kind == CorrelationKind::TemporalOrdered && holding != [rules] {
            let message = format!(
                "a `temporal_ordered` condition other than all {rules} rules is not supported \
                 yet (leave `condition` out)"
            );
            self.err(d, pos, message);
            return None;
        }
        Some(())
    }

    /// Every alias names rules of this correlation.
    fn check_aliases(&mut self, d: usize, spec: &CorrelationSpec, refs: &[Option<usize>]) {
        for alias in &spec.aliases {
            for (rule, _) in &alias.fields {
                let target = self.find(&rule.value);
                if target.is_none() || !refs.contains(&target) {
                    let message = format!(
                        "alias `{}`: `{}` is not one of this correlation's rules ({})",
                        alias.name.value,
                        rule.value,
                        spec.rules
                            .iter()
                            .map(|r| r.value.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    self.err(d, rule.pos, message);
                }
            }
        }
    }

    /// A group-by (or `field`) name for the matches of document `r` (written `rule_ref` in
    /// `rules`): through an alias, then as that rule's field.
    fn group_field(
        &mut self,
        d: usize,
        spec: &CorrelationSpec,
        name: &Str,
        r: usize,
        rule_ref: &Str,
    ) -> Option<MatchField> {
        let alias = spec.aliases.iter().find(|a| a.name.value == name.value);
        let (field, pos) = match alias {
            None => (name, name.pos),
            Some(alias) => {
                let entry = alias
                    .fields
                    .iter()
                    .find(|(rule, _)| self.find(&rule.value) == Some(r));
                match entry {
                    Some((_, field)) => (field, field.pos),
                    None => {
                        let message = format!(
                            "alias `{}` gives no field for `{}`, one of this correlation's rules",
                            alias.name.value, rule_ref.value
                        );
                        self.err(d, alias.name.pos, message);
                        return None;
                    }
                }
            }
        };
        self.match_field(d, field, pos, r, rule_ref)
    }

    /// A field of rule `r`'s matches: a group-by field of a chained correlation, a vendor
    /// field through the rule's Sigma pipeline, or a field of the event model.
    fn match_field(
        &mut self,
        d: usize,
        field: &Str,
        pos: Pos,
        r: usize,
        rule_ref: &Str,
    ) -> Option<MatchField> {
        let target = self.docs[r].doc;
        if let Some(inner) = &target.correlation {
            let k = inner.group_by.iter().position(|g| g.value == field.value);
            if k.is_none() {
                let by: Vec<&str> = inner.group_by.iter().map(|g| g.as_str()).collect();
                let message = format!(
                    "`{}` is not a group-by field of correlation `{}`: a correlation's matches \
                     carry only its group-by fields ({})",
                    field.value,
                    rule_ref.value,
                    if by.is_empty() {
                        "it has none".to_owned()
                    } else {
                        by.join(", ")
                    }
                );
                self.err(d, pos, message);
            }
            return k.map(|k| MatchField::Group(k as u32));
        }
        let name = match &target.logsource {
            None => field.value.clone(),
            // A logsource no adapter reads is reported at the rule.
            Some(l) => {
                let vendor = sigma::route(l).ok()?;
                let name = vendor.field_name(&field.value);
                if let Some(why) = vendor.never_present(&name) {
                    let why = why.replace(
                        "so this rule could never match",
                        "so the correlation could never group its matches",
                    );
                    let message = format!("field `{}` of `{}`: {why}", field.value, rule_ref.value);
                    self.err(d, pos, message);
                    return None;
                }
                name
            }
        };
        let mut errors = Vec::new();
        let resolved = modifier::field(&name, pos, &mut errors);
        for e in errors {
            let message = format!("field of `{}`: {}", rule_ref.value, e.message);
            self.err(d, e.pos, message);
        }
        resolved.map(MatchField::Event)
    }

    /// `value_sum`, `value_avg` and a percentile read numbers: a field of the event model that
    /// is not one is an error.
    fn numeric_values(
        &mut self,
        d: usize,
        spec: &CorrelationSpec,
        kind: CorrelationKind,
        inputs: &[CorrelationInput],
    ) {
        let numeric = |f: &MatchField| match f {
            MatchField::Event(field) => matches!(
                field,
                Field::Bytes | Field::Records | Field::NetworkAsn | Field::Time | Field::Raw(_)
            ),
            MatchField::Group(_) => true,
        };
        if inputs.iter().flat_map(|i| &i.value).all(numeric) {
            return;
        }
        let pos = spec
            .condition
            .as_ref()
            .and_then(|c| c.field.as_ref())
            .map_or(spec.pos, |(p, _)| *p);
        let message = format!(
            "`{}` needs a numeric field (bytes, records, a vendor field)",
            kind.name()
        );
        self.err(d, pos, message);
    }
}

// ---------------------------------------------------------------------------------------------
// Linking compiled rules.

/// Sets each rule's `feeds` (the correlations its matches go to) and `generate` (whether it
/// decides on its own: not referred to, or referred to by a correlation that generates it).
pub(super) fn link(rules: &mut [Rule]) {
    for rule in rules.iter_mut() {
        rule.feeds.clear();
        rule.generate = true;
    }
    let mut generated = vec![false; rules.len()];
    for c in 0..rules.len() {
        let Some(correlation) = rules[c].correlation.take() else {
            continue;
        };
        for (j, input) in correlation.inputs.iter().enumerate() {
            if let Some(rule) = rules.get_mut(input.rule as usize) {
                rule.feeds.push((c as u32, j as u32));
            }
            if let Some(g) = generated.get_mut(input.rule as usize) {
                *g |= correlation.generate;
            }
        }
        rules[c].correlation = Some(correlation);
    }
    for (rule, generated) in rules.iter_mut().zip(generated) {
        rule.generate = rule.feeds.is_empty() || generated;
    }
}

/// The rule at `index` with what it needs to run; see [`RuleSet::subset`].
pub(super) fn subset(set: &RuleSet, index: usize) -> RuleSet {
    let Some(rule) = set.rules.get(index) else {
        return RuleSet::default();
    };
    if rule.correlation.is_none() {
        return RuleSet::only(rule);
    }
    let mut keep = BTreeSet::new();
    let mut todo = vec![index];
    while let Some(i) = todo.pop() {
        if !keep.insert(i) {
            continue;
        }
        if let Some(c) = set.rules.get(i).and_then(|r| r.correlation.as_ref()) {
            todo.extend(c.inputs.iter().map(|input| input.rule as usize));
        }
    }
    let renumber: HashMap<usize, u32> = keep
        .iter()
        .enumerate()
        .map(|(new, &old)| (old, new as u32))
        .collect();
    let mut rules: Vec<Rule> = keep
        .iter()
        .filter_map(|&i| set.rules.get(i).cloned())
        .collect();
    for rule in &mut rules {
        if let Some(c) = rule.correlation.as_mut() {
            for input in &mut c.inputs {
                input.rule = renumber
                    .get(&(input.rule as usize))
                    .copied()
                    .unwrap_or(input.rule);
            }
        }
    }
    link(&mut rules);
    RuleSet { rules }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(all: &[(Compare, f64)]) -> Bounds {
        Bounds {
            all: all.iter().map(|&(op, value)| Bound { op, value }).collect(),
        }
    }

    const CHAIN: &str = "\
title: Failed then success
id: outer
correlation:
  type: temporal_ordered
  rules: [many_failures, success]
  group-by: [user]
  timespan: 10m
  aliases:
    user: {many_failures: actor.alternateId, success: actor.alternateId}
---
title: Many failures
id: inner
name: many_failures
correlation:
  type: event_count
  rules: [failure]
  group-by: [actor.alternateId]
  timespan: 10m
  condition: {gt: 2, lte: 100}
---
id: failure-id
name: failure
logsource: {product: okta, service: okta}
detection:
  sel: {outcome.result: FAILURE}
  condition: sel
---
id: success
logsource: {product: okta, service: okta}
detection:
  sel: {outcome.result: SUCCESS}
  condition: sel
";

    fn fields(input: &CorrelationInput) -> Vec<String> {
        input
            .group
            .iter()
            .map(|f| match f {
                MatchField::Event(field) => field.to_string(),
                MatchField::Group(k) => format!("group {k}"),
            })
            .collect()
    }

    #[test]
    fn references_by_id_or_name_resolve_chains_and_link_feeds() {
        let set = RuleSet::from_yaml("chain.yml", CHAIN).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["outer", "inner", "failure-id", "success"]);
        let outer = set.rules[0].correlation.as_ref().unwrap();
        assert_eq!(outer.kind, CorrelationKind::TemporalOrdered);
        // `many_failures` by name, `success` by id; the alias reads the chained correlation's
        // group value, and the vendor field of the plain rule.
        let inputs: Vec<u32> = outer.inputs.iter().map(|i| i.rule).collect();
        assert_eq!(inputs, [1, 3]);
        assert_eq!(fields(&outer.inputs[0]), ["group 0"]);
        assert_eq!(fields(&outer.inputs[1]), ["raw.actor.alternateId"]);
        // All of the rules, by default.
        assert_eq!(outer.condition.text(), ">= 2");
        let inner = set.rules[1].correlation.as_ref().unwrap();
        assert_eq!(inner.condition.text(), "> 2 and <= 100");
        assert_eq!(fields(&inner.inputs[0]), ["raw.actor.alternateId"]);
        // Only the outermost decides; each rule feeds the correlation that names it.
        let feeds: Vec<(&[(u32, u32)], bool)> = set
            .rules
            .iter()
            .map(|r| (r.feeds.as_slice(), r.generate))
            .collect();
        assert_eq!(
            feeds,
            [
                (&[][..], true),
                (&[(0, 0)][..], false),
                (&[(1, 0)][..], false),
                (&[(0, 1)][..], false),
            ]
        );
        assert!(set.has_correlations());
    }

    #[test]
    fn a_subset_keeps_what_a_correlation_needs() {
        let set = RuleSet::from_yaml("chain.yml", CHAIN).unwrap_or_else(|e| panic!("{e}"));
        let inner = set.subset(1);
        let ids: Vec<&str> = inner.rules.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["inner", "failure-id"]);
        let c = inner.rules[0].correlation.as_ref().unwrap();
        assert_eq!(c.inputs[0].rule, 1, "renumbered");
        // Nothing chains the inner correlation here: it decides; its rule only feeds it.
        assert!(inner.rules[0].generate && inner.rules[0].feeds.is_empty());
        assert_eq!(inner.rules[1].feeds, [(0, 0)]);
        assert!(!inner.rules[1].generate);
        // A plain rule alone decides on its own.
        let alone = set.subset(3);
        assert_eq!(alone.rules.len(), 1);
        assert!(alone.rules[0].generate && alone.rules[0].feeds.is_empty());
        // Without a correlation, `replay --threads` may shard by session.
        assert!(!alone.has_correlations());
        assert_eq!(set.subset(0).rules.len(), 4);
        assert!(set.subset(99).rules.is_empty());
    }

    /// The condition of a correlation of `kind` over two CloudTrail rules, as it reads after
    /// loading, or the load's errors.
    fn condition_read(kind: &str, condition: &str) -> Result<String, String> {
        let src = format!(
            "id: c\ncorrelation:\n  type: {kind}\n  rules: [read, write]\n  \
             group-by: [userIdentity.arn]\n  timespan: 10m\n  condition: {condition}\n---\n\
             id: read\nlogsource: {{product: aws, service: cloudtrail}}\n\
             detection: {{sel: {{eventName: GetObject}}, condition: sel}}\n---\n\
             id: write\nlogsource: {{product: aws, service: cloudtrail}}\n\
             detection: {{sel: {{eventName: PutObject}}, condition: sel}}\n"
        );
        RuleSet::from_yaml("c.yml", &src)
            .map(|set| set.rules[0].correlation.as_ref().unwrap().condition.text())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_comparison_word_of_a_condition_is_its_comparison() {
        for (word, text) in [
            ("gt", "> 3"),
            ("gte", ">= 3"),
            ("lt", "< 3"),
            ("lte", "<= 3"),
            ("eq", "== 3"),
            ("neq", "!= 3"),
        ] {
            let read = condition_read("event_count", &format!("{{{word}: 3}}"));
            assert_eq!(read.as_deref(), Ok(text), "{word}");
        }
    }

    /// Amounts (sums, averages, percentiles of a field) may be fractional; counts may not.
    #[test]
    fn amounts_take_fractional_thresholds_and_counts_whole_ones() {
        let field = "field: additionalEventData.bytesTransferredOut";
        for (kind, extra) in [
            ("value_sum", ""),
            ("value_avg", ""),
            ("value_percentile", ", percentile: 95"),
        ] {
            let read = condition_read(kind, &format!("{{{field}{extra}, gt: 2.5}}"));
            assert_eq!(read.as_deref(), Ok("> 2.5"), "{kind}");
        }
        for (kind, extra) in [("event_count", ""), ("value_count", ", field: eventSource")] {
            let read = condition_read(kind, &format!("{{gt: 2.5{extra}}}")).unwrap_err();
            assert!(read.contains("`gt: 2.5` cannot be right"), "{kind}: {read}");
        }
    }

    /// A `temporal` correlation may ask for some of its rules; a `temporal_ordered` one only
    /// for all of them.
    #[test]
    fn only_an_ordered_temporal_condition_must_ask_for_every_rule() {
        assert_eq!(
            condition_read("temporal", "{gte: 1}").as_deref(),
            Ok(">= 1")
        );
        let ordered = condition_read("temporal_ordered", "{gte: 1}").unwrap_err();
        assert!(ordered.contains("other than all 2 rules"), "{ordered}");
        assert_eq!(
            condition_read("temporal_ordered", "{eq: 2}").as_deref(),
            Ok("== 2")
        );
    }

    #[test]
    fn a_range_is_every_comparison() {
        let range = bounds(&[(Compare::Gt, 100.0), (Compare::Lte, 200.0)]);
        assert!(!range.holds(100.0) && range.holds(101.0) && range.holds(200.0));
        assert!(!range.holds(201.0));
        assert!(!range.is_upward());
        assert_eq!(range.text(), "> 100 and <= 200");
        let at_least = bounds(&[(Compare::Gte, 10.0)]);
        assert!(at_least.is_upward() && at_least.holds(10.0) && !at_least.holds(9.0));
        assert!(bounds(&[(Compare::Neq, 3.0)]).holds(2.5));
        assert_eq!(range.largest(), 200.0);
    }

    #[test]
    fn each_comparison_holds_below_at_or_above_its_value_and_reads_as_written() {
        use Compare::*;
        // Holds (below, at, above) the value 10; its text.
        for (op, expected, text) in [
            (Gt, [false, false, true], "> 10"),
            (Gte, [false, true, true], ">= 10"),
            (Lt, [true, false, false], "< 10"),
            (Lte, [true, true, false], "<= 10"),
            (Eq, [false, true, false], "== 10"),
            (Neq, [true, false, true], "!= 10"),
        ] {
            let bound = Bound { op, value: 10.0 };
            assert_eq!(
                [9.0, 10.0, 11.0].map(|x| bound.holds(x)),
                expected,
                "{op:?}"
            );
            assert_eq!(bounds(&[(op, 10.0)]).text(), text);
        }
        assert_eq!(bounds(&[(Lt, 2.5)]).text(), "< 2.5");
        assert_eq!(bounds(&[(Gte, 9e12)]).text(), ">= 9000000000000");
    }
}
