//! `proxy-audit check-config FILE`: the filter's own parser, run offline.

use proxy_audit_core::policy;

#[derive(clap::Args)]
#[command(
    after_help = "Exit: 0 valid, 1 invalid (each problem on a line: FILE: $.key.path: what is wrong), 2 unreadable."
)]
pub struct Args {
    /// The plugin config (JSON), or `-` for standard input.
    #[arg(value_name = "FILE")]
    file: String,
}

pub fn run(args: &Args) -> u8 {
    let path = &args.file;
    let bytes = match crate::read_input(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    // The checks the filter makes when it starts, in one pass.
    match policy::compile(&bytes) {
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
