//! Long lists of values matched without comparing the event with each one: a hash set for
//! equality (`field: [..]`, `|in`), Aho–Corasick automata for `contains`, `startswith` and
//! `endswith`. A million-entry blocklist then costs about what a thousand-entry one does.
//!
//! A `Lookup` takes over part of an entry's patterns and must give exactly the answers the
//! patterns would one by one (`detection::Pat::matches`):
//!
//! - Exact patterns (no wildcard) go in the hash set, with the typed forms they carry: a number
//!   in the event (`bytes: 5`) is found by value, an address by its canonical form, a flag by
//!   `true`/`false`, and anything else by its text. A pattern compares a number by value only,
//!   but its text can equal a number's text only when their values are equal, so looking the
//!   event's value up both ways gives the same answer.
//! - `*x*`, `x*` and `*x` patterns go in one automaton each, walked once over the value:
//!   unanchored for substrings; anchored at the first byte for prefixes; anchored at the last
//!   byte, over reversed patterns and the value read backwards, for suffixes.
//! - Everything else (`a*b`, `?`, the empty pattern) stays on the comparison path, as does any
//!   group of fewer than `MIN_INDEXED` patterns, where a few comparisons beat a hash or an
//!   automaton.
//!
//! Case: patterns are lower-cased at load unless `cased`. The automata are built case-sensitive
//! over those lower-case patterns and fed the value's bytes lower-cased as they are read (an
//! ASCII-case-insensitive automaton takes several times longer to build); the hash ignores
//! ASCII case, and the comparison after it ignores it too unless `cased`.
//!
//! Nothing here allocates while matching: hashing lower-cases through a stack buffer and the
//! automata are stepped byte by byte.

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::Anchored;

use super::detection::{Glob, Pat};

/// Groups smaller than this stay on the comparison path.
pub(crate) const MIN_INDEXED: usize = 16;

/// The indexed part of one entry's patterns.
pub(crate) struct Lookup {
    exact: Option<ExactSet>,
    contains: Option<NFA>,
    prefix: Option<NFA>,
    /// Built from the reversed patterns.
    suffix: Option<NFA>,
    cased: bool,
    /// Patterns taken by each part, for `Debug`.
    counts: [usize; 4],
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [exact, contains, prefix, suffix] = self.counts;
        write!(
            f,
            "Lookup {{ exact: {exact}, contains: {contains}, prefix: {prefix}, suffix: {suffix} }}"
        )
    }
}

impl Lookup {
    /// Moves the patterns it can take out of `pats` into an index; `None` (and `pats` as they
    /// were) when no group is large enough to pay.
    pub(crate) fn build(pats: &mut Vec<Pat>, cased: bool) -> Option<Lookup> {
        let mut groups: [Vec<Pat>; 4] = Default::default();
        let mut rest = Vec::new();
        for p in pats.drain(..) {
            let group = match &p.glob {
                Glob::Exact(_) => 0,
                Glob::Contains(t) if !t.is_empty() => 1,
                Glob::Prefix(t) if !t.is_empty() => 2,
                Glob::Suffix(t) if !t.is_empty() => 3,
                _ => {
                    rest.push(p);
                    continue;
                }
            };
            groups[group].push(p);
        }
        let mut lookup = Lookup {
            exact: None,
            contains: None,
            prefix: None,
            suffix: None,
            cased,
            counts: [0; 4],
        };
        for (g, group) in groups.into_iter().enumerate() {
            if group.len() < MIN_INDEXED {
                rest.extend(group);
                continue;
            }
            let built = match g {
                0 => {
                    lookup.exact = ExactSet::new(&group, cased);
                    lookup.exact.is_some()
                }
                1 => {
                    lookup.contains = automaton(&group, false);
                    lookup.contains.is_some()
                }
                2 => {
                    lookup.prefix = automaton(&group, false);
                    lookup.prefix.is_some()
                }
                _ => {
                    lookup.suffix = automaton(&group, true);
                    lookup.suffix.is_some()
                }
            };
            if built {
                lookup.counts[g] = group.len();
            } else {
                // Too large for an automaton: the comparisons still give the answer.
                rest.extend(group);
            }
        }
        *pats = rest;
        (lookup.counts != [0; 4]).then_some(lookup)
    }

    /// Some indexed pattern matches this text.
    pub(crate) fn text(&self, t: &str) -> bool {
        let h = t.as_bytes();
        let cased = self.cased;
        self.exact.as_ref().is_some_and(|e| e.contains(h))
            || self
                .contains
                .as_ref()
                .is_some_and(|nfa| occurs(nfa, h.iter(), cased))
            || self
                .prefix
                .as_ref()
                .is_some_and(|nfa| starts(nfa, h.iter(), cased))
            || self
                .suffix
                .as_ref()
                .is_some_and(|nfa| starts(nfa, h.iter().rev(), cased))
    }

    /// Some exact pattern is this number (compared by value).
    pub(crate) fn number(&self, x: f64) -> bool {
        self.exact
            .as_ref()
            .is_some_and(|e| !x.is_nan() && e.numbers.contains(&number_key(x)))
    }

    /// Some exact pattern is this address.
    pub(crate) fn ip(&self, ip: IpAddr) -> bool {
        self.exact
            .as_ref()
            .is_some_and(|e| e.ips.contains(&ip.to_canonical()))
    }

    /// Some exact pattern is this flag.
    pub(crate) fn flag(&self, b: bool) -> bool {
        self.exact.as_ref().is_some_and(|e| e.flags[usize::from(b)])
    }

    /// The exact patterns' texts (lower-cased unless `cased`).
    pub(crate) fn exact_texts(&self) -> impl Iterator<Item = &str> {
        self.exact.iter().flat_map(ExactSet::texts)
    }

    /// True when patterns other than exact ones were taken.
    pub(crate) fn has_automata(&self) -> bool {
        self.counts[1..] != [0; 3]
    }
}

/// The byte as the automata see it.
fn fold(b: u8, cased: bool) -> u8 {
    if cased {
        b
    } else {
        b.to_ascii_lowercase()
    }
}

/// Some pattern occurs in the bytes: an unanchored walk, one step a byte, stopping at the
/// first state where a pattern ends.
fn occurs<'a>(nfa: &NFA, bytes: impl Iterator<Item = &'a u8>, cased: bool) -> bool {
    let Ok(mut sid) = nfa.start_state(Anchored::No) else {
        return false;
    };
    for &b in bytes {
        sid = nfa.next_state(Anchored::No, sid, fold(b, cased));
        if nfa.is_special(sid) && nfa.is_match(sid) {
            return true;
        }
    }
    false
}

/// Some pattern is a prefix of the bytes: an anchored walk (the trie, no failure transitions),
/// ending at the first dead state. A state also lists the patterns that end there without
/// starting at the first byte (reached through failure links while building): only a pattern
/// as long as the walk so far counts.
fn starts<'a>(nfa: &NFA, bytes: impl Iterator<Item = &'a u8>, cased: bool) -> bool {
    let Ok(mut sid) = nfa.start_state(Anchored::Yes) else {
        return false;
    };
    for (walked, &b) in (1..).zip(bytes) {
        sid = nfa.next_state(Anchored::Yes, sid, fold(b, cased));
        if !nfa.is_special(sid) {
            continue;
        }
        if nfa.is_dead(sid) {
            return false;
        }
        if nfa.is_match(sid)
            && (0..nfa.match_len(sid)).any(|k| nfa.pattern_len(nfa.match_pattern(sid, k)) == walked)
        {
            return true;
        }
    }
    false
}

/// A case-sensitive automaton over the (already folded) literals, reversed for suffixes;
/// `None` when it cannot be built (more states than it can number).
fn automaton(group: &[Pat], reversed: bool) -> Option<NFA> {
    let literal = |p: &Pat| -> Vec<u8> {
        let text = match &p.glob {
            Glob::Exact(t) | Glob::Prefix(t) | Glob::Suffix(t) | Glob::Contains(t) => t.as_bytes(),
            Glob::Wild(_) => &[],
        };
        let mut bytes = text.to_vec();
        if reversed {
            bytes.reverse();
        }
        bytes
    };
    NFA::builder()
        .prefilter(false)
        .build(group.iter().map(literal))
        .ok()
}

/// f64 bits with the two zeros as one (`-0 == 0`); NaN is never looked up.
fn number_key(x: f64) -> u64 {
    if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

/// Exact texts in one buffer, found by a hash that ignores ASCII case; with the typed values
/// of the same patterns.
struct ExactSet {
    buf: String,
    /// End of each text in `buf`; text `i` starts where `i - 1` ends.
    ends: Vec<usize>,
    table: hashbrown::HashTable<u32>,
    hasher: std::hash::RandomState,
    cased: bool,
    numbers: HashSet<u64>,
    ips: HashSet<IpAddr>,
    /// [some pattern is `false`, some pattern is `true`].
    flags: [bool; 2],
}

impl ExactSet {
    fn new(group: &[Pat], cased: bool) -> Option<ExactSet> {
        u32::try_from(group.len()).ok()?;
        let mut set = ExactSet {
            buf: String::new(),
            ends: Vec::with_capacity(group.len()),
            table: hashbrown::HashTable::with_capacity(group.len()),
            hasher: std::hash::RandomState::new(),
            cased,
            numbers: HashSet::new(),
            ips: HashSet::new(),
            flags: [false; 2],
        };
        for p in group {
            if let Glob::Exact(t) = &p.glob {
                set.insert(t);
            }
            if let Some(x) = p.num.filter(|x| !x.is_nan()) {
                set.numbers.insert(number_key(x));
            }
            if let Some(ip) = p.ip {
                set.ips.insert(ip.to_canonical());
            }
            if let Some(b) = p.boolean {
                set.flags[usize::from(b)] = true;
            }
        }
        Some(set)
    }

    fn text_at(&self, i: u32) -> &[u8] {
        let i = i as usize;
        let end = self.ends.get(i).copied().unwrap_or(0);
        let start = i
            .checked_sub(1)
            .and_then(|p| self.ends.get(p).copied())
            .unwrap_or(0);
        self.buf.as_bytes().get(start..end).unwrap_or_default()
    }

    fn texts(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len() as u32).map(|i| std::str::from_utf8(self.text_at(i)).unwrap_or(""))
    }

    /// SipHash (randomly keyed) of the text lower-cased: the same for both cases of a letter.
    fn hash(&self, text: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        let mut chunk = [0u8; 64];
        for part in text.chunks(chunk.len()) {
            let lower = &mut chunk[..part.len()];
            lower.copy_from_slice(part);
            lower.make_ascii_lowercase();
            h.write(lower);
        }
        h.write_usize(text.len());
        h.finish()
    }

    fn same(&self, a: &[u8], b: &[u8]) -> bool {
        if self.cased {
            a == b
        } else {
            a.eq_ignore_ascii_case(b)
        }
    }

    fn insert(&mut self, text: &str) {
        let hash = self.hash(text.as_bytes());
        if self.contains_hashed(hash, text.as_bytes()) {
            return;
        }
        self.buf.push_str(text);
        self.ends.push(self.buf.len());
        // `ExactSet::new` takes at most `u32::MAX` patterns.
        let i = (self.ends.len() - 1) as u32;
        let mut table = std::mem::take(&mut self.table);
        table.insert_unique(hash, i, |&j| self.hash(self.text_at(j)));
        self.table = table;
    }

    fn contains_hashed(&self, hash: u64, text: &[u8]) -> bool {
        self.table
            .find(hash, |&j| self.same(self.text_at(j), text))
            .is_some()
    }

    fn contains(&self, text: &[u8]) -> bool {
        self.contains_hashed(self.hash(text), text)
    }
}
