//! `fraudAlerts`: new conversions the fraud rules flagged, live, for owners and managers. It
//! is the `conversions` live feed with another topic (see `crate::live::Topic`): the same
//! shared feeds, catch-up and WebSocket transport, filtered to created events with flags.

use async_graphql::{Context, ID, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use clickledger_persistence::conversions as store;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::context::principal;
use super::conversions::{Conversion, LiveEvent, LiveRequest, OpeningLive};
use super::fraud::{FraudAction, FraudFlag};
use super::guard::Allow;
use crate::Error;
use crate::live::{Topic, cursor_of};

/// A conversion the fraud rules flagged, as it was stored.
#[derive(SimpleObject)]
pub struct FraudAlert {
    /// Where it is in the tenant's event log (the `conversions` subscription's cursor).
    pub cursor: String,
    pub conversion_id: ID,
    /// 0–100, the flags' scores combined.
    pub risk: i32,
    /// The strongest action of its flags.
    pub action: FraudAction,
    /// Each rule that fired: its score, action and evidence.
    pub flags: Vec<FraudFlag>,
    /// The affiliates it credits.
    pub affiliate_ids: Vec<ID>,
    pub received_at: DateTime<Utc>,
    pub conversion: Conversion,
}

impl FraudAlert {
    fn of(event: store::ConversionEvent) -> Option<FraudAlert> {
        let verdict = event.conversion.fraud.clone();
        let action = verdict.action?;
        let conversion = Conversion::from(event.conversion);
        Some(FraudAlert {
            cursor: cursor_of(event.seq),
            conversion_id: conversion.id.clone(),
            risk: i32::from(verdict.risk),
            action: action.into(),
            flags: verdict.flags.into_iter().map(FraudFlag::from).collect(),
            affiliate_ids: conversion.credits.iter().map(|credit| credit.affiliate_id.clone()).collect(),
            received_at: event.created_at,
            conversion,
        })
    }
}

#[derive(Default)]
pub struct FraudAlertSubscription;

#[Subscription]
impl FraudAlertSubscription {
    /// Each new conversion of the tenant with fraud flags, as it is stored: its rules,
    /// scores, action, affiliates and the conversion. Live only (what came before is in
    /// `fraudReview`). Owners and managers.
    #[graphql(guard = "Allow::STAFF")]
    async fn fraud_alerts(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<BoxStream<'static, async_graphql::Result<FraudAlert>>> {
        let principal = principal(ctx)?;
        // The stream itself is the shared feed's (see `crate::live`): here only its pieces.
        if let Some(event) = ctx.data_opt::<LiveEvent>() {
            let alert = event.take().and_then(FraudAlert::of);
            return Ok(futures_util::stream::iter(alert.map(Ok)).boxed());
        }
        if let Some(opening) = ctx.data_opt::<OpeningLive>() {
            opening.put(LiveRequest {
                scope: principal.scope(),
                role: principal.role,
                since: None,
                topic: Topic::FraudAlerts,
            });
            return Ok(futures_util::stream::empty().boxed());
        }
        Err(Error::Internal("subscriptions are served by the WebSocket transport".into()).into_gql())
    }
}
