//! The clock supervisor on real processes: this test binary runs itself under
//! `splitbrain-clock-supervisor` as the target (`probe_clocks` prints every clock),
//! so what is faked and what is not is read from inside a supervised process.
//! Needs root and x86-64 Linux; without root it prints `SKIPPED: ...`, except under
//! `CI=true`, where that is a failure.

use splitbrain_clock::FakeClock;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const S: i64 = 1_000_000_000;
const PROBE_ENV: &str = "SPLITBRAIN_CLOCK_PROBE";

fn clock(id: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: fills a timespec we own.
    assert_eq!(unsafe { libc::clock_gettime(id, &mut ts) }, 0);
    ts.tv_sec * S + ts.tv_nsec
}

/// Every way to read the time: libc (the vDSO when there is one), and the raw
/// system calls the supervisor fakes.
#[derive(Debug, Clone, Copy)]
struct Probe {
    realtime: i64,
    raw_realtime: i64,
    coarse: i64,
    tai: i64,
    gettimeofday_us: i64,
    time_s: i64,
    monotonic: i64,
    boottime: i64,
}

fn probe() -> Probe {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    // SAFETY: raw system calls writing into values we own.
    let (raw_realtime, gettimeofday_us, time_s) = unsafe {
        libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_REALTIME, &mut ts);
        libc::syscall(
            libc::SYS_gettimeofday,
            &mut tv,
            std::ptr::null_mut::<libc::c_void>(),
        );
        let t = libc::syscall(libc::SYS_time, std::ptr::null_mut::<libc::time_t>());
        (
            ts.tv_sec * S + ts.tv_nsec,
            tv.tv_sec * 1_000_000 + tv.tv_usec,
            t,
        )
    };
    Probe {
        realtime: clock(libc::CLOCK_REALTIME),
        raw_realtime,
        coarse: clock(libc::CLOCK_REALTIME_COARSE),
        tai: clock(libc::CLOCK_TAI),
        gettimeofday_us,
        time_s,
        monotonic: clock(libc::CLOCK_MONOTONIC),
        boottime: clock(libc::CLOCK_BOOTTIME),
    }
}

fn print_probe() {
    let p = probe();
    println!(
        "PROBE {} {} {} {} {} {} {} {}",
        p.realtime,
        p.raw_realtime,
        p.coarse,
        p.tai,
        p.gettimeofday_us,
        p.time_s,
        p.monotonic,
        p.boottime
    );
}

fn parse_probe(line: &str) -> Probe {
    // libtest may have printed `test probe_clocks ... ` on the same line.
    let at = line
        .find("PROBE ")
        .unwrap_or_else(|| panic!("not a probe line: {line}"));
    let v: Vec<i64> = line[at + "PROBE ".len()..]
        .split_whitespace()
        .take(8)
        .map(|x| x.parse().unwrap())
        .collect();
    Probe {
        realtime: v[0],
        raw_realtime: v[1],
        coarse: v[2],
        tai: v[3],
        gettimeofday_us: v[4],
        time_s: v[5],
        monotonic: v[6],
        boottime: v[7],
    }
}

/// Tries every call that sets the system clock, and returns the errno of each
/// (0 had it succeeded). The new time is at address 8, in page 0, which is never
/// mapped: the kernel fails to copy it (EFAULT) before it could set anything, so
/// even without the supervisor's filter these calls cannot change the host clock.
/// Under the filter they must fail with EPERM without reaching the kernel.
fn try_clock_setters() -> [i32; 4] {
    let unreadable = 8usize as *const libc::c_void;
    let errno = |r: libc::c_long| {
        if r < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
        } else {
            0
        }
    };
    // SAFETY: system calls with an unreadable pointer, which the kernel refuses.
    unsafe {
        [
            errno(libc::syscall(
                libc::SYS_settimeofday,
                unreadable,
                std::ptr::null::<libc::c_void>(),
            )),
            errno(libc::syscall(
                libc::SYS_clock_settime,
                libc::CLOCK_REALTIME,
                unreadable,
            )),
            errno(libc::syscall(libc::SYS_adjtimex, unreadable)),
            errno(libc::syscall(
                libc::SYS_clock_adjtime,
                libc::CLOCK_REALTIME,
                unreadable,
            )),
        ]
    }
}

/// Run plainly, a check that the probe agrees with itself; run as the target of
/// the tests below (`SPLITBRAIN_CLOCK_PROBE` set), it prints the clocks once, or
/// (`=twice`) once more after a line on stdin, or (`=setters`) what the calls
/// that set the clock return.
#[test]
fn probe_clocks() {
    match std::env::var(PROBE_ENV).as_deref() {
        Ok("setters") => {
            println!("SETTERS {:?}", try_clock_setters());
        }
        Ok(mode) => {
            print_probe();
            if mode == "twice" {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).unwrap();
                print_probe();
            }
        }
        Err(_) => {
            let p = probe();
            assert!((p.raw_realtime - p.realtime).abs() < S);
            assert!((p.gettimeofday_us * 1000 - p.realtime).abs() < S);
            assert!(p.monotonic > 0 && p.boottime >= p.monotonic);
        }
    }
}

fn supervised_ok() -> bool {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        eprintln!("SKIPPED: the clock supervisor needs Linux on x86-64");
        return false;
    }
    splitbrain_testkit::root_or_skip("the clock supervisor needs root (ptrace of the target)")
}

/// This test binary as the supervised target, printing its clocks.
fn supervised_probe(offset_file: &Path, mode: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_splitbrain-clock-supervisor"));
    cmd.arg("--offset-file")
        .arg(offset_file)
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "probe_clocks", "--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    cmd
}

fn next_probe(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> Probe {
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.contains("PROBE ") {
            return parse_probe(&line);
        }
    }
    panic!("the target printed no probe");
}

/// Checks one supervised probe against the real clocks read around it.
fn assert_faked(p: &Probe, before: &Probe, after: &Probe, offset: i64) {
    let within = |what: &str, v: i64, lo: i64, hi: i64, slack: i64| {
        assert!(
            v >= lo - slack && v <= hi + slack,
            "{what}: {v} not in {lo}..={hi} (slack {slack}); offset {offset}"
        );
    };
    within(
        "CLOCK_REALTIME (libc)",
        p.realtime,
        before.realtime + offset,
        after.realtime + offset,
        0,
    );
    within(
        "clock_gettime(CLOCK_REALTIME)",
        p.raw_realtime,
        before.realtime + offset,
        after.realtime + offset,
        0,
    );
    // The coarse clock lags by up to a tick.
    within(
        "CLOCK_REALTIME_COARSE",
        p.coarse,
        before.coarse + offset,
        after.realtime + offset,
        S / 10,
    );
    within(
        "CLOCK_TAI",
        p.tai,
        before.tai + offset,
        after.tai + offset,
        0,
    );
    within(
        "gettimeofday",
        p.gettimeofday_us * 1000,
        before.realtime + offset,
        after.realtime + offset,
        1000,
    );
    within(
        "time",
        p.time_s * S,
        before.realtime + offset,
        after.realtime + offset,
        S,
    );
    // Monotonic and boot time are the kernel's own: strictly between our reads.
    within(
        "CLOCK_MONOTONIC",
        p.monotonic,
        before.monotonic,
        after.monotonic,
        0,
    );
    within(
        "CLOCK_BOOTTIME",
        p.boottime,
        before.boottime,
        after.boottime,
        0,
    );
}

/// Waits until no process names `needle` on its command line (the handler exits
/// with its target).
fn assert_no_process_names(needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(needle))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_wall_clock_moves_by_the_offset_and_monotonic_time_does_not() {
    if !supervised_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clock");
    for offset in [86400 * S, -3600 * S, 0] {
        if offset == 0 {
            std::fs::remove_file(&file).unwrap();
        } else {
            FakeClock::offset(offset).write(&file).unwrap();
        }
        let before = probe();
        let out = supervised_probe(&file, "once").output().unwrap();
        let after = probe();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let p = next_probe(&mut stdout.lines().map(|l| Ok(l.to_owned())));
        assert_faked(&p, &before, &after, offset);
    }
    assert_no_process_names(&file.to_string_lossy());
}

#[test]
fn the_offset_changes_while_the_target_runs() {
    if !supervised_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clock");
    FakeClock::offset(86400 * S).write(&file).unwrap();
    let before = probe();
    let mut child = supervised_probe(&file, "twice").spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = next_probe(&mut lines);
    let after = probe();
    assert_faked(&first, &before, &after, 86400 * S);

    // Skewed twice as fast from a minute behind, while the target waits.
    let now = splitbrain_clock::fake::real_now_ns();
    let skewed = FakeClock::REAL.bump(now, -60 * S).skew(now, 2.0);
    skewed.write(&file).unwrap();
    std::thread::sleep(splitbrain_clock::OffsetFile::RECHECK * 5);
    let before = probe();
    writeln!(child.stdin.as_mut().unwrap()).unwrap();
    let second = next_probe(&mut lines);
    let after = probe();
    assert!(child.wait().unwrap().success());
    let lo = skewed.fake_ns(before.realtime);
    let hi = skewed.fake_ns(after.realtime);
    assert!(
        (lo..=hi).contains(&second.realtime),
        "skewed realtime {} not in {lo}..={hi}",
        second.realtime
    );
    assert!(
        (before.monotonic..=after.monotonic).contains(&second.monotonic),
        "monotonic time moved"
    );
    assert_no_process_names(&file.to_string_lossy());
}

#[test]
fn the_target_keeps_the_pid_and_its_exit_status_and_failures_are_explained() {
    if !supervised_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clock");
    let bin = env!("CARGO_BIN_EXE_splitbrain-clock-supervisor");
    // `exec` in sh: the target's pid is the supervisor's, and its status is ours.
    let mut child = Command::new(bin)
        .arg("--offset-file")
        .arg(&file)
        .args(["--", "sh", "-c", "echo $$; exit 7"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pid = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut pid)
        .unwrap();
    assert_eq!(
        pid.trim(),
        child.id().to_string(),
        "the target keeps the pid"
    );
    assert_eq!(child.wait().unwrap().code(), Some(7));

    let out = Command::new(bin)
        .arg("--offset-file")
        .arg(&file)
        .args(["--", "/nonexistent/program"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot run /nonexistent/program"), "{err}");

    let out = Command::new(bin).arg("date").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--offset-file is missing"));
    assert_no_process_names(&file.to_string_lossy());
}

#[test]
fn a_supervised_process_cannot_set_the_host_clock() {
    if !supervised_ok() {
        return;
    }
    // Unfiltered, the calls reach the kernel, which refuses the unreadable time.
    assert_eq!(try_clock_setters(), [libc::EFAULT; 4]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clock");
    FakeClock::offset(86400 * S).write(&file).unwrap();
    let out = supervised_probe(&file, "setters").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("SETTERS "))
        .unwrap_or_else(|| panic!("no SETTERS line in {stdout}"));
    let eperm = libc::EPERM;
    assert!(
        line.ends_with(&format!("SETTERS [{eperm}, {eperm}, {eperm}, {eperm}]")),
        "settimeofday, clock_settime, adjtimex, clock_adjtime must get EPERM: {line}"
    );
    assert_no_process_names(&file.to_string_lossy());
}

/// Waits for `child` at most a minute: a target whose clock reads nobody answers
/// hangs forever, which must fail the test, not hang it.
fn wait_or_kill(child: &mut std::process::Child, why: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{why}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_handler_answers_on_when_its_stderr_is_gone() {
    if !supervised_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clock");
    // A bad offset file makes the handler say so on stderr, whose reader is gone:
    // the write fails (EPIPE), and the handler must answer anyway.
    std::fs::write(&file, "garbage").unwrap();
    let mut child = supervised_probe(&file, "once")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let before = probe();
    let status = wait_or_kill(
        &mut child,
        "the target hangs: nobody answers its clock reads",
    );
    let after = probe();
    assert!(status.success(), "{status:?}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let p = next_probe(&mut stdout.lines().map(|l| Ok(l.to_owned())));
    assert_faked(&p, &before, &after, 0);
    assert_no_process_names(&file.to_string_lossy());
}

#[test]
fn the_handler_does_not_hold_the_targets_stdout() {
    if !supervised_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_splitbrain-clock-supervisor"))
        .arg("--offset-file")
        .arg(&file)
        .args(["--", "sh", "-c", "exec >/dev/null; sleep 60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The target closed its stdout: the end shows now, not when it exits.
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut rest).unwrap();
    assert!(
        child.try_wait().unwrap().is_none(),
        "stdout ended only when the target exited: the handler held it"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_no_process_names(&file.to_string_lossy());
}

#[test]
fn without_proc_the_supervisor_refuses_rather_than_guess_its_threads() {
    if !supervised_ok() {
        return;
    }
    // An empty /proc in a mount namespace of its own (private: the host's /proc
    // is untouched, and the namespace goes with the process).
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs none /proc && exec \"$0\" --offset-file /nonexistent -- true")
        .arg(env!("CARGO_BIN_EXE_splitbrain-clock-supervisor"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{err}");
    assert!(err.contains("cannot count this process's threads"), "{err}");
}

#[test]
fn signals_during_startup_do_not_wedge_it() {
    if !supervised_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clock");
    FakeClock::offset(3600 * S).write(&file).unwrap();
    // SIGWINCH, ignored by default, stops a traced process all the same: one that
    // arrived between the handler's PTRACE_SEIZE and the exec used to stop the
    // supervisor while the handler waited for its listener, for ever.
    for _ in 0..30 {
        let mut child = supervised_probe(&file, "once").spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("the supervisor wedged on a signal during startup");
            }
            // SAFETY: a signal to our own child, not yet reaped, so the pid is its.
            unsafe { libc::kill(pid, libc::SIGWINCH) };
            std::thread::yield_now();
        };
        assert!(status.success(), "{status:?}");
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
        next_probe(&mut stdout.lines().map(|l| Ok(l.to_owned())));
    }
    assert_no_process_names(&file.to_string_lossy());
}
