//! Loading a rule pack: files → text form (`spec`) → compiled `Rule`s, or every error.
//!
//! Loading never stops at the first problem: each file is read, every definition and rule is
//! compiled, and all errors are returned together with file, line, column and rule id. A pack
//! with any error is not loaded at all, so a broken file never replaces working rules.
//!
//! Scopes: `lists:`, `placeholders:` and `macros:` in a rule file are visible to every rule of
//! that file; a file holding only such definitions is shared by all files of its directory. A
//! file's own definitions shadow shared ones of the same name. Lists may refer to lists
//! (`$other`) and condition macros to macros; cycles are errors. Placeholders are lists in a
//! namespace of their own, for Sigma's `|expand` (`%name%` in a value).
//!
//! Sigma filters (documents with `filter:`) name rules by id or `name`; each rule they name
//! gets the filter's condition as one more condition its matches must meet (`filter`).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::condition::{self, Ast};
use super::correlation;
use super::detection::{Condition, Detection, Expr, Pred, Selection, Test};
use super::modifier;
use super::sigma;
use super::spec::{
    self, did_you_mean, AggregateSpec, DecisionsSpec, Doc, Item, LearnSpec, ListBody, ListFile,
    ListSpec, MacroBody, MacroSpec, OutputPart, Pos, Scalar, SelectionSpec, SessionSpec, SpecError,
    Str, ThresholdSpec, ToleranceSpec, ValuesSpec,
};
use super::text::{self, TextError};
use super::{
    ActionKind, CmpOp, ExpectedDecision, Fire, GrantCheck, Learn, Mode, Output, OutputPiece, Rule,
    RuleSet, RuleTest, SessionLogic, Severity, Since, Step, StepAggregate, TestExpect, Threshold,
    Tolerance,
};
use crate::event::Source;
use crate::rule::field::Field;

mod filter;

/// The largest count threshold a rule may set: far above any burst a session makes in one
/// window, far below where counting would stop being exact.
const MAX_COUNT_THRESHOLD: f64 = 10_000_000.0;

/// The largest `value_sum` threshold: sums are exact in thousandths up to 9 × 10¹² units.
const MAX_SUM_THRESHOLD: f64 = 9e12;

/// One problem found while loading rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the file as a whole (it cannot be read).
    pub line: usize,
    pub col: usize,
    /// The rule the problem is in, when it is in a rule with an id.
    pub rule_id: Option<String>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        f.write_str(": ")?;
        if let Some(id) = &self.rule_id {
            write!(f, "rule `{id}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found while loading a rule pack, in file order then position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadErrors {
    pub errors: Vec<LoadError>,
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

impl RuleSet {
    /// Loads rule files and directories (recursively, `*.yml` and `*.yaml`, in sorted order;
    /// files named explicitly are read whatever their extension). Rules come out sorted by
    /// file, then position in the file.
    ///
    /// Nothing can block the load: in a directory, a rule file that is not a regular file (a
    /// FIFO, a socket, a device) or a broken symlink is a load error and is never opened. A
    /// file named explicitly is read whatever it is (`<(generate-rules)` is a pipe).
    pub fn load(paths: &[PathBuf]) -> Result<RuleSet, LoadErrors> {
        let mut errors = Vec::new();
        // (path, found by walking a directory)
        let mut files = Vec::new();
        for path in paths {
            if path.is_dir() {
                if let Err(e) = walk(path, &mut files) {
                    errors.push(file_error(path, format!("cannot read directory: {e}")));
                }
            } else {
                files.push((path.clone(), false));
            }
        }
        files.sort();
        files.dedup_by(|b, a| a.0 == b.0);
        let sources = files
            .into_iter()
            .map(|(path, walked)| {
                let text = text::read(&path, walked, text::MAX_RULE_FILE_BYTES);
                (path, text)
            })
            .collect();
        compile(sources, errors)
    }

    /// Compiles one file's text, as if loaded from `file` (tests, checks of a single file).
    pub fn from_yaml(file: impl Into<PathBuf>, text: &str) -> Result<RuleSet, LoadErrors> {
        compile(vec![(file.into(), Ok(text.to_owned()))], Vec::new())
    }
}

fn file_error(path: &Path, message: String) -> LoadError {
    LoadError {
        file: path.to_owned(),
        line: 0,
        col: 0,
        rule_id: None,
        message,
    }
}

/// Rule files under `dir`: every `*.yml`/`*.yaml` whatever it is (reading checks that it is a
/// regular file before opening it), in subdirectories too; hidden names are skipped.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, bool)>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            out.push((path, true));
        }
    }
    Ok(())
}

/// A file read into its text form.
struct FileSpec {
    path: PathBuf,
    /// Index into the list of distinct directories.
    dir: usize,
    docs: Vec<Doc>,
    /// Only `lists:`/`placeholders:`/`macros:`: shared with its directory.
    shared: bool,
}

/// Where a definition is visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Scope {
    File(usize),
    Dir(usize),
}

/// Where names are looked up from: a file's own definitions, then its directory's shared ones.
#[derive(Clone, Copy, Debug)]
struct Ctx {
    file: Option<usize>,
    dir: usize,
}

struct ListDef<'d> {
    name: &'d Str,
    body: &'d ListBody,
    file: usize,
    ctx: Ctx,
    /// "list", or "placeholder" (a list for `%name%`, in its own namespace).
    what: &'static str,
}

enum ListState {
    Todo,
    Busy,
    Done(Option<Rc<[Item]>>),
}

struct MacroDef<'d> {
    spec: &'d MacroSpec,
    file: usize,
    ctx: Ctx,
}

#[derive(Clone, Copy, PartialEq)]
enum Check {
    Todo,
    Busy,
    Ok,
    Broken,
}

/// A macro after its own checks: a compiled selection, or a parsed condition.
enum MacroData {
    Selection(Option<Vec<Vec<Pred>>>),
    Condition { ast: Option<Ast>, check: Check },
}

struct Compiler<'d> {
    files: &'d [FileSpec],
    errors: Vec<LoadError>,
    lists: Vec<ListDef<'d>>,
    list_index: HashMap<(Scope, &'d str), usize>,
    /// Placeholders by name, into `lists` (their values are read and expanded as lists').
    placeholder_index: HashMap<(Scope, &'d str), usize>,
    list_state: Vec<ListState>,
    macros: Vec<MacroDef<'d>>,
    macro_index: HashMap<(Scope, &'d str), usize>,
    macro_data: Vec<MacroData>,
    /// List files read, with the rule file that names them (errors sort with that file).
    list_files: Vec<(PathBuf, usize)>,
    /// Tests over one whole list, by (list, `modifier::share_key`): built once however many
    /// rules and fields use them.
    list_tests: HashMap<(usize, String), Test>,
    /// Sigma filters and the rules they apply to.
    filters: filter::Filters<'d>,
}

/// Errors listed per list file and rule entry; a file of bad entries is not a screenful each.
const LIST_FILE_ERRORS: usize = 10;

fn compile(
    sources: Vec<(PathBuf, Result<String, TextError>)>,
    mut errors: Vec<LoadError>,
) -> Result<RuleSet, LoadErrors> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut files = Vec::new();
    for (path, text) in sources {
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                errors.push(LoadError {
                    file: path,
                    line: e.pos.line,
                    col: e.pos.col,
                    rule_id: None,
                    message: e.message,
                });
                continue;
            }
        };
        let parent = path.parent().map(Path::to_owned).unwrap_or_default();
        let dir = dirs.iter().position(|d| *d == parent).unwrap_or_else(|| {
            dirs.push(parent);
            dirs.len() - 1
        });
        let (docs, spec_errors) = match spec::read_file(&text) {
            Ok(read) => read,
            Err(e) => {
                errors.push(LoadError {
                    file: path.clone(),
                    line: e.pos.line,
                    col: e.pos.col,
                    rule_id: None,
                    message: e.message,
                });
                continue;
            }
        };
        let shared = !docs.is_empty() && docs.iter().all(|d| !d.is_rule);
        files.push(FileSpec {
            path,
            dir,
            docs,
            shared,
        });
        let f = files.len() - 1;
        for e in spec_errors {
            let rule_id = e.rule.or_else(|| rule_id_at(&files[f], e.pos));
            errors.push(LoadError {
                file: files[f].path.clone(),
                line: e.pos.line,
                col: e.pos.col,
                rule_id,
                message: e.message,
            });
        }
    }

    let mut c = Compiler {
        files: &files,
        errors,
        lists: Vec::new(),
        list_index: HashMap::new(),
        placeholder_index: HashMap::new(),
        list_state: Vec::new(),
        macros: Vec::new(),
        macro_index: HashMap::new(),
        macro_data: Vec::new(),
        list_files: Vec::new(),
        list_tests: HashMap::new(),
        filters: filter::Filters::default(),
    };
    c.collect_definitions();
    c.check_definitions();
    c.collect_filters();
    // (file, document, its rule when it compiled)
    let mut compiled: Vec<(usize, &Doc, Option<Rule>)> = Vec::new();
    let mut ids: HashMap<&str, (usize, Pos)> = HashMap::new();
    for (f, file) in files.iter().enumerate() {
        for doc in file.docs.iter().filter(|d| d.is_rule_doc()) {
            if let Some(id) = &doc.id {
                if let Some(&(first_file, first_pos)) = ids.get(id.as_str()) {
                    let first = files[first_file].path.display();
                    c.err(
                        f,
                        id.pos,
                        format!(
                            "duplicate rule id `{}` (first defined at {first}:{first_pos})",
                            id.value
                        ),
                    );
                } else {
                    ids.insert(id.as_str(), (f, id.pos));
                }
            }
            let rule = match doc.correlation {
                Some(_) => c.correlation_rule(f, doc),
                None => c.rule(f, doc),
            };
            compiled.push((f, doc, rule));
        }
    }
    let rules = c.correlations(compiled);
    let mut errors = c.errors;
    if errors.is_empty() {
        return Ok(RuleSet { rules });
    }
    let order: HashMap<PathBuf, usize> = c
        .list_files
        .into_iter()
        .chain(files.iter().enumerate().map(|(i, f)| (f.path.clone(), i)))
        .collect();
    errors.sort_by_key(|e| (order.get(&e.file).copied().unwrap_or(0), e.line, e.col));
    errors.dedup();
    Err(LoadErrors { errors })
}

/// The id of the rule document that contains `pos`.
fn rule_id_at(file: &FileSpec, pos: Pos) -> Option<String> {
    file.docs
        .iter()
        .take_while(|d| d.pos <= pos)
        .last()
        .filter(|d| d.is_rule_doc())
        .and_then(|d| d.id.as_ref())
        .map(|id| id.value.clone())
}

/// The most values one value with placeholders inside other text may stand for.
const MAX_EXPANDED: usize = 100_000;

/// The `%name%` placeholders of a text (a name of letters, digits and `_`), as (start, end,
/// name) byte ranges.
fn placeholders(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find('%').map(|p| p + from) {
        let name_len = text[start + 1..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let end = start + 1 + name_len;
        if name_len > 0 && text.as_bytes().get(end) == Some(&b'%') {
            out.push((start, end + 1, &text[start + 1..end]));
            from = end + 1;
        } else {
            from = start + 1;
        }
    }
    out
}

/// `$name` refers to a list; `$$x` is the literal text `$x`.
fn list_ref(item: &Item) -> Option<&str> {
    match &item.value {
        Scalar::Str(s) => s.strip_prefix('$').filter(|n| !n.starts_with('$')),
        _ => None,
    }
}

fn unescape_dollar(item: &Item) -> Item {
    list_escape(item).unwrap_or_else(|| item.clone())
}

/// `$$x` as the text `$x`; `None` for any other item.
fn list_escape(item: &Item) -> Option<Item> {
    match &item.value {
        Scalar::Str(s) if s.starts_with("$$") => {
            Some(Item::new(Scalar::Str(s[1..].to_owned()), item.pos))
        }
        _ => None,
    }
}

/// Part of an entry's values: an item of the rule file, an unescaped copy of one, or the
/// items of a list (by its index).
enum Part<'d> {
    Item(&'d Item),
    Owned(Item),
    List(usize, Rc<[Item]>),
}

impl Part<'_> {
    fn items(&self) -> &[Item] {
        match self {
            Part::Item(item) => std::slice::from_ref(*item),
            Part::Owned(item) => std::slice::from_ref(item),
            Part::List(_, items) => items,
        }
    }
}

/// A list file's lines as items: blanks trimmed, blank and `#` lines skipped.
fn list_entries(text: &str, origin: &Rc<ListFile>) -> Vec<Item> {
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let entry = line.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        items.push(Item {
            value: Scalar::Str(entry.to_owned()),
            pos: Pos {
                line: i + 1,
                col: 1 + line[..indent].chars().count(),
            },
            origin: Some(origin.clone()),
        });
    }
    items
}

/// A rule's detection being built: selections in index order.
#[derive(Default)]
struct Builder {
    preds: Vec<Pred>,
    selections: Vec<Selection>,
    /// The rule's own selections: `0..own`, by name.
    own: usize,
    /// Macro index → selection index, so a macro used twice is evaluated from one place.
    macro_sels: HashMap<usize, u32>,
}

impl Builder {
    fn add(&mut self, name: String, groups: Vec<Vec<Pred>>) -> u32 {
        let mut ranges = Vec::with_capacity(groups.len());
        for group in groups {
            let start = self.preds.len() as u32;
            self.preds.extend(group);
            ranges.push((start, self.preds.len() as u32));
        }
        self.selections.push(Selection {
            name: name.into(),
            groups: ranges.into(),
        });
        (self.selections.len() - 1) as u32
    }

    fn own(&self, name: &str) -> Option<u32> {
        self.selections[..self.own]
            .iter()
            .position(|s| &*s.name == name)
            .map(|i| i as u32)
    }
}

impl<'d> Compiler<'d> {
    fn err(&mut self, file: usize, pos: Pos, message: impl Into<String>) {
        let f = &self.files[file];
        self.errors.push(LoadError {
            file: f.path.clone(),
            line: pos.line,
            col: pos.col,
            rule_id: rule_id_at(f, pos),
            message: message.into(),
        });
    }

    /// Resolves the correlations among the compiled rules (references, chains, group-by
    /// fields) and links every rule to the correlations it feeds.
    fn correlations(&mut self, compiled: Vec<(usize, &'d Doc, Option<Rule>)>) -> Vec<Rule> {
        let mut next = 0u32;
        let docs: Vec<correlation::PackDoc<'_>> = compiled
            .iter()
            .map(|(file, doc, rule)| correlation::PackDoc {
                file: *file,
                doc,
                index: rule.as_ref().map(|_| {
                    next += 1;
                    next - 1
                }),
            })
            .collect();
        let paths: Vec<&Path> = self.files.iter().map(|f| f.path.as_path()).collect();
        let mut errors = Vec::new();
        let resolved = correlation::resolve(&paths, &docs, &mut errors);
        for (file, pos, message) in errors {
            self.err(file, pos, message);
        }
        let mut rules: Vec<Rule> = compiled
            .into_iter()
            .zip(resolved)
            .filter_map(|((_, _, rule), c)| {
                rule.map(|rule| Rule {
                    correlation: c.map(Box::new),
                    ..rule
                })
            })
            .collect();
        correlation::link(&mut rules);
        rules
    }

    /// Errors from reading or compiling one item or entry: in the rule file, or in a list
    /// file (at most `LIST_FILE_ERRORS` of those per list, then how many more).
    fn spec_errors(&mut self, file: usize, errors: Vec<SpecError>) {
        let mut per_list: Vec<(Rc<ListFile>, usize, Option<Pos>)> = Vec::new();
        for e in errors {
            let Some(origin) = e.origin else {
                self.err(file, e.pos, e.message);
                continue;
            };
            let k = match per_list.iter().position(|(o, ..)| Rc::ptr_eq(o, &origin)) {
                Some(k) => k,
                None => {
                    per_list.push((origin.clone(), 0, None));
                    per_list.len() - 1
                }
            };
            let (_, count, first_hidden) = &mut per_list[k];
            *count += 1;
            if *count > LIST_FILE_ERRORS {
                first_hidden.get_or_insert(e.pos);
                continue;
            }
            self.errors.push(LoadError {
                file: origin.path.clone(),
                line: e.pos.line,
                col: e.pos.col,
                rule_id: None,
                message: format!("{} `{}`: {}", origin.what, origin.name, e.message),
            });
        }
        for (origin, count, first_hidden) in per_list {
            if let Some(pos) = first_hidden {
                self.errors.push(LoadError {
                    file: origin.path.clone(),
                    line: pos.line,
                    col: pos.col,
                    rule_id: None,
                    message: format!(
                        "{} `{}`: {} more errors from here on (the first {LIST_FILE_ERRORS} are listed)",
                        origin.what,
                        origin.name,
                        count - LIST_FILE_ERRORS
                    ),
                });
            }
        }
    }

    fn ctx_of(&self, file: usize) -> Ctx {
        let f = &self.files[file];
        Ctx {
            file: (!f.shared).then_some(file),
            dir: f.dir,
        }
    }

    fn collect_definitions(&mut self) {
        let files = self.files;
        for (f, file) in files.iter().enumerate() {
            let scope = if file.shared {
                Scope::Dir(file.dir)
            } else {
                Scope::File(f)
            };
            let ctx = self.ctx_of(f);
            for doc in &file.docs {
                for list in &doc.lists {
                    self.define_list(f, scope, list, "list");
                }
                for list in &doc.placeholders {
                    self.define_list(f, scope, list, "placeholder");
                }
                for m in &doc.macros {
                    match self.macro_index.get(&(scope, m.name.as_str())) {
                        Some(&prev) => {
                            let prev = &self.macros[prev];
                            let at = format!(
                                "{}:{}",
                                files[prev.file].path.display(),
                                prev.spec.name.pos
                            );
                            self.err(
                                f,
                                m.name.pos,
                                format!("macro `{}` is already defined at {at}", m.name.value),
                            );
                        }
                        None => {
                            self.macro_index
                                .insert((scope, m.name.as_str()), self.macros.len());
                            self.macros.push(MacroDef {
                                spec: m,
                                file: f,
                                ctx,
                            });
                            self.macro_data.push(MacroData::Condition {
                                ast: None,
                                check: Check::Todo,
                            });
                        }
                    }
                }
            }
        }
    }

    /// Registers a list (or a placeholder: `what`) of file `f`, unless its scope has one of
    /// that name already.
    fn define_list(&mut self, f: usize, scope: Scope, list: &'d ListSpec, what: &'static str) {
        let index = if what == "list" {
            &self.list_index
        } else {
            &self.placeholder_index
        };
        if let Some(&prev) = index.get(&(scope, list.name.as_str())) {
            let prev = &self.lists[prev];
            let at = format!("{}:{}", self.files[prev.file].path.display(), prev.name.pos);
            let message = format!("{what} `{}` is already defined at {at}", list.name.value);
            self.err(f, list.name.pos, message);
            return;
        }
        let i = self.lists.len();
        let ctx = self.ctx_of(f);
        self.lists.push(ListDef {
            name: &list.name,
            body: &list.body,
            file: f,
            ctx,
            what,
        });
        self.list_state.push(ListState::Todo);
        let index = if what == "list" {
            &mut self.list_index
        } else {
            &mut self.placeholder_index
        };
        index.insert((scope, list.name.as_str()), i);
    }

    fn find_placeholder(&self, ctx: Ctx, name: &str) -> Option<usize> {
        ctx.file
            .and_then(|f| self.placeholder_index.get(&(Scope::File(f), name)))
            .or_else(|| self.placeholder_index.get(&(Scope::Dir(ctx.dir), name)))
            .copied()
    }

    fn find_list(&self, ctx: Ctx, name: &str) -> Option<usize> {
        ctx.file
            .and_then(|f| self.list_index.get(&(Scope::File(f), name)))
            .or_else(|| self.list_index.get(&(Scope::Dir(ctx.dir), name)))
            .copied()
    }

    fn find_macro(&self, ctx: Ctx, name: &str) -> Option<usize> {
        ctx.file
            .and_then(|f| self.macro_index.get(&(Scope::File(f), name)))
            .or_else(|| self.macro_index.get(&(Scope::Dir(ctx.dir), name)))
            .copied()
    }

    fn names_in_scope(&self, ctx: Ctx, lists: bool) -> Vec<&'d str> {
        let index = if lists {
            &self.list_index
        } else {
            &self.macro_index
        };
        names_in(index, ctx)
    }

    /// Every list expanded once (cycles and unknown references reported at the definition),
    /// every macro compiled or parsed once.
    fn check_definitions(&mut self) {
        for i in 0..self.lists.len() {
            let mut stack = Vec::new();
            self.expand_list(i, &mut stack);
        }
        for i in 0..self.macros.len() {
            let def = &self.macros[i];
            let (file, ctx, spec) = (def.file, def.ctx, def.spec);
            self.macro_data[i] = match &spec.body {
                MacroBody::Selection(sel) => {
                    MacroData::Selection(self.selection(file, ctx, sel, None))
                }
                MacroBody::Condition(text) => {
                    let ast = match condition::parse(&text.value) {
                        Ok(ast) => Some(ast),
                        Err(e) => {
                            self.err(file, text.at(e.offset), e.message);
                            None
                        }
                    };
                    MacroData::Condition {
                        ast,
                        check: Check::Todo,
                    }
                }
            };
        }
        for i in 0..self.macros.len() {
            let mut stack = Vec::new();
            self.check_macro(i, &mut stack);
        }
    }

    fn expand_list(&mut self, i: usize, stack: &mut Vec<usize>) -> Option<Rc<[Item]>> {
        match &self.list_state[i] {
            ListState::Done(items) => return items.clone(),
            ListState::Busy => return None,
            ListState::Todo => {}
        }
        let ListDef {
            name,
            body,
            file,
            ctx,
            what,
        } = self.lists[i];
        let items = match body {
            ListBody::Items(items) => items,
            ListBody::File(path) => {
                let result: Option<Rc<[Item]>> = self
                    .read_list_file(file, (what, name), path)
                    .map(Into::into);
                self.list_state[i] = ListState::Done(result.clone());
                return result;
            }
        };
        self.list_state[i] = ListState::Busy;
        stack.push(i);
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            let Some(name) = list_ref(item) else {
                out.push(unescape_dollar(item));
                continue;
            };
            match self.find_list(ctx, name) {
                None => {
                    ok = false;
                    let hint = did_you_mean(name, self.names_in_scope(ctx, true));
                    self.err(file, item.pos, format!("unknown list `${name}`{hint}"));
                }
                Some(j) if matches!(self.list_state[j], ListState::Busy) => {
                    ok = false;
                    let from = stack.iter().position(|&s| s == j).unwrap_or(0);
                    let lists = &self.lists;
                    let path: Vec<&str> = stack[from..]
                        .iter()
                        .chain([&j])
                        .map(|&s| lists[s].name.as_str())
                        .collect();
                    let message = format!("list cycle: {}", path.join(" → "));
                    self.err(file, item.pos, message);
                }
                Some(j) => match self.expand_list(j, stack) {
                    Some(items) => out.extend(items.iter().cloned()),
                    None => ok = false,
                },
            }
        }
        stack.pop();
        let result: Option<Rc<[Item]>> = ok.then(|| out.into());
        self.list_state[i] = ListState::Done(result.clone());
        result
    }

    /// The entries of a list file, next to the rule file that names it: one a line, taken as
    /// written (wildcards as in the rule; no `$` references); leading and trailing blanks
    /// trimmed; blank lines and lines starting with `#` skipped.
    fn read_list_file(
        &mut self,
        file: usize,
        (what, name): (&'static str, &Str),
        path: &Str,
    ) -> Option<Vec<Item>> {
        let full = self.files[file]
            .path
            .parent()
            .unwrap_or(Path::new(""))
            .join(&path.value);
        match text::read(&full, true, text::MAX_LIST_FILE_BYTES) {
            Ok(text) => {
                let origin = Rc::new(ListFile {
                    path: full.clone(),
                    what,
                    name: name.value.clone(),
                });
                self.list_files.push((full, file));
                Some(list_entries(&text, &origin))
            }
            // The file as a whole: where the rule file names it.
            Err(e) if e.pos.line == 0 => {
                let message = format!("{what} `{}`: {}: {}", name.value, full.display(), e.message);
                self.err(file, path.pos, message);
                None
            }
            Err(e) => {
                self.list_files.push((full.clone(), file));
                self.errors.push(LoadError {
                    file: full,
                    line: e.pos.line,
                    col: e.pos.col,
                    rule_id: None,
                    message: format!("{what} `{}`: {}", name.value, e.message),
                });
                None
            }
        }
    }

    /// Checks a condition macro: every name a macro, no cycles. True when usable.
    fn check_macro(&mut self, i: usize, stack: &mut Vec<usize>) -> bool {
        let check = match &self.macro_data[i] {
            MacroData::Selection(sel) => return sel.is_some(),
            MacroData::Condition { ast: None, .. } => return false,
            MacroData::Condition { check, .. } => *check,
        };
        match check {
            Check::Ok => return true,
            Check::Broken | Check::Busy => return false,
            Check::Todo => {}
        }
        self.set_check(i, Check::Busy);
        stack.push(i);
        let MacroData::Condition { ast: Some(ast), .. } = &self.macro_data[i] else {
            unreachable!("checked above");
        };
        let ast = ast.clone();
        let mut names = Vec::new();
        collect_names(&ast, &mut names);
        let def = &self.macros[i];
        let (file, ctx, spec) = (def.file, def.ctx, def.spec);
        let text = spec.body_text();
        let mut ok = true;
        for (name, offset, quantified) in names {
            let pos = text.map_or(spec.name.pos, |t| t.at(offset));
            if quantified {
                ok = false;
                self.err(
                    file,
                    pos,
                    "`1 of`/`all of` cannot be used in a macro: it has no selections",
                );
                continue;
            }
            match self.find_macro(ctx, &name) {
                None => {
                    ok = false;
                    let hint = did_you_mean(&name, self.names_in_scope(ctx, false));
                    self.err(file, pos, format!("unknown macro `{name}`{hint}"));
                }
                Some(j) if stack.contains(&j) => {
                    ok = false;
                    let from = stack.iter().position(|&s| s == j).unwrap_or(0);
                    let macros = &self.macros;
                    let path: Vec<&str> = stack[from..]
                        .iter()
                        .chain([&j])
                        .map(|&s| macros[s].spec.name.as_str())
                        .collect();
                    let message = format!("macro cycle: {}", path.join(" → "));
                    self.err(file, pos, message);
                }
                Some(j) => ok &= self.check_macro(j, stack),
            }
        }
        stack.pop();
        self.set_check(i, if ok { Check::Ok } else { Check::Broken });
        ok
    }

    fn set_check(&mut self, i: usize, value: Check) {
        if let MacroData::Condition { check, .. } = &mut self.macro_data[i] {
            *check = value;
        }
    }

    /// Values with list references expanded (a list's items shared, not copied); true when
    /// they form a list. Under a Sigma `logsource` (`vendor`) values are literal — Sigma has no
    /// `$list` — and the values of `fieldref` name vendor fields. With `expand` among the
    /// entry's modifiers (`key`), `%name%` is replaced by the items of the placeholder `name`.
    fn values(
        &mut self,
        file: usize,
        ctx: Ctx,
        values: &'d ValuesSpec,
        vendor: Option<&sigma::Vendor>,
        key: &str,
    ) -> Option<(Vec<Part<'d>>, bool)> {
        let has = |m: &str| key.split('|').skip(1).any(|k| k == m);
        let (fieldref, expand) = (has("fieldref"), has("expand"));
        let mut out = Vec::with_capacity(values.items.len());
        let mut list = values.list;
        let mut ok = true;
        for item in &values.items {
            if expand {
                match self.expand(file, ctx, item) {
                    Ok(None) => {}
                    Ok(Some(parts)) => {
                        out.extend(parts);
                        list = true;
                        continue;
                    }
                    Err(()) => {
                        ok = false;
                        continue;
                    }
                }
            }
            if let Some(vendor) = vendor {
                out.push(match &item.value {
                    Scalar::Str(name) if fieldref => {
                        Part::Owned(Item::new(Scalar::Str(vendor.field_name(name)), item.pos))
                    }
                    _ => Part::Item(item),
                });
                continue;
            }
            let Some(name) = list_ref(item) else {
                out.push(match list_escape(item) {
                    Some(unescaped) => Part::Owned(unescaped),
                    None => Part::Item(item),
                });
                continue;
            };
            list = true;
            match self.find_list(ctx, name) {
                Some(j) => match &self.list_state[j] {
                    ListState::Done(Some(items)) => out.push(Part::List(j, items.clone())),
                    _ => ok = false, // reported at the list's definition
                },
                None => {
                    ok = false;
                    let hint = did_you_mean(name, self.names_in_scope(ctx, true));
                    self.err(file, item.pos, format!("unknown list `${name}`{hint}"));
                }
            }
        }
        ok.then_some((out, list))
    }

    /// An item with its `%name%` placeholders replaced: a value that is one placeholder is its
    /// items (shared); text around or between placeholders makes one value per combination.
    /// `Ok(None)` when the item has no placeholder; `Err` after reporting an unknown one.
    fn expand(&mut self, file: usize, ctx: Ctx, item: &Item) -> Result<Option<Vec<Part<'d>>>, ()> {
        let Scalar::Str(text) = &item.value else {
            return Ok(None);
        };
        let found = placeholders(text);
        if found.is_empty() {
            return Ok(None);
        }
        let mut lists = Vec::with_capacity(found.len());
        for &(_, _, name) in &found {
            let Some(j) = self.find_placeholder(ctx, name) else {
                let known = names_in(&self.placeholder_index, ctx);
                let hint = if known.is_empty() {
                    " (placeholders are defined under `placeholders:` in a file of definitions \
                     beside the rules, e.g. `_placeholders.yml`)"
                        .to_owned()
                } else {
                    did_you_mean(name, known)
                };
                self.err(
                    file,
                    item.pos,
                    format!("unknown placeholder `%{name}%`{hint}"),
                );
                return Err(());
            };
            match &self.list_state[j] {
                ListState::Done(Some(items)) => lists.push((j, items.clone())),
                _ => return Err(()), // reported at the placeholder's definition
            }
        }
        if let [(start, end, _)] = found[..] {
            if start == 0 && end == text.len() {
                let (j, items) = lists.swap_remove(0);
                return Ok(Some(vec![Part::List(j, items)]));
            }
        }
        let mut values = vec![String::new()];
        let mut at = 0;
        for (&(start, end, name), (_, items)) in found.iter().zip(&lists) {
            let literal = &text[at..start];
            let combinations = values.len().saturating_mul(items.len());
            if combinations > MAX_EXPANDED {
                self.err(
                    file,
                    item.pos,
                    format!(
                        "`%{name}%` makes this value {combinations} values or more; at most \
                         {MAX_EXPANDED} (write a value that is the placeholder alone)"
                    ),
                );
                return Err(());
            }
            values = values
                .iter()
                .flat_map(|v| {
                    items
                        .iter()
                        .map(move |i| format!("{v}{literal}{}", i.value))
                })
                .collect();
            at = end;
        }
        let rest = &text[at..];
        Ok(Some(
            values
                .into_iter()
                .map(|v| Part::Owned(Item::new(Scalar::Str(format!("{v}{rest}")), item.pos)))
                .collect(),
        ))
    }

    /// A selection's groups of predicates, or `None` after reporting its errors. Under a Sigma
    /// `logsource` (`vendor`), its field names are the vendor's.
    fn selection(
        &mut self,
        file: usize,
        ctx: Ctx,
        sel: &'d SelectionSpec,
        vendor: Option<&sigma::Vendor>,
    ) -> Option<Vec<Vec<Pred>>> {
        let mut groups = Vec::with_capacity(sel.groups.len());
        let mut ok = true;
        for group in &sel.groups {
            let mut preds = Vec::with_capacity(group.len());
            for entry in group {
                let vendor_key = vendor.map(|v| {
                    let name = entry.key.value.split('|').next().unwrap_or_default();
                    entry.key.with_head(name.len(), &v.field_name(name))
                });
                let key = vendor_key.as_ref().unwrap_or(&entry.key);
                let absent = vendor
                    .and_then(|v| v.never_present(key.value.split('|').next().unwrap_or_default()));
                if let Some(why) = absent {
                    self.err(file, entry.key.pos, why);
                    ok = false;
                    continue;
                }
                let Some((parts, list)) = self.values(file, ctx, &entry.values, vendor, &key.value)
                else {
                    ok = false;
                    continue;
                };
                // `field|modifiers: $list` again (another rule or field, the same blocklist):
                // the test, its index included, is built once.
                let shared = match parts.as_slice() {
                    [Part::List(j, _)] => {
                        modifier::share_key(&key.value).map(|(field, key)| (field, (*j, key)))
                    }
                    _ => None,
                };
                if let Some((field, key)) = &shared {
                    if let Some(test) = self.list_tests.get(key) {
                        preds.push(Pred {
                            field: field.clone(),
                            test: test.clone(),
                        });
                        continue;
                    }
                }
                let values: Vec<&Item> = parts.iter().flat_map(Part::items).collect();
                let mut errors = Vec::new();
                match modifier::compile_entry(key, &values, list, &mut errors) {
                    Some(pred) => {
                        if let Some((_, key)) = shared {
                            self.list_tests.insert(key, pred.test.clone());
                        }
                        preds.push(pred);
                    }
                    None => ok = false,
                }
                self.spec_errors(file, errors);
            }
            groups.push(preds);
        }
        ok.then_some(groups)
    }

    fn rule(&mut self, file: usize, doc: &'d Doc) -> Option<Rule> {
        let before = self.errors.len();
        let ctx = self.ctx_of(file);
        let id = doc.id.as_ref();
        let level = match &doc.level {
            None => Severity::Medium,
            Some(l) => self
                .word(file, l, "level", LEVELS)
                .unwrap_or(Severity::Medium),
        };

        let vendor = doc.logsource.as_ref().map(|l| {
            sigma::route(l).unwrap_or_else(|message| {
                self.err(file, l.pos, message);
                // Its field names stay the vendor's: no second error for each of them.
                sigma::Vendor::unrouted()
            })
        });
        let mut b = Builder::default();
        let mut exceptions = Vec::new();
        let detection = doc.detection.as_ref();
        if detection.is_none() {
            self.err(file, doc.pos, "missing required key `detection`");
        }
        for (name, sel) in detection.map_or(&[][..], |d| &d.selections) {
            let groups = self
                .selection(file, ctx, sel, vendor.as_ref())
                .unwrap_or_default();
            b.add(name.value.clone(), groups);
        }
        b.own = b.selections.len();
        for (i, e) in doc.exceptions.iter().enumerate() {
            let groups = self
                .selection(file, ctx, &e.selection, vendor.as_ref())
                .unwrap_or_default();
            let name = e.name.as_ref().map_or_else(
                || format!("exception {}", i + 1),
                |n| format!("exception {}", n.value),
            );
            exceptions.push(b.add(name, groups));
        }

        let session = doc
            .session
            .as_ref()
            .and_then(|s| self.session(file, ctx, s, &mut b));
        let is_sequence = matches!(doc.session, Some(SessionSpec::Sequence { .. }));
        let condition = match detection.and_then(|d| d.condition.as_ref()) {
            Some(text) => self.condition(file, ctx, text, &mut b),
            None => {
                if let (false, Some(d)) = (is_sequence, detection) {
                    if !d.condition_written {
                        self.err(file, d.pos, "detection needs a `condition`");
                    }
                }
                // A sequence without one looks at the events of any step or of `until`.
                let mut any = Vec::new();
                if let Some(SessionLogic::Sequence { steps, until, .. }) = &session {
                    any.extend(steps.iter().map(|s| s.condition.expr.clone()));
                    any.extend(until.iter().map(|u| u.expr.clone()));
                }
                Condition {
                    expr: Expr::Or(any.into()),
                }
            }
        };

        let filters = self.apply_filters(file, doc, vendor.as_ref(), &mut b);
        let condition = match &vendor {
            Some(vendor) => self.only_from(file, doc, &vendor.sources, condition, &mut b),
            None => condition,
        };
        let (action, mode) = self.action(file, doc);
        let suppress_ms = doc.suppress.as_ref().and_then(|s| self.duration(file, s));
        let tests = self.tests(file, doc);
        if let Some(g) = &doc.generate {
            self.err(
                file,
                g.pos,
                "`generate` belongs to a correlation rule: it says whether the rules it names \
                 decide on their own",
            );
        }

        let output = self.output(file, &doc.output, vendor.as_ref());
        let id = id?;
        if self.errors.len() > before {
            return None;
        }
        let detection = Detection {
            preds: b.preds.into(),
            selections: b.selections.into(),
            condition,
            exceptions: exceptions.into(),
            filters: filters.into(),
        };
        Some(Rule {
            session,
            output,
            ..self.new_rule(
                file,
                doc,
                id,
                level,
                detection,
                (action, mode, suppress_ms),
                tests,
            )
        })
    }

    /// A rule of `doc` with its metadata, detection, action and tests; no session logic, no
    /// output, nothing correlated, deciding on its own.
    #[allow(clippy::too_many_arguments)]
    fn new_rule(
        &self,
        file: usize,
        doc: &Doc,
        id: &Str,
        level: Severity,
        detection: Detection,
        (action, mode, suppress_ms): (ActionKind, Mode, Option<i64>),
        tests: Vec<RuleTest>,
    ) -> Rule {
        Rule {
            id: id.value.clone(),
            version: doc
                .version
                .as_ref()
                .map_or_else(|| "1".to_owned(), |v| v.value.clone()),
            title: doc
                .title
                .as_ref()
                .map_or_else(|| id.value.clone(), |t| t.value.clone()),
            level,
            tags: doc.tags.iter().map(|t| t.value.clone()).collect(),
            detection,
            session: None,
            action,
            mode,
            suppress_ms,
            output: None,
            correlation: None,
            feeds: Vec::new(),
            generate: true,
            file: self.files[file].path.clone(),
            line: id.pos.line,
            tests,
        }
    }

    /// A correlation document's rule: its metadata and action; what it correlates is filled
    /// in once every rule is compiled (`correlation::resolve`). It matches no event itself.
    fn correlation_rule(&mut self, file: usize, doc: &'d Doc) -> Option<Rule> {
        let before = self.errors.len();
        let level = match &doc.level {
            None => Severity::Medium,
            Some(l) => self
                .word(file, l, "level", LEVELS)
                .unwrap_or(Severity::Medium),
        };
        let misplaced = [
            ("detection", doc.detection.as_ref().map(|d| d.pos)),
            ("logsource", doc.logsource.as_ref().map(|l| l.pos)),
            ("session", doc.session.as_ref().map(|_| doc.pos)),
            ("exceptions", doc.exceptions.first().map(|e| e.pos)),
        ];
        for (key, pos) in misplaced {
            if let Some(pos) = pos {
                self.err(
                    file,
                    pos,
                    format!(
                        "a correlation rule has no `{key}`: it decides over the matches of the \
                         rules it names"
                    ),
                );
            }
        }
        let (action, mode) = self.action(file, doc);
        let suppress_ms = doc.suppress.as_ref().and_then(|s| self.duration(file, s));
        let tests = self.tests(file, doc);
        let id = doc.id.as_ref()?;
        if self.errors.len() > before {
            return None;
        }
        let never = Detection {
            preds: Box::default(),
            selections: Box::default(),
            condition: Condition {
                expr: Expr::Const(false),
            },
            exceptions: Box::default(),
            filters: Box::default(),
        };
        Some(self.new_rule(
            file,
            doc,
            id,
            level,
            never,
            (action, mode, suppress_ms),
            tests,
        ))
    }

    /// A rule's inline tests, their events resolved against the rule file's directory.
    fn tests(&mut self, file: usize, doc: &Doc) -> Vec<RuleTest> {
        let dir = self.files[file]
            .path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        let mut tests = Vec::new();
        for (i, t) in doc.tests.iter().enumerate() {
            let expect = self.test_expect(file, &t.decisions);
            let rejects = match &t.rejects {
                None => Some(0),
                Some(r) => match &r.value {
                    Scalar::Int(n) if *n >= 0 => Some(*n as u64),
                    other => {
                        self.err(
                            file,
                            r.pos,
                            format!("`rejects` must be a whole number, not `{other}`"),
                        );
                        None
                    }
                },
            };
            let (Some(expect), Some(rejects)) = (expect, rejects) else {
                continue;
            };
            tests.push(RuleTest {
                name: t
                    .name
                    .as_ref()
                    .map_or_else(|| format!("test {}", i + 1), |n| n.value.clone()),
                events: dir.join(&t.events.value),
                expect,
                rejects,
                line: t.pos.line,
            });
        }
        tests
    }

    /// A rule's output text, its field names resolved (under a `logsource`, the vendor's).
    fn output(
        &mut self,
        file: usize,
        parts: &[OutputPart],
        vendor: Option<&sigma::Vendor>,
    ) -> Option<Output> {
        if parts.is_empty() {
            return None;
        }
        let mut pieces = Vec::with_capacity(parts.len());
        for part in parts {
            pieces.push(match part {
                OutputPart::Text(t) => OutputPiece::Text(t.as_str().into()),
                OutputPart::Field(name) => {
                    let name = match vendor {
                        Some(v) => Str::synthetic(v.field_name(&name.value), name.pos),
                        None => name.clone(),
                    };
                    OutputPiece::Field(self.field(file, &name)?)
                }
            });
        }
        Some(Output {
            parts: pieces.into(),
        })
    }

    /// `condition`, on events of `sources` only (a Sigma rule's logsource).
    fn only_from(
        &mut self,
        file: usize,
        doc: &Doc,
        sources: &[Source],
        condition: Condition,
        b: &mut Builder,
    ) -> Condition {
        let pos = doc.logsource.as_ref().map_or(doc.pos, |l| l.pos);
        let names: Vec<Item> = sources
            .iter()
            .map(|s| Item::new(Scalar::Str(s.as_str().to_owned()), pos))
            .collect();
        let values: Vec<&Item> = names.iter().collect();
        let mut errors = Vec::new();
        let pred =
            modifier::compile_entry(&Str::synthetic("source", pos), &values, true, &mut errors);
        self.spec_errors(file, errors);
        let Some(pred) = pred else {
            return condition;
        };
        let logsource = b.add("logsource".to_owned(), vec![vec![pred]]);
        Condition {
            expr: Expr::And([Expr::Sel(logsource), condition.expr].into()),
        }
    }

    /// Parses and resolves a condition against the rule's selections and the macros in scope.
    fn condition(&mut self, file: usize, ctx: Ctx, text: &Str, b: &mut Builder) -> Condition {
        let expr = match condition::parse(&text.value) {
            Ok(ast) => self.resolve(file, ctx, text, &ast, b),
            Err(e) => {
                self.err(file, text.at(e.offset), e.message);
                Expr::Const(false)
            }
        };
        Condition { expr }
    }

    fn resolve(&mut self, file: usize, ctx: Ctx, text: &Str, ast: &Ast, b: &mut Builder) -> Expr {
        match ast {
            Ast::Not(inner) => Expr::Not(Box::new(self.resolve(file, ctx, text, inner, b))),
            Ast::And(items) => Expr::And(
                items
                    .iter()
                    .map(|a| self.resolve(file, ctx, text, a, b))
                    .collect(),
            ),
            Ast::Or(items) => Expr::Or(
                items
                    .iter()
                    .map(|a| self.resolve(file, ctx, text, a, b))
                    .collect(),
            ),
            Ast::Of {
                all,
                pattern,
                offset,
            } => {
                let picked: Vec<Expr> = b.selections[..b.own]
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| match pattern {
                        Some(p) => condition::pattern_matches(p, &s.name),
                        None => !s.name.starts_with('_'),
                    })
                    .map(|(i, _)| Expr::Sel(i as u32))
                    .collect();
                if picked.is_empty() {
                    let what = pattern.as_deref().unwrap_or("them");
                    self.err(
                        file,
                        text.at(*offset),
                        format!("`of {what}` matches no selection of the rule"),
                    );
                }
                if *all {
                    Expr::And(picked.into())
                } else {
                    Expr::Or(picked.into())
                }
            }
            Ast::Name { name, offset } => {
                if let Some(i) = b.own(name) {
                    return Expr::Sel(i);
                }
                match self.find_macro(ctx, name) {
                    Some(m) => self.use_macro(m, b),
                    None => {
                        let mut candidates: Vec<&str> =
                            b.selections[..b.own].iter().map(|s| &*s.name).collect();
                        candidates.extend(self.names_in_scope(ctx, false));
                        let hint = did_you_mean(name, candidates);
                        self.err(
                            file,
                            text.at(*offset),
                            format!("unknown selection or macro `{name}`{hint}"),
                        );
                        Expr::Const(false)
                    }
                }
            }
        }
    }

    /// A macro in a rule: its selection added once, or its condition expanded.
    fn use_macro(&mut self, m: usize, b: &mut Builder) -> Expr {
        if let Some(&i) = b.macro_sels.get(&m) {
            return Expr::Sel(i);
        }
        match &self.macro_data[m] {
            MacroData::Selection(Some(groups)) => {
                let name = format!("macro {}", self.macros[m].spec.name.value);
                let i = b.add(name, groups.clone());
                b.macro_sels.insert(m, i);
                Expr::Sel(i)
            }
            MacroData::Condition {
                ast: Some(ast),
                check: Check::Ok,
            } => {
                let ast = ast.clone();
                let ctx = self.macros[m].ctx;
                self.expand_macro_ast(ctx, &ast, b)
            }
            // Broken macros were reported where they are defined.
            _ => Expr::Const(false),
        }
    }

    fn expand_macro_ast(&mut self, ctx: Ctx, ast: &Ast, b: &mut Builder) -> Expr {
        match ast {
            Ast::Not(inner) => Expr::Not(Box::new(self.expand_macro_ast(ctx, inner, b))),
            Ast::And(items) => Expr::And(
                items
                    .iter()
                    .map(|a| self.expand_macro_ast(ctx, a, b))
                    .collect(),
            ),
            Ast::Or(items) => Expr::Or(
                items
                    .iter()
                    .map(|a| self.expand_macro_ast(ctx, a, b))
                    .collect(),
            ),
            Ast::Name { name, .. } => match self.find_macro(ctx, name) {
                Some(m) => self.use_macro(m, b),
                None => Expr::Const(false),
            },
            Ast::Of { .. } => Expr::Const(false),
        }
    }

    fn session(
        &mut self,
        file: usize,
        ctx: Ctx,
        spec: &SessionSpec,
        b: &mut Builder,
    ) -> Option<SessionLogic> {
        match spec {
            SessionSpec::Aggregate(agg) => {
                let (field, timespan_ms, threshold) = self.aggregate(file, agg)?;
                Some(match (agg.kind.as_str(), field) {
                    ("event_count", _) => SessionLogic::EventCount {
                        timespan_ms,
                        threshold,
                    },
                    ("value_count", Some(field)) => SessionLogic::ValueCount {
                        field,
                        timespan_ms,
                        threshold,
                    },
                    (_, Some(field)) => SessionLogic::ValueSum {
                        field,
                        timespan_ms,
                        threshold,
                    },
                    _ => return None,
                })
            }
            SessionSpec::NewValue {
                field,
                learn,
                tolerance,
                ..
            } => {
                let f = self.field(file, field);
                let learn = self.learn(file, learn.as_ref());
                let tolerance = match tolerance {
                    None => Some(Tolerance::Exact),
                    Some(t) => self.tolerance(file, t, f.as_ref()),
                };
                Some(SessionLogic::NewValue {
                    field: f?,
                    learn: learn?,
                    tolerance: tolerance?,
                })
            }
            SessionSpec::Sequence {
                maxspan,
                steps,
                until,
                ..
            } => {
                let maxspan_ms = self.duration(file, maxspan);
                let mut compiled = Vec::with_capacity(steps.len());
                for step in steps {
                    let condition = self.condition(file, ctx, &step.condition, b);
                    let aggregate = match &step.aggregate {
                        None => None,
                        Some(agg) => {
                            let Some((field, timespan_ms, threshold)) = self.aggregate(file, agg)
                            else {
                                continue;
                            };
                            Some(match (agg.kind.as_str(), field) {
                                ("event_count", _) => StepAggregate::EventCount {
                                    timespan_ms,
                                    threshold,
                                },
                                ("value_count", Some(field)) => StepAggregate::ValueCount {
                                    field,
                                    timespan_ms,
                                    threshold,
                                },
                                (_, Some(field)) => StepAggregate::ValueSum {
                                    field,
                                    timespan_ms,
                                    threshold,
                                },
                                _ => continue,
                            })
                        }
                    };
                    compiled.push(Step {
                        condition,
                        aggregate,
                    });
                }
                let until = until.as_ref().map(|u| self.condition(file, ctx, u, b));
                Some(SessionLogic::Sequence {
                    maxspan_ms: maxspan_ms?,
                    steps: compiled,
                    until,
                })
            }
            SessionSpec::Duration {
                since,
                limit,
                fire,
                until,
                active_within,
                ..
            } => {
                let since = match since {
                    None => Some(Since::SessionStart),
                    Some(s) => self.word(file, s, "since", SINCE),
                };
                let fire = match fire {
                    None => Some(Fire::OnTimer),
                    Some(f) => self.word(file, f, "fire", FIRE),
                };
                let limit_ms = self.duration(file, limit);
                let until = until.as_ref().map(|u| self.condition(file, ctx, u, b));
                let active_within_ms = match active_within {
                    None => Some(None),
                    Some(a) => self.duration(file, a).map(Some),
                };
                Some(SessionLogic::Duration {
                    since: since?,
                    limit_ms: limit_ms?,
                    fire: fire?,
                    until,
                    active_within_ms: active_within_ms?,
                })
            }
            SessionSpec::ScopeGrowth { field, learn, .. } => {
                let field = match field {
                    None => Some(Field::Scopes),
                    Some(f) => self.field(file, f),
                };
                let learn = self.learn(file, learn.as_ref());
                Some(SessionLogic::ScopeGrowth {
                    field: field?,
                    learn: learn?,
                })
            }
            SessionSpec::AgentGrant { check, .. } => self
                .word(file, check, "check", GRANT_CHECKS)
                .map(|check| SessionLogic::AgentGrant { check }),
        }
    }

    fn aggregate(
        &mut self,
        file: usize,
        agg: &AggregateSpec,
    ) -> Option<(Option<Field>, i64, Threshold)> {
        let field = match &agg.field {
            None => None,
            Some(f) => {
                let field = self.field(file, f);
                let numeric = field.as_ref().is_none_or(|field| {
                    matches!(
                        field,
                        Field::Bytes
                            | Field::Records
                            | Field::NetworkAsn
                            | Field::Time
                            | Field::Raw(_)
                    )
                });
                if agg.kind.value == "value_sum" && !numeric {
                    self.err(
                        file,
                        f.pos,
                        format!(
                            "`value_sum` needs a numeric field (bytes, records, raw.*), not `{}`",
                            f.value
                        ),
                    );
                }
                field
            }
        };
        let timespan = self.duration(file, &agg.timespan);
        let threshold = self.threshold(file, &agg.threshold, &agg.kind.value);
        Some((field, timespan?, threshold?))
    }

    /// A threshold that can be right: counts are whole and at least 1 (more than 0 for `gt`),
    /// sums positive, both within what a window can hold exactly. A `gte: 0` would fire on
    /// every session and a `gte: 1e30` never; both are errors, not rules.
    fn threshold(&mut self, file: usize, t: &ThresholdSpec, kind: &str) -> Option<Threshold> {
        let op = match t.op.as_str() {
            "gt" => CmpOp::Gt,
            "gte" => CmpOp::Gte,
            "lt" => CmpOp::Lt,
            "lte" => CmpOp::Lte,
            _ => CmpOp::Eq,
        };
        let count = kind != "value_sum";
        let (low, high) = if count {
            (if op == CmpOp::Gt { 0.0 } else { 1.0 }, MAX_COUNT_THRESHOLD)
        } else {
            (0.0, MAX_SUM_THRESHOLD)
        };
        match modifier::number(&t.value.value) {
            Some(value)
                if value.is_finite()
                    && value >= low
                    && value <= high
                    && (!count || value.fract() == 0.0)
                    && (count || value > 0.0 || op == CmpOp::Gt) =>
            {
                Some(Threshold { op, value })
            }
            Some(_) => {
                let what = if count {
                    format!(
                        "a whole number from {low} to {}",
                        MAX_COUNT_THRESHOLD as u64
                    )
                } else {
                    "a positive amount up to 9 × 10¹² (9 TB)".to_owned()
                };
                self.err(
                    file,
                    t.value.pos,
                    format!(
                        "`{}: {}` cannot be right for `{kind}`: it needs {what}",
                        t.op.value, t.value.value
                    ),
                );
                None
            }
            None => {
                self.err(
                    file,
                    t.value.pos,
                    format!(
                        "`{}` needs a number or a size like 1GiB, not `{}`",
                        t.op.value, t.value.value
                    ),
                );
                None
            }
        }
    }

    fn field(&mut self, file: usize, name: &Str) -> Option<Field> {
        let mut errors = Vec::new();
        let field = modifier::field(&name.value, name.pos, &mut errors);
        self.spec_errors(file, errors);
        field
    }

    fn duration(&mut self, file: usize, item: &Item) -> Option<i64> {
        let text = item.value.to_string();
        match crate::units::parse_duration_ms(&text) {
            Some(ms) if ms > 0 => Some(ms),
            Some(_) => {
                self.err(
                    file,
                    item.pos,
                    format!("invalid duration `{text}`: must be more than zero"),
                );
                None
            }
            None => {
                self.err(
                    file,
                    item.pos,
                    format!(
                        "invalid duration `{text}`: expected a number with a unit, \
                         e.g. 500ms, 30s, 5m, 1h, 2d"
                    ),
                );
                None
            }
        }
    }

    fn learn(&mut self, file: usize, spec: Option<&LearnSpec>) -> Option<Learn> {
        let mut learn = Learn {
            events: 5,
            timespan_ms: 600_000,
        };
        let Some(spec) = spec else {
            return Some(learn);
        };
        let mut ok = true;
        if let Some(e) = &spec.events {
            match &e.value {
                Scalar::Int(n) if (1..=i64::from(u32::MAX)).contains(n) => learn.events = *n as u32,
                other => {
                    ok = false;
                    self.err(
                        file,
                        e.pos,
                        format!("`events` must be a positive whole number, not `{other}`"),
                    );
                }
            }
        }
        if let Some(t) = &spec.timespan {
            match self.duration(file, t) {
                Some(ms) => learn.timespan_ms = ms,
                None => ok = false,
            }
        }
        ok.then_some(learn)
    }

    fn tolerance(
        &mut self,
        file: usize,
        t: &ToleranceSpec,
        field: Option<&Field>,
    ) -> Option<Tolerance> {
        let (pos, tolerance) = match t {
            ToleranceSpec::Named(name) => match name.as_str() {
                "exact" => return Some(Tolerance::Exact),
                "ip_prefix" => (name.pos, Tolerance::IpPrefix { v4: 24, v6: 48 }),
                other => {
                    let hint = did_you_mean(other, ["exact", "ip_prefix"]);
                    self.err(
                        file,
                        name.pos,
                        format!("unknown tolerance `{other}` (expected exact, ip_prefix or {{ipv4_prefix, ipv6_prefix}}){hint}"),
                    );
                    return None;
                }
            },
            ToleranceSpec::Prefixes { pos, v4, v6 } => {
                let mut prefix = |item: &Option<Item>, default: u8, max: u8, what: &str| match item
                {
                    None => Some(default),
                    Some(Item {
                        value: Scalar::Int(n),
                        ..
                    }) if (0..=i64::from(max)).contains(n) => Some(*n as u8),
                    Some(item) => {
                        self.err(file, item.pos, format!("`{what}` must be 0 to {max}"));
                        None
                    }
                };
                let v4 = prefix(v4, 24, 32, "ipv4_prefix");
                let v6 = prefix(v6, 48, 128, "ipv6_prefix");
                (*pos, Tolerance::IpPrefix { v4: v4?, v6: v6? })
            }
        };
        if field.is_some_and(|f| !matches!(f, Field::NetworkIp | Field::Raw(_))) {
            self.err(
                file,
                pos,
                "an IP prefix tolerance applies to `network.ip` (or a `raw.*` address)",
            );
            return None;
        }
        Some(tolerance)
    }

    /// An inline test's `decisions`: a whole number, or listed decisions with whole line numbers.
    fn test_expect(&mut self, file: usize, spec: &DecisionsSpec) -> Option<TestExpect> {
        let whole = |item: &Item| match &item.value {
            Scalar::Int(n) if *n >= 0 => Ok(*n as u64),
            other => Err(other.to_string()),
        };
        match spec {
            DecisionsSpec::Count(n) => match whole(n) {
                Ok(n) => Some(TestExpect::Count(n as usize)),
                Err(other) => {
                    let message =
                        format!("`decisions` must be a whole number or a list, not `{other}`");
                    self.err(file, n.pos, message);
                    None
                }
            },
            DecisionsSpec::List(list) => {
                let mut decisions = Vec::new();
                for d in list {
                    match whole(&d.line) {
                        Ok(line) if line > 0 => decisions.push(ExpectedDecision {
                            line,
                            session: d.session.value.clone(),
                            rule: d.rule.as_ref().map(|r| r.value.clone()),
                        }),
                        _ => {
                            let message =
                                format!("`line` must be a line number, not `{}`", d.line.value);
                            self.err(file, d.line.pos, message);
                        }
                    }
                }
                (decisions.len() == list.len()).then_some(TestExpect::Decisions(decisions))
            }
        }
    }

    fn action(&mut self, file: usize, doc: &Doc) -> (ActionKind, Mode) {
        let Some(action) = &doc.action else {
            return (ActionKind::Alert, Mode::Enforce);
        };
        let kind = action
            .kind
            .as_ref()
            .and_then(|k| self.word(file, k, "action", ACTIONS))
            .unwrap_or(ActionKind::Alert);
        let mode = action
            .mode
            .as_ref()
            .and_then(|m| self.word(file, m, "mode", MODES))
            .unwrap_or(Mode::Enforce);
        (kind, mode)
    }

    /// One of a fixed set of words.
    fn word<T: Copy>(
        &mut self,
        file: usize,
        s: &Str,
        what: &str,
        table: &[(&str, T)],
    ) -> Option<T> {
        if let Some((_, v)) = table.iter().find(|(w, _)| *w == s.value) {
            return Some(*v);
        }
        let words: Vec<&str> = table.iter().map(|(w, _)| *w).collect();
        let hint = did_you_mean(&s.value, words.iter().copied());
        self.err(
            file,
            s.pos,
            format!(
                "unknown {what} `{}` (expected one of: {}){hint}",
                s.value,
                words.join(", ")
            ),
        );
        None
    }
}

const LEVELS: &[(&str, Severity)] = &[
    ("informational", Severity::Informational),
    ("low", Severity::Low),
    ("medium", Severity::Medium),
    ("high", Severity::High),
    ("critical", Severity::Critical),
];
const ACTIONS: &[(&str, ActionKind)] = &[
    ("revoke_session", ActionKind::RevokeSession),
    ("revoke_credential", ActionKind::RevokeCredential),
    ("step_up", ActionKind::StepUp),
    ("alert", ActionKind::Alert),
];
const MODES: &[(&str, Mode)] = &[("enforce", Mode::Enforce), ("dry_run", Mode::DryRun)];
const SINCE: &[(&str, Since)] = &[
    ("session_start", Since::SessionStart),
    ("first_match", Since::FirstMatch),
];
const GRANT_CHECKS: &[(&str, GrantCheck)] = &[
    ("outside", GrantCheck::Outside),
    ("ended", GrantCheck::Ended),
    ("budget", GrantCheck::Budget),
    ("role", GrantCheck::Role),
];
const FIRE: &[(&str, Fire)] = &[("on_event", Fire::OnEvent), ("on_timer", Fire::OnTimer)];

/// Names in a macro condition: (name, offset, is a `1 of`/`all of`).
/// The names of `index` visible from `ctx`.
fn names_in<'d>(index: &HashMap<(Scope, &'d str), usize>, ctx: Ctx) -> Vec<&'d str> {
    index
        .keys()
        .filter(|(scope, _)| {
            *scope == Scope::Dir(ctx.dir) || ctx.file.is_some_and(|f| *scope == Scope::File(f))
        })
        .map(|(_, name)| *name)
        .collect()
}

fn collect_names(ast: &Ast, out: &mut Vec<(String, usize, bool)>) {
    match ast {
        Ast::Name { name, offset } => out.push((name.clone(), *offset, false)),
        Ast::Of { offset, .. } => out.push((String::new(), *offset, true)),
        Ast::Not(inner) => collect_names(inner, out),
        Ast::And(items) | Ast::Or(items) => items.iter().for_each(|a| collect_names(a, out)),
    }
}

impl MacroSpec {
    fn body_text(&self) -> Option<&Str> {
        match &self.body {
            MacroBody::Condition(text) => Some(text),
            MacroBody::Selection(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::detection::{Glob, Test};
    use super::*;

    /// A scratch directory, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!("sg-rules-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }

        fn file(&self, name: &str, text: &str) -> &Dir {
            let path = self.0.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
            self
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn messages(e: &LoadErrors) -> Vec<String> {
        e.errors
            .iter()
            .map(|e| format!("{}:{}: {}", e.line, e.col, e.message))
            .collect()
    }

    #[test]
    fn shared_definitions_are_per_directory_and_local_ones_shadow_them() {
        let dir = Dir::new("scopes");
        dir.file("shared.yml", "lists:\n  names: [alice]\nmacros:\n  ok: {outcome: success}\n")
            .file(
                "a.yml",
                "lists:\n  names: [bob]\n---\nid: a\ndetection:\n  sel: {principal.name|in: $names}\n  condition: sel and ok\n",
            )
            .file(
                "sub/b.yml",
                "id: b\ndetection:\n  sel: {principal.name|in: $names}\n  condition: sel and ok\n",
            )
            .file(".hidden.yml", "not: [valid")
            .file("notes.txt", "not: [valid");
        let set = RuleSet::load(&[dir.0.join("a.yml"), dir.0.join("shared.yml")]).unwrap();
        let rule = &set.rules[0];
        // `names` is a.yml's own list (bob), `ok` the shared macro.
        let Test::Text { pats, .. } = &rule.detection.preds[0].test else {
            panic!("{:?}", rule.detection.preds[0]);
        };
        assert_eq!(pats[0].glob, Glob::Exact("bob".into()));
        assert_eq!(
            rule.detection.selection_names().collect::<Vec<_>>(),
            ["sel", "macro ok"]
        );
        // sub/ does not see the parent directory's shared file.
        let e = RuleSet::load(std::slice::from_ref(&dir.0)).unwrap_err();
        assert_eq!(
            messages(&e),
            [
                "3:28: unknown list `$names`",
                "4:22: unknown selection or macro `ok`",
            ]
        );
        assert!(e.errors.iter().all(|e| e.file.ends_with("sub/b.yml")));
        // Shown one a line.
        let shown = e.to_string();
        assert_eq!(shown.lines().count(), 2, "{shown}");
        assert!(shown.lines().all(|l| l.contains("sub/b.yml:")), "{shown}");
    }

    /// The texts of an entry's patterns (its lookup's exact values first).
    fn patterns(test: &Test) -> Vec<String> {
        let Test::Text { pats, lookup, .. } = test else {
            panic!("{test:?}");
        };
        let mut out: Vec<String> = lookup
            .iter()
            .flat_map(|l| l.exact_texts().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        out.extend(pats.iter().map(|p| format!("{:?}", p.glob)));
        out
    }

    #[test]
    fn a_list_test_is_built_once_per_field_kind_and_modifiers() {
        // Twenty names: long enough to be indexed, so a shared test shows as one lookup.
        let names: Vec<String> = (0..20).map(|i| format!("user{i}")).collect();
        let yaml = format!(
            "lists:\n  names: [{}]\n---\nid: a\ndetection:\n  \
             sel: {{principal.name: $names}}\n  condition: sel\n---\nid: b\ndetection:\n  \
             same: {{resource.name: $names}}\n  \
             vendor: {{raw.requestParameters.userName: $names}}\n  \
             words: $names\n  condition: same or vendor or words\n",
            names.join(", ")
        );
        let set = RuleSet::from_yaml("test.yml", &yaml).unwrap_or_else(|e| panic!("{e}"));
        let lookup = |rule: usize, pred: usize| {
            let Test::Text { lookup, .. } = &set.rules[rule].detection.preds[pred].test else {
                panic!("{:?}", set.rules[rule].detection.preds[pred]);
            };
            lookup.clone().expect("twenty names are indexed")
        };
        // Two text fields, equality: one test, in two rules.
        assert!(Arc::ptr_eq(&lookup(0, 0), &lookup(1, 0)));
        // A vendor field is compared otherwise (numbers, addresses): its own test.
        assert!(!Arc::ptr_eq(&lookup(0, 0), &lookup(1, 1)));
        // Keywords are searched for inside the record's strings, not compared whole.
        assert!(!Arc::ptr_eq(&lookup(1, 1), &lookup(1, 2)));
        assert_eq!(set.rules[1].detection.preds[2].field, Field::Keywords);
    }

    #[test]
    fn a_placeholder_is_a_name_between_percent_signs() {
        assert_eq!(placeholders("%a%"), [(0, 3, "a")]);
        assert_eq!(placeholders("x%a%y%b_1%"), [(1, 4, "a"), (5, 10, "b_1")]);
        // Not names: empty, with a space, unclosed; a lone `%` is text.
        assert_eq!(placeholders("%%"), []);
        assert_eq!(placeholders("100% %a b%"), []);
        assert_eq!(placeholders("%%a%"), [(1, 4, "a")]);
        assert_eq!(placeholders("50%%a%"), [(3, 6, "a")]);
        assert_eq!(placeholders("%a%b%"), [(0, 3, "a")]);
        assert_eq!(placeholders("%é%"), []);
    }

    #[test]
    fn a_value_with_placeholders_stands_for_at_most_max_expanded_values() {
        let items = |n: usize, p: &str| {
            (0..n)
                .map(|i| format!("{p}{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let dir = Dir::new("expanded");
        dir.file(
            "rule.yml",
            "id: t\ndetection:\n  sel: {principal.name|expand: '%a%-%b%'}\n  condition: sel\n",
        );
        let definitions = |b: usize| {
            format!(
                "placeholders:\n  a: [{}]\n  b: [{}]\n",
                items(100, "a"),
                items(b, "b")
            )
        };
        // 100 × 1,000: exactly the limit.
        dir.file("_placeholders.yml", &definitions(1000));
        let set = RuleSet::load(std::slice::from_ref(&dir.0)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            patterns(&set.rules[0].detection.preds[0].test).len(),
            MAX_EXPANDED
        );
        // 100 × 1,001: past it.
        dir.file("_placeholders.yml", &definitions(1001));
        let e = RuleSet::load(std::slice::from_ref(&dir.0)).unwrap_err();
        assert_eq!(
            messages(&e),
            ["3:32: `%b%` makes this value 100100 values or more; at most 100000 (write a value \
              that is the placeholder alone)"]
        );
    }

    #[test]
    fn a_double_dollar_is_a_literal_dollar_in_values_and_lists() {
        let set = RuleSet::from_yaml(
            "test.yml",
            "lists:\n  names: [$$ops, bob]\n---\nid: a\ndetection:\n  \
             value: {principal.name: $$admin}\n  \
             list: {principal.name: $names}\n  \
             text: {principal.name: a$$b}\n  condition: value or list or text\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let preds = &set.rules[0].detection.preds;
        assert_eq!(patterns(&preds[0].test), ["Exact(\"$admin\")"]);
        assert_eq!(
            patterns(&preds[1].test),
            ["Exact(\"$ops\")", "Exact(\"bob\")"]
        );
        assert_eq!(patterns(&preds[2].test), ["Exact(\"a$$b\")"]);
    }

    #[test]
    fn placeholders_expand_values_from_a_shared_file() {
        let dir = Dir::new("placeholders");
        dir.file(
            "_placeholders.yml",
            "placeholders:\n  trusted: [corp.example, partner.example]\n  admins: {file: admins.txt}\n",
        )
        .file("admins.txt", "# one a line\nroot\nbreakglass\n")
        .file(
            "rule.yml",
            "title: t\nid: t\nlogsource: {product: okta, service: okta}\ndetection:\n  \
             whole: {actor.alternateId|expand: '%admins%'}\n  \
             inside: {actor.alternateId|expand: '*@%trusted%'}\n  \
             literal: {actor.alternateId: '%trusted%'}\n  \
             condition: whole or inside or literal\n",
        );
        let set = RuleSet::load(std::slice::from_ref(&dir.0)).unwrap_or_else(|e| panic!("{e}"));
        let preds = &set.rules[0].detection.preds;
        assert_eq!(
            patterns(&preds[0].test),
            ["Exact(\"root\")", "Exact(\"breakglass\")"]
        );
        assert_eq!(
            patterns(&preds[1].test),
            ["Suffix(\"@corp.example\")", "Suffix(\"@partner.example\")"]
        );
        // Without `expand`, `%name%` is text.
        assert_eq!(patterns(&preds[2].test), ["Exact(\"%trusted%\")"]);

        // An unknown placeholder is an error at its value, with the names in scope.
        dir.file(
            "rule.yml",
            "title: t\nid: t\nlogsource: {product: okta, service: okta}\ndetection:\n  \
             sel: {actor.alternateId|contains|expand: ['%trustd%', '%admins%']}\n  \
             condition: sel\n",
        );
        let e = RuleSet::load(std::slice::from_ref(&dir.0)).unwrap_err();
        assert_eq!(
            messages(&e),
            ["5:45: unknown placeholder `%trustd%` (did you mean `trusted`?)"]
        );
        // Without any placeholder defined, the error says where they go.
        let e = RuleSet::load(&[dir.0.join("rule.yml")]).unwrap_err();
        assert!(
            messages(&e)[0].contains("defined under `placeholders:` in a file of definitions"),
            "{e}"
        );
        // A placeholder is not a list, nor a list a placeholder.
        dir.file(
            "rule.yml",
            "id: t\nlists:\n  l: [x]\ndetection:\n  a: {principal.name|expand: '%l%'}\n  \
             b: {principal.name: $trusted}\n  condition: a or b\n",
        );
        let e = RuleSet::load(std::slice::from_ref(&dir.0)).unwrap_err();
        assert_eq!(
            messages(&e),
            [
                "5:30: unknown placeholder `%l%`",
                "6:23: unknown list `$trusted`"
            ]
        );
    }

    #[test]
    fn a_filter_that_changes_no_rule_is_an_error_where_it_is_written() {
        let dir = Dir::new("filters");
        dir.file(
            "rules.yml",
            "title: a\nid: aws-1\nname: attach_policy\nlogsource: {product: aws, service: cloudtrail}\n\
             detection:\n  sel: {eventName: AttachUserPolicy}\n  condition: sel\n---\n\
             id: native\ndetection:\n  sel: {action: 'iam:*'}\n  condition: sel\n",
        )
        .file(
            "filters.yml",
            "title: by name\nlogsource: {product: aws}\nfilter:\n  rules: [attach_policy]\n  \
             s: {eventSource: iam.amazonaws.com}\n  condition: not s\n---\n\
             title: wrong\nlogsource: {product: okta, service: okta}\nfilter:\n  \
             rules: [aws-1, native, nope]\n  s: {eventType: x}\n  condition: not s and not t\n---\n\
             title: none\nlogsource: {product: github}\nfilter:\n  rules: any\n  \
             s: {action: x}\n  condition: not 1 of z*\n---\n\
             title: shape\nfilter:\n  rules: []\n  condition: s\ndetection: {}\n---\n\
             title: hidden\nlogsource: {product: github}\nfilter:\n  rules: any\n  \
             _s: {action: x}\n  condition: not 1 of them\n",
        );
        let e = RuleSet::load(std::slice::from_ref(&dir.0)).unwrap_err();
        let got: Vec<String> = e
            .errors
            .iter()
            .map(|e| {
                let file = e.file.file_name().unwrap().to_string_lossy();
                format!("{file}:{}:{}: {}", e.line, e.col, e.message)
            })
            .collect();
        assert_eq!(
            got,
            [
                "filters.yml:13:28: filter `wrong`: `t` is no selection of the filter",
                "filters.yml:20:18: filter `none`: `of z*` matches no selection of the filter",
                "filters.yml:22:1: a Sigma filter needs a `logsource`",
                "filters.yml:24:3: filter: needs a selection for its condition",
                "filters.yml:24:10: filter: `rules` is empty; name the rules (ids or names), or \
                 write `rules: any` for every rule of the logsource",
                "filters.yml:25:14: filter `shape`: `s` is no selection of the filter",
                "filters.yml:26:1: a Sigma filter has no `detection`: its selections and \
                 condition go under `filter:`",
                // `them` is every selection but those named with a leading `_`.
                "filters.yml:33:18: filter `hidden`: `of them` matches no selection of the filter",
            ]
        );
        // With the conditions fixed, the rules named are checked.
        dir.file(
            "filters.yml",
            "title: wrong\nlogsource: {product: okta, service: okta}\nfilter:\n  \
             rules: [aws-1, native, nope]\n  s: {eventType: x}\n  condition: not s\n---\n\
             title: none\nlogsource: {product: github}\nfilter:\n  rules: any\n  \
             s: {action: x}\n  condition: not s\n",
        );
        let e = RuleSet::load(std::slice::from_ref(&dir.0)).unwrap_err();
        assert_eq!(
            messages(&e),
            [
                "4:11: filter `wrong` is for logsource {product: okta, service: okta}, and rule \
                 `aws-1` for {product: aws, service: cloudtrail}",
                "4:18: filter `wrong`: rule `native` has no `logsource`; a Sigma filter applies \
                 to Sigma rules",
                "4:26: filter `wrong`: no loaded rule has the id or name `nope`",
                "11:10: filter `none`: no loaded rule has a logsource within {product: github}",
            ]
        );
        assert!(e.errors.iter().all(|e| e.rule_id.is_none()), "{e}");
    }

    /// The Sigma-language fixtures (rules, placeholders, filter) in one file, with each line
    /// deleted, duplicated or given an odd value: the loader reports, with a place, and never
    /// panics.
    #[test]
    fn mutated_sigma_files_never_panic_the_loader() {
        let docs = [
            include_str!("../../fixtures/sigma-language/rules/_placeholders.yml"),
            include_str!("../../fixtures/sigma-language/rules/aws_console_login_without_mfa.yml"),
            include_str!(
                "../../fixtures/sigma-language/rules/aws_ecs_task_encoded_download_cradle.yml"
            ),
            include_str!(
                "../../fixtures/sigma-language/rules/aws_ecs_task_encoded_powershell_switch.yml"
            ),
            include_str!(
                "../../fixtures/sigma-language/rules/aws_admin_policy_attached_keyword.yml"
            ),
            include_str!(
                "../../fixtures/sigma-language/rules/okta_admin_granted_outside_trusted_domains.yml"
            ),
            include_str!("../../fixtures/sigma-language/filters/mf_breakglass_console_login.yml"),
        ];
        let src = docs.join("---\n");
        assert!(RuleSet::from_yaml("m.yml", &src).is_ok());
        let odd = [
            "",
            "%",
            "%x%",
            "'%%'",
            "[]",
            "{}",
            "any",
            "'|all'",
            "-",
            "'-a -b -c -d -e -f -g'",
            "'*'",
            "é",
            "null",
            "not",
            "'1 of'",
            "[a, {b: c}]",
            "'\\'",
        ];
        for v in crate::rule::testing::mangled_lines(&src, &odd, 7) {
            if let Err(e) = RuleSet::from_yaml("m.yml", &v) {
                assert!(!e.errors.is_empty());
                for e in &e.errors {
                    assert!(e.line >= 1 && e.col >= 1, "{e}\n{v}");
                }
            }
        }
    }

    #[test]
    fn a_byte_order_mark_is_dropped_and_positions_stay() {
        let dir = Dir::new("bom");
        dir.file(
            "a.yml",
            "\u{FEFF}id: a\ndetection:\n  sel: {principal.name: ops}\n  condition: sel\n",
        )
        .file("b.yml", "\u{FEFF}titel: b\nid: b\n");
        let e = RuleSet::load(std::slice::from_ref(&dir.0)).unwrap_err();
        assert_eq!(
            messages(&e),
            [
                "1:1: unknown key `titel` in rule (did you mean `title`?)",
                "1:1: missing required key `detection`"
            ]
        );
        assert!(e.errors.iter().all(|e| e.file.ends_with("b.yml")), "{e}");
    }

    #[test]
    fn a_list_file_with_many_bad_entries_lists_ten_and_counts_the_rest() {
        let dir = Dir::new("many-bad");
        let entries: String = (1..=15).map(|i| format!("not-an-ip-{i}\n")).collect();
        dir.file("ips.txt", &format!("# header\n{entries}"))
            .file(
                "rule.yml",
                "lists:\n  ips: {file: ips.txt}\nid: r\ndetection:\n  sel: {network.ip: $ips}\n  condition: sel\n",
            );
        let e = RuleSet::load(std::slice::from_ref(&dir.0)).unwrap_err();
        let got = messages(&e);
        assert_eq!(got.len(), 11, "{got:#?}");
        assert_eq!(
            got[0],
            "2:1: list `ips`: `not-an-ip-1` is not an IP address"
        );
        assert_eq!(
            got[10],
            "12:1: list `ips`: 5 more errors from here on (the first 10 are listed)"
        );
        assert!(e.errors.iter().all(|e| e.file == dir.0.join("ips.txt")));
    }

    #[test]
    fn a_macro_used_twice_is_one_selection() {
        let set = RuleSet::from_yaml(
            "m.yml",
            "macros:\n  ok: {outcome: success}\n  either: ok or ok\n\
             id: m\ndetection:\n  sel: {action.service: s3}\n  condition: (sel and ok) or either\n",
        )
        .unwrap();
        let d = &set.rules[0].detection;
        assert_eq!(d.selection_names().collect::<Vec<_>>(), ["sel", "macro ok"]);
        assert_eq!(
            d.condition.expr,
            Expr::Or(
                vec![
                    Expr::And(vec![Expr::Sel(0), Expr::Sel(1)].into()),
                    Expr::Or(vec![Expr::Sel(1), Expr::Sel(1)].into()),
                ]
                .into()
            )
        );
    }

    #[test]
    fn a_sequence_without_condition_looks_at_its_steps_and_until() {
        let set = RuleSet::from_yaml(
            "s.yml",
            "id: s\ndetection:\n  a: {action.service: iam}\n  b: {action.service: s3}\n  c: {outcome: failure}\n\
             session:\n  sequence:\n    maxspan: 10m\n    steps: [{match: a}, {match: b and not c}]\n    until: c\n",
        )
        .unwrap();
        assert_eq!(
            set.rules[0].detection.condition.expr,
            Expr::Or(
                vec![
                    Expr::Sel(0),
                    Expr::And(vec![Expr::Sel(1), Expr::Not(Box::new(Expr::Sel(2)))].into()),
                    Expr::Sel(2),
                ]
                .into()
            )
        );
    }

    #[test]
    fn each_comparison_word_is_its_own_comparison() {
        for (word, op) in [
            ("gt", CmpOp::Gt),
            ("gte", CmpOp::Gte),
            ("lt", CmpOp::Lt),
            ("lte", CmpOp::Lte),
            ("eq", CmpOp::Eq),
        ] {
            let set = RuleSet::from_yaml(
                "t.yml",
                &format!(
                    "id: t\ndetection:\n  a: {{action.service: s3}}\n  condition: a\n\
                     session:\n  event_count: {{timespan: 5m, {word}: 3}}\n"
                ),
            )
            .unwrap();
            let session = &set.rules[0].session;
            assert!(
                matches!(
                    session,
                    Some(SessionLogic::EventCount { timespan_ms: 300_000, threshold })
                        if *threshold == Threshold { op, value: 3.0 }
                ),
                "{word}: {session:?}"
            );
        }
    }

    #[test]
    fn duplicate_definitions_and_unusable_macros() {
        let e = RuleSet::from_yaml(
            "d.yml",
            "lists:\n  l: [a]\nmacros:\n  m: 1 of x*\n---\nlists:\n  l: [b]\n",
        )
        .unwrap_err();
        assert_eq!(
            messages(&e),
            [
                "4:6: `1 of`/`all of` cannot be used in a macro: it has no selections",
                "7:3: list `l` is already defined at d.yml:2:3",
            ]
        );
    }
}
