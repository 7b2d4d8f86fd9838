//! Sigma rules as written: `logsource` routes a rule to the sources that read that log, and
//! the rule's field names — the vendor's own (`eventName`, `userIdentity.type`, `eventtype`) —
//! are resolved into the vendor record through a processing pipeline (`sigma-pipeline.yml`,
//! in pySigma's shape), instead of the engine's model names.
//!
//! A rule with a `logsource` lives in the vendor's namespace: every field name in it is the
//! vendor's, so GitHub's `action: repo.destroy` means the record's `action`, not the model's
//! `github:repo.destroy`. A name already written `raw.…` is kept as written.

use std::sync::OnceLock;

use serde::Deserialize;

use super::spec::{LogsourceSpec, Str};
use crate::event::Source;

/// The built-in pipeline.
const BUILT_IN: &str = include_str!("sigma-pipeline.yml");

#[derive(Deserialize)]
struct Pipeline {
    #[allow(dead_code)]
    name: String,
    logsources: Vec<LogsourceRoute>,
    /// Per source name, its records' top-level members, where that set is closed.
    #[serde(default)]
    top_level_fields: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    transformations: Vec<Transformation>,
}

/// One of Sigma's log sources and the adapter that reads it.
#[derive(Deserialize)]
struct LogsourceRoute {
    #[serde(flatten)]
    logsource: Logsource,
    source: String,
}

/// A logsource as Sigma writes it (each part optional).
#[derive(Deserialize, Default, Clone, PartialEq, Eq, Debug)]
struct Logsource {
    product: Option<String>,
    service: Option<String>,
    category: Option<String>,
}

impl Logsource {
    /// Whether `self` (a condition) holds for a rule's `logsource`: every part it names is the
    /// rule's, in any case.
    fn covers(&self, rule: &Logsource) -> bool {
        let part = |want: &Option<String>, have: &Option<String>| match want {
            None => true,
            Some(w) => have.as_ref().is_some_and(|h| h.eq_ignore_ascii_case(w)),
        };
        part(&self.product, &rule.product)
            && part(&self.service, &rule.service)
            && part(&self.category, &rule.category)
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TransformationKind {
    /// One Sigma name → one vendor name.
    FieldNameMapping {
        mapping: std::collections::BTreeMap<String, String>,
    },
    /// Every name gets this prefix.
    FieldNamePrefix { prefix: String },
}

#[derive(Deserialize)]
struct Transformation {
    #[allow(dead_code)]
    id: String,
    #[serde(flatten)]
    kind: TransformationKind,
    #[serde(default)]
    rule_conditions: Vec<RuleCondition>,
    /// How `rule_conditions` combine: `and` (pySigma's default) or `or`.
    #[serde(default)]
    rule_cond_op: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RuleCondition {
    Logsource {
        #[serde(flatten)]
        logsource: Logsource,
    },
}

impl Transformation {
    fn applies(&self, rule: &Logsource) -> bool {
        let holds = |c: &RuleCondition| match c {
            RuleCondition::Logsource { logsource } => logsource.covers(rule),
        };
        if self.rule_cond_op.as_deref() == Some("or") {
            self.rule_conditions.iter().any(holds)
        } else {
            self.rule_conditions.iter().all(holds)
        }
    }
}

fn built_in() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        serde_saphyr::from_str(BUILT_IN).expect("the built-in Sigma pipeline is valid YAML")
    })
}

/// A Sigma rule's view of the events: the sources its logsource is read by, and how its field
/// names find the vendor record.
pub(crate) struct Vendor {
    pub sources: Vec<Source>,
    transformations: Vec<&'static Transformation>,
    /// The closed sets of top-level members of the sources, when every source has one.
    top_level: Option<Vec<&'static str>>,
}

/// Routes a rule's `logsource`; the error names the log sources that are read.
pub(crate) fn route(spec: &LogsourceSpec) -> Result<Vendor, String> {
    let rule = logsource(spec);
    let pipeline = built_in();
    let mut sources: Vec<Source> = pipeline
        .logsources
        .iter()
        // The rule names every part the route names (a rule for all of `aws` is not only
        // CloudTrail's); parts only the rule names (Sigma's `category: application` beside
        // `product: kubernetes`) narrow nothing here.
        .filter(|r| r.logsource.covers(&rule) && r.logsource != Logsource::default())
        .filter_map(|r| Source::from_name(&r.source))
        .collect();
    sources.dedup();
    if sources.is_empty() {
        let known: Vec<String> = pipeline
            .logsources
            .iter()
            .map(|r| describe(&r.logsource))
            .collect();
        return Err(format!(
            "logsource {} is not a log sessionguard reads (it reads {})",
            describe(&rule),
            known.join("; ")
        ));
    }
    let top_level = sources
        .iter()
        .map(|s| pipeline.top_level_fields.get(s.as_str()))
        .collect::<Option<Vec<_>>>()
        .map(|sets| sets.into_iter().flatten().map(String::as_str).collect());
    Ok(Vendor {
        sources,
        top_level,
        transformations: pipeline
            .transformations
            .iter()
            .filter(|t| t.applies(&rule))
            .collect(),
    })
}

/// A rule's (or filter's) logsource as written.
fn logsource(spec: &LogsourceSpec) -> Logsource {
    let text = |s: &Option<Str>| s.as_ref().map(|s| s.value.clone());
    Logsource {
        product: text(&spec.product),
        service: text(&spec.service),
        category: text(&spec.category),
    }
}

/// Whether a filter's logsource covers a rule's: every part the filter names is the rule's, in
/// any case (`product: aws` covers `product: aws, service: cloudtrail`), as pySigma applies
/// filters.
pub(crate) fn covers(filter: &LogsourceSpec, rule: &LogsourceSpec) -> bool {
    logsource(filter).covers(&logsource(rule))
}

/// `{product: aws, service: cloudtrail}`, for messages.
pub(crate) fn describe_spec(spec: &LogsourceSpec) -> String {
    describe(&logsource(spec))
}

fn describe(l: &Logsource) -> String {
    let parts: Vec<String> = [
        ("product", &l.product),
        ("service", &l.service),
        ("category", &l.category),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
    .collect();
    format!("{{{}}}", parts.join(", "))
}

impl Vendor {
    /// A rule whose logsource no adapter reads (already an error): its names are the vendor's.
    pub fn unrouted() -> Vendor {
        Vendor {
            sources: Vec::new(),
            transformations: Vec::new(),
            top_level: None,
        }
    }

    /// Why `field_name` (in the engine's terms, `raw.…`) could never be present in the
    /// sources' records; `None` when it can, or when their members are an open set.
    pub fn never_present(&self, field_name: &str) -> Option<String> {
        let top = self.top_level.as_ref()?;
        let first = field_name.strip_prefix("raw.")?.split('.').next()?;
        let first = first.trim_end_matches('?');
        if top.iter().any(|k| k.eq_ignore_ascii_case(first)) {
            return None;
        }
        let sources: Vec<&str> = self.sources.iter().map(|s| s.as_str()).collect();
        Some(format!(
            "`{first}` is not a member of {} records, so this rule could never match \
             (their members: {})",
            sources.join(" or "),
            top.join(", ")
        ))
    }

    /// A field name in the engine's terms: `raw.` and the vendor name through the pipeline
    /// (a name written `raw.…` is kept, and so is none: a keyword's).
    pub fn field_name(&self, name: &str) -> String {
        // No name: a keyword, searched for in the whole record.
        if name.is_empty() || name.starts_with("raw.") {
            return name.to_owned();
        }
        let mapped = self.vendor_name(name);
        // `event.<name>` is the engine's field only as a mapping's target: a vendor field may
        // be named so itself (ECS's `event.category`).
        match mapped.strip_prefix("event.") {
            Some(model) if mapped != name => model.to_owned(),
            _ => format!("raw.{mapped}"),
        }
    }

    fn vendor_name(&self, name: &str) -> String {
        let mut name = name.to_owned();
        for t in &self.transformations {
            match &t.kind {
                TransformationKind::FieldNameMapping { mapping } => {
                    if let Some(to) = mapping.get(&name) {
                        name = to.clone();
                    }
                }
                TransformationKind::FieldNamePrefix { prefix } => name = format!("{prefix}{name}"),
            }
        }
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::spec::Pos;

    fn logsource(product: &str, service: &str) -> LogsourceSpec {
        let s = |v: &str| (!v.is_empty()).then(|| Str::synthetic(v, Pos::default()));
        LogsourceSpec {
            pos: Pos::default(),
            product: s(product),
            service: s(service),
            category: None,
        }
    }

    #[test]
    fn logsources_route_to_their_adapters() {
        for (product, service, source) in [
            ("aws", "cloudtrail", Source::Cloudtrail),
            ("okta", "okta", Source::Okta),
            ("azure", "signinlogs", Source::Entra),
            ("Azure", "AuditLogs", Source::Entra),
            ("github", "audit", Source::Github),
            ("kubernetes", "audit", Source::Kubernetes),
        ] {
            let vendor = route(&logsource(product, service)).unwrap();
            assert_eq!(vendor.sources, vec![source], "{product}/{service}");
        }
        let err = route(&logsource("gcp", "gcp.audit")).err().unwrap();
        assert!(
            err.contains("{product: gcp, service: gcp.audit} is not a log"),
            "{err}"
        );
        assert!(err.contains("{product: aws, service: cloudtrail}"), "{err}");
        // A product alone is not a route to one of its services.
        assert!(route(&logsource("aws", "")).is_err());
    }

    #[test]
    fn field_names_become_vendor_paths() {
        let aws = route(&logsource("aws", "cloudtrail")).unwrap();
        assert_eq!(aws.field_name("eventName"), "raw.eventName");
        assert_eq!(aws.field_name("userIdentity.type"), "raw.userIdentity.type");
        assert_eq!(aws.field_name("raw.eventName"), "raw.eventName");
        // A keyword has no field name, before or after.
        assert_eq!(aws.field_name(""), "");
        // A mapping onto the engine's own field.
        assert_eq!(aws.field_name("status"), "outcome");
        // A vendor field named `event.…` as written is the vendor's.
        assert_eq!(aws.field_name("event.category"), "raw.event.category");
        assert!(aws.never_present("raw.status").is_some());
        assert_eq!(aws.never_present("raw.eventname"), None);
        let k8s = route(&logsource("kubernetes", "audit")).unwrap();
        assert_eq!(k8s.field_name("apiGroup"), "raw.objectRef.apiGroup");
        let entra = route(&logsource("azure", "signinlogs")).unwrap();
        assert_eq!(
            entra.field_name("DeviceDetail.deviceId"),
            "raw.properties?.DeviceDetail.deviceId"
        );
    }
}
