//! Compressed sample chunks: one series' `(timestamp_ms, value)` samples, timestamps strictly
//! increasing. Timestamps as in Facebook's Gorilla paper and Prometheus's XOR chunks; values
//! either XOR-encoded as there, or, when they are decimals (most exported values are: integers,
//! or readings with a few decimal places), as differences of integers at a decimal scale.
//!
//! Byte layout:
//!
//! ```text
//! bytes 0..2   u16 big-endian: sample count (low 14 bits); top bit set = decimal values,
//!              the next bit set = their differences are factored (see below)
//! bytes 2..    bit stream, most significant bit of each byte first, zero-padded to a byte:
//!   sample 0   timestamp as a zigzag varint (8-bit groups), value as its raw 64 bits,
//!              then, for decimal values, the scale s (4 bits)
//!   sample 1   timestamp delta as an unsigned varint, value encoded
//!   sample n   delta-of-delta timestamp, value encoded
//! ```
//!
//! Delta of delta (two's complement): `0` → 0; `10` + 14 bits; `110` + 17 bits; `1110` + 20
//! bits; `1111` + 64 bits. Timestamp arithmetic wraps, so any increasing pair of `i64`s encodes
//! exactly.
//!
//! XOR values, XORed with the previous value's bits: `0` → equal; `10` + the bits inside the
//! previous leading/trailing-zero window; `11` + 5 bits leading zeros + 6 bits meaningful length
//! (0 means 64) + the meaningful bits. Values are handled as bits, so every NaN payload
//! (including the stale marker) survives.
//!
//! Decimal values: each value is `n / 10^s` for an integer `n` below 2^53, decoded by exactly
//! that division (so a value is taken only if the division gives back its very bits); `n` is
//! coded as its difference `d` from the previous sample's: `0` → the same value; `10` + the
//! field in the current width; `110` + a width header, then the field; `1110` + 4 bits larger
//! scale (the previous `n` scaled up with it), then the value's code; `1111` + 64 raw bits for a
//! value no scale up to 15 holds (NaN, infinities, -0, too many digits), which leaves `n` as it
//! was. A width header is 6 bits of width (0 means 64); in a factored chunk also 1 bit (set: the
//! differences are never negative) and 6 bits `k`: the field is `d / 2^k`, zigzagged unless
//! unsigned. Counters then pay no sign bit, and byte gauges counted in kB or pages (multiples of
//! 1024, 4096) no bits for the zeros at the bottom. Unfactored chunks: the field is zigzag(d).

/// The bit pattern Prometheus uses to mark a series stale; an ordinary NaN must not match it.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Caps the count header; callers cut chunks long before this.
pub const MAX_SAMPLES: usize = COUNT_MASK as usize;

/// The header's top bit says the values are decimal; the next says their differences are
/// factored (each width header also carries a sign mode and a power of two); the rest is the
/// count. Chunks written before factoring existed have only the top bit and read as they were.
const DECIMAL_FLAG: u16 = 0x8000;
const FACTORED_FLAG: u16 = 0x4000;
const COUNT_MASK: u16 = !(DECIMAL_FLAG | FACTORED_FLAG);

const HEADER_LEN: usize = 2;

/// An open chunk's buffer grows by this many bytes at a time. The head holds one open chunk
/// per series, and doubling would leave a quarter of each unused on average.
const GROWTH: usize = 32;

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Compares bits: `==` on NaNs is always false, and other NaNs are ordinary values.
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk truncated: {0}")]
    Truncated(&'static str),
    #[error("chunk corrupt: {0}")]
    Corrupt(&'static str),
}

/// Delta-of-delta buckets: (prefix bits, prefix length, payload bits). The last one is the raw
/// 64-bit fallback.
const DOD_BUCKETS: [(u64, u32, u32); 4] = [
    (0b10, 2, 14),
    (0b110, 3, 17),
    (0b1110, 4, 20),
    (0b1111, 4, 64),
];

/// A leading-zero count must fit in the 5-bit field.
const MAX_LEADING: u32 = 31;

/// Decimal scales are 4-bit fields.
const MAX_SCALE: u32 = 15;

/// Integers below this are exact in an `f64`.
const MAX_EXACT: u64 = 1 << 53;

/// `10^s` for every scale; each is exact in an `f64`.
const POW10: [f64; MAX_SCALE as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The one way a decimal is turned back into a value, by the encoder's check and the decoder.
fn decimal_value(n: i64, scale: u32) -> f64 {
    n as f64 / POW10[scale as usize]
}

/// `v` as `n` at `scale`, if `decimal_value(n, scale)` gives back exactly its bits.
fn as_decimal(v: f64, scale: u32) -> Option<i64> {
    let scaled = (v * POW10[scale as usize]).round();
    if !scaled.is_finite() || scaled.abs() >= MAX_EXACT as f64 {
        return None;
    }
    let n = scaled as i64;
    (decimal_value(n, scale).to_bits() == v.to_bits()).then_some(n)
}

/// The smallest scale at or above `from` that holds `v`.
fn smallest_scale(v: f64, from: u32) -> Option<(u32, i64)> {
    (from..=MAX_SCALE).find_map(|scale| as_decimal(v, scale).map(|n| (scale, n)))
}

/// Extra meaningful bits accepted to widen a value window (see `write_xor`).
const WIDEN_SLACK: u32 = 4;

/// The state both the encoder and the decoder carry from one sample to the next.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    t: i64,
    delta: u64,
    v: u64,
    /// Leading and trailing zeros of the last explicitly described XOR; none before the first.
    window: Option<(u32, u32)>,
    /// Set for a chunk of decimal values.
    decimal: Option<Decimal>,
}

#[derive(Debug, Clone, Copy)]
struct Decimal {
    scale: u32,
    /// The last value held at `scale` (raw values in between leave it).
    n: i64,
    /// Bits of the current difference field; 0 before the first.
    width: u32,
    /// Differences are stored divided by `2^shift`.
    shift: u32,
    /// Differences are never negative, so they are stored without zigzag's sign bit.
    unsigned: bool,
    /// The chunk's width headers carry `shift` and `unsigned` (else they stay 0 and false).
    factored: bool,
}

impl Decimal {
    fn first(scale: u32, n: i64, factored: bool) -> Self {
        Self {
            scale,
            n,
            width: 0,
            shift: 0,
            unsigned: false,
            factored,
        }
    }

    /// The field holding difference `d` under the current width header, if it fits there.
    fn field(&self, d: i64) -> Option<u64> {
        if self.width == 0 || d.trailing_zeros() < self.shift {
            return None;
        }
        let z = difference_field(d, self.shift, self.unsigned)?;
        (64 - z.leading_zeros() <= self.width).then_some(z)
    }

    /// A width header for `d` that also holds every difference the current one holds: the
    /// shift only shrinks, the sign mode only turns signed, and the width grows to match.
    fn widened_for(&self, d: i64) -> (Self, u64) {
        let mut next = *self;
        if self.factored {
            let first = self.width == 0;
            next.shift = if first {
                d.trailing_zeros()
            } else {
                self.shift.min(d.trailing_zeros())
            };
            next.unsigned = (first || self.unsigned) && d > 0;
        }
        let z = difference_field(d, next.shift, next.unsigned)
            .expect("a signed field holds every difference");
        let needed = 64 - z.leading_zeros();
        let carried = if self.width == 0 {
            0
        } else {
            let signed_again = u32::from(self.unsigned && !next.unsigned);
            self.width + (self.shift - next.shift) + signed_again
        };
        next.width = needed.max(carried).min(64);
        (next, z)
    }
}

/// Difference `d` (a multiple of `2^shift`) as stored: divided, then zigzagged unless unsigned
/// (None when unsigned and `d` is negative).
fn difference_field(d: i64, shift: u32, unsigned: bool) -> Option<u64> {
    let q = d >> shift;
    match unsigned {
        true => u64::try_from(q).ok(),
        false => Some(zigzag(q)),
    }
}

#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    /// Header plus bit stream; the header always holds the current count, so `bytes` is a copy.
    buf: Vec<u8>,
    /// Unused low bits of the last byte.
    free: u32,
    count: usize,
    first_t: i64,
    state: State,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    pub fn new() -> Self {
        Self {
            buf: vec![0; HEADER_LEN],
            free: 0,
            count: 0,
            first_t: 0,
            state: State::default(),
        }
    }

    /// Appends a sample. The caller guarantees `t` is after [`ChunkEncoder::last_t`]; only debug
    /// builds check it (a release build writes a chunk that then fails to decode).
    ///
    /// Panics once the chunk holds [`MAX_SAMPLES`]: the count would no longer fit its header.
    pub fn push(&mut self, t: i64, v: f64) {
        assert!(
            self.count < MAX_SAMPLES,
            "chunk full ({MAX_SAMPLES} samples)"
        );
        let bits = v.to_bits();
        match self.count {
            0 => {
                debug_assert!(self.buf.len() == HEADER_LEN);
                self.write_uvarint(zigzag(t));
                self.write_bits(bits, 64);
                let decimal = smallest_scale(v, 0).map(|(scale, n)| Decimal::first(scale, n, true));
                if let Some(decimal) = decimal {
                    self.write_bits(u64::from(decimal.scale), 4);
                }
                self.first_t = t;
                self.state = State {
                    t,
                    delta: 0,
                    v: bits,
                    window: None,
                    decimal,
                };
            }
            count => {
                debug_assert!(
                    t > self.state.t,
                    "timestamps must increase: {t} after {}",
                    self.state.t
                );
                // Wrapping keeps the full range exact: the true delta is in 1..2^64.
                let delta = t.wrapping_sub(self.state.t) as u64;
                if count == 1 {
                    self.write_uvarint(delta);
                } else {
                    self.write_dod(delta.wrapping_sub(self.state.delta) as i64);
                }
                match self.state.decimal {
                    Some(decimal) => self.write_decimal(v, decimal),
                    None => self.write_xor(bits),
                }
                self.state.t = t;
                self.state.delta = delta;
                self.state.v = bits;
            }
        }
        self.count += 1;
        let flag = match self.state.decimal {
            Some(decimal) if decimal.factored => DECIMAL_FLAG | FACTORED_FLAG,
            Some(_) => DECIMAL_FLAG,
            None => 0,
        };
        self.buf[..HEADER_LEN].copy_from_slice(&(self.count as u16 | flag).to_be_bytes());
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn first_t(&self) -> Option<i64> {
        (self.count > 0).then_some(self.first_t)
    }

    pub fn last_t(&self) -> Option<i64> {
        self.last().map(|(t, _)| t)
    }

    /// The newest sample's timestamp and value bits.
    pub fn last(&self) -> Option<(i64, u64)> {
        (self.count > 0).then_some((self.state.t, self.state.v))
    }

    /// The complete encoding so far, decodable with [`ChunkIter`].
    pub fn bytes(&self) -> Vec<u8> {
        self.buf.clone()
    }

    /// Rebuilds an encoder from [`ChunkEncoder::bytes`] output so appending can continue (after a
    /// restart, say). Stricter than [`ChunkIter`]: bytes past the last sample are refused, since
    /// appending after them would corrupt the stream.
    pub fn resume(bytes: &[u8]) -> Result<Self, ChunkError> {
        let mut iter = ChunkIter::new(bytes)?;
        let mut first_t = 0;
        for (at, sample) in iter.by_ref().enumerate() {
            let (t, _) = sample?;
            if at == 0 {
                first_t = t;
            }
        }
        let end_bit = iter.reader.pos;
        let used = HEADER_LEN + end_bit.div_ceil(8);
        if bytes.len() != used {
            return Err(ChunkError::Corrupt("bytes after the last sample"));
        }
        let free = ((8 - end_bit % 8) % 8) as u32;
        if free > 0 && bytes[used - 1] & low_mask(free) as u8 != 0 {
            return Err(ChunkError::Corrupt("non-zero padding"));
        }
        Ok(Self {
            buf: bytes.to_vec(),
            free,
            count: iter.count,
            first_t,
            state: iter.state,
        })
    }

    /// Bytes used (for memory accounting): the encoded length, header included.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Writes the low `n` bits of `value`, most significant first.
    fn write_bits(&mut self, value: u64, mut n: u32) {
        while n > 0 {
            if self.free == 0 {
                if self.buf.len() == self.buf.capacity() {
                    self.buf.reserve_exact(GROWTH);
                }
                self.buf.push(0);
                self.free = 8;
            }
            let take = self.free.min(n);
            let part = (value >> (n - take)) & low_mask(take);
            let last = self.buf.len() - 1;
            self.buf[last] |= (part << (self.free - take)) as u8;
            self.free -= take;
            n -= take;
        }
    }

    fn write_uvarint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.write_bits((value & 0x7f) | 0x80, 8);
            value >>= 7;
        }
        self.write_bits(value, 8);
    }

    fn write_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.write_bit(false);
            return;
        }
        for (prefix, prefix_len, payload) in DOD_BUCKETS {
            if payload == 64 || fits_signed(dod, payload) {
                self.write_bits(prefix, prefix_len);
                self.write_bits(dod as u64, payload);
                return;
            }
        }
    }

    fn write_decimal(&mut self, v: f64, mut decimal: Decimal) {
        let n = match as_decimal(v, decimal.scale) {
            Some(n) => n,
            None => {
                // The previous integer scaled up stays below 2^53 like every `n`, so that the
                // difference between the two always fits an i64.
                let rescaled = smallest_scale(v, decimal.scale + 1).and_then(|(scale, n)| {
                    let factor = POW10[(scale - decimal.scale) as usize] as i64;
                    let previous = decimal.n.checked_mul(factor)?;
                    (previous.unsigned_abs() < MAX_EXACT).then_some((scale, n, previous))
                });
                let Some((scale, n, previous)) = rescaled else {
                    self.write_bits(0b1111, 4);
                    self.write_bits(v.to_bits(), 64);
                    return;
                };
                self.write_bits(0b1110, 4);
                self.write_bits(u64::from(scale), 4);
                decimal.scale = scale;
                decimal.n = previous;
                n
            }
        };
        // Both below 2^53 in magnitude, so the difference cannot overflow.
        let d = n - decimal.n;
        if d == 0 {
            self.write_bit(false);
        } else {
            let z = match decimal.field(d) {
                Some(z) => {
                    self.write_bits(0b10, 2);
                    z
                }
                None => {
                    let (widened, z) = decimal.widened_for(d);
                    decimal = widened;
                    self.write_bits(0b110, 3);
                    self.write_bits(u64::from(decimal.width & 63), 6);
                    if decimal.factored {
                        self.write_bit(decimal.unsigned);
                        self.write_bits(u64::from(decimal.shift), 6);
                    }
                    z
                }
            };
            self.write_bits(z, decimal.width);
        }
        decimal.n = n;
        self.state.decimal = Some(decimal);
    }

    fn write_xor(&mut self, bits: u64) {
        let xor = bits ^ self.state.v;
        if xor == 0 {
            self.write_bit(false);
            return;
        }
        let leading = xor.leading_zeros().min(MAX_LEADING);
        let trailing = xor.trailing_zeros();
        match self.state.window {
            Some((prev_leading, prev_trailing))
                if leading >= prev_leading && trailing >= prev_trailing =>
            {
                self.write_bits(0b10, 2);
                self.write_bits(xor >> prev_trailing, 64 - prev_leading - prev_trailing);
            }
            prev => {
                // Counters' XORs alternate between overlapping windows (the carry reaches a
                // different bit each time); also covering the previous window, when that costs
                // a few bits, lets the following XORs fit and skip this 13-bit header.
                let (leading, trailing) = match prev {
                    Some((prev_leading, prev_trailing))
                        if leading + trailing
                            <= prev_leading.min(leading)
                                + prev_trailing.min(trailing)
                                + WIDEN_SLACK =>
                    {
                        (prev_leading.min(leading), prev_trailing.min(trailing))
                    }
                    _ => (leading, trailing),
                };
                let significant = 64 - leading - trailing;
                self.write_bits(0b11, 2);
                self.write_bits(u64::from(leading), 5);
                // 64 significant bits is stored as 0; 0 itself cannot occur (xor != 0).
                self.write_bits(u64::from(significant & 63), 6);
                self.write_bits(xor >> trailing, significant);
                self.state.window = Some((leading, trailing));
            }
        }
    }
}

/// Decodes a chunk sample by sample. After an error item it yields `None`.
#[derive(Debug, Clone)]
pub struct ChunkIter<'a> {
    reader: BitReader<'a>,
    count: usize,
    decimal: bool,
    factored: bool,
    emitted: usize,
    failed: bool,
    state: State,
}

impl<'a> ChunkIter<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, ChunkError> {
        let Some((header, stream)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(ChunkError::Truncated("no sample count header"));
        };
        Ok(Self {
            reader: BitReader {
                bytes: stream,
                pos: 0,
            },
            count: usize::from(u16::from_be_bytes(*header) & COUNT_MASK),
            decimal: u16::from_be_bytes(*header) & DECIMAL_FLAG != 0,
            factored: u16::from_be_bytes(*header) & FACTORED_FLAG != 0,
            emitted: 0,
            failed: false,
            state: State::default(),
        })
    }

    /// Samples in the chunk, as its header states.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn decode_next(&mut self) -> Result<(i64, u64), ChunkError> {
        let r = &mut self.reader;
        if self.emitted == 0 {
            let t = unzigzag(r.read_uvarint()?);
            let v = r.read_bits(64, "first value")?;
            if self.decimal {
                let scale = r.read_bits(4, "decimal scale")? as u32;
                let n = as_decimal(f64::from_bits(v), scale)
                    .ok_or(ChunkError::Corrupt("first value not at the chunk's scale"))?;
                self.state.decimal = Some(Decimal::first(scale, n, self.factored));
            }
            self.state.t = t;
            self.state.v = v;
            return Ok((t, v));
        }
        let delta = if self.emitted == 1 {
            r.read_uvarint()?
        } else {
            let dod = read_dod(r)?;
            self.state.delta.wrapping_add(dod as u64)
        };
        let t = self.state.t.wrapping_add(delta as i64);
        if t <= self.state.t {
            return Err(ChunkError::Corrupt("timestamps not increasing"));
        }
        let v = match self.state.decimal {
            Some(decimal) => self.read_decimal(decimal)?,
            None => self.state.v ^ self.read_xor()?,
        };
        self.state.t = t;
        self.state.delta = delta;
        self.state.v = v;
        Ok((t, v))
    }

    fn read_decimal(&mut self, mut decimal: Decimal) -> Result<u64, ChunkError> {
        let r = &mut self.reader;
        let mut ones = r.read_ones(4, "value")?;
        if ones == 4 {
            return r.read_bits(64, "raw value");
        }
        if ones == 3 {
            let scale = r.read_bits(4, "decimal scale")? as u32;
            if scale <= decimal.scale {
                return Err(ChunkError::Corrupt("decimal scale does not grow"));
            }
            let factor = POW10[(scale - decimal.scale) as usize] as i64;
            decimal.n = decimal
                .n
                .checked_mul(factor)
                .ok_or(ChunkError::Corrupt("rescaled value overflows"))?;
            decimal.scale = scale;
            ones = r.read_ones(3, "value")?;
            if ones == 3 {
                return Err(ChunkError::Corrupt("rescale not followed by a difference"));
            }
        }
        if ones == 2 {
            decimal.width = match r.read_bits(6, "difference width")? as u32 {
                0 => 64,
                width => width,
            };
            if decimal.factored {
                decimal.unsigned = r.read_bits(1, "difference sign mode")? == 1;
                decimal.shift = r.read_bits(6, "difference factor")? as u32;
            }
        }
        if ones > 0 {
            if decimal.width == 0 {
                return Err(ChunkError::Corrupt(
                    "difference width reused before one was set",
                ));
            }
            let z = r.read_bits(decimal.width, "difference")?;
            let q = if decimal.unsigned {
                z as i64
            } else {
                unzigzag(z)
            };
            decimal.n = decimal.n.wrapping_add(q.wrapping_shl(decimal.shift));
        }
        self.state.decimal = Some(decimal);
        Ok(decimal_value(decimal.n, decimal.scale).to_bits())
    }

    fn read_xor(&mut self) -> Result<u64, ChunkError> {
        let r = &mut self.reader;
        let xor = match r.read_bits(1, "value")? {
            0 => 0,
            _ => match r.read_bits(1, "value")? {
                0 => {
                    let (leading, trailing) = self.state.window.ok_or(ChunkError::Corrupt(
                        "value window reused before one was set",
                    ))?;
                    r.read_bits(64 - leading - trailing, "value bits")? << trailing
                }
                _ => {
                    let leading = r.read_bits(5, "value leading zeros")? as u32;
                    let significant = match r.read_bits(6, "value length")? as u32 {
                        0 => 64,
                        n => n,
                    };
                    if leading + significant > 64 {
                        return Err(ChunkError::Corrupt("value window wider than 64 bits"));
                    }
                    let trailing = 64 - leading - significant;
                    self.state.window = Some((leading, trailing));
                    r.read_bits(significant, "value bits")? << trailing
                }
            },
        };
        Ok(xor)
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = Result<(i64, f64), ChunkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.emitted == self.count {
            return None;
        }
        match self.decode_next() {
            Ok((t, v)) => {
                self.emitted += 1;
                Some(Ok((t, f64::from_bits(v))))
            }
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            return (0, Some(0));
        }
        let left = self.count - self.emitted;
        // A corrupt stream may end early with one error item.
        (left.min(1), Some(left))
    }
}

/// All samples of a chunk, or its first error.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<(i64, f64)>, ChunkError> {
    ChunkIter::new(bytes)?.collect()
}

fn read_dod(r: &mut BitReader<'_>) -> Result<i64, ChunkError> {
    let ones = r.read_ones(DOD_BUCKETS.len(), "timestamp")?;
    if ones == 0 {
        return Ok(0);
    }
    let payload = DOD_BUCKETS[ones - 1].2;
    let raw = r.read_bits(payload, "timestamp delta of delta")?;
    // Sign-extend the two's complement payload.
    let shift = 64 - payload;
    Ok(((raw << shift) as i64) >> shift)
}

#[derive(Debug, Clone)]
struct BitReader<'a> {
    bytes: &'a [u8],
    /// Bits consumed.
    pos: usize,
}

impl BitReader<'_> {
    fn read_bits(&mut self, mut n: u32, what: &'static str) -> Result<u64, ChunkError> {
        if self.pos + n as usize > self.bytes.len() * 8 {
            return Err(ChunkError::Truncated(what));
        }
        let mut value = 0u64;
        while n > 0 {
            let byte = self.bytes[self.pos / 8];
            let avail = 8 - (self.pos % 8) as u32;
            let take = avail.min(n);
            let part = (u64::from(byte) >> (avail - take)) & low_mask(take);
            value = (value << take) | part;
            self.pos += take as usize;
            n -= take;
        }
        Ok(value)
    }

    /// Counts one bits up to `max` (a prefix code's length), consuming the zero that ends them
    /// if there is one before `max`.
    fn read_ones(&mut self, max: usize, what: &'static str) -> Result<usize, ChunkError> {
        let mut ones = 0;
        while ones < max && self.read_bits(1, what)? == 1 {
            ones += 1;
        }
        Ok(ones)
    }

    fn read_uvarint(&mut self) -> Result<u64, ChunkError> {
        let mut value = 0u64;
        for group in 0..10 {
            let byte = self.read_bits(8, "timestamp varint")?;
            if group == 9 && byte > 1 {
                return Err(ChunkError::Corrupt("varint overflows 64 bits"));
            }
            value |= (byte & 0x7f) << (7 * group);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ChunkError::Corrupt("varint longer than 10 bytes"))
    }
}

fn low_mask(n: u32) -> u64 {
    if n >= 64 { u64::MAX } else { (1 << n) - 1 }
}

fn fits_signed(x: i64, bits: u32) -> bool {
    let half = 1i64 << (bits - 1);
    (-half..half).contains(&x)
}

fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

fn unzigzag(x: u64) -> i64 {
    ((x >> 1) as i64) ^ -((x & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic test data without a dependency.
    struct Rng(u64);

    impl Rng {
        fn seeded(seed: u64) -> Self {
            // splitmix64 step: small seeds would otherwise start with nearly-zero outputs.
            let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            Rng((z ^ (z >> 31)) | 1)
        }

        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut enc = ChunkEncoder::new();
        for &(t, v) in samples {
            enc.push(t, v);
        }
        assert_eq!(enc.len(), samples.len());
        assert_eq!(enc.size(), enc.bytes().len());
        enc.bytes()
    }

    /// Round trips and compares values by bits, so NaNs count as equal only to themselves.
    fn assert_round_trip(samples: &[(i64, f64)]) -> Vec<u8> {
        let bytes = encode(samples);
        let decoded = decode_all(&bytes).unwrap();
        assert_eq!(decoded.len(), samples.len());
        for (at, (got, want)) in decoded.iter().zip(samples).enumerate() {
            assert_eq!(got.0, want.0, "timestamp {at}");
            assert_eq!(
                got.1.to_bits(),
                want.1.to_bits(),
                "value {at}: {} vs {}",
                got.1,
                want.1
            );
        }
        assert_eq!(ChunkIter::new(&bytes).unwrap().len(), samples.len());
        bytes
    }

    fn counter(n: usize, seed: u64) -> Vec<(i64, f64)> {
        let mut rng = Rng::seeded(seed);
        let start = 1_700_000_000_000i64;
        let mut v = 48_213.0;
        (0..n as i64)
            .map(|slot| {
                // About one scrape in twenty lands 1..5 ms off its slot.
                let jitter = if rng.below(20) == 0 {
                    rng.below(5) as i64 + 1
                } else {
                    0
                };
                let sign = if rng.below(2) == 0 { 1 } else { -1 };
                let sample = (start + slot * 15_000 + sign * jitter, v);
                v += rng.below(3) as f64;
                sample
            })
            .collect()
    }

    /// The mean over many 120-sample chunks, since that is what memory use follows; a single
    /// chunk varies with how many jittered scrapes it happens to get.
    #[test]
    fn regular_counter_compresses_below_1_4_bytes_per_sample() {
        let (mut total, mut worst) = (0.0, 0.0f64);
        let chunks = 50;
        for seed in 0..chunks {
            let samples = counter(120, seed);
            let bytes = assert_round_trip(&samples);
            let per_sample = bytes.len() as f64 / samples.len() as f64;
            total += per_sample;
            worst = worst.max(per_sample);
        }
        let mean = total / chunks as f64;
        eprintln!("counter, 120 samples: mean {mean:.3} bytes/sample, worst chunk {worst:.3}");
        assert!(mean <= 1.4, "mean {mean} bytes/sample");
        assert!(worst <= 1.8, "worst chunk {worst} bytes/sample");
    }

    #[test]
    fn gauges_with_random_floats() {
        let mut rng = Rng::seeded(7);
        let mut t = 0;
        let samples: Vec<_> = (0..300)
            .map(|_| {
                t += 1 + rng.below(60_000) as i64;
                let v = match rng.below(3) {
                    0 => f64::from_bits(rng.next()),
                    1 => (rng.next() as f64 / u64::MAX as f64) * 100.0 - 50.0,
                    _ => rng.below(1000) as f64 / 8.0,
                };
                (t, v)
            })
            .collect();
        assert_round_trip(&samples);
    }

    #[test]
    fn special_values_keep_their_bits() {
        let values = [
            1.0,
            f64::NAN,
            stale_nan(),
            f64::NAN,
            stale_nan(),
            stale_nan(),
            f64::INFINITY,
            f64::NEG_INFINITY,
            -f64::NAN,
            f64::from_bits(0x7ff8_dead_beef_0001),
            -0.0,
            0.0,
            f64::MIN_POSITIVE / 4.0,
            f64::MAX,
            f64::MIN,
            stale_nan(),
        ];
        // Led by a decimal, the others go raw inside a decimal chunk; led by a value that is no
        // decimal, the chunk is XOR-coded.
        for (first, decimal) in [(1.0, true), (0.1 + 0.2, false)] {
            let samples: Vec<_> = std::iter::once(first)
                .chain(values[1..].iter().copied())
                .enumerate()
                .map(|(i, v)| (i as i64 * 1000, v))
                .collect();
            let bytes = assert_round_trip(&samples);
            assert_eq!(is_decimal(&bytes), decimal);
            let decoded = decode_all(&bytes).unwrap();
            assert!(is_stale_nan(decoded[2].1));
            assert!(!is_stale_nan(decoded[1].1));
            assert!(decoded[1].1.is_nan());
        }
        assert!(!is_stale_nan(f64::NAN));
    }

    #[test]
    fn negative_timestamps() {
        let samples: Vec<_> = (0..100)
            .map(|i| (-1_000_000 + i * 15_000 + (i % 3), i as f64))
            .collect();
        assert!(samples.first().unwrap().0 < 0 && samples.last().unwrap().0 > 0);
        assert_round_trip(&samples);
        assert_round_trip(&[(-5, 1.0), (-4, 2.0), (-1, 3.0)]);
    }

    #[test]
    fn huge_deltas() {
        assert_round_trip(&[(i64::MIN, 1.0), (i64::MAX, 2.0)]);
        assert_round_trip(&[
            (i64::MIN, 0.0),
            (i64::MIN + 1, 1.0),
            (0, 2.0),
            (1, 3.0),
            (1 << 40, 4.0),
            ((1 << 40) + (1 << 19), 5.0),
            (i64::MAX - 1, 6.0),
            (i64::MAX, 7.0),
        ]);
        // Each bucket's edges.
        let mut samples = vec![(0, 0.0), (1_000_000, 0.0)];
        let mut delta = 1_000_000i64;
        for dod in [
            0, 1, -1, 8191, -8192, 8192, -8193, 65535, -65536, 65536, -65537, 524_287, -524_288,
            524_288, -524_289,
        ] {
            delta += dod;
            let t = samples.last().unwrap().0 + delta;
            samples.push((t, 0.0));
        }
        assert_round_trip(&samples);
    }

    #[test]
    fn resume_and_continue_equals_one_shot() {
        let mut samples = counter(150, 3);
        samples[40].1 = stale_nan();
        samples[90].1 = f64::from_bits(0x3ff1_2345_6789_abcd);
        let one_shot = encode(&samples);
        for split in 0..=samples.len() {
            let resumed = ChunkEncoder::resume(&encode(&samples[..split])).unwrap();
            assert_eq!(resumed.len(), split);
            assert_eq!(
                resumed.first_t(),
                samples.first().filter(|_| split > 0).map(|s| s.0)
            );
            assert_eq!(
                resumed.last_t(),
                split.checked_sub(1).map(|at| samples[at].0)
            );
            let mut enc = resumed;
            for &(t, v) in &samples[split..] {
                enc.push(t, v);
            }
            assert_eq!(enc.bytes(), one_shot, "split at {split}");
        }
    }

    #[test]
    fn resume_refuses_trailing_bytes() {
        let mut bytes = encode(&counter(10, 1));
        bytes.push(0);
        assert_eq!(
            ChunkEncoder::resume(&bytes).unwrap_err(),
            ChunkError::Corrupt("bytes after the last sample")
        );
        assert!(decode_all(&bytes).is_ok());
    }

    #[test]
    fn empty_and_single_sample() {
        let enc = ChunkEncoder::default();
        assert!(enc.is_empty());
        assert_eq!(enc.first_t(), None);
        assert_eq!(enc.last_t(), None);
        assert_eq!(decode_all(&enc.bytes()).unwrap(), vec![]);
        assert!(ChunkEncoder::resume(&enc.bytes()).unwrap().is_empty());

        let bytes = assert_round_trip(&[(42, 3.5)]);
        let enc = ChunkEncoder::resume(&bytes).unwrap();
        assert_eq!((enc.first_t(), enc.last_t()), (Some(42), Some(42)));
    }

    #[test]
    fn a_thousand_samples() {
        let samples = counter(1000, 11);
        let bytes = assert_round_trip(&samples);
        let enc = ChunkEncoder::resume(&bytes).unwrap();
        assert_eq!(enc.first_t(), Some(samples[0].0));
        assert_eq!(enc.last_t(), Some(samples[999].0));
    }

    #[test]
    fn an_open_chunk_never_reserves_much_more_than_it_holds() {
        let mut rng = Rng::seeded(3);
        let mut enc = ChunkEncoder::new();
        for i in 0..2000 {
            enc.push(i * 15_000, rng.below(1 << 40) as f64 * 1.37);
            assert!(
                enc.buf.capacity() - enc.buf.len() <= GROWTH,
                "at sample {i}"
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode(&counter(60, 5));
        for cut in 0..bytes.len() {
            let prefix = &bytes[..cut];
            assert!(decode_all(prefix).is_err(), "cut at {cut}");
            assert!(ChunkEncoder::resume(prefix).is_err(), "cut at {cut}");
        }
        assert_eq!(
            ChunkIter::new(&[1]).unwrap_err(),
            ChunkError::Truncated("no sample count header")
        );
    }

    #[test]
    fn an_error_item_ends_the_iteration() {
        let bytes = encode(&counter(20, 9));
        let mut iter = ChunkIter::new(&bytes[..bytes.len() / 2]).unwrap();
        let items: Vec<_> = iter.by_ref().collect();
        assert!(items.last().unwrap().is_err());
        assert!(items[..items.len() - 1].iter().all(Result::is_ok));
        assert!(iter.next().is_none());
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let mut rng = Rng::seeded(0x5eed);
        for _ in 0..20_000 {
            let len = rng.below(64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = decode_all(&bytes);
            let _ = ChunkEncoder::resume(&bytes);
        }
        let mut xor_coded = counter(80, 2);
        xor_coded[0].1 = 0.1 + 0.2;
        for good in [
            encode(&counter(80, 2)),
            encode(&decimal_gauge(80, 2, 1e4)),
            encode(&page_gauge(80, 2)),
            encode(&xor_coded),
        ] {
            mutate_and_decode(&good, &mut rng);
        }
    }

    fn mutate_and_decode(good: &[u8], rng: &mut Rng) {
        for _ in 0..20_000 {
            let mut bytes = good.to_vec();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] ^= 1 << rng.below(8);
            }
            if let Ok(samples) = decode_all(&bytes) {
                // Whatever decodes must still be a valid chunk.
                assert!(samples.windows(2).all(|w| w[0].0 < w[1].0));
            }
            let _ = ChunkEncoder::resume(&bytes);
        }
    }

    fn is_decimal(bytes: &[u8]) -> bool {
        u16::from_be_bytes([bytes[0], bytes[1]]) & DECIMAL_FLAG != 0
    }

    /// A gauge as exporters report one: a random walk in steps of up to `scale / 200`, rounded
    /// to two decimals.
    fn decimal_gauge(n: usize, seed: u64, scale: f64) -> Vec<(i64, f64)> {
        let mut rng = Rng::seeded(seed);
        let mut v = (rng.below(1000) as f64 / 1000.0 * scale * 100.0).round() / 100.0;
        (0..n as i64)
            .map(|slot| {
                let step = (rng.below(1001) as f64 / 1000.0 - 0.5) * scale / 100.0;
                v = ((v + step).max(0.0) * 100.0).round() / 100.0;
                (1_700_000_000_000 + slot * 15_000, v)
            })
            .collect()
    }

    /// XOR coding spends about 7 bytes on each such sample (the decimals fill the mantissa);
    /// as decimals, what is stored is the change, here about 10 bits.
    #[test]
    fn decimal_gauges_cost_their_changes_not_their_mantissas() {
        let mean = mean_bytes_per_sample(
            |seed| decimal_gauge(240, seed, 1000.0),
            |bytes| {
                assert!(is_decimal(bytes));
            },
        );
        eprintln!("two-decimal gauge, 240 samples: mean {mean:.3} bytes/sample");
        assert!(mean <= 1.8, "mean {mean} bytes/sample");
    }

    /// The mean size of 50 chunks of a generated series (seeds 0..50), each round-tripped and
    /// given to `check`: one chunk varies with its draw.
    fn mean_bytes_per_sample(
        series: impl Fn(u64) -> Vec<(i64, f64)>,
        check: impl Fn(&[u8]),
    ) -> f64 {
        let chunks = 50;
        let total: f64 = (0..chunks)
            .map(|seed| {
                let samples = series(seed);
                let bytes = assert_round_trip(&samples);
                check(&bytes);
                bytes.len() as f64 / samples.len() as f64
            })
            .sum();
        total / chunks as f64
    }

    /// Bytes in 4 KiB pages, as process and container memory are reported: a walk of up to
    /// 1024 pages either way per sample.
    fn page_gauge(n: usize, seed: u64) -> Vec<(i64, f64)> {
        let mut rng = Rng::seeded(seed);
        let mut pages = 100_000 + rng.below(100_000) as i64;
        (0..n as i64)
            .map(|slot| {
                pages += rng.below(2049) as i64 - 1024;
                (1_700_000_000_000 + slot * 15_000, (pages * 4096) as f64)
            })
            .collect()
    }

    /// Unfactored, each change costs its 23 bits (12 of them always zero) plus the sign and
    /// prefixes, ~3.4 bytes; factored, the zeros go.
    #[test]
    fn page_counted_gauges_pay_nothing_for_the_zeros_at_the_bottom() {
        let mean = mean_bytes_per_sample(|seed| page_gauge(240, seed), |_| {});
        eprintln!("page-counted gauge, 240 samples: mean {mean:.3} bytes/sample");
        assert!(mean <= 2.0, "mean {mean} bytes/sample");
    }

    /// Increments of 0..=255: 8 bits each, plus 3 for prefix and timestamp and the chunk's
    /// header (~1.46 bytes a sample). Zigzag would add a sign bit to every one (~1.58).
    #[test]
    fn counters_pay_no_sign_bit() {
        let mut rng = Rng::seeded(3);
        let mut v = 1e6;
        let samples: Vec<_> = (0..240)
            .map(|slot| {
                v += rng.below(256) as f64;
                (1_700_000_000_000 + slot * 15_000, v)
            })
            .collect();
        let bytes = assert_round_trip(&samples);
        let per_sample = bytes.len() as f64 / samples.len() as f64;
        assert!(per_sample <= 1.5, "{per_sample} bytes/sample");
    }

    /// A decimal chunk as nightlight wrote them before differences were factored (values with
    /// rescales, a raw NaN, width growth and a negative step); it must still read, and resume
    /// in its own coding.
    #[test]
    fn chunks_written_before_factoring_still_read_and_resume() {
        let written: [u8; 53] = [
            0x80, 0x0a, 0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62, 0x3f, 0xf8, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x19, 0x87, 0x5c, 0x25, 0x10, 0x00, 0x3c, 0x58, 0x89, 0x5b, 0xff, 0xec,
            0x7c, 0xd2, 0x68, 0x00, 0x18, 0x01, 0x8b, 0xdf, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x1c, 0x79, 0x2b, 0xcb, 0x85, 0x00, 0x1f, 0x28, 0x4e, 0x1f,
        ];
        let values = [
            1.5,
            2.0,
            2.0,
            1.25,
            100.0,
            99.75,
            f64::NAN,
            3.125,
            3.0,
            -7.0,
        ];
        let times = [
            0, 15_000, 30_000, 45_001, 60_000, 75_000, 90_000, 105_000, 120_000, 135_000,
        ];
        let want: Vec<(i64, f64)> = times
            .iter()
            .zip(values)
            .map(|(&t, v)| (1_700_000_000_000 + t, v))
            .collect();
        let bits = |samples: &[(i64, f64)]| -> Vec<(i64, u64)> {
            samples.iter().map(|&(t, v)| (t, v.to_bits())).collect()
        };
        assert!(is_decimal(&written));
        assert_eq!(bits(&decode_all(&written).unwrap()), bits(&want));

        let mut resumed = ChunkEncoder::resume(&written).unwrap();
        let more = [(1_700_000_150_000, -6.5), (1_700_000_165_000, 4096.0)];
        for (t, v) in more {
            resumed.push(t, v);
        }
        let bytes = resumed.bytes();
        assert_eq!(u16::from_be_bytes([bytes[0], bytes[1]]) & FACTORED_FLAG, 0);
        let all: Vec<_> = want.iter().copied().chain(more).collect();
        assert_eq!(bits(&decode_all(&bytes).unwrap()), bits(&all));
    }

    #[test]
    fn scale_grows_and_other_values_pass_through_raw() {
        let values = [
            3.0,
            4.0,
            4.5,
            4.25,
            stale_nan(),
            4.25,
            1.0 / 3.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e300,
            0.1 + 0.2,
            -5.125,
            (1u64 << 60) as f64,
            123_456.000_001,
            0.0,
            0.0,
        ];
        let samples: Vec<_> = values
            .iter()
            .enumerate()
            .map(|(at, &v)| (at as i64, v))
            .collect();
        let bytes = assert_round_trip(&samples);
        assert!(is_decimal(&bytes));
        for split in 0..=samples.len() {
            let mut enc = ChunkEncoder::resume(&encode(&samples[..split])).unwrap();
            for &(t, v) in &samples[split..] {
                enc.push(t, v);
            }
            assert_eq!(enc.bytes(), bytes, "split at {split}");
        }
        // Eighths need three decimals from the second sample on: one rescale, then each
        // step costs its difference, not 64 raw bits.
        let eighths: Vec<_> = (0..100).map(|i| (i, 1.0 + i as f64 * 0.125)).collect();
        let bytes = assert_round_trip(&eighths);
        assert!(bytes.len() < 2 * eighths.len(), "{} bytes", bytes.len());
    }

    /// A scale that would take the previous integer past 2^53 is not taken and the value goes
    /// raw: here the difference, 9e15 - -9.22e18, would overflow an `i64`.
    #[test]
    fn a_rescale_that_could_overflow_the_difference_is_refused() {
        let samples = [(1, -9.22e14), (2, 900_000_000_000.000_1), (3, 2.5)];
        let bytes = assert_round_trip(&samples);
        assert!(is_decimal(&bytes));
    }

    #[test]
    fn a_first_value_that_is_no_decimal_keeps_xor_coding() {
        for first in [1.0 / 3.0, stale_nan(), f64::NAN, -0.0, 1e300] {
            let samples = [(1, first), (2, 2.0), (3, 2.5)];
            let bytes = assert_round_trip(&samples);
            assert!(!is_decimal(&bytes), "{first}");
        }
    }
}
