//! The librdkafka properties of the settings: the secrets they hold and the checks they get
//! before any client exists. Pure text work, with no Kafka client, so the settings can be
//! read, shown and validated in every build.
//!
//! - **Secret references.** Any librdkafka property value may be `${file:PATH}` (the file's
//!   text, one trailing newline dropped) or `${env:NAME}` ([`resolve`]), and any property may
//!   come from a `SESSIONGUARD_KAFKA_*` variable ([`from_env`]), so a password never has to be
//!   on a command line, where every local user can read it in `ps`.
//! - **Redaction.** [`is_secret`] names the properties that hold secrets; [`shown`] is what
//!   logs, `Debug` output and errors print for a value. Nothing here logs a secret's value,
//!   and error texts that may quote one back are passed through [`scrub`].
//! - **Checks** ([`check`]): the security and compression properties are validated together,
//!   every problem reported with the property and the fix, instead of librdkafka's first
//!   complaint or, worse, a client that retries a wrong setting forever.

/// What logs and errors print instead of a secret.
pub const REDACTED: &str = "[redacted]";

/// The prefix of the variables that set librdkafka properties.
pub const ENV_PREFIX: &str = "SESSIONGUARD_KAFKA_";

/// True for the librdkafka properties that hold secrets (passwords, client secrets, private
/// keys, the unsecured OAUTHBEARER configuration).
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.contains("passphrase")
        || key.contains("private.key")
        || key == "ssl.key.pem"
        || key == "ssl_key"
        || key == "sasl.oauthbearer.config"
}

/// The value as it may be shown: secrets redacted, anything else as is.
pub fn shown<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret(key) {
        REDACTED
    } else {
        value
    }
}

/// `text` with every secret value of `properties` replaced by [`REDACTED`]; for error texts
/// that may quote a value back.
pub fn scrub(text: &str, properties: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    for (key, value) in properties {
        if is_secret(key) && value.len() >= 3 && out.contains(value.as_str()) {
            out = out.replace(value.as_str(), REDACTED);
        }
    }
    out
}

/// librdkafka properties from `SESSIONGUARD_KAFKA_*` variables: the rest of the name
/// lower-cased, `_` read as `.` and `__` as `_` (`SESSIONGUARD_KAFKA_SASL_PASSWORD` →
/// `sasl.password`), as Confluent's container images read `KAFKA_*`.
pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars
        .into_iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix(ENV_PREFIX)?;
            if rest.is_empty() || value.is_empty() {
                return None;
            }
            let key = rest
                .to_ascii_lowercase()
                .split("__")
                .map(|part| part.replace('_', "."))
                .collect::<Vec<_>>()
                .join("_");
            Some((key, value))
        })
        .collect();
    out.sort();
    out
}

/// Resolves a `${file:PATH}` or `${env:NAME}` value; any other value is returned as is.
pub fn resolve(
    key: &str,
    value: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let Some(inner) = value
        .trim()
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
    else {
        return Ok(value.to_owned());
    };
    if let Some(path) = inner.strip_prefix("file:") {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{key}: cannot read {path} (from ${{file:…}}): {e}"))?;
        let text = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        if text.is_empty() {
            return Err(format!("{key}: {path} (from ${{file:…}}) is empty"));
        }
        Ok(text.to_owned())
    } else if let Some(name) = inner.strip_prefix("env:") {
        match var(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(format!(
                "{key}: the variable {name} (from ${{env:…}}) is not set or empty"
            )),
        }
    } else {
        Err(format!(
            "{key}: '{}' is not a reference sessionguard knows; use ${{file:PATH}} or \
             ${{env:NAME}}",
            shown(key, value)
        ))
    }
}

/// Problems and warnings found by [`check`].
#[derive(Debug, Default)]
pub struct Findings {
    /// Settings that cannot work; the command must not start.
    pub errors: Vec<String>,
    /// Settings that work but weaken security (for example hostname verification off).
    pub warnings: Vec<String>,
}

const PROTOCOLS: &[&str] = &["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
const MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];
const CODECS: &[&str] = &["none", "gzip", "snappy", "lz4", "zstd", "inherit"];
/// Properties naming files librdkafka opens.
const FILES: &[&str] = &[
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.crl.location",
    "ssl.keystore.location",
    "sasl.oauthbearer.assertion.private.key.file",
    "sasl.oauthbearer.assertion.file",
    "sasl.oauthbearer.assertion.jwt.template.file",
];

/// Checks the security and compression properties (already resolved) together.
pub fn check(properties: &[(String, String)]) -> Findings {
    let mut f = Findings::default();
    let get = |key: &str| property(properties, key);
    let protocol = get("security.protocol")
        .unwrap_or("plaintext")
        .to_ascii_lowercase();
    if !PROTOCOLS.contains(&protocol.as_str()) {
        f.errors.push(format!(
            "security.protocol: '{protocol}' is not one of {}",
            PROTOCOLS.join(", ")
        ));
    }
    let tls = protocol.ends_with("ssl");
    let sasl = protocol.starts_with("sasl_");
    for (key, _) in properties {
        if key.starts_with("ssl.") && !tls && PROTOCOLS.contains(&protocol.as_str()) {
            f.errors.push(format!(
                "{key} is set, but security.protocol is {protocol}, which does not use TLS: \
                 set security.protocol=ssl (or sasl_ssl)"
            ));
        }
        if key.starts_with("sasl.") && !sasl && PROTOCOLS.contains(&protocol.as_str()) {
            f.errors.push(format!(
                "{key} is set, but security.protocol is {protocol}, which does not use SASL: \
                 set security.protocol=sasl_ssl (or sasl_plaintext)"
            ));
        }
    }
    let mechanism = get("sasl.mechanism")
        .or(get("sasl.mechanisms"))
        .unwrap_or("GSSAPI")
        .to_ascii_uppercase();
    if sasl {
        match mechanism.as_str() {
            "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
                for key in ["sasl.username", "sasl.password"] {
                    if get(key).is_none_or(str::is_empty) {
                        f.errors.push(format!(
                            "sasl.mechanism {mechanism} needs {key}{}",
                            if key == "sasl.password" {
                                " (e.g. -X 'sasl.password=${file:/run/secrets/kafka}' or \
                                 SESSIONGUARD_KAFKA_SASL_PASSWORD)"
                            } else {
                                ""
                            }
                        ));
                    }
                }
            }
            "OAUTHBEARER" => check_oauthbearer(properties, &mut f),
            "GSSAPI" if get("sasl.mechanism").is_none() && get("sasl.mechanisms").is_none() => {
                f.errors.push(format!(
                    "security.protocol {protocol} needs sasl.mechanism: one of {}",
                    MECHANISMS.join(", ")
                ));
            }
            "GSSAPI" => f.errors.push(
                "sasl.mechanism GSSAPI (Kerberos) is not built into sessionguard; use \
                 SCRAM-SHA-512, PLAIN over TLS or OAUTHBEARER (docs/kafka.md)"
                    .to_owned(),
            ),
            "AWS_MSK_IAM" => f.errors.push(
                "sasl.mechanism AWS_MSK_IAM is the Java client's name; Amazon MSK's IAM \
                 authentication is not built into sessionguard: use SCRAM-SHA-512 on MSK \
                 (docs/kafka.md, \"Amazon MSK\")"
                    .to_owned(),
            ),
            other => f.errors.push(format!(
                "sasl.mechanism: '{other}' is not one of {}",
                MECHANISMS.join(", ")
            )),
        }
    }
    for key in FILES {
        let Some(path) = get(key) else { continue };
        if *key == "ssl.ca.location" && path == "probe" {
            continue;
        }
        if let Err(e) = std::fs::metadata(path) {
            f.errors.push(format!("{key}: cannot open {path}: {e}"));
        }
    }
    match (
        get("ssl.certificate.location").is_some() || get("ssl.certificate.pem").is_some(),
        get("ssl.key.location").is_some() || get("ssl.key.pem").is_some(),
    ) {
        (true, false) => f.errors.push(
            "ssl.certificate.location is set without ssl.key.location: a client certificate \
             (mTLS) needs its private key"
                .to_owned(),
        ),
        (false, true) => f.errors.push(
            "ssl.key.location is set without ssl.certificate.location: a client certificate \
             (mTLS) needs both"
                .to_owned(),
        ),
        _ => {}
    }
    for key in ["compression.type", "compression.codec"] {
        if let Some(codec) = get(key) {
            if !CODECS.contains(&codec.to_ascii_lowercase().as_str()) {
                f.errors.push(format!(
                    "{key}: '{codec}' is not one of none, gzip, snappy, lz4, zstd"
                ));
            }
        }
    }
    if tls {
        if get("ssl.endpoint.identification.algorithm").is_some_and(|v| v == "none") {
            f.warnings.push(
                "ssl.endpoint.identification.algorithm=none: the broker's host name is not \
                 checked against its certificate, so any certificate the CA signed is accepted"
                    .to_owned(),
            );
        }
        if get("enable.ssl.certificate.verification").is_some_and(|v| v == "false") {
            f.warnings.push(
                "enable.ssl.certificate.verification=false: the broker's certificate is not \
                 verified at all; anyone on the path can read and change the audit stream"
                    .to_owned(),
            );
        }
    }
    if protocol == "sasl_plaintext" && mechanism == "PLAIN" {
        f.warnings.push(
            "sasl.mechanism PLAIN over sasl_plaintext sends the password in clear text; use \
             sasl_ssl"
                .to_owned(),
        );
    }
    f
}

/// The last value of `key`, trimmed.
pub(crate) fn property<'a>(properties: &'a [(String, String)], key: &str) -> Option<&'a str> {
    properties
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim())
}

fn check_oauthbearer(properties: &[(String, String)], f: &mut Findings) {
    let get = |key: &str| property(properties, key);
    let method = get("sasl.oauthbearer.method")
        .unwrap_or("default")
        .to_ascii_lowercase();
    match method.as_str() {
        "oidc" => {
            let assertion = get("sasl.oauthbearer.assertion.private.key.file").is_some()
                || get("sasl.oauthbearer.assertion.file").is_some();
            let mut needed = vec![
                "sasl.oauthbearer.client.id",
                "sasl.oauthbearer.token.endpoint.url",
            ];
            if !assertion {
                needed.push("sasl.oauthbearer.client.secret");
            }
            for key in needed {
                if get(key).is_none_or(str::is_empty) {
                    f.errors.push(format!(
                        "sasl.oauthbearer.method oidc (client credentials) needs {key}"
                    ));
                }
            }
            if let Some(url) = get("sasl.oauthbearer.token.endpoint.url") {
                if url.starts_with("http://") {
                    f.warnings.push(format!(
                        "sasl.oauthbearer.token.endpoint.url {url} is not https: the client \
                         secret crosses the network in clear text"
                    ));
                }
            }
        }
        "default" => {
            if get("sasl.oauthbearer.config").is_none() {
                f.errors.push(
                    "sasl.mechanism OAUTHBEARER needs a token: set sasl.oauthbearer.method=oidc \
                     with sasl.oauthbearer.client.id, sasl.oauthbearer.client.secret and \
                     sasl.oauthbearer.token.endpoint.url (docs/kafka.md)"
                        .to_owned(),
                );
            }
        }
        other => f.errors.push(format!(
            "sasl.oauthbearer.method: '{other}' is not one of default, oidc"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn secrets_are_recognised_and_redacted() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "ssl.key.pem",
            "sasl.oauthbearer.config",
        ] {
            assert!(is_secret(key), "{key}");
            assert_eq!(shown(key, "hunter2"), REDACTED);
        }
        for key in ["sasl.username", "ssl.ca.location", "security.protocol"] {
            assert!(!is_secret(key), "{key}");
        }
        let p = props(&[("sasl.password", "hunter2"), ("sasl.username", "alice")]);
        assert_eq!(
            scrub("bad value hunter2 for alice", &p),
            "bad value [redacted] for alice"
        );
    }

    #[test]
    fn variables_name_properties() {
        let vars = [
            ("SESSIONGUARD_KAFKA_SASL_PASSWORD", "pw"),
            ("SESSIONGUARD_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("SESSIONGUARD_KAFKA_SSL__KEY", "pem"),
            ("SESSIONGUARD_BROKERS", "b:1"),
            ("SESSIONGUARD_KAFKA_", "x"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(
            from_env(vars),
            props(&[
                ("sasl.password", "pw"),
                ("security.protocol", "sasl_ssl"),
                ("ssl_key", "pem")
            ])
        );
    }

    #[test]
    fn references_read_files_and_variables() {
        let dir = std::env::temp_dir().join(format!("sg-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let var = |name: &str| (name == "PW").then(|| "fromenv".to_owned());
        let reference = format!("${{file:{}}}", file.display());
        assert_eq!(
            resolve("sasl.password", &reference, &var).unwrap(),
            "s3cret"
        );
        assert_eq!(
            resolve("sasl.password", "${env:PW}", &var).unwrap(),
            "fromenv"
        );
        assert_eq!(resolve("sasl.password", "plain", &var).unwrap(), "plain");
        let missing = resolve("sasl.password", "${env:NOPE}", &var).unwrap_err();
        assert!(
            missing.contains("variable NOPE") && missing.contains("not set"),
            "{missing}"
        );
        let unknown = resolve("sasl.password", "${vault:x}", &var).unwrap_err();
        assert!(
            !unknown.contains("vault:x"),
            "a secret is echoed: {unknown}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_security_problem_is_reported_with_its_fix() {
        let f = check(&props(&[
            ("security.protocol", "sasl_sll"),
            ("compression.type", "brotli"),
        ]));
        assert!(
            f.errors[0].contains("'sasl_sll' is not one of"),
            "{:?}",
            f.errors
        );
        assert!(
            f.errors.iter().any(|e| e.contains("'brotli'")),
            "{:?}",
            f.errors
        );

        let f = check(&props(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("ssl.ca.location", "/nonexistent/ca.pem"),
            ("ssl.certificate.location", "/nonexistent/client.pem"),
        ]));
        let all = f.errors.join("\n");
        for needle in [
            "needs sasl.username",
            "needs sasl.password",
            "ssl.ca.location: cannot open /nonexistent/ca.pem",
            "without ssl.key.location",
        ] {
            assert!(all.contains(needle), "{needle} missing from:\n{all}");
        }

        let f = check(&props(&[
            ("sasl.username", "alice"),
            ("ssl.ca.location", "probe"),
        ]));
        let all = f.errors.join("\n");
        assert!(all.contains("sasl.username is set, but security.protocol is plaintext"));
        assert!(all.contains("ssl.ca.location is set, but security.protocol is plaintext"));

        let f = check(&props(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.oauthbearer.method", "oidc"),
            ("sasl.oauthbearer.client.id", "sg"),
        ]));
        let all = f.errors.join("\n");
        assert!(
            all.contains("needs sasl.oauthbearer.client.secret"),
            "{all}"
        );
        assert!(
            all.contains("needs sasl.oauthbearer.token.endpoint.url"),
            "{all}"
        );

        let f = check(&props(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "GSSAPI"),
        ]));
        assert!(f.errors[0].contains("Kerberos"), "{:?}", f.errors);

        let ok = check(&props(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "alice"),
            ("sasl.password", "pw"),
            ("compression.type", "zstd"),
        ]));
        assert!(ok.errors.is_empty(), "{:?}", ok.errors);
        assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);

        let weak = check(&props(&[
            ("security.protocol", "ssl"),
            ("ssl.endpoint.identification.algorithm", "none"),
        ]));
        assert!(weak.errors.is_empty());
        assert!(weak.warnings[0].contains("host name is not checked"));
    }
}
