//! Every run directory that holds a cluster's state file, so that
//! `splitbrain cluster down --all` finds clusters whose directory nobody remembers
//! (a test killed mid-run leaves its temporary directory and its cluster behind).
//!
//! One small file per run directory under [`REGISTRY`], named by a hash of the path
//! and holding the path. [`crate::state::State`] registers its directory before it
//! writes the state file and unregisters it after removing the file, so a state file
//! never exists unregistered. `/run` is emptied at boot, as are network namespaces
//! and processes.

use std::path::{Path, PathBuf};

/// Where the registry lives, unless [`REGISTRY_ENV`] says otherwise.
pub const REGISTRY: &str = "/run/splitbrain/labs";
/// An environment variable naming another registry directory: tests that run
/// `--all` commands use one of their own, so they never touch the labs of
/// whatever else runs on the machine.
pub const REGISTRY_ENV: &str = "SPLITBRAIN_REGISTRY";

/// The registry directory in use.
pub fn registry_dir() -> PathBuf {
    std::env::var_os(REGISTRY_ENV)
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(REGISTRY), PathBuf::from)
}

fn entry(dir: &Path) -> PathBuf {
    // FNV-1a: stable across builds, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_encoded_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    registry_dir().join(format!("{h:016x}"))
}

/// Records `dir` (idempotent). Best effort: only root can create clusters, and for
/// root `/run` is writable; a failure is logged, not fatal.
pub(crate) fn add(dir: &Path) {
    let path = entry(dir);
    if std::fs::read(&path).is_ok_and(|p| p == dir.as_os_str().as_encoded_bytes()) {
        return;
    }
    let registry = registry_dir();
    let written = std::fs::create_dir_all(&registry)
        .and_then(|()| std::fs::write(&path, dir.as_os_str().as_encoded_bytes()));
    if let Err(e) = written {
        tracing::warn!(
            "cannot register {} in {} ({e}): taking down every registered lab will miss it",
            dir.display(),
            registry.display()
        );
    }
}

/// Forgets `dir`. A missing entry is already forgotten.
pub(crate) fn remove(dir: &Path) {
    let _ = std::fs::remove_file(entry(dir));
}

/// Every registered run directory.
pub fn registered() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(registry_dir()) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(PathBuf::from)
        .collect();
    dirs.sort();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_stable_and_distinct() {
        let a = entry(Path::new("/tmp/a"));
        assert_eq!(a, entry(Path::new("/tmp/a")));
        assert_ne!(a, entry(Path::new("/tmp/b")));
        assert!(a.starts_with(registry_dir()));
    }
}
