//! The admin HTTP server: `/health` and `/metrics`, plus whatever routes the component adds.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use photon_config::health::HealthStatus;
use prometheus_client::registry::Registry;

use crate::Health;

/// The content type prometheus-client's text encoder writes.
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct AdminState {
    health: Health,
    /// `None` when `photon.metrics.enabled = false`.
    metrics: Option<Arc<Mutex<Registry>>>,
}

pub(crate) fn router(health: Health, metrics: Option<Arc<Mutex<Registry>>>) -> Router {
    Router::new()
        .route("/health", get(health_handler))
        .route("/metrics", get(metrics_handler))
        .with_state(AdminState { health, metrics })
}

async fn health_handler(State(state): State<AdminState>) -> Response {
    let report = state.health.report().await;
    let status = match report.status {
        HealthStatus::Healthy => StatusCode::OK,
        HealthStatus::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, axum::Json(report)).into_response()
}

async fn metrics_handler(State(state): State<AdminState>) -> Response {
    let Some(registry) = state.metrics else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are disabled (photon.metrics.enabled = false)\n",
        )
            .into_response();
    };
    let mut body = String::new();
    let encoded = {
        let registry = registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        prometheus_client::encoding::text::encode(&mut body, &registry)
    };
    match encoded {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS_TEXT)], body).into_response(),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {err}\n"),
        )
            .into_response(),
    }
}
