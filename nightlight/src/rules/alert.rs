//! An alerting rule's alerts and their states, advanced one evaluation at a time with
//! Prometheus 2.x semantics: inactive → pending → firing, `for` and `keep_firing_for`,
//! resolved alerts kept (and re-sent) for 15 minutes, state restored after a restart from
//! `ALERTS_FOR_STATE`.

use std::time::Duration;

use crate::labels::{Labels, METRIC_NAME};
use rustc_hash::FxHashMap;

/// How long a resolved alert is kept, so its resolution is sent again to receivers that missed
/// it (Prometheus's `resolvedRetention`).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The result's labels (without `__name__`), the rule's labels and `alertname`.
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    pub state: AlertState,
    pub value: f64,
    pub active_at: i64,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub keep_firing_since: Option<i64>,
}

impl Alert {
    /// Prometheus's `needsSending`: new resolutions at once, everything else once `resend` has
    /// passed since the last send.
    pub fn needs_sending(&self, now: i64, resend: Duration) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let Some(sent) = self.last_sent_at else {
            return true;
        };
        if self.resolved_at.is_some_and(|resolved| resolved > sent) {
            return true;
        }
        sent + (resend.as_millis() as i64) < now
    }
}

/// One element of the expression's result, with its labels and annotations expanded.
pub struct Firing {
    pub labels: Labels,
    pub annotations: Vec<(String, String)>,
    pub value: f64,
}

/// The alerts of one rule, by label set.
#[derive(Debug, Default, Clone)]
pub struct AlertSet {
    pub alerts: FxHashMap<Labels, Alert>,
}

impl AlertSet {
    /// Advances every alert to evaluation time `t` given the expression's current result.
    pub fn advance(&mut self, t: i64, results: Vec<Firing>, hold: Duration, keep: Duration) {
        let hold = hold.as_millis() as i64;
        let keep = keep.as_millis() as i64;
        let mut seen = rustc_hash::FxHashSet::default();
        for result in results {
            seen.insert(result.labels.clone());
            match self.alerts.get_mut(&result.labels) {
                Some(alert) if alert.state != AlertState::Inactive => {
                    alert.value = result.value;
                    alert.annotations = result.annotations;
                    alert.keep_firing_since = None;
                }
                _ => {
                    self.alerts.insert(
                        result.labels.clone(),
                        Alert {
                            labels: result.labels,
                            annotations: result.annotations,
                            state: AlertState::Pending,
                            value: result.value,
                            active_at: t,
                            resolved_at: None,
                            last_sent_at: None,
                            keep_firing_since: None,
                        },
                    );
                }
            }
        }
        self.alerts.retain(|labels, alert| {
            if !seen.contains(labels) {
                let mut keep_firing = false;
                if alert.state == AlertState::Firing && keep > 0 {
                    let since = *alert.keep_firing_since.get_or_insert(t);
                    keep_firing = t - since < keep;
                }
                if keep_firing {
                    return true;
                }
                let expired = alert
                    .resolved_at
                    .is_some_and(|resolved| t - resolved > RESOLVED_RETENTION_MS);
                if alert.state == AlertState::Pending || expired {
                    return false;
                }
                if alert.state != AlertState::Inactive {
                    alert.state = AlertState::Inactive;
                    alert.resolved_at = Some(t);
                }
                return true;
            }
            if alert.state == AlertState::Pending && t - alert.active_at >= hold {
                alert.state = AlertState::Firing;
            }
            true
        });
    }

    /// Pending and firing alerts, oldest first.
    pub fn active(&self) -> Vec<&Alert> {
        let mut active: Vec<&Alert> = self
            .alerts
            .values()
            .filter(|alert| alert.state != AlertState::Inactive)
            .collect();
        active.sort_by(|a, b| (a.active_at, &a.labels).cmp(&(b.active_at, &b.labels)));
        active
    }

    /// The `ALERTS` and `ALERTS_FOR_STATE` series Prometheus writes for every active alert.
    pub fn state_series(&self) -> Vec<(Labels, f64)> {
        let mut series = Vec::new();
        for alert in self.active() {
            let mut alerts = alert.labels.builder();
            alerts.set(METRIC_NAME, "ALERTS");
            alerts.set("alertstate", alert.state.as_str());
            series.push((alerts.build(), 1.0));
            let mut for_state = alert.labels.builder();
            for_state.set(METRIC_NAME, "ALERTS_FOR_STATE");
            // Whole seconds, as Prometheus writes it.
            series.push((for_state.build(), (alert.active_at / 1000) as f64));
        }
        series
    }

    /// Carries over the state of the alerts a rule had before a restart. `last_state` gives an
    /// alert's newest `ALERTS_FOR_STATE` sample (time, active-since seconds) if the store has
    /// one. Mirrors Prometheus's restoreForState, including the grace period that keeps an
    /// alert which was about to fire from firing the instant nightlight is back.
    pub fn restore(
        &mut self,
        t: i64,
        hold: Duration,
        grace: Duration,
        mut last_state: impl FnMut(&Labels) -> Option<(i64, f64)>,
    ) -> usize {
        let hold = hold.as_millis() as i64;
        let grace = grace.as_millis() as i64;
        let mut restored = 0;
        for alert in self.alerts.values_mut() {
            if alert.state == AlertState::Inactive {
                continue;
            }
            let Some((down_at, active_since)) = last_state(&alert.labels) else {
                continue;
            };
            let mut active_at = (active_since * 1000.0) as i64;
            let remaining = hold - (down_at - active_at);
            if remaining <= 0 {
                // It was firing before the restart: it fires again at once.
            } else if remaining < grace {
                active_at = t + grace - hold;
            } else {
                active_at += t - down_at;
            }
            alert.active_at = active_at;
            if t - active_at >= hold {
                alert.state = AlertState::Firing;
            }
            restored += 1;
        }
        restored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLD: Duration = Duration::from_secs(60);

    fn firing(instance: &str) -> Firing {
        Firing {
            labels: Labels::from_pairs([("alertname", "Down"), ("instance", instance)]),
            annotations: Vec::new(),
            value: 1.0,
        }
    }

    fn state(set: &AlertSet, instance: &str) -> Option<AlertState> {
        set.alerts
            .values()
            .find(|alert| alert.labels.get("instance") == Some(instance))
            .map(|alert| alert.state)
    }

    #[test]
    fn pending_then_firing_then_resolved_then_forgotten() {
        let mut set = AlertSet::default();
        set.advance(0, vec![firing("a")], HOLD, Duration::ZERO);
        assert_eq!(state(&set, "a"), Some(AlertState::Pending));
        set.advance(30_000, vec![firing("a")], HOLD, Duration::ZERO);
        assert_eq!(state(&set, "a"), Some(AlertState::Pending));
        set.advance(60_000, vec![firing("a")], HOLD, Duration::ZERO);
        assert_eq!(state(&set, "a"), Some(AlertState::Firing));
        set.advance(90_000, vec![], HOLD, Duration::ZERO);
        assert_eq!(state(&set, "a"), Some(AlertState::Inactive));
        let alert = set.alerts.values().next().expect("kept");
        assert_eq!(alert.resolved_at, Some(90_000));
        set.advance(90_000 + RESOLVED_RETENTION_MS, vec![], HOLD, Duration::ZERO);
        assert!(set.alerts.values().next().is_some(), "kept for 15 minutes");
        set.advance(90_001 + RESOLVED_RETENTION_MS, vec![], HOLD, Duration::ZERO);
        assert!(set.alerts.is_empty());
    }

    #[test]
    fn a_pending_alert_that_goes_away_is_dropped_and_zero_for_fires_at_once() {
        let mut set = AlertSet::default();
        set.advance(0, vec![firing("a")], HOLD, Duration::ZERO);
        set.advance(10_000, vec![], HOLD, Duration::ZERO);
        assert!(set.alerts.is_empty());
        set.advance(20_000, vec![firing("b")], Duration::ZERO, Duration::ZERO);
        assert_eq!(state(&set, "b"), Some(AlertState::Firing));
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert() {
        let keep = Duration::from_secs(30);
        let mut set = AlertSet::default();
        set.advance(0, vec![firing("a")], Duration::ZERO, keep);
        set.advance(10_000, vec![], Duration::ZERO, keep);
        set.advance(39_999, vec![], Duration::ZERO, keep);
        assert_eq!(state(&set, "a"), Some(AlertState::Firing));
        set.advance(40_000, vec![], Duration::ZERO, keep);
        assert_eq!(state(&set, "a"), Some(AlertState::Inactive));
    }

    #[test]
    fn state_series_follow_prometheus() {
        let mut set = AlertSet::default();
        set.advance(61_500, vec![firing("a")], HOLD, Duration::ZERO);
        let series = set.state_series();
        let names: Vec<String> = series.iter().map(|(l, v)| format!("{l} {v}")).collect();
        assert_eq!(
            names,
            [
                r#"ALERTS{alertname="Down", alertstate="pending", instance="a"} 1"#,
                r#"ALERTS_FOR_STATE{alertname="Down", instance="a"} 61"#
            ]
        );
    }

    #[test]
    fn restore_keeps_the_time_already_spent() {
        let grace = Duration::from_secs(10);
        let hold = Duration::from_secs(600);
        // Pending since 100 s when nightlight stopped at 400 s, back at 1000 s.
        let mut set = AlertSet::default();
        set.advance(1_000_000, vec![firing("a")], hold, Duration::ZERO);
        set.restore(1_000_000, hold, grace, |_| Some((400_000, 100.0)));
        let alert = set.alerts.values().next().expect("alert");
        assert_eq!(alert.active_at, 100_000 + 600_000);
        assert_eq!(alert.state, AlertState::Pending);
        // Already firing before the stop: firing again at once, with its old start.
        let mut set = AlertSet::default();
        set.advance(1_000_000, vec![firing("a")], hold, Duration::ZERO);
        set.restore(1_000_000, hold, grace, |_| Some((800_000, 100.0)));
        let alert = set.alerts.values().next().expect("alert");
        assert_eq!(alert.active_at, 100_000);
        assert_eq!(alert.state, AlertState::Firing);
        // About to fire: waits for the grace period.
        let mut set = AlertSet::default();
        set.advance(1_000_000, vec![firing("a")], hold, Duration::ZERO);
        set.restore(1_000_000, hold, grace, |_| Some((695_000, 100.0)));
        let alert = set.alerts.values().next().expect("alert");
        assert_eq!(alert.active_at, 1_000_000 + 10_000 - 600_000);
    }

    #[test]
    fn sending_is_paced_by_the_resend_delay() {
        let resend = Duration::from_secs(60);
        let mut set = AlertSet::default();
        set.advance(0, vec![firing("a")], Duration::ZERO, Duration::ZERO);
        let alert = set.alerts.values_mut().next().expect("alert");
        assert!(alert.needs_sending(0, resend));
        alert.last_sent_at = Some(0);
        assert!(!alert.needs_sending(30_000, resend));
        assert!(!alert.needs_sending(60_000, resend));
        assert!(alert.needs_sending(60_001, resend));
        alert.resolved_at = Some(10_000);
        assert!(alert.needs_sending(10_000, resend));
    }
}
