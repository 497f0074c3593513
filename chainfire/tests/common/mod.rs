//! Starts the real chainfire binary on free ports with its own data directory.

#![allow(dead_code)]

pub mod cluster;
pub mod history;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::Client;

pub struct Chainfire {
    pub client_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub data_dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Chainfire {
    /// A new member with a fresh data directory; `extra` are more `--set KEY=VALUE` settings.
    pub async fn start(extra: &[&str]) -> Self {
        let dir = tempfile::TempDir::new().unwrap();
        let mut server = Self {
            client_addr: free_addr(),
            admin_addr: free_addr(),
            data_dir: dir.path().join("data"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
            _dir: Some(dir),
        };
        server.launch().await;
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.client_addr)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    async fn launch(&mut self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chainfire"));
        command
            .arg("--component-id")
            .arg("chainfire-test")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--client-addr")
            .arg(self.client_addr.to_string())
            .arg("--set")
            .arg(format!("photon.metrics.endpoint={}", self.admin_addr))
            .arg("--log-level")
            .arg("warn")
            .stdin(Stdio::null());
        for setting in &self.extra {
            command.arg("--set").arg(setting);
        }
        self.child = Some(command.spawn().expect("chainfire binary starts"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut client) = Client::connect([self.endpoint()], None).await
                && client.status().await.is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "chainfire did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect([self.endpoint()], None).await.unwrap()
    }

    /// kill -9, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM and wait for the exit code.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap()
    }

    /// Starts again on the same data directory and ports.
    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }
}

impl Drop for Chainfire {
    fn drop(&mut self) {
        self.kill();
    }
}
