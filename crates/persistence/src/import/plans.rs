//! Writes the export's commission plans (matched by external ID) and their assignments
//! (matched by campaign, affiliate and date). A re-run that finds a plan's rules changed
//! appends a version effective now, as `updateCommissionPlan` does: commission booked under
//! the old rules keeps them.

use std::collections::HashMap;

use chrono::Utc;
use clickledger_domain::commission::PlanHistory;
use clickledger_domain::ids::{PlanAssignmentId, PlanId};
use clickledger_domain::migration::{self, ImportedAssignment, ImportedPlan};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use super::{Change, Refs, Run};
use crate::Result;
use crate::commission::{insert_version, load_history};
use crate::entities::{commission_plans, plan_assignments};

impl Run<'_> {
    async fn external_plans(&self) -> Result<HashMap<String, uuid::Uuid>> {
        let rows = commission_plans::Entity::find()
            .select_only()
            .columns([commission_plans::Column::ExternalId, commission_plans::Column::Id])
            .filter(commission_plans::Column::TenantId.eq(self.tenant.uuid()))
            .filter(commission_plans::Column::ExternalId.is_not_null())
            .into_tuple::<(Option<String>, uuid::Uuid)>()
            .all(self.txn)
            .await?;
        Ok(rows.into_iter().filter_map(|(ext, id)| ext.map(|ext| (ext, id))).collect())
    }

    pub(super) async fn plans(&mut self, rows: &[ImportedPlan]) -> Result<HashMap<String, uuid::Uuid>> {
        let mut ids = self.external_plans().await?;
        let now = Utc::now();
        for row in rows {
            let change = match ids.get(&row.external_id).copied() {
                None => {
                    let history = match PlanHistory::new(row.plan.clone(), row.effective_from) {
                        Ok(history) => history,
                        Err(err) => {
                            self.fail(
                                migration::PLANS,
                                row.line,
                                format!("plan `{}`: {err}", row.external_id),
                            );
                            continue;
                        }
                    };
                    let id = PlanId::new();
                    commission_plans::ActiveModel {
                        id: Set(id.uuid()),
                        tenant_id: Set(self.tenant.uuid()),
                        name: Set(row.name.clone()),
                        currency: Set(row.plan.currency.to_string()),
                        external_id: Set(Some(row.external_id.clone())),
                        created_at: Set(now),
                        updated_at: Set(now),
                    }
                    .insert(self.txn)
                    .await?;
                    insert_version(self.txn, self.tenant.uuid(), id, history.latest(), now).await?;
                    ids.insert(row.external_id.clone(), id.uuid());
                    Change::Created
                }
                Some(id) => {
                    let Some(current) = commission_plans::Entity::find_by_id(id).one(self.txn).await? else {
                        self.fail(migration::PLANS, row.line, format!("plan `{}` is gone", row.external_id));
                        continue;
                    };
                    if current.currency != row.plan.currency.to_string() {
                        self.fail(
                            migration::PLANS,
                            row.line,
                            format!(
                                "plan `{}` is in {}: a plan's currency cannot change; import it under a new plan_external_id",
                                row.external_id, current.currency
                            ),
                        );
                        continue;
                    }
                    let mut history = load_history(self.txn, self.tenant.uuid(), id).await?;
                    let same_rules = history.latest().plan == row.plan;
                    if !same_rules {
                        match history.revise(row.plan.clone(), now, now) {
                            Ok(version) => {
                                insert_version(
                                    self.txn,
                                    self.tenant.uuid(),
                                    PlanId::from_uuid(id),
                                    version,
                                    now,
                                )
                                .await?
                            }
                            Err(err) => {
                                self.fail(
                                    migration::PLANS,
                                    row.line,
                                    format!("plan `{}`: {err}", row.external_id),
                                );
                                continue;
                            }
                        }
                    }
                    let same_name = current.name == row.name;
                    if !same_rules || !same_name {
                        commission_plans::ActiveModel {
                            id: Set(id),
                            name: Set(row.name.clone()),
                            updated_at: Set(now),
                            ..Default::default()
                        }
                        .update(self.txn)
                        .await?;
                    }
                    if same_rules && same_name { Change::Unchanged } else { Change::Updated }
                }
            };
            self.summary.plans.count(change);
            self.note(change, &format!("plan `{}`", row.external_id), migration::PLANS, row.line);
        }
        Ok(ids)
    }

    /// One plan per campaign, affiliate (or the campaign's default) and date: a re-run that
    /// names another plan for the same slot moves the assignment to it.
    pub(super) async fn assignments(
        &mut self,
        rows: &[ImportedAssignment],
        refs: &Refs,
        plans: &HashMap<String, uuid::Uuid>,
    ) -> Result<()> {
        let now = Utc::now();
        for row in rows {
            let affiliate = match &row.affiliate {
                None => None,
                Some(affiliate) => match refs.affiliate(affiliate) {
                    Some(id) => Some(id),
                    None => {
                        self.fail(migration::ASSIGNMENTS, row.line, "its affiliate is gone");
                        continue;
                    }
                },
            };
            let (Some(plan), Some(campaign)) =
                (plans.get(&row.plan).copied(), refs.campaigns.get(&row.campaign))
            else {
                self.fail(migration::ASSIGNMENTS, row.line, "its plan or campaign is gone");
                continue;
            };
            let slot = plan_assignments::Entity::find()
                .filter(plan_assignments::Column::TenantId.eq(self.tenant.uuid()))
                .filter(plan_assignments::Column::CampaignId.eq(*campaign))
                .filter(plan_assignments::Column::EffectiveFrom.eq(row.effective_from));
            let slot = match affiliate {
                Some(affiliate) => slot.filter(plan_assignments::Column::AffiliateId.eq(affiliate)),
                None => slot.filter(plan_assignments::Column::AffiliateId.is_null()),
            };
            let change = match slot.one(self.txn).await? {
                Some(current) if current.plan_id == plan => Change::Unchanged,
                Some(current) => {
                    plan_assignments::ActiveModel {
                        id: Set(current.id),
                        plan_id: Set(plan),
                        ..Default::default()
                    }
                    .update(self.txn)
                    .await?;
                    Change::Updated
                }
                None => {
                    plan_assignments::ActiveModel {
                        id: Set(PlanAssignmentId::new().uuid()),
                        tenant_id: Set(self.tenant.uuid()),
                        plan_id: Set(plan),
                        campaign_id: Set(*campaign),
                        affiliate_id: Set(affiliate),
                        effective_from: Set(row.effective_from),
                        created_at: Set(now),
                    }
                    .insert(self.txn)
                    .await?;
                    Change::Created
                }
            };
            self.summary.assignments.count(change);
            let whom = row.affiliate.as_deref().map(|a| format!(" for `{a}`")).unwrap_or_default();
            let what = format!("assignment of plan `{}` to campaign `{}`{whom}", row.plan, row.campaign);
            self.note(change, &what, migration::ASSIGNMENTS, row.line);
        }
        Ok(())
    }
}
