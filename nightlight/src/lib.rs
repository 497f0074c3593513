//! nightlight: Prometheus-compatible metrics — scraping, a compressed time-series store with a
//! write-ahead log, and the PromQL query API.

pub mod api;
pub mod checkpoint;
pub mod chunk;
pub mod config;
pub mod exposition;
pub mod labels;
pub mod metrics;
pub mod promql;
pub mod remote_write;
pub mod scrape;
pub mod storage;
pub mod wal;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use photon_runtime::Service;
use tokio_util::sync::CancellationToken;

use config::NightlightSections;
use promql::{Engine, EngineOptions};
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
    let engine = Engine::new(
        storage.clone(),
        EngineOptions {
            lookback_delta_ms: standalone.query.lookback_delta_sec as i64 * 1000,
            max_samples: standalone.query.max_samples,
            timeout: Duration::from_secs(standalone.query.timeout_sec),
            ..EngineOptions::default()
        },
    );
    let api = Arc::new(api::Api {
        storage: storage.clone(),
        engine,
        scrapes: scrapes.clone(),
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
    let tracker = service.shutdown.tracker();
    scrapes.start(discovery, tracker.clone(), service.shutdown.token());
    tracker.spawn(maintain(
        storage,
        standalone.storage.retention_days,
        service.shutdown.token(),
    ));
    Ok(service.run_until_shutdown().await)
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
