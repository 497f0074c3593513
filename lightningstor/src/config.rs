//! lightningstor's own configuration: the spec's `[standalone.server]`, `[standalone.storage]`,
//! `[standalone.metadata]`, `[standalone.auth]` and `[standalone.features]`, plus
//! `[standalone.multipart]` (beside the common `[photon]`).

use std::net::SocketAddr;
use std::path::PathBuf;

use photon_config::{Invalid, LogLevel, PhotonSection, Sections, list_or_comma_separated};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LightningstorSections {
    #[serde(default)]
    pub standalone: StandaloneSections,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandaloneSections {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub metadata: MetadataSection,
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub multipart: MultipartSection,
    #[serde(default)]
    pub features: FeaturesSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// The admin gRPC API (server info, bucket usage, access keys).
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: SocketAddr,
    /// The S3 API (path-style and virtual-host-style requests).
    #[serde(default = "default_s3_addr")]
    pub s3_addr: SocketAddr,
    /// `/health` and `/metrics`.
    #[serde(default = "default_admin_api_addr")]
    pub admin_api_addr: SocketAddr,
    /// The spec's spelling of `photon.logging.level`; when set, the two must agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<LogLevel>,
    /// The region reported by GetBucketLocation and expected in SigV4 credential scopes.
    #[serde(default = "default_region")]
    pub region: String,
    /// The host name for virtual-host-style requests (`bucket.<domain>`); unset means
    /// path-style only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            grpc_addr: default_grpc_addr(),
            s3_addr: default_s3_addr(),
            admin_api_addr: default_admin_api_addr(),
            log_level: None,
            region: default_region(),
            domain: None,
        }
    }
}

fn default_grpc_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9000))
}

fn default_s3_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9001))
}

pub(crate) fn default_admin_api_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9002))
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Object data: `blobs/` (one file per object or part, named by a random id, never by the
    /// key) and `tmp/` (uploads in flight, emptied at start-up).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Objects up to this size live inside their metadata record instead of a file of their
    /// own: one write instead of three for small objects. 0 stores every object as a file.
    #[serde(default = "default_inline_threshold_bytes")]
    pub inline_threshold_bytes: u64,
    /// fsync data and metadata before acknowledging a write. Off, a power loss can lose
    /// acknowledged writes (a process crash cannot).
    #[serde(default = "default_true")]
    pub fsync: bool,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            inline_threshold_bytes: default_inline_threshold_bytes(),
            fsync: true,
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/lightningstor/data")
}

fn default_inline_threshold_bytes() -> u64 {
    4096
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataSection {
    /// The RocksDB directory holding buckets, object records, uploads and access keys.
    #[serde(default = "default_metadata_path")]
    pub path: PathBuf,
    /// RocksDB block cache.
    #[serde(default = "default_cache_size_mb")]
    pub cache_size_mb: u64,
}

impl Default for MetadataSection {
    fn default() -> Self {
        Self {
            path: default_metadata_path(),
            cache_size_mb: default_cache_size_mb(),
        }
    }
}

fn default_metadata_path() -> PathBuf {
    PathBuf::from("/var/lib/lightningstor/meta")
}

fn default_cache_size_mb() -> u64 {
    256
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Only `access_key` (AWS Signature V4 with access keys) exists standalone.
    #[serde(default = "default_auth_type", rename = "type")]
    pub auth_type: String,
    /// One key pair in the config. Keys may also come from `credentials_file` and the admin API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// A file of `ACCESS_KEY:SECRET_KEY` lines (`#` starts a comment), read at start-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
    /// Buckets anyone may read (GetObject, HeadObject, ListObjects) without signing.
    #[serde(default, deserialize_with = "list_or_comma_separated")]
    pub public_read_buckets: Vec<String>,
    /// Signed requests whose date is further than this from the server's clock are refused
    /// (RequestTimeTooSkewed), as AWS does.
    #[serde(default = "default_max_clock_skew_sec")]
    pub max_clock_skew_sec: u32,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            auth_type: default_auth_type(),
            access_key: None,
            secret_key: None,
            credentials_file: None,
            public_read_buckets: Vec::new(),
            max_clock_skew_sec: default_max_clock_skew_sec(),
        }
    }
}

fn default_auth_type() -> String {
    "access_key".to_owned()
}

fn default_max_clock_skew_sec() -> u32 {
    900
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultipartSection {
    /// Uploads neither completed nor aborted for this many seconds (default one day) are
    /// aborted and their parts deleted. 0 keeps them forever.
    #[serde(default = "default_abandoned_after_sec")]
    pub abandoned_after_sec: u64,
    /// How often abandoned uploads are looked for.
    #[serde(default = "default_cleanup_interval_sec")]
    pub cleanup_interval_sec: u64,
}

impl Default for MultipartSection {
    fn default() -> Self {
        Self {
            abandoned_after_sec: default_abandoned_after_sec(),
            cleanup_interval_sec: default_cleanup_interval_sec(),
        }
    }
}

fn default_abandoned_after_sec() -> u64 {
    86_400
}

fn default_cleanup_interval_sec() -> u64 {
    3600
}

/// The spec's feature switches. None of them exists standalone yet; `true` is refused rather
/// than silently ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesSection {
    #[serde(default)]
    pub versioning: bool,
    #[serde(default)]
    pub lifecycle: bool,
    #[serde(default)]
    pub replication: bool,
}

impl Sections for LightningstorSections {
    fn validate(&self, photon: &PhotonSection) -> Vec<Invalid> {
        let mut problems = Vec::new();
        let standalone = &self.standalone;
        let server = &standalone.server;
        problems.extend(photon.metrics_on_admin_addr(
            "lightningstor",
            "standalone.server.admin_api_addr",
            server.admin_api_addr,
        ));
        if let Some(level) = server.log_level
            && level != photon.logging.level
        {
            problems.push(Invalid::new(
                "standalone.server.log_level",
                format!(
                    "{level} disagrees with photon.logging.level ({}); set photon.logging.level (or --log-level) only",
                    photon.logging.level
                ),
            ));
        }
        let addresses = [
            ("standalone.server.s3_addr", server.s3_addr),
            ("standalone.server.grpc_addr", server.grpc_addr),
            ("standalone.server.admin_api_addr", server.admin_api_addr),
        ];
        for (index, (key, addr)) in addresses.iter().enumerate() {
            if addr.port() != 0
                && let Some((other, _)) = addresses[..index].iter().find(|(_, seen)| seen == addr)
            {
                problems.push(Invalid::new(*key, format!("{addr} is already {other}")));
            }
        }
        if server.region.trim().is_empty() {
            problems.push(Invalid::new(
                "standalone.server.region",
                "must not be empty",
            ));
        }
        if standalone.storage.data_dir.as_os_str().is_empty() {
            problems.push(Invalid::new("standalone.storage.data_dir", "must be set"));
        }
        if standalone.storage.inline_threshold_bytes > MAX_INLINE_THRESHOLD {
            problems.push(Invalid::new(
                "standalone.storage.inline_threshold_bytes",
                format!("at most {MAX_INLINE_THRESHOLD} (larger objects belong in files)"),
            ));
        }
        if standalone.metadata.path.as_os_str().is_empty() {
            problems.push(Invalid::new("standalone.metadata.path", "must be set"));
        }
        let auth = &standalone.auth;
        if auth.auth_type != "access_key" {
            problems.push(Invalid::new(
                "standalone.auth.type",
                format!(
                    "{:?} is not available standalone; use \"access_key\"",
                    auth.auth_type
                ),
            ));
        }
        match (&auth.access_key, &auth.secret_key) {
            (Some(_), None) => problems.push(Invalid::new(
                "standalone.auth.secret_key",
                "access_key is set without secret_key",
            )),
            (None, Some(_)) => problems.push(Invalid::new(
                "standalone.auth.access_key",
                "secret_key is set without access_key",
            )),
            (Some(access), Some(secret)) => {
                if let Err(reason) = crate::auth::check_key_pair(access, secret) {
                    problems.push(Invalid::new("standalone.auth.access_key", reason));
                }
            }
            (None, None) => {}
        }
        for bucket in &auth.public_read_buckets {
            if !s3s::path::check_bucket_name(bucket) {
                problems.push(Invalid::new(
                    "standalone.auth.public_read_buckets",
                    format!("{bucket:?} is not a valid bucket name"),
                ));
            }
        }
        let multipart = &standalone.multipart;
        if multipart.abandoned_after_sec > 0 && multipart.cleanup_interval_sec == 0 {
            problems.push(Invalid::new(
                "standalone.multipart.cleanup_interval_sec",
                "must be at least 1 while abandoned_after_sec is set",
            ));
        }
        let features = &standalone.features;
        for (key, on) in [
            ("standalone.features.versioning", features.versioning),
            ("standalone.features.lifecycle", features.lifecycle),
            ("standalone.features.replication", features.replication),
        ] {
            if on {
                problems.push(Invalid::new(key, "not available in this build; set false"));
            }
        }
        problems
    }
}

/// Inline objects are read whole into memory, so they stay small.
pub const MAX_INLINE_THRESHOLD: u64 = 256 * 1024;
