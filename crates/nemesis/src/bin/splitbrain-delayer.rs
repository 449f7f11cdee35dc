//! The user-space packet delayer, on its own: see `splitbrain_nemesis::delayer`.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(splitbrain_nemesis::delayer::main(&args));
}
