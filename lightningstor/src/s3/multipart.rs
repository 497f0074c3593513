//! Multipart uploads: each part is a blob of its own, and completion only writes metadata:
//! the object's content becomes the list of its parts' blobs, so nothing is copied.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::objects::{
    WriteConditions, copy_conditions, copy_source, refuse_unsupported, sorted_metadata,
};
use crate::integrity::{self, Algorithm, COMPOSITE, Expected, FULL_OBJECT, PartChecksum};
use crate::meta::{
    Batch, BlobId, Checksums, Content, ObjectHeaders, ObjectRecord, Op, PartRecord, Segment,
    UploadRecord,
};
use crate::store::{
    MAX_LIST_KEYS, MAX_OBJECT_SIZE, MAX_PART_NUMBER, MAX_PART_SIZE, MIN_PART_SIZE, Store,
    ingest_error, meta_error, now_ms, timestamp, timestamp_ms,
};

impl Store {
    pub async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let input = req.input;
        refuse_unsupported!(input)?;
        self.require_bucket(&input.bucket).await?;
        let algorithm = input
            .checksum_algorithm
            .as_ref()
            .map(|algorithm| {
                Algorithm::parse(algorithm.as_str()).ok_or_else(|| {
                    s3_error!(
                        InvalidArgument,
                        "unknown checksum algorithm {}",
                        algorithm.as_str()
                    )
                })
            })
            .transpose()?;
        let checksum_type = match (&algorithm, input.checksum_type.as_ref()) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(s3_error!(
                    InvalidRequest,
                    "x-amz-checksum-type needs x-amz-checksum-algorithm"
                ));
            }
            (Some(algorithm), kind) => {
                let kind = kind.map_or_else(
                    // AWS's default: full-object for CRC64NVME, composite for the others.
                    || {
                        if *algorithm == Algorithm::Crc64Nvme {
                            FULL_OBJECT
                        } else {
                            COMPOSITE
                        }
                    },
                    ChecksumType::as_str,
                );
                if kind != FULL_OBJECT && kind != COMPOSITE {
                    return Err(s3_error!(InvalidRequest, "unknown checksum type {kind}"));
                }
                Some(kind.to_owned())
            }
        };
        let upload_id = BlobId::random().to_string();
        let record = UploadRecord {
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            initiated_ms: now_ms(),
            headers: ObjectHeaders {
                content_type: input.content_type,
                content_encoding: input.content_encoding,
                content_disposition: input.content_disposition,
                content_language: input.content_language,
                cache_control: input.cache_control,
                expires_ms: input.expires.as_ref().map(timestamp_ms),
                user_metadata: sorted_metadata(input.metadata),
            },
            checksum_algorithm: algorithm.map(|algorithm| algorithm.name().to_owned()),
            checksum_type: checksum_type.clone(),
        };
        let mut batch = Batch::default();
        batch.push(Op::PutUpload(upload_id.clone(), Box::new(record)));
        self.commit(batch).await?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            checksum_algorithm: algorithm
                .map(|algorithm| ChecksumAlgorithm::from(algorithm.name().to_owned())),
            checksum_type: checksum_type.map(ChecksumType::from),
            ..Default::default()
        }))
    }

    /// The upload `upload_id` of `bucket`/`key`, or NoSuchUpload.
    async fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> S3Result<UploadRecord> {
        self.require_bucket(bucket).await?;
        match self.meta.get_upload(upload_id).await.map_err(meta_error)? {
            Some(upload) if upload.bucket == bucket && upload.key == key => Ok(upload),
            _ => Err(s3_error!(
                NoSuchUpload,
                "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
            )),
        }
    }

    pub async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let expected = Expected::from_headers(&req.headers)?;
        let trailers = req.trailing_headers.clone();
        let input = req.input;
        let number = part_number(input.part_number)?;
        if input
            .content_length
            .is_some_and(|length| length > MAX_PART_SIZE as i64)
        {
            return Err(s3_error!(
                EntityTooLarge,
                "a part is limited to {MAX_PART_SIZE} bytes"
            ));
        }
        let upload = self
            .upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        let upload_algorithm = upload
            .checksum_algorithm
            .as_deref()
            .and_then(Algorithm::parse);
        let body = input
            .body
            .ok_or_else(|| s3_error!(IncompleteBody, "UploadPart needs a body"))?;
        let extra: Vec<Algorithm> = upload_algorithm.into_iter().collect();
        let ingested = self
            .blobs
            .ingest(body, MAX_PART_SIZE, None, expected.hasher(&extra))
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
        let Content::Blobs(segments) = &ingested.content else {
            unreachable!("parts are ingested without an inline threshold");
        };
        let part = PartRecord {
            size: ingested.size,
            etag: integrity::md5_etag(&ingested.md5),
            last_modified_ms: now_ms(),
            blob: segments[0].blob,
            checksums,
        };
        let output = UploadPartOutput {
            e_tag: Some(ETag::Strong(part.etag.clone())),
            checksum_crc32: part.checksums.crc32.clone(),
            checksum_crc32c: part.checksums.crc32c.clone(),
            checksum_crc64nvme: part.checksums.crc64nvme.clone(),
            checksum_sha1: part.checksums.sha1.clone(),
            checksum_sha256: part.checksums.sha256.clone(),
            ..Default::default()
        };
        self.store_part(&input.upload_id, number, part).await?;
        Ok(S3Response::new(output))
    }

    /// Commits part `number` of `upload_id`, replacing an earlier upload of the same number.
    async fn store_part(&self, upload_id: &str, number: u32, part: PartRecord) -> S3Result<()> {
        let _upload_guard = self.lock("upload", upload_id).await;
        if self
            .meta
            .get_upload(upload_id)
            .await
            .map_err(meta_error)?
            .is_none()
        {
            // Completed or aborted while this part was arriving.
            self.blobs.delete(&[part.blob]).await;
            return Err(s3_error!(
                NoSuchUpload,
                "The specified multipart upload does not exist."
            ));
        }
        let mut batch = Batch::default();
        if let Some(previous) = self
            .meta
            .get_part(upload_id, number)
            .await
            .map_err(meta_error)?
        {
            batch.push(Op::RemoveBlob(previous.blob));
        }
        batch.push(Op::AddBlob(part.blob));
        batch.push(Op::PutPart(upload_id.to_owned(), number, Box::new(part)));
        self.commit(batch).await
    }

    pub async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;
        let number = part_number(input.part_number)?;
        let upload = self
            .upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        let (source_bucket, source_key) = copy_source(&input.copy_source)?;
        let source = self
            .copy_source_record(source_bucket, source_key, &copy_conditions!(input))
            .await?;
        let range = match &input.copy_source_range {
            Some(range) => parse_copy_range(range, source.size)?,
            None => 0..source.size,
        };
        if range.end - range.start > MAX_PART_SIZE {
            return Err(s3_error!(
                InvalidRequest,
                "a part is limited to {MAX_PART_SIZE} bytes"
            ));
        }
        let algorithms: Vec<Algorithm> = upload
            .checksum_algorithm
            .as_deref()
            .and_then(Algorithm::parse)
            .into_iter()
            .collect();
        let copied = self.copy_bytes(&source, range, &algorithms, None).await?;
        let Content::Blobs(segments) = &copied.content else {
            unreachable!("parts are copied without an inline threshold");
        };
        let part = PartRecord {
            size: copied.size,
            etag: copied.etag.clone(),
            last_modified_ms: copied.last_modified_ms,
            blob: segments[0].blob,
            checksums: copied.checksums.clone(),
        };
        let output = UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(part.etag.clone())),
                last_modified: Some(timestamp(part.last_modified_ms)),
                checksum_crc32: part.checksums.crc32.clone(),
                checksum_crc32c: part.checksums.crc32c.clone(),
                checksum_crc64nvme: part.checksums.crc64nvme.clone(),
                checksum_sha1: part.checksums.sha1.clone(),
                checksum_sha256: part.checksums.sha256.clone(),
            }),
            ..Default::default()
        };
        self.store_part(&input.upload_id, number, part).await?;
        Ok(S3Response::new(output))
    }

    pub async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let requested = input
            .multipart_upload
            .and_then(|upload| upload.parts)
            .unwrap_or_default();
        if requested.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "You must specify at least one part"
            ));
        }
        let _upload_guard = self.lock("upload", &input.upload_id).await;
        let upload = self
            .upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        let stored = self
            .meta
            .list_parts(&input.upload_id, 0, usize::MAX)
            .await
            .map_err(meta_error)?;
        let mut chosen: Vec<(u32, &PartRecord)> = Vec::with_capacity(requested.len());
        for wanted in &requested {
            let number = part_number(wanted.part_number.unwrap_or(0))?;
            if chosen
                .last()
                .is_some_and(|(previous, _)| *previous >= number)
            {
                return Err(s3_error!(
                    InvalidPartOrder,
                    "The list of parts was not in ascending order. The parts list must be specified in order by part number."
                ));
            }
            let invalid = || {
                s3_error!(
                    InvalidPart,
                    "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
                )
            };
            let part = stored
                .iter()
                .find(|(stored_number, _)| *stored_number == number)
                .map(|(_, part)| part)
                .ok_or_else(invalid)?;
            if wanted
                .e_tag
                .as_ref()
                .is_some_and(|etag| etag.value() != part.etag)
            {
                return Err(invalid());
            }
            let claimed = [
                (Algorithm::Crc32, &wanted.checksum_crc32),
                (Algorithm::Crc32c, &wanted.checksum_crc32c),
                (Algorithm::Crc64Nvme, &wanted.checksum_crc64nvme),
                (Algorithm::Sha1, &wanted.checksum_sha1),
                (Algorithm::Sha256, &wanted.checksum_sha256),
            ];
            for (algorithm, value) in claimed {
                if let Some(value) = value
                    && algorithm.get(&part.checksums) != Some(value)
                {
                    return Err(invalid());
                }
            }
            chosen.push((number, part));
        }
        for (index, (number, part)) in chosen.iter().enumerate() {
            if index + 1 < chosen.len() && part.size < MIN_PART_SIZE {
                return Err(s3_error!(
                    EntityTooSmall,
                    "Your proposed upload (part {number}, {} bytes) is smaller than the minimum allowed size of {MIN_PART_SIZE} bytes",
                    part.size
                ));
            }
        }
        let size: u64 = chosen.iter().map(|(_, part)| part.size).sum();
        if size > MAX_OBJECT_SIZE {
            return Err(s3_error!(
                EntityTooLarge,
                "an object is limited to {MAX_OBJECT_SIZE} bytes"
            ));
        }
        if let Some(expected) = input.mpu_object_size
            && i64::try_from(size).ok() != Some(expected)
        {
            return Err(s3_error!(
                InvalidRequest,
                "x-amz-mp-object-size is {expected} but the parts add up to {size} bytes"
            ));
        }
        let checksums = match (
            upload
                .checksum_algorithm
                .as_deref()
                .and_then(Algorithm::parse),
            upload.checksum_type.as_deref(),
        ) {
            (Some(algorithm), Some(kind)) => {
                let parts: Vec<PartChecksum<'_>> = chosen
                    .iter()
                    .map(|(_, part)| PartChecksum {
                        size: part.size,
                        checksums: &part.checksums,
                    })
                    .collect();
                integrity::multipart_checksum(algorithm, kind, &parts)?
            }
            _ => Checksums::default(),
        };
        let etags: Vec<&str> = chosen.iter().map(|(_, part)| part.etag.as_str()).collect();
        let record = ObjectRecord {
            size,
            etag: integrity::multipart_etag(&etags),
            last_modified_ms: now_ms(),
            content: Content::Blobs(
                chosen
                    .iter()
                    .map(|(_, part)| Segment {
                        blob: part.blob,
                        size: part.size,
                    })
                    .collect(),
            ),
            headers: upload.headers.clone(),
            checksums,
            multipart: true,
        };
        let output = CompleteMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(ETag::Strong(record.etag.clone())),
            location: Some(format!("/{}/{}", input.bucket, input.key)),
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
            ..Default::default()
        };
        let used: Vec<BlobId> = chosen.iter().map(|(_, part)| part.blob).collect();
        let conditions = WriteConditions {
            if_match: input.if_match,
            if_none_match: input.if_none_match,
        };
        let _bucket_guard = self.bucket_writes().await;
        let _key_guard = self
            .lock(
                "object",
                &super::objects::object_lock_name(&input.bucket, &input.key),
            )
            .await;
        let previous = self
            .meta
            .get_object(&input.bucket, &input.key)
            .await
            .map_err(meta_error)?;
        // A refused condition keeps the upload, as S3 does, so it can be retried.
        conditions.check(previous.as_ref())?;
        let mut batch = Batch::default();
        for (number, part) in &stored {
            batch.push(Op::DeletePart(input.upload_id.clone(), *number));
            if !used.contains(&part.blob) {
                batch.push(Op::RemoveBlob(part.blob));
            }
        }
        batch.push(Op::DeleteUpload(input.upload_id.clone(), Box::new(upload)));
        batch.replace_object(&input.bucket, &input.key, record, previous.as_ref());
        self.commit(batch).await?;
        Ok(S3Response::new(output))
    }

    pub async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        let _upload_guard = self.lock("upload", &input.upload_id).await;
        let upload = self
            .upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        self.remove_upload(&input.upload_id, upload).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    /// Deletes an upload with its parts (the caller holds the upload's lock).
    async fn remove_upload(&self, upload_id: &str, upload: UploadRecord) -> S3Result<()> {
        let parts = self
            .meta
            .list_parts(upload_id, 0, usize::MAX)
            .await
            .map_err(meta_error)?;
        let mut batch = Batch::default();
        for (number, part) in parts {
            batch.push(Op::DeletePart(upload_id.to_owned(), number));
            batch.push(Op::RemoveBlob(part.blob));
        }
        batch.push(Op::DeleteUpload(upload_id.to_owned(), Box::new(upload)));
        self.commit(batch).await
    }

    /// Aborts uploads initiated more than `max_age_ms` ago; returns how many.
    pub async fn abort_abandoned_uploads(&self, max_age_ms: i64) -> S3Result<usize> {
        let stale = self
            .meta
            .uploads_initiated_before(now_ms() - max_age_ms)
            .await
            .map_err(meta_error)?;
        let mut aborted = 0;
        for (upload_id, _) in stale {
            let _upload_guard = self.lock("upload", &upload_id).await;
            // Re-read under the lock: it may have completed meanwhile.
            if let Some(upload) = self.meta.get_upload(&upload_id).await.map_err(meta_error)? {
                tracing::info!(
                    bucket = %upload.bucket,
                    key = %upload.key,
                    upload_id = %upload_id,
                    "aborting abandoned multipart upload"
                );
                self.remove_upload(&upload_id, upload).await?;
                aborted += 1;
            }
        }
        Ok(aborted)
    }

    pub async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let upload = self
            .upload(&input.bucket, &input.key, &input.upload_id)
            .await?;
        let max_parts = input
            .max_parts
            .unwrap_or(MAX_LIST_KEYS)
            .clamp(0, MAX_LIST_KEYS);
        let marker = input
            .part_number_marker
            .map(|marker| u32::try_from(marker).unwrap_or(0))
            .unwrap_or(0);
        let limit = usize::try_from(max_parts).unwrap_or(0);
        let mut parts = self
            .meta
            .list_parts(&input.upload_id, marker, limit + 1)
            .await
            .map_err(meta_error)?;
        let truncated = parts.len() > limit;
        parts.truncate(limit);
        let next = parts.last().map(|(number, _)| *number);
        let parts = parts
            .into_iter()
            .map(|(number, part)| Part {
                e_tag: Some(ETag::Strong(part.etag)),
                last_modified: Some(timestamp(part.last_modified_ms)),
                part_number: i32::try_from(number).ok(),
                size: i64::try_from(part.size).ok(),
                checksum_crc32: part.checksums.crc32,
                checksum_crc32c: part.checksums.crc32c,
                checksum_crc64nvme: part.checksums.crc64nvme,
                checksum_sha1: part.checksums.sha1,
                checksum_sha256: part.checksums.sha256,
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(max_parts),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: next.and_then(|number| i32::try_from(number).ok()),
            is_truncated: Some(truncated),
            parts: Some(parts),
            owner: Some(self.owner()),
            initiator: Some(Initiator {
                display_name: Some(self.owner_id.clone()),
                id: Some(self.owner_id.clone()),
            }),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            checksum_algorithm: upload.checksum_algorithm.map(ChecksumAlgorithm::from),
            checksum_type: upload.checksum_type.map(ChecksumType::from),
            ..Default::default()
        }))
    }

    pub async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        self.require_bucket(&input.bucket).await?;
        let max_uploads = input
            .max_uploads
            .unwrap_or(MAX_LIST_KEYS)
            .clamp(0, MAX_LIST_KEYS);
        let limit = usize::try_from(max_uploads).unwrap_or(0);
        let prefix = input.prefix.clone().unwrap_or_default();
        let delimiter = input
            .delimiter
            .clone()
            .filter(|delimiter| !delimiter.is_empty());
        // Uploads are few: without a marker the scan starts at the bucket's first upload and
        // skips keys before the prefix.
        let mut cursor = input.key_marker.as_deref().map(|key| {
            (
                key.to_owned(),
                input.upload_id_marker.clone().unwrap_or_default(),
            )
        });
        let mut uploads = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        let mut truncated = false;
        'fetch: loop {
            let batch = self
                .meta
                .list_uploads(
                    &input.bucket,
                    cursor.as_ref().map(|(key, id)| (key.as_str(), id.as_str())),
                    MAX_LIST_KEYS as usize,
                )
                .await
                .map_err(meta_error)?;
            let exhausted = batch.len() < MAX_LIST_KEYS as usize;
            for (upload_id, upload) in batch {
                cursor = Some((upload.key.clone(), upload_id.clone()));
                if !upload.key.starts_with(&prefix) {
                    if upload.key.as_str() > prefix.as_str() {
                        break 'fetch;
                    }
                    continue;
                }
                let common = delimiter.as_deref().and_then(|delimiter| {
                    upload.key[prefix.len()..]
                        .find(delimiter)
                        .map(|at| upload.key[..prefix.len() + at + delimiter.len()].to_owned())
                });
                if let Some(common) = &common
                    && prefixes.last() == Some(common)
                {
                    continue;
                }
                if uploads.len() + prefixes.len() == limit {
                    truncated = true;
                    break 'fetch;
                }
                match common {
                    Some(common) => prefixes.push(common),
                    None => uploads.push((upload_id, upload)),
                }
            }
            if exhausted {
                break;
            }
        }
        let next = uploads
            .last()
            .map(|(id, upload): &(String, UploadRecord)| (upload.key.clone(), id.clone()));
        let uploads: Vec<MultipartUpload> = uploads
            .into_iter()
            .map(|(upload_id, upload)| MultipartUpload {
                checksum_algorithm: upload.checksum_algorithm.map(ChecksumAlgorithm::from),
                checksum_type: upload.checksum_type.map(ChecksumType::from),
                initiated: Some(timestamp(upload.initiated_ms)),
                initiator: Some(Initiator {
                    display_name: Some(self.owner_id.clone()),
                    id: Some(self.owner_id.clone()),
                }),
                key: Some(upload.key),
                owner: Some(self.owner()),
                storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                upload_id: Some(upload_id),
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            common_prefixes: Some(
                prefixes
                    .into_iter()
                    .map(|prefix| CommonPrefix {
                        prefix: Some(prefix),
                    })
                    .collect(),
            ),
            delimiter: input.delimiter,
            encoding_type: input.encoding_type,
            is_truncated: Some(truncated),
            key_marker: input.key_marker,
            max_uploads: Some(max_uploads),
            next_key_marker: truncated
                .then(|| next.clone().map(|(key, _)| key))
                .flatten(),
            next_upload_id_marker: truncated.then(|| next.map(|(_, id)| id)).flatten(),
            prefix: input.prefix,
            upload_id_marker: input.upload_id_marker,
            uploads: Some(uploads),
            ..Default::default()
        }))
    }
}

fn part_number(number: PartNumber) -> S3Result<u32> {
    if !(1..=MAX_PART_NUMBER).contains(&number) {
        return Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive"
        ));
    }
    Ok(u32::try_from(number).unwrap_or(1))
}

/// `x-amz-copy-source-range: bytes=first-last`, both bounds required, within the source.
fn parse_copy_range(range: &str, size: u64) -> S3Result<std::ops::Range<u64>> {
    let invalid = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
        )
    };
    let (first, last) = range
        .strip_prefix("bytes=")
        .and_then(|bounds| bounds.split_once('-'))
        .ok_or_else(invalid)?;
    let first: u64 = first.parse().map_err(|_| invalid())?;
    let last: u64 = last.parse().map_err(|_| invalid())?;
    if first > last || last >= size {
        return Err(s3_error!(
            InvalidRange,
            "The requested range is not satisfiable"
        ));
    }
    Ok(first..last + 1)
}
