//! The nemesis of `splitbrain test`, one for every place faults happen: the fault
//! schedule's draws (`rounds`) made into faults on a [`Net`] (the local lab, or
//! remote nodes over SSH) behind the control crate's [`Nemesis`] trait, which
//! records each start and stop as an op of the `nemesis` process and heals at the
//! end and on Ctrl-C.
//!
//! ```text
//!   draws: kill ──► victims (the leader, or a minority) ──► net.inject(Process)
//!                   history: {"f":"start-kill","value":["n2"]}
//!   stop ─────────► fault.heal()  history: {"f":"stop-kill","value":["n2"]}
//! ```
//!
//! What the two places can do differs in two ways, both asked of the `Net`: clock
//! faults ([`ClockControl`]: any change on the lab's supervised clocks, a jump from
//! true time on remote nodes), and packet faults a node's kernel cannot carry out
//! (remote nodes without netem run with loss alone, and the op says so).

use crate::rounds::FaultDraws;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use splitbrain_control::nemesis::{Nemesis, NemesisError};
use splitbrain_nemesis::fault::{
    ClockChange, ClockControl, Fault, FaultKind, FaultSpec, Healed, Mechanisms, Net, ProcessKind,
};
use splitbrain_nemesis::grudge::Grudge;
use splitbrain_nemesis::packet::{describe, PacketSpec};
use std::time::Duration;

/// How long the cluster gets to serve again after the last heal.
const SETTLE: Duration = Duration::from_secs(60);

pub struct FaultNemesis {
    net: Box<dyn Net>,
    draws: FaultDraws<FaultKind>,
    /// What kill and pause act on: `None` the database's own process, `Some(name)`
    /// one beside it (Redis's sentinel); with several, each fault draws one.
    processes: Vec<Option<String>>,
    /// The current fault's own draws.
    rng: StdRng,
    active: Option<Fault>,
}

impl FaultNemesis {
    /// `seed`: the fault schedule's (kinds, order, targets, grudges, clock changes:
    /// see `rounds`).
    pub fn new(net: Box<dyn Net>, kinds: Vec<FaultKind>, seed: u64) -> FaultNemesis {
        FaultNemesis {
            net,
            draws: FaultDraws::new(kinds, seed),
            processes: vec![None],
            rng: StdRng::seed_from_u64(seed),
            active: None,
        }
    }

    /// Kill and pause act on these processes (`None`: the database's own) instead
    /// of the database's own alone.
    pub fn with_processes(mut self, processes: Vec<Option<String>>) -> FaultNemesis {
        if !processes.is_empty() {
            self.processes = processes;
        }
        self
    }

    /// The process a kill or pause acts on; drawn only when there is a choice, so
    /// that a seed's schedule stays what it was without one.
    fn process(&mut self) -> Option<String> {
        match self.processes.as_slice() {
            [one] => one.clone(),
            many => many.choose(&mut self.rng).cloned().flatten(),
        }
    }

    fn inject(&self, fault: FaultSpec) -> Result<Fault, NemesisError> {
        self.net.inject(&fault).map_err(NemesisError::fault)
    }

    /// The leader half of the time (when there is one), else a random minority of
    /// the nodes not already killed or paused; an error rather than a fault on
    /// nobody.
    fn victims(&mut self) -> Result<Vec<String>, NemesisError> {
        let nodes = self.net.nodes();
        if self.rng.random_bool(0.5) {
            if let Some(l) = self.net.leader() {
                return Ok(vec![l]);
            }
        }
        let want = (nodes.len().saturating_sub(1) / 2).max(1);
        let down = self.net.down().map_err(NemesisError::fault)?;
        let mut up: Vec<String> = nodes.into_iter().filter(|n| !down.contains(n)).collect();
        if up.len() < want {
            return Err(NemesisError::NoTarget(format!(
                "a minority is {want} nodes, but only {} are neither killed nor paused; heal first",
                up.len()
            )));
        }
        up.shuffle(&mut self.rng);
        up.truncate(want);
        up.sort();
        Ok(up)
    }

    /// A random partition; the leader is asked once, for the isolate-leader shape.
    fn grudge(&mut self) -> (&'static str, Grudge) {
        let leader = self.net.leader();
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

    /// A random non-empty subset of the nodes.
    fn some_nodes(&mut self) -> Vec<String> {
        let mut nodes = self.net.nodes();
        let n = self.rng.random_range(1..=nodes.len().max(1));
        nodes.shuffle(&mut self.rng);
        nodes.truncate(n);
        nodes.sort();
        nodes
    }

    /// Slow and lossy links everywhere: 50 ± 10 ms and 20 % loss; loss alone where a
    /// node cannot delay (a remote kernel without netem), and the value says so.
    fn packet(&mut self) -> Result<(Fault, Value), NemesisError> {
        let full = PacketSpec {
            delay_ms: Some(50),
            jitter_ms: Some(10),
            loss: Some(0.2),
            ..PacketSpec::default()
        };
        let packet = |spec: &PacketSpec| FaultSpec::Packet {
            nodes: Vec::new(),
            spec: spec.clone(),
        };
        let (fault, spec, note) = match self.net.inject(&packet(&full)) {
            Ok(f) => (f, full, None),
            Err(splitbrain_nemesis::Error::Unsupported(why)) => {
                let loss = PacketSpec {
                    loss: Some(0.2),
                    ..PacketSpec::default()
                };
                let f = self.inject(packet(&loss))?;
                (f, loss, Some(format!("delay left out: {why}")))
            }
            Err(e) => return Err(NemesisError::fault(e)),
        };
        let mut value = json!({"spec": spec});
        match fault.mechanisms() {
            Some(Mechanisms::Same(how)) => {
                let how: Vec<String> = how.iter().map(|(what, m)| format!("{what}: {m}")).collect();
                value["mechanisms"] = json!(how);
            }
            Some(Mechanisms::PerNode(how)) => {
                value["mechanisms"] = json!(describe(how));
                value["note"] = json!(note);
            }
            None => {}
        }
        Ok((fault, value))
    }

    /// A clock fault as the net's clocks allow: any change on some of the lab's
    /// members; a jump of 5 to 60 s from true time on remote victims.
    fn clock(&mut self) -> Result<(Fault, Value), NemesisError> {
        match self.net.clock_control() {
            ClockControl::Supervisor => {
                let change = self.clock_change();
                let nodes = self.some_nodes();
                let fault = self.inject(FaultSpec::Clock {
                    nodes: nodes.clone(),
                    change,
                })?;
                let value =
                    json!({"fault": change.name(), "change": change.to_string(), "nodes": nodes});
                Ok((fault, value))
            }
            ClockControl::Offset => {
                let nodes = self.victims()?;
                let secs: i64 = self.rng.random_range(5..=60);
                let offset_ms = if self.rng.random_bool(0.5) {
                    secs
                } else {
                    -secs
                } * 1000;
                let change = ClockChange::Bump {
                    delta_ns: offset_ms * 1_000_000,
                };
                let fault = self.inject(FaultSpec::Clock {
                    nodes: nodes.clone(),
                    change,
                })?;
                Ok((fault, json!({"nodes": nodes, "offset_ms": offset_ms})))
            }
        }
    }
}

/// A kill's or pause's value: the nodes (`["n2"]`), or the nodes and the process
/// when it is not the database's own (`{"nodes":["n2"],"process":"sentinel"}`).
fn process_value(nodes: &[String], process: Option<&str>) -> Value {
    match process {
        None => json!(nodes),
        Some(p) => json!({"nodes": nodes, "process": p}),
    }
}

/// A heal's notes as an op's value: `null` when there are none.
fn notes(healed: Healed) -> Value {
    if healed.notes.is_empty() {
        Value::Null
    } else {
        json!(healed.notes)
    }
}

impl Nemesis for FaultNemesis {
    fn start(&mut self) -> Result<(String, Value), NemesisError> {
        if let Some(active) = self.active.take() {
            active.heal().map_err(NemesisError::fault)?;
        }
        let (kind, rng) = self.draws.next().ok_or(NemesisError::NoFaults)?;
        self.rng = rng;
        let (fault, value) = match kind {
            FaultKind::Partition => {
                let (shape, grudge) = self.grudge();
                let value = json!({"shape": shape, "grudge": grudge.to_json()});
                (self.inject(FaultSpec::Partition(grudge))?, value)
            }
            FaultKind::Packet => self.packet()?,
            FaultKind::Kill | FaultKind::Pause => {
                let nodes = self.victims()?;
                let process = self.process();
                let kind = match kind {
                    FaultKind::Kill => ProcessKind::Kill,
                    _ => ProcessKind::Pause,
                };
                let value = process_value(&nodes, process.as_deref());
                let spec = FaultSpec::Process {
                    kind,
                    nodes,
                    process,
                };
                (self.inject(spec)?, value)
            }
            FaultKind::Clock => self.clock()?,
        };
        self.active = Some(fault);
        Ok((format!("start-{kind}"), value))
    }

    fn stop(&mut self) -> Result<(String, Value), NemesisError> {
        let Some(fault) = self.active.take() else {
            return Ok(("stop".into(), Value::Null));
        };
        let kind = fault.kind();
        let nodes = fault.nodes().to_vec();
        let process = fault.process().map(str::to_owned);
        let healed = fault.heal().map_err(NemesisError::fault)?;
        let value = match kind {
            FaultKind::Kill | FaultKind::Pause => process_value(&nodes, process.as_deref()),
            FaultKind::Clock if self.net.clock_control() == ClockControl::Supervisor => {
                json!({"fault": "reset", "nodes": nodes})
            }
            _ => notes(healed),
        };
        Ok((format!("stop-{kind}"), value))
    }

    fn heal_all(&mut self) -> Result<(), NemesisError> {
        let active = self.active.take().map(Fault::heal).transpose();
        let swept = self.net.heal_all();
        active.map_err(NemesisError::fault)?;
        swept.map_err(NemesisError::fault)?;
        self.net.wait_healthy(SETTLE).map_err(|e| match e {
            splitbrain_nemesis::Error::Unhealthy(why) => NemesisError::Unhealthy(why),
            e => NemesisError::fault(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use splitbrain_nemesis::fault::Heal;
    use splitbrain_nemesis::packet::{Mechanism, NodeMechanisms};
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    /// What a fake net was asked to do, in order.
    type Log = Arc<Mutex<Vec<String>>>;

    /// A net that only records: the driver's draws and values without a cluster.
    #[derive(Debug)]
    struct Fake {
        clocks: ClockControl,
        leader: Option<String>,
        down: BTreeSet<String>,
        /// Delay refused as a remote kernel without netem refuses it.
        no_delay: bool,
        log: Log,
    }

    #[derive(Debug)]
    struct Undo(String, Log);

    impl Heal for Undo {
        fn heal(self: Box<Self>) -> splitbrain_nemesis::Result<Healed> {
            self.1.lock().unwrap().push(format!("heal {}", self.0));
            Ok(Healed::default())
        }
        fn keep(self: Box<Self>) {}
    }

    impl Net for Fake {
        fn nodes(&self) -> Vec<String> {
            ["n1", "n2", "n3", "n4", "n5"].map(String::from).to_vec()
        }
        fn leader(&self) -> Option<String> {
            self.leader.clone()
        }
        fn down(&self) -> splitbrain_nemesis::Result<BTreeSet<String>> {
            Ok(self.down.clone())
        }
        fn clock_control(&self) -> ClockControl {
            self.clocks
        }
        fn inject(&self, fault: &FaultSpec) -> splitbrain_nemesis::Result<Fault> {
            let kind = fault.kind();
            let (nodes, how) = match fault {
                FaultSpec::Packet { spec, .. } if self.no_delay && spec.delay_ms.is_some() => {
                    return Err(splitbrain_nemesis::Error::Unsupported("no netem".into()))
                }
                FaultSpec::Packet { .. } => (
                    self.nodes(),
                    Some(Mechanisms::PerNode(vec![NodeMechanisms {
                        node: "n1".into(),
                        mechanisms: vec![("loss", Mechanism::IptablesStatistic)],
                    }])),
                ),
                FaultSpec::Process { nodes, .. } | FaultSpec::Clock { nodes, .. } => {
                    (nodes.clone(), None)
                }
                FaultSpec::Partition(g) => {
                    (g.nodes().into_iter().map(String::from).collect(), None)
                }
            };
            self.log
                .lock()
                .unwrap()
                .push(format!("{kind} {}", nodes.join(",")));
            let process = match fault {
                FaultSpec::Process { process, .. } => process.clone(),
                _ => None,
            };
            let fault = Fault::new(
                kind,
                nodes,
                Box::new(Undo(kind.to_string(), self.log.clone())),
            )
            .with_process(process);
            Ok(match how {
                Some(how) => fault.with_mechanisms(how),
                None => fault,
            })
        }
        fn heal_all(&self) -> splitbrain_nemesis::Result<Healed> {
            self.log.lock().unwrap().push("heal all".into());
            Ok(Healed::default())
        }
        fn wait_healthy(&self, _: Duration) -> splitbrain_nemesis::Result<()> {
            Ok(())
        }
    }

    fn fake(clocks: ClockControl) -> (Fake, Log) {
        let log = Log::default();
        let net = Fake {
            clocks,
            leader: None,
            down: BTreeSet::new(),
            no_delay: false,
            log: log.clone(),
        };
        (net, log)
    }

    fn nemesis(net: Fake, kinds: &[FaultKind], seed: u64) -> FaultNemesis {
        FaultNemesis::new(Box::new(net), kinds.to_vec(), seed)
    }

    #[test]
    fn kills_and_pauses_of_another_process_name_it_in_both_values() {
        let (net, _) = fake(ClockControl::Supervisor);
        let mut n = nemesis(net, &[FaultKind::Kill, FaultKind::Pause], 3)
            .with_processes(vec![Some("sentinel".into())]);
        for _ in 0..4 {
            let (f, value) = n.start().unwrap();
            assert!(f == "start-kill" || f == "start-pause", "{f}");
            assert_eq!(value["process"], "sentinel", "{value}");
            assert!(!value["nodes"].as_array().unwrap().is_empty(), "{value}");
            let (_, stopped) = n.stop().unwrap();
            assert_eq!(stopped, value);
        }
        // Given both, the faults draw each of them.
        let (net, _) = fake(ClockControl::Supervisor);
        let mut n =
            nemesis(net, &[FaultKind::Kill], 3).with_processes(vec![None, Some("sentinel".into())]);
        let values: Vec<Value> = (0..20)
            .map(|_| {
                let v = n.start().unwrap().1;
                n.stop().unwrap();
                v
            })
            .collect();
        assert!(values.iter().any(|v| v.is_array()), "{values:?}");
        assert!(
            values.iter().any(|v| v["process"] == "sentinel"),
            "{values:?}"
        );
    }

    #[test]
    fn kills_hit_the_leader_or_a_minority_that_is_up_and_stop_names_them() {
        for seed in 0..20 {
            let (mut net, _) = fake(ClockControl::Supervisor);
            net.down = BTreeSet::from(["n1".to_string(), "n2".to_string()]);
            let mut n = nemesis(net, &[FaultKind::Kill], seed);
            let (f, value) = n.start().unwrap();
            assert_eq!(f, "start-kill");
            let victims: Vec<String> = serde_json::from_value(value.clone()).unwrap();
            assert_eq!(victims.len(), 2, "a minority of 5: {value}");
            assert!(!victims.iter().any(|v| v == "n1" || v == "n2"), "{value}");
            assert_eq!(n.stop().unwrap(), ("stop-kill".to_string(), value));
        }
        let (mut net, _) = fake(ClockControl::Offset);
        net.leader = Some("n4".into());
        let mut n = nemesis(net, &[FaultKind::Pause], 1);
        let leader = (0..20).any(|_| {
            let hit = n.start().unwrap().1 == json!(["n4"]);
            n.stop().unwrap();
            hit
        });
        assert!(leader, "the leader is a victim half of the time");
        let (mut net, _) = fake(ClockControl::Offset);
        net.down = ["n1", "n2", "n3", "n4"].map(String::from).into();
        let e = nemesis(net, &[FaultKind::Kill], 3).start().unwrap_err();
        assert!(matches!(e, NemesisError::NoTarget(_)), "{e}");
        assert!(
            e.to_string()
                .contains("only 1 are neither killed nor paused"),
            "{e}"
        );
    }

    #[test]
    fn clock_faults_are_what_the_nets_clocks_allow() {
        let (net, _) = fake(ClockControl::Supervisor);
        let mut n = nemesis(net, &[FaultKind::Clock], 7);
        let (f, v) = n.start().unwrap();
        assert_eq!(f, "start-clock");
        assert!(
            ["bump", "skew", "strobe"].contains(&v["fault"].as_str().unwrap()),
            "{v}"
        );
        assert!(v["change"].is_string() && v["nodes"].is_array(), "{v}");
        let (f, stopped) = n.stop().unwrap();
        assert_eq!(f, "stop-clock");
        assert_eq!(stopped, json!({"fault": "reset", "nodes": v["nodes"]}));

        let (net, _) = fake(ClockControl::Offset);
        let mut n = nemesis(net, &[FaultKind::Clock], 7);
        let (_, v) = n.start().unwrap();
        let ms = v["offset_ms"].as_i64().unwrap();
        assert!(
            (5_000..=60_000).contains(&ms.abs()) && ms % 1000 == 0,
            "{v}"
        );
        assert_eq!(n.stop().unwrap(), ("stop-clock".to_string(), Value::Null));
    }

    #[test]
    fn a_packet_fault_a_node_cannot_delay_runs_with_loss_alone_and_says_so() {
        let (mut net, log) = fake(ClockControl::Offset);
        net.no_delay = true;
        let mut n = nemesis(net, &[FaultKind::Packet], 1);
        let (_, v) = n.start().unwrap();
        assert_eq!(v["spec"], json!({"loss": 0.2}));
        assert_eq!(v["note"], "delay left out: no netem");
        assert_eq!(v["mechanisms"], "n1: loss by iptables statistic match");
        n.heal_all().unwrap();
        // The fault in place is healed before the sweep.
        let log = log.lock().unwrap().clone();
        assert_eq!(log[log.len() - 2..], ["heal packet", "heal all"]);
    }

    #[test]
    fn the_schedule_runs_every_kind_and_replays_from_its_seed() {
        let run = |seed| {
            let (net, log) = fake(ClockControl::Supervisor);
            let mut n = nemesis(net, &FaultKind::ALL, seed);
            for _ in 0..10 {
                n.start().unwrap();
                n.stop().unwrap();
            }
            let log = log.lock().unwrap().clone();
            log
        };
        let a = run(11);
        assert_eq!(a, run(11));
        for k in FaultKind::ALL {
            let started = a.iter().filter(|l| l.starts_with(&format!("{k} "))).count();
            assert_eq!(started, 2, "two rounds: {k} twice in {a:?}");
        }
        assert_ne!(a, run(12));
    }
}
