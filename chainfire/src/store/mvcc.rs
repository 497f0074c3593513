//! The MVCC key space, as etcd keeps it: one global revision, every change kept (in RocksDB)
//! until compaction, and an in-memory index from each key to its revisions.
//!
//! Reads go through a [`View`]: the committed state, or a transaction's staged state so that a
//! transaction's later operations see its earlier writes and a refused transaction changes
//! nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use etcd_client::proto::{
    PbCompare, PbDeleteRequest, PbDeleteResponse, PbPutRequest, PbPutResponse, PbRangeRequest,
    PbRangeResponse, PbResponseOp, PbTargetUnion, PbTxnOpRequest, PbTxnOpResponse, PbTxnRequest,
    PbTxnResponse,
};

use super::types::{ApplyError, Change, KvRecord, LeaseRecord, Revision};

/// One retained change of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevEntry {
    pub revision: Revision,
    pub deleted: bool,
}

/// What the index knows about one key.
#[derive(Debug, Clone, Default)]
pub struct KeyHistory {
    /// Retained changes, oldest first.
    pub revs: Vec<RevEntry>,
    /// The key's current state, while it exists.
    pub live: Option<Live>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    pub create_revision: i64,
    pub version: i64,
    pub lease: i64,
    pub mod_revision: Revision,
}

impl KeyHistory {
    /// The last retained change with revision `main <= at`.
    fn last_at_or_below(&self, at: i64) -> Option<RevEntry> {
        let position = self.revs.partition_point(|entry| entry.revision.main <= at);
        self.revs.get(position.checked_sub(1)?).copied()
    }

    /// The last retained change strictly before `revision`.
    fn last_before(&self, revision: Revision) -> Option<RevEntry> {
        let position = self.revs.partition_point(|entry| entry.revision < revision);
        self.revs.get(position.checked_sub(1)?).copied()
    }
}

/// Where a [`View`] reads records it does not hold itself.
pub trait RecordSource {
    fn record(&self, revision: Revision) -> Result<KvRecord, String>;
}

/// `[key, range_end)` as etcd encodes it: empty `range_end` is the single key, `"\0"` is every
/// key from `key` on (and with `key = "\0"` every key).
#[derive(Debug, Clone)]
pub struct KeyRange {
    pub start: Vec<u8>,
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    pub fn new(key: &[u8], range_end: &[u8]) -> Self {
        let end = match range_end {
            [] => Bound::Included(key.to_vec()),
            [0] => Bound::Unbounded,
            end => Bound::Excluded(end.to_vec()),
        };
        Self {
            start: key.to_vec(),
            end,
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice()
            && match &self.end {
                Bound::Included(end) => key <= end.as_slice(),
                Bound::Excluded(end) => key < end.as_slice(),
                Bound::Unbounded => true,
            }
    }

    fn bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        let end = match &self.end {
            Bound::Included(end) => Bound::Included(end.as_slice()),
            Bound::Excluded(end) => Bound::Excluded(end.as_slice()),
            Bound::Unbounded => Bound::Unbounded,
        };
        (Bound::Included(self.start.as_slice()), end)
    }
}

/// The committed key space.
#[derive(Debug, Default)]
pub struct Index {
    pub keys: BTreeMap<Vec<u8>, KeyHistory>,
    /// The store revision of the last write.
    pub revision: i64,
    /// History at and below this revision is gone.
    pub compact_revision: i64,
    pub leases: BTreeMap<i64, LeaseRecord>,
    /// Lease id → the keys attached to it.
    pub lease_keys: HashMap<i64, BTreeSet<Vec<u8>>>,
}

impl Index {
    /// Adds one stored record while rebuilding the index at start-up (records come in revision
    /// order).
    pub fn load_record(&mut self, revision: Revision, record: &KvRecord) {
        let history = self.keys.entry(record.key.clone()).or_default();
        history.revs.push(RevEntry {
            revision,
            deleted: record.deleted,
        });
        if let Some(live) = history.live
            && live.lease != 0
            && let Some(keys) = self.lease_keys.get_mut(&live.lease)
        {
            keys.remove(&record.key);
        }
        history.live = (!record.deleted).then_some(Live {
            create_revision: record.create_revision,
            version: record.version,
            lease: record.lease,
            mod_revision: revision,
        });
        if !record.deleted && record.lease != 0 {
            self.lease_keys
                .entry(record.lease)
                .or_default()
                .insert(record.key.clone());
        }
        self.revision = self.revision.max(revision.main);
    }

    /// Drops history at and below `at` except each key's state at `at`, and returns the
    /// revisions whose records can be deleted from storage.
    pub fn compact(&mut self, at: i64) -> Vec<Revision> {
        let mut removed = Vec::new();
        self.keys.retain(|_, history| {
            let visible = history
                .revs
                .partition_point(|entry| entry.revision.main <= at);
            // Keep the last change at or below `at` unless it is a tombstone.
            let keep_from = match visible.checked_sub(1).map(|last| history.revs[last]) {
                Some(last) if !last.deleted => visible - 1,
                _ => visible,
            };
            removed.extend(history.revs.drain(..keep_from).map(|entry| entry.revision));
            !history.revs.is_empty()
        });
        self.compact_revision = at;
        removed
    }
}

/// A consistent read of the key space: committed, or committed plus a transaction's staged
/// writes.
pub struct View<'a> {
    index: &'a Index,
    source: &'a dyn RecordSource,
    staged: Option<&'a Staged>,
}

/// A transaction's writes before they are committed.
#[derive(Debug, Default)]
pub struct Staged {
    /// For every key written: only the changes this transaction appends, and the key's state
    /// after them (the committed history is not copied, so hot keys cost nothing extra).
    keys: BTreeMap<Vec<u8>, KeyHistory>,
    /// New records by revision.
    records: HashMap<Revision, KvRecord>,
    /// The changes in order, for storage and watchers.
    changes: Vec<Change>,
}

impl<'a> View<'a> {
    pub fn committed(index: &'a Index, source: &'a dyn RecordSource) -> Self {
        Self {
            index,
            source,
            staged: None,
        }
    }

    pub fn revision(&self) -> i64 {
        self.index.revision
    }

    /// The key's staged changes (newest) and committed history.
    fn layers(&self, key: &[u8]) -> (Option<&KeyHistory>, Option<&KeyHistory>) {
        (
            self.staged.and_then(|staged| staged.keys.get(key)),
            self.index.keys.get(key),
        )
    }

    /// The key's current state: staged if the transaction wrote it, else committed.
    fn live(&self, key: &[u8]) -> Option<Live> {
        match self.layers(key) {
            (Some(staged), _) => staged.live,
            (None, committed) => committed.and_then(|history| history.live),
        }
    }

    /// The change in effect at store revision `at`, if the key existed then.
    fn visible_at(&self, key: &[u8], at: i64) -> Option<Revision> {
        let (staged, committed) = self.layers(key);
        let entry = staged
            .and_then(|history| history.last_at_or_below(at))
            .or_else(|| committed.and_then(|history| history.last_at_or_below(at)))?;
        (!entry.deleted).then_some(entry.revision)
    }

    fn record(&self, revision: Revision) -> Result<KvRecord, ApplyError> {
        if let Some(record) = self.staged.and_then(|staged| staged.records.get(&revision)) {
            return Ok(record.clone());
        }
        self.source.record(revision).map_err(ApplyError::Malformed)
    }

    /// Keys in `range` that have any retained history, in key order.
    fn keys_in(&self, range: &KeyRange) -> Vec<&[u8]> {
        let committed = self
            .index
            .keys
            .range::<[u8], _>(range.bounds())
            .map(|(key, _)| key.as_slice());
        let Some(staged) = self.staged else {
            return committed.collect();
        };
        let staged_keys = staged
            .keys
            .range::<[u8], _>(range.bounds())
            .map(|(key, _)| key.as_slice());
        let merged: BTreeSet<&[u8]> = committed.chain(staged_keys).collect();
        merged.into_iter().collect()
    }

    /// The records visible at `at` in `range`, in key order.
    pub fn visible(&self, range: &KeyRange, at: i64) -> Result<Vec<KvRecord>, ApplyError> {
        let mut found = Vec::new();
        for key in self.keys_in(range) {
            if let Some(revision) = self.visible_at(key, at) {
                found.push(self.record(revision)?);
            }
        }
        Ok(found)
    }

    /// The key's record as of now, when it exists.
    pub fn current(&self, key: &[u8]) -> Result<Option<KvRecord>, ApplyError> {
        match self.live(key) {
            Some(live) => self.record(live.mod_revision).map(Some),
            None => Ok(None),
        }
    }

    /// The record a key had just before `revision` (for watchers' `prev_kv`).
    pub fn before(&self, key: &[u8], revision: Revision) -> Result<Option<KvRecord>, ApplyError> {
        let (staged, committed) = self.layers(key);
        let entry = staged
            .and_then(|history| history.last_before(revision))
            .or_else(|| committed.and_then(|history| history.last_before(revision)));
        match entry {
            Some(entry) if !entry.deleted => self.record(entry.revision).map(Some),
            _ => Ok(None),
        }
    }

    /// etcd's Range.
    pub fn range(&self, request: &PbRangeRequest) -> Result<PbRangeResponse, ApplyError> {
        let now = self.revision_or_staged();
        let at = match request.revision {
            revision if revision <= 0 => now,
            revision if revision > now => return Err(ApplyError::FutureRevision),
            revision if revision < self.index.compact_revision => {
                return Err(ApplyError::Compacted);
            }
            revision => revision,
        };
        let range = KeyRange::new(&request.key, &request.range_end);
        let mut records = self.visible(&range, at)?;
        let count = records.len() as i64;

        records.retain(|record| {
            (request.min_mod_revision == 0 || record.mod_revision >= request.min_mod_revision)
                && (request.max_mod_revision == 0
                    || record.mod_revision <= request.max_mod_revision)
                && (request.min_create_revision == 0
                    || record.create_revision >= request.min_create_revision)
                && (request.max_create_revision == 0
                    || record.create_revision <= request.max_create_revision)
        });
        sort_records(&mut records, request.sort_order, request.sort_target);

        let limit = usize::try_from(request.limit).unwrap_or(0);
        let more = limit > 0 && records.len() > limit;
        if more {
            records.truncate(limit);
        }
        Ok(PbRangeResponse {
            header: None,
            kvs: if request.count_only {
                Vec::new()
            } else {
                records
                    .iter()
                    .map(|record| record.to_pb(request.keys_only))
                    .collect()
            },
            more,
            count,
        })
    }

    /// Whether every key `compare` names satisfies it (etcd's rules: a missing key has zero
    /// revisions and version, and never equals a value).
    fn compare(&self, compare: &PbCompare) -> Result<bool, ApplyError> {
        let range = KeyRange::new(&compare.key, &compare.range_end);
        let records = self.visible(&range, self.revision_or_staged())?;
        let target = compare.target;
        if records.is_empty() {
            if target == COMPARE_TARGET_VALUE {
                return Ok(false);
            }
            return Ok(compare_record(compare, &KvRecord::default_missing()));
        }
        Ok(records.iter().all(|record| compare_record(compare, record)))
    }

    /// The revision reads see: a transaction's staged writes are at the revision being written.
    pub fn revision_or_staged(&self) -> i64 {
        match self.staged {
            Some(staged) if !staged.changes.is_empty() => self.index.revision + 1,
            _ => self.index.revision,
        }
    }
}

const COMPARE_TARGET_VERSION: i32 = 0;
const COMPARE_TARGET_CREATE: i32 = 1;
const COMPARE_TARGET_MOD: i32 = 2;
const COMPARE_TARGET_VALUE: i32 = 3;
const COMPARE_TARGET_LEASE: i32 = 4;

const COMPARE_EQUAL: i32 = 0;
const COMPARE_GREATER: i32 = 1;
const COMPARE_LESS: i32 = 2;
const COMPARE_NOT_EQUAL: i32 = 3;

impl KvRecord {
    fn default_missing() -> Self {
        KvRecord {
            key: Vec::new(),
            value: Vec::new(),
            create_revision: 0,
            mod_revision: 0,
            version: 0,
            lease: 0,
            deleted: true,
        }
    }
}

fn compare_record(compare: &PbCompare, record: &KvRecord) -> bool {
    use std::cmp::Ordering;
    let ordering = match (&compare.target, &compare.target_union) {
        (&COMPARE_TARGET_VERSION, Some(PbTargetUnion::Version(v))) => record.version.cmp(v),
        (&COMPARE_TARGET_CREATE, Some(PbTargetUnion::CreateRevision(v))) => {
            record.create_revision.cmp(v)
        }
        (&COMPARE_TARGET_MOD, Some(PbTargetUnion::ModRevision(v))) => record.mod_revision.cmp(v),
        (&COMPARE_TARGET_VALUE, Some(PbTargetUnion::Value(v))) => record.value.as_slice().cmp(v),
        (&COMPARE_TARGET_LEASE, Some(PbTargetUnion::Lease(v))) => record.lease.cmp(v),
        // A target without its operand compares against the zero value, as in etcd.
        (&COMPARE_TARGET_VERSION, None) => record.version.cmp(&0),
        (&COMPARE_TARGET_CREATE, None) => record.create_revision.cmp(&0),
        (&COMPARE_TARGET_MOD, None) => record.mod_revision.cmp(&0),
        (&COMPARE_TARGET_VALUE, None) => record.value.as_slice().cmp(&[]),
        (&COMPARE_TARGET_LEASE, None) => record.lease.cmp(&0),
        _ => return false,
    };
    match compare.result {
        COMPARE_EQUAL => ordering == Ordering::Equal,
        COMPARE_GREATER => ordering == Ordering::Greater,
        COMPARE_LESS => ordering == Ordering::Less,
        COMPARE_NOT_EQUAL => ordering != Ordering::Equal,
        _ => false,
    }
}

const SORT_NONE: i32 = 0;
const SORT_DESCEND: i32 = 2;
const SORT_TARGET_KEY: i32 = 0;
const SORT_TARGET_VERSION: i32 = 1;
const SORT_TARGET_CREATE: i32 = 2;
const SORT_TARGET_MOD: i32 = 3;
const SORT_TARGET_VALUE: i32 = 4;

/// Records arrive in key order; etcd sorts ascending by the target when only a non-key target
/// is given.
fn sort_records(records: &mut [KvRecord], order: i32, target: i32) {
    if order == SORT_NONE && target == SORT_TARGET_KEY {
        return;
    }
    match target {
        SORT_TARGET_VERSION => records.sort_by_key(|r| r.version),
        SORT_TARGET_CREATE => records.sort_by_key(|r| r.create_revision),
        SORT_TARGET_MOD => records.sort_by_key(|r| r.mod_revision),
        SORT_TARGET_VALUE => records.sort_by(|a, b| a.value.cmp(&b.value)),
        _ => {}
    }
    if order == SORT_DESCEND {
        records.reverse();
    }
}

/// The result of applying one write: what to store and what watchers see.
#[derive(Debug, Default)]
pub struct Outcome {
    pub records: Vec<(Revision, KvRecord)>,
    pub changes: Vec<Change>,
    pub deleted_revisions: Vec<Revision>,
    pub leases_put: Vec<LeaseRecord>,
    pub leases_deleted: Vec<i64>,
}

/// Applies writes to the index at revision `index.revision + 1`.
pub struct Writer<'a> {
    index: &'a mut Index,
    source: &'a dyn RecordSource,
    staged: Staged,
    deleted_revisions: Vec<Revision>,
    leases_put: Vec<LeaseRecord>,
    leases_deleted: Vec<i64>,
}

impl<'a> Writer<'a> {
    pub fn new(index: &'a mut Index, source: &'a dyn RecordSource) -> Self {
        Self {
            index,
            source,
            staged: Staged::default(),
            deleted_revisions: Vec::new(),
            leases_put: Vec::new(),
            leases_deleted: Vec::new(),
        }
    }

    fn view(&self) -> View<'_> {
        View {
            index: self.index,
            source: self.source,
            staged: Some(&self.staged),
        }
    }

    fn next_revision(&self) -> Revision {
        Revision {
            main: self.index.revision + 1,
            sub: self.staged.changes.len() as i64,
        }
    }

    fn stage(&mut self, record: KvRecord, prev: Option<KvRecord>) {
        let revision = self.next_revision();
        let appended = self.staged.keys.entry(record.key.clone()).or_default();
        appended.revs.push(RevEntry {
            revision,
            deleted: record.deleted,
        });
        appended.live = (!record.deleted).then_some(Live {
            create_revision: record.create_revision,
            version: record.version,
            lease: record.lease,
            mod_revision: revision,
        });
        self.staged.records.insert(revision, record.clone());
        self.staged.changes.push(Change {
            revision,
            record,
            prev,
        });
    }

    pub fn put(&mut self, request: &PbPutRequest) -> Result<PbPutResponse, ApplyError> {
        let prev = self.view().current(&request.key)?;
        if (request.ignore_value || request.ignore_lease) && prev.is_none() {
            return Err(ApplyError::KeyNotFound);
        }
        let value = match (&prev, request.ignore_value) {
            (Some(prev), true) => prev.value.clone(),
            _ => request.value.clone(),
        };
        let lease = match (&prev, request.ignore_lease) {
            (Some(prev), true) => prev.lease,
            _ => request.lease,
        };
        if lease != 0 && !self.index.leases.contains_key(&lease) {
            return Err(ApplyError::LeaseNotFound);
        }
        let revision = self.next_revision();
        let record = KvRecord {
            key: request.key.clone(),
            value,
            create_revision: prev
                .as_ref()
                .map_or(revision.main, |prev| prev.create_revision),
            mod_revision: revision.main,
            version: prev.as_ref().map_or(1, |prev| prev.version + 1),
            lease,
            deleted: false,
        };
        self.stage(record, prev.clone());
        Ok(PbPutResponse {
            header: None,
            prev_kv: prev
                .filter(|_| request.prev_kv)
                .map(|prev| prev.to_pb(false)),
        })
    }

    pub fn delete_range(
        &mut self,
        request: &PbDeleteRequest,
    ) -> Result<PbDeleteResponse, ApplyError> {
        let range = KeyRange::new(&request.key, &request.range_end);
        let view = self.view();
        let existing = view.visible(&range, view.revision_or_staged())?;
        let deleted = existing.len() as i64;
        for prev in &existing {
            self.delete_key(prev.clone());
        }
        Ok(PbDeleteResponse {
            header: None,
            deleted,
            prev_kvs: if request.prev_kv {
                existing.iter().map(|prev| prev.to_pb(false)).collect()
            } else {
                Vec::new()
            },
        })
    }

    fn delete_key(&mut self, prev: KvRecord) {
        let revision = self.next_revision();
        let tombstone = KvRecord {
            key: prev.key.clone(),
            value: Vec::new(),
            create_revision: 0,
            mod_revision: revision.main,
            version: 0,
            lease: 0,
            deleted: true,
        };
        self.stage(tombstone, Some(prev));
    }

    pub fn txn(&mut self, request: &PbTxnRequest) -> Result<PbTxnResponse, ApplyError> {
        let view = self.view();
        let mut succeeded = true;
        for compare in &request.compare {
            if !view.compare(compare)? {
                succeeded = false;
                break;
            }
        }
        let ops = if succeeded {
            &request.success
        } else {
            &request.failure
        };
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            let response = match &op.request {
                Some(PbTxnOpRequest::RequestRange(range)) => {
                    PbTxnOpResponse::ResponseRange(self.view().range(range)?)
                }
                Some(PbTxnOpRequest::RequestPut(put)) => {
                    PbTxnOpResponse::ResponsePut(self.put(put)?)
                }
                Some(PbTxnOpRequest::RequestDeleteRange(delete)) => {
                    PbTxnOpResponse::ResponseDeleteRange(self.delete_range(delete)?)
                }
                Some(PbTxnOpRequest::RequestTxn(txn)) => {
                    PbTxnOpResponse::ResponseTxn(self.txn(txn)?)
                }
                None => return Err(ApplyError::Malformed("a txn operation is empty".into())),
            };
            responses.push(PbResponseOp {
                response: Some(response),
            });
        }
        Ok(PbTxnResponse {
            header: None,
            succeeded,
            responses,
        })
    }

    pub fn compact(&mut self, revision: i64) -> Result<(), ApplyError> {
        if revision <= self.index.compact_revision {
            return Err(ApplyError::Compacted);
        }
        if revision > self.index.revision {
            return Err(ApplyError::FutureRevision);
        }
        let removed = self.index.compact(revision);
        self.staged.changes.clear();
        self.deleted_revisions = removed;
        Ok(())
    }

    pub fn lease_grant(&mut self, id: i64, ttl: i64) -> Result<(), ApplyError> {
        if self.index.leases.contains_key(&id) {
            return Err(ApplyError::LeaseExists);
        }
        self.leases_put.push(LeaseRecord { id, ttl });
        Ok(())
    }

    pub fn lease_revoke(&mut self, id: i64) -> Result<(), ApplyError> {
        if !self.index.leases.contains_key(&id) {
            return Err(ApplyError::LeaseNotFound);
        }
        let keys: Vec<Vec<u8>> = self
            .index
            .lease_keys
            .get(&id)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default();
        for key in keys {
            if let Some(prev) = self.view().current(&key)? {
                self.delete_key(prev);
            }
        }
        self.leases_deleted.push(id);
        Ok(())
    }

    /// Commits what was staged into the index and returns what to store.
    pub fn commit(self) -> Outcome {
        let Writer {
            index,
            staged,
            deleted_revisions,
            leases_put,
            leases_deleted,
            ..
        } = self;
        if !staged.changes.is_empty() {
            index.revision += 1;
        }
        for (key, appended) in staged.keys {
            let old_lease = index
                .keys
                .get(&key)
                .and_then(|h| h.live)
                .map_or(0, |live| live.lease);
            let new_lease = appended.live.map_or(0, |live| live.lease);
            if (old_lease != new_lease || appended.live.is_none())
                && let Some(keys) = index.lease_keys.get_mut(&old_lease)
            {
                keys.remove(&key);
            }
            if new_lease != 0 {
                index
                    .lease_keys
                    .entry(new_lease)
                    .or_default()
                    .insert(key.clone());
            }
            let history = index.keys.entry(key).or_default();
            history.revs.extend(appended.revs);
            history.live = appended.live;
        }
        for lease in &leases_put {
            index.leases.insert(lease.id, *lease);
        }
        for id in &leases_deleted {
            index.leases.remove(id);
            index.lease_keys.remove(id);
        }
        let mut records: Vec<(Revision, KvRecord)> = staged.records.into_iter().collect();
        records.sort_by_key(|(revision, _)| *revision);
        Outcome {
            records,
            changes: staged.changes,
            deleted_revisions,
            leases_put,
            leases_deleted,
        }
    }
}
