//! The history recorder: workers hand ops to an unbounded channel (never blocking),
//! and one task numbers them and writes JSON Lines.
//!
//! File order is the history's real-time order, so a worker sends its invocation
//! before the request leaves and its completion after the answer arrived; the
//! channel keeps the order in which sends happened. Whole lines only reach the file
//! (an op is serialized into a buffer first), every second and at the end, so a
//! history cut short by a kill is still readable up to its last flush.

use crate::Error;
use splitbrain_history::{jsonl, Op};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// Flush at least this often, even when ops keep coming.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// And as soon as this much is buffered.
const BUFFER: usize = 256 * 1024;

/// Where workers send ops. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Op>,
}

impl Recorder {
    /// Records `op`. Never blocks; an op sent after the writer stopped is dropped.
    pub fn record(&self, op: Op) {
        let _ = self.tx.send(op);
    }
}

/// Starts the writer task on the current runtime. Await the handle after dropping
/// every [`Recorder`] to get the number of ops written.
pub fn start(
    path: &Path,
) -> Result<(Recorder, tokio::task::JoinHandle<Result<u64, Error>>), Error> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let path = path.to_owned();
    let handle = tokio::spawn(write_loop(
        rx,
        LineFile {
            file,
            buf: Vec::with_capacity(BUFFER),
        },
        path,
    ));
    Ok((Recorder { tx }, handle))
}

/// A file that takes whole lines only: writes go to a buffer, which moves to the file
/// on `flush` or, once large, at the end of a line (`jsonl::Writer` ends each op with
/// its own one-byte `\n` write).
struct LineFile {
    file: File,
    buf: Vec<u8>,
}

impl Write for LineFile {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if b == b"\n" && self.buf.len() >= BUFFER {
            self.flush()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

async fn write_loop(
    mut rx: mpsc::UnboundedReceiver<Op>,
    out: LineFile,
    path: PathBuf,
) -> Result<u64, Error> {
    let mut w = jsonl::Writer::new(out);
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    let mut batch = Vec::with_capacity(256);
    loop {
        tokio::select! {
            got = rx.recv_many(&mut batch, 256) => {
                if got == 0 {
                    break;
                }
                for mut op in batch.drain(..) {
                    op.set_index(Some(n));
                    n += 1;
                    w.write(&op).map_err(|e| Error::io(&path, e))?;
                }
            }
            _ = tick.tick() => {
                w.flush().map_err(|e| Error::io(&path, e))?;
            }
        }
    }
    w.flush().map_err(|e| Error::io(&path, e))?;
    let file = w.into_inner().file;
    file.sync_data().map_err(|e| Error::io(&path, e))?;
    Ok(n)
}
