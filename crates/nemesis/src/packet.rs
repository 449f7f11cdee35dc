//! Packet faults: what is asked ([`PacketSpec`]) and how each part is done on a
//! given kernel ([`plan`]), as pure values.
//!
//! With `tc netem` everything is one qdisc. Without it (this project's own VMs have
//! no netem), loss is an iptables `statistic` rule and bandwidth a `tbf` qdisc;
//! delay, jitter, duplication and reordering need netem and are refused with a
//! message saying so, rather than silently not applied.
//!
//! ```text
//!   loss 10%, 1 Mbit/s    netem:    tc qdisc add dev eth root netem loss 10% rate 1000kbit
//!                         no netem: iptables -m statistic --probability 0.1 -j DROP
//!                                   tc qdisc add dev eth root tbf rate 1000kbit ...
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a packet fault cannot be carried out (here, or at all).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// `loss`, `duplicate` or `reorder` outside 0..=1.
    #[error("{name} must be a fraction from 0 to 1, not {value}")]
    NotAFraction { name: &'static str, value: f64 },
    #[error("a rate of 0 kbit/s would cut the member off: use a partition")]
    ZeroRate,
    #[error("reordering needs a delay (packets are reordered by delaying the rest)")]
    ReorderWithoutDelay,
    /// Parts of the spec (`delay`, `duplicate`, `reorder`) that only netem does.
    #[error(
        "{} needs tc netem, which this kernel does not have (no sch_netem); \
         loss (iptables statistic) and rate (tbf) work without it",
        .0.join(", ")
    )]
    NeedsNetem(Vec<&'static str>),
}

/// What to do to every packet a member receives (loss) or sends (the rest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PacketSpec {
    /// Fraction of packets dropped, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Bandwidth limit in kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_kbit: Option<u64>,
    /// Added delay, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Jitter around the delay, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<u64>,
    /// Fraction of packets duplicated, 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// Fraction of packets sent out of order, 0 to 1 (needs a delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
}

/// How a part of a packet fault is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    /// `tc qdisc ... netem`.
    Netem,
    /// An iptables `statistic` rule dropping at random.
    IptablesStatistic,
    /// A `tbf` token bucket qdisc.
    Tbf,
    /// An NFQUEUE rule and a user-space delayer ([`crate::delayer`]).
    NfqueueDelayer,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mechanism::Netem => "tc netem",
            Mechanism::IptablesStatistic => "iptables statistic match",
            Mechanism::Tbf => "tc tbf",
            Mechanism::NfqueueDelayer => "NFQUEUE delayer",
        })
    }
}

/// How one node's packet fault is carried out (remote nodes: each its own kernel).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeMechanisms {
    pub node: String,
    pub mechanisms: Vec<(&'static str, Mechanism)>,
}

/// `n1: loss by iptables statistic match; n2: ...`
pub fn describe(how: &[NodeMechanisms]) -> String {
    how.iter()
        .map(|h| {
            let parts: Vec<String> = h
                .mechanisms
                .iter()
                .map(|(what, m)| format!("{what} by {m}"))
                .collect();
            format!("{}: {}", h.node, parts.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The commands a packet fault needs on one member.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Arguments after `tc qdisc add dev IF root`, if a qdisc is needed.
    pub qdisc: Option<Vec<String>>,
    /// The drop probability for an iptables statistic rule, if needed.
    pub loss_rule: Option<f64>,
    /// Delay and jitter (ms) for a user-space delayer, if needed.
    pub delayer: Option<(u64, u64)>,
    /// Which mechanism does each part, for the user: ("loss", Mechanism), ...
    pub mechanisms: Vec<(&'static str, Mechanism)>,
}

fn pct(x: f64) -> String {
    format!("{}%", (x * 100.0 * 1000.0).round() / 1000.0)
}

/// How to carry out `spec`, with or without netem, and with or without a delayer
/// program to run. `Err` names what cannot be done here, and why.
pub fn plan(spec: &PacketSpec, netem: bool, delayer: bool) -> Result<Plan, PlanError> {
    for (name, v) in [
        ("loss", spec.loss),
        ("duplicate", spec.duplicate),
        ("reorder", spec.reorder),
    ] {
        if let Some(v) = v {
            if !(0.0..=1.0).contains(&v) {
                return Err(PlanError::NotAFraction { name, value: v });
            }
        }
    }
    if spec.rate_kbit == Some(0) {
        return Err(PlanError::ZeroRate);
    }
    if spec.reorder.is_some() && spec.delay_ms.is_none() {
        return Err(PlanError::ReorderWithoutDelay);
    }
    let mut plan = Plan::default();
    if netem {
        let mut args = vec!["netem".to_string()];
        if let Some(d) = spec.delay_ms {
            args.extend(["delay".into(), format!("{d}ms")]);
            if let Some(j) = spec.jitter_ms {
                args.push(format!("{j}ms"));
            }
            plan.mechanisms.push(("delay", Mechanism::Netem));
        }
        for (name, v, word) in [
            ("loss", spec.loss, "loss"),
            ("duplicate", spec.duplicate, "duplicate"),
            ("reorder", spec.reorder, "reorder"),
        ] {
            if let Some(v) = v {
                args.extend([word.to_string(), pct(v)]);
                plan.mechanisms.push((name, Mechanism::Netem));
            }
        }
        if let Some(r) = spec.rate_kbit {
            args.extend(["rate".into(), format!("{r}kbit")]);
            plan.mechanisms.push(("rate", Mechanism::Netem));
        }
        if args.len() > 1 {
            plan.qdisc = Some(args);
        }
        return Ok(plan);
    }
    if delayer && (spec.delay_ms.is_some() || spec.jitter_ms.is_some()) {
        plan.delayer = Some((spec.delay_ms.unwrap_or(0), spec.jitter_ms.unwrap_or(0)));
        plan.mechanisms.push(("delay", Mechanism::NfqueueDelayer));
    }
    let lacking: Vec<&str> = [
        (
            "delay",
            !delayer && (spec.delay_ms.is_some() || spec.jitter_ms.is_some()),
        ),
        ("duplicate", spec.duplicate.is_some()),
        ("reorder", spec.reorder.is_some()),
    ]
    .into_iter()
    .filter(|(_, asked)| *asked)
    .map(|(n, _)| n)
    .collect();
    if !lacking.is_empty() {
        return Err(PlanError::NeedsNetem(lacking));
    }
    if let Some(l) = spec.loss {
        plan.loss_rule = Some(l);
        plan.mechanisms.push(("loss", Mechanism::IptablesStatistic));
    }
    if let Some(r) = spec.rate_kbit {
        // A burst of at least one full-size packet, and about 10 ms at the rate.
        let burst = (r * 1000 / 8 / 100).max(1600);
        plan.qdisc = Some(vec![
            "tbf".into(),
            "rate".into(),
            format!("{r}kbit"),
            "burst".into(),
            format!("{burst}"),
            "latency".into(),
            "400ms".into(),
        ]);
        plan.mechanisms.push(("rate", Mechanism::Tbf));
    }
    Ok(plan)
}

/// As [`plan`], for a node reached over SSH: loss is always the iptables rule,
/// which spares the nemesis's own SSH connection, never netem, whose loss would
/// drop that connection's packets too (`--loss 1` would leave the node unhealable).
/// netem does the rest where the kernel has it.
pub fn plan_remote(spec: &PacketSpec, netem: bool) -> Result<Plan, PlanError> {
    // The whole spec's refusals first (a loss out of range, say).
    plan(spec, netem, false)?;
    let rest = PacketSpec {
        loss: None,
        ..spec.clone()
    };
    let mut p = plan(&rest, netem, false)?;
    if let Some(l) = spec.loss {
        p.loss_rule = Some(l);
        p.mechanisms.push(("loss", Mechanism::IptablesStatistic));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_remote_nodes_loss_is_never_netem() {
        let spec = PacketSpec {
            loss: Some(1.0),
            delay_ms: Some(50),
            ..Default::default()
        };
        let p = plan_remote(&spec, true).unwrap();
        assert_eq!(p.loss_rule, Some(1.0));
        assert_eq!(p.qdisc.unwrap().join(" "), "netem delay 50ms");
        assert_eq!(
            p.mechanisms,
            vec![
                ("delay", Mechanism::Netem),
                ("loss", Mechanism::IptablesStatistic)
            ]
        );
        let only_loss = PacketSpec {
            loss: Some(0.5),
            ..Default::default()
        };
        assert_eq!(plan_remote(&only_loss, true).unwrap().qdisc, None);
        assert!(plan_remote(
            &PacketSpec {
                loss: Some(2.0),
                ..Default::default()
            },
            true
        )
        .is_err());
    }

    #[test]
    fn without_netem_loss_and_rate_use_the_fallbacks() {
        let spec = PacketSpec {
            loss: Some(0.1),
            rate_kbit: Some(1000),
            ..Default::default()
        };
        let p = plan(&spec, false, false).unwrap();
        assert_eq!(p.loss_rule, Some(0.1));
        assert_eq!(p.qdisc.as_ref().unwrap()[0], "tbf");
        assert_eq!(
            p.mechanisms,
            vec![
                ("loss", Mechanism::IptablesStatistic),
                ("rate", Mechanism::Tbf)
            ]
        );
    }

    #[test]
    fn without_netem_delay_is_refused_with_the_reason() {
        let spec = PacketSpec {
            delay_ms: Some(100),
            duplicate: Some(0.01),
            ..Default::default()
        };
        let e = plan(&spec, false, false).unwrap_err();
        assert_eq!(e, PlanError::NeedsNetem(vec!["delay", "duplicate"]));
        assert!(
            e.to_string().starts_with("delay, duplicate needs tc netem"),
            "{e}"
        );
    }

    #[test]
    fn without_netem_a_delayer_does_the_delay() {
        let spec = PacketSpec {
            delay_ms: Some(100),
            jitter_ms: Some(10),
            loss: Some(0.05),
            ..Default::default()
        };
        let p = plan(&spec, false, true).unwrap();
        assert_eq!(p.delayer, Some((100, 10)));
        assert_eq!(
            p.mechanisms,
            vec![
                ("delay", Mechanism::NfqueueDelayer),
                ("loss", Mechanism::IptablesStatistic)
            ]
        );
        let dup = PacketSpec {
            duplicate: Some(0.1),
            ..Default::default()
        };
        assert_eq!(
            plan(&dup, false, true).unwrap_err(),
            PlanError::NeedsNetem(vec!["duplicate"])
        );
    }

    #[test]
    fn with_netem_everything_is_one_qdisc() {
        let spec = PacketSpec {
            loss: Some(0.1),
            delay_ms: Some(100),
            jitter_ms: Some(20),
            reorder: Some(0.25),
            rate_kbit: Some(500),
            ..Default::default()
        };
        let p = plan(&spec, true, false).unwrap();
        assert_eq!(
            p.qdisc.unwrap().join(" "),
            "netem delay 100ms 20ms loss 10% reorder 25% rate 500kbit"
        );
        assert_eq!(p.loss_rule, None);
    }

    #[test]
    fn nonsense_is_refused() {
        let bad = |spec: PacketSpec| plan(&spec, true, false).unwrap_err();
        let e = bad(PacketSpec {
            loss: Some(1.5),
            ..Default::default()
        });
        assert_eq!(
            e,
            PlanError::NotAFraction {
                name: "loss",
                value: 1.5
            }
        );
        assert_eq!(
            e.to_string(),
            "loss must be a fraction from 0 to 1, not 1.5"
        );
        assert_eq!(
            bad(PacketSpec {
                rate_kbit: Some(0),
                ..Default::default()
            }),
            PlanError::ZeroRate
        );
        assert_eq!(
            bad(PacketSpec {
                reorder: Some(0.1),
                ..Default::default()
            }),
            PlanError::ReorderWithoutDelay
        );
    }
}
