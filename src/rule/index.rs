//! Which rules can match an event, decided from the event's action service before any rule
//! runs.
//!
//! At load, each rule's condition (for a sequence: its steps and `until`) is reduced to the set
//! of action services it can match — `iam`, `s3`, `okta` … — or to "any" when it does not
//! constrain the action (a rule on `network.ip`, on `agent.id`, on a vendor field). The engine
//! then evaluates only the rules indexed under the event's service plus the unconstrained
//! ones, in rule order, so the order-dependent outcomes (one kill per session) are unchanged.
//! Skipping a rule that cannot match is invisible: every kind of session logic ignores events
//! its detection does not match.

use std::collections::{BTreeSet, HashMap};

use smallvec::SmallVec;

use super::detection::{Detection, Expr, Glob, Test};
use super::field::Field;
use super::{RuleSet, SessionLogic};

/// Services a condition can match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Services {
    Any,
    Only(BTreeSet<Box<str>>),
}

impl Services {
    fn none() -> Self {
        Services::Only(BTreeSet::new())
    }

    fn union(self, other: Services) -> Services {
        match (self, other) {
            (Services::Only(mut a), Services::Only(b)) => {
                a.extend(b);
                Services::Only(a)
            }
            _ => Services::Any,
        }
    }

    fn intersect(self, other: Services) -> Services {
        match (self, other) {
            (Services::Any, x) | (x, Services::Any) => x,
            (Services::Only(a), Services::Only(b)) => {
                Services::Only(a.intersection(&b).cloned().collect())
            }
        }
    }
}

/// The rules worth evaluating for each action service.
#[derive(Debug, Default)]
pub struct RuleIndex {
    /// Rules that can match any service.
    any: Vec<u32>,
    by_service: HashMap<Box<str>, Vec<u32>>,
}

impl RuleIndex {
    pub fn new(rules: &RuleSet) -> RuleIndex {
        let mut index = RuleIndex::default();
        for (i, rule) in rules.rules.iter().enumerate() {
            let d = &rule.detection;
            let services = match &rule.session {
                Some(SessionLogic::Sequence { steps, until, .. }) => steps
                    .iter()
                    .map(|s| &s.condition.expr)
                    .chain(until.as_ref().map(|u| &u.expr))
                    .fold(Services::none(), |acc, e| acc.union(d.services(e))),
                Some(SessionLogic::Duration {
                    until: Some(until), ..
                }) => d
                    .services(&d.condition().expr)
                    .union(d.services(&until.expr)),
                _ => d.services(&d.condition().expr),
            };
            match services {
                Services::Any => index.any.push(i as u32),
                Services::Only(set) => {
                    for service in set {
                        index.by_service.entry(service).or_default().push(i as u32);
                    }
                }
            }
        }
        index
    }

    /// The rules to evaluate for an event of `service`, in rule order.
    pub fn candidates(&self, service: &str, out: &mut SmallVec<[u32; 32]>) {
        out.clear();
        // Services are indexed in lowercase. A name with capitals is lowercased on the stack,
        // or, past 64 bytes (no real service name is that long), in a string of its own.
        let mut lower = [0u8; 64];
        let long;
        let key = if !service.bytes().any(|b| b.is_ascii_uppercase()) {
            service
        } else if service.len() <= lower.len() {
            let bytes = &mut lower[..service.len()];
            bytes.copy_from_slice(service.as_bytes());
            bytes.make_ascii_lowercase();
            std::str::from_utf8(bytes).unwrap_or(service)
        } else {
            long = service.to_ascii_lowercase();
            &long
        };
        let indexed = self.by_service.get(key).map_or(&[][..], Vec::as_slice);
        // Both lists are in rule order: merge them.
        let (mut a, mut b) = (self.any.iter().peekable(), indexed.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => {
                    out.push(x);
                    a.next();
                }
                (Some(_), Some(&&y)) => {
                    out.push(y);
                    b.next();
                }
                (Some(&&x), None) => {
                    out.push(x);
                    a.next();
                }
                (None, Some(&&y)) => {
                    out.push(y);
                    b.next();
                }
                (None, None) => break,
            }
        }
    }

    /// How many rules are indexed by service (the rest run on every event).
    pub fn indexed_rules(&self) -> usize {
        let mut all: BTreeSet<u32> = BTreeSet::new();
        for rules in self.by_service.values() {
            all.extend(rules);
        }
        all.len()
    }
}

impl Detection {
    /// The action services `expr` can match.
    pub(crate) fn services(&self, expr: &Expr) -> Services {
        match expr {
            Expr::Const(true) => Services::Any,
            Expr::Const(false) => Services::none(),
            Expr::Sel(i) => self.selection_services(*i),
            Expr::Not(_) => Services::Any,
            Expr::And(es) => es
                .iter()
                .fold(Services::Any, |acc, e| acc.intersect(self.services(e))),
            Expr::Or(es) => es
                .iter()
                .fold(Services::none(), |acc, e| acc.union(self.services(e))),
        }
    }

    fn selection_services(&self, i: u32) -> Services {
        self.selections[i as usize]
            .groups
            .iter()
            .fold(Services::none(), |acc, &(start, end)| {
                let group = self.preds[start as usize..end as usize]
                    .iter()
                    .fold(Services::Any, |acc, p| {
                        acc.intersect(pred_services(&p.field, &p.test))
                    });
                acc.union(group)
            })
    }
}

/// The services a single predicate allows: only equality-like tests on `action` or
/// `action.service` constrain it.
fn pred_services(field: &Field, test: &Test) -> Services {
    let Test::Text {
        pats,
        all: false,
        lookup,
        ..
    } = test
    else {
        return Services::Any;
    };
    if !matches!(field, Field::Action | Field::ActionService) {
        return Services::Any;
    }
    // A long list: its exact values are listed; a prefix or substring in an automaton is not.
    let indexed: Vec<Glob> = match lookup {
        Some(l) if l.has_affixes() => return Services::Any,
        Some(l) => l.exact_texts().map(|t| Glob::Exact(t.into())).collect(),
        None => Vec::new(),
    };
    let mut set = BTreeSet::new();
    for glob in pats.iter().map(|p| &p.glob).chain(&indexed) {
        let service = match (field, glob) {
            (Field::ActionService, Glob::Exact(s)) => Some(&**s),
            (Field::Action, Glob::Exact(s) | Glob::Prefix(s)) => {
                s.split_once(':').map(|(service, _)| service)
            }
            _ => None,
        };
        match service {
            Some(s) => {
                set.insert(s.to_ascii_lowercase().into_boxed_str());
            }
            None => return Services::Any,
        }
    }
    Services::Only(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::RuleSet;

    fn index(yaml: &str) -> RuleIndex {
        let rules = RuleSet::from_yaml("t.yml", yaml).unwrap_or_else(|e| panic!("{e}"));
        RuleIndex::new(&rules)
    }

    fn candidates(index: &RuleIndex, service: &str) -> Vec<u32> {
        let mut out = SmallVec::new();
        index.candidates(service, &mut out);
        out.to_vec()
    }

    #[test]
    fn rules_are_indexed_by_the_services_their_conditions_allow() {
        let i = index(
            r#"
id: r0
detection:
  a: {action|in: ['iam:AttachUserPolicy', 'S3:GetObject']}
  condition: a
---
id: r1
detection:
  anything: {network.ip|exists: true}
  condition: anything
---
id: r2
detection:
  okta: {action: 'okta:user.*'}
  other: {action.service: github}
  ip: {network.ip|exists: true}
  condition: (okta or other) and ip
---
id: r3
detection:
  a: {action|contains: Policy}
  condition: a
---
id: r4
detection:
  a: {action: 'iam:CreateUser'}
  condition: not a
"#,
        );
        assert_eq!(candidates(&i, "iam"), vec![0, 1, 3, 4]);
        assert_eq!(candidates(&i, "s3"), vec![0, 1, 3, 4]);
        assert_eq!(candidates(&i, "okta"), vec![1, 2, 3, 4]);
        assert_eq!(candidates(&i, "GitHub"), vec![1, 2, 3, 4]);
        assert_eq!(candidates(&i, "k8s"), vec![1, 3, 4]);
        // A service name longer than the lowercasing buffer is not cut or lowercased past the
        // buffer's end (no rule names this one).
        assert_eq!(candidates(&i, &"IAM".repeat(30)), vec![1, 3, 4]);
        assert_eq!(i.indexed_rules(), 2);
    }

    #[test]
    fn a_service_name_of_any_length_is_looked_up_in_any_case() {
        let long = "Custom".repeat(12);
        let i = index(&format!(
            "id: r0\ndetection:\n  a: {{action: '{long}:Export'}}\n  condition: a\n"
        ));
        for service in [
            long.clone(),
            long.to_ascii_lowercase(),
            long.to_ascii_uppercase(),
        ] {
            assert_eq!(candidates(&i, &service), vec![0], "{service}");
        }
        assert_eq!(candidates(&i, &long[..64]), Vec::<u32>::new());
    }

    #[test]
    fn a_long_list_is_indexed_by_its_exact_values() {
        // 20 actions of two services: their own hash set, still read for the index. Twenty
        // prefixes are an automaton: the rule is looked at for every service.
        let exact: Vec<String> = (0..20)
            .map(|k| format!("'{}:Op{k}'", if k % 2 == 0 { "iam" } else { "KMS" }))
            .collect();
        let prefixes: Vec<String> = (0..20).map(|k| format!("'svc{k}:*'")).collect();
        let i = index(&format!(
            "id: r0\ndetection:\n  a: {{action|in: [{}]}}\n  condition: a\n---\n\
             id: r1\ndetection:\n  a: {{action: [{}]}}\n  condition: a\n",
            exact.join(", "),
            prefixes.join(", ")
        ));
        assert_eq!(candidates(&i, "iam"), vec![0, 1]);
        assert_eq!(candidates(&i, "kms"), vec![0, 1]);
        assert_eq!(candidates(&i, "s3"), vec![1]);
        assert_eq!(i.indexed_rules(), 1);
    }
}
