//! photonctl: the PhotonCloud operator's command-line tool.

mod cli;
mod dns;
mod kv;
mod lb;
mod metrics;
mod probe;
mod render;
mod rest;
mod storage;

use clap::{CommandFactory, Parser};
use std::process::ExitCode;

use cli::{Cli, Command, Output};
use probe::{Probe, Verdict};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConnection(args) => {
            let probe = Probe::run(&args.endpoint, args.timeout).await;
            match args.output {
                Output::Table => print!("{}", render::connection_report(&probe)),
                Output::Json => println!("{}", render::json(&probe)),
            }
            exit_code([probe.verdict()])
        }
        Command::Status(args) => {
            let endpoints = if args.endpoint.is_empty() {
                photon_config::suite::COMPONENTS
                    .iter()
                    .map(|component| component.admin_endpoint.to_owned())
                    .collect()
            } else {
                args.endpoint
            };
            let probes = Probe::run_all(&endpoints, args.timeout).await;
            match args.output {
                Output::Table => print!("{}", render::status_table(&probes)),
                Output::Json => println!("{}", render::json(&probes)),
            }
            exit_code(probes.iter().map(Probe::verdict))
        }
        Command::Kv(command) => match kv::run(command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("photonctl: {err:#}");
                ExitCode::FAILURE
            }
        },
        Command::Dns(command) => match dns::run(command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("photonctl: {err:#}");
                ExitCode::FAILURE
            }
        },
        Command::Storage(command) => match storage::run(command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("photonctl: {err:#}");
                ExitCode::FAILURE
            }
        },
        Command::Lb(command) => match lb::run(command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("photonctl: {err:#}");
                ExitCode::FAILURE
            }
        },
        Command::Metrics(command) => match metrics::run(command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("photonctl: {err:#}");
                ExitCode::FAILURE
            }
        },
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "photonctl",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
    }
}

/// 0 when everything is healthy, 1 when something answered but is unhealthy, 2 when something
/// could not be reached.
fn exit_code(verdicts: impl IntoIterator<Item = Verdict>) -> ExitCode {
    match verdicts.into_iter().max() {
        None | Some(Verdict::Healthy) => ExitCode::SUCCESS,
        Some(Verdict::Unhealthy) => ExitCode::from(1),
        Some(Verdict::Unreachable) => ExitCode::from(2),
    }
}
