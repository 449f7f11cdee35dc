//! The few things this crate asks of the system: running a program, reading `/proc`,
//! entering a namespace, sending a signal. Nothing here knows what a cluster is.

use std::fs::File;
use std::net::SocketAddrV4;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Where `ip netns add` mounts named namespaces.
pub(crate) const NETNS_RUN_DIR: &str = "/run/netns";

/// Proxy variables that would send a lab request off the machine to a proxy.
const PROXY_VARS: [&str; 6] = [
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
];

/// Removes proxy settings, so that a request for a lab address goes where its route says.
pub(crate) fn without_proxies(cmd: &mut Command) -> &mut Command {
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd
}

pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion; failure to start it is an error, a non-zero exit is not.
pub(crate) fn output(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("cannot run `{}`", describe(cmd)), e))
}

/// Runs `cmd` and returns its stdout; a non-zero exit is an [`Error::Command`].
pub(crate) fn run(cmd: &mut Command) -> Result<String> {
    let out = output(cmd)?;
    if !out.status.success() {
        return Err(Error::Command {
            command: describe(cmd),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip ARGS...`.
pub(crate) fn ip(args: &[&str]) -> Result<String> {
    run(Command::new("ip").args(args))
}

/// The first executable called `name` on `PATH`.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
        })
}

/// The path of `program`, or an error naming the Debian `package` that installs it.
pub fn require_program(program: &'static str, package: &'static str) -> Result<PathBuf> {
    find_program(program).ok_or(Error::MissingProgram { program, package })
}

/// Asks `ready` every `every` until it answers (`Some`) or fails, or `deadline`
/// passes (`Ok(None)`: the caller says what did not happen). It asks at least once,
/// and once more after the deadline, so a slow machine never loses an answer
/// that came while it slept. Every wait of this crate is one of these.
pub(crate) fn poll<T>(
    deadline: Instant,
    every: Duration,
    mut ready: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    loop {
        if let Some(t) = ready()? {
            return Ok(Some(t));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        std::thread::sleep(every);
    }
}

/// An error saying `action` needs root, unless this process is root.
pub fn require_root(action: &'static str) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::NotRoot { action })
    }
}

/// The namespace id (nsfs inode) of the named network namespace, if it exists.
pub(crate) fn netns_inode(name: &str) -> Option<u64> {
    std::fs::metadata(Path::new(NETNS_RUN_DIR).join(name))
        .ok()
        .map(|m| m.ino())
}

/// `/proc/PID/cmdline` split into arguments.
pub(crate) fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// `net:[4026532314]` -> 4026532314.
pub(crate) fn parse_ns_link(link: &str) -> Option<u64> {
    link.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

fn cmdline(pid: i32) -> Option<Vec<String>> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|raw| parse_cmdline(&raw))
}

pub(crate) fn pid_netns(pid: i32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    parse_ns_link(&link.to_string_lossy())
}

/// What a recorded pid is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The process we started: same command line, inside the recorded namespace.
    Ours,
    /// No such process, or a zombie (it has no command line any more).
    Gone,
    /// Someone else's process, with this command line.
    Foreign(String),
}

pub(crate) fn classify(found: Option<Vec<String>>, argv: &[String], in_netns: bool) -> Owner {
    match found {
        None => Owner::Gone,
        Some(found) if found.is_empty() => Owner::Gone,
        Some(found) if found == argv && in_netns => Owner::Ours,
        Some(found) => Owner::Foreign(found.join(" ")),
    }
}

/// Checks that `pid` runs exactly `argv` inside the namespace `netns_inode`: the only test
/// this crate trusts before it signals a process.
pub(crate) fn owner(pid: i32, argv: &[String], netns_inode: Option<u64>) -> Owner {
    let in_netns = netns_inode.is_some() && pid_netns(pid) == netns_inode;
    classify(cmdline(pid), argv, in_netns)
}

/// The state letter of `/proc/PID/stat` (R, S, T for stopped, Z for zombie...).
pub(crate) fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: the state follows the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

/// Every process whose network namespace is `inode`, found through `/proc` (so it works
/// even after the namespace's name was removed).
pub(crate) fn pids_in_netns(inode: u64) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid_netns(pid) == Some(inode))
        .collect()
}

pub(crate) fn signal(pid: i32, sig: Signal) -> Result<()> {
    match nix::sys::signal::kill(Pid::from_raw(pid), sig) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(Error::errno(format!("cannot send {sig} to pid {pid}"), e)),
    }
}

/// Socket inodes listening on `addr`, from a `/proc/PID/net/tcp` table.
pub(crate) fn listening_inodes(table: &str, addr: SocketAddrV4) -> Vec<u64> {
    let want_ip = u32::from_ne_bytes(addr.ip().octets());
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (ip, port) = f.get(1)?.split_once(':')?;
            let listening = *f.get(3)? == "0A";
            let matches = u32::from_str_radix(ip, 16).ok()? == want_ip
                && u16::from_str_radix(port, 16).ok()? == addr.port();
            if listening && matches {
                f.get(9)?.parse().ok()
            } else {
                None
            }
        })
        .collect()
}

/// Whether `pid` itself holds a socket listening on `addr` (in its own namespace): a
/// connect would also succeed if some other process held the port.
pub(crate) fn listens(pid: i32, addr: SocketAddrV4) -> bool {
    let Ok(table) = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")) else {
        return false;
    };
    let inodes = listening_inodes(&table, addr);
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy();
            target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
                .is_some_and(|inode| inodes.contains(&inode))
        })
    })
}

/// Starts `argv` inside the named network namespace, in a session of its own (so it
/// outlives us and a Ctrl-C in our terminal), stdin closed, stdout and stderr appended to
/// `log`, with a clean environment (etcd reads `ETCD_*` variables). When this returns,
/// the child has already exec'd, so its `/proc/PID/cmdline` is `argv`.
pub(crate) fn spawn_in_netns(netns: &str, argv: &[String], log: &Path) -> Result<Child> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::InvalidConfig("empty command line".into()))?;
    let ns_path = Path::new(NETNS_RUN_DIR).join(netns);
    let ns = File::open(&ns_path)
        .map_err(|e| Error::io(format!("cannot open namespace {}", ns_path.display()), e))?;
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| Error::io(format!("cannot open log {}", log.display()), e))?;
    let err = out
        .try_clone()
        .map_err(|e| Error::io(format!("cannot open log {}", log.display()), e))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: the closure runs between fork and exec and makes only two system calls
    // (setns, setsid), which are async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)?;
            nix::unistd::setsid()?;
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| Error::io(format!("cannot start `{}` in {netns}", argv.join(" ")), e))
}

/// A command that runs `program` inside the named network namespace (`ip netns exec`).
pub(crate) fn netns_command(netns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns, program]);
    without_proxies(&mut cmd);
    cmd
}

/// How to read a log file: the database plug-in's format, or plain text.
pub(crate) trait LogFormat {
    /// One line for a human.
    fn render(&self, line: &str) -> String;
    /// Whether a line looks like the cause of a failure.
    fn is_cause(&self, line: &str) -> bool;
}

/// A plain-text log (sshd's): lines as they are, error-looking lines as causes.
pub(crate) struct PlainLog;

impl LogFormat for PlainLog {
    fn render(&self, line: &str) -> String {
        line.to_owned()
    }
    fn is_cause(&self, line: &str) -> bool {
        let l = line.to_ascii_lowercase();
        ["error:", "flag provided"].iter().any(|k| l.contains(k))
    }
}

impl<T: crate::db::Database + ?Sized> LogFormat for T {
    fn render(&self, line: &str) -> String {
        self.render_log_line(line)
    }
    fn is_cause(&self, line: &str) -> bool {
        self.looks_like_a_cause(line)
    }
}

/// What to show of a member's log when something failed: its last `n` lines, preceded by
/// up to three earlier lines that look like the cause (etcd prints a bad flag's error
/// first and its usage after), each rendered by the log's format.
pub(crate) fn log_excerpt<F: LogFormat + ?Sized>(path: &Path, n: usize, format: &F) -> String {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return format!("  (cannot read {}: {e})", path.display()),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return "  (empty)".into();
    }
    let start = lines.len().saturating_sub(n);
    let causes: Vec<&str> = lines[..start]
        .iter()
        .filter(|l| format.is_cause(l))
        .copied()
        .collect();
    let mut out: Vec<String> = causes[causes.len().saturating_sub(3)..]
        .iter()
        .map(|l| shown(&format.render(l)))
        .collect();
    if start > 0 {
        out.push(format!("  ... ({start} earlier lines)"));
    }
    out.extend(lines[start..].iter().map(|l| shown(&format.render(l))));
    out.join("\n")
}

/// A rendered log line, indented and cut to a readable length.
fn shown(rendered: &str) -> String {
    const MAX: usize = 300;
    let mut rendered = format!("  {rendered}");
    if rendered.len() > MAX {
        let cut = (0..=MAX)
            .rev()
            .find(|&i| rendered.is_char_boundary(i))
            .unwrap_or(0);
        rendered.truncate(cut);
        rendered.push_str(" ...");
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn cmdline_splits_on_nul_and_drops_the_last_one() {
        assert_eq!(
            parse_cmdline(b"/usr/bin/etcd\0--name\0n1\0"),
            argv("/usr/bin/etcd --name n1")
        );
        assert_eq!(parse_cmdline(b"a\0\0b\0"), vec!["a", "", "b"]);
        assert!(parse_cmdline(b"").is_empty());
    }

    #[test]
    fn only_the_exact_command_line_in_our_namespace_is_ours() {
        let ours = argv("/usr/bin/etcd --name n1 --data-dir /tmp/x/n1/data");
        assert_eq!(classify(Some(ours.clone()), &ours, true), Owner::Ours);
        assert_eq!(classify(None, &ours, true), Owner::Gone);
        assert_eq!(classify(Some(vec![]), &ours, true), Owner::Gone, "zombie");
        // Same program, another cluster's data dir: a reused pid.
        let other = argv("/usr/bin/etcd --name n1 --data-dir /tmp/y/n1/data");
        assert_eq!(
            classify(Some(other), &ours, true),
            Owner::Foreign("/usr/bin/etcd --name n1 --data-dir /tmp/y/n1/data".into())
        );
        assert!(matches!(
            classify(Some(ours.clone()), &ours, false),
            Owner::Foreign(_)
        ));
        let prefix = argv("/usr/bin/etcd --name n1");
        assert!(matches!(
            classify(Some(prefix), &ours, true),
            Owner::Foreign(_)
        ));
    }

    #[test]
    fn ns_links_parse() {
        assert_eq!(parse_ns_link("net:[4026532314]"), Some(4026532314));
        assert_eq!(parse_ns_link("mnt:[4026532314]"), None);
        assert_eq!(parse_ns_link("net:[x]"), None);
    }

    #[test]
    fn listening_sockets_are_found_by_address_and_state() {
        // Trimmed from a member's /proc/PID/net/tcp: 10.77.1.1:2379 and 127.0.0.1:2379
        // listening, and an established connection from 10.77.1.1:2379.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 01014D0A:094B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:094B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31002 1 0000000000000000 100 0 0 10 0
   2: 01014D0A:094B FE014D0A:B4C2 01 00000000:00000000 00:00000000 00000000     0        0 31003 1 0000000000000000 20 4 30 10 -1
";
        let addr = |a: [u8; 4], port| SocketAddrV4::new(a.into(), port);
        assert_eq!(
            listening_inodes(table, addr([10, 77, 1, 1], 2379)),
            vec![31001]
        );
        assert_eq!(
            listening_inodes(table, addr([127, 0, 0, 1], 2379)),
            vec![31002]
        );
        assert!(listening_inodes(table, addr([10, 77, 1, 1], 2380)).is_empty());
        assert!(listening_inodes(table, addr([10, 77, 1, 2], 2379)).is_empty());
        assert!(listening_inodes("", addr([10, 77, 1, 1], 2379)).is_empty());
    }

    #[test]
    fn etcd_log_lines_read_as_text_and_the_cause_is_kept() {
        let etcd = crate::db::etcd::Etcd;
        let line = r#"{"level":"fatal","ts":"2026-11-22T06:02:33.729Z","caller":"etcdmain/etcd.go:271","msg":"listener failed","error":"listen tcp 10.77.1.1:2379: bind: address already in use"}"#;
        assert_eq!(
            shown(&etcd.render(line)),
            "  06:02:33.729 fatal listener failed error=listen tcp 10.77.1.1:2379: bind: address already in use"
        );
        assert_eq!(shown(&etcd.render("plain text")), "  plain text");
        assert!(etcd.is_cause(line));

        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("etcd.log");
        let mut text = String::from("flag provided but not defined: -no-such-flag\n");
        for i in 0..40 {
            text.push_str(&format!("usage line {i}\n"));
        }
        std::fs::write(&log, text).unwrap();
        let excerpt = log_excerpt(&log, 5, &etcd);
        let lines: Vec<&str> = excerpt.lines().collect();
        assert_eq!(lines[0], "  flag provided but not defined: -no-such-flag");
        assert_eq!(lines[1], "  ... (36 earlier lines)");
        assert_eq!(lines[6], "  usage line 39");
        assert_eq!(lines.len(), 7);
        assert!(log_excerpt(&dir.path().join("missing"), 5, &PlainLog).contains("cannot read"));
    }

    #[test]
    fn our_own_process_state_is_readable() {
        let me = i32::try_from(std::process::id()).expect("pid fits i32");
        assert!(matches!(proc_state(me), Some('R' | 'S')));
    }
}
