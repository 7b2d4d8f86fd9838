//! `Fields`: one JSON object read shallowly, its values kept as unparsed raw JSON.
//!
//! Source detection and every adapter start from the record's top-level `Fields`: one pass over
//! the bytes finds each key and the extent of its value, without building a tree. Adapters then
//! parse only the values they use, into borrowed types. The same type serves raw vendor-field
//! access by path (`raw.userIdentity.type`), so a rule can use a field the event model does not
//! name.
//!
//! The scalar readers are lenient in the ways SIEM pipelines require: numbers that arrive as
//! strings, booleans as `"true"`, nested objects re-encoded as JSON strings (the Log Analytics /
//! Sentinel shape). Embedded JSON is unescaped into the caller's scratch arena so that everything
//! still borrows with the record's lifetime.

use std::fmt;

use bumpalo::Bump;
use std::marker::PhantomData;

use serde::de::value::{BorrowedStrDeserializer, MapAccessDeserializer, StringDeserializer};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use smallvec::SmallVec;

use super::reject::Reject;
use super::text::Text;

/// The members of one JSON object, in input order, values unparsed. The member table lives in
/// the scratch arena the object was read with, so a `Fields` is two words, cheap to move.
#[derive(Clone, Copy, Default)]
pub struct Fields<'a> {
    entries: &'a [(&'a str, Slot<'a>)],
}

/// Members read before they are moved into the arena; more spill to the heap.
type Entries<'a> = SmallVec<[(&'a str, Slot<'a>); 32]>;

/// A member's value: raw JSON, or — for a member the first pass read straight into a typed
/// value (`Capture`) — the extent of its JSON text, read as raw JSON only when asked for.
#[derive(Clone, Copy)]
enum Slot<'a> {
    Raw(&'a RawValue),
    Taken(&'a str),
}

impl<'a> Slot<'a> {
    fn raw(self) -> Option<&'a RawValue> {
        match self {
            Slot::Raw(raw) => Some(raw),
            // The extent was validated by the typed read; reading it again cannot fail.
            Slot::Taken(json) => serde_json::from_str(json).ok(),
        }
    }
}

/// A hook into the first pass: reads chosen top-level members straight into typed values, so
/// that an adapter does not parse them a second time from raw JSON.
pub trait Capture<'de> {
    /// Called for each member whose key needed no unescaping, before its value is read, with
    /// the members read so far. Returns true when it consumed the value (`map.next_value*`).
    fn capture<A: MapAccess<'de>>(
        &mut self,
        key: &str,
        seen: &Fields<'_>,
        map: &mut A,
    ) -> Result<bool, A::Error>;
}

/// The hook that captures nothing.
pub struct NoCapture;

impl<'de> Capture<'de> for NoCapture {
    #[inline(always)]
    fn capture<A: MapAccess<'de>>(
        &mut self,
        _: &str,
        _: &Fields<'_>,
        _: &mut A,
    ) -> Result<bool, A::Error> {
        Ok(false)
    }
}

impl<'a> Fields<'a> {
    /// Reads a JSON object shallowly, its member table (and any key that needed unescaping)
    /// allocated in `scratch`. Errors are classified into reject reasons.
    pub fn parse(json: &'a str, scratch: &'a Bump) -> Result<Self, Reject> {
        Self::read(json, scratch, &mut NoCapture).map_err(|e| Reject::from_json(&e))
    }

    /// Reads a JSON object shallowly, letting `capture` read chosen members into typed values.
    /// Any error (a malformed record, or a captured member of an unexpected type) is returned
    /// unclassified: callers then read the record again with `parse`, which classifies it.
    pub fn parse_capturing<C: Capture<'a>>(
        json: &'a str,
        scratch: &'a Bump,
        capture: &mut C,
    ) -> Result<Self, serde_json::Error> {
        Self::read(json, scratch, capture)
    }

    fn read<C: Capture<'a>>(
        json: &'a str,
        scratch: &'a Bump,
        capture: &mut C,
    ) -> Result<Self, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let fields = de.deserialize_map(FieldsVisitor {
            input: json,
            scratch,
            capture,
        })?;
        de.end()?;
        Ok(fields)
    }

    /// The value of `key`. With duplicate keys the last one wins, as in most JSON readers.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| same_key(k, key))
            .and_then(|(_, v)| v.raw())
    }

    /// [`Self::get`], or else the member whose key differs only in ASCII case: rule paths
    /// (`raw.…`, Sigma's vendor field names) meet records whose casing varies by pipeline
    /// (Azure's `ResultType` beside `resultType`, data lakes that lower-case every column).
    pub fn get_any_case(&self, key: &str) -> Option<&'a RawValue> {
        self.get(key).or_else(|| {
            self.entries
                .iter()
                .rev()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .and_then(|(_, v)| v.raw())
        })
    }

    /// The position of the member `get(key)` reads.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().rposition(|(k, _)| same_key(k, key))
    }

    /// The position of the member `value(key)` reads: none when it is absent or `null`.
    pub fn value_position(&self, key: &str) -> Option<usize> {
        let position = self.position(key)?;
        let json = match self.entries[position].1 {
            Slot::Raw(raw) => raw.get(),
            Slot::Taken(json) => json,
        };
        (json != "null").then_some(position)
    }

    /// The value of `key`, unless it is absent or `null`.
    pub fn value(&self, key: &str) -> Option<&'a RawValue> {
        self.get(key).filter(|v| v.get() != "null")
    }

    pub fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a RawValue)> + 'a {
        self.entries
            .iter()
            .filter_map(|(k, v)| Some((*k, v.raw()?)))
    }

    /// A string field; numbers and booleans are returned as their literal text.
    pub fn text(&self, key: &str) -> Result<Option<Text<'a>>, Reject> {
        self.value(key).map_or(Ok(None), |v| raw_text(v, key))
    }

    /// A string field that must be present and not empty.
    pub fn required_text(&self, key: &str) -> Result<Text<'a>, Reject> {
        match self.text(key)? {
            Some(t) if !t.is_empty() => Ok(t),
            _ => Err(Reject::invalid_field(key, "missing")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, Reject> {
        self.value(key).map_or(Ok(None), |v| raw_bool(v, key))
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, Reject> {
        self.value(key).map_or(Ok(None), |v| raw_u64(v, key))
    }

    pub fn i64(&self, key: &str) -> Result<Option<i64>, Reject> {
        self.value(key).map_or(Ok(None), |v| raw_i64(v, key))
    }

    /// A nested object, or a JSON string that holds one (unescaped into `scratch`).
    pub fn object(&self, key: &str, scratch: &'a Bump) -> Result<Option<Fields<'a>>, Reject> {
        self.value(key)
            .map_or(Ok(None), |v| raw_object(v, key, scratch))
    }

    /// A nested value parsed into a typed, borrowing struct.
    pub fn typed<T: Deserialize<'a>>(&self, key: &str) -> Result<Option<T>, Reject> {
        self.value(key).map_or(Ok(None), |v| {
            serde_json::from_str(v.get())
                .map(Some)
                .map_err(|e| Reject::invalid_field(key, e))
        })
    }

    /// Walks a dotted path of object keys (and array indexes) from this object. A key is
    /// matched exactly, or else in any ASCII case ([`Self::get_any_case`]). A key met on an
    /// array fans out: the path goes on in every element, and what it reaches in them is one
    /// array (`spec.containers.securityContext.privileged` is every container's), which rules
    /// match when any item matches.
    pub fn path<'s>(&self, path: &[&str], scratch: &'s Bump) -> Option<&'s RawValue>
    where
        'a: 's,
    {
        let (first, rest) = path.split_first()?;
        walk(self.get_any_case(first)?, rest, scratch)
    }
}

fn walk<'a>(value: &'a RawValue, path: &[&str], scratch: &'a Bump) -> Option<&'a RawValue> {
    let Some((segment, rest)) = path.split_first() else {
        return Some(value);
    };
    let json = value.get();
    if !json.starts_with('[') {
        let next = raw_object(value, segment, scratch)
            .ok()??
            .get_any_case(segment)?;
        return walk(next, rest, scratch);
    }
    let items: Vec<&'a RawValue> = serde_json::from_str(json).ok()?;
    if let Ok(index) = segment.parse::<usize>() {
        return walk(items.get(index)?, rest, scratch);
    }
    let reached: Vec<&'a RawValue> = items
        .iter()
        .filter_map(|item| walk(item, path, scratch))
        .collect();
    match reached.as_slice() {
        [] => None,
        [one] => Some(one),
        many => {
            // One array of what every element holds there, nested arrays spliced in.
            let mut out = String::from("[");
            for value in many {
                let json = value.get();
                let inner = match json.strip_prefix('[') {
                    Some(rest) => rest.strip_suffix(']').unwrap_or(rest).trim(),
                    None => json,
                };
                if inner.is_empty() {
                    continue;
                }
                if out.len() > 1 {
                    out.push(',');
                }
                out.push_str(inner);
            }
            out.push(']');
            serde_json::from_str(scratch.alloc_str(&out)).ok()
        }
    }
}

impl fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (k, v.get())))
            .finish()
    }
}

struct FieldsVisitor<'c, 'de, C> {
    /// The whole object's text, which captured members' extents are found in.
    input: &'de str,
    scratch: &'de Bump,
    capture: &'c mut C,
}

impl<'de, C: Capture<'de>> Visitor<'de> for FieldsVisitor<'_, 'de, C> {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Entries::new();
        let mut taken = false;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let key: &'de str = match key.0 {
                std::borrow::Cow::Borrowed(key) => {
                    if self
                        .capture
                        .capture(key, &Fields { entries: &entries }, &mut map)?
                    {
                        entries.push((key, Slot::Taken("")));
                        taken = true;
                        continue;
                    }
                    key
                }
                std::borrow::Cow::Owned(key) => self.scratch.alloc_str(&key),
            };
            let value: &'de RawValue = map.next_value()?;
            entries.push((key, Slot::Raw(value)));
        }
        if taken {
            locate_taken(&mut entries, self.input)
                .ok_or_else(|| de::Error::custom("a captured member could not be located"))?;
        }
        Ok(Fields {
            entries: self.scratch.alloc_slice_copy(&entries),
        })
    }
}

/// Key equality, inline: keys are short, and most candidates differ in length or early on.
#[inline]
fn same_key(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\t' | b'\r')
}

/// Sets the extent of every captured member from the positions of the keys around it: a
/// member's value runs from after its key's `:` to before the `,` ahead of the next key (or the
/// object's closing brace). The text was validated by the first pass, so only whitespace lies
/// between those marks and the value. `None` when a neighbouring key is not in `input` (it
/// needed unescaping).
fn locate_taken<'a>(entries: &mut Entries<'a>, input: &'a str) -> Option<()> {
    let bytes = input.as_bytes();
    let offset = |k: &str| -> Option<usize> {
        let off = (k.as_ptr() as usize).checked_sub(input.as_ptr() as usize)?;
        (off + k.len() <= input.len()).then_some(off)
    };
    for i in 0..entries.len() {
        if !matches!(entries[i].1, Slot::Taken(_)) {
            continue;
        }
        let key = entries[i].0;
        let mut start = offset(key)? + key.len() + 1;
        while is_json_space(*bytes.get(start)?) {
            start += 1;
        }
        if bytes[start] != b':' {
            return None;
        }
        start += 1;
        while is_json_space(*bytes.get(start)?) {
            start += 1;
        }
        let mut end = match entries.get(i + 1) {
            Some((next, _)) => offset(next)?.checked_sub(1)?,
            None => input.len(),
        };
        while end > start && is_json_space(bytes[end - 1]) {
            end -= 1;
        }
        let mark = if i + 1 < entries.len() { b',' } else { b'}' };
        if end <= start || bytes[end - 1] != mark {
            return None;
        }
        end -= 1;
        while end > start && is_json_space(bytes[end - 1]) {
            end -= 1;
        }
        entries[i].1 = Slot::Taken(input.get(start..end)?);
    }
    Some(())
}

/// Text of a scalar: strings unescaped (borrowed when possible), numbers and booleans verbatim.
pub fn raw_text<'a>(value: &'a RawValue, field: &str) -> Result<Option<Text<'a>>, Reject> {
    let json = value.get();
    match json.as_bytes().first() {
        // A string without escapes is its own text: the first pass already validated it.
        Some(b'"') if !json.as_bytes().contains(&b'\\') => {
            Ok(Some(Text::borrowed(&json[1..json.len() - 1])))
        }
        Some(b'"') => serde_json::from_str(json)
            .map(Some)
            .map_err(|e| Reject::invalid_field(field, e)),
        Some(b'n') => Ok(None),
        Some(b'{' | b'[') => Err(Reject::invalid_field(
            field,
            "expected a string, found a structure",
        )),
        _ => Ok(Some(Text::borrowed(json))),
    }
}

pub fn raw_bool(value: &RawValue, field: &str) -> Result<Option<bool>, Reject> {
    match value.get() {
        "true" | "\"true\"" | "\"True\"" | "\"TRUE\"" => Ok(Some(true)),
        "false" | "\"false\"" | "\"False\"" | "\"FALSE\"" => Ok(Some(false)),
        "null" | "\"\"" => Ok(None),
        other => Err(Reject::invalid_field(
            field,
            format!("expected a boolean, found {}", preview(other)),
        )),
    }
}

pub fn raw_u64(value: &RawValue, field: &str) -> Result<Option<u64>, Reject> {
    let json = value.get();
    let digits = json.trim_matches('"');
    if digits.is_empty() || json == "null" {
        return Ok(None);
    }
    digits.parse().map(Some).map_err(|_| {
        Reject::invalid_field(
            field,
            format!("expected a whole number, found {}", preview(json)),
        )
    })
}

pub fn raw_i64(value: &RawValue, field: &str) -> Result<Option<i64>, Reject> {
    let json = value.get();
    let digits = json.trim_matches('"');
    if digits.is_empty() || json == "null" {
        return Ok(None);
    }
    if let Ok(n) = digits.parse() {
        return Ok(Some(n));
    }
    // Epoch times are sometimes written as floats (1621305118553.0).
    match digits.parse::<f64>() {
        Ok(f) if f.is_finite() && f.abs() < 9.0e18 => Ok(Some(f as i64)),
        _ => Err(Reject::invalid_field(
            field,
            format!("expected a number, found {}", preview(json)),
        )),
    }
}

/// A nested object, or a string holding one: the Log Analytics shape re-encodes nested objects.
pub fn raw_object<'a>(
    value: &'a RawValue,
    field: &str,
    scratch: &'a Bump,
) -> Result<Option<Fields<'a>>, Reject> {
    let json = value.get();
    match json.as_bytes().first() {
        Some(b'{') => Fields::parse(json, scratch)
            .map(Some)
            .map_err(|e| Reject::invalid_field(field, e.detail)),
        Some(b'"') => {
            let inner: Text<'a> =
                serde_json::from_str(json).map_err(|e| Reject::invalid_field(field, e))?;
            let inner = inner.as_str().trim();
            if inner.is_empty() {
                return Ok(None);
            }
            if !inner.starts_with('{') {
                return Err(Reject::invalid_field(
                    field,
                    "expected an object or a JSON string holding one",
                ));
            }
            let inner: &'a str = scratch.alloc_str(inner);
            Fields::parse(inner, scratch)
                .map(Some)
                .map_err(|e| Reject::invalid_field(field, e.detail))
        }
        Some(b'n') => Ok(None),
        _ => Err(Reject::invalid_field(
            field,
            format!("expected an object, found {}", preview(json)),
        )),
    }
}

/// Elements of an array value (or of a JSON string holding one); a lone object counts as one.
pub fn raw_array<'a>(
    value: &'a RawValue,
    field: &str,
    scratch: &'a Bump,
) -> Result<Vec<&'a RawValue>, Reject> {
    let json = value.get();
    match json.as_bytes().first() {
        Some(b'[') => serde_json::from_str(json).map_err(|e| Reject::invalid_field(field, e)),
        Some(b'"') => {
            let inner: Text<'a> =
                serde_json::from_str(json).map_err(|e| Reject::invalid_field(field, e))?;
            let inner = inner.as_str().trim();
            if inner.is_empty() {
                return Ok(Vec::new());
            }
            let inner: &'a str = scratch.alloc_str(inner);
            if inner.starts_with('[') {
                serde_json::from_str(inner).map_err(|e| Reject::invalid_field(field, e))
            } else {
                serde_json::from_str(inner)
                    .map(|one| vec![one])
                    .map_err(|e| Reject::invalid_field(field, e))
            }
        }
        Some(b'n') => Ok(Vec::new()),
        _ => Ok(vec![value]),
    }
}

fn preview(json: &str) -> String {
    let mut end = json.len().min(40);
    while !json.is_char_boundary(end) {
        end -= 1;
    }
    if end < json.len() {
        format!("{}…", &json[..end])
    } else {
        json.to_owned()
    }
}

/// The first non-null element of a JSON array, or the value itself when it is not an array,
/// read without collecting the array.
pub fn first_of<'a, T: Deserialize<'a>>(
    raw: &'a RawValue,
    field: &str,
) -> Result<Option<T>, Reject> {
    serde_json::from_str::<First<T>>(raw.get())
        .map(|f| f.0)
        .map_err(|e| Reject::invalid_field(field, e))
}

/// Deserializes a JSON array into its first non-null element, skipping the rest unparsed; a
/// lone string or object is read as that element (pipelines flatten one-element arrays).
pub struct First<T>(pub Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FirstVisitor(PhantomData))
    }
}

struct FirstVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for FirstVisitor<T> {
    type Value = First<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array, a string or an object")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut first = None;
        while first.is_none() {
            match seq.next_element::<Option<T>>()? {
                Some(item) => first = item,
                None => return Ok(First(None)),
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(First(first))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        T::deserialize(BorrowedStrDeserializer::new(v)).map(|t| First(Some(t)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        T::deserialize(StringDeserializer::new(v.to_owned())).map(|t| First(Some(t)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(|t| First(Some(t)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(First(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_top_level_members_without_parsing_values() {
        let scratch = Bump::new();
        let f = Fields::parse(r#"{"a": {"b": [1, 2]}, "c": "x\"y", "d": 5}"#, &scratch).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f.get("a").unwrap().get(), r#"{"b": [1, 2]}"#);
        assert_eq!(f.text("c").unwrap().unwrap().as_str(), "x\"y");
        assert_eq!(f.u64("d").unwrap(), Some(5));
    }

    #[test]
    fn last_duplicate_key_wins() {
        let scratch = Bump::new();
        let f = Fields::parse(r#"{"k": 1, "k": 2}"#, &scratch).unwrap();
        assert_eq!(f.u64("k").unwrap(), Some(2));
    }

    #[test]
    fn lenient_scalars() {
        let scratch = Bump::new();
        let f = Fields::parse(
            r#"{"b": "true", "n": "42", "t": 1621305118553.0}"#,
            &scratch,
        )
        .unwrap();
        assert_eq!(f.bool("b").unwrap(), Some(true));
        assert_eq!(f.u64("n").unwrap(), Some(42));
        assert_eq!(f.i64("t").unwrap(), Some(1621305118553));
        assert!(f.u64("b").is_err());
    }

    #[test]
    fn embedded_json_objects_are_read_through_the_scratch_arena() {
        let scratch = Bump::new();
        let f = Fields::parse(r#"{"DeviceDetail": "{\"deviceId\":\"d-1\"}"}"#, &scratch).unwrap();
        let inner = f.object("DeviceDetail", &scratch).unwrap().unwrap();
        assert_eq!(inner.text("deviceId").unwrap().unwrap().as_str(), "d-1");
    }

    #[test]
    fn paths_walk_objects_arrays_and_embedded_json() {
        let scratch = Bump::new();
        let f = Fields::parse(
            r#"{"a": {"b": [{"c": "deep"}]}, "s": "{\"x\": 1}"}"#,
            &scratch,
        )
        .unwrap();
        assert_eq!(
            f.path(&["a", "b", "0", "c"], &scratch).unwrap().get(),
            "\"deep\""
        );
        assert_eq!(f.path(&["s", "x"], &scratch).unwrap().get(), "1");
        assert!(f.path(&["a", "nope"], &scratch).is_none());
        // A key met on an array fans out over its elements, nested arrays spliced.
        let f = Fields::parse(
            r#"{"spec":{"containers":[{"sc":{"p":false},"ports":[80]},{"sc":{"p":true},"ports":[443,8443]},{"x":1}]}}"#,
            &scratch,
        )
        .unwrap();
        let got = |path: &[&str]| f.path(path, &scratch).map(|v| v.get().to_owned());
        assert_eq!(
            got(&["spec", "containers", "sc", "p"]).as_deref(),
            Some("[false,true]")
        );
        assert_eq!(
            got(&["spec", "containers", "ports"]).as_deref(),
            Some("[80,443,8443]")
        );
        assert_eq!(got(&["spec", "containers", "x"]).as_deref(), Some("1"));
        assert_eq!(
            got(&["spec", "containers", "1", "sc", "p"]).as_deref(),
            Some("true")
        );
        assert_eq!(got(&["spec", "containers", "nope"]), None);
    }

    fn raw(json: &str) -> &RawValue {
        serde_json::from_str(json).unwrap()
    }

    fn error(result: Result<impl fmt::Debug, Reject>) -> String {
        let reject = result.unwrap_err();
        assert_eq!(
            reject.reason,
            super::super::reject::RejectReason::InvalidField
        );
        reject.detail
    }

    #[test]
    fn scalars_read_leniently_and_refuse_with_a_preview() {
        for (json, expected) in [
            ("true", Some(true)),
            (r#""True""#, Some(true)),
            (r#""TRUE""#, Some(true)),
            (r#""false""#, Some(false)),
            (r#""False""#, Some(false)),
            (r#""FALSE""#, Some(false)),
            ("null", None),
            (r#""""#, None),
        ] {
            assert_eq!(raw_bool(raw(json), "b").unwrap(), expected, "{json}");
        }
        assert_eq!(
            error(raw_bool(raw("1"), "b")),
            "b: expected a boolean, found 1"
        );
        assert_eq!(raw_u64(raw(r#""""#), "n").unwrap(), None);
        assert_eq!(raw_u64(raw("null"), "n").unwrap(), None);
        assert_eq!(raw_u64(raw("7"), "n").unwrap(), Some(7));
        assert_eq!(
            error(raw_u64(raw("-7"), "n")),
            "n: expected a whole number, found -7"
        );
        assert_eq!(raw_i64(raw(r#""-7""#), "n").unwrap(), Some(-7));
        assert_eq!(raw_i64(raw(r#""""#), "n").unwrap(), None);
        assert_eq!(raw_i64(raw("null"), "n").unwrap(), None);
        assert_eq!(raw_i64(raw("-2.9"), "n").unwrap(), Some(-2));
        assert_eq!(
            raw_i64(raw("8.9e18"), "n").unwrap(),
            Some(8_900_000_000_000_000_000)
        );
        assert_eq!(
            error(raw_i64(raw("9e18"), "n")),
            "n: expected a number, found 9e18"
        );
        assert_eq!(
            error(raw_i64(raw("-9e18"), "n")),
            "n: expected a number, found -9e18"
        );
        assert_eq!(
            error(raw_i64(raw(r#""NaN""#), "n")),
            r#"n: expected a number, found "NaN""#
        );
        // A long value is shown by its first 40 bytes, cut at a character's edge.
        let long = format!(r#""{}é""#, "x".repeat(38));
        assert_eq!(
            error(raw_bool(raw(&long), "b")),
            format!("b: expected a boolean, found \"{}…", "x".repeat(38))
        );
        let forty = format!(r#""{}""#, "x".repeat(38));
        assert_eq!(
            error(raw_bool(raw(&forty), "b")),
            format!("b: expected a boolean, found {forty}")
        );
    }

    #[test]
    fn text_reads_strings_numbers_and_flags_but_not_structures() {
        assert_eq!(raw_text(raw("12.5"), "t").unwrap().unwrap(), "12.5");
        assert_eq!(raw_text(raw("false"), "t").unwrap().unwrap(), "false");
        assert_eq!(raw_text(raw("null"), "t").unwrap(), None);
        // Borrowed from the record unless an escape must be undone.
        let plain = raw_text(raw(r#""alice""#), "t").unwrap().unwrap();
        assert!(matches!(plain.0, std::borrow::Cow::Borrowed("alice")));
        let escaped = raw_text(raw(r#""a\u00e9""#), "t").unwrap().unwrap();
        assert!(matches!(escaped.0, std::borrow::Cow::Owned(_)));
        assert_eq!(escaped, "aé");
        assert_eq!(raw_text(raw(r#""""#), "t").unwrap().unwrap(), "");
        for json in ["{}", "[1]"] {
            assert_eq!(
                error(raw_text(raw(json), "t")),
                "t: expected a string, found a structure"
            );
        }
        let scratch = Bump::new();
        let f = Fields::parse(r#"{"a": "", "b": "x", "c": null}"#, &scratch).unwrap();
        assert_eq!(error(f.required_text("a")), "a: missing");
        assert_eq!(error(f.required_text("c")), "c: missing");
        assert_eq!(error(f.required_text("z")), "z: missing");
        assert_eq!(f.required_text("b").unwrap(), "x");
    }

    #[test]
    fn objects_and_arrays_read_from_values_or_strings_holding_them() {
        let scratch = Bump::new();
        let object = |json| raw_object(raw(json), "o", &scratch).map(|o| o.map(|f| f.len()));
        assert_eq!(object(r#"{"a":1,"b":2}"#).unwrap(), Some(2));
        assert_eq!(object(r#"" {\"a\":1} ""#).unwrap(), Some(1));
        assert_eq!(object(r#""  ""#).unwrap(), None);
        assert_eq!(object("null").unwrap(), None);
        assert_eq!(
            error(object(r#""[1]""#)),
            "o: expected an object or a JSON string holding one"
        );
        assert_eq!(error(object("[1]")), "o: expected an object, found [1]");
        assert!(error(object(r#""{\"a\":""#)).starts_with("o: "));
        let array = |json| {
            raw_array(raw(json), "a", &scratch)
                .map(|items| items.iter().map(|v| v.get().to_owned()).collect::<Vec<_>>())
        };
        assert_eq!(array("[1, 2]").unwrap(), ["1", "2"]);
        assert_eq!(array(r#""[1,2]""#).unwrap(), ["1", "2"]);
        assert_eq!(array(r#"" {\"k\":1} ""#).unwrap(), [r#"{"k":1}"#]);
        assert_eq!(array(r#""""#).unwrap(), Vec::<String>::new());
        assert_eq!(array("null").unwrap(), Vec::<String>::new());
        assert_eq!(array("5").unwrap(), ["5"]);
        assert!(array(r#""[1,""#).is_err());
        assert!(array(r#""x""#).is_err());
    }

    #[test]
    fn the_first_non_null_element_is_read_whatever_the_shape() {
        let first = |json| first_of::<Text<'_>>(raw(json), "f").map(|t| t.map(|t| t.to_string()));
        assert_eq!(first(r#"[null, "a", "b"]"#).unwrap().as_deref(), Some("a"));
        assert_eq!(first(r#"["a", 5]"#).unwrap().as_deref(), Some("a"));
        assert_eq!(first(r#""lone""#).unwrap().as_deref(), Some("lone"));
        assert_eq!(
            first(r#""esc\"aped""#).unwrap().as_deref(),
            Some("esc\"aped")
        );
        assert_eq!(first("[null, null]").unwrap(), None);
        assert_eq!(first("[]").unwrap(), None);
        assert_eq!(first("null").unwrap(), None);
        assert!(first("[5]").is_err());
        assert!(error(first("5")).contains("an array, a string or an object"));
        #[derive(Deserialize)]
        struct Named<'a> {
            #[serde(borrow)]
            name: Text<'a>,
        }
        let named = first_of::<Named<'_>>(raw(r#"{"name": "n"}"#), "f").unwrap();
        assert_eq!(named.unwrap().name, "n");
    }

    #[test]
    fn members_are_found_by_exact_key_else_by_any_case() {
        let scratch = Bump::new();
        let f = Fields::parse(
            r#"{"ResultType": 1, "resulttype": 2, "Kind": 3, "gone": null, "ab": 4}"#,
            &scratch,
        )
        .unwrap();
        assert_eq!(f.get_any_case("ResultType").unwrap().get(), "1");
        assert_eq!(f.get_any_case("resultType").unwrap().get(), "2");
        assert_eq!(f.get_any_case("KIND").unwrap().get(), "3");
        assert!(f.get("kind").is_none() && f.get_any_case("nope").is_none());
        assert!(f.get("a").is_none() && f.get("abc").is_none());
        assert_eq!(
            (f.position("gone"), f.value_position("gone")),
            (Some(3), None)
        );
        assert_eq!(f.value_position("ab"), Some(4));
        assert!(f.contains("gone") && f.value("gone").is_none());
        assert!(!f.is_empty() && Fields::default().is_empty());
        assert_eq!(f.iter().count(), 5);
        assert_eq!(
            format!("{f:?}"),
            r#"{"ResultType": "1", "resulttype": "2", "Kind": "3", "gone": "null", "ab": "4"}"#
        );
        assert_eq!(
            error(f.typed::<Vec<u8>>("Kind")),
            "Kind: invalid type: integer `3`, expected a sequence at line 1 column 1"
        );
        assert_eq!(f.typed::<u8>("ab").unwrap(), Some(4));
        assert!(f.object("gone", &scratch).unwrap().is_none());
        assert_eq!(f.i64("Kind").unwrap(), Some(3));
        assert_eq!(f.bool("gone").unwrap(), None);
        let not_object = Fields::parse("[1]", &scratch).unwrap_err();
        assert!(
            not_object.detail.contains("a JSON object"),
            "{}",
            not_object.detail
        );
    }

    #[test]
    fn a_fanned_out_path_skips_empty_arrays_and_keeps_one_value_plain() {
        let scratch = Bump::new();
        let f = Fields::parse(
            r#"{"c":[{"p":[]},{"p":[1]},{"p":[]},{"p":2},{"q":0}],"d":[{"p":[]},{"p":[]}]}"#,
            &scratch,
        )
        .unwrap();
        let got = |path: &[&str]| f.path(path, &scratch).map(|v| v.get().to_owned());
        assert_eq!(got(&["c", "p"]).as_deref(), Some("[1,2]"));
        assert_eq!(got(&["d", "p"]).as_deref(), Some("[]"));
        assert_eq!(got(&["c", "9"]), None);
        assert_eq!(got(&["c", "4", "q"]).as_deref(), Some("0"));
        assert_eq!(got(&[]), None);
        assert_eq!(got(&["C", "0", "P"]).as_deref(), Some("[]"));
    }

    /// Captures the members named, reading their values as ignored.
    struct Take(&'static [&'static str]);

    impl<'de> Capture<'de> for Take {
        fn capture<A: MapAccess<'de>>(
            &mut self,
            key: &str,
            _: &Fields<'_>,
            map: &mut A,
        ) -> Result<bool, A::Error> {
            if !self.0.contains(&key) {
                return Ok(false);
            }
            map.next_value::<IgnoredAny>()?;
            Ok(true)
        }
    }

    #[test]
    fn captured_members_keep_their_raw_json() {
        let scratch = Bump::new();
        for json in [
            r#"{"a": {"x": [1, {"y": "}"}]} , "b":"s","c" :  [ ] }"#,
            "{\"c\":\n\t{\"k\":\"v\"}\r\n}\n",
            r#"{"c": null, "a": 1.5e3}"#,
            "{\"c\": null \n, \"a\": 2}",
            r#"{"\u0062": "z", "a": "x", "a": "y"}"#,
        ] {
            let plain = Fields::parse(json, &scratch).unwrap();
            let taken = Fields::parse_capturing(json, &scratch, &mut Take(&["a", "c"])).unwrap();
            assert_eq!(format!("{plain:?}"), format!("{taken:?}"), "{json}");
            assert_eq!(plain.position("a"), taken.position("a"));
            assert_eq!(
                plain.value_position("c"),
                taken.value_position("c"),
                "{json}"
            );
        }
        // Long keys far into the record are located as well as short ones.
        let json =
            r#"{"eventVersion": "1.08", "userIdentity": {"type": "x"}, "eventSource": "s3"}"#;
        let plain = Fields::parse(json, &scratch).unwrap();
        let taken =
            Fields::parse_capturing(json, &scratch, &mut Take(&["userIdentity", "eventSource"]))
                .unwrap();
        assert_eq!(format!("{plain:?}"), format!("{taken:?}"));
        // A captured member before a key that needed unescaping cannot be located.
        let json = r#"{"a": 1, "\u0062": 2}"#;
        assert!(Fields::parse_capturing(json, &scratch, &mut Take(&["a"])).is_err());
    }
}
