//! Checked little-endian reads from bytes that came from a core or an executable.
//!
//! Every read checks its offset and length (with checked arithmetic) and answers `None` when
//! the bytes are not there, so a damaged or truncated input can never index out of bounds or
//! size an allocation. [`Bytes`] reads at offsets; [`Cursor`] reads in sequence.

/// A byte slice read at checked offsets.
#[derive(Clone, Copy, Debug)]
pub struct Bytes<'a>(pub &'a [u8]);

impl<'a> Bytes<'a> {
    /// The bytes `off..off + len`, if all of them are there.
    pub fn slice(self, off: usize, len: usize) -> Option<&'a [u8]> {
        self.0.get(off..off.checked_add(len)?)
    }

    /// The bytes from `off` to the end, if `off` is within the slice (or at its end).
    pub fn from(self, off: usize) -> Option<&'a [u8]> {
        self.0.get(off..)
    }

    /// `N` bytes at `off` as an array.
    pub fn array<const N: usize>(self, off: usize) -> Option<[u8; N]> {
        self.slice(off, N)?.try_into().ok()
    }

    /// The byte at `off`.
    pub fn u8(self, off: usize) -> Option<u8> {
        self.0.get(off).copied()
    }

    /// The little-endian `u16` at `off`.
    pub fn u16(self, off: usize) -> Option<u16> {
        self.array(off).map(u16::from_le_bytes)
    }

    /// The little-endian `u32` at `off`.
    pub fn u32(self, off: usize) -> Option<u32> {
        self.array(off).map(u32::from_le_bytes)
    }

    /// The little-endian `u64` at `off`.
    pub fn u64(self, off: usize) -> Option<u64> {
        self.array(off).map(u64::from_le_bytes)
    }

    /// The little-endian unsigned integer of `size` bytes (1, 2, 4 or 8) at `off`.
    pub fn uint(self, off: usize, size: usize) -> Option<u64> {
        match size {
            1 => self.u8(off).map(u64::from),
            2 => self.u16(off).map(u64::from),
            4 => self.u32(off).map(u64::from),
            8 => self.u64(off),
            _ => None,
        }
    }

    /// Every whole little-endian `u64` from the start, in order (a trailing part word is
    /// left out): for passes over many words, without a bounds check per word.
    pub fn u64s(self) -> impl Iterator<Item = u64> + 'a {
        self.0
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
    }

    /// The unsigned LEB128 (Go's `uvarint`) at `off` and the number of bytes it takes.
    pub fn uvarint(self, off: usize) -> Option<(u64, usize)> {
        let mut value = 0u64;
        for (i, &b) in self.from(off)?.iter().enumerate().take(10) {
            let shift = 7 * i as u32;
            let bits = u64::from(b & 0x7f);
            // The tenth byte may only hold the top bit of a u64.
            if shift == 63 && bits > 1 {
                return None;
            }
            value |= bits << shift;
            if b & 0x80 == 0 {
                return Some((value, i + 1));
            }
        }
        None
    }

    /// The runtime's 32-bit varint (Go's `readvarint`) at `off` and the number of bytes it
    /// takes: at most five bytes, bits beyond 32 dropped as the runtime drops them.
    pub fn uvarint32(self, off: usize) -> Option<(u32, usize)> {
        let mut value = 0u32;
        let mut shift = 0u32;
        for (i, &b) in self.from(off)?.iter().enumerate().take(5) {
            value |= u32::from(b & 0x7f) << (shift & 31);
            if b & 0x80 == 0 {
                return Some((value, i + 1));
            }
            shift += 7;
        }
        None
    }
}

/// A position in a byte slice, advanced by each checked read.
#[derive(Clone, Copy, Debug)]
pub struct Cursor<'a> {
    bytes: Bytes<'a>,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor {
            bytes: Bytes(bytes),
            pos: 0,
        }
    }

    /// The offset of the next read.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.0.len()
    }

    /// Moves past `n` bytes, if they are there.
    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.slice(self.pos, n)?;
        self.pos += n;
        Some(s)
    }

    /// Moves to the next multiple of `align` (a power of two), if that is within the bytes.
    pub fn align(&mut self, align: usize) -> Option<()> {
        let to = self.pos.checked_next_multiple_of(align)?;
        if to > self.bytes.0.len() {
            return None;
        }
        self.pos = to;
        Some(())
    }

    /// The next byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// The next little-endian `u16`.
    pub fn u16(&mut self) -> Option<u16> {
        let v = self.bytes.u16(self.pos)?;
        self.pos += 2;
        Some(v)
    }

    /// The next little-endian `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        let v = self.bytes.u32(self.pos)?;
        self.pos += 4;
        Some(v)
    }

    /// The next little-endian `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        let v = self.bytes.u64(self.pos)?;
        self.pos += 8;
        Some(v)
    }

    /// The next unsigned LEB128 (Go's `uvarint`).
    pub fn uvarint(&mut self) -> Option<u64> {
        let (v, n) = self.bytes.uvarint(self.pos)?;
        self.pos += n;
        Some(v)
    }

    /// The next runtime 32-bit varint (Go's `readvarint`).
    pub fn uvarint32(&mut self) -> Option<u32> {
        let (v, n) = self.bytes.uvarint32(self.pos)?;
        self.pos += n;
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_bounds_only() {
        let b = Bytes(&[1, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
        assert_eq!(b.u64(0), Some(1));
        assert_eq!(b.u16(8), Some(2));
        assert_eq!(b.u64(3), None);
        assert_eq!(b.u32(usize::MAX - 1), None);
        assert_eq!(b.slice(usize::MAX, 2), None);
        assert_eq!(b.uint(8, 2), Some(2));
        assert_eq!(b.uint(0, 3), None);
        assert_eq!(b.u64s().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn uvarints() {
        assert_eq!(Bytes(&[0x96, 0x01]).uvarint(0), Some((150, 2)));
        assert_eq!(Bytes(&[0x80]).uvarint(0), None);
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(Bytes(&max).uvarint(0), Some((u64::MAX, 10)));
        max[9] = 0x02;
        assert_eq!(Bytes(&max).uvarint(0), None);
    }

    #[test]
    fn uvarint32s_like_the_runtime() {
        assert_eq!(Bytes(&[0x05]).uvarint32(0), Some((5, 1)));
        assert_eq!(Bytes(&[0x80, 0x01]).uvarint32(0), Some((128, 2)));
        assert_eq!(Bytes(&[0x80]).uvarint32(0), None);
        assert_eq!(
            Bytes(&[0xff, 0xff, 0xff, 0xff, 0x0f]).uvarint32(0),
            Some((u32::MAX, 5))
        );
        // Bits past 32 are dropped, as runtime.readvarint drops them.
        assert_eq!(
            Bytes(&[0x80, 0x80, 0x80, 0x80, 0x7f]).uvarint32(0),
            Some((0xf000_0000, 5))
        );
        assert_eq!(Bytes(&[0x80; 6]).uvarint32(0), None);
        let mut c = Cursor::new(&[0x96, 0x01, 0x02]);
        assert_eq!(c.uvarint32(), Some(150));
        assert_eq!(c.uvarint32(), Some(2));
        assert_eq!(c.uvarint32(), None);
    }

    #[test]
    fn cursor_advances_and_stops() {
        let mut c = Cursor::new(&[7, 0x96, 0x01, 5, 0, 0, 0]);
        assert_eq!(c.u8(), Some(7));
        assert_eq!(c.uvarint(), Some(150));
        assert_eq!(c.u32(), Some(5));
        assert!(c.is_empty());
        assert_eq!(c.u8(), None);
        assert_eq!(c.pos(), 7);
    }
}
