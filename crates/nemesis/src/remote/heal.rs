//! The heal: what the state file records, undone; and [`RemoteFault`], the guard
//! each fault returns.

use super::{first_error, RemoteFaults, RemoteNet};
use crate::fault::{FaultKind, Heal, Healed, ProcessKind};
use crate::iptables::{self, remove_chain};
use crate::Result;
use std::collections::BTreeSet;

impl RemoteNet {
    fn heal_rules(&self, faults: &RemoteFaults, qdiscs_only: bool) -> Result<()> {
        let chains = [(faults.chain(), "INPUT"), (faults.loss_chain(), "INPUT")];
        first_error(self.each(|i, h| {
            let n = &self.spec(i).name;
            let wanted: Vec<(&str, &str)> = chains
                .iter()
                .skip(usize::from(qdiscs_only))
                .map(|(c, k)| (c.as_str(), *k))
                .collect();
            iptables::sweep(h, &wanted)?;
            if let Some(iface) = faults.qdiscs.get(n) {
                let out = h.run(&["tc", "qdisc", "show", "dev", iface, "root"])?;
                // The interface is gone (a container restarted): so is our qdisc.
                if !out.success() && out.stderr.contains("Cannot find device") {
                    return Ok(());
                }
                let shown = h.ok(format!("tc qdisc show dev {iface} root"), out)?;
                if shown.contains("netem") || shown.contains("tbf") {
                    h.check(&["tc", "qdisc", "del", "dev", iface, "root"])?;
                }
            }
            Ok(())
        }))
        .map(|_| ())
    }

    /// Undoes every fault the state file records: this run's chains and qdiscs go,
    /// killed nodes start, paused ones resume, clocks go back; then the state file.
    /// Its notes are for the user (a clock that may still be off, say). Idempotent.
    pub fn heal(&self) -> Result<Healed> {
        let faults = self.recorded()?;
        let rules = self.heal_rules(&faults, false);
        let paused = self.undo_process(ProcessKind::Pause, &faults.paused);
        let killed = self.undo_process(ProcessKind::Kill, &faults.killed);
        let clocks: BTreeSet<String> = faults.clocks.keys().cloned().collect();
        let notes = self.undo_clocks(&clocks);
        rules?;
        paused?;
        killed?;
        let notes = notes?;
        self.update(|f| *f = RemoteFaults::default())?;
        Ok(Healed { notes })
    }
}

#[derive(Debug, Clone)]
pub(super) enum Undo {
    Partition,
    Packet,
    Process(ProcessKind, BTreeSet<String>),
    Clock(BTreeSet<String>),
}

/// A fault on remote nodes. Undone when dropped (or [`RemoteFault::heal`] to see
/// errors, [`RemoteFault::keep`] to leave it for `splitbrain nemesis heal`).
#[derive(Debug)]
pub struct RemoteFault {
    net: RemoteNet,
    undo: Undo,
    armed: bool,
}

impl RemoteFault {
    pub(super) fn new(net: &RemoteNet, undo: Undo) -> RemoteFault {
        RemoteFault {
            net: net.clone(),
            undo,
            armed: true,
        }
    }

    /// Undoes it now, and says how that went.
    pub fn heal(mut self) -> Result<Healed> {
        self.armed = false;
        Ok(Healed {
            notes: self.undo()?,
        })
    }

    pub fn keep(mut self) {
        self.armed = false;
    }

    pub fn kind(&self) -> FaultKind {
        match &self.undo {
            Undo::Partition => FaultKind::Partition,
            Undo::Packet => FaultKind::Packet,
            Undo::Process(kind, _) => (*kind).into(),
            Undo::Clock(_) => FaultKind::Clock,
        }
    }

    fn undo(&self) -> Result<Vec<String>> {
        let net = &self.net;
        match &self.undo {
            Undo::Partition => {
                let faults = net.recorded()?;
                let chain = faults.chain();
                first_error(net.each(|_, h| remove_chain(h, &chain, "INPUT")))?;
                net.update(|f| f.partition = None)?;
            }
            Undo::Packet => {
                let faults = net.recorded()?;
                net.heal_rules(&faults, true)?;
                net.update(|f| {
                    f.packet = None;
                    f.qdiscs.clear();
                })?;
            }
            Undo::Process(kind, names) => net.undo_process(*kind, names)?,
            Undo::Clock(names) => return net.undo_clocks(names),
        }
        Ok(Vec::new())
    }
}

impl Heal for RemoteFault {
    fn heal(self: Box<Self>) -> Result<Healed> {
        (*self).heal()
    }

    fn keep(self: Box<Self>) {
        (*self).keep()
    }
}

impl Drop for RemoteFault {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = self.undo() {
                eprintln!("splitbrain-nemesis: undoing a fault on remote nodes failed: {e}");
            }
        }
    }
}
