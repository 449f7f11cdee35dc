//! The `splitbrain` command line: a thin layer over the library crates.

mod cluster_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Jepsen-style consistency testing for HTTP key-value stores.
#[derive(Parser)]
#[command(name = "splitbrain", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start, inspect, fault and stop a local etcd cluster (one member per network namespace).
    #[command(subcommand)]
    Cluster(cluster_cmd::ClusterCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Cluster(cmd) => cluster_cmd::run(cmd),
    };
    ExitCode::from(code)
}
