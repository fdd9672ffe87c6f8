//! `proxy-audit keygen --id KEY_ID --out DIR`: an Ed25519 key pair for
//! signed checkpoints (`audit.signing`).

use proxy_audit_core::signing::key_files;
use std::io::Read;
use std::path::PathBuf;

const AFTER: &str = "\
Writes DIR/KEY_ID.key (private: its content is the value of the VM environment variable that
audit.signing.key_env names; mode 0600) and DIR/KEY_ID.pub (for proxy-audit verify --key).
Refuses to overwrite either file. Exit: 0 written, 2 usage error or a file could not be written.";

#[derive(clap::Args)]
#[command(after_help = AFTER)]
pub struct Args {
    /// Key id: named in every signature (audit.signing.key_id); letters, digits, -, _ and .
    #[arg(long, value_name = "KEY_ID", value_parser = key_id)]
    id: String,
    /// Directory to write the two files into (created if absent).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

fn key_id(s: &str) -> Result<String, String> {
    let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c));
    if ok && !s.starts_with('.') {
        Ok(s.to_string())
    } else {
        Err("1-64 characters of letters, digits, -, _ and . (not starting with .)".into())
    }
}

pub fn run(args: &Args) -> u8 {
    match write(args) {
        Ok((key, public)) => {
            println!("wrote {} (private: the VM's environment variable) and {}", key.display(), public.display());
            0
        }
        Err(e) => {
            eprintln!("proxy-audit keygen: {e}");
            2
        }
    }
}

fn write(args: &Args) -> Result<(PathBuf, PathBuf), String> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| format!("no random bytes from /dev/urandom: {e}"))?;
    let (key_text, pub_text) = key_files(&args.id, seed);
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let key = args.out.join(format!("{}.key", args.id));
    let public = args.out.join(format!("{}.pub", args.id));
    for p in [&key, &public] {
        if p.exists() {
            return Err(format!("{} exists; not overwriting a key", p.display()));
        }
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&key).map_err(|e| format!("{}: {e}", key.display()))?;
    std::io::Write::write_all(&mut f, key_text.as_bytes()).map_err(|e| format!("{}: {e}", key.display()))?;
    std::fs::write(&public, pub_text).map_err(|e| format!("{}: {e}", public.display()))?;
    Ok((key, public))
}
