use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use chainfire::config::ChainfireSections;
use clap::Parser;
use photon_runtime::{Component, ServerArgs, run_main};

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

    /// Serve the peer port and take part in a multi-member cluster (cluster.enabled)
    #[arg(long)]
    cluster_mode: bool,

    /// Form a new cluster from cluster.initial_cluster (or of this member alone); implies
    /// --cluster-mode and refuses --join
    #[arg(long, conflicts_with = "join")]
    bootstrap_cluster: bool,

    /// Join the cluster one of these members belongs to, when the data directory is new
    /// (cluster.join; comma-separated client URLs); implies --cluster-mode
    #[arg(long, value_name = "URL,...")]
    join: Option<String>,

    /// Peer listen address (cluster.peer_addr)
    #[arg(long, value_name = "HOST:PORT")]
    peer_addr: Option<SocketAddr>,

    /// Members of a new cluster, NAME=PEER_URL,... (cluster.initial_cluster)
    #[arg(long, value_name = "NAME=URL,...")]
    initial_cluster: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut settings = Vec::new();
    let mut set = |key: &str, value: String| settings.push((key.to_owned(), value));
    if let Some(dir) = &cli.data_dir {
        set("storage.data_dir", dir.display().to_string());
    }
    if let Some(addr) = cli.client_addr {
        set("server.client_addr", addr.to_string());
    }
    if cli.cluster_mode || cli.bootstrap_cluster || cli.join.is_some() {
        set("cluster.enabled", "true".into());
    }
    if let Some(urls) = cli.join {
        set("cluster.join", urls);
    }
    if cli.bootstrap_cluster {
        set("cluster.join", String::new());
    }
    if let Some(addr) = cli.peer_addr {
        set("cluster.peer_addr", addr.to_string());
    }
    if let Some(members) = cli.initial_cluster {
        set("cluster.initial_cluster", members);
    }
    run_main::<ChainfireSections, _, _>(&COMPONENT, &cli.server, settings, chainfire::run).await
}
