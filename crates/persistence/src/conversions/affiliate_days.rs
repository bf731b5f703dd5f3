//! Per affiliate and UTC day, the counts the fraud report and the click-spamming check read:
//! conversions, flagged ones, flagged per rule, and CTIT buckets. Added to in the conversion's
//! own transaction with one multi-row upsert, so reading them is a bounded range read, never
//! a scan of conversions.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use clickledger_domain::conversion::EventKind;
use clickledger_domain::fraud::{CtitBucket, Verdict};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ConnectionTrait, EntityTrait};

use super::ingest::Prepared;
use crate::Result;
use crate::entities::affiliate_fraud_days;

/// Names the counts are stored under (besides each [`CtitBucket`]'s).
pub(crate) const CONVERSIONS: &str = "conversions";
pub(crate) const FLAGGED: &str = "flagged";
pub(crate) const RULE_PREFIX: &str = "rule:";

/// The UTC day (days since 1970-01-01) a time falls on.
fn day_of(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp().div_euclid(86_400)
}

/// Counts the new conversion for each affiliate it credits (chargebacks are not conversions
/// here, and an unattributed conversion credits no one).
pub(super) async fn record<C: ConnectionTrait>(
    conn: &C,
    job: &Prepared,
    verdict: &Verdict,
    ctit: Option<TimeDelta>,
) -> Result<()> {
    let resolution = &job.resolution;
    if job.postback.event == EventKind::Chargeback
        || resolution.unattributed_reason.is_some()
        || resolution.credits.is_empty()
    {
        return Ok(());
    }
    let mut metrics = vec![CONVERSIONS.to_owned()];
    if !verdict.flags.is_empty() {
        metrics.push(FLAGGED.to_owned());
    }
    metrics.extend(verdict.flags.iter().map(|flag| format!("{RULE_PREFIX}{}", flag.rule)));
    metrics.extend(ctit.map(|ctit| CtitBucket::of(ctit).as_str().to_owned()));
    let day = day_of(job.received_at);
    // Keyed, so a key is in the statement once (PostgreSQL refuses to update a row twice).
    let mut counts: BTreeMap<(uuid::Uuid, &str), i64> = BTreeMap::new();
    for credit in &resolution.credits {
        for metric in &metrics {
            *counts.entry((credit.affiliate_id.uuid(), metric.as_str())).or_default() += 1;
        }
    }
    let rows = counts.into_iter().map(|((affiliate, metric), hits)| affiliate_fraud_days::ActiveModel {
        tenant_id: Set(job.tenant.uuid()),
        day: Set(day),
        affiliate_id: Set(affiliate),
        metric: Set(metric.to_owned()),
        hits: Set(hits),
    });
    let add = OnConflict::columns([
        affiliate_fraud_days::Column::TenantId,
        affiliate_fraud_days::Column::Day,
        affiliate_fraud_days::Column::AffiliateId,
        affiliate_fraud_days::Column::Metric,
    ])
    .value(affiliate_fraud_days::Column::Hits, Expr::cust("affiliate_fraud_days.hits + excluded.hits"))
    .to_owned();
    affiliate_fraud_days::Entity::insert_many(rows).on_conflict(add).exec_without_returning(conn).await?;
    Ok(())
}
