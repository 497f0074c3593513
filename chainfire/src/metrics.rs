//! `photon_chainfire_*` metrics, read from the member's state at each scrape.

use std::sync::Arc;

use photon_runtime::Service;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

use crate::config::ChainfireSections;
use crate::node::Node;

pub fn register(service: &Service<ChainfireSections>, node: Arc<Node>) {
    service.register_metrics(|registry| {
        registry.register_collector(Box::new(NodeCollector { node }));
    });
}

#[derive(Debug)]
struct NodeCollector {
    node: Arc<Node>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chainfire member {:x}", self.identity.member_id)
    }
}

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metrics = self.node.raft.metrics().borrow().clone();
        let progress = self.node.store.hub.progress();
        let gauges: [(&str, &str, f64); 9] = [
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
