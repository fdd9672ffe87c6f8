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

use proxy_audit_core::config::Config;
use proxy_audit_core::exchange::{preview, PreviewInput, Side};
use proxy_audit_core::runtime::Runtime;

pub fn run(args: &[String]) -> u8 {
    let mut config: Option<String> = None;
    let mut direction = "request".to_string();
    let mut content_type: Option<String> = None;
    let mut method: Option<String> = None;
    let mut path = "/".to_string();
    let mut host = "scan.local".to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut caller = Some("proxy-audit-scan".to_string());
    let mut input = "-".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned();
        match a.as_str() {
            "--config" => config = value(),
            "--direction" => direction = value().unwrap_or_default(),
            "--content-type" => content_type = value(),
            "--method" => method = value(),
            "--path" => path = value().unwrap_or_else(|| "/".into()),
            "--host" => host = value().unwrap_or_default(),
            "--caller" => caller = value(),
            "--anonymous" => caller = None,
            "--header" => match value().as_deref().and_then(|h| h.split_once(':')) {
                Some((k, v)) => headers.push((k.trim().to_string(), v.trim().to_string())),
                None => {
                    eprintln!("--header needs NAME:VALUE");
                    return 2;
                }
            },
            _ => input = a.clone(),
        }
    }
    let side = match direction.as_str() {
        "request" => Side::Request,
        "response" => Side::Response,
        _ => {
            eprintln!("--direction must be request or response");
            return 2;
        }
    };
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
    let ctype = content_type.unwrap_or_else(|| guess_content_type(&body).to_string());
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        headers.push(("content-type".into(), ctype));
    }
    let method = method.unwrap_or_else(|| if side == Side::Request { "POST".into() } else { "GET".into() });
    let input = PreviewInput { side, method, path, authority: host, headers, body, caller };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let result = preview(&mut rt, &input, now);
    match &result.refused {
        Some((status, reason)) => {
            println!(
                "BLOCKED: {reason} (the filter answers {status}; nothing of the body is {})",
                if side == Side::Request { "forwarded" } else { "returned" }
            )
        }
        None => println!("{}", String::from_utf8_lossy(&result.forwarded)),
    }
    let record = result.record.to_json();
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({ direction.clone(): record })).unwrap_or_default());
    u8::from(result.refused.is_some())
}

fn guess_content_type(body: &[u8]) -> &'static str {
    let start = body.iter().find(|b| !b.is_ascii_whitespace());
    match start {
        Some(b'{' | b'[') => "application/json",
        _ if body.starts_with(b"data:") || body.starts_with(b"event:") => "text/event-stream",
        _ => "text/plain",
    }
}
