use std::fmt;
use std::str::FromStr;

/// What a logged-in user is to its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Created the tenant; everything a manager can do, plus managing staff and API keys.
    Owner,
    /// Operator staff: runs affiliates, campaigns and links.
    Manager,
    /// A partner: sees only itself, its own links and its sub-affiliates.
    Affiliate,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Affiliate => "affiliate",
        }
    }

    pub fn is_staff(self) -> bool {
        matches!(self, Role::Owner | Role::Manager)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "manager" => Ok(Role::Manager),
            "affiliate" => Ok(Role::Affiliate),
            other => Err(crate::Error::invalid("role", format!("unknown role `{other}`"))),
        }
    }
}
