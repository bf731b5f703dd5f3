//! Promo codes claimed per player, for the promo-abuse rule: who else claimed the postback's
//! code within the window from its IP, from its device, or among the players its cluster
//! signals link it to. Each is one ranged probe of an index led by (tenant, code), reading at
//! most the rule's limit; nothing here decides.

use clickledger_domain::fraud::{FraudSettings, PromoClaim, PromoLink, SharedSignal};
use clickledger_domain::ids::ConversionId;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};

use super::ingest::Prepared;
use crate::Result;
use crate::entities::promo_claims;

/// Other players who claimed the postback's promo code within the window, by link.
pub(super) async fn claims<C: ConnectionTrait>(
    conn: &C,
    settings: &FraudSettings,
    job: &Prepared,
    player: Option<&str>,
    shared: &[SharedSignal],
) -> Result<Vec<PromoClaim>> {
    let signals = &job.postback.signals;
    let Some(code) = signals.promo_code.as_deref() else { return Ok(Vec::new()) };
    let Some((since, limit)) = settings.promo_probe(job.received_at) else { return Ok(Vec::new()) };
    let ip = signals.ip.map(|ip| ip.to_string());
    let claimed = || {
        let mut query = promo_claims::Entity::find()
            .select_only()
            .column(promo_claims::Column::PlayerId)
            .filter(promo_claims::Column::TenantId.eq(job.tenant.uuid()))
            .filter(promo_claims::Column::PromoCode.eq(code))
            .filter(promo_claims::Column::CreatedAt.gt(since));
        if let Some(player) = player {
            query = query.filter(promo_claims::Column::PlayerId.ne(player));
        }
        query.limit(limit)
    };
    let mut found = Vec::new();
    for (link, column, value) in [
        (PromoLink::Ip, promo_claims::Column::Ip, ip.as_deref()),
        (PromoLink::Device, promo_claims::Column::DeviceId, signals.device_id.as_deref()),
    ] {
        let Some(value) = value else { continue };
        let players = claimed().filter(column.eq(value)).into_tuple::<String>().all(conn).await?;
        found.extend(players.into_iter().map(|other_player| PromoClaim { link, other_player }));
    }
    let mut cluster: Vec<&str> = shared.iter().map(|shared| shared.other_player.as_str()).collect();
    cluster.sort_unstable();
    cluster.dedup();
    if !cluster.is_empty() {
        let players = claimed()
            .filter(promo_claims::Column::PlayerId.is_in(cluster))
            .into_tuple::<String>()
            .all(conn)
            .await?;
        found.extend(
            players.into_iter().map(|other_player| PromoClaim { link: PromoLink::Cluster, other_player }),
        );
    }
    Ok(found)
}

/// Records the player's claim of the postback's promo code (its first claim stays).
pub(super) async fn record<C: ConnectionTrait>(
    conn: &C,
    job: &Prepared,
    player: &str,
    conversion: ConversionId,
) -> Result<()> {
    let signals = &job.postback.signals;
    let Some(code) = signals.promo_code.as_deref() else { return Ok(()) };
    let row = promo_claims::ActiveModel {
        tenant_id: Set(job.tenant.uuid()),
        promo_code: Set(code.to_owned()),
        player_id: Set(player.to_owned()),
        ip: Set(signals.ip.map(|ip| ip.to_string())),
        device_id: Set(signals.device_id.clone()),
        conversion_id: Set(conversion.uuid()),
        created_at: Set(job.received_at),
        bonus_amount: Set(signals.bonus_amount.map(|bonus| bonus.to_string())),
        occurred_at: Set(job.occurred_at),
    };
    let keep_first = OnConflict::columns([
        promo_claims::Column::TenantId,
        promo_claims::Column::PromoCode,
        promo_claims::Column::PlayerId,
    ])
    .do_nothing()
    .to_owned();
    promo_claims::Entity::insert(row).on_conflict(keep_first).exec_without_returning(conn).await?;
    Ok(())
}
