//! The write-ahead log: every batch of samples is appended and fdatasync'ed before the scrape
//! or remote write that carried it is acknowledged, so a crash loses nothing acknowledged.
//!
//! Segments are files `wal/<sequence, 20 digits>`. A record is `[u32 LE length][u32 LE CRC32C of
//! the payload][payload]`, the payload a run of `(uvarint series id, zigzag varint timestamp
//! ms, u64 LE value bits)`. Replay stops at the first torn or corrupt record of a segment (a
//! write that was never acknowledged) and cuts the file there. A checkpoint (see `storage`)
//! rotates to a new segment and removes the older ones once their samples are safe elsewhere.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use crc_fast::CrcAlgorithm;

/// One logged sample: the series it belongs to, its timestamp and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggedSample {
    pub series: u64,
    pub t: i64,
    pub v: f64,
}

pub struct Wal {
    dir: PathBuf,
    sequence: u64,
    file: File,
    /// Bytes in the current segment, to decide when to checkpoint.
    written: u64,
    buffer: Vec<u8>,
}

impl Wal {
    /// Opens the log in `dir`, returning every sample still in it (oldest first) and a log that
    /// appends to a fresh segment.
    pub fn open(dir: &Path) -> io::Result<(Wal, Vec<LoggedSample>)> {
        fs::create_dir_all(dir)?;
        let segments = segments(dir)?;
        let mut samples = Vec::new();
        for (_, path) in &segments {
            replay_segment(path, &mut samples)?;
        }
        let sequence = segments.last().map_or(1, |(sequence, _)| sequence + 1);
        let file = create_segment(dir, sequence)?;
        let wal = Wal {
            dir: dir.to_owned(),
            sequence,
            file,
            written: 0,
            buffer: Vec::new(),
        };
        Ok((wal, samples))
    }

    /// Appends one record and waits until it is on disk.
    pub fn append(&mut self, samples: &[LoggedSample]) -> io::Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        self.buffer.clear();
        self.buffer.extend_from_slice(&[0; 8]);
        for sample in samples {
            put_uvarint(&mut self.buffer, sample.series);
            put_uvarint(&mut self.buffer, zigzag(sample.t));
            self.buffer
                .extend_from_slice(&sample.v.to_bits().to_le_bytes());
        }
        let payload_len = self.buffer.len() - 8;
        let crc = crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, &self.buffer[8..]) as u32;
        self.buffer[0..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        self.buffer[4..8].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all(&self.buffer)?;
        self.file.sync_data()?;
        self.written += self.buffer.len() as u64;
        Ok(())
    }

    pub fn segment_bytes(&self) -> u64 {
        self.written
    }

    /// Starts a new segment; returns the sequence of the last closed one, which
    /// [`Wal::remove_through`] deletes once its samples are checkpointed.
    pub fn rotate(&mut self) -> io::Result<u64> {
        let closed = self.sequence;
        self.sequence += 1;
        self.file = create_segment(&self.dir, self.sequence)?;
        self.written = 0;
        Ok(closed)
    }

    /// Removes every segment up to and including `sequence`.
    pub fn remove_through(&self, sequence: u64) -> io::Result<()> {
        for (at, path) in segments(&self.dir)? {
            if at <= sequence {
                match fs::remove_file(path) {
                    Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

fn segment_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("{sequence:020}"))
}

fn create_segment(dir: &Path, sequence: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, sequence))?;
    // The new name must survive a crash too, or replay would miss the segment.
    File::open(dir)?.sync_all()?;
    Ok(file)
}

fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(sequence) = name.to_str().and_then(|name| name.parse::<u64>().ok()) else {
            continue;
        };
        found.push((sequence, entry.path()));
    }
    found.sort();
    Ok(found)
}

fn replay_segment(path: &Path, samples: &mut Vec<LoggedSample>) -> io::Result<()> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut good_len = 0u64;
    let mut header = [0u8; 8];
    let mut payload = Vec::new();
    loop {
        if !read_full(&mut reader, &mut header)? {
            break;
        }
        let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        payload.resize(len, 0);
        if !read_full(&mut reader, &mut payload)? {
            break;
        }
        if crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, &payload) as u32 != crc {
            break;
        }
        let before = samples.len();
        if decode_payload(&payload, samples).is_none() {
            samples.truncate(before);
            break;
        }
        good_len += 8 + len as u64;
    }
    let file_len = fs::metadata(path)?.len();
    if good_len < file_len {
        tracing::warn!(
            "write-ahead log {}: cut a torn record at byte {good_len} of {file_len} (a write that was never acknowledged)",
            path.display()
        );
        OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(good_len)?;
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes; false at a clean or torn end of file.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => return Ok(false),
            n => filled += n,
        }
    }
    Ok(true)
}

fn decode_payload(mut payload: &[u8], samples: &mut Vec<LoggedSample>) -> Option<()> {
    while !payload.is_empty() {
        let series = take_uvarint(&mut payload)?;
        let t = unzigzag(take_uvarint(&mut payload)?);
        let (bits, rest) = payload.split_first_chunk::<8>()?;
        payload = rest;
        samples.push(LoggedSample {
            series,
            t,
            v: f64::from_bits(u64::from_le_bytes(*bits)),
        });
    }
    Some(())
}

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn take_uvarint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(series: u64, t: i64, v: f64) -> LoggedSample {
        LoggedSample { series, t, v }
    }

    #[test]
    fn appended_samples_come_back_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, replayed) = Wal::open(dir.path()).unwrap();
        assert!(replayed.is_empty());
        wal.append(&[sample(1, -5, 1.5), sample(u64::MAX, i64::MAX, f64::NAN)])
            .unwrap();
        wal.append(&[sample(2, 1_700_000_000_000, -0.0)]).unwrap();
        drop(wal);
        let (_, replayed) = Wal::open(dir.path()).unwrap();
        assert_eq!(replayed.len(), 3);
        assert_eq!(replayed[0], sample(1, -5, 1.5));
        assert_eq!(replayed[1].series, u64::MAX);
        assert_eq!(replayed[1].t, i64::MAX);
        assert!(replayed[1].v.is_nan());
        assert_eq!(replayed[2].v.to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn a_torn_tail_is_cut_and_earlier_records_survive() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&[sample(1, 10, 1.0)]).unwrap();
        wal.append(&[sample(1, 20, 2.0)]).unwrap();
        let path = segment_path(dir.path(), 1);
        drop(wal);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (mut wal, replayed) = Wal::open(dir.path()).unwrap();
        assert_eq!(replayed, vec![sample(1, 10, 1.0)]);
        wal.append(&[sample(1, 30, 3.0)]).unwrap();
        drop(wal);
        let (_, replayed) = Wal::open(dir.path()).unwrap();
        assert_eq!(replayed, vec![sample(1, 10, 1.0), sample(1, 30, 3.0)]);
    }

    #[test]
    fn a_corrupt_record_stops_replay_of_its_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&[sample(1, 10, 1.0)]).unwrap();
        wal.append(&[sample(1, 20, 2.0)]).unwrap();
        drop(wal);
        let path = segment_path(dir.path(), 1);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let (_, replayed) = Wal::open(dir.path()).unwrap();
        assert_eq!(replayed, vec![sample(1, 10, 1.0)]);
    }

    #[test]
    fn removed_segments_are_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&[sample(1, 10, 1.0)]).unwrap();
        let closed = wal.rotate().unwrap();
        wal.append(&[sample(1, 20, 2.0)]).unwrap();
        wal.remove_through(closed).unwrap();
        drop(wal);
        let (_, replayed) = Wal::open(dir.path()).unwrap();
        assert_eq!(replayed, vec![sample(1, 20, 2.0)]);
    }
}
