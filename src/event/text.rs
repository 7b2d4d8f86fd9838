//! `Text`: a string borrowed from the input record whenever JSON allows it.
//!
//! serde's own `Cow<str>` impl always allocates; this visitor borrows every string that has no
//! escape sequence, which is nearly all of them in audit logs, and owns only the rest.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A JSON string value, borrowed from the record when it needs no unescaping.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'a> Text<'a> {
    pub const fn borrowed(s: &'a str) -> Self {
        Text(Cow::Borrowed(s))
    }

    pub fn owned(s: String) -> Self {
        Text(Cow::Owned(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part of a borrowed string before `sep`, still borrowed; owned strings are sliced into
    /// a new owned string.
    pub fn split_once_prefix(&self, sep: char) -> Option<(Text<'a>, Text<'a>)> {
        match &self.0 {
            Cow::Borrowed(s) => s
                .split_once(sep)
                .map(|(a, b)| (Text::borrowed(a), Text::borrowed(b))),
            Cow::Owned(s) => s
                .split_once(sep)
                .map(|(a, b)| (Text::owned(a.to_owned()), Text::owned(b.to_owned()))),
        }
    }

    /// A sub-slice of this text, borrowed when this text is.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Text<'a> {
        match &self.0 {
            Cow::Borrowed(s) => Text::borrowed(&s[range]),
            Cow::Owned(s) => Text::owned(s[range].to_owned()),
        }
    }

    /// Splits `a, b, c` into trimmed, non-empty parts, borrowed when this text is.
    pub fn split_list(&self, out: &mut Vec<Text<'a>>) {
        let mut start = 0;
        for part in self.split(',') {
            let lead = part.len() - part.trim_start().len();
            let trimmed = part.trim();
            if !trimmed.is_empty() {
                let from = start + lead;
                out.push(self.slice(from..from + trimmed.len()));
            }
            start += part.len() + 1;
        }
    }

    /// `parts` joined, in `scratch`: a derived string that borrows like the record's own.
    pub fn concat_in(scratch: &'a bumpalo::Bump, parts: &[&str]) -> Text<'a> {
        let len = parts.iter().map(|p| p.len()).sum();
        let buf = scratch.alloc_slice_fill_copy(len, 0u8);
        let mut at = 0;
        for part in parts {
            buf[at..at + part.len()].copy_from_slice(part.as_bytes());
            at += part.len();
        }
        match std::str::from_utf8(buf) {
            Ok(joined) => Text::borrowed(joined),
            // Unreachable: a concatenation of strings is a string.
            Err(_) => Text::owned(parts.concat()),
        }
    }

    pub fn into_owned(self) -> Text<'static> {
        Text(Cow::Owned(self.0.into_owned()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text::borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text::owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text::owned(v))
    }
}
