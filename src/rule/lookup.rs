//! Long lists of values matched without comparing the event with each one: hash tables for
//! equality (`field: [..]`, `|in`), `startswith` and `endswith`, an Aho–Corasick automaton for
//! `contains`. A million-entry blocklist then costs about what a thousand-entry one does.
//!
//! A `Lookup` takes over part of an entry's patterns and must give exactly the answers the
//! patterns would one by one (`detection::Pat::matches`):
//!
//! - Exact patterns (no wildcard) go in a hash table, with the typed forms they carry: a number
//!   in the event (`bytes: 5`) is found by value, an address by its canonical form, a flag by
//!   `true`/`false`, and anything else by its text. A pattern compares a number by value only,
//!   but its text can equal a number's text only when their values are equal, so looking the
//!   event's value up both ways gives the same answer.
//! - `x*` and `*x` patterns go in a hash table each, with the lengths they come in. The value
//!   is hashed once, a byte at a time from its start (from its end for suffixes), and the table
//!   is probed at each length some pattern has: one pass, then one probe per distinct length.
//! - `*x*` patterns go in one Aho–Corasick automaton, walked once over the value.
//! - Everything else (`a*b`, `?`, the empty pattern) stays on the comparison path, as does any
//!   group of fewer than `MIN_INDEXED` patterns, where a few comparisons beat a hash or an
//!   automaton.
//!
//! Why prefixes and suffixes are not automata too: a match anchored at one end is a walk down
//! a trie, and the `aho-corasick` crate builds the failure links of every state whatever the
//! search; for a million random host names that took 9–15 s and 100–450 MB per automaton here,
//! against well under a second and about 40 MB for the table.
//!
//! Case: patterns are lower-cased at load unless `cased`. Hashes are taken over ASCII-lower-
//! cased bytes, and the comparison after a probe ignores ASCII case unless `cased`. The
//! automaton is built case-sensitive over the lower-case patterns and fed the value's bytes
//! lower-cased as they are read (an ASCII-case-insensitive automaton takes several times longer
//! to build).
//!
//! Nothing here allocates while matching: hashes are computed byte by byte and the automaton is
//! stepped byte by byte.

use std::collections::HashSet;
use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;

use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::Anchored;

use super::detection::{Glob, Pat};

/// Groups smaller than this stay on the comparison path.
pub(crate) const MIN_INDEXED: usize = 16;

/// The indexed part of one entry's patterns.
pub(crate) struct Lookup {
    exact: Option<Exact>,
    contains: Option<NFA>,
    prefix: Option<Affixes>,
    suffix: Option<Affixes>,
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
                    lookup.exact = Exact::new(&group, cased);
                    lookup.exact.is_some()
                }
                1 => {
                    lookup.contains = automaton(&group);
                    lookup.contains.is_some()
                }
                2 => {
                    lookup.prefix = Affixes::new(&group, cased, false);
                    lookup.prefix.is_some()
                }
                _ => {
                    lookup.suffix = Affixes::new(&group, cased, true);
                    lookup.suffix.is_some()
                }
            };
            if built {
                lookup.counts[g] = group.len();
            } else {
                // Too large to index: the comparisons still give the answer.
                rest.extend(group);
            }
        }
        *pats = rest;
        (lookup.counts != [0; 4]).then_some(lookup)
    }

    /// Some indexed pattern matches this text.
    pub(crate) fn text(&self, t: &str) -> bool {
        let h = t.as_bytes();
        self.exact.as_ref().is_some_and(|e| e.texts.contains(h))
            || self
                .contains
                .as_ref()
                .is_some_and(|nfa| occurs(nfa, h, self.cased))
            || self.prefix.as_ref().is_some_and(|p| p.any_of(h))
            || self.suffix.as_ref().is_some_and(|s| s.any_of(h))
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
        self.exact.iter().flat_map(|e| e.texts.texts())
    }

    /// True when patterns other than exact ones were taken.
    pub(crate) fn has_affixes(&self) -> bool {
        self.counts[1..] != [0; 3]
    }
}

/// The byte as the hashes and the automaton see it.
fn fold(b: u8, cased: bool) -> u8 {
    if cased {
        b
    } else {
        b.to_ascii_lowercase()
    }
}

/// Some pattern occurs in the bytes: an unanchored walk, one step a byte, stopping at the
/// first state where a pattern ends.
fn occurs(nfa: &NFA, bytes: &[u8], cased: bool) -> bool {
    let Ok(mut sid) = nfa.start_state(Anchored::No) else {
        return false;
    };
    for &b in bytes {
        sid = nfa.next_state(Anchored::No, sid, fold(b, cased));
        if nfa.is_match(sid) {
            return true;
        }
    }
    false
}

/// A case-sensitive automaton over the (already folded) literals; `None` when it cannot be
/// built (more states than it can number).
fn automaton(group: &[Pat]) -> Option<NFA> {
    NFA::builder()
        .prefilter(false)
        .build(group.iter().map(literal))
        .ok()
}

fn literal(p: &Pat) -> &[u8] {
    match &p.glob {
        Glob::Exact(t) | Glob::Prefix(t) | Glob::Suffix(t) | Glob::Contains(t) => t.as_bytes(),
        Glob::Wild(_) => &[],
    }
}

/// f64 bits with the two zeros as one (`-0 == 0`); NaN is never looked up.
fn number_key(x: f64) -> u64 {
    if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

/// Exact texts, with the typed values of the same patterns.
struct Exact {
    texts: Texts,
    numbers: HashSet<u64>,
    ips: HashSet<IpAddr>,
    /// [some pattern is `false`, some pattern is `true`].
    flags: [bool; 2],
}

impl Exact {
    fn new(group: &[Pat], cased: bool) -> Option<Exact> {
        let mut exact = Exact {
            texts: Texts::new(group.len(), cased, false)?,
            numbers: HashSet::new(),
            ips: HashSet::new(),
            flags: [false; 2],
        };
        for p in group {
            if let Glob::Exact(t) = &p.glob {
                exact.texts.insert(t);
            }
            if let Some(x) = p.num.filter(|x| !x.is_nan()) {
                exact.numbers.insert(number_key(x));
            }
            if let Some(ip) = p.ip {
                exact.ips.insert(ip.to_canonical());
            }
            if let Some(b) = p.boolean {
                exact.flags[usize::from(b)] = true;
            }
        }
        Some(exact)
    }
}

/// Prefix (or suffix) patterns, and the distinct lengths they have.
struct Affixes {
    texts: Texts,
    /// Ascending.
    lengths: Vec<usize>,
}

impl Affixes {
    fn new(group: &[Pat], cased: bool, suffixes: bool) -> Option<Affixes> {
        let mut texts = Texts::new(group.len(), cased, suffixes)?;
        let mut lengths = Vec::new();
        for p in group {
            if let Glob::Prefix(t) | Glob::Suffix(t) = &p.glob {
                texts.insert(t);
                lengths.push(t.len());
            }
        }
        lengths.sort_unstable();
        lengths.dedup();
        Some(Affixes { texts, lengths })
    }

    /// Some pattern is a prefix (a suffix) of `h`: the hash of `h`'s first (last) `n` bytes is
    /// extended a byte at a time, and looked up at each length a pattern has.
    fn any_of(&self, h: &[u8]) -> bool {
        let t = &self.texts;
        let mut hash = t.seed;
        let mut lengths = self.lengths.iter().copied().peekable();
        for n in 1..=h.len() {
            let Some(&next) = lengths.peek() else {
                return false;
            };
            let b = if t.reversed { h[h.len() - n] } else { h[n - 1] };
            hash = step(hash, b);
            if n < next {
                continue;
            }
            lengths.next();
            let part = if t.reversed {
                &h[h.len() - n..]
            } else {
                &h[..n]
            };
            if t.find(finish(hash, n), part) {
                return true;
            }
        }
        false
    }
}

/// Texts in one buffer, found by a hash of their ASCII-lower-cased bytes (taken from the last
/// byte back when `reversed`); compared after a probe ignoring ASCII case unless `cased`.
struct Texts {
    buf: String,
    /// End of each text in `buf`; text `i` starts where `i - 1` ends.
    ends: Vec<usize>,
    table: hashbrown::HashTable<u32>,
    /// Random per table: which values collide cannot be known from outside.
    seed: u64,
    cased: bool,
    reversed: bool,
}

/// One byte into the hash (FNV-1a's step): the same whatever the byte's ASCII case.
fn step(hash: u64, b: u8) -> u64 {
    (hash ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0000_0100_0000_01B3)
}

/// The table's hash of `len` bytes folded into `hash`, mixed (murmur3's finalizer) so that
/// every bit depends on every byte.
fn finish(hash: u64, len: usize) -> u64 {
    let mut k = hash ^ (len as u64).rotate_left(32);
    k ^= k >> 33;
    k = k.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    k ^= k >> 33;
    k = k.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    k ^ (k >> 33)
}

impl Texts {
    /// `None` beyond `u32::MAX` texts (the table numbers them in 32 bits).
    fn new(capacity: usize, cased: bool, reversed: bool) -> Option<Texts> {
        u32::try_from(capacity).ok()?;
        Some(Texts {
            buf: String::new(),
            ends: Vec::with_capacity(capacity),
            table: hashbrown::HashTable::with_capacity(capacity),
            seed: std::hash::RandomState::new().hash_one(0x5EED_u64),
            cased,
            reversed,
        })
    }

    fn hash(&self, text: &[u8]) -> u64 {
        let folded = if self.reversed {
            text.iter().rev().fold(self.seed, |h, &b| step(h, b))
        } else {
            text.iter().fold(self.seed, |h, &b| step(h, b))
        };
        finish(folded, text.len())
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

    fn same(&self, stored: &[u8], text: &[u8]) -> bool {
        if self.cased {
            stored == text
        } else {
            stored.eq_ignore_ascii_case(text)
        }
    }

    /// Adds a text; a repeat is kept once. Callers insert at most `capacity` texts (one per
    /// pattern of the group `new` was sized for), so each numbers within 32 bits.
    fn insert(&mut self, text: &str) {
        let hash = self.hash(text.as_bytes());
        if self.find(hash, text.as_bytes()) {
            return;
        }
        self.buf.push_str(text);
        self.ends.push(self.buf.len());
        let i = (self.ends.len() - 1) as u32;
        let mut table = std::mem::take(&mut self.table);
        table.insert_unique(hash, i, |&j| self.hash(self.text_at(j)));
        self.table = table;
    }

    fn find(&self, hash: u64, text: &[u8]) -> bool {
        self.table
            .find(hash, |&j| self.same(self.text_at(j), text))
            .is_some()
    }

    fn contains(&self, text: &[u8]) -> bool {
        self.find(self.hash(text), text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(glob: Glob) -> Pat {
        Pat {
            glob,
            num: None,
            boolean: None,
            ip: None,
        }
    }

    /// `n` patterns of one kind: `stem0`, `stem1`…
    fn many(kind: fn(Box<str>) -> Glob, n: usize, stem: &str) -> Vec<Pat> {
        (0..n)
            .map(|i| pat(kind(format!("{stem}{i}").into())))
            .collect()
    }

    fn globs(pats: &[Pat]) -> Vec<Glob> {
        pats.iter().map(|p| p.glob.clone()).collect()
    }

    /// Each kind is indexed once it has `MIN_INDEXED` patterns; an empty affix (it matches
    /// every text) and the kinds with fewer stay on the comparison path, in their order.
    #[test]
    fn a_kind_is_indexed_from_min_indexed_patterns_and_the_rest_compared() {
        let empty = [
            Glob::Contains("".into()),
            Glob::Prefix("".into()),
            Glob::Suffix("".into()),
        ];
        let mut pats = [
            many(Glob::Exact, MIN_INDEXED, "e"),
            many(Glob::Contains, MIN_INDEXED, "c"),
            many(Glob::Prefix, MIN_INDEXED, "p"),
            many(Glob::Suffix, MIN_INDEXED, "s"),
            empty.clone().map(pat).into(),
        ]
        .concat();
        let lookup = Lookup::build(&mut pats, false).unwrap();
        assert_eq!(
            format!("{lookup:?}"),
            "Lookup { exact: 16, contains: 16, prefix: 16, suffix: 16 }"
        );
        assert_eq!(globs(&pats), empty);
        assert!(lookup.has_affixes());
        for text in ["e15", "a c7 b", "p0 and more", "more and s9"] {
            assert!(lookup.text(text), "{text}");
        }
        for text in ["e16", "e1 ", "c", "xp0", "s9x"] {
            assert!(!lookup.text(text), "{text}");
        }

        let few = [
            many(Glob::Exact, MIN_INDEXED - 1, "e"),
            many(Glob::Contains, MIN_INDEXED - 1, "c"),
            many(Glob::Prefix, MIN_INDEXED - 1, "p"),
            many(Glob::Suffix, MIN_INDEXED - 1, "s"),
        ]
        .concat();
        let mut kept = few.clone();
        assert!(Lookup::build(&mut kept, false).is_none());
        assert_eq!(globs(&kept), globs(&few));
    }

    /// A text written twice is kept once: the exact texts a lookup lists (the services an
    /// index reads from a rule) have no repeats, in any case (`E0` is `e0` uncased).
    #[test]
    fn a_repeated_text_is_kept_once() {
        let mut pats = many(Glob::Exact, MIN_INDEXED, "e");
        pats.push(pat(Glob::Exact("e0".into())));
        pats.push(pat(Glob::Exact("E0".into())));
        let lookup = Lookup::build(&mut pats, false).unwrap();
        let texts: Vec<&str> = lookup.exact_texts().collect();
        assert_eq!(texts.len(), MIN_INDEXED, "{texts:?}");
        assert_eq!(texts[0], "e0");
    }

    /// A flag is found only when some exact pattern is that flag.
    #[test]
    fn a_flag_is_found_only_when_written() {
        let mut texts = many(Glob::Exact, MIN_INDEXED, "e");
        let lookup = Lookup::build(&mut texts, false).unwrap();
        assert!(!lookup.flag(true) && !lookup.flag(false));
        let mut with_true = many(Glob::Exact, MIN_INDEXED, "e");
        with_true[3].boolean = Some(true);
        let lookup = Lookup::build(&mut with_true, false).unwrap();
        assert!(lookup.flag(true) && !lookup.flag(false));
    }
}
