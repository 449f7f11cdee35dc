//! `splitbrain nemesis ...`: faults by hand on a local cluster, and the heal that
//! undoes them (also after a harness was killed mid-fault). With `--nodes FILE` the
//! same commands act on remote nodes over SSH (`remote_cmd.rs`); the arguments of
//! both are in `nemesis_args.rs`.

use crate::nemesis_args::{ClockArgs, ClockCmd, HealArgs, NemesisCmd, PartitionArgs, Targets};
use anyhow::Context as _;
use splitbrain_cluster::Cluster;
use splitbrain_nemesis::fault::ProcessKind;
use splitbrain_nemesis::grudge::Grudge;
use splitbrain_nemesis::lab::LabNet;
use splitbrain_nemesis::packet::PacketSpec;
use std::collections::BTreeSet;
use std::time::Instant;

/// `println!` that does not panic when stdout is a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Runs one `nemesis` subcommand on the local lab; `main` reports an error.
pub fn execute(cmd: NemesisCmd) -> anyhow::Result<u8> {
    match cmd {
        NemesisCmd::Partition(PartitionArgs { shape, dir }) => {
            let cluster = Cluster::load(&dir.dir)?;
            let net = LabNet::of(&cluster);
            let nodes = net.nodes();
            let grudge = shape.grudge(&nodes, || {
                let leader = cluster
                    .leader()?
                    .context("the cluster has no leader to isolate")?;
                Ok(leader.to_string())
            })?;
            let start = Instant::now();
            let partition = net.partition(&grudge)?;
            let took = start.elapsed();
            partition.keep();
            out!("partitioned ({:.1} ms): {grudge}", took.as_secs_f64() * 1e3);
            say_how_to_heal(&dir.dir);
            Ok(0)
        }
        NemesisCmd::ClockSupervisor { args } => {
            Ok(u8::try_from(splitbrain_clock::supervisor::main(&args)).unwrap_or(1))
        }
        NemesisCmd::Clock(ClockArgs { change, dir }) => {
            use splitbrain_nemesis::fault::ClockChange;
            let (change, nodes) = match change {
                ClockCmd::Bump { delta, members } => {
                    (ClockChange::Bump { delta_ns: delta }, members)
                }
                ClockCmd::Skew { rate, members } => (ClockChange::Skew { rate }, members),
                ClockCmd::Strobe {
                    delta,
                    period,
                    members,
                } => (
                    ClockChange::Strobe {
                        delta_ns: delta,
                        period_ns: period,
                    },
                    members,
                ),
                ClockCmd::Reset { members } => (ClockChange::Reset, members),
            };
            let net = LabNet::load(&dir.dir)?;
            net.clock_fault(&nodes, change)?.keep();
            let now = splitbrain_clock::fake::real_now_ns();
            for (node, clock) in net.clocks()? {
                if nodes.is_empty() || nodes.contains(&node) {
                    out!("{node}: {}", clock.describe(now));
                }
            }
            if change != ClockChange::Reset {
                say_how_to_heal(&dir.dir);
            }
            Ok(0)
        }
        NemesisCmd::Delayer { args } => {
            Ok(u8::try_from(splitbrain_nemesis::delayer::main(&args)).unwrap_or(1))
        }
        NemesisCmd::Packet(a) => {
            let net = LabNet::load(&a.dir.dir)?.with_delayer(delayer_command()?);
            let spec = a.spec()?;
            let start = Instant::now();
            let fault = net.packet_fault(&a.members, &spec)?;
            let how: Vec<String> = fault
                .mechanisms()
                .iter()
                .map(|(what, m)| format!("{what} by {m}"))
                .collect();
            fault.keep();
            let whom = if a.members.is_empty() {
                "every member".to_string()
            } else {
                a.members.join(", ")
            };
            out!(
                "degraded {whom} ({:.1} ms): {}",
                start.elapsed().as_secs_f64() * 1e3,
                how.join(", ")
            );
            say_how_to_heal(&a.dir.dir);
            Ok(0)
        }
        NemesisCmd::Kill(t) => process_fault(ProcessKind::Kill, t),
        NemesisCmd::Pause(t) => process_fault(ProcessKind::Pause, t),
        NemesisCmd::Heal(HealArgs { all: true, .. }) => heal_all(),
        NemesisCmd::Heal(HealArgs { dir, .. }) => {
            let net = LabNet::load(&dir.dir)?;
            let start = Instant::now();
            net.heal()?;
            out!(
                "healed ({:.1} ms): no partition or packet rules remain, every member runs{}",
                start.elapsed().as_secs_f64() * 1e3,
                if net.has_clock_control() {
                    ", every clock reads real time"
                } else {
                    ""
                }
            );
            Ok(0)
        }
        NemesisCmd::Status(dir) => {
            let net = LabNet::load(&dir.dir)?;
            let f = net.recorded()?;
            print_recorded(
                f.partition.as_ref(),
                f.packet.as_ref(),
                &f.killed,
                &f.paused,
            );
            let members = net.partitioned_members()?;
            if members.is_empty() {
                out!("no member has partition rules");
            } else {
                out!("members with partition rules: {}", members.join(", "));
            }
            if net.has_clock_control() {
                let now = splitbrain_clock::fake::real_now_ns();
                let clocks: Vec<String> = net
                    .clocks()?
                    .iter()
                    .map(|(n, c)| format!("{n} {}", c.describe(now)))
                    .collect();
                out!("clocks: {}", clocks.join("; "));
            } else {
                out!("clocks: no clock control (`splitbrain cluster up --clock` gives it)");
            }
            Ok(0)
        }
    }
}

/// The command that heals the lab in `dir`: a fault made by hand stays until then.
fn say_how_to_heal(dir: &std::path::Path) {
    out!("heal with: splitbrain nemesis heal --dir {}", dir.display());
}

/// What a nemesis state file records that the lab's and remote nodes' share: the
/// partition, the packet fault, killed and paused members (`nemesis status`).
pub(crate) fn print_recorded(
    partition: Option<&Grudge>,
    packet: Option<&(BTreeSet<String>, PacketSpec)>,
    killed: &BTreeSet<String>,
    paused: &BTreeSet<String>,
) {
    match partition {
        Some(g) => out!("recorded partition: {g}"),
        None => out!("no partition recorded"),
    }
    if let Some((nodes, spec)) = packet {
        let names: Vec<&str> = nodes.iter().map(String::as_str).collect();
        out!(
            "packet fault on {}: {}",
            names.join(", "),
            serde_json::to_string(spec).unwrap_or_default()
        );
    }
    for (what, nodes) in [("killed", killed), ("paused", paused)] {
        if !nodes.is_empty() {
            let names: Vec<&str> = nodes.iter().map(String::as_str).collect();
            out!("{what}: {}", names.join(", "));
        }
    }
}

/// `nemesis heal --all`: heals every registered lab, and says what happened to each.
fn heal_all() -> anyhow::Result<u8> {
    splitbrain_cluster::require_root("healing every registered lab")?;
    let dirs = splitbrain_cluster::registered();
    if dirs.is_empty() {
        out!("no labs registered: nothing to heal");
    }
    let mut failed = false;
    for dir in &dirs {
        let healed = LabNet::load(dir).and_then(|net| net.heal());
        match healed {
            Ok(_) => out!("healed the lab in {}", dir.display()),
            Err(splitbrain_nemesis::Error::Cluster(splitbrain_cluster::Error::NoCluster {
                ..
            })) => out!("no cluster in {} any more", dir.display()),
            Err(e) => {
                failed = true;
                eprintln!("error: {}: {e}", dir.display());
            }
        }
    }
    Ok(u8::from(failed))
}

/// How this binary runs its own delayer: `splitbrain nemesis delayer`.
pub fn delayer_command() -> anyhow::Result<Vec<String>> {
    let exe = std::env::current_exe().context("cannot find this program's path for the delayer")?;
    Ok(vec![
        exe.to_string_lossy().into_owned(),
        "nemesis".into(),
        "delayer".into(),
    ])
}

/// How this binary runs its own clock supervisor: `splitbrain nemesis
/// clock-supervisor` (the cluster appends `--offset-file FILE -- etcd ...`).
pub fn clock_supervisor_command() -> anyhow::Result<Vec<String>> {
    let exe = std::env::current_exe()
        .context("cannot find this program's path for the clock supervisor")?;
    Ok(vec![
        exe.to_string_lossy().into_owned(),
        "nemesis".into(),
        "clock-supervisor".into(),
    ])
}

fn process_fault(kind: ProcessKind, t: Targets) -> anyhow::Result<u8> {
    let cluster = Cluster::load(&t.dir.dir)?;
    let net = LabNet::of(&cluster);
    let mut nodes = net.nodes();
    let chosen: Vec<String> = match t.target.as_str() {
        "leader" => vec![cluster
            .leader()?
            .context("the cluster has no leader")?
            .to_string()],
        "minority" | "majority" => {
            use rand::seq::SliceRandom;
            let want = if t.target == "minority" {
                ((nodes.len() - 1) / 2).max(1)
            } else {
                nodes.len() / 2 + 1
            };
            // Drawn from the members that are running: a killed one cannot be paused.
            let running: Vec<String> = cluster
                .processes()?
                .into_iter()
                .filter(|(_, p)| matches!(p, splitbrain_cluster::Process::Running { .. }))
                .map(|(n, _)| n.to_string())
                .collect();
            nodes.retain(|n| running.contains(n));
            if nodes.len() < want {
                anyhow::bail!(
                    "a {} is {want} members, but only {} are running ({}); heal first",
                    t.target,
                    nodes.len(),
                    nodes.join(", ")
                );
            }
            nodes.shuffle(&mut rand::rng());
            nodes.truncate(want);
            nodes.sort();
            nodes
        }
        node => vec![node.to_string()],
    };
    let start = Instant::now();
    let process = t.process.as_deref().filter(|p| *p != "server");
    net.process_fault(kind, &chosen, process)?.keep();
    let verb = match kind {
        ProcessKind::Kill => "killed",
        ProcessKind::Pause => "paused",
    };
    let what = match process {
        Some(p) => format!("the {p} of {}", chosen.join(", ")),
        None => chosen.join(", "),
    };
    out!(
        "{verb} {what} ({:.1} ms)",
        start.elapsed().as_secs_f64() * 1e3
    );
    say_how_to_heal(&t.dir.dir);
    Ok(0)
}
