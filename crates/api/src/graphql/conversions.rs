//! Conversions: a paginated query and the live subscription.

use std::sync::{Arc, Mutex};

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use clickledger_domain::ids::ConversionId;
use clickledger_domain::role::Role;
use clickledger_persistence::Scope;
use clickledger_persistence::conversions::{self as store, Conversions};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use rust_decimal::Decimal;

use super::context::{principal, state};
use super::fraud::{FraudAction, FraudFlag};
use super::guard::Allow;
use super::pagination;
use crate::Error;
use crate::error::GqlResultExt;
use crate::live::{Topic, cursor_of, parse_cursor};

#[derive(SimpleObject, Clone)]
pub struct Credit {
    pub affiliate_id: ID,
    /// Exact share of the conversion, e.g. "0.5"; a conversion's shares sum to exactly 1.
    pub share: Decimal,
    /// What this credit earned under the affiliate's plan (its own entries, overrides to
    /// uplines excluded; negative on a chargeback), in `commissionCurrency`. Null when no
    /// plan was in force.
    pub commission: Option<Decimal>,
    pub commission_currency: Option<String>,
}

/// A click considered for a conversion.
#[derive(SimpleObject, Clone)]
pub struct JourneyTouch {
    pub click_id: String,
    pub affiliate_id: ID,
    pub clicked_at: DateTime<Utc>,
}

#[derive(SimpleObject, Clone)]
pub struct Conversion {
    pub id: ID,
    /// registration, ftd, deposit, purchase, trade, revenue or chargeback.
    pub event: String,
    /// pending, approved or rejected.
    pub status: String,
    pub txn_id: Option<String>,
    pub click_id: Option<String>,
    /// The operator's player ID. Staff only: affiliates never see it.
    pub player_id: Option<String>,
    pub campaign_id: Option<ID>,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub lots: Option<Decimal>,
    pub instrument: Option<String>,
    pub attributed: bool,
    /// Why nothing was credited, e.g. `forged_click_id`, `click_expired`, `unknown_player`.
    pub unattributed_reason: Option<String>,
    /// The attribution model applied, e.g. LAST_CLICK; LIFETIME for a bound player;
    /// IMPORTED for one brought over by `clickledger import` / `importProgram`.
    pub model: Option<String>,
    /// Brought over from another tracker (a bound player's registration, or history): shown
    /// and counted in `stats`, but it booked no commission here.
    pub imported: bool,
    pub model_version: Option<String>,
    /// When the operator says it happened.
    pub occurred_at: DateTime<Utc>,
    /// When we received it.
    pub received_at: DateTime<Utc>,
    pub credits: Vec<Credit>,
    /// The clicks the model shared credit among, oldest first. Empty for affiliates: a journey
    /// names other affiliates.
    pub journey: Vec<JourneyTouch>,
    /// 0–100, from the fraud rules' flags. 0 for affiliates: the evidence is about players.
    pub risk: i32,
    /// What the fraud rules found. Empty for affiliates.
    pub fraud_flags: Vec<FraudFlag>,
    /// The strongest action of the flags, if any.
    pub fraud_action: Option<FraudAction>,
    /// `fraud:<rule>` when a fraud rule rejected the conversion.
    pub rejection_reason: Option<String>,
}

impl From<store::Conversion> for Conversion {
    fn from(c: store::Conversion) -> Self {
        let rejection_reason = c.fraud.rejection_reason();
        Conversion {
            risk: i32::from(c.fraud.risk),
            fraud_action: c.fraud.action.map(FraudAction::from),
            fraud_flags: c.fraud.flags.into_iter().map(FraudFlag::from).collect(),
            rejection_reason,
            id: ID(c.id.to_string()),
            event: c.event.as_str().to_owned(),
            status: c.status.as_str().to_owned(),
            txn_id: c.txn_id,
            click_id: c.click_id,
            player_id: c.player_id,
            campaign_id: c.campaign_id.map(|id| ID(id.to_string())),
            amount: c.amount,
            currency: c.currency,
            lots: c.lots,
            instrument: c.instrument,
            attributed: c.attributed,
            unattributed_reason: c.unattributed_reason.map(|reason| reason.as_str().to_owned()),
            imported: c.model.as_deref() == Some(clickledger_persistence::import::IMPORTED_MODEL),
            model: c.model,
            model_version: c.model_version,
            occurred_at: c.occurred_at,
            received_at: c.received_at,
            credits: c
                .credits
                .into_iter()
                .map(|credit| Credit {
                    affiliate_id: ID(credit.affiliate_id.to_string()),
                    share: credit.share,
                    commission: credit.commission.map(|m| m.amount),
                    commission_currency: credit.commission.map(|m| m.currency.to_string()),
                })
                .collect(),
            journey: c
                .journey
                .into_iter()
                .map(|t| JourneyTouch {
                    click_id: t.click_id,
                    affiliate_id: ID(t.affiliate_id),
                    clicked_at: t.at,
                })
                .collect(),
        }
    }
}

/// One entry of the live feed.
#[derive(SimpleObject)]
pub struct ConversionEvent {
    /// Pass as `since` to resume after this event.
    pub cursor: String,
    /// `conversion.created` or `conversion.status_changed`.
    pub kind: String,
    pub id: ID,
    pub event: String,
    pub status: String,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub received_at: DateTime<Utc>,
    pub occurred_at: DateTime<Utc>,
    pub attributed: bool,
    pub unattributed_reason: Option<String>,
    pub credits: Vec<Credit>,
    pub conversion: Conversion,
}

impl From<store::ConversionEvent> for ConversionEvent {
    fn from(e: store::ConversionEvent) -> Self {
        let conversion = Conversion::from(e.conversion);
        ConversionEvent {
            cursor: cursor_of(e.seq),
            kind: e.kind,
            id: conversion.id.clone(),
            event: conversion.event.clone(),
            status: conversion.status.clone(),
            amount: conversion.amount,
            currency: conversion.currency.clone(),
            received_at: conversion.received_at,
            occurred_at: conversion.occurred_at,
            attributed: conversion.attributed,
            unattributed_reason: conversion.unattributed_reason.clone(),
            credits: conversion.credits.clone(),
            conversion,
        }
    }
}

#[derive(Default)]
pub struct ConversionQuery;

#[Object]
impl ConversionQuery {
    /// One conversion. Affiliates see only conversions that credit them, with only their share.
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn conversion(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Conversion> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        Conversions::scoped(&state.db, scope)
            .get(ConversionId::parse(&id, "id").gql()?)
            .await
            .gql()
            .map(Conversion::from)
    }

    /// Conversions, oldest first, attributed or not.
    #[graphql(
        guard = "Allow::ANYONE_SIGNED_IN",
        complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn conversions(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, Conversion>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let request = pagination::request(after, first, ConversionId::parse, ConversionId::uuid).gql()?;
        let page = Conversions::scoped(&state.db, scope).list(request).await.gql()?;
        Ok(pagination::connection(page, request, |c| (pagination::cursor(c.id), Conversion::from(c))))
    }
}

/// Set by the WebSocket transport on a subscription it is opening: the resolver checks the
/// caller and the arguments as for any operation, then leaves here what the transport needs
/// to attach the subscriber to a shared feed, instead of streaming itself.
#[derive(Default, Clone)]
pub struct OpeningLive(Arc<Mutex<Option<LiveRequest>>>);

/// A checked `conversions` subscription.
#[derive(Debug, Clone, Copy)]
pub struct LiveRequest {
    pub scope: Scope,
    pub role: Role,
    pub since: Option<i64>,
    /// Which events the subscription follows.
    pub topic: Topic,
}

impl OpeningLive {
    pub fn take(&self) -> Option<LiveRequest> {
        self.0.lock().ok()?.take()
    }

    pub(super) fn put(&self, request: LiveRequest) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(request);
        }
    }
}

/// Set by a shared feed when it resolves one event (already filtered for the viewer) into a
/// frame: the subscription yields exactly that event.
pub struct LiveEvent(Mutex<Option<store::ConversionEvent>>);

impl LiveEvent {
    pub fn new(event: store::ConversionEvent) -> Self {
        LiveEvent(Mutex::new(Some(event)))
    }

    /// The event, once.
    pub(super) fn take(&self) -> Option<store::ConversionEvent> {
        self.0.lock().ok().and_then(|mut event| event.take())
    }
}

#[derive(Default)]
pub struct ConversionSubscription;

#[Subscription]
impl ConversionSubscription {
    /// Conversions as they happen. With `since` (a cursor from an earlier event), first
    /// replays what was missed, then continues live: no gap, no duplicate. A cursor more than
    /// `--max-replay-events` events old is `BAD_USER_INPUT`: read what was missed with the
    /// `conversions` query, then subscribe without `since`. Owners and managers
    /// get every conversion of the tenant; an affiliate only those crediting it, with only its
    /// own share and no player ID.
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn conversions(
        &self,
        ctx: &Context<'_>,
        since: Option<String>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<ConversionEvent>>> {
        let principal = principal(ctx)?;
        let since = match since {
            Some(cursor) => Some(
                parse_cursor(&cursor).ok_or_else(|| Error::bad_input("since", "not a cursor").into_gql())?,
            ),
            None => None,
        };
        // The stream itself is the shared feed's (see `crate::live`): here only its pieces.
        if let Some(event) = ctx.data_opt::<LiveEvent>() {
            let event = event.0.lock().ok().and_then(|mut event| event.take());
            return Ok(futures_util::stream::iter(event.map(|e| Ok(ConversionEvent::from(e)))).boxed());
        }
        if let Some(since) = since {
            let state = state(ctx);
            let latest = Conversions::scoped(&state.db, principal.scope()).latest_seq().await.gql()?;
            if latest.saturating_sub(since) > state.max_replay_events {
                return Err(Error::bad_input(
                    "since",
                    format!(
                        "more than {} events were missed; read them with the `conversions` query, then subscribe without `since`",
                        state.max_replay_events
                    ),
                )
                .into_gql());
            }
        }
        if let Some(opening) = ctx.data_opt::<OpeningLive>() {
            opening.put(LiveRequest {
                scope: principal.scope(),
                role: principal.role,
                since,
                topic: Topic::Conversions,
            });
            return Ok(futures_util::stream::empty().boxed());
        }
        Err(Error::Internal("subscriptions are served by the WebSocket transport".into()).into_gql())
    }
}
