//! chainfire: an etcd v3-compatible key-value store on openraft and RocksDB.
//!
//! Clients speak etcd's gRPC API (`etcdctl`, the `etcd-client` crate, any etcd v3 client);
//! every write goes through Raft and is on disk before it is acknowledged.

pub mod cluster;
pub mod config;
pub mod lease;
pub mod metrics;
pub mod node;
pub mod raft;
pub mod server;
pub mod store;

use std::process::ExitCode;

use axum::Router;
use photon_runtime::Service;

use config::ChainfireSections;
use node::Node;

/// Starts the member and its servers on a launched service and runs until shutdown.
pub async fn run(service: Service<ChainfireSections>) -> Result<ExitCode, String> {
    let sections = &service.config.sections;
    let node = Node::start(&service.config.photon.component_id, sections)
        .await
        .map_err(|err| err.to_string())?;
    metrics::register(&service, node.clone());
    add_health_checks(&service, &node);

    let listener = server::bind(sections.server.client_addr).await?;
    let client_addr = listener
        .local_addr()
        .map_err(|err| format!("client listener: {err}"))?;
    let stop = service.shutdown.token();
    let serving = node.clone();
    service.shutdown.tracker().spawn(async move {
        if let Err(err) = server::serve(serving, listener, stop).await {
            tracing::error!("etcd API server on {client_addr} failed: {err}");
        }
    });
    service
        .shutdown
        .tracker()
        .spawn(node.clone().expire_leases(service.shutdown.token()));
    service
        .shutdown
        .tracker()
        .spawn(node.clone().watch_leadership(service.shutdown.token()));
    if sections.cluster.enabled {
        serve_peers(&service, &node).await?;
    }
    tracing::info!(
        "serving the etcd v3 API on http://{client_addr} (member {:x}, cluster {:x}, data in {})",
        node.identity.member_id,
        node.identity.cluster_id,
        sections.storage.data_dir.display()
    );
    service.serve_admin(Router::new()).await?;

    let code = service.run_until_shutdown().await;
    if let Err(err) = node.raft.shutdown().await {
        tracing::warn!("Raft did not stop cleanly: {err}");
    }
    Ok(code)
}

/// Serves the peer port and keeps this member's own record in the membership right.
async fn serve_peers(
    service: &Service<ChainfireSections>,
    node: &std::sync::Arc<Node>,
) -> Result<(), String> {
    let peer_addr = service.config.sections.cluster.peer_addr;
    let listener = cluster::service::bind(peer_addr).await?;
    let stop = service.shutdown.token();
    let serving = node.clone();
    service.shutdown.tracker().spawn(async move {
        if let Err(err) = cluster::service::serve(serving, listener, stop).await {
            tracing::error!("peer server on {peer_addr} failed: {err}");
        }
    });
    service
        .shutdown
        .tracker()
        .spawn(cluster::maintain_own_record(
            node.clone(),
            service.shutdown.token(),
        ));
    tracing::info!(
        "serving peers on {peer_addr} (advertised as {})",
        node.peer_url.as_deref().unwrap_or_default()
    );
    Ok(())
}

fn add_health_checks(service: &Service<ChainfireSections>, node: &std::sync::Arc<Node>) {
    let raft = node.raft.clone();
    service.health.add_check("raft", move || {
        let leader = raft.metrics().borrow().current_leader;
        async move {
            match leader {
                Some(_) => Ok(()),
                None => Err("no Raft leader".to_owned()),
            }
        }
    });
    let store = node.store.clone();
    service.health.add_check("storage", move || {
        let readable = store
            .db()
            .get::<i64>(store::db::CF_META, b"revision")
            .map(|_| ())
            .map_err(|err| format!("database unreadable: {err}"));
        async move { readable }
    });
}
