//! Categories of regulated data, the actions a policy takes on them, and
//! the action per category (`classification.actions`).

use super::entities;

/// An enum with its config names, from one list: `as_str`, `parse`, `ALL`
/// and `NAMES` cannot disagree.
macro_rules! named {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),*
        }

        impl $name {
            /// Every value, in the config's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            /// Every config name, in the same order.
            pub const NAMES: &'static [&'static str] = &[$($text),*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

named! {
    /// A category of regulated data.
    Category { Pii = "pii", Phi = "phi", Pci = "pci", Secret = "secret", Custom = "custom" }
}

named! {
    /// What a policy does with a finding.
    Action {
        Redact = "redact",
        Mask = "mask",
        Pseudonymize = "pseudonymize",
        Remove = "remove",
        Block = "block",
        Tag = "tag",
    }
}

impl Action {
    /// The form used in audit events (`findings[].action`).
    pub fn past_tense(self) -> &'static str {
        match self {
            Action::Redact => "redacted",
            Action::Mask => "masked",
            Action::Pseudonymize => "pseudonymized",
            Action::Remove => "removed",
            Action::Block => "blocked",
            Action::Tag => "tagged",
        }
    }
}

/// Action per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    pub pii: Action,
    pub phi: Action,
    pub pci: Action,
    pub secret: Action,
    pub custom: Action,
}

impl Default for Actions {
    fn default() -> Self {
        use entities::default_action as d;
        Actions {
            pii: d(Category::Pii),
            phi: d(Category::Phi),
            pci: d(Category::Pci),
            secret: d(Category::Secret),
            custom: d(Category::Custom),
        }
    }
}

impl Actions {
    /// A copy with `category` set to `action`.
    pub fn with(mut self, category: Category, action: Action) -> Self {
        match category {
            Category::Pii => self.pii = action,
            Category::Phi => self.phi = action,
            Category::Pci => self.pci = action,
            Category::Secret => self.secret = action,
            Category::Custom => self.custom = action,
        }
        self
    }

    /// Whether any category has `action`.
    pub fn uses(&self, action: Action) -> bool {
        [self.pii, self.phi, self.pci, self.secret, self.custom].contains(&action)
    }

    pub fn for_category(&self, c: Category) -> Action {
        match c {
            Category::Pii => self.pii,
            Category::Phi => self.phi,
            Category::Pci => self.pci,
            Category::Secret => self.secret,
            Category::Custom => self.custom,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (a, n) in Action::ALL.iter().zip(Action::NAMES) {
            assert_eq!((a.as_str(), Action::parse(n)), (*n, Some(*a)));
        }
        for (c, n) in Category::ALL.iter().zip(Category::NAMES) {
            assert_eq!((c.as_str(), Category::parse(n)), (*n, Some(*c)));
        }
        assert_eq!((Action::parse("shred"), Category::parse("PII")), (None, None));
        let all = Category::ALL.iter().fold(Actions::default(), |a, c| a.with(*c, Action::Tag));
        assert!(Category::ALL.iter().all(|c| all.for_category(*c) == Action::Tag));
    }
}
