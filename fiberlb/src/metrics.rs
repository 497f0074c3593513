//! fiberlb's metrics, registered under `photon_fiberlb_`, labelled by load balancer and backend.

use hyper::StatusCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    pub lb: String,
    pub backend: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub lb: String,
    /// Empty when fiberlb answered itself (no backend available, bad request).
    pub backend: String,
    /// The status class, `1xx` to `5xx`, as HAProxy counts them.
    pub code: String,
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn status_class(status: StatusCode) -> usize {
    usize::from(status.as_u16() / 100).clamp(1, 5) - 1
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BytesLabels {
    pub lb: String,
    pub backend: String,
    /// `in`: from clients to backends; `out`: from backends to clients.
    pub direction: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LbLabels {
    pub lb: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    pub lb: String,
    /// `no_backend`, `max_connections`, `tls_handshake`, `header_timeout`, `bad_request`,
    /// `body_too_large`.
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub lb: String,
    pub backend: String,
    pub result: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every family; cheap to clone (each is shared).
#[derive(Clone)]
pub struct Metrics {
    pub connections: Family<BackendLabels, Counter>,
    pub active_connections: Family<BackendLabels, Gauge>,
    pub connect_failures: Family<BackendLabels, Counter>,
    pub backend_up: Family<BackendLabels, Gauge>,
    pub requests: Family<RequestLabels, Counter>,
    pub bytes: Family<BytesLabels, Counter>,
    pub request_duration: Family<LbLabels, Histogram, fn() -> Histogram>,
    pub refused: Family<RefusedLabels, Counter>,
    pub health_checks: Family<CheckLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            connections: Family::default(),
            active_connections: Family::default(),
            connect_failures: Family::default(),
            backend_up: Family::default(),
            requests: Family::default(),
            bytes: Family::default(),
            request_duration: Family::new_with_constructor(duration_histogram),
            refused: Family::default(),
            health_checks: Family::default(),
        }
    }
}

impl Metrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "connections",
            "Connections (TCP) or flows (UDP) opened to a backend",
            self.connections.clone(),
        );
        registry.register(
            "active_connections",
            "Connections, flows and HTTP requests open to a backend now",
            self.active_connections.clone(),
        );
        registry.register(
            "connect_failures",
            "Failed attempts to connect to a backend",
            self.connect_failures.clone(),
        );
        registry.register(
            "backend_up",
            "1 when the backend gets new traffic (healthy, not ejected, not draining), else 0",
            self.backend_up.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by backend and status code",
            self.requests.clone(),
        );
        registry.register(
            "bytes",
            "Bytes proxied: in = client to backend, out = backend to client",
            self.bytes.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP requests from arrival to the response head",
            self.request_duration.clone(),
        );
        registry.register(
            "refused",
            "Connections or requests fiberlb could not serve, by reason",
            self.refused.clone(),
        );
        registry.register(
            "health_checks",
            "Active health checks run, by result",
            self.health_checks.clone(),
        );
    }

    /// A response fiberlb gave itself (rare: errors), counted under `backend=""`.
    pub fn local_response(&self, lb: &str, status: StatusCode) {
        self.requests
            .get_or_create(&RequestLabels {
                lb: lb.to_owned(),
                backend: String::new(),
                code: STATUS_CLASSES[status_class(status)].to_owned(),
            })
            .inc();
    }

    pub fn request_duration_for(&self, lb: &str) -> Histogram {
        self.request_duration
            .get_or_create(&LbLabels { lb: lb.to_owned() })
            .clone()
    }

    pub fn refused(&self, lb: &str, reason: &str) {
        self.refused
            .get_or_create(&RefusedLabels {
                lb: lb.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The handles one backend updates on its hot paths.
    pub fn for_backend(&self, lb: &str, backend: &str) -> BackendMetrics {
        let labels = BackendLabels {
            lb: lb.to_owned(),
            backend: backend.to_owned(),
        };
        let bytes = |direction: &str| {
            self.bytes
                .get_or_create(&BytesLabels {
                    lb: lb.to_owned(),
                    backend: backend.to_owned(),
                    direction: direction.to_owned(),
                })
                .clone()
        };
        let responses = STATUS_CLASSES.map(|code| {
            self.requests
                .get_or_create(&RequestLabels {
                    lb: lb.to_owned(),
                    backend: backend.to_owned(),
                    code: code.to_owned(),
                })
                .clone()
        });
        BackendMetrics {
            responses,
            connections: self.connections.get_or_create(&labels).clone(),
            active: self.active_connections.get_or_create(&labels).clone(),
            connect_failures: self.connect_failures.get_or_create(&labels).clone(),
            up: self.backend_up.get_or_create(&labels).clone(),
            bytes_in: bytes("in"),
            bytes_out: bytes("out"),
        }
    }

    /// Drops a removed backend's series (its in-flight work still counts on the handles).
    pub fn forget_backend(&self, lb: &str, backend: &str) {
        let labels = BackendLabels {
            lb: lb.to_owned(),
            backend: backend.to_owned(),
        };
        self.connections.remove(&labels);
        self.active_connections.remove(&labels);
        self.connect_failures.remove(&labels);
        self.backend_up.remove(&labels);
        for code in STATUS_CLASSES {
            self.requests.remove(&RequestLabels {
                lb: lb.to_owned(),
                backend: backend.to_owned(),
                code: code.to_owned(),
            });
        }
        for direction in ["in", "out"] {
            self.bytes.remove(&BytesLabels {
                lb: lb.to_owned(),
                backend: backend.to_owned(),
                direction: direction.to_owned(),
            });
        }
    }
}

#[derive(Clone, Debug)]
pub struct BackendMetrics {
    /// HTTP responses by status class (see [`RequestLabels::code`]).
    responses: [Counter; 5],
    pub connections: Counter,
    pub active: Gauge,
    pub connect_failures: Counter,
    pub up: Gauge,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
}

impl BackendMetrics {
    pub fn count_response(&self, status: StatusCode) {
        self.responses[status_class(status)].inc();
    }
}
