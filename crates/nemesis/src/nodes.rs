//! The nodes file: remote nodes, how to reach them over SSH, how to control their
//! process and their clock. TOML, a `[defaults]` table and one `[[node]]` per node;
//! any default can be set again per node. `nemesis/nodes.example.toml` explains each
//! key.
//!
//! ```toml
//! [defaults]
//! user = "root"
//! identity = "~/.ssh/id_ed25519"
//! process = { service = "etcd" }          # or pid_file / kill, start, pause, resume
//! clock = { strategy = "date" }           # or "command" with bump/reset, or "none"
//!
//! [[node]]
//! name = "n1"
//! host = "10.77.1.1"
//! client_url = "http://10.77.1.1:2379"
//! ```

use crate::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Placeholders a command template may use.
const PLACEHOLDERS: [&str; 3] = ["{node}", "{host}", "{offset_ms}"];

/// The longest `connect_timeout`, in seconds: longer is a typo, and it bounds every
/// deadline computed from it.
pub const MAX_CONNECT_TIMEOUT: u64 = 300;

/// The longest `command_timeout`, in seconds.
pub const MAX_COMMAND_TIMEOUT: u64 = 3600;

/// ssh_config options that would send SSH to another address than the node's `host`,
/// or run a command on this machine: allowed in `ssh_options` only with
/// `--allow-remote` (with it, `ProxyJump=bastion` is an ordinary need).
const REDIRECTING_OPTIONS: [&str; 19] = [
    "hostname",
    "proxyjump",
    "proxycommand",
    "proxyusefdpass",
    "localcommand",
    "permitlocalcommand",
    "remotecommand",
    "include",
    "match",
    "host",
    "knownhostscommand",
    "canonicalizehostname",
    "canonicaldomains",
    "canonicalizepermittedcnames",
    "localforward",
    "remoteforward",
    "dynamicforward",
    "tunnel",
    "pkcs11provider",
];

/// ssh_config options the nemesis sets itself, for its multiplexed connection.
const OWN_OPTIONS: [&str; 6] = [
    "controlpath",
    "controlmaster",
    "controlpersist",
    "batchmode",
    "forkafterauthentication",
    "sessiontype",
];

/// The option's keyword, lower case: `ProxyJump=b` and `ProxyJump b` both name it.
pub fn ssh_option_key(option: &str) -> String {
    option
        .trim_start()
        .split(|c: char| c == '=' || c.is_whitespace())
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Whether `option` may send SSH elsewhere than the node's host or run a local
/// command (see [`REDIRECTING_OPTIONS`]).
pub fn redirects(option: &str) -> bool {
    REDIRECTING_OPTIONS.contains(&ssh_option_key(option).as_str())
}

fn check_ssh_option(option: &str) -> std::result::Result<(), String> {
    let key = ssh_option_key(option);
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "`{option}` is not an ssh_config option (`Keyword=value`)"
        ));
    }
    if OWN_OPTIONS.contains(&key.as_str()) {
        return Err(format!(
            "`{option}`: splitbrain sets this one itself (its multiplexed connection)"
        ));
    }
    Ok(())
}

/// A host ssh can take as its destination and nothing else: an address or a host
/// name, never something ssh would read as an option (`-oProxyCommand=...`).
fn check_host(host: &str) -> std::result::Result<(), String> {
    if host.is_empty() {
        return Err("empty: give the node's address or host name".into());
    }
    if host.starts_with('-') {
        return Err(format!(
            "`{host}` starts with `-`, which ssh would read as an option"
        ));
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-_:%".contains(c))
    {
        return Err(format!(
            "`{host}` is not an address or host name (letters, digits, `.`, `-`, `_`, `:`; \
             an IPv6 address without brackets)"
        ));
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    state_dir: Option<PathBuf>,
    #[serde(default)]
    defaults: RawNode,
    #[serde(default, rename = "node")]
    nodes: Vec<RawNode>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    connect_timeout: Option<u64>,
    command_timeout: Option<u64>,
    ssh_options: Option<Vec<String>>,
    client_url: Option<String>,
    interface: Option<String>,
    process: Option<RawProcess>,
    clock: Option<RawClock>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcess {
    service: Option<String>,
    pid_file: Option<String>,
    kill: Option<String>,
    start: Option<String>,
    pause: Option<String>,
    resume: Option<String>,
    running: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClock {
    strategy: String,
    bump: Option<String>,
    reset: Option<String>,
}

/// Shell commands (run on the node) that control its process. A missing one makes
/// that fault unsupported on the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessControl {
    pub kill: Option<String>,
    pub start: Option<String>,
    pub pause: Option<String>,
    pub resume: Option<String>,
    /// Exits 0 while the process runs: a heal starts only what is not running.
    pub running: Option<String>,
}

/// How a node's clock is moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockStrategy {
    /// `date -s` with the offset added, undone by the inverse offset and, where
    /// there is one, an NTP step (chronyc, timedatectl). Moves the whole host's clock.
    Date,
    /// The user's commands; `{offset_ms}` is the offset in milliseconds.
    Command { bump: String, reset: String },
    /// Clock faults are refused on this node.
    None,
}

/// One remote node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub connect_timeout: u64,
    /// Seconds a command on the node may take before the nemesis gives up on it.
    pub command_timeout: u64,
    pub ssh_options: Vec<String>,
    /// Where the workload sends requests (`splitbrain test --nodes FILE`).
    pub client_url: Option<String>,
    /// The link packet faults shape; found with `ip route get PEER` when not given.
    pub interface: Option<String>,
    pub process: ProcessControl,
    pub clock: ClockStrategy,
}

/// A parsed nodes file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodesFile {
    pub path: PathBuf,
    /// Where the nemesis keeps its state file and SSH sockets for these nodes
    /// (default: `NAME.nemesis/` beside the file `NAME.toml`).
    pub state_dir: PathBuf,
    pub nodes: Vec<NodeSpec>,
    /// The nodes may be other machines than this one (host names, addresses
    /// outside the lab): only when the user said so (`--allow-remote`). Lab
    /// addresses are route-checked either way. Not read from the file.
    pub allow_remote: bool,
}

impl NodesFile {
    pub fn load(path: impl AsRef<Path>) -> Result<NodesFile> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::NodesFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        NodesFile::parse(&text, path)
    }

    /// Parses `text`, read from `path` (relative paths inside are relative to its
    /// directory).
    pub fn parse(text: &str, path: &Path) -> Result<NodesFile> {
        let err = |message: String| Error::NodesFile {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| err(e.to_string().trim().into()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let abs = |p: PathBuf| -> PathBuf {
            if let Ok(rest) = p.strip_prefix("~") {
                if let Some(home) = std::env::var_os("HOME") {
                    return PathBuf::from(home).join(rest);
                }
            }
            if p.is_relative() {
                base.join(p)
            } else {
                p
            }
        };
        if raw.nodes.is_empty() {
            return Err(err("no [[node]] tables: list at least one node".into()));
        }
        let d = &raw.defaults;
        if d.name.is_some() || d.host.is_some() || d.client_url.is_some() {
            return Err(err(
                "[defaults]: `name`, `host` and `client_url` belong to each [[node]]".into(),
            ));
        }
        let mut names = BTreeSet::new();
        let mut nodes = Vec::new();
        for (i, n) in raw.nodes.iter().enumerate() {
            let at = |field: &str| format!("[[node]] number {} ({field})", i + 1);
            let name = n
                .name
                .clone()
                .ok_or_else(|| err(format!("{}: `name` is missing", at("name"))))?;
            let at = |field: &str| format!("node `{name}`, field `{field}`");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(err(format!(
                    "{}: `{name}` is not a node name (letters, digits, - and _)",
                    at("name")
                )));
            }
            if !names.insert(name.clone()) {
                return Err(err(format!("node `{name}` is listed twice")));
            }
            let host = n
                .host
                .clone()
                .ok_or_else(|| err(format!("{}: missing", at("host"))))?;
            check_host(&host).map_err(|m| err(format!("{}: {m}", at("host"))))?;
            let process = resolve_process(n.process.as_ref().or(d.process.as_ref()))
                .map_err(|m| err(format!("{}: {m}", at("process"))))?;
            let clock = resolve_clock(n.clock.as_ref().or(d.clock.as_ref()))
                .map_err(|m| err(format!("{}: {m}", at("clock"))))?;
            let user = n
                .user
                .clone()
                .or(d.user.clone())
                .unwrap_or_else(|| "root".into());
            let port = n.port.or(d.port).unwrap_or(22);
            if port == 0 {
                return Err(err(format!("{}: 0 is not a port", at("port"))));
            }
            let connect_timeout = n.connect_timeout.or(d.connect_timeout).unwrap_or(5);
            if !(1..=MAX_CONNECT_TIMEOUT).contains(&connect_timeout) {
                return Err(err(format!(
                    "{}: {connect_timeout} is not a number of seconds from 1 to {MAX_CONNECT_TIMEOUT}",
                    at("connect_timeout")
                )));
            }
            let command_timeout = n.command_timeout.or(d.command_timeout).unwrap_or(120);
            if !(1..=MAX_COMMAND_TIMEOUT).contains(&command_timeout) {
                return Err(err(format!(
                    "{}: {command_timeout} is not a number of seconds from 1 to {MAX_COMMAND_TIMEOUT}",
                    at("command_timeout")
                )));
            }
            let ssh_options = n
                .ssh_options
                .clone()
                .or(d.ssh_options.clone())
                .unwrap_or_default();
            for o in &ssh_options {
                check_ssh_option(o).map_err(|m| err(format!("{}: {m}", at("ssh_options"))))?;
            }
            nodes.push(NodeSpec {
                host,
                port,
                user,
                identity: n.identity.clone().or(d.identity.clone()).map(abs),
                known_hosts: n.known_hosts.clone().or(d.known_hosts.clone()).map(abs),
                connect_timeout,
                command_timeout,
                ssh_options,
                client_url: n.client_url.clone(),
                interface: n.interface.clone().or(d.interface.clone()),
                process,
                clock,
                name,
            });
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "nodes".into());
        let state_dir = raw
            .state_dir
            .map(abs)
            .unwrap_or_else(|| base.join(format!("{stem}.nemesis")));
        Ok(NodesFile {
            path: path.to_path_buf(),
            state_dir,
            nodes,
            allow_remote: false,
        })
    }

    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// Every node's client URL, in order; an error names the first node without one.
    pub fn client_urls(&self) -> Result<Vec<String>> {
        self.nodes
            .iter()
            .map(|n| {
                n.client_url.clone().ok_or_else(|| Error::NodesFile {
                    path: self.path.clone(),
                    message: format!(
                        "node `{}` has no `client_url`, which the workload needs",
                        n.name
                    ),
                })
            })
            .collect()
    }
}

/// A nodes file for a local lab whose members run sshd (`splitbrain cluster up
/// --sshd`): each member as a remote node, its process controlled by `exe` (this
/// `splitbrain` binary) through `cluster kill|start|pause|resume`, run over SSH.
/// `None` when the lab has no sshd.
pub fn lab_nodes_toml(cluster: &splitbrain_cluster::Cluster, exe: &Path) -> Option<String> {
    use crate::host::quote;
    let access = cluster.ssh_access()?;
    let dir = cluster.dir();
    let q = |p: &Path| p.display().to_string();
    // A TOML basic string: the value is a shell command, which may hold quotes.
    let t = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let exe = quote(&q(exe));
    let dir_arg = quote(&q(dir));
    let mut out = format!(
        "# Written by `splitbrain cluster up --sshd` for the lab in {dir}: each member is a\n\
         # remote node reached over SSH (an sshd inside its network namespace).\n\
         #   splitbrain nemesis --nodes {file} partition isolate leader\n\
         #   splitbrain test --nodes {file} --nemesis partition,kill,pause\n\
         # See nemesis/nodes.example.toml for every key.\n\n\
         [defaults]\n\
         user = {user}\n\
         port = {port}\n\
         identity = {identity}\n\
         known_hosts = {known}\n\n",
        dir = dir.display(),
        file = dir.join("nodes.toml").display(),
        user = t(&access.user),
        port = access.port,
        identity = t(&q(&access.identity)),
        known = t(&q(&access.known_hosts)),
    );
    for n in cluster.nodes() {
        let name = n.name.as_str();
        let verb = |v: &str| t(&format!("{exe} cluster {v} {name} --dir {dir_arg}"));
        // Lab members share this machine's clock, so never `date`: with clock control
        // (`cluster up --clock`) the member's own clock supervisor moves, by the
        // fault's offset from true time (a remote clock fault starts from true time:
        // a second one waits for the heal); without it, clock faults are refused.
        let clock = if cluster.has_clock_control() {
            format!(
                "{{ strategy = \"command\", bump = {bump}, reset = {reset} }}",
                bump = t(&format!(
                    "{exe} nemesis clock bump {{offset_ms}}ms {name} --dir {dir_arg}"
                )),
                reset = t(&format!("{exe} nemesis clock reset {name} --dir {dir_arg}")),
            )
        } else {
            "{ strategy = \"none\" }".to_string()
        };
        out.push_str(&format!(
            "[[node]]\n\
             name = {name_s}\n\
             host = \"{addr}\"\n\
             client_url = {url}\n\
             interface = {iface}\n\
             process = {{ kill = {kill}, start = {start}, pause = {pause}, resume = {resume}, running = {running} }}\n\
             # Lab members share this machine's clock: never `date`. With clock control\n\
             # (`cluster up --clock`) each member's clock supervisor moves; without it, none.\n\
             clock = {clock}\n\n",
            name_s = t(name),
            addr = n.addr,
            url = t(&n.client_url),
            iface = t(&n.interface),
            kill = verb("kill"),
            start = verb("start"),
            pause = verb("pause"),
            resume = verb("resume"),
            running = verb("running"),
        ));
    }
    Some(out)
}

/// Refuses a `{word}` that looks like a placeholder but is none of ours (`{offset}`),
/// and nothing else: `${PID}` and awk's `'{print $2}'` are the shell's.
fn check_template(what: &str, t: &str) -> std::result::Result<(), String> {
    let mut at = 0;
    while let Some(start) = t[at..].find('{').map(|s| s + at) {
        at = start + 1;
        if t[..start].ends_with('$') {
            continue;
        }
        let Some(len) = t[start..].find('}') else {
            continue;
        };
        let word = &t[start..start + len + 1];
        let inner = &word[1..word.len() - 1];
        let looks_like_ours =
            !inner.is_empty() && inner.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        if looks_like_ours && !PLACEHOLDERS.contains(&word) {
            return Err(format!(
                "`{what}`: unknown placeholder {word} in `{t}` (known: {})",
                PLACEHOLDERS.join(", ")
            ));
        }
    }
    Ok(())
}

/// Fills a template's placeholders (values shell-quoted).
pub fn fill(template: &str, node: &str, host: &str, offset_ms: i64) -> String {
    template
        .replace("{node}", &crate::host::quote(node))
        .replace("{host}", &crate::host::quote(host))
        .replace("{offset_ms}", &offset_ms.to_string())
}

fn resolve_process(p: Option<&RawProcess>) -> std::result::Result<ProcessControl, String> {
    let Some(p) = p else {
        return Ok(ProcessControl::default());
    };
    let given = [
        ("kill", &p.kill),
        ("start", &p.start),
        ("pause", &p.pause),
        ("resume", &p.resume),
        ("running", &p.running),
    ];
    for (what, t) in given {
        if let Some(t) = t {
            check_template(what, t)?;
        }
    }
    let mut c = ProcessControl {
        kill: p.kill.clone(),
        start: p.start.clone(),
        pause: p.pause.clone(),
        resume: p.resume.clone(),
        running: p.running.clone(),
    };
    match (&p.service, &p.pid_file) {
        (Some(_), Some(_)) => return Err("give `service` or `pid_file`, not both".into()),
        (Some(s), None) => {
            let s = crate::host::quote(s);
            c.kill
                .get_or_insert(format!("systemctl kill --signal=KILL {s}"));
            c.start.get_or_insert(format!("systemctl start {s}"));
            c.pause
                .get_or_insert(format!("systemctl kill --signal=STOP {s}"));
            c.resume
                .get_or_insert(format!("systemctl kill --signal=CONT {s}"));
            c.running
                .get_or_insert(format!("systemctl is-active --quiet {s}"));
        }
        (None, Some(f)) => {
            // Only a pid above 1: a file holding -1 or 0 would signal everything.
            let pid = |signal: &str| {
                format!(
                    "p=$(cat {f}) && [ \"$p\" -gt 1 ] 2>/dev/null && kill -{signal} \"$p\"",
                    f = crate::host::quote(f)
                )
            };
            c.kill.get_or_insert(pid("KILL"));
            c.pause.get_or_insert(pid("STOP"));
            c.resume.get_or_insert(pid("CONT"));
            c.running.get_or_insert(pid("0") + " 2>/dev/null");
            if c.start.is_none() {
                return Err("`pid_file` needs a `start` command (how to bring it back)".into());
            }
        }
        (None, None) => {}
    }
    if c.kill.is_some() && c.start.is_none() {
        return Err("`kill` needs a `start` command (how to bring it back)".into());
    }
    // Without it a heal cannot tell a kill that never happened (the run stopped
    // first) from one that did, and `start` on a running process may fail forever.
    if c.kill.is_some() && c.running.is_none() {
        return Err(
            "`kill` needs a `running` command (exits 0 while the process runs): a heal \
             starts only what is not running"
                .into(),
        );
    }
    if c.pause.is_some() != c.resume.is_some() {
        return Err("`pause` and `resume` go together".into());
    }
    Ok(c)
}

fn resolve_clock(c: Option<&RawClock>) -> std::result::Result<ClockStrategy, String> {
    let Some(c) = c else {
        return Ok(ClockStrategy::Date);
    };
    match c.strategy.as_str() {
        "date" | "none" if c.bump.is_some() || c.reset.is_some() => Err(format!(
            "`bump` and `reset` belong to strategy \"command\", not \"{}\"",
            c.strategy
        )),
        "date" => Ok(ClockStrategy::Date),
        "none" => Ok(ClockStrategy::None),
        "command" => {
            let (Some(bump), Some(reset)) = (&c.bump, &c.reset) else {
                return Err("strategy \"command\" needs `bump` and `reset`".into());
            };
            check_template("bump", bump)?;
            check_template("reset", reset)?;
            Ok(ClockStrategy::Command {
                bump: bump.clone(),
                reset: reset.clone(),
            })
        }
        other => Err(format!(
            "unknown strategy \"{other}\" (known: \"date\", \"command\", \"none\")"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NodesFile> {
        NodesFile::parse(text, Path::new("/etc/sb/nodes.toml"))
    }

    #[test]
    fn defaults_apply_to_every_node_and_nodes_override_them() {
        let f = parse(
            r#"
            [defaults]
            user = "admin"
            identity = "keys/id"
            process = { service = "etcd" }
            [[node]]
            name = "n1"
            host = "10.77.1.1"
            client_url = "http://10.77.1.1:2379"
            [[node]]
            name = "n2"
            host = "10.77.1.2"
            port = 2222
            clock = { strategy = "command", bump = "echo {offset_ms} > /x", reset = "echo 0 > /x" }
            "#,
        )
        .unwrap();
        assert_eq!(f.state_dir, Path::new("/etc/sb/nodes.nemesis"));
        let (n1, n2) = (&f.nodes[0], &f.nodes[1]);
        assert_eq!((n1.user.as_str(), n1.port), ("admin", 22));
        assert_eq!(n2.port, 2222);
        assert_eq!(n1.identity.as_deref(), Some(Path::new("/etc/sb/keys/id")));
        assert_eq!(n1.clock, ClockStrategy::Date);
        assert_eq!(
            n1.process.kill.as_deref(),
            Some("systemctl kill --signal=KILL etcd")
        );
        assert!(matches!(n2.clock, ClockStrategy::Command { .. }));
        assert!(f.client_urls().unwrap_err().to_string().contains("`n2`"));
    }

    #[test]
    fn mistakes_name_the_node_and_the_field() {
        let e = |t: &str| parse(t).unwrap_err().to_string();
        assert!(e("[[node]]\nname = \"n1\"\n").contains("node `n1`, field `host`: missing"));
        assert!(e("[[node]]\nname = \"n1\"\nhost = \"h\"\nprot = 22\n").contains("line 4"));
        assert!(
            e("[[node]]\nname=\"a\"\nhost=\"h\"\n[[node]]\nname=\"a\"\nhost=\"h\"\n")
                .contains("listed twice")
        );
        assert!(e(
            "[[node]]\nname=\"a\"\nhost=\"h\"\nclock={strategy=\"command\",bump=\"x {offset}\",reset=\"y\"}\n"
        )
        .contains("unknown placeholder {offset}"));
        assert!(
            e("[[node]]\nname=\"a\"\nhost=\"h\"\nprocess={kill=\"k\"}\n")
                .contains("`kill` needs a `start`")
        );
        assert!(e("").contains("no [[node]]"));
    }

    fn one(extra: &str) -> Result<NodesFile> {
        parse(&format!(
            "[[node]]\nname = \"n1\"\nhost = \"10.77.1.1\"\n{extra}\n"
        ))
    }

    #[test]
    fn a_connect_timeout_is_seconds_from_1_to_300() {
        let e = one("connect_timeout = 9223372036854775807")
            .unwrap_err()
            .to_string();
        assert!(e.contains("node `n1`, field `connect_timeout`"), "{e}");
        assert!(e.contains("from 1 to 300"), "{e}");
        assert!(one("connect_timeout = 0").is_err());
        let e = one("command_timeout = 0").unwrap_err().to_string();
        assert!(e.contains("field `command_timeout`"), "{e}");
        assert_eq!(one("").unwrap().nodes[0].command_timeout, 120);
        assert_eq!(
            one("connect_timeout = 300").unwrap().nodes[0].connect_timeout,
            300
        );
    }

    #[test]
    fn a_host_is_never_read_as_an_ssh_option() {
        for bad in ["-oProxyCommand=sh", "", "a b", "[::1]", "h;rm"] {
            let text = format!("[[node]]\nname = \"n1\"\nhost = \"{bad}\"\n");
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains("node `n1`, field `host`"), "{bad}: {e}");
        }
        for good in ["10.77.1.1", "::1", "db-1.example", "fe80::1%eth0"] {
            let text = format!("[[node]]\nname = \"n1\"\nhost = \"{good}\"\n");
            assert!(parse(&text).is_ok(), "{good}");
        }
    }

    #[test]
    fn ssh_options_that_redirect_are_known() {
        for o in [
            "ProxyJump=bastion",
            "hostname 10.0.0.1",
            "ProxyCommand=nc %h %p",
            "LocalCommand=touch /x",
            "PermitLocalCommand yes",
            "RemoteCommand=id",
            "Match all",
        ] {
            assert!(redirects(o), "{o}");
        }
        assert!(!redirects("ServerAliveInterval=10"));
        let e = one("ssh_options = [\"ControlPath=/tmp/x\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("field `ssh_options`"), "{e}");
        assert!(one("ssh_options = [\"-x\"]").is_err());
        assert!(one("ssh_options = [\"Ciphers=aes128-ctr\"]").is_ok());
    }

    #[test]
    fn templates_may_hold_ordinary_shell() {
        let p = |t: &str| {
            one(&format!(
                "process = {{ kill = {t:?}, start = \"s\", running = \"r\" }}"
            ))
        };
        assert!(p("kill ${PID}").is_ok());
        assert!(p("kill $(ps ax | awk '{print $1}')").is_ok());
        assert!(p("echo {node}").is_ok());
        let e = p("echo {nod}").unwrap_err().to_string();
        assert!(e.contains("unknown placeholder {nod}"), "{e}");
    }

    #[test]
    fn a_kill_needs_a_running_check_and_pid_files_hold_a_real_pid() {
        let e = one("process = { kill = \"k\", start = \"s\" }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`kill` needs a `running` command"), "{e}");
        let f = one("process = { pid_file = \"/run/etcd.pid\", start = \"s\" }").unwrap();
        let kill = f.nodes[0].process.kill.clone().unwrap();
        assert!(
            kill.contains("-gt 1") && kill.contains("kill -KILL"),
            "{kill}"
        );
        // A pid file holding -1 signals nobody.
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        for bad in ["-1", "0", "1", "abc", ""] {
            std::fs::write(&pid_file, bad).unwrap();
            let f = one(&format!(
                "process = {{ pid_file = {:?}, start = \"s\" }}",
                pid_file.display().to_string()
            ))
            .unwrap();
            let script = f.nodes[0].process.running.clone().unwrap();
            let ran = std::process::Command::new("sh")
                .args(["-c", &script])
                .status()
                .unwrap();
            assert!(!ran.success(), "{bad}: {script}");
        }
    }

    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../nemesis/nodes.example.toml");
        let f = NodesFile::load(&path).unwrap();
        assert_eq!(f.names(), ["n1", "n2", "n3"]);
        assert_eq!(f.nodes[2].port, 2222);
        assert_eq!(f.nodes[0].clock, ClockStrategy::Date);
        assert!(f.nodes[0].process.running.is_some());
        assert_eq!(f.client_urls().unwrap().len(), 3);
    }

    #[test]
    fn templates_get_quoted_values() {
        assert_eq!(
            fill("echo {offset_ms} > /run/{node}.off", "n1", "h", -1500),
            "echo -1500 > /run/n1.off"
        );
    }
}
