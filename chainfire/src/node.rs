//! One chainfire member: storage, Raft, leases, and what the API needs from them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::proto::PbResponseHeader;
use openraft::{BasicNode, ServerState, SnapshotPolicy};
use rand::Rng;
use rocksdb::WriteBatch;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::config::ChainfireSections;
use crate::lease::Lessor;
use crate::metrics::ApiMetrics;
use crate::raft::Raft;
use crate::raft::log_store::LogStore;
use crate::raft::network::NoPeers;
use crate::raft::proposer::Proposer;
use crate::raft::state_machine::StateMachine;
use crate::store::Store;
use crate::store::db::{CF_RAFT, Db, encode};
use crate::store::types::{Applied, ApplyError, Command};

const IDENTITY: &[u8] = b"identity";

/// The member's and cluster's ids, chosen once when the data directory is created.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub member_id: u64,
    pub cluster_id: u64,
}

pub struct Node {
    pub raft: Raft,
    proposer: Proposer,
    pub store: Arc<Store>,
    pub lessor: Arc<Lessor>,
    pub identity: Identity,
    pub name: String,
    pub client_url: String,
    pub max_request_bytes: usize,
    pub max_txn_ops: usize,
    pub progress_notify_interval: Duration,
    /// The shortest TTL a lease gets (etcd: 1.5 election timeouts, rounded up).
    pub min_lease_ttl: i64,
    pub api_metrics: ApiMetrics,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chainfire member {:x}", self.identity.member_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database in {path}: {source}")]
    Database {
        path: String,
        source: crate::store::db::DbError,
    },
    #[error("Raft configuration: {0}")]
    RaftConfig(String),
    #[error("Raft failed to start: {0}")]
    Raft(String),
}

impl Node {
    /// Opens (or creates) the data directory and starts Raft; a new standalone member
    /// initialises itself as a single-member cluster and waits to become leader.
    pub async fn start(name: &str, sections: &ChainfireSections) -> Result<Arc<Node>, StartError> {
        let data_dir = &sections.storage.data_dir;
        std::fs::create_dir_all(data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let db_path = data_dir.join("db");
        let database_error = |source| StartError::Database {
            path: db_path.display().to_string(),
            source,
        };
        let db = Db::open(&db_path).map_err(database_error)?;
        let identity = load_or_create_identity(&db).map_err(database_error)?;
        let store = Arc::new(Store::open(db.clone()).map_err(database_error)?);
        let leases: Vec<_> = store.index_guard().leases.values().copied().collect();
        let lessor = Arc::new(Lessor::new(&leases));

        let raft_config = openraft::Config {
            cluster_name: "chainfire".into(),
            heartbeat_interval: sections.raft.heartbeat_interval_ms,
            election_timeout_min: sections.raft.election_timeout_ms,
            election_timeout_max: sections.raft.election_timeout_ms * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(sections.raft.snapshot_after_entries),
            max_in_snapshot_log_to_keep: 1000,
            ..Default::default()
        }
        .validate()
        .map_err(|err| StartError::RaftConfig(err.to_string()))?;

        let state_machine =
            StateMachine::new(store.clone(), lessor.clone(), snapshot_path(data_dir))
                .map_err(|err| StartError::Raft(err.to_string()))?;
        let raft = Raft::new(
            identity.member_id,
            Arc::new(raft_config),
            NoPeers,
            LogStore::new(db.clone()),
            state_machine,
        )
        .await
        .map_err(|err| StartError::Raft(err.to_string()))?;

        let client_url = sections.advertised_client_url();
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|err| StartError::Raft(err.to_string()))?;
        if !initialized {
            let members = BTreeMap::from([(
                identity.member_id,
                BasicNode {
                    addr: client_url.clone(),
                },
            )]);
            raft.initialize(members)
                .await
                .map_err(|err| StartError::Raft(err.to_string()))?;
            tracing::info!(
                "initialised a new single-member cluster {:x} as member {:x}",
                identity.cluster_id,
                identity.member_id
            );
        }
        let election_wait = Duration::from_millis(sections.raft.election_timeout_ms * 10);
        raft.wait(Some(election_wait))
            .state(ServerState::Leader, "becoming leader")
            .await
            .map_err(|err| StartError::Raft(format!("no leader elected: {err}")))?;

        let min_lease_ttl = (sections.raft.election_timeout_ms * 3 / 2).div_ceil(1000) as i64;
        Ok(Arc::new(Node {
            proposer: Proposer::start(raft.clone()),
            raft,
            store,
            lessor,
            identity,
            name: name.to_owned(),
            client_url,
            max_request_bytes: sections.limits.max_request_bytes,
            max_txn_ops: sections.limits.max_txn_ops,
            progress_notify_interval: Duration::from_secs(
                sections.server.progress_notify_interval_sec,
            ),
            min_lease_ttl,
            api_metrics: ApiMetrics::default(),
        }))
    }

    /// The response header etcd clients expect.
    pub fn header(&self, revision: i64) -> Option<PbResponseHeader> {
        Some(PbResponseHeader {
            cluster_id: self.identity.cluster_id,
            member_id: self.identity.member_id,
            revision,
            raft_term: self.raft.metrics().borrow().current_term,
        })
    }

    /// Replicates `command` and returns the store revision after it and the encoded answer.
    pub async fn propose(&self, command: Command) -> Result<(i64, Vec<u8>), Status> {
        let Applied { revision, outcome } = self.proposer.propose(command).await?;
        match outcome {
            Some(Ok(body)) => Ok((revision, body)),
            Some(Err(refusal)) => Err(apply_status(&refusal)),
            None => Err(Status::internal("the state machine gave no answer")),
        }
    }

    /// Makes the next read linearizable: it will see every write acknowledged before the call.
    pub async fn linearize(&self) -> Result<(), Status> {
        if self.is_sole_voting_leader() {
            // Writes are acknowledged only once applied, and no other member can commit
            // anything, so the local state already holds every acknowledged write. (A read-index
            // round would wait for the next heartbeat tick for nothing.)
            return Ok(());
        }
        self.raft
            .ensure_linearizable()
            .await
            .map(|_| ())
            .map_err(|err| Status::unavailable(format!("etcdserver: {err}")))
    }

    fn is_sole_voting_leader(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let me = self.identity.member_id;
        metrics.current_leader == Some(me)
            && metrics
                .membership_config
                .membership()
                .voter_ids()
                .eq(std::iter::once(me))
    }

    /// Proposes the revocation of leases whose time is up, until `stop`.
    pub async fn expire_leases(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.raft.metrics().borrow().state != ServerState::Leader {
                continue;
            }
            for id in self.lessor.take_expired() {
                match self.propose(Command::LeaseRevoke { id }).await {
                    Ok(_) => tracing::info!("lease {id:x} expired; its keys were deleted"),
                    Err(status) if status.code() == tonic::Code::NotFound => {}
                    Err(status) => {
                        tracing::warn!(
                            "cannot revoke expired lease {id:x} yet: {}",
                            status.message()
                        );
                        self.lessor.retry(id);
                    }
                }
            }
        }
    }
}

/// The gRPC status etcd gives each refusal.
pub fn apply_status(refusal: &ApplyError) -> Status {
    let message = refusal.to_string();
    match refusal {
        ApplyError::KeyNotFound => Status::invalid_argument(message),
        ApplyError::LeaseNotFound => Status::not_found(message),
        ApplyError::LeaseExists => Status::failed_precondition(message),
        ApplyError::Compacted | ApplyError::FutureRevision => Status::out_of_range(message),
        ApplyError::Malformed(_) => Status::internal(message),
    }
}

fn snapshot_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("snapshot")
}

fn load_or_create_identity(db: &Db) -> Result<Identity, crate::store::db::DbError> {
    if let Some(identity) = db.get::<Identity>(CF_RAFT, IDENTITY)? {
        return Ok(identity);
    }
    let mut rng = rand::rng();
    let identity = Identity {
        member_id: rng.random_range(1..u64::MAX),
        cluster_id: rng.random_range(1..u64::MAX),
    };
    let mut batch = WriteBatch::default();
    batch.put_cf(db.cf(CF_RAFT), IDENTITY, encode(&identity));
    db.write(batch, true)?;
    Ok(identity)
}
