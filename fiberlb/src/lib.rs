//! fiberlb: an L4/L7 load balancer in user space on tokio — TCP and UDP proxying, an HTTP/1.1
//! and HTTP/2 reverse proxy, TLS termination with SNI, six balancing methods, session
//! persistence, active and passive health checks, and a REST API that changes the running
//! configuration without dropping connections.

pub mod api;
pub mod balancer;
pub mod config;
pub mod controller;
pub mod health;
pub mod http;
pub mod http1;
pub mod lb;
pub mod metrics;
pub mod pipe;
pub mod source;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod workers;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use photon_runtime::Service;
use tokio::signal::unix::{SignalKind, signal};

use config::FiberlbSections;
use controller::Controller;
use metrics::Metrics;
use source::ConfigSource;

/// Starts the load balancers from the configuration, the REST API, `/health` and `/metrics`,
/// and runs until shutdown. SIGHUP reloads the definitions from `source`.
pub async fn run(
    mut service: Service<FiberlbSections>,
    source: Box<dyn ConfigSource>,
) -> Result<ExitCode, String> {
    let server = service.config.sections.standalone.server.clone();
    // /health and /metrics go with the REST API unless metrics_addr moves them.
    let separate_metrics = server
        .metrics_addr
        .filter(|addr| *addr != server.admin_api_addr);
    service.config.photon.metrics.endpoint =
        Some(separate_metrics.unwrap_or(server.admin_api_addr));

    let metrics = Metrics::default();
    service.register_metrics(|registry| metrics.register(registry));
    let tracker = service.shutdown.tracker();
    let workers = workers::Workers::start(server.workers)
        .map_err(|err| format!("cannot start the worker threads: {err}"))?;
    tracing::info!("data plane: {} worker thread(s)", workers.count());
    let controller = Arc::new(Controller::new(
        metrics,
        tracker.clone(),
        service.shutdown.token(),
        workers,
        source,
    ));
    controller
        .apply(service.config.sections.standalone.loadbalancers.clone())
        .await
        .map_err(|err| err.to_string())?;
    add_health_checks(&service, &controller);

    let api = api::router(controller.clone(), server.admin_token.clone());
    match separate_metrics {
        None => {
            service.serve_admin(api).await?;
        }
        Some(_) => {
            service.serve_admin(axum::Router::new()).await?;
            let listener = tokio::net::TcpListener::bind(server.admin_api_addr)
                .await
                .map_err(|err| {
                    format!(
                        "cannot listen on {} for the REST API (standalone.server.admin_api_addr): {err}",
                        server.admin_api_addr
                    )
                })?;
            let stop = service.shutdown.token();
            tracker.spawn(async move {
                let served = axum::serve(listener, api)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(err) = served {
                    tracing::error!("REST API server failed: {err}");
                }
            });
        }
    }
    tracing::info!(
        "REST API on http://{}/api/v1/loadbalancers{}",
        server.admin_api_addr,
        if server.admin_token.is_some() {
            " (changes need the admin token)"
        } else {
            ""
        }
    );

    let hangups = signal(SignalKind::hangup()).map_err(|err| format!("SIGHUP handler: {err}"))?;
    tracker.spawn(reload_on_hangup(
        controller.clone(),
        hangups,
        service.shutdown.token(),
    ));
    if server.cert_reload_interval_sec > 0 {
        tracker.spawn(watch_certificates(
            controller,
            Duration::from_secs(server.cert_reload_interval_sec),
            service.shutdown.token(),
        ));
    }
    Ok(service.run_until_shutdown().await)
}

fn add_health_checks(service: &Service<FiberlbSections>, controller: &Arc<Controller>) {
    let controller = controller.clone();
    service.health.add_check("backends", move || {
        let controller = controller.clone();
        async move {
            let mut without = Vec::new();
            for runtime in controller.runtimes().await {
                let max = runtime.config().limits.max_backend_connections;
                if !runtime.pool.backends().iter().any(|b| b.available(max)) {
                    without.push(runtime.name.clone());
                }
            }
            if without.is_empty() {
                Ok(())
            } else {
                Err(format!("no backend available in: {}", without.join(", ")))
            }
        }
    });
}

async fn reload_on_hangup(
    controller: Arc<Controller>,
    mut hangups: tokio::signal::unix::Signal,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            hangup = hangups.recv() => if hangup.is_none() { return },
        }
        let from = controller.source.describe();
        match controller.reload().await {
            Ok(()) => tracing::info!("SIGHUP: configuration reloaded from {from}"),
            Err(err) => tracing::error!(
                "SIGHUP: configuration from {from} refused, the running configuration stays: {err}"
            ),
        }
        controller.reload_certificates().await;
    }
}

async fn watch_certificates(
    controller: Arc<Controller>,
    every: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => controller.reload_certificates().await,
        }
    }
}
