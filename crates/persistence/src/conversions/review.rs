//! The fraud review queue and a person's decisions on it. A decision is one transaction: the
//! conversion's status and review columns, its ledger (as `domain::fraud::review` plans it,
//! carried out by `commission::apply_review`), its history line and event, the reporting
//! rollups and the audit entry.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clickledger_domain::audit::AuditAction;
use clickledger_domain::conversion::ConversionStatus;
use clickledger_domain::fraud::review::{self, Decision, ReviewState, Step};
use clickledger_domain::fraud::{Action, Rule};
use clickledger_domain::ids::{AffiliateId, ConversionId, TenantId, UserId};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};

use super::read::{load_conversion, with_credits};
use super::rows::{event_row, history_row};
use super::{Conversion, EVENT_STATUS_CHANGED};
use crate::audit::{self, Actor, Change};
use crate::commission;
use crate::entities::{conversion_credits, conversion_history, conversions, events, player_signals};
use crate::page::{self, Page, PageRequest};
use crate::repo::require_staff_pub;
use crate::{Db, Error, Result, Scope};

/// Other players named per shared signal of a cluster.
const CLUSTER_PER_SIGNAL: u64 = 10;

/// Which flagged conversions to list; `state` `None` means open ones.
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    pub action: Option<Action>,
    pub rule: Option<Rule>,
    pub affiliate: Option<AffiliateId>,
    pub state: Option<ReviewState>,
}

/// Where a conversion is in review.
#[derive(Debug, Clone)]
pub struct ReviewRecord {
    pub state: ReviewState,
    pub reviewed_by: Option<UserId>,
    pub reviewed_at: Option<DateTime<Utc>>,
    /// The approval's note or the rejection's reason.
    pub note: Option<String>,
}

/// A flagged conversion with its review and, where players were linked, the others sharing a
/// signal with its player.
#[derive(Debug, Clone)]
pub struct Reviewed {
    pub conversion: Conversion,
    pub review: ReviewRecord,
    pub cluster: Vec<String>,
}

fn review_of(row: &conversions::Model) -> Result<ReviewRecord> {
    Ok(ReviewRecord {
        state: row.review_state.as_deref().map(str::parse).transpose()?.unwrap_or(ReviewState::Open),
        reviewed_by: row.reviewed_by.map(UserId::from_uuid),
        reviewed_at: row.reviewed_at,
        note: row.review_note.clone(),
    })
}

/// The tenant's fraud review (staff only).
pub struct Review<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> Review<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        Review { db, scope }
    }

    /// Flagged conversions matching `filter`, oldest first.
    pub async fn queue(&self, filter: &ReviewFilter, request: PageRequest) -> Result<Page<Reviewed>> {
        require_staff_pub(&self.scope)?;
        let tenant = self.scope.tenant();
        let mut query = conversions::Entity::find()
            .filter(conversions::Column::TenantId.eq(tenant.uuid()))
            .filter(conversions::Column::FraudAction.is_not_null());
        query = match filter.state.unwrap_or(ReviewState::Open) {
            ReviewState::Open => query.filter(
                Condition::any()
                    .add(conversions::Column::ReviewState.is_null())
                    .add(conversions::Column::ReviewState.eq(ReviewState::Open.as_str())),
            ),
            state => query.filter(conversions::Column::ReviewState.eq(state.as_str())),
        };
        if let Some(action) = filter.action {
            query = query.filter(conversions::Column::FraudAction.eq(action.as_str()));
        }
        if let Some(rule) = filter.rule {
            // The flags are stored as compact JSON: `{"rule":"multi_accounting",…}`.
            query = query
                .filter(conversions::Column::FraudFlags.contains(format!("\"rule\":\"{}\"", rule.as_str())));
        }
        if let Some(affiliate) = filter.affiliate {
            query = query.filter(
                conversions::Column::Id.in_subquery(
                    Query::select()
                        .column(conversion_credits::Column::ConversionId)
                        .from(conversion_credits::Entity)
                        .and_where(conversion_credits::Column::TenantId.eq(tenant.uuid()))
                        .and_where(conversion_credits::Column::AffiliateId.eq(affiliate.uuid()))
                        .to_owned(),
                ),
            );
        }
        let page = page::fetch(query, conversions::Column::Id, request, self.db.reader()).await?;
        let reviews = page.items.iter().map(review_of).collect::<Result<Vec<_>>>()?;
        let conversions = with_credits(self.db.reader(), tenant, page.items).await?;
        let mut items = Vec::with_capacity(conversions.len());
        for (conversion, review) in conversions.into_iter().zip(reviews) {
            let cluster = cluster_of(self.db.reader(), tenant, &conversion).await?;
            items.push(Reviewed { conversion, review, cluster });
        }
        Ok(Page { items, has_next: page.has_next })
    }

    /// Approves (releases held commission; a rejected conversion counts again) or rejects
    /// (voids its commission, reversing what was paid) the conversion, with the note or
    /// reason, as `actor`. Deciding again is allowed; repeating the decision in force (with no
    /// new note) changes nothing.
    pub async fn decide(
        &self,
        id: ConversionId,
        decision: Decision,
        note: Option<String>,
        actor: Actor,
    ) -> Result<Reviewed> {
        require_staff_pub(&self.scope)?;
        let tenant = self.scope.tenant();
        let now = Utc::now();
        let txn = self.db.writer().begin().await?;
        let mut find = conversions::Entity::find()
            .filter(conversions::Column::TenantId.eq(tenant.uuid()))
            .filter(conversions::Column::Id.eq(id.uuid()));
        // Two decisions on one conversion take turns (SQLite has one writer anyway).
        if self.db.backend() == crate::Backend::Postgres {
            find = find.lock_exclusive();
        }
        let row = find.one(&txn).await?.ok_or(Error::NotFound)?;
        let before_review = review_of(&row)?;
        let before = load_conversion(&txn, tenant, id).await?;
        if review::repeats(decision, note.as_deref(), before_review.state, before_review.note.as_deref()) {
            let cluster = cluster_of(&txn, tenant, &before).await?;
            return Ok(Reviewed { conversion: before, review: before_review, cluster });
        }
        let booked = commission::has_entries(&txn, tenant, id).await?;
        let plan = review::plan(decision, before.status, booked);

        // Booking what a fraud rule withheld needs the postback back, as it was received.
        let postback =
            if plan.steps.contains(&Step::Book) { Some(postback_of(&row, plan.status)?) } else { None };
        let zone = commission::tenant_zone(&txn, tenant).await?;
        let booking = postback.as_ref().map(|postback| commission::Booking {
            conversion: id,
            postback,
            campaign: before.campaign_id,
            credits: if before.attributed { &before.credits } else { &[] },
            original: row.original_conversion_id.map(ConversionId::from_uuid),
            occurred_at: before.occurred_at,
            now,
            zone,
            hold: false,
        });
        commission::apply_review(&txn, tenant, id, &plan.steps, booking, now).await?;

        let actor_id = match actor {
            Actor::User(user) => Some(user.uuid()),
            Actor::Host => None,
        };
        conversions::Entity::update_many()
            .col_expr(conversions::Column::Status, Expr::value(plan.status.as_str()))
            .col_expr(conversions::Column::ReviewState, Expr::value(decision.state().as_str()))
            .col_expr(conversions::Column::ReviewedBy, Expr::value(actor_id))
            .col_expr(conversions::Column::ReviewedAt, Expr::value(now))
            .col_expr(conversions::Column::ReviewNote, Expr::value(note.clone()))
            .col_expr(conversions::Column::UpdatedAt, Expr::value(now))
            .filter(conversions::Column::TenantId.eq(tenant.uuid()))
            .filter(conversions::Column::Id.eq(id.uuid()))
            .exec(&txn)
            .await?;

        if plan.status != before.status {
            conversion_history::Entity::insert(history_row(
                tenant,
                id,
                Some(before.status),
                plan.status,
                now,
            ))
            .exec_without_returning(&txn)
            .await?;
            let (seq, _) = super::ingest::advance_seq(&txn, tenant, 1).await?;
            events::Entity::insert(event_row(tenant, seq, id, EVENT_STATUS_CHANGED, plan.status, now))
                .exec_without_returning(&txn)
                .await?;
            super::notify::notify(&txn, self.db.backend(), tenant, seq, super::notify::Publisher::Listeners)
                .await?;
        }
        let after = load_conversion(&txn, tenant, id).await?;
        if plan.status != before.status || plan.steps.contains(&Step::Book) {
            crate::rollups::record_status_change(
                &txn,
                self.db.backend(),
                &before,
                &after,
                country_of(&row).as_deref(),
            )
            .await?;
        }

        let action = match decision {
            Decision::Approve => AuditAction::ConversionApproved,
            Decision::Reject => AuditAction::ConversionRejected,
        };
        let details = serde_json::json!({
            "status": { "from": before.status.as_str().to_uppercase(), "to": plan.status.as_str().to_uppercase() },
            "reviewState": {
                "from": before_review.state.as_str().to_uppercase(),
                "to": decision.state().as_str().to_uppercase(),
            },
            "note": note,
        });
        audit::record(&txn, tenant, actor, vec![Change::new(action, id, details)]).await?;
        let cluster = cluster_of(&txn, tenant, &after).await?;
        let review = ReviewRecord {
            state: decision.state(),
            reviewed_by: actor_id.map(UserId::from_uuid),
            reviewed_at: Some(now),
            note,
        };
        txn.commit().await?;
        Ok(Reviewed { conversion: after, review, cluster })
    }
}

/// The stored postback's fields as the integrator sent them, with `status`.
fn postback_of(
    row: &conversions::Model,
    status: ConversionStatus,
) -> Result<clickledger_domain::postback::Postback> {
    let fields: BTreeMap<String, String> = serde_json::from_str(&row.payload)
        .map_err(|err| Error::Corrupt(format!("conversion {} has an unreadable payload: {err}", row.id)))?;
    let status = status.as_str();
    let pairs = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain([("status", status)]);
    clickledger_domain::postback::parse(pairs, row.received_at)
        .map_err(|_| Error::Corrupt(format!("conversion {} has a payload that no longer parses", row.id)))
}

fn country_of(row: &conversions::Model) -> Option<String> {
    serde_json::from_str::<BTreeMap<String, String>>(&row.payload).ok()?.remove("country")
}

/// The other players sharing a cluster signal with the conversion's player, when the
/// multi-accounting rule linked them (per signal at most [`CLUSTER_PER_SIGNAL`]).
async fn cluster_of<C: sea_orm::ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    conversion: &Conversion,
) -> Result<Vec<String>> {
    let linked = conversion.fraud.flags.iter().any(|flag| flag.rule == Rule::MultiAccounting);
    let Some(player) = conversion.player_id.as_deref().filter(|_| linked) else { return Ok(Vec::new()) };
    let signals = player_signals::Entity::find()
        .filter(player_signals::Column::TenantId.eq(tenant.uuid()))
        .filter(player_signals::Column::PlayerId.eq(player))
        .all(conn)
        .await?;
    let mut others = Vec::new();
    for signal in signals {
        let found: Vec<String> = player_signals::Entity::find()
            .select_only()
            .column(player_signals::Column::PlayerId)
            .filter(player_signals::Column::TenantId.eq(tenant.uuid()))
            .filter(player_signals::Column::Signal.eq(signal.signal.as_str()))
            .filter(player_signals::Column::Value.eq(signal.value.as_str()))
            .filter(player_signals::Column::PlayerId.ne(player))
            .order_by_asc(player_signals::Column::CreatedAt)
            .limit(CLUSTER_PER_SIGNAL)
            .into_tuple()
            .all(conn)
            .await?;
        others.extend(found);
    }
    others.sort();
    others.dedup();
    Ok(others)
}
