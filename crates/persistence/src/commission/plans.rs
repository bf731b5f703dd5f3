//! Plans (versioned) and their assignment to campaigns and affiliates.

use chrono::{DateTime, Utc};
use clickledger_domain::audit::AuditAction;
use clickledger_domain::commission::{Plan, PlanHistory, PlanVersion};
use clickledger_domain::ids::{AffiliateId, CampaignId, PlanAssignmentId, PlanId};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use super::{Assignment, PlanRecord, corrupted, currency};
use crate::audit::{self, Actor, Change};
use crate::entities::{affiliates, campaigns, commission_plan_versions, commission_plans, plan_assignments};
use crate::page::{self, Page, PageRequest};
use crate::repo::require_staff;
use crate::{Db, Error, Result, Scope};

pub struct NewAssignment {
    pub plan_id: PlanId,
    pub campaign_id: CampaignId,
    /// `None` makes the plan the campaign's default.
    pub affiliate_id: Option<AffiliateId>,
    pub effective_from: DateTime<Utc>,
}

/// Plans are operator configuration: staff only.
pub struct Plans<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> Plans<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        Plans { db, scope }
    }

    fn tenant(&self) -> uuid::Uuid {
        self.scope.tenant().uuid()
    }

    pub async fn get(&self, id: PlanId) -> Result<PlanRecord> {
        require_staff(&self.scope)?;
        let row = commission_plans::Entity::find()
            .filter(commission_plans::Column::TenantId.eq(self.tenant()))
            .filter(commission_plans::Column::Id.eq(id.uuid()))
            .one(self.db.reader())
            .await?
            .ok_or(Error::NotFound)?;
        let versions = load_history(self.db.reader(), self.scope.tenant().uuid(), id.uuid()).await?;
        record(row, versions.versions().to_vec())
    }

    pub async fn list(&self, request: PageRequest) -> Result<Page<PlanRecord>> {
        require_staff(&self.scope)?;
        let select =
            commission_plans::Entity::find().filter(commission_plans::Column::TenantId.eq(self.tenant()));
        let page = page::fetch(select, commission_plans::Column::Id, request, self.db.reader()).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for row in page.items {
            let history = load_history(self.db.reader(), self.tenant(), row.id).await?;
            items.push(record(row, history.versions().to_vec())?);
        }
        Ok(Page { items, has_next: page.has_next })
    }

    /// Version 1. It may take effect in the past: nothing has been booked under a new plan.
    pub async fn create(
        &self,
        name: String,
        plan: Plan,
        effective_from: DateTime<Utc>,
        actor: Actor,
    ) -> Result<PlanRecord> {
        require_staff(&self.scope)?;
        let history = PlanHistory::new(plan, effective_from)?;
        let now = Utc::now();
        let id = PlanId::new();
        let txn = self.db.writer().begin().await?;
        let details = version_details(Some(&name), history.latest());
        commission_plans::ActiveModel {
            id: Set(id.uuid()),
            tenant_id: Set(self.tenant()),
            name: Set(name),
            currency: Set(history.latest().plan.currency.to_string()),
            external_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        insert_version(&txn, self.tenant(), id, history.latest(), now).await?;
        let change = Change::new(AuditAction::PlanCreated, id, details);
        audit::record(&txn, self.scope.tenant(), actor, vec![change]).await?;
        txn.commit().await?;
        self.get(id).await
    }

    /// Appends a version effective from `effective_from` (not in the past). Entries already
    /// booked keep the version they were computed with.
    pub async fn revise(
        &self,
        id: PlanId,
        name: Option<String>,
        plan: Plan,
        effective_from: DateTime<Utc>,
        now: DateTime<Utc>,
        actor: Actor,
    ) -> Result<PlanRecord> {
        require_staff(&self.scope)?;
        let txn = self.db.writer().begin().await?;
        let row = commission_plans::Entity::find()
            .filter(commission_plans::Column::TenantId.eq(self.tenant()))
            .filter(commission_plans::Column::Id.eq(id.uuid()))
            .one(&txn)
            .await?
            .ok_or(Error::NotFound)?;
        if currency(&row.currency)? != plan.currency {
            return Err(clickledger_domain::Error::invalid(
                "currency",
                "a plan's currency cannot change; create a new plan instead",
            )
            .into());
        }
        let mut history = load_history(&txn, self.tenant(), id.uuid()).await?;
        let version = history.revise(plan, effective_from, now)?.clone();
        insert_version(&txn, self.tenant(), id, &version, now).await?;
        let renamed = name.as_ref().filter(|name| **name != row.name);
        let mut details = version_details(renamed, &version);
        if renamed.is_some() {
            details["previousName"] = serde_json::json!(row.name);
        }
        let mut update =
            commission_plans::ActiveModel { id: Set(id.uuid()), updated_at: Set(now), ..Default::default() };
        if let Some(name) = name {
            update.name = Set(name);
        }
        update.update(&txn).await?;
        audit::record(
            &txn,
            self.scope.tenant(),
            actor,
            vec![Change::new(AuditAction::PlanRevised, id, details)],
        )
        .await?;
        txn.commit().await?;
        self.get(id).await
    }

    /// Assigns a plan to a campaign (as its default) or to one affiliate on it, from
    /// `effective_from` on. Earlier assignments stay in force for earlier events; booked
    /// entries are never recomputed.
    pub async fn assign(&self, new: NewAssignment, actor: Actor) -> Result<Assignment> {
        require_staff(&self.scope)?;
        let tenant = self.tenant();
        let reader = self.db.reader();
        let plan_exists = commission_plans::Entity::find()
            .filter(commission_plans::Column::TenantId.eq(tenant))
            .filter(commission_plans::Column::Id.eq(new.plan_id.uuid()))
            .one(reader)
            .await?
            .is_some();
        if !plan_exists {
            // Another tenant's row is simply not found, like every other lookup.
            return Err(crate::Error::NotFound);
        }
        let campaign_exists = campaigns::Entity::find()
            .filter(campaigns::Column::TenantId.eq(tenant))
            .filter(campaigns::Column::Id.eq(new.campaign_id.uuid()))
            .one(reader)
            .await?
            .is_some();
        if !campaign_exists {
            return Err(crate::Error::NotFound);
        }
        if let Some(affiliate) = new.affiliate_id {
            let exists = affiliates::Entity::find()
                .filter(affiliates::Column::TenantId.eq(tenant))
                .filter(affiliates::Column::Id.eq(affiliate.uuid()))
                .one(reader)
                .await?
                .is_some();
            if !exists {
                return Err(crate::Error::NotFound);
            }
        }
        let txn = self.db.writer().begin().await?;
        let model = plan_assignments::ActiveModel {
            id: Set(PlanAssignmentId::new().uuid()),
            tenant_id: Set(tenant),
            plan_id: Set(new.plan_id.uuid()),
            campaign_id: Set(new.campaign_id.uuid()),
            affiliate_id: Set(new.affiliate_id.map(AffiliateId::uuid)),
            effective_from: Set(new.effective_from),
            created_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await?;
        let assigned = assignment(model);
        let details = serde_json::json!({
            "assignmentId": assigned.id.to_string(),
            "campaignId": assigned.campaign_id.to_string(),
            "affiliateId": assigned.affiliate_id.map(|a| a.to_string()),
            "effectiveFrom": assigned.effective_from,
        });
        let change = Change::new(AuditAction::PlanAssigned, new.plan_id, details);
        audit::record(&txn, self.scope.tenant(), actor, vec![change]).await?;
        txn.commit().await?;
        Ok(assigned)
    }

    /// A plan's assignments, oldest first.
    pub async fn assignments(&self, plan: PlanId) -> Result<Vec<Assignment>> {
        require_staff(&self.scope)?;
        Ok(plan_assignments::Entity::find()
            .filter(plan_assignments::Column::TenantId.eq(self.tenant()))
            .filter(plan_assignments::Column::PlanId.eq(plan.uuid()))
            .order_by_asc(plan_assignments::Column::Id)
            .all(self.db.reader())
            .await?
            .into_iter()
            .map(assignment)
            .collect())
    }
}

fn assignment(m: plan_assignments::Model) -> Assignment {
    Assignment {
        id: PlanAssignmentId::from_uuid(m.id),
        plan_id: PlanId::from_uuid(m.plan_id),
        campaign_id: CampaignId::from_uuid(m.campaign_id),
        affiliate_id: m.affiliate_id.map(AffiliateId::from_uuid),
        effective_from: m.effective_from,
        created_at: m.created_at,
    }
}

fn record(row: commission_plans::Model, versions: Vec<PlanVersion>) -> Result<PlanRecord> {
    Ok(PlanRecord {
        id: PlanId::from_uuid(row.id),
        name: row.name,
        currency: currency(&row.currency)?,
        versions,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// A plan version in the audit log: its number, when it takes effect and its rules.
fn version_details(name: Option<&String>, version: &PlanVersion) -> serde_json::Value {
    let mut details = serde_json::json!({
        "version": version.version,
        "effectiveFrom": version.effective_from,
        "rules": version.plan,
    });
    if let Some(name) = name {
        details["name"] = serde_json::json!(name);
    }
    details
}

pub(crate) async fn insert_version<C: ConnectionTrait>(
    conn: &C,
    tenant: uuid::Uuid,
    plan: PlanId,
    version: &PlanVersion,
    now: DateTime<Utc>,
) -> Result<()> {
    let body = serde_json::to_string(&version.plan).map_err(|_| corrupted("plan"))?;
    commission_plan_versions::ActiveModel {
        tenant_id: Set(tenant),
        plan_id: Set(plan.uuid()),
        version: Set(i32::try_from(version.version).unwrap_or(i32::MAX)),
        effective_from: Set(version.effective_from),
        body: Set(body),
        created_at: Set(now),
    }
    .insert(conn)
    .await
    .map_err(Error::from)
    // Two concurrent revisions of one plan: the loser retries.
    .map_err(Error::conflict_on("version"))?;
    Ok(())
}

/// Every version of a plan, oldest first.
pub(crate) async fn load_history<C: ConnectionTrait>(
    conn: &C,
    tenant: uuid::Uuid,
    plan: uuid::Uuid,
) -> Result<PlanHistory> {
    let rows = commission_plan_versions::Entity::find()
        .filter(commission_plan_versions::Column::TenantId.eq(tenant))
        .filter(commission_plan_versions::Column::PlanId.eq(plan))
        .order_by_asc(commission_plan_versions::Column::Version)
        .all(conn)
        .await?;
    if rows.is_empty() {
        return Err(Error::NotFound);
    }
    let versions = rows
        .into_iter()
        .map(|row| {
            let plan: Plan = serde_json::from_str(&row.body).map_err(|_| corrupted("plan"))?;
            Ok(PlanVersion {
                version: u32::try_from(row.version).map_err(|_| corrupted("version"))?,
                effective_from: row.effective_from,
                plan,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(PlanHistory::from_versions(versions)?)
}

/// Of `campaigns`, those with any plan assigned (to anyone, from any date). Booking finds no
/// plan for a conversion of any other campaign, so a group commit skips it for those.
pub(crate) async fn campaigns_with_plans<C: ConnectionTrait>(
    conn: &C,
    tenants: impl IntoIterator<Item = uuid::Uuid>,
    campaigns: impl IntoIterator<Item = uuid::Uuid>,
) -> Result<std::collections::HashSet<uuid::Uuid>> {
    let found = plan_assignments::Entity::find()
        .select_only()
        .column(plan_assignments::Column::CampaignId)
        .distinct()
        .filter(plan_assignments::Column::TenantId.is_in(tenants))
        .filter(plan_assignments::Column::CampaignId.is_in(campaigns))
        .into_tuple::<uuid::Uuid>()
        .all(conn)
        .await?;
    Ok(found.into_iter().collect())
}

/// The plan version in force for `affiliate` on `campaign` at `at`: the affiliate's own
/// assignment if one is in force, else the campaign's default; `None` when neither is (the
/// conversion then earns nothing).
pub(super) async fn plan_in_force<C: ConnectionTrait>(
    conn: &C,
    tenant: uuid::Uuid,
    campaign: CampaignId,
    affiliate: AffiliateId,
    at: DateTime<Utc>,
) -> Result<Option<(PlanId, PlanVersion)>> {
    let in_force = |affiliate: Option<AffiliateId>| {
        let query = plan_assignments::Entity::find()
            .filter(plan_assignments::Column::TenantId.eq(tenant))
            .filter(plan_assignments::Column::CampaignId.eq(campaign.uuid()))
            .filter(plan_assignments::Column::EffectiveFrom.lte(at));
        let query = match affiliate {
            Some(affiliate) => query.filter(plan_assignments::Column::AffiliateId.eq(affiliate.uuid())),
            None => query.filter(plan_assignments::Column::AffiliateId.is_null()),
        };
        // The latest effective date wins; among equal dates, the latest assignment.
        query
            .order_by_desc(plan_assignments::Column::EffectiveFrom)
            .order_by_desc(plan_assignments::Column::Id)
    };
    let assignment = match in_force(Some(affiliate)).one(conn).await? {
        Some(own) => Some(own),
        None => in_force(None).one(conn).await?,
    };
    let Some(assignment) = assignment else { return Ok(None) };
    let history = load_history(conn, tenant, assignment.plan_id).await?;
    Ok(history.in_force_at(at).map(|version| (PlanId::from_uuid(assignment.plan_id), version.clone())))
}
