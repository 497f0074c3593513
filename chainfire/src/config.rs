//! chainfire's own configuration sections (beside the common `[photon]`).

use std::net::SocketAddr;
use std::path::PathBuf;

use photon_config::{Invalid, PhotonSection, Sections};
use serde::{Deserialize, Serialize};

/// etcd's default `--max-request-bytes`.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;
/// etcd's default `--max-txn-ops`.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainfireSections {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub raft: RaftSection,
    #[serde(default)]
    pub limits: LimitsSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// The etcd v3 gRPC API.
    #[serde(default = "default_client_addr")]
    pub client_addr: SocketAddr,
    /// The URL clients are told to use (MemberList); derived from `client_addr` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_client_url: Option<String>,
    /// Interval of progress notifications on watches that asked for them.
    #[serde(default = "default_progress_notify_interval_sec")]
    pub progress_notify_interval_sec: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            client_addr: default_client_addr(),
            advertise_client_url: None,
            progress_notify_interval_sec: default_progress_notify_interval_sec(),
        }
    }
}

fn default_client_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 2379))
}

fn default_progress_notify_interval_sec() -> u64 {
    600
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/chainfire")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftSection {
    /// Build a snapshot (and then discard older log) after this many applied entries.
    #[serde(default = "default_snapshot_entries")]
    pub snapshot_after_entries: u64,
    #[serde(default = "default_heartbeat_interval_ms")]
    pub heartbeat_interval_ms: u64,
    #[serde(default = "default_election_timeout_ms")]
    pub election_timeout_ms: u64,
}

impl Default for RaftSection {
    fn default() -> Self {
        Self {
            snapshot_after_entries: default_snapshot_entries(),
            heartbeat_interval_ms: default_heartbeat_interval_ms(),
            election_timeout_ms: default_election_timeout_ms(),
        }
    }
}

fn default_snapshot_entries() -> u64 {
    10_000
}

fn default_heartbeat_interval_ms() -> u64 {
    100
}

fn default_election_timeout_ms() -> u64 {
    1000
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    #[serde(default = "default_max_txn_ops")]
    pub max_txn_ops: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
        }
    }
}

fn default_max_request_bytes() -> usize {
    DEFAULT_MAX_REQUEST_BYTES
}

fn default_max_txn_ops() -> usize {
    DEFAULT_MAX_TXN_OPS
}

impl Sections for ChainfireSections {
    fn validate(&self, _photon: &PhotonSection) -> Vec<Invalid> {
        let mut problems = Vec::new();
        if self.limits.max_request_bytes < 1024 {
            problems.push(Invalid::new(
                "limits.max_request_bytes",
                "must be at least 1024",
            ));
        }
        if self.limits.max_txn_ops == 0 {
            problems.push(Invalid::new("limits.max_txn_ops", "must be at least 1"));
        }
        if self.raft.snapshot_after_entries == 0 {
            problems.push(Invalid::new(
                "raft.snapshot_after_entries",
                "must be at least 1",
            ));
        }
        if self.raft.heartbeat_interval_ms == 0
            || self.raft.election_timeout_ms < 2 * self.raft.heartbeat_interval_ms
        {
            problems.push(Invalid::new(
                "raft.election_timeout_ms",
                "must be at least twice raft.heartbeat_interval_ms (and the heartbeat above 0)",
            ));
        }
        if self.server.progress_notify_interval_sec == 0 {
            problems.push(Invalid::new(
                "server.progress_notify_interval_sec",
                "must be at least 1",
            ));
        }
        problems
    }
}

impl ChainfireSections {
    /// The client URL announced in MemberList.
    pub fn advertised_client_url(&self) -> String {
        if let Some(url) = &self.server.advertise_client_url {
            return url.clone();
        }
        let addr = self.server.client_addr;
        if addr.ip().is_unspecified() {
            format!("http://127.0.0.1:{}", addr.port())
        } else {
            format!("http://{addr}")
        }
    }
}
