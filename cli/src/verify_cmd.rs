//! `proxy-audit verify [--checkpoint [EMITTER@]SEQ:HASH]... FILE...|-`

use proxy_audit_core::verify::{verify_inputs, Checkpoint};

pub fn run(args: &[String]) -> u8 {
    let mut checkpoints = Vec::new();
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
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
        eprintln!("usage: proxy-audit verify [--checkpoint [EMITTER@]SEQ:HASH]... FILE...|-");
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
    let report = verify_inputs(&inputs, &checkpoints);
    print!("{}", report.render());
    u8::try_from(report.exit_code()).unwrap_or(2)
}
