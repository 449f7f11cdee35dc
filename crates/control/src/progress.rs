//! Live counters of a run, for a progress display: what the workers and the
//! nemesis report while the run goes on.

use splitbrain_history::OpType;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Live counters, for a progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    pub invoked: AtomicU64,
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
    /// The fault in place now, e.g. `partition` (for the progress display).
    pub fault: Mutex<Option<String>>,
}

impl Progress {
    pub(crate) fn count(&self, kind: OpType) {
        let c = match kind {
            OpType::Invoke => &self.invoked,
            OpType::Ok => &self.ok,
            OpType::Fail => &self.fail,
            OpType::Info => &self.info,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Shows `fault` (`None`: no fault in place).
    pub(crate) fn show_fault(&self, fault: Option<String>) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }
}
