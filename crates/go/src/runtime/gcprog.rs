//! GC programs: the packed pointer bitmaps the linker writes for the data and bss sections
//! (`moduledata.gcdata`, `gcbss`), from which the runtime builds `gcdatamask`/`gcbssmask`.
//!
//! A program is a byte code over a stream of bits, lowest bit of each byte first:
//! `0` ends it; `0nnnnnnn` (n > 0) copies n literal bits from the next ⌈n/8⌉ bytes;
//! `1nnnnnnn c` repeats the last n bits c times, n and c as uvarints when the 7 bits are 0.

use crate::reader::Cursor;

/// Runs the GC program in `prog` and returns its bitmap, one bit per word, packed lowest bit
/// first; `None` when the program is cut off, malformed, or makes more than `max_bits` bits
/// (damage: a section's mask has one bit per word of the section).
pub fn run(prog: &[u8], max_bits: u64) -> Option<Vec<u8>> {
    let mut out = Bits {
        bytes: Vec::new(),
        len: 0,
    };
    let mut c = Cursor::new(prog);
    loop {
        let inst = c.u8()?;
        let n = u64::from(inst & 0x7f);
        if inst & 0x80 == 0 {
            if n == 0 {
                return Some(out.bytes);
            }
            if out.len + n > max_bits {
                return None;
            }
            let literal = c.take(n.div_ceil(8) as usize)?;
            for i in 0..n {
                out.push(literal[(i / 8) as usize] >> (i % 8) & 1 == 1);
            }
            continue;
        }
        let n = if n == 0 { c.uvarint()? } else { n };
        let count = c.uvarint()?;
        let total = n.checked_mul(count)?;
        if n == 0 || n > out.len || out.len.checked_add(total)? > max_bits {
            return None;
        }
        // Each bit copied is the one n places back, so a short pattern repeats itself.
        for _ in 0..total {
            let bit = out.get(out.len - n);
            out.push(bit);
        }
    }
}

/// A growing bit vector.
struct Bits {
    bytes: Vec<u8>,
    len: u64,
}

impl Bits {
    fn push(&mut self, bit: bool) {
        if self.len % 8 == 0 {
            self.bytes.push(0);
        }
        if bit {
            let last = self.bytes.len() - 1;
            self.bytes[last] |= 1 << (self.len % 8);
        }
        self.len += 1;
    }

    fn get(&self, i: u64) -> bool {
        self.bytes[(i / 8) as usize] >> (i % 8) & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::run;

    #[test]
    fn literals_then_stop() {
        // 10 bits: 1,0,1,1 0,0,0,0 | 1,1.
        assert_eq!(run(&[10, 0b0000_1101, 0b11, 0], 64), Some(vec![0x0d, 0x03]));
    }

    #[test]
    fn repeats_a_pattern() {
        // Literal 1,0 then repeat the last 2 bits 3 times: 1010 1010.
        assert_eq!(run(&[2, 0b01, 0x82, 3, 0], 64), Some(vec![0x55]));
        // One bit repeated 9 times, the bit count as a varint (0x80 then n, c).
        assert_eq!(run(&[1, 1, 0x80, 1, 9, 0], 64), Some(vec![0xff, 0x03]));
    }

    #[test]
    fn damage_is_refused() {
        // Cut off before its stop, literal bytes missing, repeat of more bits than written.
        assert_eq!(run(&[2, 0b01], 64), None);
        assert_eq!(run(&[16, 0xff], 64), None);
        assert_eq!(run(&[1, 1, 0x84, 2, 0], 64), None);
        // More bits than the section has words, and a count that overflows.
        assert_eq!(run(&[1, 1, 0x81, 100, 0], 64), None);
        let huge = [
            1, 1, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0,
        ];
        assert_eq!(run(&huge, u64::MAX), None);
    }
}
