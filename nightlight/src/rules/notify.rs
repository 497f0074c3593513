//! Alert notifications, to two kinds of receiver:
//!
//! - `local_webhook`: nightlight groups alerts as Alertmanager does (`group_by`, `group_wait`,
//!   `group_interval`, `repeat_interval`) and posts Alertmanager's webhook payload (version 4),
//!   so a receiver written for Alertmanager works unchanged.
//! - `alertmanager_url`: the alerts themselves, to a real Alertmanager's `/api/v2/alerts`, as
//!   Prometheus sends them (it groups and routes).
//!
//! Evaluation never waits for a receiver: notices go through a bounded channel to a task per
//! receiver, which keeps only the newest version of each group (or alert) and retries with
//! backoff while the receiver is down.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::labels::Labels;
use crate::metrics::Metrics;
use crate::scrape::now_ms;
use crate::timefmt::rfc3339;

/// Notices waiting for the receivers' tasks; beyond this, evaluation drops them (and says so)
/// rather than wait.
const CHANNEL_CAPACITY: usize = 1024;
/// The most alerts (Alertmanager) or groups (webhook) kept waiting for a receiver.
const OUTBOX_CAPACITY: usize = 10_000;
/// Alerts per request to Alertmanager, as Prometheus batches them.
const ALERTMANAGER_BATCH: usize = 64;
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LONGEST_RETRY: Duration = Duration::from_secs(30);

/// An alert as it is sent: firing until `ends_at`, resolved from then on.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub generator_url: String,
}

impl Notice {
    fn fingerprint(&self) -> String {
        fingerprint(&self.labels)
    }

    fn is_resolved(&self, now: i64) -> bool {
        self.ends_at <= now
    }
}

/// Alertmanager's fingerprint of a label set: FNV-1a over the sorted names and values.
pub fn fingerprint(labels: &Labels) -> String {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for label in labels.iter() {
        add(label.name.as_bytes());
        add(&[0xff]);
        add(label.value.as_bytes());
        add(&[0xff]);
    }
    format!("{hash:016x}")
}

/// `{"name": "value", ...}`
pub fn pairs_json(pairs: &[(String, String)]) -> Json {
    Json::Object(
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), Json::String(value.clone())))
            .collect(),
    )
}

/// Alertmanager's grouping and timing.
#[derive(Debug, Clone)]
pub struct Grouping {
    pub group_by: Vec<String>,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct NotifierOptions {
    pub webhook: Option<String>,
    pub alertmanager: Option<String>,
    pub grouping: Grouping,
    pub external_url: String,
}

/// What a group's last notification said.
#[derive(Debug, Clone)]
struct Sent {
    firing: BTreeSet<String>,
    resolved: BTreeSet<String>,
    at: i64,
}

#[derive(Debug)]
struct Group {
    labels: Labels,
    alerts: BTreeMap<String, Notice>,
    next_flush: i64,
    sent: Option<Sent>,
}

/// Alertmanager's dispatcher for one receiver, as plain state: notices go in, webhook
/// payloads come out when their group is due.
#[derive(Debug)]
pub struct Dispatcher {
    grouping: Grouping,
    receiver: String,
    external_url: String,
    groups: BTreeMap<String, Group>,
}

impl Dispatcher {
    pub fn new(grouping: Grouping, receiver: &str, external_url: &str) -> Self {
        Self {
            grouping,
            receiver: receiver.to_owned(),
            external_url: external_url.to_owned(),
            groups: BTreeMap::new(),
        }
    }

    pub fn ingest(&mut self, notices: Vec<Notice>, now: i64) {
        for notice in notices {
            let labels = if self.grouping.group_by.iter().any(|name| name == "...") {
                notice.labels.clone()
            } else {
                notice.labels.project(&self.grouping.group_by, true)
            };
            let key = format!("{{}}:{labels}");
            let group = self.groups.entry(key).or_insert_with(|| Group {
                labels,
                alerts: BTreeMap::new(),
                next_flush: now + self.grouping.group_wait.as_millis() as i64,
                sent: None,
            });
            group.alerts.insert(notice.fingerprint(), notice);
        }
    }

    /// When the next group is due.
    pub fn next_flush(&self) -> Option<i64> {
        self.groups.values().map(|group| group.next_flush).min()
    }

    /// The payloads of the groups due at `now` that have news, by group key.
    pub fn flush(&mut self, now: i64) -> Vec<(String, Json)> {
        let mut payloads = Vec::new();
        let interval = self.grouping.group_interval.as_millis() as i64;
        let repeat = self.grouping.repeat_interval.as_millis() as i64;
        for (key, group) in &mut self.groups {
            if group.next_flush > now {
                continue;
            }
            group.next_flush = now + interval;
            let (firing, resolved): (BTreeSet<String>, BTreeSet<String>) = {
                let (resolved, firing): (Vec<_>, Vec<_>) = group
                    .alerts
                    .iter()
                    .partition(|(_, notice)| notice.is_resolved(now));
                (
                    firing.into_iter().map(|(fp, _)| fp.clone()).collect(),
                    resolved.into_iter().map(|(fp, _)| fp.clone()).collect(),
                )
            };
            // Alertmanager's DedupStage.
            let news = match &group.sent {
                None => !firing.is_empty(),
                Some(sent) if !firing.is_subset(&sent.firing) => true,
                Some(sent) if firing.is_empty() => {
                    !resolved.is_empty() && !resolved.is_subset(&sent.resolved)
                }
                Some(sent) if !resolved.is_subset(&sent.resolved) => true,
                Some(sent) => sent.at + repeat <= now,
            };
            if news {
                let payload = group_payload(&self.receiver, &self.external_url, key, group, now);
                payloads.push((key.clone(), payload));
                group.sent = Some(Sent {
                    firing,
                    resolved: resolved.clone(),
                    at: now,
                });
            }
            for fingerprint in &resolved {
                group.alerts.remove(fingerprint);
            }
        }
        self.groups.retain(|_, group| !group.alerts.is_empty());
        payloads
    }
}

/// Alertmanager's webhook body (version 4) for one group.
fn group_payload(receiver: &str, external_url: &str, key: &str, group: &Group, now: i64) -> Json {
    let alerts: Vec<&Notice> = group.alerts.values().collect();
    let firing = alerts.iter().any(|notice| !notice.is_resolved(now));
    let common_labels = common(alerts.iter().map(|notice| {
        notice
            .labels
            .iter()
            .map(|label| (label.name.to_string(), label.value.to_string()))
            .collect()
    }));
    let common_annotations = common(alerts.iter().map(|notice| notice.annotations.clone()));
    let mut alerts: Vec<Json> = alerts
        .iter()
        .map(|notice| {
            let resolved = notice.is_resolved(now);
            json!({
                "status": if resolved { "resolved" } else { "firing" },
                "labels": notice.labels,
                "annotations": pairs_json(&notice.annotations),
                "startsAt": rfc3339(Some(notice.starts_at)),
                // Alertmanager hides an end that has not come yet.
                "endsAt": rfc3339(resolved.then_some(notice.ends_at)),
                "generatorURL": notice.generator_url,
                "fingerprint": notice.fingerprint(),
            })
        })
        .collect();
    alerts.sort_by_key(|alert| alert["labels"].to_string());
    json!({
        "receiver": receiver,
        "status": if firing { "firing" } else { "resolved" },
        "alerts": alerts,
        "groupLabels": group.labels,
        "commonLabels": pairs_json(&common_labels),
        "commonAnnotations": pairs_json(&common_annotations),
        "externalURL": external_url,
        "version": "4",
        "groupKey": key,
        "truncatedAlerts": 0,
    })
}

/// The pairs every set has.
fn common(mut sets: impl Iterator<Item = Vec<(String, String)>>) -> Vec<(String, String)> {
    let Some(mut shared) = sets.next() else {
        return Vec::new();
    };
    for set in sets {
        shared.retain(|pair| set.contains(pair));
    }
    shared
}

/// Items waiting for a receiver, oldest first; putting never blocks the producer.
///
/// Alertmanager keeps the newest state of each alert, so its outbox `coalesces`: a newer
/// version of an alert replaces the waiting one. A webhook receiver must see every
/// notification of a group in order (a resolution is only in the one that announced it), so
/// its outbox keeps them all.
struct Outbox {
    coalesce: bool,
    items: Mutex<OutboxItems>,
    wake: Notify,
}

#[derive(Default)]
struct OutboxItems {
    /// (key, version, body), oldest first.
    pending: VecDeque<(String, u64, Json)>,
    version: u64,
}

impl Outbox {
    fn new(coalesce: bool) -> Self {
        Self {
            coalesce,
            items: Mutex::new(OutboxItems::default()),
            wake: Notify::new(),
        }
    }

    /// Returns how many of the oldest items were dropped to stay within capacity.
    fn put(&self, entries: impl IntoIterator<Item = (String, Json)>) -> usize {
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, body) in entries {
            if self.coalesce {
                items.pending.retain(|(waiting, _, _)| *waiting != key);
            }
            items.version += 1;
            let version = items.version;
            items.pending.push_back((key, version, body));
        }
        let dropped = items.pending.len().saturating_sub(OUTBOX_CAPACITY);
        items.pending.drain(..dropped);
        drop(items);
        self.wake.notify_one();
        dropped
    }

    /// The oldest `most` items.
    fn take(&self, most: usize) -> Vec<(String, u64, Json)> {
        let items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        items.pending.iter().take(most).cloned().collect()
    }

    /// Forgets what was delivered (or given up on), unless a newer version replaced it.
    fn done(&self, batch: &[(String, u64, Json)]) {
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        items.pending.retain(|(key, version, _)| {
            !batch
                .iter()
                .any(|(sent, sent_version, _)| sent == key && sent_version == version)
        });
    }
}

/// Hands alerts to the receivers' tasks.
#[derive(Clone)]
pub struct Notifier {
    notices: mpsc::Sender<Vec<Notice>>,
    metrics: Metrics,
}

impl Notifier {
    /// Starts a task per configured receiver; `None` when there is none.
    pub fn start(
        options: NotifierOptions,
        metrics: Metrics,
        tracker: &TaskTracker,
        stop: CancellationToken,
    ) -> Result<Option<Notifier>, String> {
        if options.webhook.is_none() && options.alertmanager.is_none() {
            return Ok(None);
        }
        let client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .user_agent(concat!("nightlight/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("notification client: {err}"))?;
        let (sender, mut receiver) = mpsc::channel::<Vec<Notice>>(CHANNEL_CAPACITY);
        let webhook = options.webhook.map(|url| {
            let outbox = Arc::new(Outbox::new(false));
            let delivery = Delivery {
                receiver: "local_webhook",
                url,
                outbox: outbox.clone(),
                client: client.clone(),
                metrics: metrics.clone(),
                batch: 1,
            };
            tracker.spawn(delivery.run(stop.clone()));
            (
                Dispatcher::new(
                    options.grouping.clone(),
                    "local_webhook",
                    &options.external_url,
                ),
                outbox,
            )
        });
        let alertmanager = options.alertmanager.map(|url| {
            let outbox = Arc::new(Outbox::new(true));
            let delivery = Delivery {
                receiver: "alertmanager",
                url: format!("{}/api/v2/alerts", url.trim_end_matches('/')),
                outbox: outbox.clone(),
                client,
                metrics: metrics.clone(),
                batch: ALERTMANAGER_BATCH,
            };
            tracker.spawn(delivery.run(stop.clone()));
            outbox
        });
        let task_metrics = metrics.clone();
        tracker.spawn(async move {
            let mut webhook = webhook;
            loop {
                let wait = webhook
                    .as_ref()
                    .and_then(|(dispatcher, _)| dispatcher.next_flush())
                    .map_or(Duration::from_secs(3600), |at| {
                        Duration::from_millis((at - now_ms()).clamp(0, 3_600_000) as u64)
                    });
                let notices = tokio::select! {
                    _ = stop.cancelled() => return,
                    notices = receiver.recv() => match notices {
                        Some(notices) => notices,
                        None => return,
                    },
                    _ = tokio::time::sleep(wait) => Vec::new(),
                };
                let now = now_ms();
                if let Some(outbox) = &alertmanager {
                    let alerts = notices.iter().map(|notice| {
                        let alert = json!({
                            "labels": notice.labels,
                            "annotations": pairs_json(&notice.annotations),
                            "startsAt": rfc3339(Some(notice.starts_at)),
                            "endsAt": rfc3339(Some(notice.ends_at)),
                            "generatorURL": notice.generator_url,
                        });
                        (notice.fingerprint(), alert)
                    });
                    task_metrics.notifications_dropped("alertmanager", outbox.put(alerts));
                }
                if let Some((dispatcher, outbox)) = &mut webhook {
                    dispatcher.ingest(notices, now);
                    let due = dispatcher.flush(now);
                    task_metrics.notifications_dropped("local_webhook", outbox.put(due));
                }
            }
        });
        Ok(Some(Notifier {
            notices: sender,
            metrics,
        }))
    }

    /// Queues alerts for the receivers without waiting.
    pub fn send(&self, notices: Vec<Notice>) {
        if notices.is_empty() {
            return;
        }
        let count = notices.len();
        if self.notices.try_send(notices).is_err() {
            tracing::warn!("dropped {count} alert notifications: the receivers are too far behind");
            self.metrics.notifications_dropped("queue", count);
        }
    }
}

/// Sends one receiver's outbox, retrying with backoff while it fails.
struct Delivery {
    receiver: &'static str,
    url: String,
    outbox: Arc<Outbox>,
    client: reqwest::Client,
    metrics: Metrics,
    /// Items per request: 1 posts an item as the body, more post an array.
    batch: usize,
}

impl Delivery {
    async fn run(self, stop: CancellationToken) {
        let mut retry = FIRST_RETRY;
        let mut failing = false;
        loop {
            let batch = self.outbox.take(self.batch);
            if batch.is_empty() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = self.outbox.wake.notified() => continue,
                }
            }
            let body = if self.batch == 1 {
                batch[0].2.clone()
            } else {
                Json::Array(batch.iter().map(|(_, _, body)| body.clone()).collect())
            };
            match self.post(&body).await {
                Ok(()) => {
                    self.outbox.done(&batch);
                    self.metrics.notification_sent(self.receiver, true);
                    if failing {
                        tracing::info!(
                            "{} at {} accepts notifications again",
                            self.receiver,
                            self.url
                        );
                    }
                    failing = false;
                    retry = FIRST_RETRY;
                }
                Err(Failure::Refused(err)) => {
                    // Sending it again would be refused again, and hold up everything after.
                    self.outbox.done(&batch);
                    self.metrics.notification_sent(self.receiver, false);
                    self.metrics
                        .notifications_dropped(self.receiver, batch.len());
                    tracing::error!(
                        "{} at {} refused {} notifications, which are dropped: {err}",
                        self.receiver,
                        self.url,
                        batch.len()
                    );
                }
                Err(Failure::Retry(err)) => {
                    self.metrics.notification_sent(self.receiver, false);
                    if !failing {
                        tracing::warn!(
                            "sending alerts to {} at {} failed, retrying with backoff: {err}",
                            self.receiver,
                            self.url
                        );
                    }
                    failing = true;
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(LONGEST_RETRY);
                }
            }
        }
    }

    async fn post(&self, body: &Json) -> Result<(), Failure> {
        let response = self
            .client
            .post(&self.url)
            .json(body)
            .send()
            .await
            .map_err(|err| Failure::Retry(err.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let reason = format!("HTTP {status}: {}", text.trim());
        // 4xx is the receiver saying no to this request (but 408 and 429 mean "later").
        let permanent = status.is_client_error()
            && status != reqwest::StatusCode::REQUEST_TIMEOUT
            && status != reqwest::StatusCode::TOO_MANY_REQUESTS;
        Err(if permanent {
            Failure::Refused(reason)
        } else {
            Failure::Retry(reason)
        })
    }
}

enum Failure {
    /// Worth sending again: the receiver is down, overloaded or failed.
    Retry(String),
    /// The receiver refused the request itself.
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grouping() -> Grouping {
        Grouping {
            group_by: vec!["alertname".into()],
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(3600),
        }
    }

    fn notice(instance: &str, ends_at: i64) -> Notice {
        Notice {
            labels: Labels::from_pairs([("alertname", "Down"), ("instance", instance)]),
            annotations: vec![("summary".into(), format!("{instance} is down"))],
            starts_at: 0,
            ends_at,
            generator_url: "http://nightlight/graph".into(),
        }
    }

    fn statuses(payload: &Json) -> Vec<String> {
        payload["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .map(|alert| {
                format!(
                    "{}:{}",
                    alert["labels"]["instance"].as_str().unwrap_or(""),
                    alert["status"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    #[test]
    fn groups_wait_then_notify_changes_and_resolutions() {
        let mut dispatcher = Dispatcher::new(grouping(), "local_webhook", "http://n");
        dispatcher.ingest(vec![notice("a", 1_000_000)], 0);
        assert!(dispatcher.flush(29_999).is_empty(), "group_wait");
        let sent = dispatcher.flush(30_000);
        assert_eq!(sent.len(), 1);
        let (key, payload) = &sent[0];
        assert_eq!(key, "{}:{alertname=\"Down\"}");
        assert_eq!(payload["version"], "4");
        assert_eq!(payload["status"], "firing");
        assert_eq!(payload["groupLabels"], json!({"alertname": "Down"}));
        assert_eq!(
            payload["commonLabels"],
            json!({"alertname": "Down", "instance": "a"})
        );
        assert_eq!(payload["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        assert_eq!(
            payload["alerts"][0]["fingerprint"],
            fingerprint(&notice("a", 0).labels)
        );
        // Nothing new at the next interval.
        dispatcher.ingest(vec![notice("a", 1_000_000)], 100_000);
        assert!(dispatcher.flush(330_000).is_empty());
        // A second alert joins at the interval after it.
        dispatcher.ingest(vec![notice("b", 1_000_000)], 400_000);
        let sent = dispatcher.flush(630_000);
        assert_eq!(statuses(&sent[0].1), ["a:firing", "b:firing"]);
        assert_eq!(sent[0].1["commonLabels"], json!({"alertname": "Down"}));
        // One resolves: sent with its end, then forgotten.
        dispatcher.ingest(vec![notice("a", 700_000)], 700_000);
        let sent = dispatcher.flush(930_000);
        assert_eq!(statuses(&sent[0].1), ["a:resolved", "b:firing"]);
        assert_eq!(sent[0].1["alerts"][0]["endsAt"], rfc3339(Some(700_000)));
        // The other's validity runs out: resolved, and the group is gone.
        let sent = dispatcher.flush(1_230_000);
        assert_eq!(statuses(&sent[0].1), ["b:resolved"]);
        assert_eq!(sent[0].1["status"], "resolved");
        assert_eq!(dispatcher.next_flush(), None);
    }

    #[test]
    fn firing_groups_are_repeated_after_the_repeat_interval() {
        let mut dispatcher = Dispatcher::new(grouping(), "local_webhook", "http://n");
        dispatcher.ingest(vec![notice("a", i64::MAX)], 0);
        assert_eq!(dispatcher.flush(30_000).len(), 1);
        assert!(dispatcher.flush(330_000).is_empty());
        assert_eq!(dispatcher.flush(3_630_000).len(), 1);
    }

    #[test]
    fn fingerprints_match_alertmanager() {
        // model.LabelSet{}.Fingerprint() is FNV-1a's offset basis.
        assert_eq!(fingerprint(&Labels::default()), "cbf29ce484222325");
    }

    #[test]
    fn a_coalescing_outbox_keeps_the_newest_version() {
        let outbox = Outbox::new(true);
        outbox.put([("g".to_owned(), json!(1))]);
        let batch = outbox.take(10);
        outbox.put([("g".to_owned(), json!(2))]);
        outbox.done(&batch);
        let left = outbox.take(10);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].2, json!(2));
        outbox.done(&left);
        assert!(outbox.take(10).is_empty());
    }

    #[test]
    fn a_webhook_outbox_keeps_every_notification_in_order() {
        let outbox = Outbox::new(false);
        outbox.put([("g".to_owned(), json!("a resolved"))]);
        outbox.put([("g".to_owned(), json!("b firing"))]);
        let first = outbox.take(1);
        assert_eq!(first[0].2, json!("a resolved"));
        outbox.done(&first);
        assert_eq!(outbox.take(1)[0].2, json!("b firing"));
    }
}
