//! Active health checks: every `interval_sec`, each backend is probed (TCP connect, an HTTP
//! request, or a UDP exchange); `fall` failures in a row take it out, `rise` successes bring
//! it back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::balancer::Backend;
use crate::config::{HealthCheckConfig, HealthCheckType};
use crate::lb::{LbRuntime, connect_backend, resolve};
use crate::metrics::CheckLabels;

/// Runs the checks of `lb` until `stop`.
pub async fn run(lb: Arc<LbRuntime>, check: HealthCheckConfig, stop: CancellationToken) {
    if check.kind == HealthCheckType::None {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(check.interval_sec));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Successes (positive) or failures (negative) in a row, by backend.
    let mut streaks: HashMap<String, i64> = HashMap::new();
    let timeout = Duration::from_secs(check.timeout_sec);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let backends = lb.pool.backends();
        let results = futures::future::join_all(backends.iter().map(|backend| {
            let check = &check;
            async move {
                match tokio::time::timeout(timeout, probe(backend, check)).await {
                    Ok(result) => result,
                    Err(_) => Err(format!("no answer within {timeout:?}")),
                }
            }
        }))
        .await;
        streaks.retain(|name, _| backends.iter().any(|b| &b.name == name));
        for (backend, result) in backends.iter().zip(results) {
            let streak = streaks.entry(backend.name.clone()).or_insert(0);
            record(&lb, backend, &check, streak, result);
        }
    }
}

fn record(
    lb: &LbRuntime,
    backend: &Backend,
    check: &HealthCheckConfig,
    streak: &mut i64,
    result: Result<(), String>,
) {
    lb.metrics
        .health_checks
        .get_or_create(&CheckLabels {
            lb: lb.name.clone(),
            backend: backend.name.clone(),
            result: if result.is_ok() { "success" } else { "failure" }.to_owned(),
        })
        .inc();
    match result {
        Ok(()) => {
            *streak = (*streak).max(0) + 1;
            if !backend.is_healthy() && *streak >= i64::from(check.rise) {
                backend.set_healthy(true, None);
                tracing::info!(
                    "load balancer {}: backend {} ({}:{}) is up again after {} good checks",
                    lb.name,
                    backend.name,
                    backend.address,
                    backend.port,
                    check.rise
                );
            }
        }
        Err(reason) => {
            *streak = (*streak).min(0) - 1;
            if backend.is_healthy() && -*streak >= i64::from(check.fall) {
                backend.set_healthy(false, Some(reason.clone()));
                tracing::warn!(
                    "load balancer {}: backend {} ({}:{}) is down after {} failed checks: {reason}; it gets no new traffic until {} checks pass",
                    lb.name,
                    backend.name,
                    backend.address,
                    backend.port,
                    check.fall,
                    check.rise
                );
            } else if !backend.is_healthy() {
                backend.set_healthy(false, Some(reason));
            }
        }
    }
}

async fn probe(backend: &Backend, check: &HealthCheckConfig) -> Result<(), String> {
    let timeout = Duration::from_secs(check.timeout_sec);
    match check.kind {
        HealthCheckType::None => Ok(()),
        HealthCheckType::Tcp => connect_backend(backend, timeout)
            .await
            .map(drop)
            .map_err(|err| format!("TCP connect: {err}")),
        HealthCheckType::Http => http_probe(backend, check, timeout).await,
        HealthCheckType::Udp => udp_probe(backend, check).await,
    }
}

async fn http_probe(
    backend: &Backend,
    check: &HealthCheckConfig,
    timeout: Duration,
) -> Result<(), String> {
    let stream = connect_backend(backend, timeout)
        .await
        .map_err(|err| format!("TCP connect: {err}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| format!("HTTP: {err}"))?;
    tokio::spawn(connection);
    let request = Request::get(check.path.as_str())
        .header(hyper::header::HOST, backend.address.as_str())
        .header(hyper::header::USER_AGENT, "fiberlb-health-check")
        .body(Empty::<Bytes>::new())
        .map_err(|err| format!("HTTP request for {}: {err}", check.path))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| format!("HTTP GET {}: {err}", check.path))?;
    let status = response.status().as_u16();
    if status == check.expected_status {
        Ok(())
    } else {
        Err(format!(
            "HTTP GET {} answered {status}, expected {}",
            check.path, check.expected_status
        ))
    }
}

async fn udp_probe(backend: &Backend, check: &HealthCheckConfig) -> Result<(), String> {
    let target = resolve(backend)
        .await
        .map_err(|err| format!("resolve: {err}"))?;
    let local = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|err| format!("UDP socket: {err}"))?;
    socket
        .connect(target)
        .await
        .map_err(|err| format!("UDP connect: {err}"))?;
    let payload = check.send.as_deref().unwrap_or_default();
    socket
        .send(payload.as_bytes())
        .await
        .map_err(|err| format!("UDP send: {err}"))?;
    let mut buffer = vec![0u8; 65_535];
    let length = socket
        .recv(&mut buffer)
        .await
        .map_err(|err| format!("UDP receive: {err}"))?;
    match &check.expect {
        Some(expected) if !contains(&buffer[..length], expected.as_bytes()) => {
            Err(format!("UDP reply does not contain {expected:?}"))
        }
        _ => Ok(()),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Restarts `lb`'s checks with its current configuration (none when it has no check).
pub fn restart(lb: &Arc<LbRuntime>, tracker: &tokio_util::task::TaskTracker) {
    let stop = lb.restart_checks();
    if let Some(check) = lb.config().healthcheck.clone() {
        tracker.spawn(run(lb.clone(), check, stop));
    } else {
        // Without checks, a backend a previous check took down must not stay down.
        for backend in lb.pool.backends().iter() {
            backend.set_healthy(true, None);
        }
    }
}
