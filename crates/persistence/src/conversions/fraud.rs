//! Gathers what the fraud rules judge a new conversion on (the batch's stored facts, read
//! once by [`super::fraud_facts`], and its earlier conversions' signals), and records the
//! player's cluster signals for the conversions after it. The rules themselves are
//! `clickledger_domain::fraud`; nothing here decides.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use clickledger_domain::fraud::{
    BotClick, Burst, Facts, FraudSettings, IpList, IpSource, ListedIp, SharedSignal, VELOCITY_WINDOW,
    Verdict, judge,
};
use clickledger_domain::ids::{ConversionId, TenantId};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect};

use super::fraud_facts::{IP_SIGNAL, OTHERS_PER_SIGNAL, StoredFacts};
use super::ingest::Prepared;
use crate::Result;
use crate::entities::{clicks, player_signals};
use crate::ip_lists::IpLists;

/// Each tenant's fraud settings (the defaults where it saved none).
pub(super) async fn settings_of<C: ConnectionTrait>(
    conn: &C,
    tenants: Vec<TenantId>,
) -> Result<HashMap<TenantId, FraudSettings>> {
    let mut settings = HashMap::new();
    for tenant in tenants {
        if settings.contains_key(&tenant) {
            continue;
        }
        settings.insert(tenant, crate::fraud::stored_settings(conn, tenant).await?);
    }
    Ok(settings)
}

/// Judges the new conversion `id` of `job` on the batch's `stored` facts and the signals of
/// its earlier conversions, then records its player's cluster signals (after the lookup, so
/// the player never matches itself).
pub(super) async fn judge_new<C: ConnectionTrait>(
    conn: &C,
    settings: &FraudSettings,
    lists: &IpLists,
    stored: &StoredFacts,
    batch: &mut BatchSignals,
    id: ConversionId,
    job: &Prepared,
) -> Result<Verdict> {
    let player = job.postback.subject.player_id();
    let signals = job.postback.signals.cluster_values();
    let mut shared = Vec::new();
    if let Some(player) = player.filter(|_| settings.checks_clusters()) {
        for &(signal, value) in &signals {
            let before = shared.len();
            shared.extend(stored.others(job.tenant, signal.as_str(), value, player).map(|other| {
                SharedSignal {
                    signal,
                    other_player: other.player.clone(),
                    other_conversion: other.conversion,
                }
            }));
            // Players seen earlier in this batch are not stored yet; they come after the
            // stored ones, as they are newer.
            let room = OTHERS_PER_SIGNAL - (shared.len() - before);
            shared.extend(batch.others(job.tenant, signal.as_str(), value, player).take(room).map(|other| {
                SharedSignal {
                    signal,
                    other_player: other.player.clone(),
                    other_conversion: other.conversion,
                }
            }));
        }
    }
    let logins = if settings.checks_logins() { stored.logins(job) } else { Vec::new() };
    let click = named_click(conn, settings, job).await?;
    let bot_click = click.as_ref().and_then(|click| click.bot.clone());
    let listed_ips = listed_ips(settings, lists, job, click.as_ref().and_then(|click| click.ip));
    let ip = job.postback.signals.ip.map(|ip| ip.to_string());
    // The registration's IP is kept with its cluster signals, for the velocity rule only.
    let mut seen: Vec<(&str, &str)> =
        signals.iter().map(|&(signal, value)| (signal.as_str(), value)).collect();
    if job.postback.event == clickledger_domain::conversion::EventKind::Registration
        && let Some(ip) = &ip
    {
        seen.push((IP_SIGNAL, ip.as_str()));
    }
    let bursts = bursts(settings, stored, batch, job, player, ip.as_deref());
    let promo_claims = super::promo::claims(conn, settings, job, player, &shared).await?;
    let ctit = click_to_conversion(job);
    let facts = Facts {
        event: job.postback.event,
        shared: &shared,
        click_to_conversion: ctit,
        occurred_at: job.occurred_at,
        affiliate_logins: &logins,
        bot_click: bot_click.as_ref(),
        listed_ips: &listed_ips,
        bursts: &bursts,
        fast_click: click.as_ref().and_then(|click| click.fast.as_deref()),
        user_agent: job.postback.signals.user_agent.as_deref(),
        promo_code: job.postback.signals.promo_code.as_deref(),
        promo_claims: &promo_claims,
    };
    let verdict = judge(settings, &facts);
    if let Some(player) = player {
        batch.record(job.tenant, player, id, &seen, job.received_at);
        super::promo::record(conn, job, player, id).await?;
    }
    Ok(verdict)
}

/// For a registration, how many other players were first seen within the last hour with its
/// IP and with its device, stored or earlier in the batch, counting at most the rule's limit.
fn bursts(
    settings: &FraudSettings,
    stored: &StoredFacts,
    batch: &BatchSignals,
    job: &Prepared,
    player: Option<&str>,
    ip: Option<&str>,
) -> Vec<Burst> {
    let Some(limit) = settings.velocity_probe(job.postback.event) else { return Vec::new() };
    let since = job.received_at - VELOCITY_WINDOW;
    let mut bursts = Vec::new();
    for (signal, value) in [(IP_SIGNAL, ip), ("device_id", job.postback.signals.device_id.as_deref())] {
        let Some(value) = value else { continue };
        let found = stored.recent(job.tenant, signal, value, player, since, limit);
        let in_batch = batch
            .others(job.tenant, signal, value, player.unwrap_or_default())
            .filter(|other| other.at > since)
            .count();
        let others = (found + in_batch).min(usize::try_from(limit).unwrap_or(usize::MAX));
        bursts.push(Burst { signal, others: others as u64 });
    }
    bursts
}

/// What the rules need of the click the postback names.
struct NamedClick {
    ip: Option<std::net::IpAddr>,
    /// Its ID, when it came beyond the clicks a minute allowed.
    fast: Option<String>,
    bot: Option<BotClick>,
}

/// The click the postback names, when a rule needs it: as attribution read it with the
/// journey, else (its row was written after that read) one primary-key probe; `None` when it
/// names none or its row is not written.
async fn named_click<C: ConnectionTrait>(
    conn: &C,
    settings: &FraudSettings,
    job: &Prepared,
) -> Result<Option<NamedClick>> {
    let needed = settings.checks_click_marks() || IpList::ALL.into_iter().any(|list| settings.checks(list));
    let Some(click_id) = job.postback.subject.click_id().filter(|_| needed) else { return Ok(None) };
    let found = match job.resolution.click.as_ref().filter(|row| row.click_id == click_id) {
        Some(row) => Some((row.tenant, row.ip.clone(), row.user_agent.clone(), row.is_bot, row.velocity)),
        None => {
            clicks::Entity::find_by_id(click_id.to_owned())
                .select_only()
                .column(clicks::Column::TenantId)
                .column(clicks::Column::Ip)
                .column(clicks::Column::UserAgent)
                .column(clicks::Column::IsBot)
                .column(clicks::Column::Velocity)
                .into_tuple::<(uuid::Uuid, Option<String>, Option<String>, bool, bool)>()
                .one(conn)
                .await?
        }
    };
    Ok(found.filter(|(tenant, ..)| *tenant == job.tenant.uuid()).map(
        |(_, ip, user_agent, is_bot, velocity)| NamedClick {
            ip: ip.and_then(|ip| ip.parse().ok()),
            fast: velocity.then(|| click_id.to_owned()),
            bot: is_bot.then(|| BotClick {
                click_id: click_id.to_owned(),
                user_agent: user_agent.unwrap_or_default(),
            }),
        },
    ))
}

/// The postback's and its click's addresses found in the operator's lists whose rules are on,
/// looked up in the lists the writer holds in memory.
fn listed_ips(
    settings: &FraudSettings,
    lists: &IpLists,
    job: &Prepared,
    click_ip: Option<std::net::IpAddr>,
) -> Vec<ListedIp> {
    let mut addresses = Vec::new();
    if let Some(ip) = job.postback.signals.ip {
        addresses.push((ip, IpSource::Postback));
    }
    if let Some(ip) = click_ip.filter(|ip| Some(*ip) != job.postback.signals.ip) {
        addresses.push((ip, IpSource::Click));
    }
    let mut listed = Vec::new();
    for list in IpList::ALL.into_iter().filter(|list| settings.checks(*list)) {
        for &(ip, source) in &addresses {
            if let Some(range) = lists.holding(list, ip) {
                listed.push(ListedIp { list, ip, source, range });
            }
        }
    }
    listed
}

/// From the click the postback names (as found in its journey) to when the conversion
/// happened.
pub(super) fn click_to_conversion(job: &Prepared) -> Option<chrono::TimeDelta> {
    let click = job.postback.subject.click_id()?;
    let touch = job.resolution.journey.iter().find(|touch| touch.click_id == click)?;
    Some(job.occurred_at - touch.at)
}

/// A player's signal seen by a conversion of the batch being written.
pub(super) struct SeenSignal {
    tenant: TenantId,
    signal: String,
    value: String,
    player: String,
    conversion: ConversionId,
    at: DateTime<Utc>,
}

/// The players' signals the batch's conversions carried, written with one multi-row insert
/// when the batch's conversions are judged; until then the lookups of its later conversions
/// find them here, as they would find them stored.
#[derive(Default)]
pub(super) struct BatchSignals(Vec<SeenSignal>);

/// Rows per insert: 6 parameters each, far below both databases' limits.
const SIGNALS_PER_INSERT: usize = 1_000;

impl BatchSignals {
    /// The batch's other players seen with `(signal, value)`, oldest first.
    fn others<'a>(
        &'a self,
        tenant: TenantId,
        signal: &'a str,
        value: &'a str,
        player: &'a str,
    ) -> impl Iterator<Item = &'a SeenSignal> + 'a {
        self.0.iter().filter(move |seen| {
            seen.tenant == tenant && seen.signal == signal && seen.value == value && seen.player != player
        })
    }

    /// Keeps the player's signals; the first conversion that carried one stays its evidence.
    fn record(
        &mut self,
        tenant: TenantId,
        player: &str,
        conversion: ConversionId,
        signals: &[(&str, &str)],
        at: DateTime<Utc>,
    ) {
        for &(signal, value) in signals {
            let known = self.0.iter().any(|seen| {
                seen.tenant == tenant && seen.signal == signal && seen.value == value && seen.player == player
            });
            if !known {
                self.0.push(SeenSignal {
                    tenant,
                    signal: signal.to_owned(),
                    value: value.to_owned(),
                    player: player.to_owned(),
                    conversion,
                    at,
                });
            }
        }
    }

    /// Stores the batch's signals; one already stored keeps its first conversion.
    pub(super) async fn write<C: ConnectionTrait>(self, conn: &C) -> Result<()> {
        for chunk in self.0.chunks(SIGNALS_PER_INSERT) {
            let rows = chunk.iter().map(|seen| player_signals::ActiveModel {
                tenant_id: Set(seen.tenant.uuid()),
                signal: Set(seen.signal.clone()),
                value: Set(seen.value.clone()),
                player_id: Set(seen.player.clone()),
                conversion_id: Set(seen.conversion.uuid()),
                created_at: Set(seen.at),
            });
            let keep_first = OnConflict::columns([
                player_signals::Column::TenantId,
                player_signals::Column::Signal,
                player_signals::Column::Value,
                player_signals::Column::PlayerId,
            ])
            .do_nothing()
            .to_owned();
            player_signals::Entity::insert_many(rows)
                .on_conflict(keep_first)
                .exec_without_returning(conn)
                .await?;
        }
        Ok(())
    }
}
