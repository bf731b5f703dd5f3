//! Training data for the data-driven (Markov) model: each visitor's journey of affiliate
//! touches, and whether it led to a conversion.
//!
//! Read a page at a time, so a training run's memory does not grow with the tenant's traffic:
//! clicks come in visitor order (keyset pages over `ix_clicks_tenant_visitor_time`), so each
//! visitor's journey is complete when the next visitor starts and is handed to the caller at
//! once; only the columns training needs are read. Which clicks converted is known from a
//! compact, sorted list of 16-byte digests of the converting click IDs (read in keyset pages
//! of attributed conversions), never from whole conversion rows.

use chrono::{DateTime, Utc};
use clickledger_domain::ids::{AffiliateId, TenantId};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::entities::{campaigns, clicks, conversions};
use crate::{Db, Result};

/// Most clicks read for one training run; beyond this the oldest are left out.
pub const MAX_TRAINING_CLICKS: u64 = 500_000;

/// Rows per page read.
const PAGE_ROWS: u64 = 5_000;

/// Hands every journey since `since` (affiliates in click order, with whether it converted)
/// to `journey`, one visitor at a time; returns how many there were. A converting journey
/// ends at its first click that an attributed conversion names; the visitor's later clicks
/// are left out. Only the newest [`MAX_TRAINING_CLICKS`] clicks count (clicks at the same
/// instant as the oldest of them count too).
pub async fn for_each_training_journey(
    db: &Db,
    tenant: TenantId,
    since: DateTime<Utc>,
    journey: impl FnMut(&[AffiliateId], bool),
) -> Result<usize> {
    journeys_in_pages(db, tenant, since, PAGE_ROWS, journey).await
}

async fn journeys_in_pages(
    db: &Db,
    tenant: TenantId,
    since: DateTime<Utc>,
    page_rows: u64,
    mut journey: impl FnMut(&[AffiliateId], bool),
) -> Result<usize> {
    let converting = converting_clicks(db, tenant, since, page_rows).await?;
    let from = oldest_click_counted(db, tenant, since).await?;

    let mut visitors = 0;
    // The visitor being read: its touches so far, and whether it has converted.
    let mut current: Option<(Uuid, Vec<AffiliateId>, bool)> = None;
    let mut after: Option<(Uuid, DateTime<Utc>, String)> = None;
    loop {
        let mut query = clicks::Entity::find()
            .select_only()
            .column(clicks::Column::VisitorId)
            .column(clicks::Column::ClickedAt)
            .column(clicks::Column::ClickId)
            .column(clicks::Column::AffiliateId)
            .filter(clicks::Column::TenantId.eq(tenant.uuid()))
            .filter(clicks::Column::ClickedAt.gte(from));
        if let Some((visitor, at, click)) = after.take() {
            // A row comparison: a range start on the index, on both databases.
            let key = [clicks::Column::VisitorId, clicks::Column::ClickedAt, clicks::Column::ClickId];
            query = query.filter(Expr::tuple(key.map(Expr::col)).gt(Expr::tuple([
                Expr::val(visitor),
                Expr::val(at),
                Expr::val(click),
            ])));
        }
        let page: Vec<(Uuid, DateTime<Utc>, String, Uuid)> = query
            .order_by_asc(clicks::Column::VisitorId)
            .order_by_asc(clicks::Column::ClickedAt)
            .order_by_asc(clicks::Column::ClickId)
            .limit(page_rows)
            .into_tuple()
            .all(db.reader())
            .await?;
        let full = u64::try_from(page.len()).unwrap_or(u64::MAX) >= page_rows;
        for (visitor, at, click, affiliate) in page {
            let continues = current.as_ref().is_some_and(|(seen, ..)| *seen == visitor);
            if !continues {
                if let Some((_, path, converted)) = current.take() {
                    journey(&path, converted);
                    visitors += 1;
                }
                current = Some((visitor, Vec::new(), false));
            }
            if let Some((_, path, converted)) = current.as_mut()
                && !*converted
            {
                let affiliate = AffiliateId::from_uuid(affiliate);
                // A repeat of the same affiliate adds nothing to the chain: keep one.
                if path.last() != Some(&affiliate) {
                    path.push(affiliate);
                }
                *converted = converting.binary_search(&digest(&click)).is_ok();
            }
            after = Some((visitor, at, click));
        }
        if !full {
            break;
        }
    }
    if let Some((_, path, converted)) = current {
        journey(&path, converted);
        visitors += 1;
    }
    Ok(visitors)
}

/// The time of the oldest click counted: `since`, or later when there are more than
/// [`MAX_TRAINING_CLICKS`] clicks since then (one index read of `ix_clicks_tenant_time`).
async fn oldest_click_counted(db: &Db, tenant: TenantId, since: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let newest_kept: Option<DateTime<Utc>> = clicks::Entity::find()
        .select_only()
        .column(clicks::Column::ClickedAt)
        .filter(clicks::Column::TenantId.eq(tenant.uuid()))
        .filter(clicks::Column::ClickedAt.gte(since))
        .order_by_desc(clicks::Column::ClickedAt)
        .offset(MAX_TRAINING_CLICKS - 1)
        .limit(1)
        .into_tuple()
        .one(db.reader())
        .await?;
    Ok(newest_kept.map_or(since, |at| Ord::max(at, since)))
}

/// Digests of the click IDs that attributed conversions received since `since` name, sorted.
async fn converting_clicks(
    db: &Db,
    tenant: TenantId,
    since: DateTime<Utc>,
    page_rows: u64,
) -> Result<Vec<u128>> {
    let mut digests = Vec::new();
    let mut after: Option<Uuid> = None;
    loop {
        let mut query = conversions::Entity::find()
            .select_only()
            .column(conversions::Column::Id)
            .column(conversions::Column::ClickId)
            .filter(conversions::Column::TenantId.eq(tenant.uuid()))
            .filter(conversions::Column::ReceivedAt.gte(since))
            .filter(conversions::Column::Attributed.eq(true))
            .filter(conversions::Column::ClickId.is_not_null());
        if let Some(id) = after {
            query = query.filter(conversions::Column::Id.gt(id));
        }
        let page: Vec<(Uuid, Option<String>)> = query
            .order_by_asc(conversions::Column::Id)
            .limit(page_rows)
            .into_tuple()
            .all(db.reader())
            .await?;
        let full = u64::try_from(page.len()).unwrap_or(u64::MAX) >= page_rows;
        for (id, click) in page {
            digests.extend(click.as_deref().map(digest));
            after = Some(id);
        }
        if !full {
            break;
        }
    }
    digests.sort_unstable();
    digests.dedup();
    Ok(digests)
}

/// 16 bytes of the click ID's SHA-256: as good as the ID for telling clicks apart.
fn digest(click: &str) -> u128 {
    let hash = Sha256::digest(click.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    u128::from_be_bytes(bytes)
}

/// Tenants with at least one DATA_DRIVEN campaign: the ones worth retraining.
pub async fn tenants_with_data_driven_campaigns(db: &Db) -> Result<Vec<TenantId>> {
    let rows = campaigns::Entity::find()
        .filter(campaigns::Column::AttributionModel.eq("DATA_DRIVEN"))
        .all(db.reader())
        .await?;
    let mut tenants: Vec<TenantId> = rows.into_iter().map(|c| TenantId::from_uuid(c.tenant_id)).collect();
    tenants.sort();
    tenants.dedup();
    Ok(tenants)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use clickledger_domain::attribution::{MarkovModel, MarkovTrainer};
    use sea_orm::ActiveValue::Set;

    use super::*;

    /// The journeys as training read them before it was paged: every click and every
    /// attributed conversion of the window loaded at once, grouped in memory.
    async fn loaded_at_once(
        db: &Db,
        tenant: TenantId,
        since: DateTime<Utc>,
    ) -> Vec<(Vec<AffiliateId>, bool)> {
        let rows = clicks::Entity::find()
            .filter(clicks::Column::TenantId.eq(tenant.uuid()))
            .filter(clicks::Column::ClickedAt.gte(since))
            .order_by_desc(clicks::Column::ClickedAt)
            .limit(MAX_TRAINING_CLICKS)
            .all(db.reader())
            .await
            .unwrap();
        let converting: HashSet<String> = conversions::Entity::find()
            .filter(conversions::Column::TenantId.eq(tenant.uuid()))
            .filter(conversions::Column::ReceivedAt.gte(since))
            .filter(conversions::Column::Attributed.eq(true))
            .filter(conversions::Column::ClickId.is_not_null())
            .all(db.reader())
            .await
            .unwrap()
            .into_iter()
            .filter_map(|c| c.click_id)
            .collect();
        let mut journeys: HashMap<Uuid, (Vec<AffiliateId>, bool)> = HashMap::new();
        for click in rows.into_iter().rev() {
            let journey = journeys.entry(click.visitor_id).or_default();
            if journey.1 {
                continue;
            }
            journey.0.push(AffiliateId::from_uuid(click.affiliate_id));
            journey.1 = converting.contains(&click.click_id);
        }
        journeys.into_values().collect()
    }

    fn conversion(
        tenant: TenantId,
        n: usize,
        click: &str,
        attributed: bool,
        at: DateTime<Utc>,
    ) -> conversions::ActiveModel {
        conversions::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.uuid()),
            dedupe_key: Set(format!("txn:{n}")),
            txn_id: Set(Some(n.to_string())),
            event: Set("deposit".into()),
            status: Set("approved".into()),
            amount: Set(None),
            currency: Set(None),
            lots: Set(None),
            instrument: Set(None),
            click_id: Set(Some(click.to_owned())),
            player_id: Set(None),
            campaign_id: Set(None),
            original_conversion_id: Set(None),
            attributed: Set(attributed),
            unattributed_reason: Set((!attributed).then(|| "click_expired".to_owned())),
            model: Set(None),
            model_version: Set(None),
            journey: Set("[]".into()),
            payload_hash: Set(String::new()),
            payload: Set("{}".into()),
            occurred_at: Set(at),
            received_at: Set(at),
            updated_at: Set(at),
            risk: Set(0),
            fraud_flags: Set("[]".into()),
            fraud_action: Set(None),
            rejection_reason: Set(None),
            review_state: Set(None),
            reviewed_by: Set(None),
            reviewed_at: Set(None),
            review_note: Set(None),
        }
    }

    fn effects(model: &MarkovModel<AffiliateId>) -> Vec<(AffiliateId, f64)> {
        model.removal_effects().map(|(k, e)| (*k, e)).collect()
    }

    #[tokio::test]
    async fn training_over_many_pages_gives_the_same_model_as_loading_everything_at_once() {
        let test = crate::test_support::fresh_db("training").await;
        let db = &test.db;
        let tenant = crate::test_support::tenant(db, "training").await.id;
        let other = crate::test_support::tenant(db, "other").await.id;
        let now = Utc::now();
        let since = now - chrono::Duration::days(90);
        let affiliates: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let visitors: Vec<Uuid> = (0..40).map(|_| Uuid::now_v7()).collect();

        // 400 clicks of 40 visitors over 5 affiliates, pseudo-randomly, some before the window;
        // conversions (attributed or not, in the window or not) on some of them; and another
        // tenant's traffic, which must not count.
        let mut clicks = Vec::new();
        let mut conversions = Vec::new();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % bound as u64).unwrap()
        };
        for n in 0..400 {
            let tenant = if n % 10 == 9 { other } else { tenant };
            // Distinct instants (a tie's order is arbitrary), 140 days back: a third before the window.
            let at = now - chrono::Duration::seconds(i64::try_from(n * 30_000 + next(1_000)).unwrap());
            let click_id = format!("click-{n:04}");
            clicks.push(clicks::ActiveModel {
                click_id: Set(click_id.clone()),
                tenant_id: Set(tenant.uuid()),
                link_id: Set(Uuid::nil()),
                affiliate_id: Set(affiliates[next(affiliates.len())]),
                campaign_id: Set(Uuid::nil()),
                visitor_id: Set(visitors[next(visitors.len())]),
                clicked_at: Set(at),
                ip: Set(None),
                user_agent: Set(None),
                referrer: Set(None),
                sub1: Set(None),
                sub2: Set(None),
                sub3: Set(None),
                sub4: Set(None),
                sub5: Set(None),
                source: Set(None),
                creative: Set(None),
                landing_page: Set(None),
                accept_language: Set(None),
                is_bot: Set(false),
                velocity: Set(false),
                country: Set(None),
            });
            match next(6) {
                0 | 1 => conversions.push(conversion(tenant, n, &click_id, true, at)),
                2 => conversions.push(conversion(tenant, n, &click_id, false, at)),
                3 => conversions.push(conversion(
                    tenant,
                    n,
                    &click_id,
                    true,
                    since - chrono::Duration::days(1),
                )),
                _ => {}
            }
        }
        for chunk in clicks.chunks(100) {
            clicks::Entity::insert_many(chunk.to_vec()).exec_without_returning(db.writer()).await.unwrap();
        }
        for chunk in conversions.chunks(100) {
            conversions::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(db.writer())
                .await
                .unwrap();
        }

        let whole = MarkovModel::train(&loaded_at_once(db, tenant, since).await, 5);
        assert!(whole.conversions() > 0 && whole.trained_on > 20, "a model worth comparing");
        for page_rows in [1, 7, 64, 10_000] {
            let mut trainer = MarkovTrainer::new();
            let journeys = journeys_in_pages(db, tenant, since, page_rows, |path, converted| {
                trainer.add(path, converted);
            })
            .await
            .unwrap();
            assert_eq!(journeys, trainer.journeys(), "pages of {page_rows}");
            let paged = trainer.finish(5);
            assert_eq!(paged.trained_on, whole.trained_on, "pages of {page_rows}");
            assert_eq!(paged.conversions(), whole.conversions(), "pages of {page_rows}");
            assert_eq!(effects(&paged), effects(&whole), "pages of {page_rows}");
        }
    }
}
