//! The audit log's vocabulary: what a person did to the tenant's configuration, money or
//! people, and what kind of thing it was done to. Stored as the upper-case names below,
//! which are also the GraphQL enum's values.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// What kind of thing an audited action was done to; its ID is the subject ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditSubject {
    /// The tenant itself (its fraud settings).
    Tenant,
    User,
    Affiliate,
    Campaign,
    TrackingLink,
    ApiKey,
    PostbackEndpoint,
    CommissionPlan,
    CommissionEntry,
    Statement,
    Conversion,
}

impl AuditSubject {
    pub const ALL: [AuditSubject; 11] = [
        AuditSubject::Tenant,
        AuditSubject::User,
        AuditSubject::Affiliate,
        AuditSubject::Campaign,
        AuditSubject::TrackingLink,
        AuditSubject::ApiKey,
        AuditSubject::PostbackEndpoint,
        AuditSubject::CommissionPlan,
        AuditSubject::CommissionEntry,
        AuditSubject::Statement,
        AuditSubject::Conversion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditSubject::Tenant => "TENANT",
            AuditSubject::User => "USER",
            AuditSubject::Affiliate => "AFFILIATE",
            AuditSubject::Campaign => "CAMPAIGN",
            AuditSubject::TrackingLink => "TRACKING_LINK",
            AuditSubject::ApiKey => "API_KEY",
            AuditSubject::PostbackEndpoint => "POSTBACK_ENDPOINT",
            AuditSubject::CommissionPlan => "COMMISSION_PLAN",
            AuditSubject::CommissionEntry => "COMMISSION_ENTRY",
            AuditSubject::Statement => "STATEMENT",
            AuditSubject::Conversion => "CONVERSION",
        }
    }
}

impl FromStr for AuditSubject {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        AuditSubject::ALL
            .into_iter()
            .find(|subject| subject.as_str() == s)
            .ok_or_else(|| Error::invalid("subjectType", format!("unknown audit subject `{s}`")))
    }
}

/// Every audited action. Each names one subject kind ([`AuditAction::subject`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// `createCommissionPlan`: version 1.
    PlanCreated,
    /// `updateCommissionPlan`: a new version.
    PlanRevised,
    /// `assignCommissionPlan`: to a campaign, or to one affiliate on it.
    PlanAssigned,
    /// `adjustCommission`: a manual ledger entry.
    CommissionAdjusted,
    /// `setCommissionStatus` to APPROVED.
    CommissionApproved,
    /// `setCommissionStatus` to REJECTED.
    CommissionRejected,
    /// `setCommissionStatus` to HELD.
    CommissionHeld,
    /// `setCommissionStatus` back to PENDING.
    CommissionPending,
    /// `markStatementPaid`.
    StatementPaid,
    AffiliateSuspended,
    AffiliateActivated,
    /// `setCampaignStatus`.
    CampaignStatusChanged,
    TrackingLinkSuspended,
    TrackingLinkActivated,
    ApiKeyCreated,
    /// `updateApiKey`: its name, postback limit or signature switch.
    ApiKeyUpdated,
    /// `rotateApiKeySigningSecret`.
    ApiKeySigningSecretRotated,
    ApiKeyRevoked,
    PostbackEndpointCreated,
    PostbackEndpointUpdated,
    PostbackSecretRotated,
    FraudSettingsUpdated,
    /// `createUser`: a staff login.
    UserCreated,
    UserSuspended,
    UserActivated,
    ConversionApproved,
    ConversionRejected,
}

impl AuditAction {
    pub const ALL: [AuditAction; 27] = [
        AuditAction::PlanCreated,
        AuditAction::PlanRevised,
        AuditAction::PlanAssigned,
        AuditAction::CommissionAdjusted,
        AuditAction::CommissionApproved,
        AuditAction::CommissionRejected,
        AuditAction::CommissionHeld,
        AuditAction::CommissionPending,
        AuditAction::StatementPaid,
        AuditAction::AffiliateSuspended,
        AuditAction::AffiliateActivated,
        AuditAction::CampaignStatusChanged,
        AuditAction::TrackingLinkSuspended,
        AuditAction::TrackingLinkActivated,
        AuditAction::ApiKeyCreated,
        AuditAction::ApiKeyUpdated,
        AuditAction::ApiKeySigningSecretRotated,
        AuditAction::ApiKeyRevoked,
        AuditAction::PostbackEndpointCreated,
        AuditAction::PostbackEndpointUpdated,
        AuditAction::PostbackSecretRotated,
        AuditAction::FraudSettingsUpdated,
        AuditAction::UserCreated,
        AuditAction::UserSuspended,
        AuditAction::UserActivated,
        AuditAction::ConversionApproved,
        AuditAction::ConversionRejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::PlanCreated => "PLAN_CREATED",
            AuditAction::PlanRevised => "PLAN_REVISED",
            AuditAction::PlanAssigned => "PLAN_ASSIGNED",
            AuditAction::CommissionAdjusted => "COMMISSION_ADJUSTED",
            AuditAction::CommissionApproved => "COMMISSION_APPROVED",
            AuditAction::CommissionRejected => "COMMISSION_REJECTED",
            AuditAction::CommissionHeld => "COMMISSION_HELD",
            AuditAction::CommissionPending => "COMMISSION_PENDING",
            AuditAction::StatementPaid => "STATEMENT_PAID",
            AuditAction::AffiliateSuspended => "AFFILIATE_SUSPENDED",
            AuditAction::AffiliateActivated => "AFFILIATE_ACTIVATED",
            AuditAction::CampaignStatusChanged => "CAMPAIGN_STATUS_CHANGED",
            AuditAction::TrackingLinkSuspended => "TRACKING_LINK_SUSPENDED",
            AuditAction::TrackingLinkActivated => "TRACKING_LINK_ACTIVATED",
            AuditAction::ApiKeyCreated => "API_KEY_CREATED",
            AuditAction::ApiKeyUpdated => "API_KEY_UPDATED",
            AuditAction::ApiKeySigningSecretRotated => "API_KEY_SIGNING_SECRET_ROTATED",
            AuditAction::ApiKeyRevoked => "API_KEY_REVOKED",
            AuditAction::PostbackEndpointCreated => "POSTBACK_ENDPOINT_CREATED",
            AuditAction::PostbackEndpointUpdated => "POSTBACK_ENDPOINT_UPDATED",
            AuditAction::PostbackSecretRotated => "POSTBACK_SECRET_ROTATED",
            AuditAction::FraudSettingsUpdated => "FRAUD_SETTINGS_UPDATED",
            AuditAction::UserCreated => "USER_CREATED",
            AuditAction::UserSuspended => "USER_SUSPENDED",
            AuditAction::UserActivated => "USER_ACTIVATED",
            AuditAction::ConversionApproved => "CONVERSION_APPROVED",
            AuditAction::ConversionRejected => "CONVERSION_REJECTED",
        }
    }

    /// The kind of thing the action is done to.
    pub fn subject(self) -> AuditSubject {
        match self {
            AuditAction::PlanCreated | AuditAction::PlanRevised | AuditAction::PlanAssigned => {
                AuditSubject::CommissionPlan
            }
            AuditAction::CommissionAdjusted
            | AuditAction::CommissionApproved
            | AuditAction::CommissionRejected
            | AuditAction::CommissionHeld
            | AuditAction::CommissionPending => AuditSubject::CommissionEntry,
            AuditAction::StatementPaid => AuditSubject::Statement,
            AuditAction::AffiliateSuspended | AuditAction::AffiliateActivated => AuditSubject::Affiliate,
            AuditAction::CampaignStatusChanged => AuditSubject::Campaign,
            AuditAction::TrackingLinkSuspended | AuditAction::TrackingLinkActivated => {
                AuditSubject::TrackingLink
            }
            AuditAction::ApiKeyCreated
            | AuditAction::ApiKeyUpdated
            | AuditAction::ApiKeySigningSecretRotated
            | AuditAction::ApiKeyRevoked => AuditSubject::ApiKey,
            AuditAction::PostbackEndpointCreated
            | AuditAction::PostbackEndpointUpdated
            | AuditAction::PostbackSecretRotated => AuditSubject::PostbackEndpoint,
            AuditAction::FraudSettingsUpdated => AuditSubject::Tenant,
            AuditAction::UserCreated | AuditAction::UserSuspended | AuditAction::UserActivated => {
                AuditSubject::User
            }
            AuditAction::ConversionApproved | AuditAction::ConversionRejected => AuditSubject::Conversion,
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        AuditAction::ALL
            .into_iter()
            .find(|action| action.as_str() == s)
            .ok_or_else(|| Error::invalid("action", format!("unknown audit action `{s}`")))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_action_and_subject_round_trips_under_a_distinct_name() {
        let names: HashSet<_> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), AuditAction::ALL.len());
        for action in AuditAction::ALL {
            assert_eq!(action.as_str().parse::<AuditAction>().unwrap(), action);
            assert!(AuditSubject::ALL.contains(&action.subject()));
        }
        let subjects: HashSet<_> = AuditSubject::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(subjects.len(), AuditSubject::ALL.len());
        for subject in AuditSubject::ALL {
            assert_eq!(subject.as_str().parse::<AuditSubject>().unwrap(), subject);
        }
        assert!("plan_created".parse::<AuditAction>().is_err(), "names are exact");
    }

    #[test]
    fn every_subject_kind_has_an_action() {
        for subject in AuditSubject::ALL {
            assert!(AuditAction::ALL.iter().any(|a| a.subject() == subject), "{subject:?}");
        }
    }
}
