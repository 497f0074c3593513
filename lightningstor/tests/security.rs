//! Signatures, presigned URLs, anonymous access, and bad input that must be refused with the
//! S3 error and leave stored data intact.

mod common;

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use common::{Lightningstor, body_bytes, error_code, error_status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn seeded(settings: &[&str]) -> (Lightningstor, aws_sdk_s3::Client) {
    let server = Lightningstor::start(settings).await;
    let s3 = server.client();
    s3.create_bucket().bucket("guarded").send().await.unwrap();
    s3.put_object()
        .bucket("guarded")
        .key("precious")
        .body(ByteStream::from_static(b"keep me"))
        .send()
        .await
        .unwrap();
    (server, s3)
}

async fn still_intact(s3: &aws_sdk_s3::Client) {
    let got = s3
        .get_object()
        .bucket("guarded")
        .key("precious")
        .send()
        .await
        .unwrap();
    assert_eq!(body_bytes(got).await, b"keep me");
}

fn s3_code(body: &str) -> &str {
    body.split("<Code>")
        .nth(1)
        .and_then(|rest| rest.split("</Code>").next())
        .unwrap_or("<no code>")
}

#[tokio::test]
async fn wrong_keys_and_anonymous_requests_are_refused() {
    let (server, s3) = seeded(&[]).await;
    let wrong_secret = server.client_with(common::ACCESS_KEY, "not-the-secret-at-all");
    let result = wrong_secret
        .put_object()
        .bucket("guarded")
        .key("precious")
        .body(ByteStream::from_static(b"overwritten"))
        .send()
        .await;
    assert_eq!(error_code(result), "SignatureDoesNotMatch");
    let unknown = server.client_with("AKIANOBODY0000000000", "whatever-secret-value");
    let result = unknown.list_buckets().send().await;
    assert_eq!(error_code(result), "InvalidAccessKeyId");
    let result = unknown
        .get_object()
        .bucket("guarded")
        .key("precious")
        .send()
        .await;
    assert_eq!(error_status(result), 403);

    let anonymous = reqwest::get(format!("{}/guarded/precious", server.endpoint()))
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 403);
    assert_eq!(s3_code(&anonymous.text().await.unwrap()), "AccessDenied");
    still_intact(&s3).await;
    let log = server.log_text();
    assert!(
        log.contains("refused (403); access key AKIANOBODY0000000000"),
        "{log}"
    );
    assert!(
        !log.contains(common::SECRET_KEY),
        "a secret reached the log"
    );
}

#[tokio::test]
async fn public_read_buckets_allow_anonymous_reads_only() {
    let (server, s3) = seeded(&["standalone.auth.public_read_buckets=guarded"]).await;
    let url = format!("{}/guarded/precious", server.endpoint());
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "keep me");
    let listing = reqwest::get(format!("{}/guarded?list-type=2", server.endpoint()))
        .await
        .unwrap();
    assert_eq!(listing.status().as_u16(), 200);
    assert!(
        listing
            .text()
            .await
            .unwrap()
            .contains("<Key>precious</Key>")
    );
    let put = reqwest::Client::new()
        .put(&url)
        .body("defaced")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 403);
    let delete = reqwest::Client::new().delete(&url).send().await.unwrap();
    assert_eq!(delete.status().as_u16(), 403);
    still_intact(&s3).await;
}

#[tokio::test]
async fn presigned_urls_work_until_they_expire() {
    let (_server, s3) = seeded(&[]).await;
    let presigned = s3
        .get_object()
        .bucket("guarded")
        .key("precious")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let response = reqwest::get(presigned.uri()).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "keep me");

    let upload = s3
        .put_object()
        .bucket("guarded")
        .key("uploaded")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .put(upload.uri())
        .body("via presigned PUT")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let got = s3
        .get_object()
        .bucket("guarded")
        .key("uploaded")
        .send()
        .await
        .unwrap();
    assert_eq!(body_bytes(got).await, b"via presigned PUT");

    let short = s3
        .get_object()
        .bucket("guarded")
        .key("precious")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(1)).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = reqwest::get(short.uri()).await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(s3_code(&response.text().await.unwrap()), "AccessDenied");

    // A tampered (well-formed) signature is refused.
    let uri = presigned.uri();
    let at = uri.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let flipped = if &uri[at..=at] == "0" { "1" } else { "0" };
    let tampered = format!("{}{flipped}{}", &uri[..at], &uri[at + 1..]);
    let response = reqwest::get(tampered).await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(
        s3_code(&response.text().await.unwrap()),
        "SignatureDoesNotMatch"
    );
}

#[tokio::test]
async fn bad_digests_are_refused_and_leave_the_object() {
    let (server, s3) = seeded(&[]).await;
    // The MD5 of something else (base64 of 16 bytes).
    let result = s3
        .put_object()
        .bucket("guarded")
        .key("precious")
        .content_md5("AAAAAAAAAAAAAAAAAAAAAA==")
        .body(ByteStream::from_static(b"overwritten"))
        .send()
        .await;
    assert_eq!(error_code(result), "BadDigest");
    let result = s3
        .put_object()
        .bucket("guarded")
        .key("precious")
        .content_md5("not base64!")
        .body(ByteStream::from_static(b"overwritten"))
        .send()
        .await;
    assert_eq!(error_code(result), "InvalidDigest");
    let result = s3
        .put_object()
        .bucket("guarded")
        .key("precious")
        .checksum_crc32("AAAAAA==")
        .body(ByteStream::from(vec![7u8; 100_000]))
        .send()
        .await;
    assert_eq!(error_code(result), "BadDigest");
    still_intact(&s3).await;
    // The refused bodies left no files behind.
    let blobs = server
        .data_files()
        .into_iter()
        .filter(|file| file.starts_with("blobs") || file.starts_with("tmp"))
        .count();
    assert_eq!(blobs, 0);
}

async fn refused_body<T, E>(
    send: impl std::future::Future<Output = Result<T, aws_sdk_s3::error::SdkError<E>>>,
) -> (u16, String)
where
    T: std::fmt::Debug,
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
{
    let result = send.await;
    let status = match &result {
        Ok(value) => panic!("expected a refusal, got {value:?}"),
        Err(err) => err
            .raw_response()
            .map(|raw| raw.status().as_u16())
            .unwrap_or(0),
    };
    (status, error_code(result))
}

#[tokio::test]
async fn malformed_xml_is_refused() {
    let (_server, s3) = seeded(&[]).await;
    let upload = s3
        .create_multipart_upload()
        .bucket("guarded")
        .key("precious")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    for body in ["<CompleteMultipartUpload><Part>", "not xml at all"] {
        let send = s3
            .complete_multipart_upload()
            .bucket("guarded")
            .key("precious")
            .upload_id(upload_id)
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .parts(
                        aws_sdk_s3::types::CompletedPart::builder()
                            .part_number(1)
                            .e_tag("\"x\"")
                            .build(),
                    )
                    .build(),
            )
            .customize()
            .mutate_request(move |request| replace_body(request, body))
            .send();
        let (status, code) = refused_body(send).await;
        assert_eq!((status, code.as_str()), (400, "MalformedXML"), "{body:?}");
    }
    let send = s3
        .delete_objects()
        .bucket("guarded")
        .delete(
            aws_sdk_s3::types::Delete::builder()
                .objects(
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key("precious")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .customize()
        .mutate_request(|request| replace_body(request, "<Delete><Object><Key>precious</Key>"))
        .send();
    let (status, code) = refused_body(send).await;
    assert_eq!((status, code.as_str()), (400, "MalformedXML"));
    still_intact(&s3).await;
}

/// Swaps the body of an SDK request (before it is signed) and fixes its length headers.
fn replace_body(request: &mut aws_sdk_s3::config::http::HttpRequest, body: &'static str) {
    *request.body_mut() = aws_sdk_s3::primitives::SdkBody::from(body);
    let headers = request.headers_mut();
    headers.insert("content-length", body.len().to_string());
    for name in [
        "content-md5",
        "x-amz-checksum-crc32",
        "x-amz-sdk-checksum-algorithm",
    ] {
        headers.remove(name);
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_they_are_read() {
    let (server, s3) = seeded(&[]).await;
    let presigned = s3
        .put_object()
        .bucket("guarded")
        .key("precious")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let uri: hyper::Uri = presigned.uri().parse().unwrap();
    let path = uri.path_and_query().unwrap().as_str();
    let mut stream = tokio::net::TcpStream::connect(server.s3_addr)
        .await
        .unwrap();
    // Six GiB declared, none sent: the answer must come without waiting for the body.
    let request = format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        server.s3_addr,
        6u64 << 30
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("answered without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("EntityTooLarge"), "{answer}");
    still_intact(&s3).await;
}
