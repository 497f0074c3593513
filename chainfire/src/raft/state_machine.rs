//! The Raft state machine: applies committed commands to the [`Store`] and builds and installs
//! snapshots of it.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageIOError,
    StoredMembership,
};
use rocksdb::WriteBatch;

use super::{StorageError, TypeConfig, storage_io};
use crate::cluster::member::Member;
use crate::lease::Lessor;
use crate::store::db::{CF_META, decode, encode};
use crate::store::types::{Applied, Proposal};
use crate::store::{Store, StoreImage};

const APPLIED: &[u8] = b"applied";
const MEMBERSHIP: &[u8] = b"membership";

type Membership = StoredMembership<u64, Member>;
type Meta = SnapshotMeta<u64, Member>;

pub struct StateMachine {
    store: Arc<Store>,
    lessor: Arc<Lessor>,
    snapshot_path: PathBuf,
    applied: Option<LogId<u64>>,
    membership: Membership,
}

impl StateMachine {
    pub fn new(
        store: Arc<Store>,
        lessor: Arc<Lessor>,
        snapshot_path: PathBuf,
    ) -> Result<Self, StorageError> {
        let read = |err| StorageIOError::read_state_machine(storage_io(err));
        let applied = store.db().get(CF_META, APPLIED).map_err(read)?;
        let membership = store
            .db()
            .get(CF_META, MEMBERSHIP)
            .map_err(read)?
            .unwrap_or_default();
        Ok(Self {
            store,
            lessor,
            snapshot_path,
            applied,
            membership,
        })
    }

    fn record_progress(&self, batch: &mut WriteBatch) {
        let meta = self.store.db().cf(CF_META);
        batch.put_cf(meta, APPLIED, encode(&self.applied));
        batch.put_cf(meta, MEMBERSHIP, encode(&self.membership));
    }
}

/// Replaces the snapshot file atomically: a crash leaves the old one or the new one, whole.
fn save_snapshot_file(path: &Path, meta: &Meta, data: &[u8]) -> Result<(), std::io::Error> {
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, encode(&(meta, data)))?;
    std::fs::File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, path)
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId<u64>>, Membership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Applied>>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::default();
        let mut responses = Vec::new();
        let mut published = Vec::new();
        let mut applier = self.store.applier();
        for entry in entries {
            self.applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => responses.push(Vec::new()),
                EntryPayload::Normal(Proposal(commands)) => {
                    let mut answers = Vec::with_capacity(commands.len());
                    for command in &commands {
                        let (applied, changes) = applier.apply(command, &mut batch);
                        if let Some(Ok(_)) = &applied.outcome {
                            self.lessor.applied(command);
                        }
                        published.push((applied.revision, changes));
                        answers.push(applied);
                    }
                    responses.push(answers);
                }
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                    responses.push(Vec::new());
                }
            }
        }
        self.record_progress(&mut batch);
        // Not synced: the log entries are, and a replay after a crash re-applies them.
        applier
            .write(batch, false)
            .map_err(|err| StorageIOError::write_state_machine(storage_io(err)))?;
        for (revision, changes) in published {
            self.store.hub.publish(revision, changes);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // The image is taken here, between two applies, so it matches `applied` exactly.
        SnapshotBuilder {
            image: self.store.image().map_err(|err| err.to_string()),
            meta: Meta {
                last_log_id: self.applied,
                last_membership: self.membership.clone(),
                snapshot_id: format!(
                    "{}-{}",
                    self.applied.map_or(0, |id| id.index),
                    self.store.revision()
                ),
            },
            snapshot_path: self.snapshot_path.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let write = |err| StorageIOError::write_snapshot(Some(meta.signature()), storage_io(err));
        let image: StoreImage = decode(&data, "snapshot").map_err(write)?;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        let mut batch = WriteBatch::default();
        self.record_progress(&mut batch);
        self.store.install(&image, batch).map_err(write)?;
        self.lessor.reset_all(&image.leases);
        save_snapshot_file(&self.snapshot_path, meta, &data).map_err(|err| {
            StorageIOError::write_snapshot(Some(meta.signature()), storage_io(err))
        })?;
        self.store
            .snapshots_installed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            "installed snapshot {} from the leader (store revision {})",
            meta.snapshot_id,
            image.revision
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let bytes = match std::fs::read(&self.snapshot_path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(StorageIOError::read_snapshot(None, storage_io(err)).into()),
        };
        let (meta, data): (Meta, Vec<u8>) = decode(&bytes, "snapshot file")
            .map_err(|err| StorageIOError::read_snapshot(None, storage_io(err)))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

pub struct SnapshotBuilder {
    image: Result<StoreImage, String>,
    meta: Meta,
    snapshot_path: PathBuf,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let signature = Some(self.meta.signature());
        let image = self.image.as_ref().map_err(|reason| {
            StorageIOError::read_state_machine(openraft::AnyError::error(reason))
        })?;
        let data = encode(image);
        save_snapshot_file(&self.snapshot_path, &self.meta, &data)
            .map_err(|err| StorageIOError::write_snapshot(signature, storage_io(err)))?;
        tracing::info!(
            "snapshot {} built ({} bytes, store revision {})",
            self.meta.snapshot_id,
            data.len(),
            image.revision
        );
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
