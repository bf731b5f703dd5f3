//! Tenant-scoped repositories. Each is built with `scoped(db, scope)` and every query it runs
//! starts from the scope's tenant (and, for an affiliate viewer, its own rows).

mod affiliates;
mod api_keys;
mod campaigns;
pub(crate) mod tracking_links;
mod users;

pub use affiliates::{AffiliatePatch, Affiliates, NewAffiliate};
pub use api_keys::{ApiKeyChange, ApiKeys, NewApiKey, record_uses as record_api_key_uses};
pub use campaigns::{CampaignPatch, Campaigns, NewCampaign};
pub use tracking_links::{LinkFilter, NewTrackingLink, TrackingLinks};
pub use users::Users;

use crate::{Error, Result, Scope, Viewer};

pub(crate) fn require_staff(scope: &Scope) -> Result<()> {
    match scope.viewer() {
        Viewer::Staff => Ok(()),
        Viewer::Affiliate(_) => Err(Error::Forbidden),
    }
}

/// For sibling modules of `repo` that write staff-only rows.
pub(crate) fn require_staff_pub(scope: &Scope) -> Result<()> {
    require_staff(scope)
}
