//! Running as one member of several: ids, the peer transport's requests to the leader, and how
//! a member bootstraps a new cluster or joins an existing one.

pub mod bootstrap;
pub mod forward;
pub mod leader;
pub mod member;
pub mod peers;
pub mod read_index;
pub mod service;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::node::Node;
use forward::{Forwarded, MembershipChange};

/// How often a member checks its own record in the membership.
const OWN_RECORD_CHECK: Duration = Duration::from_secs(1);

/// Keeps this member's record right, until `stop`: publishes its name and URLs once it is in
/// the membership, and, with `cluster.auto_promote`, asks to become a voter while it is a
/// learner (the leader agrees once it has caught up). A member removed from the cluster shuts
/// the process down (cancels `stop`), as etcd's does.
pub async fn maintain_own_record(node: Arc<Node>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(OWN_RECORD_CHECK);
    let me = node.identity.member_id;
    let peer_urls: Vec<String> = node.peer_url.iter().cloned().collect();
    let mut was_member = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = node.removed.cancelled() => break,
            _ = tick.tick() => {}
        }
        let recorded = {
            let metrics = node.raft.metrics();
            let metrics = metrics.borrow();
            metrics
                .membership_config
                .membership()
                .get_node(&me)
                .cloned()
        };
        let Some(recorded) = recorded else {
            if was_member {
                break;
            }
            // Not in the membership yet: a joining member waits for the leader's log.
            continue;
        };
        was_member = true;
        let stale = recorded.name != node.name
            || recorded.client_urls != [node.client_url.clone()]
            || (recorded.peer_urls.is_empty() && !peer_urls.is_empty());
        let change = if stale {
            MembershipChange::Publish {
                id: me,
                name: node.name.clone(),
                client_urls: vec![node.client_url.clone()],
                peer_urls: peer_urls.clone(),
            }
        } else if node.auto_promote && node.is_learner() {
            MembershipChange::Promote(me)
        } else {
            continue;
        };
        let what = if stale {
            "published its name and URLs"
        } else {
            "became a voter"
        };
        match node.ask_leader(Forwarded::Membership(change)).await {
            Ok(_) => tracing::info!("member {me:x} {what}"),
            Err(status) => tracing::debug!("member {me:x} not yet {what}: {}", status.message()),
        }
    }
    tracing::error!(
        "member {me:x} was removed from the cluster; stopping. To add this machine again, delete \
         its data directory and start it with --join"
    );
    if let Err(err) = node.mark_removed() {
        tracing::error!("cannot record the removal in the data directory: {err}");
    }
    stop.cancel();
}
