//! Running lightningstor: crashes and restarts, cleanup, health, metrics, the admin gRPC API
//! and configuration.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use common::{Lightningstor, body_bytes, error_code, pattern};
use lightningstor_client::admin::admin_client::AdminClient;
use lightningstor_client::admin::{
    CreateAccessKeyRequest, DeleteAccessKeyRequest, ListAccessKeysRequest, ListBucketsRequest,
    ServerInfoRequest,
};
use tokio::io::AsyncWriteExt;

fn blob_count(server: &Lightningstor) -> usize {
    server
        .data_files()
        .iter()
        .filter(|file| file.starts_with("blobs"))
        .count()
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let mut server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("durable").send().await.unwrap();
    for index in 0..20u8 {
        let len = if index % 2 == 0 { 100 } else { 300_000 };
        s3.put_object()
            .bucket("durable")
            .key(format!("object-{index:02}"))
            .body(ByteStream::from(pattern(len, index)))
            .send()
            .await
            .unwrap();
    }
    server.restart().await;
    let s3 = server.client();
    let listed = s3.list_objects_v2().bucket("durable").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(20));
    for index in 0..20u8 {
        let len = if index % 2 == 0 { 100 } else { 300_000 };
        let got = s3
            .get_object()
            .bucket("durable")
            .key(format!("object-{index:02}"))
            .send()
            .await
            .unwrap();
        assert_eq!(body_bytes(got).await, pattern(len, index));
    }
}

#[tokio::test]
async fn a_crash_during_an_upload_keeps_the_old_object_and_leaves_no_files() {
    let mut server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("torn").send().await.unwrap();
    let original = pattern(2 << 20, 1);
    s3.put_object()
        .bucket("torn")
        .key("object")
        .body(ByteStream::from(original.clone()))
        .send()
        .await
        .unwrap();
    let blobs_before = blob_count(&server);
    let presigned = s3
        .put_object()
        .bucket("torn")
        .key("object")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let uri: hyper::Uri = presigned.uri().parse().unwrap();
    let mut stream = tokio::net::TcpStream::connect(server.s3_addr)
        .await
        .unwrap();
    let head = format!(
        "PUT {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        uri.path_and_query().unwrap(),
        server.s3_addr,
        50 << 20
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&pattern(8 << 20, 2)).await.unwrap();
    // Wait until the partial upload is on disk, then crash.
    let tmp = server.data_dir().join("tmp");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&tmp).unwrap().next().is_none() {
        assert!(Instant::now() < deadline, "upload never reached tmp/");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.restart().await;
    drop(stream);
    let s3 = server.client();
    let got = s3
        .get_object()
        .bucket("torn")
        .key("object")
        .send()
        .await
        .unwrap();
    assert_eq!(body_bytes(got).await, original);
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "tmp/ emptied at start-up"
    );
    assert_eq!(blob_count(&server), blobs_before);
}

#[tokio::test]
async fn unreferenced_blob_files_are_swept_at_start_up() {
    let mut server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("sweep").send().await.unwrap();
    s3.put_object()
        .bucket("sweep")
        .key("kept")
        .body(ByteStream::from(pattern(100_000, 3)))
        .send()
        .await
        .unwrap();
    server.kill();
    // What a crash between writing a file and committing its record leaves.
    let orphan = server
        .data_dir()
        .join("blobs/ab/ab000000000000000000000000000001");
    std::fs::write(&orphan, b"orphaned data").unwrap();
    server.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while orphan.exists() {
        assert!(Instant::now() < deadline, "orphan was not swept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = server
        .client()
        .get_object()
        .bucket("sweep")
        .key("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(body_bytes(got).await, pattern(100_000, 3));
    // The sweep reports once it has finished, a moment after the file is gone.
    while !server
        .log_text()
        .contains("orphan sweep: deleted 1 data files")
    {
        assert!(
            Instant::now() < deadline,
            "the sweep did not report:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn abandoned_multipart_uploads_are_aborted() {
    let server = Lightningstor::start(&[
        "standalone.multipart.abandoned_after_sec=1",
        "standalone.multipart.cleanup_interval_sec=1",
    ])
    .await;
    let s3 = server.client();
    s3.create_bucket().bucket("abandon").send().await.unwrap();
    let upload = s3
        .create_multipart_upload()
        .bucket("abandon")
        .key("forgotten")
        .send()
        .await
        .unwrap();
    s3.upload_part()
        .bucket("abandon")
        .key("forgotten")
        .upload_id(upload.upload_id().unwrap())
        .part_number(1)
        .body(ByteStream::from(pattern(10_000, 1)))
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let uploads = s3
            .list_multipart_uploads()
            .bucket("abandon")
            .send()
            .await
            .unwrap();
        if uploads.uploads().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "upload was not aborted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(blob_count(&server), 0);
    s3.delete_bucket().bucket("abandon").send().await.unwrap();
}

#[tokio::test]
async fn health_and_metrics() {
    let server = Lightningstor::start(&[]).await;
    let (status, health) = server.health().await;
    assert_eq!(status, 200, "{health}");
    let checks = health["checks"].to_string();
    assert!(
        checks.contains("storage") && checks.contains("metadata"),
        "{health}"
    );
    let s3 = server.client();
    s3.create_bucket().bucket("metered").send().await.unwrap();
    s3.put_object()
        .bucket("metered")
        .key("k")
        .body(ByteStream::from(vec![1u8; 12_345]))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("metered")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(body_bytes(got).await.len(), 12_345);
    let _ = s3
        .get_object()
        .bucket("metered")
        .key("missing")
        .send()
        .await;
    let metrics = server.metrics().await;
    for line in [
        "\nphoton_lightningstor_s3_requests_total{operation=\"PutObject\",status=\"200\"} 1\n",
        "\nphoton_lightningstor_s3_requests_total{operation=\"GetObject\",status=\"404\"} 1\n",
        "\nphoton_lightningstor_received_bytes_total 12345\n",
        "\nphoton_lightningstor_sent_bytes_total 12345\n",
        "\nphoton_lightningstor_s3_request_duration_seconds_count{operation=\"CreateBucket\"} 1\n",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}

#[tokio::test]
async fn admin_api_reports_usage_and_manages_keys() {
    let server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("usage").send().await.unwrap();
    s3.create_bucket().bucket("empty").send().await.unwrap();
    for (key, len) in [("a", 10usize), ("b", 200_000), ("a", 20)] {
        s3.put_object()
            .bucket("usage")
            .key(key)
            .body(ByteStream::from(vec![0u8; len]))
            .send()
            .await
            .unwrap();
    }
    let mut admin = AdminClient::connect(format!("http://{}", server.grpc_addr))
        .await
        .unwrap();
    let buckets = admin
        .list_buckets(ListBucketsRequest {})
        .await
        .unwrap()
        .into_inner();
    let usage: Vec<(String, u64, u64)> = buckets
        .buckets
        .iter()
        .map(|bucket| (bucket.name.clone(), bucket.objects, bucket.bytes))
        .collect();
    assert_eq!(
        usage,
        [("empty".to_owned(), 0, 0), ("usage".to_owned(), 2, 200_020)]
    );
    let info = admin
        .server_info(ServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((info.buckets, info.objects, info.bytes), (2, 2, 200_020));
    assert_eq!(info.s3_endpoint, server.endpoint());

    let created = admin
        .create_access_key(CreateAccessKeyRequest {
            description: "ci robot".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let robot = server.client_with(&created.access_key, &created.secret_key);
    robot.head_bucket().bucket("usage").send().await.unwrap();
    let keys = admin
        .list_access_keys(ListAccessKeysRequest {})
        .await
        .unwrap()
        .into_inner();
    let sources: Vec<(String, String)> = keys
        .keys
        .iter()
        .map(|key| (key.access_key.clone(), key.source.clone()))
        .collect();
    assert!(sources.contains(&(created.access_key.clone(), "api".to_owned())));
    assert!(sources.contains(&(common::ACCESS_KEY.to_owned(), "config".to_owned())));
    assert!(!format!("{keys:?}").contains(&created.secret_key));
    admin
        .delete_access_key(DeleteAccessKeyRequest {
            access_key: created.access_key.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        error_code(robot.list_buckets().send().await),
        "InvalidAccessKeyId"
    );
    let refused = admin
        .delete_access_key(DeleteAccessKeyRequest {
            access_key: common::ACCESS_KEY.to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn a_start_without_keys_generates_a_private_key_pair() {
    let server = Lightningstor::start_with(Vec::new()).await;
    let path = server
        .data_dir()
        .join(lightningstor::INITIAL_CREDENTIALS_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let (access, secret) = text.trim().split_once(':').unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let s3 = server.client_with(access, secret);
    s3.create_bucket().bucket("first").send().await.unwrap();
    assert!(
        server
            .log_text()
            .contains(&format!("generated access key {access}"))
    );
    assert!(!server.log_text().contains(secret));
}

#[tokio::test]
async fn the_specs_example_config_runs_unchanged_but_for_paths_and_ports() {
    let dir = tempfile::tempdir().unwrap();
    let (s3, grpc, admin) = (
        common::free_addr(),
        common::free_addr(),
        common::free_addr(),
    );
    let config = format!(
        r#"
[photon]
mode = "standalone"
component_id = "lightningstor-01"

[photon.standalone]
storage_backend = "filesystem"
metadata_backend = "rocksdb"
auth_backend = "local"

[standalone.server]
grpc_addr = "{grpc}"
s3_addr = "{s3}"
admin_api_addr = "{admin}"
log_level = "info"

[standalone.storage]
data_dir = "{data}"

[standalone.metadata]
path = "{meta}"
cache_size_mb = 256

[standalone.auth]
type = "access_key"
access_key = "AKIAIOSFODNN7EXAMPLE"
secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

[standalone.features]
versioning = false
lifecycle = false
replication = false
"#,
        data = dir.path().join("data").display(),
        meta = dir.path().join("meta").display(),
    );
    let path = dir.path().join("standalone.toml");
    std::fs::write(&path, &config).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lightningstor"))
        .arg("--config")
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://{s3}"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "AKIAIOSFODNN7EXAMPLE",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                None,
                None,
                "spec",
            ))
            .force_path_style(true)
            .build(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.list_buckets().send().await.is_err() {
        assert!(Instant::now() < deadline, "the spec's config did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.create_bucket().bucket("spec").send().await.unwrap();
    let _ = child.kill();
    let _ = child.wait();

    // A feature this build lacks is refused at start with the key named.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_lightningstor"))
        .arg("--config")
        .arg(&path)
        .arg("--set")
        .arg("standalone.features.versioning=true")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("standalone.features.versioning"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_blob_cut_short_on_disk_fails_the_read_and_says_which_file() {
    let server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("damaged").send().await.unwrap();
    let data = pattern(3 << 20, 7);
    s3.put_object()
        .bucket("damaged")
        .key("big")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    let blob = server
        .data_files()
        .into_iter()
        .find(|file| file.starts_with("blobs"))
        .expect("the object is a blob file");
    // Something outside lightningstor (a disk fault, an operator) cuts the file.
    let path = server.data_dir().join(&blob);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(2 << 20)
        .unwrap();
    // The response has started (200, full length), so the client sees the body fail, never a
    // short object taken for a whole one.
    let got = s3
        .get_object()
        .bucket("damaged")
        .key("big")
        .send()
        .await
        .unwrap();
    assert!(got.body.collect().await.is_err());
    let log = server.log_text();
    assert!(log.contains("is shorter than its record"), "{log}");
    assert!(log.contains(&blob.display().to_string()), "{log}");
    // A range inside the bytes still on disk reads fine.
    let head = s3
        .get_object()
        .bucket("damaged")
        .key("big")
        .range("bytes=0-1023")
        .send()
        .await
        .unwrap();
    assert_eq!(body_bytes(head).await, data[..1024]);
}
