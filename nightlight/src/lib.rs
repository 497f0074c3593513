//! nightlight: Prometheus-compatible metrics — scraping, a compressed time-series store with a
//! write-ahead log, and the PromQL query API.

pub mod api;
pub mod checkpoint;
pub mod chunk;
pub mod config;
pub mod exposition;
pub mod head;
pub mod labels;
pub mod metrics;
pub mod promql;
pub mod remote_write;
pub mod rules;
pub mod scrape;
pub mod storage;
pub mod timefmt;
pub mod ui;
pub mod wal;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use photon_runtime::Service;
use tokio_util::sync::CancellationToken;

use config::NightlightSections;
use promql::{Engine, EngineOptions};
use rules::notify::{Grouping, Notifier, NotifierOptions};
use rules::{RuleManager, RuleOptions};
use scrape::{ScrapeManager, StaticDiscovery, TargetDiscovery};
use storage::{Storage, StorageOptions};

/// How often retention runs and open chunks are checkpointed (besides a full log segment).
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Opens the store, starts scraping and serves the API until shutdown.
pub async fn run(mut service: Service<NightlightSections>) -> Result<ExitCode, String> {
    let standalone = service.config.sections.standalone.clone();
    let http_addr = standalone.server.http_addr;
    // The API, /health and /metrics share the spec's http_addr.
    service.config.photon.metrics.endpoint = Some(http_addr);

    let options = StorageOptions {
        data_dir: standalone.storage.data_dir.clone(),
        cache_size_mb: standalone.storage.cache_size_mb,
        wal_segment_bytes: standalone.storage.wal_segment_mb << 20,
    };
    let storage = tokio::task::spawn_blocking(move || Storage::open(options))
        .await
        .map_err(|err| format!("opening the store failed: {err}"))?
        .map_err(|err| format!("{err} (standalone.storage.data_dir)"))?;

    let metrics = metrics::Metrics::default();
    {
        let storage = storage.clone();
        service.register_metrics(|registry| metrics.register(registry, storage));
    }
    let scrapes = Arc::new(ScrapeManager::new(storage.clone())?);
    let engine = Arc::new(Engine::new(
        storage.clone(),
        EngineOptions {
            lookback_delta_ms: standalone.query.lookback_delta_sec as i64 * 1000,
            max_samples: standalone.query.max_samples,
            timeout: Duration::from_secs(standalone.query.timeout_sec),
            ..EngineOptions::default()
        },
    ));
    let tracker = service.shutdown.tracker();
    let rules = start_rules(
        &standalone,
        engine.clone(),
        storage.clone(),
        metrics.clone(),
        &tracker,
        service.shutdown.token(),
    )
    .await?;
    let api = Arc::new(api::Api {
        lifecycle: standalone.server.enable_lifecycle,
        storage: storage.clone(),
        engine,
        scrapes: scrapes.clone(),
        rules: rules.clone(),
        metrics,
    });
    let local = service.serve_admin(api::router(api)).await?;
    tracing::info!(
        "Prometheus API on http://{local}/api/v1/query, remote write on http://{local}/api/v1/write"
    );

    {
        let storage = storage.clone();
        service.health.add_check("storage", move || {
            let storage = storage.clone();
            async move {
                match tokio::task::spawn_blocking(move || storage.probe()).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(err)) => Err(err.to_string()),
                    Err(err) => Err(err.to_string()),
                }
            }
        });
    }

    let self_address = standalone.collection.self_scrape.then(|| local.to_string());
    let discovery: Arc<dyn TargetDiscovery> = Arc::new(StaticDiscovery::new(
        &standalone.collection,
        &standalone.scrape_targets,
        self_address,
    ));
    scrapes.start(discovery, tracker.clone(), service.shutdown.token());
    tracker.spawn(maintain(
        storage,
        standalone.storage.retention_days,
        service.shutdown.token(),
    ));
    Ok(service.run_until_shutdown().await)
}

/// Loads the rule files (an error stops the start, with the file, line and reason), starts the
/// receivers' tasks and reloads the rules on SIGHUP.
async fn start_rules(
    standalone: &config::StandaloneSections,
    engine: Arc<Engine>,
    storage: Arc<Storage>,
    metrics: metrics::Metrics,
    tracker: &tokio_util::task::TaskTracker,
    stop: CancellationToken,
) -> Result<Arc<RuleManager>, String> {
    let alerting = &standalone.alerting;
    let external_url = alerting
        .external_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", standalone.server.http_addr));
    let receivers = alerting.local_webhook.is_some() || alerting.alertmanager_url.is_some();
    if receivers && !alerting.enabled {
        tracing::warn!(
            "standalone.alerting.enabled is false: alerts are evaluated but not sent to the configured receivers"
        );
    }
    let notifier = if alerting.enabled {
        Notifier::start(
            NotifierOptions {
                webhook: alerting.local_webhook.clone(),
                alertmanager: alerting.alertmanager_url.clone(),
                grouping: Grouping {
                    group_by: alerting.group_by.clone(),
                    group_wait: Duration::from_secs(alerting.group_wait_sec),
                    group_interval: Duration::from_secs(alerting.group_interval_sec),
                    repeat_interval: Duration::from_secs(alerting.repeat_interval_sec),
                },
                external_url: external_url.clone(),
            },
            metrics.clone(),
            tracker,
            stop.clone(),
        )?
    } else {
        None
    };
    let rules = &standalone.rules;
    let manager = RuleManager::new(
        engine,
        storage,
        RuleOptions {
            rule_files: rules.rule_files.clone(),
            evaluation_interval: Duration::from_secs(rules.evaluation_interval_sec),
            for_grace_period: Duration::from_secs(rules.for_grace_period_sec),
            outage_tolerance: Duration::from_secs(rules.for_outage_tolerance_sec),
            resend_delay: Duration::from_secs(alerting.resend_delay_sec),
            external_url,
        },
        notifier,
        metrics,
        tracker.clone(),
        stop.clone(),
    );
    manager
        .reload()
        .await
        .map_err(|errors| format!("standalone.rules.rule_files: {errors}"))?;
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|err| format!("SIGHUP handler: {err}"))?;
    let reloader = manager.clone();
    tracker.spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                hangup = hangups.recv() => if hangup.is_none() { return },
            }
            tracing::info!("SIGHUP: reloading the rule files");
            // A refused reload has logged its errors; the running rules stay.
            let _ = reloader.reload().await;
        }
    });
    Ok(manager)
}

/// Retention and checkpoints on a timer; a last checkpoint at shutdown keeps the next start's
/// log replay short.
async fn maintain(storage: Arc<Storage>, retention_days: u64, stop: CancellationToken) {
    let retention_ms = i64::try_from(retention_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tokio::time::sleep(MAINTENANCE_INTERVAL) => false,
        };
        let storage = storage.clone();
        let done = tokio::task::spawn_blocking(move || {
            if !stopping {
                storage.enforce_retention(scrape::now_ms().saturating_sub(retention_ms))?;
            }
            storage.checkpoint()
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::error!("storage maintenance failed (retried at the next interval): {err}")
            }
            Err(err) => tracing::error!("storage maintenance task failed: {err}"),
        }
        if stopping {
            return;
        }
    }
}
