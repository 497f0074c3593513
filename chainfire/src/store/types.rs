//! What the state machine stores and what its log entries carry.

use etcd_client::proto::PbKeyValue;
use serde::{Deserialize, Serialize};

/// A point in the MVCC history: `main` is the store revision a write produced, `sub` orders the
/// changes inside one write (a transaction changes several keys at one revision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Revision {
    pub main: i64,
    pub sub: i64,
}

impl Revision {
    /// Big-endian, so RocksDB's byte order is revision order (both parts are never negative).
    pub fn to_bytes(self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.main.to_be_bytes());
        bytes[8..].copy_from_slice(&self.sub.to_be_bytes());
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let main = i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let sub = i64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
        Some(Self { main, sub })
    }
}

/// One change to one key, as kept in the revision column family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRecord {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub lease: i64,
    /// A tombstone: the key was deleted at `mod_revision`.
    pub deleted: bool,
}

impl KvRecord {
    pub fn to_pb(&self, keys_only: bool) -> PbKeyValue {
        PbKeyValue {
            key: self.key.clone(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            value: if keys_only {
                Vec::new()
            } else {
                self.value.clone()
            },
            lease: self.lease,
        }
    }
}

/// A change as watchers see it.
#[derive(Debug, Clone)]
pub struct Change {
    pub revision: Revision,
    pub record: KvRecord,
    /// The key's previous state, when it existed.
    pub prev: Option<KvRecord>,
}

/// A replicated command: a log entry's payload. Client requests travel as the etcd protobuf
/// messages they arrived as (like etcd's own log), already validated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Command {
    Put(Vec<u8>),
    DeleteRange(Vec<u8>),
    Txn(Vec<u8>),
    Compact { revision: i64 },
    LeaseGrant { id: i64, ttl: i64 },
    LeaseRevoke { id: i64 },
}

impl Command {
    /// About its size in a log entry.
    pub fn encoded_bytes(&self) -> usize {
        match self {
            Command::Put(bytes) | Command::DeleteRange(bytes) | Command::Txn(bytes) => bytes.len(),
            _ => 16,
        }
    }
}

/// A log entry's payload: commands applied in order, each answered on its own (concurrent client
/// writes share one entry, and so one disk sync).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Proposal(pub Vec<Command>);

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Put(_) => f.write_str("put"),
            Command::DeleteRange(_) => f.write_str("delete-range"),
            Command::Txn(_) => f.write_str("txn"),
            Command::Compact { revision } => write!(f, "compact({revision})"),
            Command::LeaseGrant { id, ttl } => write!(f, "lease-grant({id:x}, {ttl}s)"),
            Command::LeaseRevoke { id } => write!(f, "lease-revoke({id:x})"),
        }
    }
}

/// Why a command was refused when applied. Every replica refuses it identically, so refusing
/// changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApplyError {
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    #[error("malformed command in the log: {0}")]
    Malformed(String),
}

/// The state machine's answer to one log entry: the store revision after it, and the encoded
/// protobuf response (or the refusal).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Applied {
    pub revision: i64,
    pub outcome: Option<Result<Vec<u8>, ApplyError>>,
}

/// A lease as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub id: i64,
    pub ttl: i64,
}
