//! The nemesis inside a test: a schedule that starts and stops faults while the
//! workers run, recording each as an op of the `nemesis` process, and heals
//! everything before the final reads.
//!
//! ```text
//!   time ─►  quiet ── start-partition ── fault ── stop-partition ── quiet ── start-kill ...
//!   history: {"process":"nemesis","type":"info","f":"start-partition","value":{"n1":["n2","n3"],...}}
//! ```
//!
//! A fault may call for a step while it lasts ([`Nemesis::follow_up`]): an operator
//! promoting a replica when a primary-backup database's primary was killed or cut
//! off. It is an op of its own between the start and the stop
//! (`start-kill`, `failover`, `stop-kill`).
//!
//! This crate knows only the [`Nemesis`] trait; what a fault is (iptables in a lab,
//! signals, a remote host) is the implementer's business. Calls are blocking and
//! run on tokio's blocking pool.

use crate::progress::Progress;
use crate::recorder::Recorder;
use serde_json::Value;
use splitbrain_history::{Op, OpType, Process};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Starts and stops faults. Every method may block.
pub trait Nemesis: Send + 'static {
    /// Starts a fault; returns the history `f` (e.g. `start-partition`) and a value
    /// describing it (e.g. the grudge).
    fn start(&mut self) -> Result<(String, Value), NemesisError>;
    /// Ends the fault `start` began; returns its `f` (e.g. `stop-partition`) and value.
    fn stop(&mut self) -> Result<(String, Value), NemesisError>;
    /// Heals every fault, whatever happened, and waits until the cluster is healthy.
    fn heal_all(&mut self) -> Result<(), NemesisError>;
    /// After [`Nemesis::start`]: a step to take while the fault lasts, if the fault
    /// calls for one (an operator's failover of a primary it hit). Default: none.
    fn follow_up(&self) -> Option<FollowUp> {
        None
    }
    /// Takes the step [`Nemesis::follow_up`] announced; it may retry until `until`,
    /// the fault's planned end. Returns the op's value.
    fn take_follow_up(&mut self, until: Instant) -> Result<Value, NemesisError> {
        let _ = until;
        Ok(Value::Null)
    }
}

/// A step the nemesis takes during a fault, some time after it began (the history
/// records it as an op of its own, an instant between the start and the stop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// The op's `f` (`failover`).
    pub f: String,
    /// How long after the fault's start.
    pub after: Duration,
}

/// Why a fault did not start, stop or heal. Recorded as the `error` of the
/// nemesis op (`start-fault`, `stop-fault`, `heal`); the run goes on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NemesisError {
    /// The nemesis was given no fault kinds.
    #[error("no faults to choose from")]
    NoFaults,
    /// No node fits the fault (every one already killed or paused, say).
    #[error("no node to fault: {0}")]
    NoTarget(String),
    /// Applying or healing a fault failed (the implementer's own error).
    #[error(transparent)]
    Fault(Box<dyn std::error::Error + Send + Sync>),
    /// Every fault is healed, but the cluster did not become healthy.
    #[error("after healing, {0}")]
    Unhealthy(String),
}

impl NemesisError {
    /// Wraps an implementer's error.
    pub fn fault(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> NemesisError {
        NemesisError::Fault(e.into())
    }
}

/// When faults happen.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Quiet time before each fault.
    pub interval: Duration,
    /// How long each fault lasts.
    pub duration: Duration,
}

fn record(rec: &Recorder, start: Instant, f: &str, value: Value, error: Option<String>) {
    let mut op = Op::new(Process::Nemesis, OpType::Info, f, value);
    op.set_time(Some(start.elapsed().as_nanos() as i64));
    op.error = error.map(|e| Box::new(Value::String(e)));
    rec.record(op);
}

/// Sleeps until `deadline`; true when `done` turned true first.
async fn sleep_until_or_done(deadline: Instant, done: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep_until(deadline.into()) => false,
        _ = done.wait_for(|d| *d) => true,
    }
}

/// Runs `schedule` until `done` turns true, then heals everything. Returns the
/// nemesis (for a last heal on error paths) and how many faults it started.
pub(crate) async fn drive(
    mut nemesis: Box<dyn Nemesis>,
    schedule: Schedule,
    rec: Recorder,
    start: Instant,
    mut done: watch::Receiver<bool>,
    progress: std::sync::Arc<Progress>,
) -> (Box<dyn Nemesis>, u64) {
    let show = |fault: Option<String>| progress.show_fault(fault);
    let mut faults = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(schedule.interval) => {}
            _ = done.wait_for(|d| *d) => break,
        }
        let (n, started) = blocking(nemesis, |n| n.start()).await;
        nemesis = n;
        // The fault lasts its duration from when it is in place.
        let began = Instant::now();
        let mut follow_up = None;
        match started {
            Ok((f, value)) => {
                faults += 1;
                let kind = f.trim_start_matches("start-").to_string();
                show(Some(kind.clone()));
                record(&rec, start, &f, value, None);
                follow_up = nemesis
                    .follow_up()
                    .filter(|u| u.after < schedule.duration)
                    .map(|u| (u, kind));
            }
            Err(e) => record(&rec, start, "start-fault", Value::Null, Some(e.to_string())),
        }
        let until = began + schedule.duration;
        let mut ended = false;
        if let Some((step, kind)) = follow_up {
            ended = sleep_until_or_done(began + step.after, &mut done).await;
            if !ended {
                let (n, taken) = blocking(nemesis, move |n| n.take_follow_up(until)).await;
                nemesis = n;
                match taken {
                    Ok(value) => {
                        show(Some(format!("{kind}, {}", step.f)));
                        record(&rec, start, &step.f, value, None);
                    }
                    Err(e) => record(&rec, start, &step.f, Value::Null, Some(e.to_string())),
                }
            }
        }
        if !ended {
            ended = sleep_until_or_done(until, &mut done).await;
        }
        let (n, stopped) = blocking(nemesis, |n| n.stop()).await;
        nemesis = n;
        show(None);
        match stopped {
            Ok((f, value)) => record(&rec, start, &f, value, None),
            Err(e) => record(&rec, start, "stop-fault", Value::Null, Some(e.to_string())),
        }
        if ended {
            break;
        }
    }
    let (n, healed) = blocking(nemesis, |n| n.heal_all()).await;
    record(
        &rec,
        start,
        "heal",
        Value::Null,
        healed.err().map(|e| e.to_string()),
    );
    (n, faults)
}

async fn blocking<T: Send + 'static>(
    mut nemesis: Box<dyn Nemesis>,
    f: impl FnOnce(&mut Box<dyn Nemesis>) -> Result<T, NemesisError> + Send + 'static,
) -> (Box<dyn Nemesis>, Result<T, NemesisError>) {
    match tokio::task::spawn_blocking(move || {
        let r = f(&mut nemesis);
        (nemesis, r)
    })
    .await
    {
        Ok(done) => done,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A nemesis whose every fault calls for a follow-up; the first stop ends the run.
    struct Operator {
        done: watch::Sender<bool>,
    }

    impl Nemesis for Operator {
        fn start(&mut self) -> Result<(String, Value), NemesisError> {
            Ok(("start-kill".into(), serde_json::json!(["n1"])))
        }
        fn stop(&mut self) -> Result<(String, Value), NemesisError> {
            let _ = self.done.send(true);
            Ok(("stop-kill".into(), serde_json::json!(["n1"])))
        }
        fn heal_all(&mut self) -> Result<(), NemesisError> {
            Ok(())
        }
        fn follow_up(&self) -> Option<FollowUp> {
            Some(FollowUp {
                f: "failover".into(),
                after: Duration::from_millis(1),
            })
        }
        fn take_follow_up(&mut self, _: Instant) -> Result<Value, NemesisError> {
            Ok(serde_json::json!({"old": "n1", "new": "n2"}))
        }
    }

    #[test]
    fn a_follow_up_is_an_op_between_its_faults_start_and_stop() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("history.jsonl");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (faults, fs, progress) = rt.block_on(async {
            let (rec, writer) = crate::recorder::start(&path).unwrap();
            let (tx, rx) = watch::channel(false);
            let progress = std::sync::Arc::new(Progress::default());
            let schedule = Schedule {
                interval: Duration::from_millis(1),
                duration: Duration::from_millis(20),
            };
            let nemesis = Box::new(Operator { done: tx });
            let (_, faults) =
                drive(nemesis, schedule, rec, Instant::now(), rx, progress.clone()).await;
            writer.await.unwrap().unwrap();
            let history = splitbrain_history::History::read_path(&path).unwrap();
            let fs: Vec<String> = history.ops().iter().map(|o| o.f.to_string()).collect();
            (faults, fs, progress)
        });
        assert_eq!(faults, 1);
        assert_eq!(fs, ["start-kill", "failover", "stop-kill", "heal"]);
        assert_eq!(*progress.fault.lock().unwrap(), None);
    }
}
