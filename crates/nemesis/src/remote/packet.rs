//! Packet faults on remote nodes: netem where the node's kernel has it, otherwise
//! loss by iptables (sparing the nemesis's SSH connection) and rate by `tbf`.

use super::heal::{RemoteFault, Undo};
use super::{first_error, RemoteNet};
use crate::host::Host;
use crate::iptables::{self, remove_chain, restore};
use crate::packet::{self, NodeMechanisms, PacketSpec};
use crate::{Error, Result};
use std::collections::BTreeSet;

impl RemoteNet {
    /// Degrades `nodes` (every node when empty): netem where the node's kernel has
    /// it, otherwise iptables `statistic` (loss) and `tbf` (rate). What a node cannot
    /// do is refused before anything changes, naming the node.
    pub fn packet_fault(
        &self,
        nodes: &[String],
        spec: &PacketSpec,
    ) -> Result<(RemoteFault, Vec<NodeMechanisms>)> {
        self.check_nodes(nodes.iter().map(String::as_str))?;
        let targets: BTreeSet<String> = if nodes.is_empty() {
            self.nodes().into_iter().collect()
        } else {
            nodes.iter().cloned().collect()
        };
        let recorded = self.recorded()?;
        // Plan every node first: a refusal changes nothing.
        let plans = self.each(|i, h| {
            let n = self.spec(i);
            if !targets.contains(&n.name) {
                return Ok(None);
            }
            let netem = has_netem(h)?;
            let plan = packet::plan_remote(spec, netem).map_err(|e| {
                Error::Unsupported(format!("on node {} ({}): {e}", n.name, h.address()))
            })?;
            let iface = match &plan.qdisc {
                None => None,
                Some(_) => {
                    let iface = match &n.interface {
                        Some(i) => i.clone(),
                        None => self.find_interface(i, h)?,
                    };
                    let shown = h.check(&["tc", "qdisc", "show", "dev", &iface, "root"])?;
                    let ours = recorded.qdiscs.get(&n.name) == Some(&iface);
                    if !ours && (shown.contains("netem") || shown.contains("tbf")) {
                        return Err(Error::Unsupported(format!(
                            "on node {} ({}): {iface} already has a root qdisc splitbrain did not add ({}); not replacing it",
                            n.name,
                            h.address(),
                            shown.trim()
                        )));
                    }
                    Some(iface)
                }
            };
            Ok(Some((plan, iface)))
        });
        let mut planned = Vec::new();
        for (i, p) in plans.into_iter().enumerate() {
            if let Some(p) = p? {
                planned.push((i, p));
            }
        }
        let faults = self.update(|f| {
            f.packet = Some((targets.clone(), spec.clone()));
            for (i, (_, iface)) in &planned {
                if let Some(iface) = iface {
                    f.qdiscs.insert(self.spec(*i).name.clone(), iface.clone());
                }
            }
        })?;
        let guard = RemoteFault::new(self, Undo::Packet);
        let loss_chain = faults.loss_chain();
        first_error(self.each(|i, h| {
            let Some((_, (plan, iface))) = planned.iter().find(|(j, _)| *j == i) else {
                return Ok(());
            };
            remove_chain(h, &loss_chain, "INPUT")?;
            if let Some(p) = plan.loss_rule {
                // The port sshd has on the node's side of our connection: not the
                // configured one when a port mapping (2201 -> 22) sits in between.
                let seen = h.check_shell("echo \"$SSH_CONNECTION\"")?;
                let port = ssh_server_port(&seen).unwrap_or(self.spec(i).port);
                restore(h, &iptables::loss_rules(&loss_chain, p, Some(port)))?;
            }
            if let (Some(args), Some(iface)) = (&plan.qdisc, iface) {
                let mut all = vec!["tc", "qdisc", "replace", "dev", iface.as_str(), "root"];
                all.extend(args.iter().map(String::as_str));
                h.check(&all)?;
            }
            Ok(())
        }))?;
        let how = planned
            .iter()
            .map(|(i, (plan, _))| NodeMechanisms {
                node: self.spec(*i).name.clone(),
                mechanisms: plan.mechanisms.clone(),
            })
            .collect();
        Ok((guard, how))
    }

    /// The interface a node reaches its first peer through (`ip -o route get PEER`).
    fn find_interface(&self, i: usize, h: &Host) -> Result<String> {
        let n = self.spec(i);
        let peer = self
            .inner
            .file
            .nodes
            .iter()
            .find(|p| p.name != n.name)
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "node {}: set `interface` in the nodes file (there is no peer to find it by)",
                    n.name
                ))
            })?;
        let route = h.check(&["ip", "-o", "route", "get", &peer.host])?;
        let words: Vec<&str> = route.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == "dev")
            .and_then(|p| words.get(p + 1))
            .map(|s| s.to_string())
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "node {}: cannot tell its interface from `{}`; set `interface` in the nodes file",
                    n.name,
                    route.trim()
                ))
            })
    }
}

/// The server port in `$SSH_CONNECTION` ("client_ip client_port server_ip server_port").
fn ssh_server_port(ssh_connection: &str) -> Option<u16> {
    let words: Vec<&str> = ssh_connection.split_whitespace().collect();
    match words.as_slice() {
        [_, _, _, port] => port.parse().ok(),
        _ => None,
    }
}

/// Whether the host's kernel has netem: loaded, loadable or built in. Looked up,
/// never tried: a trial qdisc would change the node before anything is recorded.
fn has_netem(h: &Host) -> Result<bool> {
    let out = h.check_shell(
        "if [ -d /sys/module/sch_netem ] || modinfo sch_netem >/dev/null 2>&1 \
         || grep -qs '/sch_netem.ko' \"/lib/modules/$(uname -r)/modules.builtin\"; \
         then echo netem; else echo none; fi",
    )?;
    Ok(out.trim() == "netem")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_spares_the_port_sshd_sees() {
        assert_eq!(
            ssh_server_port("10.77.1.254 40312 10.77.1.1 22\n"),
            Some(22)
        );
        assert_eq!(ssh_server_port("172.17.0.1 5555 172.17.0.2 22"), Some(22));
        assert_eq!(ssh_server_port("\n"), None);
    }
}
