//! Sigma filters: which rules each filter document names, and the condition it adds to them.
//!
//! A filter (`filter: {rules, <selections>, condition}` beside a `logsource`) tunes rules it
//! does not edit. Its condition is added to each rule it names as one more condition every
//! match must meet — the rule's condition becomes `(rule) and (filter)`, as pySigma applies
//! filters, so a filter that drops what its selection matches says `condition: not selection`.
//! Its selections are compiled into each rule, with that rule's field names (its logsource's
//! pipeline), as if the rule had written them.
//!
//! A filter is checked whole before any rule is compiled: `rules:` names rules by `id` or
//! `name`, each must be loaded and have a `logsource` the filter's covers (every part the
//! filter names is the rule's: `product: aws` covers a CloudTrail rule); `rules: any` takes
//! every rule it covers, and must find one. Its condition may name only its own selections.
//! A filter that changes no rule is an error where it is written, not a silent no-op.

use std::collections::HashMap;

use super::super::condition::{self, Ast};
use super::super::detection::Expr;
use super::super::sigma;
use super::super::spec::{Doc, FilterRules, FilterSpec, LogsourceSpec, Pos, Str};
use super::{Builder, Compiler};

/// A filter, checked.
pub(super) struct FilterDef<'d> {
    file: usize,
    spec: &'d FilterSpec,
    /// For messages: the title, else the id, else "filter N".
    title: String,
    ast: Ast,
}

/// Every usable filter, and the filters that apply to each rule document.
#[derive(Default)]
pub(super) struct Filters<'d> {
    defs: Vec<FilterDef<'d>>,
    /// (file, position of the rule's document) → indices into `defs`, in load order.
    by_rule: HashMap<(usize, Pos), Vec<usize>>,
}

/// A rule document a filter can name.
struct Target<'d> {
    file: usize,
    doc: &'d Doc,
}

impl Target<'_> {
    fn label(&self) -> &str {
        self.doc.id.as_ref().map_or("?", |id| id.as_str())
    }
}

impl<'d> Compiler<'d> {
    /// Checks every filter document and records which rules each applies to.
    pub(super) fn collect_filters(&mut self) {
        let files = self.files;
        let mut targets: Vec<Target<'d>> = Vec::new();
        for (f, file) in files.iter().enumerate() {
            for doc in file.docs.iter().filter(|d| d.is_rule_doc()) {
                targets.push(Target { file: f, doc });
            }
        }
        for (f, file) in files.iter().enumerate() {
            for (n, doc) in file.docs.iter().enumerate() {
                let Some(spec) = &doc.filter else { continue };
                let title = doc
                    .title
                    .as_ref()
                    .or(doc.id.as_ref())
                    .map_or_else(|| format!("filter {}", n + 1), |t| t.value.clone());
                let Some(ast) = self.filter_condition(f, spec, &title) else {
                    continue;
                };
                // Reported while reading: a filter needs them.
                let (Some(logsource), Some(rules)) = (&doc.logsource, &spec.rules) else {
                    continue;
                };
                let i = self.filters.defs.len();
                let mut applies = Vec::new();
                match rules {
                    FilterRules::Named(names) => {
                        for name in names {
                            applies.extend(self.named(f, &title, logsource, name, &targets));
                        }
                    }
                    FilterRules::Any(any) => {
                        applies.extend(
                            targets
                                .iter()
                                .filter(|t| {
                                    t.doc
                                        .logsource
                                        .as_ref()
                                        .is_some_and(|l| sigma::covers(logsource, l))
                                })
                                .map(|t| (t.file, t.doc.pos)),
                        );
                        if applies.is_empty() {
                            let message = format!(
                                "filter `{title}`: no loaded rule has a logsource within {}",
                                sigma::describe_spec(logsource)
                            );
                            self.err(f, any.pos, message);
                        }
                    }
                }
                for rule in applies {
                    self.filters.by_rule.entry(rule).or_default().push(i);
                }
                self.filters.defs.push(FilterDef {
                    file: f,
                    spec,
                    title,
                    ast,
                });
            }
        }
    }

    /// The rules `name` refers to (by id, else by `name`), when the filter covers their
    /// logsource; otherwise an error at `name`.
    fn named(
        &mut self,
        file: usize,
        title: &str,
        logsource: &LogsourceSpec,
        name: &Str,
        targets: &[Target<'d>],
    ) -> Vec<(usize, Pos)> {
        let by = |key: fn(&Doc) -> Option<&Str>| -> Vec<&Target<'d>> {
            targets
                .iter()
                .filter(|t| key(t.doc).is_some_and(|k| k.value == name.value))
                .collect()
        };
        let mut found = by(|d| d.id.as_ref());
        if found.is_empty() {
            found = by(|d| d.name.as_ref());
        }
        if found.is_empty() {
            let message = format!(
                "filter `{title}`: no loaded rule has the id or name `{}`",
                name.value
            );
            self.err(file, name.pos, message);
            return Vec::new();
        }
        let mut out = Vec::with_capacity(found.len());
        for t in found {
            let message = match &t.doc.logsource {
                None => format!(
                    "filter `{title}`: rule `{}` has no `logsource`; a Sigma filter applies to \
                     Sigma rules",
                    t.label()
                ),
                Some(l) if !sigma::covers(logsource, l) => format!(
                    "filter `{title}` is for logsource {}, and rule `{}` for {}",
                    sigma::describe_spec(logsource),
                    t.label(),
                    sigma::describe_spec(l)
                ),
                Some(_) => {
                    out.push((t.file, t.doc.pos));
                    continue;
                }
            };
            self.err(file, name.pos, message);
        }
        out
    }

    /// The filter's condition, parsed, naming only the filter's selections.
    fn filter_condition(&mut self, file: usize, spec: &FilterSpec, title: &str) -> Option<Ast> {
        let text = spec.condition.as_ref()?;
        let ast = match condition::parse(&text.value) {
            Ok(ast) => ast,
            Err(e) => {
                self.err(file, text.at(e.offset), e.message);
                return None;
            }
        };
        let names: Vec<&str> = spec.selections.iter().map(|(s, _)| s.as_str()).collect();
        let mut unknown = Vec::new();
        unknown_names(&ast, &names, &mut unknown);
        for (message, offset) in &unknown {
            self.err(
                file,
                text.at(*offset),
                format!("filter `{title}`: {message}"),
            );
        }
        unknown.is_empty().then_some(ast)
    }

    /// The conditions of the filters that name the rule document at (`file`, `doc`), their
    /// selections compiled into `b` with the rule's field names (`vendor`).
    pub(super) fn apply_filters(
        &mut self,
        file: usize,
        doc: &Doc,
        vendor: Option<&sigma::Vendor>,
        b: &mut Builder,
    ) -> Vec<Expr> {
        let Some(applying) = self.filters.by_rule.get(&(file, doc.pos)).cloned() else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(applying.len());
        for i in applying {
            let FilterDef {
                file: filter_file,
                spec,
                ref title,
                ref ast,
            } = self.filters.defs[i];
            let (title, ast) = (title.clone(), ast.clone());
            let ctx = self.ctx_of(filter_file);
            let mut own = Vec::with_capacity(spec.selections.len());
            for (name, sel) in &spec.selections {
                let groups = self
                    .selection(filter_file, ctx, sel, vendor)
                    .unwrap_or_default();
                let index = b.add(format!("filter {title}: {}", name.value), groups);
                own.push((name.value.as_str(), index));
            }
            out.push(resolve(&ast, &own));
        }
        out
    }
}

/// What in a filter's condition names none of its selections (`names`): a message and the
/// offset of the word.
fn unknown_names(ast: &Ast, names: &[&str], out: &mut Vec<(String, usize)>) {
    match ast {
        Ast::Name { name, offset } if !names.contains(&name.as_str()) => {
            out.push((format!("`{name}` is no selection of the filter"), *offset));
        }
        Ast::Of {
            pattern, offset, ..
        } => {
            let picks = |n: &&str| match pattern {
                Some(p) => condition::pattern_matches(p, n),
                None => !n.starts_with('_'),
            };
            if !names.iter().any(picks) {
                let what = pattern.as_deref().unwrap_or("them");
                out.push((
                    format!("`of {what}` matches no selection of the filter"),
                    *offset,
                ));
            }
        }
        Ast::Not(inner) => unknown_names(inner, names, out),
        Ast::And(items) | Ast::Or(items) => items.iter().for_each(|a| unknown_names(a, names, out)),
        Ast::Name { .. } => {}
    }
}

/// A filter's condition over its selections (`own`: name → selection index).
fn resolve(ast: &Ast, own: &[(&str, u32)]) -> Expr {
    match ast {
        Ast::Not(inner) => Expr::Not(Box::new(resolve(inner, own))),
        Ast::And(items) => Expr::And(items.iter().map(|a| resolve(a, own)).collect()),
        Ast::Or(items) => Expr::Or(items.iter().map(|a| resolve(a, own)).collect()),
        Ast::Name { name, .. } => own
            .iter()
            .find(|(n, _)| n == name)
            .map_or(Expr::Const(false), |(_, i)| Expr::Sel(*i)),
        Ast::Of { all, pattern, .. } => {
            let picked: Box<[Expr]> = own
                .iter()
                .filter(|(n, _)| match pattern {
                    Some(p) => condition::pattern_matches(p, n),
                    None => !n.starts_with('_'),
                })
                .map(|(_, i)| Expr::Sel(*i))
                .collect();
            if *all {
                Expr::And(picked)
            } else {
                Expr::Or(picked)
            }
        }
    }
}
