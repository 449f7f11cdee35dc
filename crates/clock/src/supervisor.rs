//! The supervisor: runs a program whose wall clock is faked, while its monotonic
//! clock stays the kernel's.
//!
//! [`supervise`] (in the process that will become the target):
//! 1. forks the handler, before any filter exists, so the handler is never filtered;
//! 2. waits until the handler has PTRACE_SEIZEd it (the handler is its child: as
//!    root, or with Yama's blessing through PR_SET_PTRACER, a child may trace its
//!    parent);
//! 3. installs the seccomp filter with a new listener (SECCOMP_RET_USER_NOTIF for
//!    `clock_gettime` on CLOCK_REALTIME, _COARSE, _ALARM and CLOCK_TAI,
//!    `gettimeofday` and `time`; SECCOMP_RET_ERRNO(EPERM) for the calls that set
//!    the clock, so a target run as root that writes back the fake time it read
//!    cannot set the host's; everything else, monotonic clocks included, is
//!    allowed), hands the listener to the handler over a socket (SCM_RIGHTS) and
//!    closes its own copy;
//! 4. execs the target. It keeps the pid.
//!
//! The handler, at the target's exec stop (before ld.so or the Go runtime run a
//! single instruction), rewrites the AT_SYSINFO_EHDR entry of the new auxiliary
//! vector on the target's stack to AT_IGNORE: nobody finds the vDSO, so every
//! clock read is a real system call the filter sees. It detaches, then answers each
//! notified call with real time plus the offset file's offset, written into the
//! target with process_vm_writev after checking that the notification is still
//! valid (the thread may have been killed and its memory reused). One thread
//! answers, blocked in SECCOMP_IOCTL_NOTIF_RECV; the main thread waits on the
//! target's pidfd and ends the handler when the target exits, and PR_SET_PDEATHSIG
//! kills it should that be missed. The other way round, a handler that ends for
//! any other reason (panics included) SIGKILLs the target through the pidfd
//! first: unanswered, its wall-clock reads would fail with ENOSYS, which Go takes
//! for a time.
//!
//! Each faked read costs a round trip to the handler (two context switches):
//! etcd makes thousands a second under load, and serves about half as many
//! requests under the supervisor (`scripts/bench-clock`). Hiding the vDSO alone,
//! so that monotonic reads are system calls too, costs nothing measurable.
//!
//! Only the program started is faked: a program it execs keeps the filter but gets
//! a vDSO again, so its reads are real (supervise the real binary, not a wrapper
//! script such as a pyenv shim). What is faked is what a process reads; what the
//! kernel does with real time is not: `clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME)` and realtime timerfds still
//! follow the real clock (Go uses neither: its timers run on the monotonic clock).

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// What the supervisor's command line says: `--offset-file F [--] PROGRAM ARGS...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub offset_file: PathBuf,
    pub argv: Vec<OsString>,
}

const USAGE: &str = "usage: clock-supervisor --offset-file FILE [--] PROGRAM [ARGS...]";

impl Command {
    pub fn parse(args: &[OsString]) -> std::result::Result<Command, String> {
        let mut offset_file = None;
        let mut i = 0;
        while i < args.len() {
            let a = args[i].to_string_lossy();
            if a == "--offset-file" {
                let f = args
                    .get(i + 1)
                    .ok_or_else(|| format!("--offset-file needs a file\n{USAGE}"))?;
                offset_file = Some(PathBuf::from(f));
                i += 2;
            } else if let Some(f) = a.strip_prefix("--offset-file=") {
                offset_file = Some(PathBuf::from(f));
                i += 1;
            } else if a == "--" {
                i += 1;
                break;
            } else if a.starts_with('-') {
                return Err(format!("unknown option `{a}`\n{USAGE}"));
            } else {
                break;
            }
        }
        let offset_file =
            offset_file.ok_or_else(|| format!("--offset-file is missing\n{USAGE}"))?;
        let argv = args[i..].to_vec();
        if argv.is_empty() {
            return Err(format!("no program to run\n{USAGE}"));
        }
        Ok(Command { offset_file, argv })
    }
}

/// The supervisor as a program (`splitbrain nemesis clock-supervisor` and the
/// crate's `splitbrain-clock-supervisor`): on success it never returns, because the
/// process has become the target; otherwise it says why and returns an exit code.
pub fn main(args: &[OsString]) -> i32 {
    let cmd = match Command::parse(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            return 2;
        }
    };
    match supervise(&cmd.offset_file, &cmd.argv) {
        Ok(never) => match never {},
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            127
        }
    }
}

/// Replaces this process with `argv`, whose wall clock is faked as `offset_file`
/// says from then on. Returns only on failure. Must be called from a process with a
/// single thread: it forks, and after the fork the child allocates. Signals are
/// blocked from the fork to the exec; on a failure once the handler may be
/// tracing this process they stay blocked, and the caller is to report and exit.
pub fn supervise(offset_file: &Path, argv: &[OsString]) -> Result<std::convert::Infallible> {
    imp::supervise(offset_file, argv)
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
mod imp {
    use super::*;
    pub fn supervise(_: &Path, _: &[OsString]) -> Result<std::convert::Infallible> {
        Err(Error::Unsupported(format!(
            "clock faults need Linux on x86-64 (system call numbers and the auxiliary vector are architecture specific); this is {} on {}",
            std::env::consts::OS,
            std::env::consts::ARCH
        )))
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod imp {
    use super::*;
    use crate::fake::OffsetFile;
    use libc::{c_int, c_long, c_void};
    use std::io::Write;
    use std::os::unix::process::CommandExt;

    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    /// Linux 5.19: once a notification is received, the target's wait for the
    /// answer is killable only, so Go's preemption signals do not make it ask again.
    const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: libc::c_ulong = 1 << 5;
    /// Linux 6.6: wake the handler and the target on the same CPU.
    const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;
    /// The clocks whose reads are faked: those that follow the wall clock.
    const FAKED_CLOCKS: [u32; 4] = [
        libc::CLOCK_REALTIME as u32,
        libc::CLOCK_REALTIME_COARSE as u32,
        libc::CLOCK_REALTIME_ALARM as u32,
        libc::CLOCK_TAI as u32,
    ];

    fn errno() -> std::io::Error {
        std::io::Error::last_os_error()
    }

    fn sys_err(what: &str) -> Error {
        Error::Supervisor(format!("{what}: {}", errno()))
    }

    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    /// Set in the number of an x32 system call (which the kernel reports with
    /// AUDIT_ARCH_X86_64); x32 shares these calls' numbers with x86-64.
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    /// The calls that set or steer the system clock, x86-64 (and x32) numbers. The
    /// target runs as root: one that wrote back the fake time it read would set
    /// the host clock. `stime` is no system call on x86-64.
    const CLOCK_SETTERS: [u32; 4] = [
        libc::SYS_settimeofday as u32,
        libc::SYS_clock_settime as u32,
        libc::SYS_adjtimex as u32,
        libc::SYS_clock_adjtime as u32,
    ];
    /// The same through the i386 entry (`int 0x80`, open to a 64-bit process):
    /// stime, settimeofday, adjtimex, clock_settime, clock_adjtime,
    /// clock_settime64, clock_adjtime64 (arch/x86/entry/syscalls/syscall_32.tbl).
    const I386_CLOCK_SETTERS: [u32; 7] = [25, 79, 124, 264, 343, 404, 405];
    /// What a clock setter gets: EPERM, before the kernel looks at its arguments.
    const RET_EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;

    /// The filter: EPERM for the calls that set the clock (both ABIs), notify for
    /// wall-clock reads of the x86-64 ABI, allow the rest.
    fn filter() -> Vec<libc::sock_filter> {
        use libc::{BPF_ABS, BPF_ALU, BPF_AND, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
        /// A tiny assembler: forward jumps to named labels, fixed up at the end.
        #[derive(Default)]
        struct Asm {
            code: Vec<libc::sock_filter>,
            jumps: Vec<(usize, &'static str)>,
            labels: Vec<(&'static str, usize)>,
        }
        impl Asm {
            fn op(&mut self, code: u32, k: u32) -> &mut Self {
                self.code.push(libc::sock_filter {
                    code: code as u16,
                    jt: 0,
                    jf: 0,
                    k,
                });
                self
            }
            /// seccomp_data: nr at 0, arch at 4, args[0] at 16 (low half).
            fn ld(&mut self, off: u32) -> &mut Self {
                self.op(BPF_LD | BPF_W | BPF_ABS, off)
            }
            fn ret(&mut self, k: u32) -> &mut Self {
                self.op(BPF_RET | BPF_K, k)
            }
            /// If A == k go to `to`, else on to the next instruction.
            fn jeq(&mut self, k: u32, to: &'static str) -> &mut Self {
                self.jumps.push((self.code.len(), to));
                self.op(BPF_JMP | BPF_JEQ | BPF_K, k)
            }
            fn label(&mut self, name: &'static str) -> &mut Self {
                self.labels.push((name, self.code.len()));
                self
            }
            fn finish(mut self) -> Vec<libc::sock_filter> {
                for (at, to) in &self.jumps {
                    let target = self.labels.iter().find(|(l, _)| l == to).map(|l| l.1);
                    let target = target.unwrap_or_else(|| panic!("no label {to}"));
                    let off = target
                        .checked_sub(at + 1)
                        .and_then(|o| u8::try_from(o).ok())
                        .unwrap_or_else(|| panic!("jump to {to} out of reach"));
                    self.code[*at].jt = off;
                }
                self.code
            }
        }
        let mut a = Asm::default();
        a.ld(4)
            .jeq(AUDIT_ARCH_X86_64, "x86_64")
            .jeq(AUDIT_ARCH_I386, "i386")
            .ret(libc::SECCOMP_RET_ALLOW);
        a.label("x86_64")
            .ld(0)
            .op(BPF_ALU | BPF_AND | BPF_K, !X32_SYSCALL_BIT);
        for nr in CLOCK_SETTERS {
            a.jeq(nr, "deny");
        }
        // Reads: clock_gettime goes on to check the clock (x32 reads are not faked).
        a.ld(0)
            .jeq(libc::SYS_clock_gettime as u32, "clock")
            .jeq(libc::SYS_gettimeofday as u32, "notify")
            .jeq(libc::SYS_time as u32, "notify")
            .ret(libc::SECCOMP_RET_ALLOW);
        a.label("clock").ld(16);
        for clock in FAKED_CLOCKS {
            a.jeq(clock, "notify");
        }
        a.ret(libc::SECCOMP_RET_ALLOW);
        a.label("i386").ld(0);
        for nr in I386_CLOCK_SETTERS {
            a.jeq(nr, "deny");
        }
        a.ret(libc::SECCOMP_RET_ALLOW);
        a.label("notify").ret(libc::SECCOMP_RET_USER_NOTIF);
        a.label("deny").ret(RET_EPERM);
        a.finish()
    }

    pub fn supervise(offset_file: &Path, argv: &[OsString]) -> Result<std::convert::Infallible> {
        // Forking a process with other threads leaves their locks held in the
        // child; a /proc that cannot say how many there are is no proof of one.
        let threads = std::fs::read_dir("/proc/self/task")
            .map_err(|e| Error::io("cannot count this process's threads in /proc/self/task", e))?
            .count();
        if threads != 1 {
            return Err(Error::Supervisor(format!(
                "must run in a single-threaded process (this one has {threads} threads)"
            )));
        }
        let mut sv = [0 as c_int; 2];
        // SAFETY: a sigset_t is plain data; pthread_sigmask fills it.
        let mut original_mask: libc::sigset_t = unsafe { std::mem::zeroed() };
        let restore_mask = |mask: &libc::sigset_t| {
            // SAFETY: sets this thread's signal mask to one it had.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) };
        };
        // SAFETY: plain system calls on our own file descriptors and process.
        unsafe {
            if libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr(),
            ) < 0
            {
                return Err(sys_err("socketpair"));
            }
            let target = libc::getpid();
            // Every signal waits until the exec. Once the handler has seized this
            // process, a signal stops it (signal-delivery-stop) until the handler
            // lets it go on, which it does only after it has the listener: a
            // signal before `send_fd` would stop this process for ever. Blocked,
            // it stays pending and comes after the listener is sent.
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut original_mask);
            match libc::fork() {
                -1 => {
                    let e = sys_err("fork");
                    libc::pthread_sigmask(libc::SIG_SETMASK, &original_mask, std::ptr::null_mut());
                    return Err(e);
                }
                0 => {
                    // The handler is not traced: it takes its signals as they come.
                    libc::pthread_sigmask(libc::SIG_SETMASK, &original_mask, std::ptr::null_mut());
                    libc::close(sv[0]);
                    let code = handler(target, sv[1], offset_file);
                    libc::_exit(code);
                }
                handler_pid => {
                    libc::close(sv[1]);
                    // Under Yama's ptrace_scope 1 a child may trace its parent only
                    // when invited (EINVAL without Yama: nothing to do).
                    libc::prctl(libc::PR_SET_PTRACER, handler_pid as libc::c_ulong, 0, 0, 0);
                }
            }
        }
        let sock = sv[0];
        // From here on, a failure keeps every signal blocked: the handler may be
        // tracing this process and waiting for the listener, and a signal would
        // stop it for ever. The caller reports the error and exits (as `main`
        // does); the signals die with it. Only a handler that said it is not
        // tracing lets the mask be restored.
        let reply = recv_message(sock)?;
        match reply.first() {
            Some(b'k') => {}
            Some(_) => {
                restore_mask(&original_mask);
                return Err(Error::Supervisor(
                    String::from_utf8_lossy(&reply[1..]).into_owned(),
                ));
            }
            None => {
                // It exited: had it traced this process, PTRACE_O_EXITKILL would
                // have killed it.
                restore_mask(&original_mask);
                return Err(Error::Supervisor(
                    "the clock handler exited before it could trace the target".into(),
                ));
            }
        }
        // SAFETY: installs a filter built above; the listener fd is ours to pass on.
        let listener = unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
                return Err(sys_err("prctl(PR_SET_NO_NEW_PRIVS)"));
            }
            let f = filter();
            let prog = libc::sock_fprog {
                len: f.len() as u16,
                filter: f.as_ptr() as *mut libc::sock_filter,
            };
            let install = |flags: libc::c_ulong| {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    flags,
                    &prog as *const libc::sock_fprog,
                )
            };
            let mut fd = install(
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
            );
            if fd < 0 && errno().raw_os_error() == Some(libc::EINVAL) {
                // Before Linux 5.19: without the flag, an interrupted read asks again.
                fd = install(libc::SECCOMP_FILTER_FLAG_NEW_LISTENER);
            }
            if fd < 0 {
                return Err(sys_err(
                    "seccomp(SECCOMP_SET_MODE_FILTER, NEW_LISTENER) (Linux 5.0 or later is needed)",
                ));
            }
            fd as c_int
        };
        // From here on, this process must not read the wall clock until the handler
        // answers, which it does once the exec is done: only send, close and exec.
        let sent = send_fd(sock, listener);
        // SAFETY: closing our own descriptors.
        unsafe {
            libc::close(listener);
            libc::close(sock);
        }
        sent?;
        // The listener is the handler's: pending signals may come now (the handler
        // passes them on at their stops). std's exec then empties the mask, as
        // it does for every program it runs.
        restore_mask(&original_mask);
        let program = &argv[0];
        let err = std::process::Command::new(program).args(&argv[1..]).exec();
        Err(Error::Supervisor(format!(
            "cannot run {}: {err}",
            program.to_string_lossy()
        )))
    }

    fn recv_message(sock: c_int) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; 4096];
        // SAFETY: reads into a buffer we own.
        let n = unsafe { libc::recv(sock, buf.as_mut_ptr() as *mut c_void, buf.len(), 0) };
        if n < 0 {
            return Err(sys_err("recv from the clock handler"));
        }
        buf.truncate(n as usize);
        Ok(buf)
    }

    /// Calls `f` with a message of one byte (`byte`) and a control buffer with
    /// room for one file descriptor (SCM_RIGHTS): the buffers live on this
    /// frame, so the pointers in the message stay valid for the call. What
    /// sending and receiving the listener share.
    fn with_fd_message<R>(byte: u8, f: impl FnOnce(&mut libc::msghdr) -> R) -> R {
        let mut byte = [byte];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr() as *mut c_void,
            iov_len: 1,
        };
        // SAFETY: CMSG_SPACE only computes a size; an all-zero msghdr is a valid
        // empty one (null pointers, zero lengths).
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) } as usize;
        let mut cbuf = vec![0u64; space.div_ceil(8)];
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut c_void;
        msg.msg_controllen = space;
        f(&mut msg)
    }

    fn send_fd(sock: c_int, fd: c_int) -> Result<()> {
        // SAFETY: the control buffer is sized by CMSG_SPACE for one int and filled
        // through the CMSG_* accessors.
        with_fd_message(b'f', |msg| unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut c_int, fd);
            if libc::sendmsg(sock, msg, 0) < 0 {
                return Err(sys_err("sending the seccomp listener to the clock handler"));
            }
            Ok(())
        })
    }

    fn recv_fd(sock: c_int) -> std::result::Result<c_int, String> {
        // SAFETY: as send_fd, reading.
        with_fd_message(0, |msg| unsafe {
            let n = libc::recvmsg(sock, msg, libc::MSG_CMSG_CLOEXEC);
            if n <= 0 {
                return Err("the supervisor exited before it installed its filter".into());
            }
            let cmsg = libc::CMSG_FIRSTHDR(msg);
            if cmsg.is_null()
                || (*cmsg).cmsg_level != libc::SOL_SOCKET
                || (*cmsg).cmsg_type != libc::SCM_RIGHTS
            {
                return Err("no seccomp listener came from the supervisor".into());
            }
            Ok(std::ptr::read_unaligned(
                libc::CMSG_DATA(cmsg) as *const c_int
            ))
        })
    }

    /// The handler process: returns its exit code.
    fn handler(target: libc::pid_t, sock: c_int, offset_file: &Path) -> c_int {
        let fail = |msg: String| {
            let text = format!("e{msg}");
            // SAFETY: sends bytes we own.
            unsafe { libc::send(sock, text.as_ptr() as *const c_void, text.len(), 0) };
            1
        };
        // SAFETY: prctl, getppid, ptrace and pidfd_open on our parent, the target.
        let pidfd = unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != target {
                return 1;
            }
            // The target's stdin and stdout are its own: a reader of its stdout must
            // see the end when the target closes it, not when the handler exits.
            // stderr stays: it is where the handler says why it failed.
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            if null < 0
                || libc::dup2(null, libc::STDIN_FILENO) < 0
                || libc::dup2(null, libc::STDOUT_FILENO) < 0
            {
                return fail(format!(
                    "cannot point stdin and stdout at /dev/null: {}",
                    errno()
                ));
            }
            libc::close(null);
            let name = c"sb-clock";
            libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0);
            let opts = libc::PTRACE_O_TRACEEXEC | libc::PTRACE_O_EXITKILL;
            if libc::ptrace(
                libc::PTRACE_SEIZE,
                target,
                std::ptr::null_mut::<c_void>(),
                opts as usize as *mut c_void,
            ) < 0
            {
                return fail(format!(
                    "cannot trace the target (PTRACE_SEIZE; root or CAP_SYS_PTRACE is needed): {}",
                    errno()
                ));
            }
            let fd = libc::syscall(libc::SYS_pidfd_open, target, 0);
            if fd < 0 {
                return fail(format!(
                    "pidfd_open (Linux 5.3 or later is needed): {}",
                    errno()
                ));
            }
            fd as c_int
        };
        // SAFETY: sends one byte.
        if unsafe { libc::send(sock, b"k".as_ptr() as *const c_void, 1, 0) } != 1 {
            return 1;
        }
        // Until the detach at the exec stop, PTRACE_O_EXITKILL kills the target
        // whenever the handler ends: no exit path here leaves it unanswered.
        let listener = match recv_fd(sock) {
            Ok(fd) => fd,
            // The supervisor said why on its side, or died.
            Err(_) => return 1,
        };
        // SAFETY: closing our socket end.
        unsafe { libc::close(sock) };
        match hide_vdso_at_exec(target) {
            Ok(true) => {}
            Ok(false) => return 0, // the target exited before exec
            Err(e) => {
                end_target(pidfd, &e);
                return 1;
            }
        }
        // SAFETY: an ioctl on our listener (the flags are the argument itself);
        // before Linux 6.6 it is refused, harmlessly.
        unsafe {
            libc::ioctl(
                listener,
                libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
                SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
            );
        }
        serve(listener, pidfd, offset_file)
    }

    /// Waits for the target's exec stop, hides the vDSO in the new auxiliary vector,
    /// and detaches. False if the target exited first.
    fn hide_vdso_at_exec(target: libc::pid_t) -> std::result::Result<bool, String> {
        loop {
            let mut status: c_int = 0;
            // SAFETY: waits for our tracee.
            let r = unsafe { libc::waitpid(target, &mut status, libc::__WALL) };
            if r < 0 {
                if errno().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(format!("waitpid: {}", errno()));
            }
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                return Ok(false);
            }
            if !libc::WIFSTOPPED(status) {
                continue;
            }
            let event = status >> 16;
            if event == libc::PTRACE_EVENT_EXEC {
                let hidden = hide_vdso(target);
                // SAFETY: detaching from our tracee, which goes on running.
                unsafe {
                    libc::ptrace(
                        libc::PTRACE_DETACH,
                        target,
                        std::ptr::null_mut::<c_void>(),
                        std::ptr::null_mut::<c_void>(),
                    )
                };
                return hidden.map(|()| true);
            }
            // A signal before the exec: pass it on (a group stop under SEIZE is an
            // event stop; carry on, the exec comes next).
            let sig = if event == 0 {
                libc::WSTOPSIG(status)
            } else {
                0
            };
            // SAFETY: resumes our tracee with the signal it was about to get.
            unsafe {
                libc::ptrace(
                    libc::PTRACE_CONT,
                    target,
                    std::ptr::null_mut::<c_void>(),
                    sig as usize as *mut c_void,
                )
            };
        }
    }

    /// At the exec stop the stack holds argc, argv, NULL, envp, NULL, then the
    /// auxiliary vector as (type, value) pairs up to AT_NULL.
    fn hide_vdso(pid: libc::pid_t) -> std::result::Result<(), String> {
        let peek = |addr: u64| -> std::result::Result<u64, String> {
            // SAFETY: PEEKDATA on our stopped tracee; -1 is a valid word, so errno
            // tells errors apart.
            unsafe {
                *libc::__errno_location() = 0;
                let v = libc::ptrace(
                    libc::PTRACE_PEEKDATA,
                    pid,
                    addr as *mut c_void,
                    std::ptr::null_mut::<c_void>(),
                );
                if v == -1 && *libc::__errno_location() != 0 {
                    return Err(format!(
                        "reading the target's stack at {addr:#x}: {}",
                        errno()
                    ));
                }
                Ok(v as u64)
            }
        };
        // SAFETY: reads the registers of our stopped tracee into a struct we own.
        let sp = unsafe {
            let mut regs: libc::user_regs_struct = std::mem::zeroed();
            if libc::ptrace(
                libc::PTRACE_GETREGS,
                pid,
                std::ptr::null_mut::<c_void>(),
                &mut regs as *mut _ as *mut c_void,
            ) < 0
            {
                return Err(format!("PTRACE_GETREGS: {}", errno()));
            }
            regs.rsp
        };
        const MAX_WORDS: u64 = 1 << 20;
        let argc = peek(sp)?;
        if argc > MAX_WORDS {
            return Err(format!("odd argc {argc} at the exec stop"));
        }
        let mut p = sp + 8 * (argc + 2);
        let mut words = 0;
        while peek(p)? != 0 {
            p += 8;
            words += 1;
            if words > MAX_WORDS {
                return Err("no end to the environment on the target's stack".into());
            }
        }
        p += 8;
        for _ in 0..4096 {
            let kind = peek(p)?;
            if kind == libc::AT_NULL {
                // No vDSO (a kernel booted with vdso=0): nothing to hide.
                return Ok(());
            }
            if kind == libc::AT_SYSINFO_EHDR {
                // SAFETY: POKEDATA into our stopped tracee's own auxv entry.
                let r = unsafe {
                    libc::ptrace(
                        libc::PTRACE_POKEDATA,
                        pid,
                        p as *mut c_void,
                        libc::AT_IGNORE as usize as *mut c_void,
                    )
                };
                if r < 0 {
                    return Err(format!("rewriting the auxiliary vector: {}", errno()));
                }
                return Ok(());
            }
            p += 16;
        }
        Err("no end to the auxiliary vector on the target's stack".into())
    }

    /// SIGKILLs the target through its pidfd (never its pid, which may be someone
    /// else's by now). ESRCH, when it is gone already, is what we wanted.
    fn kill_target(pidfd: c_int) -> std::io::Result<()> {
        // SAFETY: pidfd_send_signal on a pidfd we own, no siginfo.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd,
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 && errno().raw_os_error() != Some(libc::ESRCH) {
            return Err(errno());
        }
        Ok(())
    }

    /// The handler is ending while the target may live: kill the target first.
    /// Without a handler the kernel answers its filtered calls with ENOSYS, and Go
    /// reads that as a garbage wall time instead of failing; dead, the member is
    /// seen to be dead. Then say why, ignoring a stderr that cannot be written.
    fn end_target(pidfd: c_int, why: &str) {
        let killed = match kill_target(pidfd) {
            Ok(()) => "killed the target".to_owned(),
            Err(e) => format!("could not kill the target: {e}"),
        };
        let _ = writeln!(
            std::io::stderr(),
            "splitbrain clock handler: {why}; {killed}"
        );
    }

    /// Threads answering notifications, each blocked in SECCOMP_IOCTL_NOTIF_RECV
    /// (no poll before each one). Two answered no faster than one on two cores.
    const ANSWERING_THREADS: usize = 1;

    /// Answers notifications until the target exits: the answering threads block
    /// in RECV, and this thread waits on the target's pidfd, then ends the process.
    /// Every other way out (RECV fails, a thread cannot start, poll fails, any
    /// panic in any thread) kills the target first, through `end_target`.
    fn serve(listener: c_int, pidfd: c_int, offset_file: &Path) -> c_int {
        // A panic anywhere from here on kills the target before anything unwinds
        // (or aborts): the hook runs first, on the panicking thread.
        std::panic::set_hook(Box::new(move |info| end_target(pidfd, &info.to_string())));
        for _ in 0..ANSWERING_THREADS {
            let mut offsets = OffsetFile::new(offset_file);
            let spawned = std::thread::Builder::new()
                .name("sb-clock-answer".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    let answering =
                        std::panic::AssertUnwindSafe(|| answer_all(listener, &mut offsets));
                    let why = match std::panic::catch_unwind(answering) {
                        Ok(e) => format!("receiving: {e}"),
                        // The hook has killed the target and said why.
                        Err(_) => String::new(),
                    };
                    if !why.is_empty() {
                        end_target(pidfd, &why);
                    }
                    // Nobody would answer: the whole handler ends, not just this thread.
                    // SAFETY: ends this process.
                    unsafe { libc::_exit(1) }
                });
            if let Err(e) = spawned {
                end_target(pidfd, &format!("cannot start a thread: {e}"));
                return 1;
            }
        }
        let mut fds = [libc::pollfd {
            fd: pidfd,
            events: libc::POLLIN,
            revents: 0,
        }];
        loop {
            // SAFETY: polls a descriptor we own.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, -1) };
            if n > 0 {
                // The target exited.
                return 0;
            }
            if n < 0 && errno().raw_os_error() != Some(libc::EINTR) {
                end_target(pidfd, &format!("poll: {}", errno()));
                return 1;
            }
        }
    }

    /// Receives and answers notifications; returns the error that ended it.
    fn answer_all(listener: c_int, offsets: &mut OffsetFile) -> std::io::Error {
        loop {
            // SAFETY: the kernel fills a zeroed seccomp_notif, as it requires.
            let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
            // SAFETY: RECV on our listener into a struct we own.
            let r = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut notif) };
            if r == 0 {
                answer(listener, &notif, offsets);
                continue;
            }
            match errno().raw_os_error() {
                // The caller was gone before we got to it; a signal.
                Some(libc::ENOENT | libc::EINTR) => {}
                _ => return errno(),
            }
        }
    }

    fn now(clock: libc::clockid_t) -> Option<i64> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: the handler is not filtered: this is the vDSO or the kernel.
        if unsafe { libc::clock_gettime(clock, &mut ts) } < 0 {
            return None;
        }
        Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
    }

    fn answer(listener: c_int, n: &libc::seccomp_notif, offsets: &mut OffsetFile) {
        let real = now(libc::CLOCK_REALTIME).unwrap_or(0);
        let delta = offsets.clock().offset_at(real);
        let split = |ns: i64| (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
        let args = n.data.args;
        let (val, error): (i64, c_int) = match n.data.nr as c_long {
            libc::SYS_clock_gettime => {
                let clock = args[0] as libc::clockid_t;
                let t = if clock == libc::CLOCK_REALTIME {
                    Some(real)
                } else {
                    now(clock)
                };
                match t {
                    None => (0, libc::EINVAL),
                    Some(t) => {
                        let (sec, nsec) = split(t.saturating_add(delta));
                        let ts: [i64; 2] = [sec, nsec];
                        (0, write_to(listener, n, args[1], as_bytes(&ts)))
                    }
                }
            }
            libc::SYS_gettimeofday => {
                let (sec, nsec) = split(real.saturating_add(delta));
                let mut error = 0;
                if args[0] != 0 {
                    let tv: [i64; 2] = [sec, nsec / 1000];
                    error = write_to(listener, n, args[0], as_bytes(&tv));
                }
                if error == 0 && args[1] != 0 {
                    // struct timezone: the kernel's is zero unless someone set it.
                    let tz: [i32; 2] = [0, 0];
                    error = write_to(listener, n, args[1], as_bytes(&tz));
                }
                (0, error)
            }
            libc::SYS_time => {
                let (sec, _) = split(real.saturating_add(delta));
                let error = if args[0] != 0 {
                    write_to(listener, n, args[0], as_bytes(&[sec]))
                } else {
                    0
                };
                (sec, error)
            }
            _ => (0, libc::ENOSYS),
        };
        let mut resp = libc::seccomp_notif_resp {
            id: n.id,
            val,
            error: -error,
            flags: 0,
        };
        if error != 0 {
            resp.val = 0;
        }
        // SAFETY: answers our own notification; ENOENT means the caller is gone.
        unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    }

    fn as_bytes<T: Copy>(v: &[T]) -> &[u8] {
        // SAFETY: plain integers, read as bytes.
        unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
    }

    /// Writes `bytes` at `addr` in the calling thread: 0, or the errno to answer.
    fn write_to(listener: c_int, n: &libc::seccomp_notif, addr: u64, bytes: &[u8]) -> c_int {
        // The notification must still be pending: otherwise its thread is gone and
        // the pid may be someone else's.
        let mut id = n.id;
        // SAFETY: an ioctl on our listener with a u64 we own.
        if unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &mut id) } != 0 {
            return libc::ESRCH;
        }
        let local = libc::iovec {
            iov_base: bytes.as_ptr() as *mut c_void,
            iov_len: bytes.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut c_void,
            iov_len: bytes.len(),
        };
        // SAFETY: writes into the caller's memory at the address it gave the call.
        let w = unsafe { libc::process_vm_writev(n.pid as libc::pid_t, &local, 1, &remote, 1, 0) };
        if w == bytes.len() as isize {
            0
        } else {
            libc::EFAULT
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_target_is_killed_through_its_pidfd() {
            let mut child = std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap();
            // SAFETY: pidfd_open on our own child.
            let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.id(), 0) } as c_int;
            assert!(pidfd >= 0, "pidfd_open: {}", errno());
            kill_target(pidfd).unwrap();
            let status = child.wait().unwrap();
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(libc::SIGKILL));
            // Gone already (and reaped): still fine, and nobody else is hit.
            kill_target(pidfd).unwrap();
            // SAFETY: closing our descriptor.
            unsafe { libc::close(pidfd) };
        }

        #[test]
        fn the_filter_jumps_land_on_its_returns() {
            let f = filter();
            // Walk every path of the program: each must end in a return.
            fn run(f: &[libc::sock_filter], nr: u32, arch: u32, clock: u32) -> u32 {
                let mut acc = 0;
                let mut pc = 0;
                loop {
                    let i = f[pc];
                    match i.code as u32 {
                        c if c == (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) => {
                            acc = match i.k {
                                0 => nr,
                                4 => arch,
                                16 => clock,
                                k => panic!("load of offset {k}"),
                            };
                            pc += 1;
                        }
                        c if c == (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) => {
                            acc &= i.k;
                            pc += 1;
                        }
                        c if c == (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) => {
                            pc += 1 + if acc == i.k { i.jt } else { i.jf } as usize;
                        }
                        c if c == (libc::BPF_RET | libc::BPF_K) => return i.k,
                        c => panic!("unexpected op {c:#x}"),
                    }
                }
            }
            let x86 = AUDIT_ARCH_X86_64;
            let notify = libc::SECCOMP_RET_USER_NOTIF;
            let allow = libc::SECCOMP_RET_ALLOW;
            let cg = libc::SYS_clock_gettime as u32;
            for c in FAKED_CLOCKS {
                assert_eq!(run(&f, cg, x86, c), notify, "clock {c}");
            }
            for c in [
                libc::CLOCK_MONOTONIC,
                libc::CLOCK_MONOTONIC_RAW,
                libc::CLOCK_BOOTTIME,
            ] {
                assert_eq!(run(&f, cg, x86, c as u32), allow, "clock {c}");
            }
            assert_eq!(run(&f, libc::SYS_gettimeofday as u32, x86, 0), notify);
            assert_eq!(run(&f, libc::SYS_time as u32, x86, 0), notify);
            assert_eq!(run(&f, libc::SYS_read as u32, x86, 0), allow);
            assert_eq!(run(&f, libc::SYS_clock_nanosleep as u32, x86, 0), allow);
            assert_eq!(run(&f, cg, AUDIT_ARCH_I386, 0), allow, "i386 is not faked");
            assert_eq!(
                run(&f, 265, AUDIT_ARCH_I386, 0),
                allow,
                "i386 clock_gettime"
            );
            for nr in CLOCK_SETTERS {
                assert_eq!(run(&f, nr, x86, 0), RET_EPERM, "x86-64 call {nr}");
                let x32 = nr | X32_SYSCALL_BIT;
                assert_eq!(run(&f, x32, x86, 0), RET_EPERM, "x32 call {nr}");
                assert_eq!(run(&f, nr, AUDIT_ARCH_I386, 0), allow, "i386 call {nr}");
            }
            for nr in I386_CLOCK_SETTERS {
                assert_eq!(run(&f, nr, AUDIT_ARCH_I386, 0), RET_EPERM, "i386 {nr}");
            }
            assert_eq!(run(&f, 164, 0xC000_00B7, 0), allow, "aarch64 is left alone");
            assert_eq!(RET_EPERM, 0x0005_0001);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_command_line_names_the_offset_file_and_the_program() {
        let c = Command::parse(&os(&[
            "--offset-file",
            "/x/clock",
            "--",
            "etcd",
            "--name",
            "n1",
        ]))
        .unwrap();
        assert_eq!(c.offset_file, PathBuf::from("/x/clock"));
        assert_eq!(c.argv, os(&["etcd", "--name", "n1"]));
        let c = Command::parse(&os(&["--offset-file=/x", "date", "-u"])).unwrap();
        assert_eq!(c.argv, os(&["date", "-u"]));
        assert!(Command::parse(&os(&["--", "etcd"]))
            .unwrap_err()
            .contains("--offset-file is missing"));
        assert!(Command::parse(&os(&["--offset-file", "/x"]))
            .unwrap_err()
            .contains("no program"));
        assert!(Command::parse(&os(&["--bogus"]))
            .unwrap_err()
            .contains("unknown option"));
    }
}
