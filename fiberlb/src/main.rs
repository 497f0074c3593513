use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use fiberlb::config::FiberlbSections;
use fiberlb::source::FileSource;
use photon_runtime::{Component, ServerArgs, run_main};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const COMPONENT: Component = Component {
    name: "fiberlb",
    version: env!("CARGO_PKG_VERSION"),
    default_admin_addr: "127.0.0.1:8081",
};

/// fiberlb: an L4/L7 load balancer (TCP, UDP, HTTP, HTTPS) with health checks and session
/// persistence.
///
/// Load balancers come from the config file's [[standalone.loadbalancers]] and the REST API
/// (default http://127.0.0.1:8081/api/v1/loadbalancers). SIGHUP reloads the file.
#[derive(Debug, Parser)]
#[command(name = "fiberlb", version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,

    /// REST API, /health and /metrics (standalone.server.admin_api_addr)
    #[arg(long, value_name = "HOST:PORT")]
    admin_api_addr: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut settings = Vec::new();
    if let Some(addr) = cli.admin_api_addr {
        settings.push((
            "standalone.server.admin_api_addr".to_owned(),
            addr.to_string(),
        ));
    }
    // SIGHUP re-reads the same layers as start-up.
    let mut reload_sources = match cli.server.sources(COMPONENT.name) {
        Ok(sources) => sources,
        Err(err) => {
            eprintln!("fiberlb: configuration refused: {err}");
            return ExitCode::FAILURE;
        }
    };
    reload_sources.overrides.extend(settings.clone());
    run_main::<FiberlbSections, _, _>(&COMPONENT, &cli.server, settings, |service| {
        fiberlb::run(service, Box::new(FileSource::new(reload_sources)))
    })
    .await
}
