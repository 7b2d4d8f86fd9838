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

#[cfg(test)]
mod tests {
    use super::*;

    fn borrowed(text: &Text<'_>) -> bool {
        matches!(text.0, Cow::Borrowed(_))
    }

    #[test]
    fn parts_of_a_borrowed_text_stay_borrowed_and_of_an_owned_one_are_owned() {
        let record = Text::borrowed("arn:aws:iam");
        let owned = Text::owned("arn:aws:iam".to_owned());
        for (text, borrows) in [(&record, true), (&owned, false)] {
            let (head, tail) = text.split_once_prefix(':').unwrap();
            assert_eq!((head.as_str(), tail.as_str()), ("arn", "aws:iam"));
            assert_eq!((borrowed(&head), borrowed(&tail)), (borrows, borrows));
            let middle = text.slice(4..7);
            assert_eq!((middle.as_str(), borrowed(&middle)), ("aws", borrows));
            assert!(text.split_once_prefix('/').is_none());
        }
    }

    #[test]
    fn a_list_is_split_at_commas_trimmed_and_empty_parts_left_out() {
        for text in [
            Text::borrowed(" s3:Get , ,iam:Pass,,  ec2:Run  ,"),
            Text::owned(" s3:Get , ,iam:Pass,,  ec2:Run  ,".to_owned()),
        ] {
            let mut parts = Vec::new();
            text.split_list(&mut parts);
            let words: Vec<&str> = parts.iter().map(Text::as_str).collect();
            assert_eq!(words, ["s3:Get", "iam:Pass", "ec2:Run"]);
            assert!(parts.iter().all(|part| borrowed(part) == borrowed(&text)));
        }
        let mut parts = Vec::new();
        Text::borrowed(" , ").split_list(&mut parts);
        assert!(parts.is_empty());
    }

    #[test]
    fn a_concatenation_borrows_from_the_scratch_arena() {
        let scratch = bumpalo::Bump::new();
        let joined = Text::concat_in(&scratch, &["AROA:", "", "alice"]);
        assert_eq!((joined.as_str(), borrowed(&joined)), ("AROA:alice", true));
        let empty = Text::concat_in(&scratch, &[]);
        assert!(empty.is_empty());
        assert!(!joined.is_empty());
        let owned = joined.into_owned();
        assert_eq!((owned.as_str(), borrowed(&owned)), ("AROA:alice", false));
    }

    #[test]
    fn text_compares_prints_and_serializes_as_its_string() {
        let text = Text::borrowed("say \"hi\"");
        assert!(text == *"say \"hi\"" && text == "say \"hi\"");
        assert!(text != *"say hi" && text != "say hi");
        assert_eq!(text.to_string(), "say \"hi\"");
        assert_eq!(format!("{text:?}"), r#""say \"hi\"""#);
        assert_eq!(serde_json::to_string(&text).unwrap(), r#""say \"hi\"""#);
    }

    #[test]
    fn a_json_string_is_borrowed_unless_it_has_escapes() {
        let plain: Text<'_> = serde_json::from_str(r#""alice""#).unwrap();
        assert_eq!((plain.as_str(), borrowed(&plain)), ("alice", true));
        let escaped: Text<'_> = serde_json::from_str(r#""a\tb""#).unwrap();
        assert_eq!((escaped.as_str(), borrowed(&escaped)), ("a\tb", false));
        let given: Text<'_> = Text::deserialize(serde::de::value::StringDeserializer::<
            serde_json::Error,
        >::new("bob".to_owned()))
        .unwrap();
        assert_eq!((given.as_str(), borrowed(&given)), ("bob", false));
        let error = serde_json::from_str::<Text<'_>>("5").unwrap_err();
        assert!(error.to_string().contains("expected a string"), "{error}");
    }
}
