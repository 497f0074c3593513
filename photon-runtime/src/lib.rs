//! What every PhotonCloud server shares: the standard flags, configuration and mode at start-up,
//! tracing, the admin HTTP server (`/health`, `/metrics`) and graceful shutdown.
//!
//! A component's `main` wires it like this:
//!
//! ```no_run
//! # use photon_runtime::{Component, Launch, ServerArgs};
//! # async fn run(args: ServerArgs) -> std::process::ExitCode {
//! const COMPONENT: Component = Component {
//!     name: "lightningstor",
//!     version: env!("CARGO_PKG_VERSION"),
//!     default_admin_addr: "127.0.0.1:9002",
//! };
//! let service = match photon_runtime::launch::<photon_config::NoSections>(&COMPONENT, &args).await {
//!     Launch::Run(service) => service,
//!     Launch::Exit(code) => return code,
//! };
//! // build backends, register metrics and health checks, start servers, then:
//! service.serve_admin(axum::Router::new()).await.expect("admin server");
//! service.run_until_shutdown().await
//! # }
//! ```

mod admin;
mod cli;
mod health;
mod launch;
mod logging;
mod metrics;
mod shutdown;

pub use cli::ServerArgs;
pub use health::Health;
pub use launch::{Component, Launch, Service, launch, launch_with, run_main};
pub use logging::init_tracing;
pub use shutdown::{Shutdown, wait_for_signal};
