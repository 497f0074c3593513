//! The checkpoint of open chunks: one file, `<data_dir>/checkpoint`, replaced atomically
//! (written aside, fsync'ed, renamed), so it never costs more disk than one copy.
//!
//! Layout: `NLCHECK1`, then per series `[u64 id][i64 newest timestamp][u32 length][chunk]`,
//! then the CRC32C of everything before it (u32), all little-endian.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crc_fast::CrcAlgorithm;

const MAGIC: &[u8; 8] = b"NLCHECK1";
const FILE_NAME: &str = "checkpoint";

/// One series' open chunk: its id, its newest sample's timestamp and the chunk's bytes (empty
/// when the chunk was just closed).
pub type SavedHead = (u64, i64, Vec<u8>);

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Writes the checkpoint; it is on disk under its name when this returns.
pub fn write(data_dir: &Path, heads: &[SavedHead]) -> io::Result<()> {
    let size = 12 + heads.iter().map(|(_, _, b)| 20 + b.len()).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(MAGIC);
    for (id, last_t, bytes) in heads {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&last_t.to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    let crc = crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, &out) as u32;
    out.extend_from_slice(&crc.to_le_bytes());
    let staging = data_dir.join(format!("{FILE_NAME}.tmp"));
    let mut file = File::create(&staging)?;
    file.write_all(&out)?;
    file.sync_all()?;
    fs::rename(&staging, path(data_dir))?;
    File::open(data_dir)?.sync_all()
}

/// Reads the checkpoint; none yet is an empty one.
pub fn read(data_dir: &Path) -> Result<Vec<SavedHead>, String> {
    let path = path(data_dir);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
    };
    let corrupt = |why: &str| {
        format!(
            "{} is corrupt ({why}); moving it away starts nightlight without the samples of the open chunks (up to two hours)",
            path.display()
        )
    };
    let Some((body, crc)) = bytes.split_last_chunk::<4>() else {
        return Err(corrupt("too short"));
    };
    if crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, body) as u32 != u32::from_le_bytes(*crc) {
        return Err(corrupt("checksum mismatch"));
    }
    let Some(mut rest) = body.strip_prefix(MAGIC.as_slice()) else {
        return Err(corrupt("not a checkpoint file"));
    };
    let mut heads = Vec::new();
    while !rest.is_empty() {
        let (Some(id), Some(last_t), Some(len)) = (
            rest.first_chunk::<8>(),
            rest.get(8..16).and_then(|b| b.first_chunk::<8>()),
            rest.get(16..20).and_then(|b| b.first_chunk::<4>()),
        ) else {
            return Err(corrupt("a record is truncated"));
        };
        let len = u32::from_le_bytes(*len) as usize;
        let Some(chunk) = rest.get(20..20 + len) else {
            return Err(corrupt("a chunk is truncated"));
        };
        heads.push((
            u64::from_le_bytes(*id),
            i64::from_le_bytes(*last_t),
            chunk.to_vec(),
        ));
        rest = &rest[20 + len..];
    }
    Ok(heads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
        let heads = vec![(1, -5, vec![1, 2, 3]), (u64::MAX, i64::MAX, Vec::new())];
        write(dir.path(), &heads).unwrap();
        assert_eq!(read(dir.path()).unwrap(), heads);
        let mut bytes = fs::read(path(dir.path())).unwrap();
        bytes[10] ^= 1;
        fs::write(path(dir.path()), &bytes).unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(err.contains("checksum mismatch"), "{err}");
    }
}
