//! `proxy-audit scan`: the filter's classifier over a body, offline.
//!
//! Prints the body as the filter would forward it, then the findings as the
//! event would record them (`data.request` / `data.response`). Exit 1 when
//! the policy blocks the body.

use proxy_audit_core::config::Config;
use proxy_audit_core::inspect::{plan, Inspection, Plan};
use proxy_audit_core::runtime::build_classifier;

#[derive(Clone, Copy, clap::ValueEnum)]
enum Direction {
    Request,
    Response,
}

#[derive(clap::Args)]
#[command(after_help = "Exit: 0 forwarded, 1 the policy blocks the body, 2 usage error or unreadable input.")]
pub struct Args {
    /// Plugin config (JSON) whose classification policy applies; defaults when absent.
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// Which body it is.
    #[arg(long, value_enum, default_value = "request")]
    direction: Direction,
    /// Content type of the body; guessed from its first bytes when absent.
    #[arg(long, value_name = "TYPE")]
    content_type: Option<String>,
    /// The body, or `-` for standard input.
    #[arg(value_name = "FILE", default_value = "-")]
    input: String,
}

pub fn run(args: &Args) -> u8 {
    let config = args.config.clone();
    let direction = match args.direction {
        Direction::Request => "request",
        Direction::Response => "response",
    };
    let content_type = args.content_type.clone();
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
    let ctype = content_type.unwrap_or_else(|| guess_content_type(&body).to_string());
    let actions = cfg.classification.actions;
    let enabled = if direction == "request" { cfg.classification.request } else { cfg.classification.response };
    let p = plan(enabled, Some(&ctype), None, Some(body.len() as u64), cfg.classification.max_body_bytes);
    let mut inspection = Inspection::new(p, actions);
    let out = match p {
        Plan::Buffer(_) => inspection.scan_buffered(&classifier, &body, &actions).unwrap_or_else(|| body.clone()),
        Plan::Stream => inspection.stream_chunk(&classifier, &body, true),
        Plan::Skip(_) => {
            inspection.observe(&body);
            body.clone()
        }
    };
    if let Some(cat) = inspection.blocked {
        println!("BLOCKED: {}_in_{direction} (the filter answers 403; nothing is forwarded)", cat.as_str());
    } else {
        println!("{}", String::from_utf8_lossy(&out));
    }
    let record = inspection.record().to_json();
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({ direction: record })).unwrap_or_default());
    u8::from(inspection.blocked.is_some())
}

fn guess_content_type(body: &[u8]) -> &'static str {
    let start = body.iter().find(|b| !b.is_ascii_whitespace());
    match start {
        Some(b'{' | b'[') => "application/json",
        _ if body.starts_with(b"data:") || body.starts_with(b"event:") => "text/event-stream",
        _ => "text/plain",
    }
}
