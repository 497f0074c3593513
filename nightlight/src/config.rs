//! nightlight's configuration: the spec's `[standalone.server]`, `[standalone.storage]`,
//! `[standalone.collection]`, `[[standalone.scrape_targets]]` and `[standalone.alerting]`, plus
//! `[standalone.query]` limits and `[standalone.rules]` (beside the common `[photon]`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use photon_config::{Invalid, PhotonSection, Sections};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NightlightSections {
    #[serde(default)]
    pub standalone: StandaloneSections,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandaloneSections {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub collection: CollectionSection,
    #[serde(default)]
    pub scrape_targets: Vec<ScrapeTarget>,
    #[serde(default)]
    pub query: QuerySection,
    #[serde(default)]
    pub rules: RulesSection,
    #[serde(default)]
    pub alerting: AlertingSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// The Prometheus HTTP API, remote write, `/health` and `/metrics`.
    #[serde(default = "default_http_addr")]
    pub http_addr: SocketAddr,
    /// The spec's gRPC API (not served by this build; accepted so the spec's example loads).
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: SocketAddr,
    /// Accept `POST /-/reload` (Prometheus's `--web.enable-lifecycle`); SIGHUP always works.
    #[serde(default)]
    pub enable_lifecycle: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            http_addr: default_http_addr(),
            grpc_addr: default_grpc_addr(),
            enable_lifecycle: false,
        }
    }
}

pub fn default_http_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 9090))
}

fn default_grpc_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 9091))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Only `local` exists standalone.
    #[serde(default = "default_storage_type", rename = "type")]
    pub kind: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Samples older than this are deleted, two-hour window by window.
    #[serde(default = "default_retention_days")]
    pub retention_days: u64,
    /// RocksDB's block cache for chunks and the index.
    #[serde(default = "default_cache_size_mb")]
    pub cache_size_mb: u64,
    /// A write-ahead log segment this large triggers a checkpoint of the open chunks.
    #[serde(default = "default_wal_segment_mb")]
    pub wal_segment_mb: u64,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            kind: default_storage_type(),
            data_dir: default_data_dir(),
            retention_days: default_retention_days(),
            cache_size_mb: default_cache_size_mb(),
            wal_segment_mb: default_wal_segment_mb(),
        }
    }
}

fn default_storage_type() -> String {
    "local".into()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/nightlight")
}

fn default_retention_days() -> u64 {
    15
}

fn default_cache_size_mb() -> u64 {
    128
}

fn default_wal_segment_mb() -> u64 {
    64
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionSection {
    #[serde(default = "default_scrape_interval_sec")]
    pub scrape_interval_sec: u64,
    #[serde(default = "default_scrape_timeout_sec")]
    pub scrape_timeout_sec: u64,
    /// A scrape with more samples fails (0 = no limit); a target may set its own.
    #[serde(default)]
    pub sample_limit: usize,
    /// A scrape with a sample carrying more labels fails (0 = no limit).
    #[serde(default)]
    pub label_limit: usize,
    /// Scrape nightlight's own `/metrics` as job `nightlight`.
    #[serde(default = "default_true")]
    pub self_scrape: bool,
}

impl Default for CollectionSection {
    fn default() -> Self {
        Self {
            scrape_interval_sec: default_scrape_interval_sec(),
            scrape_timeout_sec: default_scrape_timeout_sec(),
            sample_limit: 0,
            label_limit: 0,
            self_scrape: true,
        }
    }
}

fn default_scrape_interval_sec() -> u64 {
    15
}

fn default_scrape_timeout_sec() -> u64 {
    10
}

fn default_true() -> bool {
    true
}

/// One scrape job: `name` becomes the `job` label, each address an `instance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTarget {
    pub name: String,
    #[serde(default)]
    pub static_configs: Vec<String>,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// Added to every sample of these targets.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Keep the target's own `job`/`instance`/... labels on a clash instead of renaming them
    /// to `exported_<name>`.
    #[serde(default)]
    pub honor_labels: bool,
    /// Use timestamps the target sends instead of the scrape time.
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_interval_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_limit: Option<usize>,
}

fn default_scheme() -> String {
    "http".into()
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySection {
    /// The longest a query may run (a request's `timeout` may only shorten it).
    #[serde(default = "default_query_timeout_sec")]
    pub timeout_sec: u64,
    /// The most samples one query may load.
    #[serde(default = "default_max_samples")]
    pub max_samples: usize,
    /// How far back an instant selector looks for a sample.
    #[serde(default = "default_lookback_delta_sec")]
    pub lookback_delta_sec: u64,
}

impl Default for QuerySection {
    fn default() -> Self {
        Self {
            timeout_sec: default_query_timeout_sec(),
            max_samples: default_max_samples(),
            lookback_delta_sec: default_lookback_delta_sec(),
        }
    }
}

fn default_query_timeout_sec() -> u64 {
    120
}

fn default_max_samples() -> usize {
    50_000_000
}

fn default_lookback_delta_sec() -> u64 {
    300
}

/// Prometheus rule files and how their groups are evaluated.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSection {
    /// Paths or glob patterns (relative to the working directory), as Prometheus's
    /// `rule_files`.
    #[serde(default)]
    pub rule_files: Vec<String>,
    /// For groups without their own `interval`.
    #[serde(default = "default_evaluation_interval_sec")]
    pub evaluation_interval_sec: u64,
    /// An alert restored after a restart with less than this left of its `for` waits this
    /// long before firing; alerts with a shorter `for` start over.
    #[serde(default = "default_for_grace_period_sec")]
    pub for_grace_period_sec: u64,
    /// How long nightlight may be down and still restore alert state.
    #[serde(default = "default_for_outage_tolerance_sec")]
    pub for_outage_tolerance_sec: u64,
}

impl Default for RulesSection {
    fn default() -> Self {
        Self {
            rule_files: Vec::new(),
            evaluation_interval_sec: default_evaluation_interval_sec(),
            for_grace_period_sec: default_for_grace_period_sec(),
            for_outage_tolerance_sec: default_for_outage_tolerance_sec(),
        }
    }
}

fn default_evaluation_interval_sec() -> u64 {
    60
}

fn default_for_grace_period_sec() -> u64 {
    600
}

fn default_for_outage_tolerance_sec() -> u64 {
    3600
}

/// Where firing and resolved alerts go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingSection {
    /// Send notifications (alerts are evaluated and shown either way).
    #[serde(default)]
    pub enabled: bool,
    /// Receives Alertmanager's webhook payload, grouped as below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_webhook: Option<String>,
    /// A real Alertmanager (its base URL); alerts go to its `/api/v2/alerts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager_url: Option<String>,
    /// nightlight's address in alerts' links; unset: `http://` + `standalone.server.http_addr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
    /// Labels that make up a webhook group (`["..."]`: every label).
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    #[serde(default = "default_group_wait_sec")]
    pub group_wait_sec: u64,
    #[serde(default = "default_group_interval_sec")]
    pub group_interval_sec: u64,
    #[serde(default = "default_repeat_interval_sec")]
    pub repeat_interval_sec: u64,
    /// Firing alerts are sent again this often (their validity is four times it).
    #[serde(default = "default_resend_delay_sec")]
    pub resend_delay_sec: u64,
}

impl Default for AlertingSection {
    fn default() -> Self {
        Self {
            enabled: false,
            local_webhook: None,
            alertmanager_url: None,
            external_url: None,
            group_by: default_group_by(),
            group_wait_sec: default_group_wait_sec(),
            group_interval_sec: default_group_interval_sec(),
            repeat_interval_sec: default_repeat_interval_sec(),
            resend_delay_sec: default_resend_delay_sec(),
        }
    }
}

fn default_group_by() -> Vec<String> {
    vec!["alertname".into()]
}

fn default_group_wait_sec() -> u64 {
    30
}

fn default_group_interval_sec() -> u64 {
    300
}

fn default_repeat_interval_sec() -> u64 {
    4 * 3600
}

fn default_resend_delay_sec() -> u64 {
    60
}

impl Sections for NightlightSections {
    fn validate(&self, _photon: &PhotonSection) -> Vec<Invalid> {
        let mut problems = Vec::new();
        let standalone = &self.standalone;
        if standalone.storage.kind != "local" {
            problems.push(Invalid::new(
                "standalone.storage.type",
                format!(
                    "{:?} is not supported standalone; accepted: \"local\"",
                    standalone.storage.kind
                ),
            ));
        }
        if standalone.storage.data_dir.as_os_str().is_empty() {
            problems.push(Invalid::new("standalone.storage.data_dir", "is empty"));
        }
        if standalone.storage.wal_segment_mb == 0 {
            problems.push(Invalid::new(
                "standalone.storage.wal_segment_mb",
                "must be at least 1",
            ));
        }
        let collection = &standalone.collection;
        check_interval(
            &mut problems,
            "standalone.collection",
            collection.scrape_interval_sec,
            collection.scrape_timeout_sec,
        );
        let mut names = std::collections::BTreeSet::new();
        for (at, target) in standalone.scrape_targets.iter().enumerate() {
            let key = |field: &str| format!("standalone.scrape_targets[{at}].{field}");
            if target.name.is_empty() {
                problems.push(Invalid::new(key("name"), "is empty"));
            } else if !names.insert(target.name.as_str()) {
                problems.push(Invalid::new(
                    key("name"),
                    format!(
                        "{:?} is already the name of another scrape target",
                        target.name
                    ),
                ));
            }
            if !matches!(target.scheme.as_str(), "http" | "https") {
                problems.push(Invalid::new(
                    key("scheme"),
                    format!("{:?}: accepted \"http\" or \"https\"", target.scheme),
                ));
            }
            if !target.metrics_path.starts_with('/') {
                problems.push(Invalid::new(key("metrics_path"), "must start with \"/\""));
            }
            for (address_at, address) in target.static_configs.iter().enumerate() {
                if address.is_empty() || address.contains('/') || address.contains(' ') {
                    problems.push(Invalid::new(
                        key(&format!("static_configs[{address_at}]")),
                        format!("{address:?} is not HOST:PORT"),
                    ));
                }
            }
            for name in target.labels.keys() {
                if !crate::labels::is_label_name(name) || name.starts_with("__") {
                    problems.push(Invalid::new(
                        key(&format!("labels.{name}")),
                        "is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading \"__\")",
                    ));
                }
            }
            check_interval(
                &mut problems,
                &format!("standalone.scrape_targets[{at}]"),
                target
                    .scrape_interval_sec
                    .unwrap_or(collection.scrape_interval_sec),
                target
                    .scrape_timeout_sec
                    .unwrap_or(collection.scrape_timeout_sec),
            );
        }
        if standalone.query.timeout_sec == 0 {
            problems.push(Invalid::new(
                "standalone.query.timeout_sec",
                "must be at least 1",
            ));
        }
        if standalone.query.max_samples == 0 {
            problems.push(Invalid::new(
                "standalone.query.max_samples",
                "must be at least 1",
            ));
        }
        let rules = &standalone.rules;
        for (key, value) in [
            ("evaluation_interval_sec", rules.evaluation_interval_sec),
            ("for_outage_tolerance_sec", rules.for_outage_tolerance_sec),
        ] {
            if value == 0 {
                problems.push(Invalid::new(
                    format!("standalone.rules.{key}"),
                    "must be at least 1",
                ));
            }
        }
        // The files themselves, so --check-config checks them as promtool does.
        if let Err(errors) = crate::rules::load_all(&rules.rule_files) {
            for error in errors {
                problems.push(Invalid::new(
                    "standalone.rules.rule_files",
                    error.to_string(),
                ));
            }
        }
        let alerting = &standalone.alerting;
        for (key, url) in [
            ("local_webhook", &alerting.local_webhook),
            ("alertmanager_url", &alerting.alertmanager_url),
            ("external_url", &alerting.external_url),
        ] {
            if let Some(url) = url
                && !matches!(
                    reqwest::Url::parse(url)
                        .map(|u| u.scheme().to_owned())
                        .as_deref(),
                    Ok("http" | "https")
                )
            {
                problems.push(Invalid::new(
                    format!("standalone.alerting.{key}"),
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
        }
        for (key, value) in [
            ("group_interval_sec", alerting.group_interval_sec),
            ("repeat_interval_sec", alerting.repeat_interval_sec),
            ("resend_delay_sec", alerting.resend_delay_sec),
        ] {
            if value == 0 {
                problems.push(Invalid::new(
                    format!("standalone.alerting.{key}"),
                    "must be at least 1",
                ));
            }
        }
        for name in &alerting.group_by {
            if name != "..." && !crate::labels::is_label_name(name) {
                problems.push(Invalid::new(
                    "standalone.alerting.group_by",
                    format!("{name:?} is not a label name (or \"...\" for every label)"),
                ));
            }
        }
        problems
    }
}

fn check_interval(problems: &mut Vec<Invalid>, section: &str, interval: u64, timeout: u64) {
    if interval == 0 {
        problems.push(Invalid::new(
            format!("{section}.scrape_interval_sec"),
            "must be at least 1",
        ));
    }
    if timeout == 0 || timeout > interval {
        problems.push(Invalid::new(
            format!("{section}.scrape_timeout_sec"),
            format!("must be between 1 and the scrape interval ({interval} s)"),
        ));
    }
}
