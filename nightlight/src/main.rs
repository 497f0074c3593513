use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use nightlight::config::NightlightSections;
use photon_runtime::{Component, ServerArgs, run_main};

// Less fragmentation than glibc's allocator with many small per-series allocations. Built
// without transparent huge pages (the workspace's `no_thp`): 2 MiB pages that are partly used
// added ~15% to the resident memory per series.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`, by its place in the `mi_option_e` enum of the mimalloc
/// version libmimalloc-sys bundles (the crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// That option's default in the same version; anything else means the number is not that option.
const MI_DEFAULT_PURGE_DELAY_MS: std::os::raw::c_long = 1000;

/// Makes mimalloc give freed pages back to the system when they are freed rather than a second
/// later, and then only once the freeing thread allocates again: idle worker threads otherwise
/// keep what a burst of remote writes used, ~15% of the resident memory per series. A value an
/// operator set through `MIMALLOC_PURGE_DELAY` (other than the default) is left alone. Must run
/// before any other thread starts (mimalloc's option calls are not thread-safe).
#[allow(unsafe_code)]
fn return_freed_memory_promptly() {
    // SAFETY: no other thread exists yet, and both calls only read or write an integer option.
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == MI_DEFAULT_PURGE_DELAY_MS {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

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

fn main() -> ExitCode {
    return_freed_memory_promptly();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(serve()),
        Err(err) => {
            eprintln!("nightlight: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> ExitCode {
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
