//! Starts the real flashdns binary on free ports with a copy of the test zones, and talks DNS
//! to it with hickory's client or raw packets.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The directory of zone files the tests serve.
pub fn test_zones() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zones")
}

/// A port free for both UDP and TCP on 127.0.0.1.
pub fn free_dns_addr() -> SocketAddr {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        if UdpSocket::bind(addr).is_ok() {
            return addr;
        }
    }
}

pub struct Flashdns {
    pub dns_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub zone_dir: PathBuf,
    pub log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Flashdns {
    /// Serves a copy of `tests/zones`; `settings` are more `--set KEY=VALUE`.
    pub async fn start(settings: &[&str]) -> Self {
        let dir = tempfile::TempDir::new().unwrap();
        let zone_dir = dir.path().join("zones");
        std::fs::create_dir(&zone_dir).unwrap();
        for entry in std::fs::read_dir(test_zones()).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), zone_dir.join(entry.file_name())).unwrap();
        }
        Self::start_in(dir, zone_dir, &[], settings).await
    }

    /// Runs with `config` (a file) and no zone directory of the tests' own.
    pub async fn start_with_config(
        dir: tempfile::TempDir,
        config: &Path,
        settings: &[&str],
    ) -> Self {
        let zone_dir = dir.path().to_owned();
        let args = ["--config".to_owned(), config.display().to_string()];
        Self::start_in(dir, zone_dir, &args, settings).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        zone_dir: PathBuf,
        args: &[String],
        settings: &[&str],
    ) -> Self {
        let dns_addr = free_dns_addr();
        let admin_addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let log = dir.path().join("flashdns.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_flashdns"));
        command
            .args(args)
            .arg("--component-id")
            .arg("flashdns-test")
            .arg("--dns-addr")
            .arg(dns_addr.to_string())
            .arg("--admin-api-addr")
            .arg(admin_addr.to_string())
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if args.is_empty() {
            command.arg("--zone-dir").arg(&zone_dir);
        }
        for setting in settings {
            command.arg("--set").arg(setting);
        }
        let child = command.spawn().expect("flashdns binary starts");
        let server = Self {
            dns_addr,
            admin_addr,
            zone_dir,
            log,
            child,
            _dir: dir,
        };
        server.wait_until_up().await;
        server
    }

    async fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("http://{}/health", self.admin_addr);
        while reqwest::get(&url).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "flashdns did not come up:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = reqwest::get(format!("http://{}{path}", self.admin_addr))
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn udp_client(&self) -> Client<TokioRuntimeProvider> {
        let stream =
            UdpClientStream::builder(self.dns_addr, TokioRuntimeProvider::default()).build();
        let (client, background) = Client::from_sender(stream);
        tokio::spawn(background);
        client
    }

    pub async fn tcp_client(&self) -> Client<TokioRuntimeProvider> {
        let (stream, sender) =
            TcpClientStream::new(self.dns_addr, None, None, TokioRuntimeProvider::default());
        let (client, background) = Client::new(stream.await.unwrap(), sender);
        tokio::spawn(background);
        client
    }
}

impl Drop for Flashdns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

/// A query message; `payload` adds EDNS with that buffer size.
pub fn query_message(id: u16, qname: &str, qtype: RecordType, payload: Option<u16>) -> Message {
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.op_code = OpCode::Query;
    message.metadata.message_type = MessageType::Query;
    let mut query = Query::query(name(qname), qtype);
    query.set_query_class(DNSClass::IN);
    message.add_query(query);
    if let Some(payload) = payload {
        let mut edns = hickory_proto::op::Edns::new();
        edns.set_max_payload(payload);
        message.edns = Some(edns);
    }
    message
}

/// Sends `packet` over UDP and returns the raw answer, or `None` after `wait`.
pub async fn udp_exchange(server: SocketAddr, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(packet, server).await.unwrap();
    let mut buffer = vec![0u8; 65535];
    match tokio::time::timeout(wait, socket.recv_from(&mut buffer)).await {
        Ok(Ok((length, _))) => Some(buffer[..length].to_vec()),
        _ => None,
    }
}

pub async fn udp_query(server: SocketAddr, message: &Message) -> Message {
    let answer = udp_exchange(server, &message.to_vec().unwrap(), Duration::from_secs(5))
        .await
        .expect("an answer over UDP");
    Message::from_vec(&answer).unwrap()
}

/// Writes each message length-prefixed on one TCP connection, all at once, then reads
/// `expected` answers.
pub async fn tcp_pipeline(
    server: SocketAddr,
    messages: &[Message],
    expected: usize,
) -> Vec<Message> {
    let mut stream = tokio::net::TcpStream::connect(server).await.unwrap();
    let mut batch = Vec::new();
    for message in messages {
        let bytes = message.to_vec().unwrap();
        batch.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        batch.extend_from_slice(&bytes);
    }
    stream.write_all(&batch).await.unwrap();
    let mut answers = Vec::new();
    for _ in 0..expected {
        let length = stream.read_u16().await.unwrap();
        let mut buffer = vec![0u8; usize::from(length)];
        stream.read_exact(&mut buffer).await.unwrap();
        answers.push(Message::from_vec(&buffer).unwrap());
    }
    answers
}

/// The records of a section as `name type data` lines, sorted, names lower-cased.
pub fn section(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut lines: Vec<String> = records
        .iter()
        .map(|record| {
            format!(
                "{} {} {} {}",
                record.name.to_lowercase(),
                record.ttl,
                record.record_type(),
                record.data
            )
        })
        .collect();
    lines.sort();
    lines
}

pub async fn wait_for(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `client` asks `qname`/`qtype` and gets the whole message back.
pub async fn ask(
    client: &mut Client<TokioRuntimeProvider>,
    qname: &str,
    qtype: RecordType,
) -> Message {
    let response = client
        .query(name(qname), DNSClass::IN, qtype)
        .await
        .unwrap_or_else(|err| panic!("{qname} {qtype}: {err}"));
    response.into_message()
}
