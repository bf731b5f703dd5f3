//! Writes the export's conversion history: each row a conversion of model `IMPORTED`,
//! credited in full to its affiliate, under the dedupe key a postback with that `txn_id`
//! has, so a replayed postback of an old transaction is a duplicate, not a second
//! conversion. No ledger entry is booked. Each counts in the rollups of its hour; a re-run
//! that changes one moves its counts with it.

use chrono::Utc;
use clickledger_domain::ids::ConversionId;
use clickledger_domain::migration::{self, HistoryConversion, HistoryDeposits};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::{Change, IMPORTED_MODEL, Refs, Run, credit, imported_conversion};
use crate::Result;
use crate::conversions::load_conversion;
use crate::entities::{ExactDecimal, conversion_credits, conversions};

/// The key a postback with this `txn_id` is stored under (`Postback::dedupe_key`).
fn dedupe_key(txn_id: &str) -> String {
    format!("txn:{txn_id}")
}

impl Run<'_> {
    pub(super) async fn history(
        &mut self,
        rows: &[HistoryConversion],
        refs: &Refs,
        source: &str,
    ) -> Result<()> {
        for row in rows {
            let affiliate = match &row.affiliate {
                None => None,
                Some(affiliate) => match refs.affiliate(affiliate) {
                    Some(id) => Some(id),
                    None => {
                        self.fail(migration::CONVERSIONS, row.line, "its affiliate is gone");
                        continue;
                    }
                },
            };
            let campaign = row.campaign.as_ref().and_then(|c| refs.campaigns.get(c).copied());
            let key = dedupe_key(&row.txn_id);
            let existing = conversions::Entity::find()
                .filter(conversions::Column::TenantId.eq(self.tenant.uuid()))
                .filter(conversions::Column::DedupeKey.eq(key.as_str()))
                .one(self.txn)
                .await?;
            let amount = row.amount.map(|m| ExactDecimal::from(m.amount));
            let currency = row.amount.map(|m| m.currency.code().to_owned());
            let change = match existing {
                // Received here by a postback: the live conversion wins, as a live binding does.
                Some(current) if current.model.as_deref() != Some(IMPORTED_MODEL) => {
                    self.summary.kept_conversions.push(row.txn_id.clone());
                    continue;
                }
                Some(current) => {
                    let credits = conversion_credits::Entity::find()
                        .filter(conversion_credits::Column::TenantId.eq(self.tenant.uuid()))
                        .filter(conversion_credits::Column::ConversionId.eq(current.id))
                        .all(self.txn)
                        .await?;
                    let credited = credits.first().map(|c| c.affiliate_id);
                    let same = credits.len() <= 1
                        && credited == affiliate
                        && current.event == row.event.as_str()
                        && current.status == row.status.as_str()
                        && current.amount.map(ExactDecimal::normalized)
                            == row.amount.map(|m| m.amount.normalize())
                        && current.currency == currency
                        && current.player_id == row.player_id
                        && current.campaign_id == campaign
                        && current.occurred_at == row.occurred_at;
                    if same {
                        Change::Unchanged
                    } else {
                        let id = ConversionId::from_uuid(current.id);
                        let before = load_conversion(self.txn, self.tenant, id).await?;
                        conversion_credits::Entity::delete_many()
                            .filter(conversion_credits::Column::TenantId.eq(self.tenant.uuid()))
                            .filter(conversion_credits::Column::ConversionId.eq(current.id))
                            .exec(self.txn)
                            .await?;
                        if let Some(affiliate) = affiliate {
                            credit(self.txn, self.tenant, current.id, affiliate).await?;
                        }
                        conversions::ActiveModel {
                            id: Set(current.id),
                            event: Set(row.event.as_str().to_owned()),
                            status: Set(row.status.as_str().to_owned()),
                            amount: Set(amount),
                            currency: Set(currency),
                            player_id: Set(row.player_id.clone()),
                            campaign_id: Set(campaign),
                            attributed: Set(affiliate.is_some()),
                            occurred_at: Set(row.occurred_at),
                            updated_at: Set(Utc::now()),
                            ..Default::default()
                        }
                        .update(self.txn)
                        .await?;
                        let after = load_conversion(self.txn, self.tenant, id).await?;
                        crate::rollups::record_relinked(self.txn, self.backend, &before, &after, None)
                            .await?;
                        Change::Updated
                    }
                }
                None => {
                    let id = ConversionId::new();
                    let now = Utc::now();
                    let payload = serde_json::json!({
                        "imported_from": source,
                        "affiliate_external_id": row.affiliate,
                        "campaign_external_id": row.campaign,
                    })
                    .to_string();
                    conversions::ActiveModel {
                        id: Set(id.uuid()),
                        dedupe_key: Set(key),
                        txn_id: Set(Some(row.txn_id.clone())),
                        event: Set(row.event.as_str().to_owned()),
                        status: Set(row.status.as_str().to_owned()),
                        amount: Set(amount),
                        currency: Set(currency),
                        player_id: Set(row.player_id.clone()),
                        campaign_id: Set(campaign),
                        attributed: Set(affiliate.is_some()),
                        payload: Set(payload),
                        occurred_at: Set(row.occurred_at),
                        ..imported_conversion(self.tenant, source, now)
                    }
                    .insert(self.txn)
                    .await?;
                    if let Some(affiliate) = affiliate {
                        credit(self.txn, self.tenant, id.uuid(), affiliate).await?;
                    }
                    let written = load_conversion(self.txn, self.tenant, id).await?;
                    crate::rollups::record_added(self.txn, self.backend, &written).await?;
                    Change::Created
                }
            };
            self.summary.history.count(change);
            self.note(change, &format!("conversion `{}`", row.txn_id), migration::CONVERSIONS, row.line);
        }
        Ok(())
    }

    /// Feeds the history's deposits into the players' commission facts (in the deposit's
    /// currency), so CPA thresholds see what a player deposited before the cut-over. What to
    /// write is the domain's decision ([`migration::with_history_deposits`]): stored facts are
    /// only raised, so live traffic's facts are kept and a re-run changes nothing.
    pub(super) async fn history_facts(&mut self, deposits: &[HistoryDeposits]) -> Result<()> {
        let now = Utc::now();
        for deposits in deposits {
            let stored = crate::commission::load_stored_facts(
                self.txn,
                self.tenant,
                &deposits.player_id,
                deposits.currency,
            )
            .await?;
            let Some(facts) = migration::with_history_deposits(stored.as_ref(), deposits) else { continue };
            crate::commission::store_facts(self.txn, self.tenant, &deposits.player_id, &facts, now).await?;
            let change = if stored.is_some() { Change::Updated } else { Change::Created };
            let what = format!("deposits of player `{}` in {}", deposits.player_id, deposits.currency);
            self.note(change, &what, migration::CONVERSIONS, deposits.line);
        }
        Ok(())
    }
}
