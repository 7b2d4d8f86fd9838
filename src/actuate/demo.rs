//! The demo's actuation: the decisions the demo produced, through `actuate` (signed ES256 with
//! a key made for the run) to the bundled receiver ([`super::receiver`]) on a loopback port,
//! so `sessionguard demo` shows the loop closed.

use anyhow::Result;
use josekit::jws::ES256;
use tokio::sync::watch;

use super::config::{ReceiverSettings, Retry, Settings, Take};
use super::guard::GuardSettings;
use super::receiver::{self, Received};
use super::secret::Secret;
use super::set::{SetSigner, SigningAlg, SubjectFormat};
use super::vendor::Kind;
use super::{run, Input, Summary};

/// Delivers `decisions` (JSON lines) to a receiver started for the purpose; what it got.
pub fn deliver(decisions: &[Vec<u8>]) -> Result<(Summary, Received)> {
    let dir =
        std::env::temp_dir().join(format!("sessionguard-demo-actuate-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let input = dir.join("decisions.ndjson");
    let mut text = Vec::new();
    for d in decisions {
        text.extend_from_slice(d);
        text.push(b'\n');
    }
    std::fs::write(&input, text)?;
    let pem = ES256
        .generate_key_pair()
        .map_err(|e| anyhow::anyhow!("making a demo key: {e}"))?
        .to_pem_private_key();
    let signer = SetSigner::new(
        SigningAlg::Es256,
        "demo-1",
        &Secret::from_bytes(pem, "the demo"),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let (addr, received) =
            receiver::serve("127.0.0.1:0".parse()?, &signer.jwks(), false, None).await?;
        let settings = Settings {
            issuer: "urn:sessionguard:demo".into(),
            signer,
            listen: None,
            state: None,
            records: None,
            max_in_flight: 64,
            receivers: vec![ReceiverSettings {
                name: "demo-receiver".into(),
                kind: Kind::Ssf,
                dry_run: false,
                endpoint: format!("http://{addr}/events").parse()?,
                audience: Some("urn:sessionguard:demo-receiver".into()),
                authorization: None,
                subject: SubjectFormat::Complex,
                events: vec![crate::decision::CAEP_SESSION_REVOKED],
                take: Take {
                    rules: None,
                    sessions: None,
                    actions: vec!["revoke_session".into(), "revoke_credential".into()],
                    modes: vec!["enforce".into()],
                },
                timeout: std::time::Duration::from_secs(5),
                retry: Retry {
                    initial: std::time::Duration::from_millis(50),
                    max: std::time::Duration::from_secs(1),
                    give_up_after: std::time::Duration::from_secs(10),
                },
                breaker_failures: 5,
                breaker_open_for: std::time::Duration::from_secs(1),
                ca_file: None,
                aws: None,
                github: None,
                client_credentials: None,
            }],
            guard: GuardSettings::default(),
            kafka: None,
            decision_mac_key: None,
            streams: None,
        };
        let (_stop_tx, stop) = watch::channel(false);
        let summary = run(settings, Input::File(input.clone()), stop).await?;
        let received = std::mem::take(&mut *received.lock().unwrap_or_else(|e| e.into_inner()));
        Ok::<_, anyhow::Error>((summary, received))
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}
