//! Scraping: each target is fetched on its interval, parsed, labelled and stored with the
//! synthetic series (`up`, `scrape_duration_seconds`, ...) and staleness markers for series
//! that disappeared, as Prometheus does.
//!
//! Targets come from a [`TargetDiscovery`]: the static config now, the chainfire registry in
//! integrated mode.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chunk::stale_nan;
use crate::config::{CollectionSection, ScrapeTarget};
use crate::exposition::{self, Format, MetricMetadata};
use crate::labels::{Labels, LabelsBuilder, METRIC_NAME};
use crate::storage::Storage;
use crate::wal::LoggedSample;

/// One endpoint to scrape, with the labels its samples get.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub job: String,
    pub url: String,
    /// `job`, `instance` and the configured extra labels.
    pub labels: Labels,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub interval: Duration,
    pub timeout: Duration,
    pub sample_limit: usize,
    pub label_limit: usize,
}

impl Target {
    /// Identifies a target: the same endpoint may be scraped by several jobs.
    fn key(&self) -> String {
        format!("{} {}", self.job, self.url)
    }
}

/// Where scrape targets come from.
#[async_trait]
pub trait TargetDiscovery: Send + Sync {
    async fn targets(&self) -> Vec<Target>;
}

/// The targets of `[[standalone.scrape_targets]]`, plus nightlight itself when
/// `self_scrape` is on.
pub struct StaticDiscovery {
    targets: Vec<Target>,
}

impl StaticDiscovery {
    pub fn new(
        collection: &CollectionSection,
        configured: &[ScrapeTarget],
        self_address: Option<String>,
    ) -> Self {
        let mut targets = Vec::new();
        if let Some(address) = self_address {
            targets.push(target(collection, &self_job(), &address));
        }
        for job in configured {
            for address in &job.static_configs {
                targets.push(target(collection, job, address));
            }
        }
        Self { targets }
    }
}

fn self_job() -> ScrapeTarget {
    ScrapeTarget {
        name: "nightlight".into(),
        static_configs: Vec::new(),
        scheme: "http".into(),
        metrics_path: "/metrics".into(),
        labels: BTreeMap::new(),
        honor_labels: false,
        honor_timestamps: true,
        scrape_interval_sec: None,
        scrape_timeout_sec: None,
        sample_limit: None,
        label_limit: None,
    }
}

fn target(collection: &CollectionSection, job: &ScrapeTarget, address: &str) -> Target {
    let mut labels =
        Labels::from_pairs(job.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))).builder();
    labels.set("job", job.name.as_str());
    labels.set("instance", address);
    Target {
        job: job.name.clone(),
        url: format!("{}://{address}{}", job.scheme, job.metrics_path),
        labels: labels.build(),
        honor_labels: job.honor_labels,
        honor_timestamps: job.honor_timestamps,
        interval: Duration::from_secs(
            job.scrape_interval_sec
                .unwrap_or(collection.scrape_interval_sec),
        ),
        timeout: Duration::from_secs(
            job.scrape_timeout_sec
                .unwrap_or(collection.scrape_timeout_sec),
        ),
        sample_limit: job.sample_limit.unwrap_or(collection.sample_limit),
        label_limit: job.label_limit.unwrap_or(collection.label_limit),
    }
}

#[async_trait]
impl TargetDiscovery for StaticDiscovery {
    async fn targets(&self) -> Vec<Target> {
        self.targets.clone()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Unknown,
    Up,
    Down,
}

/// What `/api/v1/targets` reports about a target.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    pub target: Target,
    pub health: Health,
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_duration: Duration,
}

type Statuses = Arc<RwLock<BTreeMap<String, TargetStatus>>>;
type Metadata = Arc<RwLock<HashMap<String, MetricMetadata>>>;

/// Runs one scrape loop per discovered target.
pub struct ScrapeManager {
    storage: Arc<Storage>,
    client: reqwest::Client,
    statuses: Statuses,
    metadata: Metadata,
}

impl ScrapeManager {
    pub fn new(storage: Arc<Storage>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("nightlight/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("cannot build the scrape client: {err}"))?;
        Ok(Self {
            storage,
            client,
            statuses: Arc::default(),
            metadata: Arc::default(),
        })
    }

    pub fn statuses(&self) -> Vec<TargetStatus> {
        self.statuses
            .read()
            .expect("status lock")
            .values()
            .cloned()
            .collect()
    }

    /// Metric metadata from the latest scrapes, by family name.
    pub fn metadata(&self) -> HashMap<String, MetricMetadata> {
        self.metadata.read().expect("metadata lock").clone()
    }

    /// Starts a loop for every target and keeps the set in step with `discovery`.
    pub fn start(
        self: &Arc<Self>,
        discovery: Arc<dyn TargetDiscovery>,
        tracker: TaskTracker,
        stop: CancellationToken,
    ) {
        let manager = self.clone();
        let inner_tracker = tracker.clone();
        tracker.spawn(async move {
            let mut running: HashMap<String, (Target, CancellationToken)> = HashMap::new();
            loop {
                let wanted = discovery.targets().await;
                let wanted_keys: HashSet<String> = wanted.iter().map(Target::key).collect();
                running.retain(|key, (_, token)| {
                    let keep = wanted_keys.contains(key);
                    if !keep {
                        token.cancel();
                    }
                    keep
                });
                for target in wanted {
                    let key = target.key();
                    if running.get(&key).is_some_and(|(known, _)| *known == target) {
                        continue;
                    }
                    if let Some((_, token)) = running.remove(&key) {
                        token.cancel();
                    }
                    let token = stop.child_token();
                    running.insert(key, (target.clone(), token.clone()));
                    inner_tracker.spawn(manager.clone().scrape_loop(target, token));
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
            }
        });
    }

    async fn scrape_loop(self: Arc<Self>, target: Target, stop: CancellationToken) {
        self.statuses.write().expect("status lock").insert(
            target.key(),
            TargetStatus {
                target: target.clone(),
                health: Health::Unknown,
                last_error: String::new(),
                last_scrape: None,
                last_duration: Duration::ZERO,
            },
        );
        // Targets are spread over the interval, each always at the same offset.
        let mut hasher = std::hash::DefaultHasher::new();
        target.key().hash(&mut hasher);
        let offset =
            Duration::from_millis(hasher.finish() % target.interval.as_millis().max(1) as u64);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(offset) => {}
        }
        let mut ticks = tokio::time::interval(target.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut previous: HashSet<u64> = HashSet::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            previous = self.scrape_once(&target, previous).await;
        }
        // A target that goes away marks its series stale, `up` included.
        let now = now_ms();
        let mut ids: Vec<u64> = previous.into_iter().collect();
        if let Ok(synthetic) = self.storage.resolve(&synthetic_labels(&target)) {
            ids.extend(synthetic);
        }
        let stale: Vec<LoggedSample> = ids
            .into_iter()
            .map(|series| LoggedSample {
                series,
                t: now,
                v: stale_nan(),
            })
            .collect();
        let storage = self.storage.clone();
        let _ = tokio::task::spawn_blocking(move || storage.append(&stale)).await;
        self.statuses
            .write()
            .expect("status lock")
            .remove(&target.key());
    }

    /// One scrape; returns the ids of the series it stored (for the next one's staleness).
    async fn scrape_once(&self, target: &Target, previous: HashSet<u64>) -> HashSet<u64> {
        let started = Instant::now();
        let scrape_time = now_ms();
        let fetched = self.fetch(target).await;
        let storage = self.storage.clone();
        let target_owned = target.clone();
        let stored = tokio::task::spawn_blocking(move || {
            store_scrape(
                &storage,
                &target_owned,
                fetched,
                scrape_time,
                started,
                previous,
            )
        })
        .await
        .unwrap_or_else(|err| ScrapeResult {
            error: Some(format!("the scrape task failed: {err}")),
            series: HashSet::new(),
            metadata: Vec::new(),
        });
        let health = if stored.error.is_none() {
            Health::Up
        } else {
            Health::Down
        };
        if let Some(error) = &stored.error {
            tracing::warn!(
                "scrape of {} (job {}) failed: {error}",
                target.url,
                target.job
            );
        }
        if !stored.metadata.is_empty() {
            let mut metadata = self.metadata.write().expect("metadata lock");
            for entry in stored.metadata {
                metadata.insert(entry.family.clone(), entry);
            }
        }
        if let Some(status) = self
            .statuses
            .write()
            .expect("status lock")
            .get_mut(&target.key())
        {
            status.health = health;
            status.last_error = stored.error.unwrap_or_default();
            status.last_scrape = Some(SystemTime::now());
            status.last_duration = started.elapsed();
        }
        stored.series
    }

    async fn fetch(&self, target: &Target) -> Result<(String, Format), String> {
        let response = self
            .client
            .get(&target.url)
            .header(reqwest::header::ACCEPT, exposition::SCRAPE_ACCEPT)
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                target.timeout.as_secs_f64().to_string(),
            )
            .timeout(target.timeout)
            .send()
            .await
            .map_err(|err| describe_request_error(&err, target.timeout))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("server returned HTTP status {status}"));
        }
        let format = Format::from_content_type(
            response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok()),
        );
        let body = response
            .text()
            .await
            .map_err(|err| describe_request_error(&err, target.timeout))?;
        Ok((body, format))
    }
}

fn describe_request_error(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        format!(
            "context deadline exceeded (scrape_timeout_sec {} s)",
            timeout.as_secs()
        )
    } else {
        // reqwest's Display hides the cause ("error sending request"); name it.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }
}

struct ScrapeResult {
    error: Option<String>,
    series: HashSet<u64>,
    metadata: Vec<MetricMetadata>,
}

fn synthetic_labels(target: &Target) -> Vec<Labels> {
    [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ]
    .iter()
    .map(|name| {
        let mut builder = target.labels.builder();
        builder.set(METRIC_NAME, *name);
        builder.build()
    })
    .collect()
}

/// Parses, labels and stores one scrape with its synthetic series and staleness markers.
fn store_scrape(
    storage: &Storage,
    target: &Target,
    fetched: Result<(String, Format), String>,
    scrape_time: i64,
    started: Instant,
    previous: HashSet<u64>,
) -> ScrapeResult {
    let parsed = fetched.and_then(|(body, format)| {
        exposition::parse(&body, format).map_err(|err| format!("malformed exposition: {err}"))
    });
    let mut samples = Vec::new();
    let mut series = HashSet::new();
    let mut error = None;
    let mut metadata = Vec::new();
    let mut scraped_count = 0usize;
    let mut added = 0usize;
    match parsed.and_then(|scraped| label_samples(target, scraped)) {
        Ok((label_sets, values, families)) => {
            scraped_count = label_sets.len();
            metadata = families;
            match storage.resolve(&label_sets) {
                Ok(ids) => {
                    for (id, (t, v)) in ids.into_iter().zip(values) {
                        let explicit = t.is_some();
                        samples.push(LoggedSample {
                            series: id,
                            t: t.unwrap_or(scrape_time),
                            v,
                        });
                        // Series with their own timestamps get no staleness markers.
                        if !explicit && series.insert(id) && !previous.contains(&id) {
                            added += 1;
                        }
                    }
                }
                Err(err) => error = Some(err.to_string()),
            }
        }
        Err(err) => error = Some(err),
    }
    if error.is_some() {
        samples.clear();
        series.clear();
        scraped_count = 0;
    }
    for gone in previous.difference(&series) {
        samples.push(LoggedSample {
            series: *gone,
            t: scrape_time,
            v: stale_nan(),
        });
    }
    let up = if error.is_none() { 1.0 } else { 0.0 };
    let synthetic_values = [
        up,
        started.elapsed().as_secs_f64(),
        scraped_count as f64,
        scraped_count as f64,
        added as f64,
    ];
    match storage.resolve(&synthetic_labels(target)) {
        Ok(ids) => {
            samples.extend(
                ids.into_iter()
                    .zip(synthetic_values)
                    .map(|(series, v)| LoggedSample {
                        series,
                        t: scrape_time,
                        v,
                    }),
            )
        }
        Err(err) => error = Some(err.to_string()),
    }
    if let Err(err) = storage.append(&samples) {
        error = Some(err.to_string());
    }
    ScrapeResult {
        error,
        series,
        metadata,
    }
}

type Labelled = (Vec<Labels>, Vec<(Option<i64>, f64)>, Vec<MetricMetadata>);

/// Applies the target's labels (renaming clashing scraped ones to `exported_<name>` unless
/// `honor_labels`) and the sample and label limits.
fn label_samples(target: &Target, scraped: exposition::Scraped) -> Result<Labelled, String> {
    if target.sample_limit > 0 && scraped.samples.len() > target.sample_limit {
        return Err(format!(
            "sample limit exceeded: {} samples, limit {} (sample_limit)",
            scraped.samples.len(),
            target.sample_limit
        ));
    }
    let mut label_sets = Vec::with_capacity(scraped.samples.len());
    let mut values = Vec::with_capacity(scraped.samples.len());
    let mut seen = HashSet::new();
    for sample in scraped.samples {
        let labels = apply_target_labels(target, &sample.labels);
        if target.label_limit > 0 && labels.len() > target.label_limit {
            return Err(format!(
                "label limit exceeded: {labels} has {} labels, limit {} (label_limit)",
                labels.len(),
                target.label_limit
            ));
        }
        if !seen.insert(labels.clone()) {
            // Prometheus keeps the first and counts the rest as duplicates.
            continue;
        }
        label_sets.push(labels);
        values.push((
            sample.timestamp_ms.filter(|_| target.honor_timestamps),
            sample.value,
        ));
    }
    Ok((label_sets, values, scraped.metadata))
}

fn apply_target_labels(target: &Target, scraped: &Labels) -> Labels {
    let mut builder: LabelsBuilder = scraped.builder();
    for label in &target.labels {
        match scraped.get(&label.name) {
            Some(_) if target.honor_labels => {}
            Some(existing) => {
                let mut name = format!("exported_{}", label.name);
                while builder.get(&name).is_some() {
                    name = format!("exported_{name}");
                }
                builder.set(name, existing.to_owned());
                builder.set(label.name.clone(), label.value.clone());
            }
            None => {
                builder.set(label.name.clone(), label.value.clone());
            }
        }
    }
    builder.build()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(honor_labels: bool) -> Target {
        let collection = CollectionSection::default();
        let mut config = self_job();
        config.name = "api".into();
        config.honor_labels = honor_labels;
        config.labels.insert("env".into(), "prod".into());
        target(&collection, &config, "10.0.0.1:9100")
    }

    #[test]
    fn target_labels_win_unless_honor_labels() {
        let scraped = Labels::from_pairs([("__name__", "m"), ("job", "inner"), ("a", "1")]);
        assert_eq!(
            apply_target_labels(&job(false), &scraped).to_string(),
            r#"m{a="1", env="prod", exported_job="inner", instance="10.0.0.1:9100", job="api"}"#
        );
        assert_eq!(
            apply_target_labels(&job(true), &scraped).to_string(),
            r#"m{a="1", env="prod", instance="10.0.0.1:9100", job="inner"}"#
        );
    }

    #[test]
    fn limits_fail_the_scrape_with_the_reason() {
        let mut target = job(false);
        target.sample_limit = 1;
        let scraped = exposition::parse("a 1\nb 2\n", Format::PrometheusText).unwrap();
        let err = label_samples(&target, scraped).unwrap_err();
        assert!(
            err.contains("sample limit exceeded: 2 samples, limit 1"),
            "{err}"
        );
        target.sample_limit = 0;
        target.label_limit = 3;
        let scraped = exposition::parse("a{x=\"1\"} 1\n", Format::PrometheusText).unwrap();
        let err = label_samples(&target, scraped).unwrap_err();
        assert!(err.contains("label limit exceeded"), "{err}");
    }
}
