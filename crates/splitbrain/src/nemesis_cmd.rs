//! `splitbrain nemesis ...`: faults by hand on a local cluster, and the heal that
//! undoes them (also after a harness was killed mid-fault). With `--nodes FILE` the
//! same commands act on remote nodes over SSH (`remote_cmd.rs`).

use anyhow::Context as _;
use clap::{Args, Subcommand};
use splitbrain_cluster::{Cluster, DEFAULT_DIR};
use splitbrain_nemesis::grudge::Grudge;
use splitbrain_nemesis::lab::{LabNet, ProcessKind};
use splitbrain_nemesis::packet::PacketSpec;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
#[command(after_long_help = "\
With --nodes FILE, the faults act on the remote nodes the file lists, over SSH (see
nemesis/nodes.example.toml); `splitbrain cluster up --sshd` writes one for the lab.

Examples:
  splitbrain nemesis partition isolate leader
  splitbrain nemesis --nodes nodes.toml kill minority
  splitbrain nemesis --nodes nodes.toml clock bump -30s n2
  splitbrain nemesis --nodes nodes.toml heal")]
pub struct NemesisArgs {
    /// Act on the remote nodes listed in this nodes file (TOML), over SSH, instead
    /// of the local cluster.
    #[arg(long, value_name = "FILE", global = true)]
    pub nodes: Option<PathBuf>,
    /// With --nodes: the nodes may be other machines (host names, addresses outside
    /// the local lab). Without it only loopback and lab addresses are reached.
    #[arg(long, global = true, requires = "nodes")]
    pub allow_remote: bool,
    #[command(subcommand)]
    pub cmd: NemesisCmd,
}

#[derive(Subcommand)]
pub enum NemesisCmd {
    /// Cut the cluster's network with iptables inside the members' namespaces. The
    /// partition stays until `splitbrain nemesis heal`.
    Partition(PartitionArgs),
    /// Degrade the members' links: loss, bandwidth and delay (iptables statistic, tbf
    /// and an NFQUEUE delayer on kernels without netem), duplication and reordering
    /// (netem only).
    /// Stays until `heal`.
    Packet(PacketArgs),
    /// SIGKILL members (NODE, `leader`, `minority` or `majority`); they stay down
    /// until `heal` restarts them with their data.
    Kill(Targets),
    /// SIGSTOP members (NODE, `leader`, `minority` or `majority`) until `heal`.
    Pause(Targets),
    /// Move nodes' clocks (`bump DELTA`) until `clock reset` or `heal` (remote nodes,
    /// `--nodes`: the nodes file says how, with `date` or commands of its own).
    Clock(ClockArgs),
    /// Undo every fault: remove our partition rules from every member, restart
    /// stopped members, resume paused ones. Idempotent; works after the harness that
    /// made the faults was killed.
    Heal(Dir),
    /// Show the recorded partition and which members have rules of ours.
    Status(Dir),
    /// Internal: the user-space packet delayer that `packet --delay` runs inside a
    /// member's namespace on kernels without netem.
    #[command(hide = true)]
    Delayer {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Args)]
pub struct Dir {
    /// Run directory of the cluster (as given to `splitbrain cluster up`).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR, global = true)]
    dir: PathBuf,
}

#[derive(Args)]
pub struct Targets {
    /// A node name, or `leader`, `minority` (random, fewer than half) or `majority`.
    pub(crate) target: String,
    #[command(flatten)]
    dir: Dir,
}

#[derive(Args)]
pub struct ClockArgs {
    #[command(subcommand)]
    pub(crate) change: ClockCmd,
    #[command(flatten)]
    dir: Dir,
}

/// What to do to the clocks. NODE: a node name, or `leader`, `minority` or
/// `majority` (default: every node).
#[derive(Subcommand)]
pub(crate) enum ClockCmd {
    /// Jump the clock by DELTA from where it is: `-30s`, `+1h`, `250ms`, `1d`.
    Bump {
        #[arg(allow_hyphen_values = true, value_parser = parse_delta_ms)]
        delta: i64,
        #[arg(value_name = "NODE")]
        members: Vec<String>,
    },
    /// Put the clock back (as the nodes file says: the inverse offset and NTP for
    /// `date`, the `reset` command otherwise).
    Reset {
        #[arg(value_name = "NODE")]
        members: Vec<String>,
    },
}

/// `-30s`, `+1h`, `250ms`, `1d` -> milliseconds.
pub(crate) fn parse_delta_ms(s: &str) -> Result<i64, String> {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, s.strip_prefix('+').unwrap_or(s)),
    };
    let split = rest
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{s}`: give a unit: ms, s, m, h or d (e.g. -30s)"))?;
    let (n, unit) = rest.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("`{s}`: expected a number and a unit, e.g. -30s"))?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        u => return Err(format!("`{s}`: unknown unit `{u}` (ms, s, m, h, d)")),
    };
    n.checked_mul(ms * sign)
        .ok_or_else(|| format!("`{s}`: too large"))
}

#[derive(Args)]
pub struct PacketArgs {
    /// Fraction of packets each member drops, 0 to 1 (e.g. 0.1).
    #[arg(long)]
    pub(crate) loss: Option<f64>,
    /// Bandwidth limit per member, kbit/s.
    #[arg(long, value_name = "KBIT")]
    pub(crate) rate: Option<u64>,
    /// Added delay, ms (netem, or an NFQUEUE delayer where the kernel has no netem).
    #[arg(long, value_name = "MS")]
    pub(crate) delay: Option<u64>,
    /// Jitter around the delay, ms (as --delay).
    #[arg(long, value_name = "MS")]
    pub(crate) jitter: Option<u64>,
    /// Fraction of packets duplicated (needs netem).
    #[arg(long)]
    pub(crate) duplicate: Option<f64>,
    /// Fraction of packets reordered (needs netem and a delay).
    #[arg(long)]
    pub(crate) reorder: Option<f64>,
    /// Members to degrade (default: all).
    #[arg(value_name = "NODE")]
    pub(crate) members: Vec<String>,
    #[command(flatten)]
    dir: Dir,
}

#[derive(Args)]
pub struct PartitionArgs {
    #[command(subcommand)]
    pub(crate) shape: Shape,
    #[command(flatten)]
    dir: Dir,
}

/// Who may not hear whom.
#[derive(Subcommand)]
pub(crate) enum Shape {
    /// One node alone on one side (`leader` for the current leader).
    Isolate { node: String },
    /// A random minority and the majority.
    Halves {
        /// Seed for the random split (the same seed gives the same split).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Two halves joined through the middle node, which hears both.
    Bridge,
    /// Each node hears a majority, and no two nodes the same one.
    MajoritiesRing,
    /// TO stops hearing FROM; FROM still hears TO.
    OneWay { from: String, to: String },
}

/// `println!` that does not panic when stdout is a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub fn run(args: NemesisArgs) -> u8 {
    let result = match args.nodes {
        Some(file) => crate::remote_cmd::execute(&file, args.cmd, args.allow_remote),
        None => execute(args.cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            1
        }
    }
}

fn execute(cmd: NemesisCmd) -> anyhow::Result<u8> {
    match cmd {
        NemesisCmd::Partition(PartitionArgs { shape, dir }) => {
            let cluster = Cluster::load(&dir.dir)?;
            let net = LabNet::of(&cluster);
            let nodes = net.nodes();
            let grudge = match shape {
                Shape::Isolate { node } if node == "leader" => {
                    let leader = cluster
                        .leader()?
                        .context("the cluster has no leader to isolate")?;
                    Grudge::isolate(&nodes, leader.as_str())
                }
                Shape::Isolate { node } => Grudge::isolate(&nodes, &node),
                Shape::Halves { seed } => {
                    use rand::SeedableRng;
                    let mut rng = match seed {
                        Some(s) => rand::rngs::StdRng::seed_from_u64(s),
                        None => rand::rngs::StdRng::from_os_rng(),
                    };
                    Grudge::halves(&nodes, &mut rng)
                }
                Shape::Bridge => Grudge::bridge(&nodes),
                Shape::MajoritiesRing => Grudge::majorities_ring(&nodes),
                Shape::OneWay { from, to } => Grudge::one_way(&from, &to),
            };
            let start = Instant::now();
            let partition = net.partition(&grudge)?;
            let took = start.elapsed();
            partition.keep();
            out!("partitioned ({:.1} ms): {grudge}", took.as_secs_f64() * 1e3);
            out!(
                "heal with: splitbrain nemesis heal --dir {}",
                dir.dir.display()
            );
            Ok(0)
        }
        NemesisCmd::Delayer { args } => {
            Ok(u8::try_from(splitbrain_nemesis::delayer::main(&args)).unwrap_or(1))
        }
        NemesisCmd::Packet(a) => {
            let net = LabNet::load(&a.dir.dir)?.with_delayer(delayer_command()?);
            let spec = PacketSpec {
                loss: a.loss,
                rate_kbit: a.rate,
                delay_ms: a.delay,
                jitter_ms: a.jitter,
                duplicate: a.duplicate,
                reorder: a.reorder,
            };
            if spec == PacketSpec::default() {
                anyhow::bail!(
                    "say what to do: --loss, --rate, --delay, --jitter, --duplicate or --reorder"
                );
            }
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
            out!(
                "heal with: splitbrain nemesis heal --dir {}",
                a.dir.dir.display()
            );
            Ok(0)
        }
        NemesisCmd::Clock(_) => anyhow::bail!(
            "clock faults act on remote nodes here: give --nodes FILE (for the local lab, `splitbrain cluster up --sshd` writes DIR/nodes.toml)"
        ),
        NemesisCmd::Kill(t) => process_fault(ProcessKind::Kill, t),
        NemesisCmd::Pause(t) => process_fault(ProcessKind::Pause, t),
        NemesisCmd::Heal(dir) => {
            let net = LabNet::load(&dir.dir)?;
            let start = Instant::now();
            net.heal()?;
            out!(
                "healed ({:.1} ms): no partition or packet rules remain, every member runs",
                start.elapsed().as_secs_f64() * 1e3
            );
            Ok(0)
        }
        NemesisCmd::Status(dir) => {
            let net = LabNet::load(&dir.dir)?;
            let faults = net.recorded()?;
            match &faults.partition {
                Some(g) => out!("recorded partition: {g}"),
                None => out!("no partition recorded"),
            }
            if let Some((nodes, spec)) = &faults.packet {
                let names: Vec<&str> = nodes.iter().map(|s| s.as_str()).collect();
                out!(
                    "packet fault on {}: {}",
                    names.join(", "),
                    serde_json::to_string(spec).unwrap_or_default()
                );
            }
            for (what, nodes) in [("killed", &faults.killed), ("paused", &faults.paused)] {
                if !nodes.is_empty() {
                    let names: Vec<&str> = nodes.iter().map(|s| s.as_str()).collect();
                    out!("{what}: {}", names.join(", "));
                }
            }
            let members = net.partitioned_members()?;
            if members.is_empty() {
                out!("no member has partition rules");
            } else {
                out!("members with partition rules: {}", members.join(", "));
            }
            Ok(0)
        }
    }
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
    net.process_fault(kind, &chosen)?.keep();
    let verb = match kind {
        ProcessKind::Kill => "killed",
        ProcessKind::Pause => "paused",
    };
    out!(
        "{verb} {} ({:.1} ms)",
        chosen.join(", "),
        start.elapsed().as_secs_f64() * 1e3
    );
    out!(
        "heal with: splitbrain nemesis heal --dir {}",
        t.dir.dir.display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_deltas_take_a_sign_and_a_unit() {
        use super::parse_delta_ms as p;
        assert_eq!(p("-30s"), Ok(-30_000));
        assert_eq!(p("+1h"), Ok(3_600_000));
        assert_eq!(p("250ms"), Ok(250));
        assert_eq!(p("1d"), Ok(86_400_000));
        assert!(p("30").unwrap_err().contains("give a unit"));
        assert!(p("3w").unwrap_err().contains("unknown unit"));
    }
}
