//! `splitbrain test`: run a workload against a cluster, record the history, check it.
//!
//! With no `--nodes`, it brings up the local etcd lab (splitbrain-cluster), runs
//! against it and takes it down again, whatever happens. Every run gets its own
//! directory in the store:
//!
//! ```text
//!   store/
//!     latest -> cas-register-etcd-v3/20261122T063012.123Z
//!     cas-register-etcd-v3/20261122T063012.123Z/
//!       history.jsonl   written as ops happen
//!       config.toml     the effective configuration (flags, file and defaults)
//!       results.json    the checker's report and the run's counts (docs/results.md)
//!       report.html     the report to look at (self-contained), latency.svg, rate.svg
//!       test.log        what the run did, with times
//!       cluster/        the local cluster's member logs (embedded default only)
//! ```

use crate::check_cmd::EXIT_BAD_INPUT;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use splitbrain_checker::{self as checker, Consistency, ModelKind, Options};
use splitbrain_control::etcd_v3::{EtcdV3, ReadMode};
use splitbrain_control::http::{HttpClient, HttpConfig};
use splitbrain_control::{Client, Generator, Harness, Mix, Progress, TestConfig, Workload};
use splitbrain_history::History;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Exit status after a second Ctrl-C: the history is on disk, nothing was checked.
pub const EXIT_ABORTED: u8 = 130;

/// Every flag is optional here so that a `--config` file can supply it; a flag given
/// on the command line wins over the file, and the file over the defaults.
#[derive(Args, Debug, Default, Clone, Serialize, Deserialize)]
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
    #[arg(long, value_delimiter = ',', value_name = "URL,...|FILE")]
    pub nodes: Option<Vec<String>>,

    /// Members of the local cluster when no --nodes is given [default: 3].
    #[arg(long, value_name = "N")]
    pub cluster_size: Option<usize>,

    /// The protocol: etcd-v3 [default], etcd-v2, or http (a generic client described
    /// by --client-config).
    #[arg(long, value_name = "CLIENT")]
    pub client: Option<String>,

    /// The http client's description (TOML; see workloads/clients/). In a --config
    /// file, a relative path is relative to that file.
    #[arg(long, value_name = "FILE")]
    pub client_config: Option<PathBuf>,

    /// register, cas-register [default], set (unique adds, read at the end on every
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
    /// local.
    #[arg(long, value_name = "MODE")]
    pub read_mode: Option<String>,

    /// What to check: linearizable [default], sequential, eventual (final reads
    /// agree) or all.
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

    /// Quiet seconds before each fault [default: 5].
    #[arg(long, value_name = "SECS")]
    pub nemesis_interval: Option<f64>,

    /// How long each fault lasts, seconds [default: 5].
    #[arg(long, value_name = "SECS")]
    pub nemesis_duration: Option<f64>,

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
    fn or(self, file: TestArgs) -> TestArgs {
        TestArgs {
            nodes: self.nodes.or(file.nodes),
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
            consistency: self.consistency.or(file.consistency),
            timeout: self.timeout.or(file.timeout),
            no_final_reads: self.no_final_reads || file.no_final_reads,
            allow_remote: self.allow_remote || file.allow_remote,
            nemesis: self.nemesis.or(file.nemesis),
            nemesis_interval: self.nemesis_interval.or(file.nemesis_interval),
            nemesis_duration: self.nemesis_duration.or(file.nemesis_duration),
            store: self.store.or(file.store),
            name: self.name.or(file.name),
            junit: self.junit,
            config: self.config,
        }
    }

    /// Every default made explicit, so config.toml says exactly what ran.
    fn with_defaults(mut self) -> TestArgs {
        self.cluster_size.get_or_insert(3);
        self.client.get_or_insert_with(|| "etcd-v3".into());
        self.workload.get_or_insert_with(|| "cas-register".into());
        self.concurrency.get_or_insert(10);
        if self.ops.is_none() {
            self.time_limit.get_or_insert(30.0);
        }
        if self.keys.is_some() {
            self.ops_per_key.get_or_insert(200);
        }
        self.mix.get_or_insert_with(|| vec![1, 1, 1]);
        let read_mode = match self.client.as_deref() {
            Some("etcd-v2") => Some("quorum"),
            Some("etcd-v3") => Some("linearizable"),
            _ => None,
        };
        if self.read_mode.is_none() {
            self.read_mode = read_mode.map(str::to_owned);
        }
        self.consistency
            .get_or_insert_with(|| "linearizable".into());
        self.timeout.get_or_insert(5.0);
        if self.nemesis.as_ref().is_some_and(|n| !n.is_empty()) {
            self.nemesis_interval.get_or_insert(5.0);
            self.nemesis_duration.get_or_insert(5.0);
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

/// A setting that makes no sense: exit 254 before anything starts.
fn secs(what: &str, s: Option<f64>) -> Result<Option<Duration>> {
    match s {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => bail!("--{what} must be a positive number of seconds, not {s}"),
    }
}

/// What a resolved configuration turns into.
struct Plan {
    args: TestArgs,
    workload: Workload,
    model: ModelKind,
    consistency: Consistency,
    client: Arc<dyn Client>,
    config: TestConfig,
}

/// A protocol client and what it supports.
struct Chosen {
    client: Arc<dyn Client>,
    http: Option<HttpConfig>,
}

impl Chosen {
    fn supports(&self, f: &str) -> bool {
        self.http.as_ref().is_none_or(|h| h.supports(f))
    }
}

fn client(args: &TestArgs, timeout: Duration) -> Result<Chosen> {
    let mode = args.read_mode.as_deref();
    let http = |config: HttpConfig| -> Result<Chosen> {
        let client = HttpClient::new(config.clone(), timeout)?;
        Ok(Chosen {
            client: Arc::new(client),
            http: Some(config),
        })
    };
    match args.client.as_deref().unwrap_or_default() {
        "etcd-v3" => {
            let read_mode = match mode {
                Some("linearizable") | None => ReadMode::Linearizable,
                Some("serializable") => ReadMode::Serializable,
                Some(m) => bail!("unknown etcd-v3 read mode `{m}` (linearizable or serializable)"),
            };
            Ok(Chosen {
                client: Arc::new(EtcdV3::new(read_mode, timeout)?),
                http: None,
            })
        }
        "etcd-v2" => match mode {
            Some("quorum") | None => http(HttpConfig::etcd_v2(true)),
            Some("local") => http(HttpConfig::etcd_v2(false)),
            Some(m) => bail!("unknown etcd-v2 read mode `{m}` (quorum or local)"),
        },
        "http" => {
            if let Some(m) = mode {
                bail!("--read-mode {m}: the http client reads as its --client-config says");
            }
            let Some(path) = &args.client_config else {
                bail!("--client http needs --client-config FILE.toml (see workloads/clients/)");
            };
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            http(HttpConfig::from_toml(&text).with_context(|| path.display().to_string())?)
        }
        c => bail!("unknown client `{c}` (known: etcd-v3, etcd-v2, http)"),
    }
}

fn plan(args: TestArgs) -> Result<Plan> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let mut file = toml::from_str::<TestArgs>(&text)
                .with_context(|| format!("{}: not a test configuration", path.display()))?;
            // A client description named in a file is found next to that file.
            if let (Some(c), Some(dir)) = (&file.client_config, path.parent()) {
                if c.is_relative() {
                    file.client_config = Some(dir.join(c));
                }
            }
            file
        }
        None => TestArgs::default(),
    };
    let args = args.or(file).with_defaults();
    let kind: splitbrain_control::WorkloadKind = args
        .workload
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(anyhow::Error::msg)?;
    use splitbrain_control::WorkloadKind as W;
    let model = match kind {
        W::Register => ModelKind::Register,
        W::Set => ModelKind::Set,
        W::Counter => ModelKind::Counter,
        _ => ModelKind::CasRegister,
    };
    let timeout = secs("timeout", args.timeout)?.unwrap_or(Duration::from_secs(5));
    let client = client(&args, timeout)?;
    let consistency: Consistency = args
        .consistency
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(anyhow::Error::msg)?;
    let mix = match args.mix.as_deref() {
        Some(&[read, write, cas]) if read + write + cas > 0 => Mix { read, write, cas },
        Some(m) => bail!("--mix takes three weights (read,write,cas), not {m:?}"),
        None => Mix::default(),
    };
    let concurrency = args.concurrency.unwrap_or(10);
    if concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.keys == Some(0) {
        bail!("--keys must be at least 1");
    }
    if let Some(r) = args.rate {
        if !(r.is_finite() && r > 0.0) {
            bail!("--rate must be a positive number of ops per second");
        }
    }
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
    let needed: &[&str] = match kind {
        W::Register => &["read", "write"],
        W::Set | W::Counter => &["read", "add"],
        _ => &["read", "write", "cas"],
    };
    if let Some(missing) = needed.iter().find(|f| !client.supports(f)) {
        bail!(
            "the {} client has no `{missing}`, which the {} workload needs",
            args.client.as_deref().unwrap_or_default(),
            kind.name()
        );
    }
    Ok(Plan {
        args,
        workload,
        model,
        consistency,
        client: client.client,
        config,
    })
}

pub fn run(args: TestArgs) -> u8 {
    let plan = match plan(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e:#}");
            return EXIT_BAD_INPUT;
        }
    };
    match run_plan(plan) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_BAD_INPUT
        }
    }
}

/// The run's log: test.log, with seconds since the start; the important lines also
/// go to stderr.
struct Log {
    file: Mutex<File>,
    start: Instant,
}

impl Log {
    fn line(&self, msg: &str) {
        let t = self.start.elapsed().as_secs_f64();
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{t:9.3} {msg}");
        }
    }

    fn say(&self, msg: &str) {
        self.line(msg);
        eprintln!("{msg}");
    }
}

fn run_plan(mut plan: Plan) -> Result<u8> {
    let args = &plan.args;
    let store = args.store.clone().unwrap_or_else(|| "store".into());
    let name = args.name.clone().unwrap_or_default();
    let stamp = timestamp(SystemTime::now());
    let dir = store.join(&name).join(&stamp);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    point_latest(&store, &Path::new(&name).join(&stamp))?;
    let log = Log {
        file: Mutex::new(File::create(dir.join("test.log"))?),
        start: Instant::now(),
    };
    log.line(&format!("splitbrain test {name}, run {stamp}"));
    // Ctrl-C is ours from here on, also while the cluster comes up.
    let harness = Harness::new()?;
    let stop = harness.stop().clone();

    // `--nodes nodes.toml`: remote nodes over SSH; the workload uses their client URLs.
    let mut remote = crate::remote_nemesis::nodes_file_arg(args.nodes.as_deref())?;
    if let Some(file) = &mut remote {
        file.allow_remote = args.allow_remote;
    }
    let by_nodes_file = remote.is_some();
    if let Some(file) = &remote {
        plan.config.nodes = file.client_urls()?;
    }
    // Faults are checked before anything starts.
    let fault_kinds = match &args.nemesis {
        Some(kinds) if !kinds.is_empty() && remote.is_none() => {
            if !plan.config.nodes.is_empty() {
                bail!(
                    "--nemesis with --nodes URL,... cannot reach the nodes: give a nodes file instead (--nodes nodes.toml, see nemesis/nodes.example.toml) to fault them over SSH"
                );
            }
            let kinds = kinds
                .iter()
                .map(|k| k.parse::<crate::lab_nemesis::FaultKind>())
                .collect::<std::result::Result<Vec<_>, String>>()
                .map_err(anyhow::Error::msg)?;
            let schedule = splitbrain_control::Schedule {
                interval: secs("--nemesis-interval", args.nemesis_interval)?
                    .unwrap_or(Duration::from_secs(5)),
                duration: secs("--nemesis-duration", args.nemesis_duration)?
                    .unwrap_or(Duration::from_secs(5)),
            };
            Some((kinds, schedule))
        }
        _ => None,
    };
    // Every remote node is connected before the run: an unreachable one stops it here.
    let remote_nemesis = match (&args.nemesis, remote) {
        (Some(kinds), Some(file)) if !kinds.is_empty() => {
            let schedule = splitbrain_control::Schedule {
                interval: secs("--nemesis-interval", args.nemesis_interval)?
                    .unwrap_or(Duration::from_secs(5)),
                duration: secs("--nemesis-duration", args.nemesis_duration)?
                    .unwrap_or(Duration::from_secs(5)),
            };
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            if kinds.iter().any(|k| k == "clock") {
                // Before any SSH: `date` on this machine is never an option.
                splitbrain_nemesis::remote::refuse_date_here(&file, &[])?;
            }
            if kinds.iter().any(|k| k == "partition") {
                // Nodes sharing an address (loopback port mappings) cannot be
                // partitioned: say so before the run, not at its first fault.
                splitbrain_nemesis::remote::check_partitionable(&file.nodes)?;
            }
            let net = splitbrain_nemesis::remote::RemoteNet::open(file)?;
            let etcd = args
                .client
                .as_deref()
                .is_some_and(|c| c.starts_with("etcd"));
            let nemesis = crate::remote_nemesis::RemoteNemesis::new(net, kinds, seed, etcd)?;
            log.say(&format!(
                "nemesis over SSH: {} every {:.0}s for {:.0}s",
                kinds.join(", "),
                (schedule.interval + schedule.duration).as_secs_f64(),
                schedule.duration.as_secs_f64()
            ));
            Some((
                Box::new(nemesis) as Box<dyn splitbrain_control::Nemesis>,
                schedule,
            ))
        }
        _ => None,
    };

    // The cluster: the user's, or a local lab taken down when `_guard` drops.
    let _guard = if plan.config.nodes.is_empty() {
        let missing = splitbrain_cluster::missing_prerequisites();
        if !missing.is_empty() {
            bail!(
                "no --nodes given, and the local cluster needs {} (run as root after `sudo scripts/setup`)",
                missing.join(", ")
            );
        }
        let size = args.cluster_size.unwrap_or(3);
        log.say(&format!("starting a local {size}-member etcd cluster ..."));
        let mut cfg = splitbrain_cluster::Config::in_dir(dir.join("cluster"));
        cfg.nodes = size;
        let clock_faults = fault_kinds
            .as_ref()
            .is_some_and(|(k, _)| k.contains(&crate::lab_nemesis::FaultKind::Clock));
        if clock_faults {
            // Clock faults need every member under the clock supervisor.
            cfg.clock_supervisor = Some(crate::nemesis_cmd::clock_supervisor_command()?);
        }
        let cluster = splitbrain_cluster::Cluster::up(cfg)
            .context("cannot start the local cluster")?
            .guard();
        plan.config.nodes = cluster.endpoints();
        if stop.is_stopped() {
            log.say("interrupted while the cluster came up: taking it down, nothing ran");
            return Ok(EXIT_ABORTED);
        }
        log.say(&format!("cluster up: {}", plan.config.nodes.join(", ")));
        Some(cluster)
    } else {
        None
    };
    let nemesis = match (fault_kinds, &_guard) {
        (Some((kinds, schedule)), Some(cluster)) => {
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let lab = crate::lab_nemesis::LabNemesis::new(
                cluster,
                kinds,
                seed,
                crate::nemesis_cmd::delayer_command()?,
            );
            log.say(&format!(
                "nemesis: {} every {:.0}s for {:.0}s",
                args.nemesis.as_deref().unwrap_or_default().join(", "),
                (schedule.interval + schedule.duration).as_secs_f64(),
                schedule.duration.as_secs_f64()
            ));
            Some((
                Box::new(lab) as Box<dyn splitbrain_control::Nemesis>,
                schedule,
            ))
        }
        _ => remote_nemesis,
    };
    for node in &plan.config.nodes {
        splitbrain_cluster::ensure_target_url(node, args.allow_remote)
            .with_context(|| format!("--nodes {node}"))?;
    }
    let mut effective = plan.args.clone();
    // A nodes file stays what was given: it says how the nodes were reached.
    if !by_nodes_file {
        effective.nodes = Some(plan.config.nodes.clone());
    }
    std::fs::write(
        dir.join("config.toml"),
        toml::to_string(&effective).context("cannot write the configuration as TOML")?,
    )?;

    let history_path = dir.join("history.jsonl");
    let progress = Arc::new(Progress::default());
    let prefix = format!("splitbrain/{name}/{stamp}/");
    let gen = Generator::new(plan.workload.clone(), prefix);
    log.say(&format!(
        "running {} with {} workers on {} nodes{}; Ctrl-C stops early",
        plan.workload.kind.name(),
        plan.config.concurrency,
        plan.config.nodes.len(),
        plan.config
            .time_limit
            .map(|t| format!(" for {}s", t.as_secs_f64()))
            .unwrap_or_default(),
    ));
    let bar = progress_bar(progress.clone(), plan.config.time_limit);
    let client = plan.client.clone();
    let result = harness.run_with(
        client,
        gen,
        plan.config.clone(),
        &history_path,
        progress,
        nemesis,
    );
    bar.finish();
    let summary = result.context("the run failed")?;
    log.say(&format!(
        "{} ops recorded in {:.1}s: {} invoked, {} ok, {} fail, {} info ({:.0} ops/s){}",
        summary.ops_written,
        summary.elapsed.as_secs_f64(),
        summary.invoked,
        summary.ok,
        summary.fail,
        summary.info,
        summary.invoked as f64 / summary.elapsed.as_secs_f64().max(1e-9),
        if summary.interrupted {
            ", interrupted"
        } else {
            ""
        },
    ));
    if summary.faults > 0 {
        log.say(&format!(
            "{} faults injected and healed (see the nemesis ops in the history)",
            summary.faults
        ));
    }
    drop(_guard);
    if summary.ops_written == 0 && stop.is_stopped() {
        log.say("interrupted before the first op: nothing to check");
        return Ok(EXIT_ABORTED);
    }
    if stop.interrupts() >= 2 {
        log.say(&format!(
            "interrupted twice: not checked; history in {}",
            history_path.display()
        ));
        return Ok(EXIT_ABORTED);
    }

    let history = History::read_path(&history_path).context("reading back the history")?;
    let opts = Options {
        model: plan.model,
        consistency: plan.consistency,
        ..Options::default()
    };
    let report = checker::check(&history, &opts).context("checking the history")?;
    let run = serde_json::json!({
        "ops": summary.ops_written,
        "invoked": summary.invoked,
        "ok": summary.ok,
        "fail": summary.fail,
        "info": summary.info,
        "faults": summary.faults,
        "elapsed_s": summary.elapsed.as_secs_f64(),
        "interrupted": summary.interrupted,
        "aborted": summary.aborted,
    });
    let results = results_json(&name, &stamp, &report, run.clone());
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    let meta = splitbrain_report::RunMeta {
        test: name.clone(),
        started: stamp.clone(),
        summary: run,
    };
    splitbrain_report::write_run_files(&dir, &history, &report, Some(&meta))
        .with_context(|| format!("cannot write the report in {}", dir.display()))?;
    if let Some(junit) = &args.junit {
        let cases = splitbrain_report::junit::cases(&report, &format!("{name}/{stamp}"));
        crate::check_cmd::write_file(
            junit,
            "JUnit XML",
            &splitbrain_report::junit::to_xml("splitbrain test", &cases),
        )
        .map_err(anyhow::Error::msg)?;
    }
    let color = crate::check_cmd::ColorChoice::Auto.enabled();
    print!("{}", crate::check_cmd::text(&report, color));
    log.line(&format!("verdict: {:?}", report.verdict));
    println!("files: {}", dir.display());
    println!("report: {}", dir.join("report.html").display());
    Ok(report.verdict.exit_code())
}

/// The version of results.json's layout: bumped when a field changes meaning or
/// goes away (adding a field does not bump it). Documented in docs/results.md.
pub const RESULTS_SCHEMA_VERSION: u32 = 1;

/// results.json: the verdict, the checker's report and the run's counts.
fn results_json(
    test: &str,
    started: &str,
    report: &checker::Report,
    run: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "schema_version": RESULTS_SCHEMA_VERSION,
        "test": test,
        "started": started,
        "valid": report.verdict,
        "report": report,
        "run": run,
    })
}

/// Redraws elapsed time, ops/s and the ok/fail/info counts; indicatif draws nothing
/// when stderr is not a terminal.
fn progress_bar(p: Arc<Progress>, limit: Option<Duration>) -> Finish {
    let bar = match limit {
        Some(t) => ProgressBar::new(t.as_secs().max(1)).with_style(
            ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    let done = Arc::new(AtomicBool::new(false));
    let (b, d) = (bar.clone(), done.clone());
    let thread = std::thread::spawn(move || {
        let start = Instant::now();
        let mut last = (start, 0u64);
        while !d.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(250));
            let now = Instant::now();
            let invoked = p.invoked.load(Ordering::Relaxed);
            let rate = (invoked - last.1) as f64 / (now - last.0).as_secs_f64().max(1e-9);
            last = (now, invoked);
            b.set_position(start.elapsed().as_secs());
            b.set_message(format!(
                "{rate:>6.0} ops/s  ok {}  fail {}  info {}  fault: {}",
                p.ok.load(Ordering::Relaxed),
                p.fail.load(Ordering::Relaxed),
                p.info.load(Ordering::Relaxed),
                p.fault
                    .lock()
                    .map(|f| f.clone().unwrap_or_else(|| "none".into()))
                    .unwrap_or_else(|_| "?".into()),
            ));
        }
        b.finish_and_clear();
    });
    Finish {
        done,
        thread: Some(thread),
    }
}

struct Finish {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Finish {
    fn finish(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `store/latest` -> the newest run, replaced atomically (a new link renamed over).
fn point_latest(store: &Path, target: &Path) -> Result<()> {
    let tmp = store.join(format!(".latest.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    std::fs::rename(&tmp, store.join("latest"))
        .with_context(|| format!("cannot update {}/latest", store.display()))?;
    Ok(())
}

/// `20261122T063012.123Z`: UTC, sortable, no characters a shell minds.
fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{dd:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Howard Hinnant's days-to-civil: the Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_and_sortable() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(timestamp(t), "20261118T110640.123Z");
        assert_eq!(timestamp(SystemTime::UNIX_EPOCH), "19700101T000000.000Z");
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file: TestArgs = toml::from_str(
            "concurrency = 4\nworkload = \"register\"\nnodes = [\"http://127.0.0.1:1\"]\n",
        )
        .unwrap();
        let cli = TestArgs {
            concurrency: Some(8),
            ..TestArgs::default()
        };
        let a = cli.or(file).with_defaults();
        assert_eq!(a.concurrency, Some(8));
        assert_eq!(a.workload.as_deref(), Some("register"));
        assert_eq!(a.name.as_deref(), Some("register-etcd-v3"));
        assert_eq!(a.time_limit, Some(30.0));
    }

    /// docs/results.md documents these names; a change here is a change there (and,
    /// for a renamed or removed field, a new schema_version).
    #[test]
    fn results_json_keeps_its_documented_field_names() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
                    {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        std::fs::write(&path, text).unwrap();
        let history = History::read_path(&path).unwrap();
        let opts = Options {
            model: ModelKind::Register,
            ..Options::default()
        };
        let report = checker::check(&history, &opts).unwrap();
        let run = serde_json::json!({"ops": 2, "invoked": 1, "ok": 1, "fail": 0, "info": 0,
            "faults": 0, "elapsed_s": 0.1, "interrupted": false, "aborted": false});
        let v = results_json("t", "20261122T000000.000Z", &report, run);
        let keys = |v: &serde_json::Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(&v),
            [
                "report",
                "run",
                "schema_version",
                "started",
                "test",
                "valid"
            ]
        );
        assert_eq!(v["schema_version"], RESULTS_SCHEMA_VERSION);
        assert_eq!(
            keys(&v["report"]),
            [
                "consistency",
                "elapsed_ms",
                "file",
                "keys",
                "model",
                "ops",
                "valid"
            ]
        );
        assert_eq!(
            keys(&v["run"]),
            [
                "aborted",
                "elapsed_s",
                "fail",
                "faults",
                "info",
                "interrupted",
                "invoked",
                "ok",
                "ops"
            ]
        );
    }

    #[test]
    fn an_unknown_setting_in_the_file_is_an_error() {
        assert!(toml::from_str::<TestArgs>("concurency = 4\n").is_err());
    }
}
