//! One look at a component's `/health`.

use std::time::{Duration, Instant};

use photon_config::health::{HealthReport, HealthStatus, health_url};
use serde::Serialize;

/// What was learnt from one endpoint.
#[derive(Debug, Serialize)]
pub struct Probe {
    pub endpoint: String,
    pub url: String,
    pub reachable: bool,
    /// The HTTP status of `/health`, when it answered.
    pub http_status: Option<u16>,
    pub latency_ms: Option<f64>,
    /// The parsed `/health` document, when it was one.
    pub health: Option<HealthReport>,
    /// The body as JSON when it was JSON but not a PhotonCloud health document.
    pub body: Option<serde_json::Value>,
    /// Why the endpoint is unreachable or unhealthy, in words.
    pub problem: Option<String>,
}

/// Ordered from best to worst, so the worst of several is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Healthy,
    Unhealthy,
    Unreachable,
}

impl Probe {
    pub async fn run(endpoint: &str, timeout: Duration) -> Probe {
        let url = health_url(endpoint);
        let mut probe = Probe {
            endpoint: endpoint.to_owned(),
            url: url.clone(),
            reachable: false,
            http_status: None,
            latency_ms: None,
            health: None,
            body: None,
            problem: None,
        };
        if let Err(err) = reqwest::Url::parse(&url) {
            probe.problem = Some(format!(
                "{endpoint:?} is not a URL ({err}); expected e.g. http://host:port"
            ));
            return probe;
        }
        let client = match reqwest::Client::builder().timeout(timeout).build() {
            Ok(client) => client,
            Err(err) => {
                probe.problem = Some(format!("cannot build an HTTP client: {err}"));
                return probe;
            }
        };

        let started = Instant::now();
        let response = match client.get(&url).send().await {
            Ok(response) => response,
            Err(err) => {
                probe.problem = Some(describe_send_error(&err, timeout));
                return probe;
            }
        };
        probe.reachable = true;
        probe.http_status = Some(response.status().as_u16());
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        probe.latency_ms = Some(started.elapsed().as_secs_f64() * 1000.0);

        match serde_json::from_str::<HealthReport>(&text) {
            Ok(report) => {
                if report.status == HealthStatus::Unhealthy {
                    let failing: Vec<String> = report
                        .checks
                        .iter()
                        .filter(|(_, outcome)| *outcome != photon_config::health::CHECK_OK)
                        .map(|(name, outcome)| format!("{name}: {outcome}"))
                        .collect();
                    probe.problem = Some(format!("unhealthy: {}", failing.join("; ")));
                }
                probe.health = Some(report);
            }
            Err(_) => {
                probe.body = serde_json::from_str(&text).ok();
                probe.problem = Some(if status.is_success() {
                    format!("answered {status} but not with a PhotonCloud health document")
                } else {
                    format!("answered {status}")
                });
            }
        }
        if !status.is_success() && probe.problem.is_none() {
            probe.problem = Some(format!("answered {status}"));
        }
        probe
    }

    pub async fn run_all(endpoints: &[String], timeout: Duration) -> Vec<Probe> {
        let mut running = tokio::task::JoinSet::new();
        for (index, endpoint) in endpoints.iter().enumerate() {
            let endpoint = endpoint.clone();
            running.spawn(async move { (index, Probe::run(&endpoint, timeout).await) });
        }
        let mut probes: Vec<(usize, Probe)> = running.join_all().await;
        probes.sort_by_key(|(index, _)| *index);
        probes.into_iter().map(|(_, probe)| probe).collect()
    }

    pub fn verdict(&self) -> Verdict {
        if !self.reachable {
            Verdict::Unreachable
        } else if self.problem.is_some() {
            Verdict::Unhealthy
        } else {
            Verdict::Healthy
        }
    }
}

fn describe_send_error(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        format!("no answer within {timeout:?}")
    } else if err.is_connect() {
        // The innermost cause says what happened (refused, no route, unknown host).
        let mut cause: &dyn std::error::Error = err;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        format!("cannot connect: {cause}")
    } else {
        err.to_string()
    }
}
