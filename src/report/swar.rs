//! Byte search eight bytes at a time in a machine word ("SIMD within a
//! register"), for the short strings of reports and labels: too short for
//! vector instructions to pay off, long enough that a byte loop shows.
//!
//! Each test returns a mask with the high bit set in the bytes that match.
//! Borrows can also flag bytes *above* a true match, never below one, so the
//! lowest flag (found with [`first`]) is always exact.

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGH: u64 = u64::from_le_bytes([0x80; 8]);

/// The eight bytes of `bytes` at `at`, as a little-endian word.
#[inline(always)]
pub fn word_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

/// Flags the bytes of `word` equal to `byte`.
#[inline(always)]
pub fn equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Flags the bytes of `word` below `limit` (at most 0x80).
#[inline(always)]
pub fn below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGH
}

/// Flags the bytes of `word` that are not ASCII.
#[inline(always)]
pub fn non_ascii(word: u64) -> u64 {
    word & HIGH
}

/// Index of the lowest flagged byte of a non-zero mask.
#[inline(always)]
pub fn first(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Position of the first byte of `bytes` for which `flag` (a word test)
    /// flags, and `byte_flag` (the same test on one byte) holds.
    fn find(
        bytes: &[u8],
        flag: impl Fn(u64) -> u64,
        byte_flag: impl Fn(u8) -> bool,
    ) -> Option<usize> {
        let mut i = 0;
        while i + 8 <= bytes.len() {
            let found = flag(word_at(bytes, i));
            if found != 0 {
                return Some(i + first(found));
            }
            i += 8;
        }
        bytes[i..].iter().position(|&b| byte_flag(b)).map(|p| i + p)
    }

    #[test]
    fn the_lowest_flag_is_the_first_match_even_after_borrows() {
        // 0x00 and 0x01 next to each other make borrows ripple upwards.
        for len in 0..20 {
            for (needle, pad) in [(b'"', 0x00u8), (b'\\', 0x21), (b'\n', 0xff), (0x01, 0x01)] {
                let mut bytes = vec![pad; len];
                if pad == needle {
                    bytes.fill(b'a');
                }
                bytes.push(needle);
                bytes.extend_from_slice(&[0x00, needle, 0x01, 0xff]);
                let found = find(&bytes, |w| equal(w, needle), |b| b == needle);
                assert_eq!(
                    found,
                    Some(len),
                    "needle {needle:#x}, pad {pad:#x}, len {len}"
                );
            }
            let mut controls = vec![b' '; len];
            controls.extend_from_slice(&[0x1f, 0x00, 0x20]);
            assert_eq!(find(&controls, |w| below(w, 0x20), |b| b < 0x20), Some(len));
        }
        assert_eq!(
            find(b"abcdefghijklmnop", |w| equal(w, b'z'), |b| b == b'z'),
            None
        );
        assert_eq!(
            non_ascii(u64::from_le_bytes(*b"abc\xc3\xa9def")),
            0x8080 << 24
        );
    }
}
