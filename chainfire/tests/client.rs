//! chainfire-client against the real chainfire binary.

mod common;

use std::time::Duration;

use chainfire_client::{Chainfire as Client, Error, WatchEventKind};
use common::Chainfire;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Bucket {
    name: String,
    objects: u64,
}

fn bucket(name: &str, objects: u64) -> Bucket {
    Bucket {
        name: name.into(),
        objects,
    }
}

async fn connect(server: &Chainfire) -> Client {
    Client::connect(&[server.endpoint()]).await.unwrap()
}

#[tokio::test]
async fn typed_values_with_create_and_compare_and_swap() {
    let server = Chainfire::start(&[]).await;
    let client = connect(&server).await;
    let buckets = client.typed::<Bucket>("/lightningstor/buckets/");

    assert!(
        buckets
            .create("photos", &bucket("photos", 0))
            .await
            .unwrap()
    );
    assert!(
        !buckets
            .create("photos", &bucket("photos", 9))
            .await
            .unwrap(),
        "already exists"
    );
    let current = buckets.get("photos").await.unwrap().unwrap();
    assert_eq!(current.value, bucket("photos", 0));

    assert!(
        buckets
            .update("photos", &bucket("photos", 1), current.mod_revision)
            .await
            .unwrap()
    );
    assert!(
        !buckets
            .update("photos", &bucket("photos", 2), current.mod_revision)
            .await
            .unwrap(),
        "a stale revision loses"
    );
    assert_eq!(
        buckets.get("photos").await.unwrap().unwrap().value.objects,
        1
    );

    // The value is plain JSON under the full key, readable by etcd tools.
    let mut etcd = client.etcd();
    let raw = etcd
        .get("/lightningstor/buckets/photos", None)
        .await
        .unwrap();
    assert_eq!(
        raw.kvs()[0].value_str().unwrap(),
        r#"{"name":"photos","objects":1}"#
    );

    assert!(buckets.delete("photos").await.unwrap());
    assert!(!buckets.delete("photos").await.unwrap());
    assert_eq!(buckets.get("photos").await.unwrap(), None);

    etcd.put("/lightningstor/buckets/broken", "not json", None)
        .await
        .unwrap();
    match buckets.get("broken").await {
        Err(Error::Decode { key, .. }) => assert_eq!(key, "/lightningstor/buckets/broken"),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn listing_pages_through_a_large_prefix() {
    let server = Chainfire::start(&[]).await;
    let client = connect(&server).await;
    let items = client.typed::<u64>("items/");
    let mut etcd = client.etcd();
    for i in 0..2500u64 {
        etcd.put(format!("items/{i:05}"), i.to_string(), None)
            .await
            .unwrap();
    }
    etcd.put("itemsX", "1", None).await.unwrap();
    let (listed, revision) = items.list().await.unwrap();
    assert_eq!(listed.len(), 2500);
    assert_eq!(listed[0], ("00000".to_owned(), 0));
    assert_eq!(listed[2499], ("02499".to_owned(), 2499));
    assert!(revision > 2500);
}

#[tokio::test]
async fn a_prefix_watch_resumes_after_a_restart_without_loss_or_repeats() {
    let mut server = Chainfire::start(&[]).await;
    let client = connect(&server).await;
    let mut watch = client.watch_prefix("svc/", None).await.unwrap();
    let mut etcd = client.etcd();
    etcd.put("svc/a", "1", None).await.unwrap();
    etcd.put("other", "x", None).await.unwrap();
    etcd.put("svc/b", "2", None).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..2 {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .unwrap()
            .unwrap();
        seen.push((event.key, event.kind, event.revision));
    }

    server.restart().await;
    // Written while the watch has no stream: it must still get them.
    let mut etcd = connect(&server).await.etcd();
    etcd.put("svc/c", "3", None).await.unwrap();
    etcd.delete("svc/a", None).await.unwrap();
    for _ in 0..2 {
        let event = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await
            .unwrap()
            .unwrap();
        seen.push((event.key, event.kind, event.revision));
    }

    let keys: Vec<(&str, WatchEventKind)> = seen
        .iter()
        .map(|(k, kind, _)| (k.as_str(), *kind))
        .collect();
    assert_eq!(
        keys,
        [
            ("a", WatchEventKind::Put),
            ("b", WatchEventKind::Put),
            ("c", WatchEventKind::Put),
            ("a", WatchEventKind::Delete)
        ]
    );
    assert!(
        seen.windows(2).all(|pair| pair[0].2 < pair[1].2),
        "in revision order: {seen:?}"
    );
}

#[tokio::test]
async fn a_watch_from_compacted_history_says_so() {
    let server = Chainfire::start(&[]).await;
    let client = connect(&server).await;
    let mut etcd = client.etcd();
    let first = etcd
        .put("h/a", "1", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let later = etcd
        .put("h/a", "2", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    etcd.compact(later, None).await.unwrap();

    let mut watch = client.watch_prefix("h/", Some(first)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap()
    {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!(requested, first);
            assert_eq!(compacted, later);
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
}

#[tokio::test]
async fn a_registration_stays_alive_comes_back_and_goes_away_on_stop() {
    let server = Chainfire::start(&[]).await;
    let client = connect(&server).await;
    let registration = client
        .register(
            "/registry/lightningstor-01",
            b"http://10.0.0.5:9001".to_vec(),
            2,
        )
        .await
        .unwrap();
    let mut etcd = client.etcd();
    let present = |response: etcd_client::GetResponse| !response.kvs().is_empty();

    // Kept alive well past its TTL.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let registered = etcd.get("/registry/lightningstor-01", None).await.unwrap();
    assert!(present(registered.clone()));

    // Someone revokes the lease: the registration notices and registers again.
    let lease = registered.kvs()[0].lease();
    etcd.lease_revoke(lease).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let response = etcd.get("/registry/lightningstor-01", None).await.unwrap();
        if present(response.clone()) && response.kvs()[0].lease() != lease {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not registered again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    registration.stop().await;
    let gone = etcd.get("/registry/lightningstor-01", None).await.unwrap();
    assert!(!present(gone), "stopping removes the key at once");
}
