//! A lab member as clients, the nemesis and the database plug-ins see it: its name,
//! namespace, address, URLs and files. (The state file records it; the plug-ins write
//! its command line and configuration from it.)

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The name of a cluster member (`n1`, `n2`, ...), as etcd and the history know it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeName(pub String);

impl NodeName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for NodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for NodeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for NodeName {
    fn from(s: &str) -> Self {
        NodeName(s.to_owned())
    }
}

impl PartialEq<str> for NodeName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for NodeName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// One member: everything a client or a nemesis needs to reach it or fault it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Node {
    pub name: NodeName,
    /// The member's network namespace: run commands in it with
    /// [`Cluster::netns_command`](crate::Cluster::netns_command) (iptables for partitions).
    pub netns: String,
    /// The member's interface inside its namespace.
    pub interface: String,
    /// The member's own address on the lab bridge.
    pub addr: Ipv4Addr,
    /// `http://ADDR:2379`, reachable from the root namespace.
    pub client_url: String,
    /// `http://ADDR:2380`, what the other members talk to.
    pub peer_url: String,
    pub data_dir: PathBuf,
    pub log_file: PathBuf,
    /// The offset file of the member's clock supervisor, when the cluster was started
    /// with one ([`Config::clock_supervisor`](crate::Config::clock_supervisor)):
    /// writing it moves the member's wall clock. Missing means real time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_file: Option<PathBuf>,
}
