//! One chainfire member: storage, Raft, leases, and what the API needs from them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::proto::PbResponseHeader;
use openraft::{ServerState, SnapshotPolicy};
use rocksdb::WriteBatch;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::cluster::bootstrap;
use crate::cluster::forward::{ForwardReply, Forwarded, Refusal};
use crate::cluster::member::Member;
use crate::cluster::peers::{CallError, Peers};
use crate::cluster::read_index::ReadIndexBatcher;
use crate::config::ChainfireSections;
use crate::lease::{Lessor, Remaining};
use crate::metrics::ApiMetrics;
use crate::raft::Raft;
use crate::raft::log_store::LogStore;
use crate::raft::proposer::{ProposeError, Proposer};
use crate::raft::state_machine::StateMachine;
use crate::store::Store;
use crate::store::db::{CF_RAFT, Db, encode};
use crate::store::types::{Applied, ApplyError, Command};

const IDENTITY: &[u8] = b"identity";
/// Whether this member added itself to its cluster as a learner (`--join`).
const JOINED_AS_LEARNER: &[u8] = b"joined_as_learner";
/// Present once this member has learned that it was removed from its cluster.
const REMOVED: &[u8] = b"removed";

/// etcd's request timeout; twice the election timeout is added to it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a request waiting for a leader looks again.
const LEADER_POLL: Duration = Duration::from_millis(20);

/// The member's and cluster's ids, chosen once when the data directory is created.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub member_id: u64,
    pub cluster_id: u64,
}

pub struct Node {
    pub raft: Raft,
    pub(crate) proposer: Proposer,
    read_index: ReadIndexBatcher,
    pub store: Arc<Store>,
    pub lessor: Arc<Lessor>,
    pub identity: Identity,
    pub name: String,
    pub client_url: String,
    /// The advertised peer URL; `None` when not in cluster mode.
    pub peer_url: Option<String>,
    /// Ask to become a voter while a learner: set for a member that joined as a learner by
    /// itself, with `cluster.auto_promote` (a learner an operator added stays one).
    pub auto_promote: bool,
    pub(crate) peers: Peers,
    pub max_request_bytes: usize,
    pub max_txn_ops: usize,
    pub progress_notify_interval: Duration,
    /// The shortest TTL a lease gets (etcd: 1.5 election timeouts, rounded up).
    pub min_lease_ttl: i64,
    /// How long a request waits for a leader and for its answer.
    pub request_timeout: Duration,
    /// How long followers refuse other candidates after hearing from the leader (openraft's
    /// leader lease: the longest election timeout).
    pub leader_lease: Duration,
    /// Leadership is being handed to another member (MoveLeader): requests wait for it.
    pub transferring: std::sync::atomic::AtomicBool,
    /// Cancelled when this member learns it was removed from the cluster.
    pub removed: CancellationToken,
    /// Held by the leader while it makes a membership change.
    pub(crate) membership_changes: Arc<tokio::sync::Mutex<()>>,
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
    #[error("{0}")]
    Cluster(String),
}

impl Node {
    /// Opens (or creates) the data directory and starts Raft. A new member bootstraps its cluster
    /// (standalone: a cluster of one) or joins an existing one, as configured. A standalone
    /// member returns once it leads; a cluster member at once, as its peers may not be up yet.
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
        let identity = match db
            .get::<Identity>(CF_RAFT, IDENTITY)
            .map_err(database_error)?
        {
            Some(identity) => identity,
            None => {
                let new = bootstrap::new_identity(name, sections)
                    .await
                    .map_err(StartError::Cluster)?;
                save_identity(&db, &new.identity, new.joined_as_learner).map_err(database_error)?;
                new.identity
            }
        };
        let joined_as_learner = db
            .get::<bool>(CF_RAFT, JOINED_AS_LEARNER)
            .map_err(database_error)?
            .unwrap_or(false);
        let store = Arc::new(Store::open(db.clone()).map_err(database_error)?);
        let leases: Vec<_> = store.index_guard().leases.values().copied().collect();
        let lessor = Arc::new(Lessor::new(&leases));

        let raft_config = openraft::Config {
            cluster_name: "chainfire".into(),
            heartbeat_interval: sections.raft.heartbeat_interval_ms,
            election_timeout_min: sections.raft.election_timeout_ms,
            // Also the leader lease (see `Node::leader_lease`).
            election_timeout_max: sections.raft.election_timeout_ms * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(sections.raft.snapshot_after_entries),
            // Entries per AppendEntries call; each may hold many batched writes, and the call
            // must fit in one heartbeat interval (see `cluster::peers::MAX_APPEND_BYTES`).
            max_payload_entries: 64,
            // A snapshot travels in chunks, each with this long to arrive.
            snapshot_max_chunk_size: 1024 * 1024,
            install_snapshot_timeout: 10_000,
            // Log kept behind a snapshot, for followers that are only a little behind.
            max_in_snapshot_log_to_keep: sections.raft.snapshot_after_entries.min(1000),
            ..Default::default()
        }
        .validate()
        .map_err(|err| StartError::RaftConfig(err.to_string()))?;

        let state_machine =
            StateMachine::new(store.clone(), lessor.clone(), snapshot_path(data_dir))
                .map_err(|err| StartError::Raft(err.to_string()))?;
        let peers = Peers::new(sections.cluster.peer_addr, identity.cluster_id);
        let raft = Raft::new(
            identity.member_id,
            Arc::new(raft_config),
            peers.clone(),
            LogStore::new(db.clone()),
            state_machine,
        )
        .await
        .map_err(|err| StartError::Raft(err.to_string()))?;

        let cluster = &sections.cluster;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|err| StartError::Raft(err.to_string()))?;
        if initialized {
            // Only the marker proves removal: a member that joined and has not yet received
            // the entry that added it does not see itself in its membership either.
            let marked_removed = db
                .get::<bool>(CF_RAFT, REMOVED)
                .map_err(database_error)?
                .unwrap_or(false);
            if marked_removed {
                return Err(StartError::Cluster(format!(
                    "member {:x} was removed from cluster {:x}; to add this machine again, delete \
                     {} and start it with --join",
                    identity.member_id,
                    identity.cluster_id,
                    data_dir.display()
                )));
            }
            if !cluster.join.is_empty() || !cluster.initial_cluster.is_empty() {
                tracing::info!(
                    "the data directory already belongs to member {:x} of cluster {:x}; \
                     cluster.join and cluster.initial_cluster apply to new members only",
                    identity.member_id,
                    identity.cluster_id
                );
            }
        } else if cluster.join.is_empty() {
            let members = if cluster.enabled {
                bootstrap::initial_membership(name, sections).map_err(StartError::Cluster)?
            } else {
                BTreeMap::from([(
                    identity.member_id,
                    Member {
                        name: name.to_owned(),
                        peer_urls: Vec::new(),
                        client_urls: vec![sections.advertised_client_url()],
                    },
                )])
            };
            let count = members.len();
            raft.initialize(members)
                .await
                .map_err(|err| StartError::Raft(err.to_string()))?;
            tracing::info!(
                "initialised a new cluster {:x} of {count} member(s) as member {:x}",
                identity.cluster_id,
                identity.member_id
            );
        }
        if !cluster.enabled {
            let members = raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .nodes()
                .count();
            if members > 1 {
                return Err(StartError::Cluster(format!(
                    "this data directory belongs to a cluster of {members} members; \
                     start it with --cluster-mode"
                )));
            }
            let election_wait = Duration::from_millis(sections.raft.election_timeout_ms * 10);
            raft.wait(Some(election_wait))
                .state(ServerState::Leader, "becoming leader")
                .await
                .map_err(|err| StartError::Raft(format!("no leader elected: {err}")))?;
        }

        let min_lease_ttl = (sections.raft.election_timeout_ms * 3 / 2).div_ceil(1000) as i64;
        let request_timeout =
            REQUEST_TIMEOUT + Duration::from_millis(2 * sections.raft.election_timeout_ms);
        Ok(Arc::new_cyclic(|node| Node {
            read_index: ReadIndexBatcher::start(node.clone()),
            proposer: Proposer::start(raft.clone(), request_timeout),
            raft,
            peers,
            store,
            lessor,
            identity,
            name: name.to_owned(),
            client_url: sections.advertised_client_url(),
            peer_url: cluster.enabled.then(|| cluster.advertised_peer_url()),
            auto_promote: cluster.auto_promote && joined_as_learner,
            max_request_bytes: sections.limits.max_request_bytes,
            max_txn_ops: sections.limits.max_txn_ops,
            progress_notify_interval: Duration::from_secs(
                sections.server.progress_notify_interval_sec,
            ),
            min_lease_ttl,
            request_timeout,
            leader_lease: Duration::from_millis(sections.raft.election_timeout_ms * 2),
            transferring: Default::default(),
            membership_changes: Default::default(),
            removed: CancellationToken::new(),
            api_metrics: ApiMetrics::default(),
        }))
    }

    /// Records that this member was removed, so that it refuses to start on this data again.
    pub fn mark_removed(&self) -> Result<(), crate::store::db::DbError> {
        let db = self.store.db();
        let mut batch = WriteBatch::default();
        batch.put_cf(db.cf(CF_RAFT), REMOVED, encode(&true));
        db.write(batch, true)
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
    /// A follower hands it to the leader and answers once it has applied it too, so that a read
    /// on this member that follows sees the write.
    pub async fn propose(&self, command: Command) -> Result<(i64, Vec<u8>), Status> {
        let ForwardReply::Applied { applied, log_index } =
            self.ask_leader(Forwarded::Propose(command)).await?
        else {
            return Err(unexpected_reply());
        };
        self.wait_applied(log_index).await?;
        let Applied { revision, outcome } = applied;
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
        let index = self.read_index.read_index().await?;
        self.wait_applied(index).await
    }

    /// One read-index round (see [`ReadIndexBatcher`]): the leader's commit index, confirmed by
    /// a heartbeat round.
    pub(crate) async fn read_index_round(&self) -> Result<u64, Status> {
        match self.ask_leader(Forwarded::ReadIndex).await? {
            ForwardReply::ReadIndex(index) => Ok(index),
            _ => Err(unexpected_reply()),
        }
    }

    /// Restarts a lease's countdown on the leader; `None` when it has no such lease.
    pub async fn keep_lease_alive(&self, id: i64) -> Result<Option<i64>, Status> {
        match self.ask_leader(Forwarded::LeaseKeepAlive(id)).await? {
            ForwardReply::LeaseTtl(ttl) => Ok(ttl),
            _ => Err(unexpected_reply()),
        }
    }

    /// A lease's remaining time, as the leader counts it.
    pub async fn lease_remaining(&self, id: i64) -> Result<Option<Remaining>, Status> {
        match self.ask_leader(Forwarded::LeaseRemaining(id)).await? {
            ForwardReply::LeaseRemaining(remaining) => Ok(remaining),
            _ => Err(unexpected_reply()),
        }
    }

    /// The current leader, as far as this member knows.
    pub fn leader(&self) -> Leader {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        match metrics.current_leader {
            Some(id) if id == self.identity.member_id => {
                if metrics.state == ServerState::Leader
                    && !self.transferring.load(std::sync::atomic::Ordering::Acquire)
                {
                    Leader::Me
                } else {
                    Leader::Unknown
                }
            }
            Some(id) => match metrics.membership_config.membership().get_node(&id) {
                Some(member) => match member.peer_url() {
                    Some(url) => Leader::Other {
                        peer_url: url.to_owned(),
                    },
                    None => Leader::Unknown,
                },
                None => Leader::Unknown,
            },
            None => Leader::Unknown,
        }
    }

    /// Has the leader do `request`, waiting for a leader if there is none. A request that may
    /// have taken effect is never sent twice.
    pub async fn ask_leader(&self, request: Forwarded) -> Result<ForwardReply, Status> {
        let deadline = Instant::now() + self.request_timeout;
        let resendable = request.is_idempotent();
        loop {
            let answer = match self.leader() {
                Leader::Me => {
                    match tokio::time::timeout_at(
                        deadline.into(),
                        self.handle_forwarded(request.clone()),
                    )
                    .await
                    {
                        Ok(answer) => Some(answer),
                        Err(_) if resendable => None,
                        Err(_) => {
                            return Err(Status::deadline_exceeded(
                                "etcdserver: request timed out; it may or may not have taken effect",
                            ));
                        }
                    }
                }
                Leader::Other { peer_url } => {
                    let mut left = deadline.saturating_duration_since(Instant::now());
                    if resendable {
                        // A leader that went silent is replaced within a lease; ask again then.
                        left = left.min(self.leader_lease);
                    }
                    match self.peers.forward(&peer_url, &request, left).await {
                        Ok(answer) => Some(answer),
                        // Harmless to send again, or never sent (the leader is down).
                        Err(err) if resendable || matches!(err, CallError::Refused { .. }) => {
                            tracing::debug!("asking the leader again: {err}");
                            None
                        }
                        Err(err) => {
                            return Err(Status::unavailable(format!(
                                "etcdserver: leader unreachable, the request may or may not \
                                 have taken effect: {err}"
                            )));
                        }
                    }
                }
                Leader::Unknown => None,
            };
            match answer {
                Some(Ok(reply)) => return Ok(reply),
                Some(Err(Refusal::NotLeader)) | None => {}
                Some(Err(refusal)) => return Err(refusal.into_status()),
            }
            if Instant::now() >= deadline {
                return Err(Status::unavailable("etcdserver: no leader"));
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }

    /// Waits until this member has applied the log up to `index`.
    async fn wait_applied(&self, index: u64) -> Result<(), Status> {
        self.raft
            .wait(Some(self.request_timeout))
            .applied_index_at_least(Some(index), "read or write")
            .await
            .map(|_| ())
            .map_err(|err| Status::unavailable(format!("etcdserver: request timed out: {err}")))
    }

    fn is_sole_voting_leader(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let me = self.identity.member_id;
        metrics.state == ServerState::Leader
            && metrics
                .membership_config
                .membership()
                .voter_ids()
                .eq(std::iter::once(me))
    }

    pub fn is_learner(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let me = self.identity.member_id;
        membership.get_node(&me).is_some() && !membership.voter_ids().any(|id| id == me)
    }

    /// On the leader, proposes the revocation of leases whose time is up, until `stop`. A new
    /// leader (or one whose term changed) first gives every lease its full TTL again, as etcd
    /// does. Revocations go to this member's own log only: an expiry counted on this member's
    /// clock must not be carried out by another leader, which counts its own.
    pub async fn expire_leases(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut leading_term = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let (leading, term) = {
                let metrics = self.raft.metrics();
                let metrics = metrics.borrow();
                (metrics.state == ServerState::Leader, metrics.current_term)
            };
            // Keep-alives cannot reach this member while it hands leadership over.
            if !leading || self.transferring.load(std::sync::atomic::Ordering::Acquire) {
                leading_term = None;
                continue;
            }
            if leading_term != Some(term) {
                leading_term = Some(term);
                // Under the index lock, so that no grant is applied between reading the leases
                // and resetting their clocks.
                let index = self.store.index_guard();
                let leases: Vec<_> = index.leases.values().copied().collect();
                self.lessor.reset_all(&leases);
                drop(index);
                tracing::info!(
                    "this member leads (term {term}); {} lease(s) restart their full TTL",
                    leases.len()
                );
            }
            for id in self.lessor.take_expired() {
                match self.proposer.propose(Command::LeaseRevoke { id }).await {
                    Ok((applied, _)) => {
                        // Otherwise it was revoked meanwhile.
                        if let Some(Ok(_)) = applied.outcome {
                            tracing::info!("lease {id:x} expired; its keys were deleted");
                        }
                    }
                    Err(ProposeError(status)) => {
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

impl Node {
    /// Logs every change of leader this member sees, and counts it, until `stop`.
    pub async fn watch_leadership(self: Arc<Self>, stop: CancellationToken) {
        let mut metrics = self.raft.metrics();
        let mut known = metrics.borrow().current_leader;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = metrics.changed() => if changed.is_err() { return },
            }
            let (leader, term) = {
                let now = metrics.borrow();
                (now.current_leader, now.current_term)
            };
            if leader == known {
                continue;
            }
            known = leader;
            self.api_metrics.leader_changes.inc();
            match leader {
                Some(id) => tracing::info!("member {id:x} leads (term {term})"),
                None => tracing::warn!(
                    "no leader (term {term}): requests wait until a majority of members elects one"
                ),
            }
        }
    }
}

/// Where client requests that need the leader go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leader {
    Me,
    Other {
        peer_url: String,
    },
    /// No leader yet (an election is under way, or this member is cut off).
    Unknown,
}

fn unexpected_reply() -> Status {
    Status::internal("the leader answered a different request")
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

fn save_identity(
    db: &Db,
    identity: &Identity,
    joined_as_learner: bool,
) -> Result<(), crate::store::db::DbError> {
    let mut batch = WriteBatch::default();
    batch.put_cf(db.cf(CF_RAFT), IDENTITY, encode(identity));
    batch.put_cf(
        db.cf(CF_RAFT),
        JOINED_AS_LEARNER,
        encode(&joined_as_learner),
    );
    db.write(batch, true)
}
