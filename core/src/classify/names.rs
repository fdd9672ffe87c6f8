//! Person names and street addresses in free text.
//!
//! Names: two to four capitalised words (with the particles of European
//! surnames: `de la`, `van der`, `O'`, hyphenated parts), after a name label
//! (`name`, `patient`, `Mr.`, `Frau`, `Madame`, `Sr.`, `Dear`, `my name is`,
//! a `name` member...), or without one when the first word is a common given
//! name of the dictionary below and the second is not a place or
//! organisation word (`Austin Texas`, `Charles River` stay). An honorific
//! right before takes a single surname (`Dr. Weber`).
//!
//! Addresses: US/UK `<number> <words> <street suffix>` (USPS suffixes, with
//! `Apt.`/`Suite`/`Flat`/`Studio` units), German `<…straße|weg|gasse|allee|
//! platz|ring…> <number>`, French `<number>, rue|avenue|boulevard… <words>`;
//! after an address label, a number and capitalised words are enough.

use super::context::{self, words, Words};

#[inline]
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

pub(crate) const NAME_LABELS: Words = words(&[
    b"appelle",
    b"chiamo",
    b"client",
    b"contact person",
    b"customer",
    b"dear",
    b"dr",
    b"dr.",
    b"frau",
    b"full name",
    b"fullname",
    b"heisse",
    "heiße".as_bytes(),
    b"herr",
    b"llamo",
    b"madame",
    b"mademoiselle",
    b"member",
    b"miss",
    b"mlle",
    b"mme",
    b"monsieur",
    b"mr",
    b"mr.",
    b"mrs",
    b"mrs.",
    b"ms",
    b"ms.",
    b"my name is",
    b"naam",
    b"name",
    b"nom",
    b"nombre",
    b"nome",
    b"patient",
    b"paciente",
    b"patiente",
    b"patientin",
    "patiënt".as_bytes(),
    b"paziente",
    b"signed",
    b"sr",
    b"sr.",
    b"sra",
    b"sra.",
]);

/// Honorifics: a single capitalised word after one is a surname.
const HONORIFICS: Words = words(&[
    b"dr",
    b"dr.",
    b"frau",
    b"herr",
    b"madame",
    b"miss",
    b"mlle",
    b"mme",
    b"monsieur",
    b"mr",
    b"mr.",
    b"mrs",
    b"mrs.",
    b"ms",
    b"ms.",
    b"prof",
    b"prof.",
    b"sr",
    b"sr.",
    b"sra",
    b"sra.",
]);

pub(crate) const ADDRESS_LABELS: Words = words(&[
    b"address",
    b"adresse",
    b"anschrift",
    "dirección".as_bytes(),
    b"direccion",
    b"domicile",
    b"home address",
    b"indirizzo",
    b"lives at",
    b"located at",
    b"residence",
    b"ship to",
    b"street",
    b"wohnhaft",
]);

/// Lower-case particles inside surnames.
const PARTICLES: &[&[u8]] = &[
    b"af", b"al", b"bin", b"d'", b"da", b"das", b"de", b"del", b"della", b"den", b"der", b"des", b"di", b"do", b"dos",
    b"du", b"el", b"la", b"le", b"te", b"ten", b"ter", b"van", b"von", b"y", b"zu",
];

/// Capitalised words that end a name: the rest is a place or an organisation.
const NOT_SURNAME: &[&[u8]] = &[
    b"avenue",
    b"bank",
    b"bay",
    b"beach",
    b"boulevard",
    b"bridge",
    b"center",
    b"centre",
    b"city",
    b"clinic",
    b"college",
    b"company",
    b"corp",
    b"county",
    b"court",
    b"drive",
    b"eve",
    b"falls",
    b"group",
    b"hall",
    b"hill",
    b"hole",
    b"hospital",
    b"hotel",
    b"inc",
    b"institute",
    b"island",
    b"italy",
    b"labs",
    b"lake",
    b"lane",
    b"ltd",
    b"mall",
    b"monday",
    b"mountain",
    b"musical",
    b"park",
    b"place",
    b"river",
    b"road",
    b"school",
    b"square",
    b"station",
    b"street",
    b"tech",
    b"texas",
    b"tower",
    b"university",
    b"valley",
    b"way",
];

/// Capitalised words that are not names at the start of one.
const NOT_FIRST: &[&[u8]] = &[
    b"a", b"about", b"all", b"an", b"and", b"are", b"as", b"at", b"can", b"could", b"dear", b"do", b"for", b"from",
    b"good", b"he", b"hello", b"hi", b"his", b"i", b"if", b"in", b"is", b"it", b"my", b"name", b"no", b"not", b"of",
    b"on", b"or", b"our", b"patient", b"please", b"she", b"so", b"thank", b"thanks", b"that", b"the", b"their",
    b"there", b"these", b"they", b"this", b"to", b"we", b"what", b"when", b"where", b"who", b"why", b"will", b"with",
    b"yes", b"you", b"your",
];

/// Common given names (English, German, French, Spanish, Italian, Dutch),
/// lower case, sorted: the evidence for a name with no label.
const FIRST_NAMES: &[&str] = &include!("first_names.in");

fn lower_eq(a: &[u8], w: &[u8]) -> bool {
    a.len() == w.len() && a.iter().zip(w).all(|(x, y)| x.to_ascii_lowercase() == *y)
}

fn in_list(word: &[u8], list: &[&[u8]]) -> bool {
    list.iter().any(|w| lower_eq(word, w))
}

fn is_first_name(word: &[u8]) -> bool {
    let mut buf = [0u8; 24];
    if word.len() > buf.len() {
        return false;
    }
    for (d, s) in buf.iter_mut().zip(word) {
        *d = s.to_ascii_lowercase();
    }
    let Some(w) = buf.get(..word.len()) else { return false };
    FIRST_NAMES.binary_search_by(|n| n.as_bytes().cmp(w)).is_ok()
}

/// A letter of a name: ASCII letters and any byte of a multi-byte UTF-8
/// character (accented letters).
fn name_byte(c: u8) -> bool {
    c.is_ascii_alphabetic() || c >= 0x80
}

/// An upper-case letter at `i` (ASCII, or Latin-1 capitals `À`–`Þ`).
fn upper_at(b: &[u8], i: usize) -> bool {
    let c = at(b, i);
    c.is_ascii_uppercase() || (c == 0xC3 && (0x80..=0x9E).contains(&at(b, i + 1)) && at(b, i + 1) != 0x97)
}

/// A capitalised word at `i` (`O'Neill`, `Hudson-Oliver`, `Müller`): its end.
fn cap_word(b: &[u8], i: usize) -> Option<usize> {
    if !upper_at(b, i) {
        return None;
    }
    let rest = b.get(i + 1..).unwrap_or_default();
    let j = i + 1 + rest.iter().position(|&c| !name_byte(c)).unwrap_or(rest.len());
    // O'Neill, D'Angelo
    if at(b, j) == b'\'' && upper_at(b, j + 1) && j - i == 1 {
        return cap_word(b, j + 1);
    }
    // All capitals (an acronym) or one letter is not a name word.
    if j - i < 2 || at(b, i + 1).is_ascii_uppercase() {
        return None;
    }
    // Hudson-Oliver, Momberg-van Laarhoven
    if at(b, j) == b'-' {
        if let Some(e) = cap_word(b, j + 1) {
            return Some(e);
        }
        let pe = particle(b, j + 1);
        if let Some(e) = pe.filter(|&e| at(b, e) == b' ').and_then(|e| cap_word(b, e + 1)) {
            return Some(e);
        }
    }
    Some(j)
}

/// A surname particle at `i` (`van`, `de`, `d'`): its end.
fn particle(b: &[u8], i: usize) -> Option<usize> {
    // Cheap test first: particles start with one of these letters and are
    // at most five letters long.
    if !matches!(at(b, i), b'a' | b'b' | b'd' | b'e' | b'l' | b't' | b'v' | b'y' | b'z') {
        return None;
    }
    let mut j = i;
    while at(b, j).is_ascii_lowercase() {
        j += 1;
    }
    if at(b, j) == b'\'' {
        j += 1;
    }
    let w = b.get(i..j)?;
    (!w.is_empty() && w.len() <= 5 && PARTICLES.contains(&w)).then_some(j)
}

/// The name words from `i`: `(end, words)`, up to four words, particles
/// between them.
fn name_run(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut end = cap_word(b, i)?;
    let mut n = 1;
    while n < 4 {
        let mut j = end;
        if at(b, j) != b' ' {
            break;
        }
        j += 1;
        // particles: `de la`, `van der`, `d' Heripon`
        let mut k = j;
        let mut parts = 0;
        while let Some(pe) = particle(b, k) {
            parts += 1;
            k = pe;
            if at(b, k) == b' ' {
                k += 1;
            } else if at(b, k - 1) != b'\'' {
                break;
            }
            if parts > 2 {
                break;
            }
        }
        let k = past_initial(b, k);
        let Some(we) = cap_word(b, k) else { break };
        if in_list(b.get(k..we).unwrap_or_default(), NOT_SURNAME) {
            break;
        }
        end = we;
        n += 1;
    }
    Some((end, n))
}

/// Abbreviations an honorific may end with a `.` (a `.` after any other
/// word ends a sentence: "Herr. Kaufen" is not Mr Kaufen).
const ABBREVIATED: &[&[u8]] = &[b"dr", b"mlle", b"mme", b"mr", b"mrs", b"ms", b"prof", b"sr", b"sra", b"srta"];

/// A label of `words` ending right before `i`, only separators between
/// (`: `, ` - `, `=`, `(`, quotes): a label that ends a sentence does not
/// name what starts the next one.
fn label_right_before(b: &[u8], i: usize, words: Words) -> bool {
    label_ends_before(b, i, words, true) || {
        let m = markup_before(b, i);
        m != i && label_ends_before(b, m, words, false)
    }
}

/// [`label_right_before`] with nothing skipped but separators (one at least
/// with `sep`).
fn label_ends_before(b: &[u8], i: usize, words: Words, sep: bool) -> bool {
    let mut j = i;
    while j > 0
        && i - j < 4
        && matches!(at(b, j - 1), b' ' | b':' | b'=' | b'-' | b'(' | b'"' | b'\'' | b'\t' | b'/' | b'>')
    {
        j -= 1;
    }
    if sep && j == i && i > 0 {
        return false;
    }
    // A label in plural, as a list's name (`names:`, `Noms`).
    if at(b, j.wrapping_sub(1)) == b's' && context::ends_with_word(b, j - 1, words) && j >= 2 && at(b, j - 2) != b's' {
        return true;
    }
    // `name is X`, `Name ist X`, `nom est X`: one copula between.
    if matches!(at(b, j.wrapping_sub(1)), b's' | b't' | 0xA8) {
        for cop in [&b" is"[..], b" ist", b" est", b" es", b" was", b" \xc3\xa8"] {
            if j > cop.len() && b.get(j - cop.len()..j) == Some(cop) {
                j -= cop.len();
                break;
            }
        }
    }
    let mut e = j;
    if j > 0 && at(b, j - 1) == b'.' {
        let mut k = j - 1;
        while k > 0 && at(b, k - 1).is_ascii_alphabetic() {
            k -= 1;
        }
        let w = b.get(k..j - 1).unwrap_or_default();
        if w.len() > 4 || !in_list(w, ABBREVIATED) {
            return false;
        }
        e = j - 1;
    }
    context::ends_with_word(b, e, words)
}

/// Words after which an honorific addresses someone (`with Mr. Weber`,
/// `an Frau Müller`): elsewhere (`answer Mrs. Canadian SIN`) a one-word
/// name is too weak.
const BEFORE_HONORIFIC: &[&[u8]] = &[
    b"an",
    b"and",
    b"avec",
    b"by",
    b"call",
    b"cc",
    b"con",
    b"dear",
    b"de",
    b"for",
    b"from",
    b"f\xc3\xbcr",
    b"is",
    b"mit",
    b"of",
    b"para",
    b"patient",
    b"pour",
    b"saw",
    b"see",
    b"to",
    b"von",
    b"with",
];

/// An honorific right before `i` (`Mr. `, `Dr.:`, `Frau `), itself at the
/// start of a text, a sentence or a line, or after an addressing word.
fn after_honorific(b: &[u8], i: usize) -> bool {
    // Cheap test first (this runs at most capitalised words): the word
    // before, past `: ` and a `.`, is short and starts like an honorific.
    let mut j = i;
    while j > 0 && matches!(at(b, j - 1), b' ' | b':') && i - j < 2 {
        j -= 1;
    }
    if j == i || j == 0 {
        return false;
    }
    let e = if at(b, j - 1) == b'.' { j - 1 } else { j };
    // Up to ten letters back (more is no honorific).
    let letters = b.get(e.saturating_sub(10)..e).unwrap_or_default();
    let k = e - letters.iter().rev().take_while(|c| c.is_ascii_alphabetic()).count();
    if e == k || e - k > 9 || !matches!(at(b, k).to_ascii_lowercase(), b'd' | b'f' | b'h' | b'm' | b'p' | b's') {
        return false;
    }
    if !label_right_before(b, i, HONORIFICS) {
        return false;
    }
    // Back over the separators, the honorific and the space before it.
    let mut j = i;
    while j > 0 && !at(b, j - 1).is_ascii_alphabetic() && i - j < 4 {
        j -= 1;
    }
    while j > 0 && at(b, j - 1).is_ascii_alphabetic() {
        j -= 1;
    }
    let mut k = j;
    while k > 0 && at(b, k - 1) == b' ' {
        k -= 1;
    }
    if k == 0 || matches!(at(b, k - 1), b'.' | b'\n' | b':' | b'(' | b'"' | b',' | b';' | b'!' | b'?') {
        return true;
    }
    let e = k;
    while k > 0 && name_byte(at(b, k - 1)) {
        k -= 1;
    }
    in_list(b.get(k..e).unwrap_or_default(), BEFORE_HONORIFIC)
}

/// Capitalised words (and particles) of a street name from `i`, up to
/// five: `(end, words)`.
fn cap_run(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut end = cap_word(b, i)?;
    let mut n = 1;
    while n < 5 && at(b, end) == b' ' {
        let mut k = end + 1;
        while let Some(pe) = particle(b, k) {
            k = if at(b, pe) == b' ' { pe + 1 } else { pe };
        }
        let k = past_initial(b, k);
        let Some(we) = cap_word(b, k) else { break };
        end = we;
        n += 1;
    }
    Some((end, n))
}

/// Where the text before `i` is, past markup between a label and its value:
/// up to three tags (`</th><td>`, `">` after an attribute is not one), and
/// a list item on the next line after a `:` (`names:\n    - `).
fn markup_before(b: &[u8], i: usize) -> usize {
    let mut j = i;
    for _ in 0..3 {
        if at(b, j.wrapping_sub(1)) != b'>' || j < 2 {
            break;
        }
        let lo = j.saturating_sub(24);
        let Some(lt) = b.get(lo..j - 1).and_then(|t| memchr::memrchr(b'<', t)).map(|k| lo + k) else { break };
        if b.get(lt..j).is_some_and(|t| t.contains(&b'"') || t.contains(&b'=')) {
            break;
        }
        j = lt;
        while j > 0 && at(b, j - 1).is_ascii_whitespace() {
            j -= 1;
        }
    }
    // `names:\n    - X`
    let mut k = j;
    while k > 0 && matches!(at(b, k - 1), b' ' | b'-') && j - k < 8 {
        k -= 1;
    }
    if k < j && at(b, k.wrapping_sub(1)) == b'\n' {
        let mut m = k - 1;
        if at(b, m.wrapping_sub(1)) == b'\r' {
            m -= 1;
        }
        if at(b, m.wrapping_sub(1)) == b':' {
            return m;
        }
    }
    j
}

/// The capitalised word at `i` continues one before it that is not at a
/// sentence start (`from Santa Maria Novella`): a place or organisation
/// whose name holds a given name.
fn inside_proper_noun(b: &[u8], i: usize) -> bool {
    if i < 3 || at(b, i - 1) != b' ' {
        return false;
    }
    let mut k = i - 1;
    while k > 0 && name_byte(at(b, k - 1)) {
        k -= 1;
    }
    if k == i - 1 || !upper_at(b, k) || k < 2 || at(b, k - 1) != b' ' {
        return false;
    }
    let before = at(b, k - 2);
    before.is_ascii_lowercase() || before >= 0x80
}

/// A middle initial at `k` (`R. ` before a capitalised word): past it.
fn past_initial(b: &[u8], k: usize) -> usize {
    if at(b, k).is_ascii_uppercase() && at(b, k + 1) == b'.' && at(b, k + 2) == b' ' && upper_at(b, k + 3) {
        k + 3
    } else {
        k
    }
}

/// Last words of the line a signature's name follows (`Best regards,`,
/// `Mit freundlichen Grüßen`, `Un saludo,`), lower case.
const SIGN_OFFS: &[&[u8]] = &[
    b"atentamente",
    b"best",
    b"cheers",
    b"cordiales",
    b"cordialement",
    b"groet",
    b"groeten",
    "grüße".as_bytes(),
    "grüßen".as_bytes(),
    b"grusse",
    b"regards",
    b"saludo",
    b"saludos",
    b"salutations",
    b"saluti",
    b"sincerely",
    b"thanks",
    b"vous",
    b"wishes",
];

/// The line before `i` is a sign-off (or the `-- ` signature mark) and `i`
/// starts the next one.
fn after_sign_off(b: &[u8], i: usize) -> bool {
    if i < 2 || at(b, i - 1) != b'\n' {
        return false;
    }
    let mut e = i - 1;
    while e > 0 && matches!(at(b, e - 1), b'\r' | b' ' | b',' | b'!') {
        e -= 1;
    }
    let mut s = e;
    while s > 0 && (at(b, s - 1).is_ascii_alphabetic() || at(b, s - 1) >= 0x80 || at(b, s - 1) == b'-') {
        s -= 1;
    }
    let w = b.get(s..e).unwrap_or_default();
    w == b"--"
        || SIGN_OFFS.iter().any(|x| x.len() == w.len() && x.iter().zip(w).all(|(a, c)| *a == c.to_ascii_lowercase()))
}

/// A display name before an address (`"Jane Doe" <jane@example.com>`,
/// `Jane Doe <jane@…>`): `end` is followed by `"`, ` <` and an address.
fn before_address(b: &[u8], end: usize) -> bool {
    let j = end + usize::from(at(b, end) == b'"');
    if at(b, j) != b' ' || at(b, j + 1) != b'<' {
        return false;
    }
    let tail = b.get(j + 2..(j + 130).min(b.len())).unwrap_or_default();
    memchr::memchr(b'>', tail).is_some_and(|gt| tail.get(..gt).is_some_and(|a| a.contains(&b'@')))
}

/// `value="` of a form field or element whose `name`/`id` says name
/// (`<input name="customer_name" value="Jane Doe">`).
fn field_names_it(b: &[u8], i: usize) -> bool {
    let q = at(b, i.wrapping_sub(1));
    if !matches!(q, b'"' | b'\'') || i < 7 || b.get(i - 7..i - 1) != Some(&b"value="[..]) {
        return false;
    }
    let lo = i.saturating_sub(256);
    let tag = b.get(lo..i).unwrap_or_default();
    let Some(open) = memchr::memrchr(b'<', tag) else { return false };
    let tag = tag.get(open..).unwrap_or_default();
    if tag.contains(&b'>') {
        return false;
    }
    // `<name verified="true" value="…">`: the element's own name.
    let ne = tag.iter().skip(1).position(|c| !(c.is_ascii_alphanumeric() || *c == b'_')).map_or(0, |k| k + 1);
    if tag.get(1..ne).is_some_and(|n| context::has_word(n, NAME_LABELS)) {
        return true;
    }
    [&b"name="[..], b"id="].iter().any(|attr| {
        memchr::memmem::find(tag, attr).is_some_and(|k| {
            let v = tag.get(k + attr.len() + 1..).unwrap_or_default();
            let ve = v.iter().position(|&c| c == b'"' || c == b'\'').unwrap_or(v.len());
            v.get(..ve).is_some_and(|name| context::has_word(name, NAME_LABELS))
        })
    })
}

/// `Boers, Elizabeth` at `i` (the surname's end at `first_end`): the end,
/// when a label says name or the second word is a given name.
fn surname_first(b: &[u8], i: usize, first_end: usize, labelled: impl Fn() -> bool) -> Option<usize> {
    if at(b, first_end) != b',' || at(b, first_end + 1) != b' ' || in_list(b.get(i..first_end)?, NOT_FIRST) {
        return None;
    }
    let gs = first_end + 2;
    let ge = cap_word(b, gs)?;
    if !(is_first_name(b.get(gs..ge)?) || labelled()) {
        return None;
    }
    // A middle initial after the given name: `Boers, Elizabeth R.`
    let mut end = ge;
    if at(b, end) == b' ' && at(b, end + 1).is_ascii_uppercase() && at(b, end + 2) == b'.' {
        end += 3;
    }
    Some(end)
}

/// A person's name starting at the capital at `i`: where it ends.
pub(crate) fn person(b: &[u8], i: usize, key: &[u8], key_says_name: bool) -> Option<usize> {
    let first_end = cap_word(b, i)?;
    let first = b.get(i..first_end)?;
    let labelled = || {
        key_says_name
            || label_right_before(b, i, HONORIFICS)
            || label_right_before(b, i, NAME_LABELS)
            || after_sign_off(b, i)
            || field_names_it(b, i)
    };
    // `Surname, Given`.
    if at(b, first_end) == b',' {
        return surname_first(b, i, first_end, labelled);
    }
    // One word (most capitalised words): only a surname after an honorific.
    let next = first_end + 1;
    let more = at(b, first_end) == b' ' && (upper_at(b, next) || particle(b, next).is_some());
    if !more {
        return after_honorific(b, i).then_some(first_end);
    }
    let labelled = labelled() || cap_run(b, i).is_some_and(|(ce, n)| n >= 2 && before_address(b, ce));
    // After a label, the capitalised words are the name whatever they are;
    // without one, a place or organisation word ends it.
    let (end, n) = if labelled { cap_run(b, i)? } else { name_run(b, i)? };
    if n >= 2 && in_list(first, NOT_FIRST) {
        return None;
    }
    // `Frau Müller`: the name starts after the honorific.
    if n >= 2 && in_list(first, ABBREVIATED)
        || [&b"frau"[..], b"herr", b"madame", b"monsieur", b"miss"].iter().any(|w| lower_eq(first, w))
    {
        return None;
    }
    // A name runs on into more capitalised words only as far as `name_run`
    // took it; more after it is a title or an organisation.
    if n >= 2 && at(b, end) == b' ' && cap_word(b, end + 1).is_some() && n == 4 {
        return None;
    }
    if n == 1 {
        return after_honorific(b, i).then_some(first_end);
    }
    if labelled {
        return Some(end);
    }
    let _ = key;
    if in_list(first, NOT_SURNAME) || inside_proper_noun(b, i) {
        return None;
    }
    is_first_name(first).then_some(end)
}

/// USPS street suffixes (and their plurals by an `s`), lower case.
const STREET_SUFFIXES: &[&[u8]] = &[
    b"alley",
    b"annex",
    b"arcade",
    b"ave",
    b"avenue",
    b"bayou",
    b"beach",
    b"bend",
    b"bluff",
    b"blvd",
    b"bottom",
    b"boulevard",
    b"branch",
    b"bridge",
    b"brook",
    b"burg",
    b"bypass",
    b"camp",
    b"canyon",
    b"cape",
    b"causeway",
    b"center",
    b"centre",
    b"circle",
    b"cir",
    b"cliff",
    b"close",
    b"club",
    b"common",
    b"corner",
    b"course",
    b"court",
    b"cove",
    b"creek",
    b"crescent",
    b"crest",
    b"crossing",
    b"crossroad",
    b"ct",
    b"curve",
    b"dale",
    b"dam",
    b"divide",
    b"dr",
    b"drive",
    b"estate",
    b"expressway",
    b"extension",
    b"fall",
    b"ferry",
    b"field",
    b"flat",
    b"ford",
    b"forest",
    b"forge",
    b"fork",
    b"fort",
    b"freeway",
    b"garden",
    b"gardens",
    b"gateway",
    b"glen",
    b"green",
    b"grove",
    b"harbor",
    b"haven",
    b"heights",
    b"highway",
    b"hill",
    b"hollow",
    b"hwy",
    b"inlet",
    b"island",
    b"isle",
    b"junction",
    b"key",
    b"knoll",
    b"lake",
    b"land",
    b"landing",
    b"lane",
    b"light",
    b"ln",
    b"loaf",
    b"lock",
    b"lodge",
    b"loop",
    b"mall",
    b"manor",
    b"meadow",
    b"mews",
    b"mill",
    b"mission",
    b"motorway",
    b"mount",
    b"mountain",
    b"neck",
    b"orchard",
    b"oval",
    b"overpass",
    b"park",
    b"parkway",
    b"pass",
    b"passage",
    b"path",
    b"pike",
    b"pine",
    b"pl",
    b"place",
    b"plain",
    b"plaza",
    b"point",
    b"port",
    b"prairie",
    b"radial",
    b"ramp",
    b"ranch",
    b"rapid",
    b"rd",
    b"rest",
    b"ridge",
    b"river",
    b"road",
    b"route",
    b"row",
    b"rue",
    b"run",
    b"shoal",
    b"shore",
    b"skyway",
    b"spring",
    b"spur",
    b"square",
    b"st",
    b"station",
    b"stravenue",
    b"stream",
    b"street",
    b"summit",
    b"ter",
    b"terrace",
    b"throughway",
    b"trace",
    b"track",
    b"trafficway",
    b"trail",
    b"trailer",
    b"tunnel",
    b"turnpike",
    b"underpass",
    b"union",
    b"valley",
    b"via",
    b"viaduct",
    b"view",
    b"village",
    b"ville",
    b"vista",
    b"walk",
    b"wall",
    b"way",
    b"well",
    b"wells",
];

pub(crate) fn is_suffix(word: &[u8]) -> bool {
    let w = word.strip_suffix(b".").unwrap_or(word);
    in_list(w, STREET_SUFFIXES)
        || w.len() > 3
            && w.last().is_some_and(|c| c.eq_ignore_ascii_case(&b's'))
            && in_list(w.get(..w.len() - 1).unwrap_or_default(), STREET_SUFFIXES)
}

/// French street types.
const VOIES: &[&[u8]] = &[
    b"all\xc3\xa9e",
    b"allee",
    b"avenue",
    b"bd",
    b"boulevard",
    b"chemin",
    b"cours",
    b"impasse",
    b"passage",
    b"place",
    b"quai",
    b"route",
    b"rue",
    b"sentier",
    b"square",
    b"voie",
];

/// German street endings of a (compound) word.
const STRASSEN: &[&[u8]] = &[
    b"stra\xc3\x9fe",
    b"strasse",
    b"str.",
    b"gasse",
    b"weg",
    b"allee",
    b"platz",
    b"ring",
    b"damm",
    b"ufer",
    b"chaussee",
    b"steig",
    b"pfad",
    b"markt",
    b"promenade",
    b"zeile",
];

fn ends_with_ci(w: &[u8], suf: &[u8]) -> bool {
    w.len() > suf.len() && w.get(w.len() - suf.len()..).is_some_and(|t| t.eq_ignore_ascii_case(suf))
}

/// A house number at `i` (`12`, `12a`, `47-26`, `83/53`): its end.
fn house_number(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    while at(b, j).is_ascii_digit() && j - i < 6 {
        j += 1;
    }
    if j == i || at(b, j).is_ascii_digit() {
        return None;
    }
    if matches!(at(b, j), b'-' | b'/') && at(b, j + 1).is_ascii_digit() {
        j += 1;
        while at(b, j).is_ascii_digit() {
            j += 1;
        }
    }
    if at(b, j).is_ascii_alphabetic() && !at(b, j + 1).is_ascii_alphanumeric() {
        j += 1;
    }
    (!at(b, j).is_ascii_alphanumeric()).then_some(j)
}

/// ` Apt. 915`, ` Suite 158`, ` Puerta 3` after a street: where it ends.
fn unit_after(b: &[u8], e: usize) -> usize {
    if at(b, e) != b' ' {
        return e;
    }
    for w in [&b"Apt. "[..], b"Apt ", b"Suite ", b"Unit ", b"#"] {
        if b.get(e + 1..e + 1 + w.len()) == Some(w) {
            if let Some(ne) = house_number(b, e + 1 + w.len()) {
                return ne;
            }
        }
    }
    e
}

/// A street address starting with the house number at `i` (US/UK, French).
pub(crate) fn address_at_number(b: &[u8], i: usize, key: &[u8]) -> Option<usize> {
    let ne = house_number(b, i)?;
    let mut j = ne;
    let comma = at(b, j) == b',';
    if comma {
        j += 1;
    }
    if at(b, j) != b' ' {
        return None;
    }
    j += 1;
    // French: 12, rue de la Paix
    let ve = {
        let mut k = j;
        while name_byte(at(b, k)) {
            k += 1;
        }
        k
    };
    if in_list(b.get(j..ve).unwrap_or_default(), VOIES) && at(b, ve) == b' ' {
        let mut k = ve + 1;
        while let Some(pe) = particle(b, k) {
            k = if at(b, pe) == b' ' { pe + 1 } else { pe };
        }
        let (e, _) = cap_run(b, k)?;
        return Some(unit_after(b, e));
    }
    if comma {
        return None;
    }
    // US/UK: 734 Rebekah Loop, 49502 Lydia Heights Suite 753
    let mut k = j;
    let mut words = 0;
    let mut last_suffix = None;
    while words < 5 {
        let Some(we) = cap_word(b, k) else { break };
        words += 1;
        if words >= 2 && is_suffix(b.get(k..we).unwrap_or_default()) {
            last_suffix = Some(we);
        }
        if at(b, we) != b' ' {
            break;
        }
        k = we + 1;
    }
    if let Some(e) = last_suffix {
        return Some(unit_after(b, e));
    }
    // After an address label, the number and its capitalised words.
    if words >= 1 && (label_right_before(b, i, ADDRESS_LABELS) || context::has_word(key, ADDRESS_LABELS)) {
        let (e, _) = cap_run(b, j)?;
        return Some(unit_after(b, e));
    }
    None
}

/// `Flat 17, Janet Meadows` / `Studio 8, Woods Canyon` at `i`.
pub(crate) fn address_at_unit(b: &[u8], i: usize, key: &[u8]) -> Option<usize> {
    if !matches!(at(b, i), b'F' | b'S' | b'A' | b'U') {
        return None;
    }
    let w =
        [&b"Flat "[..], b"Studio ", b"Apartment ", b"Unit "].into_iter().find(|w| b.get(i..i + w.len()) == Some(*w))?;
    let ne = house_number(b, i + w.len())?;
    if b.get(ne..ne + 2) != Some(b", ") {
        return None;
    }
    let s = ne + 2;
    let (e, n) = cap_run(b, s)?;
    let last_start = b.get(s..e)?.iter().rposition(|&c| c == b' ').map_or(s, |p| s + p + 1);
    let labelled = label_right_before(b, i, ADDRESS_LABELS) || context::has_word(key, ADDRESS_LABELS);
    (n >= 2 && (is_suffix(b.get(last_start..e)?) || labelled)).then_some(e)
}

/// German `Röhrichtweg 52`, `Jens-Drubin-Straße 47-26` at the capital at `i`.
pub(crate) fn address_german(b: &[u8], i: usize) -> Option<usize> {
    if !at(b, i + 1).is_ascii_lowercase() && at(b, i + 1) < 0x80 {
        return None;
    }
    // The word's letters and hyphens, and a `.` before a space (`Str. 4`).
    let rest = b.get(i..).unwrap_or_default();
    let mut j = i + rest.iter().position(|&c| !(name_byte(c) || c == b'-')).unwrap_or(rest.len());
    if at(b, j) == b'.' && at(b, j + 1) == b' ' {
        j += 1;
    }
    if at(b, j) != b' ' || !at(b, j + 1).is_ascii_digit() {
        return None;
    }
    let word = b.get(i..j)?;
    if !STRASSEN.iter().any(|s| ends_with_ci(word, s) || lower_eq(word, s)) {
        return None;
    }
    house_number(b, j + 1)
}

/// Capitalised words that open a sentence or a clause and never lead a
/// street name (`The Goethestraße 4` is at `Goethestraße 4`).
const NOT_STREET_LEAD: &[&[u8]] = &[
    b"and", b"are", b"at", b"but", b"by", b"for", b"from", b"he", b"hello", b"her", b"hi", b"his", b"i", b"if", b"is",
    b"it", b"its", b"my", b"no", b"of", b"on", b"or", b"our", b"please", b"she", b"so", b"thanks", b"that", b"the",
    b"their", b"these", b"they", b"this", b"those", b"to", b"was", b"we", b"were", b"with", b"yes", b"you", b"your",
];

/// Whether a capitalised word may be part of a German street name before
/// its street word (see [`german_street_start`]).
pub(crate) fn may_lead_street(word: &[u8]) -> bool {
    !in_list(word, NOT_STREET_LEAD)
}

/// A lower-case surname particle (`de`, `van`, `d'`).
pub(crate) fn is_particle(word: &[u8]) -> bool {
    PARTICLES.contains(&word)
}

/// A French street type (`rue`, `avenue`...).
pub(crate) fn is_voie(word: &[u8]) -> bool {
    in_list(word, VOIES)
}

/// The lower-case words a name or a street takes in (particles, French
/// street types, USPS suffixes), for the stream's plain-word test.
pub(crate) fn taken_words() -> impl Iterator<Item = &'static [u8]> {
    PARTICLES.iter().chain(VOIES).chain(STREET_SUFFIXES).copied()
}

/// The endings of German street words ([`is_strasse`]).
pub(crate) fn strasse_endings() -> &'static [&'static [u8]] {
    STRASSEN
}

/// A word a street name may end in (`Hauptstraße`, `weg`, `ring`...).
pub(crate) fn is_strasse(word: &[u8]) -> bool {
    STRASSEN.iter().any(|s| ends_with_ci(word, s) || lower_eq(word, s))
}

/// The start of a particle or a French street type (a word still growing).
pub(crate) fn starts_particle_or_voie(start: &[u8]) -> bool {
    !start.is_empty()
        && PARTICLES.iter().chain(VOIES).any(|w| w.get(..start.len()).is_some_and(|p| p.eq_ignore_ascii_case(start)))
}

/// Whether the capitalised `word` at `i` may start a person's name once
/// more words follow: a given name of the dictionary, or a name label or
/// an honorific right before it (what [`person`] asks of a first word).
pub(crate) fn may_start_name(b: &[u8], i: usize, word: &[u8]) -> bool {
    is_first_name(word)
        || label_right_before(b, i, HONORIFICS)
        || label_right_before(b, i, NAME_LABELS)
        || after_honorific(b, i)
}

/// Where a German street name that ends at the word at `i` starts: up to
/// two capitalised words before it belong to it (`Hans Jörg-Geißler-Weg`).
pub(crate) fn german_street_start(b: &[u8], i: usize) -> usize {
    let mut s = i;
    for _ in 0..2 {
        if s < 3 || at(b, s - 1) != b' ' {
            break;
        }
        let e = s - 1;
        let mut k = e;
        while k > 0 && (name_byte(at(b, k - 1)) || at(b, k - 1) == b'-') {
            k -= 1;
        }
        if k == e || cap_word(b, k) != Some(e) || !may_lead_street(b.get(k..e).unwrap_or_default()) {
            break;
        }
        s = k;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_in(t: &str) -> Option<&str> {
        let b = t.as_bytes();
        (0..b.len())
            .filter(|&i| i == 0 || !name_byte(b[i - 1]))
            .find_map(|i| person(b, i, b"", false).map(|e| &t[i..e]))
    }

    #[test]
    fn names_with_labels_particles_and_dictionary() {
        assert_eq!(name_in("patient name: Pauline de la Bailly, 54"), Some("Pauline de la Bailly"));
        assert_eq!(name_in("Mr.:Danny Lloyd."), Some("Danny Lloyd"));
        assert_eq!(name_in("Bitte an Frau Müller weiterleiten"), Some("Müller"));
        assert_eq!(name_in("Please draft a letter to Maria Gonzalez tomorrow"), Some("Maria Gonzalez"));
        assert_eq!(name_in("ask Sean O'Neill-Ross"), Some("Sean O'Neill-Ross"));
        assert_eq!(name_in("nombre: Olaf Momberg-van Laarhoven"), Some("Olaf Momberg-van Laarhoven"));
        assert_eq!(name_in("We met at Golden Gate Bridge"), None);
        assert_eq!(name_in("Compare Google Chrome"), None);
        assert_eq!(name_in("Notes from Austin Texas"), None);
        assert_eq!(name_in("The Patient Portal"), None);
        assert_eq!(name_in("Dumm Jahr liegen Name. Wenig Geld Welt Abend"), None);
        assert_eq!(name_in("Zimmer Herr. Kaufen bekommen"), None);
        assert_eq!(name_in("(patient name Maria Lopez)"), Some("Maria Lopez"));
        assert_eq!(name_in("my name is Jan de Vries"), Some("Jan de Vries"));
        assert_eq!(name_in("mi nombre es Abiga\u{ed}l Duran."), Some("Abiga\u{ed}l Duran"));
        assert_eq!(name_in("Write a referral for Fiorino Pirandello; thanks"), None);
        assert_eq!(name_in("Write a referral for Maria Pirandello; thanks"), Some("Maria Pirandello"));
        assert_eq!(name_in("Write a review for Visual Studio Code"), None);
        assert_eq!(name_in("https://x/v1/name/Neil Evans/edit"), Some("Neil Evans"));
    }

    #[test]
    fn addresses_in_four_styles() {
        let at_num = |t: &'static str| {
            let i = t.find(|c: char| c.is_ascii_digit()).unwrap();
            address_at_number(t.as_bytes(), i, b"").map(move |e| &t[i..e])
        };
        assert_eq!(at_num("at 49502 Lydia Heights Suite 753, Springfield"), Some("49502 Lydia Heights Suite 753"));
        assert_eq!(at_num("734 Rebekah Loop"), Some("734 Rebekah Loop"));
        assert_eq!(at_num("8, rue Jeanne Henry"), Some("8, rue Jeanne Henry"));
        assert_eq!(at_num("16, rue de Salmon"), Some("16, rue de Salmon"));
        assert_eq!(at_num("5 Items in the Cart"), None);
        let t = "Studio 58, Murphy Way";
        assert_eq!(address_at_unit(t.as_bytes(), 0, b""), Some(t.len()));
        assert_eq!(at_num("Address wrong fine if. routing 13905 Within lot store."), None);
        let t = "Flat 17, Janet Meadows";
        assert_eq!(address_at_unit(t.as_bytes(), 0, b""), Some(t.len()));
        for t in ["Röhrichtweg 52", "Jens-Drubin-Straße 47-26", "Kabusstr. 665", "Röhrdanzplatz 83/53"] {
            assert_eq!(address_german(t.as_bytes(), 0), Some(t.len()), "{t}");
        }
        assert_eq!(address_german(b"Version 2", 0), None);
        let t = "Anschrift:Hans J\u{f6}rg-Gei\u{df}ler-Weg 4";
        let i = t.find("J").unwrap();
        assert_eq!(&t[german_street_start(t.as_bytes(), i)..], "Hans J\u{f6}rg-Gei\u{df}ler-Weg 4");
    }
}
