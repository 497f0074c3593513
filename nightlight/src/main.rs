use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use nightlight::config::NightlightSections;
use photon_runtime::{Component, ServerArgs, run_main};

// Less fragmentation than glibc's allocator with many small per-series allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const COMPONENT: Component = Component {
    name: "nightlight",
    version: env!("CARGO_PKG_VERSION"),
    default_admin_addr: "127.0.0.1:9090",
};

/// nightlight: Prometheus-compatible metrics — scrapes targets, stores samples and answers
/// PromQL through the Prometheus HTTP API (default http://127.0.0.1:9090/api/v1/query).
#[derive(Debug, Parser)]
#[command(name = "nightlight", version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,

    /// The Prometheus API, remote write, /health and /metrics (standalone.server.http_addr)
    #[arg(long, value_name = "HOST:PORT")]
    http_addr: Option<SocketAddr>,

    /// Where samples and the index are kept (standalone.storage.data_dir)
    #[arg(long, value_name = "PATH")]
    data_dir: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut settings = Vec::new();
    if let Some(addr) = cli.http_addr {
        settings.push(("standalone.server.http_addr".to_owned(), addr.to_string()));
    }
    if let Some(dir) = &cli.data_dir {
        settings.push((
            "standalone.storage.data_dir".to_owned(),
            dir.display().to_string(),
        ));
    }
    run_main::<NightlightSections, _, _>(&COMPONENT, &cli.server, settings, nightlight::run).await
}
