//! Object bytes on the filesystem: `data_dir/blobs/<2 hex>/<32 hex>`, one file per object or
//! part, named by a random [`BlobId`] and never by the key.
//!
//! A write goes to `data_dir/tmp/`, is fsynced, renamed into `blobs/` and the directory
//! fsynced; only then is the metadata committed. A crash before the commit leaves a file no
//! record references: `tmp/` is emptied at start-up and [`BlobStore::sweep_orphans`] deletes
//! unreferenced files in `blobs/`. Old files are deleted after the commit that released them,
//! and a crash in between leaves an orphan for the same sweep.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt};
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Md5};
use tokio::fs::{self, File};
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::meta::{BlobId, Content, MetadataStore, Segment};

/// Reads and writes happen in pieces of this size: large enough that per-call overhead
/// vanishes, small enough that memory stays flat whatever the object size.
const IO_CHUNK: usize = 1 << 20;

/// Object bytes on their way out; `Sync` because s3s's response body requires it.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + Sync>>;

pub struct BlobStore {
    blobs_dir: PathBuf,
    tmp_dir: PathBuf,
    fsync: bool,
}

/// What was received: where it is stored now and what it hashes to.
pub struct Ingested {
    pub content: Content,
    pub size: u64,
    pub md5: [u8; 16],
    pub checksums: s3s::dto::Checksum,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("body exceeds the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("reading the request body failed: {0}")]
    Body(String),
    #[error("storage I/O: {0}")]
    Io(#[from] io::Error),
}

impl BlobStore {
    /// Creates the directories, emptying `tmp/` (uploads that were in flight at a crash).
    pub async fn open(data_dir: &Path, fsync: bool) -> io::Result<Self> {
        let blobs_dir = data_dir.join("blobs");
        let tmp_dir = data_dir.join("tmp");
        fs::create_dir_all(&blobs_dir).await?;
        if fs::try_exists(&tmp_dir).await? {
            fs::remove_dir_all(&tmp_dir).await?;
        }
        fs::create_dir_all(&tmp_dir).await?;
        for shard in 0..=u8::MAX {
            fs::create_dir_all(blobs_dir.join(format!("{shard:02x}"))).await?;
        }
        Ok(Self {
            blobs_dir,
            tmp_dir,
            fsync,
        })
    }

    fn path(&self, blob: BlobId) -> PathBuf {
        let name = blob.to_string();
        self.blobs_dir.join(&name[..2]).join(name)
    }

    /// Whether the data directory can be written (the `storage` health check).
    pub async fn probe(&self) -> io::Result<()> {
        let path = self.tmp_dir.join(format!("probe-{}", BlobId::random()));
        fs::write(&path, b"ok").await?;
        fs::remove_file(&path).await
    }

    /// Receives `body` while hashing it: kept inline when it ends within `inline_threshold`
    /// bytes, else (or with no threshold) written to a new blob. More than `max_size` bytes
    /// is refused.
    pub async fn ingest<S, E>(
        &self,
        body: S,
        max_size: u64,
        inline_threshold: Option<u64>,
        checksums: ChecksumHasher,
    ) -> Result<Ingested, IngestError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut body = body.map_err(|err| IngestError::Body(err.to_string()));
        let mut digest = Digest {
            md5: Md5::new(),
            checksums,
            size: 0,
            max_size,
        };
        let mut head = BytesMut::new();
        while inline_threshold.is_some_and(|limit| head.len() as u64 <= limit) {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    digest.take(&chunk)?;
                    head.extend_from_slice(&chunk);
                }
                None => return Ok(digest.finish(Content::Inline(head.to_vec()))),
            }
        }

        let blob = BlobId::random();
        let tmp_path = self.tmp_dir.join(blob.to_string());
        let written = async {
            let mut file = BufWriter::with_capacity(IO_CHUNK, File::create(&tmp_path).await?);
            file.write_all(&head).await?;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                digest.take(&chunk)?;
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            let file = file.into_inner();
            if self.fsync {
                file.sync_all().await?;
            }
            Ok::<_, IngestError>(())
        }
        .await;
        if let Err(err) = written {
            let _ = fs::remove_file(&tmp_path).await;
            return Err(err);
        }
        let path = self.path(blob);
        fs::rename(&tmp_path, &path).await?;
        if self.fsync {
            sync_dir(path.parent().unwrap_or(&self.blobs_dir)).await?;
        }
        let size = digest.size;
        Ok(digest.finish(Content::Blobs(vec![Segment { blob, size }])))
    }

    /// The bytes `range` of an object stored as `content`, read as they are sent.
    pub fn read(&self, content: &Content, range: Range<u64>) -> ByteStream {
        let pieces: Vec<Piece> = match content {
            Content::Inline(bytes) => {
                let start = usize::try_from(range.start)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = usize::try_from(range.end)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                vec![Piece::Memory(Bytes::copy_from_slice(&bytes[start..end]))]
            }
            Content::Blobs(segments) => {
                let mut offset = 0u64;
                let mut pieces = Vec::new();
                for segment in segments {
                    let segment_range = offset..offset + segment.size;
                    offset += segment.size;
                    let start = range.start.max(segment_range.start);
                    let end = range.end.min(segment_range.end);
                    if start < end {
                        pieces.push(Piece::File {
                            path: self.path(segment.blob),
                            range: start - segment_range.start..end - segment_range.start,
                        });
                    }
                }
                pieces
            }
        };
        Box::pin(futures::stream::iter(pieces).flat_map(Piece::into_stream))
    }

    /// Deletes blob files; a missing one is not an error (a sweep may have got there first).
    pub async fn delete(&self, blobs: &[BlobId]) {
        for blob in blobs {
            let path = self.path(*blob);
            if let Err(err) = fs::remove_file(&path).await
                && err.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(
                    "cannot delete released blob {}: {err}; the next start-up sweep retries",
                    path.display()
                );
            }
        }
    }

    /// Deletes blob files older than `started` that no metadata record references: left by a
    /// crash between writing a file and committing its record, or between a commit and the
    /// deletion of the file it released. Returns how many were deleted.
    pub async fn sweep_orphans(
        &self,
        meta: &dyn MetadataStore,
        started: SystemTime,
    ) -> io::Result<usize> {
        let mut deleted = 0;
        for shard in 0..=u8::MAX {
            let mut entries = fs::read_dir(self.blobs_dir.join(format!("{shard:02x}"))).await?;
            while let Some(entry) = entries.next_entry().await? {
                let name = entry.file_name();
                let Some(blob) = name.to_str().and_then(BlobId::parse) else {
                    continue;
                };
                let modified = entry.metadata().await?.modified()?;
                if modified >= started {
                    continue;
                }
                let referenced = meta
                    .has_blob(blob)
                    .await
                    .map_err(|err| io::Error::other(err.to_string()))?;
                if !referenced {
                    fs::remove_file(entry.path()).await?;
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }
}

/// Hashes and counts a body as it arrives.
struct Digest {
    md5: Md5,
    checksums: ChecksumHasher,
    size: u64,
    max_size: u64,
}

impl Digest {
    fn take(&mut self, chunk: &[u8]) -> Result<(), IngestError> {
        self.size += chunk.len() as u64;
        if self.size > self.max_size {
            return Err(IngestError::TooLarge {
                limit: self.max_size,
            });
        }
        self.md5.update(chunk);
        self.checksums.update(chunk);
        Ok(())
    }

    fn finish(self, content: Content) -> Ingested {
        Ingested {
            content,
            size: self.size,
            md5: self.md5.finalize(),
            checksums: self.checksums.finalize(),
        }
    }
}

enum Piece {
    Memory(Bytes),
    File { path: PathBuf, range: Range<u64> },
}

impl Piece {
    fn into_stream(self) -> ByteStream {
        match self {
            Piece::Memory(bytes) => Box::pin(futures::stream::once(async move { Ok(bytes) })),
            Piece::File { path, range } => {
                // A blocking reader runs ahead of the network by a few chunks, so disk reads
                // and sends overlap; it stops when the response is dropped.
                let (sender, receiver) = tokio::sync::mpsc::channel(READ_AHEAD_CHUNKS);
                tokio::task::spawn_blocking(move || read_ahead(&path, range, &sender));
                Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
            }
        }
    }
}

/// Chunks read ahead of the one being sent.
const READ_AHEAD_CHUNKS: usize = 4;

/// Sends `range` of a blob without copying it in user space: the range is mapped, each chunk is
/// faulted in here, on a blocking thread where waiting for the disk belongs, and goes out as a
/// slice of the mapping, so the only copy is the kernel's into the socket. Reading into buffers
/// instead cost a second copy, which on two cores capped a GET below the disk's speed.
///
/// A mapping is safe to hand out because blob files never change once renamed into place: a
/// deletion unlinks the file and leaves the mapped inode intact. What the kernel cannot deliver
/// (an I/O error, a file shorter than its record) fails the populate call, here, as an error the
/// client and the log see.
#[allow(unsafe_code)]
fn read_ahead(
    path: &Path,
    range: Range<u64>,
    sender: &tokio::sync::mpsc::Sender<io::Result<Bytes>>,
) {
    let read = || -> io::Result<()> {
        let named =
            |err: io::Error| io::Error::new(err.kind(), format!("blob {}: {err}", path.display()));
        let file = std::fs::File::open(path).map_err(named)?;
        let on_disk = file.metadata().map_err(named)?.len();
        if on_disk < range.end {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "blob {} is shorter than its record: {} bytes on disk, {} recorded",
                    path.display(),
                    on_disk,
                    range.end
                ),
            ));
        }
        if range.is_empty() {
            return Ok(());
        }
        let length = usize::try_from(range.end - range.start).map_err(io::Error::other)?;
        // SAFETY: blob files are never written or truncated after they are renamed into place
        // (see the module's documentation), so the mapped bytes cannot change under the slices.
        // A SIGBUS remains possible only if a populated page is evicted and then cannot be read
        // again, or someone truncates a blob file by hand during the GET.
        let mapping = unsafe {
            memmap2::MmapOptions::new()
                .offset(range.start)
                .len(length)
                .map(&file)
        }
        .map_err(named)?;
        let _ = mapping.advise(memmap2::Advice::Sequential);
        let mapping = Arc::new(mapping);
        let bytes = Bytes::from_owner(SharedMapping(mapping.clone()));
        let mut position = 0;
        while position < length {
            let want = (length - position).min(IO_CHUNK);
            mapping
                .advise_range(memmap2::Advice::PopulateRead, position, want)
                .map_err(|err| {
                    io::Error::new(
                        err.kind(),
                        format!(
                            "blob {} at offset {}: {err}",
                            path.display(),
                            range.start + position as u64
                        ),
                    )
                })?;
            if sender
                .blocking_send(Ok(bytes.slice(position..position + want)))
                .is_err()
            {
                // The client went away.
                return Ok(());
            }
            position += want;
        }
        Ok(())
    };
    if let Err(err) = read() {
        // The response head has gone out already: the client sees the body cut off, and the
        // operator needs this line to find the damaged file.
        tracing::error!("reading an object failed mid-response: {err}");
        let _ = sender.blocking_send(Err(err));
    }
}

/// A mapping that the reader and the slices on their way out share.
#[derive(Clone)]
struct SharedMapping(Arc<memmap2::Mmap>);

impl AsRef<[u8]> for SharedMapping {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

async fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).await?.sync_all().await
}
