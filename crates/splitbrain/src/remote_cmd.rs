//! `splitbrain nemesis --nodes FILE ...`: faults by hand on remote nodes over SSH, and
//! the heal that undoes them (also after a harness was killed mid-fault).

use crate::nemesis_args::{
    ClockArgs, ClockCmd, HealArgs, NemesisCmd, PacketArgs, PartitionArgs, Targets,
};
use anyhow::Context as _;
use rand::seq::SliceRandom;
use rand::Rng;
use splitbrain_nemesis::fault::ProcessKind;
use splitbrain_nemesis::nodes::NodesFile;
use splitbrain_nemesis::packet::describe;
use splitbrain_nemesis::remote::RemoteNet;
use std::path::Path;
use std::time::Instant;

/// `println!` that does not panic when stdout is a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

fn ms(start: Instant) -> String {
    format!("{:.1} ms", start.elapsed().as_secs_f64() * 1e3)
}

/// Runs one `nemesis --nodes FILE` subcommand; `main` reports an error.
pub fn execute(file: &Path, cmd: NemesisCmd, allow_remote: bool) -> anyhow::Result<u8> {
    if let NemesisCmd::Delayer { .. } | NemesisCmd::ClockSupervisor { .. } = cmd {
        anyhow::bail!("the delayer and the clock supervisor run on the local lab only");
    }
    if let NemesisCmd::Heal(HealArgs { all: true, .. }) = cmd {
        anyhow::bail!("--all heals the local labs; with --nodes, heal names one nodes file");
    }
    let mut nodes = NodesFile::load(file)?;
    nodes.allow_remote = allow_remote;
    // `date` on this machine is refused from the file alone, before any SSH.
    if let NemesisCmd::Clock(ClockArgs {
        change: ClockCmd::Bump { members, .. },
        ..
    }) = &cmd
    {
        let named = members.iter().all(|m| nodes.names().contains(m));
        let names = if named { members.clone() } else { Vec::new() };
        splitbrain_nemesis::remote::refuse_date_here(&nodes, &names)?;
    }
    // Every node is connected first: an unreachable one stops us before any change.
    // A heal undoes what it can on the nodes it reaches, and keeps the state file.
    let net = if let NemesisCmd::Heal(_) = cmd {
        let (net, unreachable) = RemoteNet::open_lenient(nodes)?;
        for e in &unreachable {
            eprintln!("warning: {e}; healing the other nodes");
        }
        net
    } else {
        RemoteNet::open(nodes)?
    };
    // `leader` is asked of the nodes' client URLs as etcd members (this command
    // takes no --db); `splitbrain test` asks its client's database.
    let net = net.with_db(Some(splitbrain_cluster::DEFAULT_DB));
    let heal_hint = format!(
        "heal with: splitbrain nemesis --nodes {} heal",
        file.display()
    );
    let mut rng = rand::rng();
    let code = match cmd {
        NemesisCmd::Partition(PartitionArgs { shape, .. }) => {
            let all = net.nodes();
            let grudge = shape.grudge(&all, || {
                net.leader().context(
                    "the cluster has no leader to isolate (asked through the nodes' client URLs)",
                )
            })?;
            let start = Instant::now();
            net.partition(&grudge)?.keep();
            out!("partitioned over SSH ({}): {grudge}", ms(start));
            out!("{heal_hint}");
            0
        }
        NemesisCmd::Packet(a) => packet(&net, a, &heal_hint)?,
        NemesisCmd::Kill(t) => process(&net, ProcessKind::Kill, t, &mut rng, &heal_hint)?,
        NemesisCmd::Pause(t) => process(&net, ProcessKind::Pause, t, &mut rng, &heal_hint)?,
        NemesisCmd::Clock(ClockArgs { change, .. }) => {
            let pick =
                |members: Vec<String>, rng: &mut rand::rngs::ThreadRng| match members.as_slice() {
                    [] => Ok(net.nodes()),
                    [one] => targets(&net, one, rng),
                    _ => Ok(members),
                };
            let start = Instant::now();
            match change {
                ClockCmd::Bump { delta, members } => {
                    let delta = delta / 1_000_000;
                    let chosen = pick(members, &mut rng)?;
                    net.clock_fault(&chosen, delta)?.keep();
                    out!(
                        "clocks of {} moved by {delta} ms over SSH ({})",
                        chosen.join(", "),
                        ms(start)
                    );
                    out!("{heal_hint}");
                }
                ClockCmd::Skew { .. } | ClockCmd::Strobe { .. } => anyhow::bail!(
                    "remote nodes take `clock bump DELTA` and `clock reset`; skew and strobe \
                     need the local cluster's clock supervisor (`splitbrain cluster up --clock`)"
                ),
                ClockCmd::Reset { members } => {
                    let chosen = pick(members, &mut rng)?;
                    for n in net.clock_reset(&chosen)? {
                        out!("{n}");
                    }
                    out!("clocks of {} put back ({})", chosen.join(", "), ms(start));
                }
            }
            0
        }
        NemesisCmd::Heal(_) => {
            let start = Instant::now();
            let healed = net.heal();
            // Masters that a killed harness left behind end too, healed or not.
            for n in net.nodes() {
                net.host(&n)?.close_any_master();
            }
            for n in &healed?.notes {
                out!("{n}");
            }
            out!(
                "healed over SSH ({}): no rule, qdisc or clock offset of ours remains, killed and paused nodes are back",
                ms(start)
            );
            0
        }
        NemesisCmd::Status(_) => {
            let f = net.recorded()?;
            let packet = f.packet.as_ref();
            crate::nemesis_cmd::print_recorded(f.partition.as_ref(), packet, &f.killed, &f.paused);
            for (node, c) in &f.clocks {
                out!("clock of {node}: moved by {} ms", c.offset_ms);
            }
            let members = net.partitioned_members()?;
            if members.is_empty() {
                out!("no node has partition rules of this run");
            } else {
                out!("nodes with partition rules: {}", members.join(", "));
            }
            0
        }
        NemesisCmd::Delayer { .. } | NemesisCmd::ClockSupervisor { .. } => {
            unreachable!("refused above")
        }
    };
    net.close();
    Ok(code)
}

fn packet(net: &RemoteNet, a: PacketArgs, heal_hint: &str) -> anyhow::Result<u8> {
    let spec = a.spec()?;
    let start = Instant::now();
    let (fault, how) = net.packet_fault(&a.members, &spec)?;
    fault.keep();
    out!("degraded over SSH ({}): {}", ms(start), describe(&how));
    out!("{heal_hint}");
    Ok(0)
}

fn process(
    net: &RemoteNet,
    kind: ProcessKind,
    t: Targets,
    rng: &mut impl rand::Rng,
    heal_hint: &str,
) -> anyhow::Result<u8> {
    if let Some(p) = t.process.as_deref().filter(|p| *p != "server") {
        anyhow::bail!(
            "--process {p}: on remote nodes kill and pause run the nodes file's commands, \
             which act on the database's own process"
        );
    }
    let chosen = targets(net, &t.target, rng)?;
    let start = Instant::now();
    net.process_fault(kind, &chosen)?.keep();
    let verb = match kind {
        ProcessKind::Kill => "killed",
        ProcessKind::Pause => "paused",
    };
    out!("{verb} {} over SSH ({})", chosen.join(", "), ms(start));
    out!("{heal_hint}");
    Ok(0)
}

/// Who a process or clock fault hits: a node, `leader`, `minority` or `majority`
/// (drawn from the nodes not already killed or paused).
fn targets(net: &RemoteNet, target: &str, rng: &mut impl Rng) -> anyhow::Result<Vec<String>> {
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
