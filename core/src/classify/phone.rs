//! Phone numbers as people write them: E.164 and `00` international
//! prefixes, the NANP (US/CA) 3-3-4 plan with or without `1`, and the
//! national plans with a trunk `0` (UK, DE, FR, IT, NL, IN, ...), grouped
//! by spaces, dashes, dots, slashes and one parenthesised group (`(415)`,
//! `(0)`, `(03481)`), followed by an extension (`x778`, `ext. 12`).
//!
//! What the digits alone cannot tell (a compact run, a nine-digit Spanish or
//! Italian number) needs a phone label; an identifier word right before
//! (ticket, order, invoice...) or a hyphen joining the number to letters
//! (`ORD-05536-26238`) makes it an identifier. Dates, versions and amounts
//! are taken out by the numeric detectors before this runs.

#[inline]
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The shape of a phone-like run.
#[derive(Debug, Default, Clone)]
pub(crate) struct Shape {
    pub start: usize,
    /// End of the number (extension included).
    pub end: usize,
    pub plus: bool,
    /// Every digit, the `(0)` trunk of `+44 (0)20` left out.
    digits: Vec<u8>,
    /// Digit count per group.
    groups: Vec<usize>,
    /// A parenthesised group (index into `groups`).
    paren: Option<usize>,
    /// Separators seen: bit 0 space, 1 dash, 2 dot, 3 slash.
    seps: u8,
}

/// Reads a phone-like run starting at `i` (a `+`, `(` or digit).
pub(crate) fn parse(b: &[u8], i: usize) -> Option<Shape> {
    let mut sh = Shape { start: i, ..Shape::default() };
    let mut j = i;
    if at(b, j) == b'+' {
        sh.plus = true;
        j += 1;
        if !at(b, j).is_ascii_digit() || at(b, j) == b'0' {
            return None;
        }
    }
    let mut last_end = j;
    let mut in_paren = false;
    while j < b.len() && j - i < 40 {
        let c = at(b, j);
        if c.is_ascii_digit() {
            let s = j;
            while at(b, j).is_ascii_digit() {
                j += 1;
            }
            let run = b.get(s..j).unwrap_or_default();
            // `+44 (0)20`: the trunk zero in parentheses is not dialled.
            let trunk = in_paren && run == b"0" && (sh.plus || sh.digits.len() <= 3) && !sh.digits.is_empty();
            if !trunk {
                sh.digits.extend_from_slice(run);
                sh.groups.push(run.len());
            }
            if in_paren {
                if at(b, j) != b')' {
                    return None;
                }
                if !trunk {
                    sh.paren = Some(sh.groups.len() - 1);
                }
                j += 1;
                in_paren = false;
            }
            last_end = j;
            continue;
        }
        let next = at(b, j + 1);
        match c {
            b'(' if sh.paren.is_none() && !in_paren && next.is_ascii_digit() => {
                in_paren = true;
                j += 1;
            }
            b' ' | b'-' | b'.' | b'/' if next.is_ascii_digit() || (next == b'(' && c == b' ') => {
                sh.seps |= match c {
                    b' ' => 1,
                    b'-' => 2,
                    b'.' => 4,
                    _ => 8,
                };
                j += 1;
            }
            b' ' if next == b'(' => j += 1,
            _ => break,
        }
        if sh.groups.len() > 8 {
            return None;
        }
    }
    if in_paren || sh.digits.is_empty() {
        return None;
    }
    sh.end = last_end;
    // The number must not run on into a word, a decimal or another group.
    let a = at(b, sh.end);
    if matches!(a, b'.' | b',') && at(b, sh.end + 1).is_ascii_digit() {
        return None;
    }
    if let Some(e) = extension(b, sh.end) {
        sh.end = e;
    } else if is_word(a) {
        return None;
    }
    Some(sh)
}

/// `x778`, ` ext. 12`, ` extension 4` after a number: where it ends.
fn extension(b: &[u8], e: usize) -> Option<usize> {
    let mut j = e;
    if at(b, j) == b' ' {
        j += 1;
    }
    let lower = |k: usize| at(b, k).to_ascii_lowercase();
    if lower(j) != b'x' && lower(j) != b'e' {
        return None;
    }
    if lower(j) == b'x' {
        j += 1;
    } else if lower(j + 1) == b'x' && lower(j + 2) == b't' {
        j += 3;
        if b.get(j..j + 6).is_some_and(|w| w.eq_ignore_ascii_case(b"ension")) {
            j += 6;
        }
        if at(b, j) == b'.' {
            j += 1;
        }
    } else {
        return None;
    }
    if at(b, j) == b' ' {
        j += 1;
    }
    let s = j;
    while at(b, j).is_ascii_digit() && j - s < 6 {
        j += 1;
    }
    (j > s && !is_word(at(b, j))).then_some(j)
}

fn nanp_ok(d: &[u8]) -> bool {
    d.len() == 10 && matches!(d.first(), Some(b'2'..=b'9')) && matches!(d.get(3), Some(b'2'..=b'9'))
}

/// Whether the shape is a phone number; `labelled` when a phone label is
/// near (or the member name says phone).
pub(crate) fn is_phone(sh: &Shape, labelled: bool) -> bool {
    let d = &sh.digits;
    let n = d.len();
    let g = &sh.groups;
    let ng = g.len();
    if sh.plus {
        return (8..=15).contains(&n);
    }
    // `00` international prefix (`0049 30 1234567`, `001-415-555-2671`).
    if d.starts_with(b"00") && d.get(2) != Some(&b'0') {
        return (10..=17).contains(&n) && (ng >= 2 || labelled);
    }
    // NANP: (415) 555-2671, 415-555-2671, 1 415 555 2671, 1-800-555-0199.
    let nanp_groups = (ng == 3 && g[..] == [3, 3, 4]) || (ng == 4 && g[..] == [1, 3, 3, 4] && d.first() == Some(&b'1'));
    let body = if ng == 4 { d.get(1..).unwrap_or_default() } else { d.as_slice() };
    if nanp_groups && nanp_ok(body) && (sh.seps & 8 == 0) {
        return true;
    }
    if sh.paren.is_some() && ng >= 2 && (7..=12).contains(&n) {
        // `(0114) 496 0543`, `(03481) 251161`, `(844)247-5630`.
        let first_ok = d.first() == Some(&b'0') || (g.first() == Some(&3) && nanp_ok(d));
        if first_ok || labelled {
            return true;
        }
    }
    // National numbers with a trunk 0, grouped: 06 12 34 56 78, 020 7946 0958,
    // 07700 900123, 0586 097385, 030/1234567, 010-560 6486 (NL: a dash after
    // the area code); dots only in pairs (01.23.45.67.89).
    let pairs = g.iter().all(|&l| l == 2);
    if d.first() == Some(&b'0')
        && ng >= 2
        && g.iter().all(|&l| l >= 2)
        && (10..=12).contains(&n)
        && (sh.seps & 4 == 0 || (pairs && sh.seps == 4))
    {
        return true;
    }
    // Nine digits after the trunk 0 in area-code groups of three or more,
    // by spaces or a slash (DE: 030 186946, 0335 04395, 033230 794): not
    // by dashes (a ZIP+4 code `01234-5678`).
    if d.first() == Some(&b'0') && ng >= 2 && g.iter().all(|&l| l >= 3) && n == 9 && sh.seps & 6 == 0 {
        return true;
    }
    // Spain: nine digits in 3-2-2-2 by spaces, mobile 6/7 or landline 8/9
    // (610 11 75 47).
    if g[..] == [3, 2, 2, 2] && sh.seps == 1 && matches!(d.first(), Some(b'6'..=b'9')) {
        return true;
    }
    // French-style pairs without the trunk written: 6 12 34 56 78 is rare; a
    // phone label is needed for everything else, dots included.
    labelled && (7..=15).contains(&n) && g.iter().skip(1).all(|&l| l >= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(t: &str, labelled: bool) -> Option<&str> {
        let b = t.as_bytes();
        let i = b.iter().position(|c| c.is_ascii_digit() || matches!(c, b'+' | b'('))?;
        let sh = parse(b, i)?;
        is_phone(&sh, labelled).then(|| &t[sh.start..sh.end])
    }

    #[test]
    fn national_plans_without_a_label() {
        for (t, want) in [
            ("06 12 34 56 78", "06 12 34 56 78"),
            ("(0114) 496 0543", "(0114) 496 0543"),
            ("020 7946 0958", "020 7946 0958"),
            ("07700 900123", "07700 900123"),
            ("(03481) 251161", "(03481) 251161"),
            ("(844)247-5630x23270", "(844)247-5630x23270"),
            ("870-889-3858 x417", "870-889-3858 x417"),
            ("415.555.2671 ext. 12", "415.555.2671 ext. 12"),
            ("1 (366) 201-9311", "1 (366) 201-9311"),
            ("001-798-450-9845", "001-798-450-9845"),
            ("+44(0)28 9018 0125", "+44(0)28 9018 0125"),
            ("+33 (0)4 12 34 56 78", "+33 (0)4 12 34 56 78"),
            ("+49 (0) 9295 867608", "+49 (0) 9295 867608"),
            ("+31376-456233", "+31376-456233"),
            ("0586 097385", "0586 097385"),
            ("010-560 6486", "010-560 6486"),
            ("01.23.85.70.29", "01.23.85.70.29"),
            ("030 186946", "030 186946"),
            ("033230 794", "033230 794"),
            ("610 11 75 47", "610 11 75 47"),
            ("957 73 37 85", "957 73 37 85"),
            ("616 67 38 34 ext. 781", "616 67 38 34 ext. 781"),
        ] {
            assert_eq!(phone(t, false), Some(want), "{t}");
        }
    }

    #[test]
    fn what_needs_a_label() {
        for t in ["032280953", "3828305108", "0290248089", "957 737 385"] {
            assert_eq!(phone(t, false), None, "{t}");
            assert_eq!(phone(t, true), Some(t), "{t}");
        }
    }

    #[test]
    fn not_phones() {
        for t in [
            "1.234.567",
            "2024-05-17",
            "10.0.19045.3693",
            "1234",
            "12 34",
            "+0 123 456 789",
            "415 555 2671abc",
            "01234-5678",
            "010.560.6486",
            "510 11 75 47",
        ] {
            assert_eq!(phone(t, false), None, "{t}");
        }
    }
}
