//! The real chainfire binary driven with the `etcd-client` crate, as any etcd v3 client would.

mod common;

use std::time::Duration;

use common::Chainfire;
use etcd_client::{
    Compare, CompareOp, DeleteOptions, Error, EventType, GetOptions, LeaseTimeToLiveOptions,
    PutOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, WatchOptions, WatchResponse,
    WatchStream,
};
use tonic::Code;

fn status_of(err: Error) -> (Code, String) {
    match err {
        Error::GRpcStatus(status) => (status.code(), status.message().to_owned()),
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

fn keys(response: &etcd_client::GetResponse) -> Vec<String> {
    response
        .kvs()
        .iter()
        .map(|kv| kv.key_str().unwrap().to_owned())
        .collect()
}

async fn next(stream: &mut WatchStream) -> WatchResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a watch response in time")
        .unwrap()
        .expect("the stream is open")
}

#[tokio::test]
async fn put_get_and_revisions_behave_as_etcd() {
    let server = Chainfire::start(&[]).await;
    let mut client = server.client().await;

    let first = client.put("a", "1", None).await.unwrap();
    let rev1 = first.header().unwrap().revision();
    let second = client
        .put("a", "2", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(second.header().unwrap().revision(), rev1 + 1);
    assert_eq!(second.prev_key().unwrap().value(), b"1");

    let got = client.get("a", None).await.unwrap();
    let kv = &got.kvs()[0];
    assert_eq!(kv.value(), b"2");
    assert_eq!(kv.create_revision(), rev1);
    assert_eq!(kv.mod_revision(), rev1 + 1);
    assert_eq!(kv.version(), 2);
    assert_eq!(got.count(), 1);
    let header = got.header().unwrap();
    assert_ne!(header.cluster_id(), 0);
    assert_ne!(header.member_id(), 0);
    assert!(header.raft_term() >= 1);

    // A historical read sees the old value.
    let old = client
        .get("a", Some(GetOptions::new().with_revision(rev1)))
        .await
        .unwrap();
    assert_eq!(old.kvs()[0].value(), b"1");

    let (code, message) = status_of(
        client
            .get("a", Some(GetOptions::new().with_revision(rev1 + 100)))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, Code::OutOfRange);
    assert!(message.contains("future revision"), "{message}");

    let missing = client.get("nope", None).await.unwrap();
    assert!(missing.kvs().is_empty());
    assert_eq!(missing.count(), 0);
}

#[tokio::test]
async fn ranges_prefixes_limits_sorting_and_filters() {
    let server = Chainfire::start(&[]).await;
    let mut client = server.client().await;
    for (key, value) in [("k/c", "3"), ("k/a", "9"), ("k/b", "1"), ("l", "x")] {
        client.put(key, value, None).await.unwrap();
    }
    client.put("k/a", "9b", None).await.unwrap();

    let prefix = client
        .get("k/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(keys(&prefix), ["k/a", "k/b", "k/c"]);

    let from = client
        .get("k/b", Some(GetOptions::new().with_from_key()))
        .await
        .unwrap();
    assert_eq!(keys(&from), ["k/b", "k/c", "l"]);

    let all = client
        .get("", Some(GetOptions::new().with_all_keys()))
        .await
        .unwrap();
    assert_eq!(all.count(), 4);

    let limited = client
        .get("k/", Some(GetOptions::new().with_prefix().with_limit(2)))
        .await
        .unwrap();
    assert_eq!(keys(&limited), ["k/a", "k/b"]);
    assert!(limited.more());
    assert_eq!(limited.count(), 3);

    let by_value = client
        .get(
            "k/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Value, SortOrder::Descend),
            ),
        )
        .await
        .unwrap();
    assert_eq!(keys(&by_value), ["k/a", "k/c", "k/b"]);

    let by_key_desc = client
        .get(
            "k/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Key, SortOrder::Descend)
                    .with_limit(1),
            ),
        )
        .await
        .unwrap();
    assert_eq!(keys(&by_key_desc), ["k/c"]);

    let by_version = client
        .get(
            "k/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Version, SortOrder::Descend)
                    .with_limit(1),
            ),
        )
        .await
        .unwrap();
    assert_eq!(keys(&by_version), ["k/a"]);

    let keys_only = client
        .get("k/", Some(GetOptions::new().with_prefix().with_keys_only()))
        .await
        .unwrap();
    assert!(keys_only.kvs().iter().all(|kv| kv.value().is_empty()));

    let count_only = client
        .get(
            "k/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert!(count_only.kvs().is_empty());
    assert_eq!(count_only.count(), 3);

    let k_a_mod = prefix.kvs()[0].mod_revision();
    let recent = client
        .get(
            "k/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_min_mod_revision(k_a_mod),
            ),
        )
        .await
        .unwrap();
    assert_eq!(keys(&recent), ["k/a"]);

    let serializable = client
        .get("l", Some(GetOptions::new().with_serializable()))
        .await
        .unwrap();
    assert_eq!(serializable.kvs()[0].value(), b"x");
}

#[tokio::test]
async fn deletes_leave_tombstones_and_history() {
    let server = Chainfire::start(&[]).await;
    let mut client = server.client().await;
    let put = client.put("d/1", "one", None).await.unwrap();
    client.put("d/2", "two", None).await.unwrap();
    let before_delete = client
        .get("d/1", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();

    let deleted = client
        .delete(
            "d/",
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await
        .unwrap();
    assert_eq!(deleted.deleted(), 2);
    assert_eq!(deleted.prev_kvs().len(), 2);
    assert_eq!(deleted.header().unwrap().revision(), before_delete + 1);

    assert!(client.get("d/1", None).await.unwrap().kvs().is_empty());
    let history = client
        .get(
            "d/1",
            Some(GetOptions::new().with_revision(put.header().unwrap().revision())),
        )
        .await
        .unwrap();
    assert_eq!(history.kvs()[0].value(), b"one");

    // Deleting nothing does not create a revision.
    let nothing = client.delete("d/none", None).await.unwrap();
    assert_eq!(nothing.deleted(), 0);
    assert_eq!(nothing.header().unwrap().revision(), before_delete + 1);

    // Recreated keys start a new life.
    client.put("d/1", "again", None).await.unwrap();
    let again = client.get("d/1", None).await.unwrap();
    assert_eq!(again.kvs()[0].version(), 1);
    assert_eq!(again.kvs()[0].create_revision(), before_delete + 2);
}

#[tokio::test]
async fn transactions_compare_branch_and_nest() {
    let server = Chainfire::start(&[]).await;
    let mut client = server.client().await;

    // Create-if-absent, the lock pattern.
    let create = Txn::new()
        .when([Compare::version("lock", CompareOp::Equal, 0)])
        .and_then([TxnOp::put("lock", "me", None)])
        .or_else([TxnOp::get("lock", None)]);
    let first = client.txn(create.clone()).await.unwrap();
    assert!(first.succeeded());
    let second = client.txn(create).await.unwrap();
    assert!(!second.succeeded());
    match &second.op_responses()[0] {
        TxnOpResponse::Get(get) => assert_eq!(get.kvs()[0].value(), b"me"),
        other => panic!("expected a get response, got {other:?}"),
    }

    // One revision for the whole transaction; later operations see earlier writes.
    let before = client
        .get("lock", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let multi = client
        .txn(Txn::new().and_then([
            TxnOp::put("t/x", "1", None),
            TxnOp::put("t/y", "2", None),
            TxnOp::get("t/", Some(GetOptions::new().with_prefix())),
        ]))
        .await
        .unwrap();
    assert_eq!(multi.header().unwrap().revision(), before + 1);
    match &multi.op_responses()[2] {
        TxnOpResponse::Get(get) => assert_eq!(get.count(), 2),
        other => panic!("expected a get response, got {other:?}"),
    }
    let x = client.get("t/x", None).await.unwrap();
    assert_eq!(x.kvs()[0].mod_revision(), before + 1);

    // Comparisons on every target.
    let x_mod = x.kvs()[0].mod_revision();
    let checks = Txn::new()
        .when([
            Compare::value("t/x", CompareOp::Equal, "1"),
            Compare::mod_revision("t/x", CompareOp::Equal, x_mod),
            Compare::create_revision("t/x", CompareOp::Less, x_mod + 1),
            Compare::version("t/x", CompareOp::Greater, 0),
            Compare::lease("t/x", CompareOp::Equal, 0),
            Compare::value("t/missing", CompareOp::NotEqual, "z"),
        ])
        .and_then([TxnOp::put("t/ok", "yes", None)]);
    let checked = client.txn(checks).await.unwrap();
    // A value comparison on a missing key always fails, as in etcd.
    assert!(!checked.succeeded());

    // Nested transactions.
    let nested = Txn::new().and_then([TxnOp::txn(
        Txn::new()
            .when([Compare::value("t/y", CompareOp::Equal, "2")])
            .and_then([TxnOp::put("t/nested", "ran", None)]),
    )]);
    assert!(client.txn(nested).await.unwrap().succeeded());
    let ran = client.get("t/nested", None).await.unwrap();
    assert_eq!(ran.kvs()[0].value(), b"ran");

    // A key written twice in one branch is refused and nothing is written.
    let duplicate =
        Txn::new().and_then([TxnOp::put("t/d", "1", None), TxnOp::put("t/d", "2", None)]);
    let (code, message) = status_of(client.txn(duplicate).await.unwrap_err());
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("duplicate key"), "{message}");
    let put_and_delete = Txn::new().and_then([
        TxnOp::put("t/e", "1", None),
        TxnOp::delete("t/", Some(DeleteOptions::new().with_prefix())),
    ]);
    assert!(client.txn(put_and_delete).await.is_err());
    assert!(client.get("t/d", None).await.unwrap().kvs().is_empty());

    // A failing operation (unknown lease) leaves no trace of the others.
    let failing = Txn::new().and_then([
        TxnOp::put("t/f1", "1", None),
        TxnOp::put("t/f2", "2", Some(PutOptions::new().with_lease(12345))),
    ]);
    let (code, _) = status_of(client.txn(failing).await.unwrap_err());
    assert_eq!(code, Code::NotFound);
    assert!(client.get("t/f1", None).await.unwrap().kvs().is_empty());

    let too_many: Vec<TxnOp> = (0..200)
        .map(|i| TxnOp::put(format!("many/{i}"), "v", None))
        .collect();
    let (code, message) = status_of(client.txn(Txn::new().and_then(too_many)).await.unwrap_err());
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("too many operations"), "{message}");
}

#[tokio::test]
async fn bad_requests_get_etcds_errors_and_change_nothing() {
    let server = Chainfire::start(&[]).await;
    let mut client = server.client().await;
    let revision = client
        .put("keep", "v", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();

    let (code, message) = status_of(client.put("", "v", None).await.unwrap_err());
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(message, "etcdserver: key is not provided");

    // Above the limit (1.5 MiB) but within gRPC's headroom: etcd's own error.
    let big = vec![b'x'; 1600 * 1024];
    let (code, message) = status_of(client.put("big", big, None).await.unwrap_err());
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(message, "etcdserver: request is too large");
    // Far above: refused by the transport, as etcd's gRPC server does.
    let huge = vec![b'x'; 4 * 1024 * 1024];
    assert!(client.put("big", huge, None).await.is_err());

    let (code, message) = status_of(
        client
            .put("x", "v", Some(PutOptions::new().with_lease(999)))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, Code::NotFound);
    assert_eq!(message, "etcdserver: requested lease not found");

    let (code, message) = status_of(
        client
            .put("absent", "", Some(PutOptions::new().with_ignore_value()))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, Code::InvalidArgument);
    assert_eq!(message, "etcdserver: key not found");

    let after = client.get("keep", None).await.unwrap();
    assert_eq!(after.header().unwrap().revision(), revision);
    assert!(client.get("big", None).await.unwrap().kvs().is_empty());
}

#[tokio::test]
async fn compaction_removes_history() {
    let server = Chainfire::start(&[]).await;
    let mut client = server.client().await;
    let r1 = client
        .put("c", "1", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let r2 = client
        .put("c", "2", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    client.put("c", "3", None).await.unwrap();

    client.compact(r2, None).await.unwrap();
    let (code, message) = status_of(
        client
            .get("c", Some(GetOptions::new().with_revision(r1)))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, Code::OutOfRange);
    assert!(message.contains("compacted"), "{message}");
    // The state at the compaction point stays readable.
    let at = client
        .get("c", Some(GetOptions::new().with_revision(r2)))
        .await
        .unwrap();
    assert_eq!(at.kvs()[0].value(), b"2");

    let (code, _) = status_of(client.compact(r2, None).await.unwrap_err());
    assert_eq!(code, Code::OutOfRange);

    let mut stream = client
        .watch("c", Some(WatchOptions::new().with_start_revision(r1)))
        .await
        .unwrap();
    let mut response = next(&mut stream).await;
    if response.created() && !response.canceled() {
        response = next(&mut stream).await;
    }
    assert!(response.canceled());
    assert_eq!(response.compact_revision(), r2);
}

#[tokio::test]
async fn watches_replay_history_then_follow_live_changes() {
    let server = Chainfire::start(&[]).await;
    let mut client = server.client().await;
    let start = client
        .put("w/a", "1", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    client.put("w/a", "2", None).await.unwrap();
    client.put("other", "x", None).await.unwrap();

    let mut stream = client
        .watch(
            "w/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(start)
                    .with_prev_key(),
            ),
        )
        .await
        .unwrap();
    let created = next(&mut stream).await;
    assert!(created.created());
    let watch_id = created.watch_id();

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let response = next(&mut stream).await;
        for event in response.events() {
            let kv = event.kv().unwrap();
            seen.push((
                kv.value().to_vec(),
                event.prev_kv().map(|p| p.value().to_vec()),
            ));
        }
    }
    assert_eq!(seen[0], (b"1".to_vec(), None));
    assert_eq!(seen[1], (b"2".to_vec(), Some(b"1".to_vec())));

    // A second watch on the same stream, only for deletes.
    stream
        .watch(
            "w/a",
            Some(WatchOptions::new().with_filters([etcd_client::WatchFilterType::NoPut])),
        )
        .await
        .unwrap();
    let second = next(&mut stream).await;
    assert!(second.created());
    let delete_watch = second.watch_id();
    assert_ne!(delete_watch, watch_id);

    client.put("w/b", "live", None).await.unwrap();
    client.delete("w/a", None).await.unwrap();
    let mut live = Vec::new();
    while live.len() < 3 {
        let response = next(&mut stream).await;
        for event in response.events() {
            live.push((
                response.watch_id(),
                event.event_type(),
                event.kv().unwrap().key().to_vec(),
            ));
        }
    }
    assert!(live.contains(&(watch_id, EventType::Put, b"w/b".to_vec())));
    assert!(live.contains(&(watch_id, EventType::Delete, b"w/a".to_vec())));
    assert!(live.contains(&(delete_watch, EventType::Delete, b"w/a".to_vec())));
    assert!(!live.contains(&(delete_watch, EventType::Put, b"w/b".to_vec())));

    stream.cancel(watch_id).await.unwrap();
    let canceled = next(&mut stream).await;
    assert!(canceled.canceled());
    assert_eq!(canceled.watch_id(), watch_id);

    stream.request_progress().await.unwrap();
    let progress = next(&mut stream).await;
    assert!(progress.events().is_empty());
    assert!(progress.header().unwrap().revision() > start);
}

#[tokio::test]
async fn a_slow_watcher_misses_nothing() {
    let server = Chainfire::start(&[]).await;
    let mut client = server.client().await;
    let start = client
        .put("s/0", "0", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    // More changes than the hub keeps in memory, so the watcher reads storage.
    let writes = 20_000;
    let writers = 16;
    let mut tasks = Vec::new();
    for writer_index in 0..writers {
        let mut writer = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in (1 + writer_index..writes).step_by(writers) {
                let key = format!("s/{}", i % 100);
                writer.put(key, i.to_string(), None).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    let mut stream = client
        .watch(
            "s/",
            Some(WatchOptions::new().with_prefix().with_start_revision(start)),
        )
        .await
        .unwrap();
    let mut revisions = Vec::new();
    while revisions.len() < writes {
        let response = next(&mut stream).await;
        revisions.extend(
            response
                .events()
                .iter()
                .map(|e| e.kv().unwrap().mod_revision()),
        );
    }
    let expected: Vec<i64> = (start..start + writes as i64).collect();
    assert_eq!(revisions, expected);
}

#[tokio::test]
async fn leases_attach_keep_alive_expire_and_revoke() {
    let server = Chainfire::start(&[]).await;
    let mut client = server.client().await;

    let granted = client.lease_grant(30, None).await.unwrap();
    let lease = granted.id();
    assert_eq!(granted.ttl(), 30);
    client
        .put("l/a", "1", Some(PutOptions::new().with_lease(lease)))
        .await
        .unwrap();
    client
        .put("l/b", "2", Some(PutOptions::new().with_lease(lease)))
        .await
        .unwrap();

    let ttl = client
        .lease_time_to_live(lease, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .unwrap();
    assert_eq!(ttl.granted_ttl(), 30);
    assert!(ttl.ttl() > 0 && ttl.ttl() <= 30);
    assert_eq!(ttl.keys().len(), 2);

    let (mut keeper, mut responses) = client.lease_keep_alive(lease).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let kept = responses.message().await.unwrap().unwrap();
    assert_eq!(kept.id(), lease);
    assert_eq!(kept.ttl(), 30);

    let listed = client.leases().await.unwrap();
    assert!(listed.leases().iter().any(|status| status.id() == lease));

    client.lease_revoke(lease).await.unwrap();
    assert!(
        client
            .get("l/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap()
            .kvs()
            .is_empty()
    );
    let (code, _) = status_of(client.lease_revoke(lease).await.unwrap_err());
    assert_eq!(code, Code::NotFound);
    let gone = client.lease_time_to_live(lease, None).await.unwrap();
    assert_eq!(gone.ttl(), -1);

    // Expiry: a short lease that nobody keeps alive takes its key with it.
    let short = client.lease_grant(1, None).await.unwrap();
    assert!(short.ttl() >= 1, "a TTL below the minimum is raised");
    client
        .put(
            "l/short",
            "x",
            Some(PutOptions::new().with_lease(short.id())),
        )
        .await
        .unwrap();
    let mut stream = client.watch("l/short", None).await.unwrap();
    assert!(next(&mut stream).await.created());
    let expired = next(&mut stream).await;
    assert_eq!(expired.events()[0].event_type(), EventType::Delete);
    assert!(client.get("l/short", None).await.unwrap().kvs().is_empty());
}

#[tokio::test]
async fn status_and_member_list_describe_the_member() {
    let server = Chainfire::start(&[]).await;
    let mut client = server.client().await;
    let status = client.status().await.unwrap();
    assert!(status.version().starts_with("3."), "{}", status.version());
    let member = status.header().unwrap().member_id();
    assert_eq!(status.leader(), member);
    assert!(status.raft_index() >= 1);

    let members = client.member_list().await.unwrap();
    assert_eq!(members.members().len(), 1);
    let only = &members.members()[0];
    assert_eq!(only.id(), member);
    assert_eq!(only.name(), "chainfire-test");
    assert_eq!(only.client_urls(), [server.endpoint()]);
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let mut server = Chainfire::start(&[]).await;
    let mut client = server.client().await;
    let mut last = 0;
    for i in 0..300 {
        last = client
            .put(format!("durable/{i:03}"), i.to_string(), None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
    }
    let lease = client.lease_grant(600, None).await.unwrap().id();
    server.restart().await;

    let mut client = server.client().await;
    let all = client
        .get("durable/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(all.count(), 300);
    assert_eq!(all.kvs()[299].value(), b"299");
    assert!(all.header().unwrap().revision() >= last);
    let next_write = client.put("after", "restart", None).await.unwrap();
    assert!(next_write.header().unwrap().revision() > last);
    assert_eq!(
        client
            .lease_time_to_live(lease, None)
            .await
            .unwrap()
            .granted_ttl(),
        600
    );
}

#[tokio::test]
async fn snapshots_bound_the_log_and_restarts_keep_everything() {
    let mut server = Chainfire::start(&["raft.snapshot_after_entries=50"]).await;
    let mut client = server.client().await;
    for i in 0..400 {
        client
            .put(format!("snap/{}", i % 40), i.to_string(), None)
            .await
            .unwrap();
    }
    let before = client
        .get("snap/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server.data_dir().join("snapshot").exists(),
        "a snapshot was written"
    );

    server.restart().await;
    let mut client = server.client().await;
    let after = client
        .get("snap/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    let summary = |response: &etcd_client::GetResponse| -> Vec<(Vec<u8>, Vec<u8>, i64)> {
        response
            .kvs()
            .iter()
            .map(|kv| (kv.key().to_vec(), kv.value().to_vec(), kv.mod_revision()))
            .collect()
    };
    assert_eq!(summary(&after), summary(&before));
}

#[tokio::test]
async fn sigterm_stops_cleanly() {
    let mut server = Chainfire::start(&[]).await;
    let mut client = server.client().await;
    client.put("bye", "now", None).await.unwrap();
    // An open watch stream must not hold the shutdown up.
    let _watch = client.watch("bye", None).await.unwrap();
    let started = std::time::Instant::now();
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn metrics_count_watches_and_time_requests() {
    let server = Chainfire::start(&[]).await;
    let mut client = server.client().await;
    client.put("m", "1", None).await.unwrap();
    let mut stream = client.watch("m", None).await.unwrap();
    assert!(next(&mut stream).await.created());

    let scrape = || async {
        reqwest::get(format!("http://{}/metrics", server.admin_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let body = scrape().await;
    for expected in [
        "photon_chainfire_watches 1",
        r#"photon_chainfire_request_duration_seconds_count{method="Put"} 1"#,
        "photon_chainfire_mvcc_revision 2",
        "photon_chainfire_raft_is_leader 1",
    ] {
        assert!(body.contains(expected), "{expected} missing from:\n{body}");
    }

    drop(stream);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !scrape().await.contains("photon_chainfire_watches 0") {
        assert!(
            std::time::Instant::now() < deadline,
            "the closed watch is still counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn reads_racing_writes_always_succeed_and_see_whole_writes() {
    let server = Chainfire::start(&[]).await;
    let client = server.client().await;
    let mut tasks = Vec::new();
    for writer in 0..4 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..300 {
                // Both keys of a pair change in one transaction.
                let value = format!("{writer}-{i}");
                let txn = Txn::new().and_then([
                    TxnOp::put(format!("race/{writer}/a"), value.clone(), None),
                    TxnOp::put(format!("race/{writer}/b"), value, None),
                ]);
                client.txn(txn).await.unwrap();
            }
        }));
    }
    for reader in 0..4 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..300 {
                let mut options = GetOptions::new().with_prefix();
                if reader % 2 == 0 {
                    options = options.with_serializable();
                }
                let response = client.get("race/", Some(options)).await.unwrap();
                for pair in response.kvs().chunks(2) {
                    assert_eq!(
                        pair[0].value(),
                        pair[1].value(),
                        "a transaction seen half done"
                    );
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn quiet_watches_that_ask_for_it_get_progress_notifications() {
    let server = Chainfire::start(&["server.progress_notify_interval_sec=1"]).await;
    let mut client = server.client().await;
    let revision = client
        .put("p", "1", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let mut stream = client
        .watch("p", Some(WatchOptions::new().with_progress_notify()))
        .await
        .unwrap();
    assert!(next(&mut stream).await.created());
    let notification = next(&mut stream).await;
    assert!(notification.events().is_empty());
    assert!(!notification.canceled());
    assert_eq!(notification.header().unwrap().revision(), revision);
}
