//! Label words: the words people (and programs) put next to a value to say
//! what it is, in several languages, and the lookup of the nearest one.
//!
//! A label turns a value of the right *format* into a finding of its entity
//! even when a checksum or range rule fails (test data, typos and fakes are
//! still what the policy says must not leave), and decides the entity when a
//! format is shared (nine digits after "SIN" are a SIN, after "SSN" an SSN).
//! Weak-checksum national ids (DEA, NINO, SIN, NHS, NPI) need one.
//!
//! Words are matched case-insensitively at a word start; a space in a word
//! also matches `_`, `-`, `.` or a camelCase hump (`socialSecurityNumber`,
//! `social_security`). Words of up to four letters must end at a word end;
//! longer ones may be prefixes ("birth" matches "birthday").

/// A list of label words, sorted by first letter, with the set of their
/// first letters and where each letter's words start.
#[derive(Clone, Copy)]
pub(crate) struct Words {
    list: &'static [&'static [u8]],
    firsts: u32,
    /// `list[starts[l]..starts[l + 1]]` are the words starting with letter `l`.
    starts: [u8; 27],
    /// Some word holds a separator (` _-.`) before its last byte: only then
    /// may a word match across the separator between two words of a text.
    multi: bool,
}

/// [`Words`] of a list sorted by first letter (checked at compile time).
#[allow(clippy::indexing_slicing)] // const-evaluated, within bounds
pub(crate) const fn words(list: &'static [&'static [u8]]) -> Words {
    let mut firsts = 0u32;
    let mut starts = [0u8; 27];
    let mut letter = 0usize;
    let mut multi = false;
    let mut k = 0;
    assert!(list.len() < 256);
    while k < list.len() {
        let w = list[k];
        let mut c = 0;
        while c + 1 < w.len() {
            multi |= matches!(w[c], b' ' | b'_' | b'-' | b'.');
            c += 1;
        }
        assert!(!w.is_empty() && w[0].to_ascii_lowercase().is_ascii_lowercase(), "label words start with a letter");
        let l = (w[0].to_ascii_lowercase() - b'a') as usize;
        assert!(l + 1 >= letter, "label words must be sorted by first letter");
        while letter <= l {
            starts[letter] = k as u8;
            letter += 1;
        }
        firsts |= 1 << l;
        k += 1;
    }
    while letter < 27 {
        starts[letter] = list.len() as u8;
        letter += 1;
    }
    Words { list, firsts, starts, multi }
}

impl Words {
    /// The words starting with letter `l` (0 = a).
    fn with_first(&self, l: usize) -> &'static [&'static [u8]] {
        let (Some(&a), Some(&b)) = (self.starts.get(l), self.starts.get(l + 1)) else { return &[] };
        self.list.get(usize::from(a)..usize::from(b)).unwrap_or_default()
    }
}

/// Bytes before a value searched for its label.
pub(crate) const WINDOW: usize = 48;

pub(crate) const SSN: Words =
    words(&[b"ssn", b"social security", b"soc sec", b"soc. sec", b"ss#", b"ss no", b"seguro social"]);
pub(crate) const ITIN: Words = words(&[b"itin", b"taxpayer", b"tin"]);
pub(crate) const SIN: Words = words(&[b"assurance sociale", b"nas", b"sin", b"sin#", b"social insurance"]);
pub(crate) const NHS: Words = words(&[b"health service", b"nhs", b"nhsno", b"nhs#"]);
pub(crate) const NPI: Words =
    words(&[b"npi", b"npi#", b"national provider", b"prescriber", b"provider id", b"provider number"]);
/// Words that, with a valid check digit, make ten digits an NHS number.
pub(crate) const PATIENT: Words = words(&[b"patient", b"paciente", b"pt"]);
pub(crate) const DEA: Words = words(&[b"dea", b"dea#", b"drug enforcement"]);
pub(crate) const NINO: Words =
    words(&[b"insurance number", b"nino", b"ni", b"ni number", b"ni no", b"ni#", b"national insurance", b"nat ins"]);
/// Words before an IBAN (bank account in the languages of IBAN countries).
pub(crate) const IBAN: Words = words(&[
    b"bank account",
    b"bankverbindung",
    b"compte",
    b"conto",
    b"cuenta",
    b"iban",
    b"kontonummer",
    b"rekeningnummer",
    b"rib",
]);
pub(crate) const CARD: Words = words(&[
    b"amex",
    b"card",
    b"credit",
    b"carte",
    b"carta",
    b"cc",
    b"ccn",
    b"cc#",
    b"debit",
    b"kaart",
    b"kreditkarte",
    b"karte",
    b"kartennummer",
    b"mastercard",
    b"pan",
    b"tarjeta",
    b"visa",
]);
pub(crate) const PHONE: Words = words(&[
    b"cell",
    b"cellulare",
    b"cellphone",
    b"call",
    b"contact",
    b"dial",
    b"fax",
    b"fon",
    b"gsm",
    b"handy",
    b"mobile",
    b"mobil",
    b"mobiel",
    "móvil".as_bytes(),
    b"movil",
    b"mob",
    "numéro".as_bytes(),
    "número".as_bytes(),
    b"numero",
    b"phone",
    b"portable",
    b"ring",
    b"rufnummer",
    b"sms",
    b"tel",
    b"tel.",
    "tél".as_bytes(),
    b"telephone",
    "téléphone".as_bytes(),
    b"telefon",
    b"telefoon",
    "teléfono".as_bytes(),
    b"telefono",
    b"text me",
    b"tlf",
    b"whatsapp",
]);
pub(crate) const DOB: Words = words(&[
    b"birth",
    b"born",
    b"bday",
    b"dob",
    b"d.o.b",
    b"date_of_birth",
    b"geburtsdatum",
    b"geboren",
    b"geb.",
    b"geboortedatum",
    b"naissance",
    "né le".as_bytes(),
    "née le".as_bytes(),
    b"nacimiento",
    b"nacido",
    b"nacida",
    b"nascita",
    b"nato il",
    b"nata il",
]);
pub(crate) const MRN: Words = words(&[
    b"chart number",
    b"chart no",
    b"dossier m\xc3\xa9dical",
    b"dossier patient",
    b"dossiernummer",
    "historia clínica".as_bytes(),
    b"historia clinica",
    b"mrn",
    b"medical record",
    b"med rec",
    "numéro de dossier".as_bytes(),
    b"patient id",
    b"patient no",
    b"patient number",
    b"patientennummer",
]);
pub(crate) const ICD: Words = words(&[
    b"assessment",
    b"condition",
    b"diagnosis",
    b"diagnoses",
    b"diagnosed",
    b"dx",
    b"diagnose",
    b"diagnostic",
    "diagnóstico".as_bytes(),
    b"diagnostico",
    b"diagnosi",
    b"icd",
    b"icd-10",
    b"icd10",
]);
/// Words that say a number is an identifier of something else.
pub(crate) const NOT_PERSONAL: Words = words(&[
    b"barcode",
    b"booking",
    b"build",
    b"bestellung",
    b"case",
    b"commande",
    b"colis",
    b"ean",
    b"facture",
    b"factura",
    b"gtin",
    b"invoice",
    b"item",
    b"incident",
    b"imei",
    b"isbn",
    b"model",
    b"order",
    b"part",
    b"pedido",
    b"ref",
    b"reference",
    b"rechnung",
    b"sku",
    b"shipment",
    b"serial",
    b"sendungsnummer",
    b"ticket",
    b"tracking",
    b"upc",
    b"version",
]);

#[inline]
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// A bit per letter, case-insensitive (0 for anything else).
#[inline]
#[allow(clippy::indexing_slicing)] // a u8 always indexes a [_; 256]
fn letter_bit(c: u8) -> u32 {
    LETTER_BIT[usize::from(c)]
}

#[allow(clippy::indexing_slicing)] // const-evaluated, i < 256
const LETTER_BIT: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let l = (i as u8).to_ascii_lowercase();
        if l.is_ascii_lowercase() {
            t[i] = 1 << (l - b'a');
        }
        i += 1;
    }
    t
};

/// Whether `c` after `pc` starts a word: [`word_start`] with the byte
/// before given.
#[inline]
fn starts_after(pc: u8, c: u8) -> bool {
    !is_alpha(pc) || (pc.is_ascii_lowercase() && c.is_ascii_uppercase())
}

fn is_alpha(c: u8) -> bool {
    c.is_ascii_alphabetic() || c >= 0x80
}

/// `w` at `hay[p..]`: its end in `hay` when it matches.
fn match_at(hay: &[u8], p: usize, w: &[u8]) -> Option<usize> {
    let mut j = p;
    let mut k = 0;
    while let Some(&wc) = w.get(k) {
        let hc = at(hay, j);
        if wc == b' ' {
            if matches!(hc, b' ' | b'_' | b'-' | b'.') {
                j += 1;
            } else if !(hc.is_ascii_uppercase() && at(hay, j.wrapping_sub(1)).is_ascii_lowercase()) {
                return None;
            }
            k += 1;
            continue;
        }
        if hc.to_ascii_lowercase() != wc {
            return None;
        }
        j += 1;
        k += 1;
    }
    Some(j)
}

/// The end of the last of `words` in `hay` (see the module doc), if any.
pub(crate) fn last_word_end(hay: &[u8], words: Words) -> Option<usize> {
    last_end(hay, words, false)
}

/// Whether `p` starts a word in `hay` (not inside one; a camelCase hump is a start).
#[inline]
fn word_start(hay: &[u8], p: usize) -> bool {
    let pc = if p == 0 { 0 } else { at(hay, p - 1) };
    !is_alpha(pc) || (pc.is_ascii_lowercase() && at(hay, p).is_ascii_uppercase())
}

/// The end of the last of `words` matching at word start `p`, if any.
fn match_words(hay: &[u8], p: usize, words: Words, whole: bool) -> Option<usize> {
    let lc = at(hay, p).to_ascii_lowercase();
    let l1 = at(hay, p + 1).to_ascii_lowercase();
    let mut found = None;
    for w in words.with_first(usize::from(lc.wrapping_sub(b'a'))) {
        // Cheap test first: a second letter (not a space) must be the next byte's.
        if w.get(1).is_some_and(|&c| c != b' ' && c != l1) {
            continue;
        }
        let Some(end) = match_at(hay, p, w) else { continue };
        let end = if (w.len() > 4 && !whole) || word_end(hay, p, end) {
            end
        } else if w.len() >= 3 && plural_end(hay, end) {
            end + 1
        } else {
            continue;
        };
        found = Some(found.map_or(end, |f: usize| f.max(end)));
    }
    found
}

/// Whether a word matched at `hay[p..end]` ends there: no letter follows,
/// or a camelCase hump (`ssnNumber`), or an acronym's end (`NHSNumber`,
/// `DEANumber`: an upper-case word followed by a capitalised one).
fn word_end(hay: &[u8], p: usize, end: usize) -> bool {
    let (last, nc) = (at(hay, end.saturating_sub(1)), at(hay, end));
    !is_alpha(nc)
        || (last.is_ascii_lowercase() && nc.is_ascii_uppercase())
        || (nc.is_ascii_uppercase()
            && at(hay, end + 1).is_ascii_lowercase()
            && hay.get(p..end).is_some_and(|w| w.iter().all(|c| !c.is_ascii_lowercase())))
}

/// A plural `s` at `end` that ends a member name (`npis:`, `NPIs=`,
/// `ssns"`, the end of a key): prose plurals (`pans`, `calls`) are no label.
fn plural_end(hay: &[u8], end: usize) -> bool {
    let last = at(hay, end.saturating_sub(1));
    let s_ok = at(hay, end) == b's' || (at(hay, end) == b'S' && last.is_ascii_uppercase());
    let after = at(hay, end + 1);
    s_ok && (end + 1 == hay.len()
        || matches!(after, b':' | b'=' | b'"' | b'\'' | b'_' | b'[')
        || (after.is_ascii_uppercase() && last.is_ascii_alphabetic()))
}

/// [`last_word_end`]; with `whole`, every word must end at a word end.
fn last_end(hay: &[u8], words: Words, whole: bool) -> Option<usize> {
    let mut found = None;
    let mut pc = 0;
    for (p, &c) in hay.iter().enumerate() {
        let before = std::mem::replace(&mut pc, c);
        if letter_bit(c) & words.firsts == 0 || !starts_after(before, c) {
            continue;
        }
        if let Some(end) = match_words(hay, p, words, whole) {
            found = Some(found.map_or(end, |f: usize| f.max(end)));
        }
    }
    found
}

/// Whether one of `words` ends exactly at `e` in `b` (tried from the up to
/// three word starts before `e`, within 24 bytes): cheaper than a window
/// scan when the label must sit right before a value.
pub(crate) fn ends_with_word(b: &[u8], e: usize, words: Words) -> bool {
    let mut p = e;
    for _ in 0..3 {
        while p > 0 && is_alpha(at(b, p - 1)) {
            p -= 1;
        }
        if e - p > 24 || p == e {
            return false;
        }
        let c = at(b, p);
        if letter_bit(c) & words.firsts != 0 && word_start(b, p) {
            let l = usize::from(c.to_ascii_lowercase().wrapping_sub(b'a'));
            if words.with_first(l).iter().any(|w| match_at(b, p, w) == Some(e)) {
                return true;
            }
        }
        // A word before the separator starts a match only of a word that
        // holds one.
        if !words.multi || p == 0 || !matches!(at(b, p - 1), b' ' | b'_' | b'-' | b'.') {
            return false;
        }
        p -= 1;
    }
    false
}

/// Whether any of `words` occurs in `hay`.
pub(crate) fn has_word(hay: &[u8], words: Words) -> bool {
    last_word_end(hay, words).is_some()
}

/// Distance from a label to the value at `start`: bytes between the end of
/// the nearest label in the [`WINDOW`] before it and `start`, or [`KEY`]
/// when only the member name (`key`) says it.
pub(crate) fn distance(b: &[u8], start: usize, key: &[u8], words: Words) -> Option<usize> {
    let from = window_start(b, start, WINDOW);
    if let Some(end) = b.get(from..start).and_then(|w| last_word_end(w, words)) {
        if past_fence(b, from, start, from + end) {
            return Some(start - (from + end));
        }
    }
    has_word(key, words).then_some(KEY)
}

/// Where a window of `len` bytes before `start` begins: never inside a word
/// (the tail of "spring" is not "ring").
fn window_start(b: &[u8], start: usize, len: usize) -> usize {
    let mut from = start.saturating_sub(len);
    while from > 0 && from < start && is_alpha(at(b, from - 1)) {
        from += 1;
    }
    from
}

/// Whether a label ending at `end` in the window `b[from..start]` is past
/// the [`fence`] (asked only once a label is found: most windows hold none).
fn past_fence(b: &[u8], from: usize, start: usize, end: usize) -> bool {
    end > fence_after(b, from, end.saturating_sub(1), start)
}

/// Member names that say nothing of their value (`type: mobile` /
/// `value: …` pairs; one-letter names such as `?q=`): a label before them
/// still names the value.
const GENERIC_KEYS: &[&[u8]] = &[b"data", b"nr", b"no", b"number", b"nummer", b"numero", b"text", b"val", b"value"];

/// Elements that hold a value without naming it (`<dd>`, `<td>`, `<span>`):
/// the label is before them (`<dt>`, `<th>`, `<label>`).
const GENERIC_TAGS: &[&[u8]] = &[
    b"a",
    b"b",
    b"br",
    b"code",
    b"dd",
    b"div",
    b"dl",
    b"dt",
    b"em",
    b"i",
    b"input",
    b"label",
    b"li",
    b"p",
    b"pre",
    b"span",
    b"strong",
    b"td",
    b"textarea",
    b"th",
    b"tr",
    b"value",
];

/// A member name that says nothing of its value (`value`, `number`, `data`):
/// the name of the object holding it names the value instead.
pub(crate) fn is_generic_key(name: &str) -> bool {
    in_ci(name.as_bytes(), GENERIC_KEYS)
}

fn in_ci(w: &[u8], list: &[&[u8]]) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(w))
}

fn key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.') || c >= 0x80
}

/// Where the labels that may name the value at `start` begin, in
/// `b[from..start]`: a label names the value right after it, not one past
/// another field. Labels before any of these do not count:
/// - the line before the value's line (a label is on the value's line or
///   right above it);
/// - the nearest member name of another field (`key:`, `key=`, `"key":`,
///   `<key>`), itself included in what counts (`ssn: …` keeps its label);
///   generic names (`value:`, `<td>`) and the attributes of the tag holding
///   the value are no field of their own;
/// - another value: a token of five digits or more (`NHS number is
///   8942376436, bytes: 5735599248`: the label named the first number).
#[cfg(test)]
pub(crate) fn fence(b: &[u8], from: usize, start: usize) -> usize {
    fence_after(b, from, from, start)
}

/// [`fence`], looked for only down to `floor` (a label's end: a fence before
/// it does not matter); below `floor` the answer is at most `floor`.
fn fence_after(b: &[u8], from: usize, floor: usize, start: usize) -> usize {
    let hay = b.get(from..start).unwrap_or_default();
    let mut f = from;
    if let Some(l1) = memchr::memrchr(b'\n', hay) {
        if let Some(l2) = memchr::memrchr(b'\n', hay.get(..l1).unwrap_or_default()) {
            f = from + l2 + 1;
        }
    }
    let mut k = start;
    // Digits in the token being walked back over, and whether it touches the value.
    let mut digits = 0usize;
    let mut token_end = start;
    let mut in_tag = false;
    while k > f.max(floor) {
        k -= 1;
        let c = at(b, k);
        if c.is_ascii_digit() {
            digits += 1;
            continue;
        }
        if c.is_ascii_whitespace() || matches!(c, b',' | b';' | b'"' | b'\'' | b'<' | b'>' | b'=' | b'(' | b'[' | b'{')
        {
            if digits >= 5 && token_end < start {
                return token_end;
            }
            digits = 0;
            token_end = k;
        } else if !(key_byte(c) || matches!(c, b'/' | b':' | b'+' | b')')) {
            digits = 0;
            token_end = k;
        }
        match c {
            b'>' => {
                // An opening tag right before: its name is a member name.
                let open = b.get(f..k).and_then(|t| memchr::memrchr(b'<', t)).map(|o| f + o);
                if let Some(o) = open {
                    let ne = (o + 1..k).find(|&j| !key_byte(at(b, j))).unwrap_or(k);
                    let name = b.get(o + 1..ne).unwrap_or_default();
                    if !name.is_empty() && !in_ci(name, GENERIC_TAGS) && at(b, o + 1) != b'/' {
                        return o + 1;
                    }
                }
            }
            b'<' => in_tag = false,
            b':' | b'=' if !in_tag => {
                if at(b, k + 1) == b'/' || at(b, k + 1) == b':' || (k > 0 && at(b, k - 1) == b':') {
                    continue;
                }
                let mut e = k;
                while e > f && matches!(at(b, e - 1), b' ' | b'"' | b'\'') {
                    e -= 1;
                }
                let mut t0 = e;
                while t0 > f && key_byte(at(b, t0 - 1)) {
                    t0 -= 1;
                }
                if t0 == e || at(b, t0).is_ascii_digit() {
                    continue;
                }
                let mut p = t0;
                while p > f && matches!(at(b, p - 1), b' ' | b'"' | b'\'' | b'\t') {
                    p -= 1;
                }
                let before = if p == 0 { b'\n' } else { at(b, p - 1) };
                let sep =
                    matches!(before, b'\n' | b'\r' | b',' | b';' | b'{' | b'&' | b'?' | b'|' | b'[' | b'<' | b'-');
                // Inside a tag (`<input name="x" value="…">`) attributes are one field;
                // its `<` may be before the window (a long element name, attributes between).
                if b.get(t0.saturating_sub(TAG_BACK).min(f)..t0).is_some_and(|t| {
                    let lt = memchr::memrchr(b'<', t);
                    lt.is_some_and(|l| memchr::memrchr(b'>', t).is_none_or(|g| g < l))
                }) {
                    in_tag = true;
                    continue;
                }
                let name = b.get(t0..e).unwrap_or_default();
                // One letter (`?q=`) names no field.
                if (sep || c == b'=' || p == f) && name.len() > 1 && !in_ci(name, GENERIC_KEYS) {
                    return t0;
                }
            }
            _ => {}
        }
    }
    f
}

/// How far before an attribute its tag's `<` is looked for.
const TAG_BACK: usize = 256;

/// The [`distance`] of a label given by the member name.
pub(crate) const KEY: usize = WINDOW + 1;

/// A label right before the value (within `near` bytes), or the member name.
pub(crate) fn close(b: &[u8], start: usize, key: &[u8], words: Words, near: usize) -> bool {
    distance(b, start, key, words).is_some_and(|d| d <= near || d == KEY)
}

/// Of several `(entity, words)`, the entity whose label is nearest, and its
/// distance (one pass over the window for all of them).
pub(crate) fn nearest(b: &[u8], start: usize, key: &[u8], cands: &[(u16, Words)]) -> Option<(u16, usize)> {
    let from = window_start(b, start, WINDOW);
    let hay = b.get(from..start).unwrap_or_default();
    let all = cands.iter().fold(0u32, |m, (_, w)| m | w.firsts);
    // (end of the nearest label so far, its entity)
    let mut best: Option<(usize, u16)> = None;
    let mut pc = 0;
    for (p, &c) in hay.iter().enumerate() {
        let before = std::mem::replace(&mut pc, c);
        let bit = letter_bit(c);
        if bit & all == 0 || !starts_after(before, c) {
            continue;
        }
        for &(ent, w) in cands {
            if bit & w.firsts == 0 {
                continue;
            }
            if let Some(end) = match_words(hay, p, w, false) {
                if best.is_none_or(|(be, _)| end > be) {
                    best = Some((end, ent));
                }
            }
        }
    }
    if let Some((end, ent)) = best.filter(|&(e, _)| past_fence(b, from, start, from + e)) {
        return Some((ent, start - (from + end)));
    }
    // In a member name the last label is the head (`numero_carte`,
    // `número de historia clínica`, `patient_phone`).
    let mut in_key: Option<(usize, u16)> = None;
    for &(ent, w) in cands {
        if let Some(end) = last_word_end(key, w) {
            if in_key.is_none_or(|(be, _)| end > be) {
                in_key = Some((end, ent));
            }
        }
    }
    in_key.map(|(_, ent)| (ent, KEY))
}

/// An identifier word right before `start` (within 24 bytes), and no
/// nearer label of `own`.
pub(crate) fn says_identifier(b: &[u8], start: usize, key: &[u8], own: Words) -> bool {
    identifier_nearer(b, start, key, distance(b, start, key, own))
}

/// An identifier word right before `start` (within 24 bytes) nearer than a
/// label at distance `label`; or, with no label, one in the member name.
pub(crate) fn identifier_nearer(b: &[u8], start: usize, key: &[u8], label: Option<usize>) -> bool {
    let from = window_start(b, start, 24);
    let found = b.get(from..start).and_then(|w| last_end(w, NOT_PERSONAL, true));
    match found.filter(|&e| past_fence(b, from, start, from + e)) {
        Some(id_end) => label.is_none_or(|d| d > start - (from + id_end)),
        None => label.is_none() && !key.is_empty() && last_end(key, NOT_PERSONAL, true).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_match_at_word_starts_across_separators_and_humps() {
        assert!(has_word(b"socialSecurityNumber", SSN));
        assert!(has_word(b"social_security_no", SSN));
        assert!(has_word(b"my SSN:", SSN));
        assert!(!has_word(b"classnote", SSN));
        assert!(has_word(b"ni_number", NINO));
        assert!(!has_word(b"nino's", words(&[])));
        assert!(has_word(b"Geburtsdatum:", DOB));
        assert!(has_word(b"date de naissance", DOB));
        assert!(!has_word(b"mission", SIN));
        assert!(has_word(b"SIN#", SIN));
        assert!(has_word(b"kaartnummer", CARD), "Dutch: card number");
        assert!(!has_word(b"kaa", CARD));
    }

    #[test]
    fn only_words_holding_a_separator_match_across_words() {
        let single = words(&[b"dr", b"dr.", b"mr", b"tel."]);
        let multi = words(&[b"my name is", b"ss no"]);
        assert!(!single.multi && multi.multi && SSN.multi && !ITIN.multi);
        assert!(ends_with_word(b"with Dr", 7, single));
        assert!(ends_with_word(b"call tel", 8, words(&[b"tel"])));
        assert!(!ends_with_word(b"dr x", 4, single));
        assert!(ends_with_word(b"hello, my name is", 17, multi));
        assert!(ends_with_word(b"my_name_is", 10, multi));
        assert!(ends_with_word(b"the ss no", 9, multi));
        assert!(!ends_with_word(b"my name", 7, multi));
    }

    #[test]
    fn acronyms_and_plurals_of_member_names_are_labels() {
        assert!(has_word(b"NHSNumber", NHS));
        assert!(has_word(b"DEANumber", DEA));
        assert!(has_word(b"patientNHSNumber", NHS));
        assert!(!has_word(b"DEAN", DEA), "an upper-case word goes on");
        assert!(!has_word(b"Deanery", DEA));
        assert!(has_word(b"npis", NPI));
        assert!(has_word(b"  npis:\n    - ", NPI));
        assert!(has_word(b"NPIs=", NPI));
        assert!(has_word(b"ssns_list", SSN));
        assert!(!has_word(b"two pans of water ", CARD), "a plural in prose");
        assert!(!has_word(b"sins ", SIN));
        assert!(!has_word(b"nis:", NINO), "two-letter words take no plural");
    }

    #[test]
    fn the_nearest_label_decides() {
        let t = b"NHS number 1, NPI ";
        let cands: &[(u16, Words)] = &[(7, NHS), (5, NPI)];
        assert_eq!(nearest(t, t.len(), b"", cands), Some((5, 1)));
        assert_eq!(nearest(b"nothing here ", 13, b"nhs_number", cands), Some((7, KEY)));
        assert_eq!(nearest(b"nothing here ", 13, b"", cands), None);
        let both: &[(u16, Words)] = &[(1, PHONE), (2, MRN)];
        assert_eq!(nearest(b"", 0, "número de historia clínica".as_bytes(), both), Some((2, KEY)));
        assert_eq!(nearest(b"", 0, b"mrn_phone", both), Some((1, KEY)));
    }

    /// What is left of `t` for labels of a value at its end.
    fn seen(t: &str) -> &str {
        &t[fence(t.as_bytes(), 0, t.len())..]
    }

    #[test]
    fn a_label_names_the_value_after_it_not_one_past_another_field() {
        // Member names of other fields.
        assert_eq!(seen("contacts:\n    - type: aws_account\n      value: \""), "type: aws_account\n      value: \"");
        assert_eq!(seen("phone=1, account_id="), "account_id=");
        assert_eq!(seen("{\"logger\": \"svc.contact\", \"aws_account\": \""), "aws_account\": \"");
        assert_eq!(seen("patient_mrn = '707558' AND zip = '"), "zip = '");
        assert_eq!(seen("<cc_number>2711</cc_number>\n  <aws_account>"), "aws_account>");
        assert_eq!(seen("'cardNumber': '3468', 'imei': '"), "imei': '");
        // Its own name, generic names and a tag's attributes keep the label.
        assert_eq!(seen("x\nssn: "), "ssn: ");
        assert_eq!(seen("type: mobile\n  value: "), "type: mobile\n  value: ");
        assert_eq!(
            seen("<label for=\"ssn\">SSN</label>\n  <input type=\"text\" name=\"q\" value=\""),
            "<label for=\"ssn\">SSN</label>\n  <input type=\"text\" name=\"q\" value=\""
        );
        assert_eq!(seen("<dt>NHS number</dt>\n  <dd>"), "<dt>NHS number</dt>\n  <dd>");
        // The tag's `<` before the window: its attributes are still one field.
        let t = "<r>\n  <national_insurance_number verified=\"false\" value=\"";
        assert_eq!(
            &t[fence(t.as_bytes(), t.len() - 48, t.len())..],
            "tional_insurance_number verified=\"false\" value=\""
        );
        let t = "<r>\n  <n a=\"1\">\n verified=\"false\" value=\"";
        assert_eq!(
            &t[fence(t.as_bytes(), t.len() - 24, t.len())..],
            "verified=\"false\" value=\"",
            "past a closed tag: fields of text"
        );
        assert_eq!(seen("The SSN of the patient: "), "The SSN of the patient: ");
        assert_eq!(seen("see https://x.org/a?b "), "see https://x.org/a?b ");
        // Two lines up is another field.
        assert_eq!(seen("<div class=\"card\">\n<dt>IMEI</dt>\n  <dd>"), "<dt>IMEI</dt>\n  <dd>");
        // Another value between.
        assert_eq!(seen("NHS number is 8942376436, bytes "), ", bytes ");
        assert_eq!(seen("née le : 31/08/1966. Le version est "), " Le version est ");
        assert_eq!(seen("card (16 digits): "), "card (16 digits): ");
    }

    #[test]
    fn identifier_words_yield_to_a_nearer_label() {
        assert!(says_identifier(b"ticket ", 7, b"", PHONE));
        assert!(!says_identifier(b"the building. see ", 18, b"", PHONE));
        let t = b"Seem position piece market spring blood gun. The job ran at ";
        assert_eq!(distance(t, t.len(), b"", PHONE), None);
        assert!(!says_identifier(b"order note, call ", 17, b"", PHONE));
        assert!(says_identifier(b"", 0, b"order_id", PHONE));
        assert!(!says_identifier(b"", 0, b"order_phone", PHONE));
    }
}
