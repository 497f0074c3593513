use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lightningstor::config::LightningstorSections;
use photon_runtime::{Component, ServerArgs, run_main};

const COMPONENT: Component = Component {
    name: "lightningstor",
    version: env!("CARGO_PKG_VERSION"),
    default_admin_addr: "127.0.0.1:9002",
};

/// lightningstor: an S3-compatible object store.
///
/// Point aws-cli, boto3, rclone or s3cmd at the S3 address (default http://127.0.0.1:9001).
#[derive(Debug, Parser)]
#[command(name = "lightningstor", version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,

    /// Object data directory (standalone.storage.data_dir)
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,

    /// RocksDB metadata directory (standalone.metadata.path)
    #[arg(long, value_name = "PATH")]
    metadata_dir: Option<PathBuf>,

    /// S3 API address (standalone.server.s3_addr)
    #[arg(long, value_name = "HOST:PORT")]
    s3_addr: Option<SocketAddr>,

    /// Admin gRPC address (standalone.server.grpc_addr)
    #[arg(long, value_name = "HOST:PORT")]
    grpc_addr: Option<SocketAddr>,

    /// /health and /metrics (standalone.server.admin_api_addr)
    #[arg(long, value_name = "HOST:PORT")]
    admin_api_addr: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut settings = Vec::new();
    let mut set = |key: &str, value: String| settings.push((key.to_owned(), value));
    if let Some(dir) = &cli.data_dir {
        set("standalone.storage.data_dir", dir.display().to_string());
    }
    if let Some(dir) = &cli.metadata_dir {
        set("standalone.metadata.path", dir.display().to_string());
    }
    if let Some(addr) = cli.s3_addr {
        set("standalone.server.s3_addr", addr.to_string());
    }
    if let Some(addr) = cli.grpc_addr {
        set("standalone.server.grpc_addr", addr.to_string());
    }
    if let Some(addr) = cli.admin_api_addr {
        set("standalone.server.admin_api_addr", addr.to_string());
    }
    run_main::<LightningstorSections, _, _>(&COMPONENT, &cli.server, settings, lightningstor::run)
        .await
}
