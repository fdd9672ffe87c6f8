//! Built-in detectors: one hand-written pass over the bytes with a byte-class
//! dispatch. Only three kinds of byte start work: a digit at a word start
//! (numeric detectors), a letter at a word start (secrets by literal prefix,
//! IBAN, NINO, DEA, context words for AWS secret keys), and the rare
//! punctuation `@`, `+`, `(`, `:` and `-` (email, E.164 phones, `(555)` phones,
//! IPv6, PEM blocks). Everything else is skipped a word at a time.
//!
//! Every candidate is validated (checksums, ranges, lengths, boundaries) before
//! it becomes a [`Hit`]. Hits may overlap; the caller resolves overlaps.

use super::entity as e;

/// A match: byte range in the scanned text and the entity id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub start: usize,
    pub end: usize,
    pub entity: u16,
}

const C_DIGIT: u8 = 1;
const C_ALPHA: u8 = 2;
const C_AT: u8 = 3;
const C_PLUS: u8 = 4;
const C_LPAREN: u8 = 5;
const C_COLON: u8 = 6;
const C_DASH: u8 = 7;
/// The lead byte of a Latin-1 letter (`É`): a name may start there.
const C_LATIN: u8 = 8;

#[allow(clippy::indexing_slicing)] // const-evaluated, i < 256
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c.is_ascii_digit() {
            C_DIGIT
        } else if c.is_ascii_alphabetic() {
            C_ALPHA
        } else if c == b'@' {
            C_AT
        } else if c == b'+' {
            C_PLUS
        } else if c == b'(' {
            C_LPAREN
        } else if c == b':' {
            C_COLON
        } else if c == b'-' {
            C_DASH
        } else if c == 0xC3 {
            C_LATIN
        } else {
            0
        };
        i += 1;
    }
    t
};

#[inline]
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// Letters, digits and `_` (one table lookup: this runs for most bytes).
#[inline]
#[allow(clippy::indexing_slicing)] // a u8 always indexes a [_; 256]
fn is_word(c: u8) -> bool {
    WORD[c as usize]
}

#[allow(clippy::indexing_slicing)] // const-evaluated, i < 256
const WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || c == b'_';
        i += 1;
    }
    t
};

#[inline]
fn prev(b: &[u8], i: usize) -> u8 {
    if i == 0 {
        0
    } else {
        at(b, i - 1)
    }
}

fn run_end(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while let Some(&c) = b.get(i) {
        if !f(c) {
            break;
        }
        i += 1;
    }
    i
}

fn starts_with_at(b: &[u8], i: usize, lit: &[u8]) -> bool {
    b.get(i..i + lit.len()) == Some(lit)
}

fn starts_with_ci(b: &[u8], i: usize, lit: &[u8]) -> bool {
    match b.get(i..i + lit.len()) {
        Some(s) => s.eq_ignore_ascii_case(lit),
        None => false,
    }
}

/// Which built-ins to run (indexed by entity id) and the context of the text.
pub(crate) struct ScanCtx<'a> {
    pub enabled: &'a [bool],
    /// The JSON key (or form field name) holding the text, as extra context.
    pub key: &'a [u8],
    /// ICD-10 codes are only looked for in clinical fields.
    pub icd: bool,
    /// Stop at the first hit (the caller only asks whether there is one).
    pub first_only: bool,
    /// Set when the text has digits spaced one by one (`4 1 1 1 1 …`): the
    /// caller normalises it and scans again.
    pub spaced: std::cell::Cell<bool>,
    /// The member name says the value is a person's name.
    pub name_key: bool,
}

impl ScanCtx<'_> {
    #[inline]
    fn on(&self, ent: u16) -> bool {
        self.enabled.get(ent as usize).copied().unwrap_or(false)
    }
}

/// Scans `b` with every enabled built-in, appending hits to `out`. The
/// cells of a table in `b` are scanned each on its own, with its column's
/// name as context ([`tabular`]). Candidate values start only at or after `from`: the
/// bytes before it are read as context (labels, honorifics, a table's header
/// row) and nothing in them is looked for. A stream's decision step resumes
/// here, at the start of the token before its new text, instead of looking
/// again through the context it decided before.
pub(crate) fn scan_from(b: &[u8], from: usize, cx: &ScanCtx<'_>, out: &mut Vec<Hit>) {
    let cells = tabular::cells(b);
    if cells.is_empty() {
        return scan_text(b, from, cx, out);
    }
    let piece = |s: usize, e: usize, cx: &ScanCtx<'_>, out: &mut Vec<Hit>| {
        if e <= from {
            return;
        }
        let start = out.len();
        scan_text(b.get(s..e).unwrap_or_default(), from.saturating_sub(s), cx, out);
        for h in out.iter_mut().skip(start) {
            h.start += s;
            h.end += s;
        }
    };
    let mut pos = 0;
    for c in &cells {
        piece(pos, c.start, cx, out);
        let key = if c.key.is_empty() { cx.key } else { &c.key[..] };
        let cell = ScanCtx {
            enabled: cx.enabled,
            key,
            icd: cx.icd || context::has_word(key, context::ICD),
            first_only: cx.first_only,
            spaced: std::cell::Cell::new(false),
            name_key: context::has_word(key, names::NAME_LABELS),
        };
        piece(c.start, c.end, &cell, out);
        if cell.spaced.get() {
            cx.spaced.set(true);
        }
        pos = c.end;
        if cx.first_only && !out.is_empty() {
            return;
        }
    }
    piece(pos, b.len(), cx, out);
}

/// [`scan_from`] of text taken as a whole.
fn scan_text(b: &[u8], from: usize, cx: &ScanCtx<'_>, out: &mut Vec<Hit>) {
    let n = b.len();
    let mut i = from;
    // A key like "aws_secret_access_key" puts the whole value in context.
    if !cx.key.is_empty() && cx.on(e::AWS_SECRET_KEY) && has_word(cx.key, AWS_WORDS) {
        aws_secret_scan(b, 0, n, out);
    }
    if cx.icd && cx.on(e::ICD10) {
        icd_scan(b, out);
    }
    // An `aws`/`secret` word puts the 120 bytes from it in context
    // ([`word_start`]): from one in the context before `from`, that reach.
    if from > 0 && cx.on(e::AWS_SECRET_KEY) {
        for k in aws_words(b, from.saturating_sub(119), from.min(n)) {
            aws_secret_scan(b, from, (k + 120).min(n), out);
        }
    }
    // One pass: `next_work` skips the bytes that cannot start a match.
    while let Some(k) = next_work(b, i) {
        i = k;
        let c = at(b, i);
        let next = match class(c) {
            C_ALPHA => word_start(b, i, cx, out),
            C_DIGIT => {
                let after_decimal = matches!(prev(b, i), b'.' | b',') && prev(b, i - 1).is_ascii_digit();
                (!after_decimal).then(|| numeric(b, i, cx, out))
            }
            C_AT if cx.on(e::EMAIL) => email(b, i).map(|(s, end)| hit(out, s, end, e::EMAIL)),
            C_PLUS | C_LPAREN if cx.on(e::PHONE) && !is_word(prev(b, i)) => phone_at(b, i, cx, false, out),
            C_COLON if at(b, i + 1).is_ascii_hexdigit() || at(b, i + 1) == b':' => ipv6(b, i, cx, out),
            C_LATIN if cx.on(e::PERSON_NAME) => {
                names::person(b, i, cx.key, cx.name_key).map(|ne| hit(out, i, ne, e::PERSON_NAME))
            }
            C_DASH if cx.on(e::PRIVATE_KEY) && starts_with_at(b, i, b"-----BEGIN ") => {
                private_key(b, i).map(|end| hit(out, i, end, e::PRIVATE_KEY))
            }
            _ => None,
        };
        i = next.map_or(i + 1, |end| end.max(i + 1));
        if cx.first_only && !out.is_empty() {
            return;
        }
    }
}

/// Per byte: bit 0 = needs work after a non-word byte (it may start a
/// match at a word start: digits, upper case, the lower-case first letters of
/// secret prefixes; or it is one of `@+(:-`), bit 1 = needs work after a word
/// byte (only `@+(:-`), bit 2 = is a word byte.
#[allow(clippy::indexing_slicing)] // const-evaluated, i < 256
const TRIGGER: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let word = c.is_ascii_alphanumeric() || c == b'_';
        let start = c.is_ascii_digit()
            || c.is_ascii_uppercase()
            || matches!(c, b'a' | b'e' | b'g' | b'r' | b's' | b'x')
            || c == 0xC3;
        let any = matches!(c, b'@' | b'+' | b'(' | b':' | b'-');
        t[i] = ((start || any) as u8) | ((any as u8) << 1) | ((word as u8) << 2);
        i += 1;
    }
    t
};

/// The first byte at or after `from` that needs work. Each byte is judged
/// from itself and whether the byte before it is a word byte (a lower-case
/// one also from the byte after it: [`lower_may_start`]). After a word
/// byte no word byte needs work (and the next is after a word byte again):
/// the rest of a word is passed eight bytes at a time ([`word_run_end`]).
#[allow(clippy::indexing_slicing)] // a u8 always indexes a [_; 256]
fn next_work(b: &[u8], from: usize) -> Option<usize> {
    let rest = b.get(from..)?;
    let mut shift = u8::from(is_word(prev(b, from)));
    let mut k = 0;
    loop {
        if shift == 1 {
            k = word_run_end(rest, k);
        }
        let c = *rest.get(k)?;
        let t = TRIGGER[usize::from(c)];
        // A lower-case word start is work only where [`word_start`] may
        // find something (most such words are passed here).
        if (t >> shift) & 1 != 0 && (!c.is_ascii_lowercase() || lower_may_start(c, at(rest, k + 1))) {
            return Some(from + k);
        }
        shift = (t >> 2) & 1;
        k += 1;
    }
}

/// The first byte at or after `k` that is not a word byte of [`TRIGGER`]
/// (`[0-9A-Za-z_]`), or `b.len()`.
fn word_run_end(b: &[u8], mut k: usize) -> usize {
    use crate::swar::{first, in_range, load, HIGH, LOW7, ONES};
    while let Some(x) = load(b, k) {
        let v = x & LOW7;
        // Letters: `| 0x20` folds A-Z onto a-z and sends no other byte there.
        let letter = in_range(v | (ONES * 0x20), 0x61, 0x7a);
        let digit = in_range(v, 0x30, 0x39);
        let under = in_range(v, 0x5f, 0x5f);
        let not_word = (!(letter | digit | under) & HIGH) | (x & HIGH);
        if not_word != 0 {
            return k + first(not_word);
        }
        k += 8;
    }
    while b.get(k).is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_') {
        k += 1;
    }
    k.min(b.len())
}

#[inline]
#[allow(clippy::indexing_slicing)] // a u8 always indexes a [_; 256]
fn class(c: u8) -> u8 {
    CLASS[c as usize]
}

// ---------------------------------------------------------------- context words

use super::{context, names, phone, tabular};

const AWS_WORDS: context::Words = context::words(&[b"aws", b"secret"]);

fn has_word(hay: &[u8], words: context::Words) -> bool {
    context::has_word(hay, words)
}

/// A label in the key or in the window before `start`.
fn ctx(b: &[u8], start: usize, cx: &ScanCtx<'_>, words: context::Words) -> bool {
    context::distance(b, start, cx.key, words).is_some()
}

// ---------------------------------------------------------------- checksums

pub(crate) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut dbl = false;
    for &d in digits.iter().rev() {
        let mut v = u32::from(d.wrapping_sub(b'0'));
        if v > 9 {
            return false;
        }
        if dbl {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
        dbl = !dbl;
    }
    sum.is_multiple_of(10)
}

/// NHS number check digit (mod 11).
fn nhs_valid(d: &[u8]) -> bool {
    if d.len() != 10 {
        return false;
    }
    let mut sum = 0u32;
    for (k, &c) in d.iter().take(9).enumerate() {
        sum += u32::from(c.wrapping_sub(b'0')) * (10 - k as u32);
    }
    let check = 11 - (sum % 11);
    let check = if check == 11 { 0 } else { check };
    check != 10 && Some(check) == d.get(9).map(|c| u32::from(c.wrapping_sub(b'0')))
}

fn digits_of(b: &[u8], s: usize, e: usize) -> Vec<u8> {
    b.get(s..e).unwrap_or(&[]).iter().copied().filter(u8::is_ascii_digit).collect()
}

fn num(d: &[u8]) -> u32 {
    d.iter().fold(0u32, |a, &c| a.saturating_mul(10).saturating_add(u32::from(c.wrapping_sub(b'0'))))
}

fn ssn_valid(d: &[u8]) -> bool {
    let (Some(a), Some(g), Some(s)) = (d.get(0..3), d.get(3..5), d.get(5..9)) else {
        return false;
    };
    let (a, g, s) = (num(a), num(g), num(s));
    a != 0 && a != 666 && a < 900 && g != 0 && s != 0
}

fn itin_valid(d: &[u8]) -> bool {
    let (Some(a), Some(g)) = (d.get(0..3), d.get(3..5)) else {
        return false;
    };
    let (a, g) = (num(a), num(g));
    (900..=999).contains(&a) && matches!(g, 50..=65 | 70..=88 | 90..=92 | 94..=99) && d.len() == 9
}

/// Card brand + length rules.
pub(crate) fn card_brand_ok(d: &[u8]) -> bool {
    let len = d.len();
    let p = |k: usize| d.get(..k).map(num).unwrap_or(0);
    let visa = p(1) == 4 && matches!(len, 13 | 16 | 19);
    let mc = ((51..=55).contains(&p(2)) || (2221..=2720).contains(&p(4))) && len == 16;
    let amex = matches!(p(2), 34 | 37) && len == 15;
    let discover = (p(4) == 6011 || p(2) == 65 || (644..=649).contains(&p(3)) || (622126..=622925).contains(&p(6)))
        && (16..=19).contains(&len);
    let jcb = (3528..=3589).contains(&p(4)) && (16..=19).contains(&len);
    let diners =
        ((300..=305).contains(&p(3)) || matches!(p(2), 36 | 38 | 39) || p(3) == 309) && (14..=19).contains(&len);
    let unionpay = p(2) == 62 && (16..=19).contains(&len);
    let maestro = (matches!(p(4), 5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763)
        || (56..=58).contains(&p(2))
        || p(3) == 639)
        && (12..=19).contains(&len);
    visa || mc || amex || discover || jcb || diners || unionpay || maestro
}

fn card_valid(d: &[u8]) -> bool {
    (12..=19).contains(&d.len()) && card_brand_ok(d) && luhn(d)
}

/// [`card_valid`], for digits with no card label: thirteen or more.
fn bare_card_valid(d: &[u8]) -> bool {
    d.len() >= 13 && card_valid(d)
}

/// IBAN lengths per country (SWIFT registry).
fn iban_len(cc: &[u8]) -> Option<usize> {
    Some(match cc {
        b"AD" => 24,
        b"AE" => 23,
        b"AL" => 28,
        b"AT" => 20,
        b"AZ" => 28,
        b"BA" => 20,
        b"BE" => 16,
        b"BG" => 22,
        b"BH" => 22,
        b"BR" => 29,
        b"BY" => 28,
        b"CH" => 21,
        b"CR" => 22,
        b"CY" => 28,
        b"CZ" => 24,
        b"DE" => 22,
        b"DK" => 18,
        b"DO" => 28,
        b"EE" => 20,
        b"EG" => 29,
        b"ES" => 24,
        b"FI" => 18,
        b"FO" => 18,
        b"FR" => 27,
        b"GB" => 22,
        b"GE" => 22,
        b"GI" => 23,
        b"GL" => 18,
        b"GR" => 27,
        b"GT" => 28,
        b"HR" => 21,
        b"HU" => 28,
        b"IE" => 22,
        b"IL" => 23,
        b"IQ" => 23,
        b"IS" => 26,
        b"IT" => 27,
        b"JO" => 30,
        b"KW" => 30,
        b"KZ" => 20,
        b"LB" => 28,
        b"LC" => 32,
        b"LI" => 21,
        b"LT" => 20,
        b"LU" => 20,
        b"LV" => 21,
        b"LY" => 25,
        b"MC" => 27,
        b"MD" => 24,
        b"ME" => 22,
        b"MK" => 19,
        b"MR" => 27,
        b"MT" => 31,
        b"MU" => 30,
        b"NL" => 18,
        b"NO" => 15,
        b"PK" => 24,
        b"PL" => 28,
        b"PS" => 29,
        b"PT" => 25,
        b"QA" => 29,
        b"RO" => 24,
        b"RS" => 22,
        b"SA" => 24,
        b"SC" => 31,
        b"SE" => 24,
        b"SI" => 19,
        b"SK" => 24,
        b"SM" => 27,
        b"ST" => 25,
        b"SV" => 28,
        b"TL" => 23,
        b"TN" => 24,
        b"TR" => 26,
        b"UA" => 29,
        b"VA" => 22,
        b"VG" => 24,
        b"XK" => 20,
        _ => return None,
    })
}

fn iban_mod97(compact: &[u8]) -> bool {
    let (Some(head), Some(tail)) = (compact.get(..4), compact.get(4..)) else {
        return false;
    };
    let mut r: u32 = 0;
    for &c in tail.iter().chain(head.iter()) {
        if c.is_ascii_digit() {
            r = (r * 10 + u32::from(c - b'0')) % 97;
        } else if c.is_ascii_uppercase() {
            let v = u32::from(c - b'A') + 10;
            r = (r * 100 + v) % 97;
        } else {
            return false;
        }
    }
    r == 1
}

// ---------------------------------------------------------------- numeric

#[derive(Clone, Copy, Default)]
struct Groups {
    g: [(usize, usize); 8],
    n: usize,
    sep: u8,
}

impl Groups {
    fn len(&self, k: usize) -> usize {
        self.g.get(k).map(|(s, e)| e - s).unwrap_or(0)
    }
    fn lens_are(&self, want: &[usize]) -> bool {
        self.n == want.len() && want.iter().enumerate().all(|(k, &l)| self.len(k) == l)
    }
    fn start(&self) -> usize {
        self.g.first().map(|g| g.0).unwrap_or(0)
    }
    fn end_of(&self, k: usize) -> usize {
        self.g.get(k).map(|g| g.1).unwrap_or(0)
    }
    fn end(&self) -> usize {
        self.end_of(self.n.saturating_sub(1))
    }
}

fn groups(b: &[u8], i: usize) -> Groups {
    let mut gr = Groups::default();
    let e1 = run_end(b, i, |c| c.is_ascii_digit());
    gr.g[0] = (i, e1);
    gr.n = 1;
    let sep = at(b, e1);
    if matches!(sep, b' ' | b'-' | b'.' | b'/') && at(b, e1 + 1).is_ascii_digit() {
        gr.sep = sep;
        let mut pos = e1;
        while gr.n < 8 && at(b, pos) == sep && at(b, pos + 1).is_ascii_digit() {
            let e = run_end(b, pos + 1, |c| c.is_ascii_digit());
            if let Some(slot) = gr.g.get_mut(gr.n) {
                *slot = (pos + 1, e);
            }
            gr.n += 1;
            pos = e;
        }
    }
    gr
}

/// The token does not continue past `e` (no letter/digit, no `.5`-like tail).
fn clean_end(b: &[u8], e: usize) -> bool {
    let a = at(b, e);
    !(is_word(a) || matches!(a, b'.' | b'-' | b'/' | b',' | b':') && at(b, e + 1).is_ascii_digit())
}

fn push(out: &mut Vec<Hit>, start: usize, end: usize, entity: u16) {
    out.push(Hit { start, end, entity });
}

/// `push`, then where to resume.
fn hit(out: &mut Vec<Hit>, start: usize, end: usize, entity: u16) -> usize {
    push(out, start, end, entity);
    end
}

fn date_ok(y: u32, m: u32, d: u32) -> bool {
    (1900..=2100).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d)
}

/// Labels that can claim a run of digits, by its shape (fewer sets to look
/// for is less work per number).
const NINE_LABELS: &[(u16, context::Words)] = &[
    (e::US_SSN, context::SSN),
    (e::US_ITIN, context::ITIN),
    (e::CA_SIN, context::SIN),
    (e::PHONE, context::PHONE),
    (e::MRN, context::MRN),
];
const TEN_LABELS: &[(u16, context::Words)] =
    &[(e::UK_NHS, context::NHS), (e::US_NPI, context::NPI), (e::PHONE, context::PHONE), (e::MRN, context::MRN)];
/// [`TEN_LABELS`] for ten digits that pass the NHS check: about a patient,
/// the check digit adds the confidence the weaker word lacks.
const NHS_VALID_LABELS: &[(u16, context::Words)] = &[
    (e::UK_NHS, context::NHS),
    (e::UK_NHS, context::PATIENT),
    (e::US_NPI, context::NPI),
    (e::PHONE, context::PHONE),
    (e::MRN, context::MRN),
];
const CARD_LABELS: &[(u16, context::Words)] =
    &[(e::CREDIT_CARD, context::CARD), (e::PHONE, context::PHONE), (e::MRN, context::MRN)];
const OTHER_LABELS: &[(u16, context::Words)] = &[(e::PHONE, context::PHONE), (e::MRN, context::MRN)];

/// A number joined to letters by a hyphen (`ORD-05536-26238`,
/// `866-97-2688-X`) is an identifier.
fn glued(b: &[u8], s: usize, end: usize) -> bool {
    (prev(b, s) == b'-' && s >= 2 && at(b, s - 2).is_ascii_alphanumeric())
        || (at(b, end) == b'-' && at(b, end + 1).is_ascii_alphabetic())
}

/// Numeric detectors at a digit that starts a word. Returns where to resume.
fn numeric(b: &[u8], i: usize, cx: &ScanCtx<'_>, out: &mut Vec<Hit>) -> usize {
    let gr = groups(b, i);
    let s = gr.start();
    let end = gr.end();
    let total: usize = (0..gr.n).map(|k| gr.len(k)).sum();
    if gr.sep == b' ' && gr.n >= 5 && (0..5).all(|k| gr.len(k) == 1) {
        cx.spaced.set(true);
    }
    // A house number: `734 Rebekah Loop`, `8, rue Jeanne Henry`.
    if total <= 6 && gr.n == 1 && cx.on(e::STREET_ADDRESS) && matches!(at(b, end), b' ' | b',') {
        if let Some(ae) = names::address_at_number(b, s, cx.key) {
            return hit(out, s, ae, e::STREET_ADDRESS);
        }
    }
    // Every numeric detector needs at least 7 digits, or a date's groups,
    // or is `1 (415) 555-2671` or `12 March 1985`.
    let next_is = |c: fn(&u8) -> bool| at(b, end) == b' ' && c(&at(b, end + 1));
    if total < 7 && gr.n < 3 && !(next_is(|&c| c == b'(') || (gr.len(0) <= 2 && next_is(u8::is_ascii_uppercase))) {
        // `12 mars 1985`, `23. Dezember 1972` after a birth label.
        if gr.n == 1 && gr.len(0) <= 2 && cx.on(e::DATE_OF_BIRTH) && matches!(at(b, end), b' ' | b'.' | b'e') {
            if let Some(de) = day_month_year(b, s).filter(|_| ctx(b, s, cx, context::DOB)) {
                return hit(out, s, de, e::DATE_OF_BIRTH);
            }
        }
        // Groups joined by another separator next (`010-560 6486`): a phone?
        if cx.on(e::PHONE) && matches!(at(b, end), b' ' | b'-' | b'.' | b'/') && at(b, end + 1).is_ascii_digit() {
            if let Some(pe) = phone_at(b, s, cx, false, out) {
                return pe;
            }
        }
        // Six digits after a medical record label (`MRN 240812`).
        if total == 6 && gr.n == 1 && cx.on(e::MRN) && clean_end(b, end) && !glued(b, s, end) {
            let near = context::nearest(b, s, cx.key, OTHER_LABELS);
            if near.is_some_and(|(l, d)| l == e::MRN && !context::identifier_nearer(b, s, cx.key, Some(d))) {
                return hit(out, s, end, e::MRN);
            }
        }
        return end;
    }
    let clean = clean_end(b, end);
    let d = || digits_of(b, s, end);
    let sep = gr.sep;
    // A group is a run of digits: its bytes are its digits.
    let gdig = |k: usize| gr.g.get(k).and_then(|&(s, e)| b.get(s..e)).unwrap_or_default();

    // IPv4, a port after it allowed (`10.1.2.3:8080`).
    if gr.n == 4 && sep == b'.' && prev(b, s) != b'.' {
        let port = at(b, end) == b':' && at(b, end + 1).is_ascii_digit() && {
            let pe = run_end(b, end + 1, |c| c.is_ascii_digit());
            pe - end <= 6 && !is_word(at(b, pe)) && !(at(b, pe) == b'.' && at(b, pe + 1).is_ascii_digit())
        };
        let ok = (0..4).all(|k| gr.len(k) <= 3 && num(gdig(k)) <= 255);
        if ok && (clean || port) {
            if cx.on(e::IP_ADDRESS) {
                push(out, s, end, e::IP_ADDRESS);
            }
            return end;
        }
    }
    // Dates (date of birth only in context)
    if gr.n == 3 && matches!(sep, b'-' | b'/' | b'.') && clean {
        let (a, m, c) = (num(gdig(0)), num(gdig(1)), num(gdig(2)));
        let ymd = gr.len(0) == 4 && (1..=2).contains(&gr.len(1)) && (1..=2).contains(&gr.len(2)) && date_ok(a, m, c);
        let dmy = (1..=2).contains(&gr.len(0))
            && (1..=2).contains(&gr.len(1))
            && gr.len(2) == 4
            && (date_ok(c, m, a) || date_ok(c, a, m));
        if ymd || dmy {
            if cx.on(e::DATE_OF_BIRTH) && ctx(b, s, cx, context::DOB) {
                push(out, s, end, e::DATE_OF_BIRTH);
            }
            return end;
        }
    }
    // `12 March 1985` after a birth label.
    if gr.n == 1 && gr.len(0) <= 2 && cx.on(e::DATE_OF_BIRTH) {
        if let Some(de) = day_month_year(b, s) {
            if ctx(b, s, cx, context::DOB) {
                push(out, s, de, e::DATE_OF_BIRTH);
                return de;
            }
        }
    }
    let is_glued = glued(b, s, end);
    let dash_or_space = matches!(sep, b'-' | b' ');
    let nine =
        clean && total == 9 && (gr.n == 1 || (dash_or_space && (gr.lens_are(&[3, 2, 4]) || gr.lens_are(&[3, 3, 3]))));
    let ten = clean && total == 10 && (gr.n == 1 || (dash_or_space && gr.lens_are(&[3, 3, 4])));
    // The nearest label, unless an identifier word (ticket, order...) is nearer.
    let labels = if nine {
        NINE_LABELS
    } else if ten {
        if nhs_valid(&d()) {
            NHS_VALID_LABELS
        } else {
            TEN_LABELS
        }
    } else if total >= 12 {
        CARD_LABELS
    } else {
        OTHER_LABELS
    };
    let label = if total >= 7 { context::nearest(b, s, cx.key, labels) } else { None };
    let label = label.filter(|&(_, d)| !context::identifier_nearer(b, s, cx.key, Some(d))).map(|(l, _)| l);
    // A label decides the entity of a value of its format, valid or not.
    let labelled = |ent: u16| label == Some(ent) && cx.on(ent);
    if nine && labelled(e::US_SSN) && !gr.lens_are(&[3, 3, 3]) {
        return hit(out, s, end, e::US_SSN);
    }
    if nine && labelled(e::US_ITIN) && !gr.lens_are(&[3, 3, 3]) {
        return hit(out, s, end, e::US_ITIN);
    }
    if nine && labelled(e::CA_SIN) && !gr.lens_are(&[3, 2, 4]) {
        return hit(out, s, end, e::CA_SIN);
    }
    if ten && labelled(e::UK_NHS) {
        return hit(out, s, end, e::UK_NHS);
    }
    if ten && gr.n == 1 && labelled(e::US_NPI) {
        return hit(out, s, end, e::US_NPI);
    }
    if labelled(e::MRN) && (gr.n == 1 || sep == b'-') && clean && (6..=12).contains(&total) {
        return hit(out, s, end, e::MRN);
    }
    if label == Some(e::CREDIT_CARD) && cx.on(e::CREDIT_CARD) && !is_glued {
        if let Some(ce) = card_in_run(b, &gr).or_else(|| card_groups(b, &gr, true)) {
            return hit(out, s, ce, e::CREDIT_CARD);
        }
    }
    if is_glued {
        return skip_identifier(b, end);
    }

    // SSN / ITIN without a label: ddd-dd-dddd, valid ranges only.
    if gr.lens_are(&[3, 2, 4]) && clean && sep == b'-' {
        let dd = d();
        if itin_valid(&dd) {
            if cx.on(e::US_ITIN) {
                push(out, s, end, e::US_ITIN);
            }
            return end;
        }
        if ssn_valid(&dd) {
            if cx.on(e::US_SSN) {
                push(out, s, end, e::US_SSN);
            }
            return end;
        }
    }
    // Credit cards: brand and Luhn (twelve digits only with a label). Thirteen
    // digits after an identifier word are an EAN-13 barcode (those starting
    // with 4 pass a 13-digit Visa's brand and Luhn one time in ten).
    let ean = total == 13 && context::identifier_nearer(b, s, cx.key, None);
    if cx.on(e::CREDIT_CARD) && !ean {
        if let Some(ce) = card_groups(b, &gr, false) {
            return hit(out, s, ce, e::CREDIT_CARD);
        }
    }
    if cx.on(e::PHONE) {
        if let Some(pe) = phone_at(b, s, cx, label == Some(e::PHONE), out) {
            return pe;
        }
    }
    // Past the whole run: a later group is not a value of its own
    // (`9400 4532 2856 7482 8161 83` holds no card).
    end
}

/// A run of digit groups longer than any card (20+ digits) that holds a
/// card: groups starting at a group boundary with four digits, 13-19 digits
/// with brand and Luhn. Its end (the whole run: which groups are the card
/// cannot be told, so none may leak). Only called after a card label: without
/// one, about 3-6% of such runs (tracking and reference numbers in groups of
/// four) hold a brand and Luhn match by chance, so a bare run holds no card.
fn card_in_run(b: &[u8], gr: &Groups) -> Option<usize> {
    let total: usize = (0..gr.n).map(|k| gr.len(k)).sum();
    if gr.n < 2 || !matches!(gr.sep, b' ' | b'-') || total <= 19 || !clean_end(b, gr.end()) {
        return None;
    }
    let held = (0..gr.n).any(|i| {
        gr.len(i) == 4
            && (i + 1..=gr.n).any(|j| {
                let d = digits_of(b, gr.g.get(i).map_or(0, |g| g.0), gr.end_of(j - 1));
                (13..=19).contains(&d.len()) && card_valid(&d)
            })
    });
    held.then(|| gr.end())
}

/// Past an identifier's digits, letters and hyphens.
fn skip_identifier(b: &[u8], end: usize) -> usize {
    run_end(b, end, |c| c.is_ascii_alphanumeric() || c == b'-')
}

/// The end of a card number at `gr`: one run of 13-19 digits (12 with a
/// label), or groups (the first of four digits) joined by one separator
/// (space or dash). Without `labelled`, brand and Luhn must hold.
fn card_groups(b: &[u8], gr: &Groups, labelled: bool) -> Option<usize> {
    let s = gr.start();
    let ok = |dd: &[u8]| (12..=19).contains(&dd.len()) && (labelled || bare_card_valid(dd));
    if gr.n == 1 {
        let end = gr.end();
        return (clean_end(b, end) && ok(&digits_of(b, s, end))).then_some(end);
    }
    if !matches!(gr.sep, b' ' | b'-') || gr.len(0) != 4 {
        return None;
    }
    let mut total = 0;
    let mut best = None;
    for k in 0..gr.n {
        let l = gr.len(k);
        if !(3..=6).contains(&l) {
            break;
        }
        total += l;
        if total > 19 {
            break;
        }
        if total >= 12 && !is_word(at(b, gr.end_of(k))) {
            best = Some(k);
        }
    }
    // longest valid prefix of groups
    let kmax = best?;
    (1..=kmax).rev().map(|k| gr.end_of(k)).find(|&e| ok(&digits_of(b, s, e)))
}

/// A phone number at `s` (a digit, `+` or `(`): where it ends, after
/// pushing it.
pub(super) fn phone_at(b: &[u8], s: usize, cx: &ScanCtx<'_>, labelled: bool, out: &mut Vec<Hit>) -> Option<usize> {
    let sh = phone::parse(b, s)?;
    if glued(b, sh.start, sh.end) || !phone::is_phone(&sh, true) {
        return None;
    }
    // An identifier word nearer than any phone label: not a phone (an
    // E.164 number with its `+` is one whatever precedes it).
    if !sh.plus && context::says_identifier(b, sh.start, cx.key, context::PHONE) {
        return None;
    }
    let labelled = labelled || context::distance(b, sh.start, cx.key, context::PHONE).is_some();
    if !phone::is_phone(&sh, labelled) {
        return None;
    }
    push(out, sh.start, sh.end, e::PHONE);
    Some(sh.end)
}

/// Month names in English (the first twelve: `month_like` reads those), French, German, Spanish,
/// Italian and Dutch, lower case (a capital matches too).
const MONTHS: &[&[u8]] = &[
    b"january",
    b"february",
    b"march",
    b"april",
    b"may",
    b"june",
    b"july",
    b"august",
    b"september",
    b"october",
    b"november",
    b"december",
    b"janvier",
    "février".as_bytes(),
    b"mars",
    b"avril",
    b"mai",
    b"juin",
    b"juillet",
    "août".as_bytes(),
    b"septembre",
    b"octobre",
    b"novembre",
    "décembre".as_bytes(),
    b"januar",
    b"februar",
    "märz".as_bytes(),
    b"juni",
    b"juli",
    b"oktober",
    b"dezember",
    b"enero",
    b"febrero",
    b"marzo",
    b"abril",
    b"mayo",
    b"junio",
    b"julio",
    b"agosto",
    b"septiembre",
    b"setiembre",
    b"octubre",
    b"noviembre",
    b"diciembre",
    b"gennaio",
    b"febbraio",
    b"aprile",
    b"maggio",
    b"giugno",
    b"luglio",
    b"settembre",
    b"ottobre",
    b"dicembre",
    b"januari",
    b"februari",
    b"maart",
    b"mei",
    b"augustus",
];

/// A month name at `i`, whole or cut to three letters or more (`Sept.`,
/// `févr.`, `Okt`), in one of the [`MONTHS`] languages: its end (past a `.`).
fn month_at(b: &[u8], i: usize) -> Option<usize> {
    // Month names start with one of these letters.
    if !matches!(
        at(b, i).to_ascii_lowercase(),
        b'a' | b'd' | b'e' | b'f' | b'g' | b'j' | b'l' | b'm' | b'n' | b'o' | b's'
    ) {
        return None;
    }
    let we = run_end(b, i, |c| c.is_ascii_alphabetic() || c >= 0x80);
    let w = b.get(i..we)?;
    if w.len() < 3 || w.len() > 10 {
        return None;
    }
    let lower = |c: &u8| c.to_ascii_lowercase();
    // Only the months with the word's first letter can match.
    let mut set = MONTHS_BY_FIRST.get(usize::from(lower(&at(b, i)).wrapping_sub(b'a'))).copied().unwrap_or(0);
    while set != 0 {
        let k = set.trailing_zeros() as usize;
        set &= set - 1;
        let Some(m) = MONTHS.get(k) else { break };
        if m.len() >= w.len() && m.iter().zip(w).all(|(x, y)| *x == lower(y)) {
            return Some(we + usize::from(at(b, we) == b'.'));
        }
    }
    None
}

/// Per first letter (0 = a), a bit per [`MONTHS`] entry starting with it.
#[allow(clippy::indexing_slicing)] // const-evaluated, within bounds
const MONTHS_BY_FIRST: [u64; 26] = {
    assert!(MONTHS.len() <= 64);
    let mut t = [0u64; 26];
    let mut k = 0;
    while k < MONTHS.len() {
        let l = (MONTHS[k][0] - b'a') as usize;
        t[l] |= 1 << k;
        k += 1;
    }
    t
};

fn year_at(b: &[u8], i: usize) -> Option<usize> {
    let e = run_end(b, i, |c| c.is_ascii_digit());
    (e - i == 4 && date_ok(num(b.get(i..e)?), 1, 1) && !is_word(at(b, e))).then_some(e)
}

/// `de ` (`24 de octubre de 2023`) at `i`: past it.
fn skip_de(b: &[u8], i: usize) -> usize {
    if starts_with_at(b, i, b"de ") {
        i + 3
    } else {
        i
    }
}

/// `12 March 1985`, `12 Mar. 1985`, `23. Dezember 1972`, `1er mai 1990`,
/// `24 de octubre de 2023` at the day's digits: the end.
fn day_month_year(b: &[u8], s: usize) -> Option<usize> {
    let de = run_end(b, s, |c| c.is_ascii_digit());
    let mut j = de;
    if at(b, j) == b'.' {
        j += 1;
    } else if starts_with_at(b, j, b"er ") {
        j += 2;
    }
    if !(1..=2).contains(&(de - s)) || at(b, j) != b' ' {
        return None;
    }
    let me = month_at(b, skip_de(b, j + 1))?;
    if at(b, me) != b' ' {
        return None;
    }
    year_at(b, skip_de(b, me + 1))
}

/// `March 12, 1985` at the month: the end.
fn month_day_year(b: &[u8], s: usize) -> Option<usize> {
    // Cheap test first (this runs at capitalised words): a word, maybe a
    // `.`, a space and a digit.
    let we = run_end(b, s, |c| c.is_ascii_alphabetic() || c >= 0x80);
    let sp = we + usize::from(at(b, we) == b'.');
    if at(b, sp) != b' ' || !at(b, sp + 1).is_ascii_digit() {
        return None;
    }
    let me = month_at(b, s)?;
    if at(b, me) != b' ' {
        return None;
    }
    let de = run_end(b, me + 1, |c| c.is_ascii_digit());
    if !(1..=2).contains(&(de - me - 1)) {
        return None;
    }
    let mut j = de;
    if at(b, j) == b',' {
        j += 1;
    }
    if at(b, j) != b' ' {
        return None;
    }
    year_at(b, j + 1)
}

// ---------------------------------------------------------------- email

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

fn email(b: &[u8], at_i: usize) -> Option<(usize, usize)> {
    let mut s = at_i;
    while s > 0 && at_i - s < 64 && is_local(at(b, s - 1)) {
        s -= 1;
    }
    if s > 0 && is_local(at(b, s - 1)) {
        return None; // local part too long
    }
    while s < at_i && matches!(at(b, s), b'.' | b'-' | b'+' | b'\'') {
        s += 1;
    }
    if s == at_i || at(b, at_i - 1) == b'.' {
        return None;
    }
    let mut j = at_i + 1;
    let mut labels = 0;
    let mut last_start;
    loop {
        last_start = j;
        let e = run_end(b, j, |c| c.is_ascii_alphanumeric() || c == b'-');
        let l = e - j;
        if l == 0 || l > 63 || at(b, j) == b'-' || at(b, e - 1) == b'-' {
            return None;
        }
        labels += 1;
        j = e;
        if at(b, j) == b'.' && at(b, j + 1).is_ascii_alphanumeric() {
            j += 1;
            continue;
        }
        break;
    }
    let tld = b.get(last_start..j)?;
    let tld_ok = (tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)) || tld.starts_with(b"xn--");
    if labels < 2 || !tld_ok || at(b, j) == b'@' {
        return None;
    }
    Some((s, j))
}

// ---------------------------------------------------------------- IPv6

/// IPv6 around the `:` at `i`: where it ends when one is there. A key glued
/// to it (`ip:2001:db8::1`, `IP-Adresse:fe80::1`) is not part of it.
fn ipv6(b: &[u8], i: usize, cx: &ScanCtx<'_>, out: &mut Vec<Hit>) -> Option<usize> {
    let is_tok = |c: u8| c.is_ascii_hexdigit() || c == b':';
    let mut s = i;
    while s > 0 && i - s < 40 && is_tok(at(b, s - 1)) {
        s -= 1;
    }
    let mut e = run_end(b, i, |c| is_tok(c) || c == b'.');
    while e > i && matches!(at(b, e - 1), b'.') {
        e -= 1;
    }
    if is_word(at(b, e)) || !cx.on(e::IP_ADDRESS) {
        return None;
    }
    // The whole token, or what follows its first single `:` (a key before it).
    let key_end = (s..=i).find(|&k| at(b, k) == b':' && at(b, k + 1) != b':' && prev(b, k) != b':');
    for start in [Some(s), key_end.map(|k| k + 1)].into_iter().flatten() {
        if start >= e || e - start > 45 || is_word(prev(b, start)) || prev(b, start) == b'.' {
            continue;
        }
        if b.get(start..e).is_some_and(ipv6_valid) {
            out.push(Hit { start, end: e, entity: e::IP_ADDRESS });
            return Some(e);
        }
    }
    None
}

fn ipv4_valid(t: &[u8]) -> bool {
    let parts: Vec<&[u8]> = t.split(|&c| c == b'.').collect();
    parts.len() == 4
        && parts.iter().all(|p| (1..=3).contains(&p.len()) && p.iter().all(u8::is_ascii_digit) && num(p) <= 255)
}

pub(crate) fn ipv6_valid(t: &[u8]) -> bool {
    let halves: Vec<&[u8]> = split_seq(t, b"::");
    if halves.len() > 2 {
        return false;
    }
    let compressed = halves.len() == 2;
    let mut count = 0usize;
    let mut explicit = 0usize;
    let nh = halves.len();
    for (hi, h) in halves.iter().enumerate() {
        if h.is_empty() {
            continue;
        }
        let groups: Vec<&[u8]> = h.split(|&c| c == b':').collect();
        let ng = groups.len();
        for (k, g) in groups.iter().enumerate() {
            let last = hi + 1 == nh && k + 1 == ng;
            if last && g.contains(&b'.') {
                if !ipv4_valid(g) {
                    return false;
                }
                count += 2;
                explicit += 2;
                continue;
            }
            if g.is_empty() || g.len() > 4 || !g.iter().all(u8::is_ascii_hexdigit) {
                return false;
            }
            count += 1;
            explicit += 1;
        }
    }
    if compressed {
        count < 8 && explicit >= 2
    } else {
        count == 8
    }
}

fn split_seq<'a>(t: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut last = 0;
    let mut k = 0;
    while k + sep.len() <= t.len() {
        if t.get(k..k + sep.len()) == Some(sep) {
            out.push(t.get(last..k).unwrap_or(&[]));
            k += sep.len();
            last = k;
        } else {
            k += 1;
        }
    }
    out.push(t.get(last..).unwrap_or(&[]));
    out
}

// ---------------------------------------------------------------- words

fn tok_end(b: &[u8], i: usize, f: impl Fn(u8) -> bool, max: usize) -> usize {
    let mut j = i;
    while j < b.len() && j - i < max && f(at(b, j)) {
        j += 1;
    }
    j
}

fn b62(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Letter at a word start. Returns `Some(resume)` when it consumed a match.
fn word_start(b: &[u8], i: usize, cx: &ScanCtx<'_>, out: &mut Vec<Hit>) -> Option<usize> {
    let c = at(b, i);
    if c.is_ascii_lowercase() && !lower_may_start(c, at(b, i + 1)) {
        return None;
    }
    match c {
        b'A' => {
            if (starts_with_at(b, i, b"AKIA") || starts_with_at(b, i, b"ASIA")) && cx.on(e::AWS_ACCESS_KEY) {
                let e = tok_end(b, i + 4, |c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c), 17);
                if e - (i + 4) == 16 && !is_word(at(b, e)) {
                    push(out, i, e, e::AWS_ACCESS_KEY);
                    return Some(e);
                }
            }
            if starts_with_at(b, i, b"AIza") && cx.on(e::GOOGLE_API_KEY) {
                let e = tok_end(b, i + 4, b64url, 36);
                if e - (i + 4) == 35 && !b64url(at(b, e)) {
                    push(out, i, e, e::GOOGLE_API_KEY);
                    return Some(e);
                }
            }
        }
        b'g' if cx.on(e::GITHUB_TOKEN) => {
            if let Some(e) = github(b, i) {
                push(out, i, e, e::GITHUB_TOKEN);
                return Some(e);
            }
        }
        b's' | b'r' => {
            if starts_with_at(b, i + 1, b"k_live_") || starts_with_at(b, i + 1, b"k_test_") {
                let body = i + 8;
                let e = tok_end(b, body, b62, 256);
                if e - body >= 16 && !b64url(at(b, e)) && cx.on(e::STRIPE_KEY) {
                    push(out, i, e, e::STRIPE_KEY);
                    return Some(e);
                }
            }
            if c == b's' && starts_with_at(b, i, b"sk-") {
                if starts_with_at(b, i, b"sk-ant-") {
                    let e = tok_end(b, i + 7, b64url, 300);
                    if e - (i + 7) >= 32 && !b64url(at(b, e)) && cx.on(e::ANTHROPIC_KEY) {
                        push(out, i, e, e::ANTHROPIC_KEY);
                        return Some(e);
                    }
                } else {
                    let e = tok_end(b, i + 3, b64url, 300);
                    let body = b.get(i + 3..e).unwrap_or(&[]);
                    let has_digit = body.iter().any(u8::is_ascii_digit);
                    let has_alpha = body.iter().any(u8::is_ascii_alphabetic);
                    if body.len() >= 20 && has_digit && has_alpha && !b64url(at(b, e)) && cx.on(e::OPENAI_KEY) {
                        push(out, i, e, e::OPENAI_KEY);
                        return Some(e);
                    }
                }
            }
        }
        b'x' => {
            if let Some(p) = slack_prefix(b, i) {
                let e = tok_end(b, p + 5, |c| c.is_ascii_alphanumeric() || c == b'-', 300);
                if e - (p + 5) >= 10 && !b64url(at(b, e)) && cx.on(e::SLACK_TOKEN) {
                    push(out, i, e, e::SLACK_TOKEN);
                    return Some(e);
                }
            }
        }
        b'e' if starts_with_at(b, i, b"eyJ") && cx.on(e::JWT) => {
            if let Some(e) = jwt(b, i) {
                push(out, i, e, e::JWT);
                return Some(e);
            }
        }
        _ => {}
    }
    if c.is_ascii_uppercase() {
        if let Some(r) = upper_ids(b, i, cx, out) {
            return Some(r);
        }
        if cx.on(e::STREET_ADDRESS) {
            if let Some(ae) = names::address_german(b, i) {
                return Some(hit(out, names::german_street_start(b, i), ae, e::STREET_ADDRESS));
            }
            if let Some(ae) = names::address_at_unit(b, i, cx.key) {
                return Some(hit(out, i, ae, e::STREET_ADDRESS));
            }
        }
        // `March 12, 1985` after a birth label.
        if cx.on(e::DATE_OF_BIRTH) {
            if let Some(de) = month_day_year(b, i) {
                if ctx(b, i, cx, context::DOB) {
                    return Some(hit(out, i, de, e::DATE_OF_BIRTH));
                }
            }
        }
        if cx.on(e::PERSON_NAME) {
            if let Some(ne) = names::person(b, i, cx.key, cx.name_key) {
                return Some(hit(out, i, ne, e::PERSON_NAME));
            }
        }
        // An ICD-10 code after a diagnosis label (in clinical fields every
        // code is one, see `icd_scan`).
        if cx.on(e::ICD10) && !cx.icd {
            if let Some(ie) = icd_code(b, i) {
                if ctx(b, i, cx, context::ICD) {
                    return Some(hit(out, i, ie, e::ICD10));
                }
            }
        }
    }
    if matches!(c, b'a' | b'A' | b's' | b'S')
        && cx.on(e::AWS_SECRET_KEY)
        && (starts_with_ci(b, i, b"aws") || starts_with_ci(b, i, b"secret"))
    {
        aws_secret_scan(b, i, (i + 120).min(b.len()), out);
    }
    None
}

/// Whether a lower-case word start `c` followed by `n` may start what
/// [`word_start`] looks for: `sk_live_`/`rk_test_`/`sk-`, `aws`/`secret`
/// (any case), `github_pat_`/`ghp_`, `xox`, `eyJ`. Most lower-case words
/// are rejected on their second byte.
fn lower_may_start(c: u8, n: u8) -> bool {
    match c {
        b's' => n == b'k' || n.eq_ignore_ascii_case(&b'e'),
        b'r' => n == b'k',
        b'a' => n.eq_ignore_ascii_case(&b'w'),
        b'g' => matches!(n, b'i' | b'h'),
        b'x' => n == b'o',
        b'e' => n == b'y',
        _ => false,
    }
}

fn github(b: &[u8], i: usize) -> Option<usize> {
    if starts_with_at(b, i, b"github_pat_") {
        let p = i + 11;
        let e1 = tok_end(b, p, b62, 23);
        if e1 - p == 22 && at(b, e1) == b'_' {
            let e2 = tok_end(b, e1 + 1, b62, 60);
            if e2 - (e1 + 1) == 59 && !b64url(at(b, e2)) {
                return Some(e2);
            }
        }
        return None;
    }
    if at(b, i + 1) == b'h' && matches!(at(b, i + 2), b'p' | b'o' | b'u' | b's' | b'r') && at(b, i + 3) == b'_' {
        let p = i + 4;
        let e = tok_end(b, p, b62, 37);
        if e - p == 36 && !b64url(at(b, e)) {
            return Some(e);
        }
    }
    None
}

fn jwt(b: &[u8], i: usize) -> Option<usize> {
    use base64::Engine as _;
    let e1 = tok_end(b, i, b64url, 4096);
    if at(b, e1) != b'.' || e1 - i < 10 {
        return None;
    }
    let e2 = tok_end(b, e1 + 1, b64url, 16384);
    if at(b, e2) != b'.' || e2 - (e1 + 1) < 2 {
        return None;
    }
    let e3 = tok_end(b, e2 + 1, b64url, 4096);
    if b64url(at(b, e3)) || at(b, e3) == b'.' && b64url(at(b, e3 + 1)) {
        return None;
    }
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b.get(i..e1)?).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&header).ok()?;
    v.as_object()?.get("alg")?;
    Some(e3)
}

fn private_key(b: &[u8], i: usize) -> Option<usize> {
    // -----BEGIN [A-Z0-9 ]*PRIVATE KEY-----
    let hdr_end = tok_end(b, i + 11, |c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' ', 40);
    let label = b.get(i + 11..hdr_end)?;
    if !label.ends_with(b"PRIVATE KEY") || !starts_with_at(b, hdr_end, b"-----") {
        return None;
    }
    // Up to the END marker, or to the end of the text when it is missing.
    let from = hdr_end + 5;
    let mut k = from;
    while k < b.len() {
        if at(b, k) == b'-' && starts_with_at(b, k, b"-----END ") {
            let e = tok_end(b, k + 9, |c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' ', 40);
            if starts_with_at(b, e, b"-----") {
                return Some(e + 5);
            }
        }
        k += 1;
    }
    Some(b.len())
}

/// 40-character AWS secret keys in `b[from..to]` (the caller found their
/// label). In a URL path (`/aws_secret_access_key/<key>/edit`) the key is
/// the 40 characters between two slashes.
fn aws_secret_scan(b: &[u8], from: usize, to: usize, out: &mut Vec<Hit>) {
    let tokc = |c: u8| c.is_ascii_alphanumeric() || c == b'/' || c == b'+';
    let looks = |t: &[u8]| {
        t.iter().any(u8::is_ascii_uppercase) && t.iter().any(u8::is_ascii_lowercase) && t.iter().any(u8::is_ascii_digit)
    };
    let mut k = from;
    while k < to {
        let c = at(b, k);
        let p = prev(b, k);
        if tokc(c) && (!tokc(p) || p == b'/') {
            let e = tok_end(b, k, tokc, 1024);
            let en = k + 40;
            // A `=` right after is base64 padding unless a word follows (`KEY=x`).
            let padded = at(b, e) == b'=' && !at(b, e + 1).is_ascii_alphanumeric();
            let bounded = (en == e && !padded) || (en < e && at(b, en) == b'/' && p == b'/');
            // The label's own path segment (`/secretAccessKey/<key>/`) starts no key.
            let label_seg =
                || b.get(k..en).and_then(|t| t.split(|&c| c == b'/').next()).is_some_and(|s| has_word(s, AWS_WORDS));
            if bounded && b.get(k..en).is_some_and(looks) && !label_seg() {
                push(out, k, en, e::AWS_SECRET_KEY);
                k = en;
                continue;
            }
            if !tokc(p) && e - k < 40 {
                k = e;
                continue;
            }
        }
        k += 1;
    }
}

/// Where the `xox?-` part of a Slack token at `i` starts: `xoxb-`, `xoxp-`,
/// `xoxa-`, `xoxr-`, `xoxs-`, `xoxe-` (refresh), or a rotating token
/// `xoxe.xoxp-…` (Slack's token rotation prefixes the access token's kind).
fn slack_prefix(b: &[u8], i: usize) -> Option<usize> {
    let p = if starts_with_at(b, i, b"xoxe.") { i + 5 } else { i };
    let kind = matches!(at(b, p + 3), b'b' | b'a' | b'p' | b'r' | b's' | b'e');
    (starts_with_at(b, p, b"xox") && kind && at(b, p + 4) == b'-').then_some(p)
}

/// IBAN, UK NINO and DEA at an upper-case word start.
fn upper_ids(b: &[u8], i: usize, cx: &ScanCtx<'_>, out: &mut Vec<Hit>) -> Option<usize> {
    let c1 = at(b, i);
    let c2 = at(b, i + 1);
    // IBAN: CC + 2 check digits + BBAN, compact or in groups of four.
    if c2.is_ascii_uppercase() && at(b, i + 2).is_ascii_digit() && at(b, i + 3).is_ascii_digit() && cx.on(e::IBAN) {
        if let Some(len) = iban_len(&[c1, c2]) {
            let mut compact = Vec::with_capacity(34);
            let mut j = i;
            let mut spaced = false;
            while compact.len() < len {
                let c = at(b, j);
                if c.is_ascii_uppercase() || c.is_ascii_digit() {
                    compact.push(c);
                    j += 1;
                } else if c == b' '
                    && compact.len() % 4 == 0
                    && !compact.is_empty()
                    && (spaced || compact.len() == 4)
                    && is_word(at(b, j + 1))
                {
                    spaced = true;
                    j += 1;
                } else {
                    break;
                }
            }
            // A label decides a value of the country's exact length whose
            // check digits fail (a typo or test value is still an account).
            if compact.len() == len && !is_word(at(b, j)) && (iban_mod97(&compact) || ctx(b, i, cx, context::IBAN)) {
                push(out, i, j, e::IBAN);
                return Some(j);
            }
        }
    }
    // UK NINO: two prefix letters, six digits (optionally in pairs, by
    // spaces or hyphens), suffix A-D; only after its label (a bare
    // `JK123456A` is a part number), and then whatever its prefix letters.
    if c2.is_ascii_uppercase()
        && (at(b, i + 2).is_ascii_digit() || matches!(at(b, i + 2), b' ' | b'-'))
        && cx.on(e::UK_NINO)
        && ctx(b, i, cx, context::NINO)
    {
        let mut j = i + 2;
        let mut nd = 0;
        let sep = at(b, j);
        let spaced = matches!(sep, b' ' | b'-');
        while nd < 6 {
            if spaced && nd % 2 == 0 && at(b, j) == sep {
                j += 1;
            }
            if !at(b, j).is_ascii_digit() {
                break;
            }
            nd += 1;
            j += 1;
        }
        if nd == 6 {
            if spaced && at(b, j) == sep {
                j += 1;
            }
            if matches!(at(b, j), b'A'..=b'D') && !is_word(at(b, j + 1)) {
                push(out, i, j + 1, e::UK_NINO);
                return Some(j + 1);
            }
        }
    }
    // DEA registration number: 2 letters + 7 digits with checksum.
    // Only after its label; then a failed check digit does not veto it.
    if (c2.is_ascii_uppercase() || c2 == b'9') && cx.on(e::US_DEA) {
        let e = run_end(b, i + 2, |c| c.is_ascii_digit());
        if e - (i + 2) == 7 && !is_word(at(b, e)) && ctx(b, i, cx, context::DEA) {
            push(out, i, e, e::US_DEA);
            return Some(e);
        }
    }
    // Medical record numbers with a letter prefix (`E1234567`, `MRN12345678`),
    // after their label.
    if cx.on(e::MRN) {
        let le = run_end(b, i, |c| c.is_ascii_uppercase());
        let de = run_end(b, le, |c| c.is_ascii_digit());
        if (1..=3).contains(&(le - i)) && (5..=10).contains(&(de - le)) && !is_word(at(b, de)) {
            let own = starts_with_ci(b, i, b"MRN");
            if own || context::close(b, i, cx.key, context::MRN, 20) {
                push(out, i, de, e::MRN);
                return Some(de);
            }
        }
    }
    None
}

// ---------------------------------------------------------------- ICD-10

/// An ICD-10(-CM) code at `i`: letter (not U), two digits (the second may
/// be A/B), optional `.` and 1-4 more characters. Its end.
fn icd_code(b: &[u8], i: usize) -> Option<usize> {
    let c = at(b, i);
    if !(c.is_ascii_uppercase()
        && c != b'U'
        && !is_word(prev(b, i))
        && at(b, i + 1).is_ascii_digit()
        && (at(b, i + 2).is_ascii_digit() || matches!(at(b, i + 2), b'A' | b'B')))
    {
        return None;
    }
    let e = i + 3;
    let e = if at(b, e) == b'.' && at(b, e + 1).is_ascii_alphanumeric() {
        tok_end(b, e + 1, |c| c.is_ascii_digit() || c.is_ascii_uppercase(), 4)
    } else {
        tok_end(b, e, |c| c.is_ascii_digit() || c.is_ascii_uppercase(), 4)
    };
    (!is_word(at(b, e))).then_some(e)
}

/// Every ICD-10 code in `b` (clinical fields only).
fn icd_scan(b: &[u8], out: &mut Vec<Hit>) {
    let mut i = 0;
    while i < b.len() {
        if let Some(e) = icd_code(b, i) {
            push(out, i, e, e::ICD10);
            i = e;
            continue;
        }
        i += 1;
    }
}

// ---------------------------------------------------------------- streams

/// Most tokens and bytes of one value whose tokens are joined by single
/// spaces (a name or an address of five words with particles and a unit, a
/// spaced IBAN of nine groups, a phone with an extension).
const CHAIN_TOKENS: usize = 12;
const CHAIN_BYTES: usize = 96;
/// Most single characters of a spaced run (`4 1 1 1 …`) that can still be a
/// value: the normaliser joins the whole run into one token, and no built-in
/// value without spaces is longer than 40 letters and digits.
const SPACED_SINGLES: usize = 64;
/// A spaced number (card, phone, national id) has at most 19 digits, 8
/// groups and 40 bytes (the phone reader's bounds).
const RUN_DIGITS: usize = 19;
const RUN_GROUPS: usize = 8;
const RUN_BYTES: usize = 40;

/// Labels that let a run of digit groups be a value in any layout (a
/// labelled phone takes any groups; a labelled card needs no brand).
const RUN_LABELS: &[(u16, context::Words)] = &[
    (e::PHONE, context::PHONE),
    (e::CREDIT_CARD, context::CARD),
    (e::US_SSN, context::SSN),
    (e::US_ITIN, context::ITIN),
    (e::CA_SIN, context::SIN),
    (e::UK_NHS, context::NHS),
    (e::UK_NHS, context::PATIENT),
    (e::US_NPI, context::NPI),
    (e::MRN, context::MRN),
];

/// Bytes of a spaced number: digits and `+ ( ) - . /`.
fn group_byte(c: u8) -> bool {
    c.is_ascii_digit() || matches!(c, b'+' | b'(' | b')' | b'-' | b'.' | b'/')
}

fn all(t: &[u8], f: impl Fn(u8) -> bool) -> bool {
    t.iter().all(|&c| f(c))
}

/// A capitalised word (`Maria`, `O'Neill`, `Jörg-Geißler-Weg`), or, when
/// `partial`, the start of one.
fn cap_like(t: &[u8], partial: bool) -> bool {
    let first = t.first().is_some_and(|c| c.is_ascii_uppercase() || *c == 0xC3);
    let rest =
        all(t.get(1..).unwrap_or_default(), |c| c.is_ascii_alphabetic() || c >= 0x80 || matches!(c, b'-' | b'\''));
    first && rest && (partial || (t.len() >= 2 && !at(t, 1).is_ascii_uppercase()))
}

/// `w` is the start of `word` (ASCII case ignored).
fn starts_ci(word: &[u8], w: &[u8]) -> bool {
    word.get(..w.len()).is_some_and(|p| p.eq_ignore_ascii_case(w))
}

/// A phone extension word (`x778`, `ext.`, `extension`), or its start.
fn ext_like(t: &[u8], partial: bool) -> bool {
    let digits_after = |k: usize| all(t.get(k..).unwrap_or_default(), |c| c.is_ascii_digit());
    (matches!(t.first(), Some(b'x' | b'X')) && digits_after(1))
        || [&b"ext"[..], b"ext.", b"extension"].iter().any(|w| w.eq_ignore_ascii_case(t))
        || (partial && !t.is_empty() && starts_ci(b"extension", t))
}

/// The name of a month (`March`, `mar.`), or, when `partial`, its start.
fn month_like(t: &[u8], partial: bool) -> bool {
    // The English names: the first twelve of [`MONTHS`].
    let english = MONTHS.get(..12).unwrap_or_default();
    let w = t.strip_suffix(b".").unwrap_or(t);
    !w.is_empty()
        && w.len() <= 9
        && english.iter().any(|m| {
            if partial {
                starts_ci(m, w)
            } else {
                m.eq_ignore_ascii_case(w) || (w.len() == 3 && starts_ci(m, w))
            }
        })
}

/// Whether a run of spaced digit groups from `s` (the tokens `toks`, the
/// last one still growing when `partial`) may still become, or grow, a
/// number a numeric detector takes: a labelled one in any layout; else the
/// layouts that need no label (NANP 3-3-4 and 1-3-3-4, a card's groups of
/// 3-6 digits from four starting 2-6, `+`, `(` and trunk-`0` phones).
fn digits_live(b: &[u8], s: usize, toks: &[(usize, usize)]) -> bool {
    let mut groups: Vec<usize> = Vec::new();
    let mut run = 0;
    let mut ext = false;
    for (k, &(ts, te)) in toks.iter().enumerate() {
        let last = k + 1 == toks.len();
        let t = b.get(ts.max(s)..te).unwrap_or_default();
        if ext || (!groups.is_empty() && ext_like(t, last)) {
            // An extension ends the number.
            ext = true;
            continue;
        }
        if !all(t, group_byte) {
            return false;
        }
        for &c in t {
            if c.is_ascii_digit() {
                run += 1;
            } else if run > 0 {
                groups.push(run);
                run = 0;
            }
        }
        if run > 0 {
            groups.push(run);
            run = 0;
        }
    }
    let growing = at(b, toks.last().map_or(s, |t| t.1).saturating_sub(1)).is_ascii_digit();
    let d: usize = groups.iter().sum();
    let end = toks.last().map_or(s, |t| t.1);
    if d > RUN_DIGITS || groups.len() > RUN_GROUPS || end - s > RUN_BYTES || ext && d < 7 {
        return false;
    }
    let fits = |layout: &[usize]| {
        groups.len() <= layout.len()
            && groups.iter().enumerate().all(|(k, &g)| {
                let want = layout.get(k).copied().unwrap_or(0);
                if growing && k + 1 == groups.len() {
                    g <= want
                } else {
                    g == want
                }
            })
            && (growing || groups.len() < layout.len() || ext)
    };
    let unlabelled = match at(b, s) {
        b'+' => d <= 15,
        b'(' => d <= 12,
        b'0' => d <= 17,
        b'1' if groups.first() == Some(&1) && (groups.len() > 1 || !growing) => fits(&[1, 3, 3, 4]),
        c if (b'2'..=b'6').contains(&c) && groups.first().is_some_and(|&g| g == 4 || growing && groups.len() == 1) => {
            groups.iter().enumerate().all(|(k, &g)| g <= 6 && (g >= 3 || growing && k + 1 == groups.len()))
                || fits(&[3, 3, 4])
        }
        c if c.is_ascii_digit() => fits(&[3, 3, 4]),
        _ => false,
    };
    unlabelled || context::nearest(b, s, b"", RUN_LABELS).is_some()
}

/// Upper-case groups of a spaced IBAN (`GB82 WEST 1234 …`, at most 34
/// characters in 9 groups) or NINO (`AB 12 34 56 C`).
fn upper_groups_live(b: &[u8], toks: &[(usize, usize)]) -> bool {
    let tok = |k: usize| toks.get(k).and_then(|&(s, e)| b.get(s..e)).unwrap_or_default();
    let first = tok(0);
    let upper_digit = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    let starts = (first.len() == 2 && all(first, |c| c.is_ascii_uppercase()))
        || (first.len() == 4
            && all(first.get(..2).unwrap_or_default(), |c| c.is_ascii_uppercase())
            && all(first.get(2..).unwrap_or_default(), |c| c.is_ascii_digit()));
    let chars: usize = toks.iter().map(|t| t.1 - t.0).sum();
    starts
        && toks.len() <= 9
        && chars <= 34
        && (1..toks.len()).all(|k| {
            let t = tok(k);
            t.len() <= 4 && all(t, upper_digit) && (!t.is_empty() || k + 1 == toks.len())
        })
}

/// A person's name or a street address whose words are joined by single
/// spaces: names of up to five capitalised words and particles (the first
/// one a given name or after a label or honorific); US/UK, French and
/// unit-first addresses from their number; German ones from the words
/// before the street word (`Hans Jörg-Geißler-Weg 4`).
fn words_live(b: &[u8], toks: &[(usize, usize)]) -> bool {
    let tok = |k: usize| toks.get(k).and_then(|&(s, e)| b.get(s..e)).unwrap_or_default();
    let n = toks.len();
    let is_last = |k: usize| k + 1 == n;
    let first = tok(0);
    let lowercase = |t: &[u8], k: usize| {
        let w = t.strip_suffix(b",").unwrap_or(t);
        if is_last(k) {
            names::starts_particle_or_voie(w)
        } else {
            names::is_particle(w) || names::is_voie(w)
        }
    };
    let number = |t: &[u8]| {
        let w = t.strip_suffix(b",").unwrap_or(t);
        !w.is_empty()
            && w.len() <= 12
            && at(w, 0).is_ascii_digit()
            && all(w, |c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/'))
    };
    let cap = |k: usize| {
        let t = tok(k);
        cap_like(t.strip_suffix(b".").unwrap_or(t), is_last(k))
    };
    let caps = (0..n).filter(|&k| cap(k)).count();
    // Names, and the words of a German street before its number.
    if cap_like(first, false) {
        let name_start = toks.first().is_some_and(|&(s0, _)| names::may_start_name(b, s0, first));
        let street_lead = names::may_lead_street(first);
        let words_ok = (1..n).all(|k| {
            cap(k) || lowercase(tok(k), k) || (k + 1 == n && number(tok(k))) || is_last(k) && tok(k).is_empty()
        });
        if words_ok && caps <= 5 && (name_start || street_lead) {
            return true;
        }
    }
    // An address from its house number or unit word.
    let unit_first = matches!(first, b"Flat" | b"Studio" | b"Apartment" | b"Unit");
    if number(first) || unit_first {
        let mut prev_unit = unit_first;
        return caps <= 7
            && (1..n).all(|k| {
                let t = tok(k);
                let ok = cap(k)
                    || lowercase(t, k)
                    || (prev_unit && number(t))
                    || (t.first() == Some(&b'#') && all(t.get(1..).unwrap_or_default(), |c| c.is_ascii_digit()))
                    || (is_last(k) && t.is_empty());
                prev_unit = matches!(t, b"Apt." | b"Apt" | b"Suite" | b"Unit" | b"Flat" | b"Studio" | b"Apartment");
                ok
            });
    }
    false
}

/// `12 March 1985` and `March 12, 1985` (dates of birth after a label).
fn date_live(b: &[u8], toks: &[(usize, usize)]) -> bool {
    let tok = |k: usize| toks.get(k).and_then(|&(s, e)| b.get(s..e)).unwrap_or_default();
    let n = toks.len();
    let digits = |t: &[u8], max: usize| !t.is_empty() && t.len() <= max && all(t, |c| c.is_ascii_digit());
    let ok = |k: usize, f: &dyn Fn(&[u8], bool) -> bool| {
        let last = k + 1 == n;
        k >= n || f(tok(k), last) || (last && tok(k).is_empty())
    };
    n <= 3
        && ((ok(0, &|t, _| digits(t, 2)) && ok(1, &month_like) && ok(2, &|t, _| digits(t, 4)))
            || (ok(0, &month_like)
                && ok(1, &|t, _| digits(t.strip_suffix(b",").unwrap_or(t), 2))
                && ok(2, &|t, _| digits(t, 4))))
}

/// Where text that keeps growing at its end must be held from: no built-in
/// value found in `b` plus anything that may still follow it can start
/// before the returned offset. What is before it can be decided now.
///
/// - The trailing run of non-whitespace (a partial token, word or digit
///   run) is held, up to `max_token` bytes: any of it may still become a
///   value (a word, an e-mail's local part once `@` follows).
/// - Values with spaces inside join tokens with one space: while the text
///   ends in such a chain (or in one space after it), a token of it is held
///   with all after it only if a value starting there may still reach past
///   the end: spaced numbers in their layouts ([`digits_live`], any layout
///   after a label), upper-case groups ([`upper_groups_live`]), names and
///   addresses ([`words_live`]), dates ([`date_live`]), and a run of spaced
///   single characters the normaliser joins into one token. A chain of
///   plain words, or of more groups than any layout, holds nothing.
/// - A PEM header still open (`-----BEGIN RSA PRIV`) is held from its start.
///   (A complete PEM block without its end line is a match reaching the end:
///   the caller holds matches that cross its cut.)
#[cfg(test)]
pub(crate) fn open_tail(b: &[u8], max_token: usize) -> usize {
    open_tail_from(b, 0, max_token)
}

/// Starts of the `aws` and `secret` words (any case) in `b[lo..hi]`, found
/// by their rarer letter (`w`, `c`), eight bytes at a time, rather than at
/// every `a` and `s`.
fn aws_words(b: &[u8], lo: usize, hi: usize) -> Vec<usize> {
    use crate::swar::{equal, first, load, ONES};
    let mut out = Vec::new();
    let mut at_letter = |j: usize| {
        let word = |k: usize, w: &[u8]| k >= lo && k < hi && !is_word(prev(b, k)) && starts_with_ci(b, k, w);
        match at(b, j) | 0x20 {
            b'w' if j >= 1 && word(j - 1, b"aws") => out.push(j - 1),
            b'c' if j >= 2 && word(j - 2, b"secret") => out.push(j - 2),
            _ => {}
        }
    };
    // The letter is one or two bytes after the word's start.
    let end = (hi + 2).min(b.len());
    let mut k = lo;
    while k + 8 <= end {
        let Some(x) = load(b, k) else { break };
        // `| 0x20` sends only `W` and `C` onto `w` and `c`.
        let v = x | (ONES * 0x20);
        let mut m = equal(v, b'w') | equal(v, b'c');
        while m != 0 {
            at_letter(k + first(m));
            m &= m - 1;
        }
        k += 8;
    }
    while k < end {
        at_letter(k);
        k += 1;
    }
    out
}

/// Whether the new text `b[off..]` of a stream's decision is plain words:
/// lower-case ASCII words of 2 to 19 letters (hyphens and apostrophes
/// inside; a complete one may end in one of `.,;:!?`), apart from the
/// context (whitespace at `off` on one side), none of the words any value's
/// layout takes in ([`taken_word`]). No built-in detector's match takes in
/// such a word, so none reaches into the new text (the caller checks that no
/// PEM block is open in its context: one takes in whatever follows): the
/// decision step need not look for values, as the tests check against
/// looking.
pub(crate) fn plain_words(b: &[u8], off: usize) -> bool {
    let text = b.get(off..).unwrap_or_default();
    if text.is_empty() || (off > 0 && !at(b, off - 1).is_ascii_whitespace() && !at(b, off).is_ascii_whitespace()) {
        return false;
    }
    let complete = text.last().is_some_and(u8::is_ascii_whitespace);
    let mut words = text.split(u8::is_ascii_whitespace).filter(|w| !w.is_empty()).peekable();
    while let Some(t) = words.next() {
        let last = words.peek().is_none();
        let w = match t.split_last() {
            Some((p, rest)) if (complete || !last) && matches!(p, b'.' | b',' | b';' | b':' | b'!' | b'?') => rest,
            _ => t,
        };
        let inner = w.get(1..w.len().saturating_sub(1)).unwrap_or_default();
        if !(2..20).contains(&w.len())
            || !w.first().is_some_and(u8::is_ascii_lowercase)
            || !w.last().is_some_and(u8::is_ascii_lowercase)
            || !inner.iter().all(|c| c.is_ascii_lowercase() || joins_words(c))
        {
            return false;
        }
        // The last word may still grow: it is held, and judged once whole.
        if last && !complete {
            continue;
        }
        if taken_word(w) || (w.iter().any(joins_words) && w.split(joins_words).any(taken_word)) {
            return false;
        }
    }
    true
}

/// Whether a PEM block is open at the end of `b` once `b[from..]` is added,
/// given whether one was open at `from`: the last marker a `-----BEGIN` or
/// a `-----END ` says (`from` is moved back over a marker it may cut).
pub(crate) fn pem_open_after(b: &[u8], from: usize, open: bool) -> bool {
    let from = from.saturating_sub(9);
    let marker = |lit: &[u8]| (from..b.len()).rev().find(|&j| at(b, j) == b'-' && starts_with_at(b, j, lit));
    match (marker(b"-----BEGIN"), marker(b"-----END ")) {
        (Some(s), Some(e)) => s > e,
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (None, None) => open,
    }
}

/// Where the hold-back cuts new text of plain words ([`plain_words`]): at
/// the end when the last word is complete; else before the last word,
/// unless it may still grow into a word a value's layout takes in (then
/// `None`: the hold-back rule decides). A plain word ends every run of
/// tokens a value could still be growing in, so nothing before it is held;
/// the tests check this against the rule ([`open_tail_from`]).
pub(crate) fn plain_cut(b: &[u8]) -> Option<usize> {
    if b.last().is_some_and(u8::is_ascii_whitespace) {
        return Some(b.len());
    }
    let mut t = b.len();
    while t > 0 && !at(b, t - 1).is_ascii_whitespace() {
        t -= 1;
    }
    let partial = b.get(t..).unwrap_or_default();
    (!taken_prefix(partial)).then_some(t)
}

/// Whether `w` begins a word [`taken_word`] takes (German street endings
/// aside: a street word starts with a capital, which a plain word has not).
fn taken_prefix(w: &[u8]) -> bool {
    use std::collections::HashSet;
    static PREFIXES: std::sync::OnceLock<HashSet<&'static [u8], BuildFnv>> = std::sync::OnceLock::new();
    let set = PREFIXES
        .get_or_init(|| taken_list().flat_map(|word| (1..=word.len()).filter_map(move |k| word.get(..k))).collect());
    set.contains(w) || w.split(joins_words).next_back().is_some_and(|last| set.contains(last))
}

/// The bytes inside a plain word that join two words (`follow-up`, `don't`).
fn joins_words(c: &u8) -> bool {
    matches!(c, b'-' | b'\'')
}

/// The words of [`taken_word`]'s set: name particles, street types and
/// suffixes, months of every language, extension words, `aws`, `secret`.
fn taken_list() -> impl Iterator<Item = &'static [u8]> {
    const MORE: [&[u8]; 5] = [b"ext", b"extension", b"x", b"aws", b"secret"];
    names::taken_words().chain(MONTHS.iter().copied()).chain(MORE)
}

/// A lower-case word some value's layout takes in ([`plain_words`]): a name
/// particle, a street type or suffix (or its plural), a German street
/// ending, a month of any language, an extension word, `aws` or `secret`.
/// One hash lookup (the set is built once) instead of walking the lists.
fn taken_word(w: &[u8]) -> bool {
    use std::collections::HashSet;
    struct Taken {
        words: HashSet<&'static [u8], BuildFnv>,
        /// The last two bytes of the German street endings: the ending test
        /// runs only for a word that ends like one.
        tails: Vec<[u8; 2]>,
    }
    static TAKEN: std::sync::OnceLock<Taken> = std::sync::OnceLock::new();
    let t = TAKEN.get_or_init(|| {
        let tails = names::strasse_endings()
            .iter()
            .filter_map(|e| e.len().checked_sub(2).and_then(|k| e.get(k..)).and_then(|t| <[u8; 2]>::try_from(t).ok()))
            .collect();
        Taken { words: taken_list().collect(), tails }
    });
    let singular = w.strip_suffix(b"s").filter(|s| s.len() >= 3);
    let tail = w.len().checked_sub(2).and_then(|k| w.get(k..)).and_then(|x| <[u8; 2]>::try_from(x).ok());
    t.words.contains(w)
        || singular.is_some_and(|s| t.words.contains(s))
        || tail.is_some_and(|x| t.tails.contains(&x) && names::is_strasse(w))
}

/// FNV-1a: a short word hashed in a few instructions a byte (std's SipHash
/// is far dearer in wasm), for [`taken_word`]'s fixed set.
#[derive(Default, Clone, Copy)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &c in bytes {
            h = (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type BuildFnv = std::hash::BuildHasherDefault<Fnv>;

/// How far before its new text a stream's decision step starts looking for
/// values again (see [`resume_point`]): the label window.
pub(crate) const RESUME_BACK: usize = 48;

/// Where a stream's decision step starts looking for values ([`scan_from`])
/// in its decided context `..off` and new text `off..`: at the start of the
/// token [`RESUME_BACK`] characters before `off`, or at a PEM block's
/// `-----BEGIN` further back (the block is one match from its header). By [`open_tail_from`] no value
/// can start in the decided text and still be growing at `off`; starting
/// this far back keeps the caller's safety net for the layouts the hold-back
/// does not know (a match that starts in the context and reaches into the
/// new text has its new part redacted), and a run of tokens that is no value
/// (`812 845 878 891 823 415 555 2671`) is read from before `off`, not
/// entered in its middle. The context itself stays readable: labels,
/// honorifics and a table's header row before the start still count.
///
/// Measured against reading the whole context (the 89,925 held-out bodies
/// of both corpora's tuning seeds streamed in pieces of 1 to 40 bytes): the
/// same bytes released. Without the PEM rule a private key's lines after
/// the window went out; counting bytes, not characters, an IBAN in
/// full-width digits lost its redaction. Starting at the run of digit,
/// upper-case and one-character tokens before `off` (3,700 wasm
/// instructions per streamed event less) lost 711 redactions the safety
/// net made (UK NINO, names, addresses, dates after glued labels).
pub(crate) fn resume_point(b: &[u8], off: usize) -> usize {
    let off = off.min(b.len());
    // RESUME_BACK characters (UTF-8 continuation bytes do not count: a
    // value in full-width digits is three bytes a digit).
    let mut i = off.saturating_sub(RESUME_BACK);
    if b.get(i..off).is_some_and(|w| !w.is_ascii()) {
        i = off;
        let mut chars = 0;
        while i > 0 && chars < RESUME_BACK {
            i -= 1;
            chars += usize::from(at(b, i) & 0xC0 != 0x80);
        }
    }
    while i > 0 && !at(b, i - 1).is_ascii_whitespace() {
        i -= 1;
    }
    // A PEM block's header further back: the block is one match from it.
    pem_header_before(b, i).unwrap_or(i)
}

/// The start of the last `-----BEGIN` in `b[..end]`, looked for from the
/// end eight bytes at a time by two dashes in a row (a run of five leaves
/// two in a row in one of the two words it touches).
fn pem_header_before(b: &[u8], end: usize) -> Option<usize> {
    use crate::swar::{equal, ONES};
    let head = b.get(..end)?;
    let last_in = |lo: usize, hi: usize| {
        (lo..hi.min(end)).rev().find(|&j| at(b, j) == b'-' && starts_with_at(b, j, b"-----BEGIN"))
    };
    let chunks = head.rchunks_exact(8);
    let rest = chunks.remainder().len();
    for (n, chunk) in chunks.enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let m = equal(u64::from_le_bytes(w), b'-');
        if m & (m >> 8) != 0 {
            let k = end - 8 * n;
            // The run's first dash is at most four bytes before this word.
            if let Some(j) = last_in((k - 8).saturating_sub(4), k) {
                return Some(j);
            }
        }
    }
    let _ = ONES;
    last_in(0, rest + 4)
}

/// [`open_tail`] for text whose bytes before `from` were decided already
/// (kept as context for labels): no value is looked for starting there.
pub(crate) fn open_tail_from(b: &[u8], from: usize, max_token: usize) -> usize {
    let n = b.len();
    let space = |i: usize| at(b, i).is_ascii_whitespace();
    let mut t = n;
    while t > 0 && n - t < max_token && !space(t - 1) {
        t -= 1;
    }
    let mut s = t;
    // The chain of tokens joined by single spaces that the text ends in;
    // its last token `t..n` (empty after a space) may still grow.
    let joined = |i: usize| i >= 2 && at(b, i - 1) == b' ' && !space(i - 2);
    // Walked back from the end: up to CHAIN_TOKENS tokens, further only
    // through a run of single characters.
    let mut toks: Vec<(usize, usize)> = Vec::with_capacity(CHAIN_TOKENS + 1);
    toks.push((t, n));
    let mut i = t;
    let mut all_singles = true;
    while joined(i) && toks.len() <= SPACED_SINGLES {
        let e = i - 1;
        let mut k = e;
        while k > 0 && !space(k - 1) && e - k < CHAIN_BYTES {
            k -= 1;
        }
        all_singles &= e - k == 1;
        // Past CHAIN_TOKENS, or into the decided text, only a run of singles
        // matters (it is held whole).
        if (toks.len() > CHAIN_TOKENS || e < from) && !all_singles {
            break;
        }
        toks.push((k, e));
        i = k;
    }
    toks.reverse();
    // Spaced single characters: the normaliser joins the whole run.
    let single = |&(a, z): &(usize, usize)| z - a == 1 && at(b, a).is_ascii_alphanumeric();
    let open_slot = toks.last().is_some_and(|l| l.0 == l.1);
    let m = toks.len() - usize::from(open_slot);
    let run = toks.get(..m).map_or(0, |ts| ts.iter().rev().take_while(|x| single(x)).count());
    // One single may start a run unless it is a lower-case letter (no
    // value joined from single characters starts with one).
    let lone_ok = run == 1 && toks.get(m.saturating_sub(1)).is_some_and(|&(a, _)| !at(b, a).is_ascii_lowercase());
    if (2..=SPACED_SINGLES).contains(&run) || lone_ok {
        if let Some(&(a, _)) = toks.get(m - run) {
            s = s.min(a);
        }
    }
    for k in toks.len().saturating_sub(CHAIN_TOKENS)..toks.len().saturating_sub(1) {
        let Some(&(ts, te)) = toks.get(k) else { continue };
        if n - ts > CHAIN_BYTES || ts >= s || ts < from {
            continue;
        }
        let rest = toks.get(k..).unwrap_or_default();
        // Cheap first: what the token's first byte allows.
        let c0 = at(b, ts);
        let cap = c0.is_ascii_uppercase() || c0 == 0xC3;
        if ((cap || c0.is_ascii_digit()) && words_live(b, rest))
            || (c0.is_ascii_uppercase() && upper_groups_live(b, rest))
            || (c0.is_ascii_alphanumeric() && date_live(b, rest))
        {
            s = ts;
            break;
        }
        // A spaced number may start inside a token (`ab-4111 1111 …`): at
        // the token's trailing run of digits and `+ ( ) - . /`.
        let mut g = te;
        while g > ts && group_byte(at(b, g - 1)) {
            g -= 1;
        }
        while g < te && !(at(b, g).is_ascii_digit() || matches!(at(b, g), b'+' | b'(')) {
            g += 1;
        }
        if g < te && digits_live(b, g, rest) {
            s = g;
            break;
        }
    }
    // (The searcher is built once: `memmem::rfind` builds one per call.)
    static BEGIN: std::sync::OnceLock<memchr::memmem::FinderRev<'static>> = std::sync::OnceLock::new();
    if let Some(p) = BEGIN.get_or_init(|| memchr::memmem::FinderRev::new(b"-----BEGIN")).rfind(b) {
        let label = p + 10;
        let label_end = tok_end(b, label, |c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' ', 41);
        // The label, or the label and part of its closing `-----`, reaches the end.
        let dashes = tok_end(b, label_end, |c| c == b'-', 5) - label_end;
        let open = label_end + dashes == n && dashes < 5;
        if open && label_end - label <= 40 {
            s = s.min(p);
        }
    }
    s.min(t)
}

/// Entities whose values join tokens with spaces.
const SPACED_ENTITIES: &[u16] = &[
    e::PHONE,
    e::CREDIT_CARD,
    e::US_SSN,
    e::US_ITIN,
    e::CA_SIN,
    e::UK_NHS,
    e::US_NPI,
    e::MRN,
    e::IBAN,
    e::UK_NINO,
    e::PERSON_NAME,
    e::STREET_ADDRESS,
    e::DATE_OF_BIRTH,
];

/// Whether a match of `entity` ending at `end` may still change as the text
/// grows: it is one of the spaced kinds, and only one space and tokens that
/// may continue it (digit groups, upper-case groups, capitalised words,
/// particles, street types, an extension, a unit) come after it.
pub(crate) fn may_continue(b: &[u8], end: usize, entity: u16) -> bool {
    if entity == e::PRIVATE_KEY {
        // A PEM block cut short by its table cell (a quoted CSV cell whose
        // closing quote has not come yet ends at the line's end): it grows
        // until its END line.
        return !pem_closed(b, end);
    }
    let n = b.len();
    if !SPACED_ENTITIES.contains(&entity) || at(b, end) != b' ' || n - end > CHAIN_BYTES {
        return false;
    }
    let mut i = end + 1;
    while i < n {
        let e = run_end(b, i, |c| !c.is_ascii_whitespace());
        let t = b.get(i..e).unwrap_or_default();
        let last = e == n;
        let w = t.strip_suffix(b",").or_else(|| t.strip_suffix(b".")).unwrap_or(t);
        let joins = (all(t, group_byte) && t.iter().any(u8::is_ascii_digit))
            || (all(t, |c| c.is_ascii_uppercase() || c.is_ascii_digit()) && !t.is_empty())
            || cap_like(w, last)
            || names::is_particle(w)
            || names::is_voie(w)
            || ext_like(t, last)
            || month_like(t, last)
            || t.first() == Some(&b'#')
            || (last && names::starts_particle_or_voie(t));
        let single_space = at(b, e) == b' ' && !at(b, e + 1).is_ascii_whitespace();
        if !joins || (e < n && !single_space) {
            return false;
        }
        i = e + 1;
    }
    true
}

/// Whether the PEM match ending at `end` ends with its `-----END …-----`
/// line (the last marker before `end` is an END, not the BEGIN).
fn pem_closed(b: &[u8], end: usize) -> bool {
    let end = end.min(b.len());
    let Some(head) = b.get(..end) else { return false };
    let last = |m: &[u8]| head.windows(m.len()).rposition(|w| w == m);
    match (last(b"-----END "), last(b"-----BEGIN ")) {
        (Some(e), Some(s)) => e > s,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Texts with values of every kind the stream hold-back must not cut into:
/// the open-tail rule here and the stream redactor's split tests read them.
#[cfg(test)]
pub(crate) const HOLD_TEXTS: &[&str] = &[
    "Mail jane.doe@example.com or call (555) 123-4567 today.",
    "card 4111 1111 1111 1111 exp 12/29, ssn 123-45-6789 ok",
    "IBAN GB82 WEST 1234 5698 7654 32 and NINO AB 12 34 56 C done",
    "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end",
    "dial +44 20 7946 0958 or 030 1234 5678 please",
    "ref ab 4111 1111 1111 1111 tail",
    "key -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY----- x",
    "ip 192.168.10.20 and 2001:db8::8a2e:370:7334 fin",
    "see 1482, then 4111 1111 1111 1111 and 1221 done",
    "call 415 555 2671 or 1 800 555 0199 or ring 030 1234 5678 now",
    "mc 5500 0000 0000 0004 amex 3782 822463 10005 ok",
    "sin 046 454 286 nhs 943 476 5919 ssn 123 45 6789 end",
    "GB82 WEST 1234 5698 7654 32 AB 12 34 56 C +1 (415) 555-2671 x",
    "Patient Maria Lopez was seen by Dr. Weber today.",
    "lives at 734 Rebekah Loop now, or 8, rue de la Paix then",
    "write to Hans Joerg-Geissler-Weg 4 soon",
    "card 1482 1930 1221 1557 ok, phone 12 34 56 78 ok",
    "call 812 845 878 891 823 ok or 415 555 2671 x778 then",
    "ids 812 845 878 891 823 415 555 2671 end, call 415 555 2671 now",
    "DOB 12 March 1985 and born March 12, 1985 fin",
];

#[cfg(test)]
mod open_tail_tests {
    use super::*;

    fn tail(s: &str) -> &str {
        &s[open_tail(s.as_bytes(), 16 * 1024)..]
    }

    #[test]
    fn only_what_may_still_grow_is_held() {
        assert_eq!(tail("Hello there "), "");
        assert_eq!(tail("Hello there"), "there");
        assert_eq!(tail("write to jane.d"), "jane.d");
        assert_eq!(tail("write to jane.doe@example.com"), "jane.doe@example.com");
        assert_eq!(tail("done.\n"), "");
        assert_eq!(tail("the answer is yes. "), "");
        assert_eq!(tail("it is 42 . "), "", "no group is punctuation alone");
        assert_eq!(tail(""), "");
        // Digit groups joined by single spaces may still become a card, a phone or an id.
        assert_eq!(tail("card 4111 1111 1111"), "4111 1111 1111");
        assert_eq!(tail("card 4111 1111 1111 "), "4111 1111 1111 ");
        assert_eq!(tail("call (555) 123"), "(555) 123");
        assert_eq!(tail("dial +44 20 7946"), "+44 20 7946");
        assert_eq!(tail("iban GB82 WEST 1234 5698 7654 32"), "GB82 WEST 1234 5698 7654 32");
        assert_eq!(tail("nino AB 12 34"), "AB 12 34");
        assert_eq!(tail("ref ab-4111 1111"), "4111 1111", "a group starting inside a token");
        // A word ends a spaced value; two spaces or a newline never join groups.
        assert_eq!(tail("4111 1111 thanks"), "thanks");
        assert_eq!(tail("4111 1111  2222"), "2222");
        assert_eq!(tail("4111 1111\n2222"), "2222");
        // Spaced single characters are one token to the normaliser: the run
        // is held whole, up to SPACED_SINGLES of them.
        let digits = "1 ".repeat(40) + "1";
        assert_eq!(tail(&digits), digits);
        let many = "1 ".repeat(70) + "1";
        assert_eq!(tail(&many), "1 1", "past the bound, what a 1-3-3-4 number may start with");
        assert_eq!(tail("it is a "), "", "a lone lower-case letter starts no run");
        assert_eq!(tail("then I "), "I ");
        // A run of groups is held only from a group whose layout it still
        // fits: NANP 3-3-4 without a label, so two groups and the growing one.
        let threes = "823 ".repeat(20) + "4";
        assert_eq!(tail(&threes), "823 823 4");
        assert_eq!(tail("ids 823 845 878 "), "845 878 ", "823 is done: a third group of three ends a NANP layout");
        assert_eq!(tail("ids 823 845 "), "823 845 ");
        assert_eq!(tail("call me: 823 845 878 891 82"), "823 845 878 891 82", "after a label any layout");
        assert_eq!(tail("phone 12 34 56"), "12 34 56");
        assert_eq!(tail("card 1482 1930 1221"), "1482 1930 1221", "a labelled card needs no brand");
        // Groups no spaced value starts with are not held: only the partial one.
        assert_eq!(tail("ids 1482 1930 1221 1557"), "1557");
        assert_eq!(tail("ids 1482 1930 1221 1557 "), "1557 ", "a house number: a street may follow");
        assert_eq!(tail("ids 1482 1930 1221 1557 and"), "and");
        assert_eq!(tail("ids 1482 4111 1221 1557"), "4111 1221 1557", "4111 may start a card");
        assert_eq!(tail("AB CD EF GH"), "AB CD EF GH");
        assert_eq!(tail("USA 12 34"), "34");
        let long = "12345678901234567890 1234567890123456789012345";
        assert_eq!(tail(long), "1234567890123456789012345");
        // Names and addresses: capitalised words joined by spaces.
        assert_eq!(tail("patient Maria "), "Maria ");
        assert_eq!(tail("Patient Maria "), "Patient Maria ", "two words may lead a German street name");
        assert_eq!(tail("Please ask Maria Lo"), "Maria Lo");
        assert_eq!(tail("Please ask Maria de la"), "Maria de la");
        assert_eq!(tail("The "), "", "no name starts with The, no street either");
        assert_eq!(tail("The patient record shows a"), "a");
        assert_eq!(tail("lives at 734 Rebekah "), "734 Rebekah ");
        assert_eq!(tail("lives at 8, rue de "), "8, rue de ");
        assert_eq!(tail("in Paris "), "Paris ", "a street name may follow (Paris Straße 4)");
        assert_eq!(tail("DOB 12 Mar"), "12 Mar");
        assert_eq!(tail("over 12 months "), "");
        // Extensions of a phone.
        assert_eq!(tail("call 415 555 2671 ext"), "415 555 2671 ext");
        // An open PEM header is held from its start.
        assert_eq!(tail("key: -----BEGIN RSA PRIV"), "-----BEGIN RSA PRIV");
        assert_eq!(tail("key: -----BEGIN RSA PRIVATE KEY---"), "-----BEGIN RSA PRIVATE KEY---");
        assert_eq!(tail("key: -----BEGIN RSA PRIVATE KEY-----\nMIIE"), "MIIE");
        // A token longer than the bound is cut at it.
        assert_eq!(open_tail(b"aaaaaaaaaa", 4), 6);
    }

    /// Exhaustive check of the rule against the detectors: for every prefix
    /// of texts with values, nothing before the cut is part of a value of the
    /// whole text that reaches past the prefix.
    #[test]
    fn no_value_of_the_whole_text_starts_before_the_cut_and_ends_after_the_prefix() {
        let texts = HOLD_TEXTS;
        let enabled = vec![true; 64];
        let cx = ScanCtx {
            enabled: &enabled,
            key: b"",
            icd: false,
            first_only: false,
            spaced: std::cell::Cell::new(false),
            name_key: false,
        };
        for text in texts {
            let b = text.as_bytes();
            let mut hits = Vec::new();
            scan_from(b, 0, &cx, &mut hits);
            assert!(!hits.is_empty(), "{text}");
            for end in 0..=b.len() {
                // As the stream redactor decides: the open tail, moved back
                // to the start of any match of the prefix that crosses it or
                // reaches the prefix's end (it may still grow).
                let mut cut = open_tail(&b[..end], 16 * 1024);
                let mut now = Vec::new();
                scan_from(&b[..end], 0, &cx, &mut now);
                let pre = &b[..end];
                while let Some(h) = now
                    .iter()
                    .find(|h| h.start < cut && (h.end > cut || h.end == end || may_continue(pre, h.end, h.entity)))
                {
                    cut = h.start;
                }
                for h in &hits {
                    assert!(
                        !(h.start < cut && h.end > end),
                        "{text:?}: prefix {end} released up to {cut}, but a value runs {}..{}",
                        h.start,
                        h.end
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod next_work_tests {
    use super::*;

    /// The byte-by-byte form [`next_work`] replaced.
    fn next_work_bytewise(b: &[u8], from: usize) -> Option<usize> {
        let mut shift = u8::from(is_word(prev(b, from)));
        for (k, &c) in b.get(from..)?.iter().enumerate() {
            let t = TRIGGER[usize::from(c)];
            if (t >> shift) & 1 != 0 && (!c.is_ascii_lowercase() || lower_may_start(c, at(b, from + k + 1))) {
                return Some(from + k);
            }
            shift = (t >> 2) & 1;
        }
        None
    }

    /// Every byte value, in runs of every length around the eight-byte
    /// step, and the hold-back texts: the same next byte from every start.
    #[test]
    fn finds_what_the_bytewise_scan_finds() {
        let mut seed = 3u64;
        let mut rnd = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        let alphabet: Vec<u8> = b"abcxyzAMZ09_ @+(:-.,\n\t\x7f\xc3\xa9\x80\xff`{[/^skoeywhigrW".to_vec();
        let mut texts: Vec<Vec<u8>> = HOLD_TEXTS.iter().map(|t| t.as_bytes().to_vec()).collect();
        texts.push((0u8..=255).collect());
        for _ in 0..400 {
            let mut t = Vec::new();
            for _ in 0..rnd() % 12 {
                let run = rnd() % 19;
                let word = rnd() % 2 == 0;
                for _ in 0..run {
                    t.push(if word { b"aZ9_q"[rnd() % 5] } else { alphabet[rnd() % alphabet.len()] });
                }
                t.push(alphabet[rnd() % alphabet.len()]);
            }
            texts.push(t);
        }
        for t in &texts {
            for from in 0..=t.len() + 1 {
                assert_eq!(
                    next_work(t, from),
                    next_work_bytewise(t, from),
                    "{:?} from {from}",
                    String::from_utf8_lossy(t)
                );
            }
        }
    }
}

#[cfg(test)]
mod month_tests {
    use super::*;

    /// The linear form [`month_at`] replaced (every month tried).
    fn month_at_linear(b: &[u8], i: usize) -> Option<usize> {
        let we = run_end(b, i, |c| c.is_ascii_alphabetic() || c >= 0x80);
        let w = b.get(i..we)?;
        if w.len() < 3 || w.len() > 10 {
            return None;
        }
        let hit =
            MONTHS.iter().any(|m| m.len() >= w.len() && m.iter().zip(w).all(|(x, y)| *x == y.to_ascii_lowercase()));
        hit.then(|| we + usize::from(at(b, we) == b'.'))
    }

    #[test]
    fn month_names_and_their_cuts_are_found_as_by_trying_every_month() {
        let mut texts: Vec<Vec<u8>> = Vec::new();
        for m in MONTHS {
            for len in 1..=m.len() + 1 {
                let w = m.get(..len.min(m.len())).unwrap_or_default();
                let upper: Vec<u8> = w.iter().map(u8::to_ascii_uppercase).collect();
                let mut cap = w.to_vec();
                if let Some(c) = cap.first_mut() {
                    *c = c.to_ascii_uppercase();
                }
                for t in [w.to_vec(), upper, cap] {
                    texts.push([&t[..], b". 1985"].concat());
                    texts.push([&t[..], b"x 1"].concat());
                }
            }
        }
        for t in ["Sept. 12", "Okt 3", "févr. 1990", "Tuesday 4", "Marchx", "mayor", "zzz", "Ärz"] {
            texts.push(t.as_bytes().to_vec());
        }
        let mut found = 0;
        for t in &texts {
            assert_eq!(month_at(t, 0), month_at_linear(t, 0), "{}", String::from_utf8_lossy(t));
            found += usize::from(month_at(t, 0).is_some());
        }
        assert!(found > MONTHS.len() * 3, "{found}");
    }
}

#[cfg(test)]
mod lower_start_tests {
    use super::*;

    #[test]
    fn every_lower_case_prefix_word_start_looks_for_passes_the_second_byte_test() {
        for p in ["sk_live_", "sk_test_", "rk_live_", "rk_test_", "sk-", "sk-ant-", "aws", "aWs", "secret", "sEcret"]
            .iter()
            .chain(&["github_pat_", "ghp_", "gho_", "xoxb-", "xoxe.", "eyJ"])
        {
            let b = p.as_bytes();
            assert!(lower_may_start(at(b, 0), at(b, 1)), "{p}");
        }
        // Most words do not.
        for w in ["summarize", "short", "results", "range", "and", "appointment", "every", "good", "extra"] {
            let b = w.as_bytes();
            assert!(!lower_may_start(at(b, 0), at(b, 1)), "{w}");
        }
        // Letters word_start has nothing for.
        assert!(!lower_may_start(b'b', b'k') && !lower_may_start(b'z', b'y'));
    }
}

#[cfg(test)]
mod month_like_tests {
    use super::*;

    /// The stream hold-back's month test reads the English names only (the
    /// first twelve of `MONTHS`), whole, abbreviated to three letters, or
    /// begun when `partial`.
    #[test]
    fn english_names_whole_abbreviated_or_begun() {
        for (t, partial, expect) in [
            (&b"December"[..], false, true),
            (b"dec.", false, true),
            (b"Sept", false, false),
            (b"Sept", true, true),
            (b"janvier", false, false),
            (b"janv", true, false),
            (b"", true, false),
        ] {
            assert_eq!(month_like(t, partial), expect, "{:?} {partial}", String::from_utf8_lossy(t));
        }
        assert_eq!(MONTHS.get(..12).map(|m| m.iter().all(|n| month_like(n, false))), Some(true));
    }
}

#[cfg(test)]
mod resume_tests {
    use super::*;

    /// `pem_header_before` finds the last `-----BEGIN` a byte-by-byte look
    /// finds, at every end, with runs of dashes of every length around.
    #[test]
    fn pem_headers_are_found_as_a_byte_look_finds_them() {
        for text in [
            "a -- b --- c -----BEGIN X----- d ----- e -----BEGIN Y",
            "-----BEGIN",
            "x-----BEGIN-----BEGIN--------BEGIN follow-up -- ---- -----",
            "no header here, only follow-up and a -- b",
        ] {
            let b = text.as_bytes();
            for end in 0..=b.len() {
                let naive = (0..end).rev().find(|&j| b[j..].starts_with(b"-----BEGIN"));
                assert_eq!(pem_header_before(b, end), naive, "{text:?} ..{end}");
            }
        }
    }

    /// `aws_words` finds exactly the word starts a byte-by-byte look finds,
    /// for every window of texts with the words in every case, at the ends,
    /// glued to other words and split by the window's edges.
    #[test]
    fn aws_words_are_the_word_starts_of_aws_and_secret() {
        let texts = [
            "The aws secret for staging is kept by the platform team, rotate the Secret often",
            "AWS SECRET: xsecret awsome wsc cc ww secretive Aws_key aws",
            "secret",
            "awsaws secretsecret .aws(secret)",
        ];
        for t in texts {
            let b = t.as_bytes();
            for lo in 0..=b.len() {
                for hi in lo..=b.len() {
                    let naive: Vec<usize> = (lo..hi)
                        .filter(|&k| {
                            !is_word(prev(b, k)) && (starts_with_ci(b, k, b"aws") || starts_with_ci(b, k, b"secret"))
                        })
                        .collect();
                    let mut fast = aws_words(b, lo, hi);
                    fast.sort_unstable();
                    assert_eq!(fast, naive, "{t:?} {lo}..{hi}");
                }
            }
        }
    }

    /// The decision step resumes at the start of the token `RESUME_BACK`
    /// characters before `off` (the start of the text when it is shorter),
    /// or at a PEM header before that.
    #[test]
    fn resume_points() {
        let long = "The patient record shows a follow-up visit next week. The patient ";
        assert_eq!(RESUME_BACK, 48);
        let cases: [(&str, usize, usize); 6] = [
            // 48 bytes before 66 is 18, the space after `record`: from `record`.
            (long, 66, 12),
            // 48 bytes before 60 is 12, the start of `record`.
            (long, 60, 12),
            // 48 bytes before 59 is 11, the space after `patient`: from `patient`.
            (long, 59, 4),
            ("ids 812 845 878 891 8", 21, 0),
            ("", 0, 0),
            ("short", 99, 0),
        ];
        for (text, off, want) in cases {
            assert_eq!(resume_point(text.as_bytes(), off), want, "{text:?} at {off}");
        }
        // Characters, not bytes: 24 full-width digits and spaces are 96 bytes.
        let wide = format!("x {}", "１ ".repeat(30));
        assert_eq!(resume_point(wide.as_bytes(), wide.len()), wide.len() - 96);
        // A PEM header before the window: from its first dash.
        let pem = format!("key -----BEGIN RSA PRIVATE KEY-----\n{}\nMII", "A".repeat(80));
        assert_eq!(resume_point(pem.as_bytes(), pem.len()), 4);
    }
}

#[cfg(test)]
mod plain_words_tests {
    use super::*;

    /// New text of lower-case words apart from the context is plain; words
    /// a value's layout takes in, capitals, digits, one-letter words, text
    /// glued to the context's last token, and long words are not.
    #[test]
    fn plain_words_and_what_is_not() {
        for (ctx, new, plain) in [
            ("The ", "patient record ", true),
            ("The", " patient rec", true),
            ("visit ", "next week. ", true),
            ("a ", "follow-up visit, ", true),
            ("it's ", "don't ", true),
            ("The ", "Patient ", false),
            ("call ", "4155552671 ", false),
            ("The ", "a ", false),
            ("12 Main ", "street ", false),
            ("12 Main ", "streets ", false),
            ("8, ", "boulevard ", false),
            ("Maria ", "de ", false),
            ("Jens ", "hauptweg ", false),
            ("12 ", "march ", false),
            ("12 ", "mars ", false),
            ("dial 415 555 2671 ", "ext ", false),
            ("the ", "aws ", false),
            ("the ", "secret ", false),
            ("jane.roe", "example ", false),
            ("x ", "abcdefghijklmnopqrst ", false),
            ("x ", "-dash ", false),
            ("", "", false),
        ] {
            let b = format!("{ctx}{new}");
            assert_eq!(plain_words(b.as_bytes(), ctx.len()), plain, "{ctx:?} + {new:?}");
        }
    }

    /// A PEM block is open after the text as its last marker says; without
    /// a marker in what was added (or a marker cut by the addition's start),
    /// as it was.
    #[test]
    fn pem_open_after_added_text() {
        let cases: [(&str, usize, bool, bool); 6] = [
            ("key -----BEGIN RSA PRIVATE KEY-----\nMIIE", 0, false, true),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- ok", 40, true, false),
            ("MIIEabc\nQUFB", 4, true, true),
            ("plain words", 6, false, false),
            // The marker began before the addition's start.
            ("xx -----BEGIN RSA PRIVATE KEY-----", 8, false, true),
            ("xx -----END RSA PRIVATE KEY-----", 8, true, false),
        ];
        for (text, from, was, now) in cases {
            assert_eq!(pem_open_after(text.as_bytes(), from, was), now, "{text:?} from {from}");
        }
    }
}

#[cfg(test)]
mod plain_cut_tests {
    use super::*;

    /// At the end after a complete word; before a last word that cannot
    /// grow into a word a layout takes in; no answer for one that can.
    #[test]
    fn plain_cuts() {
        for (text, cut) in [
            ("patient record ", Some(15)),
            ("patient rec", Some(8)),
            ("call ex", None),
            ("the mar", None),
            ("the bou", None),
            ("at follow-u", None),
            ("at follow-qq", Some(3)),
        ] {
            assert_eq!(plain_cut(text.as_bytes()), cut, "{text:?}");
        }
    }
}
