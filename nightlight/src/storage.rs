//! The time-series store.
//!
//! - The *head* ([`crate::head`], memory) holds every series' labels, the inverted index from
//!   label pairs to series, and each series' open Gorilla chunk.
//! - RocksDB holds the rest, in column families: `series` (id → labels, written with a sync
//!   when a series is first seen, before any of its samples are acknowledged), `chunks` (closed
//!   chunks keyed by time window, series and first timestamp) and `meta` (the next series id,
//!   so ids are never reused).
//! - The write-ahead log ([`crate::wal`]) has every acknowledged sample since the last
//!   checkpoint, so chunks go to RocksDB without RocksDB's own log (which would store every
//!   sample a second time); a checkpoint flushes them to RocksDB's files, saves the open chunks
//!   ([`crate::checkpoint`]) and only then drops the log segments.
//!
//! Why RocksDB: one crash-safe, compacting store for index and chunks, already used by the
//! suite; chunks keyed by a two-hour window first make retention a range delete of whole
//! windows, and a query seeks each series once per window it covers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use promql_parser::label::Matcher;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, IteratorMode, Options, ReadOptions,
    WriteBatch, WriteOptions,
};
use rustc_hash::FxHashMap;

use crate::checkpoint;
use crate::chunk::{ChunkEncoder, ChunkIter};
use crate::head::{Head, MemSeries};
use crate::labels::Labels;
use crate::wal::{LoggedSample, Wal};

/// Chunks never span a window; retention deletes whole windows.
pub const WINDOW_MS: i64 = 2 * 3600 * 1000;
/// A chunk is closed after this many samples (an hour of 15-second scrapes): long enough that
/// keys and headers cost little per sample, short enough that a query decodes little extra.
const CHUNK_SAMPLES: usize = 240;

const SERIES: &str = "series";
const CHUNKS: &str = "chunks";
const META: &str = "meta";
const NEXT_ID_KEY: &[u8] = b"next_series_id";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage at {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("the write-ahead log failed: {0} (the samples were not stored)")]
    Wal(std::io::Error),
    #[error("the database failed: {0}")]
    Db(#[from] rocksdb::Error),
}

#[derive(Debug, Clone)]
pub struct StorageOptions {
    pub data_dir: PathBuf,
    pub cache_size_mb: u64,
    /// The log is checkpointed once its current segment passes this size.
    pub wal_segment_bytes: u64,
}

/// What happened to an appended batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub appended: usize,
    /// Older than (or as old as, with another value) the series' newest sample: refused, as
    /// Prometheus refuses out-of-order samples.
    pub out_of_order: usize,
    /// The same timestamp and value again: ignored.
    pub duplicates: usize,
}

/// One series' samples in a queried time range, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesData {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

/// Counters the metrics endpoint reads.
#[derive(Debug, Default)]
pub struct StorageStats {
    pub samples_appended: AtomicU64,
    pub samples_out_of_order: AtomicU64,
    pub chunks_written: AtomicU64,
    pub series_created: AtomicU64,
    pub series_removed: AtomicU64,
    pub checkpoints: AtomicU64,
}

pub struct Storage {
    db: DB,
    head: RwLock<Head>,
    wal: Mutex<Wal>,
    checkpointing: Mutex<()>,
    options: StorageOptions,
    pub stats: StorageStats,
}

impl Storage {
    /// Opens the store, replaying the write-ahead log into the head.
    pub fn open(options: StorageOptions) -> Result<Arc<Storage>, StorageError> {
        let open_error = |reason: String| StorageError::Open {
            path: options.data_dir.clone(),
            reason,
        };
        std::fs::create_dir_all(&options.data_dir)
            .map_err(|err| open_error(format!("cannot create the directory: {err}")))?;
        let db = open_db(&options.data_dir.join("index"), options.cache_size_mb)
            .map_err(|err| open_error(format!("cannot open the database: {err}")))?;
        let (wal, logged) = Wal::open(&options.data_dir.join("wal"))
            .map_err(|err| open_error(format!("cannot read the write-ahead log: {err}")))?;
        let mut head = load_head(&db).map_err(open_error)?;
        restore_open_chunks(
            &mut head,
            checkpoint::read(&options.data_dir).map_err(open_error)?,
        )
        .map_err(open_error)?;
        let storage = Arc::new(Storage {
            db,
            head: RwLock::new(head),
            wal: Mutex::new(wal),
            checkpointing: Mutex::new(()),
            options,
            stats: StorageStats::default(),
        });
        let replayed = logged.len();
        let mut unknown = 0usize;
        {
            let mut head = storage.head.write().expect("head lock");
            let mut batch = WriteBatch::default();
            for sample in logged {
                let Some(series) = head.series.get_mut(&sample.series) else {
                    unknown += 1;
                    continue;
                };
                // Samples already in the checkpointed chunk come back too; skip them.
                if series.open.last_t().is_some_and(|t| sample.t <= t) {
                    continue;
                }
                storage.push(series, sample, &mut batch);
            }
            storage.db.write_opt(batch, &unlogged())?;
        }
        if unknown > 0 {
            tracing::warn!(
                "write-ahead log: {unknown} sample(s) belong to no known series and were dropped"
            );
        }
        tracing::info!(
            "storage at {}: {} series, {replayed} logged sample(s) replayed",
            storage.options.data_dir.display(),
            storage.series_count()
        );
        storage.checkpoint()?;
        Ok(storage)
    }

    /// A cheap read through the database, for the health check.
    pub fn probe(&self) -> Result<(), StorageError> {
        self.db.get_cf(self.family(META), NEXT_ID_KEY)?;
        Ok(())
    }

    pub fn series_count(&self) -> usize {
        self.head.read().expect("head lock").series.len()
    }

    /// The ids of these label sets, creating (and durably recording) the missing ones.
    pub fn resolve(&self, label_sets: &[Labels]) -> Result<Vec<u64>, StorageError> {
        let mut ids = Vec::with_capacity(label_sets.len());
        let mut missing = Vec::new();
        {
            let head = self.head.read().expect("head lock");
            for (at, labels) in label_sets.iter().enumerate() {
                match head.find(labels) {
                    Some(id) => ids.push(id),
                    None => {
                        ids.push(u64::MAX);
                        missing.push(at);
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(ids);
        }
        let mut head = self.head.write().expect("head lock");
        let mut batch = WriteBatch::default();
        let mut created = 0u64;
        for at in missing {
            let labels = &label_sets[at];
            // Another writer may have created it between the two locks.
            if let Some(id) = head.find(labels) {
                ids[at] = id;
                continue;
            }
            let id = head.next_id;
            head.next_id += 1;
            batch.put_cf(self.family(SERIES), id.to_be_bytes(), labels.encode());
            head.insert(id, labels);
            ids[at] = id;
            created += 1;
        }
        if created > 0 {
            batch.put_cf(self.family(META), NEXT_ID_KEY, head.next_id.to_be_bytes());
            self.db.write_opt(batch, &synced())?;
            self.stats
                .series_created
                .fetch_add(created, Ordering::Relaxed);
        }
        Ok(ids)
    }

    /// Stores samples of resolved series: logged and on disk before this returns.
    pub fn append(&self, samples: &[LoggedSample]) -> Result<AppendOutcome, StorageError> {
        let mut outcome = AppendOutcome::default();
        let mut wal = self.wal.lock().expect("wal lock");
        // Only the log's holder appends, so what is checked here still holds when applied.
        let accepted = {
            let head = self.head.read().expect("head lock");
            let mut newest: FxHashMap<u64, (i64, u64)> = FxHashMap::default();
            let mut accepted = Vec::with_capacity(samples.len());
            for sample in samples {
                let Some(series) = head.series.get(&sample.series) else {
                    outcome.out_of_order += 1;
                    continue;
                };
                let last = newest.get(&sample.series).copied().or(series.open.last());
                match last {
                    Some((t, bits)) if sample.t == t && sample.v.to_bits() == bits => {
                        outcome.duplicates += 1;
                    }
                    Some((t, _)) if sample.t <= t => outcome.out_of_order += 1,
                    _ => {
                        newest.insert(sample.series, (sample.t, sample.v.to_bits()));
                        accepted.push(*sample);
                    }
                }
            }
            accepted
        };
        wal.append(&accepted).map_err(StorageError::Wal)?;
        {
            let mut head = self.head.write().expect("head lock");
            let mut batch = WriteBatch::default();
            for sample in &accepted {
                if let Some(series) = head.series.get_mut(&sample.series) {
                    self.push(series, *sample, &mut batch);
                }
            }
            // Under the lock, so a query never sees a chunk in neither place.
            self.db.write_opt(batch, &unlogged())?;
        }
        let checkpoint_due = wal.segment_bytes() >= self.options.wal_segment_bytes;
        drop(wal);
        // The samples are stored whatever happens to the checkpoint: a failed one is retried
        // at the next full segment or timer, and the log still has everything.
        if checkpoint_due
            && let Ok(_running) = self.checkpointing.try_lock()
            && let Err(err) = self.checkpoint_locked()
        {
            tracing::error!("checkpoint failed (the write-ahead log keeps the samples): {err}");
        }
        outcome.appended = accepted.len();
        self.stats
            .samples_appended
            .fetch_add(accepted.len() as u64, Ordering::Relaxed);
        self.stats
            .samples_out_of_order
            .fetch_add(outcome.out_of_order as u64, Ordering::Relaxed);
        Ok(outcome)
    }

    /// Adds one sample to its series' open chunk, closing the chunk into `batch` first when it
    /// is full or the sample starts a new window.
    fn push(&self, series: &mut MemSeries, sample: LoggedSample, batch: &mut WriteBatch) {
        if let Some(first) = series.open.first_t()
            && (series.open.len() >= CHUNK_SAMPLES || window(first) != window(sample.t))
        {
            batch.put_cf(
                self.family(CHUNKS),
                chunk_key(window(first), sample.series, first),
                series.open.bytes(),
            );
            series.open = ChunkEncoder::new();
            self.stats.chunks_written.fetch_add(1, Ordering::Relaxed);
        }
        series.open.push(sample.t, sample.v);
    }

    /// Makes the closed chunks durable, saves every open chunk and drops the log segments
    /// they make redundant.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        let _running = self.checkpointing.lock().expect("checkpoint lock");
        self.checkpoint_locked()
    }

    /// [`Storage::checkpoint`] with `checkpointing` held: one at a time, or a second could
    /// delete log segments the first still counts on.
    fn checkpoint_locked(&self) -> Result<(), StorageError> {
        let (closed, snapshot) = {
            let mut wal = self.wal.lock().expect("wal lock");
            // Chunks closed from samples in the closed segments were written before this.
            let closed = wal.rotate().map_err(StorageError::Wal)?;
            let head = self.head.read().expect("head lock");
            let snapshot: Vec<checkpoint::SavedHead> = head
                .series
                .iter()
                .filter_map(|(id, series)| Some((*id, series.open.last_t()?, series.open.bytes())))
                .collect();
            (closed, snapshot)
        };
        self.flush()?;
        checkpoint::write(&self.options.data_dir, &snapshot).map_err(StorageError::Wal)?;
        self.wal
            .lock()
            .expect("wal lock")
            .remove_through(closed)
            .map_err(StorageError::Wal)?;
        self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Deletes every window that ends before `cutoff_ms`, and series with no sample since.
    pub fn enforce_retention(&self, cutoff_ms: i64) -> Result<(), StorageError> {
        let first_kept = window(cutoff_ms);
        let chunks = self.family(CHUNKS);
        let start = chunk_key(i64::MIN / WINDOW_MS - 1, 0, i64::MIN);
        let end = chunk_key(first_kept, 0, i64::MIN);
        self.db.delete_range_cf(chunks, start, end)?;
        self.db.compact_range_cf(
            chunks,
            None::<&[u8]>,
            Some(chunk_key(first_kept, 0, i64::MIN)),
        );
        let _wal = self.wal.lock().expect("wal lock");
        let mut head = self.head.write().expect("head lock");
        let expired: Vec<u64> = head
            .series
            .iter()
            .filter(|(_, series)| series.open.last_t().is_none_or(|t| t < cutoff_ms))
            .map(|(id, _)| *id)
            .collect();
        if expired.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        for id in &expired {
            batch.delete_cf(self.family(SERIES), id.to_be_bytes());
            head.remove(*id);
        }
        self.db.write_opt(batch, &synced())?;
        self.stats
            .series_removed
            .fetch_add(expired.len() as u64, Ordering::Relaxed);
        tracing::info!(
            "retention: removed {} series with no sample since {cutoff_ms} ms",
            expired.len()
        );
        Ok(())
    }

    /// Series matching every matcher (`or_matchers` are handled by the caller), with their
    /// samples in `[mint, maxt]`; series without samples there are left out.
    pub fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<SeriesData>, StorageError> {
        let mut newest = i64::MIN;
        let candidates: Vec<(u64, Labels, Vec<u8>)> = {
            let head = self.head.read().expect("head lock");
            head.matching(matchers)
                .into_iter()
                .filter_map(|id| {
                    let series = head.series.get(&id)?;
                    newest = newest.max(series.open.last_t().unwrap_or(i64::MIN));
                    let open = if series.open.last_t().is_some_and(|t| t >= mint) {
                        series.open.bytes()
                    } else {
                        Vec::new()
                    };
                    Some((id, head.labels(series), open))
                })
                .collect()
        };
        let mut found: Vec<SeriesData> = candidates
            .iter()
            .map(|(_, labels, _)| SeriesData {
                labels: labels.clone(),
                samples: Vec::new(),
            })
            .collect();
        // Closed chunks, a window at a time with one iterator seeking forward through the ids.
        // Only windows that can hold data: open-ended ranges are common (`maxt` = i64::MAX).
        let first_window = window(mint).max(self.oldest_window()?.unwrap_or(i64::MAX));
        let last_window = window(maxt.min(newest));
        if mint <= maxt && !candidates.is_empty() {
            for window_at in first_window..=last_window {
                let mut read = ReadOptions::default();
                read.set_iterate_upper_bound(chunk_key(window_at + 1, 0, i64::MIN));
                let mut iter = self.db.raw_iterator_cf_opt(self.family(CHUNKS), read);
                for (at, (id, _, _)) in candidates.iter().enumerate() {
                    let prefix = chunk_prefix(window_at, *id);
                    iter.seek(prefix);
                    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
                        if !key.starts_with(&prefix) {
                            break;
                        }
                        decode_into(value, mint, maxt, &mut found[at].samples);
                        iter.next();
                    }
                    iter.status()?;
                }
            }
        }
        for (at, (_, _, open)) in candidates.iter().enumerate() {
            if !open.is_empty() {
                decode_into(open, mint, maxt, &mut found[at].samples);
            }
        }
        found.retain(|series| !series.samples.is_empty());
        Ok(found)
    }

    /// The window of the oldest closed chunk.
    fn oldest_window(&self) -> Result<Option<i64>, StorageError> {
        let mut iter = self.db.raw_iterator_cf(self.family(CHUNKS));
        iter.seek_to_first();
        iter.status()?;
        Ok(iter
            .key()
            .and_then(|key| key.first_chunk::<8>())
            .map(|bytes| (u64::from_be_bytes(*bytes) ^ (1 << 63)) as i64))
    }

    /// Label sets of the series matching `matchers` (every series when empty) that are in the
    /// head; the caller narrows by time with [`Storage::select`] when it must.
    pub fn series_labels(&self, matchers: &[Matcher]) -> Vec<Labels> {
        let head = self.head.read().expect("head lock");
        let ids = if matchers.is_empty() {
            head.all_ids()
        } else {
            head.matching(matchers)
        };
        ids.iter()
            .filter_map(|id| head.series.get(id).map(|series| head.labels(series)))
            .collect()
    }

    /// Every label name in the head, sorted.
    pub fn label_names(&self) -> Vec<String> {
        self.head.read().expect("head lock").label_names()
    }

    /// Every value of label `name` in the head, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.head.read().expect("head lock").label_values(name)
    }

    /// Bytes of closed chunks on disk (RocksDB's estimate of live SST data) and in memory.
    pub fn chunk_bytes(&self) -> u64 {
        self.db
            .property_int_value_cf(self.family(CHUNKS), "rocksdb.total-sst-files-size")
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// Writes the memtables (the chunks RocksDB holds without its log) to its files.
    pub fn flush(&self) -> Result<(), StorageError> {
        for family in [SERIES, CHUNKS, META] {
            self.db.flush_cf(self.family(family))?;
        }
        Ok(())
    }

    fn family(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("every column family is created at open")
    }
}

pub fn window(t: i64) -> i64 {
    t.div_euclid(WINDOW_MS)
}

/// Big-endian with the sign bit flipped, so signed values sort as bytes.
fn sortable(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

fn chunk_prefix(window: i64, series: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&sortable(window));
    key[8..].copy_from_slice(&series.to_be_bytes());
    key
}

fn chunk_key(window: i64, series: u64, first_t: i64) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(&chunk_prefix(window, series));
    key[16..].copy_from_slice(&sortable(first_t));
    key
}

fn decode_into(bytes: &[u8], mint: i64, maxt: i64, out: &mut Vec<(i64, f64)>) {
    let iter = match ChunkIter::new(bytes) {
        Ok(iter) => iter,
        Err(err) => {
            tracing::error!("a stored chunk is unreadable and was skipped: {err}");
            return;
        }
    };
    for sample in iter {
        match sample {
            Ok((t, _)) if t < mint => continue,
            Ok((t, _)) if t > maxt => break,
            Ok(sample) => out.push(sample),
            Err(err) => {
                tracing::error!("a stored chunk is corrupt past this point and was cut: {err}");
                break;
            }
        }
    }
}

/// For chunks: the write-ahead log has their samples until a checkpoint flushes them.
fn unlogged() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.disable_wal(true);
    options
}

fn synced() -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(true);
    options
}

fn open_db(path: &Path, cache_size_mb: u64) -> Result<DB, rocksdb::Error> {
    let cache = Cache::new_lru_cache(usize::try_from(cache_size_mb << 20).unwrap_or(usize::MAX));
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(&cache);
    let family_options = |compress: bool| {
        let mut options = Options::default();
        options.set_block_based_table_factory(&table);
        // Checkpoints flush the memtables anyway; small ones keep memory per series low.
        options.set_write_buffer_size(16 << 20);
        options.set_compression_type(if compress {
            rocksdb::DBCompressionType::Lz4
        } else {
            // Gorilla chunks are compressed already; LZ4 would spend CPU to gain nothing.
            rocksdb::DBCompressionType::None
        });
        options
    };
    let mut options = family_options(true);
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    let families = [SERIES, CHUNKS, META]
        .map(|name| ColumnFamilyDescriptor::new(name, family_options(name != CHUNKS)));
    DB::open_cf_descriptors(&options, path, families)
}

fn load_head(db: &DB) -> Result<Head, String> {
    let family = |name| db.cf_handle(name).expect("created at open");
    let mut head = Head::default();
    for entry in db.iterator_cf(family(SERIES), IteratorMode::Start) {
        let (key, value) = entry.map_err(|err| format!("cannot read the series index: {err}"))?;
        let id = u64::from_be_bytes(
            key.as_ref()
                .try_into()
                .map_err(|_| "a series key is not 8 bytes long".to_owned())?,
        );
        let labels = Labels::decode(&value)
            .ok_or_else(|| format!("series {id} has an unreadable label set"))?;
        head.insert(id, &labels);
    }
    if let Some(next) = db
        .get_cf(family(META), NEXT_ID_KEY)
        .map_err(|err| format!("cannot read the next series id: {err}"))?
        && let Ok(bytes) = <[u8; 8]>::try_from(next.as_slice())
    {
        head.next_id = head.next_id.max(u64::from_be_bytes(bytes));
    }
    Ok(head)
}

/// Puts the checkpointed open chunks back into their series.
fn restore_open_chunks(head: &mut Head, saved: Vec<checkpoint::SavedHead>) -> Result<(), String> {
    // The saved newest timestamp is the chunk's own last one; the chunk is what counts.
    for (id, _, bytes) in saved {
        let Some(series) = head.series.get_mut(&id) else {
            // Removed by retention after the checkpoint.
            continue;
        };
        series.open = ChunkEncoder::resume(&bytes)
            .map_err(|err| format!("the open chunk of series {id} is unreadable: {err}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use promql_parser::label::MatchOp;

    use super::*;

    fn open(dir: &Path) -> Arc<Storage> {
        Storage::open(StorageOptions {
            data_dir: dir.to_owned(),
            cache_size_mb: 8,
            wal_segment_bytes: 1 << 20,
        })
        .unwrap()
    }

    fn name_is(name: &str) -> Matcher {
        Matcher::new(MatchOp::Equal, "__name__", name)
    }

    fn samples(series: u64, points: impl IntoIterator<Item = (i64, f64)>) -> Vec<LoggedSample> {
        points
            .into_iter()
            .map(|(t, v)| LoggedSample { series, t, v })
            .collect()
    }

    #[test]
    fn samples_across_chunks_windows_and_restarts_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let labels = Labels::from_pairs([("__name__", "m"), ("job", "a")]);
        let points: Vec<(i64, f64)> = (0..2000).map(|i| (i * 15_000, i as f64)).collect();
        {
            let storage = open(dir.path());
            let id = storage.resolve(std::slice::from_ref(&labels)).unwrap()[0];
            for batch in points.chunks(100) {
                storage.append(&samples(id, batch.iter().copied())).unwrap();
            }
            let read = storage.select(&[name_is("m")], 0, i64::MAX).unwrap();
            assert_eq!(read[0].samples, points);
        }
        // Reopened without a clean checkpoint of the newest samples: the log has them.
        let storage = open(dir.path());
        let read = storage
            .select(&[name_is("m")], 15_000 * 10, 15_000 * 1500)
            .unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].labels, labels);
        assert_eq!(read[0].samples, points[10..=1500].to_vec());
    }

    #[test]
    fn concurrent_appends_that_each_fill_a_segment_never_fail_and_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let options = StorageOptions {
            data_dir: dir.path().to_owned(),
            cache_size_mb: 8,
            // Every append fills a segment, so checkpoints race each other.
            wal_segment_bytes: 64,
        };
        {
            let storage = Storage::open(options.clone()).unwrap();
            let writers: Vec<_> = (0..4)
                .map(|writer| {
                    let storage = storage.clone();
                    std::thread::spawn(move || {
                        let labels = Labels::from_pairs([("__name__", format!("w{writer}"))]);
                        let id = storage.resolve(&[labels]).unwrap()[0];
                        for i in 0..200 {
                            storage
                                .append(&samples(id, [(i * 1000, i as f64)]))
                                .unwrap();
                        }
                    })
                })
                .collect();
            for writer in writers {
                writer.join().unwrap();
            }
        }
        let storage = Storage::open(options).unwrap();
        for writer in 0..4 {
            let read = storage
                .select(&[name_is(&format!("w{writer}"))], 0, i64::MAX)
                .unwrap();
            assert_eq!(read[0].samples.len(), 200);
        }
    }

    #[test]
    fn out_of_order_and_duplicate_samples_are_counted_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let storage = open(dir.path());
        let id = storage
            .resolve(&[Labels::from_pairs([("__name__", "m")])])
            .unwrap()[0];
        storage
            .append(&samples(id, [(10, 1.0), (20, 2.0)]))
            .unwrap();
        let outcome = storage
            .append(&samples(id, [(20, 2.0), (15, 9.0), (20, 3.0), (30, 3.0)]))
            .unwrap();
        assert_eq!(
            outcome,
            AppendOutcome {
                appended: 1,
                out_of_order: 2,
                duplicates: 1
            }
        );
        let read = storage.select(&[name_is("m")], 0, 100).unwrap();
        assert_eq!(read[0].samples, vec![(10, 1.0), (20, 2.0), (30, 3.0)]);
    }

    #[test]
    fn matchers_select_through_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let storage = open(dir.path());
        let sets = [
            Labels::from_pairs([("__name__", "http"), ("code", "200"), ("path", "/a")]),
            Labels::from_pairs([("__name__", "http"), ("code", "500"), ("path", "/b")]),
            Labels::from_pairs([("__name__", "http"), ("code", "404")]),
            Labels::from_pairs([("__name__", "other"), ("code", "200")]),
        ];
        let ids = storage.resolve(&sets).unwrap();
        for id in &ids {
            storage.append(&samples(*id, [(1, 1.0)])).unwrap();
        }
        let names = |matchers: &[Matcher]| -> Vec<String> {
            storage
                .select(matchers, 0, 10)
                .unwrap()
                .into_iter()
                .map(|s| s.labels.to_string())
                .collect()
        };
        let regex = |name: &str, re: &str, negate: bool| {
            let re = regex::Regex::new(&format!("^(?:{re})$")).unwrap();
            Matcher::new(
                if negate {
                    MatchOp::NotRe(re)
                } else {
                    MatchOp::Re(re)
                },
                name,
                "",
            )
        };
        assert_eq!(
            names(&[name_is("http"), regex("code", "5..|404", false)]),
            vec![
                r#"http{code="500", path="/b"}"#.to_owned(),
                r#"http{code="404"}"#.to_owned()
            ]
        );
        // path!="/a" also matches the series without a path label.
        assert_eq!(
            names(&[
                name_is("http"),
                Matcher::new(MatchOp::NotEqual, "path", "/a")
            ])
            .len(),
            2
        );
        assert_eq!(names(&[name_is("http"), regex("path", "", false)]).len(), 1);
        assert_eq!(
            names(&[regex("code", "200", false), regex("__name__", "h.*", true)]).len(),
            1
        );
        assert_eq!(storage.label_values("code"), vec!["200", "404", "500"]);
        assert_eq!(storage.label_names(), vec!["__name__", "code", "path"]);
    }

    #[test]
    fn retention_drops_old_windows_and_series() {
        let dir = tempfile::tempdir().unwrap();
        let storage = open(dir.path());
        let ids = storage
            .resolve(&[
                Labels::from_pairs([("__name__", "old")]),
                Labels::from_pairs([("__name__", "new")]),
            ])
            .unwrap();
        storage.append(&samples(ids[0], [(1_000, 1.0)])).unwrap();
        storage
            .append(&samples(ids[1], [(1_000, 1.0), (3 * WINDOW_MS, 2.0)]))
            .unwrap();
        storage.enforce_retention(2 * WINDOW_MS + 5).unwrap();
        assert!(
            storage
                .select(&[name_is("old")], 0, i64::MAX)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            storage.select(&[name_is("new")], 0, i64::MAX).unwrap()[0].samples,
            vec![(3 * WINDOW_MS, 2.0)]
        );
        assert_eq!(storage.series_count(), 1);
        drop(storage);
        let storage = open(dir.path());
        assert_eq!(storage.series_count(), 1);
        // The removed series' id is not handed out again.
        let id = storage
            .resolve(&[Labels::from_pairs([("__name__", "again")])])
            .unwrap()[0];
        assert!(id > ids[1]);
    }
}
