//! The Raft log, vote and commit point in RocksDB. Appends are synced to disk before Raft is
//! told they are durable, so an acknowledged write survives a crash.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageIOError, Vote};
use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::{StorageError, TypeConfig, storage_io};
use crate::store::db::{CF_LOG, CF_RAFT, Db, decode, encode};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"purged";

#[derive(Clone)]
pub struct LogStore {
    db: Db,
}

impl LogStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        self.db
            .get(CF_RAFT, key)
            .map_err(|err| StorageIOError::read(storage_io(err)).into())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.db
            .write(batch, true)
            .map_err(|err| StorageIOError::write_logs(storage_io(err)).into())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(index) => *index,
            Bound::Excluded(index) => index + 1,
            Bound::Unbounded => 0,
        };
        let start_key = start.to_be_bytes();
        let mut entries = Vec::new();
        let iter = self.db.raw().iterator_cf(
            self.db.cf(CF_LOG),
            IteratorMode::From(&start_key, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(|err| StorageIOError::read_logs(storage_io(err)))?;
            let index = u64::from_be_bytes(key.as_ref().try_into().unwrap_or([0xff; 8]));
            if !range.contains(&index) {
                break;
            }
            entries.push(
                decode(&value, "raft log entry")
                    .map_err(|err| StorageIOError::read_logs(storage_io(err)))?,
            );
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId<u64>> = self.meta(PURGED)?;
        let mut last = self
            .db
            .raw()
            .iterator_cf(self.db.cf(CF_LOG), IteratorMode::End);
        let last_log_id = match last.next() {
            Some(item) => {
                let (_, value) = item.map_err(|err| StorageIOError::read_logs(storage_io(err)))?;
                let entry: Entry<TypeConfig> = decode(&value, "raft log entry")
                    .map_err(|err| StorageIOError::read_logs(storage_io(err)))?;
                Some(entry.log_id)
            }
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.db.cf(CF_RAFT), VOTE, encode(vote));
        self.db
            .write(batch, true)
            .map_err(|err| StorageIOError::write_vote(storage_io(err)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.db.cf(CF_RAFT), COMMITTED, encode(&committed));
        // Not synced: after a crash Raft recomputes the commit point from the quorum.
        self.db
            .write(batch, false)
            .map_err(|err| StorageIOError::write(storage_io(err)).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError> {
        Ok(self.meta::<Option<LogId<u64>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let family = self.db.cf(CF_LOG);
        for entry in entries {
            batch.put_cf(family, entry.log_id.index.to_be_bytes(), encode(&entry));
        }
        let result = self.db.write(batch, true);
        callback.log_io_completed(
            result
                .as_ref()
                .map(|_| ())
                .map_err(|err| std::io::Error::other(err.to_string())),
        );
        result.map_err(|err| StorageIOError::write_logs(storage_io(err)).into())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.db.cf(CF_LOG),
            log_id.index.to_be_bytes(),
            u64::MAX.to_be_bytes(),
        );
        self.write(batch)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.db.cf(CF_RAFT), PURGED, encode(&log_id));
        batch.delete_range_cf(
            self.db.cf(CF_LOG),
            0u64.to_be_bytes(),
            (log_id.index + 1).to_be_bytes(),
        );
        self.write(batch)
    }
}
