//! What the leader does for the members that forward requests to it, membership changes
//! included.

use std::collections::{BTreeMap, BTreeSet};
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
    /// Does what another member (or this one) asked of the leader.
    pub async fn handle_forwarded(&self, request: Forwarded) -> ForwardResult {
        if let Forwarded::Campaign = request {
            self.raft
                .trigger()
                .elect()
                .await
                .map_err(|err| status_refusal(Status::unavailable(err.to_string())))?;
            return Ok(ForwardReply::Done);
        }
        if !self.is_leader() {
            return Err(Refusal::NotLeader);
        }
        match request {
            Forwarded::Propose(command) => match self.proposer.propose(command).await {
                Ok((applied, log_index)) => Ok(ForwardReply::Applied { applied, log_index }),
                Err(ProposeError::NotLeader) => Err(Refusal::NotLeader),
                Err(ProposeError::Failed(status)) => Err(status_refusal(status)),
            },
            Forwarded::ReadIndex => match self.raft.get_read_log_id().await {
                Ok((read, _applied)) => Ok(ForwardReply::ReadIndex(read.map_or(0, |id| id.index))),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => {
                    Err(Refusal::NotLeader)
                }
                Err(err) => Err(status_refusal(Status::unavailable(format!(
                    "etcdserver: {err}"
                )))),
            },
            Forwarded::LeaseKeepAlive(id) => Ok(ForwardReply::LeaseTtl(self.lessor.keep_alive(id))),
            Forwarded::LeaseRemaining(id) => {
                Ok(ForwardReply::LeaseRemaining(self.lessor.remaining(id)))
            }
            Forwarded::Membership(change) => self.change_membership(change).await,
            Forwarded::Campaign => Ok(ForwardReply::Done),
        }
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == openraft::ServerState::Leader
    }

    fn members(&self) -> (BTreeMap<u64, Member>, BTreeSet<u64>) {
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

    /// Whether learner `id` has replicated nearly all of the leader's log.
    fn caught_up(&self, id: u64) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let last = metrics.last_log_index.unwrap_or(0);
        let matched = metrics
            .replication
            .as_ref()
            .and_then(|progress| progress.get(&id).copied().flatten())
            .map_or(0, |log_id| log_id.index);
        matched > 0 && last.saturating_sub(matched) <= PROMOTE_MAX_LAG
    }

    /// etcd's MemberAdd of a voter: Raft cannot commit a configuration whose new voter is not
    /// running yet, so the member starts as a learner and becomes a voter once it has caught up.
    fn promote_when_caught_up(&self, id: u64) {
        let raft = self.raft.clone();
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
                let caught_up = metrics
                    .replication
                    .as_ref()
                    .and_then(|progress| progress.get(&id).copied().flatten())
                    .is_some_and(|matched| {
                        metrics.last_log_index.unwrap_or(0) - matched.index <= PROMOTE_MAX_LAG
                    });
                if caught_up {
                    let change = ChangeMembers::AddVoterIds(BTreeSet::from([id]));
                    match raft.change_membership(change, false).await {
                        Ok(_) => tracing::info!("member {id:x} caught up and is now a voter"),
                        Err(err) => tracing::warn!("member {id:x} not made a voter: {err}"),
                    }
                    return;
                }
            }
        });
    }
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
