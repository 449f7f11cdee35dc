//! The local lab's faults behind the control crate's `Nemesis` trait, for
//! `splitbrain test --nemesis partition,kill,pause` on the embedded cluster.

use crate::rounds::FaultDraws;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use splitbrain_cluster::Cluster;
use splitbrain_control::nemesis::{Nemesis, NemesisError};
use splitbrain_nemesis::clock::{ClockChange, ClockFault};
use splitbrain_nemesis::grudge::Grudge;
use splitbrain_nemesis::lab::{LabNet, PacketFault, Partition, ProcessFault, ProcessKind};
use splitbrain_nemesis::packet::PacketSpec;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The faults `--nemesis` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Partition,
    Packet,
    Kill,
    Pause,
    /// Members' wall clocks bumped, skewed or strobed (the lab must run under the
    /// clock supervisor: `splitbrain test` starts it so when `clock` is asked).
    Clock,
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<FaultKind, String> {
        match s {
            "partition" => Ok(FaultKind::Partition),
            "packet" => Ok(FaultKind::Packet),
            "kill" => Ok(FaultKind::Kill),
            "pause" => Ok(FaultKind::Pause),
            "clock" => Ok(FaultKind::Clock),
            other => Err(format!(
                "unknown fault `{other}` (available: partition, packet, kill, pause, clock)"
            )),
        }
    }
}

enum Active {
    Partition(Partition),
    Packet(PacketFault),
    Process(ProcessFault),
    Clock(ClockFault),
}

pub struct LabNemesis {
    net: LabNet,
    dir: PathBuf,
    draws: FaultDraws<FaultKind>,
    /// The current fault's own draws.
    rng: StdRng,
    active: Option<Active>,
}

impl LabNemesis {
    /// `seed`: the fault schedule's (kinds, order, targets, grudges, clock
    /// changes: see `rounds`). `delayer`: how to run this binary's packet delayer
    /// (for delay without netem).
    pub fn new(
        cluster: &Cluster,
        kinds: Vec<FaultKind>,
        seed: u64,
        delayer: Vec<String>,
    ) -> LabNemesis {
        LabNemesis {
            net: LabNet::of(cluster).with_delayer(delayer),
            dir: cluster.dir().to_path_buf(),
            draws: FaultDraws::new(kinds, seed),
            rng: StdRng::seed_from_u64(seed),
            active: None,
        }
    }

    fn leader(&self) -> Option<String> {
        Cluster::load(&self.dir)
            .ok()?
            .leader()
            .ok()
            .flatten()
            .map(|n| n.to_string())
    }

    /// The current leader half of the time (when there is one), else a random
    /// minority of at least one member. Draws the same either way.
    fn targets(&mut self) -> Vec<String> {
        let mut nodes = self.net.nodes();
        let leader_first = self.rng.random_bool(0.5);
        use rand::seq::SliceRandom;
        nodes.shuffle(&mut self.rng);
        if leader_first {
            if let Some(l) = self.leader() {
                return vec![l];
            }
        }
        nodes.truncate(((nodes.len() - 1) / 2).max(1));
        nodes.sort();
        nodes
    }

    /// A random partition; the leader is asked once, for the isolate-leader shape.
    fn grudge(&mut self) -> (&'static str, Grudge) {
        let leader = self.leader();
        Grudge::random(&self.net.nodes(), leader.as_deref(), &mut self.rng)
    }

    /// A random clock change, Jepsen-sized: bumps of up to ±5 min, strobes of up to
    /// ±30 s every 10 to 500 ms, skews from 0.2x to 5x.
    fn clock_change(&mut self) -> ClockChange {
        const MS: i64 = 1_000_000;
        let sign = if self.rng.random_bool(0.5) { 1 } else { -1 };
        match self.rng.random_range(0..3) {
            0 => ClockChange::Bump {
                delta_ns: sign * self.rng.random_range(100..=300_000) * MS,
            },
            1 => ClockChange::Strobe {
                delta_ns: sign * self.rng.random_range(100..=30_000) * MS,
                period_ns: self.rng.random_range(10..=500) * MS,
            },
            _ => ClockChange::Skew {
                rate: *[0.2, 0.5, 2.0, 5.0].choose(&mut self.rng).unwrap_or(&2.0),
            },
        }
    }

    /// A random non-empty subset of the members.
    fn some_nodes(&mut self) -> Vec<String> {
        use rand::seq::SliceRandom;
        let mut nodes = self.net.nodes();
        let n = self.rng.random_range(1..=nodes.len().max(1));
        nodes.shuffle(&mut self.rng);
        nodes.truncate(n);
        nodes.sort();
        nodes
    }
}

impl Nemesis for LabNemesis {
    fn start(&mut self) -> Result<(String, Value), NemesisError> {
        if let Some(active) = self.active.take() {
            heal(active)?;
        }
        let (kind, rng) = self.draws.next().ok_or(NemesisError::NoFaults)?;
        self.rng = rng;
        match kind {
            FaultKind::Partition => {
                let (shape, grudge) = self.grudge();
                let p = self.net.partition(&grudge).map_err(NemesisError::fault)?;
                self.active = Some(Active::Partition(p));
                Ok((
                    "start-partition".into(),
                    json!({"shape": shape, "grudge": grudge.to_json()}),
                ))
            }
            FaultKind::Packet => {
                // Slow and lossy links everywhere: 50 ± 10 ms, 20 % loss.
                let spec = PacketSpec {
                    delay_ms: Some(50),
                    jitter_ms: Some(10),
                    loss: Some(0.2),
                    ..PacketSpec::default()
                };
                let f = self
                    .net
                    .packet_fault(&[], &spec)
                    .map_err(NemesisError::fault)?;
                let how: Vec<String> = f
                    .mechanisms()
                    .iter()
                    .map(|(what, m)| format!("{what}: {m}"))
                    .collect();
                self.active = Some(Active::Packet(f));
                Ok((
                    "start-packet".into(),
                    json!({"spec": spec, "mechanisms": how}),
                ))
            }
            FaultKind::Clock => {
                let change = self.clock_change();
                let nodes = self.some_nodes();
                let f = self
                    .net
                    .clock_fault(&nodes, change)
                    .map_err(NemesisError::fault)?;
                self.active = Some(Active::Clock(f));
                Ok((
                    "start-clock".into(),
                    json!({"fault": change.name(), "change": change.to_string(), "nodes": nodes}),
                ))
            }
            FaultKind::Kill | FaultKind::Pause => {
                let nodes = self.targets();
                let pk = if kind == FaultKind::Kill {
                    ProcessKind::Kill
                } else {
                    ProcessKind::Pause
                };
                let f = self
                    .net
                    .process_fault(pk, &nodes)
                    .map_err(NemesisError::fault)?;
                self.active = Some(Active::Process(f));
                let name = if kind == FaultKind::Kill {
                    "kill"
                } else {
                    "pause"
                };
                Ok((format!("start-{name}"), json!(nodes)))
            }
        }
    }

    fn stop(&mut self) -> Result<(String, Value), NemesisError> {
        match self.active.take() {
            None => Ok(("stop".into(), Value::Null)),
            Some(Active::Partition(p)) => {
                p.heal().map_err(NemesisError::fault)?;
                Ok(("stop-partition".into(), Value::Null))
            }
            Some(Active::Packet(f)) => {
                f.heal().map_err(NemesisError::fault)?;
                Ok(("stop-packet".into(), Value::Null))
            }
            Some(Active::Clock(f)) => {
                let nodes = json!(f.nodes());
                f.heal().map_err(NemesisError::fault)?;
                Ok((
                    "stop-clock".into(),
                    json!({"fault": "reset", "nodes": nodes}),
                ))
            }
            Some(Active::Process(f)) => {
                let name = match f.kind() {
                    ProcessKind::Kill => "stop-kill",
                    ProcessKind::Pause => "stop-pause",
                };
                let nodes = json!(f.nodes());
                f.heal().map_err(NemesisError::fault)?;
                Ok((name.into(), nodes))
            }
        }
    }

    fn heal_all(&mut self) -> Result<(), NemesisError> {
        let active = self.active.take().map(heal).transpose();
        let swept = self.net.heal().map_err(NemesisError::fault);
        active?;
        swept?;
        Cluster::load(&self.dir)
            .and_then(|c| c.wait_healthy(Duration::from_secs(60)))
            .map_err(|e| {
                NemesisError::Unhealthy(format!("the cluster did not become healthy: {e}"))
            })
    }
}

fn heal(active: Active) -> Result<(), NemesisError> {
    match active {
        Active::Partition(p) => p.heal(),
        Active::Packet(f) => f.heal(),
        Active::Process(f) => f.heal(),
        Active::Clock(f) => f.heal(),
    }
    .map_err(NemesisError::fault)
}
