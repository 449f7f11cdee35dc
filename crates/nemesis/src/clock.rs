//! Clock faults on a local lab: each member runs under the clock supervisor of
//! `splitbrain-clock` (`splitbrain cluster up --clock`), which answers the member's
//! wall-clock reads from its offset file `DIR/nI/clock`. A fault writes that file;
//! the host clock is never touched and monotonic time is never faked.
//!
//! ```text
//!   bump +1d on n1     n1 reads Mon 12:00 while n2, n3 and the host read Sun 12:00
//!   skew 2x on n2      n2's clock runs two seconds per real second
//!   strobe 5s/100ms    n3's clock jumps +5 s and back every 100 ms
//!   reset              every clock reads real time again
//! ```
//!
//! The nemesis state file names each faked clock before its offset file is
//! written, and [`LabNet::heal`] resets every member's clock whatever the state
//! file says, so a heal after a killed harness leaves every clock real.

use crate::fault::{ClockChange, Heal, Healed};
use crate::lab::{Faults, LabNet};
use crate::{Error, Result};
use splitbrain_clock::fake::real_now_ns;
use splitbrain_clock::FakeClock;
use std::path::Path;

impl ClockChange {
    /// The clock after this change, made at real time `now_ns`.
    pub fn apply(&self, clock: &FakeClock, now_ns: i64) -> FakeClock {
        match *self {
            ClockChange::Bump { delta_ns } => clock.bump(now_ns, delta_ns),
            ClockChange::Skew { rate } => clock.skew(now_ns, rate),
            ClockChange::Strobe {
                delta_ns,
                period_ns,
            } => clock.strobe(now_ns, delta_ns, period_ns),
            ClockChange::Reset => FakeClock::REAL,
        }
    }
}

impl LabNet {
    /// Whether the lab's members run under the clock supervisor.
    pub fn has_clock_control(&self) -> bool {
        !self.members.is_empty() && self.members.iter().all(|m| m.clock_file.is_some())
    }

    fn require_clock_control(&self) -> Result<()> {
        if self.has_clock_control() {
            Ok(())
        } else {
            Err(Error::NoClockControl(self.dir.clone()))
        }
    }

    /// Each member's clock as its offset file says now.
    pub fn clocks(&self) -> Result<Vec<(String, FakeClock)>> {
        self.require_clock_control()?;
        self.members
            .iter()
            .filter_map(|m| Some((m.name.clone(), m.clock_file.as_deref()?)))
            .map(|(name, file)| Ok((name, read(file)?)))
            .collect()
    }

    /// Changes the wall clock of `nodes` (every member when empty). The guard sets
    /// them back to real time when dropped.
    pub fn clock_fault(&self, nodes: &[String], change: ClockChange) -> Result<ClockFault> {
        self.require_clock_control()?;
        self.check_nodes(nodes.iter().map(|n| n.as_str()))?;
        let targets: Vec<String> = if nodes.is_empty() {
            self.nodes()
        } else {
            nodes.to_vec()
        };
        let now = real_now_ns();
        let mut changed = Vec::new();
        for m in self.members.iter().filter(|m| targets.contains(&m.name)) {
            let Some(file) = m.clock_file.as_deref() else {
                continue;
            };
            changed.push((m.name.clone(), file, change.apply(&read(file)?, now)));
        }
        // Write-ahead: the state file names every faked clock before it is faked.
        let mut faults = self.recorded()?;
        for (name, _, clock) in &changed {
            if clock.is_real() {
                faults.clocks.remove(name);
            } else {
                faults.clocks.insert(name.clone(), *clock);
            }
        }
        self.record_or_forget(&faults)?;
        let guard = ClockFault {
            net: self.clone(),
            nodes: targets,
            change,
            armed: true,
        };
        for (_, file, clock) in changed {
            write(file, &clock)?;
        }
        Ok(guard)
    }

    /// Sets every member's clock back to real time (whatever the state file says).
    pub(crate) fn heal_clocks(&self) -> Result<()> {
        for m in &self.members {
            if let Some(file) = &m.clock_file {
                write(file, &FakeClock::REAL)?;
            }
        }
        Ok(())
    }

    fn reset_clocks(&self, nodes: &[String]) -> Result<()> {
        for m in self.members.iter().filter(|m| nodes.contains(&m.name)) {
            if let Some(file) = &m.clock_file {
                write(file, &FakeClock::REAL)?;
            }
        }
        let nodes = nodes.to_vec();
        self.forget_fault(move |f| f.clocks.retain(|n, _| !nodes.contains(n)))
    }

    fn record_or_forget(&self, faults: &Faults) -> Result<()> {
        if faults.is_empty() {
            self.forget_fault(|_| {})
        } else {
            self.record(faults)
        }
    }
}

fn read(file: &Path) -> Result<FakeClock> {
    FakeClock::read(file).map_err(|e| Error::Clock(e.to_string()))
}

/// Real time is no file at all: nothing is left behind.
fn write(file: &Path, clock: &FakeClock) -> Result<()> {
    if clock.is_real() {
        return match std::fs::remove_file(file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Clock(format!(
                "cannot reset {}: {e}",
                file.display()
            ))),
            _ => Ok(()),
        };
    }
    clock.write(file).map_err(|e| Error::Clock(e.to_string()))
}

/// Members whose clock is faked. Sets them back to real time when dropped.
#[derive(Debug)]
pub struct ClockFault {
    net: LabNet,
    nodes: Vec<String>,
    change: ClockChange,
    armed: bool,
}

impl ClockFault {
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    pub fn change(&self) -> ClockChange {
        self.change
    }

    /// Resets the clocks now, and says whether that worked.
    pub fn heal(mut self) -> Result<Healed> {
        self.armed = false;
        self.net.reset_clocks(&self.nodes)?;
        Ok(Healed::default())
    }

    /// Leaves the clocks faked (recorded in the state file) for
    /// `splitbrain nemesis heal`.
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Heal for ClockFault {
    fn heal(self: Box<Self>) -> Result<Healed> {
        (*self).heal()
    }

    fn keep(self: Box<Self>) {
        (*self).keep()
    }
}

impl Drop for ClockFault {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = self.net.reset_clocks(&self.nodes) {
                eprintln!("splitbrain-nemesis: resetting the clocks failed: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_start_from_the_current_clock() {
        let s = 1_000_000_000;
        let bump = ClockChange::Bump {
            delta_ns: -3600 * s,
        };
        let c = bump.apply(&FakeClock::offset(86400 * s), 0);
        assert_eq!(c.offset_at(0), (86400 - 3600) * s);
        assert!(ClockChange::Reset.apply(&c, 0).is_real());
    }
}
