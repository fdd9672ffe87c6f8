//! The built-in entities, in one table: id, name, category, the check that
//! confirms a candidate, the default action and the overlap rank. Every
//! other place reads it: the config parser (which names exist), the
//! classifier (names, categories, `[REDACTED:…]` labels, overlap order), the
//! default actions, and the README's entity table (tested against it).

use super::{Action, Category};

/// An entity id: its index in [`TABLE`] (custom rule names follow).
pub type EntityId = u16;

/// What confirms a candidate beyond its layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// The layout alone (RFC-shaped address, prefixed token…).
    Format,
    /// Octet and group ranges of IPv4/IPv6.
    Address,
    /// National numbering plans (lengths, trunk and area prefixes).
    NumberingPlan,
    /// A calendar date after a birth label.
    Date,
    /// The name dictionary, capitalisation and labels.
    Dictionary,
    /// Street suffixes and house-number layouts per country.
    StreetLayout,
    /// Luhn with the `80840` prefix (or a label).
    NpiLuhn,
    /// The DEA check digit (with its label).
    DeaCheckDigit,
    /// Mod 11 (with a label, or about a patient).
    Mod11,
    /// A label before the code (or a clinical field).
    Label,
    /// Brand prefix and Luhn.
    Luhn,
    /// SSA area, group and serial rules.
    SsnRules,
    /// `9xx` with the ITIN group ranges.
    ItinRules,
    /// The HMRC prefix rules (with a label).
    NinoPrefix,
    /// Luhn (with a label).
    SinLuhn,
    /// Per-country length and mod 97.
    Mod97,
    /// The token's own checksum where it has one (never a veto).
    TokenChecksum,
}

/// One built-in entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entity {
    pub id: EntityId,
    /// The name in `classification.entities`, findings and `[REDACTED:…]`.
    pub name: &'static str,
    pub category: Category,
    pub validator: Validator,
    /// The action `classification.actions` gives its category by default.
    pub default_action: Action,
    /// Which hit wins an overlap: a prefixed secret (3) over checksummed and
    /// labelled ids (2) over the rest (1).
    pub rank: u8,
}

/// The action each category has when the config names none.
pub const fn default_action(category: Category) -> Action {
    match category {
        Category::Pci => Action::Mask,
        Category::Secret => Action::Block,
        Category::Pii | Category::Phi | Category::Custom => Action::Redact,
    }
}

macro_rules! entities {
    ($( $id:ident = $ix:literal, $name:literal, $cat:ident, $validator:ident, $rank:literal; )*) => {
        /// Built-in entity ids (indexes into [`TABLE`]).
        pub mod id {
            $( pub const $id: super::EntityId = $ix; )*
        }
        /// Every built-in entity, indexed by id.
        pub const TABLE: &[Entity] = &[
            $( Entity {
                id: $ix,
                name: $name,
                category: Category::$cat,
                validator: Validator::$validator,
                default_action: default_action(Category::$cat),
                rank: $rank,
            }, )*
        ];
    };
}

entities! {
    EMAIL = 0, "email", Pii, Format, 1;
    PHONE = 1, "phone", Pii, NumberingPlan, 1;
    IP_ADDRESS = 2, "ip_address", Pii, Address, 1;
    DATE_OF_BIRTH = 3, "date_of_birth", Pii, Date, 1;
    PERSON_NAME = 4, "person_name", Pii, Dictionary, 1;
    US_NPI = 5, "us_npi", Phi, NpiLuhn, 2;
    US_DEA = 6, "us_dea", Phi, DeaCheckDigit, 2;
    UK_NHS = 7, "uk_nhs", Phi, Mod11, 2;
    ICD10 = 8, "icd10", Phi, Label, 1;
    CREDIT_CARD = 9, "credit_card", Pci, Luhn, 2;
    US_SSN = 10, "us_ssn", Pii, SsnRules, 2;
    US_ITIN = 11, "us_itin", Pii, ItinRules, 2;
    UK_NINO = 12, "uk_nino", Pii, NinoPrefix, 2;
    CA_SIN = 13, "ca_sin", Pii, SinLuhn, 2;
    IBAN = 14, "iban", Pii, Mod97, 2;
    AWS_ACCESS_KEY = 15, "secret.aws_access_key", Secret, Format, 3;
    AWS_SECRET_KEY = 16, "secret.aws_secret_key", Secret, Label, 3;
    GITHUB_TOKEN = 17, "secret.github_token", Secret, TokenChecksum, 3;
    OPENAI_KEY = 18, "secret.openai_key", Secret, Format, 3;
    ANTHROPIC_KEY = 19, "secret.anthropic_key", Secret, Format, 3;
    SLACK_TOKEN = 20, "secret.slack_token", Secret, Format, 3;
    STRIPE_KEY = 21, "secret.stripe_key", Secret, Format, 3;
    GOOGLE_API_KEY = 22, "secret.google_api_key", Secret, Format, 3;
    PRIVATE_KEY = 23, "secret.private_key", Secret, Format, 3;
    JWT = 24, "secret.jwt", Secret, Format, 3;
    MRN = 25, "mrn", Phi, Label, 1;
    STREET_ADDRESS = 26, "street_address", Pii, StreetLayout, 1;
}

// The ids are the indexes: checked when the crate compiles (an index out of
// bounds in a const block is a compile error, not a panic).
#[allow(clippy::indexing_slicing)]
const _: () = {
    let mut i = 0;
    while i < TABLE.len() {
        assert!(TABLE[i].id as usize == i);
        i += 1;
    }
};

/// A built-in entity by name.
pub fn by_name(name: &str) -> Option<&'static Entity> {
    TABLE.iter().find(|e| e.name == name)
}

/// A built-in entity by id (`None` for custom rule ids).
pub fn get(id: EntityId) -> Option<&'static Entity> {
    TABLE.get(usize::from(id))
}

/// The overlap rank of an id; custom rules rank with the plain entities.
pub fn rank(id: EntityId) -> u8 {
    get(id).map_or(1, |e| e.rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lookups_agree() {
        for e in TABLE {
            assert_eq!(by_name(e.name).map(|x| x.id), Some(e.id));
            assert_eq!(get(e.id), Some(e));
            assert_eq!(e.default_action, default_action(e.category), "{}", e.name);
            // Secrets are always secrets, and always win an overlap.
            assert_eq!(e.category == Category::Secret, e.rank == 3, "{}", e.name);
        }
        assert_eq!(by_name("emial"), None);
        assert_eq!(rank(TABLE.len() as EntityId), 1);
    }

    /// The README's entity table lists every built-in entity with the
    /// category and default action this table gives it, and nothing else.
    #[test]
    fn the_readme_table_is_this_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let readme = std::fs::read_to_string(path).unwrap_or_default();
        let mut seen = Vec::new();
        for line in readme.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let [_, names, category, action, ..] = cells.as_slice() else { continue };
            if !matches!(*category, "pii" | "phi" | "pci" | "secret") {
                continue;
            }
            for name in names.split(',').map(|n| n.trim().trim_matches('`')) {
                let e = by_name(name).unwrap_or_else(|| panic!("README names unknown entity {name}"));
                assert_eq!((e.category.as_str(), e.default_action.as_str()), (*category, *action), "{name}");
                seen.push(e.id);
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, TABLE.iter().map(|e| e.id).collect::<Vec<_>>(), "README entity table");
    }
}
