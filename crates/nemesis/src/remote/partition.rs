//! Partitions on remote nodes: a grudge as iptables rules in this run's chain.

use super::heal::{RemoteFault, Undo};
use super::{first_error, RemoteNet};
use crate::grudge::Grudge;
use crate::iptables::{self, remove_chain, restore};
use crate::nodes::NodeSpec;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::net::IpAddr;

impl RemoteNet {
    /// Applies `grudge` with iptables on each node (this run's chain, one atomic
    /// `iptables-restore` per node), replacing a partition in place.
    pub fn partition(&self, grudge: &Grudge) -> Result<RemoteFault> {
        self.check_nodes(grudge.nodes())?;
        check_partitionable(&self.inner.file.nodes)?;
        let faults = self.update(|f| f.partition = Some(grudge.clone()))?;
        let guard = RemoteFault::new(self, Undo::Partition);
        let chain = faults.chain();
        first_error(self.each(|i, h| {
            let me = &self.spec(i).name;
            let drops = grudge.0.get(me).cloned().unwrap_or_default();
            if drops.is_empty() {
                return remove_chain(h, &chain, "INPUT");
            }
            let addrs: Vec<&str> = self
                .inner
                .file
                .nodes
                .iter()
                .filter(|p| drops.contains(&p.name))
                .map(|p| p.host.as_str())
                .collect();
            let rules = iptables::partition_rules(&chain, &addrs);
            match restore(h, &rules) {
                Ok(()) => Ok(()),
                Err(_) => remove_chain(h, &chain, "INPUT").and_then(|()| restore(h, &rules)),
            }
        }))?;
        Ok(guard)
    }

    /// Nodes that hold this run's partition chain.
    pub fn partitioned_members(&self) -> Result<Vec<String>> {
        let chain = self.recorded()?.chain();
        let found = self.each(|_, h| iptables::has_chain(h, &chain));
        let mut out = Vec::new();
        for (i, has) in found.into_iter().enumerate() {
            if has? {
                out.push(self.spec(i).name.clone());
            }
        }
        Ok(out)
    }
}

/// A partition drops packets by source address on each node, so every node needs
/// an IPv4 address of its own that its peers' packets come from. Loopback is none:
/// nodes sharing 127.0.0.1 (containers behind port mappings) would have a DROP for
/// 127.0.0.1 in this machine's INPUT, cutting the SSH link the heal needs, and the
/// peers' traffic does not come from it anyway.
pub fn check_partitionable(nodes: &[NodeSpec]) -> Result<()> {
    let mut seen: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for n in nodes {
        let addr = match n.host.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => IpAddr::V4(a),
            Ok(IpAddr::V6(_)) => {
                return Err(Error::Unsupported(format!(
                    "partitions are iptables rules, IPv4 only: node {} has the IPv6 address `{}`",
                    n.name, n.host
                )))
            }
            Err(_) => {
                return Err(Error::Unsupported(format!(
                    "partitions need every node's address as an IP (node {} has `{}`)",
                    n.name, n.host
                )))
            }
        };
        if addr.is_loopback() {
            return Err(Error::Unsupported(format!(
                "partitions need each node's own address, not loopback: node {} has `{}` \
                 (a DROP for it would cut this machine's own loopback, the SSH link included)",
                n.name, n.host
            )));
        }
        if let Some(other) = seen.insert(addr, &n.name) {
            return Err(Error::Unsupported(format!(
                "partitions need a distinct address per node: nodes {other} and {} are both `{}`",
                n.name, n.host
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::ClockStrategy;

    fn node(name: &str, host: &str) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            host: host.into(),
            port: 22,
            user: "root".into(),
            identity: None,
            known_hosts: None,
            connect_timeout: 5,
            command_timeout: 120,
            ssh_options: vec![],
            client_url: None,
            interface: None,
            process: Default::default(),
            clock: ClockStrategy::None,
        }
    }

    #[test]
    fn partitions_need_a_distinct_ipv4_address_per_node() {
        let ok = [node("n1", "10.77.1.1"), node("n2", "10.77.1.2")];
        assert!(check_partitionable(&ok).is_ok());
        let e = |nodes: &[NodeSpec]| check_partitionable(nodes).unwrap_err().to_string();
        let shared = e(&[node("n1", "192.0.2.1"), node("n2", "192.0.2.1")]);
        assert!(
            shared.contains("nodes n1 and n2 are both `192.0.2.1`"),
            "{shared}"
        );
        let lo = e(&[node("n1", "127.0.0.1"), node("n2", "10.77.1.2")]);
        assert!(lo.contains("node n1") && lo.contains("loopback"), "{lo}");
        let v6 = e(&[node("n1", "10.77.1.1"), node("n2", "2001:db8::2")]);
        assert!(v6.contains("IPv4 only: node n2"), "{v6}");
        assert!(e(&[node("n1", "db1.example")]).contains("as an IP"));
    }
}
