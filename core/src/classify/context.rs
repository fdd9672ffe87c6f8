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
}

/// [`Words`] of a list sorted by first letter (checked at compile time).
#[allow(clippy::indexing_slicing)] // const-evaluated, within bounds
pub(crate) const fn words(list: &'static [&'static [u8]]) -> Words {
    let mut firsts = 0u32;
    let mut starts = [0u8; 27];
    let mut letter = 0usize;
    let mut k = 0;
    assert!(list.len() < 256);
    while k < list.len() {
        let w = list[k];
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
    Words { list, firsts, starts }
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
    b"dossier",
    "historia clínica".as_bytes(),
    b"historia clinica",
    b"mrn",
    b"medical record",
    b"med rec",
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
    b"booking",
    b"build",
    b"bestellung",
    b"case",
    b"commande",
    b"colis",
    b"facture",
    b"factura",
    b"invoice",
    b"item",
    b"incident",
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
    b"version",
]);

#[inline]
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// A bit per letter, case-insensitive (0 for anything else).
fn letter_bit(c: u8) -> u32 {
    let l = c.to_ascii_lowercase();
    if l.is_ascii_lowercase() {
        1 << (l - b'a')
    } else {
        0
    }
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
    let mut found = None;
    for w in words.with_first(usize::from(lc.wrapping_sub(b'a'))) {
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
    for p in 0..hay.len() {
        if letter_bit(at(hay, p)) & words.firsts == 0 || !word_start(hay, p) {
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
        while p > 0 && at(b, p - 1).is_ascii_alphabetic() {
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
        if p == 0 || !matches!(at(b, p - 1), b' ' | b'_' | b'-' | b'.') {
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
        return Some(start - (from + end));
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
    for p in 0..hay.len() {
        let bit = letter_bit(at(hay, p));
        if bit & all == 0 || !word_start(hay, p) {
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
    if let Some((end, ent)) = best {
        return Some((ent, start - (from + end)));
    }
    cands.iter().find(|(_, w)| has_word(key, *w)).map(|&(ent, _)| (ent, KEY))
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
    match b.get(from..start).and_then(|w| last_end(w, NOT_PERSONAL, true)) {
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
