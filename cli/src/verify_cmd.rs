//! `proxy-audit verify [--live | --live-within SECONDS] [--checkpoint [EMITTER@]SEQ:HASH]... FILE...|-`

use proxy_audit_core::verify::{verify_inputs, Checkpoint, Live};

const USAGE: &str =
    "usage: proxy-audit verify [--live | --live-within SECONDS] [--checkpoint [EMITTER@]SEQ:HASH]... FILE...|-";

pub fn run(args: &[String]) -> u8 {
    let mut checkpoints = Vec::new();
    let mut files = Vec::new();
    let mut live = Live::No;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}\n\nReads NDJSON, OTLP-JSON, Envoy JSON access logs (the sealed event in an audit_event/event field)\nand Envoy's log (proxy-audit: record lines); sources merge, copies are ignored. A chain without its\nend record is open and fails unless --live (all open chains are still being written) or\n--live-within SECONDS (those whose last event is that recent, relative to the newest event).\nExit: 0 every chain holds, 1 a break or an open chain, 2 usage or unreadable input.");
                return 0;
            }
            "--live" => live = Live::All,
            "--live-within" => match it.next().map(|s| s.parse::<u64>()) {
                Some(Ok(secs)) => live = Live::Within(secs.saturating_mul(1000)),
                _ => {
                    eprintln!("--live-within needs a number of seconds");
                    return 2;
                }
            },
            "--checkpoint" => match it.next().map(|s| Checkpoint::parse(s)) {
                Some(Ok(c)) => checkpoints.push(c),
                Some(Err(e)) => {
                    eprintln!("--checkpoint: {e}");
                    return 2;
                }
                None => {
                    eprintln!("--checkpoint needs [EMITTER@]SEQ:HASH");
                    return 2;
                }
            },
            _ => files.push(a.clone()),
        }
    }
    if files.is_empty() {
        eprintln!("{USAGE}");
        return 2;
    }
    let mut contents = Vec::new();
    for f in &files {
        match crate::read_input(f) {
            Ok(b) => contents.push((f.as_str(), b)),
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        }
    }
    let inputs: Vec<(&str, &[u8])> = contents.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let mut report = verify_inputs(&inputs, &checkpoints);
    report.set_live(live);
    print!("{}", report.render());
    u8::try_from(report.exit_code()).unwrap_or(2)
}
