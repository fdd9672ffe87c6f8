//! Column names as context for the cells of tabular text.
//!
//! In a table the label of a value is its column's header, not the bytes
//! before it (those are the neighbouring cells): `ssn,phone\n123456789,…`.
//! This pass finds the tables in a text and gives each cell its header as
//! context, as a JSON member name is given to its value:
//!
//! - delimited text with a header row: CSV (quoted fields, `""` escapes,
//!   quoted line breaks), TSV, `;` and `|` separated; the header's cells must
//!   read like column names and the next record must have as many fields;
//! - Markdown tables (a header row, then a `|---|:--|` rule);
//! - SQL `INSERT INTO t (columns) VALUES (…), (…)`: bare, `"quoted"`,
//!   `` `quoted` `` and `[quoted]` names (bare ones with hyphens too:
//!   `x-api-key`), `schema.table`, several tuples, strings with `''` or
//!   `\'` inside.
//!
//! In a table of two columns whose first column holds labels (`| NHS number |
//! 943 476 5919 |`, `field,value`), the row's first cell is context too.
//!
//! Cost: nothing is allocated unless a table (or the word `INSERT`) is
//! found. Delimited text needs a line break, and each line is read at most
//! twice (as a header candidate and as a record); SQL is looked for only
//! where the body has a `(` and the word `INSERT` (found with `memmem`).

/// A cell of a table: its bytes (without quotes) and its context words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cell {
    pub start: usize,
    pub end: usize,
    /// The column's header, and the row's label in a two-column table.
    pub key: Vec<u8>,
}

/// Most columns a table may have (wider lines are not taken for tables).
const MAX_COLS: usize = 64;
/// Longest column name.
const MAX_NAME: usize = 48;
/// Longest quoted field (a PEM key fits; an unclosed quote stops there).
const MAX_QUOTED: usize = 16 * 1024;

#[inline]
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// The tables' cells in `b`, in order (empty when `b` holds no table).
pub(crate) fn cells(b: &[u8]) -> Vec<Cell> {
    let mut out = Vec::new();
    // Most texts hold neither a `(` (SQL) nor a line break (delimited
    // text): one pass answers both, instead of a `memchr` for each.
    if !has_paren_or_newline(b) {
        return out;
    }
    sql_inserts(b, &mut out);
    if memchr::memchr(b'\n', b).is_some() {
        // SQL's cells win: a statement's lines are no delimited records.
        let sql = out.len();
        delimited(b, &mut out);
        if sql > 0 && out.len() > sql {
            let (first, last) = (out.first().map_or(0, |c| c.start), out.get(sql - 1).map_or(0, |c| c.end));
            let mut k = 0;
            out.retain(|c| {
                k += 1;
                k <= sql || c.end <= first || c.start >= last
            });
            out.sort_by_key(|c| c.start);
        }
    }
    out
}

/// Whether `b` holds a `(` or a `\n`, eight bytes at a time.
fn has_paren_or_newline(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let v = crate::swar::load(chunk, 0).unwrap_or(0);
        if crate::swar::any_equal(v, b'(') | crate::swar::any_equal(v, b'\n') != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&c| c == b'(' || c == b'\n')
}

// ---------------------------------------------------------------- delimited

/// One record of delimited text at `pos`: its fields (trimmed, quotes
/// removed) and where the next record starts. `md`: Markdown (outer pipes
/// dropped, `\|` is no separator, no quoting).
fn record(b: &[u8], pos: usize, d: u8, md: bool, fields: &mut Vec<(usize, usize)>) -> usize {
    fields.clear();
    let n = b.len();
    let mut i = pos;
    if md {
        while matches!(at(b, i), b' ' | b'\t') {
            i += 1;
        }
        if at(b, i) == b'|' {
            i += 1;
        }
    }
    loop {
        // One field from `i`.
        while matches!(at(b, i), b' ') || (d != b'\t' && at(b, i) == b'\t') {
            i += 1;
        }
        let (fs, fe);
        if !md && at(b, i) == b'"' {
            let open = i + 1;
            let mut j = open;
            let close = loop {
                match memchr::memchr(b'"', b.get(j..(open + MAX_QUOTED).min(n)).unwrap_or_default()) {
                    Some(k) if at(b, j + k + 1) == b'"' => j += k + 2,
                    Some(k) => break Some(j + k),
                    None => break None,
                }
            };
            match close {
                Some(c) => {
                    fs = open;
                    fe = c;
                    i = c + 1;
                    while i < n && !matches!(at(b, i), b'\n' | b'\r') && at(b, i) != d {
                        i += 1;
                    }
                }
                None => {
                    // No closing quote: the field runs to the end of the line.
                    fs = i;
                    i = memchr::memchr(b'\n', b.get(i..).unwrap_or_default()).map_or(n, |k| i + k);
                    fe = i;
                }
            }
        } else {
            fs = i;
            while i < n && !matches!(at(b, i), b'\n' | b'\r') && !(at(b, i) == d && !(md && at(b, i - 1) == b'\\')) {
                i += 1;
            }
            let mut e = i;
            while e > fs && matches!(at(b, e - 1), b' ' | b'\t') && !(d == b'\t' && at(b, e - 1) == b'\t') {
                e -= 1;
            }
            fe = e;
        }
        if fields.len() >= MAX_COLS {
            fields.clear();
            return memchr::memchr(b'\n', b.get(i..).unwrap_or_default()).map_or(n, |k| i + k + 1);
        }
        fields.push((fs, fe));
        if at(b, i) == d {
            i += 1;
            // Markdown: the pipe closing the row is no separator.
            if md {
                let mut j = i;
                while matches!(at(b, j), b' ' | b'\t') {
                    j += 1;
                }
                if j >= n || matches!(at(b, j), b'\n' | b'\r') {
                    i = j;
                    break;
                }
            }
            continue;
        }
        break;
    }
    if at(b, i) == b'\r' {
        i += 1;
    }
    if at(b, i) == b'\n' {
        i += 1;
    }
    i.min(n)
}

/// Whether `f` reads like a column name: starts with a letter, at most
/// four words of letters, digits and `_-.#/()'`, not longer than
/// [`MAX_NAME`]; a final `.` only after an abbreviation (`NHS No.`, not the
/// end of a sentence).
fn name_like(f: &[u8]) -> bool {
    let Some(&c) = f.first() else { return false };
    if !(c.is_ascii_alphabetic() || c == b'_' || c >= 0xC3) || f.len() > MAX_NAME {
        return false;
    }
    let chars = f.iter().all(|&c| {
        c.is_ascii_alphanumeric()
            || c >= 0x80
            || matches!(c, b'_' | b'-' | b'.' | b'#' | b'/' | b'(' | b')' | b' ' | b'\'')
    });
    let words = f.iter().filter(|&&c| c == b' ').count() <= 3;
    let parens = f.iter().filter(|&&c| c == b'(').count() == f.iter().filter(|&&c| c == b')').count();
    let last_word = f.rsplit(|&c| c == b' ').next().unwrap_or_default();
    // Its length in characters (`tél.`), not bytes.
    let last_len = last_word.iter().filter(|&&c| c & 0xC0 != 0x80).count();
    chars && words && parens && (!f.ends_with(b".") || last_len <= 4)
}

/// Whether the first cell of a row labels the second: a column name with
/// no digits (`NHS number`, `Geburtsdatum`; not `BC9700457`).
fn row_label(f: &[u8]) -> bool {
    name_like(f) && !f.iter().any(u8::is_ascii_digit)
}

/// Markdown's rule under the header row: `|---|:-:|` (GFM: each cell one
/// or more hyphens, a colon at either end).
fn md_rule(line: &[u8]) -> bool {
    let t = line.iter().filter(|c| !matches!(c, b' ' | b'\t' | b'\r')).copied().collect::<Vec<u8>>();
    t.contains(&b'-')
        && t.iter().all(|c| matches!(c, b'|' | b'-' | b':'))
        && t.split(|&c| c == b'|').filter(|s| !s.is_empty()).all(|s| s.contains(&b'-'))
}

fn line_end(b: &[u8], pos: usize) -> usize {
    memchr::memchr(b'\n', b.get(pos..).unwrap_or_default()).map_or(b.len(), |k| pos + k)
}

/// Tables of delimited text (CSV and the like, Markdown) in `b`.
fn delimited(b: &[u8], out: &mut Vec<Cell>) {
    let n = b.len();
    let mut head = Vec::new();
    let mut row = Vec::new();
    let mut pos = 0;
    while pos < n {
        let le = line_end(b, pos);
        let line = b.get(pos..le).unwrap_or_default();
        let next = (le + 1).min(n);
        let first_byte = line.iter().find(|c| !matches!(c, b' ' | b'\t'));
        // A header: Markdown (a pipe first, the rule next) or delimited.
        let md = first_byte == Some(&b'|') && md_rule(b.get(next..line_end(b, next)).unwrap_or_default());
        let delims: &[u8] = if md { b"|" } else { b"\t;|," };
        let mut table = None;
        for &d in delims {
            if memchr::memchr(d, line).is_none() {
                continue;
            }
            let body = record(b, pos, d, md, &mut head);
            // One column is a table only in Markdown (its rule says so).
            if head.len() < 2 - usize::from(md)
                || !head.iter().all(|&(s, e)| name_like(b.get(s..e).unwrap_or_default()))
            {
                continue;
            }
            let first = if md { (line_end(b, body) + 1).min(n) } else { body };
            let after = record(b, first, d, md, &mut row);
            if row.len() == head.len() && first < n {
                table = Some((d, first, after));
                break;
            }
        }
        let Some((d, first, _)) = table else {
            pos = match one_column(b, pos, le, out) {
                Some(after) => after,
                None => next,
            };
            continue;
        };
        // Two columns of labels and values: the row's label is context too.
        let pairs = head.len() == 2;
        let mut p = first;
        loop {
            let after = record(b, p, d, md, &mut row);
            if row.len() != head.len() || after <= p {
                break;
            }
            let label = row.first().and_then(|&(s, e)| b.get(s..e)).filter(|l| pairs && row_label(l));
            for (k, (&(s, e), &(hs, he))) in row.iter().zip(head.iter()).enumerate() {
                if e <= s {
                    continue;
                }
                let mut key = b.get(hs..he).unwrap_or_default().to_vec();
                if let Some(l) = label.filter(|_| k > 0) {
                    key.push(b' ');
                    key.extend_from_slice(l);
                }
                out.push(Cell { start: s, end: e, key });
            }
            p = after;
            if p >= n {
                break;
            }
        }
        pos = p.max(next);
    }
}

/// A value alone on its line in a one-column table: not a sentence, no
/// separator outside quotes, not long.
fn lone_value(line: &[u8]) -> Option<(usize, usize)> {
    let mut e = line.len();
    if line.last() == Some(&b'\r') {
        e -= 1;
    }
    let v = line.get(..e)?;
    let quoted = v.len() >= 2 && v.first() == Some(&b'"') && v.last() == Some(&b'"');
    let (s, e) = if quoted { (1, e - 1) } else { (0, e) };
    let inner = line.get(s..e)?;
    let plain = quoted || !inner.iter().any(|c| matches!(c, b'\t' | b';' | b'|' | b',' | b'"'));
    // A line of a longer block (a PEM key, a quoted field spanning lines)
    // is no value of its own.
    if memchr::memmem::find(v, b"-----").is_some() || (!quoted && v.first() == Some(&b'"')) {
        return None;
    }
    let sentence =
        matches!(inner.last(), Some(b'.' | b'?' | b'!' | b':')) || memchr::memmem::find(inner, b". ").is_some();
    (plain && !sentence && !inner.is_empty() && inner.len() <= 80 && !inner.starts_with(b" ")).then_some((s, e))
}

/// A one-column table at the line `b[pos..le]`: a header that is one
/// identifier (`niNumber`, `NINO`, `rendering_npi`), then two lines or more
/// of lone values up to a blank line. Its cells go to `out`; its end.
fn one_column(b: &[u8], pos: usize, le: usize, out: &mut Vec<Cell>) -> Option<usize> {
    let head = b.get(pos..le)?;
    let head = head.strip_suffix(b"\r").unwrap_or(head);
    if !name_like(head) || head.contains(&b' ') || head.ends_with(b".") {
        return None;
    }
    let n = b.len();
    let mut rows = Vec::new();
    let mut p = (le + 1).min(n);
    while p < n {
        let e = line_end(b, p);
        let Some((s, ve)) = b.get(p..e).and_then(lone_value) else { break };
        rows.push((p + s, p + ve));
        p = (e + 1).min(n);
    }
    // The block goes on with a line that is no lone value (a PEM key's
    // lines, a field spanning lines): no table.
    let block_goes_on = p < n && !matches!(at(b, p), b'\n' | b'\r');
    if rows.len() < 2 || block_goes_on {
        return None;
    }
    out.extend(rows.into_iter().map(|(s, e)| Cell { start: s, end: e, key: head.to_vec() }));
    Some(p)
}

// ---------------------------------------------------------------- SQL

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while at(b, i).is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn keyword(b: &[u8], i: usize, kw: &[u8]) -> Option<usize> {
    let e = i + kw.len();
    (b.get(i..e)?.eq_ignore_ascii_case(kw) && !at(b, e).is_ascii_alphanumeric() && at(b, e) != b'_').then_some(e)
}

/// A byte of a bare SQL name.
fn name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// An identifier, bare or quoted (`"x"`, `` `x` ``, `[x]`), maybe dotted
/// (`schema.table`): (its last name's bytes, its end). A bare name starts
/// with a letter and may hold single hyphens (`x-api-key`: no standard SQL,
/// but written); a quoted one anything but its closing quote.
fn ident(b: &[u8], i: usize) -> Option<((usize, usize), usize)> {
    let mut i = i;
    loop {
        let close = match at(b, i) {
            b'"' => b'"',
            b'`' => b'`',
            b'[' => b']',
            _ => 0,
        };
        let (name, e) = if close != 0 {
            let k = memchr::memchr(close, b.get(i + 1..(i + 1 + MAX_NAME).min(b.len()))?)?;
            if k == 0 {
                return None;
            }
            ((i + 1, i + 1 + k), i + 2 + k)
        } else {
            let mut e = i;
            while e - i <= MAX_NAME && (name_byte(at(b, e)) || (at(b, e) == b'-' && e > i && name_byte(at(b, e + 1)))) {
                e += 1;
            }
            if e == i || e - i > MAX_NAME || at(b, i).is_ascii_digit() || at(b, i) == b'$' {
                return None;
            }
            ((i, e), e)
        };
        if at(b, e) == b'.' {
            i = e + 1;
            continue;
        }
        return Some((name, e));
    }
}

/// What follows `INSERT` up to the column list's `(`: modifiers (`OR
/// REPLACE`, `IGNORE`, MySQL's priorities), `INTO` (optional in MySQL and
/// T-SQL), the table's name and an alias (`AS t`, PostgreSQL).
fn insert_head(b: &[u8], i: usize) -> Option<usize> {
    let mut i = skip_ws(b, i);
    if let Some(e) = keyword(b, i, b"OR") {
        i = skip_ws(b, ident(b, skip_ws(b, e))?.1);
    }
    for kw in [&b"LOW_PRIORITY"[..], b"DELAYED", b"HIGH_PRIORITY", b"IGNORE", b"INTO"] {
        if let Some(e) = keyword(b, i, kw) {
            i = skip_ws(b, e);
        }
    }
    let mut i = skip_ws(b, ident(b, i)?.1);
    if let Some(e) = keyword(b, i, b"AS") {
        i = skip_ws(b, ident(b, skip_ws(b, e))?.1);
    }
    (at(b, i) == b'(').then_some(i)
}

/// The column list whose `(` is at `i`: its names to `cols`; the end after
/// its `)`.
fn columns(b: &[u8], i: usize, cols: &mut Vec<(usize, usize)>) -> Option<usize> {
    cols.clear();
    let mut i = skip_ws(b, i + 1);
    loop {
        let (name, e) = ident(b, i)?;
        cols.push(name);
        i = skip_ws(b, e);
        match at(b, i) {
            b',' if cols.len() < MAX_COLS => i = skip_ws(b, i + 1),
            b')' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// The string literal whose quote (`'` or `"`) is at `i`, with `''` or
/// MySQL's `\'` inside: (its content, the end after its closing quote); or,
/// unclosed, how far it was read.
fn quoted(b: &[u8], i: usize) -> Result<((usize, usize), usize), usize> {
    let q = at(b, i);
    let open = i + 1;
    let lim = (open + MAX_QUOTED).min(b.len());
    let mut j = open;
    loop {
        let Some(k) = b.get(j..lim).and_then(|t| memchr::memchr(q, t)) else { return Err(lim) };
        let c = j + k;
        if at(b, c + 1) == q {
            j = c + 2;
        } else if at(b, c - 1) == b'\\' && !matches!(at(b, skip_ws(b, c + 1)), b',' | b')' | b';') {
            j = c + 1;
        } else {
            return Ok(((open, c), c + 1));
        }
    }
}

/// Where the value of a tuple from `i` ends: the `,` or `)` at its depth
/// (strings and calls inside skipped; no further than [`MAX_QUOTED`]); or,
/// when none does, how far it was read.
fn value_end(b: &[u8], i: usize) -> Result<usize, usize> {
    let lim = (i + MAX_QUOTED).min(b.len());
    let mut depth = 0usize;
    let mut i = i;
    while i < lim {
        match at(b, i) {
            b'\'' | b'"' => i = quoted(b, i)?.1,
            b',' | b')' if depth == 0 => return Ok(i),
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth -= 1;
                i += 1;
            }
            b';' => return Err(i),
            _ => i += 1,
        }
    }
    Err(i)
}

/// One value of a tuple at `i`: (the string literal's content, or the bare
/// expression: a number, `NULL`, a call; the `,` or `)` after it); or how
/// far it was read. A string may have a prefix (`N'…'`, `E'…'`, `_utf8'…'`)
/// and a cast after it (`'…'::text`).
fn value(b: &[u8], i: usize) -> Result<((usize, usize), usize), usize> {
    let mut p = i;
    while (at(b, p).is_ascii_alphanumeric() || at(b, p) == b'_') && p - i < 8 {
        p += 1;
    }
    if matches!(at(b, p), b'\'' | b'"') {
        let (lit, e) = quoted(b, p)?;
        return Ok((lit, value_end(b, e)?));
    }
    let e = value_end(b, i)?;
    let mut ve = e;
    while ve > i && at(b, ve - 1).is_ascii_whitespace() {
        ve -= 1;
    }
    Ok(((i, ve), e))
}

/// `INSERT INTO t (a, b) VALUES (…), (…)`: each value with its column.
fn sql_inserts(b: &[u8], out: &mut Vec<Cell>) {
    // Cheap first: a statement needs a `(` and the word INSERT (in upper,
    // lower or capitalised case); nothing is allocated without one.
    if memchr::memchr(b'(', b).is_none() {
        return;
    }
    let mut at_kw: Vec<usize> =
        memchr::memmem::find_iter(b, b"NSERT").chain(memchr::memmem::find_iter(b, b"nsert")).collect();
    if at_kw.is_empty() {
        return;
    }
    at_kw.sort_unstable();
    let mut from = 0;
    let mut cols: Vec<(usize, usize)> = Vec::new();
    let mut vals: Vec<(usize, usize)> = Vec::new();
    for s in at_kw.into_iter().filter_map(|p| p.checked_sub(1)) {
        if s < from || (s > 0 && name_byte(at(b, s - 1))) {
            continue;
        }
        let Some(i) = keyword(b, s, b"INSERT").and_then(|i| insert_head(b, i)) else { continue };
        let Some(i) = columns(b, i, &mut cols) else { continue };
        let i = skip_ws(b, i);
        let Some(mut i) = keyword(b, i, b"VALUES").or_else(|| keyword(b, i, b"VALUE")).map(|i| skip_ws(b, i)) else {
            continue;
        };
        // Tuples of values.
        while at(b, i) == b'(' {
            vals.clear();
            i = skip_ws(b, i + 1);
            let closed = loop {
                let (v, e) = match value(b, i) {
                    Ok(v) => v,
                    // What was read is no statement's start either: each byte is read once.
                    Err(read) => {
                        i = i.max(read);
                        break false;
                    }
                };
                vals.push(v);
                i = e;
                match at(b, i) {
                    b',' if vals.len() < MAX_COLS => i = skip_ws(b, i + 1),
                    b')' => break true,
                    _ => break false,
                }
            };
            if !closed {
                break;
            }
            if vals.len() == cols.len() {
                for (&(s, e), &(cs, ce)) in vals.iter().zip(cols.iter()) {
                    if e > s {
                        out.push(Cell { start: s, end: e, key: b.get(cs..ce).unwrap_or_default().to_vec() });
                    }
                }
            }
            i = skip_ws(b, i + 1);
            if at(b, i) != b',' {
                break;
            }
            i = skip_ws(b, i + 1);
        }
        from = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paren_or_a_line_break_is_found_at_any_offset() {
        for len in 0..20 {
            let plain = vec![b'a'; len];
            assert!(!has_paren_or_newline(&plain));
            for k in 0..len {
                for c in [b'(', b'\n'] {
                    let mut t = plain.clone();
                    t[k] = c;
                    assert!(has_paren_or_newline(&t), "{c} at {k} of {len}");
                }
            }
        }
        // Bytes one off from each, and high bytes, are neither.
        assert!(!has_paren_or_newline(b")'\x0b\t\x80\xff\x29\x27a)'\x0b\t\x80\xff\x29\x27"));
    }

    /// Each cell as (its text, its key).
    fn table(t: &str) -> Vec<(&str, String)> {
        cells(t.as_bytes())
            .into_iter()
            .map(|c| (&t[c.start..c.end], String::from_utf8(c.key).unwrap_or_default()))
            .collect()
    }

    fn pairs(v: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        v.iter().map(|&(a, k)| (a, k.to_string())).collect()
    }

    #[test]
    fn csv_cells_get_their_column_name() {
        let t = "id,ssn,phone\r\n1,123456789,\"+1 415, 555\"\n2,987654321,x\n";
        assert_eq!(
            table(t),
            pairs(&[
                ("1", "id"),
                ("123456789", "ssn"),
                ("+1 415, 555", "phone"),
                ("2", "id"),
                ("987654321", "ssn"),
                ("x", "phone")
            ])
        );
        let tsv = "Export:\nNHSNumber\tDEANumber\n943 476 5919\tAB1234563\n\nthanks";
        assert_eq!(table(tsv), pairs(&[("943 476 5919", "NHSNumber"), ("AB1234563", "DEANumber")]));
        // Two columns: a first cell that is a value is no row label.
        let two = "dea_number;courriel\r\nBC9700457;a@b.de\n";
        assert_eq!(table(two), pairs(&[("BC9700457", "dea_number"), ("a@b.de", "courriel")]));
        let semi = "npi;name\n1234567893;\"Doe; Jane\"\n";
        assert_eq!(table(semi), pairs(&[("1234567893", "npi"), ("Doe; Jane", "name")]));
        // A quoted field may hold line breaks and doubled quotes.
        let q = "key,note\n\"-----BEGIN X-----\nabc\n-----END X-----\",\"say \"\"hi\"\"\"\n";
        assert_eq!(table(q), pairs(&[("-----BEGIN X-----\nabc\n-----END X-----", "key"), ("say \"\"hi\"\"", "note")]));
    }

    #[test]
    fn one_column_under_an_identifier() {
        let t = "niNumber\r\n\"RG 73 06 46 A\"\nXY126291D\r\n\nthanks";
        assert_eq!(table(t), pairs(&[("RG 73 06 46 A", "niNumber"), ("XY126291D", "niNumber")]));
        assert_eq!(table("NINO\nMR677381D\n"), vec![], "one value: the line above is its label anyway");
        assert_eq!(table("Hello\nHow are you?\nFine.\n"), vec![], "sentences");
        assert_eq!(table("Dear team\nJohn Smith\nJane Doe\n"), vec![], "a header of two words");
        // The lines of a multi-line value are no cells.
        let pem = "Note\nkey: -----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJsdCn8\nMC4CAQAwBQYDK2Vw\n-----END PRIVATE KEY-----";
        assert_eq!(table(pem), vec![]);
        let quoted =
            "ssh_key\r\n\"-----BEGIN EC PRIVATE KEY-----\nMIGkAgEB\nk3QvjgEi\n-----END EC PRIVATE KEY-----\"\n";
        assert_eq!(table(quoted), vec![]);
        assert_eq!(table("ids\nabc\ndef\nxyz more text, here\n"), vec![], "a block that goes on");
    }

    #[test]
    fn prose_and_ragged_lines_are_no_table() {
        assert_eq!(table("Hello, world.\nHow are you, today?\n"), vec![]);
        assert_eq!(table("a,b\n1,2,3\n"), vec![], "the record has more fields than the header");
        assert_eq!(table("1,2\n3,4\n"), vec![], "a header names its columns");
        assert_eq!(table("one line, no table"), vec![]);
        assert_eq!(table("ssn,phone\n"), vec![], "a header without records");
    }

    #[test]
    fn markdown_tables_horizontal_and_vertical() {
        let h = "Here:\n\n| NHS No. | DEA # |\n|---|:--:|\n| 943 476 5919 | AB1234563 |\n\nok?";
        assert_eq!(table(h), pairs(&[("943 476 5919", "NHS No."), ("AB1234563", "DEA #")]));
        // An abbreviation's length is counted in characters: `tél.` is one.
        let h = "| tél. | NHS number |\n|---|---|\n| 06 12 34 56 78 | 943 476 5918 |\n";
        assert_eq!(table(h), pairs(&[("06 12 34 56 78", "tél."), ("943 476 5918", "NHS number")]));
        assert_eq!(table("| a | fin de phrase. |\n|---|---|\n| 1 | 2 |\n"), vec![], "a sentence is no header");
        let v = "| Field | Value |\n|---|---|\n| NPI | 1234567893 |\n| phone | 030 951503 |\n";
        assert_eq!(
            table(v),
            pairs(&[("NPI", "Field"), ("1234567893", "Value NPI"), ("phone", "Field"), ("030 951503", "Value phone")])
        );
        assert_eq!(table("| NPI |\n|--:|\n| 2389719529 |\n"), pairs(&[("2389719529", "NPI")]), "one column");
        assert_eq!(
            table("| a | b | c |\n|---|---|---|\n| 1 \\| 2 | 3 | 4 |\n"),
            pairs(&[("1 \\| 2", "a"), ("3", "b"), ("4", "c")])
        );
    }

    #[test]
    fn sql_insert_literals_get_their_column() {
        let t =
            "INSERT INTO staff (id, `npi`, \"Name\") VALUES\n  (7, '1872713809', 'O''Brien, Pat'),\n  (8, NULL, 'x');";
        assert_eq!(
            table(t),
            pairs(&[
                ("7", "id"),
                ("1872713809", "npi"),
                ("O''Brien, Pat", "Name"),
                ("8", "id"),
                ("NULL", "npi"),
                ("x", "Name")
            ])
        );
        assert_eq!(table("insert into t (a) values ('1');"), pairs(&[("1", "a")]));
        // A statement's lines are no CSV (its column list has commas too).
        let t = "INSERT INTO t (id, ssh_key) VALUES\n  (5, '-----BEGIN X-----\nab,c\n-----END X-----');";
        assert_eq!(table(t), pairs(&[("5", "id"), ("-----BEGIN X-----\nab,c\n-----END X-----", "ssh_key")]));
        assert_eq!(table("INSERT INTO t VALUES ('1');"), vec![], "no column list, no names");
        assert_eq!(table("we insert into the (list) values"), vec![]);
        assert_eq!(table("INSERT INTO t (a, b) VALUES ('1');"), vec![], "a tuple of the wrong width");
    }

    #[test]
    fn sql_column_names_in_every_quoting() {
        // Bare names with hyphens (no standard SQL, but written), quoted names with spaces and hyphens.
        let t = "INSERT INTO users (id, x-api-key, \"NHS number\", `dea-no`, [Social Security Number]) VALUES\n  \
                 (1, 'k1', '943 476 5919', 'AB1234563', '078-05-1120');";
        assert_eq!(
            table(t),
            pairs(&[
                ("1", "id"),
                ("k1", "x-api-key"),
                ("943 476 5919", "NHS number"),
                ("AB1234563", "dea-no"),
                ("078-05-1120", "Social Security Number")
            ])
        );
        // Schema-qualified and quoted table names, no space before the lists.
        assert_eq!(table("INSERT INTO public.\"staff\"(npi) VALUES('1234567893')"), pairs(&[("1234567893", "npi")]));
        assert_eq!(table("INSERT INTO `db`.`t` (`nino`) VALUES ('AB123456C');"), pairs(&[("AB123456C", "nino")]));
        assert_eq!(
            table("insert into [dbo].[Patients] ([NHSNo]) values (N'9434765919')"),
            pairs(&[("9434765919", "NHSNo")])
        );
        // Modifiers, an optional INTO, an alias, VALUE.
        assert_eq!(table("INSERT OR REPLACE INTO t (sin) VALUES ('046 454 286');"), pairs(&[("046 454 286", "sin")]));
        assert_eq!(table("INSERT IGNORE t (ssn) VALUE ('078051120');"), pairs(&[("078051120", "ssn")]));
        assert_eq!(table("INSERT INTO t AS x (ssn) VALUES ('078051120');"), pairs(&[("078051120", "ssn")]));
    }

    #[test]
    fn sql_values_of_every_kind() {
        // Tuples over several lines, calls, casts, escapes, NULL, numbers.
        let t = "INSERT INTO t (a, b, c, d)\nVALUES\n(\n  now(),\n  E'it\\'s',\n  'x'::text,\n  -4.5\n),\n(NULL, 'O''Neil', \"dq\", 7);";
        assert_eq!(
            table(t),
            pairs(&[
                ("now()", "a"),
                ("it\\'s", "b"),
                ("x", "c"),
                ("-4.5", "d"),
                ("NULL", "a"),
                ("O''Neil", "b"),
                ("dq", "c"),
                ("7", "d")
            ])
        );
        // A value with a comma inside a call is one value.
        assert_eq!(
            table("INSERT INTO t (a, b) VALUES (concat('1', '2'), '3');"),
            pairs(&[("concat('1', '2')", "a"), ("3", "b")])
        );
        // A backslash before the closing quote (a Windows path) ends the string.
        assert_eq!(table("INSERT INTO t (p, q) VALUES ('C:\\', 'x');"), pairs(&[("C:\\", "p"), ("x", "q")]));
        // Two statements.
        assert_eq!(
            table("INSERT INTO a (x) VALUES ('1'); INSERT INTO b (y) VALUES ('2');"),
            pairs(&[("1", "x"), ("2", "y")])
        );
    }

    #[test]
    fn sql_that_is_no_insert_with_columns_gives_no_cells() {
        assert_eq!(table("SELECT * FROM t WHERE ssn = '078051120' AND id IN (1, 2);"), vec![]);
        assert_eq!(table("UPDATE t SET ssn = '078051120' WHERE id = (1);"), vec![]);
        assert_eq!(table("INSERT INTO t SELECT (a) FROM u;"), vec![]);
        assert_eq!(table("INSERT INTO t (a, b) VALUES ('1', '2', '3');"), vec![], "more values than columns");
        // A wrong tuple gives no cells, the right ones beside it do.
        assert_eq!(table("INSERT INTO t (a, b) VALUES ('1'), ('2', '3');"), pairs(&[("2", "a"), ("3", "b")]));
        assert_eq!(table("INSERT INTO t (a) VALUES ('1'"), vec![], "an unclosed tuple");
        assert_eq!(table("INSERT INTO t (a) VALUES ('1;"), vec![], "an unclosed string");
        assert_eq!(table("INSERT INTO t (a) VALUES (f(1);"), vec![], "an unclosed call");
        // After a broken statement the next one is read.
        assert_eq!(table("INSERT INTO t (a) VALUES (f(1); INSERT INTO u (b) VALUES ('2');"), pairs(&[("2", "b")]));
        assert_eq!(table("INSERT INTO t (1a) VALUES ('1');"), vec![], "a name starts with a letter");
        assert_eq!(table("INSERT INTO t (a--b) VALUES ('1');"), vec![], "a double hyphen is a comment");
        assert_eq!(table("INSERT INTO t (\"\") VALUES ('1');"), vec![], "an empty quoted name");
        assert_eq!(table("REINSERT INTO t (a) VALUES ('1');"), vec![], "INSERT starts a word");
        assert_eq!(table("InSeRt INTO t (a) VALUES ('1');"), vec![], "mixed case is not looked for");
        assert_eq!(table("Please insert (a) coin."), vec![]);
    }
}
