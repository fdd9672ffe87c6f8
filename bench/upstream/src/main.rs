//! The load benchmark's upstream and audit sink: a small HTTP/1.1 server (std
//! only, one thread per connection, responses built once at start) so that it
//! is not what limits the Envoy being measured.
//!
//! ```text
//! POST /v1/events            audit sink: counts NDJSON lines, answers 200 {}
//! GET  /__stats              {"requests", "pii_requests", "batches", "events"}
//! POST, body has "stream":true   DIR/stream.sse, chunked, one chunk per event
//! POST otherwise             DIR/response.json
//! GET  otherwise             a small JSON body
//! ```
//! `pii_requests` counts request bodies that reached the upstream still holding
//! an `@example.com` address (the benchmark's bodies carry some; a redacting
//! proxy leaves none). Usage: `bench-upstream DIR [PORT [GAP_US]]`; prints
//! `port N`. The stream goes out in one write; with `GAP_US`, one write per
//! event with that pause between them, so that each event reaches the proxy in
//! a read of its own, as a model's stream does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    pii_requests: AtomicU64,
    batches: AtomicU64,
    events: AtomicU64,
}

struct Responses {
    small: Vec<u8>,
    chat: Vec<u8>,
    sse_head: Vec<u8>,
    /// Each event as one chunk of the chunked encoding, then the last chunk.
    sse_chunks: Vec<Vec<u8>>,
    /// All of them, written at once when there is no gap.
    sse_all: Vec<u8>,
    gap: Duration,
}

fn fixed(ctype: &str, body: &[u8]) -> Vec<u8> {
    let mut r =
        format!("HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
    r.extend_from_slice(body);
    r
}

fn load(dir: &str, gap: Duration) -> std::io::Result<Responses> {
    let chat = std::fs::read(format!("{dir}/response.json"))?;
    let sse = std::fs::read(format!("{dir}/stream.sse"))?;
    let mut sse_chunks: Vec<Vec<u8>> = sse
        .split_inclusive(|&b| b == b'\n')
        .fold(vec![Vec::new()], |mut events, line| {
            if let Some(last) = events.last_mut() {
                last.extend_from_slice(line);
            }
            if line == b"\n" {
                events.push(Vec::new());
            }
            events
        })
        .into_iter()
        .filter(|e| !e.is_empty())
        .map(|e| [format!("{:x}\r\n", e.len()).as_bytes(), &e, b"\r\n"].concat())
        .collect();
    sse_chunks.push(b"0\r\n\r\n".to_vec());
    Ok(Responses {
        small: fixed("application/json", br#"{"status":"ok","service":"bench-upstream"}"#),
        chat: fixed("application/json", &chat),
        sse_head: b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec(),
        sse_all: sse_chunks.concat(),
        sse_chunks,
        gap,
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
    keep_alive: bool,
}

/// Reads one request; None at the end of the connection.
fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let (mut length, mut chunked, mut keep_alive) = (0usize, false, true);
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let Some((name, value)) = line.trim_end().split_once(':') else { break };
        let value = value.trim().to_ascii_lowercase();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "transfer-encoding" => chunked = value.contains("chunked"),
            "connection" => keep_alive = value != "close",
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            if size == 0 {
                // Trailers, if any, end with an empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size + 2, 0);
            r.read_exact(body.get_mut(start..).unwrap_or_default())?;
            body.truncate(start + size);
        }
    } else {
        body.resize(length, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Some(Request { method, path, body, keep_alive }))
}

fn serve(conn: TcpStream, resp: &Responses, c: &Counters) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut out = conn.try_clone()?;
    let mut r = BufReader::with_capacity(64 << 10, conn);
    while let Some(Request { method, path, body, keep_alive }) = read_request(&mut r)? {
        if path.starts_with("/v1/events") {
            c.batches.fetch_add(1, Relaxed);
            let lines = body.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
            c.events.fetch_add(lines as u64, Relaxed);
            out.write_all(&fixed("application/json", b"{}"))?;
        } else if path.starts_with("/__stats") {
            let stats = format!(
                r#"{{"requests":{},"pii_requests":{},"batches":{},"events":{}}}"#,
                c.requests.load(Relaxed),
                c.pii_requests.load(Relaxed),
                c.batches.load(Relaxed),
                c.events.load(Relaxed)
            );
            out.write_all(&fixed("application/json", stats.as_bytes()))?;
        } else {
            c.requests.fetch_add(1, Relaxed);
            if contains(&body, b"@example.com") {
                c.pii_requests.fetch_add(1, Relaxed);
            }
            if method == "GET" {
                out.write_all(&resp.small)?;
            } else if contains(&body, b"\"stream\":true") || contains(&body, b"\"stream\": true") {
                out.write_all(&resp.sse_head)?;
                if resp.gap.is_zero() {
                    out.write_all(&resp.sse_all)?;
                } else {
                    for (i, chunk) in resp.sse_chunks.iter().enumerate() {
                        if i > 0 {
                            std::thread::sleep(resp.gap);
                        }
                        out.write_all(chunk)?;
                    }
                }
            } else {
                out.write_all(&resp.chat)?;
            }
        }
        if !keep_alive {
            break;
        }
    }
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| ".".into());
    let port = args.next().unwrap_or_else(|| "0".into());
    let gap = Duration::from_micros(args.next().and_then(|g| g.parse().ok()).unwrap_or(0));
    let resp = match load(&dir, gap) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("bench-upstream: cannot read the bodies in {dir}: {e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(format!("127.0.0.1:{port}")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bench-upstream: cannot listen on port {port}: {e}");
            std::process::exit(2);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("port {port}");
    let _ = std::io::stdout().flush();
    let counters = Arc::new(Counters::default());
    for conn in listener.incoming().flatten() {
        let (resp, counters) = (Arc::clone(&resp), Arc::clone(&counters));
        std::thread::spawn(move || {
            let _ = serve(conn, &resp, &counters);
        });
    }
}
