//! Booking a conversion's commission, inside the postback's transaction: find the plan in
//! force for each credited affiliate, update the player's running totals, run the engine,
//! and append the entries (overrides included). A chargeback appends the reversal of exactly
//! what the original transaction earned, at every tier.
//!
//! Everything is read and computed first and written last, so an engine error (say, a missing
//! exchange rate) leaves nothing half-written: the conversion is stored without commission
//! and the reason is logged, because a postback is never dropped for a commission problem.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use clickledger_domain::commission::{
    Credit as ShareCredit, EntryDraft, EventContext, EventFacts, MonthToDate, Plan, PlayerFacts, book_for,
    commission_for_event, reversal_of,
};
use clickledger_domain::conversion::{ConversionStatus, EventKind};
use clickledger_domain::ids::{AffiliateId, CampaignId, ConversionId, PlanId, TenantId};
use clickledger_domain::money::{Currency, Money};
use clickledger_domain::postback::Postback;
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use super::ledger::{EntryMeta, entry_model, fx_rate_on, to_draft};
use super::plans::plan_in_force;
use super::{EntryStatus, Period};
use crate::conversions::Credit;
use crate::entities::{
    ExactDecimal, affiliates, conversion_credits, conversions, ledger_entries, player_facts, players,
};
use crate::{Error, Result};

/// What booking needs to know about a freshly stored conversion.
pub(crate) struct Booking<'a> {
    pub conversion: ConversionId,
    pub postback: &'a Postback,
    pub campaign: Option<CampaignId>,
    pub credits: &'a [Credit],
    /// For a chargeback: the conversion it reverses.
    pub original: Option<ConversionId>,
    pub occurred_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// The tenant's time zone: which month the commission belongs to.
    pub zone: Tz,
    /// A fraud rule holds the conversion: its entries are booked held, never payable until
    /// a person releases them.
    pub hold: bool,
}

/// Books the conversion's commission and returns each credited affiliate's own (tier-0)
/// commission, for the event that announces the conversion.
pub(crate) async fn book_conversion<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    booking: Booking<'_>,
) -> Result<HashMap<AffiliateId, Money>> {
    if booking.credits.is_empty() {
        return Ok(HashMap::new());
    }
    let planned = if booking.postback.event == EventKind::Chargeback {
        reversals(conn, tenant, booking.original).await
    } else {
        earnings(conn, tenant, &booking).await
    };
    let entries = Entries {
        conversion: booking.conversion,
        status: entry_status(booking.postback.status, booking.hold),
        occurred_at: booking.occurred_at,
        now: booking.now,
        zone: booking.zone,
    };
    append(conn, tenant, planned, entries).await
}

/// A chargeback stored before its original transaction, applied now that the original is
/// stored: the reversal of what the original booked, as [`book_conversion`] books it for a
/// chargeback that arrives after its original.
pub(crate) struct LateReversal {
    pub chargeback: ConversionId,
    pub original: ConversionId,
    /// The chargeback's status as it stands.
    pub status: ConversionStatus,
    pub hold: bool,
    /// The chargeback's.
    pub occurred_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub zone: Tz,
}

pub(crate) async fn book_late_reversal<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    late: LateReversal,
) -> Result<HashMap<AffiliateId, Money>> {
    let planned = reversals(conn, tenant, Some(late.original)).await;
    let entries = Entries {
        conversion: late.chargeback,
        status: entry_status(late.status, late.hold),
        occurred_at: late.occurred_at,
        now: late.now,
        zone: late.zone,
    };
    append(conn, tenant, planned, entries).await
}

pub(super) fn entry_status(status: ConversionStatus, hold: bool) -> EntryStatus {
    match status {
        ConversionStatus::Rejected => EntryStatus::Rejected,
        _ if hold => EntryStatus::Held,
        ConversionStatus::Pending => EntryStatus::Pending,
        ConversionStatus::Approved => EntryStatus::Approved,
    }
}

/// Where and how planned entries are appended: for which conversion, in which status, and
/// what decides their month.
struct Entries {
    conversion: ConversionId,
    status: EntryStatus,
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
    zone: Tz,
}

/// Appends the planned entries (and stores the player's facts) and returns each credited
/// affiliate's own (tier-0) commission; a plan the engine refused books nothing.
async fn append<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    planned: Result<Planned>,
    booking: Entries,
) -> Result<HashMap<AffiliateId, Money>> {
    let (rows, facts) = match planned {
        Ok(planned) => planned,
        Err(Error::Invalid(err)) => {
            tracing::warn!(
                conversion = %booking.conversion,
                field = err.field(),
                error = %err,
                "conversion stored without commission"
            );
            return Ok(HashMap::new());
        }
        Err(other) => return Err(other),
    };
    for (key, facts) in facts {
        store_facts(conn, tenant, &key, &facts, booking.now).await?;
    }
    let status = booking.status;
    let mut periods: HashMap<(AffiliateId, Currency), Period> = HashMap::new();
    let mut models = Vec::with_capacity(rows.len());
    for (draft, meta) in &rows {
        let key = (draft.beneficiary, draft.amount.currency);
        let period = match periods.get(&key) {
            Some(period) => *period,
            None => {
                let period =
                    open_period(conn, tenant, key.0, key.1, booking.occurred_at, booking.now, booking.zone)
                        .await?;
                periods.insert(key, period);
                period
            }
        };
        models.push(entry_model(
            tenant,
            draft,
            meta,
            Some(booking.conversion),
            status,
            period,
            booking.occurred_at,
            booking.now,
        ));
    }
    if !models.is_empty() {
        ledger_entries::Entity::insert_many(models).exec_without_returning(conn).await?;
    }
    let mut own: HashMap<AffiliateId, Money> = HashMap::new();
    for (draft, _) in rows.iter().filter(|(draft, _)| draft.tier == 0) {
        let sum = match own.get(&draft.beneficiary) {
            Some(sum) => sum.checked_add(draft.amount)?,
            None => draft.amount,
        };
        own.insert(draft.beneficiary, sum);
    }
    Ok(own)
}

/// A later status for the conversion moves its entries along: approved confirms pending
/// entries; rejected voids every entry not yet paid (with its unpaid reversals) and reverses
/// the paid ones into the open period ([`super::rejection`]). Amounts are never touched.
pub(crate) async fn on_status_change<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    conversion: ConversionId,
    to: ConversionStatus,
) -> Result<()> {
    let (from, to): (&[EntryStatus], EntryStatus) = match to {
        ConversionStatus::Pending => return Ok(()),
        ConversionStatus::Approved => (&[EntryStatus::Pending], EntryStatus::Approved),
        ConversionStatus::Rejected => {
            (&[EntryStatus::Pending, EntryStatus::Approved, EntryStatus::Held], EntryStatus::Rejected)
        }
    };
    ledger_entries::Entity::update_many()
        .col_expr(ledger_entries::Column::Status, Expr::value(to.as_str()))
        .filter(ledger_entries::Column::TenantId.eq(tenant.uuid()))
        .filter(ledger_entries::Column::ConversionId.eq(conversion.uuid()))
        .filter(ledger_entries::Column::Status.is_in(from.iter().map(|s| s.as_str())))
        .exec(conn)
        .await?;
    if to == EntryStatus::Rejected {
        super::rejection::settle_rejection(conn, tenant, conversion, chrono::Utc::now()).await?;
    }
    Ok(())
}

type Planned = (Vec<(EntryDraft, EntryMeta)>, HashMap<String, PlayerFacts>);

/// The reversal of every entry the original transaction booked (any tier, any beneficiary),
/// each pointing at the entry it cancels.
async fn reversals<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    original: Option<ConversionId>,
) -> Result<Planned> {
    let Some(original) = original else { return Ok((Vec::new(), HashMap::new())) };
    let booked = ledger_entries::Entity::find()
        .filter(ledger_entries::Column::TenantId.eq(tenant.uuid()))
        .filter(ledger_entries::Column::ConversionId.eq(original.uuid()))
        .filter(ledger_entries::Column::Kind.ne("reversal"))
        .filter(ledger_entries::Column::Status.ne(EntryStatus::Rejected.as_str()))
        .filter(ledger_entries::Column::Id.not_in_subquery(super::rejection::reversed_entries(tenant)))
        .all(conn)
        .await?;
    let mut rows = Vec::with_capacity(booked.len());
    for entry in booked {
        let draft = to_draft(&entry)?;
        for reversal in reversal_of(&[draft]) {
            let meta = EntryMeta {
                plan: entry.plan_id.map(PlanId::from_uuid).zip(entry.plan_version),
                reverses_entry: Some(entry.id),
            };
            rows.push((reversal, meta));
        }
    }
    Ok((rows, HashMap::new()))
}

/// The earnings of a conversion event under each credited affiliate's plan.
async fn earnings<C: ConnectionTrait>(conn: &C, tenant: TenantId, booking: &Booking<'_>) -> Result<Planned> {
    let none = || Ok((Vec::new(), HashMap::new()));
    let Some(campaign) = booking.campaign else { return none() };
    let Some(event) = EventFacts::of(booking.postback)? else { return none() };
    let at = booking.occurred_at;

    // Credited affiliates grouped by the plan version in force for each.
    let mut groups: Vec<(PlanId, u32, Plan, Vec<ShareCredit>)> = Vec::new();
    for credit in booking.credits {
        let Some((plan_id, version)) =
            plan_in_force(conn, tenant.uuid(), campaign, credit.affiliate_id, at).await?
        else {
            continue;
        };
        let share = ShareCredit { affiliate: credit.affiliate_id, share: credit.share };
        match groups.iter_mut().find(|g| g.0 == plan_id && g.1 == version.version) {
            Some(group) => group.3.push(share),
            None => groups.push((plan_id, version.version, version.plan, vec![share])),
        }
    }
    if groups.is_empty() {
        return none();
    }

    let all_credits: Vec<ShareCredit> = booking
        .credits
        .iter()
        .map(|credit| ShareCredit { affiliate: credit.affiliate_id, share: credit.share })
        .collect();
    let subject = &booking.postback.subject;
    let player_key = subject.player_id().or(subject.click_id()).map(str::to_owned);
    let player_key = player_key.unwrap_or_else(|| booking.conversion.to_string());
    // CPA the old tracker paid (an imported player's binding says so) is paid, in any
    // currency: the facts it stores from here on carry it. Only a plan with CPA asks.
    let asks_cpa = groups.iter().any(|(_, _, plan, _)| plan.cpa.is_some());
    let cpa_paid_before_import = match subject.player_id().filter(|_| asks_cpa) {
        Some(player) => players::Entity::find()
            .select_only()
            .column(players::Column::CpaPaidBeforeImport)
            .filter(players::Column::TenantId.eq(tenant.uuid()))
            .filter(players::Column::PlayerId.eq(player))
            .into_tuple::<bool>()
            .one(conn)
            .await?
            .unwrap_or(false),
        None => false,
    };
    // Facts before the event, per plan currency; every group computes from the same "before",
    // and the stored "after" remembers a CPA paid under any of them.
    let mut before: HashMap<Currency, PlayerFacts> = HashMap::new();
    let mut after: HashMap<Currency, PlayerFacts> = HashMap::new();
    let mut rows = Vec::new();
    for (plan_id, version, plan, credits) in groups {
        let currency = plan.currency;
        let facts = match before.get(&currency) {
            Some(facts) => facts.clone(),
            None => {
                let mut facts = load_facts(conn, tenant, &player_key, currency).await?;
                facts.cpa_paid = facts.cpa_paid || cpa_paid_before_import;
                // The latest reported country is the player's (it picks a country's CPA).
                if let Some(country) = &booking.postback.country {
                    facts.country = Some(country.clone());
                }
                before.insert(currency, facts.clone());
                facts
            }
        };
        let fx = match event.currency() {
            Some(from) if from != currency => {
                Some(fx_rate_on(conn, tenant, from, currency, at.date_naive()).await?.ok_or_else(|| {
                    clickledger_domain::Error::invalid(
                        "currency",
                        format!(
                            "no exchange rate from {from} to {currency} on or before {}",
                            at.date_naive()
                        ),
                    )
                })?)
            }
            _ => None,
        };
        let month_to_date = match (&plan.revshare, credits.first()) {
            (Some(_), Some(first)) => {
                month_to_date(conn, tenant, first.affiliate, Period::of(at, booking.zone), booking.zone)
                    .await?
            }
            _ => MonthToDate::default(),
        };
        let outcome = commission_for_event(&plan, &facts, &event, &EventContext { at, fx, month_to_date })?;
        let merged = match after.remove(&currency) {
            Some(previous) => {
                PlayerFacts { cpa_paid: previous.cpa_paid || outcome.player.cpa_paid, ..outcome.player }
            }
            None => outcome.player,
        };
        after.insert(currency, merged);

        let mut uplines = HashMap::new();
        for credit in &credits {
            uplines.insert(
                credit.affiliate,
                uplines_of(conn, tenant, credit.affiliate, plan.overrides.len()).await?,
            );
        }
        let meta = EntryMeta {
            plan: Some((plan_id, i32::try_from(version).unwrap_or(i32::MAX))),
            reverses_entry: None,
        };
        let on_plan = |affiliate| credits.iter().any(|credit| credit.affiliate == affiliate);
        let uplines_of = |affiliate| uplines.get(&affiliate).cloned().unwrap_or_default();
        for draft in book_for(&outcome.earnings, &all_credits, on_plan, uplines_of, &plan.overrides)? {
            rows.push((draft, meta));
        }
    }
    let facts = after.into_values().map(|facts| (player_key.clone(), facts)).collect();
    Ok((rows, facts))
}

/// The month an entry goes to: its event's, unless the affiliate's statement for that month
/// is already closed; then the month of booking, so closed statements never change.
pub(crate) async fn open_period<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    affiliate: AffiliateId,
    currency: Currency,
    occurred_at: DateTime<Utc>,
    now: DateTime<Utc>,
    zone: Tz,
) -> Result<Period> {
    let period = Period::of(occurred_at, zone);
    let closed = super::statement_status(conn, tenant, affiliate, currency, period).await?.is_some();
    Ok(if closed { Period::of(now, zone).max(period) } else { period })
}

/// The affiliate's month so far, which picks the live revshare tier: net revenue behind its
/// own revshare entries, and the FTDs credited to it.
async fn month_to_date<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    affiliate: AffiliateId,
    period: Period,
    zone: Tz,
) -> Result<MonthToDate> {
    let entries = ledger_entries::Entity::find()
        .filter(ledger_entries::Column::TenantId.eq(tenant.uuid()))
        .filter(ledger_entries::Column::AffiliateId.eq(affiliate.uuid()))
        .filter(ledger_entries::Column::Period.eq(period.to_string()))
        .filter(ledger_entries::Column::Tier.eq(0))
        .filter(ledger_entries::Column::Status.ne(EntryStatus::Rejected.as_str()))
        .all(conn)
        .await?;
    let mut net_revenue = Decimal::ZERO;
    for entry in &entries {
        let draft = to_draft(entry)?;
        if draft.effective_kind() == clickledger_domain::commission::EntryKind::Revshare
            && let Some(basis) = draft.basis
        {
            net_revenue += basis.amount;
        }
    }
    let ftds = conversions::Entity::find()
        .filter(conversions::Column::TenantId.eq(tenant.uuid()))
        .filter(conversions::Column::Event.eq(EventKind::Ftd.as_str()))
        .filter(conversions::Column::OccurredAt.gte(period.start(zone)))
        .filter(conversions::Column::OccurredAt.lt(period.end(zone)))
        .filter(
            conversions::Column::Id.in_subquery(
                Query::select()
                    .column(conversion_credits::Column::ConversionId)
                    .from(conversion_credits::Entity)
                    .and_where(conversion_credits::Column::TenantId.eq(tenant.uuid()))
                    .and_where(conversion_credits::Column::AffiliateId.eq(affiliate.uuid()))
                    .to_owned(),
            ),
        )
        .count(conn)
        .await?;
    Ok(MonthToDate { net_revenue, ftds: Decimal::from(ftds) })
}

/// The affiliate's ancestors, parent first, at most `depth` of them; stops at a cycle.
pub(super) async fn uplines_of<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    affiliate: AffiliateId,
    depth: usize,
) -> Result<Vec<AffiliateId>> {
    let mut chain = Vec::new();
    let mut current = affiliate.uuid();
    while chain.len() < depth {
        let parent = affiliates::Entity::find()
            .select_only()
            .column(affiliates::Column::ParentId)
            .filter(affiliates::Column::TenantId.eq(tenant.uuid()))
            .filter(affiliates::Column::Id.eq(current))
            .into_tuple::<Option<uuid::Uuid>>()
            .one(conn)
            .await?
            .flatten();
        match parent {
            Some(parent)
                if parent != affiliate.uuid() && !chain.contains(&AffiliateId::from_uuid(parent)) =>
            {
                chain.push(AffiliateId::from_uuid(parent));
                current = parent;
            }
            _ => break,
        }
    }
    Ok(chain)
}

/// The player's facts in `currency` as stored, or a player nothing is known about yet.
async fn load_facts<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    key: &str,
    currency: Currency,
) -> Result<PlayerFacts> {
    Ok(load_stored_facts(conn, tenant, key, currency).await?.unwrap_or_else(|| PlayerFacts::new(currency)))
}

/// The player's facts in `currency`, if any are stored.
pub(crate) async fn load_stored_facts<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    key: &str,
    currency: Currency,
) -> Result<Option<PlayerFacts>> {
    let row = player_facts::Entity::find()
        .filter(player_facts::Column::TenantId.eq(tenant.uuid()))
        .filter(player_facts::Column::PlayerKey.eq(key))
        .filter(player_facts::Column::Currency.eq(currency.code()))
        .one(conn)
        .await?;
    Ok(row.map(|row| PlayerFacts {
        currency,
        registered_at: row.registered_at,
        country: row.country,
        first_deposit: row.first_deposit.map(ExactDecimal::get),
        total_deposits: row.total_deposits.get(),
        turnover: row.turnover.get(),
        lots: row.lots.get(),
        trades: u32::try_from(row.trades).unwrap_or(0),
        cpa_paid: row.cpa_paid,
    }))
}

pub(crate) async fn store_facts<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    key: &str,
    facts: &PlayerFacts,
    now: DateTime<Utc>,
) -> Result<()> {
    use player_facts::Column as F;
    player_facts::Entity::insert(player_facts::ActiveModel {
        tenant_id: Set(tenant.uuid()),
        player_key: Set(key.to_owned()),
        currency: Set(facts.currency.code().to_owned()),
        registered_at: Set(facts.registered_at),
        country: Set(facts.country.clone()),
        first_deposit: Set(facts.first_deposit.map(ExactDecimal::from)),
        total_deposits: Set(facts.total_deposits.into()),
        turnover: Set(facts.turnover.into()),
        lots: Set(facts.lots.into()),
        trades: Set(i32::try_from(facts.trades).unwrap_or(i32::MAX)),
        cpa_paid: Set(facts.cpa_paid),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([F::TenantId, F::PlayerKey, F::Currency])
            .update_columns([
                F::RegisteredAt,
                F::Country,
                F::FirstDeposit,
                F::TotalDeposits,
                F::Turnover,
                F::Lots,
                F::Trades,
                F::CpaPaid,
                F::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}
