//! `proxy-audit verify`: the trail verifier (`proxy-audit-verify`) on files,
//! directories, standard input and `.gz`, with keys, shards and JSON reports.

use proxy_audit_verify::sources::{self, Source};
use proxy_audit_verify::{Checkpoint, Live, Options, Problem, Progress, PublicKey, Report, Session};
use std::io::{IsTerminal, Write};
use std::time::Instant;

const AFTER: &str = "\
Reads NDJSON, OTLP-JSON, Envoy JSON access logs (the sealed event in an audit_event/event field)
and Envoy's log (proxy-audit: record lines), from files, directories (every file below), - (stdin),
gzip-compressed or not; sources merge, copies are ignored. A chain without its end record is open
and fails unless --live (all open chains are still being written) or --live-within SECONDS (those
whose last event is that recent, relative to the newest event).
With --key, every chain start and checkpoint must carry a valid signature by one of the keys
(rotation: give every key the trail was signed with), and a signed head the chain no longer has
fails as rewritten.
Sharding: run --shard I/N --format json for I = 0..N-1 (each reads the whole trail, checks only
its emitters), then --merge the N reports.
Exit: 0 every chain holds, 1 a break, a signature problem or an open chain, 2 usage or unreadable input.";

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(clap::Args)]
#[command(after_help = AFTER)]
pub struct Args {
    /// Trail files or directories, or `-` for standard input (with --merge: JSON reports).
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
    /// A public key (KEY_ID.pub from proxy-audit keygen): check signatures (repeatable).
    #[arg(long, value_name = "FILE.pub")]
    key: Vec<String>,
    /// The witness's copy of the signed checkpoints (audit.witness): each anchors the trail (repeatable).
    #[arg(long, value_name = "FILE")]
    checkpoints: Vec<String>,
    /// Check only the emitters of shard I of N (0 <= I < N).
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Report format: text, or json (for --merge).
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// The files are JSON reports of --shard runs: print the verdict of all of them.
    #[arg(long, conflicts_with_all = ["shard", "key", "checkpoints", "checkpoint"])]
    merge: bool,
    /// Threads (default: the CPUs available).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or("expected I/N, e.g. 0/4")?;
    let i: u64 = i.trim().parse().map_err(|_| format!("{i:?} is not a number"))?;
    let n: u64 = n.trim().parse().map_err(|_| format!("{n:?} is not a number"))?;
    if n == 0 || i >= n {
        return Err(format!("need 0 <= I < N, got {i}/{n}"));
    }
    Ok((i, n))
}

pub fn run(args: &Args) -> u8 {
    if args.merge {
        return merge(args);
    }
    let mut keys = Vec::new();
    for k in &args.key {
        match std::fs::read_to_string(k).map_err(|e| e.to_string()).and_then(|t| PublicKey::parse(&t)) {
            Ok(key) => keys.push(key),
            Err(e) => {
                eprintln!("--key {k}: {e}");
                return 2;
            }
        }
    }
    let sources = match sources::expand(&args.files) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let threads =
        args.threads.map(usize::from).unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let mut opts = Options {
        checkpoints: args.checkpoint.clone(),
        keys,
        shard: args.shard,
        threads,
        live: match (args.live, args.live_within) {
            (true, _) => Live::All,
            (false, Some(secs)) => Live::Within(secs.saturating_mul(1000)),
            (false, None) => Live::No,
        },
        // Several sources may carry the same events far apart (8 bytes per event).
        history: sources.len() > 1,
    };
    // The witness's copy: its signed records anchor the trail (their
    // signatures checked with the keys, like the trail's own).
    let mut witness_problems = Report::default();
    for f in &args.checkpoints {
        match witness_anchors(f, &opts) {
            Ok((anchors, report)) => {
                opts.checkpoints.extend(anchors);
                witness_problems.breaks.extend(report.breaks);
                witness_problems.unreadable.extend(report.unreadable);
            }
            Err(e) => {
                eprintln!("--checkpoints {f}: {e}");
                return 2;
            }
        }
    }
    let total = sources.len();
    let mut session = Session::new(&opts);
    let started = Instant::now();
    if std::io::stderr().is_terminal() {
        let mut last = Instant::now();
        session.on_progress(move |p: &Progress| {
            if last.elapsed().as_millis() >= 250 {
                last = Instant::now();
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                eprint!(
                    "\r{} events, {:.0} events/s, {:.0} MB, {}/{total} sources   ",
                    p.events,
                    p.events as f64 / secs,
                    p.bytes as f64 / 1e6,
                    p.sources
                );
            }
        });
    }
    for s in &sources {
        sources::read_into(&mut session, s);
    }
    let mut report = session.finish();
    if std::io::stderr().is_terminal() {
        eprint!("\r{:70}\r", "");
    }
    report.breaks.extend(witness_problems.breaks.into_iter().map(|mut b| {
        b.detail = format!("in the witness's copy: {}", b.detail);
        b
    }));
    report.unreadable.extend(witness_problems.unreadable);
    emit(&report, args.format)
}

/// The anchors of a witness file: each valid record's own seq and hash;
/// with keys, the records' signatures are checked as in the trail.
fn witness_anchors(path: &str, opts: &Options) -> Result<(Vec<Checkpoint>, Report), String> {
    let wopts = Options { keys: opts.keys.clone(), live: Live::All, threads: 1, ..Options::default() };
    let mut session = Session::new(&wopts);
    sources::read_into(&mut session, &Source::File(path.into()));
    let report = session.finish();
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let events = proxy_audit_verify::parse_events_lossy(path, &bytes).0;
    let mut anchors = Vec::new();
    for ev in events {
        let chain = ev.get("chain");
        let (Some(emitter), Some(seq), Some(hash)) = (
            chain.and_then(|c| c.get("emitter")).and_then(|v| v.as_str()),
            chain.and_then(|c| c.get("seq")).and_then(|v| v.as_u64()),
            chain.and_then(|c| c.get("hash")).and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        // Only records whose content holds (a broken one is a break of the report).
        if proxy_audit_core::chain::compute_hash(&ev) != hash {
            continue;
        }
        if let Ok(cp) = Checkpoint::parse(&format!("{emitter}@{seq}:{hash}")) {
            anchors.push(cp);
        }
    }
    // The witness holds some records of each chain: gaps and open chains there are normal.
    let breaks =
        report.breaks.into_iter().filter(|b| !matches!(b.problem, Problem::Missing | Problem::BadPrev)).collect();
    Ok((anchors, Report { breaks, unreadable: report.unreadable, ..Report::default() }))
}

fn merge(args: &Args) -> u8 {
    let mut parts = Vec::new();
    for f in &args.files {
        let parsed = crate::read_input(f)
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| format!("{f}: {e}")))
            .and_then(|v| Report::from_json(&v).map_err(|e| format!("{f}: {e}")));
        match parsed {
            Ok(r) => parts.push(r),
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        }
    }
    emit(&Report::merge(parts), args.format)
}

fn emit(report: &Report, format: Format) -> u8 {
    let text = match format {
        Format::Text => report.render(),
        Format::Json => format!("{}\n", report.to_json()),
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    u8::try_from(report.exit_code()).unwrap_or(2)
}
