//! `photon_lightningstor_*` metrics: S3 requests by operation and status with their latency,
//! and the object bytes received and sent.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabel {
    operation: String,
}

#[derive(Debug, Clone)]
pub struct S3Metrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabel, Histogram, fn() -> Histogram>,
    received: Counter,
    sent: Counter,
}

impl Default for S3Metrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            // 100 µs to about 30 minutes: from a cached HEAD to a 5 GiB upload.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_1, 2.0, 25))
            }),
            received: Counter::default(),
            sent: Counter::default(),
        }
    }
}

impl S3Metrics {
    /// A request answered: `operation` is the S3 name (`PutObject`), or `unknown` when the
    /// request was refused before it was routed (bad signature, bad path).
    pub fn answered(&self, operation: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                operation: operation.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&OperationLabel {
                operation: operation.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Object bytes stored from a request body.
    pub fn received(&self, bytes: u64) {
        self.received.inc_by(bytes);
    }

    /// Object bytes sent in a response body.
    pub fn sent(&self, bytes: u64) {
        self.sent.inc_by(bytes);
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "s3_requests",
            "S3 requests answered, by operation and HTTP status",
            self.requests.clone(),
        );
        registry.register(
            "s3_request_duration_seconds",
            "Time from a request's arrival to its response head, by operation",
            self.latency.clone(),
        );
        registry.register(
            "received_bytes",
            "Object bytes received and stored",
            self.received.clone(),
        );
        registry.register(
            "sent_bytes",
            "Object bytes sent in responses",
            self.sent.clone(),
        );
    }
}
