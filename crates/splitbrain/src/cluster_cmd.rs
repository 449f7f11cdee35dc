//! `splitbrain cluster ...`: the command line over `splitbrain-cluster`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use splitbrain_cluster::{Cluster, Config, Process, Status, DEFAULT_DIR};

/// `println!` that does not panic when stdout is a closed pipe (`... | head -1`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Start a local cluster (etcd 3.4; ZooKeeper 3.8 with --db zookeeper; dqlite-demo with
    /// --db dqlite; Redis 7.0 with a sentinel per member with --db redis, and webdis in
    /// front of each with --db redis-webdis; MariaDB 10.11, a primary and replicas, with
    /// --db mariadb): one network namespace per member, each with its own address on a
    /// bridge, reachable from here.
    /// Returns once every member is healthy. Needs root, the database and iproute2
    /// (`sudo scripts/setup` installs them).
    Up(UpArgs),
    /// Stop every member and remove every namespace and interface of the cluster, then
    /// its state file. Idempotent; also cleans up after a crashed or killed `up`.
    /// With --all, every cluster splitbrain started on this machine that is still up,
    /// wherever its run directory is (for test runs that were killed).
    Down(DownArgs),
    /// Show members, processes, health, leader and term. Exits 1 if a member is not
    /// healthy.
    Status(DirArg),
    /// Print the members' client URLs, comma-separated (for scripts and `--endpoints`).
    Endpoints(DirArg),
    /// Print the current leader's node name (exits 1 if there is none).
    Leader(DirArg),
    /// SIGKILL a member's database process (etcd, ZooKeeper's JVM, redis-server,
    /// mariadbd). Its data stays; bring it back with `start`.
    Kill(ProcessArgs),
    /// Restart a killed member with the same command line and data; returns once it
    /// listens for clients.
    Start(NodeArgs),
    /// SIGSTOP a member's process: it stays in the cluster but answers nothing.
    Pause(ProcessArgs),
    /// SIGCONT a paused member.
    Resume(ProcessArgs),
    /// Exit 0 if a member's process is alive (running or paused), 1 if it is stopped:
    /// the `running` check of the lab's nodes file.
    Running(NodeArgs),
    /// MariaDB (primary-backup): promote the most advanced replica (highest
    /// gtid_slave_pos) of a primary that is dead or cut off from its replicas, and
    /// repoint the other replicas at it, as an operator would. Refuses while the
    /// primary is alive and replicated.
    Failover(DirArg),
    /// MariaDB: make a former primary that a failover replaced a replica of the
    /// current primary. Its data is initialised afresh (it may hold writes nobody
    /// else has, which replication will not merge) and copied from the primary.
    Rejoin(NodeArgs),
}

#[derive(Args)]
pub struct DirArg {
    /// Run directory holding the state file (cluster.json) and each member's data and log.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    dir: PathBuf,
}

#[derive(Args)]
pub struct DownArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Every cluster splitbrain started on this machine (registered in
    /// /run/splitbrain/labs), not only the one in --dir.
    #[arg(long, conflicts_with = "dir")]
    all: bool,
}

#[derive(Args)]
pub struct NodeArgs {
    /// The member: n1, n2, ... (see `splitbrain cluster status`).
    node: String,
    #[command(flatten)]
    dir: DirArg,
}

#[derive(Args)]
pub struct ProcessArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// One of the member's other processes instead of the database's own: redis and
    /// redis-webdis run a `sentinel` beside each server, redis-webdis a `webdis`.
    /// (`start` brings back whichever of a member's processes is down.)
    #[arg(long, value_name = "NAME")]
    process: Option<String>,
}

#[derive(Args)]
pub struct UpArgs {
    /// The database the members run (the lab's plug-ins: etcd, zookeeper, dqlite, redis,
    /// redis-webdis, mariadb).
    #[arg(long, value_name = "NAME", default_value = splitbrain_cluster::DEFAULT_DB)]
    db: String,
    /// Number of members (1 to 9).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u8).range(1..=9))]
    nodes: u8,
    #[command(flatten)]
    dir: DirArg,
    /// Use subnet 10.77.N.0/24 instead of the first free one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=254))]
    subnet: Option<u8>,
    /// Do not serve etcd's v2 keys API (it is on by default: `--enable-v2=true`).
    #[arg(long)]
    no_v2: bool,
    /// Turn raft pre-vote off (it is on by default). Without it, healing a partition
    /// forces a disruptive re-election.
    #[arg(long)]
    no_pre_vote: bool,
    /// Seconds to wait for every member to be healthy.
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Extra flag for every etcd member, e.g. `--etcd-arg=--heartbeat-interval=50`
    /// (repeatable).
    #[arg(long = "etcd-arg", value_name = "FLAG", allow_hyphen_values = true)]
    etcd_args: Vec<String>,
    /// Also run sshd inside each member's namespace (port 22 on its address, keys in
    /// DIR/ssh), and write DIR/nodes.toml: the members as remote nodes for
    /// `splitbrain nemesis --nodes` and `splitbrain test --nodes`.
    #[arg(long)]
    sshd: bool,
    /// Run every member under a clock supervisor, so that `splitbrain nemesis clock`
    /// can fault its wall clock (the host clock is never touched). x86-64 only.
    #[arg(long)]
    clock: bool,
}

/// Runs one `cluster` subcommand and returns the process exit code.
pub fn run(cmd: ClusterCmd) -> u8 {
    report(execute(cmd))
}

/// The exit code of a `cluster` or `nemesis` command: its own, or 1 after the
/// error, its causes and, where there is some, advice on what to run instead.
pub fn report(result: anyhow::Result<u8>) -> u8 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if let Some(advice) = advice(&e) {
                eprintln!("{advice}");
            }
            1
        }
    }
}

/// What the user can do about a library error: the library knows no command line,
/// so the flags are named here.
fn advice(e: &anyhow::Error) -> Option<String> {
    use splitbrain_cluster::Error as E;
    use splitbrain_nemesis::Error as N;
    if refused_remote(e) {
        return Some(ALLOW_REMOTE.to_owned());
    }
    if let Some(N::NoClockControl(dir)) = e.chain().find_map(|c| c.downcast_ref::<N>()) {
        return Some(format!(
            "  take it down with `splitbrain cluster down{d}` and start it with `splitbrain cluster up --clock{d}`",
            d = dir_flag(dir)
        ));
    }
    match cluster_error(e)? {
        E::NoCluster { dir, .. } => Some(elsewhere(dir)),
        E::AlreadyUp { dir, .. } => Some(format!(
            "  stop it with `splitbrain cluster down{}`, or choose another --dir",
            dir_flag(dir)
        )),
        E::StaleState { dir, .. } => Some(format!(
            "  clean up with `splitbrain cluster down{}`, then try again",
            dir_flag(dir)
        )),
        E::Inconsistent { dir, .. } => Some(format!(
            "  take it down with `splitbrain cluster down{}` and start a new one",
            dir_flag(dir)
        )),
        E::NotRunning { node } => Some(format!(
            "  start it with `splitbrain cluster start {node}` (add --dir DIR for a lab elsewhere), or `splitbrain nemesis heal`"
        )),
        E::NotOurs { path, .. } => Some(format!(
            "  give the lab another directory with --dir DIR, or move {} away",
            path.display()
        )),
        E::NoFreeSubnet => Some(
            "  list old clusters with `ip netns list`; `splitbrain cluster down --all` takes down every lab splitbrain started".to_owned(),
        ),
        _ => None,
    }
}

/// How to let splitbrain reach other machines (`test` adds its settings file's key).
pub const ALLOW_REMOTE: &str = "  to test a cluster on other machines, say so with --allow-remote";

/// The cluster crate's error in `e`'s chain: its own, or one the nemesis crate
/// carries.
fn cluster_error(e: &anyhow::Error) -> Option<&splitbrain_cluster::Error> {
    use splitbrain_nemesis::Error as N;
    e.chain().find_map(|c| {
        c.downcast_ref().or_else(|| match c.downcast_ref() {
            Some(N::Cluster(e)) => Some(e),
            Some(N::Refused { reason, .. }) => Some(&**reason),
            _ => None,
        })
    })
}

/// Whether `e` is a refusal to reach another machine, which the user did not allow.
pub fn refused_remote(e: &anyhow::Error) -> bool {
    matches!(
        e.chain().find_map(|c| c.downcast_ref()),
        Some(splitbrain_nemesis::Error::RedirectNotAllowed { .. })
    ) || matches!(
        cluster_error(e),
        Some(splitbrain_cluster::Error::RemoteNotAllowed { .. })
    )
}

/// Where to look when `dir` holds no cluster: a test's lab lives in its run's
/// directory, and the registry knows every lab on this machine.
fn elsewhere(dir: &Path) -> String {
    let labs = other_labs(dir);
    if labs.is_empty() {
        return format!(
            "  no other lab is registered on this machine ({}); start one with `splitbrain cluster up{}`",
            splitbrain_cluster::registry_dir().display(),
            dir_flag(dir)
        );
    }
    let mut s = String::from(
        "  labs on this machine (a `splitbrain test` keeps its lab in its run's directory):
",
    );
    for l in &labs {
        s.push_str(&format!("    {}\n", l.display()));
    }
    s.push_str(
        "  heal all their faults: sudo splitbrain nemesis heal --all\n  take them all down:    sudo splitbrain cluster down --all\n  or name one with --dir DIR",
    );
    s
}

/// Registered labs other than `dir`'s that still have a state file.
fn other_labs(dir: &Path) -> Vec<PathBuf> {
    splitbrain_cluster::registered()
        .into_iter()
        .filter(|l| l != dir && l.join(splitbrain_cluster::STATE_FILE).exists())
        .collect()
}

fn execute(cmd: ClusterCmd) -> anyhow::Result<u8> {
    match cmd {
        ClusterCmd::Up(args) => up(args),
        ClusterCmd::Down(DownArgs { all: true, .. }) => {
            let results = splitbrain_cluster::down_all()?;
            let mut failed = false;
            for (dir, result) in &results {
                match result {
                    Ok(true) => out!("cluster in {} is down", dir.display()),
                    Ok(false) => out!("no cluster in {} any more", dir.display()),
                    Err(e) => {
                        failed = true;
                        eprintln!("error: {}: {e}", dir.display());
                    }
                }
            }
            if results.is_empty() {
                out!("no clusters registered: nothing to do");
            }
            Ok(u8::from(failed))
        }
        ClusterCmd::Down(DownArgs {
            dir: DirArg { dir },
            ..
        }) => {
            if splitbrain_cluster::down(&dir)? {
                out!("cluster in {} is down", dir.display());
            } else {
                out!("no cluster in {}: nothing to do", dir.display());
                if !other_labs(&dir).is_empty() {
                    out!("{}", elsewhere(&dir));
                }
            }
            Ok(0)
        }
        ClusterCmd::Status(DirArg { dir }) => {
            let status = Cluster::load(&dir)?.status()?;
            out!("{}", render_status(&status, &dir).trim_end());
            Ok(if status.healthy() { 0 } else { 1 })
        }
        ClusterCmd::Endpoints(DirArg { dir }) => {
            out!("{}", Cluster::load(&dir)?.endpoints().join(","));
            Ok(0)
        }
        ClusterCmd::Leader(DirArg { dir }) => match Cluster::load(&dir)?.leader()? {
            Some(leader) => {
                out!("{leader}");
                Ok(0)
            }
            None => {
                eprintln!("no leader");
                Ok(1)
            }
        },
        ClusterCmd::Kill(a) => process_op(a, "killed {} (SIGKILL)", |c, n, p| c.kill_process(n, p)),
        ClusterCmd::Start(a) => node_op(a, "started {}", |c, n| c.start(n)),
        ClusterCmd::Pause(a) => {
            process_op(a, "paused {} (SIGSTOP)", |c, n, p| c.pause_process(n, p))
        }
        ClusterCmd::Resume(a) => {
            process_op(a, "resumed {} (SIGCONT)", |c, n, p| c.resume_process(n, p))
        }
        ClusterCmd::Rejoin(a) => node_op(
            a,
            "{} rejoined as a replica of the primary (its data initialised afresh)",
            |c, n| c.rejoin(n),
        ),
        ClusterCmd::Failover(DirArg { dir }) => {
            let f = Cluster::load(&dir)?.failover()?;
            let positions: Vec<String> = f
                .positions
                .iter()
                .map(|(n, p)| format!("{n} at {}", if p.is_empty() { "nothing" } else { p }))
                .collect();
            out!(
                "promoted {} (epoch {}) in place of {}; candidates: {}; repointed: {}{}",
                f.new,
                f.epoch,
                f.old,
                positions.join(", "),
                if f.repointed.is_empty() {
                    "none".to_owned()
                } else {
                    f.repointed
                        .iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                if f.fenced {
                    format!("; {} answered and was made read-only", f.old)
                } else {
                    String::new()
                }
            );
            Ok(0)
        }
        ClusterCmd::Running(a) => {
            let cluster = Cluster::load(&a.dir.dir)?;
            let name = cluster.node(&a.node)?.name.clone();
            let process = cluster
                .processes()?
                .into_iter()
                .find(|(n, _)| *n == name)
                .map(|(_, p)| p);
            match process {
                Some(p @ (Process::Running { .. } | Process::Paused { .. })) => {
                    out!("{name}: {p:?}");
                    Ok(0)
                }
                _ => {
                    out!("{name}: stopped");
                    Ok(1)
                }
            }
        }
    }
}

/// One node operation, then `done` with the node's name for `{}`.
fn node_op(
    a: NodeArgs,
    done: &str,
    op: impl FnOnce(&Cluster, &str) -> splitbrain_cluster::Result<()>,
) -> anyhow::Result<u8> {
    op(&Cluster::load(&a.dir.dir)?, &a.node)?;
    out!("{}", done.replace("{}", &a.node));
    Ok(0)
}

/// A kill, pause or resume of a member's process; "server" names the database's own.
fn process_op(
    a: ProcessArgs,
    done: &str,
    op: impl FnOnce(&Cluster, &str, Option<&str>) -> splitbrain_cluster::Result<()>,
) -> anyhow::Result<u8> {
    let process = a.process.as_deref().filter(|p| *p != "server");
    op(&Cluster::load(&a.node.dir.dir)?, &a.node.node, process)?;
    let what = match process {
        Some(p) => format!("the {p} of {}", a.node.node),
        None => a.node.node.clone(),
    };
    out!("{}", done.replace("{}", &what));
    Ok(0)
}

fn up(args: UpArgs) -> anyhow::Result<u8> {
    let mut config = Config::in_dir(&args.dir.dir);
    config.db = args.db;
    config.nodes = usize::from(args.nodes);
    config.subnet = args.subnet;
    config.enable_v2 = !args.no_v2;
    config.pre_vote = !args.no_pre_vote;
    config.health_timeout = Duration::from_secs(args.timeout);
    config.extra_etcd_args = args.etcd_args;
    config.sshd = args.sshd;
    if args.clock {
        config.clock_supervisor = Some(crate::nemesis_cmd::clock_supervisor_command()?);
    }
    if args.sshd {
        // Before anything starts: the lab's nodes file would replace a user's own.
        crate::nodes_file::check_lab_nodes_file(&args.dir.dir)?;
    }
    let started = Instant::now();
    let cluster = Cluster::up(config)?;
    let took = started.elapsed();
    let nodes_file = crate::nodes_file::write_lab_nodes_file(&cluster)?;
    let leader = cluster
        .leader()
        .ok()
        .flatten()
        .map_or_else(|| "none yet".to_owned(), |l| l.to_string());
    let dir_flag = dir_flag(&args.dir.dir);
    out!(
        "cluster up in {:.2}s: {} members on {}, leader {leader}",
        took.as_secs_f64(),
        cluster.nodes().len(),
        cluster.subnet()
    );
    out!("endpoints: {}", cluster.endpoints().join(","));
    out!(
        "state: {}  logs: {}/nI/{}",
        cluster.state_file().display(),
        cluster.dir().display(),
        cluster
            .nodes()
            .first()
            .and_then(|n| n.log_file.file_name())
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    if let Some(f) = nodes_file {
        out!(
            "sshd in every member; nodes file for remote faults: {}",
            f.display()
        );
    }
    if cluster.has_clock_control() {
        out!("clock control: splitbrain nemesis clock bump|skew|strobe|reset{dir_flag}");
    }
    out!("stop it with: splitbrain cluster down{dir_flag}");
    Ok(0)
}

fn dir_flag(dir: &Path) -> String {
    if dir == Path::new(DEFAULT_DIR) {
        String::new()
    } else {
        format!(" --dir {}", dir.display())
    }
}

fn render_status(status: &Status, dir: &Path) -> String {
    // Right after a kill or a pause the others still name the old leader until their
    // election timeout: say so rather than show a dead leader as if it led.
    let leader = match &status.leader {
        None => "none".to_owned(),
        Some(l) => match status.members.iter().find(|m| m.node.name == *l) {
            Some(m) if !matches!(m.process, Process::Running { .. }) => {
                let state = match m.process {
                    Process::Paused { .. } => "paused",
                    _ => "stopped",
                };
                format!("{l} ({state}; the others have not noticed yet)")
            }
            _ => l.to_string(),
        },
    };
    let mut out = format!(
        "cluster {} in {}: leader {leader}, term {}, {}\n",
        status.subnet,
        dir.display(),
        status
            .term
            .map_or_else(|| "-".to_owned(), |t| t.to_string()),
        if status.healthy() {
            "healthy"
        } else {
            "NOT healthy"
        },
    );
    let mut rows = vec![[
        "NODE",
        "ADDRESS",
        "PROCESS",
        "HEALTH",
        "LEADER",
        "TERM",
        "INDEX",
        "MEMBER ID",
    ]
    .map(String::from)];
    for m in &status.members {
        let dash = || "-".to_owned();
        let process = match m.process {
            Process::Running { pid } => format!("running {pid}"),
            Process::Paused { pid } => format!("paused {pid}"),
            _ => "stopped".to_owned(),
        };
        let health = if m.healthy {
            "healthy".to_owned()
        } else {
            format!("no: {}", m.error.as_deref().unwrap_or("unhealthy"))
        };
        let star = if status.leader.as_ref() == Some(&m.node.name) {
            " *"
        } else {
            ""
        };
        rows.push([
            format!("{}{star}", m.node.name),
            m.node.addr.to_string(),
            process,
            health,
            m.leader.as_ref().map_or_else(dash, |l| l.to_string()),
            m.term.map_or_else(dash, |t| t.to_string()),
            m.raft_index.map_or_else(dash, |i| i.to_string()),
            m.member_id.map_or_else(dash, |id| format!("{id:x}")),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
