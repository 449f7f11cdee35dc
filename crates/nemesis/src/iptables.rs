//! iptables rules of ours, on any [`Host`]: a lab member's namespace or a remote node.
//! Every change is one `iptables-restore -w --noflush` (atomic for that host, and it
//! waits for the xtables lock); only chains of ours and the jumps to them are touched.
//!
//! ```text
//!   partition_rules("splitbrain", [10.77.1.2])     sweep_rules(listing, [("splitbrain", "INPUT")])
//!     *filter                                        *filter
//!     -N splitbrain                                  -D INPUT -j splitbrain
//!     -A splitbrain -s 10.77.1.2/32 -j DROP          -F splitbrain
//!     -I INPUT 1 -j splitbrain                       -X splitbrain
//!     COMMIT                                         COMMIT
//! ```

use crate::host::Host;
use crate::{Error, Result};
use std::fmt::Display;

/// The rules, as `iptables -w -S` lists them.
pub fn list(h: &Host) -> Result<String> {
    let out = h.run(&["iptables", "-w", "-S"])?;
    if out.success() {
        Ok(out.stdout)
    } else {
        Err(Error::Iptables {
            node: h.name().to_string(),
            message: out.stderr.trim().to_string(),
        })
    }
}

/// Applies `input` with `iptables-restore -w --noflush`: one atomic change.
pub fn restore(h: &Host, input: &str) -> Result<()> {
    let out = h.run_with(&["iptables-restore", "-w", "--noflush"], Some(input))?;
    if out.success() {
        Ok(())
    } else {
        Err(Error::Iptables {
            node: h.name().to_string(),
            message: out.stderr.trim().to_string(),
        })
    }
}

/// Whether `chain` exists on `h`.
pub fn has_chain(h: &Host, chain: &str) -> Result<bool> {
    Ok(list(h)?.lines().any(|l| l == format!("-N {chain}")))
}

/// A chain dropping everything from `addrs`, jumped to first from INPUT.
pub fn partition_rules(chain: &str, addrs: &[impl Display]) -> String {
    let mut s = format!("*filter\n-N {chain}\n");
    for a in addrs {
        s.push_str(&format!("-A {chain} -s {a}/32 -j DROP\n"));
    }
    s.push_str(&format!("-I INPUT 1 -j {chain}\nCOMMIT\n"));
    s
}

/// A chain dropping incoming packets at random with probability `p`, except TCP to
/// `spare_port` (a remote node's sshd: the nemesis's own channel, which must stay
/// reliable enough to heal).
pub fn loss_rules(chain: &str, p: f64, spare_port: Option<u16>) -> String {
    let spare = spare_port
        .map(|port| format!("-A {chain} -p tcp --dport {port} -j RETURN\n"))
        .unwrap_or_default();
    format!(
        "*filter\n-N {chain}\n{spare}-A {chain} -m statistic --mode random --probability {p} -j DROP\n-I INPUT 1 -j {chain}\nCOMMIT\n"
    )
}

/// The `iptables-restore` input that removes `chains` (each with every jump to it
/// from its hook) from rules listed by `iptables -S`; `None` when none is there.
pub fn sweep_rules(listing: &str, chains: &[(&str, &str)]) -> Option<String> {
    let mut fix = String::from("*filter\n");
    let mut any = false;
    for (chain, hook) in chains {
        let jump = format!("-A {hook} -j {chain}");
        for _ in listing.lines().filter(|l| *l == jump) {
            fix.push_str(&format!("-D {hook} -j {chain}\n"));
            any = true;
        }
        if listing.lines().any(|l| l == format!("-N {chain}")) {
            fix.push_str(&format!("-F {chain}\n-X {chain}\n"));
            any = true;
        }
    }
    any.then(|| fix + "COMMIT\n")
}

/// Removes `chain` and its jump from `hook`; nothing there is fine. One spawn when
/// the chain is there as we make it, a look and a fix otherwise.
pub fn remove_chain(h: &Host, chain: &str, hook: &str) -> Result<()> {
    let quick = format!("*filter\n-D {hook} -j {chain}\n-F {chain}\n-X {chain}\nCOMMIT\n");
    if restore(h, &quick).is_ok() {
        return Ok(());
    }
    sweep(h, &[(chain, hook)])
}

/// Removes every chain of `chains` (and their jumps) in one change.
pub fn sweep(h: &Host, chains: &[(&str, &str)]) -> Result<()> {
    match sweep_rules(&list(h)?, chains) {
        Some(fix) => restore(h, &fix),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_removes_only_the_named_chains() {
        let listing = "-P INPUT ACCEPT\n-N other\n-N splitbrain-ab12cd34\n-A INPUT -j splitbrain-ab12cd34\n-A INPUT -j other\n-A splitbrain-ab12cd34 -s 10.77.1.2/32 -j DROP\n";
        let fix = sweep_rules(
            listing,
            &[
                ("splitbrain-ab12cd34", "INPUT"),
                ("splitbrain-ab12cd34-loss", "INPUT"),
            ],
        )
        .unwrap();
        assert_eq!(
            fix,
            "*filter\n-D INPUT -j splitbrain-ab12cd34\n-F splitbrain-ab12cd34\n-X splitbrain-ab12cd34\nCOMMIT\n"
        );
        assert_eq!(
            sweep_rules("-P INPUT ACCEPT\n-N other\n", &[("splitbrain-x", "INPUT")]),
            None
        );
    }

    #[test]
    fn loss_spares_the_ssh_port() {
        let r = loss_rules("splitbrain-x-loss", 0.2, Some(22));
        let spare = r.find("--dport 22 -j RETURN").unwrap();
        let drop = r.find("--probability 0.2 -j DROP").unwrap();
        assert!(spare < drop, "{r}");
        assert!(!loss_rules("l", 0.2, None).contains("RETURN"));
    }

    #[test]
    fn a_partition_is_one_chain_and_one_jump() {
        assert_eq!(
            partition_rules("splitbrain", &["10.77.1.2", "10.77.1.3"]),
            "*filter\n-N splitbrain\n-A splitbrain -s 10.77.1.2/32 -j DROP\n-A splitbrain -s 10.77.1.3/32 -j DROP\n-I INPUT 1 -j splitbrain\nCOMMIT\n"
        );
    }
}
