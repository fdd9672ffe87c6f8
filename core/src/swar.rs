//! Byte tests eight bytes at a time in one `u64` ("SIMD within a register"):
//! the scanners' skip loops (escapes, word runs, normalisation candidates,
//! table marks, ASCII lower case) without wasm `simd128`. Each mask has the
//! high bit of every byte that passes the test; every test here is exact
//! (no carry crosses a byte), so a mask's lowest set bit is the first byte
//! that passes.

pub const ONES: u64 = 0x0101_0101_0101_0101;
pub const HIGH: u64 = 0x8080_8080_8080_8080;
pub const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The eight bytes of `b` at `i`, little-endian (`None` past the end).
pub fn load(b: &[u8], i: usize) -> Option<u64> {
    let chunk = b.get(i..i.checked_add(8)?)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    Some(u64::from_le_bytes(word))
}

/// The bytes of `x` that are zero.
pub fn zero(x: u64) -> u64 {
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The bytes of `x` equal to `c`.
pub fn equal(x: u64, c: u8) -> u64 {
    zero(x ^ (ONES * u64::from(c)))
}

/// Non-zero exactly when some byte of `x` equals `c`: cheaper than
/// [`equal`], but the mask may also mark a byte next to a match, so it
/// answers only yes or no.
pub fn any_equal(x: u64, c: u8) -> u64 {
    let v = x ^ (ONES * u64::from(c));
    v.wrapping_sub(ONES) & !v & HIGH
}

/// The bytes whose low seven bits (`low7`, already masked with [`LOW7`])
/// are in `lo..=hi` (both below 0x80).
pub fn in_range(low7: u64, lo: u8, hi: u8) -> u64 {
    (low7 + ONES * (0x80 - u64::from(lo))) & !(low7 + ONES * (0x7f - u64::from(hi))) & HIGH
}

/// `a == b`, eight bytes at a time (a slice comparison is a call to a byte
/// loop in wasm, about 27 instructions a byte).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (x, y) = (a.chunks_exact(8), b.chunks_exact(8));
    let tails = x.remainder() == y.remainder();
    let word = |c: &[u8]| <[u8; 8]>::try_from(c).ok().map(u64::from_ne_bytes);
    tails && x.zip(y).all(|(p, q)| word(p) == word(q))
}

/// The offset of the first byte a non-zero mask marks.
pub fn first(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_test_is_exact_on_every_byte_at_every_position() {
        for c in 0..=255u8 {
            for at in 0..8 {
                for fill in [0u8, 1, b'a', 0x7f, 0x80, 0xff] {
                    let mut w = [fill; 8];
                    w[at] = c;
                    let x = u64::from_le_bytes(w);
                    let expect = |f: &dyn Fn(u8) -> bool| {
                        w.iter().enumerate().filter(|(_, &b)| f(b)).fold(0u64, |m, (i, _)| m | 0x80 << (8 * i))
                    };
                    assert_eq!(zero(x), expect(&|b| b == 0), "{c} at {at} in {fill}");
                    assert_eq!(equal(x, b'"'), expect(&|b| b == b'"'), "{c} at {at} in {fill}");
                    assert_eq!(any_equal(x, b'(') != 0, w.contains(&b'('), "{c} at {at} in {fill}");
                    assert_eq!(any_equal(x, 0) != 0, w.contains(&0), "{c} at {at} in {fill}");
                    assert_eq!(in_range(x & LOW7, 0x30, 0x39), expect(&|b| (0x30..=0x39).contains(&(b & 0x7f))));
                    if let Some(i) = (expect(&|b| b == c) != 0).then(|| first(equal(x, c))) {
                        assert_eq!(w[i], c);
                        assert!(w[..i].iter().all(|&b| b != c));
                    }
                }
            }
        }
        assert_eq!(load(b"0123456789", 2), Some(u64::from_le_bytes(*b"23456789")));
        assert_eq!(load(b"0123456789", 3), None);
        assert_eq!(load(b"", usize::MAX), None);
    }

    #[test]
    fn same_is_equality() {
        let a = b"0123456789abcdefghijklmnopqrstuvwxyz";
        for i in 0..a.len() {
            for j in i..=a.len() {
                assert!(same(&a[i..j], &a[i..j]));
                let mut b = a[i..j].to_vec();
                for k in 0..b.len() {
                    b[k] ^= 1;
                    assert!(!same(&a[i..j], &b), "{i} {j} {k}");
                    b[k] ^= 1;
                }
            }
        }
        assert!(!same(b"0123456789", b"012345678"));
        assert!(!same(b"", b"0"));
    }
}
