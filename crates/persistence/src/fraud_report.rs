//! The per-affiliate fraud report and the click-spamming check, read from the counts each
//! conversion's transaction adds to (`affiliate_fraud_days`, see
//! `conversions::affiliate_days`): a range read of the primary key (tenant, day, …) for a
//! period, or of the index (tenant, affiliate, day) for a few affiliates' last days. Never a
//! scan of conversions. What the counts mean is `clickledger_domain::fraud`'s.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, TimeDelta};
use clickledger_domain::fraud::{CLICK_SPAMMING_DAYS, CtitBucket, CtitCounts, Rule};
use clickledger_domain::ids::AffiliateId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::Result;
use crate::conversions::{CONVERSIONS, FLAGGED, RULE_PREFIX};
use crate::entities::affiliate_fraud_days;
use crate::fraud::{Fraud, stored_settings};

/// The longest period one report covers.
pub const MAX_REPORT_DAYS: i64 = 400;

/// One affiliate's line of the fraud report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffiliateFraud {
    pub affiliate: AffiliateId,
    pub name: String,
    /// Conversions crediting it (chargebacks aside).
    pub conversions: u64,
    /// Those with at least one fraud flag.
    pub flagged: u64,
    /// Flagged conversions per rule (a conversion counts once under each rule that fired).
    pub by_rule: BTreeMap<Rule, u64>,
    /// Conversions with a known click-to-conversion time, per bucket.
    pub ctit: CtitCounts,
    /// Whether it is click spamming over the [`CLICK_SPAMMING_DAYS`] ending on the report's
    /// last day.
    pub click_spamming: bool,
}

/// An affiliate's click-spamming state: the CTIT counts of its last days, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickSpammingState {
    pub ctit: CtitCounts,
    pub flagged: bool,
    /// What the check counted, against which threshold.
    pub evidence: String,
}

fn day_number(day: NaiveDate) -> i64 {
    day.signed_duration_since(NaiveDate::default()).num_days()
}

/// Adds one stored count to a report line.
fn add(line: &mut AffiliateFraud, metric: &str, hits: u64) {
    if metric == CONVERSIONS {
        line.conversions += hits;
    } else if metric == FLAGGED {
        line.flagged += hits;
    } else if let Some(rule) = metric.strip_prefix(RULE_PREFIX).and_then(|rule| rule.parse::<Rule>().ok()) {
        *line.by_rule.entry(rule).or_default() += hits;
    } else if let Some(bucket) = CtitBucket::parse(metric) {
        line.ctit.add(bucket, hits);
    }
}

impl Fraud<'_> {
    /// Per affiliate credited in the UTC days `from`–`to` (both included): conversions,
    /// flagged ones in all and per rule, CTIT buckets and click spamming. Staff only.
    pub async fn report(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<AffiliateFraud>> {
        crate::repo::require_staff_pub(&self.scope)?;
        if to < from {
            return Err(clickledger_domain::Error::invalid("to", "must not be before `from`").into());
        }
        if (to - from).num_days() >= MAX_REPORT_DAYS {
            return Err(clickledger_domain::Error::invalid(
                "to",
                format!("a report covers at most {MAX_REPORT_DAYS} days"),
            )
            .into());
        }
        let tenant = self.scope.tenant();
        let rows = affiliate_fraud_days::Entity::find()
            .select_only()
            .column(affiliate_fraud_days::Column::AffiliateId)
            .column(affiliate_fraud_days::Column::Metric)
            .column(affiliate_fraud_days::Column::Hits)
            .filter(affiliate_fraud_days::Column::TenantId.eq(tenant.uuid()))
            .filter(affiliate_fraud_days::Column::Day.between(day_number(from), day_number(to)))
            .into_tuple::<(uuid::Uuid, String, i64)>()
            .all(self.db.reader())
            .await?;
        let mut lines: BTreeMap<uuid::Uuid, AffiliateFraud> = BTreeMap::new();
        for (affiliate, metric, hits) in rows {
            let line = lines.entry(affiliate).or_insert_with(|| AffiliateFraud {
                affiliate: AffiliateId::from_uuid(affiliate),
                name: String::new(),
                conversions: 0,
                flagged: 0,
                by_rule: BTreeMap::new(),
                ctit: CtitCounts::default(),
                click_spamming: false,
            });
            add(line, &metric, u64::try_from(hits).unwrap_or(0));
        }
        let ids: Vec<AffiliateId> = lines.values().map(|line| line.affiliate).collect();
        let spamming = self.click_spamming(&ids, to).await?;
        let names = crate::fraud_alert_mail::affiliate_names(self.db, tenant, lines.keys().copied()).await?;
        Ok(lines
            .into_values()
            .map(|mut line| {
                line.name = names.get(&line.affiliate.uuid()).cloned().unwrap_or_default();
                line.click_spamming = spamming.get(&line.affiliate).is_some_and(|state| state.flagged);
                line
            })
            .collect())
    }

    /// The click-spamming state of each of `affiliates` over the [`CLICK_SPAMMING_DAYS`] UTC
    /// days ending on `last_day`, under the tenant's settings. Staff only.
    pub async fn click_spamming(
        &self,
        affiliates: &[AffiliateId],
        last_day: NaiveDate,
    ) -> Result<HashMap<AffiliateId, ClickSpammingState>> {
        crate::repo::require_staff_pub(&self.scope)?;
        if affiliates.is_empty() {
            return Ok(HashMap::new());
        }
        let tenant = self.scope.tenant();
        let settings = stored_settings(self.db.reader(), tenant).await?.click_spamming;
        let last = day_number(last_day);
        let first = day_number(last_day - TimeDelta::days(CLICK_SPAMMING_DAYS - 1));
        let buckets: Vec<&str> = CtitBucket::ALL.iter().map(|bucket| bucket.as_str()).collect();
        let rows = affiliate_fraud_days::Entity::find()
            .select_only()
            .column(affiliate_fraud_days::Column::AffiliateId)
            .column(affiliate_fraud_days::Column::Metric)
            .column(affiliate_fraud_days::Column::Hits)
            .filter(affiliate_fraud_days::Column::TenantId.eq(tenant.uuid()))
            .filter(affiliate_fraud_days::Column::AffiliateId.is_in(affiliates.iter().map(|a| a.uuid())))
            .filter(affiliate_fraud_days::Column::Day.between(first, last))
            .filter(affiliate_fraud_days::Column::Metric.is_in(buckets))
            .into_tuple::<(uuid::Uuid, String, i64)>()
            .all(self.db.reader())
            .await?;
        let mut counts: HashMap<AffiliateId, CtitCounts> = HashMap::new();
        for (affiliate, metric, hits) in rows {
            if let Some(bucket) = CtitBucket::parse(&metric) {
                counts
                    .entry(AffiliateId::from_uuid(affiliate))
                    .or_default()
                    .add(bucket, u64::try_from(hits).unwrap_or(0));
            }
        }
        Ok(counts
            .into_iter()
            .map(|(affiliate, ctit)| {
                let state = ClickSpammingState {
                    ctit,
                    flagged: settings.flags(&ctit),
                    evidence: settings.evidence(&ctit),
                };
                (affiliate, state)
            })
            .collect())
    }
}
