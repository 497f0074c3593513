//! What the leader does for the members that forward requests to it, membership changes
//! included.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use openraft::ChangeMembers;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use tonic::Status;

use super::forward::{ForwardReply, ForwardResult, Forwarded, MembershipChange, Refusal};
use super::member::{Member, member_id};
use crate::node::Node;
use crate::raft::proposer::ProposeError;

/// A learner is promoted only when it is at most this many entries behind the leader (etcd
/// allows 10% of the leader's log; a fixed bound keeps a long log from admitting a far-behind
/// learner).
const PROMOTE_MAX_LAG: u64 = 1000;

impl Node {
    /// Does what another member (or this one) asked: of the leader, most requests; of any
    /// member, the steps of a leadership transfer and the news of its removal.
    pub async fn handle_forwarded(&self, request: Forwarded) -> ForwardResult {
        match request {
            Forwarded::Campaign => {
                self.raft
                    .trigger()
                    .elect()
                    .await
                    .map_err(|err| status_refusal(Status::unavailable(err.to_string())))?;
                Ok(ForwardReply::Done)
            }
            Forwarded::HoldElections(millis) => {
                self.hold_elections(Duration::from_millis(millis));
                Ok(ForwardReply::Done)
            }
            Forwarded::Removed(id) => {
                if id == self.identity.member_id {
                    self.removed.cancel();
                }
                Ok(ForwardReply::Done)
            }
            Forwarded::Propose(command) => {
                self.require_leader()?;
                match self.proposer.propose(command).await {
                    Ok((applied, log_index)) => Ok(ForwardReply::Applied { applied, log_index }),
                    Err(ProposeError(status)) => Err(status_refusal(status)),
                }
            }
            Forwarded::ReadIndex => {
                self.require_leader()?;
                self.confirm_leadership().await.map(ForwardReply::ReadIndex)
            }
            Forwarded::LeaseKeepAlive(id) => {
                self.require_leader()?;
                // A leader cut off from the majority still believes it leads (openraft 0.9 has
                // no check-quorum) while another leader counts the lease down: confirm the
                // leadership with a heartbeat round before renewing, as etcd does.
                self.confirm_leadership().await?;
                Ok(ForwardReply::LeaseTtl(self.lessor.keep_alive(id)))
            }
            Forwarded::LeaseRemaining(id) => {
                self.require_leader()?;
                Ok(ForwardReply::LeaseRemaining(self.lessor.remaining(id)))
            }
            Forwarded::Membership(change) => {
                self.require_leader()?;
                self.change_membership(change).await
            }
        }
    }

    /// Refuses a leader's request here while this member does not lead, or is handing the lead
    /// over (requests then wait for the new leader, as etcd's do).
    fn require_leader(&self) -> Result<(), Refusal> {
        if self.is_leader() && !self.transferring.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(Refusal::NotLeader)
        }
    }

    /// Keeps this member from starting elections for `period`.
    fn hold_elections(&self, period: Duration) {
        self.raft.runtime_config().elect(false);
        let raft = self.raft.clone();
        tokio::spawn(async move {
            tokio::time::sleep(period).await;
            raft.runtime_config().elect(true);
        });
    }

    /// etcd's MoveLeader: hands leadership to voter `target`. Openraft 0.9 has no leadership
    /// transfer, so the leader holds client requests, waits until `target` has its whole log,
    /// keeps the other voters out of elections, stops its heartbeats until the followers'
    /// leader lease lapses, and asks `target` to campaign.
    pub async fn move_leader(self: &Arc<Self>, target: u64) -> Result<(), Status> {
        let me = self.identity.member_id;
        if !self.is_leader() {
            return Err(Status::failed_precondition("etcdserver: not leader"));
        }
        if target == me {
            return Ok(());
        }
        let (members, voters) = self.members();
        let Some(target_url) = members
            .get(&target)
            .filter(|_| voters.contains(&target))
            .and_then(|member| member.peer_url().map(str::to_owned))
        else {
            return Err(Status::failed_precondition(
                "etcdserver: bad leader transferee",
            ));
        };
        if self.transferring.swap(true, Ordering::AcqRel) {
            return Err(Status::failed_precondition(
                "etcdserver: leader transfer already in progress",
            ));
        }
        // In a task of its own: if the client gives up (or its deadline cuts the RPC short), the
        // transfer still ends and this member still gets its heartbeats and requests back.
        let node = self.clone();
        let transfer = tokio::spawn(async move {
            let outcome = node
                .transfer_to(target, &target_url, &members, &voters)
                .await;
            node.raft.runtime_config().heartbeat(true);
            node.transferring.store(false, Ordering::Release);
            outcome
        });
        let outcome = transfer
            .await
            .unwrap_or_else(|err| Err(Status::internal(format!("leader transfer failed: {err}"))));
        match &outcome {
            Ok(()) => tracing::info!("leadership moved from {me:x} to {target:x}"),
            Err(status) => tracing::warn!(
                "leadership did not move to {target:x}: {}",
                status.message()
            ),
        }
        outcome
    }

    async fn transfer_to(
        &self,
        target: u64,
        target_url: &str,
        members: &BTreeMap<u64, Member>,
        voters: &BTreeSet<u64>,
    ) -> Result<(), Status> {
        let timed_out = || {
            Status::deadline_exceeded(
                "etcdserver: request timed out, leader transfer took too long",
            )
        };
        let lease = self.leader_lease;
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        // Requests are held, so the log stops growing and the target can reach its end.
        while !self.has_whole_log(target) {
            if tokio::time::Instant::now() >= deadline {
                return Err(timed_out());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let hold = (lease * 4).as_millis() as u64;
        for (id, member) in members {
            if *id == target || *id == self.identity.member_id || !voters.contains(id) {
                continue;
            }
            if let Some(url) = member.peer_url() {
                // A voter that cannot be told may compete with the target; it can only delay
                // the transfer, not break it.
                let _ = self
                    .peers
                    .forward(url, &Forwarded::HoldElections(hold), lease)
                    .await;
            }
        }
        self.raft.runtime_config().heartbeat(false);
        tokio::time::sleep(lease + Duration::from_millis(50)).await;
        let _ = self
            .peers
            .forward(target_url, &Forwarded::Campaign, lease)
            .await;
        let mut metrics = self.raft.metrics();
        tokio::time::timeout_at(deadline, async {
            while metrics.borrow().current_leader != Some(target) {
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .map_err(|_| timed_out())
    }

    /// Whether follower `id` has replicated the leader's whole log.
    fn has_whole_log(&self, id: u64) -> bool {
        lag(&self.raft.metrics().borrow(), id) == Some(0)
    }

    /// Confirms with a heartbeat round that this member still leads; the commit index then.
    async fn confirm_leadership(&self) -> Result<u64, Refusal> {
        match self.raft.get_read_log_id().await {
            Ok((read, _applied)) => Ok(read.map_or(0, |id| id.index)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => {
                Err(Refusal::NotLeader)
            }
            Err(err) => Err(status_refusal(Status::unavailable(format!(
                "etcdserver: {err}"
            )))),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == openraft::ServerState::Leader
    }

    /// The members and, among them, the voters, as this member knows them.
    pub(crate) fn members(&self) -> (BTreeMap<u64, Member>, BTreeSet<u64>) {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        (
            membership
                .nodes()
                .map(|(id, member)| (*id, member.clone()))
                .collect(),
            membership.voter_ids().collect(),
        )
    }

    async fn change_membership(&self, change: MembershipChange) -> ForwardResult {
        // One change at a time, checked against the membership it will change: openraft
        // refuses (and logs an error for) a change that starts while another is uncommitted.
        let _one_at_a_time = self.membership_changes.lock().await;
        let (members, voters) = self.members();
        let found = |id: u64| {
            members
                .get(&id)
                .cloned()
                .ok_or_else(|| status_refusal(Status::not_found("etcdserver: member not found")))
        };
        match change {
            MembershipChange::Add {
                peer_urls,
                is_learner,
            } => {
                check_peer_urls(&peer_urls, &members, None)?;
                let id = member_id(&peer_urls[0], &format!("{:x}", self.identity.cluster_id));
                if members.contains_key(&id) {
                    return Err(status_refusal(Status::failed_precondition(
                        "etcdserver: ID exists",
                    )));
                }
                let member = Member {
                    name: String::new(),
                    peer_urls,
                    client_urls: Vec::new(),
                };
                self.apply_change(ChangeMembers::AddNodes(BTreeMap::from([(
                    id,
                    member.clone(),
                )])))
                .await?;
                tracing::info!(
                    "member {id:x} ({}) added as a learner",
                    member.peer_urls.join(",")
                );
                if !is_learner {
                    self.promote_when_caught_up(id);
                }
                Ok(ForwardReply::Member { id, member })
            }
            MembershipChange::Remove(id) => {
                let member = found(id)?;
                let change = if voters.contains(&id) {
                    if voters.len() == 1 {
                        return Err(status_refusal(Status::failed_precondition(
                            "etcdserver: cannot remove the only voting member",
                        )));
                    }
                    ChangeMembers::RemoveVoters(BTreeSet::from([id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([id]))
                };
                self.apply_change(change).await?;
                tracing::info!("member {id:x} ({}) removed", member.name);
                if let Some(url) = member.peer_url() {
                    // Best effort: a member that misses this stops disturbing nobody once the
                    // others' leases hold, but it would keep campaigning.
                    let _ = self
                        .peers
                        .forward(url, &Forwarded::Removed(id), self.leader_lease)
                        .await;
                }
                Ok(ForwardReply::Member { id, member })
            }
            MembershipChange::Promote(id) => {
                let member = found(id)?;
                if voters.contains(&id) {
                    return Err(status_refusal(Status::failed_precondition(
                        "etcdserver: can only promote a learner member",
                    )));
                }
                if !self.caught_up(id) {
                    return Err(status_refusal(Status::failed_precondition(
                        "etcdserver: can only promote a learner member which is in sync with leader",
                    )));
                }
                self.apply_change(ChangeMembers::AddVoterIds(BTreeSet::from([id])))
                    .await?;
                tracing::info!("learner {id:x} ({}) promoted to voter", member.name);
                Ok(ForwardReply::Member { id, member })
            }
            MembershipChange::UpdatePeerUrls { id, peer_urls } => {
                let mut member = found(id)?;
                check_peer_urls(&peer_urls, &members, Some(id))?;
                member.peer_urls = peer_urls;
                self.apply_change(ChangeMembers::SetNodes(BTreeMap::from([(
                    id,
                    member.clone(),
                )])))
                .await?;
                tracing::info!(
                    "member {id:x} now has peer URLs {}",
                    member.peer_urls.join(",")
                );
                Ok(ForwardReply::Member { id, member })
            }
            MembershipChange::Publish {
                id,
                name,
                client_urls,
                peer_urls,
            } => {
                let mut member = found(id)?;
                member.name = name;
                member.client_urls = client_urls;
                if member.peer_urls.is_empty() {
                    member.peer_urls = peer_urls;
                }
                self.apply_change(ChangeMembers::SetNodes(BTreeMap::from([(
                    id,
                    member.clone(),
                )])))
                .await?;
                Ok(ForwardReply::Member { id, member })
            }
        }
    }

    async fn apply_change(&self, change: ChangeMembers<u64, Member>) -> Result<(), Refusal> {
        match self.raft.change_membership(change, false).await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(Refusal::NotLeader)
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(err))) => Err(
                status_refusal(Status::failed_precondition(format!("etcdserver: {err}"))),
            ),
            Err(RaftError::Fatal(fatal)) => Err(status_refusal(Status::unavailable(format!(
                "etcdserver: raft stopped: {fatal}"
            )))),
        }
    }

    fn caught_up(&self, id: u64) -> bool {
        caught_up(&self.raft.metrics().borrow(), id)
    }

    /// etcd's MemberAdd of a voter: Raft cannot commit a configuration whose new voter is not
    /// running yet, so the member starts as a learner and becomes a voter once it has caught up.
    fn promote_when_caught_up(&self, id: u64) {
        let raft = self.raft.clone();
        let membership_changes = self.membership_changes.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let metrics = raft.metrics().borrow().clone();
                let membership = metrics.membership_config.membership();
                if metrics.state != openraft::ServerState::Leader
                    || membership.get_node(&id).is_none()
                    || membership.voter_ids().any(|voter| voter == id)
                {
                    return;
                }
                if caught_up(&metrics, id) {
                    let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
                    let _one_at_a_time = membership_changes.lock().await;
                    match raft.change_membership(change, false).await {
                        Ok(_) => {
                            tracing::info!("member {id:x} caught up and is now a voter");
                            return;
                        }
                        Err(err) => tracing::warn!("member {id:x} not made a voter yet: {err}"),
                    }
                }
            }
        });
    }
}

/// Whether learner `id` has replicated nearly all of the leader's log (per the leader's metrics).
fn caught_up(metrics: &openraft::RaftMetrics<u64, Member>, id: u64) -> bool {
    lag(metrics, id).is_some_and(|behind| behind <= PROMOTE_MAX_LAG)
}

/// How many entries follower `id` is behind the leader's log (per the leader's metrics);
/// `None` while it has replicated nothing.
fn lag(metrics: &openraft::RaftMetrics<u64, Member>, id: u64) -> Option<u64> {
    let matched = metrics
        .replication
        .as_ref()?
        .get(&id)
        .copied()
        .flatten()?
        .index;
    Some(metrics.last_log_index.unwrap_or(0).saturating_sub(matched))
}

fn status_refusal(status: Status) -> Refusal {
    Refusal::from_status(&status)
}

/// etcd's checks on a member's new peer URLs.
fn check_peer_urls(
    urls: &[String],
    members: &BTreeMap<u64, Member>,
    except: Option<u64>,
) -> Result<(), Refusal> {
    if urls.is_empty()
        || urls
            .iter()
            .any(|url| !(url.starts_with("http://") || url.starts_with("https://")))
    {
        return Err(status_refusal(Status::invalid_argument(
            "etcdserver: peer URLs must be http:// or https:// URLs",
        )));
    }
    let taken = members
        .iter()
        .filter(|(id, _)| Some(**id) != except)
        .any(|(_, member)| member.peer_urls.iter().any(|url| urls.contains(url)));
    if taken {
        return Err(status_refusal(Status::failed_precondition(
            "etcdserver: Peer URLs already exists",
        )));
    }
    Ok(())
}
