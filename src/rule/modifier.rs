//! One selection entry, `field|modifier|modifier: values`, compiled into a predicate.
//!
//! Owns the modifier table and the type rules: which modifiers apply to which fields, what
//! values they take. Regexes, networks, numbers and text patterns are built here, once.
//!
//! | modifier | fields | values |
//! | --- | --- | --- |
//! | (none), `in` | any | equality, `*`/`?` wildcards; numbers for numeric fields, `true`/`false` for flags, addresses for `network.ip` |
//! | `contains`, `startswith`, `endswith` | text (not numbers or flags) | text, wildcards allowed |
//! | `re` | all but flags | regular expressions (linear time) |
//! | `cidr` | `network.ip`, `raw.*` | `10.0.0.0/8`, `2001:db8::/32`, or single addresses |
//! | `gt`, `gte`, `lt`, `lte` | numbers (`bytes`, `records`, `network.asn`, `time`, `raw.*`) | numbers or sizes (`10MiB`) |
//! | `exists` | any | `true` or `false` |
//! | `fieldref` | any | field names: the event's value of that field (Sigma 2.0) |
//! | `all` | with a list: every value must match, not any | |
//! | `every` | a list-valued field (vendor array, `scopes`): every item must match, not any; one item at least | |
//! | `cased` | text comparisons are case-sensitive | |
//! | `neq` | the field is present and none of the values (with `contains` …: contains none) | not with `all`, `exists`, `gt` … |
//! | `windash`, `base64`, `base64offset`, `utf16le`/`wide`, `utf16be`, `utf16` | each value rewritten at load (`transform`), then compared as written | with equality, `contains`, `startswith`, `endswith`; on text and `raw.*` fields |
//! | `expand` | `%name%` in the values replaced by the items of a placeholder (`compile`) | |
//! | `i`, `m`, `s` | flags of `re`: case-insensitive (the default here), multi-line, `.` matches a line break | |
//!
//! An entry without a field name is a keyword (Sigma's field-less values, a selection that is
//! a list of values): it is searched for in every string of the vendor record, `contains` by
//! default.
//!
//! `fieldref` compares two fields of the same event: `resource.name|fieldref: principal.name`
//! holds when both are present and equal — numbers as numbers, addresses as addresses, the rest
//! as text (`action` as `service:operation`, session keys as rendered), ASCII-case-insensitive
//! unless `cased`. A list-valued side (scopes, vendor arrays) matches when any item does. A
//! list of field names means any of them, with `all` every one. Field names are checked at load
//! time. With `startswith`, `endswith` or `contains` the referenced value is a prefix, suffix or
//! substring of the entry's value (as text, no wildcards); any other operator is an error.

use std::net::IpAddr;
use std::sync::Arc;

use regex::RegexBuilder;

use super::detection::{Glob, Net, Pat, Pred, RefOp, Test};
use super::field::Field;
use super::lookup::Lookup;
use super::spec::{did_you_mean, Item, Pos, Scalar, SpecError, Str};
use super::transform::{self, Transform};
use super::CmpOp;
use crate::event::{Operation, SessionKind, Source, Status};
use crate::units::parse_size;

const MODIFIERS: &[&str] = &[
    "in",
    "contains",
    "startswith",
    "endswith",
    "re",
    "cidr",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
    "fieldref",
    "all",
    "every",
    "cased",
    "neq",
    "windash",
    "base64",
    "base64offset",
    "utf16le",
    "utf16be",
    "utf16",
    "wide",
    "expand",
    "i",
    "m",
    "s",
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Contains,
    StartsWith,
    EndsWith,
    Re,
    Cidr,
    Cmp(CmpOp),
    Exists,
}

/// The modifiers of an entry's key, as written after its field `name`.
#[derive(Default)]
struct Modifiers<'k> {
    /// The comparison and the modifier that named it.
    op: Option<(Op, &'k str)>,
    all: bool,
    /// Every item of a list-valued field must match (Falco's `in` on a list).
    every: bool,
    cased: bool,
    fieldref: bool,
    /// Sigma's `neq`: the value is none of the values.
    neq: bool,
    /// Value transforms (`windash`, `base64offset` …), in the order written, with where.
    transforms: Vec<(Transform, Pos, &'k str)>,
    /// `re`'s flags `i`, `m`, `s`, with where each is written.
    re_flags: Vec<(char, Pos)>,
}

/// Reads the modifiers after `name` in `key`, reporting unknown and conflicting ones.
fn modifiers<'k>(
    key: &Str,
    name: &str,
    parts: std::str::Split<'k, char>,
    errors: &mut Vec<SpecError>,
) -> Modifiers<'k> {
    let mut m = Modifiers::default();
    let mut offset = name.len() + 1;
    for modifier in parts {
        let pos = key.at(offset);
        offset += modifier.len() + 1;
        let this = match modifier {
            "all" => {
                m.all = true;
                continue;
            }
            "cased" => {
                m.cased = true;
                continue;
            }
            "every" => {
                m.every = true;
                continue;
            }
            "neq" => {
                m.neq = true;
                continue;
            }
            // The values were expanded before the entry was compiled (`compile`).
            "expand" => continue,
            "i" | "m" | "s" => {
                m.re_flags
                    .push((modifier.chars().next().unwrap_or('i'), pos));
                continue;
            }
            "fieldref" => {
                if let Some((prev, prev_name)) = m.op {
                    if !fieldref_allows(prev) {
                        errors.push(fieldref_conflict(pos, prev_name));
                    }
                }
                m.fieldref = true;
                continue;
            }
            "in" => Op::Eq,
            "contains" => Op::Contains,
            "startswith" => Op::StartsWith,
            "endswith" => Op::EndsWith,
            "re" => Op::Re,
            "cidr" => Op::Cidr,
            "gt" => Op::Cmp(CmpOp::Gt),
            "gte" => Op::Cmp(CmpOp::Gte),
            "lt" => Op::Cmp(CmpOp::Lt),
            "lte" => Op::Cmp(CmpOp::Lte),
            "exists" => Op::Exists,
            other => {
                if let Some(t) = Transform::parse(other) {
                    m.transforms.push((t, pos, modifier));
                    continue;
                }
                let hint = did_you_mean(other, MODIFIERS.iter().copied());
                let hint = if hint.is_empty() {
                    format!(" (expected one of: {})", MODIFIERS.join(", "))
                } else {
                    hint
                };
                errors.push(SpecError::new(
                    pos,
                    format!("unknown modifier `{other}`{hint}"),
                ));
                continue;
            }
        };
        match m.op {
            Some((prev, prev_name)) if prev != this => errors.push(SpecError::new(
                pos,
                format!("modifier `{modifier}` cannot be combined with `{prev_name}`"),
            )),
            _ if m.fieldref && !fieldref_allows(this) => {
                errors.push(fieldref_conflict(pos, modifier))
            }
            _ => m.op = Some((this, modifier)),
        }
    }
    m
}

/// What kind of value a field yields, for the type rules. Everything else is text: `action`
/// as `service:operation`, a session key as rendered, each item of `scopes`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Text,
    Int,
    Bool,
    Ip,
    /// A vendor field: anything.
    Raw,
}

fn kind(field: &Field) -> Kind {
    match field {
        Field::SessionDerived | Field::SessionMfa => Kind::Bool,
        Field::Time | Field::Bytes | Field::Records | Field::NetworkAsn => Kind::Int,
        Field::NetworkIp => Kind::Ip,
        Field::Raw(_) | Field::Keywords => Kind::Raw,
        _ => Kind::Text,
    }
}

/// Fields whose values come from a closed set: equality values are checked against it.
fn closed_values(field: &Field) -> Option<Vec<&'static str>> {
    Some(match field {
        Field::Source => Source::ALL.iter().map(|s| s.as_str()).collect(),
        Field::SessionKind => [
            SessionKind::SignIn,
            SessionKind::TemporaryCredential,
            SessionKind::LongTermCredential,
            SessionKind::Token,
            SessionKind::Certificate,
            SessionKind::Principal,
        ]
        .iter()
        .map(|k| k.as_str())
        .collect(),
        Field::Outcome => [Status::Success, Status::Failure, Status::Unknown]
            .iter()
            .map(|s| s.as_str())
            .collect(),
        Field::Operation => [
            Operation::Read,
            Operation::Write,
            Operation::Admin,
            Operation::Auth,
            Operation::Unknown,
        ]
        .iter()
        .map(|o| o.as_str())
        .collect(),
        _ => return None,
    })
}

/// A field name as an entry's key writes it: none at all is a keyword (Sigma's field-less
/// values, searched for in the whole record).
fn parse_field(name: &str) -> Option<Field> {
    if name.is_empty() {
        return Some(Field::Keywords);
    }
    Field::parse(name)
}

/// Resolves a field name, with a suggestion when it is unknown.
pub(crate) fn field(name: &str, pos: Pos, errors: &mut Vec<SpecError>) -> Option<Field> {
    let field = Field::parse(name);
    if field.is_none() {
        let hint = did_you_mean(name, Field::NAMES.iter().map(|(n, _)| *n));
        let hint = if hint.is_empty() {
            " (vendor fields are under `raw.`, e.g. `raw.userIdentity.type`)".to_owned()
        } else {
            hint
        };
        errors.push(SpecError::new(pos, format!("unknown field `{name}`{hint}")));
    }
    field
}

/// What an entry's test depends on besides its values: its modifiers, and the kind of its
/// field (the field itself when its values are checked against a closed set). Entries with the
/// same key over the same values compile to the same test, whatever their field; `None` for
/// an unknown field.
pub(crate) fn share_key(key: &str) -> Option<(Field, String)> {
    let (name, modifiers) = key.split_once('|').unwrap_or((key, ""));
    let field = parse_field(name)?;
    // Keywords compare with `contains` when no modifier says otherwise: not the test of a
    // field with the same modifiers.
    let kind = match closed_values(&field) {
        Some(_) => field.to_string(),
        None if field == Field::Keywords => field.to_string(),
        None => format!("{:?}", kind(&field)),
    };
    Some((field, format!("{kind}|{modifiers}")))
}

/// Compiles one entry. `values` are expanded (list references and placeholders resolved);
/// `list` is true when the values were written as a list or came from one.
pub(crate) fn compile_entry(
    key: &Str,
    values: &[&Item],
    list: bool,
    errors: &mut Vec<SpecError>,
) -> Option<Pred> {
    let before = errors.len();
    let mut parts = key.value.split('|');
    let name = parts.next().unwrap_or_default();
    let field = match parse_field(name) {
        Some(keywords @ Field::Keywords) => Some(keywords),
        _ => field(name, key.pos, errors),
    };
    let m = modifiers(key, name, parts, errors);
    let field = field?;
    if errors.len() > before {
        return None;
    }
    // A keyword (a value without a field) is found inside the record's text.
    let op = m.op.unwrap_or(if field == Field::Keywords {
        (Op::Contains, "contains")
    } else {
        (Op::Eq, "")
    });
    if !combinations(key, &field, op, &m, errors) {
        return None;
    }
    if m.fieldref {
        return fieldref_entry(key, name, &field, op, values, &m, errors);
    }
    let fname = field.to_string();
    // `field: null` (alone) is Sigma's way to say the field is missing.
    let nulls: Vec<&Item> = values
        .iter()
        .copied()
        .filter(|v| v.value == Scalar::Null)
        .collect();
    if !nulls.is_empty() {
        let plain = !(m.all || m.every || m.cased || m.neq || !m.transforms.is_empty());
        if op.0 == Op::Eq && !list && values.len() == 1 && plain && field != Field::Keywords {
            return Some(Pred {
                field,
                test: Test::Exists(false),
            });
        }
        for n in nulls {
            errors.push(SpecError::new(
                n.pos,
                format!("`{fname}`: null is only allowed alone, as `{fname}: null` (the field is missing)"),
            ));
        }
        return None;
    }
    let transformed = transform_values(&m.transforms, values, errors);
    let values: Vec<&Item> = match &transformed {
        Some(items) => items.iter().collect(),
        None if m.transforms.is_empty() => values.to_vec(),
        None => return None,
    };
    let test = op_test(key, name, &field, op, &values, list, &m, errors)?;
    let test = if m.neq {
        Test::Not(Box::new(test))
    } else {
        test
    };
    let test = if m.every {
        Test::Every(Box::new(test))
    } else {
        test
    };
    (errors.len() == before).then_some(Pred { field, test })
}

/// Reports modifiers that do not go together, or not with this field; false when there is one.
fn combinations(
    key: &Str,
    field: &Field,
    (op, op_name): (Op, &str),
    m: &Modifiers<'_>,
    errors: &mut Vec<SpecError>,
) -> bool {
    let before = errors.len();
    let mut err = |pos: Pos, message: String| errors.push(SpecError::new(pos, message));
    if matches!(op, Op::Cidr | Op::Cmp(_) | Op::Exists) && m.cased {
        err(
            key.pos,
            format!("`cased` applies to text comparisons, not `{op_name}`"),
        );
    }
    if op == Op::Exists && m.all {
        err(key.pos, "`all` cannot be used with `exists`".into());
    }
    if let Some(other) = m
        .every
        .then(|| every_conflict(op, m.all, m.fieldref))
        .flatten()
    {
        err(key.pos, format!("`every` cannot be used with `{other}`"));
    }
    if m.neq {
        let why = match op {
            _ if m.all => Some(
                "`neq` cannot be combined with `all`: with several values it already means none \
                 of them"
                    .to_owned(),
            ),
            Op::Exists => {
                Some("`neq` cannot be combined with `exists`: write `exists: false`".into())
            }
            Op::Cmp(_) => Some(format!(
                "`neq` cannot be combined with `{op_name}`: it compares for equality"
            )),
            _ => None,
        };
        if let Some(why) = why {
            err(key.pos, why);
        }
    }
    let text_op = matches!(op, Op::Eq | Op::Contains | Op::StartsWith | Op::EndsWith);
    let not_text = match kind(field) {
        Kind::Int => Some("a number"),
        Kind::Bool => Some("a flag"),
        Kind::Ip => Some("an address"),
        Kind::Text | Kind::Raw => None,
    };
    for (_, pos, name) in &m.transforms {
        if !text_op || m.fieldref {
            let with = if m.fieldref { "fieldref" } else { op_name };
            err(
                *pos,
                format!("`{name}` rewrites text values: it cannot be used with `{with}`"),
            );
        } else if let Some(what) = not_text {
            err(
                *pos,
                format!("`{name}` rewrites text values: `{field}` is {what}"),
            );
        }
    }
    for &(flag, pos) in &m.re_flags {
        if op != Op::Re {
            err(pos, format!("`{flag}` is a flag of `re` (`re|{flag}`)"));
        } else if flag == 'i' && m.cased {
            err(
                pos,
                "`re|i` is case-insensitive and `cased` is not: use one".into(),
            );
        }
    }
    if *field == Field::Keywords {
        let other = match op {
            _ if m.fieldref => Some("fieldref"),
            _ if m.every => Some("every"),
            Op::Cidr | Op::Cmp(_) | Op::Exists => Some(op_name),
            _ => None,
        };
        if let Some(other) = other {
            err(
                key.pos,
                format!(
                    "a keyword is searched for in the text of the record: `{other}` does not \
                     apply (use a field)"
                ),
            );
        }
    }
    errors.len() == before
}

/// The values after the entry's transforms (`windash`, `base64offset` …), each where its
/// original is; `None` without transforms, or after reporting a value that cannot be
/// transformed.
fn transform_values(
    transforms: &[(Transform, Pos, &str)],
    values: &[&Item],
    errors: &mut Vec<SpecError>,
) -> Option<Vec<Item>> {
    if transforms.is_empty() {
        return None;
    }
    let order: Vec<Transform> = transforms.iter().map(|(t, ..)| *t).collect();
    let before = errors.len();
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match transform::apply(&order, &v.value.to_string()) {
            Ok(texts) => out.extend(texts.into_iter().map(|text| Item {
                value: Scalar::Str(text),
                pos: v.pos,
                origin: v.origin.clone(),
            })),
            Err(message) => errors.push(SpecError::item(v, message)),
        }
    }
    (errors.len() == before).then_some(out)
}

/// The test of an entry's comparison over its (final) values.
#[allow(clippy::too_many_arguments)]
fn op_test(
    key: &Str,
    name: &str,
    field: &Field,
    (op, op_name): (Op, &str),
    values: &[&Item],
    list: bool,
    m: &Modifiers<'_>,
    errors: &mut Vec<SpecError>,
) -> Option<Test> {
    let kind = kind(field);
    let fname = field.to_string();
    let type_error = |errors: &mut Vec<SpecError>, what: &str| {
        errors.push(SpecError::new(
            key.at(name.len() + 1),
            format!("modifier `{op_name}` does not apply to `{fname}` ({what})"),
        ));
    };
    let (all, cased) = (m.all, m.cased);
    Some(match op {
        Op::Exists => exists_test(key, &fname, values, list, errors)?,
        Op::Re => {
            if kind == Kind::Bool {
                type_error(errors, "a flag: compare it with true or false");
                return None;
            }
            let flag = |f: char| m.re_flags.iter().any(|(g, _)| *g == f);
            regex_test(values, all, (cased, flag('m'), flag('s')), errors)
        }
        Op::Cidr => {
            if !matches!(kind, Kind::Ip | Kind::Raw) {
                type_error(errors, "`cidr` applies to `network.ip` and `raw.*` fields");
                return None;
            }
            cidr_test(values, all, errors)
        }
        Op::Cmp(cmp) => {
            if !matches!(kind, Kind::Int | Kind::Raw) {
                type_error(errors, "it is not a number");
                return None;
            }
            cmp_test((cmp, op_name), values, all, errors)
        }
        Op::Contains | Op::StartsWith | Op::EndsWith => {
            if matches!(kind, Kind::Int | Kind::Bool) {
                let what = if kind == Kind::Int {
                    "it is a number: use gt/gte/lt/lte or equality"
                } else {
                    "a flag: compare it with true or false"
                };
                type_error(errors, what);
                return None;
            }
            let (star_start, star_end) = match op {
                Op::Contains => (true, true),
                Op::StartsWith => (false, true),
                _ => (true, false),
            };
            let pats = values
                .iter()
                .map(|v| Pat {
                    glob: Glob::new(&v.value.to_string(), star_start, star_end, cased),
                    num: None,
                    boolean: None,
                    ip: None,
                })
                .collect();
            text_test(pats, all, cased)
        }
        Op::Eq => {
            let closed = closed_values(field);
            let mut pats = Vec::with_capacity(values.len());
            for v in values {
                if let Some(pat) = eq_pattern(&fname, kind, closed.as_deref(), v, cased, errors) {
                    pats.push(pat);
                }
            }
            text_test(pats, all, cased)
        }
    })
}

/// `exists`: one `true` or `false`.
fn exists_test(
    key: &Str,
    fname: &str,
    values: &[&Item],
    list: bool,
    errors: &mut Vec<SpecError>,
) -> Option<Test> {
    if let [Item {
        value: Scalar::Bool(b),
        ..
    }] = values
    {
        if !list {
            return Some(Test::Exists(*b));
        }
    }
    let message = format!("`{fname}|exists` takes `true` or `false`");
    errors.push(match values.first() {
        Some(v) => SpecError::item(v, message),
        None => SpecError::new(key.pos, message),
    });
    None
}

/// `re`: each value a regular expression, case-insensitive unless `cased`; `m` and `s` (Sigma's
/// flags) make `^`/`$` match at line ends and `.` match a line break.
fn regex_test(
    values: &[&Item],
    all: bool,
    (cased, multi_line, dot_all): (bool, bool, bool),
    errors: &mut Vec<SpecError>,
) -> Test {
    let mut res = Vec::with_capacity(values.len());
    for v in values {
        let text = v.value.to_string();
        let built = RegexBuilder::new(&text)
            .case_insensitive(!cased)
            .multi_line(multi_line)
            .dot_matches_new_line(dot_all)
            .build();
        match built {
            Ok(re) => res.push(re),
            Err(e) => errors.push(SpecError::item(
                v,
                format!("invalid regex `{text}`: {}", regex_message(&e)),
            )),
        }
    }
    Test::Regex {
        res: res.into(),
        all,
    }
}

/// `cidr`: each value a network.
fn cidr_test(values: &[&Item], all: bool, errors: &mut Vec<SpecError>) -> Test {
    let mut nets = Vec::with_capacity(values.len());
    for v in values {
        match parse_net(&v.value.to_string()) {
            Some(net) => nets.push(net),
            None => errors.push(SpecError::item(
                v,
                format!(
                    "invalid CIDR `{}`: expected an address/prefix like 10.0.0.0/8",
                    v.value
                ),
            )),
        }
    }
    Test::Cidr {
        nets: nets.into(),
        all,
    }
}

/// `gt`, `gte`, `lt`, `lte` (`op`, with the modifier's name): each value a number or a size.
fn cmp_test(
    (op, op_name): (CmpOp, &str),
    values: &[&Item],
    all: bool,
    errors: &mut Vec<SpecError>,
) -> Test {
    let mut nums = Vec::with_capacity(values.len());
    for v in values {
        match number(&v.value) {
            Some(x) => nums.push(x),
            None => errors.push(SpecError::item(
                v,
                format!(
                    "`{op_name}` needs a number or a size like 10MiB, not `{}`",
                    v.value
                ),
            )),
        }
    }
    Test::Cmp {
        op,
        values: nums.into(),
        all,
    }
}

/// The modifier `every` cannot be combined with, if the entry has one.
fn every_conflict(op: Op, all: bool, fieldref: bool) -> Option<&'static str> {
    if op == Op::Exists {
        Some("exists")
    } else if all {
        Some("all")
    } else if fieldref {
        Some("fieldref")
    } else {
        None
    }
}

/// A text test; without `all`, a long list of patterns is indexed (`lookup`).
fn text_test(mut pats: Vec<Pat>, all: bool, cased: bool) -> Test {
    let lookup = if all {
        None
    } else {
        Lookup::build(&mut pats, cased).map(Arc::new)
    };
    Test::Text {
        pats: pats.into(),
        all,
        cased,
        lookup,
    }
}

/// Whether `fieldref` can be combined with an operator: equality and the text positions.
fn fieldref_allows(op: Op) -> bool {
    matches!(op, Op::Eq | Op::Contains | Op::StartsWith | Op::EndsWith)
}

fn fieldref_conflict(pos: Pos, other: &str) -> SpecError {
    SpecError::new(
        pos,
        format!(
            "modifier `{other}` cannot be combined with `fieldref`: fieldref compares for \
             equality only (or with startswith, endswith, contains)"
        ),
    )
}

/// `field|fieldref: other` (with `startswith`, `endswith` or `contains`; with `neq`, differs
/// from it): the values are field names, resolved now.
fn fieldref_entry(
    key: &Str,
    name: &str,
    field: &Field,
    (op, op_name): (Op, &str),
    values: &[&Item],
    m: &Modifiers<'_>,
    errors: &mut Vec<SpecError>,
) -> Option<Pred> {
    let before = errors.len();
    let op = match op {
        Op::Eq => RefOp::Eq,
        Op::StartsWith => RefOp::StartsWith,
        Op::EndsWith => RefOp::EndsWith,
        Op::Contains => RefOp::Contains,
        // Rejected while reading the modifiers.
        _ => return None,
    };
    if op != RefOp::Eq && matches!(kind(field), Kind::Int | Kind::Bool) {
        errors.push(SpecError::new(
            key.at(name.len() + 1),
            format!(
                "modifier `{op_name}` does not apply to `{field}` (it is not text: use \
                 `{field}|fieldref` alone for equality)"
            ),
        ));
    }
    if values.is_empty() {
        errors.push(SpecError::new(
            key.pos,
            format!("`{field}|fieldref` needs a field name"),
        ));
    }
    let mut fields = Vec::with_capacity(values.len());
    for v in values {
        match &v.value {
            Scalar::Str(s) => {
                let before = errors.len();
                fields.extend(self::field(s, v.pos, errors));
                for e in &mut errors[before..] {
                    e.origin.clone_from(&v.origin);
                }
            }
            other => errors.push(SpecError::item(
                v,
                format!("`fieldref` takes field names, not `{other}`"),
            )),
        }
    }
    (errors.len() == before).then(|| Pred {
        field: field.clone(),
        test: Test::FieldRef {
            fields: fields.into(),
            op,
            all: m.all,
            cased: m.cased,
            neq: m.neq,
        },
    })
}

fn eq_pattern(
    fname: &str,
    kind: Kind,
    closed: Option<&[&'static str]>,
    v: &Item,
    cased: bool,
    errors: &mut Vec<SpecError>,
) -> Option<Pat> {
    let text = v.value.to_string();
    let wild = matches!(v.value, Scalar::Str(_)) && (text.contains('*') || text.contains('?'));
    let mut pat = Pat {
        glob: Glob::new(&text, false, false, cased),
        num: number_exact(&v.value),
        boolean: match &v.value {
            Scalar::Bool(b) => Some(*b),
            Scalar::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Scalar::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        },
        ip: text.parse::<IpAddr>().ok().map(|ip| ip.to_canonical()),
    };
    let mut fail = |message: String| {
        errors.push(SpecError::item(v, message));
        None
    };
    match kind {
        Kind::Int => {
            if pat.num.is_none() {
                pat.num = number(&v.value);
            }
            if pat.num.is_none() {
                return fail(format!("`{fname}` is a number: `{text}` is not"));
            }
        }
        Kind::Bool if pat.boolean.is_none() => {
            return fail(format!("`{fname}` is true or false, not `{text}`"));
        }
        Kind::Ip if pat.ip.is_none() && !wild => {
            let hint = if text.contains('/') {
                format!(" (for a network use `{fname}|cidr`)")
            } else {
                String::new()
            };
            return fail(format!("`{text}` is not an IP address{hint}"));
        }
        Kind::Text if !wild => {
            if let Some(allowed) = closed {
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&text)) {
                    let hint = did_you_mean(&text, allowed.iter().copied());
                    return fail(format!(
                        "`{fname}` is one of: {}; `{text}` never matches{hint}",
                        allowed.join(", ")
                    ));
                }
            }
        }
        _ => {}
    }
    if wild {
        pat.num = None;
        pat.ip = None;
    }
    Some(pat)
}

/// A number as written (no sizes): typed equality with numeric fields.
fn number_exact(v: &Scalar) -> Option<f64> {
    match v {
        Scalar::Int(n) => Some(*n as f64),
        Scalar::Float(x) => Some(*x),
        Scalar::Str(s) => s.trim().parse().ok(),
        Scalar::Null | Scalar::Bool(_) => None,
    }
}

/// A number, or a size such as `10MiB`.
pub(crate) fn number(v: &Scalar) -> Option<f64> {
    match v {
        Scalar::Str(s) => parse_size(s),
        other => number_exact(other),
    }
}

fn parse_net(text: &str) -> Option<Net> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = addr.trim().parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = match prefix {
        Some(p) => p.trim().parse().ok().filter(|p| *p <= max)?,
        None => max,
    };
    // An IPv4-mapped IPv6 network is the IPv4 network it maps.
    match (addr, addr.to_canonical()) {
        (IpAddr::V6(_), canonical @ IpAddr::V4(_)) if prefix >= 96 => Some(Net {
            addr: canonical,
            prefix: prefix - 96,
        }),
        _ => Some(Net { addr, prefix }),
    }
}

/// The useful line of a regex error (they come with a caret diagram).
fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().last().unwrap_or_default())
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse() {
        assert_eq!(
            parse_net("10.0.0.0/8"),
            Some(Net {
                addr: "10.0.0.0".parse().unwrap(),
                prefix: 8
            })
        );
        assert_eq!(parse_net("10.0.0.1").unwrap().prefix, 32);
        assert_eq!(parse_net("::ffff:10.0.0.0/104").unwrap().prefix, 8);
        // A mapped address with a shorter prefix is an IPv6 network (`::/8` holds them all).
        assert_eq!(
            parse_net("::ffff:10.0.0.0/8"),
            Some(Net {
                addr: "::ffff:10.0.0.0".parse().unwrap(),
                prefix: 8
            })
        );
        assert_eq!(parse_net("2001:db8::/32").unwrap().prefix, 32);
        assert_eq!(parse_net("10.0.0.0/33"), None);
        assert_eq!(parse_net("10.0.0/8"), None);
        assert_eq!(parse_net("example.com/8"), None);
    }
}
