//! Recording and alerting rules from Prometheus rule files, evaluated group by group on their
//! interval. Recording rules store their result as new series; alerting rules keep alert state
//! (written as `ALERTS` and `ALERTS_FOR_STATE`, and restored from them after a restart) and
//! hand firing and resolved alerts to the [`notify::Notifier`].
//!
//! A reload (SIGHUP, `POST /-/reload`) checks every file first: any error keeps the running
//! rules, a clean set replaces them, carrying over the state of rules that did not change.

pub mod alert;
pub mod file;
pub mod notify;
pub mod template;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use promql_parser::label::{MatchOp, Matcher};
use rustc_hash::FxHashSet;
use serde_json::{Value as Json, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chunk::{is_stale_nan, stale_nan};
use crate::labels::{Labels, METRIC_NAME};
use crate::metrics::Metrics;
use crate::promql::{Engine, QueryError, Value};
use crate::scrape::now_ms;
use crate::storage::Storage;
use crate::timefmt::rfc3339;
use crate::wal::LoggedSample;
use alert::{AlertSet, AlertState, Firing};
use file::{GroupSpec, RuleFileError, RuleKind, RuleSpec};
use notify::{Notice, Notifier, pairs_json};
use template::{Expander, TemplateData, TemplateQuery};

#[derive(Debug, Clone)]
pub struct RuleOptions {
    /// Paths or glob patterns of rule files.
    pub rule_files: Vec<String>,
    /// For groups without their own `interval`.
    pub evaluation_interval: Duration,
    /// An alert restored after a restart with less than this left of its `for` waits this
    /// long before it fires (Prometheus's `--rules.alert.for-grace-period`).
    pub for_grace_period: Duration,
    /// How far back a restart looks for `ALERTS_FOR_STATE` (`--rules.alert.for-outage-tolerance`).
    pub outage_tolerance: Duration,
    /// Firing alerts are sent again this often (`--rules.alert.resend-delay`).
    pub resend_delay: Duration,
    /// nightlight's address as receivers should link to it (alerts' `generatorURL`).
    pub external_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Health {
    #[default]
    Unknown,
    Ok,
    Err,
}

impl Health {
    fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct RuleState {
    health: Health,
    last_error: Option<String>,
    last_evaluation: Option<i64>,
    evaluation_time: Duration,
    alerts: AlertSet,
    /// Series the rule's last successful evaluation wrote: those missing from its next one get
    /// a stale marker (a failed evaluation ends nothing, as in Prometheus).
    written: FxHashSet<Labels>,
    /// Alert state has been restored from the store (after the rule's first evaluation).
    restored: bool,
}

#[derive(Debug, Default)]
struct GroupState {
    rules: Vec<RuleState>,
    last_evaluation: Option<i64>,
    evaluation_time: Duration,
    /// Replaced by a reload: evaluations stop.
    retired: bool,
}

struct Group {
    spec: GroupSpec,
    interval: Duration,
    /// Held briefly (queries run without it), so the API never waits for an evaluation.
    state: Mutex<GroupState>,
    /// Held for a whole evaluation, so a reload takes the state between two, never in one.
    evaluating: Mutex<()>,
    stop: CancellationToken,
}

impl Group {
    /// The same group of the same file (what a reload carries state over to).
    fn is(&self, spec: &GroupSpec) -> bool {
        self.spec.file == spec.file && self.spec.name == spec.name
    }

    /// Prometheus's `rule_group` label: `file;name`.
    fn label(&self) -> String {
        format!("{};{}", self.spec.file.display(), self.spec.name)
    }
}

/// A lock that a panic elsewhere (in an evaluation, say) does not make unusable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct RuleManager {
    engine: Arc<Engine>,
    storage: Arc<Storage>,
    options: RuleOptions,
    notifier: Option<Notifier>,
    metrics: Metrics,
    groups: Mutex<Vec<Arc<Group>>>,
    tracker: TaskTracker,
    stop: CancellationToken,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

/// A series a rule writes at one evaluation.
type Output = Vec<(Labels, f64)>;

impl RuleManager {
    pub fn new(
        engine: Arc<Engine>,
        storage: Arc<Storage>,
        options: RuleOptions,
        notifier: Option<Notifier>,
        metrics: Metrics,
        tracker: TaskTracker,
        stop: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            engine,
            storage,
            options,
            notifier,
            metrics,
            groups: Mutex::new(Vec::new()),
            tracker,
            stop,
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// Loads the rule files and (re)starts their groups; on any error the running rules stay
    /// and the errors are returned, one per line.
    pub async fn reload(self: &Arc<Self>) -> Result<usize, String> {
        let _one_at_a_time = self.reloading.lock().await;
        let patterns = self.options.rule_files.clone();
        let loaded = tokio::task::spawn_blocking(move || load_all(&patterns))
            .await
            .map_err(|err| format!("loading rule files failed: {err}"))?;
        let specs = match loaded {
            Ok(specs) => specs,
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                for line in &text {
                    tracing::error!("rule file refused, the running rules stay: {line}");
                }
                return Err(text.join("\n"));
            }
        };
        let manager = self.clone();
        let started = tokio::task::spawn_blocking(move || manager.replace_groups(specs))
            .await
            .map_err(|err| format!("starting rule groups failed: {err}"))?;
        let rules: usize = started.iter().map(|group| group.spec.rules.len()).sum();
        tracing::info!(
            "loaded {} rule groups with {rules} rules from {} rule_files patterns",
            started.len(),
            self.options.rule_files.len()
        );
        for group in started {
            let manager = self.clone();
            self.tracker
                .spawn(async move { manager.run_group(group).await });
        }
        Ok(rules)
    }

    /// Swaps in groups for `specs`, carrying over the state of rules that kept their name and
    /// labels (as Prometheus does, also when the expression changed); returns the new groups
    /// for the caller to start. Series of rules that are gone get stale markers.
    fn replace_groups(&self, specs: Vec<GroupSpec>) -> Vec<Arc<Group>> {
        // Readers keep seeing the old groups while evaluations in flight finish.
        let mut old: Vec<Arc<Group>> = lock(&self.groups).clone();
        let mut ended: Vec<Labels> = Vec::new();
        let mut fresh = Vec::new();
        for spec in specs {
            let interval = spec.interval.unwrap_or(self.options.evaluation_interval);
            let mut states = vec![RuleState::default(); spec.rules.len()];
            if let Some(at) = old.iter().position(|group| group.is(&spec)) {
                let previous = old.swap_remove(at);
                let mut before = retire(&previous);
                let mut taken = vec![false; before.rules.len()];
                for (rule, state) in spec.rules.iter().zip(states.iter_mut()) {
                    let same = previous.spec.rules.iter().enumerate().position(|(i, r)| {
                        !taken[i] && r.name == rule.name && r.labels == rule.labels
                    });
                    if let Some(i) = same {
                        taken[i] = true;
                        *state = std::mem::take(&mut before.rules[i]);
                    }
                }
                for (state, taken) in before.rules.iter_mut().zip(taken) {
                    if !taken {
                        ended.extend(state.written.drain());
                    }
                }
            }
            fresh.push(Arc::new(Group {
                spec,
                interval,
                state: Mutex::new(GroupState {
                    rules: states,
                    ..GroupState::default()
                }),
                evaluating: Mutex::new(()),
                stop: self.stop.child_token(),
            }));
        }
        for group in old {
            for state in &mut retire(&group).rules {
                ended.extend(state.written.drain());
            }
        }
        let ended: Vec<(Labels, f64)> = ended.into_iter().map(|l| (l, stale_nan())).collect();
        if let Err(err) = self.write(&ended, now_ms()) {
            tracing::warn!("could not end the series of removed rules: {err}");
        }
        lock(&self.groups).clone_from(&fresh);
        fresh
    }

    async fn run_group(self: Arc<Self>, group: Arc<Group>) {
        let interval = group.interval.as_millis().max(1) as i64;
        loop {
            // Evaluations on multiples of the interval, so restarts keep the same instants.
            let now = now_ms();
            let next = (now / interval + 1) * interval;
            tokio::select! {
                _ = group.stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis((next - now) as u64)) => {}
            }
            let manager = self.clone();
            let evaluated = group.clone();
            if let Err(err) =
                tokio::task::spawn_blocking(move || manager.evaluate(&evaluated, next)).await
            {
                tracing::error!("rule group {:?} evaluation failed: {err}", group.spec.name);
            }
        }
    }

    /// One evaluation of every rule of `group` at `t`, in order (a rule sees what the ones
    /// before it recorded).
    fn evaluate(&self, group: &Group, t: i64) {
        let _evaluating = lock(&group.evaluating);
        if lock(&group.state).retired {
            return;
        }
        let started = Instant::now();
        let mut notices = Vec::new();
        for (at, rule) in group.spec.rules.iter().enumerate() {
            let rule_started = Instant::now();
            let outcome = match &rule.kind {
                RuleKind::Recording => self.record(rule, group.spec.limit, t),
                RuleKind::Alerting {
                    hold,
                    keep_firing_for,
                    annotations,
                } => {
                    let results = self.alert(rule, annotations, t);
                    let mut state = lock(&group.state);
                    let rule_state = &mut state.rules[at];
                    match results {
                        Ok(results) if group.spec.limit > 0 && results.len() > group.spec.limit => {
                            // As Prometheus: no alerts rather than an arbitrary part of them.
                            rule_state.alerts = AlertSet::default();
                            Err(format!(
                                "exceeded limit of {} with {} alerts",
                                group.spec.limit,
                                results.len()
                            ))
                        }
                        Ok(results) => {
                            let alerts = &mut rule_state.alerts;
                            alerts.advance(t, results, *hold, *keep_firing_for);
                            notices.extend(self.due_notices(rule, alerts, group.interval, t));
                            Ok(if rule_state.restored {
                                alerts.state_series()
                            } else {
                                Vec::new()
                            })
                        }
                        Err(err) => Err(err),
                    }
                }
            };
            let outcome = outcome.and_then(|series| {
                self.write(&series, t)?;
                Ok(series)
            });
            self.metrics.rule_evaluated(&group.label(), outcome.is_ok());
            let mut state = lock(&group.state);
            let rule_state = &mut state.rules[at];
            let ended = match outcome {
                Ok(series) => {
                    let written: FxHashSet<Labels> =
                        series.into_iter().map(|(labels, _)| labels).collect();
                    let ended: Vec<(Labels, f64)> = rule_state
                        .written
                        .difference(&written)
                        .map(|labels| (labels.clone(), stale_nan()))
                        .collect();
                    rule_state.written = written;
                    rule_state.health = Health::Ok;
                    rule_state.last_error = None;
                    ended
                }
                Err(err) => {
                    if rule_state.last_error.as_deref() != Some(err.as_str()) {
                        tracing::warn!(
                            "rule {:?} of group {:?} ({}) failed: {err}",
                            rule.name,
                            group.spec.name,
                            group.spec.file.display()
                        );
                    }
                    rule_state.health = Health::Err;
                    rule_state.last_error = Some(err);
                    Vec::new()
                }
            };
            rule_state.last_evaluation = Some(t);
            rule_state.evaluation_time = rule_started.elapsed();
            drop(state);
            if let Err(err) = self.write(&ended, t) {
                tracing::warn!("rule {:?}: stale markers not written: {err}", rule.name);
            }
        }
        self.restore(group, t);
        let mut state = lock(&group.state);
        state.last_evaluation = Some(t);
        state.evaluation_time = started.elapsed();
        drop(state);
        if let Some(notifier) = &self.notifier {
            notifier.send(notices);
        }
    }

    fn query(&self, rule: &RuleSpec, t: i64) -> Result<Vec<(Labels, f64)>, String> {
        let value = self
            .engine
            .instant_expr(&rule.expr, t, None)
            .map_err(|err: QueryError| err.to_string())?;
        match value {
            Value::Vector(samples) => Ok(samples.into_iter().map(|s| (s.labels, s.v)).collect()),
            Value::Scalar(v) => Ok(vec![(Labels::default(), v)]),
            other => Err(format!(
                "rule result is a {}, not a vector or scalar",
                match other {
                    Value::String(_) => "string",
                    _ => "range vector",
                }
            )),
        }
    }

    fn record(&self, rule: &RuleSpec, limit: usize, t: i64) -> Result<Output, String> {
        let mut series = Vec::new();
        let mut seen = FxHashSet::default();
        for (labels, v) in self.query(rule, t)? {
            let mut builder = labels.builder();
            builder.set(METRIC_NAME, rule.name.as_str());
            for (name, value) in &rule.labels {
                builder.set(name.clone(), value.clone());
            }
            let labels = builder.build();
            if !seen.insert(labels.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .into(),
                );
            }
            series.push((labels, v));
        }
        if limit > 0 && series.len() > limit {
            return Err(format!(
                "exceeded limit of {limit} with {} series",
                series.len()
            ));
        }
        Ok(series)
    }

    fn template_query(&self, t: i64) -> TemplateQuery {
        let engine = self.engine.clone();
        Arc::new(move |expression: &str| {
            let value = engine
                .instant(expression, t, None)
                .map_err(|err| err.to_string())?;
            match value {
                Value::Vector(samples) => {
                    Ok(samples.into_iter().map(|s| (s.labels, s.v)).collect())
                }
                Value::Scalar(v) => Ok(vec![(Labels::default(), v)]),
                _ => Err("query in a template must give a vector or scalar".into()),
            }
        })
    }

    fn alert(
        &self,
        rule: &RuleSpec,
        annotations: &[(String, String)],
        t: i64,
    ) -> Result<Vec<Firing>, String> {
        let query = self.template_query(t);
        let label_templates = Expander::new(&rule.labels, &query);
        let annotation_templates = Expander::new(annotations, &query);
        let mut results = Vec::new();
        let mut seen = FxHashSet::default();
        for (labels, value) in self.query(rule, t)? {
            let labels = labels.without_metric_name();
            let data = TemplateData {
                labels: &labels,
                value,
                external_url: &self.options.external_url,
            };
            let mut builder = labels.builder();
            for (name, value) in label_templates.expand(&data) {
                builder.set(name, value);
            }
            builder.set("alertname", rule.name.as_str());
            let alert_labels = builder.build();
            if !seen.insert(alert_labels.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            results.push(Firing {
                labels: alert_labels,
                annotations: annotation_templates.expand(&data),
                value,
            });
        }
        Ok(results)
    }

    /// Prometheus's sendAlerts: what is due, firing ones valid for four resend periods.
    fn due_notices(
        &self,
        rule: &RuleSpec,
        alerts: &mut AlertSet,
        interval: Duration,
        t: i64,
    ) -> Vec<Notice> {
        let resend = self.options.resend_delay;
        let valid_for = 4 * resend.max(interval).as_millis() as i64;
        let generator_url = format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            self.options.external_url.trim_end_matches('/'),
            form_urlencoded::byte_serialize(rule.query.as_bytes()).collect::<String>()
        );
        let mut notices = Vec::new();
        for alert in alerts.alerts.values_mut() {
            if !alert.needs_sending(t, resend) {
                continue;
            }
            alert.last_sent_at = Some(t);
            notices.push(Notice {
                labels: alert.labels.clone(),
                annotations: alert.annotations.clone(),
                starts_at: alert.active_at,
                ends_at: alert.resolved_at.unwrap_or(t + valid_for),
                generator_url: generator_url.clone(),
            });
        }
        notices
    }

    /// After a rule's first evaluation: its alerts' `for` progress from before a restart.
    fn restore(&self, group: &Group, t: i64) {
        let grace = self.options.for_grace_period;
        let since = t - self.options.outage_tolerance.as_millis() as i64;
        let mut state = lock(&group.state);
        for (rule, rule_state) in group.spec.rules.iter().zip(state.rules.iter_mut()) {
            if rule_state.restored {
                continue;
            }
            rule_state.restored = true;
            let RuleKind::Alerting { hold, .. } = &rule.kind else {
                continue;
            };
            // Short `for`s simply start over, as in Prometheus.
            if *hold < grace {
                continue;
            }
            let restored = rule_state.alerts.restore(t, *hold, grace, |labels| {
                self.last_for_state(labels, since, t - 1)
            });
            if restored > 0 {
                tracing::info!(
                    "restored the state of {restored} alerts of rule {:?} from ALERTS_FOR_STATE",
                    rule.name
                );
            }
        }
    }

    /// The newest `ALERTS_FOR_STATE` sample of exactly these alert labels: (time, value).
    fn last_for_state(&self, labels: &Labels, mint: i64, maxt: i64) -> Option<(i64, f64)> {
        let mut matchers: Vec<Matcher> = labels
            .iter()
            .map(|label| Matcher::new(MatchOp::Equal, &label.name, &label.value))
            .collect();
        matchers.push(Matcher::new(
            MatchOp::Equal,
            METRIC_NAME,
            "ALERTS_FOR_STATE",
        ));
        let found = self.storage.select(&matchers, mint, maxt).ok()?;
        found
            .into_iter()
            .find(|series| series.labels.len() == labels.len() + 1)?
            .samples
            .last()
            .copied()
            .filter(|(_, v)| !is_stale_nan(*v))
    }

    fn write(&self, series: &[(Labels, f64)], t: i64) -> Result<(), String> {
        if series.is_empty() {
            return Ok(());
        }
        let label_sets: Vec<Labels> = series.iter().map(|(labels, _)| labels.clone()).collect();
        let ids = self
            .storage
            .resolve(&label_sets)
            .map_err(|err| err.to_string())?;
        let samples: Vec<LoggedSample> = ids
            .into_iter()
            .zip(series)
            .map(|(id, (_, v))| LoggedSample {
                series: id,
                t,
                v: *v,
            })
            .collect();
        self.storage
            .append(&samples)
            .map(drop)
            .map_err(|err| err.to_string())
    }

    /// `/api/v1/rules`: every group with its rules' state; `kind` keeps only `alert` or
    /// `record` rules.
    pub fn rules_json(&self, kind: Option<&str>) -> Json {
        let groups = lock(&self.groups).clone();
        let groups: Vec<Json> = groups
            .iter()
            .map(|group| {
                let state = lock(&group.state);
                let rules: Vec<Json> = group
                    .spec
                    .rules
                    .iter()
                    .zip(&state.rules)
                    .filter(|(rule, _)| match kind {
                        Some("alert") => matches!(rule.kind, RuleKind::Alerting { .. }),
                        Some("record") => rule.kind == RuleKind::Recording,
                        _ => true,
                    })
                    .map(|(rule, state)| rule_json(rule, state))
                    .collect();
                json!({
                    "name": group.spec.name,
                    "file": group.spec.file.display().to_string(),
                    "rules": rules,
                    "interval": group.interval.as_secs_f64(),
                    "limit": group.spec.limit,
                    "evaluationTime": state.evaluation_time.as_secs_f64(),
                    "lastEvaluation": rfc3339(state.last_evaluation),
                })
            })
            .collect();
        json!({ "groups": groups })
    }

    /// `/api/v1/alerts`: every pending and firing alert.
    pub fn alerts_json(&self) -> Json {
        let groups = lock(&self.groups).clone();
        let mut alerts = Vec::new();
        for group in &groups {
            let state = lock(&group.state);
            for rule in &state.rules {
                alerts.extend(rule.alerts.active().into_iter().map(alert_json));
            }
        }
        json!({ "alerts": alerts })
    }
}

/// Stops a replaced group: waits for an evaluation in flight, and returns its final state.
fn retire(group: &Group) -> MutexGuard<'_, GroupState> {
    group.stop.cancel();
    let _between_evaluations = lock(&group.evaluating);
    let mut state = lock(&group.state);
    state.retired = true;
    state
}

fn rule_json(rule: &RuleSpec, state: &RuleState) -> Json {
    // Prometheus writes a recording rule's missing labels as null.
    let labels = if rule.labels.is_empty() && rule.kind == RuleKind::Recording {
        Json::Null
    } else {
        pairs_json(&rule.labels)
    };
    let mut json = json!({
        "name": rule.name,
        "query": rule.query,
        "labels": labels,
        "health": state.health.as_str(),
        "evaluationTime": state.evaluation_time.as_secs_f64(),
        "lastEvaluation": rfc3339(state.last_evaluation),
    });
    if let Some(error) = &state.last_error {
        json["lastError"] = Json::String(error.clone());
    }
    match &rule.kind {
        RuleKind::Recording => json["type"] = "recording".into(),
        RuleKind::Alerting {
            hold,
            keep_firing_for,
            annotations,
        } => {
            let active = state.alerts.active();
            let rule_state = if active.iter().any(|a| a.state == AlertState::Firing) {
                AlertState::Firing
            } else if active.is_empty() {
                AlertState::Inactive
            } else {
                AlertState::Pending
            };
            json["type"] = "alerting".into();
            json["state"] = rule_state.as_str().into();
            json["duration"] = hold.as_secs_f64().into();
            json["keepFiringFor"] = keep_firing_for.as_secs_f64().into();
            json["annotations"] = pairs_json(annotations);
            json["alerts"] = Json::Array(active.into_iter().map(alert_json).collect());
        }
    }
    json
}

fn alert_json(alert: &alert::Alert) -> Json {
    json!({
        "labels": alert.labels,
        "annotations": pairs_json(&alert.annotations),
        "state": alert.state.as_str(),
        "activeAt": rfc3339(Some(alert.active_at)),
        "value": go_exponent(alert.value),
    })
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, as Prometheus reports alert values.
fn go_exponent(v: f64) -> String {
    if !v.is_finite() {
        return crate::promql::format_value(v);
    }
    let text = format!("{v:e}");
    let (mantissa, exponent) = text.split_once('e').expect("exponent form");
    let exponent: i32 = exponent.parse().expect("exponent digits");
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// Every group of every file the patterns name; all problems of all files, or none.
pub fn load_all(patterns: &[String]) -> Result<Vec<GroupSpec>, Vec<RuleFileError>> {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    let failed = |pattern: &str, reason: String| RuleFileError {
        file: PathBuf::from(pattern),
        line: 0,
        column: 0,
        reason,
    };
    for pattern in patterns {
        let paths: Vec<PathBuf> = if pattern.contains(['*', '?', '[']) {
            match glob::glob(pattern) {
                Ok(paths) => paths.filter_map(Result::ok).collect(),
                Err(err) => {
                    errors.push(failed(pattern, format!("not a valid pattern: {err}")));
                    continue;
                }
            }
        } else {
            vec![PathBuf::from(pattern)]
        };
        let mut paths = paths;
        paths.sort();
        for path in paths {
            match file::load(&path) {
                Ok(loaded) => groups.extend(loaded),
                Err(problems) => errors.extend(problems),
            }
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_values_print_as_go_does() {
        assert_eq!(go_exponent(1.0), "1e+00");
        assert_eq!(go_exponent(0.25), "2.5e-01");
        assert_eq!(go_exponent(1234.5), "1.2345e+03");
        assert_eq!(go_exponent(f64::NAN), "NaN");
    }
}
