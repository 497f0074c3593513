//! Every S3 operation lightningstor serves, through the AWS SDK for Rust with its defaults.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete,
    MetadataDirective, ObjectIdentifier,
};
use common::{Lightningstor, body_bytes, error_code, error_status, pattern};

fn md5_hex(data: &[u8]) -> String {
    use s3s::crypto::{Checksum as _, Md5};
    hex::encode(Md5::checksum(data))
}

#[tokio::test]
async fn buckets_are_created_listed_and_deleted_only_when_empty() {
    let server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("alpha").send().await.unwrap();
    s3.create_bucket().bucket("beta").send().await.unwrap();
    assert_eq!(
        error_code(s3.create_bucket().bucket("alpha").send().await),
        "BucketAlreadyOwnedByYou"
    );
    assert_eq!(
        error_code(s3.create_bucket().bucket("Bad_Name").send().await),
        "InvalidBucketName"
    );
    let names: Vec<String> = s3
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .map(|bucket| bucket.name().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    s3.head_bucket().bucket("alpha").send().await.unwrap();
    assert_eq!(
        error_status(s3.head_bucket().bucket("gamma").send().await),
        404
    );
    let location = s3
        .get_bucket_location()
        .bucket("alpha")
        .send()
        .await
        .unwrap();
    // us-east-1 is the empty constraint, as AWS answers.
    assert_eq!(
        location
            .location_constraint()
            .map_or("", |constraint| constraint.as_str()),
        ""
    );

    s3.put_object()
        .bucket("alpha")
        .key("k")
        .body(ByteStream::from_static(b"v"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(s3.delete_bucket().bucket("alpha").send().await),
        "BucketNotEmpty"
    );
    s3.delete_object()
        .bucket("alpha")
        .key("k")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("alpha").send().await.unwrap();
    assert_eq!(
        error_code(s3.delete_bucket().bucket("alpha").send().await),
        "NoSuchBucket"
    );
    assert_eq!(
        error_code(s3.put_object().bucket("alpha").key("k").send().await),
        "NoSuchBucket"
    );
}

#[tokio::test]
async fn objects_keep_their_bytes_headers_metadata_and_checksums() {
    let server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("data").send().await.unwrap();
    // Inline (small) and file-backed (large) objects behave the same.
    for (key, len) in [("small", 100usize), ("large", 3 << 20), ("empty", 0)] {
        let data = pattern(len, 7);
        let put = s3
            .put_object()
            .bucket("data")
            .key(key)
            .body(ByteStream::from(data.clone()))
            .content_type("text/x-test")
            .content_disposition("attachment; filename=\"x.txt\"")
            .cache_control("max-age=60")
            .content_encoding("identity")
            .metadata("Color", "blue")
            .metadata("owner", "ops team")
            .send()
            .await
            .unwrap();
        assert_eq!(
            put.e_tag(),
            Some(format!("\"{}\"", md5_hex(&data)).as_str())
        );
        // The SDK sends a CRC32 by default; it is verified and kept.
        assert!(put.checksum_crc32().is_some(), "{put:?}");

        let got = s3
            .get_object()
            .bucket("data")
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(got.content_type(), Some("text/x-test"));
        assert_eq!(
            got.content_disposition(),
            Some("attachment; filename=\"x.txt\"")
        );
        assert_eq!(got.cache_control(), Some("max-age=60"));
        assert_eq!(got.content_encoding(), Some("identity"));
        assert_eq!(got.content_length(), Some(len as i64));
        assert_eq!(got.checksum_crc32(), put.checksum_crc32());
        let metadata = got.metadata().unwrap();
        assert_eq!(metadata.get("color").map(String::as_str), Some("blue"));
        assert_eq!(metadata.get("owner").map(String::as_str), Some("ops team"));
        assert_eq!(body_bytes(got).await, data, "{key}");

        let head = s3
            .head_object()
            .bucket("data")
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(len as i64));
        assert_eq!(head.e_tag(), put.e_tag());
    }
    assert_eq!(
        error_code(s3.get_object().bucket("data").key("missing").send().await),
        "NoSuchKey"
    );
    assert_eq!(
        error_status(s3.head_object().bucket("data").key("missing").send().await),
        404
    );
    // Overwriting replaces the bytes and frees the old file.
    let files_before = server.data_files().len();
    s3.put_object()
        .bucket("data")
        .key("large")
        .body(ByteStream::from(pattern(2 << 20, 9)))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("data")
        .key("large")
        .send()
        .await
        .unwrap();
    assert_eq!(body_bytes(got).await, pattern(2 << 20, 9));
    assert_eq!(server.data_files().len(), files_before);
}

#[tokio::test]
async fn ranges_and_response_overrides() {
    let server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("ranges").send().await.unwrap();
    let data = pattern(2 << 20, 3);
    s3.put_object()
        .bucket("ranges")
        .key("obj")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    for (range, expected) in [
        ("bytes=0-9", &data[..10]),
        ("bytes=1048570-1048600", &data[1_048_570..=1_048_600]),
        ("bytes=-5", &data[data.len() - 5..]),
        ("bytes=2097150-", &data[2_097_150..]),
        ("bytes=0-99999999", &data[..]),
    ] {
        let got = s3
            .get_object()
            .bucket("ranges")
            .key("obj")
            .range(range)
            .send()
            .await
            .unwrap();
        assert!(got.content_range().is_some(), "{range}");
        assert_eq!(body_bytes(got).await, expected, "{range}");
    }
    assert_eq!(
        error_code(
            s3.get_object()
                .bucket("ranges")
                .key("obj")
                .range("bytes=3000000-3000001")
                .send()
                .await
        ),
        "InvalidRange"
    );
    let got = s3
        .get_object()
        .bucket("ranges")
        .key("obj")
        .response_content_type("application/x-override")
        .response_cache_control("no-store")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/x-override"));
    assert_eq!(got.cache_control(), Some("no-store"));
}

#[tokio::test]
async fn preconditions_on_reads_and_writes() {
    let server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("conds").send().await.unwrap();
    let put = s3
        .put_object()
        .bucket("conds")
        .key("lock")
        .body(ByteStream::from_static(b"one"))
        .if_none_match("*")
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().to_owned();
    // Terraform-style locking: a second create-if-absent fails and leaves the first intact.
    assert_eq!(
        error_code(
            s3.put_object()
                .bucket("conds")
                .key("lock")
                .body(ByteStream::from_static(b"two"))
                .if_none_match("*")
                .send()
                .await
        ),
        "PreconditionFailed"
    );
    let got = s3
        .get_object()
        .bucket("conds")
        .key("lock")
        .send()
        .await
        .unwrap();
    assert_eq!(body_bytes(got).await, b"one");

    s3.get_object()
        .bucket("conds")
        .key("lock")
        .if_match(&etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_status(
            s3.get_object()
                .bucket("conds")
                .key("lock")
                .if_match("\"0000\"")
                .send()
                .await
        ),
        412
    );
    assert_eq!(
        error_status(
            s3.get_object()
                .bucket("conds")
                .key("lock")
                .if_none_match(&etag)
                .send()
                .await
        ),
        304
    );
    let later = aws_sdk_s3::primitives::DateTime::from_secs(4_000_000_000);
    let earlier = aws_sdk_s3::primitives::DateTime::from_secs(1_000_000_000);
    assert_eq!(
        error_status(
            s3.get_object()
                .bucket("conds")
                .key("lock")
                .if_modified_since(later)
                .send()
                .await
        ),
        304
    );
    assert_eq!(
        error_status(
            s3.head_object()
                .bucket("conds")
                .key("lock")
                .if_unmodified_since(earlier)
                .send()
                .await
        ),
        412
    );
    s3.get_object()
        .bucket("conds")
        .key("lock")
        .if_modified_since(earlier)
        .send()
        .await
        .unwrap();
    // If-Match on a write: only the expected version is replaced.
    assert_eq!(
        error_code(
            s3.put_object()
                .bucket("conds")
                .key("lock")
                .body(ByteStream::from_static(b"three"))
                .if_match("\"0000\"")
                .send()
                .await
        ),
        "PreconditionFailed"
    );
    s3.put_object()
        .bucket("conds")
        .key("lock")
        .body(ByteStream::from_static(b"three"))
        .if_match(&etag)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_objects_quiet_and_verbose() {
    let server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("deletes").send().await.unwrap();
    for key in ["a", "b", "c", "d"] {
        s3.put_object()
            .bucket("deletes")
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let ids = |keys: &[&str]| {
        Delete::builder().set_objects(Some(
            keys.iter()
                .map(|key| ObjectIdentifier::builder().key(*key).build().unwrap())
                .collect(),
        ))
    };
    let verbose = s3
        .delete_objects()
        .bucket("deletes")
        .delete(ids(&["a", "b", "never-existed"]).build().unwrap())
        .send()
        .await
        .unwrap();
    let mut deleted: Vec<&str> = verbose.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort_unstable();
    assert_eq!(deleted, ["a", "b", "never-existed"]);
    assert!(verbose.errors().is_empty());
    let quiet = s3
        .delete_objects()
        .bucket("deletes")
        .delete(ids(&["c"]).quiet(true).build().unwrap())
        .send()
        .await
        .unwrap();
    assert!(quiet.deleted().is_empty());
    let left = s3.list_objects_v2().bucket("deletes").send().await.unwrap();
    let keys: Vec<&str> = left.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["d"]);
}

#[tokio::test]
async fn copy_object_copies_or_replaces_metadata() {
    let server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("src").send().await.unwrap();
    s3.create_bucket().bucket("dst").send().await.unwrap();
    let data = pattern(1 << 20, 5);
    s3.put_object()
        .bucket("src")
        .key("orig")
        .body(ByteStream::from(data.clone()))
        .content_type("image/png")
        .metadata("kind", "original")
        .send()
        .await
        .unwrap();
    let copied = s3
        .copy_object()
        .bucket("dst")
        .key("copy")
        .copy_source("src/orig")
        .send()
        .await
        .unwrap();
    assert_eq!(
        copied.copy_object_result().unwrap().e_tag(),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    let got = s3
        .get_object()
        .bucket("dst")
        .key("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("image/png"));
    assert_eq!(got.metadata().unwrap().get("kind").unwrap(), "original");
    assert_eq!(body_bytes(got).await, data);

    s3.copy_object()
        .bucket("dst")
        .key("replaced")
        .copy_source("src/orig")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/plain")
        .metadata("kind", "new")
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("dst")
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(head.metadata().unwrap().get("kind").unwrap(), "new");

    // Copying onto itself needs REPLACE (a metadata update), as in S3.
    assert_eq!(
        error_code(
            s3.copy_object()
                .bucket("src")
                .key("orig")
                .copy_source("src/orig")
                .send()
                .await
        ),
        "InvalidRequest"
    );
    s3.copy_object()
        .bucket("src")
        .key("orig")
        .copy_source("src/orig")
        .metadata_directive(MetadataDirective::Replace)
        .metadata("kind", "updated")
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("src")
        .key("orig")
        .send()
        .await
        .unwrap();
    assert_eq!(head.metadata().unwrap().get("kind").unwrap(), "updated");
    let got = s3
        .get_object()
        .bucket("src")
        .key("orig")
        .send()
        .await
        .unwrap();
    assert_eq!(body_bytes(got).await, data);

    assert_eq!(
        error_code(
            s3.copy_object()
                .bucket("dst")
                .key("x")
                .copy_source("src/missing")
                .send()
                .await
        ),
        "NoSuchKey"
    );
    assert_eq!(
        error_status(
            s3.copy_object()
                .bucket("dst")
                .key("x")
                .copy_source("src/orig")
                .copy_source_if_match("\"0000\"")
                .send()
                .await
        ),
        412
    );
}

#[tokio::test]
async fn listing_with_prefixes_delimiters_and_pages() {
    let server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("listing").send().await.unwrap();
    let keys = [
        "a.txt",
        "docs/guide.md",
        "docs/intro.md",
        "docs/sub/deep.md",
        "images/1.png",
        "images/2.png",
        "z",
    ];
    for key in keys {
        s3.put_object()
            .bucket("listing")
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let top = s3
        .list_objects_v2()
        .bucket("listing")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let files: Vec<&str> = top.contents().iter().filter_map(|o| o.key()).collect();
    let dirs: Vec<&str> = top
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(files, ["a.txt", "z"]);
    assert_eq!(dirs, ["docs/", "images/"]);
    assert_eq!(top.key_count(), Some(4));

    let docs = s3
        .list_objects_v2()
        .bucket("listing")
        .prefix("docs/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let files: Vec<&str> = docs.contents().iter().filter_map(|o| o.key()).collect();
    let dirs: Vec<&str> = docs
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(files, ["docs/guide.md", "docs/intro.md"]);
    assert_eq!(dirs, ["docs/sub/"]);

    // Pages of two, with and without a delimiter, cover everything exactly once.
    for delimiter in [None, Some("/")] {
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket("listing")
                .max_keys(2)
                .set_delimiter(delimiter.map(str::to_owned))
                .set_continuation_token(token.clone())
                .send()
                .await
                .unwrap();
            assert!(page.key_count().unwrap() <= 2);
            // A page's keys and prefixes interleave in name order.
            let mut names: Vec<String> = page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_owned)
                .collect();
            names.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix())
                    .map(str::to_owned),
            );
            names.sort();
            seen.extend(names);
            if !page.is_truncated().unwrap() {
                break;
            }
            token = page.next_continuation_token().map(str::to_owned);
        }
        let expected: Vec<&str> = match delimiter {
            None => keys.to_vec(),
            Some(_) => vec!["a.txt", "docs/", "images/", "z"],
        };
        assert_eq!(seen, expected, "delimiter {delimiter:?}");
    }
    let after = s3
        .list_objects_v2()
        .bucket("listing")
        .start_after("docs/intro.md")
        .send()
        .await
        .unwrap();
    let files: Vec<&str> = after.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        files,
        ["docs/sub/deep.md", "images/1.png", "images/2.png", "z"]
    );

    // ListObjects v1 with a marker.
    let v1 = s3
        .list_objects()
        .bucket("listing")
        .marker("images/1.png")
        .send()
        .await
        .unwrap();
    let files: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(files, ["images/2.png", "z"]);
    assert!(v1.contents()[0].owner().is_some());
    let v1_page = s3
        .list_objects()
        .bucket("listing")
        .max_keys(3)
        .send()
        .await
        .unwrap();
    assert_eq!(v1_page.is_truncated(), Some(true));
    assert_eq!(v1_page.next_marker(), Some("docs/intro.md"));

    let owner = s3
        .list_objects_v2()
        .bucket("listing")
        .fetch_owner(true)
        .max_keys(1)
        .send()
        .await
        .unwrap();
    assert!(owner.contents()[0].owner().is_some());
    assert_eq!(
        error_code(s3.list_objects_v2().bucket("nope").send().await),
        "NoSuchBucket"
    );
}

#[tokio::test]
async fn hostile_keys_are_stored_faithfully_and_never_become_paths() {
    let server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("keys").send().await.unwrap();
    let long = "k".repeat(1024);
    let keys = [
        "../escape",
        "../../../../etc/passwd",
        "a//b",
        "/abs",
        "dir/",
        "unicode/日本語/ファイル",
        "plus+and&equals=",
        "space and %20 percent",
        "tab\tnewline\n",
        long.as_str(),
    ];
    for (index, key) in keys.iter().enumerate() {
        s3.put_object()
            .bucket("keys")
            .key(*key)
            .body(ByteStream::from(vec![index as u8; 10_000]))
            .send()
            .await
            .unwrap_or_else(|err| panic!("put {key:?}: {err:?}"));
    }
    for (index, key) in keys.iter().enumerate() {
        let got = s3
            .get_object()
            .bucket("keys")
            .key(*key)
            .send()
            .await
            .unwrap();
        assert_eq!(body_bytes(got).await, vec![index as u8; 10_000], "{key:?}");
    }
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("keys")
            .set_continuation_token(token)
            .max_keys(3)
            .send()
            .await
            .unwrap();
        listed.extend(page.contents().iter().map(|o| o.key().unwrap().to_owned()));
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let mut expected: Vec<String> = keys.iter().map(|key| (*key).to_owned()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(
        error_code(
            s3.put_object()
                .bucket("keys")
                .key("k".repeat(1025))
                .send()
                .await
        ),
        "KeyTooLongError"
    );
    // Nothing but blobs (named by id) and the tmp directory under data_dir.
    for file in server.data_files() {
        let first = file.components().next().unwrap().as_os_str().to_owned();
        assert!(
            first == "blobs" || first == "tmp",
            "unexpected file {file:?}"
        );
    }
    assert!(!server.dir().join("etc").exists());
    assert!(!server.data_dir().parent().unwrap().join("escape").exists());
}

#[tokio::test]
async fn multipart_upload_complete_abort_and_list() {
    let server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("multipart").send().await.unwrap();
    let part1 = pattern(5 << 20, 1);
    let part2 = pattern(1 << 20, 2);
    let create = s3
        .create_multipart_upload()
        .bucket("multipart")
        .key("big")
        .content_type("application/x-big")
        .metadata("from", "multipart")
        .send()
        .await
        .unwrap();
    let upload_id = create.upload_id().unwrap().to_owned();
    let mut etags = Vec::new();
    for (number, data) in [(1, &part1), (2, &part2)] {
        let part = s3
            .upload_part()
            .bucket("multipart")
            .key("big")
            .upload_id(&upload_id)
            .part_number(number)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            part.e_tag(),
            Some(format!("\"{}\"", md5_hex(data)).as_str())
        );
        etags.push(part.e_tag().unwrap().to_owned());
    }
    let parts = s3
        .list_parts()
        .bucket("multipart")
        .key("big")
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();
    let sizes: Vec<i64> = parts.parts().iter().filter_map(|p| p.size()).collect();
    assert_eq!(sizes, [5 << 20, 1 << 20]);
    let uploads = s3
        .list_multipart_uploads()
        .bucket("multipart")
        .send()
        .await
        .unwrap();
    assert_eq!(uploads.uploads().len(), 1);
    assert_eq!(uploads.uploads()[0].key(), Some("big"));
    assert_eq!(
        error_code(s3.delete_bucket().bucket("multipart").send().await),
        "BucketNotEmpty"
    );

    let completed = |parts: &[(i32, &str)]| {
        CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|(number, etag)| {
                        CompletedPart::builder()
                            .part_number(*number)
                            .e_tag(*etag)
                            .build()
                    })
                    .collect(),
            ))
            .build()
    };
    assert_eq!(
        error_code(
            s3.complete_multipart_upload()
                .bucket("multipart")
                .key("big")
                .upload_id(&upload_id)
                .multipart_upload(completed(&[
                    (1, "\"00000000000000000000000000000000\""),
                    (2, &etags[1])
                ]))
                .send()
                .await
        ),
        "InvalidPart"
    );
    assert_eq!(
        error_code(
            s3.complete_multipart_upload()
                .bucket("multipart")
                .key("big")
                .upload_id(&upload_id)
                .multipart_upload(completed(&[(2, &etags[1]), (1, &etags[0])]))
                .send()
                .await
        ),
        "InvalidPartOrder"
    );
    let done = s3
        .complete_multipart_upload()
        .bucket("multipart")
        .key("big")
        .upload_id(&upload_id)
        .multipart_upload(completed(&[(1, &etags[0]), (2, &etags[1])]))
        .send()
        .await
        .unwrap();
    assert!(done.e_tag().unwrap().ends_with("-2\""), "{done:?}");
    let got = s3
        .get_object()
        .bucket("multipart")
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/x-big"));
    assert_eq!(got.metadata().unwrap().get("from").unwrap(), "multipart");
    assert_eq!(got.e_tag(), done.e_tag());
    let mut whole = part1.clone();
    whole.extend_from_slice(&part2);
    assert_eq!(body_bytes(got).await, whole);
    // A range across the part boundary, and a part by number.
    let across = s3
        .get_object()
        .bucket("multipart")
        .key("big")
        .range(format!("bytes={}-{}", (5 << 20) - 3, (5 << 20) + 2))
        .send()
        .await
        .unwrap();
    assert_eq!(
        body_bytes(across).await,
        whole[(5 << 20) - 3..(5 << 20) + 3]
    );
    let second = s3
        .get_object()
        .bucket("multipart")
        .key("big")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(second.parts_count(), Some(2));
    assert_eq!(body_bytes(second).await, part2);
    assert!(
        s3.list_multipart_uploads()
            .bucket("multipart")
            .send()
            .await
            .unwrap()
            .uploads()
            .is_empty()
    );
    assert_eq!(
        error_code(
            s3.upload_part()
                .bucket("multipart")
                .key("big")
                .upload_id(&upload_id)
                .part_number(3)
                .body(ByteStream::from_static(b"late"))
                .send()
                .await
        ),
        "NoSuchUpload"
    );

    // Too-small parts, then abort.
    let small = s3
        .create_multipart_upload()
        .bucket("multipart")
        .key("small")
        .send()
        .await
        .unwrap();
    let small_id = small.upload_id().unwrap();
    let mut small_etags = Vec::new();
    for number in 1..=2 {
        let part = s3
            .upload_part()
            .bucket("multipart")
            .key("small")
            .upload_id(small_id)
            .part_number(number)
            .body(ByteStream::from_static(b"tiny"))
            .send()
            .await
            .unwrap();
        small_etags.push(part.e_tag().unwrap().to_owned());
    }
    assert_eq!(
        error_code(
            s3.complete_multipart_upload()
                .bucket("multipart")
                .key("small")
                .upload_id(small_id)
                .multipart_upload(completed(&[(1, &small_etags[0]), (2, &small_etags[1])]))
                .send()
                .await
        ),
        "EntityTooSmall"
    );
    s3.abort_multipart_upload()
        .bucket("multipart")
        .key("small")
        .upload_id(small_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(
            s3.abort_multipart_upload()
                .bucket("multipart")
                .key("small")
                .upload_id(small_id)
                .send()
                .await
        ),
        "NoSuchUpload"
    );
    assert_eq!(
        error_code(
            s3.upload_part()
                .bucket("multipart")
                .key("big")
                .upload_id("not-an-upload")
                .part_number(1)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
        ),
        "NoSuchUpload"
    );
    // Only the completed object's two part files remain.
    let blobs = server
        .data_files()
        .into_iter()
        .filter(|file| file.starts_with("blobs"))
        .count();
    assert_eq!(blobs, 2);
}

#[tokio::test]
async fn upload_part_copy_and_multipart_checksums() {
    let server = Lightningstor::start(&[]).await;
    let s3 = server.client();
    s3.create_bucket().bucket("partcopy").send().await.unwrap();
    let source = pattern(6 << 20, 4);
    s3.put_object()
        .bucket("partcopy")
        .key("source")
        .body(ByteStream::from(source.clone()))
        .send()
        .await
        .unwrap();
    let create = s3
        .create_multipart_upload()
        .bucket("partcopy")
        .key("assembled")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let id = create.upload_id().unwrap();
    let first = s3
        .upload_part_copy()
        .bucket("partcopy")
        .key("assembled")
        .upload_id(id)
        .part_number(1)
        .copy_source("partcopy/source")
        .copy_source_range(format!("bytes=0-{}", (5 << 20) - 1))
        .send()
        .await
        .unwrap();
    let first_result = first.copy_part_result().unwrap();
    let tail = b"the end".to_vec();
    let second = s3
        .upload_part()
        .bucket("partcopy")
        .key("assembled")
        .upload_id(id)
        .part_number(2)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from(tail.clone()))
        .send()
        .await
        .unwrap();
    let done = s3
        .complete_multipart_upload()
        .bucket("partcopy")
        .key("assembled")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(first_result.e_tag().unwrap())
                        .set_checksum_crc32(first_result.checksum_crc32().map(str::to_owned))
                        .build(),
                )
                .parts(
                    CompletedPart::builder()
                        .part_number(2)
                        .e_tag(second.e_tag().unwrap())
                        .set_checksum_crc32(second.checksum_crc32().map(str::to_owned))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    // A composite CRC32: the CRC of the part CRCs, then -2.
    assert!(done.checksum_crc32().unwrap().ends_with("-2"), "{done:?}");
    let got = s3
        .get_object()
        .bucket("partcopy")
        .key("assembled")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let mut expected = source[..5 << 20].to_vec();
    expected.extend_from_slice(&tail);
    assert_eq!(body_bytes(got).await, expected);
}
