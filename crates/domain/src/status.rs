//! Lifecycle states, stored as lower-case strings.

use std::str::FromStr;

use crate::Error;

/// Affiliates, users and tracking links are either usable or suspended; suspension is
/// reversible and keeps history, unlike deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActiveStatus {
    Active,
    Suspended,
}

impl ActiveStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ActiveStatus::Active => "active",
            ActiveStatus::Suspended => "suspended",
        }
    }
}

impl FromStr for ActiveStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "active" => Ok(ActiveStatus::Active),
            "suspended" => Ok(ActiveStatus::Suspended),
            other => Err(Error::invalid("status", format!("unknown status `{other}`"))),
        }
    }
}

/// A paused campaign still answers its links, with its fallback URL; an archived one is gone
/// from the tracking domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CampaignStatus {
    Active,
    Paused,
    Archived,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Active => "active",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Archived => "archived",
        }
    }
}

impl FromStr for CampaignStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "active" => Ok(CampaignStatus::Active),
            "paused" => Ok(CampaignStatus::Paused),
            "archived" => Ok(CampaignStatus::Archived),
            other => Err(Error::invalid("status", format!("unknown status `{other}`"))),
        }
    }
}
