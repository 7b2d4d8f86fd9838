//! The durable state of `actuate` reading a decisions file: the byte position before which
//! every decision is settled (delivered, refused, failed for good or held back), and the
//! guard's memory. Written to a temporary file, synced, then renamed over the old one, so a
//! crash leaves either the old state or the new, never a torn one. After a restart reading
//! starts at the position: decisions past it may be delivered a second time, under the same
//! `jti` (the decision id), which receivers deduplicate; none is skipped.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::guard::GuardState;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// The decisions file this position is in.
    pub input: Option<PathBuf>,
    /// Bytes of the input settled.
    pub position: u64,
    /// Decision lines settled.
    pub lines: u64,
    #[serde(default)]
    pub guard: GuardState,
}

impl State {
    /// The state at `path`, or a fresh one when there is none yet.
    pub fn load(path: &Path) -> Result<State> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "the state file {} is not actuate's state (move it away to start over)",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("reading the state file {}", path.display())),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&tmp)?;
            file.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                // The rename itself is durable once the directory is synced.
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().with_context(|| format!("writing the state file {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_a_save_and_a_load() {
        let dir = std::env::temp_dir().join(format!("sg-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("actuate.state");
        assert_eq!(State::load(&path).unwrap().position, 0);
        let state = State {
            input: Some("decisions.ndjson".into()),
            position: 4096,
            lines: 7,
            guard: GuardState::default(),
        };
        state.save(&path).unwrap();
        let back = State::load(&path).unwrap();
        assert_eq!((back.position, back.lines), (4096, 7));
        assert_eq!(back.input.as_deref(), Some(Path::new("decisions.ndjson")));
        std::fs::write(&path, "garbage").unwrap();
        assert!(State::load(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
