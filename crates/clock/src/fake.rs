//! The fake clock of one process, as the offset file describes it.
//!
//! A [`FakeClock`] turns the real wall-clock time into the time the process sees:
//!
//! ```text
//!   fake(t) = t + offset + (rate - 1) * (t - since) + strobe(t)
//!   strobe(t) = delta while (t - since) / period is even, else 0
//! ```
//!
//! so a bump is an `offset`, a skew a `rate` (the clock runs `rate` seconds per real
//! second from the moment `since` it was set), a strobe a clock that jumps between
//! `+delta` and `0` every `period`, and a reset the identity. The operations
//! ([`FakeClock::bump`], [`skew`](FakeClock::skew), [`strobe`](FakeClock::strobe))
//! start from wherever the clock is at that moment, as Jepsen's do, so the fake
//! clock never jumps except by the delta asked.
//!
//! The file holds one JSON object (`{"offset_ns":86400000000000,"since_ns":...,
//! "rate":1.0}`); a missing file means real time. [`FakeClock::write`] replaces it
//! atomically (temporary file, then rename), so a reader sees the old clock or the
//! new one, never half a file, and a rename is a new inode, which is how
//! [`OffsetFile`] notices a change cheaply.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Error, Result};

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// How the fake wall clock of one process relates to the real one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FakeClock {
    /// Fake minus real time at `since_ns`, in nanoseconds.
    pub offset_ns: i64,
    /// Real time (ns since the Unix epoch) at which this clock was set.
    #[serde(default)]
    pub since_ns: i64,
    /// Fake seconds per real second from `since_ns` on (1 = the real pace).
    #[serde(default = "one")]
    pub rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strobe: Option<Strobe>,
}

fn one() -> f64 {
    1.0
}

/// A clock that flips between `+delta_ns` and `0` every `period_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strobe {
    pub delta_ns: i64,
    pub period_ns: i64,
}

impl Default for FakeClock {
    fn default() -> Self {
        FakeClock::REAL
    }
}

impl FakeClock {
    /// Real time: no offset, no skew, no strobe.
    pub const REAL: FakeClock = FakeClock {
        offset_ns: 0,
        since_ns: 0,
        rate: 1.0,
        strobe: None,
    };

    /// A clock `offset` ahead of real time (behind when negative), from now on.
    pub fn offset(offset_ns: i64) -> FakeClock {
        FakeClock {
            offset_ns,
            ..FakeClock::REAL
        }
    }

    /// Whether this is real time.
    pub fn is_real(&self) -> bool {
        self.offset_ns == 0 && self.rate == 1.0 && self.strobe.is_none()
    }

    /// The time the process sees when the real time is `real_ns`.
    pub fn fake_ns(&self, real_ns: i64) -> i64 {
        real_ns.saturating_add(self.offset_at(real_ns))
    }

    /// Fake minus real time when the real time is `real_ns`.
    pub fn offset_at(&self, real_ns: i64) -> i64 {
        let elapsed = real_ns.saturating_sub(self.since_ns);
        let mut offset = self.offset_ns;
        if self.rate != 1.0 {
            offset = offset.saturating_add(((self.rate - 1.0) * elapsed as f64) as i64);
        }
        if let Some(s) = self.strobe {
            if s.period_ns > 0 && elapsed.div_euclid(s.period_ns) % 2 == 0 {
                offset = offset.saturating_add(s.delta_ns);
            }
        }
        offset
    }

    /// This clock moved by `delta` at real time `now` (Jepsen's bump). A skew goes on
    /// at its rate; a strobe stops where it is.
    pub fn bump(&self, now_ns: i64, delta_ns: i64) -> FakeClock {
        FakeClock {
            offset_ns: self.offset_at(now_ns).saturating_add(delta_ns),
            since_ns: now_ns,
            rate: self.rate,
            strobe: None,
        }
    }

    /// This clock running at `rate` fake seconds per real second from real time `now`.
    pub fn skew(&self, now_ns: i64, rate: f64) -> FakeClock {
        FakeClock {
            offset_ns: self.offset_at(now_ns),
            since_ns: now_ns,
            rate,
            strobe: None,
        }
    }

    /// This clock flipping between `+delta` and where it is now, every `period`,
    /// starting at real time `now` with the jump.
    pub fn strobe(&self, now_ns: i64, delta_ns: i64, period_ns: i64) -> FakeClock {
        FakeClock {
            offset_ns: self.offset_at(now_ns),
            since_ns: now_ns,
            rate: self.rate,
            strobe: Some(Strobe {
                delta_ns,
                period_ns: period_ns.max(1),
            }),
        }
    }

    /// A short description for people: `+1d 2h (skew 2x)`.
    pub fn describe(&self, now_ns: i64) -> String {
        if self.is_real() {
            return "real time".into();
        }
        let mut s = format_duration(self.offset_at(now_ns));
        if self.rate != 1.0 {
            s.push_str(&format!(", skew {}x", self.rate));
        }
        if let Some(st) = self.strobe {
            s.push_str(&format!(
                ", strobe {} every {}",
                format_duration(st.delta_ns),
                format_duration(st.period_ns).trim_start_matches('+')
            ));
        }
        s
    }

    /// The longest offset file read: one JSON object is well under this.
    pub const MAX_FILE_BYTES: u64 = 4096;

    /// Reads an offset file; a missing file is real time. It must be a regular file
    /// of at most [`FakeClock::MAX_FILE_BYTES`]: the clock handler reads it while a
    /// clock read waits, so a FIFO or a device (`/dev/zero`) must not block it or
    /// feed it forever. It is opened with O_NONBLOCK and refused after a look.
    pub fn read(path: &Path) -> Result<FakeClock> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let cannot = |e| Error::io(format!("cannot read {}", path.display()), e);
        let bad = |message: String| Error::BadOffsetFile {
            path: path.to_owned(),
            message,
        };
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FakeClock::REAL),
            Err(e) => return Err(cannot(e)),
        };
        let meta = file.metadata().map_err(cannot)?;
        if !meta.is_file() {
            return Err(bad(format!("not a regular file ({:?})", meta.file_type())));
        }
        let mut bytes = Vec::new();
        file.take(Self::MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(cannot)?;
        if bytes.len() as u64 > Self::MAX_FILE_BYTES {
            return Err(bad(format!("longer than {} bytes", Self::MAX_FILE_BYTES)));
        }
        let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
        FakeClock::parse(&text).map_err(bad)
    }

    pub fn parse(text: &str) -> std::result::Result<FakeClock, String> {
        let clock: FakeClock = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if !(clock.rate.is_finite() && clock.rate > 0.0) {
            return Err(format!(
                "field `rate`: {} is not a positive number",
                clock.rate
            ));
        }
        Ok(clock)
    }

    /// Replaces the offset file atomically: a process reading it sees this clock or
    /// the previous one, never a mix.
    pub fn write(&self, path: &Path) -> Result<()> {
        // A name of its own per writer (process and call), so that two writers at
        // once do not rename each other's half-written file or lose theirs.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.{n}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let text = serde_json::to_string(self).unwrap_or_default() + "\n";
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::io(format!("cannot write {}", path.display()), e)
            })
    }
}

/// Now, in nanoseconds since the Unix epoch (the real clock, for a process that is
/// not supervised).
pub fn real_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An offset file as the supervisor reads it: looked at (one `stat`) at most once
/// per [`OffsetFile::RECHECK`], re-read only when it is a new file, so answering a
/// clock read costs no file I/O at all in between.
#[derive(Debug)]
pub struct OffsetFile {
    path: PathBuf,
    clock: FakeClock,
    /// (inode, size, mtime) of the file last read; None when it was missing.
    seen: Option<(u64, u64, i64, i64)>,
    checked: Option<Instant>,
}

impl OffsetFile {
    /// A change shows within this long.
    pub const RECHECK: Duration = Duration::from_millis(1);

    pub fn new(path: impl Into<PathBuf>) -> OffsetFile {
        OffsetFile {
            path: path.into(),
            clock: FakeClock::REAL,
            seen: None,
            checked: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The clock as of at most [`OffsetFile::RECHECK`] ago. A file that cannot be
    /// parsed keeps the previous clock, and says so on stderr (the member's log).
    pub fn clock(&mut self) -> FakeClock {
        let now = Instant::now();
        if self
            .checked
            .is_some_and(|c| now.duration_since(c) < Self::RECHECK)
        {
            return self.clock;
        }
        self.checked = Some(now);
        let seen = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.ino(), m.size(), m.mtime(), m.mtime_nsec()));
        if seen == self.seen {
            return self.clock;
        }
        self.seen = seen;
        match FakeClock::read(&self.path) {
            Ok(c) => self.clock = c,
            // The handler must go on answering even when stderr is gone (ENOSPC,
            // EPIPE): eprintln! would panic and take the answering thread with it.
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "splitbrain clock supervisor: {e}; keeping the previous clock"
                );
            }
        }
        self.clock
    }
}

/// Parses a signed duration: `1d`, `-1h`, `+30s`, `1.5m`, `250ms`, `10us`, `5ns`.
pub fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => (-1.0, &t[1..]),
        Some(b'+') => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    let split = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, unit) = rest.split_at(split);
    let unit_ns = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        "" => {
            return Err(format!(
                "`{s}` has no unit: say 1d, 2h, 30m, 10s, 250ms, 10us or 5ns"
            ))
        }
        other => {
            return Err(format!(
                "`{s}`: unknown unit `{other}` (use d, h, m, s, ms, us or ns)"
            ))
        }
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 1d, -2h, 30s or 250ms"))?;
    let ns = sign * n * unit_ns;
    // About ±292 years: past that, i64 nanoseconds overflow.
    if !ns.is_finite() || ns.abs() > 9.2e18 {
        return Err(format!("`{s}` is too large (at most about 100000d)"));
    }
    Ok(ns as i64)
}

/// Parses a clock rate: a factor (`2x`, `0.5x`) or parts per million (`+500ppm`,
/// `-200ppm`). The result is fake seconds per real second, between 0 and 1000.
pub fn parse_rate(s: &str) -> std::result::Result<f64, String> {
    let t = s.trim();
    let rate = if let Some(f) = t.strip_suffix('x') {
        f.parse::<f64>()
            .map_err(|_| format!("`{s}` is not a rate like 2x, 0.5x or +500ppm"))?
    } else if let Some(p) = t.strip_suffix("ppm") {
        let ppm = p
            .parse::<f64>()
            .map_err(|_| format!("`{s}` is not a rate like 2x, 0.5x or +500ppm"))?;
        1.0 + ppm / 1e6
    } else {
        return Err(format!(
            "`{s}` is not a rate: say a factor (2x, 0.5x) or parts per million (+500ppm, -200ppm)"
        ));
    };
    if !(rate.is_finite() && rate > 0.0 && rate <= 1000.0) {
        return Err(format!(
            "`{s}`: the clock must run forward, at most 1000x (the rate is {rate})"
        ));
    }
    Ok(rate)
}

/// `+1d 2h 3m 4.5s`, `-250ms`: a signed duration for people.
pub fn format_duration(ns: i64) -> String {
    let sign = if ns < 0 { '-' } else { '+' };
    let abs = ns.unsigned_abs();
    let secs = abs / NANOS_PER_SEC as u64;
    let frac = abs % NANOS_PER_SEC as u64;
    if secs == 0 {
        return if frac.is_multiple_of(1_000_000) {
            format!("{sign}{}ms", frac / 1_000_000)
        } else {
            format!("{sign}{:.3}ms", frac as f64 / 1e6)
        };
    }
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d}d"));
    }
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 || frac > 0 {
        if frac == 0 {
            parts.push(format!("{s}s"));
        } else {
            let v = format!("{:.3}", s as f64 + frac as f64 / 1e9);
            parts.push(format!(
                "{}s",
                v.trim_end_matches('0').trim_end_matches('.')
            ));
        }
    }
    format!("{sign}{}", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = NANOS_PER_SEC;

    #[test]
    fn a_bump_moves_the_clock_by_its_delta_from_where_it_is() {
        let c = FakeClock::REAL.bump(100 * S, 86400 * S);
        assert_eq!(c.fake_ns(100 * S), 86500 * S);
        assert_eq!(c.fake_ns(200 * S), 86600 * S);
        let c = c.bump(200 * S, -(86400 + 3600) * S);
        assert_eq!(c.offset_at(300 * S), -3600 * S);
        assert!(FakeClock::REAL.is_real());
        assert!(!c.is_real());
    }

    #[test]
    fn a_skew_runs_at_its_rate_from_the_moment_it_was_set() {
        let c = FakeClock::offset(10 * S).skew(1000 * S, 2.0);
        assert_eq!(c.fake_ns(1000 * S), 1010 * S, "no jump when set");
        assert_eq!(c.fake_ns(1010 * S), 1030 * S, "10 real seconds, 20 fake");
        let slow = FakeClock::REAL.skew(0, 0.5);
        assert_eq!(slow.fake_ns(10 * S), 5 * S);
        // A bump on a skewed clock keeps the skew going.
        let b = c.bump(1010 * S, S);
        assert_eq!(b.fake_ns(1010 * S), 1031 * S);
        assert_eq!(b.fake_ns(1020 * S), 1051 * S);
    }

    #[test]
    fn a_strobe_flips_between_delta_and_zero_every_period() {
        let c = FakeClock::REAL.strobe(0, 5 * S, S / 10);
        assert_eq!(c.offset_at(0), 5 * S);
        assert_eq!(c.offset_at(S / 20), 5 * S);
        assert_eq!(c.offset_at(S / 10), 0);
        assert_eq!(c.offset_at(S / 5 + 1), 5 * S);
        // Before `since` (a reader whose clock read raced the writer) it still flips.
        assert!([0, 5 * S].contains(&c.offset_at(-S / 20)));
    }

    #[test]
    fn the_file_round_trips_and_a_missing_file_is_real_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        assert_eq!(FakeClock::read(&path).unwrap(), FakeClock::REAL);
        let c = FakeClock::REAL.strobe(7, 3, 11).skew(9, 1.5);
        c.write(&path).unwrap();
        assert_eq!(FakeClock::read(&path).unwrap(), c);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["clock"], "no temporary file is left");
        std::fs::write(&path, "{\"offset_ns\": \"x\"}").unwrap();
        let err = FakeClock::read(&path).unwrap_err().to_string();
        assert!(err.contains("clock") && err.contains("column 17"), "{err}");
        std::fs::write(&path, "{\"offset_ns\": 1, \"rate\": -1}").unwrap();
        let err = FakeClock::read(&path).unwrap_err().to_string();
        assert!(err.contains("rate"), "{err}");
    }

    #[test]
    fn writers_at_once_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        std::thread::scope(|s| {
            for i in 0..8 {
                let path = &path;
                s.spawn(move || {
                    for j in 0..50 {
                        FakeClock::offset(i * 1000 + j).write(path).unwrap();
                    }
                });
            }
        });
        FakeClock::read(&path).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn only_a_small_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        // A FIFO nobody writes to would block a plain open (and the clock reads
        // waiting on the handler with it); /dev/zero would never end.
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = FakeClock::read(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = FakeClock::read(&zero).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let big = dir.path().join("big");
        let mut text = serde_json::to_string(&FakeClock::offset(S)).unwrap();
        text.push_str(&" ".repeat(FakeClock::MAX_FILE_BYTES as usize));
        std::fs::write(&big, text).unwrap();
        let err = FakeClock::read(&big).unwrap_err().to_string();
        assert!(err.contains("longer than 4096 bytes"), "{err}");
    }

    #[test]
    fn the_offset_file_is_re_read_when_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        let mut f = OffsetFile::new(&path);
        assert_eq!(f.clock(), FakeClock::REAL);
        FakeClock::offset(S).write(&path).unwrap();
        std::thread::sleep(OffsetFile::RECHECK * 2);
        assert_eq!(f.clock(), FakeClock::offset(S));
        FakeClock::offset(-S).write(&path).unwrap();
        std::thread::sleep(OffsetFile::RECHECK * 2);
        assert_eq!(f.clock(), FakeClock::offset(-S));
        std::fs::write(&path, "garbage").unwrap();
        std::thread::sleep(OffsetFile::RECHECK * 2);
        assert_eq!(
            f.clock(),
            FakeClock::offset(-S),
            "a bad file keeps the last clock"
        );
        std::fs::remove_file(&path).unwrap();
        std::thread::sleep(OffsetFile::RECHECK * 2);
        assert_eq!(f.clock(), FakeClock::REAL);
    }

    #[test]
    fn durations_and_rates_parse_with_clear_errors() {
        assert_eq!(parse_duration("1d"), Ok(86400 * S));
        assert_eq!(parse_duration("-1h"), Ok(-3600 * S));
        assert_eq!(parse_duration("+1.5m"), Ok(90 * S));
        assert_eq!(parse_duration("250ms"), Ok(S / 4));
        assert_eq!(parse_duration("10us"), Ok(10_000));
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("10y").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("999999999d")
            .unwrap_err()
            .contains("too large"));
        assert_eq!(parse_rate("2x"), Ok(2.0));
        assert_eq!(parse_rate("0.5x"), Ok(0.5));
        assert_eq!(parse_rate("+500ppm"), Ok(1.0005));
        assert_eq!(parse_rate("-200ppm"), Ok(0.9998));
        assert!(parse_rate("2").unwrap_err().contains("factor"));
        assert!(parse_rate("0x").unwrap_err().contains("forward"));
        assert!(parse_rate("-2000000ppm").unwrap_err().contains("forward"));
    }

    #[test]
    fn durations_print_for_people() {
        assert_eq!(format_duration(86400 * S + 2 * 3600 * S), "+1d 2h");
        assert_eq!(format_duration(-3600 * S), "-1h");
        assert_eq!(format_duration(-S / 4), "-250ms");
        assert_eq!(format_duration(90 * S + S / 2), "+1m 30.5s");
        assert_eq!(format_duration(0), "+0ms");
        assert_eq!(FakeClock::REAL.skew(0, 2.0).describe(0), "+0ms, skew 2x");
        assert_eq!(FakeClock::REAL.describe(0), "real time");
    }
}
