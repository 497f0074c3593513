//! The REST API under `/api/v1`: load balancers and their backends, read and changed while
//! traffic flows. Changing calls need `Authorization: Bearer <token>` when a token is set.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::balancer::BackendStatus;
use crate::config::{BackendConfig, LoadBalancer, MAX_WEIGHT};
use crate::controller::{Controller, Refused};

#[derive(Clone)]
struct ApiState {
    controller: Arc<Controller>,
    token: Option<Arc<str>>,
}

pub fn router(controller: Arc<Controller>, token: Option<String>) -> Router {
    let state = ApiState {
        controller,
        token: token.map(Arc::from),
    };
    Router::new()
        .route("/api/v1/loadbalancers", get(list).post(create))
        .route(
            "/api/v1/loadbalancers/{lb}",
            get(show).put(replace).delete(remove),
        )
        .route("/api/v1/loadbalancers/{lb}/backends", post(add_backend))
        .route(
            "/api/v1/loadbalancers/{lb}/backends/{backend}",
            axum::routing::patch(change_backend).delete(remove_backend),
        )
        .route("/api/v1/config/save", post(save))
        .route("/api/v1/config/reload", post(reload))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

async fn authorize(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    if let Some(token) = &state.token
        && !reads
    {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if given != Some(token.as_ref()) {
            return error(
                StatusCode::UNAUTHORIZED,
                "this call changes the configuration: send Authorization: Bearer <standalone.server.admin_token>",
            );
        }
    }
    next.run(request).await
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn refused(err: Refused) -> Response {
    let status = match err {
        Refused::NotFound(_) => StatusCode::NOT_FOUND,
        Refused::Conflict(_) => StatusCode::CONFLICT,
        Refused::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    error(status, err.to_string())
}

fn not_found(what: &str) -> Refused {
    Refused::NotFound(format!("no {what}"))
}

fn answer(result: Result<(), Refused>, ok: StatusCode, body: serde_json::Value) -> Response {
    match result {
        Ok(()) => (ok, Json(body)).into_response(),
        Err(err) => refused(err),
    }
}

#[derive(Serialize)]
struct Summary {
    name: String,
    protocol: String,
    method: String,
    /// Where it listens (the bound address).
    listen: Option<String>,
    active_connections: usize,
    backends_up: usize,
    backends: usize,
}

#[derive(Serialize)]
struct Detail {
    #[serde(flatten)]
    summary: Summary,
    config: LoadBalancer,
    backend_status: Vec<BackendStatus>,
}

async fn list(State(state): State<ApiState>) -> Response {
    let mut summaries = Vec::new();
    for definition in state.controller.definitions().await {
        if let Some(detail) = detail(&state.controller, &definition.name).await {
            summaries.push(detail.summary);
        }
    }
    Json(serde_json::json!({ "loadbalancers": summaries })).into_response()
}

async fn detail(controller: &Controller, name: &str) -> Option<Detail> {
    let runtime = controller.runtime(name).await?;
    let config = runtime.config().as_ref().clone();
    let backend_status: Vec<BackendStatus> =
        runtime.pool.backends().iter().map(|b| b.status()).collect();
    let listen = *runtime.local_addr.lock().unwrap_or_else(|p| p.into_inner());
    Some(Detail {
        summary: Summary {
            name: config.name.clone(),
            protocol: config.protocol.to_string(),
            method: config.method.to_string(),
            listen: listen.map(|addr| addr.to_string()),
            active_connections: runtime.clients(),
            backends_up: backend_status.iter().filter(|b| b.state == "up").count(),
            backends: backend_status.len(),
        },
        config,
        backend_status,
    })
}

async fn show(State(state): State<ApiState>, Path(name): Path<String>) -> Response {
    match detail(&state.controller, &name).await {
        Some(detail) => Json(detail).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no load balancer {name:?}")),
    }
}

async fn create(State(state): State<ApiState>, Json(lb): Json<LoadBalancer>) -> Response {
    let name = lb.name.clone();
    let result = state
        .controller
        .edit(|all| {
            if all.iter().any(|existing| existing.name == lb.name) {
                return Err(Refused::Conflict(format!(
                    "load balancer {:?} already exists",
                    lb.name
                )));
            }
            all.push(lb);
            Ok(())
        })
        .await;
    answer(
        result,
        StatusCode::CREATED,
        serde_json::json!({ "created": name }),
    )
}

async fn replace(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Json(lb): Json<LoadBalancer>,
) -> Response {
    if lb.name != name {
        return error(
            StatusCode::BAD_REQUEST,
            format!("the body names {:?}, the path {name:?}", lb.name),
        );
    }
    let result = state
        .controller
        .edit(|all| {
            let slot = all
                .iter_mut()
                .find(|existing| existing.name == name)
                .ok_or_else(|| not_found(&format!("load balancer {name:?}")))?;
            *slot = lb;
            Ok(())
        })
        .await;
    answer(
        result,
        StatusCode::OK,
        serde_json::json!({ "updated": name }),
    )
}

async fn remove(State(state): State<ApiState>, Path(name): Path<String>) -> Response {
    let result = state
        .controller
        .edit(|all| {
            let before = all.len();
            all.retain(|existing| existing.name != name);
            if all.len() == before {
                return Err(not_found(&format!("load balancer {name:?}")));
            }
            Ok(())
        })
        .await;
    answer(
        result,
        StatusCode::OK,
        serde_json::json!({ "deleted": name }),
    )
}

fn lb_mut<'a>(all: &'a mut [LoadBalancer], name: &str) -> Result<&'a mut LoadBalancer, Refused> {
    all.iter_mut()
        .find(|lb| lb.name == name)
        .ok_or_else(|| not_found(&format!("load balancer {name:?}")))
}

async fn add_backend(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Json(backend): Json<BackendConfig>,
) -> Response {
    let added = backend.name.clone();
    let result = state
        .controller
        .edit(|all| {
            let lb = lb_mut(all, &name)?;
            if lb.backends.iter().any(|b| b.name == backend.name) {
                return Err(Refused::Conflict(format!(
                    "backend {:?} already exists in {name:?}",
                    backend.name
                )));
            }
            lb.backends.push(backend);
            Ok(())
        })
        .await;
    answer(
        result,
        StatusCode::CREATED,
        serde_json::json!({ "added": added }),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendChange {
    weight: Option<u32>,
    /// `true`: no new traffic; in-flight work finishes. `false` undoes it.
    drain: Option<bool>,
}

async fn change_backend(
    State(state): State<ApiState>,
    Path((name, backend_name)): Path<(String, String)>,
    Json(change): Json<BackendChange>,
) -> Response {
    if let Some(weight) = change.weight {
        if weight > MAX_WEIGHT {
            return error(
                StatusCode::BAD_REQUEST,
                format!("weight {weight}: must be 0-{MAX_WEIGHT}"),
            );
        }
        let result = state
            .controller
            .edit(|all| {
                let lb = lb_mut(all, &name)?;
                let backend = lb
                    .backends
                    .iter_mut()
                    .find(|b| b.name == backend_name)
                    .ok_or_else(|| not_found(&format!("backend {backend_name:?} in {name:?}")))?;
                backend.weight = weight;
                Ok(())
            })
            .await;
        if let Err(err) = result {
            return refused(err);
        }
    }
    let Some(runtime) = state.controller.runtime(&name).await else {
        return error(StatusCode::NOT_FOUND, format!("no load balancer {name:?}"));
    };
    let Some(backend) = runtime.pool.find(&backend_name) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no backend {backend_name:?} in {name:?}"),
        );
    };
    match change.drain {
        Some(true) => {
            backend.drain();
            tracing::info!(
                "load balancer {name}: backend {backend_name} draining ({} open connection(s) finish)",
                backend.active()
            );
        }
        Some(false) => {
            backend.undrain();
            tracing::info!("load balancer {name}: backend {backend_name} back in rotation");
        }
        None => {}
    }
    Json(backend.status()).into_response()
}

async fn remove_backend(
    State(state): State<ApiState>,
    Path((name, backend_name)): Path<(String, String)>,
) -> Response {
    let result = state
        .controller
        .edit(|all| {
            let lb = lb_mut(all, &name)?;
            let before = lb.backends.len();
            lb.backends.retain(|b| b.name != backend_name);
            if lb.backends.len() == before {
                return Err(not_found(&format!("backend {backend_name:?} in {name:?}")));
            }
            Ok(())
        })
        .await;
    answer(
        result,
        StatusCode::OK,
        serde_json::json!({ "removed": backend_name }),
    )
}

async fn save(State(state): State<ApiState>) -> Response {
    let definitions = state.controller.definitions().await;
    match state.controller.source.save(&definitions).await {
        Ok(place) => {
            tracing::info!("running configuration written to {place}");
            Json(serde_json::json!({ "saved": place })).into_response()
        }
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, err),
    }
}

async fn reload(State(state): State<ApiState>) -> Response {
    match state.controller.reload().await {
        Ok(()) => {
            tracing::info!(
                "configuration reloaded from {}",
                state.controller.source.describe()
            );
            Json(serde_json::json!({ "reloaded": state.controller.source.describe() }))
                .into_response()
        }
        Err(err) => {
            tracing::error!("configuration reload refused, the running configuration stays: {err}");
            refused(err)
        }
    }
}
