//! `proxy-audit scan`: one body through the filter's own request exchange,
//! offline.
//!
//! Prints the body as the filter would forward it (request) or return it
//! (response), then the findings as the event would record them
//! (`data.request` / `data.response`). The body goes through exactly the code
//! the filter runs (`proxy_audit_core::exchange`), route overrides included:
//! give the request line with `--method`, `--path` and `--host`. The caller
//! is a verified individual (`--caller SUB`, as `jwt_authn` would vouch for
//! it; `--anonymous` for none), so identity rules pass unless asked. Exit 1
//! when the policy blocks the body (or the filter would answer it itself).
//!
//! With `--ndjson`, the input holds many bodies, one per line: a JSON string
//! is a body of that text (its content type guessed, or `--content-type`), a
//! JSON object or array is a JSON body (the line as it is). One result line
//! per body: `{"line": N, "blocked": reason|null, "body": forwarded,
//! "<direction>": record}`, `body` a string for a string line and JSON for a
//! JSON line (`null` when blocked). Exit 1 when any body is blocked.
//!
//! A closed output pipe (`| head`) ends the run quietly.

use proxy_audit_core::exchange::{preview, PreviewInput, Side};
use proxy_audit_core::policy;
use proxy_audit_core::runtime::Runtime;
use std::io::Write;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Direction {
    Request,
    Response,
}

#[derive(clap::Args)]
#[command(
    after_help = "Exit: 0 forwarded, 1 the filter answers itself (the policy blocks the body, say), 2 usage error or unreadable input."
)]
pub struct Args {
    /// Plugin config (JSON) whose policy applies, route overrides included; defaults when absent.
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// Which body it is.
    #[arg(long, value_enum, default_value = "request")]
    direction: Direction,
    /// Content type of the body; guessed from its first bytes when absent.
    #[arg(long, value_name = "TYPE")]
    content_type: Option<String>,
    /// Request method (default POST for a request body, GET for a response's request).
    #[arg(long, value_name = "METHOD")]
    method: Option<String>,
    /// Request path (routes match on it).
    #[arg(long, value_name = "PATH", default_value = "/")]
    path: String,
    /// Request host (routes match on it).
    #[arg(long, value_name = "HOST", default_value = "scan.local")]
    host: String,
    /// Extra header of the scanned message, NAME:VALUE (repeatable).
    #[arg(long = "header", value_name = "NAME:VALUE", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// The verified individual the request comes from (as jwt_authn would vouch for it).
    #[arg(long, value_name = "SUB", default_value = "proxy-audit-scan", conflicts_with = "anonymous")]
    caller: String,
    /// No caller at all: identity rules apply as to an anonymous request.
    #[arg(long)]
    anonymous: bool,
    /// Many bodies, one per line (a JSON string: that text; a JSON object or array: a JSON body); one result line each.
    #[arg(long)]
    ndjson: bool,
    /// The body, or `-` for standard input.
    #[arg(value_name = "FILE", default_value = "-")]
    input: String,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    s.split_once(':')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| "expected NAME:VALUE".to_string())
}

pub fn run(args: &Args) -> u8 {
    let config = args.config.clone();
    let side = match args.direction {
        Direction::Request => Side::Request,
        Direction::Response => Side::Response,
    };
    let direction = if side == Side::Request { "request" } else { "response" };
    let content_type = args.content_type.clone();
    let headers = args.headers.clone();
    let caller = (!args.anonymous).then(|| args.caller.clone());
    let (method, path, host) = (args.method.clone(), args.path.clone(), args.host.clone());
    let input = args.input.clone();
    let cfg_bytes = match &config {
        Some(path) => match crate::read_input(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        },
        None => Vec::new(),
    };
    let cfg = match policy::compile(&cfg_bytes) {
        Ok(c) => c,
        Err(problems) => {
            for p in problems {
                eprintln!("{}: {p}", config.as_deref().unwrap_or("config"));
            }
            return 2;
        }
    };
    // Secrets the config names come from the environment when set; scan
    // needs none to classify (pseudonyms differ from the filter's without
    // the filter's key).
    let env = |k: &str| std::env::var(k).ok().or_else(|| Some("proxy-audit-scan-placeholder-key".into()));
    let mut rt = match Runtime::new(cfg, &env, [0; 32], "proxy-audit-scan".into(), 0, "scan") {
        Ok(rt) => rt,
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            return 2;
        }
    };
    let body = match crate::read_input(&input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let method = method.unwrap_or_else(|| if side == Side::Request { "POST".into() } else { "GET".into() });
    let mut run = Run { rt: &mut rt, side, direction, method, path, host, headers, caller, now };
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let result = if args.ndjson {
        many(&mut run, &body, content_type.as_deref(), &mut w)
    } else {
        one(&mut run, body, content_type.as_deref(), &mut w)
    };
    match result.and_then(|code| w.flush().map(|()| code)) {
        Ok(code) => code,
        // The reader went away (`| head`): nothing more to say to it.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("stdout: {e}");
            2
        }
    }
}

/// One scan run: the runtime and the request every body is sent as.
struct Run<'a> {
    rt: &'a mut Runtime,
    side: Side,
    direction: &'static str,
    method: String,
    path: String,
    host: String,
    headers: Vec<(String, String)>,
    caller: Option<String>,
    now: u64,
}

impl Run<'_> {
    fn preview(&mut self, body: Vec<u8>, ctype: &str) -> proxy_audit_core::exchange::Preview {
        let mut headers = self.headers.clone();
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            headers.push(("content-type".into(), ctype.to_string()));
        }
        let input = PreviewInput {
            side: self.side,
            method: self.method.clone(),
            path: self.path.clone(),
            authority: self.host.clone(),
            headers,
            body,
            caller: self.caller.clone(),
        };
        preview(self.rt, &input, self.now)
    }
}

fn one(run: &mut Run<'_>, body: Vec<u8>, content_type: Option<&str>, w: &mut impl Write) -> std::io::Result<u8> {
    let ctype = content_type.map_or_else(|| guess_content_type(&body).to_string(), str::to_string);
    let result = run.preview(body, &ctype);
    match &result.refused {
        Some((status, reason)) => writeln!(
            w,
            "BLOCKED: {reason} (the client gets status {status}; nothing of the body is {})",
            if run.side == Side::Request { "forwarded" } else { "returned" }
        )?,
        None => writeln!(w, "{}", String::from_utf8_lossy(&result.forwarded))?,
    }
    let record = result.record.to_json();
    writeln!(w, "{}", serde_json::to_string_pretty(&serde_json::json!({ run.direction: record })).unwrap_or_default())?;
    Ok(u8::from(result.refused.is_some()))
}

fn many(run: &mut Run<'_>, input: &[u8], content_type: Option<&str>, w: &mut impl Write) -> std::io::Result<u8> {
    let mut code = 0;
    for (n, line) in input.split(|&c| c == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed: Result<serde_json::Value, _> = serde_json::from_slice(line);
        let (result, json) = match parsed {
            Ok(serde_json::Value::String(text)) => {
                let ctype =
                    content_type.map_or_else(|| guess_content_type(text.as_bytes()).to_string(), str::to_string);
                (run.preview(text.into_bytes(), &ctype), false)
            }
            Ok(serde_json::Value::Object(_) | serde_json::Value::Array(_)) => {
                (run.preview(line.to_vec(), "application/json"), true)
            }
            _ => {
                eprintln!("line {}: expected a JSON string, object or array", n + 1);
                return Ok(2);
            }
        };
        let text = || serde_json::Value::String(String::from_utf8_lossy(&result.forwarded).into_owned());
        let body = match (&result.refused, json) {
            (Some(_), _) => serde_json::Value::Null,
            (None, true) => serde_json::from_slice(&result.forwarded).unwrap_or_else(|_| text()),
            (None, false) => text(),
        };
        if result.refused.is_some() {
            code = 1;
        }
        let line_out = serde_json::json!({
            "line": n + 1,
            "blocked": result.refused.as_ref().map(|(_, reason)| reason.clone()),
            "body": body,
            run.direction: result.record.to_json(),
        });
        writeln!(w, "{line_out}")?;
    }
    Ok(code)
}

fn guess_content_type(body: &[u8]) -> &'static str {
    let start = body.iter().find(|b| !b.is_ascii_whitespace());
    match start {
        Some(b'{' | b'[') => "application/json",
        _ if body.starts_with(b"data:") || body.starts_with(b"event:") => "text/event-stream",
        _ => "text/plain",
    }
}
