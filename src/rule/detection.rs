//! Sigma-style detection, compiled: the per-event matching of a rule.
//!
//! A rule's detection is flat: one array of field predicates, selections that are ORs of
//! contiguous AND-runs of predicates, and small expression trees over selection indices (the
//! rule's condition, sequence steps, `until`). Exceptions are selections too. Nothing is looked
//! up by name and nothing is allocated while matching: patterns are lower-cased at load and
//! compared ASCII-case-insensitively with the event's text; numbers and IP addresses are
//! formatted on the stack when a text comparison needs them; `EvalCx::text` is the reusable
//! buffer for values that must be built (`service:operation`, session keys, escaped vendor
//! strings), and `EvalCx::other` the second one, for the other side of a `fieldref`.
//!
//! Semantics, as in Sigma: a missing field matches nothing but `exists: false`; a list value
//! means any of its items; `all` means every listed pattern; a list-valued field (scopes)
//! matches when any item does (with `all`: every pattern matches some item). A `fieldref`
//! entry compares the field with another field of the same event: both must be present, and
//! some item of one equals some item of the other (numbers and addresses by value, the rest
//! by text); `all` means every referenced field. `every` asks the opposite of the default of
//! a list-valued field: every item matches (Falco's `in` on a list field), not any. `neq` is
//! the negation of the entry on a present field. A keyword is searched for in every string of
//! the vendor record, at any depth. A rule's Sigma filters are conditions every match must
//! also meet, on its main condition and its sequence steps alike.

use std::fmt;
use std::io::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use bumpalo::Bump;
use regex::Regex;
use serde::de::{
    self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::value::RawValue;

use super::field::{Field, Value};
use super::lookup::Lookup;
use super::CmpOp;
use crate::event::Event;

/// Reusable buffers for evaluating rules on one event; reset between events.
#[derive(Default)]
pub struct EvalCx {
    pub scratch: Bump,
    pub text: String,
    /// The referenced field's text in a `fieldref` comparison, while `text` holds the entry's.
    pub other: String,
}

impl EvalCx {
    pub fn reset(&mut self) {
        self.scratch.reset();
    }
}

/// A rule's compiled detection: its condition over named selections, and its exceptions.
#[derive(Clone, Debug, Default)]
pub struct Detection {
    pub(crate) preds: Box<[Pred]>,
    pub(crate) selections: Box<[Selection]>,
    pub(crate) condition: Condition,
    /// Selection indices; an event matching any of them never matches the rule.
    pub(crate) exceptions: Box<[u32]>,
    /// Conditions every match must also meet: the Sigma filters that name the rule.
    pub(crate) filters: Box<[Expr]>,
}

/// A compiled condition over a rule's selections (the rule's own, a sequence step's, `until`).
/// Only meaningful with the `Detection` it was compiled for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Condition {
    pub(crate) expr: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    Const(bool),
    Sel(u32),
    Not(Box<Expr>),
    And(Box<[Expr]>),
    Or(Box<[Expr]>),
}

impl Default for Expr {
    fn default() -> Self {
        Expr::Const(false)
    }
}

/// A selection: true when all predicates of any one group hold.
#[derive(Clone, Debug)]
pub(crate) struct Selection {
    pub(crate) name: Box<str>,
    /// Ranges `start..end` into `Detection::preds`.
    pub(crate) groups: Box<[(u32, u32)]>,
}

/// One `field|modifiers: values` entry.
#[derive(Clone, Debug)]
pub(crate) struct Pred {
    pub(crate) field: Field,
    pub(crate) test: Test,
}

#[derive(Clone, Debug)]
pub(crate) enum Test {
    Exists(bool),
    /// Equality (with `*`/`?` wildcards), `contains`, `startswith`, `endswith`. Without `all`,
    /// a long list keeps most of its patterns in `lookup` instead of `pats`: a value matches
    /// when it matches either.
    Text {
        pats: Box<[Pat]>,
        all: bool,
        cased: bool,
        lookup: Option<Arc<Lookup>>,
    },
    Regex {
        res: Box<[Regex]>,
        all: bool,
    },
    Cidr {
        nets: Box<[Net]>,
        all: bool,
    },
    Cmp {
        op: CmpOp,
        values: Box<[f64]>,
        all: bool,
    },
    /// `every`: the inner test holds for every item of a list-valued field (a vendor array,
    /// `scopes`), and there is at least one; a single value is a list of one.
    Every(Box<Test>),
    /// `neq`: the field is present and the inner test does not hold (no item of a list-valued
    /// field matches).
    Not(Box<Test>),
    /// `fieldref`: the value compared with other fields of the same event; with `neq`, both
    /// present and different.
    FieldRef {
        fields: Box<[Field]>,
        op: RefOp,
        all: bool,
        cased: bool,
        neq: bool,
    },
}

/// How a `fieldref` compares the entry's value (left) with the referenced field's (right).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefOp {
    /// Equal: numbers and addresses by value, the rest as text.
    Eq,
    /// The left text starts with the right text (`fieldref|startswith`).
    StartsWith,
    EndsWith,
    Contains,
}

/// A text pattern, with the typed forms of the value for typed fields (`bytes: 5`,
/// `session.mfa: false`, `network.ip: 10.0.0.1`).
#[derive(Clone, Debug)]
pub(crate) struct Pat {
    pub(crate) glob: Glob,
    pub(crate) num: Option<f64>,
    pub(crate) boolean: Option<bool>,
    pub(crate) ip: Option<IpAddr>,
}

/// A text pattern, lower-cased at load unless `cased`. The common shapes get their own
/// variant; `Wild` is the general `*`/`?` form.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Glob {
    Exact(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    Contains(Box<str>),
    Wild(Wild),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Wild {
    /// The pattern split at each `*`.
    pub(crate) segs: Box<[Box<[WildTok]>]>,
    pub(crate) star_start: bool,
    pub(crate) star_end: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum WildTok {
    Byte(u8),
    /// `?`: one character.
    One,
}

/// An IP network; `addr` is canonical (IPv4-mapped IPv6 addresses are IPv4).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Net {
    pub(crate) addr: IpAddr,
    pub(crate) prefix: u8,
}

impl Net {
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl Detection {
    /// True when the event matches the rule's condition and filters, and none of its
    /// exceptions.
    pub fn matches(&self, event: &Event<'_>, cx: &mut EvalCx) -> bool {
        self.eval(&self.condition, event, cx)
    }

    /// Evaluates a step condition over this rule's selections; filters and exceptions still
    /// apply.
    pub fn eval(&self, condition: &Condition, event: &Event<'_>, cx: &mut EvalCx) -> bool {
        let EvalCx {
            scratch,
            text,
            other,
        } = cx;
        let mut bufs = Bufs { text, other };
        self.expr(&condition.expr, event, scratch, &mut bufs)
            && self
                .filters
                .iter()
                .all(|f| self.expr(f, event, scratch, &mut bufs))
            && !self
                .exceptions
                .iter()
                .any(|&i| self.selection(i, event, scratch, &mut bufs))
    }

    /// The rule's main condition.
    pub fn condition(&self) -> &Condition {
        &self.condition
    }

    /// Names of the selections, in index order (the rule's own, then exceptions and macros).
    pub fn selection_names(&self) -> impl Iterator<Item = &str> {
        self.selections.iter().map(|s| &*s.name)
    }

    fn expr(&self, expr: &Expr, event: &Event<'_>, scratch: &Bump, bufs: &mut Bufs<'_>) -> bool {
        match expr {
            Expr::Const(b) => *b,
            Expr::Sel(i) => self.selection(*i, event, scratch, bufs),
            Expr::Not(e) => !self.expr(e, event, scratch, bufs),
            Expr::And(es) => es.iter().all(|e| self.expr(e, event, scratch, bufs)),
            Expr::Or(es) => es.iter().any(|e| self.expr(e, event, scratch, bufs)),
        }
    }

    fn selection(&self, i: u32, event: &Event<'_>, scratch: &Bump, bufs: &mut Bufs<'_>) -> bool {
        self.selections[i as usize].groups.iter().any(|&(s, e)| {
            self.preds[s as usize..e as usize].iter().all(|p| {
                p.test
                    .matches(p.field.get(event, scratch), event, scratch, bufs)
            })
        })
    }
}

/// The reusable text buffers of an `EvalCx`.
struct Bufs<'a> {
    text: &'a mut String,
    other: &'a mut String,
}

/// One comparable piece of a field's value.
#[derive(Clone, Copy, Debug)]
enum Scalar<'a> {
    Text(&'a str),
    Int(i64),
    /// A vendor JSON number: its value and its text as written.
    Num(f64, &'a str),
    Bool(bool),
    Ip(IpAddr),
}

impl Test {
    fn matches(
        &self,
        value: Value<'_>,
        event: &Event<'_>,
        scratch: &Bump,
        bufs: &mut Bufs<'_>,
    ) -> bool {
        let missing = value.is_missing() || matches!(value, Value::List(items) if items.is_empty());
        if let Test::Exists(want) = self {
            return *want != missing;
        }
        if missing {
            return false;
        }
        if let Test::Every(inner) = self {
            return match value {
                Value::List(items) => items
                    .iter()
                    .all(|t| inner.matches(Value::Str(t), event, scratch, bufs)),
                Value::Raw(raw) if raw.get().starts_with('[') => {
                    raw_array_every(raw.get(), &mut |item| {
                        inner.matches(Value::Raw(item), event, scratch, bufs)
                    })
                }
                _ => inner.matches(value, event, scratch, bufs),
            };
        }
        if let Test::Not(inner) = self {
            return !inner.matches(value, event, scratch, bufs);
        }
        let buf = &mut *bufs.text;
        match self {
            Test::Exists(_) | Test::Every(_) | Test::Not(_) => unreachable!("handled above"),
            Test::FieldRef {
                fields,
                op,
                all,
                cased,
                neq,
            } => {
                let other = &mut *bufs.other;
                let mut one = |field: &Field| {
                    let right = field.get(event, scratch);
                    !right.is_missing()
                        && *neq
                            != any_scalar(value, buf, &mut |a| {
                                any_scalar(right, other, &mut |b| op.holds(a, b, *cased))
                            })
                };
                if *all {
                    fields.iter().all(&mut one)
                } else {
                    fields.iter().any(&mut one)
                }
            }
            Test::Text {
                pats,
                all,
                cased,
                lookup,
            } => match lookup {
                Some(lookup) => any_scalar(value, buf, &mut |s| {
                    in_lookup(lookup, s) || pats.iter().any(|p| p.matches(s, *cased))
                }),
                None => each(value, buf, pats, *all, |p, s| p.matches(s, *cased)),
            },
            Test::Regex { res, all } => each(value, buf, res, *all, |r, s| {
                with_text(s, |t| r.is_match(t))
            }),
            Test::Cidr { nets, all } => each(value, buf, nets, *all, |n, s| {
                scalar_ip(s).is_some_and(|ip| n.contains(ip))
            }),
            Test::Cmp { op, values, all } => each(value, buf, values, *all, |x, s| {
                scalar_num(s).is_some_and(|n| match op {
                    CmpOp::Gt => n > *x,
                    CmpOp::Gte => n >= *x,
                    CmpOp::Lt => n < *x,
                    CmpOp::Lte => n <= *x,
                    CmpOp::Eq => n == *x,
                })
            }),
        }
    }
}

/// Without `all`: some scalar of the value matches some pattern. With `all`: every pattern
/// matches some scalar of the value.
fn each<P>(
    value: Value<'_>,
    buf: &mut String,
    pats: &[P],
    all: bool,
    m: impl Fn(&P, Scalar<'_>) -> bool,
) -> bool {
    if all {
        pats.iter()
            .all(|p| any_scalar(value, buf, &mut |s| m(p, s)))
    } else {
        any_scalar(value, buf, &mut |s| pats.iter().any(|p| m(p, s)))
    }
}

fn any_scalar(value: Value<'_>, buf: &mut String, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool {
    match value {
        Value::Missing => false,
        Value::Str(s) => f(Scalar::Text(s)),
        Value::Pair(..) | Value::Key(_) => {
            value.write_text(buf);
            f(Scalar::Text(buf))
        }
        Value::Int(n) => f(Scalar::Int(n)),
        Value::Bool(b) => f(Scalar::Bool(b)),
        Value::Ip(ip) => f(Scalar::Ip(ip)),
        Value::List(items) => items.iter().any(|t| f(Scalar::Text(t))),
        Value::Record(fields) => fields.iter().any(|(_, raw)| raw_strings_any(raw.get(), f)),
        Value::Raw(raw) => {
            let json = raw.get();
            if json.starts_with('[') {
                raw_array_any(json, buf, f)
            } else {
                raw_scalar(json, buf).is_some_and(f)
            }
        }
    }
}

/// A vendor JSON value as a scalar; objects are compared as their JSON text.
fn raw_scalar<'a>(json: &'a str, buf: &'a mut String) -> Option<Scalar<'a>> {
    match json.as_bytes().first()? {
        b'"' => {
            let inner = &json[1..json.len() - 1];
            if inner.contains('\\') {
                buf.clear();
                buf.push_str(&serde_json::from_str::<String>(json).ok()?);
                Some(Scalar::Text(buf))
            } else {
                Some(Scalar::Text(inner))
            }
        }
        b't' => Some(Scalar::Bool(true)),
        b'f' => Some(Scalar::Bool(false)),
        b'n' => None,
        b'{' | b'[' => Some(Scalar::Text(json)),
        _ => json.parse().ok().map(|x| Scalar::Num(x, json)),
    }
}

/// Calls `f` on each element of a JSON array until it returns true, without collecting them.
fn raw_array_any(json: &str, buf: &mut String, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool {
    struct Elements<'b, 'f> {
        buf: &'b mut String,
        f: &'b mut (dyn FnMut(Scalar<'_>) -> bool + 'f),
        hit: &'b mut bool,
    }
    impl<'de> Visitor<'de> for Elements<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(item) = seq.next_element::<&'de RawValue>()? {
                if raw_scalar(item.get(), self.buf).is_some_and(&mut *self.f) {
                    *self.hit = true;
                    // Returning early leaves elements unread: serde_json then reports an
                    // error, which the caller ignores.
                    return Ok(());
                }
            }
            Ok(())
        }
    }
    let mut hit = false;
    let mut de = serde_json::Deserializer::from_str(json);
    let _ = (&mut de).deserialize_seq(Elements {
        buf,
        f,
        hit: &mut hit,
    });
    hit
}

/// Calls `f` on every string of a JSON value, at any depth, until it returns true (what a
/// keyword searches). Object keys, numbers, booleans and nulls are not searched; a string
/// holding JSON (a nested object sent as text) is searched as that text.
fn raw_strings_any(json: &str, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool {
    struct Strings<'b, 'f> {
        f: &'b mut (dyn FnMut(Scalar<'_>) -> bool + 'f),
        hit: bool,
    }
    impl<'de> DeserializeSeed<'de> for &mut Strings<'_, '_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for &mut Strings<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
            if (self.f)(Scalar::Text(v)) {
                self.hit = true;
                // Stops the reading: the error is the way out, and is ignored.
                return Err(E::custom("found"));
            }
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(&mut *self)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while map.next_key::<IgnoredAny>()?.is_some() {
                map.next_value_seed(&mut *self)?;
            }
            Ok(())
        }
    }
    let mut strings = Strings { f, hit: false };
    let mut de = serde_json::Deserializer::from_str(json);
    let _ = (&mut strings).deserialize(&mut de);
    strings.hit
}

/// Whether `f` holds for every element of a JSON array that has one (false for `[]`), reading
/// the elements one by one and stopping at the first that fails.
fn raw_array_every(json: &str, f: &mut dyn FnMut(&RawValue) -> bool) -> bool {
    struct Elements<'b, 'f> {
        f: &'b mut (dyn FnMut(&RawValue) -> bool + 'f),
        seen: &'b mut bool,
        failed: &'b mut bool,
    }
    impl<'de> Visitor<'de> for Elements<'_, '_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(item) = seq.next_element::<&'de RawValue>()? {
                *self.seen = true;
                if !(self.f)(item) {
                    *self.failed = true;
                    // As in `raw_array_any`: the unread rest makes an error that is ignored.
                    return Ok(());
                }
            }
            Ok(())
        }
    }
    let (mut seen, mut failed) = (false, false);
    let mut de = serde_json::Deserializer::from_str(json);
    let _ = (&mut de).deserialize_seq(Elements {
        f,
        seen: &mut seen,
        failed: &mut failed,
    });
    seen && !failed
}

/// Formats into a stack buffer; numbers and IP addresses fit in 64 bytes.
fn with_text<R>(s: Scalar<'_>, f: impl FnOnce(&str) -> R) -> R {
    fn format<'s>(stack: &'s mut [u8; 64], args: fmt::Arguments<'_>) -> &'s str {
        let mut cursor = std::io::Cursor::new(&mut stack[..]);
        let _ = cursor.write_fmt(args);
        let len = usize::try_from(cursor.position()).unwrap_or(0);
        std::str::from_utf8(&stack[..len]).unwrap_or("")
    }
    let mut stack = [0u8; 64];
    match s {
        Scalar::Text(t) | Scalar::Num(_, t) => f(t),
        Scalar::Bool(b) => f(if b { "true" } else { "false" }),
        Scalar::Int(n) => f(format(&mut stack, format_args!("{n}"))),
        Scalar::Ip(ip) => f(format(&mut stack, format_args!("{ip}"))),
    }
}

/// What the patterns a lookup holds would say of the scalar, one by one (`Pat::matches`):
/// typed values by value, and by their text for the patterns that have no typed form.
fn in_lookup(lookup: &Lookup, s: Scalar<'_>) -> bool {
    match s {
        Scalar::Text(t) => lookup.text(t),
        Scalar::Num(x, t) => lookup.number(x) || lookup.text(t),
        Scalar::Int(n) => lookup.number(n as f64) || with_text(s, |t| lookup.text(t)),
        Scalar::Bool(b) => lookup.flag(b) || with_text(s, |t| lookup.text(t)),
        Scalar::Ip(ip) => lookup.ip(ip) || with_text(s, |t| lookup.text(t)),
    }
}

fn scalar_ip(s: Scalar<'_>) -> Option<IpAddr> {
    match s {
        Scalar::Ip(ip) => Some(ip),
        Scalar::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

fn scalar_num(s: Scalar<'_>) -> Option<f64> {
    match s {
        Scalar::Int(n) => Some(n as f64),
        Scalar::Num(x, _) => Some(x),
        Scalar::Text(t) => t.trim().parse().ok(),
        Scalar::Bool(_) | Scalar::Ip(_) => None,
    }
}

impl RefOp {
    fn holds(self, left: Scalar<'_>, right: Scalar<'_>, cased: bool) -> bool {
        if self == RefOp::Eq {
            let number = |s| matches!(s, Scalar::Int(_) | Scalar::Num(..));
            if number(left) || number(right) {
                if let (Some(x), Some(y)) = (scalar_num(left), scalar_num(right)) {
                    return x == y;
                }
            }
            if matches!(left, Scalar::Ip(_)) || matches!(right, Scalar::Ip(_)) {
                if let (Some(x), Some(y)) = (scalar_ip(left), scalar_ip(right)) {
                    return x.to_canonical() == y.to_canonical();
                }
            }
        }
        with_text(left, |l| {
            with_text(right, |r| {
                let (h, n) = (l.as_bytes(), r.as_bytes());
                match self {
                    RefOp::Eq => bytes_eq(h, n, cased),
                    RefOp::StartsWith => h.len() >= n.len() && bytes_eq(&h[..n.len()], n, cased),
                    RefOp::EndsWith => {
                        h.len() >= n.len() && bytes_eq(&h[h.len() - n.len()..], n, cased)
                    }
                    RefOp::Contains => {
                        n.is_empty() || h.windows(n.len()).any(|w| bytes_eq(w, n, cased))
                    }
                }
            })
        })
    }
}

impl Pat {
    fn matches(&self, s: Scalar<'_>, cased: bool) -> bool {
        match s {
            Scalar::Text(t) => self.glob.matches(t, cased),
            Scalar::Int(n) => match self.num {
                Some(x) => n as f64 == x,
                None => with_text(s, |t| self.glob.matches(t, cased)),
            },
            Scalar::Num(x, text) => match self.num {
                Some(y) => x == y,
                None => self.glob.matches(text, cased),
            },
            Scalar::Bool(b) => match self.boolean {
                Some(y) => b == y,
                None => with_text(s, |t| self.glob.matches(t, cased)),
            },
            Scalar::Ip(ip) => match self.ip {
                Some(y) => ip.to_canonical() == y,
                None => with_text(s, |t| self.glob.matches(t, cased)),
            },
        }
    }
}

impl Glob {
    /// Literal text written as a pattern: its wildcard characters and backslashes escaped, so
    /// [`Glob::new`] reads it back as that text.
    pub(crate) fn escape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if matches!(c, '*' | '?' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }

    /// Builds a pattern from rule text: `*` any run, `?` one character, `\*` `\?` `\\`
    /// literal; other backslashes are literal (Windows paths). `contains`, `startswith` and
    /// `endswith` add stars around the pattern. Lower-cased unless `cased`.
    pub(crate) fn new(text: &str, star_start: bool, star_end: bool, cased: bool) -> Glob {
        #[derive(Clone, Copy, PartialEq)]
        enum T {
            Byte(u8),
            One,
            Star,
        }
        let text = if cased {
            text.to_owned()
        } else {
            text.to_ascii_lowercase()
        };
        // A plain literal (most list entries): its shape follows from the stars added.
        if !text.is_empty() && !text.bytes().any(|b| matches!(b, b'*' | b'?' | b'\\')) {
            let lit = text.into_boxed_str();
            return match (star_start, star_end) {
                (false, false) => Glob::Exact(lit),
                (false, true) => Glob::Prefix(lit),
                (true, false) => Glob::Suffix(lit),
                (true, true) => Glob::Contains(lit),
            };
        }
        let bytes = text.as_bytes();
        let mut toks = Vec::with_capacity(bytes.len() + 2);
        if star_start {
            toks.push(T::Star);
        }
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if matches!(bytes.get(i + 1), Some(b'*' | b'?' | b'\\')) => {
                    toks.push(T::Byte(bytes[i + 1]));
                    i += 2;
                    continue;
                }
                b'*' => {
                    if toks.last() != Some(&T::Star) {
                        toks.push(T::Star);
                    }
                }
                b'?' => toks.push(T::One),
                b => toks.push(T::Byte(b)),
            }
            i += 1;
        }
        if star_end && toks.last() != Some(&T::Star) {
            toks.push(T::Star);
        }
        if toks == [T::Star] {
            return Glob::Contains("".into());
        }
        let lead = toks.first() == Some(&T::Star);
        let trail = toks.len() > usize::from(lead) && toks.last() == Some(&T::Star);
        let core = &toks[usize::from(lead)..toks.len() - usize::from(trail)];
        if core.iter().all(|t| matches!(t, T::Byte(_))) {
            let lit: Vec<u8> = core
                .iter()
                .map(|t| match t {
                    T::Byte(b) => *b,
                    _ => unreachable!(),
                })
                .collect();
            // Whole characters only: the literal is a run of the pattern's own bytes.
            let lit: Box<str> = String::from_utf8(lit).unwrap_or_default().into();
            return match (lead, trail) {
                (false, false) => Glob::Exact(lit),
                (false, true) => Glob::Prefix(lit),
                (true, false) => Glob::Suffix(lit),
                (true, true) => Glob::Contains(lit),
            };
        }
        let segs = core
            .split(|t| *t == T::Star)
            .map(|seg| {
                seg.iter()
                    .map(|t| match t {
                        T::Byte(b) => WildTok::Byte(*b),
                        _ => WildTok::One,
                    })
                    .collect()
            })
            .collect();
        Glob::Wild(Wild {
            segs,
            star_start: lead,
            star_end: trail,
        })
    }

    pub(crate) fn matches(&self, hay: &str, cased: bool) -> bool {
        let h = hay.as_bytes();
        match self {
            Glob::Exact(p) => bytes_eq(h, p.as_bytes(), cased),
            Glob::Prefix(p) => h.len() >= p.len() && bytes_eq(&h[..p.len()], p.as_bytes(), cased),
            Glob::Suffix(p) => {
                h.len() >= p.len() && bytes_eq(&h[h.len() - p.len()..], p.as_bytes(), cased)
            }
            Glob::Contains(p) => find(h, 0, p.as_bytes(), cased).is_some(),
            Glob::Wild(w) => w.matches(h, cased),
        }
    }
}

fn bytes_eq(a: &[u8], pattern: &[u8], cased: bool) -> bool {
    if cased {
        a == pattern
    } else {
        a.eq_ignore_ascii_case(pattern)
    }
}

/// First position at or after `from` where `pattern` (already lower-case unless `cased`)
/// occurs in `h`.
fn find(h: &[u8], from: usize, pattern: &[u8], cased: bool) -> Option<usize> {
    let Some((&first, _)) = pattern.split_first() else {
        return Some(from);
    };
    if h.len() < pattern.len() {
        return None;
    }
    (from..=h.len() - pattern.len()).find(|&i| {
        let b = if cased {
            h[i]
        } else {
            h[i].to_ascii_lowercase()
        };
        b == first && bytes_eq(&h[i..i + pattern.len()], pattern, cased)
    })
}

impl Wild {
    fn matches(&self, h: &[u8], cased: bool) -> bool {
        let segs = &self.segs;
        let (mut lo, mut hi) = (0, segs.len());
        let mut pos = 0;
        if !self.star_start {
            match seg_at(h, 0, &segs[0], cased) {
                Some(end) => pos = end,
                None => return false,
            }
            lo = 1;
        }
        let mut limit = h.len();
        if !self.star_end {
            if lo == hi {
                // One segment, anchored at both ends.
                return pos == h.len();
            }
            let last = &segs[hi - 1];
            let Some(start) = (pos..=h.len())
                .rev()
                .find(|&s| seg_at(h, s, last, cased) == Some(h.len()))
            else {
                return false;
            };
            limit = start;
            hi -= 1;
        }
        for seg in &segs[lo..hi] {
            match (pos..=limit).find_map(|s| seg_at(h, s, seg, cased).filter(|&e| e <= limit)) {
                Some(end) => pos = end,
                None => return false,
            }
        }
        true
    }
}

/// Where `seg` ends when it matches `h` starting at `start`.
fn seg_at(h: &[u8], start: usize, seg: &[WildTok], cased: bool) -> Option<usize> {
    if h.get(start).is_some_and(|b| b & 0xC0 == 0x80) {
        return None; // not a character boundary
    }
    let mut i = start;
    for tok in seg {
        match *tok {
            WildTok::Byte(p) => {
                let b = *h.get(i)?;
                let b = if cased { b } else { b.to_ascii_lowercase() };
                if b != p {
                    return None;
                }
                i += 1;
            }
            WildTok::One => {
                let b = *h.get(i)?;
                i += match b {
                    0xF0.. => 4,
                    0xE0.. => 3,
                    0xC0.. => 2,
                    _ => 1,
                };
                if i > h.len() {
                    return None;
                }
            }
        }
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str) -> Glob {
        Glob::new(p, false, false, false)
    }

    #[test]
    fn glob_shapes() {
        assert_eq!(glob("AbC"), Glob::Exact("abc".into()));
        assert_eq!(glob("iam:*"), Glob::Prefix("iam:".into()));
        assert_eq!(glob("*.exe"), Glob::Suffix(".exe".into()));
        assert_eq!(glob("*admin*"), Glob::Contains("admin".into()));
        assert_eq!(
            Glob::new("ad*", true, true, false),
            Glob::Contains("ad".into())
        );
        assert_eq!(glob(r"a\*b"), Glob::Exact("a*b".into()));
        assert_eq!(glob(r"C:\Windows"), Glob::Exact(r"c:\windows".into()));
        assert_eq!(glob("*"), Glob::Contains("".into()));
        assert!(matches!(glob("a*b"), Glob::Wild(_)));
    }

    #[test]
    fn glob_matching_is_ascii_case_insensitive() {
        assert!(glob("iam:attach*").matches("IAM:AttachUserPolicy", false));
        assert!(glob("*policy").matches("iam:AttachUserPOLICY", false));
        assert!(glob("*USER*").matches("iam:AttachUserPolicy", false));
        assert!(!Glob::new("*USER*", false, false, true).matches("iam:AttachUserPolicy", true));
        assert!(Glob::new("*User*", false, false, true).matches("iam:AttachUserPolicy", true));
    }

    #[test]
    fn contains_matches_the_whole_value_and_not_a_shorter_one() {
        assert!(
            glob("*admin*").matches("ADMIN", false),
            "as long as the pattern"
        );
        assert!(glob("*admin*").matches("break-glass-admin", false));
        assert!(
            !glob("*admin*").matches("adm", false),
            "shorter than the pattern"
        );
        assert!(!glob("*admin*").matches("", false));
    }

    #[test]
    fn wildcards() {
        let cases = [
            ("a*b", "ab", true),
            ("a*b", "axxb", true),
            ("a*b", "axxbc", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a?c", "aéc", true),
            ("*a?c*", "xxabcxx", true),
            ("?", "é", true),
            ("??", "é", false),
            // A character of three and of four bytes is one `?`.
            ("a?b", "a€b", true),
            ("a?b", "a😀b", true),
            ("a??b", "a😀b", false),
            // `?` starts at a character, never inside one: `€` is not two characters.
            ("*??b*", "€b", false),
            ("*??b*", "x€b", true),
            ("*?b*", "@b", true),
            ("*b?", "abab", false),
            ("*b?", "abbx", true),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("*x*y*", "..x..y..", true),
            ("*x*y*", "..y..x..", false),
        ];
        for (p, h, want) in cases {
            assert_eq!(glob(p).matches(h, false), want, "{p} ~ {h}");
        }
    }

    #[test]
    fn networks() {
        let net = |a: &str, prefix| Net {
            addr: a.parse().unwrap(),
            prefix,
        };
        assert!(net("10.0.0.0", 8).contains("10.200.1.1".parse().unwrap()));
        assert!(!net("10.0.0.0", 8).contains("11.0.0.1".parse().unwrap()));
        assert!(net("0.0.0.0", 0).contains("11.0.0.1".parse().unwrap()));
        assert!(net("10.0.0.1", 32).contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(net("2001:db8::", 32).contains("2001:db8:1::1".parse().unwrap()));
        assert!(!net("2001:db8::", 32).contains("10.0.0.1".parse().unwrap()));
        assert!(!net("2001:db8::", 32).contains("2001:db9::1".parse().unwrap()));
        assert!(net("2001:db8::1", 128).contains("2001:db8::1".parse().unwrap()));
        assert!(!net("2001:db8::1", 128).contains("2001:db8::2".parse().unwrap()));
        assert!(net("::", 0).contains("2001:db9::1".parse().unwrap()));
    }

    #[test]
    fn resetting_between_events_keeps_the_scratch_from_growing() {
        // The engine resets its context after each event: what one event's evaluation put
        // in the scratch arena is not kept for the life of the process.
        let mut cx = EvalCx::default();
        let text = "x".repeat(1024);
        for _ in 0..1000 {
            cx.scratch.alloc_str(&text);
            cx.reset();
        }
        assert!(
            cx.scratch.allocated_bytes() < 64 * 1024,
            "{} bytes held after 1,000 events of 1 KiB",
            cx.scratch.allocated_bytes()
        );
    }

    // Matching semantics, end to end: YAML rule → compiled detection → normalized event.

    use crate::event::Normalizer;
    use crate::rule::RuleSet;

    /// An assumed-role session attaching a policy, MFA on, from 203.0.113.9; failed.
    const IAM: &str = r#"{"eventVersion":"1.09","eventTime":"2024-08-01T11:30:25Z",
        "eventSource":"iam.amazonaws.com","eventName":"AttachUserPolicy","awsRegion":"us-east-1",
        "sourceIPAddress":"203.0.113.9","userAgent":"aws-cli/2.15.0 Python/3.11",
        "errorCode":"AccessDenied","errorMessage":"not authorized",
        "readOnly":false,"eventID":"e-1","recipientAccountId":"900138736586",
        "requestParameters":{"policyArn":"arn:aws:iam::aws:policy/AdministratorAccess",
          "userName":"Mallory","durationSeconds":3600,"tags":["Team:Red","prod"],
          "note":"say \"hi\"","nothing":null},
        "userIdentity":{"type":"AssumedRole","principalId":"AROA13YEHY3VAS32TD341:sess",
          "arn":"arn:aws:sts::900138736586:assumed-role/ops/sess","accountId":"900138736586",
          "accessKeyId":"ASIA9F6MXE9HSYOXYQOS","sessionContext":{"sessionIssuer":{"type":"Role",
          "principalId":"AROA13YEHY3VAS32TD341","arn":"arn:aws:iam::900138736586:role/ops",
          "accountId":"900138736586","userName":"ops"},
          "attributes":{"creationDate":"2024-08-01T11:30:22Z","mfaAuthenticated":"true"}}}}"#;

    /// A 1 MiB S3 read with no source IP (a service on the session's behalf).
    const S3: &str = r#"{"eventVersion":"1.08","eventTime":"2024-08-01T10:00:00Z",
        "eventSource":"s3.amazonaws.com","eventName":"GetObject","readOnly":true,
        "sourceIPAddress":"athena.amazonaws.com",
        "additionalEventData":{"bytesTransferredOut":1048576.0},
        "requestParameters":{"bucketName":"finance","key":"q3.csv"},
        "userIdentity":{"type":"AssumedRole","accountId":"1","accessKeyId":"ASIAANALYST",
          "invokedBy":"athena.amazonaws.com"}}"#;

    /// A GitHub clone with a classic token: scopes `repo`, `read:org`, `workflow`.
    const GITHUB: &str = r#"{"@timestamp":1715677951123,"action":"git.clone","actor":"dana-lee",
        "actor_ip":"203.0.113.24","hashed_token":"k3J9mZq0bX7Yw1vT5uR8sP2oN4lM6kJ3hG9fD1sA0=",
        "org":"example-org","repo":"example-org/payments-api",
        "token_scopes":"repo,read:org, workflow","user_agent":"git/2.45.1",
        "created_at":1715677951123}"#;

    fn compile(body: &str) -> RuleSet {
        let yaml = format!("id: t\n{body}");
        RuleSet::from_yaml("test.yml", &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    fn check(set: &RuleSet, record: &str) -> bool {
        let scratch = Bump::new();
        let event = Normalizer::default()
            .normalize(record.as_bytes(), &scratch)
            .unwrap_or_else(|r| panic!("rejected: {r}"));
        let mut cx = EvalCx::default();
        set.rules[0].detection.matches(&event, &mut cx)
    }

    /// One selection `sel: {<entry>}` with `condition: sel`, against each record.
    fn entry(entry: &str, record: &str) -> bool {
        check(
            &compile(&format!(
                "detection:\n  sel:\n    {entry}\n  condition: sel\n"
            )),
            record,
        )
    }

    #[test]
    fn equality_is_case_insensitive_unless_cased() {
        assert!(entry("action: iam:AttachUserPolicy", IAM));
        assert!(entry("action: IAM:attachuserpolicy", IAM));
        assert!(!entry("action|cased: IAM:attachuserpolicy", IAM));
        assert!(entry("action|cased: iam:AttachUserPolicy", IAM));
        assert!(entry("action.operation: attachuserpolicy", IAM));
        assert!(!entry("action: AttachUserPolicy", IAM));
        assert!(entry("principal.name: OPS", IAM));
    }

    #[test]
    fn values_are_read_as_their_field_s_type() {
        // Flags: true and false, written as YAML booleans or as text in any case.
        assert!(entry("session.mfa: true", IAM));
        assert!(entry("session.mfa: 'TRUE'", IAM));
        assert!(!entry("session.mfa: 'False'", IAM));
        // Numbers: a size is its bytes.
        assert!(entry("bytes: 1MiB", S3));
        assert!(entry("bytes: 1048576", S3));
        assert!(!entry("bytes: 1MB", S3));
        // A closed set's value with a wildcard is a pattern, not checked against the set.
        assert!(entry("operation: 'AD*'", IAM));
        assert!(!entry("operation: 'rea?'", IAM));
    }

    #[test]
    fn lists_mean_any_and_all_means_every() {
        assert!(entry("action: [s3:GetObject, iam:AttachUserPolicy]", IAM));
        assert!(entry(
            "action|in: [s3:GetObject, iam:AttachUserPolicy]",
            IAM
        ));
        assert!(!entry("action|in: [s3:GetObject, s3:PutObject]", IAM));
        assert!(entry(
            "client.user_agent|contains|all: [aws-cli, python]",
            IAM
        ));
        assert!(!entry(
            "client.user_agent|contains|all: [aws-cli, boto]",
            IAM
        ));
        assert!(entry("client.user_agent|contains: [boto, PYTHON]", IAM));
    }

    #[test]
    fn text_modifiers_and_wildcards() {
        assert!(entry("client.user_agent|startswith: AWS-CLI/", IAM));
        assert!(!entry("client.user_agent|startswith: python", IAM));
        assert!(entry("client.user_agent|endswith: /3.11", IAM));
        assert!(entry("client.user_agent|contains: cli/2", IAM));
        assert!(entry("action: 'iam:Attach*'", IAM));
        assert!(entry("action: '*:Attach?serPolicy'", IAM));
        assert!(!entry("action: 'iam:Detach*'", IAM));
        assert!(entry(r"action|contains: 'Attach*Policy'", IAM));
        assert!(!entry(r"action: 'iam:Attach\*'", IAM));
    }

    #[test]
    fn one_mistake_one_error_and_a_repeated_modifier_is_the_same_one() {
        for (e, want) in [
            (
                "client.user_agent|contains|startswith: aws",
                "4:32: modifier `startswith` cannot be combined with `contains`",
            ),
            (
                "bytes|gt|lte: 5",
                "4:14: modifier `lte` cannot be combined with `gt`",
            ),
            // One mistake, one error: not also "`contains` does not apply to `bytes`".
            (
                "bytes|contains|startswith: 5",
                "4:20: modifier `startswith` cannot be combined with `contains`",
            ),
            (
                "client.user_agent|base64: '5*'",
                "4:31: a value with a `*` or `?` wildcard cannot be encoded (escape them as \
                 `\\*`, `\\?` to encode the characters)",
            ),
        ] {
            assert_eq!(load_error(e), want, "{e}");
        }
        assert!(entry("client.user_agent|contains|contains: cli/2", IAM));
        assert!(!entry("client.user_agent|contains|contains: cli/3", IAM));
    }

    #[test]
    fn null_alone_means_the_field_is_missing_and_nothing_else() {
        for e in [
            "principal.name|all: null",
            "scopes|every: null",
            "principal.name|cased: null",
            "principal.name|neq: null",
            "principal.name|base64: null",
            "principal.name|contains: null",
            "principal.name: [null]",
            "principal.name: [null, ops]",
        ] {
            let got = load_error(e);
            assert!(
                got.contains(": null is only allowed alone") && !got.contains('\n'),
                "{e}: {got}"
            );
        }
    }

    #[test]
    fn regexes_are_case_insensitive_unless_cased() {
        assert!(entry(r"client.user_agent|re: '^aws-cli/2\.\d+'", IAM));
        assert!(entry(r"client.user_agent|re: 'PYTHON/3'", IAM));
        assert!(!entry(r"client.user_agent|cased|re: 'PYTHON/3'", IAM));
        assert!(entry(r"action|re: ['^s3:', '^iam:Attach']", IAM));
        assert!(!entry(r"action|re|all: ['^s3:', '^iam:Attach']", IAM));
    }

    #[test]
    fn numbers_and_sizes() {
        assert!(entry("bytes|gte: 1MiB", S3));
        assert!(!entry("bytes|gt: 1MiB", S3));
        assert!(entry("bytes|lt: 2MB", S3));
        // The S3 read is 1 MiB exactly: the edges of `lt` and `lte`.
        assert!(!entry("bytes|lt: 1MiB", S3));
        assert!(entry("bytes|lte: 1MiB", S3));
        assert!(!entry("bytes|lte: 1048575", S3));
        assert!(entry("bytes: 1048576", S3));
        assert!(!entry("bytes: 1048577", S3));
        // A missing number matches no comparison.
        assert!(!entry("bytes|lt: 10", IAM));
        assert!(entry("raw.requestParameters.durationSeconds|gt: 600", IAM));
        assert!(entry("raw.requestParameters.durationSeconds: 3600", IAM));
        assert!(entry("raw.requestParameters.durationSeconds: '3600'", IAM));
    }

    #[test]
    fn flags_and_exists() {
        assert!(entry("session.mfa: true", IAM));
        assert!(!entry("session.mfa: false", IAM));
        assert!(entry("session.mfa: 'TRUE'", IAM));
        assert!(entry("network.ip|exists: true", IAM));
        assert!(entry("network.ip|exists: false", S3));
        assert!(!entry("network.ip|exists: true", S3));
        assert!(entry("network.ip: null", S3));
        assert!(!entry("network.ip: null", IAM));
        assert!(entry("raw.requestParameters.nothing|exists: false", IAM));
        assert!(entry("raw.requestParameters.absent|exists: false", IAM));
        assert!(entry("raw.requestParameters.userName|exists: true", IAM));
    }

    #[test]
    fn a_missing_field_matches_nothing() {
        for e in [
            "network.ip|cidr: 0.0.0.0/0",
            "network.ip|startswith: ''",
            "network.ip|re: '.*'",
            "agent.task: '*'",
            "raw.nope: '*'",
        ] {
            assert!(!entry(e, S3), "{e}");
        }
    }

    #[test]
    fn addresses_and_networks() {
        assert!(entry("network.ip: 203.0.113.9", IAM));
        assert!(!entry("network.ip: 203.0.113.10", IAM));
        assert!(entry("network.ip|cidr: 203.0.113.0/24", IAM));
        assert!(entry("network.ip|cidr: [10.0.0.0/8, 203.0.113.0/24]", IAM));
        assert!(!entry("network.ip|cidr: [10.0.0.0/8, 192.168.0.0/16]", IAM));
        assert!(entry("network.ip|startswith: '203.0.'", IAM));
        assert!(entry("network.ip: '203.0.113.*'", IAM));
    }

    #[test]
    fn list_values_match_when_any_item_does() {
        assert!(entry("scopes: workflow", GITHUB));
        assert!(entry("scopes: READ:ORG", GITHUB));
        assert!(!entry("scopes: admin:org", GITHUB));
        assert!(entry("scopes|all: [repo, workflow]", GITHUB));
        assert!(!entry("scopes|all: [repo, admin:org]", GITHUB));
        assert!(entry("scopes|startswith: 'read:'", GITHUB));
        assert!(!entry("scopes|exists: false", GITHUB));
        assert!(entry("scopes|exists: false", S3));
    }

    #[test]
    fn every_asks_each_item_of_a_list_valued_field() {
        // tags: ["Team:Red", "prod"]
        assert!(entry(
            "raw.requestParameters.tags|every|in: [prod, 'team:red']",
            IAM
        ));
        assert!(!entry("raw.requestParameters.tags|every: prod", IAM));
        assert!(entry(
            "raw.requestParameters.tags|every|contains: [r, o]",
            IAM
        ));
        assert!(!entry(
            "raw.requestParameters.tags|every|cased|contains: [r, o]",
            IAM
        ));
        // A single value is a list of one; a missing field holds for nothing.
        assert!(entry("raw.requestParameters.userName|every: Mallory", IAM));
        assert!(!entry("raw.requestParameters.nothing|every: x", IAM));
        assert!(!entry("raw.requestParameters.absent|every: x", IAM));
        assert!(entry("scopes|every: [repo, 'read:org', workflow]", GITHUB));
        assert!(!entry("scopes|every: [repo, workflow]", GITHUB));
        let e = RuleSet::from_yaml(
            "t.yml",
            "id: t\ndetection:\n  sel: {raw.a|every|exists: true}\n  condition: sel\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("`every` cannot be used with `exists`"),
            "{e}"
        );
        let mut seen = 0;
        assert!(!raw_array_every(r#"[1, 2, 3]"#, &mut |v| {
            seen += 1;
            v.get() != "2"
        }));
        assert_eq!(seen, 2, "stops at the first item that fails");
        assert!(!raw_array_every("[]", &mut |_| true));
    }

    #[test]
    fn raw_vendor_values() {
        assert!(entry("raw.requestParameters.userName: mallory", IAM));
        assert!(entry(
            "raw.requestParameters.policyArn|endswith: /AdministratorAccess",
            IAM
        ));
        assert!(entry(r#"raw.requestParameters.note: 'say "hi"'"#, IAM));
        assert!(entry("raw.requestParameters.tags: prod", IAM));
        assert!(entry("raw.requestParameters.tags|startswith: 'team:'", IAM));
        assert!(entry(
            "raw.requestParameters.tags|all: [prod, 'team:red']",
            IAM
        ));
        assert!(!entry("raw.requestParameters.tags|all: [prod, dev]", IAM));
        assert!(entry("raw.sourceIPAddress|cidr: 203.0.113.0/24", IAM));
        assert!(entry("raw.readOnly: false", IAM));
        assert!(entry(
            "raw.userIdentity.sessionContext.sessionIssuer.userName: ops",
            IAM
        ));
    }

    #[test]
    fn selections_conditions_and_precedence() {
        let rule = |cond: &str| {
            compile(&format!(
                "detection:\n  sel_iam: {{action.service: iam}}\n  sel_s3: {{action.service: s3}}\n  \
                 failed: {{outcome: failure}}\n  _helper: {{source: github}}\n  condition: {cond}\n"
            ))
        };
        let cases = [
            ("sel_iam and failed", true, false),
            ("sel_s3 or failed", true, true),
            ("not failed", false, true),
            // not > and > or: `sel_s3 or (sel_iam and (not failed))`.
            ("sel_s3 or sel_iam and not failed", false, true),
            ("(sel_s3 or sel_iam) and not failed", false, true),
            ("1 of sel_*", true, true),
            ("all of sel_*", false, false),
            ("1 of them", true, true),
            ("all of them", false, false),
            ("1 of sel_* and not 1 of _*", true, true),
            ("NOT sel_iam AND sel_s3", false, true),
        ];
        for (cond, iam, s3) in cases {
            let set = rule(cond);
            assert_eq!((check(&set, IAM), check(&set, S3)), (iam, s3), "{cond}");
        }
    }

    #[test]
    fn a_list_of_maps_is_any_and_a_map_is_all() {
        let set = compile(
            "detection:\n  sel:\n    - {action.service: s3, bytes|gt: 10}\n    \
             - {action.service: iam, outcome: success}\n  condition: sel\n",
        );
        assert!(check(&set, S3));
        assert!(!check(&set, IAM));
    }

    #[test]
    fn lists_and_macros() {
        let set = compile(
            "lists:\n  admin_actions: [iam:AttachUserPolicy, $more]\n  more: [iam:PutRolePolicy]\n\
             macros:\n  is_s3: {action.service: s3}\n  s3_or_admin: is_s3 or admin\n  \
             admin: {action|in: $admin_actions}\n\
             detection:\n  failed: {outcome: failure}\n  condition: s3_or_admin and not failed or is_s3\n",
        );
        assert!(check(&set, S3));
        assert!(!check(&set, IAM));
        let set = compile(
            "lists:\n  admin_actions: [iam:AttachUserPolicy]\n\
             detection:\n  sel: {action|in: [$admin_actions, s3:GetObject]}\n  condition: sel\n",
        );
        assert!(check(&set, S3) && check(&set, IAM));
        // `$$` is a literal dollar.
        let set = compile("detection:\n  sel: {principal.name: $$ops}\n  condition: sel\n");
        assert!(!check(&set, IAM));
    }

    #[test]
    fn exceptions_veto_the_rule_and_its_steps() {
        let body = "detection:\n  any_call: {action|exists: true}\n  condition: any_call\n\
                    exceptions:\n  - name: trusted_analytics\n    match: {network.via_service: athena.amazonaws.com}\n";
        let set = compile(body);
        assert!(check(&set, IAM));
        assert!(!check(&set, S3));
        // Falco's tuple form.
        let set = compile(
            "detection:\n  any_call: {action|exists: true}\n  condition: any_call\n\
             exceptions:\n  - name: ops_attach\n    fields: [principal.name, action.operation]\n    \
             comps: [=, in]\n    values: [[ops, [AttachUserPolicy, PutRolePolicy]]]\n",
        );
        assert!(!check(&set, IAM));
        assert!(check(&set, S3));
        // Step conditions see the exceptions too.
        let set = compile(
            "detection:\n  s3: {action.service: s3}\n\
             exceptions:\n  - {name: athena, match: {network.via_service: athena.amazonaws.com}}\n\
             session:\n  sequence:\n    maxspan: 5m\n    steps:\n      - match: s3\n",
        );
        let scratch = Bump::new();
        let event = Normalizer::default()
            .normalize(S3.as_bytes(), &scratch)
            .unwrap();
        let rule = &set.rules[0];
        let Some(crate::rule::SessionLogic::Sequence { steps, .. }) = &rule.session else {
            panic!("a sequence");
        };
        let mut cx = EvalCx::default();
        assert!(!rule.detection.eval(&steps[0].condition, &event, &mut cx));
    }

    /// The IAM record with the policy attached to the caller itself (`OPS`, the session's
    /// principal `ops` in other case), and a few vendor fields to compare with.
    fn iam_to_itself() -> String {
        IAM.replace(r#""userName":"Mallory""#, r#""userName":"OPS""#)
            .replace(
                r#""nothing":null"#,
                r#""nothing":null,"want":"IAM:attachuserpolicy","env":"PROD","ip":"::ffff:203.0.113.9","prefix":"ARN:aws:iam:""#,
            )
    }

    #[test]
    fn fieldref_compares_two_fields_of_the_event() {
        let own = iam_to_itself();
        // Equal (case-insensitively), different, cased.
        assert!(entry("resource.name|fieldref: principal.name", &own));
        assert!(!entry("resource.name|fieldref: principal.name", IAM));
        assert!(!entry("resource.name|cased|fieldref: principal.name", &own));
        assert!(entry(
            "raw.userIdentity.sessionContext.sessionIssuer.userName|fieldref|cased: principal.name",
            &own
        ));
        // Missing on either side.
        assert!(!entry("agent.task|fieldref: principal.name", &own));
        assert!(!entry("principal.name|fieldref: agent.task", &own));
        assert!(!entry(
            "resource.name|fieldref: raw.requestParameters.nothing",
            &own
        ));
        assert!(!entry("network.ip|fieldref: raw.sourceIPAddress", S3));
        // Any of several fields, or with `all` every one.
        assert!(entry(
            "resource.name|fieldref: [principal.id, principal.name]",
            &own
        ));
        assert!(!entry(
            "resource.name|fieldref|all: [principal.id, principal.name]",
            &own
        ));
        assert!(entry(
            "resource.name|fieldref|all: [principal.name, raw.requestParameters.userName]",
            &own
        ));
    }

    #[test]
    fn fieldref_compares_every_kind_of_value() {
        let own = iam_to_itself();
        // A raw field on either side.
        assert!(entry(
            "raw.requestParameters.userName|fieldref: principal.name",
            &own
        ));
        assert!(entry(
            "principal.name|fieldref: raw.requestParameters.userName",
            &own
        ));
        // `service:operation`.
        assert!(entry("action|fieldref: raw.requestParameters.want", &own));
        assert!(!entry(
            "action|cased|fieldref: raw.requestParameters.want",
            &own
        ));
        assert!(entry("raw.requestParameters.want|fieldref: action", &own));
        // Addresses by value, numbers by value.
        assert!(entry("network.ip|fieldref: raw.sourceIPAddress", &own));
        assert!(entry("network.ip|fieldref: raw.requestParameters.ip", &own));
        assert!(entry(
            "bytes|fieldref: raw.additionalEventData.bytesTransferredOut",
            S3
        ));
        assert!(!entry("bytes|fieldref: time", S3));
        // A number against a vendor string holding it in another form: compared as numbers.
        let sized = S3.replace(
            r#"{"bytesTransferredOut":1048576.0}"#,
            r#"{"bytesTransferredOut":1048576.0,"declared":"1048576.0"}"#,
        );
        assert!(entry(
            "bytes|fieldref: raw.additionalEventData.declared",
            &sized
        ));
        assert!(entry(
            "raw.additionalEventData.declared|fieldref: bytes",
            &sized
        ));
        // A vendor array: any element.
        assert!(entry(
            "raw.requestParameters.tags|fieldref: raw.requestParameters.env",
            &own
        ));
        // A list-valued field: any item.
        let github = GITHUB.replace(r#""org":"example-org""#, r#""org":"Workflow""#);
        assert!(entry("scopes|fieldref: raw.org", &github));
        assert!(entry("raw.org|fieldref: scopes", &github));
        assert!(!entry("scopes|fieldref: raw.org", GITHUB));
        assert!(!entry("scopes|cased|fieldref: raw.org", &github));
        // Session keys, as rendered.
        let scratch = Bump::new();
        let key = Normalizer::default()
            .normalize(IAM.as_bytes(), &scratch)
            .unwrap()
            .session
            .key
            .to_string();
        let keyed = IAM.replace(r#""nothing":null"#, &format!(r#""key":"{key}""#));
        assert!(entry(
            "session.key|fieldref: raw.requestParameters.key",
            &keyed
        ));
        assert!(entry(
            "raw.requestParameters.key|fieldref: session.key",
            &keyed
        ));
        assert!(!entry(
            "session.key|fieldref: raw.requestParameters.key",
            IAM
        ));
        assert!(!entry("session.key|fieldref: lineage.child", &keyed));
    }

    #[test]
    fn fieldref_with_a_text_position() {
        let own = iam_to_itself();
        let arn = "raw.userIdentity.sessionContext.sessionIssuer.arn";
        assert!(entry(
            &format!("{arn}|fieldref|endswith: principal.name"),
            &own
        ));
        assert!(entry(
            &format!("{arn}|contains|fieldref: principal.name"),
            &own
        ));
        assert!(!entry(
            &format!("{arn}|fieldref|startswith: principal.name"),
            &own
        ));
        let prefix = "raw.requestParameters.prefix";
        assert!(entry(&format!("{arn}|fieldref|startswith: {prefix}"), &own));
        assert!(!entry(
            &format!("{arn}|fieldref|startswith|cased: {prefix}"),
            &own
        ));
        assert!(!entry(&format!("{arn}|fieldref|endswith: {prefix}"), &own));
        // The referenced value is text, not a pattern.
        let star = own.replace(r#""env":"PROD""#, r#""env":"*""#);
        assert!(!entry(
            "client.user_agent|fieldref|contains: raw.requestParameters.env",
            &star
        ));
        assert!(entry(
            "client.user_agent|fieldref|contains: raw.requestParameters.env",
            &own.replace(r#""env":"PROD""#, r#""env":"CLI/2""#)
        ));
    }

    #[test]
    fn a_session_granting_privileges_to_itself() {
        let set = compile(
            "detection:\n  grant:\n    action|in: [iam:AttachUserPolicy, iam:PutUserPolicy, \
             iam:AttachRolePolicy, iam:PutRolePolicy, iam:CreateAccessKey]\n  \
             to_itself:\n    resource.name|fieldref: principal.name\n  \
             condition: grant and to_itself\n",
        );
        assert!(check(&set, &iam_to_itself()));
        assert!(!check(&set, IAM));
        assert!(!check(&set, S3));
    }

    #[test]
    fn fieldref_errors() {
        let errors = |entry: &str| {
            let yaml = format!("id: t\ndetection:\n  sel:\n    {entry}\n  condition: sel\n");
            let e = RuleSet::from_yaml("test.yml", &yaml).expect_err(entry);
            e.errors
                .iter()
                .map(|e| format!("{}:{}: {}", e.line, e.col, e.message))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            errors("resource.name|fieldref: principal.nam"),
            ["4:29: unknown field `principal.nam` (did you mean `principal.name`?)"]
        );
        assert_eq!(
            errors("resource.name|fieldref: [principal.name, 5, null]"),
            [
                "4:46: `fieldref` takes field names, not `5`",
                "4:49: `fieldref` takes field names, not `null`",
            ]
        );
        for (e, pos, op) in [
            ("bytes|fieldref|gt: records", "4:20", "gt"),
            ("network.ip|cidr|fieldref: raw.ip", "4:21", "cidr"),
            ("network.ip|exists|fieldref: raw.ip", "4:23", "exists"),
            ("network.ip|fieldref|re: raw.ip", "4:25", "re"),
        ] {
            assert_eq!(
                errors(e),
                [format!(
                    "{pos}: modifier `{op}` cannot be combined with `fieldref`: fieldref \
                     compares for equality only (or with startswith, endswith, contains)"
                )],
                "{e}"
            );
        }
        assert_eq!(
            errors("bytes|fieldref|contains: records"),
            [
                "4:11: modifier `contains` does not apply to `bytes` (it is not text: use \
              `bytes|fieldref` alone for equality)"
            ]
        );
    }

    /// The IAM record with its `note` parameter replaced by `note` (JSON string contents).
    fn iam_note(note: &str) -> String {
        IAM.replace(r#""note":"say \"hi\"""#, &format!(r#""note":"{note}""#))
    }

    fn load_error(entry: &str) -> String {
        let yaml = format!("id: t\ndetection:\n  sel:\n    {entry}\n  condition: sel\n");
        RuleSet::from_yaml("test.yml", &yaml)
            .expect_err(entry)
            .errors
            .iter()
            .map(|e| format!("{}:{}: {}", e.line, e.col, e.message))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_transform_is_refused_on_a_field_that_is_not_text() {
        for (e, want) in [
            (
                "bytes|base64: 5",
                "4:11: `base64` rewrites text values: `bytes` is a number",
            ),
            (
                "session.mfa|wide|base64offset|contains: 'true'",
                "4:17: `wide` rewrites text values: `session.mfa` is a flag\n\
                 4:22: `base64offset` rewrites text values: `session.mfa` is a flag",
            ),
            (
                "network.ip|windash: 198.51.100.7",
                "4:16: `windash` rewrites text values: `network.ip` is an address",
            ),
        ] {
            assert_eq!(load_error(e), want, "{e}");
        }
        // Text and vendor fields take them.
        assert!(RuleSet::from_yaml(
            "t.yml",
            "id: t\ndetection:\n  sel:\n    client.user_agent|base64offset|contains: curl\n    \
             raw.requestParameters.note|base64: whoami\n  condition: sel\n"
        )
        .is_ok());
    }

    #[test]
    fn neq_is_none_of_the_values_of_a_present_field() {
        assert!(entry("action.operation|neq: DetachUserPolicy", IAM));
        assert!(!entry(
            "action.operation|neq: [DetachUserPolicy, attachuserpolicy]",
            IAM
        ));
        assert!(entry("action.operation|cased|neq: attachuserpolicy", IAM));
        assert!(entry("client.user_agent|contains|neq: boto", IAM));
        assert!(!entry(
            "client.user_agent|contains|neq: [boto, python]",
            IAM
        ));
        // A missing field is not "different": it matches nothing, as everywhere.
        assert!(!entry("agent.task|neq: x", IAM));
        assert!(!entry("raw.requestParameters.nothing|neq: x", IAM));
        // A list-valued field: no item is any of the values.
        assert!(!entry("raw.requestParameters.tags|neq: prod", IAM));
        assert!(entry("raw.requestParameters.tags|neq: dev", IAM));
        // Two fields that differ; both must be there.
        assert!(entry("resource.name|fieldref|neq: principal.name", IAM));
        assert!(!entry(
            "resource.name|fieldref|neq: principal.name",
            &iam_to_itself()
        ));
        assert!(!entry("resource.name|fieldref|neq: agent.task", IAM));
        for (e, want) in [
            (
                "action|neq|all: [a, b]",
                "4:5: `neq` cannot be combined with `all",
            ),
            (
                "action|neq|exists: true",
                "4:5: `neq` cannot be combined with `exists",
            ),
            ("bytes|neq|gt: 5", "4:5: `neq` cannot be combined with `gt`"),
        ] {
            let got = load_error(e);
            assert!(got.starts_with(want), "{e}: {got}");
        }
    }

    #[test]
    fn windash_matches_each_spelling_of_a_switch() {
        let rule = "raw.requestParameters.note|windash|contains: ' -enc '";
        for line in [
            "powershell -enc ZQB4AA",
            "powershell /enc ZQB4AA",
            "powershell –enc ZQB4AA",
        ] {
            assert!(entry(rule, &iam_note(line)), "{line}");
        }
        assert!(!entry(rule, &iam_note("powershell enc ZQB4AA")));
        assert!(!entry(
            "raw.requestParameters.note|contains: ' -enc '",
            &iam_note("powershell /enc ZQB4AA")
        ));
    }

    #[test]
    fn base64_forms_of_a_value() {
        let script =
            "cG93ZXJzaGVsbCBpZXggKE5ldy1PYmplY3QgTmV0LldlYkNsaWVudCkuRG93bmxvYWRTdHJpbmcoMSk=";
        let shifted =
            "eHBvd2Vyc2hlbGwgaWV4IChOZXctT2JqZWN0IE5ldC5XZWJDbGllbnQpLkRvd25sb2FkU3RyaW5nKDEp";
        let rule = "raw.requestParameters.note|base64offset|contains: 'Net.WebClient'";
        assert!(entry(rule, &iam_note(script)));
        assert!(entry(rule, &iam_note(shifted)));
        assert!(
            !entry(rule, &iam_note("x Net.WebClient")),
            "the plain text is not encoded"
        );
        assert!(!entry(
            "raw.requestParameters.note|contains: 'Net.WebClient'",
            &iam_note(script)
        ));
        assert!(entry(
            "raw.requestParameters.note|base64: whoami",
            &iam_note("d2hvYW1p")
        ));
        // PowerShell's -EncodedCommand is base64 of UTF-16LE.
        let encoded = "YQAgAEkARQBYACAAKABOAGUAdwAtAE8AYgBqAGUAYwB0ACAATgBlAHQALgBXAGUAYgBDAGwAaQBlAG4AdAApAA==";
        assert!(entry(
            "raw.requestParameters.note|wide|base64offset|contains: 'IEX (New-Object'",
            &iam_note(encoded)
        ));
        assert_eq!(
            load_error("raw.requestParameters.note|base64|contains: 'who*'"),
            "4:49: a value with a `*` or `?` wildcard cannot be encoded (escape them as `\\*`, \
             `\\?` to encode the characters)"
        );
        assert_eq!(
            load_error("raw.a|re|base64: x"),
            "4:14: `base64` rewrites text values: it cannot be used with `re`"
        );
    }

    #[test]
    fn regex_flags() {
        let two_lines = iam_note(r"first\nSecond");
        assert!(!entry(
            r"raw.requestParameters.note|re: '^second$'",
            &two_lines
        ));
        assert!(entry(
            r"raw.requestParameters.note|re|m: '^second$'",
            &two_lines
        ));
        assert!(!entry(
            r"raw.requestParameters.note|re: 'first.second'",
            &two_lines
        ));
        assert!(entry(
            r"raw.requestParameters.note|re|s: 'first.second'",
            &two_lines
        ));
        assert!(entry(
            r"raw.requestParameters.note|re|i: 'FIRST'",
            &two_lines
        ));
        assert_eq!(
            load_error("raw.a|contains|i: x"),
            "4:20: `i` is a flag of `re` (`re|i`)"
        );
        assert_eq!(
            load_error("raw.a|re|i|cased: x"),
            "4:14: `re|i` is case-insensitive and `cased` is not: use one"
        );
    }

    #[test]
    fn keywords_are_searched_for_in_every_string_of_the_record() {
        let keywords = |body: &str| compile(&format!("detection:\n{body}  condition: keywords\n"));
        let set = keywords("  keywords:\n    - AdministratorAccess\n");
        assert!(check(&set, IAM) && !check(&set, S3));
        // Any case, wildcards, nested strings, unescaped text.
        for word in [
            "administratoraccess",
            "'arn:aws:iam::*:policy/Admin*'",
            "role/ops",
            r#"'say "hi"'"#,
        ] {
            assert!(
                check(&keywords(&format!("  keywords: [{word}]\n")), IAM),
                "{word}"
            );
        }
        // Keys and numbers are not searched.
        for word in ["mfaAuthenticated", "3600"] {
            assert!(
                !check(&keywords(&format!("  keywords: [{word}]\n")), IAM),
                "{word}"
            );
        }
        // One keyword alone, any of several, every one with `|all`.
        assert!(check(&keywords("  keywords: aws-cli\n"), IAM));
        assert!(check(&keywords("  keywords: [boto, aws-cli]\n"), IAM));
        assert!(check(
            &keywords("  keywords:\n    '|all': [aws-cli, AdministratorAccess]\n"),
            IAM
        ));
        assert!(!check(
            &keywords("  keywords:\n    '|all': [aws-cli, boto]\n"),
            IAM
        ));
        // A list used as keywords and as a field's values: each its own test.
        let set = compile(
            "lists:\n  words: [aws-cli]\ndetection:\n  keywords: [$words]\n  \
             agent: {raw.userAgent: $words}\n  condition: keywords and not agent\n",
        );
        assert!(
            check(&set, IAM),
            "`aws-cli` is in the user agent, not all of it"
        );
        for (modifier, value) in [("gt", "5"), ("every", "a"), ("fieldref", "principal.name")] {
            assert_eq!(
                load_error(&format!("'|{modifier}': {value}")),
                format!(
                    "4:5: a keyword is searched for in the text of the record: `{modifier}` does \
                     not apply (use a field)"
                )
            );
        }
        let e = RuleSet::from_yaml(
            "t.yml",
            "id: t\ndetection:\n  sel: [a, {action: x}]\n  condition: sel\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("t.yml:3:8: rule `t`: selection `sel` mixes"),
            "{e}"
        );
    }

    #[test]
    fn a_sigma_filter_adds_its_condition_to_the_rules_it_names() {
        let rule =
            "title: Policy attached\nid: r1\nlogsource: {product: aws, service: cloudtrail}\n\
                    detection:\n  sel: {eventName: AttachUserPolicy}\n  condition: sel\n";
        let filter = "title: Ops may\nlogsource: {product: aws}\nfilter:\n  rules: [r1]\n  \
                      ops:\n    userIdentity.sessionContext.sessionIssuer.userName: ops\n  \
                      condition: not ops\n";
        let alone = RuleSet::from_yaml("t.yml", rule).unwrap();
        assert!(check(&alone, IAM));
        let filtered = RuleSet::from_yaml("t.yml", &format!("{rule}---\n{filter}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(filtered.rules.len(), 1, "a filter is not a rule");
        assert!(!check(&filtered, IAM), "the filter drops ops' own calls");
        let other = IAM.replace(r#""userName":"ops""#, r#""userName":"dev""#);
        assert!(check(&filtered, &other));
        // A condition without `not` keeps only what it matches (pySigma's `(rule) and (filter)`).
        let keep = filter.replace("condition: not ops", "condition: ops");
        let kept = RuleSet::from_yaml("t.yml", &format!("{rule}---\n{keep}")).unwrap();
        assert!(check(&kept, IAM) && !check(&kept, &other));
        // `rules: any` takes every rule the logsource covers; a filter may use `1 of`.
        let any = filter
            .replace("rules: [r1]", "rules: any")
            .replace("condition: not ops", "condition: not 1 of o*");
        let set = RuleSet::from_yaml("t.yml", &format!("{rule}---\n{any}")).unwrap();
        assert!(!check(&set, IAM) && check(&set, &other));
    }

    #[test]
    fn raw_arrays_are_scanned_without_collecting() {
        let mut buf = String::new();
        let mut seen = Vec::new();
        let hit = raw_array_any(r#"["a", 2, "c\"d", true]"#, &mut buf, &mut |s| {
            seen.push(format!("{s:?}"));
            matches!(s, Scalar::Text("c\"d"))
        });
        assert!(hit);
        assert_eq!(seen.len(), 3, "{seen:?}");
    }
}
