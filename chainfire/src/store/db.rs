//! RocksDB: one database, a column family per kind of data.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::mvcc::RecordSource;
use super::types::{KvRecord, Revision};

/// Raft log entries by index (big-endian u64).
pub const CF_LOG: &str = "raft_log";
/// Raft's vote, committed id and purge point.
pub const CF_RAFT: &str = "raft_meta";
/// Every retained change by revision (16 bytes, big-endian).
pub const CF_REV: &str = "mvcc_revisions";
/// Leases by id (big-endian i64).
pub const CF_LEASE: &str = "leases";
/// The state machine's own facts: applied log id, membership, revision, compaction point.
pub const CF_META: &str = "state_meta";

const FAMILIES: &[&str] = &[CF_LOG, CF_RAFT, CF_REV, CF_LEASE, CF_META];

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("RocksDB: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("stored {what} cannot be decoded: {reason}")]
    Corrupt { what: String, reason: String },
}

#[derive(Clone)]
pub struct Db {
    inner: Arc<DB>,
}

impl Db {
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_compression_type(rocksdb::DBCompressionType::Lz4);
        options.increase_parallelism(2);
        let families = FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
        let inner = DB::open_cf_descriptors(&options, path, families)?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    pub fn raw(&self) -> &DB {
        &self.inner
    }

    pub fn cf(&self, name: &str) -> &ColumnFamily {
        // Every family in FAMILIES is created at open.
        self.inner
            .cf_handle(name)
            .unwrap_or_else(|| unreachable!("column family {name} is created at open"))
    }

    pub fn get<T: DeserializeOwned>(&self, family: &str, key: &[u8]) -> Result<Option<T>, DbError> {
        match self.inner.get_pinned_cf(self.cf(family), key)? {
            Some(bytes) => decode(&bytes, family).map(Some),
            None => Ok(None),
        }
    }

    /// Writes `batch`; with `sync` the call returns only once it is on disk.
    pub fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), DbError> {
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.inner.write_opt(batch, &options)?;
        Ok(())
    }

    /// Total size of the database files, for Status and metrics.
    pub fn size_bytes(&self) -> u64 {
        FAMILIES
            .iter()
            .filter_map(|family| {
                self.inner
                    .property_int_value_cf(self.cf(family), "rocksdb.total-sst-files-size")
                    .ok()
                    .flatten()
            })
            .sum::<u64>()
            + self
                .inner
                .property_int_value("rocksdb.cur-size-all-mem-tables")
                .ok()
                .flatten()
                .unwrap_or(0)
    }
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding plain data into a Vec cannot fail.
    bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap_or_default()
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, DbError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|err| DbError::Corrupt {
            what: what.to_owned(),
            reason: err.to_string(),
        })
}

impl RecordSource for Db {
    fn record(&self, revision: Revision) -> Result<KvRecord, String> {
        match self.get::<KvRecord>(CF_REV, &revision.to_bytes()) {
            Ok(Some(record)) => Ok(record),
            Ok(None) => Err(format!(
                "revision {}.{} is missing from storage",
                revision.main, revision.sub
            )),
            Err(err) => Err(err.to_string()),
        }
    }
}
