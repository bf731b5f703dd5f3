//! Bonus-only players, judged when a commission period closes: each promo claim with a bonus
//! that happened in the period (a range of the index `promo_claims (tenant_id,
//! occurred_at)`), against the player's deposits as the ledger knows them (`player_facts`,
//! by its primary key). `clickledger_domain::fraud::bonus_only` decides; a hit adds a
//! `promo_abuse` flag (action FLAG: a close never changes what was booked) to the claiming
//! conversion, which puts it in the review queue. Closing again adds nothing.

use chrono::{DateTime, Utc};
use clickledger_domain::fraud::{Action, Flag, FraudSettings, Rule, Verdict, bonus_only};
use clickledger_domain::ids::TenantId;
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::entities::{conversions, player_facts, promo_claims};
use crate::{Error, Result};

/// Marks the evidence this check writes, so closing again finds it.
const BONUS_ONLY: &str = "bonus-only";

/// Flags the bonus-only players of the period [`from`, `to`); returns how many conversions
/// were flagged.
pub(crate) async fn flag_in_period<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    settings: &FraudSettings,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<u64> {
    if !settings.promo_abuse.enabled {
        return Ok(0);
    }
    let claims = promo_claims::Entity::find()
        .filter(promo_claims::Column::TenantId.eq(tenant.uuid()))
        .filter(promo_claims::Column::OccurredAt.gte(from))
        .filter(promo_claims::Column::OccurredAt.lt(to))
        .filter(promo_claims::Column::BonusAmount.is_not_null())
        .all(conn)
        .await?;
    let mut flagged = 0;
    for claim in claims {
        let Some(bonus) = claim.bonus_amount.as_deref().and_then(|bonus| bonus.parse::<Decimal>().ok())
        else {
            continue;
        };
        let deposits: Decimal = player_facts::Entity::find()
            .filter(player_facts::Column::TenantId.eq(tenant.uuid()))
            .filter(player_facts::Column::PlayerKey.eq(claim.player_id.as_str()))
            .all(conn)
            .await?
            .iter()
            .map(|facts| facts.total_deposits.get())
            .sum();
        let Some(evidence) =
            bonus_only(settings.bonus_only_deposit_floor, &claim.promo_code, bonus, deposits)
        else {
            continue;
        };
        let Some(row) = conversions::Entity::find_by_id(claim.conversion_id)
            .one(conn)
            .await?
            .filter(|row| row.tenant_id == tenant.uuid())
        else {
            continue;
        };
        let mut flags: Vec<Flag> = serde_json::from_str(&row.fraud_flags)
            .map_err(|err| Error::Corrupt(format!("fraud flags of conversion {}: {err}", row.id)))?;
        if flags.iter().any(|flag| flag.rule == Rule::PromoAbuse && flag.evidence.starts_with(BONUS_ONLY)) {
            continue;
        }
        flags.push(Flag {
            rule: Rule::PromoAbuse,
            score: settings.promo_abuse.score,
            action: Action::Flag,
            evidence,
        });
        let verdict = Verdict::of(flags);
        let json = serde_json::to_string(&verdict.flags).map_err(|err| Error::Corrupt(err.to_string()))?;
        conversions::Entity::update_many()
            .col_expr(conversions::Column::Risk, Expr::value(i16::from(verdict.risk)))
            .col_expr(conversions::Column::FraudFlags, Expr::value(json))
            .col_expr(
                conversions::Column::FraudAction,
                Expr::value(verdict.action.map(|a| a.as_str().to_owned())),
            )
            .filter(conversions::Column::TenantId.eq(tenant.uuid()))
            .filter(conversions::Column::Id.eq(row.id))
            .exec(conn)
            .await?;
        flagged += 1;
    }
    Ok(flagged)
}
