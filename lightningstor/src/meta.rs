//! What lightningstor knows about buckets, objects, uploads and keys, and the [`MetadataStore`]
//! seam it is kept behind (RocksDB standalone; chainfire with integration).
//!
//! Every change is a [`Batch`] committed atomically, so a crash leaves either all of a change or
//! none of it. Data files are referenced by [`BlobId`]; a blob exists in the store's blob set
//! exactly while some record points at it, which is what start-up's orphan sweep relies on.

pub mod rocks;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A data file's name: random, so a key never becomes a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlobId(pub u128);

impl BlobId {
    pub fn random() -> Self {
        Self(rand::random())
    }

    pub fn parse(hex_name: &str) -> Option<Self> {
        (hex_name.len() == 32)
            .then(|| u128::from_str_radix(hex_name, 16).ok())
            .flatten()
            .map(Self)
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// Where an object's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// Small objects live in the record itself.
    Inline(Vec<u8>),
    /// One blob per single-part object, one per part (in order) for multipart objects.
    Blobs(Vec<Segment>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub blob: BlobId,
    pub size: u64,
}

impl Content {
    pub fn blobs(&self) -> impl Iterator<Item = BlobId> + '_ {
        let segments: &[Segment] = match self {
            Content::Inline(_) => &[],
            Content::Blobs(segments) => segments,
        };
        segments.iter().map(|segment| segment.blob)
    }
}

/// Checksums as S3 returns them: base64 of the digest; for multipart objects, the composite
/// form `base64(digest of part digests)-N`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksums {
    pub crc32: Option<String>,
    pub crc32c: Option<String>,
    pub crc64nvme: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    /// `FULL_OBJECT` or `COMPOSITE`; unset when there is no checksum.
    pub checksum_type: Option<String>,
}

/// The HTTP headers S3 keeps with an object and returns on GET and HEAD.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectHeaders {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub expires_ms: Option<i64>,
    /// `x-amz-meta-*`, names lower-case without the prefix, sorted by name.
    pub user_metadata: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub size: u64,
    /// Without quotes: the MD5 hex of a single-part object, `<md5 of part md5s>-N` for N parts.
    pub etag: String,
    pub last_modified_ms: i64,
    pub content: Content,
    pub headers: ObjectHeaders,
    pub checksums: Checksums,
    /// Completed from a multipart upload: each segment of `content` is one part.
    pub multipart: bool,
}

impl ObjectRecord {
    /// The sizes of the parts a `partNumber` GET addresses: a single-part object is one part.
    pub fn part_sizes(&self) -> Vec<u64> {
        match &self.content {
            Content::Blobs(segments) if self.multipart => {
                segments.iter().map(|segment| segment.size).collect()
            }
            _ => vec![self.size],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    pub headers: ObjectHeaders,
    /// The checksum algorithm named at CreateMultipartUpload (upper case), if any.
    pub checksum_algorithm: Option<String>,
    pub checksum_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub size: u64,
    /// MD5 hex of the part, without quotes.
    pub etag: String,
    pub last_modified_ms: i64,
    pub blob: BlobId,
    pub checksums: Checksums,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    pub secret_key: String,
    pub description: String,
    pub created_ms: i64,
}

/// Objects and bytes stored in a bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub objects: i64,
    pub bytes: i64,
}

/// One change of an atomic [`Batch`].
#[derive(Debug, Clone)]
pub enum Op {
    PutBucket(String, BucketRecord),
    /// Also forgets the bucket's usage counters.
    DeleteBucket(String),
    PutObject(String, String, Box<ObjectRecord>),
    DeleteObject(String, String),
    PutUpload(String, Box<UploadRecord>),
    /// Removes the upload and its listing entry (the parts are deleted one by one).
    DeleteUpload(String, Box<UploadRecord>),
    PutPart(String, u32, Box<PartRecord>),
    DeletePart(String, u32),
    /// The blob is referenced from now on.
    AddBlob(BlobId),
    /// Nothing references the blob any more; its file may go.
    RemoveBlob(BlobId),
    /// Adds to a bucket's usage counters.
    AddUsage(String, Usage),
    PutAccessKey(String, AccessKeyRecord),
    DeleteAccessKey(String),
}

#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub ops: Vec<Op>,
}

impl Batch {
    pub fn push(&mut self, op: Op) -> &mut Self {
        self.ops.push(op);
        self
    }

    /// Records `record` at `bucket`/`key`, replacing `previous` (whose blobs are released and
    /// whose size leaves the usage counters).
    pub fn replace_object(
        &mut self,
        bucket: &str,
        key: &str,
        record: ObjectRecord,
        previous: Option<&ObjectRecord>,
    ) -> &mut Self {
        let mut usage = Usage {
            objects: 1,
            bytes: size_as_i64(record.size),
        };
        if let Some(previous) = previous {
            usage.objects -= 1;
            usage.bytes -= size_as_i64(previous.size);
            self.release_blobs(previous);
        }
        for blob in record.content.blobs() {
            self.push(Op::AddBlob(blob));
        }
        self.push(Op::PutObject(
            bucket.to_owned(),
            key.to_owned(),
            Box::new(record),
        ));
        self.push(Op::AddUsage(bucket.to_owned(), usage))
    }

    /// Deletes the object `previous` stored at `bucket`/`key`.
    pub fn delete_object(&mut self, bucket: &str, key: &str, previous: &ObjectRecord) -> &mut Self {
        self.release_blobs(previous);
        self.push(Op::DeleteObject(bucket.to_owned(), key.to_owned()));
        self.push(Op::AddUsage(
            bucket.to_owned(),
            Usage {
                objects: -1,
                bytes: -size_as_i64(previous.size),
            },
        ))
    }

    fn release_blobs(&mut self, record: &ObjectRecord) {
        for blob in record.content.blobs() {
            self.push(Op::RemoveBlob(blob));
        }
    }

    /// The blobs this batch releases: their files can be deleted once it is committed.
    pub fn released_blobs(&self) -> Vec<BlobId> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                Op::RemoveBlob(blob) => Some(*blob),
                _ => None,
            })
            .collect()
    }
}

fn size_as_i64(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// A listing entry: the key and its record.
pub type Listed<T> = (String, T);

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata store: {0}")]
    Store(String),
    #[error("metadata record {what} cannot be decoded: {reason}")]
    Corrupt { what: String, reason: String },
}

/// Where lightningstor keeps its metadata. Reads see every committed batch (read-after-write).
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    async fn get_bucket(&self, bucket: &str) -> Result<Option<BucketRecord>, MetaError>;
    async fn list_buckets(&self) -> Result<Vec<Listed<BucketRecord>>, MetaError>;
    async fn usage(&self, bucket: &str) -> Result<Usage, MetaError>;
    /// No object and no multipart upload in the bucket.
    async fn bucket_is_empty(&self, bucket: &str) -> Result<bool, MetaError>;

    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, MetaError>;
    /// Up to `limit` objects whose key bytes are `>= from` (`> from` when not `inclusive`), in
    /// byte order.
    async fn list_objects(
        &self,
        bucket: &str,
        from: &[u8],
        inclusive: bool,
        limit: usize,
    ) -> Result<Vec<Listed<ObjectRecord>>, MetaError>;

    async fn get_upload(&self, upload_id: &str) -> Result<Option<UploadRecord>, MetaError>;
    /// Up to `limit` uploads of `bucket` after (`key`, `upload_id`), ordered by key then
    /// initiation; returns (upload id, record).
    async fn list_uploads(
        &self,
        bucket: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Listed<UploadRecord>>, MetaError>;
    /// Every upload initiated before `before_ms`, for the abandoned-upload cleanup.
    async fn uploads_initiated_before(
        &self,
        before_ms: i64,
    ) -> Result<Vec<Listed<UploadRecord>>, MetaError>;
    /// Up to `limit` parts numbered above `after`, in order.
    async fn list_parts(
        &self,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> Result<Vec<(u32, PartRecord)>, MetaError>;
    async fn get_part(&self, upload_id: &str, part: u32) -> Result<Option<PartRecord>, MetaError>;

    /// Whether some committed record references `blob`.
    async fn has_blob(&self, blob: BlobId) -> Result<bool, MetaError>;

    async fn get_access_key(&self, access_key: &str) -> Result<Option<AccessKeyRecord>, MetaError>;
    async fn list_access_keys(&self) -> Result<Vec<Listed<AccessKeyRecord>>, MetaError>;

    /// Applies every op of `batch` or none; durable when it returns (if the store syncs).
    async fn commit(&self, batch: Batch) -> Result<(), MetaError>;
}
