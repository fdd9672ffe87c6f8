//! AWS event stream framing (`application/vnd.amazon.eventstream`), as
//! Bedrock's `invoke-with-response-stream` and `converse-stream` send it.
//!
//! ```text
//! [total length u32 BE][headers length u32 BE][prelude CRC32 u32 BE]
//! [headers ...][payload ...][message CRC32 u32 BE]
//! header: [name len u8][name][type u8][value]   (type 7 = string: [len u16 BE][bytes])
//! ```
//! Incremental and bounded: a frame is parsed once whole, then dropped;
//! a frame declaring more than the bound, or failing its CRC, stops parsing.

/// One decoded message: its string headers and payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
    /// The message's bytes as they came (prelude, headers, payload, CRC).
    pub raw: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub struct EventStreamParser {
    buf: Vec<u8>,
    max_frame: usize,
    /// Set when the stream is not well-formed; parsing stops.
    pub error: Option<&'static str>,
    /// Once `error` is set: the bytes that were not parsed (see [`Self::take_rest`]).
    rest: Vec<u8>,
}

impl EventStreamParser {
    pub fn new(max_frame: usize) -> Self {
        EventStreamParser { buf: Vec::new(), max_frame, error: None, rest: Vec::new() }
    }

    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Message>) {
        if self.error.is_some() {
            return;
        }
        self.buf.extend_from_slice(chunk);
        loop {
            let Some(total) = self.buf.get(0..4).map(be32) else { return };
            let total = total as usize;
            if !(16..=self.max_frame).contains(&total) {
                self.fail("frame length out of bounds");
                return;
            }
            if self.buf.len() < total {
                return;
            }
            let frame: Vec<u8> = self.buf.drain(..total).collect();
            match decode(&frame) {
                Ok(mut m) => {
                    m.raw = frame;
                    out.push(m);
                }
                Err(e) => {
                    self.buf.splice(0..0, frame);
                    self.fail(e);
                    return;
                }
            }
        }
    }

    fn fail(&mut self, e: &'static str) {
        self.error = Some(e);
        self.rest = std::mem::take(&mut self.buf);
    }

    /// Bytes of a message not yet complete.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// At the end of the stream: what never made a whole message (and, after
    /// an error, what was not parsed), as it came.
    pub fn take_unfinished(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.rest);
        out.extend(std::mem::take(&mut self.buf));
        out
    }

    /// After an error: the bytes from the first one that did not parse (the
    /// stream redactor passes them on unchanged rather than losing them).
    pub fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.rest)
    }
}

fn be32(b: &[u8]) -> u32 {
    b.iter().take(4).fold(0u32, |acc, &x| (acc << 8) | u32::from(x))
}

fn decode(frame: &[u8]) -> Result<Message, &'static str> {
    let total = frame.len();
    let headers_len = frame.get(4..8).map(be32).ok_or("short frame")? as usize;
    let prelude_crc = frame.get(8..12).map(be32).ok_or("short frame")?;
    if crc32(frame.get(..8).ok_or("short frame")?) != prelude_crc {
        return Err("prelude CRC mismatch");
    }
    let msg_crc = frame.get(total - 4..).map(be32).ok_or("short frame")?;
    if crc32(frame.get(..total - 4).ok_or("short frame")?) != msg_crc {
        return Err("message CRC mismatch");
    }
    let headers_end = 12usize.checked_add(headers_len).filter(|&e| e <= total - 4).ok_or("bad headers length")?;
    let mut headers = Vec::new();
    let mut h = frame.get(12..headers_end).ok_or("bad headers")?;
    while !h.is_empty() {
        let name_len = *h.first().ok_or("bad header")? as usize;
        let name = h.get(1..1 + name_len).ok_or("bad header")?;
        let kind = *h.get(1 + name_len).ok_or("bad header")?;
        let rest = h.get(2 + name_len..).ok_or("bad header")?;
        let (value, used) = match kind {
            0 | 1 => (None, 0),
            2 => (None, 1),
            3 => (None, 2),
            4 => (None, 4),
            5 | 8 => (None, 8),
            9 => (None, 16),
            6 | 7 => {
                let len = rest
                    .get(0..2)
                    .map(|b| b.iter().fold(0usize, |acc, &x| (acc << 8) | usize::from(x)))
                    .ok_or("bad header")?;
                let v = rest.get(2..2 + len).ok_or("bad header")?;
                (Some(v), 2 + len)
            }
            _ => return Err("unknown header type"),
        };
        if let (7, Some(v)) = (kind, value) {
            headers.push((String::from_utf8_lossy(name).into_owned(), String::from_utf8_lossy(v).into_owned()));
        }
        h = rest.get(used..).ok_or("bad header")?;
    }
    let payload = frame.get(headers_end..total - 4).ok_or("bad payload")?.to_vec();
    Ok(Message { headers, payload, raw: Vec::new() })
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`).
#[allow(clippy::indexing_slicing)] // the table is built in a const fn with in-bounds loop indexes
pub fn crc32(data: &[u8]) -> u32 {
    const fn table() -> [u32; 256] {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            t[i] = c; // const context: i < 256 by the loop bound
            i += 1;
        }
        t
    }
    const TABLE: [u32; 256] = table();
    !data.iter().fold(!0u32, |c, &b| TABLE.get(((c ^ u32::from(b)) & 0xff) as usize).copied().unwrap_or(0) ^ (c >> 8))
}

/// Encodes a message (tests and fixtures build streams with it).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut hb = Vec::new();
    for (k, v) in headers {
        hb.push(k.len() as u8);
        hb.extend_from_slice(k.as_bytes());
        hb.push(7);
        hb.extend_from_slice(&(v.len() as u16).to_be_bytes());
        hb.extend_from_slice(v.as_bytes());
    }
    encode_raw(&hb, payload)
}

/// The header bytes of a well-formed message (as [`Message::raw`] holds it).
pub fn header_bytes(raw: &[u8]) -> &[u8] {
    let len = raw.get(4..8).map(be32).unwrap_or(0) as usize;
    raw.get(12..12usize.saturating_add(len)).unwrap_or_default()
}

/// A message from header bytes as they came (every header type kept) and a
/// new payload, with fresh lengths and CRCs.
pub fn encode_raw(hb: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = 16 + hb.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(hb.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(hb);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn frames_survive_every_split() {
        let a = encode(&[(":event-type", "chunk"), (":message-type", "event")], br#"{"bytes":"e30="}"#);
        let b = encode(&[(":event-type", "metadata")], br#"{"usage":{}}"#);
        let stream = [a.clone(), b.clone()].concat();
        for split in 0..=stream.len() {
            let mut p = EventStreamParser::new(1 << 20);
            let mut out = Vec::new();
            p.push(&stream[..split], &mut out);
            p.push(&stream[split..], &mut out);
            assert_eq!(out.len(), 2, "split {split}");
            assert_eq!(out[0].header(":event-type"), Some("chunk"));
            assert_eq!(out[1].payload, br#"{"usage":{}}"#);
            assert!(p.error.is_none());
        }
    }

    #[test]
    fn corruption_and_bounds_stop_parsing() {
        let mut f = encode(&[(":event-type", "chunk")], b"{}");
        let last = f.len() - 5;
        f[last] ^= 1;
        let mut p = EventStreamParser::new(1 << 20);
        let mut out = Vec::new();
        p.push(&f, &mut out);
        assert!(out.is_empty() && p.error == Some("message CRC mismatch"));
        let mut p = EventStreamParser::new(64);
        p.push(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], &mut out);
        assert_eq!(p.error, Some("frame length out of bounds"));
    }
}
