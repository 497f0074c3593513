use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use chainfire::config::ChainfireSections;
use clap::Parser;
use photon_runtime::{Component, Launch, ServerArgs, launch_with};

const COMPONENT: Component = Component {
    name: "chainfire",
    version: env!("CARGO_PKG_VERSION"),
    default_admin_addr: "127.0.0.1:2381",
};

/// chainfire: an etcd v3-compatible key-value store (Raft on RocksDB).
///
/// Point etcdctl or any etcd v3 client at the client address (default 127.0.0.1:2379).
#[derive(Debug, Parser)]
#[command(name = "chainfire", version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,

    /// Data directory (storage.data_dir)
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,

    /// etcd API listen address (server.client_addr)
    #[arg(long, value_name = "HOST:PORT")]
    client_addr: Option<SocketAddr>,

    /// Run as a member of a multi-node cluster (not in this build yet)
    #[arg(long)]
    cluster_mode: bool,

    /// Bootstrap a new multi-node cluster (not in this build yet)
    #[arg(long)]
    bootstrap_cluster: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.cluster_mode || cli.bootstrap_cluster {
        eprintln!(
            "chainfire: --cluster-mode and --bootstrap-cluster are not supported by this build yet; \
             run without them for a single-member chainfire"
        );
        return ExitCode::FAILURE;
    }
    let mut sources = match cli.server.sources(COMPONENT.name) {
        Ok(sources) => sources,
        Err(err) => {
            eprintln!("chainfire: configuration refused: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = &cli.data_dir {
        sources
            .overrides
            .push(("storage.data_dir".into(), dir.display().to_string()));
    }
    if let Some(addr) = cli.client_addr {
        sources
            .overrides
            .push(("server.client_addr".into(), addr.to_string()));
    }
    let service = match launch_with::<ChainfireSections>(&COMPONENT, &cli.server, sources).await {
        Launch::Run(service) => *service,
        Launch::Exit(code) => return code,
    };
    match chainfire::run(service).await {
        Ok(code) => code,
        Err(reason) => {
            tracing::error!("chainfire cannot start: {reason}");
            eprintln!("chainfire: cannot start: {reason}");
            ExitCode::FAILURE
        }
    }
}
