//! Delay without netem: a user-space delayer. An iptables rule sends a member's
//! outgoing packets to an NFQUEUE; this loop, running inside the member's
//! namespace, holds each packet for the delay (plus or minus jitter) and then lets
//! it go. With jitter, packets overtake each other, as with netem.
//!
//! ```text
//!   member ─► OUTPUT ─► -j NFQUEUE --queue-num 0 --queue-bypass ─► delayer (holds 100 ms) ─► wire
//! ```
//!
//! `--queue-bypass` makes the kernel pass packets straight through whenever no
//! delayer is listening, so a delayer that dies degrades to no delay, never to a
//! partition.

use rand::Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The queue number our rules use.
pub const QUEUE: u16 = 0;

struct Held {
    due: Instant,
    seq: u64,
    msg: nfq::Message,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

/// Holds every packet of queue `queue` for `delay` ± `jitter`, until `stop` is set.
/// Blocks; run it in the member's namespace (as root).
pub fn run(
    queue: u16,
    delay: Duration,
    jitter: Duration,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut q = nfq::Queue::open()?;
    q.bind(queue)?;
    // If the delayer falls behind, let packets through rather than drop them.
    q.set_fail_open(queue, true)?;
    q.set_nonblocking(true);
    let mut rng = rand::rng();
    let mut held: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // Take everything waiting.
        loop {
            match q.recv() {
                Ok(mut msg) => {
                    let j = if jitter.is_zero() {
                        0.0
                    } else {
                        rng.random_range(-1.0..=1.0) * jitter.as_secs_f64()
                    };
                    let wait = (delay.as_secs_f64() + j).max(0.0);
                    msg.set_verdict(nfq::Verdict::Accept);
                    seq += 1;
                    held.push(Reverse(Held {
                        due: Instant::now() + Duration::from_secs_f64(wait),
                        seq,
                        msg,
                    }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        // Release what is due.
        let now = Instant::now();
        while held.peek().is_some_and(|Reverse(h)| h.due <= now) {
            if let Some(Reverse(h)) = held.pop() {
                q.verdict(h.msg)?;
            }
        }
        let next = held.peek().map_or(Duration::from_millis(1), |Reverse(h)| {
            h.due.saturating_duration_since(Instant::now())
        });
        std::thread::sleep(next.min(Duration::from_millis(1)));
    }
    // Let everything still held go before exiting.
    while let Some(Reverse(h)) = held.pop() {
        let _ = q.verdict(h.msg);
    }
    Ok(())
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: i32) {
    STOP.store(true, Ordering::Relaxed);
}

/// A delayer process's whole life: `--queue N --delay-ms D --jitter-ms J`. Exits
/// 0 on SIGTERM or SIGINT (after letting held packets go), 2 on bad arguments, 1
/// when the queue cannot be used.
pub fn main(args: &[String]) -> i32 {
    let mut queue = QUEUE;
    let (mut delay, mut jitter) = (0u64, 0u64);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--queue", Some(v)) if v <= u64::from(u16::MAX) => queue = v as u16,
            ("--delay-ms", Some(v)) => delay = v,
            ("--jitter-ms", Some(v)) => jitter = v,
            _ => {
                eprintln!("delayer: usage: --queue N --delay-ms MS --jitter-ms MS (got `{flag}`)");
                return 2;
            }
        }
    }
    use nix::sys::signal::{signal, SigHandler, Signal};
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        if let Err(e) = unsafe { signal(sig, SigHandler::Handler(on_term)) } {
            eprintln!("delayer: cannot handle {sig}: {e}");
            return 1;
        }
    }
    match run(
        queue,
        Duration::from_millis(delay),
        Duration::from_millis(jitter),
        &STOP,
    ) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("delayer: NFQUEUE {queue}: {e} (needs root and nfnetlink_queue)");
            1
        }
    }
}
