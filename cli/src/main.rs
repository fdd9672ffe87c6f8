//! `proxy-audit`: verify audit chains, preview redaction, check configs.
//! Built from the same core as the filter, so what it says is what the
//! filter does.

mod check_config;
mod scan;
mod verify_cmd;

use std::process::ExitCode;

const USAGE: &str = "\
proxy-audit — the proxy-audit command-line tool

USAGE:
  proxy-audit check-config FILE           validate a plugin config (JSON); every problem with its key path
  proxy-audit verify [--live | --live-within SECONDS] [--checkpoint [EMITTER@]SEQ:HASH]... FILE...|-
                                          verify hash chains in NDJSON, OTLP-JSON, access-log and Envoy-log files
  proxy-audit scan [--config FILE] [--direction request|response] [--content-type TYPE] [--ndjson] [FILE|-]
                                          run the classifier over a body (--ndjson: one body per line, one result line each)

Exit codes: 0 ok, 1 invalid config / broken chain / blocked body, 2 usage or unreadable input.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("scan") => scan::run(args.get(1..).unwrap_or_default()),
        Some("verify") => verify_cmd::run(args.get(1..).unwrap_or_default()),
        Some("check-config") => check_config::run(args.get(1..).unwrap_or_default()),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            0
        }
        Some("--version" | "-V") => {
            println!("proxy-audit {}", env!("CARGO_PKG_VERSION"));
            0
        }
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    ExitCode::from(code)
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| format!("stdin: {e}"))?;
        Ok(buf)
    } else {
        std::fs::read(path).map_err(|e| format!("{path}: {e}"))
    }
}
