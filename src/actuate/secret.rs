//! Credentials `actuate` reads from files or the environment: signing keys, receivers' bearer
//! tokens, the decision MAC key. A [`Secret`] never prints its value (`Debug` and `Display`
//! show only where it came from), so no log line, error or record can carry one.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Where a secret is read from, as the config file writes it: `{ file: PATH }` or
/// `{ env: NAME }`. A relative file is read beside the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    #[serde(default)]
    pub file: Option<PathBuf>,
    #[serde(default)]
    pub env: Option<String>,
}

/// A loaded secret. Its bytes are reachable only through [`Secret::expose`].
#[derive(Clone)]
pub struct Secret {
    value: Vec<u8>,
    origin: String,
}

impl Secret {
    /// Reads the secret; `base` is the config file's directory. A trailing newline (as `echo`
    /// writes) is not part of a token read from a file or variable.
    pub fn load(spec: &SecretSpec, base: &Path) -> Result<Secret> {
        let (mut value, origin) = match (&spec.file, &spec.env) {
            (Some(file), None) => {
                let path = base.join(file);
                let value = std::fs::read(&path)
                    .with_context(|| format!("reading secret file {}", path.display()))?;
                (value, format!("file {}", path.display()))
            }
            (None, Some(name)) => {
                let value = std::env::var(name).with_context(|| {
                    format!("environment variable {name} (named as a secret) is not set")
                })?;
                (value.into_bytes(), format!("env {name}"))
            }
            _ => bail!("a secret names exactly one of `file` or `env`"),
        };
        while value.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            value.pop();
        }
        if value.is_empty() {
            bail!("the secret from {origin} is empty");
        }
        Ok(Secret { value, origin })
    }

    /// A secret given in code (tests, the demo).
    pub fn from_bytes(value: Vec<u8>, origin: &str) -> Secret {
        Secret {
            value,
            origin: origin.to_owned(),
        }
    }

    pub fn expose(&self) -> &[u8] {
        &self.value
    }

    /// The value as text (tokens, headers); an error names the origin, never the value.
    pub fn expose_str(&self) -> Result<&str> {
        std::str::from_utf8(&self.value)
            .with_context(|| format!("the secret from {} is not UTF-8", self.origin))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(from {}, redacted)", self.origin)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret from {}>", self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let dir = std::env::temp_dir().join(format!("sg-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "hunter2-very-secret\n").unwrap();
        let spec = SecretSpec {
            file: Some("token".into()),
            env: None,
        };
        let secret = Secret::load(&spec, &dir).unwrap();
        assert_eq!(secret.expose(), b"hunter2-very-secret");
        for shown in [format!("{secret:?}"), format!("{secret}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("token"), "{shown}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_secret_names_one_origin_and_is_not_empty() {
        let both = SecretSpec {
            file: Some("x".into()),
            env: Some("Y".into()),
        };
        assert!(Secret::load(&both, Path::new(".")).is_err());
        let missing = SecretSpec {
            file: None,
            env: Some("SESSIONGUARD_TEST_SURELY_UNSET_VARIABLE".into()),
        };
        let error = Secret::load(&missing, Path::new(".")).unwrap_err();
        assert!(format!("{error:#}").contains("SESSIONGUARD_TEST_SURELY_UNSET_VARIABLE"));
    }
}
