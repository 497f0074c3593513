//! Starts the real lightningstor binary on free ports in a temporary directory and talks S3 to
//! it with the AWS SDK for Rust, configured as users do (only the endpoint and path-style
//! addressing set; checksums and signing left at their defaults).

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

pub const ACCESS_KEY: &str = "AKIATESTLIGHTNING01";
pub const SECRET_KEY: &str = "test/secret+key/for+lightningstor0000000";

pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub struct Lightningstor {
    pub s3_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub log: PathBuf,
    settings: Vec<String>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Lightningstor {
    /// A server with the test key pair; `settings` are more `--set KEY=VALUE`.
    pub async fn start(settings: &[&str]) -> Self {
        let mut all = vec![
            format!("standalone.auth.access_key={ACCESS_KEY}"),
            format!("standalone.auth.secret_key={SECRET_KEY}"),
        ];
        all.extend(settings.iter().map(|setting| (*setting).to_owned()));
        Self::start_with(all).await
    }

    /// A server configured by `settings` alone.
    pub async fn start_with(settings: Vec<String>) -> Self {
        let mut server = Self {
            s3_addr: free_addr(),
            grpc_addr: free_addr(),
            admin_addr: free_addr(),
            log: PathBuf::new(),
            settings,
            child: None,
            dir: tempfile::TempDir::new().unwrap(),
        };
        server.log = server.dir.path().join("lightningstor.log");
        server.spawn().await;
        server
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn meta_dir(&self) -> PathBuf {
        self.dir.path().join("meta")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    async fn spawn(&mut self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lightningstor"));
        command
            .arg("--component-id")
            .arg("lightningstor-test")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--metadata-dir")
            .arg(self.meta_dir())
            .arg("--s3-addr")
            .arg(self.s3_addr.to_string())
            .arg("--grpc-addr")
            .arg(self.grpc_addr.to_string())
            .arg("--admin-api-addr")
            .arg(self.admin_addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .unwrap(),
            );
        for setting in &self.settings {
            command.arg("--set").arg(setting);
        }
        self.child = Some(command.spawn().expect("lightningstor binary starts"));
        self.wait_until_up().await;
    }

    async fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://{}/health", self.admin_addr);
        while reqwest::get(&url).await.is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("lightningstor exited ({status}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "lightningstor did not come up:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, as a crash or power cut would stop it (without the power cut).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same directories and ports.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.s3_addr)
    }

    pub fn client(&self) -> Client {
        self.client_with(ACCESS_KEY, SECRET_KEY)
    }

    pub fn client_with(&self, access_key: &str, secret_key: &str) -> Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.endpoint())
            .credentials_provider(Credentials::new(access_key, secret_key, None, None, "test"))
            .force_path_style(true)
            .build();
        Client::from_conf(config)
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn health(&self) -> (u16, serde_json::Value) {
        let response = reqwest::get(format!("http://{}/health", self.admin_addr))
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Every file under the data directory, relative to it.
    pub fn data_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().to_owned());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data_dir(), &self.data_dir(), &mut out);
        out
    }
}

impl Drop for Lightningstor {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The S3 error code of a failed SDK call.
pub fn error_code<E, R>(result: Result<R, aws_sdk_s3::error::SdkError<E>>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(err) => match err.as_service_error() {
            Some(service) => service.code().unwrap_or("<no code>").to_owned(),
            None => {
                let status = err.raw_response().map(|raw| raw.status().as_u16());
                format!("<not a service error: status {status:?}: {err:?}>")
            }
        },
    }
}

/// The HTTP status of a failed SDK call.
pub fn error_status<E: std::fmt::Debug, R: std::fmt::Debug>(
    result: Result<R, aws_sdk_s3::error::SdkError<E>>,
) -> u16 {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(err) => err
            .raw_response()
            .map(|raw| raw.status().as_u16())
            .unwrap_or_else(|| panic!("no HTTP response: {err:?}")),
    }
}

/// `len` bytes that differ from any other call's with another seed.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8))
        .collect()
}

pub async fn body_bytes(output: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    output.body.collect().await.unwrap().into_bytes().to_vec()
}
