//! Connection security of the Kafka clients at run time: the sentences a user reads when TLS
//! or SASL is wrong, and the preflight that finds out before the pipeline starts.
//!
//! librdkafka does the protocol work (OpenSSL for TLS and SCRAM, libcurl for OIDC tokens). The
//! properties themselves (secret references, redaction, checks before a client exists) are
//! the settings' business: [`crate::config::librdkafka`].
//!
//! - **The preflight** ([`preflight`]): with TLS or SASL configured, `run` and `rekey` first
//!   ask the brokers for metadata; a certificate that does not verify, a host name the
//!   certificate does not list, rejected credentials or an OIDC token endpoint that refuses
//!   end the command with an explanation ([`explain`]). Unreachable brokers do not: the
//!   pipeline waits for them as it always did.
//! - **Client errors** ([`client_error`]): scrubbed of secrets, with an explanation when one
//!   applies.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::librdkafka::{property, scrub, Findings};
use crate::config::Settings;
use crate::telemetry::{self, Level, V};

/// A sentence for a librdkafka error text about TLS or SASL, naming the likely cause and the
/// property to fix; `None` when the text is not about either.
pub fn explain(text: &str) -> Option<&'static str> {
    let t = text.to_ascii_lowercase();
    let hint = if t.contains("hostname mismatch")
        || t.contains("ip address mismatch")
        || t.contains("host name mismatch")
    {
        "the broker's certificate does not list the host name the client connected to \
         (bootstrap.servers, or the name the broker advertises): connect by a name in its \
         subjectAltName, or reissue the certificate"
    } else if t.contains("certificate verify failed")
        || t.contains("unable to get local issuer")
        || t.contains("self-signed certificate")
        || t.contains("self signed certificate")
        || t.contains("unable to verify")
    {
        "the broker's certificate is not signed by a certificate authority the client trusts: \
         set ssl.ca.location to the CA certificate (PEM) that signed it, or leave it unset to \
         trust the system's CAs"
    } else if t.contains("certificate required")
        || t.contains("peer did not return a certificate")
        || (t.contains("handshake failure") && t.contains("alert"))
    {
        "the broker refused the TLS handshake: if it requires a client certificate (mTLS), set \
         ssl.certificate.location and ssl.key.location to one its CA signed"
    } else if t.contains("unsupported sasl mechanism")
        || t.contains("unsupported_sasl_mechanism")
        || t.contains("mechanism handshake failed")
    {
        "the broker does not enable this SASL mechanism: set sasl.mechanism to one it offers"
    } else if t.contains("oidc") || t.contains("token endpoint") || t.contains("token retrieval") {
        "the OAUTHBEARER token could not be fetched: check sasl.oauthbearer.token.endpoint.url, \
         sasl.oauthbearer.client.id and sasl.oauthbearer.client.secret"
    } else if t.contains("authentication failed")
        || t.contains("sasl authentication error")
        || t.contains("invalid credentials")
        || t.contains("invalid username or password")
        || t.contains("sasl_authentication_failed")
    {
        "the broker rejected the SASL credentials: check sasl.username, sasl.password and \
         sasl.mechanism (SCRAM-SHA-256 and SCRAM-SHA-512 are different credentials)"
    } else if t.contains("incorrect security.protocol")
        || t.contains("wrong version number")
        || t.contains("packet length too long")
        || t.contains("unexpected eof while reading")
    {
        "the broker and the client disagree on the protocol: TLS on one side and plain text \
         on the other; check security.protocol against the broker's listener on this port"
    } else if t.contains("ssl") || t.contains("tls") || t.contains("certificate") {
        "the TLS connection failed: check ssl.ca.location, the client certificate settings and \
         the broker address"
    } else {
        return None;
    };
    Some(hint)
}

/// True when `properties` ask for TLS or SASL.
fn secured(properties: &[(String, String)]) -> bool {
    properties
        .iter()
        .rev()
        .find(|(k, _)| k == "security.protocol")
        .is_some_and(|(_, v)| !v.trim().eq_ignore_ascii_case("plaintext"))
}

/// How long the preflight waits for a verdict before it lets the pipeline wait instead.
const PREFLIGHT_LIMIT: Duration = Duration::from_secs(20);

/// Records the TLS and authentication errors a client reports while connecting.
#[derive(Default)]
struct Watch {
    failure: Mutex<Option<String>>,
}

impl ClientContext for Watch {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // A failed handshake is logged with its cause (the OpenSSL reason) before the error
        // callback summarises it; keep the more specific text.
        let serious = matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        );
        if serious && explain(message).is_some() {
            let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            failure.get_or_insert_with(|| message.to_owned());
        }
        let _ = fac;
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        if matches!(
            code,
            Some(RDKafkaErrorCode::SSL | RDKafkaErrorCode::Authentication)
        ) || explain(reason).is_some()
        {
            let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            // The error callback's reason is the complete one; prefer it over a log line.
            *failure = Some(reason.to_owned());
        }
    }
}

impl ConsumerContext for Watch {}

/// With TLS or SASL configured, asks the brokers for metadata before the pipeline starts; an
/// error naming what to fix when the handshake or the authentication fails. Brokers that do
/// not answer at all are not an error here (the pipeline waits for them, as without TLS).
pub fn preflight(settings: &Settings) -> anyhow::Result<()> {
    if !secured(&settings.librdkafka) {
        return Ok(());
    }
    let mut config = super::base_config(settings);
    config
        .set("group.id", "sessionguard-preflight")
        .set("log.connection.close", "false")
        .set_log_level(RDKafkaLogLevel::Warning);
    let consumer: BaseConsumer<Watch> = config
        .create_with_context(Watch::default())
        .map_err(|e| client_error("checking the connection", &e, settings))?;
    let started = Instant::now();
    let failed = |consumer: &BaseConsumer<Watch>| {
        consumer
            .context()
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    };
    while started.elapsed() < PREFLIGHT_LIMIT {
        let _ = consumer.poll(Duration::from_millis(100));
        if let Some(reason) = failed(&consumer) {
            return Err(failure(&reason, settings));
        }
        match consumer.fetch_metadata(None, Duration::from_millis(1500)) {
            Ok(_) => {
                let _ = consumer.poll(Duration::ZERO);
                if let Some(reason) = failed(&consumer) {
                    return Err(failure(&reason, settings));
                }
                return Ok(());
            }
            Err(_) => continue,
        }
    }
    telemetry::log(
        Level::Warn,
        "brokers_unreachable",
        "no broker answered the connection check; waiting for them",
        &[("brokers", V::S(&settings.brokers))],
    );
    Ok(())
}

fn failure(reason: &str, settings: &Settings) -> anyhow::Error {
    let mut reason = scrub(reason, &settings.librdkafka);
    // librdkafka says "certificate verify failed" for every verification error; a handshake
    // of our own names which one.
    if reason.contains("certificate verify failed") || reason.contains("could not be verified") {
        if let Some(cause) = diagnose_tls(settings) {
            reason = format!("{cause} ({reason})");
        }
    }
    match explain(&reason) {
        Some(hint) => anyhow::anyhow!(
            "cannot connect to the Kafka brokers {}: {hint}\n  librdkafka: {reason}",
            settings.brokers
        ),
        None => anyhow::anyhow!(
            "cannot connect to the Kafka brokers {}: {reason}",
            settings.brokers
        ),
    }
}

/// The certificate verification error of a TLS handshake with the first bootstrap broker,
/// made with the same CA, client certificate and host-name check as librdkafka's.
fn diagnose_tls(settings: &Settings) -> Option<String> {
    use openssl::ssl::{HandshakeError, SslConnector, SslFiletype, SslMethod};
    use openssl::x509::X509VerifyResult;
    use std::net::{TcpStream, ToSocketAddrs};

    let get = |key: &str| property(&settings.librdkafka, key);
    let first = settings.brokers.split(',').next()?.trim();
    let first = first.split_once("://").map_or(first, |(_, rest)| rest);
    let (host, port) = first.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().ok()?;
    let addr = (host, port).to_socket_addrs().ok()?.find(|a| a.is_ipv4())?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut builder = SslConnector::builder(SslMethod::tls_client()).ok()?;
    match get("ssl.ca.location") {
        Some(path) if path != "probe" => {
            if std::path::Path::new(path).is_dir() {
                builder.load_verify_locations(None, Some(std::path::Path::new(path)))
            } else {
                builder.set_ca_file(path)
            }
            .ok()?;
        }
        _ => builder.set_default_verify_paths().ok()?,
    }
    if let (Some(cert), Some(key)) = (get("ssl.certificate.location"), get("ssl.key.location")) {
        if get("ssl.key.password").is_none() {
            let _ = builder.set_certificate_chain_file(cert);
            let _ = builder.set_private_key_file(key, SslFiletype::PEM);
        }
    }
    let mut config = builder.build().configure().ok()?;
    if get("ssl.endpoint.identification.algorithm") == Some("none") {
        config.set_verify_hostname(false);
    }
    match config.connect(host, stream) {
        Ok(_) => None,
        Err(HandshakeError::Failure(mid)) => {
            let verify = mid.ssl().verify_result();
            if verify != X509VerifyResult::OK {
                Some(format!(
                    "certificate verify failed: {}",
                    verify.error_string()
                ))
            } else {
                Some(mid.error().to_string())
            }
        }
        Err(_) => None,
    }
}

/// An error creating a client, with secrets scrubbed and an explanation when one applies.
pub fn client_error(what: &str, error: &KafkaError, settings: &Settings) -> anyhow::Error {
    let text = scrub(&error.to_string(), &settings.librdkafka);
    let hint = if text.contains("not available at build time")
        || text.contains("not supported by this build")
    {
        Some("this build of sessionguard lacks the feature; build it with default features")
    } else {
        explain(&text)
    };
    match hint {
        Some(hint) => anyhow::anyhow!("{what}: {hint}\n  librdkafka: {text}"),
        None => anyhow::anyhow!("{what}: {text}"),
    }
}

/// Logs the warnings of [`crate::config::librdkafka::check`].
pub fn log_warnings(findings: &Findings) {
    for warning in &findings.warnings {
        telemetry::log(Level::Warn, "insecure_setting", warning, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librdkafka_failures_are_explained() {
        let cases = [
            (
                "ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: error:0A000086:SSL \
                 routines::certificate verify failed: broker certificate could not be verified",
                "ssl.ca.location",
            ),
            (
                "SSL handshake failed: certificate verify failed: Hostname mismatch",
                "subjectAltName",
            ),
            (
                "SASL authentication error: Authentication failed during authentication due \
                 to invalid credentials with SASL mechanism SCRAM-SHA-512",
                "sasl.password",
            ),
            (
                "Disconnected while requesting ApiVersion: might be caused by incorrect \
                 security.protocol configuration",
                "security.protocol",
            ),
            (
                "SASL PLAIN mechanism handshake failed: Local: Broker transport failure: \
                 broker's supported mechanisms: (n/a)",
                "sasl.mechanism",
            ),
        ];
        for (text, property) in cases {
            let hint = explain(text).unwrap_or_else(|| panic!("no explanation for {text}"));
            assert!(hint.contains(property), "{text} → {hint}");
        }
        assert_eq!(explain("Broker: Unknown topic or partition"), None);
    }
}
