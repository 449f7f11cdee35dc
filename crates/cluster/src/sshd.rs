//! An OpenSSH server inside each member's namespace (`Config::sshd`), so faults on
//! "remote nodes over SSH" are tested for real: `ssh root@10.77.N.I` lands in member
//! `nI`'s namespace, where `iptables` sees that member's rules.
//!
//! ```text
//!   DIR/ssh/host_ed25519_key   one host key for the lab (known_hosts names every member)
//!   DIR/ssh/id_ed25519         the client key; authorized_keys holds its public half
//!   DIR/ssh/known_hosts        "10.77.N.I ssh-ed25519 AAAA..." for each member
//!   DIR/nI/sshd_config         ListenAddress 10.77.N.I:22, keys above, root by key only
//! ```
//!
//! Each sshd runs in the foreground (`-D`), started like a member (its own session,
//! stdout and stderr to `DIR/nI/sshd.log`), its command line recorded in the state file
//! before it starts. OpenSSH renames its listener (`sshd: ARGV [listener] ...`), so
//! the ownership check accepts that title for the recorded command line. Teardown kills
//! the listener's sessions (its descendants) and then the listener, before the member's
//! namespace goes.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::error::{Error, Result};
use crate::pidfd::{self, Pinned};
// The record lives where it is stored (state.rs); named here too, where sshd is run.
use crate::node::Node;
use crate::state::NodeRecord;
pub(crate) use crate::state::SshdRecord;
use crate::sys;

/// Where sshd listens inside a member's namespace.
pub const SSH_PORT: u16 = 22;
/// How long `up` waits for an sshd to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the lab's members over SSH: what a nodes file needs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SshAccess {
    pub user: String,
    pub port: u16,
    /// The private key the members' sshd accept.
    pub identity: PathBuf,
    /// Every member's host key, by address.
    pub known_hosts: PathBuf,
}

pub(crate) fn ssh_dir(dir: &Path) -> PathBuf {
    dir.join("ssh")
}

pub(crate) fn access(dir: &Path) -> SshAccess {
    let ssh = ssh_dir(dir);
    SshAccess {
        user: "root".into(),
        port: SSH_PORT,
        identity: ssh.join("id_ed25519"),
        known_hosts: ssh.join("known_hosts"),
    }
}

fn config_path(node: &Node) -> PathBuf {
    node.log_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("sshd_config")
}

pub(crate) fn log_path(node: &Node) -> PathBuf {
    node.log_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("sshd.log")
}

/// The command line of `node`'s sshd (absolute: sshd re-executes itself).
pub(crate) fn argv(sshd: &Path, node: &Node) -> Vec<String> {
    vec![
        sshd.display().to_string(),
        "-D".into(),
        "-e".into(),
        "-f".into(),
        config_path(node).display().to_string(),
    ]
}

/// The file that marks `DIR/ssh` as made by splitbrain (so a new lab may replace it).
const MARKER: &str = "splitbrain-lab-keys";

/// Refuses a `DIR/ssh` that splitbrain did not make: `prepare` replaces the
/// directory, and a user's own one (keys, say) must never go.
pub(crate) fn check_ssh_dir(dir: &Path) -> Result<()> {
    let ssh = ssh_dir(dir);
    if ssh.exists() && !ssh.join(MARKER).exists() {
        return Err(Error::NotOurs {
            path: ssh,
            why: format!("no {MARKER} in it"),
        });
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Result<()> {
    sys::run(cmd).map(|_| ())
}

/// Creates the lab's keys and known_hosts, and each member's sshd_config.
pub(crate) fn prepare(dir: &Path, nodes: &[Node]) -> Result<()> {
    let ssh = ssh_dir(dir);
    // A previous lab in this directory had other addresses or keys: start afresh,
    // but only over a directory of ours.
    check_ssh_dir(dir)?;
    let _ = std::fs::remove_dir_all(&ssh);
    std::fs::create_dir_all(&ssh)
        .map_err(|e| Error::io(format!("cannot create {}", ssh.display()), e))?;
    std::fs::write(
        ssh.join(MARKER),
        "keys of a splitbrain lab (cluster up --sshd): replaced by the next one\n",
    )
    .map_err(|e| Error::io(format!("cannot write in {}", ssh.display()), e))?;
    let keygen = sys::require_program("ssh-keygen", "openssh-client")?;
    let host_key = ssh.join("host_ed25519_key");
    let acc = access(dir);
    for (key, comment) in [
        (&host_key, "splitbrain-lab-host"),
        (&acc.identity, "splitbrain-lab"),
    ] {
        run(Command::new(&keygen)
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(key))?;
    }
    let read = |p: PathBuf| {
        std::fs::read_to_string(&p)
            .map_err(|e| Error::io(format!("cannot read {}", p.display()), e))
    };
    let client_pub = read(acc.identity.with_extension("pub"))?;
    let host_pub = read(host_key.with_extension("pub"))?;
    let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
    let write = |p: &Path, text: String| {
        std::fs::write(p, text).map_err(|e| Error::io(format!("cannot write {}", p.display()), e))
    };
    let authorized = ssh.join("authorized_keys");
    write(&authorized, client_pub)?;
    let known: String = nodes
        .iter()
        .map(|n| format!("{} {}\n", n.addr, host_pub.join(" ")))
        .collect();
    write(&acc.known_hosts, known)?;
    // Privilege separation needs this directory; the distribution's service creates it
    // at boot, and it is the package's, so it stays.
    std::fs::create_dir_all("/run/sshd")
        .map_err(|e| Error::io(String::from("cannot create /run/sshd"), e))?;
    for n in nodes {
        let parent = config_path(n);
        if let Some(p) = parent.parent() {
            std::fs::create_dir_all(p)
                .map_err(|e| Error::io(format!("cannot create {}", p.display()), e))?;
        }
        // StrictModes off: the keys live under a run directory such as /tmp, whose
        // modes sshd would refuse; this sshd listens only on the lab's own address.
        // SHLVL=1: every command runs through root's login shell, and bash sources
        // ~/.bashrc for a command from sshd unless it is nested; a slow .bashrc
        // (pyenv on this project's machines: about 300 ms) would otherwise be paid
        // by every fault command, which a lean remote host does not pay.
        let config = format!(
            "# written by splitbrain for lab member {name}: reachable only inside the lab\n\
             ListenAddress {addr}:{SSH_PORT}\n\
             HostKey {host_key}\n\
             AuthorizedKeysFile {authorized}\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             PidFile none\n\
             PrintMotd no\n\
             MaxSessions 64\n\
             MaxStartups 64\n\
             SetEnv SHLVL=1\n\
             LogLevel INFO\n",
            name = n.name,
            addr = n.addr,
            host_key = host_key.display(),
            authorized = authorized.display(),
        );
        write(&config_path(n), config)?;
        let _ = std::fs::remove_file(log_path(n));
    }
    Ok(())
}

/// Whether `pid` is the sshd started with `argv` in namespace `netns_inode`: its
/// command line is `argv`, or the listener title OpenSSH gives it.
pub(crate) fn is_ours(pid: i32, argv: &[String], netns_inode: Option<u64>) -> bool {
    match sys::owner(pid, argv, netns_inode) {
        sys::Owner::Ours => true,
        sys::Owner::Gone => false,
        sys::Owner::Foreign(found) => {
            sys::owner(pid, std::slice::from_ref(&found), netns_inode) == sys::Owner::Ours
                && is_listener_title(&found, argv)
        }
    }
}

fn is_listener_title(found: &str, argv: &[String]) -> bool {
    found
        .strip_prefix("sshd: ")
        .and_then(|rest| rest.strip_prefix(argv.join(" ").as_str()))
        .is_some_and(|rest| rest.starts_with(" [listener]"))
}

/// Waits until `node`'s sshd listens, failing with its log if it exited.
pub(crate) fn wait_listening(rec: &NodeRecord) -> Result<()> {
    let Some(sshd) = &rec.sshd else { return Ok(()) };
    let Some(pid) = sshd.pid else { return Ok(()) };
    let addr = SocketAddrV4::new(rec.node.addr, SSH_PORT);
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    let listening = sys::poll(deadline, Duration::from_millis(10), || {
        if !is_ours(pid, &sshd.argv, rec.netns_inode) {
            return Err(Error::SshdExited {
                node: rec.node.name.to_string(),
                log: log_path(&rec.node),
                tail: sys::log_excerpt(&log_path(&rec.node), 10, &sys::PlainLog),
            });
        }
        Ok(sys::listens(pid, addr).then_some(()))
    })?;
    listening.ok_or_else(|| Error::Timeout {
        what: format!("sshd of node {} listening on {addr}", rec.node.name),
        after: LISTEN_TIMEOUT,
    })
}

/// Stops `rec`'s sshd and every session it started (its descendants), only if the
/// recorded pid is still our sshd. Gone already is fine.
pub(crate) fn stop(rec: &mut NodeRecord) -> Result<()> {
    let Some(sshd) = rec.sshd.as_mut() else {
        return Ok(());
    };
    if let Some(pid) = sshd.pid {
        let argv = sshd.argv.clone();
        let inode = rec.netns_inode;
        stop_tree(pid, rec.node.name.as_str(), || is_ours(pid, &argv, inode))?;
    }
    sshd.pid = None;
    Ok(())
}

/// Stops every sshd of ours found inside `rec`'s namespace whose pid was never
/// recorded (`up` died between starting it and writing its pid), with its sessions.
pub(crate) fn stop_unrecorded(rec: &NodeRecord) -> Result<()> {
    let (Some(sshd), Some(inode)) = (&rec.sshd, rec.netns_inode) else {
        return Ok(());
    };
    for pid in sys::pids_in_netns(inode) {
        if is_ours(pid, &sshd.argv, Some(inode)) {
            stop_tree(pid, rec.node.name.as_str(), || {
                is_ours(pid, &sshd.argv, Some(inode))
            })?;
        }
    }
    Ok(())
}

/// Whether a process environment (`/proc/PID/environ`) is an SSH session's into
/// the sshd on `addr`:`port` (`SSH_CONNECTION=CLIENT CPORT SERVER SPORT`).
fn is_session_into(environ: &[u8], addr: std::net::Ipv4Addr, port: u16) -> bool {
    environ
        .split(|b| *b == 0)
        .filter_map(|kv| kv.strip_prefix(b"SSH_CONNECTION="))
        .any(|v| {
            let v = String::from_utf8_lossy(v);
            let w: Vec<&str> = v.split_whitespace().collect();
            matches!(w.as_slice(), [_, _, server, sport]
                if server.parse() == Ok(addr) && sport.parse() == Ok(port))
        })
}

/// Kills what sessions into `rec`'s sshd left in its namespace after their sshd
/// process was gone (a command still running when its client gave up: it is
/// reparented away from the sshd, so it is no descendant). Only our sshd listens
/// on the member's address, so `SSH_CONNECTION` naming it proves the origin.
pub(crate) fn stop_orphaned_sessions(rec: &NodeRecord) -> Result<()> {
    let (Some(_), Some(inode)) = (&rec.sshd, rec.netns_inode) else {
        return Ok(());
    };
    let addr = rec.node.addr;
    let is_session = |pid: i32| {
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| is_session_into(&env, addr, SSH_PORT))
    };
    let mut pinned = Vec::new();
    for pid in sys::pids_in_netns(inode) {
        let Some(p) = Pinned::open(pid) else { continue };
        // Checked after pinning: the pid cannot be another process's any more.
        if sys::pid_netns(pid) == Some(inode) && is_session(pid) {
            p.signal(Signal::SIGKILL);
            pinned.push(p);
        }
    }
    pidfd::kill(pinned.iter())
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Kills the sshd `listener` and every session under it, with no window for a
/// reused pid or a new session: the listener is pinned (a pidfd), checked to still
/// be ours (`ours`), and stopped (SIGSTOP: it accepts no new connection); then,
/// until a scan finds nothing new, each descendant is pinned, checked to still be
/// the child of a pinned process, and stopped, so none forks behind our back; then
/// all get SIGKILL through their pidfds, the listener last.
fn stop_tree(listener: i32, node: &str, ours: impl Fn() -> bool) -> Result<()> {
    let Some(root) = Pinned::open(listener) else {
        return Ok(()); // gone
    };
    if !ours() {
        return Ok(());
    }
    root.signal(Signal::SIGSTOP);
    let mut pinned: Vec<Pinned> = Vec::new();
    loop {
        let mut new = 0;
        for pid in descendants(listener) {
            if pinned.iter().any(|p| p.pid() == pid) {
                continue;
            }
            let Some(p) = Pinned::open(pid) else { continue };
            let parent_pinned = parent_of(pid)
                .is_some_and(|pp| pp == listener || pinned.iter().any(|q| q.pid() == pp));
            if parent_pinned {
                p.signal(Signal::SIGSTOP);
                pinned.push(p);
                new += 1;
            }
        }
        if new == 0 {
            break;
        }
    }
    // All at once (the sessions' zombies are collected only once the stopped
    // listener is gone), the listener last; each is gone (collected) on return.
    pidfd::kill(pinned.iter().chain(std::iter::once(&root))).map_err(|e| Error::Timeout {
        what: format!("sshd of node {node} (pid {listener}) stopping: {e}"),
        after: LISTEN_TIMEOUT,
    })
}

/// Every process descending from `root`, from `/proc/*/stat`'s parent pids.
fn descendants(root: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(i32, i32)> = entries
        .filter_map(|e| {
            let pid = e.ok()?.file_name().to_str()?.parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 1..];
            let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_are_found_through_every_generation() {
        // sh -> sh -> sleep: the grandchild is what an SSH session's command is.
        let mut child = std::process::Command::new("sh")
            // `; true` keeps the inner shell from exec'ing sleep in its place.
            .args(["-c", "sh -c 'sleep 30; true' & wait"])
            .spawn()
            .unwrap();
        let root = i32::try_from(child.id()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let found = loop {
            let found = descendants(root);
            if found.len() >= 2 || Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for p in &found {
            let _ = sys::signal(*p, Signal::SIGKILL);
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(!found.contains(&root));
    }

    /// Live processes whose command line contains `needle`.
    fn live(needle: &str) -> Vec<i32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|p| !matches!(sys::proc_state(*p), None | Some('Z' | 'X' | 'x')))
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
            })
            .collect()
    }

    #[test]
    fn a_tree_that_keeps_forking_is_stopped_whole() {
        // A "listener" forking a new "session" every few ms: collected and then
        // killed, the sessions forked in between would outlive it.
        let tag = format!("3{}.25", std::process::id());
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("while :; do sh -c 'sleep {tag}; true' & sleep 0.005; done"),
            ])
            .spawn()
            .unwrap();
        let root = i32::try_from(child.id()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while live(&format!("sleep {tag}")).len() < 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop_tree(root, "n1", || true).unwrap();
        let _ = child.wait();
        // Orphans (if any) would be reparented and still running.
        std::thread::sleep(Duration::from_millis(50));
        let left = live(&format!("sleep {tag}"));
        for p in &left {
            let _ = sys::signal(*p, Signal::SIGKILL);
        }
        assert!(left.is_empty(), "survivors: {left:?}");
    }

    #[test]
    fn a_tree_that_is_not_ours_any_more_is_left_alone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        stop_tree(pid, "n1", || false).unwrap();
        assert_eq!(child.try_wait().unwrap(), None, "not signalled");
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn a_session_is_known_by_its_ssh_connection() {
        let addr = "10.77.1.1".parse().unwrap();
        let env = b"PATH=/bin\0SSH_CONNECTION=10.77.1.254 40312 10.77.1.1 22\0HOME=/root\0";
        assert!(is_session_into(env, addr, 22));
        assert!(!is_session_into(env, "10.77.1.2".parse().unwrap(), 22));
        assert!(!is_session_into(env, addr, 2222));
        assert!(!is_session_into(b"PATH=/bin\0", addr, 22));
    }

    #[test]
    fn a_users_own_ssh_directory_is_never_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(check_ssh_dir(tmp.path()).is_ok(), "none yet");
        let ssh = tmp.path().join("ssh");
        std::fs::create_dir(&ssh).unwrap();
        std::fs::write(ssh.join("id_ed25519"), "my key").unwrap();
        let e = check_ssh_dir(tmp.path()).unwrap_err().to_string();
        assert!(e.contains("not made by splitbrain"), "{e}");
        assert!(prepare(tmp.path(), &[]).is_err());
        assert!(ssh.join("id_ed25519").exists(), "left alone");
        std::fs::write(ssh.join(MARKER), "").unwrap();
        assert!(check_ssh_dir(tmp.path()).is_ok());
    }

    #[test]
    fn the_listener_title_counts_as_the_recorded_command_line() {
        let argv: Vec<String> = ["/usr/sbin/sshd", "-D", "-e", "-f", "/tmp/x/n1/sshd_config"]
            .map(String::from)
            .to_vec();
        assert!(is_listener_title(
            "sshd: /usr/sbin/sshd -D -e -f /tmp/x/n1/sshd_config [listener] 0 of 64-100 startups",
            &argv
        ));
        assert!(!is_listener_title(
            "sshd: /usr/sbin/sshd -D -e -f /tmp/y/n1/sshd_config [listener] 0 of 64-100 startups",
            &argv
        ));
        assert!(!is_listener_title("sshd: root@notty", &argv));
    }
}
