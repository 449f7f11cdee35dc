//! Names and addresses of one lab, all derived from its subnet number `N`.
//!
//! Every lab lives in `10.77.N.0/24` (N in 1..=254) and names everything it creates with
//! the prefix `sbN`, so several labs can coexist and `down` touches only its own:
//!
//! ```text
//!  root namespace       bridge namespace sbN-br               member namespaces
//!  sbNh 10.77.N.254 ─── sbNhb ──┐
//!                               sbNbr (bridge) ─┬─ sbNn1b ─── sbNn1 10.77.N.1  in sbN-n1
//!                                               ├─ sbNn2b ─── sbNn2 10.77.N.2  in sbN-n2
//!                                               └─ ...
//! ```
//!
//! Interface names stay within the kernel's 15 characters (`sb254n9b` is the longest).

use std::net::Ipv4Addr;

/// First two octets of the project's fixed lab range, 10.77.0.0/16.
pub const LAB_RANGE: [u8; 2] = [10, 77];
/// Client port of every member (each member has its own address, so ports never clash).
pub const CLIENT_PORT: u16 = 2379;
/// Peer port of every member.
pub const PEER_PORT: u16 = 2380;
/// Most members a lab supports (node numbers are one digit in interface names).
pub const MAX_NODES: usize = 9;

/// One lab's naming scheme, fixed by its subnet number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lab {
    pub octet: u8,
}

impl Lab {
    /// The lab whose subnet holds `addr`, if `addr` is in the project's range.
    pub fn of_addr(addr: Ipv4Addr) -> Option<Lab> {
        let [a, b, n, _] = addr.octets();
        ([a, b] == LAB_RANGE && (1..=254).contains(&n)).then_some(Lab { octet: n })
    }

    pub fn prefix(self) -> String {
        format!("sb{}", self.octet)
    }

    pub fn subnet(self) -> String {
        format!("{}.{}.{}.0/24", LAB_RANGE[0], LAB_RANGE[1], self.octet)
    }

    pub fn bridge_netns(self) -> String {
        format!("{}-br", self.prefix())
    }

    pub fn bridge(self) -> String {
        format!("{}br", self.prefix())
    }

    /// The root-namespace end of the harness veth: the only way into the lab.
    pub fn host_veth(self) -> String {
        format!("{}h", self.prefix())
    }

    pub fn host_veth_peer(self) -> String {
        format!("{}hb", self.prefix())
    }

    pub fn host_addr(self) -> Ipv4Addr {
        self.addr(254)
    }

    /// Member `i` (1-based).
    pub fn node_name(i: usize) -> String {
        format!("n{i}")
    }

    pub fn node_netns(self, i: usize) -> String {
        format!("{}-n{i}", self.prefix())
    }

    /// The member's end of its veth, inside the member's namespace.
    pub fn node_veth(self, i: usize) -> String {
        format!("{}n{i}", self.prefix())
    }

    /// The bridge's end of the member's veth, inside the bridge namespace.
    pub fn node_veth_peer(self, i: usize) -> String {
        format!("{}n{i}b", self.prefix())
    }

    pub fn node_addr(self, i: usize) -> Ipv4Addr {
        // `i` is at most MAX_NODES, checked by the config.
        self.addr(u8::try_from(i).unwrap_or(u8::MAX))
    }

    fn addr(self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(LAB_RANGE[0], LAB_RANGE[1], self.octet, last)
    }
}

/// Subnet numbers that an existing route or address overlaps, from `ip -4 -o route show
/// table all`. A route less specific than a /24 (a default route, a 10.0.0.0/8 VPN) does
/// not count: the lab's connected /24 would be more specific and win.
pub(crate) fn octets_in_use(routes: &str) -> Vec<u8> {
    let mut used = Vec::new();
    for line in routes.lines() {
        let mut words = line.split_whitespace();
        let Some(mut dst) = words.next() else {
            continue;
        };
        // Typed routes (`local 10.77.3.254 dev ...`) put the type first.
        if matches!(
            dst,
            "local"
                | "broadcast"
                | "unicast"
                | "anycast"
                | "multicast"
                | "blackhole"
                | "unreachable"
                | "prohibit"
                | "throw"
                | "nat"
        ) {
            match words.next() {
                Some(d) => dst = d,
                None => continue,
            }
        }
        let (addr, len) = match dst.split_once('/') {
            Some((a, l)) => (a, l.parse::<u8>().unwrap_or(0)),
            None => (dst, 32),
        };
        if len < 24 {
            continue;
        }
        if let Ok(addr) = addr.parse::<Ipv4Addr>() {
            if let Some(lab) = Lab::of_addr(addr) {
                used.push(lab.octet);
            }
        }
    }
    used.sort_unstable();
    used.dedup();
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_kernel_limit_and_share_the_prefix() {
        let lab = Lab { octet: 254 };
        let names = [
            lab.bridge(),
            lab.host_veth(),
            lab.host_veth_peer(),
            lab.node_veth(MAX_NODES),
            lab.node_veth_peer(MAX_NODES),
        ];
        for name in &names {
            assert!(name.len() <= 15, "{name} is too long for an interface");
            assert!(name.starts_with("sb254"), "{name}");
        }
        assert_eq!(lab.node_netns(3), "sb254-n3");
        assert_eq!(lab.bridge_netns(), "sb254-br");
        assert_eq!(lab.subnet(), "10.77.254.0/24");
    }

    #[test]
    fn addresses_are_inside_the_lab_subnet() {
        let lab = Lab { octet: 7 };
        assert_eq!(lab.node_addr(1), Ipv4Addr::new(10, 77, 7, 1));
        assert_eq!(lab.host_addr(), Ipv4Addr::new(10, 77, 7, 254));
        assert_eq!(Lab::of_addr(lab.node_addr(5)), Some(lab));
        assert_eq!(Lab::of_addr(Ipv4Addr::new(10, 78, 7, 1)), None);
        assert_eq!(Lab::of_addr(Ipv4Addr::new(10, 77, 0, 1)), None);
        assert_eq!(Lab::of_addr(Ipv4Addr::new(10, 77, 255, 1)), None);
    }

    #[test]
    fn routes_that_overlap_a_lab_subnet_mark_it_used() {
        let routes = "\
default via 172.17.0.1 dev eth0
10.0.0.0/8 via 172.17.0.1 dev eth0
10.77.3.0/24 dev sb3h proto kernel scope link src 10.77.3.254
10.77.9.128/25 dev tun0 scope link
local 10.77.4.254 dev sb4h table local proto kernel scope host src 10.77.4.254
broadcast 10.77.3.255 dev sb3h table local proto kernel scope link src 10.77.3.254
10.77.0.0/16 dev wg0 scope link
172.17.0.0/16 dev eth0 proto kernel scope link src 172.17.0.2
";
        assert_eq!(octets_in_use(routes), vec![3, 4, 9]);
        assert_eq!(octets_in_use(""), Vec::<u8>::new());
    }
}
