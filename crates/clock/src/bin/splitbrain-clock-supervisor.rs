//! The clock supervisor on its own: see `splitbrain_clock::supervisor`.
//!
//!     splitbrain-clock-supervisor --offset-file FILE [--] PROGRAM [ARGS...]
fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(splitbrain_clock::supervisor::main(&args));
}
