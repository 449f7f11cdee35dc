//! splitbrain's control loop: the clients that speak to a cluster, the generator that
//! decides what to ask, the workers that ask it, and the recorder that writes the
//! history as it happens.
//!
//! ```text
//!   Generator(seed) ─► WorkerGen 0 ─Next─► worker 0 ─┐  (node n1, process 0, 10, 20 ...)
//!                    WorkerGen 1 ─Next─► worker 1 ─┼─ Client::invoke ─► HTTP ─► cluster
//!                    ...                  ...     ─┘
//!                                          │ invoke, then ok / fail / info
//!                                          ▼
//!                          Recorder (unbounded channel) ─► writer task ─► history.jsonl
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), splitbrain_control::Error> {
//! use splitbrain_control::*;
//! use std::sync::Arc;
//! let client = etcd_v3::EtcdV3::new(etcd_v3::ReadMode::Linearizable, std::time::Duration::from_secs(5))?;
//! let config = TestConfig { nodes: vec!["http://127.0.0.1:2379".into()], ..TestConfig::default() };
//! let gen = Generator::new(Workload::default(), "splitbrain/run-1/").with_seed(42);
//! let summary = run(Arc::new(client), gen, config, "history.jsonl".as_ref(),
//!                   Stop::default(), Arc::default()).await?;
//! println!("{} ops", summary.ops_written);
//! # Ok(()) }
//! ```
//!
//! What this crate keeps true:
//! - every invocation in a history it writes has exactly one completion, even when
//!   the run is aborted (the abort itself completes open ops as `info`);
//! - `fail` only when the op provably did not take effect; a read never ends `info`;
//! - workers never wait on the disk: the recorder's channel is unbounded;
//! - it sends to the URLs it is given and no others; deciding which URLs are safe
//!   (loopback, or a lab the project made) is the caller's job.

#![forbid(unsafe_code)]

pub mod call;
pub mod client;
pub mod etcd_v3;
pub mod generator;
pub mod http;
pub mod mariadb;
pub mod nemesis;
pub mod progress;
pub mod recorder;
pub mod redis;
pub mod runner;
pub mod seed;
pub mod zookeeper;

pub use client::{Call, Client, ClientKind, ClientOptions, Outcome, CLIENTS};
pub use generator::{Generator, Mix, Seen, WorkerGen, Workload, WorkloadKind};
pub use nemesis::{FollowUp, Nemesis, NemesisError, Schedule};
pub use progress::Progress;
pub use runner::{run, run_with, Stop, Summary, TestConfig};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What can go wrong setting up or recording a run. Op failures are not errors:
/// they are `fail` and `info` ops in the history.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP client: {0}")]
    Http(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("unknown client `{name}` (known: {known})")]
    UnknownClient { name: String, known: String },
    #[error("unknown {client} read mode `{mode}` (known: {known})")]
    UnknownReadMode {
        client: &'static str,
        mode: String,
        known: String,
    },
    #[error("--read-mode {mode}: the {client} client reads as its --client-config says")]
    NoReadModes { client: &'static str, mode: String },
    #[error("unknown {client} write mode `{mode}` (known: {known})")]
    UnknownWriteMode {
        client: &'static str,
        mode: String,
        known: String,
    },
    #[error("--write-mode {mode}: the {client} client has no write modes")]
    NoWriteModes { client: &'static str, mode: String },
    #[error("the {client} client speaks to {supported}, not to {db}")]
    ClientDatabase {
        client: &'static str,
        db: String,
        supported: String,
    },
    #[error("--client {client} needs --client-config FILE.toml (see workloads/clients/)")]
    ClientNeedsConfig { client: &'static str },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A runtime for callers that are not async themselves, with Ctrl-C wired to a
/// [`Stop`] from the moment it exists (first: stop generating; second: abort). Make
/// it before slow set-up such as starting a cluster, so that a Ctrl-C there is seen
/// too instead of killing the process half way.
pub struct Harness {
    rt: tokio::runtime::Runtime,
    stop: Stop,
}

impl Harness {
    pub fn new() -> Result<Harness, Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start the async runtime: {e}")))?;
        let stop = Stop::default();
        let s = stop.clone();
        // Installed before returning: from here on SIGINT goes to `stop`.
        rt.block_on(async move { s.on_ctrl_c() });
        Ok(Harness { rt, stop })
    }

    /// The run's stop switch (Ctrl-C flips it; callers may too).
    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    /// [`run_with`], blocking until it ends (`nemesis`: `None` for a run without
    /// faults, as [`run`]).
    pub fn run_with(
        &self,
        client: Arc<dyn Client>,
        gen: Generator,
        config: TestConfig,
        history: &Path,
        progress: Arc<Progress>,
        nemesis: Option<(Box<dyn Nemesis>, Schedule)>,
    ) -> Result<Summary, Error> {
        self.rt.block_on(run_with(
            client,
            gen,
            config,
            history,
            self.stop.clone(),
            progress,
            nemesis,
        ))
    }
}

/// A client's HTTP side, which every protocol shares: the connection pool (shared
/// by every worker's copy) and, once [bound](Endpoint::bound), its node's base URL.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    http: reqwest::Client,
    base: Option<String>,
}

impl Endpoint {
    pub(crate) fn new(timeout: Duration) -> Result<Endpoint, Error> {
        Ok(Endpoint {
            http: http_client(timeout)?,
            base: None,
        })
    }

    /// The same pool, bound to `node` (a base URL; a trailing `/` is dropped).
    pub(crate) fn bound(&self, node: &str) -> Endpoint {
        Endpoint {
            http: self.http.clone(),
            base: Some(node.trim_end_matches('/').to_owned()),
        }
    }

    /// Sends a `method` request for `path` (after the base URL), shaped by `build`
    /// (body, headers), and reads the whole answer. A transport error is the
    /// outcome it proves for `call` ([`call::classify_transport`]).
    pub(crate) async fn exchange(
        &self,
        call: &Call,
        method: reqwest::Method,
        path: &str,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, impl AsRef<[u8]>), Outcome> {
        let Some(base) = &self.base else {
            return Err(Outcome::Fail("client not opened".into()));
        };
        let req = build(self.http.request(method, format!("{base}{path}")));
        let resp = req
            .send()
            .await
            .map_err(|e| call::classify_transport(call, &e))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| call::classify_transport(call, &e))?;
        Ok((status, bytes))
    }
}

/// The HTTP client every protocol shares: connection pool, keep-alive, the request
/// timeout, and a short connect timeout (a connect that fails sent nothing, so it is
/// a `fail`, and failing fast keeps the worker busy).
fn http_client(timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(2)))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .no_proxy()
        // A 301 or 302 would turn a PUT into a GET and report a write that never
        // happened; a 3xx answer is left to the outcome rules (unknown by default).
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Http(call::error_chain(&e)))
}
