//! Processes we stop, pinned by a pidfd, and waited for until they are gone: nothing
//! a command started outlives it.
//!
//! ```text
//!   pin (pidfd_open) ─► check /proc: ours? ─► SIGTERM ─► up to TERM_GRACE ─► SIGKILL
//!        ─► exited (every thread) ─► reaped: by us (our child) or by its parent
//! ```
//!
//! A signal goes through the pidfd, so it reaches the process that was checked or
//! nobody, never one that reused its pid. "Exited" is not enough for a caller who
//! next counts processes: a dead process stays in `/proc` (a zombie) until its
//! parent collects it. Our own children we collect ourselves, through the pidfd
//! (`waitid(P_PIDFD)`: exactly that process). Processes another command started
//! (a lab brought up by `splitbrain cluster up`, which has exited) belong to init
//! once orphaned, and we wait until it has collected them (1.5 to 2 s late on this
//! project's VMs) or the pid names another process.
//!
//! Children this process spawned are adopted ([`adopt`]): whichever `Cluster`
//! value later sees them dead collects them and learns how they ended ([`reap`]).

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::process::Child;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::Signal;

use crate::error::{Error, Result};
use crate::sys;

/// How long a process asked to stop (SIGTERM) gets before SIGKILL. etcd's
/// followers exit in milliseconds; a leader whose followers stop with it waits for
/// a leadership transfer that cannot happen (seconds): a lab's data is thrown away
/// anyway, so it does not get long.
pub const TERM_GRACE: Duration = Duration::from_secs(1);
/// How long a killed process may take to be gone from `/proc`: its parent's wait
/// included, when that parent is not us.
const REAP_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the waits look.
const POLL: Duration = Duration::from_millis(5);

/// A process pinned by a pidfd: signals reach it or nobody, and the pidfd tells
/// when it has exited.
#[derive(Debug)]
pub struct Pinned {
    pid: i32,
    fd: OwnedFd,
    /// Its start time (`/proc/PID/stat` field 22), which tells it from a process
    /// that reuses its pid once it is gone.
    start: Option<u64>,
}

/// What `waitid` says of a pinned process.
enum Wait {
    /// Our child, which had exited: collected now, with how it ended.
    Reaped(String),
    /// Our child, still running.
    Running,
    /// Not our child (or collected already): its parent collects it.
    NotOurs,
}

impl Pinned {
    /// Pins `pid`; `None` if there is no such process. Check that it is the process
    /// you mean *after* pinning: from then on the pid cannot turn into another one.
    pub fn open(pid: i32) -> Option<Pinned> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
        // SAFETY: the kernel just gave us this fd; nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Some(Pinned {
            pid,
            fd,
            start: start_time(pid),
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `sig` to the pinned process. One that has exited is not signalled, and
    /// that is no error.
    pub fn signal(&self, sig: Signal) {
        // SAFETY: a valid pidfd, a signal number, no siginfo, no flags. ESRCH (it
        // exited) is what we want anyway.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                sig as i32,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
    }

    /// Whether every thread of the process has exited (its files, sockets
    /// included, are closed). It may still be a zombie.
    pub fn exited(&self) -> bool {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n != 0
    }

    /// Whether the process is gone from `/proc`: collected by us (our child, which
    /// this call collects once it has exited) or by its parent, or its pid now
    /// names another process.
    pub fn gone(&self) -> bool {
        match self.wait() {
            Wait::Reaped(_) => {
                forget(self.pid);
                true
            }
            Wait::Running => false,
            Wait::NotOurs => match start_time(self.pid) {
                None => true,
                Some(now) => Some(now) != self.start,
            },
        }
    }

    fn wait(&self) -> Wait {
        // SAFETY: siginfo_t is plain data; zeroed is its "nothing happened" value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pidfd and a siginfo_t to fill; WNOHANG: no wait.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                self.fd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            )
        };
        if r != 0 {
            return Wait::NotOurs; // ECHILD
        }
        // SAFETY: waitid filled `info` (or left it zeroed: si_pid 0 means running).
        if unsafe { info.si_pid() } == 0 {
            return Wait::Running;
        }
        // SAFETY: as above; si_status is the exit code or the signal number.
        let status = unsafe { info.si_status() };
        Wait::Reaped(match info.si_code {
            libc::CLD_EXITED => format!("exit status: {status}"),
            _ => match Signal::try_from(status) {
                Ok(sig) => format!("signal: {status} ({sig})"),
                Err(_) => format!("signal: {status}"),
            },
        })
    }
}

/// `/proc/PID/stat` field 22: when the process started, in clock ticks since boot.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// One line about a process that would not go: its state and parent.
fn describe(pid: i32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    let mut fields = rest.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some("Z"), Some(parent)) => {
            format!("pid {pid} (exited; its parent, pid {parent}, has not collected it)")
        }
        (Some(state), _) => format!("pid {pid} (state {state})"),
        _ => format!("pid {pid}"),
    }
}

/// Children this process spawned and has not collected, by pid (a child's pid
/// stays its own until we collect it).
static CHILDREN: Mutex<BTreeMap<i32, Pinned>> = Mutex::new(BTreeMap::new());

fn children() -> MutexGuard<'static, BTreeMap<i32, Pinned>> {
    // A panic elsewhere cannot leave the map inconsistent: take it as it is.
    CHILDREN.lock().unwrap_or_else(|p| p.into_inner())
}

fn forget(pid: i32) {
    children().remove(&pid);
}

/// Keeps a child we spawned (and lets go of its `Child`), so that whoever sees it
/// dead later, in this process, collects it. Returns its pid.
pub(crate) fn adopt(child: Child) -> Result<i32> {
    let pid = i32::try_from(child.id())
        .map_err(|_| Error::InvalidConfig(format!("pid {} does not fit in an i32", child.id())))?;
    // Not collected yet, so the pid is still this child's: the pin cannot miss.
    if let Some(pinned) = Pinned::open(pid) {
        children().insert(pid, pinned);
    }
    // Dropping a `Child` neither kills nor waits.
    drop(child);
    Ok(pid)
}

/// Collects `pid` if it is a child of ours that has exited, and says how it ended.
pub(crate) fn reap(pid: i32) -> Option<String> {
    let mut children = children();
    match children.get(&pid)?.wait() {
        Wait::Reaped(status) => {
            children.remove(&pid);
            Some(status)
        }
        Wait::Running => None,
        Wait::NotOurs => {
            children.remove(&pid);
            None
        }
    }
}

/// Waits until `p` has exited (every thread), collecting it if it is our child.
pub(crate) fn wait_exited(p: &Pinned, what: impl FnOnce() -> String) -> Result<()> {
    let deadline = Instant::now() + REAP_TIMEOUT;
    sys::poll(deadline, POLL, || Ok(p.exited().then_some(())))?.ok_or_else(|| Error::Timeout {
        what: what(),
        after: REAP_TIMEOUT,
    })?;
    reap(p.pid);
    Ok(())
}

/// Stops processes of ours and returns once every one of them is gone (see the
/// module's doc): SIGTERM (and SIGCONT, so a paused one can act on it) to `asked`;
/// up to `grace` for them, and for `followers` (processes that end when those do,
/// such as a clock handler), to exit; SIGKILL to whatever has not; then the wait
/// until each is collected.
pub fn terminate(asked: &[Pinned], followers: &[Pinned], grace: Duration) -> Result<()> {
    let all = || asked.iter().chain(followers);
    for p in asked {
        p.signal(Signal::SIGTERM);
        p.signal(Signal::SIGCONT);
    }
    // Whoever has not exited by the deadline is SIGKILLed next.
    sys::poll(Instant::now() + grace, POLL, || {
        Ok(all().all(Pinned::exited).then_some(()))
    })?;
    kill(all())
}

/// SIGKILLs `procs` (those that have not exited) and returns once every one of
/// them is gone.
pub fn kill<'a>(procs: impl Iterator<Item = &'a Pinned> + Clone) -> Result<()> {
    for p in procs.clone().filter(|p| !p.exited()) {
        p.signal(Signal::SIGKILL);
    }
    let left = || procs.clone().filter(|p| !p.gone());
    let deadline = Instant::now() + REAP_TIMEOUT;
    if sys::poll(deadline, POLL, || Ok(left().next().is_none().then_some(())))?.is_some() {
        return Ok(());
    }
    let which: Vec<String> = left().map(|p| describe(p.pid)).collect();
    Err(Error::Timeout {
        what: format!("{} going away after SIGKILL", which.join(", ")),
        after: REAP_TIMEOUT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn spawn(script: &str) -> Child {
        Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    }

    #[test]
    fn a_child_is_gone_from_proc_when_terminate_returns() {
        let pid = adopt(spawn("sleep 30")).unwrap();
        let p = Pinned::open(pid).unwrap();
        terminate(&[p], &[], TERM_GRACE).unwrap();
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "collected, not left a zombie"
        );
        assert!(!children().contains_key(&pid), "forgotten");
    }

    #[test]
    fn one_that_ignores_sigterm_is_killed_after_the_grace() {
        // `trap '' TERM` ignores SIGTERM; the shell waits on sleep in a loop.
        let child = spawn("trap '' TERM; while :; do sleep 0.05; done");
        let pid = adopt(child).unwrap();
        // Until the trap is set, SIGTERM would end it: wait until sh has run it.
        std::thread::sleep(Duration::from_millis(200));
        let p = Pinned::open(pid).unwrap();
        terminate(&[p], &[], Duration::from_millis(100)).unwrap();
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_dead_child_is_collected_with_how_it_ended() {
        let pid = adopt(spawn("exit 3")).unwrap();
        let p = Pinned::open(pid).unwrap();
        while !p.exited() {
            std::thread::sleep(POLL);
        }
        assert_eq!(reap(pid).as_deref(), Some("exit status: 3"));
        assert_eq!(reap(pid), None, "once");
        assert!(p.gone());
    }

    #[test]
    fn a_pinned_process_that_is_not_our_child_is_gone_once_its_parent_collects_it() {
        // sh's child, not ours: it is gone once sh has waited for it.
        let mut sh = Command::new("sh")
            .args(["-c", "sleep 30 & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        use std::io::BufRead as _;
        std::io::BufReader::new(sh.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid: i32 = line.trim().parse().unwrap();
        let p = Pinned::open(pid).unwrap();
        assert!(!p.gone());
        terminate(&[p], &[], TERM_GRACE).unwrap();
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
        sh.wait().unwrap();
    }
}
