//! The arithmetic of resumable uploads (spec §11.9.1) and of byte ranges (spec §11.9.7), which
//! client and server must compute identically.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::{CONTENT_CHUNK_STRIDE, MAX_CONTENT_LENGTH, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
use crate::error::{Error, Result};

/// Checks the shape of an upload and returns its part count, `ceil(total_length / part_size)`.
///
/// # Errors
/// [`Error::InvalidArgument`] for an empty upload or a part size that is not a multiple of
/// [`CONTENT_CHUNK_STRIDE`]; [`Error::LimitExceeded`] outside [`MIN_PART_SIZE`]..=[`MAX_PART_SIZE`],
/// above [`MAX_CONTENT_LENGTH`] or above [`MAX_PARTS`] parts.
pub fn part_count(total_length: u64, part_size: u64) -> Result<u64> {
    if total_length == 0 {
        return Err(Error::InvalidArgument("empty upload"));
    }
    if total_length > MAX_CONTENT_LENGTH {
        return Err(Error::LimitExceeded {
            what: "content length",
            limit: MAX_CONTENT_LENGTH,
        });
    }
    if part_size < MIN_PART_SIZE {
        return Err(Error::LimitExceeded {
            what: "minimum part size",
            limit: MIN_PART_SIZE,
        });
    }
    if part_size > MAX_PART_SIZE {
        return Err(Error::LimitExceeded {
            what: "part size",
            limit: MAX_PART_SIZE,
        });
    }
    if part_size % CONTENT_CHUNK_STRIDE != 0 {
        return Err(Error::InvalidArgument(
            "part size not a multiple of the chunk stride",
        ));
    }
    let count = total_length.div_ceil(part_size);
    if count > MAX_PARTS {
        return Err(Error::LimitExceeded {
            what: "part count",
            limit: MAX_PARTS,
        });
    }
    Ok(count)
}

/// The byte offset and exact length of part `index`: every part is `part_size` bytes except the
/// last, which holds the remainder (never empty).
///
/// # Errors
/// As [`part_count`], and [`Error::InvalidArgument`] for an index at or past the part count.
pub fn part_span(total_length: u64, part_size: u64, index: u64) -> Result<(u64, u64)> {
    let count = part_count(total_length, part_size)?;
    if index >= count {
        return Err(Error::InvalidArgument("part index out of range"));
    }
    let offset = index * part_size;
    Ok((offset, part_size.min(total_length - offset)))
}

/// Which parts of an upload are stored: the `present` field of `UploadStatus`.
///
/// Bit `i % 8` (least significant first) of byte `i / 8` is part `i`; the bitmap is exactly
/// `ceil(part_count / 8)` bytes and its unused high bits are zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartBitmap {
    count: u64,
    bits: Vec<u8>,
}

impl PartBitmap {
    /// An empty bitmap of `part_count` parts.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] above [`MAX_PARTS`].
    pub fn new(part_count: u64) -> Result<Self> {
        if part_count > MAX_PARTS {
            return Err(Error::LimitExceeded {
                what: "part count",
                limit: MAX_PARTS,
            });
        }
        let len = usize::try_from(part_count.div_ceil(8)).map_err(|_| Error::Internal("usize"))?;
        Ok(PartBitmap {
            count: part_count,
            bits: vec![0; len],
        })
    }

    /// Parses a received bitmap of `part_count` parts.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a wrong length or a set bit past the last part.
    pub fn from_bytes(bytes: &[u8], part_count: u64) -> Result<Self> {
        let mut map = PartBitmap::new(part_count)?;
        if bytes.len() != map.bits.len() {
            return Err(Error::InvalidArgument("bitmap length"));
        }
        map.bits.copy_from_slice(bytes);
        let used = part_count % 8;
        if used != 0 {
            let last = map.bits.last().copied().unwrap_or(0);
            if last >> used != 0 {
                return Err(Error::InvalidArgument("bitmap padding bits set"));
            }
        }
        Ok(map)
    }

    /// The wire form.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// The number of parts.
    #[must_use]
    pub fn part_count(&self) -> u64 {
        self.count
    }

    /// Marks part `index` stored.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an index past the last part.
    pub fn set(&mut self, index: u64) -> Result<()> {
        let (byte, bit) = self.locate(index)?;
        self.bits[byte] |= 1 << bit;
        Ok(())
    }

    /// Whether part `index` is stored (false past the last part).
    #[must_use]
    pub fn is_set(&self, index: u64) -> bool {
        self.locate(index)
            .is_ok_and(|(byte, bit)| self.bits[byte] & (1 << bit) != 0)
    }

    /// The parts not yet stored, ascending.
    #[must_use]
    pub fn missing(&self) -> Vec<u64> {
        (0..self.count).filter(|&i| !self.is_set(i)).collect()
    }

    /// Whether every part is stored.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        (0..self.count).all(|i| self.is_set(i))
    }

    fn locate(&self, index: u64) -> Result<(usize, u32)> {
        if index >= self.count {
            return Err(Error::InvalidArgument("part index out of range"));
        }
        let byte = usize::try_from(index / 8).map_err(|_| Error::Internal("usize"))?;
        Ok((byte, (index % 8) as u32))
    }
}

/// A satisfiable single byte range of content of known length: bytes `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte (inclusive).
    pub first: u64,
    /// Last byte (inclusive), below the content length.
    pub last: u64,
}

impl ByteRange {
    /// Parses a `Range` header value against content of `length` bytes (spec §11.9.7):
    /// exactly one of `bytes=F-L`, `bytes=F-` or `bytes=-N`, decimal digits without signs or
    /// spaces. `L` past the end is clamped to the last byte.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for anything the server answers with 416: other syntax, other
    /// units, several ranges, `F > L`, `F >= length`, `N = 0`, or empty content.
    pub fn parse(value: &str, length: u64) -> Result<Self> {
        let bad = Error::InvalidArgument("range not satisfiable");
        let spec = value.strip_prefix("bytes=").ok_or(bad.clone())?;
        let (a, b) = spec.split_once('-').ok_or(bad.clone())?;
        let num = |s: &str| -> Result<u64> {
            if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit()) {
                return Err(Error::InvalidArgument("range not satisfiable"));
            }
            s.parse::<u64>()
                .map_err(|_| Error::InvalidArgument("range not satisfiable"))
        };
        if length == 0 {
            return Err(bad);
        }
        if a.is_empty() {
            let n = num(b)?;
            if n == 0 {
                return Err(bad);
            }
            return Ok(ByteRange {
                first: length.saturating_sub(n),
                last: length - 1,
            });
        }
        let first = num(a)?;
        let last = if b.is_empty() { length - 1 } else { num(b)? };
        if first > last || first >= length {
            return Err(bad);
        }
        Ok(ByteRange {
            first,
            last: last.min(length - 1),
        })
    }

    /// The number of bytes in the range.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Always false: a range holds at least one byte.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether the range includes the first byte of the content (such a response counts as a
    /// link download, spec §11.11.5).
    #[must_use]
    pub fn includes_start(&self) -> bool {
        self.first == 0
    }

    /// The `Content-Range` value of a 206 response: `bytes F-L/length`.
    #[must_use]
    pub fn content_range(&self, length: u64) -> String {
        alloc::format!("bytes {}-{}/{length}", self.first, self.last)
    }

    /// The `Content-Range` value of a 416 response: `bytes */length`.
    #[must_use]
    pub fn unsatisfied_content_range(length: u64) -> String {
        alloc::format!("bytes */{length}")
    }
}
