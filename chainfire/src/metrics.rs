//! `photon_chainfire_*` metrics: request latencies and open watches, counted as they happen,
//! and the member's Raft and storage state, read at each scrape.

use std::sync::Arc;
use std::time::Instant;

use photon_runtime::Service;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::config::ChainfireSections;
use crate::node::Node;

type Labels = Vec<(&'static str, &'static str)>;

/// What the API records as it serves.
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    /// Open watches on all streams.
    pub watches: Gauge,
    /// Times this member has seen the leader change (or go missing).
    pub leader_changes: Counter,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        Self {
            watches: Gauge::default(),
            leader_changes: Counter::default(),
            // 100 µs to about 3 s.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 16))
            }),
        }
    }
}

impl ApiMetrics {
    /// Starts timing a `method` request; the time is recorded when the timer is dropped.
    pub fn time(&self, method: &'static str) -> RequestTimer {
        RequestTimer {
            histogram: self
                .latency
                .get_or_create(&vec![("method", method)])
                .clone(),
            started: Instant::now(),
        }
    }
}

pub struct RequestTimer {
    histogram: Histogram,
    started: Instant,
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}

pub fn register(service: &Service<ChainfireSections>, node: Arc<Node>) {
    let api = node.api_metrics.clone();
    service.register_metrics(|registry| {
        registry.register(
            "request_duration_seconds",
            "Time to serve etcd API requests, by method",
            api.latency,
        );
        registry.register("watches", "Open watches", api.watches);
        registry.register(
            "raft_leader_changes",
            "Leader changes this member has seen (a rising rate means an unstable cluster)",
            api.leader_changes,
        );
        registry.register_collector(Box::new(NodeCollector { node }));
    });
}

#[derive(Debug)]
struct NodeCollector {
    node: Arc<Node>,
}

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metrics = self.node.raft.metrics().borrow().clone();
        let progress = self.node.store.hub.progress();
        let membership = metrics.membership_config.membership();
        let gauges: [(&str, &str, f64); 12] = [
            (
                "raft_term",
                "Current Raft term",
                metrics.current_term as f64,
            ),
            (
                "raft_last_log_index",
                "Index of the last Raft log entry",
                metrics.last_log_index.unwrap_or(0) as f64,
            ),
            (
                "raft_applied_index",
                "Index of the last applied Raft log entry",
                metrics.last_applied.map_or(0, |id| id.index) as f64,
            ),
            (
                "raft_is_leader",
                "1 when this member is the Raft leader",
                f64::from(u8::from(
                    metrics.current_leader == Some(self.node.identity.member_id),
                )),
            ),
            (
                "raft_has_leader",
                "1 when this member knows a leader",
                f64::from(u8::from(metrics.current_leader.is_some())),
            ),
            (
                "raft_is_learner",
                "1 when this member is a learner (replicates but does not vote)",
                f64::from(u8::from(self.node.is_learner())),
            ),
            (
                "cluster_members",
                "Members in the cluster configuration, learners included",
                membership.nodes().count() as f64,
            ),
            (
                "raft_snapshots_installed",
                "Snapshots received from a leader and installed since start",
                self.node
                    .store
                    .snapshots_installed
                    .load(std::sync::atomic::Ordering::Relaxed) as f64,
            ),
            (
                "mvcc_revision",
                "Current store revision",
                progress.revision as f64,
            ),
            (
                "mvcc_compact_revision",
                "Revision at and below which history is compacted",
                progress.compact_revision as f64,
            ),
            (
                "db_size_bytes",
                "Size of the RocksDB files and memtables",
                self.node.store.db().size_bytes() as f64,
            ),
            (
                "leases",
                "Number of live leases",
                self.node.lessor.count() as f64,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}
