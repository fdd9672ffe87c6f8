//! `proxy-audit check-config FILE`: the filter's own parser, run offline.

use proxy_audit_core::config::Config;
use proxy_audit_core::runtime;

pub fn run(args: &[String]) -> u8 {
    let [path] = args else {
        eprintln!("usage: proxy-audit check-config FILE");
        return 2;
    };
    let bytes = match crate::read_input(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    // The parser's checks, then those the filter makes when it starts.
    match Config::parse(&bytes).and_then(|cfg| match runtime::validate(&cfg) {
        errors if errors.is_empty() => Ok(cfg),
        errors => Err(errors),
    }) {
        Ok(_) => {
            println!("{path}: ok");
            0
        }
        Err(problems) => {
            for p in &problems {
                println!("{path}: {p}");
            }
            println!("{path}: {} problem{}", problems.len(), if problems.len() == 1 { "" } else { "s" });
            1
        }
    }
}
