//! How a member with an empty data directory learns who it is: a standalone member makes up its
//! ids, a bootstrapping member derives them from the initial member list, and a joining member
//! asks an existing cluster to add it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use etcd_client::{Client, MemberAddOptions};
use rand::Rng;

use super::member::{Member, cluster_id, member_id};
use crate::config::{ChainfireSections, InitialMember};
use crate::node::Identity;

/// How long a joining member keeps trying to reach the cluster before giving up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
const JOIN_RETRY: Duration = Duration::from_secs(1);

/// The member list a new cluster starts with, ids included; this member is among them. Every
/// bootstrapping member must start from the same list (openraft cannot tell them apart), so
/// it holds only what all of them know: names and peer URLs. Client URLs come when each member
/// publishes itself.
pub fn initial_membership(
    name: &str,
    sections: &ChainfireSections,
) -> Result<BTreeMap<u64, Member>, String> {
    let cluster = &sections.cluster;
    let own_peer_url = cluster.advertised_peer_url();
    let mut listed = cluster.initial_members()?;
    if listed.is_empty() {
        listed.push(InitialMember {
            name: name.to_owned(),
            peer_url: own_peer_url.clone(),
        });
    }
    let Some(me) = listed.iter().find(|member| member.name == name) else {
        return Err(format!(
            "cluster.initial_cluster does not list this member's name {name:?} \
             (photon.component_id / --component-id)"
        ));
    };
    if me.peer_url != own_peer_url {
        return Err(format!(
            "cluster.initial_cluster gives {name:?} the peer URL {}, but this member advertises \
             {own_peer_url} (cluster.advertise_peer_url / cluster.peer_addr)",
            me.peer_url
        ));
    }
    Ok(listed
        .into_iter()
        .map(|listed| {
            let id = member_id(&listed.peer_url, &cluster.initial_cluster_token);
            let member = Member {
                name: listed.name,
                peer_urls: vec![listed.peer_url],
                client_urls: Vec::new(),
            };
            (id, member)
        })
        .collect())
}

/// Who a member with a new data directory is.
pub struct NewMember {
    pub identity: Identity,
    /// It added itself as a learner (`--join`), so it asks to become a voter once caught up.
    pub joined_as_learner: bool,
}

/// The identity of a member whose data directory is new.
pub async fn new_identity(name: &str, sections: &ChainfireSections) -> Result<NewMember, String> {
    let cluster = &sections.cluster;
    if !cluster.enabled {
        let mut rng = rand::rng();
        let identity = Identity {
            member_id: rng.random_range(1..u64::MAX),
            cluster_id: rng.random_range(1..u64::MAX),
        };
        return Ok(NewMember {
            identity,
            joined_as_learner: false,
        });
    }
    if cluster.join.is_empty() {
        let members = initial_membership(name, sections)?;
        let ids: Vec<u64> = members.keys().copied().collect();
        let member_id = members
            .iter()
            .find(|(_, member)| member.name == name)
            .map(|(id, _)| *id)
            .unwrap_or_default();
        let identity = Identity {
            member_id,
            cluster_id: cluster_id(&ids, &cluster.initial_cluster_token),
        };
        return Ok(NewMember {
            identity,
            joined_as_learner: false,
        });
    }
    join(&cluster.join, &cluster.advertised_peer_url()).await
}

/// Asks the cluster at `endpoints` for this member's id, adding it as a learner unless an
/// operator already added it (`etcdctl member add`) with this peer URL.
async fn join(endpoints: &[String], peer_url: &str) -> Result<NewMember, String> {
    let deadline = Instant::now() + JOIN_TIMEOUT;
    loop {
        match try_join(endpoints, peer_url).await {
            Ok(identity) => return Ok(identity),
            Err(reason) if Instant::now() < deadline => {
                tracing::warn!(
                    "cannot join the cluster at {} yet (retrying): {reason}",
                    endpoints.join(",")
                );
                tokio::time::sleep(JOIN_RETRY).await;
            }
            Err(reason) => {
                return Err(format!(
                    "could not join the cluster at {} within {JOIN_TIMEOUT:?}: {reason}",
                    endpoints.join(",")
                ));
            }
        }
    }
}

async fn try_join(endpoints: &[String], peer_url: &str) -> Result<NewMember, String> {
    let mut client = Client::connect(endpoints, None)
        .await
        .map_err(|err| err.to_string())?;
    let listed = client.member_list().await.map_err(|err| err.to_string())?;
    let cluster_id = listed.header().map(|h| h.cluster_id()).unwrap_or_default();
    if let Some(member) = listed
        .members()
        .iter()
        .find(|member| member.peer_urls().iter().any(|url| url == peer_url))
    {
        tracing::info!(
            "the cluster already lists {peer_url} as member {:x}; starting as that member",
            member.id()
        );
        return Ok(NewMember {
            identity: Identity {
                member_id: member.id(),
                cluster_id,
            },
            joined_as_learner: false,
        });
    }
    let added = client
        .member_add([peer_url], Some(MemberAddOptions::new().with_is_learner()))
        .await
        .map_err(|err| err.to_string())?;
    let member = added
        .member()
        .ok_or("the cluster answered MemberAdd without the member")?;
    tracing::info!(
        "joined cluster {cluster_id:x} as learner {:x}; catching up before becoming a voter",
        member.id()
    );
    Ok(NewMember {
        identity: Identity {
            member_id: member.id(),
            cluster_id,
        },
        joined_as_learner: true,
    })
}
