//! Writes the export's balances (`balances.csv`). An open balance is owed to the affiliate:
//! an approved ledger entry of kind `migration`, on the statement of its first month here. A
//! revshare carryover is a loss still to be earned back, never payable: it is kept apart
//! (`opening_carryovers`) and the period close adds it to the first month's opening
//! carryover, where revshare nets it.

use chrono::{DateTime, Utc};
use clickledger_domain::commission::EntryKind;
use clickledger_domain::ids::{AffiliateId, LedgerEntryId};
use clickledger_domain::migration::{self, Opening, OpeningKind};
use clickledger_domain::period::Period;
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::{Change, Refs, Run};
use crate::Result;
use crate::commission::{EntryStatus, StatementStatus, open_period, statement_status};
use crate::entities::{ledger_entries, opening_carryovers};

impl Run<'_> {
    pub(super) async fn openings(&mut self, rows: &[Opening], refs: &Refs, source: &str) -> Result<()> {
        let now = Utc::now();
        let zone = crate::commission::tenant_zone(self.txn, self.tenant).await?;
        let this_month = Period::of(now, zone);
        for row in rows {
            let Some(affiliate) = refs.affiliate(&row.affiliate) else {
                self.fail(migration::BALANCES, row.line, "its affiliate is gone");
                continue;
            };
            let first = row.period.unwrap_or(this_month);
            let written = match row.kind {
                OpeningKind::OpenBalance => {
                    // As for any entry: a month whose statement is closed takes no more.
                    let month = open_period(
                        self.txn,
                        self.tenant,
                        AffiliateId::from_uuid(affiliate),
                        row.amount.currency,
                        first.start(zone),
                        now,
                        zone,
                    )
                    .await?;
                    self.open_balance(row, affiliate, month, source, now).await?
                }
                OpeningKind::RevshareCarryover => self.carryover(row, affiliate, first, source, now).await?,
            };
            let Some((change, amount)) = written else { continue };
            self.summary.openings.count(change);
            let what = format!(
                "{} of `{}`: {} {}",
                row.kind.as_str(),
                row.affiliate,
                amount,
                row.amount.currency.code()
            );
            self.note(change, &what, migration::BALANCES, row.line);
        }
        Ok(())
    }

    /// Whether the affiliate's statement of `month` in the row's currency is paid.
    async fn paid(&self, affiliate: uuid::Uuid, month: Period, row: &Opening) -> Result<bool> {
        let affiliate = AffiliateId::from_uuid(affiliate);
        let status = statement_status(self.txn, self.tenant, affiliate, row.amount.currency, month).await?;
        Ok(status == Some(StatementStatus::Paid))
    }

    /// Ledger entries never change amount: a balance that differs from what earlier runs
    /// booked gets a correction entry for the difference (`<key>#2`, `#3`, …), so the entries
    /// of a balance always add up to the latest export's figure. Returns the change and the
    /// amount booked, or `None` for a zero balance never booked.
    async fn open_balance(
        &mut self,
        row: &Opening,
        affiliate: uuid::Uuid,
        month: Period,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Change, Decimal)>> {
        let key = row.external_id();
        let corrections = format!("{key}#");
        let booked: Vec<ledger_entries::Model> = ledger_entries::Entity::find()
            .filter(ledger_entries::Column::TenantId.eq(self.tenant.uuid()))
            .filter(
                sea_orm::Condition::any()
                    .add(ledger_entries::Column::ExternalId.eq(key.as_str()))
                    .add(ledger_entries::Column::ExternalId.starts_with(corrections.as_str())),
            )
            .all(self.txn)
            .await?
            .into_iter()
            // `starts_with` is a LIKE, where `_` matches any character: keep exact keys only.
            .filter(|entry| {
                entry.external_id.as_deref().is_some_and(|ext| {
                    ext == key || ext.strip_prefix(&corrections).is_some_and(|n| n.parse::<u32>().is_ok())
                })
            })
            .collect();
        let total: Decimal = booked.iter().map(|entry| entry.amount.get()).sum();
        let difference = row.amount.amount - total;
        if difference.is_zero() {
            return Ok((!booked.is_empty()).then_some((Change::Unchanged, difference)));
        }
        let (external_id, reason, change) = if booked.is_empty() {
            (key, format!("{} imported from {source}", row.kind.as_str()), Change::Created)
        } else {
            (
                format!("{corrections}{}", booked.len() + 1),
                format!("correction of the {} imported from {source}", row.kind.as_str()),
                Change::Updated,
            )
        };
        ledger_entries::ActiveModel {
            id: Set(LedgerEntryId::new().uuid()),
            tenant_id: Set(self.tenant.uuid()),
            affiliate_id: Set(affiliate),
            conversion_id: Set(None),
            plan_id: Set(None),
            plan_version: Set(None),
            kind: Set(EntryKind::Migration.as_str().to_owned()),
            tier: Set(0),
            reverses: Set(None),
            reverses_entry_id: Set(None),
            amount: Set(difference.into()),
            currency: Set(row.amount.currency.code().to_owned()),
            basis_amount: Set(None),
            source_amount: Set(None),
            source_currency: Set(None),
            fx_rate: Set(None),
            status: Set(EntryStatus::Approved.as_str().to_owned()),
            period: Set(month.to_string()),
            reason: Set(Some(reason)),
            created_by: Set(None),
            external_id: Set(Some(external_id)),
            occurred_at: Set(now),
            created_at: Set(now),
        }
        .insert(self.txn)
        .await?;
        Ok(Some((change, difference)))
    }

    /// One carryover per affiliate and currency, updated in place when a re-run finds another
    /// figure or first month: it is not money booked, only where revshare netting starts.
    /// Returns the change and the carryover, or `None` for a zero carryover never stored.
    async fn carryover(
        &mut self,
        row: &Opening,
        affiliate: uuid::Uuid,
        month: Period,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Change, Decimal)>> {
        let amount = row.amount.amount;
        let stored = opening_carryovers::Entity::find_by_id((
            self.tenant.uuid(),
            affiliate,
            row.amount.currency.code().to_owned(),
        ))
        .one(self.txn)
        .await?;
        match &stored {
            Some(stored) if stored.amount.get() == amount && stored.period == month.to_string() => {
                return Ok(Some((Change::Unchanged, amount)));
            }
            None if amount.is_zero() => return Ok(None),
            _ => {}
        }
        // A paid month has the carryover settled in it: the month it opens now, and the one
        // it opened before.
        let mut opened = vec![month];
        if let Some(stored) = &stored {
            opened.push(Period::parse(&stored.period, "period")?);
        }
        for month in opened {
            let paid = self.paid(affiliate, month, row).await?;
            if let Err(message) = migration::carryover_may_change(month, paid) {
                self.fail(migration::BALANCES, row.line, message);
                return Ok(None);
            }
        }
        let Some(stored) = stored else {
            opening_carryovers::ActiveModel {
                tenant_id: Set(self.tenant.uuid()),
                affiliate_id: Set(affiliate),
                currency: Set(row.amount.currency.code().to_owned()),
                period: Set(month.to_string()),
                amount: Set(amount.into()),
                source: Set(source.to_owned()),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(self.txn)
            .await?;
            return Ok(Some((Change::Created, amount)));
        };
        opening_carryovers::ActiveModel {
            period: Set(month.to_string()),
            amount: Set(amount.into()),
            source: Set(source.to_owned()),
            updated_at: Set(now),
            ..stored.into()
        }
        .update(self.txn)
        .await?;
        Ok(Some((Change::Updated, amount)))
    }
}
