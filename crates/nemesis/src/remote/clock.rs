//! Clock faults on remote nodes: `date` (never on this machine's kernel) or the
//! nodes file's `bump`/`reset` commands.

use super::heal::{RemoteFault, Undo};
use super::{ClockRecord, RemoteNet};
use crate::nodes::{fill, ClockStrategy, NodesFile};
use crate::{Error, Result};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Mutex;

/// The largest clock jump a remote node takes, ten years either way.
pub const MAX_CLOCK_OFFSET_MS: i64 = 3650 * 86_400 * 1_000;

impl RemoteNet {
    /// Moves the clocks of `nodes` by `offset_ms` (the nodes file says how); the
    /// guard puts them back.
    pub fn clock_fault(&self, nodes: &[String], offset_ms: i64) -> Result<RemoteFault> {
        if offset_ms.abs() > MAX_CLOCK_OFFSET_MS {
            return Err(Error::Unsupported(format!(
                "a clock jump of {offset_ms} ms: at most 3650 days either way \
                 (a remote `date`'s arithmetic would overflow past a few centuries)"
            )));
        }
        self.check_nodes(nodes.iter().map(String::as_str))?;
        let names: BTreeSet<String> = nodes.iter().cloned().collect();
        let recorded = self.recorded()?;
        for n in &names {
            let i = self.index(n)?;
            if let Some(c) = recorded.clocks.get(n) {
                return Err(Error::Unsupported(format!(
                    "node {n}'s clock is already moved by {} ms: heal first",
                    c.offset_ms
                )));
            }
            match &self.spec(i).clock {
                ClockStrategy::None => {
                    return Err(Error::Unsupported(format!(
                        "clock faults are unsupported on node {n}: its clock strategy is \"none\""
                    )))
                }
                ClockStrategy::Date => self.refuse_own_clock(i)?,
                ClockStrategy::Command { .. } => {}
            }
        }
        self.update(|f| {
            for n in &names {
                f.clocks.insert(
                    n.clone(),
                    ClockRecord {
                        offset_ms,
                        applied: false,
                    },
                );
            }
        })?;
        let guard = RemoteFault::new(self, Undo::Clock(names.clone()));
        let bumped = self.each_of(&names, |i, h| {
            let n = self.spec(i);
            let script = match &n.clock {
                ClockStrategy::Date => date_shift_script(offset_ms),
                ClockStrategy::Command { bump, .. } => fill(bump, &n.name, &n.host, offset_ms),
                ClockStrategy::None => return Ok(()),
            };
            h.check_shell(&script)?;
            self.update(|f| {
                if let Some(c) = f.clocks.get_mut(&n.name) {
                    c.applied = true;
                }
            })
            .map(|_| ())
        });
        bumped?;
        Ok(guard)
    }

    /// The `date` strategy sets the whole host's clock: never this machine's. Refused
    /// outright for loopback and lab addresses (whatever the node answers), then
    /// unless the node proves it runs another kernel: its boot id, exactly one and
    /// not ours. A node sharing this machine's kernel (a lab namespace, a container)
    /// has ours; a shell that prints anything else (a banner, a .bashrc echo, a
    /// ForceCommand) proves nothing, and is refused too.
    fn refuse_own_clock(&self, i: usize) -> Result<()> {
        const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
        let n = self.spec(i);
        let refuse = |why: String| date_refusal(&n.name, &why);
        if let Some(why) = date_refused_for_host(&n.host) {
            return Err(refuse(why));
        }
        let ours = std::fs::read_to_string(BOOT_ID).unwrap_or_default();
        let theirs = self.inner.hosts[i].check(&["cat", BOOT_ID])?;
        check_boot_ids(&ours, &theirs).map_err(refuse)
    }

    /// Puts back the clocks of `nodes` that a clock fault moved (others are left
    /// alone); returns notes for the user.
    pub fn clock_reset(&self, nodes: &[String]) -> Result<Vec<String>> {
        self.check_nodes(nodes.iter().map(String::as_str))?;
        self.undo_clocks(&nodes.iter().cloned().collect())
    }

    /// Puts back the clocks of `names` as recorded; returns notes for the user.
    pub(super) fn undo_clocks(&self, names: &BTreeSet<String>) -> Result<Vec<String>> {
        let recorded = self.recorded()?;
        let notes = Mutex::new(Vec::new());
        self.each_of(names, |i, h| {
            let n = self.spec(i);
            let Some(rec) = recorded.clocks.get(&n.name) else {
                return Ok(());
            };
            match &n.clock {
                ClockStrategy::Date => {
                    // Checked again: the nodes file may have changed since the bump,
                    // and this machine's clock is never set, not even to heal.
                    self.refuse_own_clock(i)?;
                    if rec.applied {
                        h.check_shell(&date_shift_script(-rec.offset_ms))?;
                    }
                    let ntp = h.check_shell(NTP_STEP_SCRIPT)?;
                    let ntp = ntp.trim();
                    let mut notes = notes.lock().unwrap_or_else(|p| p.into_inner());
                    if !rec.applied {
                        notes.push(format!(
                            "node {}: the clock may be off by {} ms (the run stopped while setting it){}",
                            n.name,
                            rec.offset_ms,
                            if ntp == "none" { "; no NTP client to step it" } else { "; NTP stepped it" }
                        ));
                    } else if ntp != "none" {
                        notes.push(format!("node {}: clock stepped by {ntp}", n.name));
                    }
                }
                ClockStrategy::Command { reset, .. } => {
                    h.check_shell(&fill(reset, &n.name, &n.host, rec.offset_ms))?;
                }
                ClockStrategy::None => {}
            }
            Ok(())
        })?;
        self.update(|f| {
            for n in names {
                f.clocks.remove(n);
            }
        })?;
        Ok(notes.into_inner().unwrap_or_else(|p| p.into_inner()))
    }
}

fn date_refusal(node: &str, why: &str) -> Error {
    Error::Unsupported(format!(
        "clock strategy \"date\" refused on node {node}: {why}, and `date -s` must never \
         set this machine's own clock; give it clock = {{ strategy = \"command\", \
         bump = ..., reset = ... }}"
    ))
}

/// Refuses, before any SSH, a clock fault on `names` (every node when empty) whose
/// strategy is `date` and whose host is this machine or a lab namespace.
pub fn refuse_date_here(file: &NodesFile, names: &[String]) -> Result<()> {
    for n in &file.nodes {
        if !names.is_empty() && !names.contains(&n.name) {
            continue;
        }
        if n.clock == ClockStrategy::Date {
            if let Some(why) = date_refused_for_host(&n.host) {
                return Err(date_refusal(&n.name, &why));
            }
        }
    }
    Ok(())
}

/// Why the `date` strategy is refused for `host` before asking it anything: loopback
/// and unspecified addresses are this machine, lab addresses (10.77.0.0/16) are
/// namespaces on this machine's kernel.
fn date_refused_for_host(host: &str) -> Option<String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let lower = bare.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Some(format!("`{host}` is this machine"));
    }
    match bare.parse::<IpAddr>() {
        Ok(a) if a.is_loopback() || a.is_unspecified() => Some(format!("`{host}` is this machine")),
        Ok(IpAddr::V4(v4)) if v4.octets()[..2] == [10, 77] => Some(format!(
            "`{host}` is a splitbrain lab address, a namespace on this machine's kernel"
        )),
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()) => {
            Some(format!("`{host}` is this machine"))
        }
        _ => None,
    }
}

fn is_boot_id(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Ok only when the node's `cat boot_id` printed exactly one boot id, and not ours.
fn check_boot_ids(ours: &str, theirs: &str) -> std::result::Result<(), String> {
    let ours = ours.trim().to_ascii_lowercase();
    if !is_boot_id(&ours) {
        return Err(
            "this machine's boot id cannot be read, so nothing shows the node has another kernel"
                .into(),
        );
    }
    let theirs = theirs.trim().to_ascii_lowercase();
    if theirs.contains(&ours) {
        return Err("it shares this machine's kernel (same boot id)".into());
    }
    if !is_boot_id(&theirs) {
        return Err(format!(
            "its answer to `cat /proc/sys/kernel/random/boot_id` was not one boot id \
             (`{}`: a banner, or a shell startup file that prints?), so nothing shows it has another kernel",
            theirs.chars().take(80).collect::<String>()
        ));
    }
    Ok(())
}

/// A shell script that moves the host's clock by `offset_ms`, to the nanosecond of
/// the moment it reads the clock (GNU date). Only ever run on a remote host whose
/// boot id differs from this machine's.
pub fn date_shift_script(offset_ms: i64) -> String {
    format!(
        "n=$(date +%s%N) && t=$((n + ({offset_ms}) * 1000000)) && \
         date -u -s \"@$((t / 1000000000)).$(printf %09d $((t % 1000000000)))\" >/dev/null"
    )
}

/// Steps the clock back to true time where an NTP client is there; prints which one.
pub const NTP_STEP_SCRIPT: &str = "if command -v chronyc >/dev/null 2>&1; then chronyc -a makestep >/dev/null && echo chronyc; \
     elif command -v timedatectl >/dev/null 2>&1 && timedatectl set-ntp true 2>/dev/null; then echo timedatectl; \
     else echo none; fi";

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_date_strategy_shifts_by_the_offset_and_back() {
        let s = date_shift_script(-1500);
        assert!(
            s.starts_with("n=$(date +%s%N) && t=$((n + (-1500) * 1000000))"),
            "{s}"
        );
        assert!(s.contains("date -u -s \"@$((t / 1000000000))."), "{s}");
        assert!(date_shift_script(1500).contains("(1500) * 1000000"));
        assert!(NTP_STEP_SCRIPT.contains("chronyc -a makestep"));
        assert!(NTP_STEP_SCRIPT.contains("timedatectl set-ntp true"));
    }

    const OURS: &str = "0f2c9a9e-5b8e-4d6c-9a51-7c1e2d3b4a59\n";

    #[test]
    fn date_needs_one_boot_id_that_is_not_ours() {
        let other = "d1b2c3d4-e5f6-4789-8abc-def012345678\n";
        assert_eq!(check_boot_ids(OURS, other), Ok(()));
        let same = check_boot_ids(OURS, OURS).unwrap_err();
        assert!(same.contains("same boot id"), "{same}");
        // A shell that prints more than the boot id: ours inside, or unknown text.
        for noisy in [
            format!("Welcome to the lab\n{OURS}"),
            format!("{OURS}bye\n"),
            format!("{}\n", OURS.trim().to_uppercase()),
        ] {
            assert!(check_boot_ids(OURS, &noisy).is_err(), "{noisy}");
        }
        let banner = check_boot_ids(OURS, &format!("hello from .bashrc\n{other}")).unwrap_err();
        assert!(banner.contains("not one boot id"), "{banner}");
        assert!(check_boot_ids(OURS, "").is_err());
        assert!(check_boot_ids("", other).is_err(), "our own must be known");
    }

    #[test]
    fn date_is_refused_up_front_for_this_machine_and_the_lab() {
        for host in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "0.0.0.0",
            "localhost",
            "LocalHost",
            "10.77.1.2",
            "::ffff:127.0.0.1",
        ] {
            assert!(date_refused_for_host(host).is_some(), "{host}");
        }
        for host in ["192.0.2.7", "db1.example", "10.78.1.2"] {
            assert_eq!(date_refused_for_host(host), None, "{host}");
        }
    }

    #[test]
    fn date_on_this_machine_is_refused_from_the_nodes_file_alone() {
        let text = "[[node]]\nname = \"n1\"\nhost = \"127.0.0.1\"\n\
                    [[node]]\nname = \"n2\"\nhost = \"192.0.2.2\"\n";
        let file = NodesFile::parse(text, Path::new("/x/nodes.toml")).unwrap();
        let e = refuse_date_here(&file, &[]).unwrap_err().to_string();
        assert!(e.contains("refused on node n1"), "{e}");
        assert!(refuse_date_here(&file, &["n2".to_string()]).is_ok());
    }
}
