//! The condition language: `and`, `or`, `not`, parentheses, names, `1 of sel_*`, `all of them`.
//!
//! Precedence is `not` > `and` > `or`, as in Sigma. Parsing gives a tree of names with the
//! byte offset of each token; `compile` resolves names to selections and macros and reports
//! unknown ones at their offset.

/// A parsed condition, names not yet resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Ast {
    Name {
        name: String,
        offset: usize,
    },
    /// `1 of pattern` (`all == false`) or `all of pattern`; `pattern == None` is `them`.
    Of {
        all: bool,
        pattern: Option<String>,
        offset: usize,
    },
    Not(Box<Ast>),
    And(Vec<Ast>),
    Or(Vec<Ast>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the condition text.
    pub offset: usize,
    pub message: String,
}

/// Nesting deeper than this is refused (no stack overflow on a hostile rule file).
const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok<'a> {
    Open,
    Close,
    Word(&'a str),
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'*')
}

fn tokenize(text: &str) -> Result<Vec<(Tok<'_>, usize)>, ParseError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push((Tok::Open, i));
                i += 1;
            }
            b')' => {
                out.push((Tok::Close, i));
                i += 1;
            }
            _ if is_word_byte(b) => {
                let start = i;
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                out.push((Tok::Word(&text[start..i]), start));
            }
            _ => {
                let c = text[i..].chars().next().unwrap_or('?');
                let hint = if c == '|' {
                    " (aggregations go in `session:`, not in the condition)"
                } else {
                    ""
                };
                return Err(ParseError {
                    offset: i,
                    message: format!("unexpected character `{c}` in condition{hint}"),
                });
            }
        }
    }
    Ok(out)
}

fn is_kw(word: &str, kw: &str) -> bool {
    word.eq_ignore_ascii_case(kw)
}

struct Parser<'a> {
    toks: Vec<(Tok<'a>, usize)>,
    next: usize,
    end: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<(Tok<'a>, usize)> {
        self.toks.get(self.next).copied()
    }

    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some((Tok::Word(w), _)) if is_kw(w, kw))
    }

    fn err<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            offset,
            message: message.into(),
        })
    }

    fn or(&mut self, depth: usize) -> Result<Ast, ParseError> {
        let mut items = vec![self.and(depth)?];
        while self.peek_kw("or") {
            self.next += 1;
            items.push(self.and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Ast::Or(items)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Ast, ParseError> {
        let mut items = vec![self.not(depth)?];
        while self.peek_kw("and") {
            self.next += 1;
            items.push(self.not(depth)?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Ast::And(items)
        })
    }

    fn not(&mut self, depth: usize) -> Result<Ast, ParseError> {
        if depth > MAX_DEPTH {
            let offset = self.peek().map_or(self.end, |(_, o)| o);
            return self.err(offset, "condition nested too deeply");
        }
        if self.peek_kw("not") {
            self.next += 1;
            return Ok(Ast::Not(Box::new(self.not(depth + 1)?)));
        }
        self.atom(depth)
    }

    fn atom(&mut self, depth: usize) -> Result<Ast, ParseError> {
        let Some((tok, offset)) = self.peek() else {
            return self.err(
                self.end,
                "condition ends early: expected a selection name, `not`, `(`, `1 of` or `all of`",
            );
        };
        self.next += 1;
        match tok {
            Tok::Open => {
                let inner = self.or(depth + 1)?;
                match self.peek() {
                    Some((Tok::Close, _)) => {
                        self.next += 1;
                        Ok(inner)
                    }
                    Some((_, o)) => self.err(o, "expected `)`"),
                    None => self.err(offset, "unclosed `(`"),
                }
            }
            Tok::Close => self.err(offset, "unexpected `)`"),
            Tok::Word(w) if is_kw(w, "and") || is_kw(w, "or") || is_kw(w, "of") => {
                self.err(offset, format!("expected a selection name before `{w}`"))
            }
            Tok::Word(w)
                if (w == "1" || is_kw(w, "any") || is_kw(w, "all")) && self.peek_kw("of") =>
            {
                self.next += 1;
                let all = is_kw(w, "all");
                match self.peek() {
                    Some((Tok::Word(p), _))
                        if !is_kw(p, "and") && !is_kw(p, "or") && !is_kw(p, "not") =>
                    {
                        self.next += 1;
                        let pattern = (!is_kw(p, "them")).then(|| p.to_owned());
                        Ok(Ast::Of {
                            all,
                            pattern,
                            offset,
                        })
                    }
                    Some((_, o)) => self.err(
                        o,
                        format!("expected a name pattern or `them` after `{w} of`"),
                    ),
                    None => self.err(
                        self.end,
                        format!("expected a name pattern or `them` after `{w} of`"),
                    ),
                }
            }
            Tok::Word(w) if w.contains('*') => self.err(
                offset,
                format!("a pattern like `{w}` needs `1 of` or `all of` before it"),
            ),
            Tok::Word(w) => Ok(Ast::Name {
                name: w.to_owned(),
                offset,
            }),
        }
    }
}

/// Parses a condition.
pub fn parse(text: &str) -> Result<Ast, ParseError> {
    let toks = tokenize(text)?;
    if toks.is_empty() {
        return Err(ParseError {
            offset: 0,
            message: "empty condition".to_owned(),
        });
    }
    let mut p = Parser {
        toks,
        next: 0,
        end: text.len(),
    };
    let ast = p.or(0)?;
    if let Some((tok, offset)) = p.peek() {
        let message = match tok {
            Tok::Close => "unexpected `)`".to_owned(),
            Tok::Open => "expected `and` or `or` before `(`".to_owned(),
            Tok::Word(w) => format!("expected `and` or `or` before `{w}`"),
        };
        return Err(ParseError { offset, message });
    }
    Ok(ast)
}

/// Whether `name` matches a `1 of` pattern (`*` matches any run of characters).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if name.len() < first.len() + last.len() || !name.starts_with(first) || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str, offset: usize) -> Ast {
        Ast::Name {
            name: n.to_owned(),
            offset,
        }
    }

    #[test]
    fn precedence_not_and_or() {
        // a or not b and c  ==  a or ((not b) and c)
        assert_eq!(
            parse("a or not b and c").unwrap(),
            Ast::Or(vec![
                name("a", 0),
                Ast::And(vec![Ast::Not(Box::new(name("b", 9))), name("c", 15)]),
            ])
        );
        assert_eq!(
            parse("(a or b) and c").unwrap(),
            Ast::And(vec![
                Ast::Or(vec![name("a", 1), name("b", 6)]),
                name("c", 13)
            ])
        );
    }

    #[test]
    fn quantifiers() {
        assert_eq!(
            parse("1 of sel_* and all of them").unwrap(),
            Ast::And(vec![
                Ast::Of {
                    all: false,
                    pattern: Some("sel_*".into()),
                    offset: 0
                },
                Ast::Of {
                    all: true,
                    pattern: None,
                    offset: 15
                },
            ])
        );
    }

    #[test]
    fn errors_point_at_the_token() {
        let cases = [
            ("a and", 5, "ends early"),
            ("a b", 2, "expected `and` or `or` before `b`"),
            ("(a or b", 0, "unclosed `(`"),
            ("a )", 2, "unexpected `)`"),
            ("a | count() > 5", 2, "unexpected character `|`"),
            ("and a", 0, "expected a selection name before `and`"),
            ("of them", 0, "expected a selection name before `of`"),
            ("sel_*", 0, "needs `1 of`"),
            ("1 of", 4, "after `1 of`"),
            ("1 of not a", 5, "after `1 of`"),
            ("all of or a", 7, "after `all of`"),
            ("", 0, "empty condition"),
        ];
        for (text, offset, fragment) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.offset, offset, "{text}: {e:?}");
            assert!(e.message.contains(fragment), "{text}: {}", e.message);
        }
    }

    #[test]
    fn nesting_by_parentheses_or_by_not_stops_at_the_limit() {
        let parens = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        let nots = |n: usize| format!("{}a", "not ".repeat(n));
        for deep in [parens, nots] {
            assert!(parse(&deep(MAX_DEPTH)).is_ok(), "{}", deep(MAX_DEPTH));
            for n in [MAX_DEPTH + 1, 100_000] {
                let e = parse(&deep(n)).unwrap_err();
                assert!(e.message.contains("too deeply"), "{n}: {e:?}");
            }
        }
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("sel_*", "sel_a"));
        assert!(pattern_matches("sel_*", "sel_"));
        assert!(!pattern_matches("sel_*", "filter"));
        assert!(pattern_matches("*_admin*", "iam_admin_x"));
        assert!(pattern_matches("a*b*c", "a_b_c"));
        assert!(!pattern_matches("a*b*c", "a_c"));
        // The prefix and the suffix may not overlap in the name.
        assert!(!pattern_matches("ab*b", "ab"));
        assert!(pattern_matches("ab*b", "abb"));
        // Each middle part is found after the one before it, not again in the same place.
        assert!(!pattern_matches("a*b*b*c", "a_b_c"));
        assert!(pattern_matches("a*b*b*c", "a_b_b_c"));
        assert!(pattern_matches("exact", "exact"));
    }
}
