//! The replicated state: the MVCC key space and leases, durable in RocksDB, indexed in memory.

pub mod db;
pub mod mvcc;
pub mod types;
pub mod watch_hub;

use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use etcd_client::proto::{PbDeleteRequest, PbPutRequest, PbTxnRequest};
use prost::Message;
use rocksdb::{Direction, IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};

use db::{CF_LEASE, CF_META, CF_REV, Db, DbError, decode, encode};
use mvcc::{Index, RecordSource, View, Writer};
use types::{Applied, ApplyError, Change, Command, KvRecord, LeaseRecord, Revision};
use watch_hub::WatchHub;

const META_REVISION: &[u8] = b"revision";
const META_COMPACT: &[u8] = b"compact_revision";

/// The key space and leases, shared by the Raft state machine (writes) and the API (reads).
pub struct Store {
    db: Db,
    index: RwLock<Index>,
    pub hub: WatchHub,
    /// Snapshots received from a leader and installed since start.
    pub snapshots_installed: std::sync::atomic::AtomicU64,
}

/// Everything the state machine holds, as shipped in a Raft snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoreImage {
    pub revision: i64,
    pub compact_revision: i64,
    pub leases: Vec<LeaseRecord>,
    pub records: Vec<(Revision, KvRecord)>,
}

impl Store {
    /// Opens the store on `db` and rebuilds the in-memory index from the stored revisions.
    pub fn open(db: Db) -> Result<Self, DbError> {
        let index = load_index(&db)?;
        let hub = WatchHub::new(index.revision, index.compact_revision);
        Ok(Self {
            db,
            index: RwLock::new(index),
            hub,
            snapshots_installed: Default::default(),
        })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// A consistent read of the committed state.
    pub fn read<R>(&self, read: impl FnOnce(&View<'_>) -> R) -> R {
        let index = self.index_guard();
        read(&View::committed(&index, &self.db))
    }

    pub fn index_guard(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn revision(&self) -> i64 {
        self.index_guard().revision
    }

    /// Takes the store for applying writes. Readers wait until the applier is dropped, so they
    /// never see index entries whose records are not in the database yet: write the batch
    /// with [`Applier::write`] before dropping it.
    pub fn applier(&self) -> Applier<'_> {
        Applier {
            store: self,
            index: self.index.write().unwrap_or_else(|p| p.into_inner()),
            unwritten: HashMap::new(),
        }
    }

    /// The whole state, for a Raft snapshot.
    pub fn image(&self) -> Result<StoreImage, DbError> {
        let index = self.index_guard();
        let mut records = Vec::new();
        for item in self
            .db
            .raw()
            .iterator_cf(self.db.cf(CF_REV), IteratorMode::Start)
        {
            let (key, value) = item?;
            if let Some(revision) = Revision::from_bytes(&key) {
                records.push((revision, decode(&value, "revision record")?));
            }
        }
        Ok(StoreImage {
            revision: index.revision,
            compact_revision: index.compact_revision,
            leases: index.leases.values().copied().collect(),
            records,
        })
    }

    /// Replaces the whole state with `image` (a snapshot from the leader), writing it together
    /// with what `batch` already holds, synced.
    pub fn install(&self, image: &StoreImage, mut batch: WriteBatch) -> Result<(), DbError> {
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        for family in [CF_REV, CF_LEASE] {
            let cf = self.db.cf(family);
            for item in self.db.raw().iterator_cf(cf, IteratorMode::Start) {
                let (key, _) = item?;
                batch.delete_cf(cf, key);
            }
        }
        let mut fresh = Index::default();
        for (revision, record) in &image.records {
            batch.put_cf(self.db.cf(CF_REV), revision.to_bytes(), encode(record));
            fresh.load_record(*revision, record);
        }
        for lease in &image.leases {
            batch.put_cf(self.db.cf(CF_LEASE), lease.id.to_be_bytes(), encode(lease));
            fresh.leases.insert(lease.id, *lease);
        }
        fresh.revision = image.revision;
        fresh.compact_revision = image.compact_revision;
        let meta = self.db.cf(CF_META);
        batch.put_cf(meta, META_REVISION, encode(&fresh.revision));
        batch.put_cf(meta, META_COMPACT, encode(&fresh.compact_revision));
        self.db.write(batch, true)?;
        *index = fresh;
        self.hub.reset(image.revision, image.compact_revision);
        Ok(())
    }

    /// Stored changes with `main >= from` up to `to`, for watchers behind the hub's memory.
    pub fn changes_between(&self, from: i64, to: i64) -> Result<Vec<Change>, String> {
        let start = Revision { main: from, sub: 0 }.to_bytes();
        let index = self.index_guard();
        let view = View::committed(&index, &self.db);
        let mut changes = Vec::new();
        let iter = self.db.raw().iterator_cf(
            self.db.cf(CF_REV),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(|err| err.to_string())?;
            let Some(revision) = Revision::from_bytes(&key) else {
                continue;
            };
            if revision.main > to {
                break;
            }
            let record: KvRecord = decode(&value, "revision record").map_err(|e| e.to_string())?;
            let prev = view
                .before(&record.key, revision)
                .map_err(|err| err.to_string())?;
            changes.push(Change {
                revision,
                record,
                prev,
            });
        }
        Ok(changes)
    }
}

/// Exclusive access to the store while a batch of commands is applied.
pub struct Applier<'a> {
    store: &'a Store,
    index: RwLockWriteGuard<'a, Index>,
    /// Records written by earlier commands of this batch, not in the database yet.
    unwritten: HashMap<Revision, KvRecord>,
}

/// Reads records from the batch being applied, then from the database.
struct BatchSource<'a> {
    unwritten: &'a HashMap<Revision, KvRecord>,
    db: &'a Db,
}

impl RecordSource for BatchSource<'_> {
    fn record(&self, revision: Revision) -> Result<KvRecord, String> {
        match self.unwritten.get(&revision) {
            Some(record) => Ok(record.clone()),
            None => self.db.record(revision),
        }
    }
}

impl Applier<'_> {
    pub fn revision(&self) -> i64 {
        self.index.revision
    }

    /// Applies one command; its writes go into `batch` and the index. A refused command changes
    /// nothing. Returns the changes for watchers, to publish once `batch` is written.
    pub fn apply(&mut self, command: &Command, batch: &mut WriteBatch) -> (Applied, Vec<Change>) {
        let index = &mut *self.index;
        let source = BatchSource {
            unwritten: &self.unwritten,
            db: &self.store.db,
        };
        let mut writer = Writer::new(index, &source);
        let outcome: Result<Vec<u8>, ApplyError> = match command {
            Command::Put(bytes) => decode_request::<PbPutRequest>(bytes)
                .and_then(|request| writer.put(&request))
                .map(|response| response.encode_to_vec()),
            Command::DeleteRange(bytes) => decode_request::<PbDeleteRequest>(bytes)
                .and_then(|request| writer.delete_range(&request))
                .map(|response| response.encode_to_vec()),
            Command::Txn(bytes) => decode_request::<PbTxnRequest>(bytes)
                .and_then(|request| writer.txn(&request))
                .map(|response| response.encode_to_vec()),
            Command::Compact { revision } => writer.compact(*revision).map(|()| Vec::new()),
            Command::LeaseGrant { id, ttl } => writer.lease_grant(*id, *ttl).map(|()| Vec::new()),
            Command::LeaseRevoke { id } => writer.lease_revoke(*id).map(|()| Vec::new()),
        };
        if let Err(refusal) = outcome {
            drop(writer);
            return (
                Applied {
                    revision: index.revision,
                    outcome: Some(Err(refusal)),
                },
                Vec::new(),
            );
        }
        let outcome_bytes = outcome.unwrap_or_default();
        let result = writer.commit();

        let revisions = self.store.db.cf(CF_REV);
        for (revision, record) in result.records {
            batch.put_cf(revisions, revision.to_bytes(), encode(&record));
            self.unwritten.insert(revision, record);
        }
        for revision in &result.deleted_revisions {
            batch.delete_cf(revisions, revision.to_bytes());
            self.unwritten.remove(revision);
        }
        let leases = self.store.db.cf(CF_LEASE);
        for lease in &result.leases_put {
            batch.put_cf(leases, lease.id.to_be_bytes(), encode(lease));
        }
        for id in &result.leases_deleted {
            batch.delete_cf(leases, id.to_be_bytes());
        }
        if matches!(command, Command::Compact { .. }) {
            self.store.hub.compacted(index.compact_revision);
        }
        (
            Applied {
                revision: index.revision,
                outcome: Some(Ok(outcome_bytes)),
            },
            result.changes,
        )
    }

    /// Writes `batch`, with the store's revision and compaction point, while readers still
    /// wait.
    pub fn write(self, mut batch: WriteBatch, sync: bool) -> Result<(), DbError> {
        let meta = self.store.db.cf(CF_META);
        batch.put_cf(meta, META_REVISION, encode(&self.index.revision));
        batch.put_cf(meta, META_COMPACT, encode(&self.index.compact_revision));
        self.store.db.write(batch, sync)
    }
}

fn decode_request<M: Message + Default>(bytes: &[u8]) -> Result<M, ApplyError> {
    M::decode(bytes).map_err(|err| ApplyError::Malformed(err.to_string()))
}

fn load_index(db: &Db) -> Result<Index, DbError> {
    // As in etcd, an empty store is at revision 1 and the first write makes revision 2.
    let mut index = Index {
        revision: 1,
        ..Index::default()
    };
    for item in db.raw().iterator_cf(db.cf(CF_REV), IteratorMode::Start) {
        let (key, value) = item?;
        let Some(revision) = Revision::from_bytes(&key) else {
            return Err(DbError::Corrupt {
                what: "revision key".into(),
                reason: format!("{} bytes, expected 16", key.len()),
            });
        };
        let record: KvRecord = decode(&value, "revision record")?;
        index.load_record(revision, &record);
    }
    for item in db.raw().iterator_cf(db.cf(CF_LEASE), IteratorMode::Start) {
        let (_, value) = item?;
        let lease: LeaseRecord = decode(&value, "lease")?;
        index.leases.insert(lease.id, lease);
    }
    if let Some(revision) = db.get::<i64>(CF_META, META_REVISION)? {
        index.revision = index.revision.max(revision);
    }
    if let Some(compact) = db.get::<i64>(CF_META, META_COMPACT)? {
        index.compact_revision = compact;
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use etcd_client::proto::{PbPutRequest, PbRangeRequest};

    use super::*;

    fn put(store: &Store, key: &str, value: &str, lease: i64) -> Applied {
        let request = PbPutRequest {
            key: key.into(),
            value: value.into(),
            lease,
            ..Default::default()
        };
        apply(store, Command::Put(request.encode_to_vec()))
    }

    fn apply(store: &Store, command: Command) -> Applied {
        let mut batch = WriteBatch::default();
        let mut applier = store.applier();
        let (applied, _) = applier.apply(&command, &mut batch);
        applier.write(batch, false).unwrap();
        applied
    }

    /// Key, value, mod revision, version, lease.
    type Row = (Vec<u8>, Vec<u8>, i64, i64, i64);

    fn everything(store: &Store, revision: i64) -> Vec<Row> {
        let request = PbRangeRequest {
            key: vec![0],
            range_end: vec![0],
            revision,
            ..Default::default()
        };
        store
            .read(|view| view.range(&request))
            .unwrap()
            .kvs
            .into_iter()
            .map(|kv| (kv.key, kv.value, kv.mod_revision, kv.version, kv.lease))
            .collect()
    }

    #[test]
    fn an_installed_image_reproduces_the_state_and_its_history() {
        let source_dir = tempfile::TempDir::new().unwrap();
        let source = Store::open(Db::open(source_dir.path()).unwrap()).unwrap();
        apply(&source, Command::LeaseGrant { id: 7, ttl: 60 });
        put(&source, "a", "1", 0);
        put(&source, "a", "2", 7);
        put(&source, "b", "1", 0);
        apply(&source, Command::Compact { revision: 2 });
        put(&source, "c", "1", 0);

        let image = source.image().unwrap();
        let target_dir = tempfile::TempDir::new().unwrap();
        let target = Store::open(Db::open(target_dir.path()).unwrap()).unwrap();
        put(&target, "stale", "gone", 0);
        target.install(&image, WriteBatch::default()).unwrap();

        assert_eq!(target.revision(), source.revision());
        for revision in [0, 3, 4] {
            assert_eq!(everything(&target, revision), everything(&source, revision));
        }
        assert_eq!(everything(&target, 0).len(), 3, "the stale key is gone");
        assert_eq!(target.index_guard().lease_keys[&7].len(), 1);

        // And it survives a reopen.
        drop(target);
        let reopened = Store::open(Db::open(target_dir.path()).unwrap()).unwrap();
        assert_eq!(everything(&reopened, 0), everything(&source, 0));
        assert_eq!(reopened.index_guard().compact_revision, 2);
    }

    #[test]
    fn later_commands_of_a_batch_see_earlier_ones_before_the_batch_is_written() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(Db::open(dir.path()).unwrap()).unwrap();
        let put_request = |value: &str| {
            let request = PbPutRequest {
                key: b"k".to_vec(),
                value: value.into(),
                prev_kv: true,
                ..Default::default()
            };
            Command::Put(request.encode_to_vec())
        };
        let mut batch = WriteBatch::default();
        let mut applier = store.applier();
        applier.apply(&put_request("1"), &mut batch);
        let (second, _) = applier.apply(&put_request("2"), &mut batch);
        applier.write(batch, false).unwrap();

        let Some(Ok(body)) = second.outcome else {
            panic!("the second put failed: {second:?}");
        };
        let response = etcd_client::proto::PbPutResponse::decode(body.as_slice()).unwrap();
        assert_eq!(response.prev_kv.unwrap().value, b"1");
        assert_eq!(everything(&store, 0)[0].1, b"2");
    }

    #[test]
    fn a_refused_command_changes_nothing() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = Store::open(Db::open(dir.path()).unwrap()).unwrap();
        put(&store, "a", "1", 0);
        let refused = put(&store, "b", "1", 99);
        assert_eq!(refused.outcome, Some(Err(ApplyError::LeaseNotFound)));
        assert_eq!(store.revision(), 2);
        assert_eq!(everything(&store, 0).len(), 1);
    }
}
