//! Multi-member chainfire: real processes on their own loopback addresses, etcd clients, and
//! faults (kill -9, restarts, a partition through the test's proxies).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::history::History;
use etcd_client::{
    Client, ConnectOptions, EventType, GetOptions, LeaseKeepAliveStream, PutOptions,
};

/// A fast failure detector keeps the fault tests short.
const FAST_RAFT: &[&str] = &[
    "raft.heartbeat_interval_ms=50",
    "raft.election_timeout_ms=500",
];

async fn client_for(endpoint: &str) -> Option<Client> {
    let options = ConnectOptions::new()
        .with_timeout(Duration::from_secs(3))
        .with_connect_timeout(Duration::from_secs(1));
    Client::connect([endpoint], Some(options)).await.ok()
}

async fn serializable_get(client: &mut Client, key: &str) -> Option<String> {
    let response = client
        .get(key, Some(GetOptions::new().with_serializable()))
        .await
        .unwrap();
    response
        .kvs()
        .first()
        .map(|kv| kv.value_str().unwrap().to_owned())
}

/// Waits until `check` holds, or fails naming `what`.
async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn any_member_serves_writes_reads_and_watches() {
    let cluster = Cluster::bootstrap(3, &[]).await;
    let leader = cluster.leader().await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();

    // Every member lists all three, with the names and URLs they published.
    let mut client = cluster.members[followers[0]].client().await;
    eventually("every member to publish its client URL", async || {
        let members = client.member_list().await.unwrap();
        members.members().len() == 3
            && members
                .members()
                .iter()
                .all(|m| !m.client_urls().is_empty())
    })
    .await;
    for member in client.member_list().await.unwrap().members() {
        let expected = cluster
            .members
            .iter()
            .find(|m| m.name == member.name())
            .expect("a member the cluster started");
        assert_eq!(member.client_urls(), [expected.endpoint()]);
        assert_eq!(member.peer_urls(), [expected.peer_url()]);
        assert!(!member.is_learner());
    }

    // A watch on one follower sees a write made through the other.
    let mut watcher = cluster.members[followers[1]].client().await;
    let mut events = watcher.watch("color", None).await.unwrap();
    let put = client.put("color", "blue", None).await.unwrap();
    let write_revision = put.header().unwrap().revision();
    // Read-your-writes on the member that forwarded the write, even serializable.
    assert_eq!(
        serializable_get(&mut client, "color").await.as_deref(),
        Some("blue")
    );
    // A linearizable read on the other follower sees it too.
    let mut other = cluster.members[followers[1]].client().await;
    let got = other.get("color", None).await.unwrap();
    assert_eq!(got.kvs()[0].value_str().unwrap(), "blue");
    assert_eq!(got.kvs()[0].mod_revision(), write_revision);
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let message = events.message().await.unwrap().unwrap();
            if !message.events().is_empty() {
                return message;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(event.events()[0].event_type(), EventType::Put);
    assert_eq!(event.events()[0].kv().unwrap().value_str().unwrap(), "blue");

    // Every member agrees on the leader and reports its place.
    for (i, member) in cluster.members.iter().enumerate() {
        let status = member.client().await.status().await.unwrap();
        assert_eq!(cluster.index_of(status.leader()).await, Some(leader));
        assert!(!status.is_learner());
        assert!(status.raft_index() >= 1, "member {i} has the log");
    }
}

#[tokio::test]
async fn a_standalone_member_grows_into_a_cluster_and_shrinks_again() {
    // A standalone chainfire with data...
    let mut cluster = Cluster::single(&[], FAST_RAFT).await;
    let mut client = cluster.members[0].client().await;
    for i in 0..200 {
        client.put(format!("k{i}"), "v", None).await.unwrap();
    }
    // ...restarted in cluster mode keeps its data and becomes the first member.
    cluster.members[0].flags = vec!["--cluster-mode".into()];
    cluster.members[0].restart().await;
    let mut client = cluster.members[0].client().await;
    eventually("the first member to publish its peer URL", async || {
        let members = client.member_list().await.unwrap();
        members.members()[0].peer_urls() == [cluster.members[0].peer_url()]
    })
    .await;

    // Two members join; each starts as a learner, catches up, and is promoted.
    let second = cluster.join().await;
    let third = cluster.join().await;
    eventually("both joiners to become voters", async || {
        let members = client.member_list().await.unwrap();
        members.members().len() == 3 && members.members().iter().all(|m| !m.is_learner())
    })
    .await;
    for joined in [second, third] {
        let mut joined_client = cluster.members[joined].client().await;
        assert_eq!(
            joined_client.get("k199", None).await.unwrap().kvs().len(),
            1,
            "a joined member has the data from before it joined"
        );
    }

    // etcd's MemberAdd as a learner, refused promotion while it has not started, removed.
    let added = client
        .member_add(
            ["http://127.0.0.1:1"],
            Some(etcd_client::MemberAddOptions::new().with_is_learner()),
        )
        .await
        .unwrap();
    let added_id = added.member().unwrap().id();
    assert!(added.member().unwrap().is_learner());
    let refused = client.member_promote(added_id).await.unwrap_err();
    assert!(
        refused.to_string().contains("in sync with leader"),
        "{refused}"
    );
    let duplicate = client
        .member_add(["http://127.0.0.1:1"], None)
        .await
        .unwrap_err();
    assert!(duplicate.to_string().contains("Peer URLs already exists"));
    client.member_remove(added_id).await.unwrap();

    // Removing a voter shrinks the cluster; the rest keep serving.
    let (third_id, _) = cluster.members[third].ids().await;
    client.member_remove(third_id).await.unwrap();
    let members = client.member_list().await.unwrap();
    assert_eq!(members.members().len(), 2);
    // The removed member stops by itself and refuses to come back on its old data.
    let exit = cluster.members[third]
        .wait_exit(Duration::from_secs(20))
        .await;
    assert!(exit.success(), "{exit:?}");
    let refused = cluster.members[third].start_expecting_refusal().await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("was removed from cluster"), "{stderr}");
    client.put("after-shrink", "ok", None).await.unwrap();
    let mut second_client = cluster.members[second].client().await;
    assert_eq!(
        second_client
            .get("after-shrink", None)
            .await
            .unwrap()
            .kvs()
            .len(),
        1
    );
}

/// Kills `follower`, writes `count` keys `{prefix}0..` and deletes `deleted` through `client`,
/// restarts it, and waits until it has the last key; returns a client on the follower.
async fn absent_while_writing(
    cluster: &mut Cluster,
    follower: usize,
    client: &mut Client,
    (prefix, count): (&str, usize),
    deleted: Option<&str>,
) -> Client {
    cluster.members[follower].kill();
    for i in 0..count {
        client
            .put(format!("{prefix}{i}"), i.to_string(), None)
            .await
            .unwrap();
    }
    if let Some(key) = deleted {
        client.delete(key, None).await.unwrap();
    }
    cluster.members[follower].restart().await;
    let mut follower_client = cluster.members[follower].client().await;
    let last = format!("{prefix}{}", count - 1);
    eventually(&format!("the follower to catch up to {last}"), async || {
        serializable_get(&mut follower_client, &last)
            .await
            .is_some()
    })
    .await;
    follower_client
}

#[tokio::test]
async fn a_follower_catches_up_by_log_and_after_compaction_by_snapshot() {
    let mut cluster = Cluster::bootstrap(3, &["raft.snapshot_after_entries=50"]).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let mut client = cluster.members[leader].client().await;
    let snapshots = async |cluster: &Cluster| {
        cluster.members[follower]
            .gauge("raft_snapshots_installed")
            .await
    };

    // A short absence: the leader still has the log the follower missed.
    absent_while_writing(&mut cluster, follower, &mut client, ("short", 20), None).await;
    assert_eq!(snapshots(&cluster).await, 0.0, "caught up by log alone");

    // A long absence: the leader has compacted its log past what the follower has.
    let absence = ("long", 400);
    let mut follower_client =
        absent_while_writing(&mut cluster, follower, &mut client, absence, Some("short0")).await;
    assert!(snapshots(&cluster).await >= 1.0, "caught up by snapshot");
    assert_eq!(serializable_get(&mut follower_client, "short0").await, None);
    let all = follower_client
        .get(
            "long",
            Some(GetOptions::new().with_prefix().with_serializable()),
        )
        .await
        .unwrap();
    assert_eq!(all.kvs().len(), 400);
}

/// Clients that write unique values and read, recording every operation, until `stop`.
fn start_load(
    endpoints: Vec<String>,
    history: History,
    stop: Arc<AtomicBool>,
    clients: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    let values = Arc::new(AtomicU64::new(1));
    (0..clients)
        .map(|n| {
            let endpoints = endpoints.clone();
            let history = history.clone();
            let stop = stop.clone();
            let values = values.clone();
            tokio::spawn(async move {
                let mut target = n % endpoints.len();
                let mut client = None;
                let mut step = n as u64;
                while !stop.load(Ordering::Relaxed) {
                    step += 1;
                    if client.is_none() {
                        client = client_for(&endpoints[target]).await;
                    }
                    let Some(connected) = client.as_mut() else {
                        target = (target + 1) % endpoints.len();
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let key = format!("reg{}", step % 4);
                    let invoked = history.invoke();
                    let failed = if step.is_multiple_of(2) {
                        let value = values.fetch_add(1, Ordering::Relaxed);
                        match connected.put(key.as_str(), value.to_string(), None).await {
                            Ok(_) => {
                                history.write_ok(&key, value, invoked);
                                false
                            }
                            Err(_) => {
                                history.write_unknown(&key, value, invoked);
                                true
                            }
                        }
                    } else {
                        match connected.get(key.as_str(), None).await {
                            Ok(response) => {
                                let value = response
                                    .kvs()
                                    .first()
                                    .map(|kv| kv.value_str().unwrap().parse().unwrap());
                                history.read_ok(&key, value, invoked);
                                false
                            }
                            Err(_) => true,
                        }
                    };
                    if failed {
                        // Try another member, as etcd clients do.
                        client = None;
                        target = (target + 1) % endpoints.len();
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect()
}

/// Final linearizable reads of every register through each of `members`, recorded too.
async fn read_back(cluster: &Cluster, members: &[usize], history: &History) {
    for &i in members {
        let mut client = cluster.members[i].client().await;
        for key in (0..4).map(|k| format!("reg{k}")) {
            let invoked = history.invoke();
            let response = client.get(key.as_str(), None).await.unwrap();
            let value = response
                .kvs()
                .first()
                .map(|kv| kv.value_str().unwrap().parse().unwrap());
            history.read_ok(&key, value, invoked);
        }
    }
}

#[tokio::test]
async fn killing_the_leader_under_load_loses_no_acknowledged_write() {
    let mut cluster = Cluster::bootstrap(3, FAST_RAFT).await;
    let history = History::new();
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(cluster.endpoints(), history.clone(), stop.clone(), 6);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let leader = cluster.leader().await;
    let killed_at = Instant::now();
    cluster.members[leader].kill();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let new_leader = cluster.leader_among(&survivors).await;
    eprintln!(
        "member {new_leader} leads {:?} after the leader was killed",
        killed_at.elapsed()
    );
    let before = history.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        history.len() > before + 10,
        "clients carried on after the failover"
    );

    cluster.members[leader].restart().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    read_back(&cluster, &[0, 1, 2], &history).await;
    let stats = common::history::check(&history.operations()).unwrap();
    eprintln!("linearizable: {stats:?}");
}

#[tokio::test]
async fn an_isolated_leader_cannot_commit_and_steps_down_after_healing() {
    let cluster = Cluster::bootstrap(3, FAST_RAFT).await;
    let history = History::new();
    let stop = Arc::new(AtomicBool::new(false));
    let load = start_load(cluster.endpoints(), history.clone(), stop.clone(), 6);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let old_leader = cluster.leader().await;
    cluster.isolate(old_leader);
    let majority: Vec<usize> = (0..3).filter(|&i| i != old_leader).collect();
    let new_leader = cluster.leader_among(&majority).await;
    assert_ne!(new_leader, old_leader);

    // The minority side cannot commit: a write there is not acknowledged.
    let mut minority = client_for(&cluster.members[old_leader].endpoint())
        .await
        .unwrap();
    let invoked = history.invoke();
    let attempt = minority.put("reg0", "999999999", None).await;
    assert!(attempt.is_err(), "an isolated member acknowledged a write");
    history.write_unknown("reg0", 999_999_999, invoked);
    // The majority side carries on.
    let mut majority_client = cluster.members[new_leader].client().await;
    majority_client
        .put("during-partition", "yes", Some(PutOptions::new()))
        .await
        .unwrap();
    // ...and the minority side must not serve a linearizable read that misses it.
    let invoked = history.invoke();
    majority_client
        .put("reg1", "888888888", None)
        .await
        .unwrap();
    history.write_ok("reg1", 888_888_888, invoked);
    let invoked = history.invoke();
    if let Ok(response) = minority.get("reg1", None).await {
        let seen = response
            .kvs()
            .first()
            .map(|kv| kv.value_str().unwrap().parse().unwrap());
        history.read_ok("reg1", seen, invoked);
    }

    cluster.heal();
    let agreed = cluster.leader().await;
    assert_ne!(agreed, old_leader, "the old leader stepped down");
    let mut healed = cluster.members[old_leader].client().await;
    eventually("the old leader to converge", async || {
        serializable_get(&mut healed, "during-partition")
            .await
            .is_some()
    })
    .await;

    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    read_back(&cluster, &[0, 1, 2], &history).await;
    common::history::check(&history.operations()).unwrap();
}

#[tokio::test]
async fn leases_and_watches_survive_a_leader_change() {
    let mut cluster = Cluster::bootstrap(3, FAST_RAFT).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let mut client = cluster.members[follower].client().await;
    let mut watcher = cluster.members[follower].client().await;
    let mut events = watcher
        .watch(
            "owned",
            Some(etcd_client::WatchOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    let lease = client.lease_grant(6, None).await.unwrap().id();
    client
        .put("owned", "x", Some(PutOptions::new().with_lease(lease)))
        .await
        .unwrap();
    let (mut keeper, mut answers): (_, LeaseKeepAliveStream) =
        client.lease_keep_alive(lease).await.unwrap();

    cluster.members[leader].kill();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    cluster.leader_among(&survivors).await;
    // Kept alive through the follower for longer than the TTL, across the leader change.
    let mut ttls = HashMap::new();
    for round in 0..8 {
        keeper.keep_alive().await.unwrap();
        let answer = answers.message().await.unwrap().unwrap();
        ttls.insert(round, answer.ttl());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        ttls.values().all(|ttl| *ttl > 0),
        "the lease stayed alive: {ttls:?}"
    );
    assert_eq!(
        client.get("owned", None).await.unwrap().kvs().len(),
        1,
        "the lease's key is still there"
    );
    let remaining = client.lease_time_to_live(lease, None).await.unwrap();
    assert!(remaining.ttl() > 0);
    // The watch opened before the leader died sees writes committed by the new leader.
    client.put("owned-later", "y", None).await.unwrap();
    let mut seen = Vec::new();
    while !seen.contains(&"owned-later".to_owned()) {
        let message = tokio::time::timeout(Duration::from_secs(10), events.message())
            .await
            .expect("the watch is still delivering")
            .unwrap()
            .unwrap();
        seen.extend(
            message
                .events()
                .iter()
                .map(|event| event.kv().unwrap().key_str().unwrap().to_owned()),
        );
    }
    assert_eq!(seen, ["owned", "owned-later"]);

    // Left alone, it expires on the new leader and takes its key along.
    drop(keeper);
    drop(answers);
    eventually("the lease to expire", async || {
        client.get("owned", None).await.unwrap().kvs().is_empty()
    })
    .await;
}

#[tokio::test]
async fn move_leader_hands_leadership_to_the_chosen_voter() {
    let cluster = Cluster::bootstrap(3, FAST_RAFT).await;
    let leader = cluster.leader().await;
    let target = (leader + 1) % 3;
    let (target_id, _) = cluster.members[target].ids().await;

    // A writer on the old leader keeps going through the move: its requests wait for the new
    // leader instead of failing.
    let mut writer = cluster.members[leader].client().await;
    let writing = tokio::spawn(async move {
        for i in 0..50 {
            writer.put(format!("during{i}"), "v", None).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut client = cluster.members[leader].client().await;
    client.move_leader(target_id).await.unwrap();
    assert_eq!(cluster.leader().await, target);
    writing.await.unwrap();

    // Only the leader moves leadership, and only to a voter.
    let mut follower = cluster.members[leader].client().await;
    let refused = follower.move_leader(target_id).await.unwrap_err();
    assert!(refused.to_string().contains("not leader"), "{refused}");
    let mut new_leader = cluster.members[target].client().await;
    let refused = new_leader.move_leader(12345).await.unwrap_err();
    assert!(
        refused.to_string().contains("bad leader transferee"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_peer_port_refuses_strangers_and_garbage() {
    use chainfire::cluster::peers::{CLUSTER_ID_HEADER, cluster_id_value};
    use chainfire::cluster::service::proto::Frame;
    use chainfire::cluster::service::proto::peer_client::PeerClient;

    let cluster = Cluster::bootstrap(3, &[]).await;
    let member = &cluster.members[0];
    let (_, cluster_id) = member.ids().await;
    let mut peer = PeerClient::connect(format!("http://{}", member.peer_addr))
        .await
        .unwrap();

    // A caller from another cluster (or none) cannot touch this cluster's log.
    let mut stranger = tonic::Request::new(Frame {
        payload: b"anything".to_vec(),
    });
    stranger
        .metadata_mut()
        .insert(CLUSTER_ID_HEADER, cluster_id_value(cluster_id ^ 1));
    let refused = peer.append_entries(stranger).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("belongs to cluster"),
        "{refused:?}"
    );
    let anonymous = peer
        .vote(Frame {
            payload: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::FailedPrecondition);

    // A member of this cluster sending garbage gets an error, and the cluster carries on.
    // (Nothing, an unknown request kind, a truncated one.)
    for garbage in [Vec::new(), vec![200], vec![0, 0xfe]] {
        let mut request = tonic::Request::new(Frame { payload: garbage });
        request
            .metadata_mut()
            .insert(CLUSTER_ID_HEADER, cluster_id_value(cluster_id));
        let refused = peer.forward(request).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    }
    let mut client = member.client().await;
    client.put("still", "fine", None).await.unwrap();
}
