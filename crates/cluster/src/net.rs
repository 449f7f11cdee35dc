//! The lab network: creating it, removing it, and the route check that keeps every lab
//! request on this machine.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use crate::error::{Error, Result};
use crate::sys;
use crate::topology::{octets_in_use, Lab};

/// Refuses unless a request to `addr` would stay on this machine: `addr` is loopback, or
/// it is a lab address (`10.77.N.x`) whose route goes straight out through that lab's own
/// root-side interface `sbNh`.
///
/// Call it before every request to a lab address. Once a lab is down its subnet is no
/// longer connected, and the same address would follow the default route off the machine;
/// this check is what turns that into an error instead of stray traffic.
///
/// ```no_run
/// # fn main() -> splitbrain_cluster::Result<()> {
/// splitbrain_cluster::ensure_lab_route("10.77.1.2".parse().unwrap())?;
/// // ... now it is safe to connect to 10.77.1.2
/// # Ok(()) }
/// ```
pub fn ensure_lab_route(addr: IpAddr) -> Result<()> {
    if addr.is_loopback() {
        return Ok(());
    }
    let refuse = |reason: String, route: &str| Error::UnsafeRoute {
        addr,
        reason,
        route: route.trim().to_owned(),
    };
    let lab = match addr {
        IpAddr::V4(v4) => Lab::of_addr(v4),
        IpAddr::V6(_) => None,
    };
    let Some(lab) = lab else {
        return Err(refuse(
            "it is neither loopback nor in a splitbrain lab subnet (10.77.N.0/24)".into(),
            "not looked up",
        ));
    };
    match sys::ip(&["-4", "-o", "route", "get", &addr.to_string()]) {
        Ok(route) => check_route(lab, &route).map_err(|reason| refuse(reason, &route)),
        Err(Error::Command { stderr, .. }) => {
            Err(refuse("there is no route to it".into(), &stderr))
        }
        Err(e) => Err(e),
    }
}

/// The check for a target the user named (a node's URL host, an SSH host): lab
/// addresses must pass [`ensure_lab_route`] always; loopback is fine; anything else
/// (another machine's address, a host name) only when `allow_remote` says the user
/// means to test a cluster of their own on other machines (`--allow-remote`).
pub fn ensure_target(host: &str, allow_remote: bool) -> Result<()> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(addr) if addr.is_loopback() => Ok(()),
        Ok(IpAddr::V4(v4)) if Lab::of_addr(v4).is_some() => ensure_lab_route(IpAddr::V4(v4)),
        _ if allow_remote => Ok(()),
        _ => Err(Error::RemoteNotAllowed {
            target: host.to_owned(),
        }),
    }
}

/// [`ensure_target`] for the host of a URL such as `http://db1.example:2379`.
pub fn ensure_target_url(url: &str, allow_remote: bool) -> Result<()> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if authority.starts_with('[') {
        authority.split_once(']').map_or(authority, |(h, _)| h)
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(Error::UnsafeRoute {
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            reason: format!("cannot find a host in the URL `{url}`"),
            route: "not looked up".into(),
        });
    }
    ensure_target(host, allow_remote)
}

/// [`ensure_lab_route`] for the host of a URL such as `http://10.77.1.2:2379`.
pub fn ensure_lab_url(url: &str) -> Result<()> {
    let host = url_host(url).ok_or_else(|| Error::UnsafeRoute {
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        reason: format!("cannot find an IP address in the URL `{url}`"),
        route: "not looked up".into(),
    })?;
    ensure_lab_route(host)
}

fn url_host(url: &str) -> Option<IpAddr> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Checks one line of `ip -o route get` for a lab address: it must be a plain unicast
/// route, with no gateway, out of the lab's root-side veth.
fn check_route(lab: Lab, route: &str) -> std::result::Result<(), String> {
    let words: Vec<&str> = route.split_whitespace().collect();
    let after = |key: &str| {
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1))
    };
    let expected = lab.host_veth();
    if matches!(
        words.first(),
        Some(&("local" | "broadcast" | "multicast" | "unreachable" | "prohibit" | "blackhole"))
    ) {
        return Err(format!(
            "it is not a member address of lab {}",
            lab.prefix()
        ));
    }
    if let Some(gw) = after("via") {
        return Err(format!(
            "its route goes through gateway {gw}, not straight out of lab interface {expected}"
        ));
    }
    match after("dev") {
        Some(dev) if **dev == expected => Ok(()),
        Some(dev) => Err(format!(
            "its route goes out of {dev}, not lab interface {expected}"
        )),
        None => Err(format!("its route names no interface, expected {expected}")),
    }
}

/// Claims a free lab: the first subnet number (or `wanted`) with no overlapping route, whose
/// bridge namespace we could create. Creating the namespace is the atomic claim: two `up`s
/// racing for the same number cannot both succeed. `record` runs before each attempt, so
/// the caller can write the claim ahead (see [`is_abandoned_claim`]).
pub(crate) fn claim_lab(
    wanted: Option<u8>,
    mut record: impl FnMut(Lab) -> Result<()>,
) -> Result<Lab> {
    let routes = sys::ip(&["-4", "-o", "route", "show", "table", "all"])?;
    let used = octets_in_use(&routes);
    let candidates: Vec<u8> = match wanted {
        Some(n) => vec![n],
        None => (1..=254).filter(|n| !used.contains(n)).collect(),
    };
    for octet in candidates {
        let lab = Lab { octet };
        if used.contains(&octet) {
            let detail = routes
                .lines()
                .filter(|l| l.contains(&format!("10.77.{octet}.")))
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::AddressInUse {
                what: format!("subnet {}", lab.subnet()),
                detail: format!("routes: {detail}"),
            });
        }
        let ns = lab.bridge_netns();
        record(lab)?;
        match sys::ip(&["netns", "add", &ns]) {
            Ok(_) => return Ok(lab),
            Err(Error::Command { stderr, .. }) if stderr.contains("File exists") => {
                if wanted.is_some() {
                    return Err(Error::AddressInUse {
                        what: format!("subnet {}", lab.subnet()),
                        detail: format!(
                            "namespace {ns} already exists: another splitbrain cluster?"
                        ),
                    });
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::NoFreeSubnet)
}

/// Whether the bridge namespace `name` holds nothing but loopback: a claim whose `up` died
/// before it recorded the namespace's id or built anything in it. A live lab's bridge
/// namespace always holds its bridge, so such a namespace is safe to remove by name.
pub(crate) fn is_abandoned_claim(name: &str) -> bool {
    sys::netns_inode(name).is_some()
        && sys::ip(&["-n", name, "-o", "link", "show"])
            .is_ok_and(|links| links.lines().all(|l| l.contains(": lo:")))
}

/// Builds the bridge and the harness veth, in the already claimed bridge namespace.
pub(crate) fn create_bridge(lab: Lab) -> Result<()> {
    let ns = lab.bridge_netns();
    let br = lab.bridge();
    let host = lab.host_veth();
    let peer = lab.host_veth_peer();
    let host_cidr = format!("{}/24", lab.host_addr());
    sys::ip(&[
        "-n",
        &ns,
        "link",
        "add",
        &br,
        "type",
        "bridge",
        "forward_delay",
        "0",
    ])?;
    sys::ip(&["-n", &ns, "link", "set", &br, "up"])?;
    sys::ip(&[
        "link", "add", &host, "type", "veth", "peer", "name", &peer, "netns", &ns,
    ])?;
    sys::ip(&["-n", &ns, "link", "set", &peer, "master", &br, "up"])?;
    sys::ip(&["addr", "add", &host_cidr, "dev", &host])?;
    sys::ip(&["link", "set", &host, "up"])?;
    Ok(())
}

/// Creates member `i`'s namespace. Separate from [`wire_node`] so the state file can
/// record the namespace before anything is put in it.
pub(crate) fn create_node_netns(lab: Lab, i: usize) -> Result<()> {
    sys::ip(&["netns", "add", &lab.node_netns(i)]).map(drop)
}

/// Connects member `i`'s namespace to the bridge and gives it its address.
pub(crate) fn wire_node(lab: Lab, i: usize) -> Result<()> {
    let ns = lab.node_netns(i);
    let br_ns = lab.bridge_netns();
    let veth = lab.node_veth(i);
    let peer = lab.node_veth_peer(i);
    let cidr = format!("{}/24", lab.node_addr(i));
    #[rustfmt::skip]
    sys::ip(&["link", "add", &veth, "netns", &ns, "type", "veth", "peer", "name", &peer, "netns", &br_ns])?;
    sys::ip(&[
        "-n",
        &br_ns,
        "link",
        "set",
        &peer,
        "master",
        &lab.bridge(),
        "up",
    ])?;
    sys::ip(&["-n", &ns, "addr", "add", &cidr, "dev", &veth])?;
    sys::ip(&["-n", &ns, "link", "set", &veth, "up"])?;
    sys::ip(&["-n", &ns, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Deletes a namespace if it is still the one we created (same namespace id); a missing
/// one is already gone. Deleting it takes its interfaces (and their veth peers) and its
/// iptables rules with it, once no process is left inside.
pub(crate) fn delete_netns(name: &str, inode: Option<u64>) -> Result<()> {
    match (sys::netns_inode(name), inode) {
        (None, _) => Ok(()),
        (Some(now), Some(ours)) if now != ours => {
            tracing::warn!(
                "namespace {name} is no longer ours (another cluster took the name); left alone"
            );
            Ok(())
        }
        _ => sys::ip(&["netns", "delete", name]).map(drop),
    }
}

/// Deletes the root-side veth if it is still there (it usually goes with the bridge
/// namespace, since deleting one end of a veth deletes both).
pub(crate) fn delete_host_veth(name: &str) -> Result<()> {
    if link_exists(name) {
        match sys::ip(&["link", "delete", name]) {
            Err(_) if !link_exists(name) => Ok(()),
            other => other.map(drop),
        }
    } else {
        Ok(())
    }
}

pub(crate) fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: Lab = Lab { octet: 3 };

    #[test]
    fn a_connected_route_through_the_lab_veth_is_safe() {
        let route = "10.77.3.1 dev sb3h src 10.77.3.254 uid 0 \\    cache ";
        assert_eq!(check_route(LAB, route), Ok(()));
    }

    #[test]
    fn a_route_off_the_machine_is_refused() {
        // What a torn-down lab's address looks like: it follows the default route.
        let route = "10.77.3.1 via 172.17.0.1 dev eth0 src 172.17.0.2 uid 0 \\    cache ";
        let err = check_route(LAB, route).unwrap_err();
        assert!(err.contains("gateway 172.17.0.1"), "{err}");
        let other = "10.77.3.1 dev sb4h src 10.77.4.254 uid 0";
        assert!(check_route(LAB, other).unwrap_err().contains("sb4h"));
        let local = "local 10.77.3.254 dev lo src 10.77.3.254 uid 0";
        assert!(check_route(LAB, local).is_err());
        assert!(check_route(LAB, "").is_err());
    }

    #[test]
    fn other_machines_only_when_the_user_allows_them() {
        for url in [
            "http://192.168.1.10:2379",
            "https://db1.example:2379/v3",
            "http://[2001:db8::1]:2379",
            "root@10.0.0.5",
        ] {
            let err = ensure_target_url(url, false).unwrap_err();
            assert!(
                matches!(err, Error::RemoteNotAllowed { .. }),
                "{url}: {err}"
            );
            let err = err.to_string();
            assert!(
                err.contains("other machines were not allowed"),
                "{url}: {err}"
            );
            assert!(!err.contains("--"), "no flag in a library error: {err}");
            assert!(ensure_target_url(url, true).is_ok(), "{url}");
        }
        assert!(ensure_target_url("http://127.0.0.1:2379", false).is_ok());
        assert!(ensure_target("::1", false).is_ok());
        // A lab address always needs its lab's route, allowed or not: no lab 250
        // exists here, so it would leave the machine.
        assert!(ensure_target("10.77.250.1", true).is_err());
        assert!(ensure_target_url("http://:2379", true).is_err());
    }

    #[test]
    fn non_lab_addresses_are_refused_without_a_lookup() {
        for addr in ["192.168.1.10", "10.0.0.1", "8.8.8.8", "10.77.0.1", "::2"] {
            let err = ensure_lab_route(addr.parse().unwrap()).unwrap_err();
            assert!(matches!(err, Error::UnsafeRoute { .. }), "{addr}: {err}");
        }
        assert!(ensure_lab_route("127.0.0.1".parse().unwrap()).is_ok());
        assert!(ensure_lab_route("::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn url_hosts_parse() {
        assert_eq!(
            url_host("http://10.77.3.1:2379"),
            Some("10.77.3.1".parse().unwrap())
        );
        assert_eq!(
            url_host("http://10.77.3.1:2379/v2/keys/k?quorum=true"),
            Some("10.77.3.1".parse().unwrap())
        );
        assert_eq!(url_host("10.77.3.1"), Some("10.77.3.1".parse().unwrap()));
        assert_eq!(url_host("http://[::1]:2379"), Some("::1".parse().unwrap()));
        assert_eq!(url_host("http://example.com:2379"), None);
        assert!(ensure_lab_url("http://example.com/").is_err());
    }
}
