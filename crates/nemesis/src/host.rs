//! Where a fault's commands run: a [`Host`], one per node.
//!
//! Two kinds. A local lab member runs commands in its own network namespace
//! (`ip netns exec sbN-nI ...`). A remote node runs them over the system `ssh`,
//! through one multiplexed connection per node (a master we start and close), in
//! batch mode (never a password prompt) with a connect timeout:
//!
//! ```text
//!   Host::netns("n1", "sb1-n1").run(&["iptables", "-w", "-S"])
//!       ip netns exec sb1-n1 iptables -w -S
//!   Host::ssh(target).run(&["iptables", "-w", "-S"])
//!       ssh -o BatchMode=yes -o ControlPath=STATE/ssh-n1 ... -p 22 -l root 10.77.1.1 -- iptables -w -S
//! ```
//!
//! An ssh that cannot reach its node exits 255; that is [`Error::Unreachable`], naming
//! the node, its address and what ssh said, never a fault's failure.

use crate::{Error, Result};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a command printed, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The exit code; `None` if a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// How to reach a node over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The node's name (n1, ...), for messages.
    pub node: String,
    /// Its address, as ssh connects to it.
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The private key (`-i`); ssh's defaults when `None`.
    pub identity: Option<PathBuf>,
    /// A known_hosts file that must hold the node's key; without one, keys in the
    /// user's own known_hosts still count, and a new host's key is accepted on
    /// first use into `state_known_hosts` (never into the user's file).
    pub known_hosts: Option<PathBuf>,
    /// Where keys accepted on first use go (in the nemesis state directory).
    pub state_known_hosts: PathBuf,
    /// Seconds ssh waits for the connection.
    pub connect_timeout: u64,
    /// Seconds a command may run before it is given up (a hung `systemctl start`
    /// must not hang the harness).
    pub command_timeout: u64,
    /// The multiplexing socket (in the nemesis state directory).
    pub control_path: PathBuf,
    /// More `-o` options, as in ssh_config (`ProxyJump=bastion`).
    pub options: Vec<String>,
    /// Whether ssh reads the user's and the system's ssh_config. Off (`-F none`)
    /// unless the user allowed other machines: a `Host 127.0.0.1` block with a
    /// `HostName` or a `ProxyCommand` would otherwise send SSH somewhere no check
    /// looked at.
    pub read_config: bool,
}

/// A path as an ssh_config value: quoted (spaces), with `%` doubled (ssh expands
/// `%h`, `%p`, ... in these paths).
fn config_path(p: &std::path::Path) -> String {
    format!("\"{}\"", p.display().to_string().replace('%', "%%"))
}

impl SshTarget {
    /// Every ssh argument before the remote command.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        if !self.read_config {
            a.push("-F".into());
            a.push("none".into());
        }
        let mut o = |opt: String| {
            a.push("-o".into());
            a.push(opt);
        };
        o("BatchMode=yes".into());
        o(format!("ConnectTimeout={}", self.connect_timeout));
        o(format!("ControlPath={}", config_path(&self.control_path)));
        o("ServerAliveInterval=5".into());
        o("ServerAliveCountMax=3".into());
        o("LogLevel=ERROR".into());
        match &self.known_hosts {
            Some(k) => {
                o(format!("UserKnownHostsFile={}", config_path(k)));
                o("StrictHostKeyChecking=yes".into());
            }
            None => {
                // ssh checks every file listed and adds new keys to the first.
                o(format!(
                    "UserKnownHostsFile={} ~/.ssh/known_hosts",
                    config_path(&self.state_known_hosts)
                ));
                o("StrictHostKeyChecking=accept-new".into());
            }
        }
        if self.identity.is_some() {
            o("IdentitiesOnly=yes".into());
        }
        for extra in &self.options {
            o(extra.clone());
        }
        if let Some(id) = &self.identity {
            a.push("-i".into());
            a.push(id.display().to_string());
        }
        a.extend([
            "-p".into(),
            self.port.to_string(),
            "-l".into(),
            self.user.clone(),
            "-T".into(),
            self.host.clone(),
        ]);
        a
    }

    fn ssh(&self) -> Command {
        use std::os::unix::process::CommandExt as _;
        let mut cmd = Command::new("ssh");
        cmd.args(self.args());
        // Its own process group: a Ctrl-C at the terminal goes to the harness, which
        // heals, and not to the ssh links that heal needs.
        cmd.process_group(0);
        cmd
    }

    /// Where the master connection writes what ssh says (read when it fails).
    fn master_log(&self) -> PathBuf {
        let mut p = self.control_path.clone().into_os_string();
        p.push(".log");
        PathBuf::from(p)
    }

    fn unreachable(&self, stderr: &str) -> Error {
        Error::Unreachable {
            node: self.node.clone(),
            addr: format!("{}@{}:{}", self.user, self.host, self.port),
            message: last_lines(stderr),
        }
    }
}

/// The multiplexed connection to one node: a master we started (and close), or one
/// that was already there (another splitbrain process's), which we only use.
#[derive(Debug)]
struct SshConn {
    target: SshTarget,
    master: Mutex<Option<Child>>,
}

impl SshConn {
    fn check(&self) -> bool {
        self.target
            .ssh()
            .args(["-O", "check"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Opens the master connection, or finds the one that is there.
    fn connect(&self) -> Result<()> {
        if self.check() {
            return Ok(());
        }
        // A socket left by a master that died is in the way of a new one.
        let _ = std::fs::remove_file(&self.target.control_path);
        // A file, not a pipe: nobody reads a pipe once connected, and a later write
        // to a closed one would kill the master with SIGPIPE.
        let log_path = self.target.master_log();
        let log = std::fs::File::create(&log_path)
            .map_err(|e| Error::State(log_path.clone(), e.to_string()))?;
        let mut child = self
            .target
            .ssh()
            .args(["-N", "-o", "ControlMaster=yes", "-o", "ControlPersist=no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                Error::Command(
                    "ssh".into(),
                    format!("{e} (is openssh-client installed? `sudo scripts/setup` installs it)"),
                )
            })?;
        let deadline = Instant::now() + Duration::from_secs(self.target.connect_timeout.max(1) + 5);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                let err = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(self.target.unreachable(&err));
            }
            if self.target.control_path.exists() && self.check() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(self
                    .target
                    .unreachable("no connection within the connect timeout"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        *self.master.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        Ok(())
    }

    /// Asks whatever master listens on our control socket to exit (`ssh -O exit`).
    fn exit_master(&self) {
        let _ = self
            .target
            .ssh()
            .args(["-O", "exit"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Closes the master if it is ours, and waits for it.
    fn close(&self) {
        let Some(mut child) = self.master.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        self.exit_master();
        let deadline = Instant::now() + Duration::from_secs(2);
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.wait();
    }
}

impl Drop for SshConn {
    fn drop(&mut self) {
        self.close();
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Netns(String),
    Ssh(Arc<SshConn>),
}

/// A node where commands run: a lab member's namespace, or a remote node over SSH.
/// Clones share the SSH connection, which closes when the last clone goes.
#[derive(Debug, Clone)]
pub struct Host {
    name: String,
    kind: Kind,
}

impl Host {
    /// Lab member `name`, whose commands run in network namespace `netns`.
    pub fn netns(name: &str, netns: &str) -> Host {
        Host {
            name: name.to_string(),
            kind: Kind::Netns(netns.to_string()),
        }
    }

    /// A remote node: nothing is connected until [`Host::connect`].
    pub fn ssh(target: SshTarget) -> Host {
        Host {
            name: target.node.clone(),
            kind: Kind::Ssh(Arc::new(SshConn {
                target,
                master: Mutex::new(None),
            })),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where it is, for messages: `namespace sb1-n1` or `root@10.77.1.1:22`.
    pub fn address(&self) -> String {
        match &self.kind {
            Kind::Netns(ns) => format!("namespace {ns}"),
            Kind::Ssh(c) => format!("{}@{}:{}", c.target.user, c.target.host, c.target.port),
        }
    }

    /// Opens the SSH master connection (nothing to do for a namespace): the check that
    /// the node is reachable, before any fault.
    pub fn connect(&self) -> Result<()> {
        match &self.kind {
            Kind::Netns(_) => Ok(()),
            Kind::Ssh(c) => c.connect(),
        }
    }

    /// Closes an SSH master connection this process opened.
    pub fn close(&self) {
        if let Kind::Ssh(c) = &self.kind {
            c.close();
        }
    }

    /// Tells a master connection left by another (perhaps killed) process to exit.
    pub fn close_any_master(&self) {
        if let Kind::Ssh(c) = &self.kind {
            c.close();
            c.exit_master();
        }
    }

    /// Runs `argv` (with `input` on stdin). `Err` only when it could not run at all (no
    /// such program here, the node unreachable); a non-zero exit is in the output.
    pub fn run_with(&self, argv: &[&str], input: Option<&str>) -> Result<Output> {
        let mut cmd = match &self.kind {
            Kind::Netns(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).args(argv);
                c
            }
            Kind::Ssh(c) => {
                let mut cmd = c.target.ssh();
                cmd.arg("--").arg(shell_words(argv));
                cmd
            }
        };
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let describe = || format!("{} on {}", argv.join(" "), self.name);
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::Command(describe(), e.to_string()))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            let _ = stdin.write_all(text.as_bytes());
        }
        let timeout = match &self.kind {
            Kind::Ssh(c) => Some(Duration::from_secs(c.target.command_timeout)),
            Kind::Netns(_) => None,
        };
        let out = match wait_output(child, timeout)
            .map_err(|e| Error::Command(describe(), e.to_string()))?
        {
            Some(out) => out,
            None => {
                return Err(Error::OnHost {
                    node: self.name.clone(),
                    addr: self.address(),
                    command: shell_words(argv),
                    message: format!(
                        "no answer within {} s (`command_timeout` in the nodes file); \
                         it may still be running there",
                        timeout.map_or(0, |t| t.as_secs())
                    ),
                })
            }
        };
        if let Kind::Ssh(c) = &self.kind {
            // ssh says 255 when it cannot reach the node, but a remote command may
            // exit 255 too: the master connection still answering tells them apart.
            if out.code == Some(255) && !c.check() {
                return Err(c.target.unreachable(&out.stderr));
            }
        }
        Ok(out)
    }

    pub fn run(&self, argv: &[&str]) -> Result<Output> {
        self.run_with(argv, None)
    }

    /// Runs a shell script (`sh -c SCRIPT`): user command templates, `date` arithmetic.
    pub fn shell(&self, script: &str) -> Result<Output> {
        self.run(&["sh", "-c", script])
    }

    /// Runs `argv` and fails unless it exits 0, with what it printed on stderr.
    pub fn check(&self, argv: &[&str]) -> Result<String> {
        let out = self.run(argv)?;
        self.ok(argv.join(" "), out)
    }

    /// As [`Host::check`], for a shell script.
    pub fn check_shell(&self, script: &str) -> Result<String> {
        let out = self.shell(script)?;
        self.ok(script.to_string(), out)
    }

    /// An exit other than 0 as an error naming the node, its address and the command.
    pub fn ok(&self, command: String, out: Output) -> Result<String> {
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(Error::OnHost {
                node: self.name.clone(),
                addr: self.address(),
                command,
                message: format!(
                    "exit {}: {}",
                    out.code.map_or("by a signal".into(), |c| c.to_string()),
                    last_lines(&out.stderr)
                ),
            })
        }
    }
}

/// Waits for `child` and what it prints, for at most `timeout`: `None` when it ran
/// longer (it is killed).
fn wait_output(mut child: Child, timeout: Option<Duration>) -> std::io::Result<Option<Output>> {
    fn drain(r: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = timeout.map(|t| Instant::now() + t);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let text = |h: std::thread::JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned()
    };
    Ok(Some(Output {
        code: status.code(),
        stdout: text(stdout),
        stderr: text(stderr),
    }))
}

/// The last few non-empty lines of a program's stderr, on one line.
fn last_lines(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return "no message".into();
    }
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

/// `s` quoted for a POSIX shell, untouched when it needs no quotes.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// One command string for the remote shell that ssh hands its arguments to.
pub fn shell_words(argv: &[&str]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_survive_the_remote_shell() {
        assert_eq!(quote("iptables"), "iptables");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(
            shell_words(&["sh", "-c", "echo $((1 + 2)) > /tmp/x"]),
            "sh -c 'echo $((1 + 2)) > /tmp/x'"
        );
    }

    #[test]
    fn ssh_is_batch_multiplexed_and_checks_the_host_key() {
        let t = SshTarget {
            node: "n1".into(),
            host: "10.77.1.1".into(),
            port: 2222,
            user: "root".into(),
            identity: Some("/lab/ssh/id_ed25519".into()),
            known_hosts: Some("/lab/ssh/known_hosts".into()),
            connect_timeout: 3,
            command_timeout: 60,
            control_path: "/lab/nodes.nemesis/ssh-n1".into(),
            state_known_hosts: "/lab/nodes.nemesis/known_hosts".into(),
            options: vec![],
            read_config: false,
        };
        let a = t.args().join(" ");
        for want in [
            "-o BatchMode=yes",
            "-o ConnectTimeout=3",
            "-o ControlPath=\"/lab/nodes.nemesis/ssh-n1\"",
            "-o UserKnownHostsFile=\"/lab/ssh/known_hosts\" -o StrictHostKeyChecking=yes",
            "-i /lab/ssh/id_ed25519",
            "-p 2222 -l root -T 10.77.1.1",
        ] {
            assert!(a.contains(want), "{want} not in {a}");
        }
        assert!(a.ends_with("10.77.1.1"), "{a}");
    }

    #[test]
    fn without_allow_remote_no_ssh_config_is_read() {
        let mut t = SshTarget {
            node: "n1".into(),
            host: "127.0.0.1".into(),
            port: 2201,
            user: "root".into(),
            identity: None,
            known_hosts: Some("/my 100%/known_hosts".into()),
            connect_timeout: 3,
            command_timeout: 60,
            control_path: "/s/ssh-n1".into(),
            state_known_hosts: "/s/known_hosts".into(),
            options: vec![],
            read_config: false,
        };
        let a = t.args();
        assert_eq!(a[..2], ["-F", "none"], "{a:?}");
        assert!(
            a.contains(&"UserKnownHostsFile=\"/my 100%%/known_hosts\"".to_string()),
            "{a:?}"
        );
        t.read_config = true;
        assert!(!t.args().contains(&"-F".to_string()));
        // Without a known_hosts of the node's, new keys go to the state directory.
        t.known_hosts = None;
        let a = t.args().join(" ");
        assert!(
            a.contains("-o UserKnownHostsFile=\"/s/known_hosts\" ~/.ssh/known_hosts -o StrictHostKeyChecking=accept-new"),
            "{a}"
        );
    }

    #[test]
    fn a_command_that_runs_too_long_is_given_up() {
        let spawn = |script: &str| {
            Command::new("sh")
                .args(["-c", script])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        // An argument no other process has, so /proc tells whether it still runs.
        let nap = format!("30.{}", std::process::id());
        let child = spawn(&format!("exec sleep {nap}"));
        let pid = child.id();
        let out = wait_output(child, Some(Duration::from_millis(200))).unwrap();
        assert_eq!(out, None, "given up, not waited for");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert_ne!(
            String::from_utf8_lossy(&cmdline),
            format!("sleep\0{nap}\0"),
            "the given-up child is killed and reaped"
        );
        let out = wait_output(
            spawn("echo hi; echo oops >&2; exit 3"),
            Some(Duration::from_secs(30)),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (Some(3), "hi\n", "oops\n")
        );
    }

    #[test]
    fn stderr_is_cut_to_its_last_lines() {
        assert_eq!(last_lines("\n a \nb\n\nc\nd\n"), "b / c / d");
        assert_eq!(last_lines(""), "no message");
    }
}
