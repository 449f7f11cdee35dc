//! Process faults on remote nodes: kill or pause by the nodes file's commands.

use super::heal::{RemoteFault, Undo};
use super::RemoteNet;
use crate::fault::ProcessKind;
use crate::nodes::fill;
use crate::{Error, Result};
use std::collections::BTreeSet;

impl RemoteNet {
    /// Kills or pauses `nodes` with the nodes file's commands; the guard starts or
    /// resumes them.
    pub fn process_fault(&self, kind: ProcessKind, nodes: &[String]) -> Result<RemoteFault> {
        self.check_nodes(nodes.iter().map(String::as_str))?;
        let names: BTreeSet<String> = nodes.iter().cloned().collect();
        for n in &names {
            let p = &self.spec(self.index(n)?).process;
            let (cmd, what) = match kind {
                ProcessKind::Kill => (&p.kill, "kill (`process.kill` and `process.start`)"),
                ProcessKind::Pause => (&p.pause, "pause (`process.pause` and `process.resume`)"),
            };
            if cmd.is_none() {
                return Err(Error::Unsupported(format!(
                    "{what} is unsupported on node {n}: the nodes file says no command for it \
                     (set process.service, process.pid_file or the commands)"
                )));
            }
        }
        self.update(|f| match kind {
            ProcessKind::Kill => f.killed.extend(names.iter().cloned()),
            ProcessKind::Pause => f.paused.extend(names.iter().cloned()),
        })?;
        let guard = RemoteFault::new(self, Undo::Process(kind, names.clone()));
        self.each_of(&names, |i, h| {
            let n = self.spec(i);
            let t = match kind {
                ProcessKind::Kill => &n.process.kill,
                ProcessKind::Pause => &n.process.pause,
            };
            let cmd = fill(t.as_deref().unwrap_or("false"), &n.name, &n.host, 0);
            h.check_shell(&cmd)?;
            if kind == ProcessKind::Kill {
                // A killed process is no longer paused: nothing to resume (a resume
                // of a dead process would fail the heal).
                self.update(|f| {
                    f.paused.remove(&n.name);
                })?;
            }
            Ok(())
        })?;
        Ok(guard)
    }

    pub(super) fn undo_process(&self, kind: ProcessKind, names: &BTreeSet<String>) -> Result<()> {
        let killed = self.recorded()?.killed;
        self.each_of(names, |i, h| {
            let n = self.spec(i);
            let fill = |t: &str| fill(t, &n.name, &n.host, 0);
            match kind {
                // Also recorded as killed (the run stopped between the kill and
                // clearing the pause): the process may be dead, and the kill's undo
                // starts it; a resume is only worth a try.
                ProcessKind::Pause if killed.contains(&n.name) => {
                    if let Some(t) = &n.process.resume {
                        let _ = h.shell(&fill(t))?;
                    }
                    Ok(())
                }
                ProcessKind::Pause => match &n.process.resume {
                    Some(t) => h.check_shell(&fill(t)).map(|_| ()),
                    None => Ok(()),
                },
                ProcessKind::Kill => {
                    if let Some(r) = &n.process.running {
                        if h.shell(&fill(r))?.success() {
                            return Ok(());
                        }
                    }
                    match &n.process.start {
                        Some(t) => h.check_shell(&fill(t)).map(|_| ()),
                        None => Ok(()),
                    }
                }
            }
        })?;
        self.update(|f| {
            for n in names {
                match kind {
                    ProcessKind::Kill => f.killed.remove(n),
                    ProcessKind::Pause => f.paused.remove(n),
                };
            }
        })
        .map(|_| ())
    }
}
