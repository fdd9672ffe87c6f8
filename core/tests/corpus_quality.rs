//! Precision/recall of the built-in detectors on a labeled JSONL corpus
//! (`host-tests/corpus/make_corpus.py`). A prediction is a true positive when
//! it has the labeled entity and overlaps the labeled span.
//!
//! Also the gate on the targets: recall ≥ 0.99 and precision ≥ 0.995 for the
//! checksum entities, ≥ 0.97 for email, phone and IP. Prints the table:
//! `cargo test --release -p proxy-audit-core --test corpus_quality -- --nocapture`
//! (`CORPUS=path` for another corpus, `VERBOSE=1` to list misses).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proxy_audit_core::classify::{Classifier, Rules};
use std::collections::BTreeMap;

#[test]
fn corpus_precision_and_recall_meet_the_targets() {
    let path = std::env::var("CORPUS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../host-tests/corpus/corpus.jsonl").to_string());
    let data = std::fs::read_to_string(&path).expect("read corpus");
    let cl = Classifier::new(&Rules::default());
    // entity -> (tp, fp, fn)
    let mut stats: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
    let verbose = std::env::var("VERBOSE").is_ok();
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        let rec: serde_json::Value = serde_json::from_str(line).expect("jsonl");
        let text = rec["text"].as_str().unwrap_or("");
        let gold: Vec<(String, usize, usize)> = rec["entities"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["entity"].as_str().unwrap_or("").to_string(),
                    e["start"].as_u64().unwrap_or(0) as usize,
                    e["end"].as_u64().unwrap_or(0) as usize,
                )
            })
            .collect();
        let pred = cl.text_spans(text);
        let mut matched = vec![false; gold.len()];
        for (ent, s, e) in &pred {
            let hit = gold.iter().enumerate().find(|(k, (g, gs, ge))| !matched[*k] && g == ent && s < ge && gs < e);
            let st = stats.entry(ent.to_string()).or_default();
            match hit {
                Some((k, _)) => {
                    matched[k] = true;
                    st.0 += 1;
                }
                None => {
                    st.1 += 1;
                    if verbose {
                        eprintln!("FP {ent}: {}", &text[*s..*e]);
                    }
                }
            }
        }
        for (k, (g, s, e)) in gold.iter().enumerate() {
            if !matched[k] {
                stats.entry(g.clone()).or_default().2 += 1;
                if verbose {
                    eprintln!("FN {g}: {} | {text}", &text[*s..*e]);
                }
            }
        }
    }
    println!("{:<24} {:>6} {:>6} {:>6} {:>9} {:>9}", "entity", "tp", "fp", "fn", "precision", "recall");
    for (ent, (tp, fp, fnn)) in &stats {
        let p = if tp + fp == 0 { 1.0 } else { *tp as f64 / (tp + fp) as f64 };
        let r = if tp + fnn == 0 { 1.0 } else { *tp as f64 / (tp + fnn) as f64 };
        println!("{ent:<24} {tp:>6} {fp:>6} {fnn:>6} {p:>9.4} {r:>9.4}");
    }
    let mut misses = Vec::new();
    for (ent, (tp, fp, fnn)) in &stats {
        let p = if tp + fp == 0 { 1.0 } else { *tp as f64 / (tp + fp) as f64 };
        let r = if tp + fnn == 0 { 1.0 } else { *tp as f64 / (tp + fnn) as f64 };
        let (min_p, min_r) = match ent.as_str() {
            "email" | "phone" | "ip_address" | "date_of_birth" => (0.97, 0.97),
            _ => (0.995, 0.99),
        };
        if p < min_p || r < min_r {
            misses.push(format!("{ent}: precision {p:.4} (≥ {min_p}), recall {r:.4} (≥ {min_r})"));
        }
    }
    assert!(stats.len() >= 15, "the corpus covers too few entities: {stats:?}");
    assert!(misses.is_empty(), "below target: {misses:#?}");
}
