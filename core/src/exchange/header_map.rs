//! Header lookups in a header map as proxy-wasm hands it over whole
//! (`proxy_get_header_map_pairs`): a little-endian `u32` count, then a
//! (`u32` name size, `u32` value size) pair per header, then each name and
//! value followed by a NUL byte.
//!
//! Reading a side's headers once per callback and looking names up in those
//! bytes costs one host call (and one allocation) instead of one per header
//! name: on a small GET the filter reads a dozen names.

/// The value of the first header called `name` (ASCII case-insensitive, as
/// Envoy's own lookup is), or `None` if there is none or the bytes are not
/// a well-formed map.
pub fn lookup<'a>(map: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let name = name.as_bytes();
    let count = usize::try_from(read_u32(map, 0)?).ok()?;
    let sizes_end = count.checked_mul(8)?.checked_add(4)?;
    let mut data = sizes_end;
    for i in 0..count {
        let at = 4 + i * 8;
        let key_len = usize::try_from(read_u32(map, at)?).ok()?;
        let value_len = usize::try_from(read_u32(map, at + 4)?).ok()?;
        let key = map.get(data..data.checked_add(key_len)?)?;
        let value_at = data.checked_add(key_len)?.checked_add(1)?;
        let value = map.get(value_at..value_at.checked_add(value_len)?)?;
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
        data = value_at.checked_add(value_len)?.checked_add(1)?;
    }
    None
}

fn read_u32(map: &[u8], at: usize) -> Option<u32> {
    let b = map.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// Serializes pairs the way the host does (tests, fuzzing, and hosts that
/// hand over pairs as a list).
pub fn serialize(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_value_case_insensitively() {
        let map = serialize(&[
            (":method", b"GET"),
            ("x-empty", b""),
            ("Accept", b"text/csv"),
            ("accept", b"application/json"),
            ("authorization", b"Bearer a\0b"),
        ]);
        assert_eq!(lookup(&map, ":method"), Some(&b"GET"[..]));
        assert_eq!(lookup(&map, "x-empty"), Some(&b""[..]));
        assert_eq!(lookup(&map, "accept"), Some(&b"text/csv"[..]));
        assert_eq!(lookup(&map, "ACCEPT"), Some(&b"text/csv"[..]));
        assert_eq!(lookup(&map, "authorization"), Some(&b"Bearer a\0b"[..]));
        assert_eq!(lookup(&map, "x-missing"), None);
        assert_eq!(lookup(&serialize(&[]), ":method"), None);
    }

    #[test]
    fn pairs_are_serialized_as_the_abi_says() {
        assert_eq!(serialize(&[("a", b"bc")]), [1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'b', b'c', 0]);
    }

    #[test]
    fn malformed_maps_find_nothing() {
        let map = serialize(&[(":path", b"/a"), ("b", b"c")]);
        assert_eq!(lookup(&[], ":path"), None);
        assert_eq!(lookup(&[1, 0, 0], ":path"), None);
        for cut in 0..map.len() - 2 {
            assert_eq!(lookup(map.get(..cut).unwrap_or_default(), "b"), None, "cut at {cut}");
        }
        // The final NUL is not needed to read the last value (hosts write it).
        assert_eq!(lookup(map.get(..map.len() - 1).unwrap_or_default(), "b"), Some(&b"c"[..]));
        // A count far beyond the bytes, and sizes that overflow.
        assert_eq!(lookup(&[255, 255, 255, 255, 0, 0, 0, 0], "b"), None);
        let mut huge = map.clone();
        huge.splice(4..8, u32::MAX.to_le_bytes());
        assert_eq!(lookup(&huge, ":path"), None);
    }
}
