//! The audit log: what staff did, for the tenant's owners.

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use clickledger_domain::ids::AuditEntryId;
use clickledger_persistence::audit::{self, AuditLog};

use super::context::{principal, state};
use super::guard::Allow;
use super::pagination;
use crate::error::GqlResultExt;

/// What was done.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "clickledger_domain::audit::AuditAction")]
pub enum AuditAction {
    /// `createCommissionPlan`; details: name, version, effectiveFrom, rules.
    PlanCreated,
    /// `updateCommissionPlan`; details: the new version, its effectiveFrom and rules (and
    /// name, with previousName, when renamed).
    PlanRevised,
    /// `assignCommissionPlan`; details: assignmentId, campaignId, affiliateId, effectiveFrom.
    PlanAssigned,
    /// `adjustCommission`; details: affiliateId, amount, currency, reason, conversionId.
    CommissionAdjusted,
    /// `setCommissionStatus` to APPROVED, one entry per ledger entry moved.
    CommissionApproved,
    /// `setCommissionStatus` to REJECTED.
    CommissionRejected,
    /// `setCommissionStatus` to HELD.
    CommissionHeld,
    /// `setCommissionStatus` back to PENDING.
    CommissionPending,
    /// `markStatementPaid`; details: affiliateId, period, currency.
    StatementPaid,
    AffiliateSuspended,
    AffiliateActivated,
    /// `setCampaignStatus`.
    CampaignStatusChanged,
    TrackingLinkSuspended,
    TrackingLinkActivated,
    /// `createApiKey`; details: name, prefix (never the key), dialect, a CUSTOM key's
    /// customDialect.
    ApiKeyCreated,
    /// `updateApiKey`; details: each changed setting's from and to (name, postbacksPerMinute,
    /// signatureRequired, dialect, customDialect).
    ApiKeyUpdated,
    /// `rotateApiKeySigningSecret`; details: name, prefix (never the secret).
    ApiKeySigningSecretRotated,
    ApiKeyRevoked,
    /// `createPostbackEndpoint` (by staff or by the affiliate); details: its settings,
    /// never its secret.
    PostbackEndpointCreated,
    /// `updatePostbackEndpoint`; details: each changed field's from and to.
    PostbackEndpointUpdated,
    /// `rotatePostbackSecret`; details: until when the previous secret still signs.
    PostbackSecretRotated,
    /// `updateFraudSettings`; details: each changed setting's from and to.
    FraudSettingsUpdated,
    /// `createUser`; details: email, role.
    UserCreated,
    UserSuspended,
    UserActivated,
    /// `approveConversion`; details: status and review state from and to, the note.
    ConversionApproved,
    /// `rejectConversion`; details: status and review state from and to, the reason.
    ConversionRejected,
}

/// What kind of thing `subjectId` names.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "clickledger_domain::audit::AuditSubject")]
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
    /// A conversion (its fraud review).
    Conversion,
}

/// Who acted: a login of the tenant, with the e-mail it had then.
#[derive(SimpleObject)]
pub struct AuditActor {
    pub user_id: ID,
    pub email: String,
}

/// One audited change.
#[derive(SimpleObject)]
pub struct AuditEntry {
    pub id: ID,
    pub at: DateTime<Utc>,
    /// Null when the change was made from the host (`clickledger` on the command line, or
    /// the demo seeded on first start).
    pub actor: Option<AuditActor>,
    pub action: AuditAction,
    pub subject_type: AuditSubject,
    pub subject_id: ID,
    /// What changed: a JSON object, described per action. Never a secret.
    pub details: Json<serde_json::Value>,
}

impl From<audit::AuditEntry> for AuditEntry {
    fn from(entry: audit::AuditEntry) -> Self {
        AuditEntry {
            id: ID(entry.id.to_string()),
            at: entry.at,
            actor: entry.actor.map(|(user, email)| AuditActor { user_id: ID(user.to_string()), email }),
            action: entry.action.into(),
            subject_type: entry.subject_type.into(),
            subject_id: ID(entry.subject_id),
            details: Json(entry.details),
        }
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// What staff did, oldest first: plan changes, adjustments, commission approvals and
    /// rejections, statuses, API keys, postback endpoints, fraud settings and staff logins.
    /// Each entry was written in the same transaction as its change. Owner only.
    #[graphql(
        guard = "Allow::OWNER",
        complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, AuditEntry>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let request = pagination::request(after, first, AuditEntryId::parse, AuditEntryId::uuid).gql()?;
        let page = AuditLog::scoped(&state.db, scope).list(request).await.gql()?;
        Ok(pagination::connection(page, request, |e| (pagination::cursor(e.id), AuditEntry::from(e))))
    }
}
