//! The Prometheus HTTP API (`/api/v1/...`, the same JSON envelope and error types), the
//! remote-write receiver, a bulk import endpoint and `/-/healthy`, `/-/ready`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use promql_parser::label::Matcher;
use promql_parser::parser::Expr;
use serde::Serialize;
use serde_json::{Value as Json, json};

use crate::exposition::{self, Format};
use crate::labels::Labels;
use crate::metrics::Metrics;
use crate::promql::{Engine, QueryError, Value, format_value};
use crate::remote_write;
use crate::rules::RuleManager;
use crate::scrape::{ScrapeManager, now_ms};
use crate::storage::Storage;
use crate::timefmt::{parse_duration, parse_time, rfc3339};
use crate::wal::LoggedSample;

/// A compressed remote-write body; it may decompress to `remote_write::MAX_DECOMPRESSED_BYTES`.
const MAX_REMOTE_WRITE_BYTES: usize = 32 << 20;
/// An import body (text, uncompressed).
const MAX_IMPORT_BYTES: usize = 512 << 20;

/// The most points a range query may return per series (Prometheus's limit).
const MAX_POINTS_PER_SERIES: i64 = 11_000;

pub struct Api {
    /// `POST /-/reload` is allowed (`standalone.server.enable_lifecycle`).
    pub lifecycle: bool,
    pub storage: Arc<Storage>,
    pub engine: Arc<Engine>,
    pub scrapes: Arc<ScrapeManager>,
    pub rules: Arc<RuleManager>,
    pub metrics: Metrics,
}

pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/query_exemplars", get(exemplars).post(exemplars))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route(
            "/api/v1/write",
            post(remote_write).layer(DefaultBodyLimit::max(MAX_REMOTE_WRITE_BYTES)),
        )
        .route(
            "/api/v1/import",
            post(import).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
        .route("/-/reload", post(reload).put(reload))
        .route("/-/healthy", get(|| async { "nightlight is Healthy.\n" }))
        .route("/-/ready", get(|| async { "nightlight is Ready.\n" }))
        .merge(crate::ui::router())
        .with_state(api)
}

/// An API failure in Prometheus's envelope.
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn bad_data(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "bad_data",
            message: message.into(),
        }
    }

    fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "internal",
            message: message.into(),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(err: QueryError) -> Self {
        let (status, kind) = match &err {
            QueryError::BadData(_) => (StatusCode::BAD_REQUEST, "bad_data"),
            QueryError::Execution(_) | QueryError::TooManySamples(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "execution")
            }
            QueryError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            QueryError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self {
            status,
            kind,
            message: err.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"status": "error", "errorType": self.kind, "error": self.message});
        (self.status, axum::Json(body)).into_response()
    }
}

fn success(data: impl Serialize) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

/// Parameters from the query string and, for POST, a form body; repeated keys kept.
struct Params(Vec<(String, String)>);

impl Params {
    fn new(query: Option<String>, headers: &HeaderMap, body: &Bytes) -> Self {
        let mut pairs: Vec<(String, String)> = query
            .as_deref()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        Self(pairs)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    fn time(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.parsed(name, parse_time, "timestamp")
    }

    fn duration(&self, name: &str) -> Result<Option<Duration>, ApiError> {
        self.parsed(name, parse_duration, "duration")
    }

    /// Parameter `name` through `parse`; a value it refuses is `bad_data`, as Prometheus says.
    fn parsed<T>(
        &self,
        name: &str,
        parse: fn(&str) -> Option<T>,
        kind: &str,
    ) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|text| {
                parse(text).ok_or_else(|| {
                    ApiError::bad_data(format!(
                        "invalid parameter \"{name}\": cannot parse \"{text}\" to a valid {kind}"
                    ))
                })
            })
            .transpose()
    }

    fn matchers(&self) -> Result<Vec<Vec<Matcher>>, ApiError> {
        self.all("match[]")
            .into_iter()
            .map(|text| match Engine::parse(text) {
                Ok(Expr::VectorSelector(selector)) => {
                    let mut matchers = selector.matchers.matchers;
                    if let Some(name) = selector.name {
                        matchers.push(Matcher::new(
                            promql_parser::label::MatchOp::Equal,
                            crate::labels::METRIC_NAME,
                            &name,
                        ));
                    }
                    Ok(matchers)
                }
                Ok(_) => Err(ApiError::bad_data(format!(
                    "invalid parameter \"match[]\": {text:?} is not a series selector"
                ))),
                Err(err) => Err(ApiError::bad_data(err.to_string())),
            })
            .collect()
    }
}

fn seconds(t: i64) -> f64 {
    t as f64 / 1000.0
}

fn value_json(value: Value, t: i64) -> Json {
    match value {
        Value::Scalar(v) => {
            json!({"resultType": "scalar", "result": [seconds(t), format_value(v)]})
        }
        Value::String(s) => json!({"resultType": "string", "result": [seconds(t), s]}),
        Value::Vector(samples) => json!({
            "resultType": "vector",
            "result": samples.into_iter().map(|s| json!({
                "metric": s.labels,
                "value": [seconds(s.t), format_value(s.v)],
            })).collect::<Vec<_>>(),
        }),
        Value::Matrix(series) => json!({
            "resultType": "matrix",
            "result": series.into_iter().map(|s| json!({
                "metric": s.labels,
                "values": s.points.into_iter().map(|(t, v)| json!([seconds(t), format_value(v)])).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        }),
    }
}

/// Runs a query off the async threads and records its outcome.
async fn run_query<T: Send + 'static>(
    api: &Arc<Api>,
    endpoint: &'static str,
    work: impl FnOnce(&Api) -> Result<T, QueryError> + Send + 'static,
) -> Result<T, ApiError> {
    let started = Instant::now();
    let worker = api.clone();
    let result = tokio::task::spawn_blocking(move || work(&worker))
        .await
        .map_err(|err| ApiError::internal(format!("the query task failed: {err}")))?;
    api.metrics
        .observe_query(endpoint, result.is_ok(), started.elapsed());
    if let Err(err) = &result {
        tracing::debug!("{endpoint} failed: {err}");
    }
    result.map_err(ApiError::from)
}

async fn query(
    State(api): State<Arc<Api>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::new(raw, &headers, &body);
    let text = params
        .get("query")
        .ok_or_else(|| ApiError::bad_data("invalid parameter \"query\": no query given"))?
        .to_owned();
    let t = params.time("time")?.unwrap_or_else(now_ms);
    let timeout = params.duration("timeout")?;
    let value = run_query(&api, "query", move |api| {
        api.engine.instant(&text, t, timeout)
    })
    .await?;
    Ok(success(value_json(value, t)))
}

async fn query_range(
    State(api): State<Arc<Api>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::new(raw, &headers, &body);
    let text = params
        .get("query")
        .ok_or_else(|| ApiError::bad_data("invalid parameter \"query\": no query given"))?
        .to_owned();
    let start = params
        .time("start")?
        .ok_or_else(|| ApiError::bad_data("invalid parameter \"start\": missing"))?;
    let end = params
        .time("end")?
        .ok_or_else(|| ApiError::bad_data("invalid parameter \"end\": missing"))?;
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step = params
        .duration("step")?
        .ok_or_else(|| ApiError::bad_data("invalid parameter \"step\": missing"))?;
    let step = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
    if step <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS_PER_SERIES {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let timeout = params.duration("timeout")?;
    let series = run_query(&api, "query_range", move |api| {
        api.engine.range(&text, start, end, step, timeout)
    })
    .await?;
    Ok(success(value_json(Value::Matrix(series), end)))
}

async fn series(
    State(api): State<Arc<Api>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::new(raw, &headers, &body);
    let selectors = params.matchers()?;
    if selectors.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let range = (params.time("start")?, params.time("end")?);
    let found = run_query(&api, "series", move |api| {
        let mut found: BTreeSet<Labels> = BTreeSet::new();
        for matchers in &selectors {
            match range {
                (None, None) => found.extend(api.storage.series_labels(matchers)),
                (start, end) => found.extend(
                    api.storage
                        .select(matchers, start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX))?
                        .into_iter()
                        .map(|s| s.labels),
                ),
            }
        }
        Ok(found)
    })
    .await?;
    Ok(success(found))
}

async fn labels(
    State(api): State<Arc<Api>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::new(raw, &headers, &body);
    let selectors = params.matchers()?;
    if selectors.is_empty() {
        return Ok(success(api.storage.label_names()));
    }
    let mut names = BTreeSet::new();
    for matchers in &selectors {
        for labels in api.storage.series_labels(matchers) {
            names.extend(labels.iter().map(|l| l.name.clone()));
        }
    }
    Ok(success(names))
}

async fn label_values(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let params = Params::new(raw, &headers, &body);
    let selectors = params.matchers()?;
    if selectors.is_empty() {
        return Ok(success(api.storage.label_values(&name)));
    }
    let mut values = BTreeSet::new();
    for matchers in &selectors {
        for labels in api.storage.series_labels(matchers) {
            if let Some(value) = labels.get(&name) {
                values.insert(value.to_owned());
            }
        }
    }
    Ok(success(values))
}

async fn metadata(State(api): State<Arc<Api>>, RawQuery(raw): RawQuery) -> Response {
    let params = Params::new(raw, &HeaderMap::new(), &Bytes::new());
    let wanted = params.get("metric");
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let mut out: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for (family, entry) in api.scrapes.metadata() {
        if wanted.is_some_and(|w| w != family) {
            continue;
        }
        out.insert(
            family,
            vec![json!({"type": entry.kind.as_str(), "help": entry.help, "unit": entry.unit})],
        );
    }
    if let Some(limit) = limit {
        out = out.into_iter().take(limit).collect();
    }
    success(out)
}

async fn targets(State(api): State<Arc<Api>>) -> Response {
    let active: Vec<Json> = api
        .scrapes
        .statuses()
        .into_iter()
        .map(|status| {
            let last_scrape = rfc3339(
                status
                    .last_scrape
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as i64),
            );
            json!({
                "discoveredLabels": {
                    "__address__": status.target.labels.get("instance").unwrap_or(""),
                    "__scheme__": status.target.url.split("://").next().unwrap_or("http"),
                    "job": status.target.job,
                },
                "labels": status.target.labels,
                "scrapePool": status.target.job,
                "scrapeUrl": status.target.url,
                "globalUrl": status.target.url,
                "lastError": status.last_error,
                "lastScrape": last_scrape,
                "lastScrapeDuration": status.last_duration.as_secs_f64(),
                "health": status.health,
                "scrapeInterval": format!("{}s", status.target.interval.as_secs()),
                "scrapeTimeout": format!("{}s", status.target.timeout.as_secs()),
            })
        })
        .collect();
    success(json!({"activeTargets": active, "droppedTargets": []}))
}

async fn rules(State(api): State<Arc<Api>>, RawQuery(query): RawQuery) -> Response {
    let params = Params::new(query, &HeaderMap::new(), &Bytes::new());
    match params.get("type") {
        None | Some("" | "alert" | "record") => success(api.rules.rules_json(params.get("type"))),
        Some(other) => ApiError::bad_data(format!(
            "invalid parameter \"type\": {other:?}, accepted \"alert\" or \"record\""
        ))
        .into_response(),
    }
}

async fn alerts(State(api): State<Arc<Api>>) -> Response {
    success(api.rules.alerts_json())
}

/// Prometheus's lifecycle reload: here, the rule files.
async fn reload(State(api): State<Arc<Api>>) -> Response {
    if !api.lifecycle {
        return (
            StatusCode::FORBIDDEN,
            "Lifecycle API is not enabled (standalone.server.enable_lifecycle); SIGHUP reloads.\n",
        )
            .into_response();
    }
    match api.rules.reload().await {
        Ok(rules) => (StatusCode::OK, format!("reloaded {rules} rules\n")).into_response(),
        Err(errors) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload the rule files; the running rules stay:\n{errors}\n"),
        )
            .into_response(),
    }
}

async fn exemplars() -> Response {
    // Exemplars are parsed but not stored; Grafana asks anyway.
    success(Vec::<Json>::new())
}

async fn buildinfo() -> Response {
    success(json!({
        // The Prometheus API level nightlight answers like (Grafana picks features by it).
        "version": "2.42.0",
        "revision": concat!("nightlight-", env!("CARGO_PKG_VERSION")),
        "branch": "nightlight",
        "buildUser": "photoncloud",
        "buildDate": "",
        "goVersion": "none (Rust)",
    }))
}

/// A remote-write 1.0 request: 204 when stored; 400 (not retried by senders) for a malformed
/// request or refused samples; 500 (retried) when storage failed.
async fn remote_write(State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let request = match remote_write::decode(&body) {
        Ok(request) => request,
        Err(err) => {
            tracing::warn!("remote write refused: {err}");
            return (StatusCode::BAD_REQUEST, format!("{err}\n")).into_response();
        }
    };
    let mut label_sets = Vec::with_capacity(request.timeseries.len());
    for (index, series) in request.timeseries.iter().enumerate() {
        match remote_write::series_labels(series, index) {
            Ok(labels) => label_sets.push(labels),
            Err(err) => {
                tracing::warn!("remote write refused: {err}");
                return (StatusCode::BAD_REQUEST, format!("{err}\n")).into_response();
            }
        }
    }
    let points: Vec<Vec<(i64, f64)>> = request
        .timeseries
        .iter()
        .map(|series| {
            series
                .samples
                .iter()
                .map(|s| (s.timestamp, s.value))
                .collect()
        })
        .collect();
    let storage = api.storage.clone();
    let stored =
        tokio::task::spawn_blocking(move || store_points(&storage, &label_sets, points)).await;
    match stored {
        Ok(Ok(outcome)) => {
            api.metrics
                .remote_write_samples
                .inc_by(outcome.appended as u64);
            if outcome.out_of_order > 0 {
                let message = format!(
                    "out of order sample: {} of {} samples were older than their series' newest and were dropped",
                    outcome.out_of_order,
                    outcome.appended + outcome.out_of_order + outcome.duplicates
                );
                tracing::warn!("remote write: {message}");
                return (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response();
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Err(err)) => {
            tracing::error!("remote write could not be stored: {err}");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n")).into_response()
        }
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n")).into_response(),
    }
}

/// Stores each series' points, oldest first.
fn store_points(
    storage: &Storage,
    label_sets: &[Labels],
    points: Vec<Vec<(i64, f64)>>,
) -> Result<crate::storage::AppendOutcome, crate::storage::StorageError> {
    let ids = storage.resolve(label_sets)?;
    let mut samples = Vec::with_capacity(points.iter().map(Vec::len).sum());
    for (id, mut series_points) in ids.into_iter().zip(points) {
        series_points.sort_by_key(|(t, _)| *t);
        samples.extend(
            series_points
                .into_iter()
                .map(|(t, v)| LoggedSample { series: id, t, v }),
        );
    }
    storage.append(&samples)
}

/// A text or OpenMetrics exposition with timestamps (backfill, or loading the same data into
/// nightlight and Prometheus); samples without a timestamp get the time of the request.
async fn import(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    let format = Format::from_content_type(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let Ok(text) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "the body is not UTF-8\n").into_response();
    };
    let scraped = match exposition::parse(text, format) {
        Ok(scraped) => scraped,
        Err(err) => {
            return (StatusCode::BAD_REQUEST, format!("import refused: {err}\n")).into_response();
        }
    };
    let now = now_ms();
    let mut by_series: HashMap<Labels, Vec<(i64, f64)>> = HashMap::new();
    for sample in scraped.samples {
        by_series
            .entry(sample.labels)
            .or_default()
            .push((sample.timestamp_ms.unwrap_or(now), sample.value));
    }
    let (label_sets, points): (Vec<Labels>, Vec<Vec<(i64, f64)>>) = by_series.into_iter().unzip();
    let storage = api.storage.clone();
    match tokio::task::spawn_blocking(move || store_points(&storage, &label_sets, points)).await {
        Ok(Ok(outcome)) if outcome.out_of_order == 0 => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(outcome)) => (
            StatusCode::BAD_REQUEST,
            format!(
                "{} sample(s) were not newer than their series' newest sample and were dropped; {} stored\n",
                outcome.out_of_order, outcome.appended
            ),
        )
            .into_response(),
        Ok(Err(err)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n")).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n")).into_response(),
    }
}
