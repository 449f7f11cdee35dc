//! The arguments of `splitbrain nemesis ...`, shared by the lab's commands
//! (`nemesis_cmd.rs`) and the remote nodes' (`remote_cmd.rs`, with `--nodes`):
//! neither imports the other, `main.rs` picks one.

use clap::{Args, Subcommand};
use splitbrain_cluster::DEFAULT_DIR;
use splitbrain_nemesis::grudge::Grudge;
use splitbrain_nemesis::packet::PacketSpec;
use std::path::PathBuf;

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
    /// Move clocks until `clock reset` or `heal`. On the local cluster: members' wall
    /// clocks (bump, skew, strobe, reset) through their clock supervisors; the host
    /// clock is never touched and monotonic time stays real; needs `splitbrain cluster
    /// up --clock`. With `--nodes`: `bump DELTA` and `reset`, as the nodes file says
    /// (`date` or commands of its own).
    Clock(ClockArgs),
    /// Undo every fault: remove our partition rules from every member, restart
    /// stopped members, resume paused ones, set every clock back to real time.
    /// Idempotent; works after the harness that made the faults was killed. With
    /// --all, in every lab splitbrain started on this machine (a killed test's too).
    Heal(HealArgs),
    /// Show the recorded faults, which members have rules of ours, and each
    /// member's clock.
    Status(Dir),
    /// Internal: the user-space packet delayer that `packet --delay` runs inside a
    /// member's namespace on kernels without netem.
    #[command(hide = true)]
    Delayer {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Internal: `clock-supervisor --offset-file FILE -- PROGRAM ARGS...` runs
    /// PROGRAM with its wall clock faked as FILE says (what `cluster up --clock`
    /// starts each member under).
    #[command(hide = true)]
    ClockSupervisor {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Args)]
pub struct ClockArgs {
    #[command(subcommand)]
    pub(crate) change: ClockCmd,
    #[command(flatten)]
    pub(crate) dir: Dir,
}

/// What to do to the clocks. NODE: member names (default: every member); with
/// `--nodes`, also `leader`, `minority` or `majority`.
#[derive(Subcommand)]
pub(crate) enum ClockCmd {
    /// Jump the clock by DELTA from wherever it is now: `1d`, `-1h`, `+30s`, `250ms`.
    Bump {
        /// How far: `1d`, `-1h`, `+30s`, `250ms` (units d, h, m, s, ms, us, ns).
        #[arg(allow_hyphen_values = true, value_parser = parse_delta)]
        delta: i64,
        /// Members to change, e.g. `n1 n3` (default: every member).
        #[arg(value_name = "NODE")]
        members: Vec<String>,
    },
    /// Run the clock at RATE from now on: a factor (`2x`, `0.5x`) or parts per
    /// million (`+500ppm`, `-200ppm`).
    Skew {
        /// Fake seconds per real second: `2x`, `0.5x`, `+500ppm`, `-200ppm`.
        #[arg(allow_hyphen_values = true, value_parser = parse_rate)]
        rate: f64,
        /// Members to change, e.g. `n1 n3` (default: every member).
        #[arg(value_name = "NODE")]
        members: Vec<String>,
    },
    /// Flip the clock between +DELTA and where it is now, every PERIOD.
    Strobe {
        /// How far each flip jumps, e.g. `5s` or `-200ms`.
        #[arg(long, allow_hyphen_values = true, value_parser = parse_delta)]
        delta: i64,
        /// Time between flips, e.g. `100ms`.
        #[arg(long, value_parser = parse_period)]
        period: i64,
        /// Members to change, e.g. `n1 n3` (default: every member).
        #[arg(value_name = "NODE")]
        members: Vec<String>,
    },
    /// Set the clock back to real time.
    Reset {
        /// Members to reset (default: every member).
        #[arg(value_name = "NODE")]
        members: Vec<String>,
    },
}

/// A clock jump, in nanoseconds: at most what a remote node takes
/// ([`MAX_CLOCK_OFFSET_MS`](splitbrain_nemesis::remote::MAX_CLOCK_OFFSET_MS)), said
/// while parsing rather than after connecting.
pub(crate) fn parse_delta(s: &str) -> Result<i64, String> {
    const MAX_NS: i64 = splitbrain_nemesis::remote::MAX_CLOCK_OFFSET_MS * 1_000_000;
    match splitbrain_clock::parse_duration(s)? {
        d if d.abs() <= MAX_NS => Ok(d),
        _ => Err(format!("`{s}`: a clock jump is at most 3650d either way")),
    }
}

pub(crate) fn parse_rate(s: &str) -> Result<f64, String> {
    splitbrain_clock::parse_rate(s)
}

pub(crate) fn parse_period(s: &str) -> Result<i64, String> {
    match splitbrain_clock::parse_duration(s)? {
        p if p >= 1_000_000 => Ok(p),
        _ => Err(format!("`{s}`: the period must be at least 1ms")),
    }
}

#[derive(Args)]
pub struct Dir {
    /// Run directory of the cluster (as given to `splitbrain cluster up`).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR, global = true)]
    pub(crate) dir: PathBuf,
}

#[derive(Args)]
pub struct Targets {
    /// A node name, or `leader`, `minority` (random, fewer than half) or `majority`.
    pub(crate) target: String,
    /// Which of the member's processes: the database's own (the default), or one it
    /// runs beside it (redis: `sentinel`; redis-webdis: `sentinel`, `webdis`). The
    /// local cluster only.
    #[arg(long, value_name = "NAME")]
    pub(crate) process: Option<String>,
    #[command(flatten)]
    pub(crate) dir: Dir,
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
    pub(crate) dir: Dir,
}

impl PacketArgs {
    /// The fault these flags ask for; none at all is an error naming them.
    pub(crate) fn spec(&self) -> anyhow::Result<PacketSpec> {
        let spec = PacketSpec {
            loss: self.loss,
            rate_kbit: self.rate,
            delay_ms: self.delay,
            jitter_ms: self.jitter,
            duplicate: self.duplicate,
            reorder: self.reorder,
        };
        if spec == PacketSpec::default() {
            anyhow::bail!(
                "say what to do: --loss, --rate, --delay, --jitter, --duplicate or --reorder"
            );
        }
        Ok(spec)
    }
}

#[derive(Args)]
pub struct PartitionArgs {
    #[command(subcommand)]
    pub(crate) shape: Shape,
    #[command(flatten)]
    pub(crate) dir: Dir,
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

impl Shape {
    /// The grudge on `nodes`; `leader` is asked only for `isolate leader`.
    pub(crate) fn grudge(
        self,
        nodes: &[String],
        leader: impl FnOnce() -> anyhow::Result<String>,
    ) -> anyhow::Result<Grudge> {
        Ok(match self {
            Shape::Isolate { node } if node == "leader" => Grudge::isolate(nodes, &leader()?),
            Shape::Isolate { node } => Grudge::isolate(nodes, &node),
            Shape::Halves { seed } => {
                use rand::SeedableRng;
                let mut rng = match seed {
                    Some(s) => rand::rngs::StdRng::seed_from_u64(s),
                    None => rand::rngs::StdRng::from_os_rng(),
                };
                Grudge::halves(nodes, &mut rng)
            }
            Shape::Bridge => Grudge::bridge(nodes),
            Shape::MajoritiesRing => Grudge::majorities_ring(nodes),
            Shape::OneWay { from, to } => Grudge::one_way(&from, &to),
        })
    }
}

#[derive(Args)]
pub struct HealArgs {
    #[command(flatten)]
    pub(crate) dir: Dir,
    /// Every lab splitbrain started on this machine (registered in
    /// /run/splitbrain/labs), not only the one in --dir.
    #[arg(long)]
    pub(crate) all: bool,
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_jumps_are_bounded() {
        use super::parse_delta as p;
        assert_eq!(p("-30s"), Ok(-30_000_000_000));
        assert_eq!(p("+1h"), Ok(3_600_000_000_000));
        assert_eq!(p("3650d"), Ok(3650 * 86_400_000_000_000));
        assert!(p("3651d").unwrap_err().contains("at most 3650d"));
        assert!(p("-100000d").is_err());
        assert!(p("30").unwrap_err().contains("no unit"));
    }
}
