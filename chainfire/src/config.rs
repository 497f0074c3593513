//! chainfire's own configuration sections (beside the common `[photon]`).

use std::net::SocketAddr;
use std::path::PathBuf;

use photon_config::{Invalid, PhotonSection, Sections, list_or_comma_separated};
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
    #[serde(default)]
    pub cluster: ClusterSection,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Serve the peer port and take part in a multi-member cluster (`--cluster-mode`).
    #[serde(default)]
    pub enabled: bool,
    /// Raft traffic between members.
    #[serde(default = "default_peer_addr")]
    pub peer_addr: SocketAddr,
    /// The URL other members use to reach this one; derived from `peer_addr` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise_peer_url: Option<String>,
    /// The members of a new cluster, `NAME=PEER_URL` each, this member among them by its
    /// `photon.component_id`. Empty: a new cluster starts with this member alone.
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub initial_cluster: Vec<String>,
    /// Mixed into member and cluster ids, so that two clusters bootstrapped from the same
    /// member list stay apart.
    #[serde(default = "default_initial_cluster_token")]
    pub initial_cluster_token: String,
    /// Client URLs of members of an existing cluster; a member with an empty data directory
    /// joins through them instead of bootstrapping (`--join`).
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub join: Vec<String>,
    /// A member that added itself as a learner (`--join`) asks to become a voter once it has
    /// caught up; a learner an operator added stays one until promoted.
    #[serde(default = "default_auto_promote")]
    pub auto_promote: bool,
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            enabled: false,
            peer_addr: default_peer_addr(),
            advertise_peer_url: None,
            initial_cluster: Vec::new(),
            initial_cluster_token: default_initial_cluster_token(),
            join: Vec::new(),
            auto_promote: default_auto_promote(),
        }
    }
}

fn default_peer_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 2380))
}

fn default_initial_cluster_token() -> String {
    "chainfire-cluster".into()
}

fn default_auto_promote() -> bool {
    true
}

/// One `NAME=PEER_URL` entry of `cluster.initial_cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialMember {
    pub name: String,
    pub peer_url: String,
}

impl ClusterSection {
    /// The parsed `initial_cluster`, or what is wrong with it.
    pub fn initial_members(&self) -> Result<Vec<InitialMember>, String> {
        let mut members: Vec<InitialMember> = Vec::new();
        for entry in &self.initial_cluster {
            let Some((name, peer_url)) = entry.split_once('=') else {
                return Err(format!("{entry:?} is not NAME=PEER_URL"));
            };
            if name.is_empty() || !is_http_url(peer_url) {
                return Err(format!(
                    "{entry:?} needs a name and an http:// or https:// peer URL"
                ));
            }
            if members
                .iter()
                .any(|m| m.name == name || m.peer_url == peer_url)
            {
                return Err(format!("{entry:?} repeats a name or peer URL"));
            }
            members.push(InitialMember {
                name: name.into(),
                peer_url: peer_url.into(),
            });
        }
        Ok(members)
    }

    /// The peer URL announced to other members.
    pub fn advertised_peer_url(&self) -> String {
        self.advertise_peer_url
            .clone()
            .unwrap_or_else(|| url_of(self.peer_addr))
    }
}

fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|host| !host.is_empty())
}

/// `http://ADDR`, with an unspecified address (listening everywhere) replaced by loopback.
fn url_of(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://127.0.0.1:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
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
        let cluster = &self.cluster;
        if let Err(reason) = cluster.initial_members() {
            problems.push(Invalid::new("cluster.initial_cluster", reason));
        }
        if let Some(entry) = cluster.join.iter().find(|url| !is_http_url(url)) {
            problems.push(Invalid::new(
                "cluster.join",
                format!("{entry:?} is not an http:// or https:// client URL"),
            ));
        }
        if let Some(url) = &cluster.advertise_peer_url
            && !is_http_url(url)
        {
            problems.push(Invalid::new(
                "cluster.advertise_peer_url",
                "must be an http:// or https:// URL",
            ));
        }
        if cluster.initial_cluster_token.is_empty() {
            problems.push(Invalid::new(
                "cluster.initial_cluster_token",
                "must not be empty",
            ));
        }
        if !cluster.enabled && (!cluster.join.is_empty() || !cluster.initial_cluster.is_empty()) {
            problems.push(Invalid::new(
                "cluster.enabled",
                "cluster.join and cluster.initial_cluster need cluster mode (--cluster-mode)",
            ));
        }
        problems
    }
}

impl ChainfireSections {
    /// The client URL announced in MemberList.
    pub fn advertised_client_url(&self) -> String {
        self.server
            .advertise_client_url
            .clone()
            .unwrap_or_else(|| url_of(self.server.client_addr))
    }
}
