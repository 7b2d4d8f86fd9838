//! Patterns in grants: `*` any run of characters, `?` one character, everything else literal;
//! case-insensitive (ASCII) unless made cased. Matching is linear in practice (one backtrack
//! point: the last `*`).

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    text: Box<str>,
    cased: bool,
}

impl Pattern {
    pub fn new(text: &str, cased: bool) -> Pattern {
        Pattern {
            text: text.into(),
            cased,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, value: &str) -> bool {
        let eq = |p: u8, v: u8| p == b'?' || p == v || (!self.cased && p.eq_ignore_ascii_case(&v));
        let (p, v) = (self.text.as_bytes(), value.as_bytes());
        let (mut i, mut j) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while j < v.len() {
            if i < p.len() && p[i] == b'*' {
                star = Some((i, j));
                i += 1;
            } else if i < p.len() && eq(p[i], v[j]) {
                i += 1;
                j += 1;
            } else if let Some((si, sj)) = star {
                i = si + 1;
                j = sj + 1;
                star = Some((si, sj + 1));
            } else {
                return false;
            }
        }
        p[i..].iter().all(|&c| c == b'*')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_case() {
        let p = Pattern::new("s3:Get*", false);
        assert!(p.matches("s3:GetObject"));
        assert!(p.matches("S3:getobjectacl"));
        assert!(!p.matches("s3:PutObject"));
        let r = Pattern::new("invoices-2024/reports/*", true);
        assert!(r.matches("invoices-2024/reports/done.json"));
        assert!(!r.matches("Invoices-2024/reports/done.json"));
        assert!(!r.matches("invoices-2024/2024/10/INV-1.pdf"));
        assert!(Pattern::new("a*b*c", false).matches("aXbYbZc"));
        assert!(!Pattern::new("a*b*c", false).matches("aXbYbZ"));
        assert!(Pattern::new("INV-????.pdf", true).matches("INV-2093.pdf"));
        assert!(Pattern::new("*", true).matches(""));
    }
}
