//! The report as text (and JSON).

use super::*;
use serde_json::json;

impl Report {
    /// Marks the open chains that `live` counts as still being written.
    pub fn set_live(&mut self, live: Live) {
        let newest = self.emitters.iter().filter_map(|e| e.last_time_ms).max().unwrap_or(0);
        for o in &mut self.open {
            let last = self.emitters.iter().find(|e| e.emitter == o.emitter).and_then(|e| e.last_time_ms);
            o.live = match live {
                Live::No => false,
                Live::All => true,
                Live::Within(ms) => last.is_some_and(|t| t.saturating_add(ms) >= newest),
            };
        }
    }

    /// Open chains that fail the verdict (not live).
    pub fn cut(&self) -> impl Iterator<Item = &Open> {
        self.open.iter().filter(|o| !o.live)
    }

    /// Emitter lines, then breaks, declared losses, unreadable input and a
    /// summary line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.emitters {
            out.push_str(&format!(
                "emitter {}: {} events, seq {}..{}, head {}\n",
                e.emitter, e.events, e.first_seq, e.last_seq, e.head
            ));
        }
        for b in &self.breaks {
            let seq = if b.seq == UNKNOWN_SEQ && b.problem == Problem::Malformed {
                "?".to_string()
            } else {
                b.seq.to_string()
            };
            out.push_str(&format!("BREAK emitter {} seq {seq}: {}: {}\n", b.emitter, b.problem, b.detail));
        }
        for e in &self.emitters {
            for (a, b) in &e.declared_lost {
                let by = e
                    .declared_by
                    .iter()
                    .find(|(x, y, _)| (x, y) == (a, b))
                    .map(|(_, _, by)| format!(" by {by}"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "LOSS emitter {} seq {a}..{b} declared{by} ({} events)\n",
                    e.emitter,
                    (b - a).saturating_add(1)
                ));
            }
            for (a, b, n) in &e.witness_lost {
                out.push_str(&format!(
                    "WITNESS emitter {}: {n} signed records in seq {a}..{b} not sent to the witness (its queue was full); they are in the chain\n",
                    e.emitter
                ));
            }
            if e.present_though_declared > 0 {
                out.push_str(&format!(
                    "PRESENT emitter {}: {} events declared lost are in the input after all (stored, not acknowledged)\n",
                    e.emitter, e.present_though_declared
                ));
            }
        }
        if self.signatures_checked {
            for e in self.emitters.iter().filter(|e| e.events > 0) {
                let line = match &e.last_signed {
                    Some((seq, key)) => format!(
                        "SIGNED emitter {}: last signed seq {seq} (key {key}), {} events after it unanchored\n",
                        e.emitter, e.unanchored
                    ),
                    None => format!(
                        "SIGNED emitter {}: no valid signature, {} events unanchored\n",
                        e.emitter, e.unanchored
                    ),
                };
                out.push_str(&line);
            }
        }
        for o in &self.open {
            let after = match o.last_seq {
                Some(s) => format!("events after seq {s} may be missing"),
                None => "none of its events is in the input".to_string(),
            };
            let note = if o.live { " (live: still being written)" } else { "" };
            out.push_str(&format!("OPEN emitter {}: no end record; {after}{note}\n", o.emitter));
        }
        for u in &self.unreadable {
            out.push_str(&format!("UNREADABLE {u}\n"));
        }
        let events: u64 = self.emitters.iter().map(|e| e.events).sum();
        let dups: u64 = self.emitters.iter().map(|e| e.duplicates).sum();
        let dup_note = if dups > 0 { format!(", {dups} duplicate deliveries ignored") } else { String::new() };
        let cut = self.cut().count();
        let verdict = match self.exit_code() {
            0 => "OK: every chain holds".to_string(),
            1 if self.breaks.is_empty() => format!(
                "FAILED: {cut} open chain(s): events after their last seq may be missing (--live if they are still being written)"
            ),
            1 if cut > 0 => format!("FAILED: {} break(s), {cut} open chain(s)", self.breaks.len()),
            1 => format!("FAILED: {} break(s)", self.breaks.len()),
            _ => format!(
                "UNREADABLE: {} part(s) of the input could not be read, {} break(s)",
                self.unreadable.len(),
                self.breaks.len()
            ),
        };
        let shard = self.shard.map(|(i, n)| format!(", shard {i}/{n}")).unwrap_or_default();
        out.push_str(&format!("{verdict} ({} emitters, {events} events{dup_note}{shard})\n", self.emitters.len()));
        out
    }

    /// The report as one JSON object (`--format json`); [`Report::from_json`]
    /// reads it back, and [`Report::merge`] joins the reports of shards.
    pub fn to_json(&self) -> Value {
        let emitters: Vec<Value> = self
            .emitters
            .iter()
            .map(|e| {
                json!({
                    "emitter": e.emitter, "events": e.events, "first_seq": e.first_seq, "last_seq": e.last_seq,
                    "head": e.head, "declared_lost": e.declared_lost, "declared_by": e.declared_by,
                    "duplicates": e.duplicates, "ended": e.ended, "last_time_ms": e.last_time_ms,
                    "present_though_declared": e.present_though_declared,
                    "last_signed": e.last_signed.as_ref().map(|(s, k)| json!({"seq": s, "key_id": k})),
                    "unanchored": e.unanchored, "witness_lost": e.witness_lost,
                })
            })
            .collect();
        let breaks: Vec<Value> = self
            .breaks
            .iter()
            .map(|b| {
                let seq = if b.seq == UNKNOWN_SEQ { Value::Null } else { json!(b.seq) };
                json!({"emitter": b.emitter, "seq": seq, "problem": b.problem.as_str(), "detail": b.detail})
            })
            .collect();
        let open: Vec<Value> =
            self.open.iter().map(|o| json!({"emitter": o.emitter, "last_seq": o.last_seq, "live": o.live})).collect();
        json!({
            "format": "proxy-audit-verify/1",
            "shard": self.shard.map(|(i, n)| json!([i, n])),
            "signatures_checked": self.signatures_checked,
            "emitters": emitters,
            "breaks": breaks,
            "open": open,
            "unreadable": self.unreadable,
            "exit_code": self.exit_code(),
        })
    }

    /// Reads a report [`Report::to_json`] wrote.
    pub fn from_json(v: &Value) -> Result<Report, String> {
        if v.get("format").and_then(Value::as_str) != Some("proxy-audit-verify/1") {
            return Err("not a proxy-audit verify --format json report".into());
        }
        let list = |k: &str| v.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        let s = |x: &Value, k: &str| x.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let n = |x: &Value, k: &str| x.get(k).and_then(Value::as_u64).unwrap_or(0);
        let pairs = |x: &Value, k: &str| -> Vec<(u64, u64)> {
            x.get(k)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| Some((p.get(0)?.as_u64()?, p.get(1)?.as_u64()?)))
                .collect()
        };
        let emitters = list("emitters")
            .iter()
            .map(|e| EmitterReport {
                emitter: s(e, "emitter"),
                events: n(e, "events"),
                first_seq: n(e, "first_seq"),
                last_seq: n(e, "last_seq"),
                head: s(e, "head"),
                declared_lost: pairs(e, "declared_lost"),
                declared_by: e
                    .get("declared_by")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| Some((p.get(0)?.as_u64()?, p.get(1)?.as_u64()?, p.get(2)?.as_str()?.to_string())))
                    .collect(),
                duplicates: n(e, "duplicates"),
                ended: e.get("ended").and_then(Value::as_bool).unwrap_or(false),
                last_time_ms: e.get("last_time_ms").and_then(Value::as_u64),
                present_though_declared: n(e, "present_though_declared"),
                last_signed: e.get("last_signed").filter(|l| !l.is_null()).map(|l| (n(l, "seq"), s(l, "key_id"))),
                unanchored: n(e, "unanchored"),
                witness_lost: e
                    .get("witness_lost")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| Some((p.get(0)?.as_u64()?, p.get(1)?.as_u64()?, p.get(2)?.as_u64()?)))
                    .collect(),
            })
            .collect();
        let mut breaks = Vec::new();
        for b in list("breaks") {
            let problem = Problem::parse(&s(&b, "problem")).ok_or_else(|| format!("unknown problem in {b}"))?;
            let seq = b.get("seq").and_then(Value::as_u64).unwrap_or(UNKNOWN_SEQ);
            breaks.push(Break { emitter: s(&b, "emitter"), seq, problem, detail: s(&b, "detail") });
        }
        let open = list("open")
            .iter()
            .map(|o| Open {
                emitter: s(o, "emitter"),
                last_seq: o.get("last_seq").and_then(Value::as_u64),
                live: o.get("live").and_then(Value::as_bool).unwrap_or(false),
            })
            .collect();
        let unreadable = list("unreadable").iter().filter_map(|u| u.as_str().map(str::to_string)).collect();
        let shard = v.get("shard").and_then(|x| Some((x.get(0)?.as_u64()?, x.get(1)?.as_u64()?)));
        let signatures_checked = v.get("signatures_checked").and_then(Value::as_bool).unwrap_or(false);
        Ok(Report { shard, signatures_checked, emitters, breaks, open, unreadable })
    }

    /// Joins the reports of the shards of one trail (`--shard I/N` runs):
    /// every shard 0..N must be there exactly once.
    pub fn merge(parts: Vec<Report>) -> Report {
        let mut out = Report { signatures_checked: !parts.is_empty(), ..Report::default() };
        let n = parts.iter().find_map(|r| r.shard.map(|(_, n)| n));
        let mut have = Vec::new();
        for r in parts {
            match (r.shard, n) {
                (Some((i, m)), Some(n)) if m == n => have.push(i),
                (None, None) => {}
                _ => out.unreadable.push("merge: reports of different shardings (or sharded and not)".into()),
            }
            out.signatures_checked &= r.signatures_checked;
            out.emitters.extend(r.emitters);
            out.breaks.extend(r.breaks);
            out.open.extend(r.open);
            out.unreadable.extend(r.unreadable);
        }
        if let Some(n) = n {
            have.sort_unstable();
            for i in 0..n {
                match have.iter().filter(|x| **x == i).count() {
                    1 => {}
                    0 => out.unreadable.push(format!("merge: no report for shard {i}/{n}")),
                    _ => out.unreadable.push(format!("merge: shard {i}/{n} given more than once")),
                }
            }
        }
        out.emitters.sort_by(|a, b| a.emitter.cmp(&b.emitter));
        out.breaks.sort_by(|a, b| (&a.emitter, a.seq).cmp(&(&b.emitter, b.seq)));
        out.open.sort_by(|a, b| a.emitter.cmp(&b.emitter));
        out
    }

    /// 0 when every chain holds, 1 when one breaks or is open (not live), 2
    /// when input was unreadable.
    pub fn exit_code(&self) -> i32 {
        if !self.unreadable.is_empty() {
            2
        } else if !self.breaks.is_empty() || self.cut().next().is_some() {
            1
        } else {
            0
        }
    }
}
