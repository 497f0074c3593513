//! Starts the real nightlight binary on a data directory that outlives it (for restarts), and
//! exporters for it to scrape: small HTTP servers whose exposition a test changes at will.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::Value;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Nightlight {
    pub url: String,
    pub log: PathBuf,
    child: Child,
}

impl Nightlight {
    /// Runs nightlight on `data_dir` with `extra` TOML appended to the config (scrape targets,
    /// more `[standalone.collection]` keys).
    pub async fn start(data_dir: &Path, collection: &str, extra: &str) -> Self {
        Self::start_with_server(data_dir, "", collection, extra).await
    }

    /// [`Nightlight::start`] with more `[standalone.server]` keys.
    pub async fn start_with_server(
        data_dir: &Path,
        server: &str,
        collection: &str,
        extra: &str,
    ) -> Self {
        let port = free_port();
        let config = data_dir.with_extension("toml");
        std::fs::write(
            &config,
            format!(
                r#"[photon]
component_id = "test-nightlight"

[standalone.server]
http_addr = "127.0.0.1:{port}"
{server}

[standalone.storage]
data_dir = "{}"
# Small segments, so tests that write a lot checkpoint on the way.
wal_segment_mb = 1

[standalone.collection]
scrape_interval_sec = 1
scrape_timeout_sec = 1
self_scrape = false
{collection}

{extra}
"#,
                data_dir.display()
            ),
        )
        .unwrap();
        let log = data_dir.with_extension("log");
        let child = Command::new(env!("CARGO_BIN_EXE_nightlight"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .expect("nightlight binary starts");
        let nightlight = Self {
            url: format!("http://127.0.0.1:{port}"),
            log,
            child,
        };
        nightlight.wait_until_up().await;
        nightlight
    }

    async fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/-/ready", self.url);
        while reqwest::get(&url).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "nightlight did not come up:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGHUP: nightlight reloads its rule files.
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL: no chance to flush or checkpoint.
    pub fn kill_hard(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// `/api/v1/query` at `time` (now when None); the whole JSON answer and its HTTP status.
    pub async fn query_at(&self, query: &str, time: Option<f64>) -> (u16, Value) {
        let mut form = vec![("query", query.to_owned())];
        if let Some(time) = time {
            form.push(("time", time.to_string()));
        }
        let response = reqwest::Client::new()
            .post(format!("{}/api/v1/query", self.url))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// The result of a successful instant query now.
    pub async fn query(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.query_at(query, None).await;
        assert_eq!(status, 200, "{query}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The single value of an instant query, if it returned exactly one element.
    pub async fn value(&self, query: &str) -> Option<f64> {
        let result = self.query(query).await;
        (result.len() == 1).then(|| result[0]["value"][1].as_str().unwrap().parse().unwrap())
    }

    /// Polls until `query` has exactly one element with a value `accept`s.
    pub async fn wait_for(&self, query: &str, accept: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(value) = self.value(query).await
                && accept(value)
            {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{query} never reached the expected value (last: {:?})\n{}",
                self.value(query).await,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path}", self.url)).await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Nightlight {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP exporter serving whatever exposition the test last set, with its content type.
#[derive(Clone)]
pub struct Exporter {
    pub address: String,
    body: Arc<Mutex<(String, &'static str, u16)>>,
    /// The Accept-Encoding of the last scrape.
    pub accept_encoding: Arc<Mutex<String>>,
}

impl Exporter {
    pub async fn start(body: &str) -> Self {
        let state: Arc<Mutex<(String, &'static str, u16)>> = Arc::new(Mutex::new((
            body.to_owned(),
            "text/plain; version=0.0.4",
            200,
        )));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let served = state.clone();
        let accept_encoding = Arc::new(Mutex::new(String::new()));
        let seen = accept_encoding.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let served = served.clone();
                let seen = seen.clone();
                async move {
                    let (body, content_type, status) = served.lock().unwrap().clone();
                    let wants_gzip = headers
                        .get(header::ACCEPT_ENCODING)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    *seen.lock().unwrap() = wants_gzip.clone();
                    let status = StatusCode::from_u16(status).unwrap();
                    if wants_gzip.contains("gzip") {
                        use std::io::Write;
                        let mut encoder =
                            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                        encoder.write_all(body.as_bytes()).unwrap();
                        let compressed = encoder.finish().unwrap();
                        return (
                            status,
                            [
                                (header::CONTENT_TYPE, content_type),
                                (header::CONTENT_ENCODING, "gzip"),
                            ],
                            compressed,
                        )
                            .into_response();
                    }
                    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            address,
            body: state,
            accept_encoding,
        }
    }

    pub fn set(&self, body: &str) {
        self.body.lock().unwrap().0 = body.to_owned();
    }

    pub fn set_openmetrics(&self, body: &str) {
        *self.body.lock().unwrap() = (
            body.to_owned(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            200,
        );
    }

    pub fn set_status(&self, status: u16) {
        self.body.lock().unwrap().2 = status;
    }
}

/// An HTTP server that keeps every JSON body POSTed to it: a webhook receiver.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    /// What it answers (200 unless a test says otherwise).
    status: Arc<Mutex<u16>>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// On a given port, for a receiver that comes up late.
    pub async fn start_on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let status = Arc::new(Mutex::new(200));
        let (kept, answer) = (bodies.clone(), status.clone());
        let app = axum::Router::new().fallback(axum::routing::post(
            move |axum::Json(body): axum::Json<Value>| {
                let (kept, answer) = (kept.clone(), answer.clone());
                async move {
                    kept.lock().unwrap().push(body);
                    StatusCode::from_u16(*answer.lock().unwrap()).unwrap()
                }
            },
        ));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://127.0.0.1:{port}/alerts"),
            bodies,
            status,
        }
    }

    pub fn set_status(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }

    pub fn received(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Waits until `count` bodies have arrived, and returns them all.
    pub async fn wait_for(&self, count: usize, log: impl Fn() -> String) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} notifications arrived: {received:#?}\n{}",
                received.len(),
                log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `[[standalone.scrape_targets]]` for `job` scraping these exporters.
pub fn scrape_job(job: &str, exporters: &[&Exporter], more: &str) -> String {
    let addresses: Vec<String> = exporters
        .iter()
        .map(|e| format!("{:?}", e.address))
        .collect();
    format!(
        "[[standalone.scrape_targets]]\nname = \"{job}\"\nstatic_configs = [{}]\n{more}\n",
        addresses.join(", ")
    )
}
