//! The `actuate` config file: its text form (serde, mirroring the YAML) and the checked form
//! the process runs on ([`Settings`]). Every error in the file is collected, each naming the
//! receiver or section it is in, before loading fails; no secret is ever part of an error.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::aws::AwsSigner;
use super::github::{GithubAction, GithubTarget};
use super::guard::{GuardSettings, GuardSpec};
use super::oauth::ClientCredentials;
use super::secret::{Secret, SecretSpec};
use super::set::{SetSigner, SigningAlg, SubjectFormat};
use super::stream::{StreamSettings, StreamsSpec};
use super::topic::KafkaSpec;
use super::vendor::Kind;
use crate::units::parse_duration_ms;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    /// `iss` of every SET: this transmitter's issuer URL.
    pub issuer: String,
    pub signing_key: SigningKeySpec,
    /// Serve `/.well-known/ssf-configuration` and `/jwks.json` here (ADDR:PORT).
    #[serde(default)]
    pub listen: Option<String>,
    /// The durable position in the decisions file: where to go on after a restart.
    #[serde(default)]
    pub state: Option<PathBuf>,
    /// Actuation records (NDJSON): one line per decision and receiver.
    #[serde(default)]
    pub records: Option<PathBuf>,
    /// Decisions in delivery at once (default 64).
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    #[serde(default)]
    pub receivers: Vec<ReceiverSpec>,
    #[serde(default)]
    pub guard: Option<GuardSpec>,
    /// The actions topic to read decisions from when `--decisions` is not given.
    #[serde(default)]
    pub kafka: Option<KafkaSpec>,
    /// Act only on decisions authenticated by `run`.
    #[serde(default)]
    pub trust: Option<TrustSpec>,
    /// SSF 1.0 streams receivers manage themselves (push or poll).
    #[serde(default)]
    pub streams: Option<StreamsSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSpec {
    /// The key `run` signs decisions with (`SESSIONGUARD_DECISION_MAC_KEY[_FILE]` there).
    pub decision_mac_key: SecretSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeySpec {
    /// `ES256` or `RS256`.
    pub alg: String,
    /// `kid` of the key in the JWKS and in every SET header.
    pub kid: String,
    /// The private key, PEM (PKCS#8, or SEC1 / PKCS#1).
    pub key: SecretSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverSpec {
    pub name: String,
    /// `ssf` (the default: SETs pushed), `okta` or `graph` (direct actuators).
    #[serde(default)]
    pub kind: Option<String>,
    /// Build and record each request, send none.
    #[serde(default)]
    pub dry_run: bool,
    /// The receiver's push endpoint (RFC 8935), or the vendor API's base URL
    /// (`https://northwind.okta.com`, `https://graph.microsoft.com`).
    pub endpoint: String,
    /// `aud` of the SETs sent to it.
    #[serde(default)]
    pub audience: Option<String>,
    /// Sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub authorization: Option<SecretSpec>,
    /// `complex` (session + user, the default), `email`, `iss_sub` or `opaque`.
    #[serde(default)]
    pub subject: Option<String>,
    /// `iss` of an `iss_sub` subject: the identity provider the user ids belong to.
    #[serde(default)]
    pub subject_issuer: Option<String>,
    /// The CAEP events it takes (`session-revoked`, the default; `credential-change`,
    /// `assurance-level-change`).
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub take: Option<TakeSpec>,
    /// Per attempt (default 5s).
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    #[serde(default)]
    pub breaker: Option<BreakerSpec>,
    /// `kind: aws`: the credentials IAM calls are signed with.
    #[serde(default)]
    pub aws: Option<AwsSpec>,
    /// PEM file of the CAs that sign the receiver's certificate (default: the system's).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `kind: github`: the organization and what to do.
    #[serde(default)]
    pub github: Option<GithubSpec>,
    /// The API's bearer token fetched with the OAuth 2.0 client-credentials grant (Microsoft
    /// Graph), instead of `authorization`.
    #[serde(default)]
    pub client_credentials: Option<ClientCredentialsSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentialsSpec {
    /// `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    pub token_endpoint: String,
    pub client_id: String,
    pub client_secret: SecretSpec,
    /// Default `https://graph.microsoft.com/.default`.
    #[serde(default)]
    pub scope: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubSpec {
    pub org: String,
    /// `token` (the default), `membership` or `suspend`.
    #[serde(default)]
    pub action: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSpec {
    pub access_key_id: SecretSpec,
    pub secret_access_key: SecretSpec,
    #[serde(default)]
    pub session_token: Option<SecretSpec>,
    /// The signing region (IAM: `us-east-1`, the default).
    #[serde(default)]
    pub region: Option<String>,
}

/// Which decisions a receiver takes; what is not named is not filtered.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TakeSpec {
    #[serde(default)]
    pub rules: Option<Vec<String>>,
    /// Session key prefixes (default for `okta`: `okta:`, for `graph`: `entra:`).
    #[serde(default)]
    pub sessions: Option<Vec<String>>,
    /// Default: `revoke_session`, `revoke_credential`.
    #[serde(default)]
    pub actions: Option<Vec<String>>,
    /// Default: `enforce`.
    #[serde(default)]
    pub modes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    #[serde(default)]
    pub initial: Option<String>,
    #[serde(default)]
    pub max: Option<String>,
    #[serde(default)]
    pub give_up_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSpec {
    #[serde(default)]
    pub failures: Option<u32>,
    #[serde(default)]
    pub open_for: Option<String>,
}

/// The checked settings.
pub struct Settings {
    pub issuer: String,
    pub signer: SetSigner,
    pub listen: Option<SocketAddr>,
    pub state: Option<PathBuf>,
    pub records: Option<PathBuf>,
    pub max_in_flight: usize,
    pub receivers: Vec<ReceiverSettings>,
    pub guard: GuardSettings,
    pub kafka: Option<KafkaSpec>,
    pub decision_mac_key: Option<Secret>,
    pub streams: Option<StreamSettings>,
}

pub struct ReceiverSettings {
    pub name: String,
    pub kind: Kind,
    pub dry_run: bool,
    pub endpoint: hyper::Uri,
    pub audience: Option<String>,
    pub authorization: Option<Secret>,
    pub subject: SubjectFormat,
    /// The CAEP event URIs it takes.
    pub events: Vec<&'static str>,
    pub take: Take,
    pub timeout: Duration,
    pub retry: Retry,
    pub breaker_failures: u32,
    pub breaker_open_for: Duration,
    pub ca_file: Option<PathBuf>,
    pub aws: Option<AwsSigner>,
    pub github: Option<GithubTarget>,
    pub client_credentials: Option<ClientCredentials>,
}

#[derive(Clone, Debug)]
pub struct Take {
    pub rules: Option<Vec<String>>,
    pub sessions: Option<Vec<String>>,
    pub actions: Vec<String>,
    pub modes: Vec<String>,
}

impl Take {
    pub fn takes(&self, rule: &str, action: &str, mode: &str, session: &str) -> bool {
        self.rules
            .as_ref()
            .is_none_or(|rules| rules.iter().any(|r| r == rule))
            && self
                .sessions
                .as_ref()
                .is_none_or(|prefixes| prefixes.iter().any(|p| session.starts_with(p.as_str())))
            && self.actions.iter().any(|a| a == action)
            && self.modes.iter().any(|m| m == mode)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Retry {
    pub initial: Duration,
    pub max: Duration,
    pub give_up_after: Duration,
}

const ACTIONS: [&str; 4] = ["revoke_session", "revoke_credential", "step_up", "alert"];
const MODES: [&str; 2] = ["enforce", "dry_run"];

impl Settings {
    /// Reads and checks the file; relative paths in it are taken beside it.
    pub fn load(path: &Path) -> Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the actuate config {}", path.display()))?;
        let spec: ConfigSpec = serde_saphyr::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Settings::build(spec, base).with_context(|| format!("in {}", path.display()))
    }

    /// The checked form of `spec`, or every problem found in it.
    pub fn build(spec: ConfigSpec, base: &Path) -> Result<Settings> {
        let mut errors = Vec::new();
        let signer = match signing_key(&spec, base) {
            Ok(signer) => Some(signer),
            Err(e) => {
                errors.push(format!("signing_key: {e:#}"));
                None
            }
        };
        let listen = match spec.listen.as_deref().map(str::parse::<SocketAddr>) {
            None => None,
            Some(Ok(addr)) => Some(addr),
            Some(Err(e)) => {
                errors.push(format!("listen: {e} (ADDR:PORT, e.g. 127.0.0.1:8471)"));
                None
            }
        };
        if spec.issuer.trim().is_empty() {
            errors.push("issuer: empty".into());
        }
        let mut receivers = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (index, r) in spec.receivers.into_iter().enumerate() {
            let label = format!("receivers[{index}] ({})", r.name);
            if !names.insert(r.name.clone()) {
                errors.push(format!("{label}: the name is used twice"));
            }
            match receiver(r, base) {
                Ok(r) => receivers.push(r),
                Err(problems) => {
                    errors.extend(problems.into_iter().map(|p| format!("{label}: {p}")))
                }
            }
        }
        let streams = match spec
            .streams
            .map(|s| StreamSettings::build(s, base))
            .transpose()
        {
            Ok(streams) => streams,
            Err(problems) => {
                errors.extend(problems.into_iter().map(|p| format!("streams: {p}")));
                None
            }
        };
        if receivers.is_empty() && streams.is_none() && errors.is_empty() {
            errors.push("receivers: none configured (and no `streams:`)".into());
        }
        let guard = match spec.guard.map(GuardSettings::build).transpose() {
            Ok(guard) => guard.unwrap_or_default(),
            Err(problems) => {
                errors.extend(problems.into_iter().map(|p| format!("guard: {p}")));
                GuardSettings::default()
            }
        };
        let decision_mac_key = match &spec.trust {
            None => None,
            Some(trust) => match Secret::load(&trust.decision_mac_key, base) {
                Ok(key) if key.expose().len() >= 16 => Some(key),
                Ok(_) => {
                    errors.push("trust.decision_mac_key: shorter than 16 bytes".into());
                    None
                }
                Err(e) => {
                    errors.push(format!("trust.decision_mac_key: {e:#}"));
                    None
                }
            },
        };
        let max_in_flight = spec.max_in_flight.unwrap_or(64);
        if max_in_flight == 0 {
            errors.push("max_in_flight: must be at least 1".into());
        }
        let Some(signer) = signer.filter(|_| errors.is_empty()) else {
            bail!("{} problem(s):\n  {}", errors.len(), errors.join("\n  "));
        };
        Ok(Settings {
            issuer: spec.issuer,
            signer,
            listen,
            state: spec.state.map(|p| base.join(p)),
            records: spec.records.map(|p| base.join(p)),
            max_in_flight,
            receivers,
            guard,
            kafka: spec.kafka,
            decision_mac_key,
            streams,
        })
    }
}

fn signing_key(spec: &ConfigSpec, base: &Path) -> Result<SetSigner> {
    let alg = match spec.signing_key.alg.as_str() {
        "ES256" => SigningAlg::Es256,
        "RS256" => SigningAlg::Rs256,
        other => bail!("alg {other:?}: ES256 or RS256"),
    };
    let key = Secret::load(&spec.signing_key.key, base)?;
    SetSigner::new(alg, &spec.signing_key.kid, &key)
}

fn duration(
    text: Option<&str>,
    default: Duration,
    what: &str,
    errors: &mut Vec<String>,
) -> Duration {
    match text {
        None => default,
        Some(text) => match parse_duration_ms(text) {
            Some(ms) if ms > 0 => Duration::from_millis(ms as u64),
            _ => {
                errors.push(format!(
                    "{what}: {text:?} is not a positive duration (e.g. 500ms, 5s)"
                ));
                default
            }
        },
    }
}

fn receiver(r: ReceiverSpec, base: &Path) -> Result<ReceiverSettings, Vec<String>> {
    let mut errors = Vec::new();
    let endpoint = http_url(&r.endpoint, "endpoint", &mut errors);
    let authorization = r
        .authorization
        .as_ref()
        .map(|spec| Secret::load(spec, base))
        .transpose()
        .unwrap_or_else(|e| {
            errors.push(format!("authorization: {e:#}"));
            None
        });
    let subject = SubjectFormat::parse(
        r.subject.as_deref().unwrap_or("complex"),
        r.subject_issuer.as_deref(),
    )
    .unwrap_or_else(|e| {
        errors.push(e);
        SubjectFormat::Complex
    });
    let mut events = Vec::new();
    for name in r
        .events
        .clone()
        .unwrap_or_else(|| vec!["session-revoked".into()])
    {
        match super::set::caep_event(&name) {
            Some(uri) => events.push(uri),
            None => errors.push(format!(
                "events: {name:?} is not one of session-revoked, credential-change, assurance-level-change"
            )),
        }
    }
    let kind = match r.kind.as_deref().map(Kind::parse) {
        None => Kind::Ssf,
        Some(Some(kind)) => kind,
        Some(None) => {
            errors.push(format!(
                "kind {:?}: ssf, okta, graph, aws, github or kubernetes",
                r.kind.as_deref().unwrap_or("")
            ));
            Kind::Ssf
        }
    };
    let aws = aws_signer(r.aws.as_ref(), kind, base, &mut errors);
    let client_credentials = client_credentials(&r, kind, base, &mut errors);
    let github = github_target(&r, kind, &mut errors);
    let take = r.take.unwrap_or_default();
    let actions = take
        .actions
        .unwrap_or_else(|| vec!["revoke_session".into(), "revoke_credential".into()]);
    let modes = take.modes.unwrap_or_else(|| vec!["enforce".into()]);
    for a in actions.iter().filter(|a| !ACTIONS.contains(&a.as_str())) {
        errors.push(format!(
            "take.actions: {a:?} is not one of {}",
            ACTIONS.join(", ")
        ));
    }
    for m in modes.iter().filter(|m| !MODES.contains(&m.as_str())) {
        errors.push(format!(
            "take.modes: {m:?} is not one of {}",
            MODES.join(", ")
        ));
    }
    let timeout = duration(
        r.timeout.as_deref(),
        Duration::from_secs(5),
        "timeout",
        &mut errors,
    );
    let retry = retry(r.retry.unwrap_or_default(), &mut errors);
    let breaker = r.breaker.unwrap_or_default();
    let breaker_failures = breaker.failures.unwrap_or(5).max(1);
    let breaker_open_for = duration(
        breaker.open_for.as_deref(),
        Duration::from_secs(30),
        "breaker.open_for",
        &mut errors,
    );
    match endpoint {
        Some(endpoint) if errors.is_empty() => Ok(ReceiverSettings {
            name: r.name,
            endpoint,
            audience: r.audience,
            authorization,
            subject,
            events,
            kind,
            dry_run: r.dry_run,
            take: Take {
                rules: take.rules,
                sessions: take.sessions.or_else(|| kind.default_sessions()),
                actions,
                modes,
            },
            timeout,
            retry,
            breaker_failures,
            breaker_open_for,
            ca_file: r.ca_file.map(|p| base.join(p)),
            aws,
            github,
            client_credentials,
        }),
        _ => Err(errors),
    }
}

/// An `http://` or `https://` URL with a host; an error naming `what` otherwise.
fn http_url(text: &str, what: &str, errors: &mut Vec<String>) -> Option<hyper::Uri> {
    match text.parse::<hyper::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
            Some(uri)
        }
        Ok(_) => {
            errors.push(format!("{what} {text:?}: an http:// or https:// URL"));
            None
        }
        Err(e) => {
            errors.push(format!("{what} {text:?}: {e}"));
            None
        }
    }
}

/// A direct actuator's OAuth client-credentials flow (`client_credentials:`), checked.
fn client_credentials(
    r: &ReceiverSpec,
    kind: Kind,
    base: &Path,
    errors: &mut Vec<String>,
) -> Option<ClientCredentials> {
    match &r.client_credentials {
        None => None,
        Some(_) if kind == Kind::Ssf => {
            errors.push(
                "client_credentials: for a direct actuator (kind graph …), not an SSF receiver"
                    .into(),
            );
            None
        }
        Some(_) if r.authorization.is_some() => {
            errors.push("client_credentials and authorization: name one".into());
            None
        }
        Some(spec) => {
            let endpoint = http_url(
                &spec.token_endpoint,
                "client_credentials.token_endpoint",
                errors,
            );
            let secret = Secret::load(&spec.client_secret, base)
                .map_err(|e| errors.push(format!("client_credentials.client_secret: {e:#}")))
                .ok();
            if spec.client_id.is_empty() {
                errors.push("client_credentials.client_id: empty".into());
            }
            match (endpoint, secret) {
                (Some(token_endpoint), Some(client_secret)) => Some(ClientCredentials {
                    token_endpoint,
                    client_id: spec.client_id.clone(),
                    client_secret,
                    scope: spec
                        .scope
                        .clone()
                        .unwrap_or_else(|| "https://graph.microsoft.com/.default".into()),
                }),
                _ => None,
            }
        }
    }
}

/// A `kind: github` receiver's organisation and action (`github:`), checked.
fn github_target(r: &ReceiverSpec, kind: Kind, errors: &mut Vec<String>) -> Option<GithubTarget> {
    match (&r.github, kind) {
        (Some(spec), Kind::Github) => {
            let action = spec.action.as_deref().unwrap_or("token");
            match GithubAction::parse(action) {
                Some(action) if !spec.org.is_empty() => Some(GithubTarget {
                    org: spec.org.clone(),
                    action,
                }),
                Some(_) => {
                    errors.push("github.org: empty".into());
                    None
                }
                None => {
                    errors.push(format!(
                        "github.action {action:?}: token, membership or suspend"
                    ));
                    None
                }
            }
        }
        (None, Kind::Github) => {
            errors.push("kind github needs `github: { org: … }`".into());
            None
        }
        (Some(_), _) => {
            errors.push("`github:` belongs to a receiver of kind github".into());
            None
        }
        (None, _) => None,
    }
}

/// Retry timing (`retry:`), with its defaults.
fn retry(retry: RetrySpec, errors: &mut Vec<String>) -> Retry {
    Retry {
        initial: duration(
            retry.initial.as_deref(),
            Duration::from_millis(200),
            "retry.initial",
            errors,
        ),
        max: duration(
            retry.max.as_deref(),
            Duration::from_secs(30),
            "retry.max",
            errors,
        ),
        give_up_after: duration(
            retry.give_up_after.as_deref(),
            Duration::from_secs(3600),
            "retry.give_up_after",
            errors,
        ),
    }
}

/// The SigV4 signer of a `kind: aws` receiver, from its `aws:` credentials.
fn aws_signer(
    spec: Option<&AwsSpec>,
    kind: Kind,
    base: &Path,
    errors: &mut Vec<String>,
) -> Option<AwsSigner> {
    match (spec, kind) {
        (Some(spec), Kind::Aws) => {
            let load = |spec: &SecretSpec, what: &str, errors: &mut Vec<String>| {
                Secret::load(spec, base)
                    .map_err(|e| errors.push(format!("aws.{what}: {e:#}")))
                    .ok()
            };
            let id = load(&spec.access_key_id, "access_key_id", errors);
            let secret = load(&spec.secret_access_key, "secret_access_key", errors);
            let token = spec
                .session_token
                .as_ref()
                .and_then(|t| load(t, "session_token", errors));
            match (id, secret) {
                (Some(access_key_id), Some(secret_access_key)) => Some(AwsSigner {
                    access_key_id,
                    secret_access_key,
                    session_token: token,
                    region: spec.region.clone().unwrap_or_else(|| "us-east-1".into()),
                    service: "iam".into(),
                }),
                _ => None,
            }
        }
        (None, Kind::Aws) => {
            errors.push("kind aws needs `aws:` credentials".into());
            None
        }
        (Some(_), _) => {
            errors.push("`aws:` credentials belong to a receiver of kind aws".into());
            None
        }
        (None, _) => None,
    }
}
