//! `splitbrain test`'s settings: the flags, the same keys in a `--config` TOML
//! file, and their resolution into what a run needs, checked before anything
//! starts. Pure: no I/O but reading nothing at all (the caller reads the file), no
//! clock, no network, so that the fuzz target (`fuzz/fuzz_targets/test_config.rs`,
//! which includes this file) exercises exactly what the binary runs.
//!
//! ```text
//!   flags ─┐
//!          ├─ or ─► with_defaults ─► Settings::resolve ─► workload, model, checks,
//!   TOML  ─┘                                                TestConfig, faults, seed
//! ```

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use splitbrain_checker::{Consistency, ModelKind};
use splitbrain_control::{Mix, Schedule, TestConfig, Workload, WorkloadKind};
use splitbrain_nemesis::fault::FaultKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every flag is optional here so that a `--config` file can supply it; a flag given
/// on the command line wins over the file, and the file over the defaults.
#[derive(Args, Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[command(after_long_help = "\
With no --nodes, splitbrain starts a local 3-member etcd cluster (root and
`scripts/setup` needed), tests it, and takes it down.

Exit status: 0 valid, 1 invalid, 2 unknown, 254 bad usage or set-up failure,
130 interrupted twice (history kept, not checked).

Examples:
  splitbrain test
  splitbrain test --workload register --keys 20 --concurrency 16 --time-limit 60
  splitbrain test --nodes http://127.0.0.1:2379 --read-mode serializable
  splitbrain test --nodes nodes.toml --nemesis partition,kill,pause,clock
  splitbrain test --config workloads/etcd-v3-cas-register.toml")]
pub struct TestArgs {
    /// Node base URLs, comma separated, or a nodes file (remote nodes over SSH, for
    /// --nemesis; see nemesis/nodes.example.toml) [default: start a local etcd cluster].
    /// zk://ADDRESS:PORT URLs are ZooKeeper members: the zookeeper client follows.
    #[arg(long, value_delimiter = ',', value_name = "URL,...|FILE")]
    pub nodes: Option<Vec<String>>,

    /// The database of the local cluster when no --nodes is given: etcd [default],
    /// zookeeper, dqlite, redis (Redis with Sentinel), redis-webdis (the same with
    /// webdis in front of each member) or mariadb (a primary and asynchronous
    /// replicas) (the lab's database plug-ins; `splitbrain cluster up --db` takes the
    /// same names).
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,

    /// Members of the local cluster when no --nodes is given [default: 3].
    #[arg(long, value_name = "N")]
    pub cluster_size: Option<usize>,

    /// The protocol: etcd-v3 [default for etcd], etcd-v2, zookeeper [default for
    /// zookeeper], redis [default for redis], or http (a generic client described by
    /// --client-config; with --db dqlite the default is http with
    /// workloads/clients/dqlite.toml, with --db redis-webdis
    /// workloads/clients/webdis.toml).
    #[arg(long, value_name = "CLIENT")]
    pub client: Option<String>,

    /// The http client's description (TOML; see workloads/clients/). In a --config
    /// file, a relative path is relative to that file.
    #[arg(long, value_name = "FILE")]
    pub client_config: Option<PathBuf>,

    /// register, cas-register [default; register with --db dqlite], set (unique adds, read at the end on every
    /// node) or counter (set and counter need etcd-v3, or http with an `add`).
    #[arg(long, value_name = "NAME")]
    pub workload: Option<String>,

    /// Workers; worker w talks to node w mod nodes [default: 10].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Ops per second over all workers [default: unlimited].
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// Seconds of generation [default: 30, or none when --ops is given].
    #[arg(long, value_name = "SECS")]
    pub time_limit: Option<f64>,

    /// Stop after this many invocations.
    #[arg(long, value_name = "N")]
    pub ops: Option<u64>,

    /// Many independent keys, this many live at a time [default: one key].
    #[arg(long, value_name = "N")]
    pub keys: Option<u32>,

    /// With --keys: ops per key before it retires [default: 200].
    #[arg(long, value_name = "N")]
    pub ops_per_key: Option<u64>,

    /// Relative weights of read, write and cas, e.g. 2,1,1 [default: 1,1,1].
    #[arg(long, value_delimiter = ',', value_name = "R,W,C")]
    pub mix: Option<Vec<u32>>,

    /// etcd-v3: linearizable [default] or serializable; etcd-v2: quorum [default] or
    /// local; zookeeper: plain [default] or sync (sync, then read); redis and
    /// mariadb: primary [default] or replica (the worker's own member).
    #[arg(long, value_name = "MODE")]
    pub read_mode: Option<String>,

    /// redis: plain [default] or wait (each write is followed by WAIT for a
    /// majority's replicas; fewer acknowledgements: info).
    #[arg(long, value_name = "MODE")]
    pub write_mode: Option<String>,

    /// What to check: linearizable [default], sequential, causal (registers with
    /// unique values), eventual (final reads agree) or all.
    #[arg(long, value_name = "LEVEL")]
    pub consistency: Option<String>,

    /// Seconds before an unanswered op is `info` (reads: `fail`) [default: 5].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,

    /// Skip the final phase (quiet, then a read of every key on every node).
    #[arg(long)]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_final_reads: bool,

    /// Let --nodes name other machines (host names, addresses outside the local lab):
    /// your own test cluster, which splitbrain will load and, with --nemesis, fault.
    /// Without it only loopback and the local lab are reached, so a typo cannot send
    /// a workload or a partition to a machine you did not mean.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_remote: bool,

    /// Faults to inject while the workload runs, comma separated: partition, packet,
    /// kill, pause, clock (on the local cluster, or remote nodes given by a nodes file). Each fault is an op of the
    /// `nemesis` process in the history; all heal before the final reads.
    #[arg(long, value_delimiter = ',', value_name = "FAULT,...")]
    pub nemesis: Option<Vec<String>>,

    /// Which of each member's processes the kill and pause faults act on, comma
    /// separated: `server` (the database's own: etcd, redis-server, mariadbd, ...) or
    /// one the database runs beside it (redis and redis-webdis: `sentinel`;
    /// redis-webdis: `webdis`). With several, each fault draws one [default: server].
    /// The local lab only.
    #[arg(long, value_delimiter = ',', value_name = "PROCESS,...")]
    pub nemesis_process: Option<Vec<String>>,

    /// Quiet seconds before each fault [default: 5].
    #[arg(long, value_name = "SECS")]
    pub nemesis_interval: Option<f64>,

    /// How long each fault lasts, seconds [default: 5].
    #[arg(long, value_name = "SECS")]
    pub nemesis_duration: Option<f64>,

    /// For a database whose primary only an operator replaces (mariadb): seconds into
    /// a kill of the primary, or a partition cutting it off, before the nemesis fails
    /// over (promotes a replica; the old primary rejoins after the heal). Not shorter
    /// than the fault: no failover [default: 2].
    #[arg(long, value_name = "SECS")]
    pub nemesis_failover_after: Option<f64>,

    /// Replay: the seed of the workload's choices (which op, key and value each
    /// worker asks for) and of the fault schedule (kinds, order, targets)
    /// [default: a fresh one, recorded in config.toml and results.json].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// The store directory [default: store].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// The test's name in the store [default: WORKLOAD-CLIENT].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Also write JUnit XML to FILE: one test case per consistency level checked,
    /// failing with the counterexample.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub junit: Option<PathBuf>,

    /// Read any of these settings from a TOML file (keys as the flags, e.g.
    /// `concurrency = 10`, `nodes = ["http://..."]`).
    #[arg(long, value_name = "FILE.toml")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

impl TestArgs {
    /// Fills what the command line left out from `file`.
    pub fn or(self, file: TestArgs) -> TestArgs {
        TestArgs {
            nodes: self.nodes.or(file.nodes),
            db: self.db.or(file.db),
            cluster_size: self.cluster_size.or(file.cluster_size),
            client: self.client.or(file.client),
            client_config: self.client_config.or(file.client_config),
            workload: self.workload.or(file.workload),
            concurrency: self.concurrency.or(file.concurrency),
            rate: self.rate.or(file.rate),
            time_limit: self.time_limit.or(file.time_limit),
            ops: self.ops.or(file.ops),
            keys: self.keys.or(file.keys),
            ops_per_key: self.ops_per_key.or(file.ops_per_key),
            mix: self.mix.or(file.mix),
            read_mode: self.read_mode.or(file.read_mode),
            write_mode: self.write_mode.or(file.write_mode),
            consistency: self.consistency.or(file.consistency),
            timeout: self.timeout.or(file.timeout),
            no_final_reads: self.no_final_reads || file.no_final_reads,
            allow_remote: self.allow_remote || file.allow_remote,
            nemesis: self.nemesis.or(file.nemesis),
            nemesis_process: self.nemesis_process.or(file.nemesis_process),
            nemesis_interval: self.nemesis_interval.or(file.nemesis_interval),
            nemesis_duration: self.nemesis_duration.or(file.nemesis_duration),
            nemesis_failover_after: self.nemesis_failover_after.or(file.nemesis_failover_after),
            seed: self.seed.or(file.seed),
            store: self.store.or(file.store),
            name: self.name.or(file.name),
            junit: self.junit,
            config: self.config,
        }
    }

    /// Every default made explicit, so config.toml says exactly what ran.
    pub fn with_defaults(mut self) -> TestArgs {
        let db = self
            .nodes
            .as_deref()
            .and_then(db_of_urls)
            .unwrap_or(splitbrain_cluster::DEFAULT_DB);
        self.db.get_or_insert_with(|| db.into());
        self.cluster_size.get_or_insert(3);
        let (client, client_config, workload) = db_defaults(self.db.as_deref().unwrap_or_default());
        self.client.get_or_insert_with(|| client.into());
        if self.client.as_deref() == Some(client) && self.client_config.is_none() {
            self.client_config = client_config.map(PathBuf::from);
        }
        self.workload.get_or_insert_with(|| workload.into());
        self.concurrency.get_or_insert(10);
        if self.ops.is_none() {
            self.time_limit.get_or_insert(30.0);
        }
        if self.keys.is_some() {
            self.ops_per_key.get_or_insert(200);
        }
        self.mix.get_or_insert_with(|| vec![1, 1, 1]);
        let read_mode =
            splitbrain_control::ClientKind::named(self.client.as_deref().unwrap_or_default())
                .ok()
                .and_then(|k| k.default_read_mode());
        if self.read_mode.is_none() {
            self.read_mode = read_mode.map(str::to_owned);
        }
        self.consistency
            .get_or_insert_with(|| "linearizable".into());
        self.timeout.get_or_insert(5.0);
        if self.nemesis.as_ref().is_some_and(|n| !n.is_empty()) {
            self.nemesis_interval.get_or_insert(5.0);
            self.nemesis_duration.get_or_insert(5.0);
            if splitbrain_cluster::operator_failover(self.db.as_deref().unwrap_or_default()) {
                self.nemesis_failover_after
                    .get_or_insert(FAILOVER_AFTER.as_secs_f64());
            }
        }
        self.store.get_or_insert_with(|| "store".into());
        let name = format!(
            "{}-{}",
            self.workload.as_deref().unwrap_or_default(),
            self.client.as_deref().unwrap_or_default()
        );
        self.name.get_or_insert(name);
        self
    }
}

/// The description of `--db dqlite`'s default client, relative to the repository (the
/// binary carries a copy for when it runs elsewhere).
pub const DQLITE_CLIENT_CONFIG: &str = "workloads/clients/dqlite.toml";

/// The database that `--nodes` URLs name by their scheme, when every one names the
/// same: `zk://` is ZooKeeper, `mysql://` MariaDB, so `--nodes zk://...` needs no
/// `--db` or `--client`. `http://` says nothing (etcd, dqlite and any HTTP store
/// share it).
pub fn db_of_urls(nodes: &[String]) -> Option<&'static str> {
    [("zk://", "zookeeper"), ("mysql://", "mariadb")]
        .into_iter()
        .find(|(scheme, _)| !nodes.is_empty() && nodes.iter().all(|n| n.trim().starts_with(scheme)))
        .map(|(_, db)| db)
}
/// The description of `--db redis-webdis`'s default client (webdis in front of each
/// Redis member), likewise.
pub const WEBDIS_CLIENT_CONFIG: &str = "workloads/clients/webdis.toml";

/// The client, its description and the workload a database gets by default: the
/// client follows the database. dqlite's demo has no compare-and-set, hence `register`.
pub fn db_defaults(db: &str) -> (&'static str, Option<&'static str>, &'static str) {
    match db {
        "dqlite" => ("http", Some(DQLITE_CLIENT_CONFIG), "register"),
        // webdis's URLs have no compare-and-set.
        "redis-webdis" => ("http", Some(WEBDIS_CLIENT_CONFIG), "register"),
        // The client follows the database: etcd-v3 for etcd, zookeeper for zookeeper.
        _ => (
            splitbrain_control::ClientKind::default_for(db).map_or("etcd-v3", |k| k.name),
            None,
            "cas-register",
        ),
    }
}

/// A `--config` file's settings. `path` is for messages and for a relative
/// `client-config`, which is found next to the file.
pub fn from_toml(text: &str, path: &Path) -> Result<TestArgs> {
    let mut file = toml::from_str::<TestArgs>(text)
        .with_context(|| format!("{}: not a test configuration", path.display()))?;
    if let (Some(c), Some(dir)) = (&file.client_config, path.parent()) {
        if c.is_relative() {
            file.client_config = Some(dir.join(c));
        }
    }
    Ok(file)
}

/// A duration in seconds, checked: exit 254 before anything starts.
pub fn secs(flag: &str, s: Option<f64>) -> Result<Option<Duration>> {
    // Past a century nothing is a test any more, and Duration::from_secs_f64
    // panics on values it cannot hold.
    const MAX_SECS: f64 = 100.0 * 365.0 * 86_400.0;
    match s {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 && s <= MAX_SECS => {
            Ok(Some(Duration::from_secs_f64(s)))
        }
        Some(s) => {
            bail!("--{flag} must be a positive number of seconds (at most a century), not {s}")
        }
    }
}

/// How long into a fault that hit the primary the nemesis fails over, where the
/// database leaves that to an operator (MariaDB), unless `--nemesis-failover-after`
/// says otherwise: about what an operator with an alert and a script would take.
pub const FAILOVER_AFTER: Duration = Duration::from_secs(2);

/// The fault kinds and when they happen.
#[derive(Debug, Clone)]
pub struct Faults {
    pub kinds: Vec<FaultKind>,
    pub schedule: Schedule,
    /// The processes kill and pause draw from: `None` the database's own,
    /// `Some(name)` one beside it (`--nemesis-process`).
    pub processes: Vec<Option<String>>,
    /// How long into a fault that hit the primary the nemesis fails over, for a
    /// database that leaves that to an operator (`--nemesis-failover-after`).
    pub failover_after: Duration,
}

/// What resolved settings turn into: everything a run needs but the client, the
/// cluster and the nemesis, which need the machine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Every default explicit and the seed filled in: what config.toml records.
    pub args: TestArgs,
    pub workload: Workload,
    pub model: ModelKind,
    pub consistency: Consistency,
    /// The run's settings; `nodes` as given (empty: the local lab).
    pub config: TestConfig,
    /// `--nemesis`, when it names any fault.
    pub faults: Option<Faults>,
    /// The run's seed (`--seed`, or the fresh one it was given).
    pub seed: u64,
}

impl Settings {
    /// Checks and resolves `args` (defaults already applied); `fresh_seed` gives
    /// the seed when none was asked for.
    pub fn resolve(mut args: TestArgs, fresh_seed: impl FnOnce() -> u64) -> Result<Settings> {
        let kind: WorkloadKind = args
            .workload
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(anyhow::Error::msg)?;
        let model = match kind {
            WorkloadKind::Register => ModelKind::Register,
            WorkloadKind::Set => ModelKind::Set,
            WorkloadKind::Counter => ModelKind::Counter,
            _ => ModelKind::CasRegister,
        };
        let timeout = secs("timeout", args.timeout)?.unwrap_or(Duration::from_secs(5));
        let consistency: Consistency = args
            .consistency
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(anyhow::Error::msg)?;
        let mix = match args.mix.as_deref() {
            Some(&[read, write, cas])
                if read
                    .checked_add(write)
                    .and_then(|s| s.checked_add(cas))
                    .is_some_and(|s| s > 0) =>
            {
                Mix { read, write, cas }
            }
            Some(m) => bail!(
                "--mix takes three weights (read,write,cas) adding up to between 1 and {}, not {}",
                u32::MAX,
                m.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            ),
            None => Mix::default(),
        };
        let concurrency = args.concurrency.unwrap_or(10);
        if concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        if args.cluster_size == Some(0) {
            bail!("--cluster-size must be at least 1");
        }
        if args.keys == Some(0) {
            bail!("--keys must be at least 1");
        }
        if let Some(r) = args.rate {
            if !(r.is_finite() && r > 0.0) {
                bail!("--rate must be a positive number of ops per second");
            }
        }
        let seed = args.seed.unwrap_or_else(fresh_seed);
        if seed > splitbrain_control::seed::MAX {
            bail!(
                "--seed must be at most {} (config.toml records it as a TOML integer)",
                splitbrain_control::seed::MAX
            );
        }
        args.seed = Some(seed);
        let workload = Workload {
            kind,
            keys: args.keys,
            ops_per_key: args.ops_per_key.unwrap_or(200).max(1),
            mix,
        };
        let config = TestConfig {
            nodes: args.nodes.clone().unwrap_or_default(),
            concurrency,
            rate: args.rate,
            time_limit: secs("time-limit", args.time_limit)?,
            op_limit: args.ops,
            op_timeout: timeout,
            drain_timeout: timeout + Duration::from_secs(1),
            final_reads: (!args.no_final_reads).then_some(Duration::from_secs(1)),
        };
        let faults = match &args.nemesis {
            Some(kinds) if !kinds.is_empty() => {
                // The faults `--nemesis` can name, on the local lab and on remote
                // nodes alike.
                let kinds = kinds
                    .iter()
                    .map(|k| k.parse::<FaultKind>())
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let schedule = Schedule {
                    interval: secs("nemesis-interval", args.nemesis_interval)?
                        .unwrap_or(Duration::from_secs(5)),
                    duration: secs("nemesis-duration", args.nemesis_duration)?
                        .unwrap_or(Duration::from_secs(5)),
                };
                let failover_after = secs("nemesis-failover-after", args.nemesis_failover_after)?
                    .unwrap_or(FAILOVER_AFTER);
                let processes = match args.nemesis_process.as_deref() {
                    None | Some([]) => vec![None],
                    Some(names) => {
                        let mut out: Vec<Option<String>> = Vec::new();
                        for n in names {
                            let p = (n != "server").then(|| n.clone());
                            if !out.contains(&p) {
                                out.push(p);
                            }
                        }
                        out
                    }
                };
                if processes != [None]
                    && !kinds
                        .iter()
                        .any(|k| matches!(k, FaultKind::Kill | FaultKind::Pause))
                {
                    bail!(
                        "--nemesis-process names the processes kill and pause act on, \
                         but --nemesis has neither kill nor pause"
                    );
                }
                Some(Faults {
                    kinds,
                    schedule,
                    processes,
                    failover_after,
                })
            }
            _ => None,
        };
        Ok(Settings {
            args,
            workload,
            model,
            consistency,
            config,
            faults,
            seed,
        })
    }

    /// The seed of the workload's choices.
    pub fn workload_seed(&self) -> u64 {
        splitbrain_control::seed::derive(self.seed, splitbrain_control::seed::WORKLOAD)
    }

    /// The seed of the fault schedule.
    pub fn nemesis_seed(&self) -> u64 {
        splitbrain_control::seed::derive(self.seed, splitbrain_control::seed::NEMESIS)
    }
}
