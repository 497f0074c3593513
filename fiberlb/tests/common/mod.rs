//! Starts the real fiberlb binary with a config file, and small real backends for it: HTTP
//! servers that say who they are, TCP and UDP echo servers.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port free for both TCP and UDP on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    loop {
        let port = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub struct Fiberlb {
    pub admin: String,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Fiberlb {
    /// Runs fiberlb with `loadbalancers` (TOML of `[[standalone.loadbalancers]]` tables) and
    /// `server` (more `[standalone.server]` keys).
    pub async fn start(loadbalancers: &str, server: &str) -> Self {
        let dir = tempfile::TempDir::new().unwrap();
        let admin_port = free_port();
        let config = dir.path().join("fiberlb.toml");
        std::fs::write(&config, config_text(admin_port, server, loadbalancers)).unwrap();
        let log = dir.path().join("fiberlb.log");
        let child = Command::new(env!("CARGO_BIN_EXE_fiberlb"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("fiberlb binary starts");
        let fiberlb = Self {
            admin: format!("http://127.0.0.1:{admin_port}"),
            config,
            log,
            child,
            dir,
        };
        fiberlb.wait_until_up().await;
        fiberlb
    }

    async fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("{}/health", self.admin);
        while reqwest::get(&url).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "fiberlb did not come up:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit; its status if it did.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    pub fn rewrite_config(&self, loadbalancers: &str, server: &str) {
        let admin_port: u16 = self.admin.rsplit(':').next().unwrap().parse().unwrap();
        let staging = self.dir.path().join("staging.toml");
        std::fs::write(&staging, config_text(admin_port, server, loadbalancers)).unwrap();
        std::fs::rename(staging, &self.config).unwrap();
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.admin));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.api(reqwest::Method::GET, path, None).await
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A backend's state as the API shows it.
    pub async fn backend_state(&self, lb: &str, backend: &str) -> String {
        let (_, detail) = self.get(&format!("/api/v1/loadbalancers/{lb}")).await;
        detail["backend_status"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == backend)
            .map(|b| b["state"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

impl Drop for Fiberlb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_text(admin_port: u16, server: &str, loadbalancers: &str) -> String {
    format!(
        "[photon]\ncomponent_id = \"fiberlb-test\"\n\n[standalone.server]\nadmin_api_addr = \"127.0.0.1:{admin_port}\"\ncert_reload_interval_sec = 1\n{server}\n\n{loadbalancers}\n"
    )
}

/// `[[standalone.loadbalancers]]` text for one load balancer on 127.0.0.1:`port`.
pub fn lb_toml(
    name: &str,
    port: u16,
    protocol: &str,
    extra: &str,
    backends: &[(&str, SocketAddr, u32)],
) -> String {
    let mut text = format!(
        "[[standalone.loadbalancers]]\nname = \"{name}\"\nvip = \"127.0.0.1\"\nport = {port}\nprotocol = \"{protocol}\"\n{extra}\n"
    );
    for (backend, addr, weight) in backends {
        text.push_str(&format!(
            "[[standalone.loadbalancers.backends]]\nname = \"{backend}\"\naddress = \"{}\"\nport = {}\nweight = {weight}\n",
            addr.ip(),
            addr.port()
        ));
    }
    text
}

/// fiberlb with one load balancer over `backends` on a free port (TCP, or TCP and UDP for a
/// `udp` one), and that port.
pub async fn start_lb(
    name: &str,
    protocol: &str,
    extra: &str,
    backends: &[(&str, SocketAddr, u32)],
) -> (Fiberlb, u16) {
    let port = if protocol == "udp" {
        free_udp_port()
    } else {
        free_port()
    };
    let lb = Fiberlb::start(&lb_toml(name, port, protocol, extra, backends), "").await;
    (lb, port)
}

pub async fn wait_for(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An HTTP backend: answers every path with JSON naming itself and echoing the request's
/// headers; `/health` answers with a status the test sets; `/slow` waits two seconds;
/// `/chunked` streams a chunked body. It runs on a runtime of its own, so dropping it closes
/// every connection at once, as a killed process would.
pub struct HttpBackend {
    pub name: String,
    pub addr: SocketAddr,
    pub health_status: Arc<AtomicU16>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Clone)]
struct BackendState {
    name: String,
    health_status: Arc<AtomicU16>,
}

impl HttpBackend {
    pub async fn start(name: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let health_status = Arc::new(AtomicU16::new(200));
        let state = BackendState {
            name: name.to_owned(),
            health_status: health_status.clone(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(answer).with_state(state);
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stopped => {}
                }
            });
        });
        Self {
            name: name.to_owned(),
            addr,
            health_status,
            stop: Some(stop),
        }
    }

    pub fn set_health(&self, status: u16) {
        self.health_status.store(status, Ordering::Relaxed);
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn answer(State(state): State<BackendState>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if path == "/health" {
        let status = StatusCode::from_u16(state.health_status.load(Ordering::Relaxed)).unwrap();
        return (status, "health").into_response();
    }
    if path == "/chunked" {
        // No length known up front: hyper sends it chunked.
        let pieces = ["chunk-1 ", "chunk-2 ", "chunk-3"].map(Ok::<_, std::io::Error>);
        return axum::body::Body::from_stream(futures::stream::iter(pieces)).into_response();
    }
    if path == "/slow" {
        // Long enough for a test to act while it is in flight, on a loaded machine too.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    axum::Json(serde_json::json!({
        "backend": state.name,
        "path": path,
        "headers": headers,
        "body_bytes": body.len(),
    }))
    .into_response()
}

/// A TCP backend: sends `<name>\n`, then reads until the client half-closes and answers
/// `<name>:<bytes received>` before closing.
pub async fn tcp_backend(name: &str) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let name = name.to_owned();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let name = name.clone();
            tokio::spawn(async move {
                let _ = stream.write_all(format!("{name}\n").as_bytes()).await;
                let mut received = Vec::new();
                let mut buffer = [0u8; 4096];
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            received.extend_from_slice(&buffer[..n]);
                            // An echo for interactive tests.
                            if received.ends_with(b"\n") {
                                let line = std::mem::take(&mut received);
                                let _ = stream.write_all(&line).await;
                            }
                        }
                    }
                }
                let _ = stream
                    .write_all(format!("{name}:{}", received.len()).as_bytes())
                    .await;
            });
        }
    });
    (addr, task)
}

/// Connects through the load balancer and returns the backend's name line.
pub async fn tcp_hello(addr: SocketAddr) -> (String, TcpStream) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stream.read_exact(&mut byte).await.is_ok() && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    (String::from_utf8(line).unwrap(), stream)
}

/// A UDP backend answering each datagram with `<name>:<datagram>`.
pub async fn udp_backend(name: &str) -> (SocketAddr, JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let name = name.to_owned();
    let task = tokio::spawn(async move {
        let mut buffer = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buffer).await {
            let reply = [name.as_bytes(), b":", &buffer[..n]].concat();
            let _ = socket.send_to(&reply, from).await;
        }
    });
    (addr, task)
}

/// GETs `url` and returns the answering backend's name ("" when fiberlb answered itself).
pub async fn who(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, body["backend"].as_str().unwrap_or("").to_owned())
}

pub fn count<'a>(names: impl IntoIterator<Item = &'a String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for name in names {
        *counts.entry(name.clone()).or_insert(0) += 1;
    }
    counts
}
