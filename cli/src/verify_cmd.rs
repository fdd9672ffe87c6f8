//! `proxy-audit verify`: the trail verifier (`proxy-audit-verify`) on files.

use proxy_audit_verify::{verify_inputs, Checkpoint, Live};

const AFTER: &str = "\
Reads NDJSON, OTLP-JSON, Envoy JSON access logs (the sealed event in an audit_event/event field)
and Envoy's log (proxy-audit: record lines); sources merge, copies are ignored. A chain without its
end record is open and fails unless --live (all open chains are still being written) or
--live-within SECONDS (those whose last event is that recent, relative to the newest event).
Exit: 0 every chain holds, 1 a break or an open chain, 2 usage or unreadable input.";

#[derive(clap::Args)]
#[command(after_help = AFTER)]
pub struct Args {
    /// Trail files, or `-` for standard input.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
    /// Every open chain is still being written: not a failure.
    #[arg(long, conflicts_with = "live_within")]
    live: bool,
    /// Open chains whose last event is at most this many seconds older than the newest event are live.
    #[arg(long, value_name = "SECONDS")]
    live_within: Option<u64>,
    /// An expected head, kept elsewhere: [EMITTER@]SEQ:HASH (repeatable).
    #[arg(long, value_name = "[EMITTER@]SEQ:HASH", value_parser = Checkpoint::parse)]
    checkpoint: Vec<Checkpoint>,
}

pub fn run(args: &Args) -> u8 {
    let live = match (args.live, args.live_within) {
        (true, _) => Live::All,
        (false, Some(secs)) => Live::Within(secs.saturating_mul(1000)),
        (false, None) => Live::No,
    };
    let mut contents = Vec::new();
    for f in &args.files {
        match crate::read_input(f) {
            Ok(b) => contents.push((f.as_str(), b)),
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        }
    }
    let inputs: Vec<(&str, &[u8])> = contents.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let mut report = verify_inputs(&inputs, &args.checkpoint);
    report.set_live(live);
    print!("{}", report.render());
    u8::try_from(report.exit_code()).unwrap_or(2)
}
