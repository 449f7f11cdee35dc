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
//! A database whose primary only an operator replaces (MariaDB: the net's
//! `operator_failover`) gets one from the nemesis: when a kill hits the primary, or a
//! partition cuts it off from every other member, the nemesis fails over
//! `FAILOVER_AFTER` (2 s; `--nemesis-failover-after`) into the fault (the history's `failover` op, between the
//! fault's start and stop), and once the fault is healed it rejoins the old primary
//! as a replica, its data initialised afresh (the stop op's value says `rejoined`).
//!
//! ```text
//!   start-kill ["n1"] ── 2 s ── failover {"old":"n1","new":"n2","epoch":2,...}
//!     ── stop-kill {"nodes":["n1"],"rejoined":"n1"}
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
use splitbrain_control::nemesis::{FollowUp, Nemesis, NemesisError};
use splitbrain_nemesis::fault::{
    ClockChange, ClockControl, Fault, FaultKind, FaultSpec, Healed, Mechanisms, Net, ProcessKind,
};
use splitbrain_nemesis::grudge::Grudge;
use splitbrain_nemesis::packet::{describe, PacketSpec};
use std::time::{Duration, Instant};

/// How long the cluster gets to serve again after the last heal.
const SETTLE: Duration = Duration::from_secs(60);

/// How often a failover the database refused is tried again while the fault lasts
/// (replicas of a primary that was cut off take a few seconds to notice: until
/// then they still count as connected to it).
const FAILOVER_RETRY: Duration = Duration::from_millis(500);

pub struct FaultNemesis {
    net: Box<dyn Net>,
    draws: FaultDraws<FaultKind>,
    /// What kill and pause act on: `None` the database's own process, `Some(name)`
    /// one beside it (Redis's sentinel); with several, each fault draws one.
    processes: Vec<Option<String>>,
    /// The current fault's own draws.
    rng: StdRng,
    active: Option<Fault>,
    /// How long into a fault that hit the primary to fail over (see
    /// [`Net::operator_failover`]).
    failover_after: Duration,
    /// The primary the fault in place hit, to fail over from.
    hit_primary: Option<String>,
    /// The old primary a failover during the fault in place replaced, to rejoin as a
    /// replica once the fault is healed.
    to_rejoin: Option<String>,
    /// Where the nemesis says what it did besides the history (the run's log).
    log: Option<Say>,
}

/// A line for the run's log.
type Say = Box<dyn Fn(&str) + Send>;

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
            failover_after: crate::test_config::FAILOVER_AFTER,
            hit_primary: None,
            to_rejoin: None,
            log: None,
        }
    }

    /// Fails over this long into a fault that hit the primary (instead of
    /// `test_config::FAILOVER_AFTER`), where the database leaves that to an operator.
    pub fn with_failover_after(mut self, after: Duration) -> FaultNemesis {
        self.failover_after = after;
        self
    }

    /// Says what it did besides the history (failovers, rejoins) through `log`.
    pub fn with_log(mut self, log: impl Fn(&str) + Send + 'static) -> FaultNemesis {
        self.log = Some(Box::new(log));
        self
    }

    fn say(&self, msg: &str) {
        if let Some(log) = &self.log {
            log(msg);
        }
    }

    /// The primary, when this database's primary is replaced only by an operator
    /// (a fault that hits it calls for a failover); `None` otherwise, without asking.
    fn primary(&self) -> Option<String> {
        self.net
            .operator_failover()
            .then(|| self.net.leader())
            .flatten()
    }

    /// Rejoins the primary a failover replaced, once its fault is healed: the
    /// history's stop op says so in its value.
    fn rejoin(&mut self, value: Value) -> Result<Value, NemesisError> {
        let Some(old) = self.to_rejoin.take() else {
            return Ok(value);
        };
        self.net.rejoin(&old).map_err(NemesisError::fault)?;
        self.say(&format!(
            "nemesis: {old} rejoined as a replica (its data initialised afresh)"
        ));
        let mut value = match value {
            v @ Value::Object(_) => v,
            Value::Null => json!({}),
            nodes => json!({ "nodes": nodes }),
        };
        value["rejoined"] = json!(old);
        Ok(value)
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

    /// A random partition; the leader is asked once, for the isolate-leader shape,
    /// and returned.
    fn grudge(&mut self) -> (&'static str, Grudge, Option<String>) {
        let leader = self.net.leader();
        let (shape, grudge) = Grudge::random(&self.net.nodes(), leader.as_deref(), &mut self.rng);
        (shape, grudge, leader)
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
        self.hit_primary = None;
        // A failover whose fault's stop did not get as far as the rejoin.
        self.rejoin(Value::Null)?;
        let (kind, rng) = self.draws.next().ok_or(NemesisError::NoFaults)?;
        self.rng = rng;
        let (fault, value) = match kind {
            FaultKind::Partition => {
                let (shape, grudge, leader) = self.grudge();
                let value = json!({"shape": shape, "grudge": grudge.to_json()});
                let nodes = self.net.nodes();
                let cut_off =
                    leader.filter(|l| self.net.operator_failover() && grudge.isolates(l, &nodes));
                let fault = self.inject(FaultSpec::Partition(grudge))?;
                self.hit_primary = cut_off;
                (fault, value)
            }
            FaultKind::Packet => self.packet()?,
            FaultKind::Kill | FaultKind::Pause => {
                let nodes = self.victims()?;
                let process = self.process();
                // A killed primary (the database's own process) calls for a failover;
                // a paused one comes back as it was.
                let killed_primary = (kind == FaultKind::Kill && process.is_none())
                    .then(|| self.primary())
                    .flatten()
                    .filter(|p| nodes.contains(p));
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
                let fault = self.inject(spec)?;
                self.hit_primary = killed_primary;
                (fault, value)
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
        self.hit_primary = None;
        let healed = fault.heal().map_err(NemesisError::fault)?;
        let value = match kind {
            FaultKind::Kill | FaultKind::Pause => process_value(&nodes, process.as_deref()),
            FaultKind::Clock if self.net.clock_control() == ClockControl::Supervisor => {
                json!({"fault": "reset", "nodes": nodes})
            }
            _ => notes(healed),
        };
        let value = self.rejoin(value)?;
        Ok((format!("stop-{kind}"), value))
    }

    fn heal_all(&mut self) -> Result<(), NemesisError> {
        self.hit_primary = None;
        let active = self.active.take().map(Fault::heal).transpose();
        let swept = self.net.heal_all();
        active.map_err(NemesisError::fault)?;
        swept.map_err(NemesisError::fault)?;
        self.rejoin(Value::Null)?;
        self.net.wait_healthy(SETTLE).map_err(|e| match e {
            splitbrain_nemesis::Error::Unhealthy(why) => NemesisError::Unhealthy(why),
            e => NemesisError::fault(e),
        })
    }

    fn follow_up(&self) -> Option<FollowUp> {
        self.hit_primary.as_ref().map(|_| FollowUp {
            f: "failover".into(),
            after: self.failover_after,
        })
    }

    /// The operator's failover: tried until `until` while the database refuses it
    /// (the replicas of a primary that was cut off have not yet noticed).
    fn take_follow_up(&mut self, until: Instant) -> Result<Value, NemesisError> {
        let Some(primary) = self.hit_primary.take() else {
            return Ok(Value::Null);
        };
        let f = loop {
            match self.net.failover() {
                Ok(f) => break f,
                Err(splitbrain_nemesis::Error::Cluster(splitbrain_cluster::Error::Failover(_)))
                    if Instant::now() + FAILOVER_RETRY < until =>
                {
                    std::thread::sleep(FAILOVER_RETRY)
                }
                Err(e) => return Err(NemesisError::fault(e)),
            }
        };
        self.to_rejoin = Some(f.old.to_string());
        self.say(&format!(
            "nemesis: failover from {primary}: promoted {} (epoch {}) in place of {}",
            f.new, f.epoch, f.old
        ));
        serde_json::to_value(&f).map_err(NemesisError::fault)
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
        /// The primary is replaced by an operator (MariaDB's lab).
        operator: bool,
        /// Failovers the fake refuses before it makes one.
        refusals: Arc<Mutex<u32>>,
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
        fn operator_failover(&self) -> bool {
            self.operator
        }
        fn failover(&self) -> splitbrain_nemesis::Result<splitbrain_cluster::Failover> {
            let mut refusals = self.refusals.lock().unwrap();
            if *refusals > 0 {
                *refusals -= 1;
                self.log.lock().unwrap().push("refused failover".into());
                return Err(
                    splitbrain_cluster::Error::Failover("replicas connected".into()).into(),
                );
            }
            self.log.lock().unwrap().push("failover".into());
            let old = self.leader.clone().unwrap_or_default();
            Ok(splitbrain_cluster::Failover::new(
                old.as_str().into(),
                "n2".into(),
                2,
            ))
        }
        fn rejoin(&self, node: &str) -> splitbrain_nemesis::Result<()> {
            self.log.lock().unwrap().push(format!("rejoin {node}"));
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
            operator: false,
            refusals: Arc::default(),
            log: log.clone(),
        };
        (net, log)
    }

    fn nemesis(net: Fake, kinds: &[FaultKind], seed: u64) -> FaultNemesis {
        FaultNemesis::new(Box::new(net), kinds.to_vec(), seed)
    }

    /// A fake MariaDB lab: n1 is the primary, and only an operator replaces it.
    fn operated(kinds: &[FaultKind], seed: u64) -> (FaultNemesis, Log, Arc<Mutex<u32>>) {
        let (mut net, log) = fake(ClockControl::Supervisor);
        net.leader = Some("n1".into());
        net.operator = true;
        let refusals = net.refusals.clone();
        let lines = log.clone();
        let n = nemesis(net, kinds, seed).with_log(move |l| lines.lock().unwrap().push(l.into()));
        (n, log, refusals)
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn a_kill_of_the_primary_is_followed_by_a_failover_and_its_heal_by_a_rejoin() {
        let (mut n, log, _) = operated(&[FaultKind::Kill], 5);
        let (mut hit, mut missed) = (0, 0);
        for _ in 0..20 {
            let (_, value) = n.start().unwrap();
            let victims: Vec<String> = serde_json::from_value(value.clone()).unwrap();
            if !victims.contains(&"n1".to_string()) {
                missed += 1;
                assert_eq!(n.follow_up(), None, "{value}");
                assert_eq!(n.stop().unwrap(), ("stop-kill".to_string(), value));
                continue;
            }
            hit += 1;
            let step = n.follow_up().expect("a follow-up for a killed primary");
            assert_eq!(step.f, "failover");
            assert_eq!(step.after, crate::test_config::FAILOVER_AFTER);
            let done = n.take_follow_up(later()).unwrap();
            assert_eq!(done["old"], "n1");
            assert_eq!(done["new"], "n2");
            assert_eq!(done["epoch"], 2);
            // Taken once: the driver never asks twice, but a second ask is no failover.
            assert_eq!(n.follow_up(), None);
            let (f, stopped) = n.stop().unwrap();
            assert_eq!(f, "stop-kill");
            assert_eq!(stopped, json!({"nodes": victims, "rejoined": "n1"}));
            let log = log.lock().unwrap();
            let at = log.iter().rposition(|l| l == "rejoin n1").unwrap();
            assert_eq!(log[at - 1], "heal kill", "the rejoin follows the heal");
        }
        assert!(
            hit > 0 && missed > 0,
            "{hit} kills of the primary, {missed} of others"
        );
        let log = log.lock().unwrap();
        assert!(
            log.iter()
                .any(|l| l == "nemesis: failover from n1: promoted n2 (epoch 2) in place of n1"),
            "{log:?}"
        );
    }

    #[test]
    fn pauses_kills_of_another_process_and_databases_that_elect_their_own_call_for_nothing() {
        let (mut n, _, _) = operated(&[FaultKind::Pause], 5);
        let (n2, _, _) = operated(&[FaultKind::Kill], 5);
        let mut n2 = n2.with_processes(vec![Some("sentinel".into())]);
        let (net, _) = fake(ClockControl::Supervisor);
        let mut etcd = nemesis(
            Fake {
                leader: Some("n1".into()),
                ..net
            },
            &[FaultKind::Kill, FaultKind::Partition],
            5,
        );
        for n in [&mut n, &mut n2, &mut etcd] {
            for _ in 0..10 {
                n.start().unwrap();
                assert_eq!(n.follow_up(), None);
                n.stop().unwrap();
            }
        }
    }

    #[test]
    fn a_partition_that_cuts_the_primary_off_is_followed_by_a_failover_tried_until_it_is_made() {
        let (mut n, log, refusals) = operated(&[FaultKind::Partition], 2);
        let nodes = ["n1", "n2", "n3", "n4", "n5"].map(String::from);
        let mut isolated = 0;
        for _ in 0..20 {
            let (_, value) = n.start().unwrap();
            let grudge: Grudge = Grudge(serde_json::from_value(value["grudge"].clone()).unwrap());
            let cut_off = grudge.isolates("n1", &nodes);
            assert_eq!(n.follow_up().is_some(), cut_off, "{value}");
            if cut_off {
                isolated += 1;
                *refusals.lock().unwrap() = 2;
                let done = n.take_follow_up(later()).unwrap();
                assert_eq!(done["new"], "n2");
                let (_, stopped) = n.stop().unwrap();
                assert_eq!(stopped, json!({"rejoined": "n1"}));
            } else {
                n.stop().unwrap();
            }
        }
        assert!(isolated > 0);
        let log = log.lock().unwrap();
        let refused = log.iter().filter(|l| *l == "refused failover").count();
        assert_eq!(refused, 2 * isolated, "{log:?}");
        drop(log);
        // Refused up to the fault's end: the op's error, and no rejoin at the stop.
        loop {
            n.start().unwrap();
            if n.follow_up().is_some() {
                break;
            }
            n.stop().unwrap();
        }
        *refusals.lock().unwrap() = 1;
        let e = n.take_follow_up(Instant::now()).unwrap_err();
        assert!(e.to_string().contains("replicas connected"), "{e}");
        assert_eq!(n.stop().unwrap().1, Value::Null);
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
