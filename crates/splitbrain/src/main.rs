//! The `splitbrain` command line: a thin layer over the library crates.

#![forbid(unsafe_code)]

mod check_cmd;
mod cluster_cmd;
mod nemesis;
mod nemesis_args;
mod nemesis_cmd;
mod nodes_file;
mod remote_cmd;
mod rounds;
mod serve_cmd;
mod test_cmd;
mod test_config;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Jepsen-style consistency testing for HTTP key-value stores.
///
/// splitbrain runs a concurrent workload against a cluster, injects faults, records
/// every operation in a history, and checks that history for linearizability.
#[derive(Parser)]
#[command(name = "splitbrain", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check histories for linearizability and explain any violation.
    Check(check_cmd::CheckArgs),
    /// Start, inspect, fault and stop a local etcd cluster (one member per network namespace).
    #[command(subcommand)]
    Cluster(cluster_cmd::ClusterCmd),
    /// Inject faults into a local cluster, or remote nodes over SSH (--nodes), by hand,
    /// and heal them.
    Nemesis(nemesis_args::NemesisArgs),
    /// Run a workload against a cluster, record the history and check it.
    Test(Box<test_cmd::TestArgs>),
    /// Serve a local web page listing past runs in the store, each with its report.
    Serve(serve_cmd::ServeArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(check_cmd::EXIT_BAD_INPUT),
            };
        }
    };
    // Library warnings (say, a namespace that is no longer ours and was left alone)
    // go to stderr; SPLITBRAIN_LOG=debug shows more.
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPLITBRAIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .init();
    let code = match cli.command {
        Command::Check(args) => check_cmd::run(args),
        Command::Cluster(cmd) => cluster_cmd::run(cmd),
        Command::Nemesis(args) => cluster_cmd::report(match args.nodes {
            Some(file) => remote_cmd::execute(&file, args.cmd, args.allow_remote),
            None => nemesis_cmd::execute(args.cmd),
        }),
        Command::Test(args) => test_cmd::run(*args),
        Command::Serve(args) => serve_cmd::run(args),
    };
    ExitCode::from(code)
}
