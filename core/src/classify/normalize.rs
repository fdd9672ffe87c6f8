//! Text as the detectors expect it, with a map back to the original bytes.
//!
//! People paste values with Unicode dashes and spaces (`078–05–1120`, NBSP
//! and thin spaces), full-width digits, one digit at a time (`4 1 1 1 …`),
//! and programs percent-encode them (`jane.doe%40example.com`). The
//! detectors run on a normalised copy; every hit is mapped back to the bytes
//! it came from, so the original text is what gets redacted.
//!
//! - Unicode dashes (U+2010–2015, U+2212) → `-`; Unicode spaces (U+00A0,
//!   U+2000–200A, U+202F, U+205F, U+3000) → space; full-width ASCII
//!   (U+FF01–FF5E) → ASCII.
//! - `%XX` of a printable ASCII byte → that byte; a `+` between two digits
//!   → space (form and query encoding of `415+555+2671`).
//! - Runs of at least seven single letters or digits separated by single
//!   spaces, five of them digits, lose the spaces (`4 1 1 1 …` → `4111…`).

/// Normalised text and the map back.
pub(crate) struct Normalized {
    pub text: String,
    /// `(normalised offset, original offset)` wherever the two stop moving
    /// together; offsets in between move in step.
    breaks: Vec<(usize, usize)>,
    orig_len: usize,
}

impl Normalized {
    /// Original offset of a normalised offset (a start or an end).
    /// A normalised offset at or before the one of original offset `o`
    /// (where a resumed scan may start without passing anything at `o`).
    pub(crate) fn unmap(&self, o: usize) -> usize {
        let ix = self.breaks.partition_point(|&(_, b)| b <= o);
        let k = match ix.checked_sub(1).and_then(|i| self.breaks.get(i)) {
            Some(&(n, b)) => n + (o - b),
            None => o,
        };
        // Inside a unit that normalised to fewer bytes, `k` may be past it.
        k.saturating_sub(4).min(self.text.len())
    }

    pub(crate) fn map(&self, k: usize) -> usize {
        let ix = self.breaks.partition_point(|&(n, _)| n <= k);
        match ix.checked_sub(1).and_then(|i| self.breaks.get(i)) {
            Some(&(n, o)) => (o + (k - n)).min(self.orig_len),
            None => k.min(self.orig_len),
        }
    }
}

const NORM: u8 = 1;
const B64: u8 = 2;

/// Per byte: bit 0 might start something to normalise, bit 1 is a base64
/// character.
#[allow(clippy::indexing_slicing)] // const-evaluated, i < 256
const CLS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'-' || c == b'_' {
            t[i] |= B64;
        }
        i += 1;
    }
    t[0xC2] |= NORM; // U+00A0
    t[0xE2] |= NORM; // U+2000-U+206F, U+2212
    t[0xE3] |= NORM; // U+3000
    t[0xEF] |= NORM; // U+FF01-U+FF5E
    t[b'%' as usize] |= NORM;
    t[b'+' as usize] |= NORM;
    t[b'\\' as usize] |= NORM;
    t
};

#[inline]
#[allow(clippy::indexing_slicing)] // a u8 always indexes a [_; 256]
fn cls(c: u8) -> u8 {
    CLS[usize::from(c)]
}

/// The first byte that normalising may change, found with `memchr` (most
/// texts have none, and this runs over every scanned text): a Unicode dash
/// or space, a full-width character, a `%XX` escape or a form-encoded `+`.
/// Runs of spaced characters are found by the detectors themselves (they
/// report single digits in a row) and normalised from the start.
pub(crate) fn first_change(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = next_candidate(b, i) {
        if unit(b, p).is_some() || pct_utf8(b, p).is_some() {
            return Some(p);
        }
        i = p + 1;
    }
    None
}

/// The next byte at or after `from` that may start something to normalise
/// (a byte >= 0x80, `%`, `+` or `\\`), eight bytes at a time.
fn next_candidate(b: &[u8], from: usize) -> Option<usize> {
    use crate::swar::{any_equal, load, HIGH};
    let mut i = from;
    while let Some(v) = load(b, i) {
        if (v & HIGH) | any_equal(v, b'%') | any_equal(v, b'+') | any_equal(v, b'\\') != 0 {
            break;
        }
        i += 8;
    }
    b.get(i..)?.iter().position(|&c| cls(c) & NORM != 0 || c >= 0x80).map(|p| i + p)
}

/// Whether `b` has a run of at least [`MIN_B64`] base64 characters. A run
/// that long covers every [`MIN_B64`]-th byte it passes, so the search
/// looks at those first and only reads around the ones that are base64.
pub(crate) fn has_base64_run(b: &[u8]) -> bool {
    let mut i = 0;
    while i + MIN_B64 <= b.len() {
        let probe = i + MIN_B64 - 1;
        if !is_b64(at(b, probe)) {
            i = probe + 1;
            continue;
        }
        let mut s = probe;
        while s > i && is_b64(at(b, s - 1)) {
            s -= 1;
        }
        let mut e = probe + 1;
        while e < b.len() && e - s < MIN_B64 && is_b64(at(b, e)) {
            e += 1;
        }
        if e - s >= MIN_B64 {
            return true;
        }
        i = e + 1;
    }
    false
}

#[inline]
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// The replacement for the (possibly multi-byte) unit at `i`: `(byte, len)`.
fn unit(b: &[u8], i: usize) -> Option<(u8, usize)> {
    let c = at(b, i);
    match c {
        0xC2 if at(b, i + 1) == 0xA0 => Some((b' ', 2)),
        0xE2 => {
            let (c1, c2) = (at(b, i + 1), at(b, i + 2));
            match (c1, c2) {
                (0x80, 0x90..=0x95) => Some((b'-', 3)),
                (0x80, 0x80..=0x8A) | (0x80, 0xAF) | (0x81, 0x9F) => Some((b' ', 3)),
                (0x88, 0x92) => Some((b'-', 3)),
                _ => None,
            }
        }
        0xE3 if at(b, i + 1) == 0x80 && at(b, i + 2) == 0x80 => Some((b' ', 3)),
        0xEF => {
            // U+FF01..U+FF5E = EF BC 81..BF, EF BD 80..9E  ->  0x21..0x7E
            let (c1, c2) = (at(b, i + 1), at(b, i + 2));
            match (c1, c2) {
                (0xBC, 0x81..=0xBF) => Some((c2 - 0x81 + 0x21, 3)),
                (0xBD, 0x80..=0x9E) => Some((c2 - 0x80 + 0x60, 3)),
                _ => None,
            }
        }
        b'%' => {
            let (v, len) = pct_twice(b, i)?;
            (0x20..0x7F).contains(&v).then_some((v, len))
        }
        b'+' if form_space(b, i) => Some((b' ', 1)),
        // JSON and C escapes in text (a JSON document logged as text):
        // `\n078-05-1120` starts the value at a word boundary.
        b'\\' => match at(b, i + 1) {
            b'n' | b't' | b'r' => Some((b' ', 2)),
            c @ (b'"' | b'/' | b'\'') => Some((c, 2)),
            _ => None,
        },
        _ => None,
    }
}

/// The byte `%XX` at `i` encodes.
fn pct(b: &[u8], i: usize) -> Option<u8> {
    if at(b, i) != b'%' {
        return None;
    }
    let hex = |x: u8| (x as char).to_digit(16);
    u8::try_from(hex(at(b, i + 1))? * 16 + hex(at(b, i + 2))?).ok()
}

/// The byte `%XX` at `i` encodes, or `%25XX` (encoded twice, as a redirect
/// parameter inside a query is: `next=%2F%3Fphone%3D02%25201234`), and the
/// length of its encoding.
fn pct_twice(b: &[u8], i: usize) -> Option<(u8, usize)> {
    let v = pct(b, i)?;
    let hex = |x: u8| x.is_ascii_hexdigit();
    if v == b'%' && hex(at(b, i + 3)) && hex(at(b, i + 4)) {
        return Some((pct(&[b'%', at(b, i + 3), at(b, i + 4)], 0)?, 5));
    }
    Some((v, 3))
}

/// A percent-encoded UTF-8 character of two or three bytes at `i`
/// (`%C3%A9`, or encoded twice: `%25C3%25A9`): its bytes and the length of
/// its encoding.
fn pct_utf8(b: &[u8], i: usize) -> Option<([u8; 3], usize, usize)> {
    let (lead, unit) = pct_twice(b, i)?;
    let n = match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => return None,
    };
    let mut out = [lead, 0, 0];
    for k in 1..n {
        let (c, len) = pct_twice(b, i + unit * k)?;
        if len != unit {
            return None;
        }
        if c & 0xC0 != 0x80 {
            return None;
        }
        if let Some(slot) = out.get_mut(k) {
            *slot = c;
        }
    }
    std::str::from_utf8(out.get(..n)?).ok()?;
    Some((out, n, unit * n))
}

/// A `+` that form encoding made of a space: between two letters or digits
/// in a query value (`?ssn=078+05+1120&`), unless the value is an e-mail
/// address (`jane+news@example.com` sent unencoded).
fn form_space(b: &[u8], i: usize) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'%';
    if i == 0 || !(word(at(b, i - 1)) || at(b, i - 1) == b'.') || !word(at(b, i + 1)) {
        return false;
    }
    let stop = |c: u8| c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b'<' | b'>');
    // Back to the `=` of the value, then to the `?` or `&` before its name:
    // `key=a+b` in a log line is not form encoded.
    let mut k = i;
    let mut seen_eq = false;
    loop {
        if k == 0 || i - k >= 512 {
            return false;
        }
        let c = at(b, k - 1);
        if stop(c) {
            return false;
        }
        if c == b'=' {
            if seen_eq {
                return false;
            }
            seen_eq = true;
        } else if matches!(c, b'?' | b'&') {
            if seen_eq {
                break;
            }
            return false;
        }
        k -= 1;
    }
    let mut j = i;
    while j < b.len() && j - i < 512 {
        let c = at(b, j);
        if stop(c) || c == b'&' || c == b'#' {
            break;
        }
        if c == b'@' || (c == b'%' && at(b, j + 1) == b'4' && at(b, j + 2) == b'0') {
            return false;
        }
        j += 1;
    }
    true
}

/// Whether `b[i..]` starts a run of spaced single characters (see module doc);
/// its end when it does.
fn spaced_run(b: &[u8], i: usize) -> Option<usize> {
    if i > 0 && at(b, i - 1).is_ascii_alphanumeric() {
        return None;
    }
    let mut j = i;
    let mut n = 0;
    let mut digits = 0;
    // The end of the last digit: a letter after it is a word of its own.
    let mut last_digit_end = i;
    loop {
        let c = at(b, j);
        if !c.is_ascii_alphanumeric() || at(b, j + 1).is_ascii_alphanumeric() {
            break;
        }
        n += 1;
        digits += usize::from(c.is_ascii_digit());
        j += 1;
        if c.is_ascii_digit() {
            last_digit_end = j;
        }
        if at(b, j) == b' ' && at(b, j + 1).is_ascii_alphanumeric() && !at(b, j + 2).is_ascii_alphanumeric() {
            j += 1;
        } else {
            break;
        }
    }
    (n >= 7 && digits >= 5).then_some(last_digit_end)
}

/// The normalised copy, or `None` when the text needs none.
#[cfg(test)]
pub(crate) fn normalize(text: &str) -> Option<Normalized> {
    let b = text.as_bytes();
    let spaced =
        (0..b.len()).find(|&i| (i == 0 || !at(b, i - 1).is_ascii_alphanumeric()) && spaced_run(b, i).is_some());
    let first = match (first_change(b), spaced) {
        (Some(a), Some(c)) => a.min(c),
        (a, c) => a.or(c)?,
    };
    normalize_from(text, first)
}

/// The normalised copy of `text`, whose first byte to normalise is at `first`.
pub(crate) fn normalize_from(text: &str, first: usize) -> Option<Normalized> {
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut breaks = Vec::new();
    out.extend_from_slice(b.get(..first).unwrap_or_default());
    let mut i = first;
    while i < b.len() {
        let c = at(b, i);
        if c.is_ascii_alphanumeric() && (i == 0 || !at(b, i - 1).is_ascii_alphanumeric()) {
            if let Some(end) = spaced_run(b, i) {
                let mut k = i;
                while k < end {
                    let ch = at(b, k);
                    if ch != b' ' {
                        if k != i {
                            breaks.push((out.len(), k));
                        }
                        out.push(ch);
                    }
                    k += 1;
                }
                breaks.push((out.len(), end));
                i = end;
                continue;
            }
        }
        if c == b'%' {
            if let Some((bytes, n, len)) = pct_utf8(b, i) {
                breaks.push((out.len(), i));
                out.extend_from_slice(bytes.get(..n).unwrap_or_default());
                i += len;
                breaks.push((out.len(), i));
                continue;
            }
        }
        if cls(c) & NORM != 0 {
            if let Some((v, len)) = unit(b, i) {
                breaks.push((out.len(), i));
                out.push(v);
                i += len;
                breaks.push((out.len(), i));
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    // Decoded bytes are ASCII and whole UTF-8 sequences are copied whole, so
    // the copy is UTF-8; a `%` sequence that decoded to part of one is not
    // decoded (only printable ASCII is).
    let text = String::from_utf8(out).ok()?;
    Some(Normalized { text, breaks, orig_len: b.len() })
}

/// Base64 runs worth decoding: at least this long.
pub(crate) const MIN_B64: usize = 32;
/// And at most this long (decoding is bounded).
pub(crate) const MAX_B64: usize = 64 * 1024;

fn is_b64(c: u8) -> bool {
    cls(c) & B64 != 0
}

/// Runs of base64 (standard or URL-safe, padding included) of
/// [`MIN_B64`]..=[`MAX_B64`] bytes, as byte ranges.
pub(crate) fn base64_runs(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !is_b64(at(b, i)) {
            i += 1;
            continue;
        }
        let s = i;
        while is_b64(at(b, i)) {
            i += 1;
        }
        let mut e = i;
        while at(b, e) == b'=' && e - i < 2 {
            e += 1;
        }
        let len = e - s;
        if (MIN_B64..=MAX_B64).contains(&len) {
            out.push((s, e));
        }
        i = e.max(i);
    }
    out
}

/// The text a base64 run decodes to, when it is text (UTF-8, mostly
/// printable): `None` for keys, hashes and binary.
pub(crate) fn decode_text(run: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let body: Vec<u8> = run.iter().copied().filter(|&c| c != b'=').collect();
    let url = body.iter().any(|&c| c == b'-' || c == b'_');
    let engine = if url {
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
    } else {
        &base64::engine::general_purpose::STANDARD_NO_PAD
    };
    let bytes = engine.decode(&body).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let printable = text.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t')).count();
    (printable * 20 >= text.chars().count() * 19 && !text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(t: &str, want: &str) {
        let n = normalize(t).unwrap_or_else(|| panic!("{t:?} needs normalising"));
        assert_eq!(n.text, want, "{t:?}");
        assert_eq!(n.map(0), 0);
        assert_eq!(n.map(n.text.len()), t.len());
    }

    #[test]
    fn unicode_percent_and_spaced_forms() {
        roundtrip("SSN 078\u{2013}05\u{2014}1120", "SSN 078-05-1120");
        roundtrip("4111\u{a0}1111\u{2009}1111\u{202f}1111", "4111 1111 1111 1111");
        roundtrip("\u{ff10}\u{ff17}\u{ff18}", "078");
        roundtrip("jane.doe%40example.com", "jane.doe@example.com");
        roundtrip(r#"{\"ssn\":\"078-05-1120\"}\n"#, r#"{"ssn":"078-05-1120"} "#);
        roundtrip("name/Magdalene%20Gie%C3%9F/x", "name/Magdalene Gie\u{df}/x");
        roundtrip("?q=415+555+2671&x", "?q=415 555 2671&x");
        roundtrip("next=%2F%3Fphone%3D02%25201234%25205678", "next=/?phone=02 1234 5678");
        roundtrip("n%3DNeusch%25C3%25A4fer%252C%2520Jo", "n=Neusch\u{e4}fer, Jo");
        roundtrip("100%25 sure", "100% sure");
        assert!(normalize("AWS_KEY=Ab+cD/e+f").is_none());
        roundtrip("?iban=NL93+EZNN+7886&d=16+March+1994", "?iban=NL93 EZNN 7886&d=16 March 1994");
        assert!(normalize("key V02JCBI9Mekl8J6+5FBVXN7 a/b+c").is_none());
        assert!(normalize("?to=jane+news@example.com").is_none());
        roundtrip("SIN:4 9 6 3 9 6 5 6 5;", "SIN:496396565;");
        roundtrip("card 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 ok", "card 4111111111111111 ok");
        roundtrip("D E 8 9 3 7 0 4 0 0", "DE89370400");
        assert!(normalize("plain text, a b c, 1 + 2, 100%").is_none());
    }

    #[test]
    fn offsets_map_back_to_whole_original_characters() {
        let t = "x \u{ff14}\u{ff11} 4 1 1 1 1 1 1 y%40z";
        let n = normalize(t).unwrap();
        assert_eq!(n.text, "x 41 4111111 y@z");
        let s = n.text.find("4111111").unwrap();
        assert_eq!(&t[n.map(s)..n.map(s + 7)], "4 1 1 1 1 1 1");
        let f = n.text.find("41").unwrap();
        assert_eq!(&t[n.map(f)..n.map(f + 2)], "\u{ff14}\u{ff11}");
        let a = n.text.find('@').unwrap();
        assert_eq!(&t[n.map(a)..n.map(a + 1)], "%40");
    }

    #[test]
    fn base64_runs_decode_to_text_only() {
        use base64::Engine as _;
        let enc = base64::engine::general_purpose::STANDARD.encode(r#"{"email": "jane@example.com"}"#);
        let t = format!("payload={enc} end");
        assert!(has_base64_run(t.as_bytes()));
        assert!(!has_base64_run(b"plain words, none of them long enough to be a base64 run at all"));
        assert!(has_base64_run(&[b'A'; 32]));
        assert!(!has_base64_run(&[b'A'; 31]));
        let runs = base64_runs(t.as_bytes());
        assert_eq!(runs.len(), 1);
        let (s, e) = runs[0];
        assert_eq!(&t[s..e], enc);
        assert_eq!(decode_text(&t.as_bytes()[s..e]).unwrap(), r#"{"email": "jane@example.com"}"#);
        assert!(decode_text(b"0123456789abcdef0123456789abcdef01234567").is_none());
    }
}
