//! `proxy-audit`: verify audit chains, preview redaction, check configs, make
//! signing keys. Built from the same core as the filter, so what it says is
//! what the filter does.

mod check_config;
mod keygen;
mod scan;
mod verify_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes: 0 ok; 1 invalid config, broken or open chain, bad signature, blocked body;
2 usage error or unreadable input.";

#[derive(Parser)]
#[command(name = "proxy-audit", version, about = "The proxy-audit command-line tool", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a plugin config (JSON): every problem with its key path.
    CheckConfig(check_config::Args),
    /// Run the classifier over a body: the redacted body and the findings.
    Scan(scan::Args),
    /// Verify the hash chains (and signatures) of an audit trail.
    Verify(verify_cmd::Args),
    /// Make an Ed25519 key pair for signed checkpoints (audit.signing).
    Keygen(keygen::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::CheckConfig(a) => check_config::run(&a),
        Command::Scan(a) => scan::run(&a),
        Command::Verify(a) => verify_cmd::run(&a),
        Command::Keygen(a) => keygen::run(&a),
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
