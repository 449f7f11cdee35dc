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
use crate::nemesis::FaultNemesis;
pub use crate::test_config::TestArgs;
use crate::test_config::{self, Settings};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use splitbrain_checker::{self as checker, Options};
use splitbrain_control::http::HttpConfig;
use splitbrain_control::{
    Client, ClientKind, ClientOptions, Generator, Harness, Nemesis, Progress, Schedule, Stop,
    Summary,
};
use splitbrain_history::History;
use splitbrain_nemesis::fault::{FaultKind, Net};
use splitbrain_nemesis::lab::LabNet;
use splitbrain_nemesis::remote::RemoteNet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Exit status after a second Ctrl-C: the history is on disk, nothing was checked.
pub const EXIT_ABORTED: u8 = 130;

/// What a resolved configuration turns into: the settings and the client.
struct Plan {
    settings: Settings,
    client: Arc<dyn Client>,
}

/// The default clients' descriptions (`workloads/clients/dqlite.toml`, ...), for a
/// binary run outside the repository.
const BUILTIN_CLIENTS: [(&str, &str); 2] = [
    (
        test_config::DQLITE_CLIENT_CONFIG,
        include_str!("../../../workloads/clients/dqlite.toml"),
    ),
    (
        test_config::WEBDIS_CLIENT_CONFIG,
        include_str!("../../../workloads/clients/webdis.toml"),
    ),
];

/// The client the settings name (a plug-in of the control crate, which checks the
/// database and the read mode), built with its description when it needs one.
fn client(args: &TestArgs, timeout: Duration) -> Result<Arc<dyn Client>> {
    let kind = ClientKind::named(args.client.as_deref().unwrap_or_default())?;
    let mut options = ClientOptions::new(timeout);
    options.read_mode = args.read_mode.clone();
    options.write_mode = args.write_mode.clone();
    if let (true, Some(path)) = (kind.needs_config, &args.client_config) {
        let builtin = BUILTIN_CLIENTS
            .iter()
            .find(|(p, _)| path == Path::new(p))
            .map(|(_, text)| text);
        let text = match (std::fs::read_to_string(path), builtin) {
            // The default client of `--db dqlite` (or redis-webdis), run outside the
            // repository.
            (Err(_), Some(text)) => (*text).to_owned(),
            (read, _) => read.with_context(|| format!("cannot read {}", path.display()))?,
        };
        options.config =
            Some(HttpConfig::from_toml(&text).with_context(|| path.display().to_string())?);
    }
    // Remote nodes (`--nodes`) run a database the harness does not know.
    let db = match &args.nodes {
        Some(_) => None,
        None => args.db.as_deref(),
    };
    Ok(kind.build(db, &options)?)
}

/// Reads `--config`, applies the flags over it and the defaults under it, checks
/// everything and chooses the client: all before anything starts.
fn plan(args: TestArgs) -> Result<Plan> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            test_config::from_toml(&text, path)?
        }
        None => TestArgs::default(),
    };
    let settings = Settings::resolve(
        args.or(file).with_defaults(),
        splitbrain_control::seed::fresh,
    )?;
    let args = &settings.args;
    let db = args.db.as_deref().unwrap_or(splitbrain_cluster::DEFAULT_DB);
    splitbrain_cluster::packages(db).context("--db")?;
    let timeout = settings.config.op_timeout;
    let client = client(args, timeout)?;
    use splitbrain_control::WorkloadKind as W;
    let kind = settings.workload.kind;
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
    Ok(Plan { settings, client })
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
            if crate::cluster_cmd::refused_remote(&e) {
                eprintln!(
                    "{} (or `allow-remote = true` in the --config file)",
                    crate::cluster_cmd::ALLOW_REMOTE
                );
            }
            EXIT_BAD_INPUT
        }
    }
}

/// The run's log: test.log, with seconds since the start; the important lines also
/// go to stderr. Clones write to the same file (the nemesis has one).
#[derive(Clone)]
struct Log {
    file: Arc<Mutex<File>>,
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

/// A run's directory in the store, and its log.
struct RunDir {
    dir: PathBuf,
    name: String,
    stamp: String,
    log: Log,
}

/// Makes `store/NAME/STAMP/`, points `store/latest` at it and opens test.log.
fn open_run_dir(args: &TestArgs) -> Result<RunDir> {
    let store = args.store.clone().unwrap_or_else(|| "store".into());
    let name = args.name.clone().unwrap_or_default();
    let stamp = timestamp(SystemTime::now());
    let dir = store.join(&name).join(&stamp);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    point_latest(&store, &Path::new(&name).join(&stamp))?;
    let log = Log {
        file: Arc::new(Mutex::new(File::create(dir.join("test.log"))?)),
        start: Instant::now(),
    };
    log.line(&format!("splitbrain test {name}, run {stamp}"));
    Ok(RunDir {
        dir,
        name,
        stamp,
        log,
    })
}

/// Where the workload goes: the user's URLs, remote nodes from a nodes file, or a
/// local lab (taken down when this drops).
enum Target {
    Urls,
    NodesFile(splitbrain_nemesis::nodes::NodesFile),
    Lab(splitbrain_cluster::ClusterGuard),
}

/// Finds or starts the cluster, and fills `config.nodes` with the URLs the
/// workload uses. `None`: interrupted while a lab came up (it is down again).
fn bring_up(settings: &mut Settings, run: &RunDir, stop: &Stop) -> Result<Option<Target>> {
    let args = &settings.args;
    // `--nodes nodes.toml`: remote nodes over SSH; the workload uses their client URLs.
    if let Some(mut file) = crate::nodes_file::nodes_file_arg(args.nodes.as_deref())? {
        file.allow_remote = args.allow_remote;
        settings.config.nodes = file.client_urls()?;
        return Ok(Some(Target::NodesFile(file)));
    }
    if !settings.config.nodes.is_empty() {
        if settings.faults.is_some() {
            bail!(
                "--nemesis with --nodes URL,... cannot reach the nodes: give a nodes file instead (--nodes nodes.toml, see nemesis/nodes.example.toml) to fault them over SSH"
            );
        }
        return Ok(Some(Target::Urls));
    }
    let db = args.db.as_deref().unwrap_or(splitbrain_cluster::DEFAULT_DB);
    let missing = splitbrain_cluster::missing_prerequisites_for(db)?;
    if !missing.is_empty() {
        bail!(
            "no --nodes given, and the local cluster needs {} (run as root after `sudo scripts/setup`)",
            missing.join(", ")
        );
    }
    let size = args.cluster_size.unwrap_or(3);
    run.log
        .say(&format!("starting a local {size}-member {db} cluster ..."));
    let mut cfg = splitbrain_cluster::Config::in_dir(run.dir.join("cluster"));
    cfg.db = db.to_owned();
    cfg.nodes = size;
    if settings
        .faults
        .as_ref()
        .is_some_and(|f| f.kinds.contains(&FaultKind::Clock))
    {
        // Clock faults need every member under the clock supervisor.
        cfg.clock_supervisor = Some(crate::nemesis_cmd::clock_supervisor_command()?);
    }
    let cluster = splitbrain_cluster::Cluster::up(cfg)
        .context("cannot start the local cluster")?
        .guard();
    settings.config.nodes = cluster.endpoints();
    if stop.is_stopped() {
        run.log
            .say("interrupted while the cluster came up: taking it down, nothing ran");
        return Ok(None);
    }
    run.log
        .say(&format!("cluster up: {}", settings.config.nodes.join(", ")));
    Ok(Some(Target::Lab(cluster)))
}

/// The nemesis for `target`, drawing from `seed`; `None` without `--nemesis`.
/// Remote nodes are all connected here: an unreachable one stops the run before
/// it starts.
fn choose_nemesis(
    settings: &Settings,
    target: &Target,
    seed: u64,
    log: &Log,
) -> Result<Option<(Box<dyn Nemesis>, Schedule)>> {
    let Some(faults) = &settings.faults else {
        return Ok(None);
    };
    let every = format!(
        "{} every {:.0}s for {:.0}s",
        faults
            .kinds
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
        (faults.schedule.interval + faults.schedule.duration).as_secs_f64(),
        faults.schedule.duration.as_secs_f64()
    );
    let net: Box<dyn Net> = match target {
        Target::Urls => return Ok(None),
        Target::Lab(cluster) => {
            let net = LabNet::of(cluster).with_delayer(crate::nemesis_cmd::delayer_command()?);
            log.say(&format!("nemesis: {every}"));
            Box::new(net)
        }
        Target::NodesFile(file) => {
            let file = file.clone();
            if faults.processes.iter().any(Option::is_some) {
                bail!(
                    "--nemesis-process: on remote nodes kill and pause run the nodes file's \
                     commands, which act on the database's own process"
                );
            }
            if faults.kinds.contains(&FaultKind::Clock) {
                // Before any SSH: `date` on this machine is never an option.
                splitbrain_nemesis::remote::refuse_date_here(&file, &[])?;
            }
            if faults.kinds.contains(&FaultKind::Partition) {
                // Nodes sharing an address (loopback port mappings) cannot be
                // partitioned: say so before the run, not at its first fault.
                splitbrain_nemesis::remote::check_partitionable(&file.nodes)?;
            }
            // The nodes' database is the one the client speaks to, when it speaks
            // to one: its plug-in finds their leader (a generic client: none).
            let db = ClientKind::named(settings.args.client.as_deref().unwrap_or_default())
                .ok()
                .and_then(|k| match k.databases {
                    [db] => Some(*db),
                    _ => None,
                });
            let net = RemoteNet::open(file)?.with_db(db);
            log.say(&format!("nemesis over SSH: {every}"));
            Box::new(net)
        }
    };
    // Its failovers and rejoins go to test.log only: stderr has the progress bar.
    let log = log.clone();
    let nemesis = FaultNemesis::new(net, faults.kinds.clone(), seed)
        .with_processes(faults.processes.clone())
        .with_failover_after(faults.failover_after)
        .with_log(move |line| log.line(line));
    let nemesis: Box<dyn Nemesis> = Box::new(nemesis);
    Ok(Some((nemesis, faults.schedule)))
}

/// config.toml: the effective settings, seed included, so that `--config
/// config.toml` asks for the same run again.
fn write_config(settings: &Settings, target: &Target, dir: &Path) -> Result<()> {
    let mut effective = settings.args.clone();
    // A nodes file stays what was given: it says how the nodes were reached.
    if !matches!(target, Target::NodesFile(_)) {
        effective.nodes = Some(settings.config.nodes.clone());
    }
    std::fs::write(
        dir.join("config.toml"),
        toml::to_string(&effective).context("cannot write the configuration as TOML")?,
    )?;
    Ok(())
}

fn run_plan(plan: Plan) -> Result<u8> {
    let Plan {
        mut settings,
        client,
    } = plan;
    let run = open_run_dir(&settings.args)?;
    let log = &run.log;
    log.line(&format!(
        "seed {} (workload {}, nemesis {})",
        settings.seed,
        settings.workload_seed(),
        settings.nemesis_seed()
    ));
    // Ctrl-C is ours from here on, also while the cluster comes up.
    let harness = Harness::new()?;
    let stop = harness.stop().clone();
    let Some(target) = bring_up(&mut settings, &run, &stop)? else {
        return Ok(EXIT_ABORTED);
    };
    let nemesis = choose_nemesis(&settings, &target, settings.nemesis_seed(), log)?;
    for node in &settings.config.nodes {
        splitbrain_cluster::ensure_target_url(node, settings.args.allow_remote)
            .with_context(|| format!("--nodes {node}"))?;
    }
    write_config(&settings, &target, &run.dir)?;

    let history_path = run.dir.join("history.jsonl");
    let progress = Arc::new(Progress::default());
    let prefix = format!("splitbrain/{}/{}/", run.name, run.stamp);
    let gen = Generator::new(settings.workload.clone(), prefix).with_seed(settings.workload_seed());
    let config = &settings.config;
    log.say(&format!(
        "running {} with {} workers on {} nodes{}, seed {}; Ctrl-C stops early",
        settings.workload.kind.name(),
        config.concurrency,
        config.nodes.len(),
        config
            .time_limit
            .map(|t| format!(" for {}s", t.as_secs_f64()))
            .unwrap_or_default(),
        settings.seed,
    ));
    let bar = progress_bar(progress.clone(), config.time_limit);
    let result = harness.run_with(
        client,
        gen,
        config.clone(),
        &history_path,
        progress,
        nemesis,
    );
    bar.finish();
    let summary = result.context("the run failed")?;
    log_summary(log, &summary);
    // The lab goes down before the check: nothing more is asked of it.
    drop(target);
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
    check_and_report(&settings, &run, &history_path, &summary)
}

fn log_summary(log: &Log, summary: &Summary) {
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
}

/// Checks the history and writes results.json, the report and JUnit; prints the
/// verdict. Returns the exit status.
fn check_and_report(
    settings: &Settings,
    run: &RunDir,
    history_path: &Path,
    summary: &Summary,
) -> Result<u8> {
    let (dir, name, stamp) = (&run.dir, &run.name, &run.stamp);
    let history = History::read_path(history_path).context("reading back the history")?;
    let opts = Options {
        model: settings.model,
        consistency: settings.consistency,
        ..Options::default()
    };
    let report = checker::check(&history, &opts).context("checking the history")?;
    let counts = run_counts(summary);
    let results = results_json(name, stamp, &report, counts.clone(), seeds(settings));
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    let meta = splitbrain_report::RunMeta {
        test: name.clone(),
        started: stamp.clone(),
        summary: counts,
    };
    splitbrain_report::write_run_files(dir, &history, &report, Some(&meta))
        .with_context(|| format!("cannot write the report in {}", dir.display()))?;
    if let Some(junit) = &settings.args.junit {
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
    run.log.line(&format!("verdict: {:?}", report.verdict));
    println!("files: {}", dir.display());
    println!("report: {}", dir.join("report.html").display());
    Ok(report.verdict.exit_code())
}

/// results.json's `run`: the run's counts.
fn run_counts(summary: &Summary) -> serde_json::Value {
    serde_json::json!({
        "ops": summary.ops_written,
        "invoked": summary.invoked,
        "ok": summary.ok,
        "fail": summary.fail,
        "info": summary.info,
        "faults": summary.faults,
        "elapsed_s": summary.elapsed.as_secs_f64(),
        "interrupted": summary.interrupted,
        "aborted": summary.aborted,
    })
}

/// results.json's `seed`: what `--seed` replays, and the two streams drawn from it.
fn seeds(settings: &Settings) -> serde_json::Value {
    serde_json::json!({
        "seed": settings.seed,
        "workload": settings.workload_seed(),
        "nemesis": settings.nemesis_seed(),
    })
}

/// The version of results.json's layout: bumped when a field changes meaning or
/// goes away (adding a field does not bump it). Documented in docs/results.md.
pub const RESULTS_SCHEMA_VERSION: u32 = 1;

/// results.json: the verdict, the checker's report, the run's counts and seeds.
fn results_json(
    test: &str,
    started: &str,
    report: &checker::Report,
    run: serde_json::Value,
    seed: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "schema_version": RESULTS_SCHEMA_VERSION,
        "test": test,
        "started": started,
        "valid": report.verdict,
        "report": report,
        "run": run,
        "seed": seed,
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

    #[test]
    fn the_default_client_follows_the_database() {
        let dqlite = TestArgs {
            db: Some("dqlite".into()),
            ..TestArgs::default()
        }
        .with_defaults();
        assert_eq!(dqlite.client.as_deref(), Some("http"));
        assert_eq!(
            dqlite.client_config.as_deref(),
            Some(Path::new(test_config::DQLITE_CLIENT_CONFIG))
        );
        assert_eq!(dqlite.workload.as_deref(), Some("register"));
        let webdis = TestArgs {
            db: Some("redis-webdis".into()),
            ..TestArgs::default()
        }
        .with_defaults();
        assert_eq!(webdis.client.as_deref(), Some("http"));
        assert_eq!(
            webdis.client_config.as_deref(),
            Some(Path::new(test_config::WEBDIS_CLIENT_CONFIG))
        );
        assert_eq!(webdis.workload.as_deref(), Some("register"));
        assert!(plan(webdis).is_ok());
        let redis = TestArgs {
            db: Some("redis".into()),
            write_mode: Some("wait".into()),
            ..TestArgs::default()
        }
        .with_defaults();
        assert_eq!(redis.client.as_deref(), Some("redis"));
        assert_eq!(redis.read_mode.as_deref(), Some("primary"));
        assert!(plan(redis).is_ok());
        // The copy the binary carries is the shipped file, and it builds.
        let plan = plan(TestArgs {
            client_config: None,
            ..dqlite.clone()
        });
        assert!(plan.is_ok(), "{:?}", plan.err());
        // A client chosen by hand keeps its own description (none here).
        let mine = TestArgs {
            db: Some("dqlite".into()),
            client: Some("etcd-v3".into()),
            ..TestArgs::default()
        }
        .with_defaults();
        assert_eq!(mine.client_config, None);
        assert_eq!(mine.workload.as_deref(), Some("register"));
        let etcd = TestArgs::default().with_defaults();
        assert_eq!(etcd.client.as_deref(), Some("etcd-v3"));
        assert_eq!(etcd.client_config, None);
        // zk:// URLs name ZooKeeper, and its client follows; http:// says nothing.
        let nodes = |urls: &[&str]| TestArgs {
            nodes: Some(urls.iter().map(|u| u.to_string()).collect()),
            ..TestArgs::default()
        };
        let zk = nodes(&["zk://10.77.2.1:2181", "zk://10.77.2.2:2181"]).with_defaults();
        assert_eq!(zk.db.as_deref(), Some("zookeeper"));
        assert_eq!(zk.client.as_deref(), Some("zookeeper"));
        let zk_plan = super::plan(zk);
        assert!(zk_plan.is_ok(), "{:?}", zk_plan.err());
        let mdb = nodes(&["mysql://10.77.2.1:3306", "mysql://10.77.2.2:3306"]).with_defaults();
        assert_eq!(mdb.db.as_deref(), Some("mariadb"));
        assert_eq!(mdb.client.as_deref(), Some("mariadb"));
        assert_eq!(mdb.read_mode.as_deref(), Some("primary"));
        let mixed = nodes(&["zk://10.77.2.1:2181", "http://10.77.1.1:2379"]).with_defaults();
        assert_eq!(mixed.client.as_deref(), Some("etcd-v3"));
        let http = nodes(&["http://127.0.0.1:2379"]).with_defaults();
        assert_eq!(http.db.as_deref(), Some("etcd"));
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
            model: splitbrain_checker::ModelKind::Register,
            ..Options::default()
        };
        let report = checker::check(&history, &opts).unwrap();
        let run = serde_json::json!({"ops": 2, "invoked": 1, "ok": 1, "fail": 0, "info": 0,
            "faults": 0, "elapsed_s": 0.1, "interrupted": false, "aborted": false});
        let seed = serde_json::json!({"seed": 1, "workload": 2, "nemesis": 3});
        let v = results_json("t", "20261122T000000.000Z", &report, run, seed);
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
                "seed",
                "started",
                "test",
                "valid"
            ]
        );
        assert_eq!(keys(&v["seed"]), ["nemesis", "seed", "workload"]);
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

    /// config.toml records the seed, and reading it back asks for the same run.
    #[test]
    fn the_seed_is_recorded_and_replayed_from_config_toml() {
        let fresh = Settings::resolve(TestArgs::default().with_defaults(), || 77).unwrap();
        assert_eq!(fresh.seed, 77);
        let text = toml::to_string(&fresh.args).unwrap();
        assert!(text.contains("seed = 77"), "{text}");
        let again = test_config::from_toml(&text, Path::new("config.toml")).unwrap();
        let replay = Settings::resolve(TestArgs::default().or(again).with_defaults(), || {
            panic!("the recorded seed is used")
        })
        .unwrap();
        assert_eq!(replay.seed, 77);
        assert_eq!(replay.workload_seed(), fresh.workload_seed());
        assert_eq!(replay.nemesis_seed(), fresh.nemesis_seed());
        assert_ne!(fresh.workload_seed(), fresh.nemesis_seed());
        let too_big = TestArgs {
            seed: Some(u64::MAX),
            ..TestArgs::default()
        };
        let e = Settings::resolve(too_big.with_defaults(), || 0).unwrap_err();
        assert!(format!("{e:#}").contains("--seed must be at most"), "{e:#}");
    }

    /// Settings whose arithmetic would overflow are refused, not a panic (found
    /// by reading `secs` and the mix while writing the fuzz target).
    #[test]
    fn huge_settings_are_refused_with_the_flags_name() {
        for (toml_text, flag) in [
            ("timeout = 1e300\n", "--timeout"),
            ("time-limit = 1.8e19\n", "--time-limit"),
            (
                "nemesis = [\"kill\"]\nnemesis-interval = 1e20\n",
                "--nemesis-interval",
            ),
            ("mix = [4294967295, 1, 0]\n", "--mix"),
            ("mix = [0, 0, 0]\n", "--mix"),
            ("nemesis = [\"flood\"]\n", "unknown fault `flood`"),
            ("cluster-size = 0\n", "--cluster-size"),
        ] {
            let file = test_config::from_toml(toml_text, Path::new("t.toml")).unwrap();
            let e =
                Settings::resolve(TestArgs::default().or(file).with_defaults(), || 1).unwrap_err();
            assert!(format!("{e:#}").contains(flag), "{toml_text}: {e:#}");
        }
    }

    #[test]
    fn an_unknown_setting_in_the_file_is_an_error() {
        assert!(toml::from_str::<TestArgs>("concurency = 4\n").is_err());
    }
}
