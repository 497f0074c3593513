//! PutObject, GetObject, HeadObject, DeleteObject(s) and CopyObject.

use std::collections::HashMap;
use std::ops::Range;

use futures::TryStreamExt;
use s3s::dto::*;
use s3s::{S3Error, S3Request, S3Response, S3Result, s3_error};

use crate::integrity::{self, Algorithm, Expected};
use crate::meta::{Batch, Checksums, Content, ObjectHeaders, ObjectRecord};
use crate::store::{
    MAX_PART_SIZE, Store, ingest_error, meta_error, now_ms, timestamp, timestamp_ms,
};

/// What AWS answers for an object stored without a Content-Type.
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// What GetObject and HeadObject inputs (same fields, different types) say about the read:
/// the request, the `response-*` overrides and whether checksums are wanted.
macro_rules! read_parts {
    ($input:ident) => {
        (
            ReadRequest {
                bucket: &$input.bucket,
                key: &$input.key,
                if_match: $input.if_match.as_ref(),
                if_none_match: $input.if_none_match.as_ref(),
                if_modified_since: $input.if_modified_since.as_ref(),
                if_unmodified_since: $input.if_unmodified_since.as_ref(),
                range: $input.range.as_ref(),
                part_number: $input.part_number,
            },
            Overrides {
                cache_control: $input.response_cache_control.clone(),
                content_disposition: $input.response_content_disposition.clone(),
                content_encoding: $input.response_content_encoding.clone(),
                content_language: $input.response_content_language.clone(),
                content_type: $input.response_content_type.clone(),
                expires: $input.response_expires.clone(),
            },
            checksum_mode($input.checksum_mode.as_ref()),
        )
    };
}

/// A GetObject or HeadObject output (same header fields, different types), plus `extra` fields.
macro_rules! object_output {
    ($output:ident { $($extra:tt)* }, $record:ident, $selection:ident, $head:ident) => {
        $output {
            $($extra)*
            accept_ranges: Some("bytes".to_owned()),
            cache_control: $head.cache_control,
            content_disposition: $head.content_disposition,
            content_encoding: $head.content_encoding,
            content_language: $head.content_language,
            content_length: Some($selection.length()),
            content_range: $selection.content_range.clone(),
            content_type: $head.content_type,
            e_tag: Some(ETag::Strong($record.etag.clone())),
            expires: $head.expires,
            last_modified: Some(timestamp($record.last_modified_ms)),
            metadata: $head.metadata,
            parts_count: $selection.parts_count,
            checksum_crc32: $head.checksums.crc32,
            checksum_crc32c: $head.checksums.crc32c,
            checksum_crc64nvme: $head.checksums.crc64nvme,
            checksum_sha1: $head.checksums.sha1,
            checksum_sha256: $head.checksums.sha256,
            checksum_type: $head.checksums.checksum_type.map(ChecksumType::from),
            ..Default::default()
        }
    };
}

/// Write options no object operation supports, read from any input that has them.
macro_rules! refuse_unsupported {
    ($input:ident) => {
        crate::s3::objects::refuse_unsupported_write(
            $input.acl.as_ref().map(ObjectCannedACL::as_str),
            $input.storage_class.as_ref().map(StorageClass::as_str),
            $input.sse_customer_algorithm.is_some() || $input.server_side_encryption.is_some(),
            $input.tagging.is_some(),
            $input.object_lock_mode.is_some() || $input.object_lock_legal_hold_status.is_some(),
            $input.website_redirect_location.is_some(),
        )
    };
}
pub(crate) use refuse_unsupported;

/// The `x-amz-copy-source-if-*` conditions of a CopyObject or UploadPartCopy input.
macro_rules! copy_conditions {
    ($input:ident) => {
        crate::s3::objects::CopyConditions {
            if_match: $input.copy_source_if_match.as_ref(),
            if_none_match: $input.copy_source_if_none_match.as_ref(),
            if_modified_since: $input.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: $input.copy_source_if_unmodified_since.as_ref(),
        }
    };
}
pub(crate) use copy_conditions;

impl Store {
    pub async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let expected = Expected::from_headers(&req.headers)?;
        let trailers = req.trailing_headers.clone();
        let input = req.input;
        refuse_unsupported!(input)?;
        if input.write_offset_bytes.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "appending writes are not supported"
            ));
        }
        if input
            .content_length
            .is_some_and(|length| length > MAX_PART_SIZE as i64)
        {
            return Err(s3_error!(
                EntityTooLarge,
                "a single PUT is limited to {MAX_PART_SIZE} bytes; use a multipart upload"
            ));
        }
        self.require_bucket(&input.bucket).await?;
        let conditions = WriteConditions {
            if_match: input.if_match.clone(),
            if_none_match: input.if_none_match.clone(),
        };
        // A conditional PUT fails before its body is received when the answer is known
        // already; the conditions are checked again under the key's lock before the commit.
        if conditions.if_match.is_some() || conditions.if_none_match.is_some() {
            let existing = self
                .meta
                .get_object(&input.bucket, &input.key)
                .await
                .map_err(meta_error)?;
            conditions.check(existing.as_ref())?;
        }

        let body = input
            .body
            .ok_or_else(|| s3_error!(IncompleteBody, "PutObject needs a body"))?;
        let ingested = self
            .blobs
            .ingest(
                body,
                MAX_PART_SIZE,
                Some(self.inline_threshold),
                expected.hasher(&[]),
            )
            .await
            .map_err(ingest_error)?;
        self.metrics.received(ingested.size);
        let trailers = trailers.and_then(|handle| handle.take());
        let checksums = match expected.verify(&ingested.md5, &ingested.checksums, trailers.as_ref())
        {
            Ok(checksums) => checksums,
            Err(err) => {
                self.discard(&ingested.content).await;
                return Err(err);
            }
        };
        let headers = ObjectHeaders {
            content_type: input.content_type,
            content_encoding: input.content_encoding,
            content_disposition: input.content_disposition,
            content_language: input.content_language,
            cache_control: input.cache_control,
            expires_ms: input.expires.as_ref().map(timestamp_ms),
            user_metadata: sorted_metadata(input.metadata),
        };
        let record = ObjectRecord {
            size: ingested.size,
            etag: integrity::md5_etag(&ingested.md5),
            last_modified_ms: now_ms(),
            content: ingested.content,
            headers,
            checksums,
            multipart: false,
        };
        let output = PutObjectOutput {
            e_tag: Some(ETag::Strong(record.etag.clone())),
            checksum_crc32: record.checksums.crc32.clone(),
            checksum_crc32c: record.checksums.crc32c.clone(),
            checksum_crc64nvme: record.checksums.crc64nvme.clone(),
            checksum_sha1: record.checksums.sha1.clone(),
            checksum_sha256: record.checksums.sha256.clone(),
            checksum_type: record
                .checksums
                .checksum_type
                .clone()
                .map(ChecksumType::from),
            size: i64::try_from(record.size).ok(),
            ..Default::default()
        };
        self.store_object(&input.bucket, &input.key, record, &conditions)
            .await?;
        Ok(S3Response::new(output))
    }

    /// Commits `record` at `bucket`/`key` if `conditions` still hold, replacing what was there.
    /// On refusal the new data is deleted.
    pub(crate) async fn store_object(
        &self,
        bucket: &str,
        key: &str,
        record: ObjectRecord,
        conditions: &WriteConditions,
    ) -> S3Result<()> {
        let _bucket_guard = self.bucket_writes().await;
        let _key_guard = self.lock("object", &object_lock_name(bucket, key)).await;
        let previous = match self.writable(bucket, key, conditions).await {
            Ok(previous) => previous,
            Err(err) => {
                self.discard(&record.content).await;
                return Err(err);
            }
        };
        let mut batch = Batch::default();
        batch.replace_object(bucket, key, record, previous.as_ref());
        self.commit(batch).await
    }

    /// What `bucket`/`key` holds now, if a write there may go ahead under `conditions` (the
    /// caller holds the key's lock). The bucket may have been deleted while the body arrived.
    async fn writable(
        &self,
        bucket: &str,
        key: &str,
        conditions: &WriteConditions,
    ) -> S3Result<Option<ObjectRecord>> {
        self.require_bucket(bucket).await?;
        let previous = self
            .meta
            .get_object(bucket, key)
            .await
            .map_err(meta_error)?;
        conditions.check(previous.as_ref())?;
        Ok(previous)
    }

    /// Deletes data that was written but will not be committed.
    pub(crate) async fn discard(&self, content: &Content) {
        let blobs: Vec<_> = content.blobs().collect();
        self.blobs.delete(&blobs).await;
    }

    pub async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let (read, overrides, with_checksums) = read_parts!(input);
        let (record, selection) = self.prepare_read(&read).await?;
        let head = describe(&record, &selection, overrides, with_checksums);
        let metrics = self.metrics.clone();
        let body = self
            .blobs
            .read(&record.content, selection.range.clone())
            .inspect_ok(move |chunk| metrics.sent(chunk.len() as u64));
        let output = object_output!(
            GetObjectOutput {
                body: Some(StreamingBlob::wrap(body)),
            },
            record,
            selection,
            head
        );
        Ok(partial_content(output, selection.is_partial))
    }

    pub async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let (read, overrides, with_checksums) = read_parts!(input);
        let (record, selection) = self.prepare_read(&read).await?;
        let head = describe(&record, &selection, overrides, with_checksums);
        let output = object_output!(HeadObjectOutput {}, record, selection, head);
        Ok(partial_content(output, selection.is_partial))
    }

    /// Finds the object, applies the HTTP preconditions and works out the bytes to send.
    async fn prepare_read(&self, read: &ReadRequest<'_>) -> S3Result<(ObjectRecord, Selection)> {
        self.require_bucket(read.bucket).await?;
        let record = self
            .meta
            .get_object(read.bucket, read.key)
            .await
            .map_err(meta_error)?
            .ok_or_else(|| s3_error!(NoSuchKey, "The specified key does not exist."))?;
        check_read_conditions(&record, read)?;
        let selection = select(&record, read.range, read.part_number)?;
        Ok((record, selection))
    }

    pub async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        if input.version_id.as_deref().is_some_and(|id| id != "null") {
            return Err(s3_error!(NoSuchVersion, "versioning is not enabled"));
        }
        self.require_bucket(&input.bucket).await?;
        self.remove_object(&input.bucket, &input.key, input.if_match.as_ref())
            .await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    /// Deletes `bucket`/`key`; a missing key is success, as in S3 (unless If-Match is given).
    async fn remove_object(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&ETagCondition>,
    ) -> S3Result<()> {
        let _bucket_guard = self.bucket_writes().await;
        let _key_guard = self.lock("object", &object_lock_name(bucket, key)).await;
        let previous = self
            .meta
            .get_object(bucket, key)
            .await
            .map_err(meta_error)?;
        if let Some(condition) = if_match {
            let Some(previous) = &previous else {
                return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
            };
            if !etag_matches(condition, &previous.etag) {
                return Err(s3_error!(PreconditionFailed, "If-Match did not match"));
            }
        }
        if let Some(previous) = previous {
            let mut batch = Batch::default();
            batch.delete_object(bucket, key, &previous);
            self.commit(batch).await?;
        }
        Ok(())
    }

    pub async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        if input.delete.objects.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "a DeleteObjects request names at most 1000 keys"
            ));
        }
        self.require_bucket(&input.bucket).await?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for object in input.delete.objects {
            let outcome = if object.version_id.as_deref().is_some_and(|id| id != "null") {
                Err(s3_error!(NoSuchVersion, "versioning is not enabled"))
            } else {
                self.remove_object(
                    &input.bucket,
                    &object.key,
                    object
                        .e_tag
                        .as_ref()
                        .map(|etag| {
                            // A per-key ETag in DeleteObjects acts as If-Match.
                            ETagCondition::ETag(etag.clone())
                        })
                        .as_ref(),
                )
                .await
            };
            match outcome {
                Ok(()) if !quiet => deleted.push(DeletedObject {
                    key: Some(object.key),
                    ..Default::default()
                }),
                Ok(()) => {}
                Err(err) => errors.push(Error {
                    code: Some(err.code().as_str().to_owned()),
                    key: Some(object.key),
                    message: err.message().map(str::to_owned),
                    version_id: None,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            ..Default::default()
        }))
    }

    pub async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        refuse_unsupported!(input)?;
        let (source_bucket, source_key) = copy_source(&input.copy_source)?;
        self.require_bucket(&input.bucket).await?;
        let source = self
            .copy_source_record(source_bucket, source_key, &copy_conditions!(input))
            .await?;
        if source.size > MAX_PART_SIZE {
            return Err(s3_error!(
                InvalidRequest,
                "The specified copy source is larger than the maximum allowable size for a copy source: {MAX_PART_SIZE}"
            ));
        }
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|directive| directive.as_str() == MetadataDirective::REPLACE);
        let requested = input
            .checksum_algorithm
            .as_ref()
            .and_then(|algorithm| Algorithm::parse(algorithm.as_str()));
        if source_bucket == input.bucket
            && source_key == input.key
            && !replace
            && requested.is_none()
        {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        let headers = if replace {
            ObjectHeaders {
                content_type: input.content_type,
                content_encoding: input.content_encoding,
                content_disposition: input.content_disposition,
                content_language: input.content_language,
                cache_control: input.cache_control,
                expires_ms: input.expires.as_ref().map(timestamp_ms),
                user_metadata: sorted_metadata(input.metadata),
            }
        } else {
            source.headers.clone()
        };
        let algorithms: Vec<Algorithm> = match requested {
            Some(algorithm) => vec![algorithm],
            None => Algorithm::ALL
                .into_iter()
                .filter(|algorithm| algorithm.get(&source.checksums).is_some())
                .collect(),
        };
        let record = self
            .copy_bytes(
                &source,
                0..source.size,
                &algorithms,
                Some(self.inline_threshold),
            )
            .await?;
        let record = ObjectRecord { headers, ..record };
        let output = CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(record.etag.clone())),
                last_modified: Some(timestamp(record.last_modified_ms)),
                checksum_type: record
                    .checksums
                    .checksum_type
                    .clone()
                    .map(ChecksumType::from),
                checksum_crc32: record.checksums.crc32.clone(),
                checksum_crc32c: record.checksums.crc32c.clone(),
                checksum_crc64nvme: record.checksums.crc64nvme.clone(),
                checksum_sha1: record.checksums.sha1.clone(),
                checksum_sha256: record.checksums.sha256.clone(),
            }),
            ..Default::default()
        };
        self.store_object(
            &input.bucket,
            &input.key,
            record,
            &WriteConditions::default(),
        )
        .await?;
        Ok(S3Response::new(output))
    }

    /// The source of a copy, with the `x-amz-copy-source-if-*` conditions applied.
    pub(crate) async fn copy_source_record(
        &self,
        bucket: &str,
        key: &str,
        conditions: &CopyConditions<'_>,
    ) -> S3Result<ObjectRecord> {
        self.require_bucket(bucket).await?;
        let record = self
            .meta
            .get_object(bucket, key)
            .await
            .map_err(meta_error)?
            .ok_or_else(|| s3_error!(NoSuchKey, "The specified copy source does not exist."))?;
        let read = ReadRequest {
            bucket,
            key,
            if_match: conditions.if_match,
            if_none_match: conditions.if_none_match,
            if_modified_since: conditions.if_modified_since,
            if_unmodified_since: conditions.if_unmodified_since,
            range: None,
            part_number: None,
        };
        // A copy answers 412 where a GET would answer 304.
        check_read_conditions(&record, &read).map_err(|err| {
            if *err.code() == s3s::S3ErrorCode::NotModified {
                s3_error!(PreconditionFailed, "a copy-source precondition failed")
            } else {
                err
            }
        })?;
        Ok(record)
    }

    /// A new object made of `range` of `source`'s bytes, hashed with `algorithms`. Without an
    /// inline threshold the data always goes to a blob (parts must be blobs).
    pub(crate) async fn copy_bytes(
        &self,
        source: &ObjectRecord,
        range: Range<u64>,
        algorithms: &[Algorithm],
        inline_threshold: Option<u64>,
    ) -> S3Result<ObjectRecord> {
        let hasher = Expected::default().hasher(algorithms);
        let body = self.blobs.read(&source.content, range);
        let ingested = self
            .blobs
            .ingest(body, MAX_PART_SIZE, inline_threshold, hasher)
            .await
            .map_err(ingest_error)?;
        Ok(ObjectRecord {
            size: ingested.size,
            etag: integrity::md5_etag(&ingested.md5),
            last_modified_ms: now_ms(),
            content: ingested.content,
            headers: source.headers.clone(),
            checksums: integrity::from_dto(&ingested.checksums),
            multipart: false,
        })
    }
}

/// The name an object's lock is taken under.
pub(crate) fn object_lock_name(bucket: &str, key: &str) -> String {
    format!("{bucket}\0{key}")
}

/// `If-Match` / `If-None-Match` on a write (PutObject, CompleteMultipartUpload).
#[derive(Debug, Default)]
pub(crate) struct WriteConditions {
    pub if_match: Option<ETagCondition>,
    pub if_none_match: Option<ETagCondition>,
}

impl WriteConditions {
    pub fn check(&self, existing: Option<&ObjectRecord>) -> S3Result<()> {
        if let Some(condition) = &self.if_none_match {
            if !condition.is_any() {
                return Err(s3_error!(
                    NotImplemented,
                    "If-None-Match on writes supports only *"
                ));
            }
            if existing.is_some() {
                return Err(s3_error!(
                    PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold"
                ));
            }
        }
        if let Some(condition) = &self.if_match {
            let Some(existing) = existing else {
                return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
            };
            if !etag_matches(condition, &existing.etag) {
                return Err(s3_error!(
                    PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold"
                ));
            }
        }
        Ok(())
    }
}

pub(crate) struct CopyConditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

struct ReadRequest<'a> {
    bucket: &'a str,
    key: &'a str,
    if_match: Option<&'a ETagCondition>,
    if_none_match: Option<&'a ETagCondition>,
    if_modified_since: Option<&'a Timestamp>,
    if_unmodified_since: Option<&'a Timestamp>,
    range: Option<&'a s3s::dto::Range>,
    part_number: Option<PartNumber>,
}

fn etag_matches(condition: &ETagCondition, etag: &str) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(wanted) => wanted.value() == etag,
    }
}

/// RFC 7232 as S3 applies it: If-Match beats If-Unmodified-Since, If-None-Match beats
/// If-Modified-Since; dates compare at whole seconds (HTTP dates have no more).
fn check_read_conditions(record: &ObjectRecord, read: &ReadRequest<'_>) -> S3Result<()> {
    let modified = record.last_modified_ms.div_euclid(1000);
    let seconds = |timestamp: &Timestamp| timestamp_ms(timestamp).div_euclid(1000);
    if let Some(condition) = read.if_match {
        if !etag_matches(condition, &record.etag) {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
    } else if let Some(since) = read.if_unmodified_since
        && modified > seconds(since)
    {
        return Err(s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        ));
    }
    if let Some(condition) = read.if_none_match {
        if etag_matches(condition, &record.etag) {
            return Err(s3_error!(NotModified));
        }
    } else if let Some(since) = read.if_modified_since
        && modified <= seconds(since)
    {
        return Err(s3_error!(NotModified));
    }
    Ok(())
}

/// The bytes a read sends.
struct Selection {
    range: Range<u64>,
    is_partial: bool,
    content_range: Option<String>,
    parts_count: Option<i32>,
}

impl Selection {
    fn length(&self) -> i64 {
        i64::try_from(self.range.end - self.range.start).unwrap_or(i64::MAX)
    }
}

fn select(
    record: &ObjectRecord,
    range: Option<&s3s::dto::Range>,
    part_number: Option<PartNumber>,
) -> S3Result<Selection> {
    let size = record.size;
    // PartsCount is answered only to a partNumber GET of a multipart object.
    let mut parts_count = None;
    let chosen = match (range, part_number) {
        (Some(_), Some(_)) => {
            return Err(s3_error!(
                InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter"
            ));
        }
        (Some(range), None) => Some(
            range
                .check(size)
                .map_err(|_| s3_error!(InvalidRange, "The requested range is not satisfiable"))?,
        ),
        (None, Some(number)) => {
            let sizes = record.part_sizes();
            if record.multipart {
                parts_count = Some(i32::try_from(sizes.len()).unwrap_or(i32::MAX));
            }
            let index = usize::try_from(number - 1)
                .ok()
                .filter(|index| *index < sizes.len())
                .ok_or_else(invalid_part_number)?;
            let start: u64 = sizes[..index].iter().sum();
            Some(start..start + sizes[index])
        }
        (None, None) => None,
    };
    Ok(match chosen {
        Some(range) => Selection {
            content_range: Some(if range.is_empty() {
                format!("bytes */{size}")
            } else {
                format!("bytes {}-{}/{size}", range.start, range.end - 1)
            }),
            range,
            is_partial: true,
            parts_count,
        },
        None => Selection {
            range: 0..size,
            is_partial: false,
            content_range: None,
            parts_count: None,
        },
    })
}

/// S3's 416 for a partNumber the object does not have (s3s has no constant for it).
fn invalid_part_number() -> S3Error {
    let code = s3s::S3ErrorCode::from_bytes(b"InvalidPartNumber")
        .unwrap_or(s3s::S3ErrorCode::InvalidRange);
    let mut err = S3Error::with_message(code, "The requested partnumber is not satisfiable");
    err.set_status_code(hyper::StatusCode::RANGE_NOT_SATISFIABLE);
    err
}

/// `response-*` query parameters replacing stored headers in the answer.
struct Overrides {
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    content_type: Option<String>,
    expires: Option<Timestamp>,
}

/// The headers a GET or HEAD answers with.
struct Head {
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    content_type: Option<String>,
    expires: Option<Timestamp>,
    metadata: Option<HashMap<String, String>>,
    checksums: Checksums,
}

fn describe(
    record: &ObjectRecord,
    selection: &Selection,
    overrides: Overrides,
    with_checksums: bool,
) -> Head {
    let stored = &record.headers;
    let metadata =
        (!stored.user_metadata.is_empty()).then(|| stored.user_metadata.iter().cloned().collect());
    // A checksum describes the whole object; a range of it gets none.
    let checksums = if with_checksums && !selection.is_partial {
        record.checksums.clone()
    } else {
        Checksums::default()
    };
    Head {
        cache_control: overrides
            .cache_control
            .or_else(|| stored.cache_control.clone()),
        content_disposition: overrides
            .content_disposition
            .or_else(|| stored.content_disposition.clone()),
        content_encoding: overrides
            .content_encoding
            .or_else(|| stored.content_encoding.clone()),
        content_language: overrides
            .content_language
            .or_else(|| stored.content_language.clone()),
        content_type: overrides
            .content_type
            .or_else(|| stored.content_type.clone())
            .or_else(|| Some(DEFAULT_CONTENT_TYPE.to_owned())),
        expires: overrides
            .expires
            .or_else(|| stored.expires_ms.map(timestamp)),
        metadata,
        checksums,
    }
}

fn checksum_mode(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|mode| mode.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED))
}

fn partial_content<T>(output: T, is_partial: bool) -> S3Response<T> {
    if is_partial {
        S3Response::with_status(output, hyper::StatusCode::PARTIAL_CONTENT)
    } else {
        S3Response::new(output)
    }
}

pub(crate) fn sorted_metadata(metadata: Option<Metadata>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    pairs.sort();
    pairs
}

pub(crate) fn copy_source(source: &CopySource) -> S3Result<(&str, &str)> {
    match source {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => {
            if version_id.as_deref().is_some_and(|id| id != "null") {
                return Err(s3_error!(NoSuchVersion, "versioning is not enabled"));
            }
            Ok((bucket, key))
        }
        _ => Err(s3_error!(
            NotImplemented,
            "copy sources other than bucket/key are not supported"
        )),
    }
}

/// Write options this store does not have: refused, never silently dropped.
pub(crate) fn refuse_unsupported_write(
    acl: Option<&str>,
    storage_class: Option<&str>,
    encryption: bool,
    tagging: bool,
    object_lock: bool,
    redirect: bool,
) -> S3Result<()> {
    let unsupported = |what: &str| -> S3Error {
        s3_error!(NotImplemented, "{what} is not supported by lightningstor")
    };
    if let Some(acl) = acl
        && !matches!(acl, "private" | "bucket-owner-full-control")
    {
        return Err(unsupported("an object ACL other than private"));
    }
    if let Some(class) = storage_class
        && class != "STANDARD"
    {
        return Err(unsupported("a storage class other than STANDARD"));
    }
    if encryption {
        return Err(unsupported("server-side encryption"));
    }
    if tagging {
        return Err(unsupported("object tagging"));
    }
    if object_lock {
        return Err(unsupported("object lock"));
    }
    if redirect {
        return Err(unsupported("website redirects"));
    }
    Ok(())
}
