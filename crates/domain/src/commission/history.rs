//! Plan versions. Editing a plan appends a version effective from an instant on; events are
//! computed with the version in force at their time, and booked entries are never recomputed.

use chrono::{DateTime, Utc};

use super::plan::Plan;
use crate::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanVersion {
    /// 1, 2, 3, … in order of creation.
    pub version: u32,
    pub effective_from: DateTime<Utc>,
    pub plan: Plan,
}

/// A campaign's plan versions, oldest first; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanHistory {
    versions: Vec<PlanVersion>,
}

impl PlanHistory {
    /// Version 1.
    pub fn new(plan: Plan, effective_from: DateTime<Utc>) -> Result<PlanHistory, Error> {
        plan.validate()?;
        Ok(PlanHistory { versions: vec![PlanVersion { version: 1, effective_from, plan }] })
    }

    /// Rebuilds a history from stored versions, checking the order the lookups rely on.
    pub fn from_versions(versions: Vec<PlanVersion>) -> Result<PlanHistory, Error> {
        let ordered = versions
            .windows(2)
            .all(|w| w[1].version == w[0].version + 1 && w[1].effective_from >= w[0].effective_from);
        if versions.is_empty() || !ordered {
            return Err(Error::invalid("versions", "must be consecutive and in order of effect"));
        }
        Ok(PlanHistory { versions })
    }

    /// Appends a version effective from `effective_from`, which may not lie before `now`:
    /// a plan that took effect in the past would contradict commission already booked.
    pub fn revise(
        &mut self,
        plan: Plan,
        effective_from: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<&PlanVersion, Error> {
        plan.validate()?;
        let latest = self.latest();
        if effective_from < now || effective_from < latest.effective_from {
            return Err(Error::invalid("effectiveFrom", "a new plan version cannot take effect in the past"));
        }
        let version =
            latest.version.checked_add(1).ok_or_else(|| Error::invalid("version", "too many versions"))?;
        self.versions.push(PlanVersion { version, effective_from, plan });
        Ok(self.latest())
    }

    /// The version in force at `at`: the newest whose `effective_from` is not after it.
    pub fn in_force_at(&self, at: DateTime<Utc>) -> Option<&PlanVersion> {
        self.versions.iter().rev().find(|v| v.effective_from <= at)
    }

    pub fn latest(&self) -> &PlanVersion {
        // The vector is never empty (every constructor checks); indexing keeps that obvious.
        &self.versions[self.versions.len() - 1]
    }

    pub fn versions(&self) -> &[PlanVersion] {
        &self.versions
    }
}
