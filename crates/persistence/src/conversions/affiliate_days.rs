//! Per affiliate and UTC day, the counts the fraud report and the click-spamming check read:
//! conversions, flagged ones, flagged per rule, and CTIT buckets. Added to in the conversion's
//! own transaction with one multi-row upsert per batch, so reading them is a bounded range read, never
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

/// Per (tenant, day, affiliate, metric), what a batch of new conversions adds: written with
/// one multi-row upsert per batch, not one per conversion.
#[derive(Default)]
pub(super) struct DayCounts(BTreeMap<(uuid::Uuid, i64, uuid::Uuid, String), i64>);

/// Rows per upsert: 5 parameters each, far below both databases' limits.
const ROWS_PER_UPSERT: usize = 1_000;

impl DayCounts {
    /// Counts the new conversion for each affiliate it credits (chargebacks are not
    /// conversions here, and an unattributed conversion credits no one).
    pub(super) fn add(&mut self, job: &Prepared, verdict: &Verdict, ctit: Option<TimeDelta>) {
        let resolution = &job.resolution;
        if job.postback.event == EventKind::Chargeback
            || resolution.unattributed_reason.is_some()
            || resolution.credits.is_empty()
        {
            return;
        }
        let mut metrics = vec![CONVERSIONS.to_owned()];
        if !verdict.flags.is_empty() {
            metrics.push(FLAGGED.to_owned());
        }
        metrics.extend(verdict.flags.iter().map(|flag| format!("{RULE_PREFIX}{}", flag.rule)));
        metrics.extend(ctit.map(|ctit| CtitBucket::of(ctit).as_str().to_owned()));
        let day = day_of(job.received_at);
        for credit in &resolution.credits {
            for metric in &metrics {
                let key = (job.tenant.uuid(), day, credit.affiliate_id.uuid(), metric.clone());
                *self.0.entry(key).or_default() += 1;
            }
        }
    }

    /// Adds the counts to the stored days. Keyed, so a key is in a statement once (PostgreSQL
    /// refuses to update a row twice), and in key order, so concurrent writers lock rows in
    /// one order.
    pub(super) async fn write<C: ConnectionTrait>(self, conn: &C) -> Result<()> {
        let rows: Vec<_> = self.0.into_iter().collect();
        for chunk in rows.chunks(ROWS_PER_UPSERT) {
            let rows = chunk.iter().map(|((tenant, day, affiliate, metric), hits)| {
                affiliate_fraud_days::ActiveModel {
                    tenant_id: Set(*tenant),
                    day: Set(*day),
                    affiliate_id: Set(*affiliate),
                    metric: Set(metric.clone()),
                    hits: Set(*hits),
                }
            });
            let add = OnConflict::columns([
                affiliate_fraud_days::Column::TenantId,
                affiliate_fraud_days::Column::Day,
                affiliate_fraud_days::Column::AffiliateId,
                affiliate_fraud_days::Column::Metric,
            ])
            .value(
                affiliate_fraud_days::Column::Hits,
                Expr::cust("affiliate_fraud_days.hits + excluded.hits"),
            )
            .to_owned();
            affiliate_fraud_days::Entity::insert_many(rows)
                .on_conflict(add)
                .exec_without_returning(conn)
                .await?;
        }
        Ok(())
    }
}
