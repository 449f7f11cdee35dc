//! The crate's one error type. Every message names the thing it is about (the node, the
//! file, the command). It names no command-line flag: the binary knows its command
//! line, and turns these errors into advice (what to run instead).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with a local cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Namespaces, veths and signals to root's processes need root. `action` says
    /// what was asked in the library's words ("starting a lab cluster").
    #[error("{action} needs root (network namespaces, veth pairs, signals): run as root, e.g. with sudo")]
    NotRoot { action: &'static str },

    /// A program the cluster needs is not on `PATH`.
    #[error("`{program}` not found on PATH: install it with `sudo scripts/setup` (or `apt-get install {package}`)")]
    MissingProgram {
        program: &'static str,
        package: &'static str,
    },

    /// A file the database needs (a jar) is not there.
    #[error(
        "{path} not found: install it with `sudo scripts/setup` (or `apt-get install {package}`)"
    )]
    MissingFile {
        path: &'static str,
        package: &'static str,
    },

    /// A path `up` would replace holds something splitbrain did not make: never
    /// touched (the binary says what else to do).
    #[error("{path} exists and was not made by splitbrain ({why}): not replacing it")]
    NotOurs { path: PathBuf, why: String },

    /// The configuration asks for something this crate does not do.
    #[error("invalid cluster configuration: {0}")]
    InvalidConfig(String),

    /// No state file: nothing is (recorded as) running in this directory. (The
    /// binary says where else to look: a test's lab lives in its run directory.)
    #[error("no cluster in {dir} (no state file {state_file})")]
    NoCluster { dir: PathBuf, state_file: PathBuf },

    /// `up` found a live cluster already recorded in this directory.
    #[error("a cluster is already running in {dir} (state file {state_file})")]
    AlreadyUp { dir: PathBuf, state_file: PathBuf },

    /// `up` found a state file whose processes and namespaces are all gone.
    #[error("stale state file {state_file}: the cluster it records is gone (a crashed run or a reboot?)")]
    StaleState { dir: PathBuf, state_file: PathBuf },

    /// Another splitbrain process holds the run directory's lock.
    #[error("run directory {dir} is locked by another splitbrain process (waited {waited:?})")]
    Locked { dir: PathBuf, waited: Duration },

    /// The state file exists but cannot be understood.
    #[error("state file {path} is not a splitbrain cluster state: {source}")]
    BadStateFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// A subnet, address or port is already taken by something else.
    #[error("{what} is already in use ({detail})")]
    AddressInUse { what: String, detail: String },

    /// Every subnet of the project's range is taken.
    #[error("no free lab subnet in 10.77.1.0/24 ..= 10.77.254.0/24 (every one has a route or a splitbrain namespace)")]
    NoFreeSubnet,

    /// The route to a lab address does not go through the lab's own interface.
    #[error("refusing to send to {addr}: {reason} (route: `{route}`); is that cluster down?")]
    UnsafeRoute {
        addr: IpAddr,
        reason: String,
        route: String,
    },

    /// A target off this machine, which the user did not allow (the binary says
    /// how to allow it).
    #[error("refusing to send to {target}: it is not on this machine (neither loopback nor a splitbrain lab address), and other machines were not allowed")]
    RemoteNotAllowed { target: String },

    /// A node name that is not in this cluster.
    #[error("no node {node} in this cluster (nodes: {known})")]
    UnknownNode { node: String, known: String },

    /// A database name the lab does not know (`--db NAME`).
    #[error("unknown database `{name}` (known: {known})")]
    UnknownDatabase { name: String, known: String },

    /// The operation needs a running member and there is none.
    #[error("node {node} is not running")]
    NotRunning { node: String },

    /// A process name that is not one of the member's (`--process NAME`).
    #[error("node {node} has no process `{process}` (it has the database's own{})", if known.is_empty() { String::new() } else { format!(" and {known}") })]
    UnknownProcess {
        node: String,
        process: String,
        known: String,
    },

    /// `start` on a member that is already running.
    #[error("node {node} is already running (pid {pid})")]
    AlreadyRunning { node: String, pid: i32 },

    /// A recorded pid now belongs to a process we did not start.
    #[error("pid {pid} recorded for node {node} is not the process we started (its command line is `{found}`); not signalling it")]
    NotOurProcess {
        node: String,
        pid: i32,
        found: String,
    },

    /// A member process exited on its own.
    #[error("member {node} exited{status}; last lines of {log}:\n{tail}")]
    MemberExited {
        node: String,
        status: String,
        log: PathBuf,
        tail: String,
    },

    /// The cluster did not become healthy in time.
    #[error("cluster not healthy after {timeout:?} ({last}); member logs:\n{tails}")]
    Unhealthy {
        timeout: Duration,
        last: String,
        tails: String,
    },

    /// A member did not start listening in time.
    #[error(
        "node {node} did not listen on {addr} within {timeout:?}; last lines of {log}:\n{tail}"
    )]
    StartTimeout {
        node: String,
        addr: String,
        timeout: Duration,
        log: PathBuf,
        tail: String,
    },

    /// The cluster on this machine is not what its state file records.
    #[error("the cluster in {dir} is not as recorded: {what}")]
    Inconsistent { dir: PathBuf, what: String },

    /// Something that should have happened quickly did not.
    #[error("the sshd of node {node} exited; last lines of {log}:\n{tail}")]
    SshdExited {
        node: String,
        log: PathBuf,
        tail: String,
    },

    #[error("{what} did not happen within {after:?}")]
    Timeout { what: String, after: Duration },

    /// `down` removed what it could, but something of ours is still there.
    #[error("cluster only partly removed, state file kept so `down` can be run again: {0}")]
    Leftover(String),

    /// A failover (primary-backup databases) could not be made, or was not needed.
    #[error("no failover: {0}")]
    Failover(String),

    /// An external command (ip, etcdctl, ...) failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },

    /// An external command printed something we could not parse.
    #[error("cannot parse the output of `{command}`: {reason}; output was: {output}")]
    Parse {
        command: String,
        reason: String,
        output: String,
    },

    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn errno(what: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Error::io(what, std::io::Error::from(errno))
    }
}
