//! `proxy-audit check-config FILE`: the filter's own parser, run offline.

use proxy_audit_core::config::Config;

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
    match Config::parse(&bytes) {
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
