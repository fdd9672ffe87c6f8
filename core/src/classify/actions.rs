//! Categories of regulated data, the actions a policy takes on them, and
//! the action per category (`classification.actions`).

use super::entities;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Pii,
    Phi,
    Pci,
    Secret,
    Custom,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Pii => "pii",
            Category::Phi => "phi",
            Category::Pci => "pci",
            Category::Secret => "secret",
            Category::Custom => "custom",
        }
    }
    pub fn parse(s: &str) -> Option<Category> {
        Some(match s {
            "pii" => Category::Pii,
            "phi" => Category::Phi,
            "pci" => Category::Pci,
            "secret" => Category::Secret,
            "custom" => Category::Custom,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Redact,
    Mask,
    Pseudonymize,
    Remove,
    Block,
    Tag,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "redact" => Action::Redact,
            "mask" => Action::Mask,
            "pseudonymize" => Action::Pseudonymize,
            "remove" => Action::Remove,
            "block" => Action::Block,
            "tag" => Action::Tag,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Redact => "redact",
            Action::Mask => "mask",
            Action::Pseudonymize => "pseudonymize",
            Action::Remove => "remove",
            Action::Block => "block",
            Action::Tag => "tag",
        }
    }
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
