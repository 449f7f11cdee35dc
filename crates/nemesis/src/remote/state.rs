//! The state file, `STATE_DIR/remote.json`: this run's id and every fault, written
//! before the fault exists and forgotten after it is healed, so a heal works after
//! the harness was killed.

use super::RemoteNet;
use crate::grudge::Grudge;
use crate::packet::PacketSpec;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The state file in the nodes file's state directory.
pub const STATE_FILE: &str = "remote.json";

/// A clock moved by a fault, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockRecord {
    pub offset_ms: i64,
    /// Set once the bump command succeeded: before that, the clock may or may not
    /// have moved, and a heal must not apply the inverse offset blindly.
    pub applied: bool,
}

/// What the state file records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteFaults {
    /// Names this run's chains: `splitbrain-RUNID`, `splitbrain-RUNID-loss`.
    pub run_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Grudge>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub killed: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub paused: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet: Option<(BTreeSet<String>, PacketSpec)>,
    /// Node -> the interface whose root qdisc is ours.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub qdiscs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clocks: BTreeMap<String, ClockRecord>,
}

impl RemoteFaults {
    pub fn is_empty(&self) -> bool {
        self.partition.is_none()
            && self.killed.is_empty()
            && self.paused.is_empty()
            && self.packet.is_none()
            && self.qdiscs.is_empty()
            && self.clocks.is_empty()
    }

    pub fn chain(&self) -> String {
        format!("splitbrain-{}", self.run_id)
    }

    pub fn loss_chain(&self) -> String {
        format!("splitbrain-{}-loss", self.run_id)
    }
}

impl RemoteNet {
    fn state_file(&self) -> PathBuf {
        self.state_dir().join(STATE_FILE)
    }

    /// What the state file records (a fresh run id when there is none).
    pub fn recorded(&self) -> Result<RemoteFaults> {
        let path = self.state_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| Error::State(path, e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RemoteFaults {
                run_id: format!("{:08x}", rand::random::<u32>()),
                ..RemoteFaults::default()
            }),
            Err(e) => Err(Error::State(path, e.to_string())),
        }
    }

    fn record(&self, faults: &RemoteFaults) -> Result<()> {
        let path = self.state_file();
        if faults.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::State(path, e.to_string()))
                }
                _ => Ok(()),
            };
        }
        let tmp = self.state_dir().join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_string_pretty(faults).unwrap_or_default() + "\n";
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::State(path, e.to_string()))
    }

    /// An exclusive `flock` on the state directory, released when dropped.
    fn lock_dir(&self) -> Result<nix::fcntl::Flock<std::fs::File>> {
        let dir = self.state_dir();
        let f =
            std::fs::File::open(dir).map_err(|e| Error::State(dir.to_path_buf(), e.to_string()))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::State(dir.to_path_buf(), format!("cannot lock: {e}")))
    }

    /// Read, change, write the state file; returns it as written.
    pub(super) fn update(&self, f: impl FnOnce(&mut RemoteFaults)) -> Result<RemoteFaults> {
        let _lock = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        // And across processes: a heal by hand while a test runs.
        let _flock = self.lock_dir()?;
        let mut faults = self.recorded()?;
        f(&mut faults);
        self.record(&faults)?;
        Ok(faults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_fit_iptables() {
        let f = RemoteFaults {
            run_id: "0123abcd".into(),
            ..RemoteFaults::default()
        };
        assert!(f.loss_chain().len() <= 28);
        assert_eq!(f.chain(), "splitbrain-0123abcd");
    }
}
