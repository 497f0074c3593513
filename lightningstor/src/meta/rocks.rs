//! The standalone [`MetadataStore`]: RocksDB, one column family per kind of record.
//!
//! Object keys are stored as `bucket NUL key`: bucket names never contain NUL, so one bucket's
//! objects are one contiguous range, iterated in the key's byte order (S3's UTF-8 binary
//! order). Records are `FORMAT_VERSION` followed by bincode, so a future format is recognised
//! instead of misread.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, Direction, IteratorMode, MergeOperands,
    Options, ReadOptions, WriteBatch, WriteOptions,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    AccessKeyRecord, Batch, BlobId, BucketRecord, Listed, MetaError, MetadataStore, ObjectRecord,
    Op, PartRecord, UploadRecord, Usage,
};

const BUCKETS: &str = "buckets";
const OBJECTS: &str = "objects";
const UPLOADS: &str = "uploads";
/// `bucket NUL key NUL initiated_ms(be) upload_id` → upload id: ListMultipartUploads order.
const UPLOADS_BY_KEY: &str = "uploads_by_key";
const PARTS: &str = "parts";
const BLOBS: &str = "blobs";
const USAGE: &str = "usage";
const ACCESS_KEYS: &str = "access_keys";
const FAMILIES: [&str; 8] = [
    BUCKETS,
    OBJECTS,
    UPLOADS,
    UPLOADS_BY_KEY,
    PARTS,
    BLOBS,
    USAGE,
    ACCESS_KEYS,
];

const FORMAT_VERSION: u8 = 1;

pub struct RocksMetadata {
    db: Arc<DB>,
    sync: bool,
}

impl RocksMetadata {
    /// Opens (or creates) the store at `path` with a `cache_size_mb` block cache. With `sync`,
    /// every commit is on disk before it returns.
    pub fn open(path: &Path, cache_size_mb: u64, sync: bool) -> Result<Self, MetaError> {
        let cache =
            Cache::new_lru_cache(usize::try_from(cache_size_mb << 20).unwrap_or(usize::MAX));
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        let family_options = || {
            let mut options = Options::default();
            options.set_block_based_table_factory(&table);
            options.set_compression_type(rocksdb::DBCompressionType::Lz4);
            options
        };
        let mut options = family_options();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let families = FAMILIES.iter().map(|name| {
            let mut family = family_options();
            if *name == USAGE {
                family.set_merge_operator_associative("usage_add", add_usage);
            }
            ColumnFamilyDescriptor::new(*name, family)
        });
        let db = DB::open_cf_descriptors(&options, path, families)
            .map_err(|err| MetaError::Store(format!("cannot open {}: {err}", path.display())))?;
        Ok(Self {
            db: Arc::new(db),
            sync,
        })
    }

    fn family(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("every column family is created at open")
    }

    fn get<T: DeserializeOwned>(&self, family: &str, key: &[u8]) -> Result<Option<T>, MetaError> {
        let value = self
            .db
            .get_pinned_cf(self.family(family), key)
            .map_err(store_error)?;
        value.map(|bytes| decode(family, key, &bytes)).transpose()
    }

    /// Up to `limit` entries of `family` from `start` while keys begin with `prefix`.
    fn scan<T: DeserializeOwned>(
        &self,
        family: &str,
        prefix: &[u8],
        start: &[u8],
        skip_start: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, T)>, MetaError> {
        let mut read = ReadOptions::default();
        if let Some(end) = prefix_end(prefix) {
            read.set_iterate_upper_bound(end);
        }
        let iter = self.db.iterator_cf_opt(
            self.family(family),
            read,
            IteratorMode::From(start, Direction::Forward),
        );
        let mut found = Vec::new();
        for entry in iter {
            let (key, value) = entry.map_err(store_error)?;
            if !key.starts_with(prefix) {
                break;
            }
            if skip_start && *key == *start {
                continue;
            }
            if found.len() == limit {
                break;
            }
            found.push((key.to_vec(), decode(family, &key, &value)?));
        }
        Ok(found)
    }

    fn any_with_prefix(&self, family: &str, prefix: &[u8]) -> Result<bool, MetaError> {
        let mut iter = self.db.iterator_cf(
            self.family(family),
            IteratorMode::From(prefix, Direction::Forward),
        );
        match iter.next() {
            Some(entry) => Ok(entry.map_err(store_error)?.0.starts_with(prefix)),
            None => Ok(false),
        }
    }

    fn apply(&self, batch: &Batch) -> Result<WriteBatch, MetaError> {
        let mut write = WriteBatch::default();
        for op in &batch.ops {
            match op {
                Op::PutBucket(name, record) => {
                    write.put_cf(self.family(BUCKETS), name, encode(record));
                }
                Op::DeleteBucket(name) => {
                    write.delete_cf(self.family(BUCKETS), name);
                    write.delete_cf(self.family(USAGE), name);
                }
                Op::PutObject(bucket, key, record) => {
                    write.put_cf(
                        self.family(OBJECTS),
                        object_key(bucket, key),
                        encode(record.as_ref()),
                    );
                }
                Op::DeleteObject(bucket, key) => {
                    write.delete_cf(self.family(OBJECTS), object_key(bucket, key));
                }
                Op::PutUpload(id, record) => {
                    write.put_cf(self.family(UPLOADS), id, encode(record.as_ref()));
                    write.put_cf(
                        self.family(UPLOADS_BY_KEY),
                        upload_index_key(id, record),
                        id,
                    );
                }
                Op::DeleteUpload(id, record) => {
                    write.delete_cf(self.family(UPLOADS), id);
                    write.delete_cf(self.family(UPLOADS_BY_KEY), upload_index_key(id, record));
                }
                Op::PutPart(id, number, record) => {
                    write.put_cf(
                        self.family(PARTS),
                        part_key(id, *number),
                        encode(record.as_ref()),
                    );
                }
                Op::DeletePart(id, number) => {
                    write.delete_cf(self.family(PARTS), part_key(id, *number));
                }
                Op::AddBlob(blob) => write.put_cf(self.family(BLOBS), blob.0.to_be_bytes(), []),
                Op::RemoveBlob(blob) => write.delete_cf(self.family(BLOBS), blob.0.to_be_bytes()),
                Op::AddUsage(bucket, usage) => {
                    write.merge_cf(self.family(USAGE), bucket, usage_bytes(*usage));
                }
                Op::PutAccessKey(key, record) => {
                    write.put_cf(self.family(ACCESS_KEYS), key, encode(record));
                }
                Op::DeleteAccessKey(key) => write.delete_cf(self.family(ACCESS_KEYS), key),
            }
        }
        Ok(write)
    }
}

#[async_trait]
impl MetadataStore for RocksMetadata {
    async fn get_bucket(&self, bucket: &str) -> Result<Option<BucketRecord>, MetaError> {
        self.get(BUCKETS, bucket.as_bytes())
    }

    async fn list_buckets(&self) -> Result<Vec<Listed<BucketRecord>>, MetaError> {
        let all = self.scan::<BucketRecord>(BUCKETS, b"", b"", false, usize::MAX)?;
        Ok(all
            .into_iter()
            .map(|(name, record)| (utf8(name), record))
            .collect())
    }

    async fn usage(&self, bucket: &str) -> Result<Usage, MetaError> {
        let bytes = self
            .db
            .get_pinned_cf(self.family(USAGE), bucket)
            .map_err(store_error)?;
        Ok(bytes.map(|bytes| parse_usage(&bytes)).unwrap_or_default())
    }

    async fn bucket_is_empty(&self, bucket: &str) -> Result<bool, MetaError> {
        let prefix = object_key(bucket, "");
        Ok(!self.any_with_prefix(OBJECTS, &prefix)?
            && !self.any_with_prefix(UPLOADS_BY_KEY, &prefix)?)
    }

    async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, MetaError> {
        self.get(OBJECTS, &object_key(bucket, key))
    }

    async fn list_objects(
        &self,
        bucket: &str,
        from: &[u8],
        inclusive: bool,
        limit: usize,
    ) -> Result<Vec<Listed<ObjectRecord>>, MetaError> {
        let prefix = object_key(bucket, "");
        let mut start = prefix.clone();
        start.extend_from_slice(from);
        let found = self.scan::<ObjectRecord>(OBJECTS, &prefix, &start, !inclusive, limit)?;
        Ok(found
            .into_iter()
            .map(|(key, record)| (utf8(key[prefix.len()..].to_vec()), record))
            .collect())
    }

    async fn get_upload(&self, upload_id: &str) -> Result<Option<UploadRecord>, MetaError> {
        self.get(UPLOADS, upload_id.as_bytes())
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Listed<UploadRecord>>, MetaError> {
        let prefix = object_key(bucket, "");
        let mut start = prefix.clone();
        if let Some((key, _)) = after {
            start.extend_from_slice(key.as_bytes());
        }
        let mut read = ReadOptions::default();
        if let Some(end) = prefix_end(&prefix) {
            read.set_iterate_upper_bound(end);
        }
        let iter = self.db.iterator_cf_opt(
            self.family(UPLOADS_BY_KEY),
            read,
            IteratorMode::From(&start, Direction::Forward),
        );
        let mut found = Vec::new();
        let mut passed_marker = after.is_none_or(|(_, id)| id.is_empty());
        for entry in iter {
            let (_, id) = entry.map_err(store_error)?;
            let id = utf8(id.to_vec());
            let Some(record) = self.get::<UploadRecord>(UPLOADS, id.as_bytes())? else {
                continue;
            };
            if let Some((marker_key, marker_id)) = after {
                match record.key.as_str().cmp(marker_key) {
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Equal if marker_id.is_empty() => continue,
                    std::cmp::Ordering::Equal if !passed_marker => {
                        passed_marker = id == marker_id;
                        continue;
                    }
                    _ => {}
                }
            }
            if found.len() == limit {
                break;
            }
            found.push((id, record));
        }
        Ok(found)
    }

    async fn uploads_initiated_before(
        &self,
        before_ms: i64,
    ) -> Result<Vec<Listed<UploadRecord>>, MetaError> {
        let all = self.scan::<UploadRecord>(UPLOADS, b"", b"", false, usize::MAX)?;
        Ok(all
            .into_iter()
            .filter(|(_, record)| record.initiated_ms < before_ms)
            .map(|(id, record)| (utf8(id), record))
            .collect())
    }

    async fn list_parts(
        &self,
        upload_id: &str,
        after: u32,
        limit: usize,
    ) -> Result<Vec<(u32, PartRecord)>, MetaError> {
        let prefix = part_key(upload_id, 0);
        let prefix = &prefix[..prefix.len() - 4];
        let start = part_key(upload_id, after);
        let found = self.scan::<PartRecord>(PARTS, prefix, &start, true, limit)?;
        Ok(found
            .into_iter()
            .map(|(key, record)| {
                let number: [u8; 4] = key[key.len() - 4..].try_into().unwrap_or_default();
                (u32::from_be_bytes(number), record)
            })
            .collect())
    }

    async fn get_part(&self, upload_id: &str, part: u32) -> Result<Option<PartRecord>, MetaError> {
        self.get(PARTS, &part_key(upload_id, part))
    }

    async fn has_blob(&self, blob: BlobId) -> Result<bool, MetaError> {
        let found = self
            .db
            .get_pinned_cf(self.family(BLOBS), blob.0.to_be_bytes())
            .map_err(store_error)?;
        Ok(found.is_some())
    }

    async fn get_access_key(&self, access_key: &str) -> Result<Option<AccessKeyRecord>, MetaError> {
        self.get(ACCESS_KEYS, access_key.as_bytes())
    }

    async fn list_access_keys(&self) -> Result<Vec<Listed<AccessKeyRecord>>, MetaError> {
        let all = self.scan::<AccessKeyRecord>(ACCESS_KEYS, b"", b"", false, usize::MAX)?;
        Ok(all
            .into_iter()
            .map(|(key, record)| (utf8(key), record))
            .collect())
    }

    async fn commit(&self, batch: Batch) -> Result<(), MetaError> {
        let write = self.apply(&batch)?;
        let db = self.db.clone();
        let sync = self.sync;
        // A synced write waits for the disk: keep it off the async workers. RocksDB groups
        // concurrent writers into one WAL sync.
        tokio::task::spawn_blocking(move || {
            let mut options = WriteOptions::default();
            options.set_sync(sync);
            db.write_opt(write, &options)
        })
        .await
        .map_err(|err| MetaError::Store(format!("commit task failed: {err}")))?
        .map_err(store_error)
    }
}

fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(bucket.len() + 1 + key.len());
    out.extend_from_slice(bucket.as_bytes());
    out.push(0);
    out.extend_from_slice(key.as_bytes());
    out
}

fn upload_index_key(id: &str, record: &UploadRecord) -> Vec<u8> {
    let mut out = object_key(&record.bucket, &record.key);
    out.push(0);
    out.extend_from_slice(&record.initiated_ms.to_be_bytes());
    out.extend_from_slice(id.as_bytes());
    out
}

fn part_key(upload_id: &str, part: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(upload_id.len() + 5);
    out.extend_from_slice(upload_id.as_bytes());
    out.push(0);
    out.extend_from_slice(&part.to_be_bytes());
    out
}

/// The first key after every key that starts with `prefix` (none for an empty or all-0xFF
/// prefix).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn utf8(bytes: Vec<u8>) -> String {
    // Every key was written from a `&str`.
    String::from_utf8(bytes)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // Encoding plain structs into a Vec cannot fail.
    out.extend(
        bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap_or_default(),
    );
    out
}

fn decode<T: DeserializeOwned>(family: &str, key: &[u8], bytes: &[u8]) -> Result<T, MetaError> {
    let corrupt = |reason: String| MetaError::Corrupt {
        what: format!(
            "{family}/{}",
            String::from_utf8_lossy(key).replace('\0', "/")
        ),
        reason,
    };
    match bytes.split_first() {
        Some((&FORMAT_VERSION, body)) => {
            bincode::serde::decode_from_slice(body, bincode::config::standard())
                .map(|(value, _)| value)
                .map_err(|err| corrupt(err.to_string()))
        }
        Some((version, _)) => Err(corrupt(format!(
            "format version {version} (this build reads {FORMAT_VERSION})"
        ))),
        None => Err(corrupt("empty record".to_owned())),
    }
}

fn usage_bytes(usage: Usage) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&usage.objects.to_le_bytes());
    out[8..].copy_from_slice(&usage.bytes.to_le_bytes());
    out
}

fn parse_usage(bytes: &[u8]) -> Usage {
    let half = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .and_then(|slice| <[u8; 8]>::try_from(slice).ok())
            .map_or(0, i64::from_le_bytes)
    };
    Usage {
        objects: half(0..8),
        bytes: half(8..16),
    }
}

/// The usage merge operator: counters add up.
fn add_usage(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let mut total = existing.map(parse_usage).unwrap_or_default();
    for operand in operands {
        let delta = parse_usage(operand);
        total.objects += delta.objects;
        total.bytes += delta.bytes;
    }
    Some(usage_bytes(total).to_vec())
}

fn store_error(err: rocksdb::Error) -> MetaError {
    MetaError::Store(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{Content, ObjectHeaders};

    fn record(size: u64) -> ObjectRecord {
        ObjectRecord {
            size,
            etag: "e".into(),
            last_modified_ms: 1,
            content: Content::Inline(vec![0; usize::try_from(size).unwrap()]),
            headers: ObjectHeaders::default(),
            checksums: Default::default(),
            multipart: false,
        }
    }

    #[tokio::test]
    async fn objects_list_in_byte_order_within_their_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksMetadata::open(dir.path(), 8, false).unwrap();
        let mut batch = Batch::default();
        for key in ["b", "a/1", "a/2", "\u{e9}", "a", "a\0z"] {
            batch.replace_object("bk", key, record(2), None);
        }
        batch.replace_object("bk2", "a", record(1), None);
        batch.replace_object("b", "k", record(1), None);
        store.commit(batch).await.unwrap();
        let keys: Vec<String> = store
            .list_objects("bk", b"", true, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(keys, ["a", "a\0z", "a/1", "a/2", "b", "\u{e9}"]);
        let after_a: Vec<String> = store
            .list_objects("bk", b"a", false, 2)
            .await
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(after_a, ["a\0z", "a/1"]);
        let usage = store.usage("bk").await.unwrap();
        assert_eq!(
            usage,
            Usage {
                objects: 6,
                bytes: 12
            }
        );
    }

    #[tokio::test]
    async fn a_newer_format_is_reported_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksMetadata::open(dir.path(), 8, false).unwrap();
        store
            .db
            .put_cf(store.family(BUCKETS), "future", [FORMAT_VERSION + 1, 0])
            .unwrap();
        let err = store.get_bucket("future").await.unwrap_err();
        assert!(err.to_string().contains("format version 2"), "{err}");
    }

    #[test]
    fn prefix_end_carries_past_ff() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[b'a', 0xFF]), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0xFF]), None);
    }
}
