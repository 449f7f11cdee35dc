//! Clock faults for one process, Go programs such as etcd included, without ever
//! touching the host clock.
//!
//! ```text
//!   splitbrain-clock-supervisor --offset-file F -- etcd ...
//!
//!   pid P: supervisor ──fork──► handler H (no filter; PTRACE_SEIZEs P)
//!          │ seccomp filter: clock_gettime(REALTIME*, TAI), gettimeofday, time
//!          │   → SECCOMP_RET_USER_NOTIF; the listener fd goes to H (SCM_RIGHTS);
//!          │   settimeofday, clock_settime, adjtimex, clock_adjtime → EPERM
//!          └─execve──► etcd (still pid P)
//!                        H, at the exec stop: auxv AT_SYSINFO_EHDR → AT_IGNORE,
//!                        so neither ld.so nor the Go runtime finds the vDSO and
//!                        every wall-clock read is a system call; then H detaches
//!   etcd: clock_gettime(CLOCK_REALTIME) ──notify──► H: real time + the offset in F,
//!                                                   written with process_vm_writev
//!   etcd: clock_gettime(CLOCK_MONOTONIC) ── allowed: the kernel answers, untouched
//! ```
//!
//! The target keeps the supervisor's pid, so whoever recorded that pid (the cluster
//! crate does) signals the target itself; the handler is a separate process that no
//! filter applies to (a filtered handler would wait on itself forever), and it exits
//! when the target does. The offset file ([`fake`]) says how the fake clock relates
//! to the real one: bump, skew, strobe or reset; it can change at any moment and the
//! change shows within a millisecond.
//!
//! Needs root (or CAP_SYS_PTRACE and no_new_privs), Linux 5.0 or later, and x86-64:
//! system call numbers and the auxiliary vector are architecture specific, and on
//! anything else [`supervisor::supervise`] fails with [`Error::Unsupported`].

pub mod fake;
pub mod supervisor;

pub use fake::{format_duration, parse_duration, parse_rate, FakeClock, OffsetFile, Strobe};

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("offset file {path}: {message}")]
    BadOffsetFile { path: PathBuf, message: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("clock supervisor: {0}")]
    Supervisor(String),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
