use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use flashdns::config::FlashdnsSections;
use photon_runtime::{Component, ServerArgs, run_main};

const COMPONENT: Component = Component {
    name: "flashdns",
    version: env!("CARGO_PKG_VERSION"),
    default_admin_addr: "127.0.0.1:8053",
};

/// flashdns: an authoritative DNS server for BIND-format zone files.
///
/// Query it with dig or kdig on the DNS address (default 127.0.0.1:1053, UDP and TCP).
#[derive(Debug, Parser)]
#[command(name = "flashdns", version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,

    /// Directory of zone files (standalone.zones.zone_dir); with no zones listed in the
    /// config, every *.zone file in it is served
    #[arg(long, value_name = "PATH")]
    zone_dir: Option<PathBuf>,

    /// DNS address for both UDP and TCP (standalone.server.dns_addr and dns_tcp_addr)
    #[arg(long, value_name = "HOST:PORT")]
    dns_addr: Option<SocketAddr>,

    /// REST API, /health and /metrics (standalone.server.admin_api_addr)
    #[arg(long, value_name = "HOST:PORT")]
    admin_api_addr: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut settings = Vec::new();
    let mut set = |key: &str, value: String| settings.push((key.to_owned(), value));
    if let Some(dir) = &cli.zone_dir {
        set("standalone.zones.zone_dir", dir.display().to_string());
    }
    if let Some(addr) = cli.dns_addr {
        set("standalone.server.dns_addr", addr.to_string());
        set("standalone.server.dns_tcp_addr", addr.to_string());
    }
    if let Some(addr) = cli.admin_api_addr {
        set("standalone.server.admin_api_addr", addr.to_string());
    }
    run_main::<FlashdnsSections, _, _>(&COMPONENT, &cli.server, settings, flashdns::run).await
}
