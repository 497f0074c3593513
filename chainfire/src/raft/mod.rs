//! Consensus: openraft over the RocksDB log and state machine. A standalone chainfire is a
//! single-member cluster that initialises itself; in cluster mode members talk over the peer
//! port ([`crate::cluster`]).

// openraft's storage traits return its `StorageError`, which is large by design.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod proposer;
pub mod state_machine;

use std::io::Cursor;

use crate::store::types::{Applied, Proposal};

openraft::declare_raft_types!(
    /// chainfire's Raft: a batch of commands in, one [`Applied`] per command out, u64 member
    /// ids, [`Member`](crate::cluster::member::Member) records.
    pub TypeConfig:
        D = Proposal,
        R = Vec<Applied>,
        NodeId = u64,
        Node = crate::cluster::member::Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type StorageError = openraft::StorageError<u64>;

fn storage_io(err: impl std::error::Error + 'static) -> openraft::AnyError {
    openraft::AnyError::new(&err)
}
