//! Incremental `text/event-stream` framing (WHATWG HTML, "server-sent events").
//!
//! Bytes arrive in arbitrary network chunks; [`SseParser::push`] returns each
//! complete event (frame) as soon as its terminating blank line has arrived,
//! keeping only the unfinished tail. Every frame carries its exact raw bytes so
//! a caller that changes nothing can forward the stream byte for byte.
//!
//! Memory is bounded: a frame longer than `max_frame_bytes` is released raw,
//! marked `oversize`, without its fields being parsed.

/// One server-sent event as it appeared on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseFrame {
    /// The frame's bytes, terminator included.
    pub raw: Vec<u8>,
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n` (lossy UTF-8).
    pub data: String,
    /// True when `data` had at least one `data:` line.
    pub has_data: bool,
    /// True when the frame exceeded the size bound and was not parsed.
    pub oversize: bool,
}

/// Incremental SSE framer.
#[derive(Debug)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Where the scan for the next line end resumes inside `buf`.
    scan: usize,
    /// Start of the current line inside `buf`.
    line_start: usize,
    /// Lines of the current frame ended so far.
    lines: usize,
    max_frame_bytes: usize,
}

impl SseParser {
    pub fn new(max_frame_bytes: usize) -> Self {
        SseParser { buf: Vec::new(), scan: 0, line_start: 0, lines: 0, max_frame_bytes: max_frame_bytes.max(64) }
    }

    /// Bytes held back waiting for the end of the current frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feeds one chunk; appends every frame it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseFrame>) {
        self.cut(chunk, |raw, shape| out.push(frame(raw, shape)));
    }

    /// [`Self::push`], each frame's bytes as they came, with what the
    /// framer saw of it: read it with [`frame`] (or, a one-line frame, its
    /// `data:` value with [`one_line_data`]).
    pub fn push_raw(&mut self, chunk: &[u8], out: &mut Vec<(Vec<u8>, Shape)>) {
        self.cut(chunk, |raw, shape| out.push((raw, shape)));
    }

    /// Feeds one chunk; gives each frame it completes to `out`.
    fn cut(&mut self, chunk: &[u8], mut out: impl FnMut(Vec<u8>, Shape)) {
        self.buf.extend_from_slice(chunk);
        // (An empty rest, say after a chunk that ended with its frame, is not searched.)
        while self.scan < self.buf.len() {
            let Some(rel) = self.buf.get(self.scan..).and_then(line_end) else {
                self.scan = self.buf.len();
                break;
            };
            let at = self.scan + rel;
            let byte = self.buf.get(at).copied().unwrap_or(b'\n');
            // A lone '\r' at the end of the buffer may be the first half of "\r\n".
            let end = if byte == b'\r' {
                match self.buf.get(at + 1) {
                    Some(b'\n') => at + 2,
                    Some(_) => at + 1,
                    None => {
                        self.scan = at;
                        break;
                    }
                }
            } else {
                at + 1
            };
            let blank = at == self.line_start;
            self.scan = end;
            self.line_start = end;
            if !blank {
                self.lines += 1;
            }
            if blank {
                // One line ended by `\n`, then a blank `\n`: the frame is
                // that line with `\n\n` (its line ends are found already).
                let one_line = self.lines == 1
                    && byte == b'\n'
                    && at.checked_sub(1).and_then(|i| self.buf.get(i)) == Some(&b'\n')
                    && at.checked_sub(2).and_then(|i| self.buf.get(i)) != Some(&b'\r');
                self.lines = 0;
                // The usual case, a chunk that ends with its frame: the
                // buffer itself becomes the frame, without a copy.
                let raw: Vec<u8> =
                    if end >= self.buf.len() { std::mem::take(&mut self.buf) } else { self.buf.drain(..end).collect() };
                self.scan = 0;
                self.line_start = 0;
                out(raw, if one_line { Shape::OneLine } else { Shape::Lines });
            }
        }
        if self.buf.len() > self.max_frame_bytes {
            let raw = std::mem::take(&mut self.buf);
            self.scan = 0;
            self.line_start = 0;
            self.lines = 0;
            out(raw, Shape::Oversize);
        }
    }

    /// End of stream: releases an unterminated last frame, if any.
    pub fn finish(&mut self, out: &mut Vec<SseFrame>) {
        if !self.buf.is_empty() {
            let raw = std::mem::take(&mut self.buf);
            self.scan = 0;
            self.line_start = 0;
            self.lines = 0;
            out.push(parse_frame(raw, false));
        }
    }
}

/// The first `\n` or `\r` in `b`: on wasm32 eight bytes at a time
/// ([`line_end_swar`]; `memchr2` tests four at a time there, about 3 wasm
/// instructions per byte more), elsewhere with `memchr2`'s SIMD.
fn line_end(b: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "wasm32")]
    return line_end_swar(b);
    #[cfg(not(target_arch = "wasm32"))]
    return memchr::memchr2(b'\n', b'\r', b);
}

/// The first `\n` or `\r` in `b`, eight bytes at a time.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn line_end_swar(b: &[u8]) -> Option<usize> {
    use crate::swar;
    let mut i = 0;
    while let Some(x) = swar::load(b, i) {
        let m = swar::equal(x, b'\n') | swar::equal(x, b'\r');
        if m != 0 {
            return Some(i + swar::first(m));
        }
        i += 8;
    }
    b.get(i..)?.iter().position(|&c| c == b'\n' || c == b'\r').map(|k| i + k)
}

/// What the framer saw of a frame's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One line ended by `\n`, then a blank `\n`.
    OneLine,
    /// Any other complete frame.
    Lines,
    /// Past the size bound: not read.
    Oversize,
}

/// The frame of bytes the framer cut (see [`SseParser::push_raw`]).
pub fn frame(raw: Vec<u8>, shape: Shape) -> SseFrame {
    match shape {
        Shape::Oversize => SseFrame { raw, oversize: true, ..SseFrame::default() },
        _ => parse_frame(raw, shape == Shape::OneLine),
    }
}

/// The value of a [`Shape::OneLine`] frame's `data:` line, as bytes (not
/// yet checked to be UTF-8); `None` when the line is not `data:`. Its
/// frame's `data` is this value, when it is UTF-8.
pub fn one_line_data(raw: &[u8]) -> Option<&[u8]> {
    let value = raw.strip_suffix(b"\n\n")?.strip_prefix(b"data:")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

/// `one_line`: the frame is one line ended by `\n`, then `\n` (the framer
/// found its line ends).
fn parse_frame(raw: Vec<u8>, one_line: bool) -> SseFrame {
    // Most frames of a stream are one `data:` line: read without the line walk.
    if let Some(data) = one_line.then(|| single_data_line(&raw)).flatten() {
        let data = data.to_owned();
        return SseFrame { raw, event: None, data, has_data: true, oversize: false };
    }
    parse_lines(raw)
}

/// The value of a frame that is one line ended by a blank line, when that
/// line is `data:` and valid UTF-8 (`data: …\n\n`).
fn single_data_line(raw: &[u8]) -> Option<&str> {
    std::str::from_utf8(one_line_data(raw)?).ok()
}

/// [`parse_frame`], line by line.
fn parse_lines(raw: Vec<u8>) -> SseFrame {
    let mut frame = SseFrame::default();
    // Valid UTF-8 (every well-formed stream) is read as it is; the lossy
    // copy only for a frame that is not. (`String::from_utf8_lossy` also
    // borrows valid text, but its chunked validation costs about 3,900 wasm
    // instructions more per streamed event: bench/wasm_profile.py.)
    let text = match std::str::from_utf8(&raw) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(&raw),
    };
    for line in lines(&text) {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match memchr::memchr(b':', line.as_bytes()) {
            Some(i) => {
                let v = line.get(i + 1..).unwrap_or("");
                (line.get(..i).unwrap_or(line), v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        match field {
            "event" => frame.event = Some(value.to_string()),
            "data" => {
                if frame.has_data {
                    frame.data.push('\n');
                }
                frame.data.push_str(value);
                frame.has_data = true;
            }
            _ => {}
        }
    }
    drop(text);
    frame.raw = raw;
    frame
}

/// The lines of a frame, split at every `\n` and `\r` as `str::split` with
/// both would, by a byte search (both are ASCII).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let t = rest?;
        match memchr::memchr2(b'\n', b'\r', t.as_bytes()) {
            Some(i) => {
                rest = t.get(i + 1..);
                t.get(..i)
            }
            None => {
                rest = None;
                Some(t)
            }
        }
    })
}

/// Serializes a frame with new data, keeping its event name.
pub fn encode_frame(event: Option<&str>, data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 32);
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] =
        b"event: message_start\ndata: {\"a\":1}\n\n: keepalive\n\ndata: x\ndata: y\r\n\r\ndata: [DONE]\r\r";

    fn frames_with_split(stream: &[u8], split: usize) -> Vec<SseFrame> {
        let mut p = SseParser::new(1 << 20);
        let mut out = Vec::new();
        p.push(&stream[..split], &mut out);
        p.push(&stream[split..], &mut out);
        p.finish(&mut out);
        out
    }

    #[test]
    fn every_split_point_gives_the_same_frames() {
        let whole = frames_with_split(STREAM, 0);
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[0].event.as_deref(), Some("message_start"));
        assert_eq!(whole[0].data, "{\"a\":1}");
        assert!(!whole[1].has_data);
        assert_eq!(whole[2].data, "x\ny");
        assert_eq!(whole[3].data, "[DONE]");
        for split in 0..=STREAM.len() {
            assert_eq!(frames_with_split(STREAM, split), whole, "split at {split}");
        }
    }

    #[test]
    fn a_single_data_line_reads_as_the_line_walk_does() {
        // (frame, whether it is one `data:` line ended by `\n\n`: read
        // without the line walk)
        for (raw, one_line) in [
            (&b"data: x\n\n"[..], true),
            (b"data:x\n\n", true),
            (b"data:  x \n\n", true),
            (b"data: \n\n", true),
            (b"data:\n\n", true),
            (b"data: {\"a\":\"\xc3\xa9\"}\n\n", true),
            (b"data: a\rb\n\n", false),
            (b"data: a\nb\n\n", false),
            (b"data: \xff\n\n", false),
            (b"data: x\r\n\n", false),
            (b"data: x\r\n\r\n", false),
            (b"data: x\n\r\n", false),
            (b"data: x\n", false),
            (b"event: e\ndata: x\n\n", false),
            (b"datum: x\n\n", false),
            (b": data: x\n\n", false),
        ] {
            if one_line {
                assert!(single_data_line(raw).is_some(), "{raw:?}");
            }
            // At every split point, the frames are the line walk's.
            for split in 0..=raw.len() {
                let frames = frames_with_split(raw, split);
                let mut walked = Vec::new();
                let mut from = 0;
                for f in &frames {
                    walked.push(parse_lines(raw[from..from + f.raw.len()].to_vec()));
                    from += f.raw.len();
                }
                assert_eq!(frames, walked, "{raw:?} split at {split}");
                assert_eq!(from, raw.len());
            }
        }
    }

    #[test]
    fn line_end_finds_the_first_line_end() {
        let mut b = [b'a'; 40];
        assert_eq!(line_end_swar(&b), None);
        assert_eq!(line_end_swar(&[]), None);
        for i in 0..b.len() {
            for (c, d) in [(b'\n', b'\r'), (b'\r', b'\n'), (b'\n', b'\n')] {
                b[i] = c;
                if let Some(x) = b.get_mut(i + 3) {
                    *x = d;
                }
                for from in 0..=i {
                    assert_eq!(line_end_swar(&b[from..]), Some(i - from), "{i} {from}");
                    assert_eq!(line_end(&b[from..]), Some(i - from), "{i} {from}");
                }
                b = [b'a'; 40];
            }
        }
        assert_eq!(line_end_swar("é\u{2028}\u{85}x\r".as_bytes()), Some(8));
    }

    #[test]
    fn lines_split_as_str_split_does() {
        for text in ["", "a", "a\n", "\r\n", "data: x\r\ndata: y\n\nz\r", "é:ü\nß"] {
            assert_eq!(lines(text).collect::<Vec<_>>(), text.split(['\n', '\r']).collect::<Vec<_>>(), "{text:?}");
        }
    }

    #[test]
    fn raw_bytes_round_trip() {
        let frames = frames_with_split(STREAM, 7);
        let joined: Vec<u8> = frames.iter().flat_map(|f| f.raw.clone()).collect();
        assert_eq!(joined, STREAM);
    }

    #[test]
    fn byte_by_byte_feed() {
        let mut p = SseParser::new(1 << 20);
        let mut out = Vec::new();
        for b in STREAM {
            p.push(std::slice::from_ref(b), &mut out);
        }
        p.finish(&mut out);
        assert_eq!(out, frames_with_split(STREAM, 0));
    }

    #[test]
    fn oversize_frame_is_released_raw() {
        let mut p = SseParser::new(64);
        let mut out = Vec::new();
        p.push(&[b'a'; 100], &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].oversize);
        assert_eq!(p.pending(), 0);
    }

    #[test]
    fn encode_round_trips_through_parser() {
        let bytes = encode_frame(Some("delta"), "l1\nl2");
        let frames = frames_with_split(&bytes, 3);
        assert_eq!(frames[0].event.as_deref(), Some("delta"));
        assert_eq!(frames[0].data, "l1\nl2");
    }
}
