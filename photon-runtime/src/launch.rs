//! From flags to a running service: load and check the configuration, answer `--check-config`
//! and `--print-config`, set up tracing, resolve the mode, then hand the component a [`Service`].

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use photon_config::mode::DEFAULT_PROBE_TIMEOUT;
use photon_config::{Loaded, ResolvedMode, Sections, Sources};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::{Health, ServerArgs, Shutdown, admin, init_tracing, metrics, wait_for_signal};

/// What a component tells the runtime about itself.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    /// e.g. `lightningstor`; also the metric prefix `photon_<name>_`.
    pub name: &'static str,
    pub version: &'static str,
    /// The admin HTTP address when `photon.metrics.endpoint` is not set.
    pub default_admin_addr: &'static str,
}

/// What `main` does next.
pub enum Launch<S> {
    /// Build the backends and servers on this service.
    Run(Box<Service<S>>),
    /// Exit now with this code (`--check-config`, `--print-config` or a refused configuration;
    /// the reason has been printed).
    Exit(ExitCode),
}

/// A configured component: its configuration, mode, health, metrics and shutdown.
pub struct Service<S> {
    pub component: Component,
    pub config: Loaded<S>,
    pub mode: ResolvedMode,
    pub health: Health,
    pub shutdown: Shutdown,
    registry: Arc<Mutex<Registry>>,
}

/// [`launch_with`] the standard sources: the file lookup, the process environment and `args`.
pub async fn launch<S: Sections>(component: &Component, args: &ServerArgs) -> Launch<S> {
    match args.sources(component.name) {
        Ok(sources) => launch_with(component, args, sources).await,
        Err(err) => refuse(component, &err),
    }
}

/// A server's `main` after its flags are parsed: [`launch`] with the component's own flags as
/// `settings` (dotted key, value; they outrank every other source), then `run` on the service.
/// A refused configuration or a `run` that cannot start is reported and exits 1.
pub async fn run_main<S, Run, Started>(
    component: &Component,
    args: &ServerArgs,
    settings: Vec<(String, String)>,
    run: Run,
) -> ExitCode
where
    S: Sections,
    Run: FnOnce(Service<S>) -> Started,
    Started: Future<Output = Result<ExitCode, String>>,
{
    let launched = match args.sources(component.name) {
        Ok(mut sources) => {
            sources.overrides.extend(settings);
            launch_with(component, args, sources).await
        }
        Err(err) => refuse(component, &err),
    };
    let service = match launched {
        Launch::Run(service) => *service,
        Launch::Exit(code) => return code,
    };
    match run(service).await {
        Ok(code) => code,
        Err(reason) => {
            tracing::error!("{} cannot start: {reason}", component.name);
            eprintln!("{}: cannot start: {reason}", component.name);
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration from `sources`; `args` decides whether to only check or print it.
pub async fn launch_with<S: Sections>(
    component: &Component,
    args: &ServerArgs,
    sources: Sources,
) -> Launch<S> {
    let config = match photon_config::load::<S>(&sources) {
        Ok(config) => config,
        Err(err) => return refuse(component, &err),
    };
    let file = match &config.file {
        Some(path) => format!("config file {}", path.display()),
        None => "no config file; defaults and environment only".to_owned(),
    };
    if args.check_config {
        println!("{}: configuration OK ({file})", component.name);
        return Launch::Exit(ExitCode::SUCCESS);
    }
    if args.print_config {
        print!("{}", config.to_redacted_toml());
        return Launch::Exit(ExitCode::SUCCESS);
    }

    init_tracing(&config.photon.logging);
    tracing::info!(
        component = component.name,
        version = component.version,
        "configuration loaded: {file}"
    );
    let mode = config.resolve_mode(DEFAULT_PROBE_TIMEOUT).await;
    tracing::info!(
        operation_mode = %mode.mode,
        mode_source = %mode.source,
        "operation mode {} ({})",
        mode.mode,
        mode.detail
    );

    let health = Health::new(
        component.name,
        &config.photon.component_id,
        component.version,
        mode.clone(),
    );
    let mut registry = Registry::default();
    metrics::register_common(
        &mut registry,
        component.name,
        component.version,
        mode.mode.as_str(),
    );
    let shutdown = Shutdown::new(Duration::from_secs(config.photon.shutdown_timeout_sec));
    let shutting_down = shutdown.clone();
    health.add_check("shutdown", move || {
        let triggered = shutting_down.is_triggered();
        async move {
            if triggered {
                Err("shutting down".to_owned())
            } else {
                Ok(())
            }
        }
    });

    Launch::Run(Box::new(Service {
        component: *component,
        config,
        mode,
        health,
        shutdown,
        registry: Arc::new(Mutex::new(registry)),
    }))
}

fn refuse<S>(component: &Component, err: &photon_config::Error) -> Launch<S> {
    eprintln!("{}: configuration refused: {err}", component.name);
    Launch::Exit(ExitCode::FAILURE)
}

impl<S: Sections> Service<S> {
    /// Registers the component's metrics; `register` gets the registry that prefixes every name
    /// with `photon_<component>_`.
    pub fn register_metrics(&self, register: impl FnOnce(&mut Registry)) {
        let mut root = self
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        register(root.sub_registry_with_prefix(format!("photon_{}", self.component.name)));
    }

    /// The admin address: `photon.metrics.endpoint`, else the component's default.
    pub fn admin_addr(&self) -> Result<SocketAddr, String> {
        match self.config.photon.metrics.endpoint {
            Some(addr) => Ok(addr),
            None => self.component.default_admin_addr.parse().map_err(|err| {
                format!(
                    "default admin address {:?} is invalid: {err}",
                    self.component.default_admin_addr
                )
            }),
        }
    }

    /// Starts the admin HTTP server (`/health`, `/metrics` and the routes in `extra`) and
    /// returns the address it listens on. It stops when shutdown starts.
    pub async fn serve_admin(&self, extra: Router) -> Result<SocketAddr, String> {
        let addr = self.admin_addr()?;
        let listener = TcpListener::bind(addr).await.map_err(|err| {
            format!("cannot listen on {addr} for the admin HTTP server (set photon.metrics.endpoint): {err}")
        })?;
        let local = listener
            .local_addr()
            .map_err(|err| format!("admin listener on {addr}: {err}"))?;
        let metrics = self
            .config
            .photon
            .metrics
            .enabled
            .then(|| self.registry.clone());
        let app = admin::router(self.health.clone(), metrics).merge(extra);
        let stop = self.shutdown.token();
        self.shutdown.tracker().spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(err) = served {
                tracing::error!("admin HTTP server on {local} failed: {err}");
            }
        });
        tracing::info!("admin HTTP on http://{local} (/health, /metrics)");
        Ok(local)
    }

    /// Waits for SIGINT/SIGTERM (or [`Shutdown::trigger`]), then drains in-flight work up to
    /// `photon.shutdown_timeout_sec` and returns the exit code.
    pub async fn run_until_shutdown(self) -> ExitCode {
        let token = self.shutdown.token();
        let cause = tokio::select! {
            signal = wait_for_signal() => match signal {
                Ok(name) => name.to_owned(),
                Err(err) => {
                    tracing::error!("cannot listen for signals ({err}); shutting down");
                    "signal setup failure".to_owned()
                }
            },
            _ = token.cancelled() => "a shutdown request".to_owned(),
        };
        let deadline = self.shutdown.deadline();
        tracing::info!(
            "shutting down on {cause}: no new work accepted; draining in-flight work for up to {deadline:?}"
        );
        match self.shutdown.drain().await {
            0 => tracing::info!("{} stopped cleanly", self.component.name),
            left => tracing::warn!(
                "{left} task(s) still running after {deadline:?}; exiting anyway (raise photon.shutdown_timeout_sec to wait longer)"
            ),
        }
        ExitCode::SUCCESS
    }
}
