//! Sigma's value modifiers: `windash`, `base64`, `base64offset`, `utf16le`/`wide`, `utf16be`
//! and `utf16` rewrite each value of an entry, once at load, into the values that are actually
//! compared. Matching never sees them: `CommandLine|windash|contains: -enc` is compiled as
//! `contains` over the five spellings of `-enc`.
//!
//! Transforms apply in the order they are written, to bytes: `wide|base64offset|contains` is
//! the UTF-16LE form of the text, then its three base64 offsets. What comes out must be text
//! (a UTF-16 value alone is text with NULs in it; one not valid as UTF-8 must be encoded on).
//!
//! - `windash`: a `-` or `/` that starts a word (after a non-word character or at the start,
//!   before a word character — `-param-name` switches its first dash only, as pySigma does)
//!   is also each of `/`, `-`, `–` (en dash), `—` (em dash) and `―` (horizontal bar); every
//!   combination, up to `MAX_SWITCHES` places in one value.
//! - `base64`: the value's standard base64 (with `=` padding).
//! - `base64offset`: the three encodings of the value at byte offsets 0, 1 and 2 of a longer
//!   text, cut to the characters the value alone decides — what `contains` finds in a base64
//!   string the value is part of.
//! - `utf16le` (`wide`), `utf16be`, `utf16` (a little-endian byte-order mark, then UTF-16LE).
//!
//! An encoding takes the value as literal text: a `*` or `?` wildcard cannot be encoded (the
//! escaped `\*`, `\?`, `\\` are their characters), and wildcard characters an encoding produces
//! are escaped again, so they stay literal.

use super::detection::Glob;

/// One value transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transform {
    Windash,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16Bom,
}

/// The most `-`/`/` places `windash` switches in one value: 5⁵ = 3125 spellings. SigmaHQ's
/// rules have at most 4.
const MAX_SWITCHES: usize = 5;

/// What a `windash` place may be written as.
const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];

impl Transform {
    /// The transform a modifier names.
    pub(crate) fn parse(modifier: &str) -> Option<Transform> {
        Some(match modifier {
            "windash" => Transform::Windash,
            "base64" => Transform::Base64,
            "base64offset" => Transform::Base64Offset,
            "utf16le" | "wide" => Transform::Utf16Le,
            "utf16be" => Transform::Utf16Be,
            "utf16" => Transform::Utf16Bom,
            _ => return None,
        })
    }
}

/// One value in the making: bytes, and whether they are still a pattern (wildcards live) or
/// literal bytes an encoding produced.
struct Value {
    bytes: Vec<u8>,
    pattern: bool,
}

/// The values `text` (a pattern as written) stands for after `transforms`, in order; an error
/// says why it cannot be transformed.
pub(crate) fn apply(transforms: &[Transform], text: &str) -> Result<Vec<String>, String> {
    let mut values = vec![Value {
        bytes: text.as_bytes().to_vec(),
        pattern: true,
    }];
    let mut after: Option<Transform> = None;
    for &t in transforms {
        let mut next = Vec::with_capacity(values.len());
        for value in values {
            if t == Transform::Windash {
                let text = String::from_utf8(value.bytes)
                    .map_err(|_| not_text(after.unwrap_or(t), "windash"))?;
                next.extend(windash(&text)?.into_iter().map(|s| Value {
                    bytes: s.into_bytes(),
                    pattern: value.pattern,
                }));
                continue;
            }
            let literal = if value.pattern {
                literal(&value.bytes)?
            } else {
                value.bytes
            };
            next.extend(encode(t, &literal).into_iter().map(|bytes| Value {
                bytes,
                pattern: false,
            }));
        }
        values = next;
        after = Some(t);
    }
    values
        .into_iter()
        .map(|v| {
            let text = String::from_utf8(v.bytes).map_err(|_| {
                let t = after.unwrap_or(Transform::Windash);
                format!(
                    "`{}` makes bytes that are not text: encode them on (`{}|base64offset`)",
                    name(t),
                    name(t)
                )
            })?;
            Ok(if v.pattern { text } else { Glob::escape(&text) })
        })
        .collect()
}

fn name(t: Transform) -> &'static str {
    match t {
        Transform::Windash => "windash",
        Transform::Base64 => "base64",
        Transform::Base64Offset => "base64offset",
        Transform::Utf16Le => "utf16le",
        Transform::Utf16Be => "utf16be",
        Transform::Utf16Bom => "utf16",
    }
}

fn not_text(after: Transform, what: &str) -> String {
    format!(
        "`{what}` applies to text, and after `{}` the value is not text: write `{what}` first",
        name(after)
    )
}

/// The characters of a pattern without wildcards: `\*`, `\?`, `\\` unescaped; a live `*` or
/// `?` is an error (an encoding of "anything" does not exist).
fn literal(pattern: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if matches!(pattern.get(i + 1), Some(b'*' | b'?' | b'\\')) => {
                out.push(pattern[i + 1]);
                i += 2;
                continue;
            }
            b'*' | b'?' => {
                return Err(
                    "a value with a `*` or `?` wildcard cannot be encoded (escape them as `\\*`, \
                     `\\?` to encode the characters)"
                        .to_owned(),
                )
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

/// The encodings of `bytes` by `t` (`windash` is applied to text by [`apply`], not here).
fn encode(t: Transform, bytes: &[u8]) -> Vec<Vec<u8>> {
    match t {
        Transform::Base64 => vec![base64(bytes).into_bytes()],
        Transform::Base64Offset => base64_offsets(bytes)
            .into_iter()
            .map(String::into_bytes)
            .collect(),
        Transform::Utf16Le | Transform::Utf16Be | Transform::Utf16Bom => {
            let text = String::from_utf8_lossy(bytes);
            let mut out = Vec::with_capacity(bytes.len() * 2 + 2);
            if t == Transform::Utf16Bom {
                out.extend([0xFF, 0xFE]);
            }
            for unit in text.encode_utf16() {
                if t == Transform::Utf16Be {
                    out.extend(unit.to_be_bytes());
                } else {
                    out.extend(unit.to_le_bytes());
                }
            }
            vec![out]
        }
        Transform::Windash => vec![bytes.to_vec()],
    }
}

/// Whether `c` is a word character, as a regex's `\w` has it.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every spelling of `text` with its word-starting `-` and `/` switched among `DASHES`.
fn windash(text: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = text.chars().collect();
    let places: Vec<usize> = (0..chars.len())
        .filter(|&i| {
            matches!(chars[i], '-' | '/')
                && (i == 0 || !is_word(chars[i - 1]))
                && chars.get(i + 1).is_some_and(|&c| is_word(c))
        })
        .collect();
    if places.len() > MAX_SWITCHES {
        return Err(format!(
            "`windash` switches {} dashes here, {} spellings; at most {MAX_SWITCHES} in one \
             value (split it into several values)",
            places.len(),
            DASHES.len().pow(places.len() as u32)
        ));
    }
    let mut out = vec![chars];
    for &at in &places {
        out = out
            .into_iter()
            .flat_map(|spelling| {
                DASHES.iter().map(move |&dash| {
                    let mut s = spelling.clone();
                    s[at] = dash;
                    s
                })
            })
            .collect();
    }
    Ok(out.into_iter().map(|s| s.into_iter().collect()).collect())
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64, padded with `=`.
fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * k) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The value's base64 when it starts 0, 1 or 2 bytes into a longer text: the encoding of
/// `shift` filler bytes and the value, without the characters the filler decides (0, 2, 3 at
/// the start) and those the unknown next bytes decide (a last group with one byte of the
/// value: its second character and padding; with two: its third and padding).
fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    (0..3)
        .map(|shift| {
            let mut padded = vec![0u8; shift];
            padded.extend_from_slice(bytes);
            let encoded = base64(&padded);
            let start = [0, 2, 3][shift];
            let end = [0, 3, 2][padded.len() % 3];
            encoded
                .get(start..encoded.len().saturating_sub(end))
                .unwrap_or_default()
                .to_owned()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(t: &[Transform], text: &str) -> Vec<String> {
        apply(t, text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn base64_matches_the_standard_vectors() {
        // RFC 4648, section 10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
    }

    #[test]
    fn base64offset_finds_the_value_anywhere_in_an_encoded_text() {
        let value = "iex (New-Object Net.WebClient)";
        let offsets = base64_offsets(value.as_bytes());
        assert_eq!(offsets.len(), 3);
        // Whatever comes before and after it, the encoding of a text holding the value holds
        // one of the three.
        for before in ["", "a", "ab", "abc", "powershell -c "] {
            for after in ["", "x", "xy", ";"] {
                let text = format!("{before}{value}{after}");
                let encoded = base64(text.as_bytes());
                assert!(
                    offsets.iter().any(|o| encoded.contains(o.as_str())),
                    "{text:?} → {encoded} holds none of {offsets:?}"
                );
            }
        }
        // pySigma's documented example.
        assert_eq!(
            one(&[Transform::Base64Offset], "/bin/bash"),
            ["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]
        );
    }

    #[test]
    fn windash_switches_dashes_that_start_a_word() {
        let got = one(&[Transform::Windash], " -enc ");
        assert_eq!(got, [" -enc ", " /enc ", " –enc ", " —enc ", " ―enc "]);
        // The second dash of `-param-name` is inside a word.
        assert_eq!(one(&[Transform::Windash], "-param-name").len(), 5);
        // Two places: every combination.
        let got = one(&[Transform::Windash], "*-a /b*");
        assert_eq!(got.len(), 25);
        assert!(got.contains(&"*—a -b*".to_owned()));
        // Nothing to switch: the value as written.
        assert_eq!(one(&[Transform::Windash], "a-b"), ["a-b"]);
        // Five places are the most: 5⁵ spellings; six are refused.
        assert_eq!(one(&[Transform::Windash], "-a -b -c -d -e").len(), 3125);
        let e = apply(&[Transform::Windash], "-a -b -c -d -e -f").unwrap_err();
        assert!(e.contains("switches 6 dashes here, 15625 spellings"), "{e}");
    }

    #[test]
    fn utf16_forms_and_chains() {
        assert_eq!(one(&[Transform::Utf16Le], "cmd"), ["c\0m\0d\0"]);
        assert_eq!(one(&[Transform::Utf16Be], "cmd"), ["\0c\0m\0d"]);
        assert_eq!(
            one(&[Transform::Utf16Le, Transform::Base64], "cmd"),
            ["YwBtAGQA"]
        );
        // `utf16` starts with FF FE: not text unless encoded on.
        let e = apply(&[Transform::Utf16Bom], "cmd").unwrap_err();
        assert!(e.contains("`utf16` makes bytes that are not text"), "{e}");
        assert_eq!(
            one(&[Transform::Utf16Bom, Transform::Base64], "cmd"),
            ["//5jAG0AZAA="]
        );
        let e = apply(&[Transform::Base64, Transform::Utf16Le], "a").unwrap();
        assert_eq!(e, ["Y\0Q\0=\0=\0"]);
    }

    #[test]
    fn each_modifier_name_is_its_transform() {
        use Transform::*;
        for (name, transform) in [
            ("windash", Windash),
            ("base64", Base64),
            ("base64offset", Base64Offset),
            ("utf16le", Utf16Le),
            ("wide", Utf16Le),
            ("utf16be", Utf16Be),
            ("utf16", Utf16Bom),
        ] {
            assert_eq!(Transform::parse(name), Some(transform), "{name}");
        }
        assert_eq!(Transform::parse("utf32"), None);
    }

    /// `windash` reads text: after an encoding that made bytes that are not text, it is an
    /// error that says to write it first.
    #[test]
    fn windash_after_bytes_that_are_not_text_says_to_write_it_first() {
        assert_eq!(
            apply(&[Transform::Utf16Bom, Transform::Windash], "-a").unwrap_err(),
            "`windash` applies to text, and after `utf16` the value is not text: write \
             `windash` first"
        );
        // UTF-16LE of ASCII is text (with NULs): windash then finds nothing to switch.
        assert_eq!(
            one(&[Transform::Utf16Le, Transform::Windash], "-a"),
            ["-\0a\0"]
        );
    }

    #[test]
    fn encodings_take_literal_text() {
        let e = apply(&[Transform::Base64], "cmd*").unwrap_err();
        assert!(e.contains("cannot be encoded"), "{e}");
        assert_eq!(one(&[Transform::Base64], r"a\*"), [base64(b"a*")]);
        // Only `\*`, `\?` and `\\` are escapes: another backslash is its character.
        assert_eq!(
            one(&[Transform::Base64], r"C:\Windows\\x"),
            [base64(br"C:\Windows\x")]
        );
        // `+` and `/` of base64 are not wildcards; a `?` an encoding makes is escaped.
        assert_eq!(one(&[Transform::Utf16Le], r"\?"), ["\\?\0"]);
        // windash keeps wildcards live before an encoding would refuse them.
        assert_eq!(one(&[Transform::Windash], "*-x*").len(), 5);
    }
}
