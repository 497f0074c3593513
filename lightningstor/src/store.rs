//! The object store behind the S3 API: metadata, blobs, and the locks that make each change
//! to one key (or one upload) happen as a whole.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use s3s::dto::Timestamp;
use s3s::{S3Error, s3_error};
use tokio::sync::{Mutex, MutexGuard, RwLock};

use crate::blobs::{BlobStore, IngestError};
use crate::meta::{Batch, MetaError, MetadataStore};
use crate::metrics::S3Metrics;

/// S3's limit for one PUT or one part.
pub const MAX_PART_SIZE: u64 = 5 << 30;
/// S3's limit for one object.
pub const MAX_OBJECT_SIZE: u64 = 5 << 40;
/// Every part but the last must be at least this big.
pub const MIN_PART_SIZE: u64 = 5 << 20;
pub const MAX_PART_NUMBER: i32 = 10_000;
/// Pages of listings hold at most this many entries.
pub const MAX_LIST_KEYS: i32 = 1000;

pub struct Store {
    pub meta: Arc<dyn MetadataStore>,
    pub blobs: BlobStore,
    pub metrics: S3Metrics,
    pub inline_threshold: u64,
    pub region: String,
    /// The owner reported in listings: one account owns everything standalone.
    pub owner_id: String,
    locks: KeyLocks,
    /// Object writes hold it shared, bucket creation and deletion exclusively, so a bucket is
    /// never deleted under a write that found it.
    buckets: RwLock<()>,
}

impl Store {
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        blobs: BlobStore,
        metrics: S3Metrics,
        inline_threshold: u64,
        region: String,
        owner_id: String,
    ) -> Self {
        Self {
            meta,
            blobs,
            metrics,
            inline_threshold,
            region,
            owner_id,
            locks: KeyLocks::new(),
            buckets: RwLock::new(()),
        }
    }

    pub async fn bucket_writes(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.buckets.read().await
    }

    pub async fn bucket_changes(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.buckets.write().await
    }

    /// Serialises changes to one name (an object key, an upload id).
    pub async fn lock(&self, scope: &str, name: &str) -> MutexGuard<'_, ()> {
        self.locks.lock(scope, name).await
    }

    pub async fn require_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        match self.meta.get_bucket(bucket).await.map_err(meta_error)? {
            Some(_) => Ok(()),
            None => Err(s3_error!(
                NoSuchBucket,
                "The specified bucket does not exist: {bucket}"
            )),
        }
    }

    /// Commits `batch`, then deletes the blob files it released.
    pub async fn commit(&self, batch: Batch) -> Result<(), S3Error> {
        let released = batch.released_blobs();
        self.meta.commit(batch).await.map_err(meta_error)?;
        self.blobs.delete(&released).await;
        Ok(())
    }
}

/// A fixed set of mutexes indexed by the hash of a name: memory stays constant however many
/// keys exist, and unrelated keys rarely share a stripe.
struct KeyLocks {
    stripes: Vec<Mutex<()>>,
}

impl KeyLocks {
    const STRIPES: usize = 1024;

    fn new() -> Self {
        Self {
            stripes: (0..Self::STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    async fn lock(&self, scope: &str, name: &str) -> MutexGuard<'_, ()> {
        let mut hasher = rustc_hash::FxHasher::default();
        (scope, name).hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % Self::STRIPES as u64).unwrap_or(0);
        self.stripes[index].lock().await
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

pub fn timestamp(ms: i64) -> Timestamp {
    let since_epoch = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    Timestamp::from(UNIX_EPOCH + since_epoch)
}

/// Milliseconds since the epoch of an S3 timestamp.
pub fn timestamp_ms(timestamp: &Timestamp) -> i64 {
    let time: time::OffsetDateTime = timestamp.clone().into();
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A metadata failure is the server's fault: logged in full, answered InternalError.
pub fn meta_error(err: MetaError) -> S3Error {
    tracing::error!("metadata store failed: {err}");
    s3_error!(InternalError, "metadata store failure; see the server log")
}

pub fn ingest_error(err: IngestError) -> S3Error {
    match err {
        IngestError::TooLarge { limit } => s3_error!(
            EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed size ({limit} bytes)"
        ),
        IngestError::Body(reason) => {
            tracing::info!("request body ended early: {reason}");
            s3_error!(IncompleteBody, "{reason}")
        }
        IngestError::Io(err) => {
            tracing::error!("writing object data failed: {err}");
            s3_error!(InternalError, "storage failure; see the server log")
        }
    }
}
