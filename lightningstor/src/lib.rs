//! lightningstor: an S3-compatible object store. Object bytes live in files under `data_dir`
//! (named by random ids, never by keys), metadata in RocksDB behind [`meta::MetadataStore`];
//! s3s speaks S3 (routing, XML, SigV4, aws-chunked bodies) and the operations are ours.

pub mod admin;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod integrity;
pub mod meta;
pub mod metrics;
pub mod s3;
pub mod server;
pub mod store;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lightningstor_client::admin::ServerInfoResponse;
use lightningstor_client::admin::admin_server::AdminServer;
use photon_runtime::Service;
use s3s::config::{S3Config, StaticConfigProvider};
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use auth::{Access, KeyRing, KeySource};
use blobs::BlobStore;
use config::{LightningstorSections, StandaloneSections};
use meta::rocks::RocksMetadata;
use meta::{AccessKeyRecord, Batch, MetadataStore, Op};
use metrics::S3Metrics;
use store::{Store, now_ms};

/// The file a first start without any configured key writes its generated key pair to.
pub const INITIAL_CREDENTIALS_FILE: &str = "initial-credentials";

/// Opens the stores, starts the S3, gRPC and admin servers, and runs until shutdown.
pub async fn run(mut service: Service<LightningstorSections>) -> Result<ExitCode, String> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    let standalone = service.config.sections.standalone.clone();
    service.config.photon.metrics.endpoint = Some(standalone.server.admin_api_addr);

    let meta: Arc<dyn MetadataStore> = Arc::new(
        RocksMetadata::open(
            &standalone.metadata.path,
            standalone.metadata.cache_size_mb,
            standalone.storage.fsync,
        )
        .map_err(|err| format!("{err} (standalone.metadata.path)"))?,
    );
    let data_dir = &standalone.storage.data_dir;
    let blobs = BlobStore::open(data_dir, standalone.storage.fsync)
        .await
        .map_err(|err| {
            format!(
                "cannot prepare {} (standalone.storage.data_dir): {err}",
                data_dir.display()
            )
        })?;
    let keys = load_keys(&standalone, &meta).await?;

    let metrics = S3Metrics::default();
    service.register_metrics(|registry| metrics.register(registry));
    let owner_id = match service.config.photon.component_id.as_str() {
        "" => "lightningstor".to_owned(),
        id => id.to_owned(),
    };
    let store = Arc::new(Store::new(
        meta.clone(),
        blobs,
        metrics.clone(),
        standalone.storage.inline_threshold_bytes,
        standalone.server.region.clone(),
        owner_id,
    ));
    add_health_checks(&service, &store);

    let s3_service = {
        let mut builder = S3ServiceBuilder::new(s3::S3Api(store.clone()));
        builder.set_auth(keys.clone());
        builder.set_access(Access::new(standalone.auth.public_read_buckets.clone()));
        let mut s3_config = S3Config::default();
        s3_config.presigned_url_max_skew_time_secs = standalone.auth.max_clock_skew_sec;
        builder.set_config(Arc::new(StaticConfigProvider::new(Arc::new(s3_config))));
        if let Some(domain) = &standalone.server.domain {
            let host = s3s::host::SingleDomain::new(domain)
                .map_err(|err| format!("standalone.server.domain {domain:?}: {err}"))?;
            builder.set_host(host);
        }
        builder.build()
    };
    let s3_addr = standalone.server.s3_addr;
    let s3_listener = TcpListener::bind(s3_addr)
        .await
        .map_err(|err| format!("cannot listen on {s3_addr} (standalone.server.s3_addr): {err}"))?;
    let s3_local = s3_listener
        .local_addr()
        .map_err(|err| format!("S3 listener: {err}"))?;
    let grpc_addr = standalone.server.grpc_addr;
    let grpc_listener = TcpListener::bind(grpc_addr).await.map_err(|err| {
        format!("cannot listen on {grpc_addr} (standalone.server.grpc_addr): {err}")
    })?;
    let grpc_local = grpc_listener
        .local_addr()
        .map_err(|err| format!("gRPC listener: {err}"))?;

    let tracker = service.shutdown.tracker();
    tracker.spawn(server::serve_s3(
        s3_listener,
        s3_service,
        metrics,
        service.shutdown.token(),
    ));
    let admin_api = admin::AdminApi {
        store: store.clone(),
        keys: keys.clone(),
        info: ServerInfoResponse {
            version: service.component.version.to_owned(),
            component_id: service.config.photon.component_id.clone(),
            s3_endpoint: format!("http://{s3_local}"),
            region: standalone.server.region.clone(),
            data_dir: data_dir.display().to_string(),
            ..Default::default()
        },
        public_read: standalone.auth.public_read_buckets.clone(),
        started,
    };
    let stop = service.shutdown.token();
    tracker.spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc_listener);
        let served = tonic::transport::Server::builder()
            .add_service(AdminServer::new(admin_api))
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
            .await;
        if let Err(err) = served {
            tracing::error!("admin gRPC server on {grpc_local} failed: {err}");
        }
    });
    tracker.spawn(sweep_orphans(store.clone(), started_at));
    if standalone.multipart.abandoned_after_sec > 0 {
        tracker.spawn(abort_abandoned_uploads(
            store.clone(),
            Duration::from_secs(standalone.multipart.abandoned_after_sec),
            Duration::from_secs(standalone.multipart.cleanup_interval_sec),
            service.shutdown.token(),
        ));
    }

    let admin_local = service.serve_admin(axum::Router::new()).await?;
    tracing::info!(
        "serving S3 on http://{s3_local} (region {}), admin gRPC on http://{grpc_local}, /health and /metrics on http://{admin_local}",
        standalone.server.region
    );
    Ok(service.run_until_shutdown().await)
}

/// Keys from the config and the credentials file. With none there and none created through
/// the API, a first key pair is generated, stored like an API key and written to
/// `data_dir/initial-credentials` (mode 0600) so that a default start is usable and safe.
async fn load_keys(
    standalone: &StandaloneSections,
    meta: &Arc<dyn MetadataStore>,
) -> Result<KeyRing, String> {
    let auth = &standalone.auth;
    let mut fixed = Vec::new();
    if let (Some(access), Some(secret)) = (&auth.access_key, &auth.secret_key) {
        fixed.push((access.clone(), secret.clone(), KeySource::Config));
    }
    if let Some(path) = &auth.credentials_file {
        for (access, secret) in auth::read_credentials_file(path)? {
            fixed.push((access, secret, KeySource::CredentialsFile));
        }
    }
    let keys = KeyRing::new(fixed, meta.clone());
    let api_keys = meta
        .list_access_keys()
        .await
        .map_err(|err| err.to_string())?;
    if keys.is_empty() && api_keys.is_empty() {
        let (access_key, secret_key) = auth::generate_key_pair();
        let path = standalone.storage.data_dir.join(INITIAL_CREDENTIALS_FILE);
        write_private(&path, &format!("{access_key}:{secret_key}\n"))
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        let mut batch = Batch::default();
        batch.push(Op::PutAccessKey(
            access_key.clone(),
            AccessKeyRecord {
                secret_key,
                description: "generated at first start".to_owned(),
                created_ms: now_ms(),
            },
        ));
        meta.commit(batch).await.map_err(|err| err.to_string())?;
        tracing::warn!(
            "no access keys configured: generated access key {access_key}; its secret is in {} (ACCESS_KEY:SECRET_KEY). Set standalone.auth or create keys with the admin API for production",
            path.display()
        );
    }
    Ok(keys)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

fn add_health_checks(service: &Service<LightningstorSections>, store: &Arc<Store>) {
    let storage = store.clone();
    service.health.add_check("storage", move || {
        let storage = storage.clone();
        async move {
            storage
                .blobs
                .probe()
                .await
                .map_err(|err| format!("data_dir is not writable: {err}"))
        }
    });
    let metadata = store.clone();
    service.health.add_check("metadata", move || {
        let metadata = metadata.clone();
        async move {
            metadata
                .meta
                .get_bucket("")
                .await
                .map(|_| ())
                .map_err(|err| err.to_string())
        }
    });
}

async fn sweep_orphans(store: Arc<Store>, started: SystemTime) {
    match store
        .blobs
        .sweep_orphans(store.meta.as_ref(), started)
        .await
    {
        Ok(0) => tracing::debug!("orphan sweep: every data file is referenced"),
        Ok(deleted) => tracing::info!(
            "orphan sweep: deleted {deleted} data files left by an interrupted write or delete"
        ),
        Err(err) => tracing::warn!("orphan sweep failed (retried at next start): {err}"),
    }
}

async fn abort_abandoned_uploads(
    store: Arc<Store>,
    max_age: Duration,
    every: Duration,
    stop: CancellationToken,
) {
    let max_age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = timer.tick() => {}
        }
        match store.abort_abandoned_uploads(max_age_ms).await {
            Ok(0) => {}
            Ok(aborted) => tracing::info!(
                "aborted {aborted} multipart uploads older than {}s (standalone.multipart.abandoned_after_sec)",
                max_age.as_secs()
            ),
            Err(err) => tracing::warn!("abandoned-upload cleanup failed: {err:?}"),
        }
    }
}
