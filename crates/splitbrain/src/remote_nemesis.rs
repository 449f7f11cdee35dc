//! Faults on remote nodes over SSH (a nodes file) behind the control crate's
//! `Nemesis` trait, for `splitbrain test --nodes nodes.toml --nemesis ...`; and the
//! lab's own nodes file, written by `splitbrain cluster up --sshd`.

use crate::rounds::FaultDraws;
use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use splitbrain_cluster::Cluster;
use splitbrain_control::nemesis::{Nemesis, NemesisError};
use splitbrain_nemesis::grudge::Grudge;
use splitbrain_nemesis::lab::ProcessKind;
use splitbrain_nemesis::nodes::NodesFile;
use splitbrain_nemesis::packet::PacketSpec;
use splitbrain_nemesis::remote::{NodeMechanisms, RemoteFault, RemoteNet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Faults `--nemesis` can name on remote nodes.
pub const KINDS: [&str; 5] = ["partition", "packet", "kill", "pause", "clock"];

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

/// Who a process or clock fault hits: a node, `leader`, `minority` or `majority`
/// (drawn from the nodes not already killed or paused).
pub fn targets(net: &RemoteNet, target: &str, rng: &mut impl Rng) -> anyhow::Result<Vec<String>> {
    let mut nodes = net.nodes();
    match target {
        "leader" => Ok(vec![net.leader().context(
            "the cluster has no leader (asked through the nodes' client URLs)",
        )?]),
        "minority" | "majority" => {
            let want = if target == "minority" {
                ((nodes.len() - 1) / 2).max(1)
            } else {
                nodes.len() / 2 + 1
            };
            let faults = net.recorded()?;
            nodes.retain(|n| !faults.killed.contains(n) && !faults.paused.contains(n));
            if nodes.len() < want {
                anyhow::bail!(
                    "a {target} is {want} nodes, but only {} are neither killed nor paused; heal first",
                    nodes.len()
                );
            }
            nodes.shuffle(rng);
            nodes.truncate(want);
            nodes.sort();
            Ok(nodes)
        }
        node => Ok(vec![node.to_string()]),
    }
}

/// `n1: loss by iptables statistic match; n2: ...`
pub fn describe(how: &[NodeMechanisms]) -> String {
    how.iter()
        .map(|h| {
            let parts: Vec<String> = h
                .mechanisms
                .iter()
                .map(|(what, m)| format!("{what} by {m}"))
                .collect();
            format!("{}: {}", h.node, parts.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub struct RemoteNemesis {
    net: RemoteNet,
    /// The nodes run etcd: their leader can be asked (through etcdctl), and a
    /// leader again after a heal is the sign of a working cluster.
    etcd: bool,
    draws: FaultDraws<String>,
    /// The current fault's own draws.
    rng: StdRng,
    active: Option<RemoteFault>,
}

impl RemoteNemesis {
    /// Checks the fault names; the nodes are connected already (`net`).
    pub fn new(
        net: RemoteNet,
        kinds: &[String],
        seed: u64,
        etcd: bool,
    ) -> anyhow::Result<RemoteNemesis> {
        for k in kinds {
            if !KINDS.contains(&k.as_str()) {
                anyhow::bail!("unknown fault `{k}` (available: {})", KINDS.join(", "));
            }
        }
        Ok(RemoteNemesis {
            net,
            etcd,
            draws: FaultDraws::new(kinds.to_vec(), seed),
            rng: StdRng::seed_from_u64(seed),
            active: None,
        })
    }

    fn leader(&self) -> Option<String> {
        self.etcd.then(|| self.net.leader()).flatten()
    }

    /// The leader half of the time (when there is one), else a random minority.
    /// The leader or a minority; an error rather than a fault on nobody.
    fn victims(&mut self) -> Result<Vec<String>, NemesisError> {
        if self.rng.random_bool(0.5) {
            if let Some(l) = self.leader() {
                return Ok(vec![l]);
            }
        }
        match targets(&self.net, "minority", &mut self.rng) {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) => Err(NemesisError::NoTarget(
                "every node is already killed or paused".into(),
            )),
            Err(e) => Err(NemesisError::NoTarget(format!("{e:#}"))),
        }
    }

    /// A random partition; the leader is asked once, for the isolate-leader shape.
    fn grudge(&mut self) -> (&'static str, Grudge) {
        let leader = self.leader();
        Grudge::random(&self.net.nodes(), leader.as_deref(), &mut self.rng)
    }
}

impl Nemesis for RemoteNemesis {
    fn start(&mut self) -> Result<(String, Value), NemesisError> {
        if let Some(active) = self.active.take() {
            active.heal().map_err(NemesisError::fault)?;
        }
        let (kind, rng) = self.draws.next().ok_or(NemesisError::NoFaults)?;
        self.rng = rng;
        let err = NemesisError::fault;
        match kind.as_str() {
            "partition" => {
                let (shape, grudge) = self.grudge();
                self.active = Some(self.net.partition(&grudge).map_err(err)?);
                Ok((
                    "start-partition".into(),
                    json!({"shape": shape, "grudge": grudge.to_json()}),
                ))
            }
            "packet" => {
                // Slow and lossy links: 50 ± 10 ms and 20 % loss where netem is there;
                // loss alone where it is not (delay needs netem on a remote node).
                let full = PacketSpec {
                    delay_ms: Some(50),
                    jitter_ms: Some(10),
                    loss: Some(0.2),
                    ..PacketSpec::default()
                };
                let (fault, how, spec, note) = match self.net.packet_fault(&[], &full) {
                    Ok((f, how)) => (f, how, full, None),
                    Err(splitbrain_nemesis::Error::Unsupported(why)) => {
                        let loss = PacketSpec {
                            loss: Some(0.2),
                            ..PacketSpec::default()
                        };
                        let (f, how) = self.net.packet_fault(&[], &loss).map_err(err)?;
                        (f, how, loss, Some(format!("delay left out: {why}")))
                    }
                    Err(e) => return Err(NemesisError::fault(e)),
                };
                self.active = Some(fault);
                Ok((
                    "start-packet".into(),
                    json!({"spec": spec, "mechanisms": describe(&how), "note": note}),
                ))
            }
            "kill" | "pause" => {
                let nodes = self.victims()?;
                let pk = if kind == "kill" {
                    ProcessKind::Kill
                } else {
                    ProcessKind::Pause
                };
                self.active = Some(self.net.process_fault(pk, &nodes).map_err(err)?);
                Ok((format!("start-{kind}"), json!(nodes)))
            }
            _ => {
                let nodes = self.victims()?;
                let secs: i64 = self.rng.random_range(5..=60);
                let offset_ms = if self.rng.random_bool(0.5) {
                    secs
                } else {
                    -secs
                } * 1000;
                self.active = Some(self.net.clock_fault(&nodes, offset_ms).map_err(err)?);
                Ok((
                    "start-clock".into(),
                    json!({"nodes": nodes, "offset_ms": offset_ms}),
                ))
            }
        }
    }

    fn stop(&mut self) -> Result<(String, Value), NemesisError> {
        match self.active.take() {
            None => Ok(("stop".into(), Value::Null)),
            Some(f) => {
                let name = format!("stop-{}", f.kind());
                let notes = f.heal().map_err(NemesisError::fault)?;
                Ok((
                    name,
                    if notes.is_empty() {
                        Value::Null
                    } else {
                        json!(notes)
                    },
                ))
            }
        }
    }

    fn heal_all(&mut self) -> Result<(), NemesisError> {
        let active = self.active.take().map(|f| f.heal().map(|_| ())).transpose();
        let swept = self.net.heal().map(|_| ());
        active.map_err(NemesisError::fault)?;
        swept.map_err(NemesisError::fault)?;
        // The nodes are not a lab this process knows: for etcd, a leader again is
        // the sign of a working cluster (the final reads tell for other stores).
        if self.etcd {
            let deadline = Instant::now() + Duration::from_secs(60);
            while self.net.leader().is_none() {
                if Instant::now() > deadline {
                    return Err(NemesisError::Unhealthy(
                        "the nodes elected no leader within 60 s".into(),
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
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
