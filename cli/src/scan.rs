//! `proxy-audit scan`: the filter's classifier over a body, offline.
//!
//! Prints the body as the filter would forward it, then the findings as the
//! event would record them (`data.request` / `data.response`). Exit 1 when
//! the policy blocks the body.
//!
//! With `--ndjson`, the input holds many bodies, one per line: a JSON string
//! is a body of that text (its content type guessed, or `--content-type`), a
//! JSON object or array is a JSON body (the line as it is). One result line
//! per body: `{"line": N, "blocked": category|null, "body": forwarded,
//! "<direction>": record}`, `body` a string for a string line and JSON for a
//! JSON line (`null` when blocked). Exit 1 when any body is blocked.
//!
//! A closed output pipe (`| head`) ends the run quietly.

use proxy_audit_core::classify::Classifier;
use proxy_audit_core::config::Config;
use proxy_audit_core::inspect::{plan, Inspection, Plan};
use proxy_audit_core::runtime::build_classifier;
use std::io::Write;

struct Run<'a> {
    cfg: &'a Config,
    classifier: &'a Classifier,
    direction: &'a str,
}

struct Scanned {
    out: Vec<u8>,
    blocked: Option<&'static str>,
    record: serde_json::Value,
}

impl Run<'_> {
    fn scan(&self, body: &[u8], ctype: &str) -> Scanned {
        let actions = self.cfg.classification.actions;
        let enabled = if self.direction == "request" {
            self.cfg.classification.request
        } else {
            self.cfg.classification.response
        };
        let p = plan(enabled, Some(ctype), None, Some(body.len() as u64), self.cfg.classification.max_body_bytes);
        let mut inspection = Inspection::new(p, actions);
        let out = match p {
            Plan::Buffer(_) => {
                inspection.scan_buffered(self.classifier, body, &actions).unwrap_or_else(|| body.to_vec())
            }
            Plan::Stream => inspection.stream_chunk(self.classifier, body, true),
            Plan::Skip(_) => {
                inspection.observe(body);
                body.to_vec()
            }
        };
        Scanned { out, blocked: inspection.blocked.map(|c| c.as_str()), record: inspection.record().to_json() }
    }
}

pub fn run(args: &[String]) -> u8 {
    let mut config: Option<String> = None;
    let mut direction = "request".to_string();
    let mut content_type: Option<String> = None;
    let mut input = "-".to_string();
    let mut ndjson = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned();
        match a.as_str() {
            "--config" => config = value(),
            "--direction" => direction = value().unwrap_or_default(),
            "--content-type" => content_type = value(),
            "--ndjson" => ndjson = true,
            _ => input = a.clone(),
        }
    }
    if direction != "request" && direction != "response" {
        eprintln!("--direction must be request or response");
        return 2;
    }
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
    let cfg = match Config::parse(&cfg_bytes) {
        Ok(c) => c,
        Err(problems) => {
            for p in problems {
                eprintln!("{}: {p}", config.as_deref().unwrap_or("config"));
            }
            return 2;
        }
    };
    let key = cfg.audit.pseudonym_key_env.as_ref().and_then(|k| std::env::var(k).ok()).unwrap_or_default();
    let classifier = match build_classifier(&cfg, key.into_bytes()) {
        Ok(c) => c,
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
    let run = Run { cfg: &cfg, classifier: &classifier, direction: &direction };
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let result = if ndjson {
        many(&run, &body, content_type.as_deref(), &mut w)
    } else {
        one(&run, &body, content_type.as_deref(), &mut w)
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

fn one(run: &Run<'_>, body: &[u8], content_type: Option<&str>, w: &mut impl Write) -> std::io::Result<u8> {
    let ctype = content_type.unwrap_or_else(|| guess_content_type(body));
    let s = run.scan(body, ctype);
    match s.blocked {
        Some(cat) => writeln!(w, "BLOCKED: {cat}_in_{} (the filter answers 403; nothing is forwarded)", run.direction)?,
        None => writeln!(w, "{}", String::from_utf8_lossy(&s.out))?,
    }
    let shown = serde_json::to_string_pretty(&serde_json::json!({ run.direction: s.record })).unwrap_or_default();
    writeln!(w, "{shown}")?;
    Ok(u8::from(s.blocked.is_some()))
}

fn many(run: &Run<'_>, input: &[u8], content_type: Option<&str>, w: &mut impl Write) -> std::io::Result<u8> {
    let mut code = 0;
    for (n, line) in input.split(|&c| c == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed: Result<serde_json::Value, _> = serde_json::from_slice(line);
        let result = match parsed {
            Ok(serde_json::Value::String(text)) => {
                let ctype = content_type.unwrap_or_else(|| guess_content_type(text.as_bytes()));
                let s = run.scan(text.as_bytes(), ctype);
                let body = serde_json::Value::String(String::from_utf8_lossy(&s.out).into_owned());
                (s, body)
            }
            Ok(serde_json::Value::Object(_) | serde_json::Value::Array(_)) => {
                let s = run.scan(line, "application/json");
                let body = serde_json::from_slice(&s.out)
                    .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&s.out).into_owned()));
                (s, body)
            }
            _ => {
                eprintln!("line {}: expected a JSON string, object or array", n + 1);
                return Ok(2);
            }
        };
        let (s, body) = result;
        if s.blocked.is_some() {
            code = 1;
        }
        let line_out = serde_json::json!({
            "line": n + 1,
            "blocked": s.blocked,
            "body": if s.blocked.is_some() { serde_json::Value::Null } else { body },
            run.direction: s.record,
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
