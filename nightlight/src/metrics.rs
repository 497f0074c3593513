//! nightlight's own metrics, registered under `photon_nightlight_`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::storage::Storage;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// `query`, `query_range`, `series`.
    pub endpoint: String,
    /// `success` or `error`.
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleGroupLabels {
    /// `file;group`, as Prometheus labels its rule metrics.
    pub rule_group: String,
    /// `success` or `error`.
    pub result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiverLabels {
    /// `local_webhook`, `alertmanager`, or `queue` (before either).
    pub receiver: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    pub receiver: String,
    /// `success` or `error`.
    pub result: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

#[derive(Clone)]
pub struct Metrics {
    pub queries: Family<QueryLabels, Counter>,
    pub query_duration: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    pub remote_write_samples: Counter,
    pub rule_evaluations: Family<RuleGroupLabels, Counter>,
    pub notifications: Family<NotificationLabels, Counter>,
    pub notifications_dropped: Family<ReceiverLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            queries: Family::default(),
            query_duration: Family::new_with_constructor(duration_histogram),
            remote_write_samples: Counter::default(),
            rule_evaluations: Family::default(),
            notifications: Family::default(),
            notifications_dropped: Family::default(),
        }
    }
}

impl Metrics {
    pub fn register(&self, registry: &mut Registry, storage: Arc<Storage>) {
        registry.register(
            "queries",
            "Queries answered, by endpoint and result",
            self.queries.clone(),
        );
        registry.register(
            "query_duration_seconds",
            "Time to evaluate a query",
            self.query_duration.clone(),
        );
        registry.register(
            "remote_write_samples",
            "Samples stored from remote-write requests",
            self.remote_write_samples.clone(),
        );
        registry.register(
            "rule_evaluations",
            "Rule evaluations, by rule group (file;name) and result",
            self.rule_evaluations.clone(),
        );
        registry.register(
            "notifications",
            "Alert notification requests, by receiver and result",
            self.notifications.clone(),
        );
        registry.register(
            "notifications_dropped",
            "Alerts or groups dropped because a receiver fell too far behind",
            self.notifications_dropped.clone(),
        );
        registry.register_collector(Box::new(StorageCollector { storage }));
    }

    pub fn rule_evaluated(&self, group: &str, ok: bool) {
        self.rule_evaluations
            .get_or_create(&RuleGroupLabels {
                rule_group: group.to_owned(),
                result: outcome(ok),
            })
            .inc();
    }

    pub fn notification_sent(&self, receiver: &str, ok: bool) {
        self.notifications
            .get_or_create(&NotificationLabels {
                receiver: receiver.to_owned(),
                result: outcome(ok),
            })
            .inc();
    }

    pub fn notifications_dropped(&self, receiver: &str, count: usize) {
        if count > 0 {
            self.notifications_dropped
                .get_or_create(&ReceiverLabels {
                    receiver: receiver.to_owned(),
                })
                .inc_by(count as u64);
        }
    }

    pub fn observe_query(&self, endpoint: &str, ok: bool, took: Duration) {
        self.queries
            .get_or_create(&QueryLabels {
                endpoint: endpoint.to_owned(),
                result: outcome(ok),
            })
            .inc();
        self.query_duration
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_owned(),
            })
            .observe(took.as_secs_f64());
    }
}

fn outcome(ok: bool) -> String {
    if ok { "success" } else { "error" }.to_owned()
}

/// The store's counters, read at scrape time.
struct StorageCollector {
    storage: Arc<Storage>,
}

impl std::fmt::Debug for StorageCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageCollector")
    }
}

impl Collector for StorageCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = &self.storage.stats;
        let gauge = ConstGauge::new(self.storage.series_count() as i64);
        gauge.encode(encoder.encode_descriptor(
            "head_series",
            "Series in the head (every retained series)",
            None,
            gauge.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "samples_appended",
                "Samples stored",
                &stats.samples_appended,
            ),
            (
                "samples_out_of_order",
                "Samples refused as not newer than their series' newest",
                &stats.samples_out_of_order,
            ),
            (
                "chunks_written",
                "Closed chunks written to the database",
                &stats.chunks_written,
            ),
            ("series_created", "Series created", &stats.series_created),
            (
                "series_removed",
                "Series removed by retention",
                &stats.series_removed,
            ),
            (
                "checkpoints",
                "Write-ahead log checkpoints",
                &stats.checkpoints,
            ),
        ] {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
