//! flashdns: an authoritative DNS server for BIND-format zone files, on hickory's DNS types.
//!
//! Queries arrive over UDP (one SO_REUSEPORT socket per worker) and TCP; zones are swapped
//! whole on reload, so a reload never blocks or half-applies; a read-only REST API, `/health`
//! and `/metrics` share the admin port.

pub mod api;
pub mod catalog;
pub mod config;
pub mod metrics;
pub mod server;
pub mod source;
pub mod wire;
pub mod zone;
pub mod zonefile;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use photon_runtime::Service;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use catalog::Catalog;
use config::FlashdnsSections;
use metrics::DnsMetrics;
use server::{Dns, TcpLimits};
use source::FileZones;

/// Loads the zones, starts the DNS servers and the admin API, and runs until shutdown.
pub async fn run(mut service: Service<FlashdnsSections>) -> Result<ExitCode, String> {
    let standalone = service.config.sections.standalone.clone();
    let server_config = &standalone.server;
    // The REST API, /health and /metrics share admin_api_addr (validation refuses a different
    // photon.metrics.endpoint).
    service.config.photon.metrics.endpoint = Some(server_config.admin_api_addr);

    let catalog = Arc::new(Catalog::new(Box::new(FileZones::new(
        standalone.zones.clone(),
    ))));
    let metrics = DnsMetrics::default();
    let report = catalog.reload(true).await;
    metrics.reloaded(report.is_ok());
    service.register_metrics(|registry| metrics.register(registry, catalog.clone()));
    add_health_checks(&service, &catalog);

    let dns = Arc::new(Dns::new(
        catalog.clone(),
        metrics.clone(),
        standalone.features.axfr_allowed(),
        server_config.max_udp_payload,
    ));
    let workers = match server_config.udp_workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        workers => workers,
    };
    let privileged_hint = |port: u16| {
        if port < 1024 {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        } else {
            ""
        }
    };
    let udp_sockets = server::bind_udp(server_config.dns_addr, workers).map_err(|err| {
        format!(
            "cannot listen on {} (UDP, standalone.server.dns_addr): {err}{}",
            server_config.dns_addr,
            privileged_hint(server_config.dns_addr.port())
        )
    })?;
    let udp_addr = udp_sockets[0]
        .local_addr()
        .map_err(|err| format!("UDP socket: {err}"))?;
    let tcp = server::bind_tcp(server_config.dns_tcp_addr)
        .await
        .map_err(|err| {
            format!(
                "cannot listen on {} (TCP, standalone.server.dns_tcp_addr): {err}{}",
                server_config.dns_tcp_addr,
                privileged_hint(server_config.dns_tcp_addr.port())
            )
        })?;
    let tcp_addr = tcp
        .local_addr()
        .map_err(|err| format!("TCP listener: {err}"))?;

    let tracker = service.shutdown.tracker();
    for (index, socket) in udp_sockets.into_iter().enumerate() {
        let (dns, stop) = (dns.clone(), service.shutdown.token());
        let worker = std::thread::Builder::new()
            .name(format!("flashdns-udp-{index}"))
            .spawn(move || server::serve_udp(socket, dns, stop))
            .map_err(|err| format!("cannot start a UDP worker thread: {err}"))?;
        // Shutdown waits for the worker, which notices within a fraction of a second.
        tracker.spawn_blocking(move || {
            let _ = worker.join();
        });
    }
    let limits = TcpLimits {
        idle_timeout: Duration::from_secs(server_config.tcp_idle_timeout_sec),
        max_connections: server_config.max_tcp_connections,
    };
    tracker.spawn(server::serve_tcp(
        tcp,
        dns,
        limits,
        service.shutdown.token(),
        tracker.clone(),
    ));
    let interval = standalone
        .zones
        .auto_reload
        .then(|| Duration::from_secs(standalone.zones.reload_interval_sec));
    let hangups = signal(SignalKind::hangup()).map_err(|err| format!("SIGHUP handler: {err}"))?;
    tracker.spawn(reload_zones(
        catalog.clone(),
        metrics,
        interval,
        hangups,
        service.shutdown.token(),
    ));

    service.serve_admin(api::router(catalog.clone())).await?;
    let zones = catalog.zones();
    tracing::info!(
        "serving DNS on udp://{udp_addr} ({workers} sockets) and tcp://{tcp_addr}: {} zones, {} failed to load",
        zones.all().len(),
        report.failed.len()
    );
    drop(zones);
    Ok(service.run_until_shutdown().await)
}

/// Re-reads changed zone files every `interval` (when auto_reload is on) and every zone file
/// on SIGHUP.
async fn reload_zones(
    catalog: Arc<Catalog>,
    metrics: DnsMetrics,
    interval: Option<Duration>,
    mut hangups: tokio::signal::unix::Signal,
    stop: CancellationToken,
) {
    let mut timer = interval.map(|every| {
        let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer
    });
    loop {
        let tick = async {
            match &mut timer {
                Some(timer) => {
                    timer.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        let force = tokio::select! {
            () = stop.cancelled() => return,
            () = tick => false,
            _ = hangups.recv() => {
                tracing::info!("SIGHUP: reloading every zone file");
                true
            }
        };
        let report = catalog.reload(force).await;
        metrics.reloaded(report.is_ok());
        if force || !report.loaded.is_empty() || !report.removed.is_empty() || !report.is_ok() {
            tracing::info!(
                "zone reload: {} loaded, {} unchanged, {} failed, {} removed",
                report.loaded.len(),
                report.unchanged,
                report.failed.len(),
                report.removed.len()
            );
        }
    }
}

fn add_health_checks(service: &Service<FlashdnsSections>, catalog: &Arc<Catalog>) {
    let zones = catalog.clone();
    service.health.add_check("zones", move || {
        let current = zones.zones();
        let all = current.all();
        let missing: Vec<String> = all
            .iter()
            .filter(|served| served.zone.is_none())
            .map(|served| served.source.origin.to_string())
            .collect();
        let result = if all.is_empty() {
            Err("no zones configured or found in zone_dir".to_owned())
        } else if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "not loaded (answered SERVFAIL): {}",
                missing.join(", ")
            ))
        };
        async move { result }
    });
    let reloads = catalog.clone();
    service.health.add_check("last_reload", move || {
        let result = match reloads.last_reload() {
            None => Err("zones not loaded yet".to_owned()),
            Some((_, report)) => match (&report.source_error, report.failed.as_slice()) {
                (Some(err), _) => Err(err.clone()),
                (None, []) => Ok(()),
                (None, failed) => Err(format!(
                    "failed (the previous data of these zones is still served): {}",
                    failed.join("; ")
                )),
            },
        };
        async move { result }
    });
}
