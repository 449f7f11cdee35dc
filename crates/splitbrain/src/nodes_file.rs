//! The nodes file as the binary sees it: `--nodes FILE` told apart from URLs, and
//! the lab's own `nodes.toml`, written by `splitbrain cluster up --sshd`.

use anyhow::Context as _;
use splitbrain_cluster::Cluster;
use splitbrain_nemesis::nodes::NodesFile;
use std::path::{Path, PathBuf};

/// Writes `DIR/nodes.toml` for a lab whose members run sshd; `None` without sshd.
pub fn write_lab_nodes_file(cluster: &Cluster) -> anyhow::Result<Option<PathBuf>> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let Some(text) = splitbrain_nemesis::nodes::lab_nodes_toml(cluster, &exe) else {
        return Ok(None);
    };
    check_lab_nodes_file(cluster.dir())?;
    let path = cluster.dir().join("nodes.toml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Some(path))
}

/// How the nodes file `cluster up --sshd` writes begins: one that does not is the
/// user's, and is never overwritten.
const LAB_NODES_HEADER: &str = "# Written by `splitbrain cluster up --sshd`";

/// Refuses when `DIR/nodes.toml` exists and is not one `cluster up --sshd` wrote.
pub fn check_lab_nodes_file(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("nodes.toml");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.starts_with(LAB_NODES_HEADER) => anyhow::bail!(
            "{} exists and was not written by splitbrain: not overwriting it; choose another --dir",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// `--nodes FILE`: one value that is not a URL names a nodes file, if it ends in
/// `.toml` or exists; anything else without a scheme (`127.0.0.1:2379`) is a URL
/// missing its scheme, and said so.
pub fn nodes_file_arg(nodes: Option<&[String]>) -> anyhow::Result<Option<NodesFile>> {
    match nodes {
        Some([one]) if !one.contains("://") => {
            if one.ends_with(".toml") || Path::new(one).exists() {
                Ok(Some(NodesFile::load(one)?))
            } else {
                anyhow::bail!(
                    "--nodes {one}: not a nodes file (no such file, and not .toml) nor a URL: \
                     give a URL with a scheme (http://{one}) or a nodes file"
                )
            }
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_nodes_toml_is_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(check_lab_nodes_file(tmp.path()).is_ok());
        let path = tmp.path().join("nodes.toml");
        std::fs::write(&path, "[[node]]\nname = \"mine\"\n").unwrap();
        let e = check_lab_nodes_file(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("not written by splitbrain"), "{e}");
        std::fs::write(&path, format!("{LAB_NODES_HEADER} for the lab in /x\n")).unwrap();
        assert!(check_lab_nodes_file(tmp.path()).is_ok());
    }

    #[test]
    fn an_address_without_a_scheme_is_not_taken_for_a_nodes_file() {
        let e = nodes_file_arg(Some(&["127.0.0.1:2379".to_string()]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("give a URL with a scheme (http://127.0.0.1:2379)"),
            "{e}"
        );
        let e = nodes_file_arg(Some(&["/no/such/nodes.toml".to_string()]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/no/such/nodes.toml"), "{e}");
        assert!(nodes_file_arg(Some(&["http://127.0.0.1:2379".to_string()]))
            .unwrap()
            .is_none());
    }
}
