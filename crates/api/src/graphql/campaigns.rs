use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use clickledger_domain::ids::CampaignId;
use clickledger_domain::status::CampaignStatus as DomainCampaignStatus;
use clickledger_domain::validate;
use clickledger_persistence::repo::{CampaignPatch, Campaigns, NewCampaign};

use super::context::{principal, state};
use super::guard::Allow;
use super::pagination;
use super::types::{AttributionModel, Campaign, CampaignStatus};
use crate::Error;
use crate::error::GqlResultExt;
use crate::tracking::InvalidateOnDrop;

/// Longest lookback window accepted, in days.
const MAX_LOOKBACK_DAYS: i32 = 365;
const DEFAULT_LOOKBACK_DAYS: i32 = 30;

#[derive(InputObject)]
pub struct CreateCampaignInput {
    pub name: String,
    pub landing_url: String,
    pub fallback_url: Option<String>,
    /// Defaults to `LAST_CLICK`.
    pub attribution_model: Option<AttributionModel>,
    /// Defaults to 30.
    pub lookback_days: Option<i32>,
}

#[derive(InputObject)]
pub struct UpdateCampaignInput {
    pub name: Option<String>,
    pub landing_url: Option<String>,
    /// `null` removes the fallback URL.
    pub fallback_url: MaybeUndefined<String>,
    pub attribution_model: Option<AttributionModel>,
    pub lookback_days: Option<i32>,
}

fn parse_id(id: &ID, field: &'static str) -> async_graphql::Result<CampaignId> {
    CampaignId::parse(id, field).gql()
}

fn lookback(days: i32) -> async_graphql::Result<u32> {
    if (1..=MAX_LOOKBACK_DAYS).contains(&days) {
        Ok(days as u32)
    } else {
        Err(Error::bad_input("lookbackDays", format!("must be between 1 and {MAX_LOOKBACK_DAYS}")).into_gql())
    }
}

#[derive(Default)]
pub struct CampaignQuery;

#[Object]
impl CampaignQuery {
    /// One campaign. Affiliates see the campaigns they have a link for.
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn campaign(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Campaign> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        Campaigns::scoped(&state.db, scope).get(parse_id(&id, "id")?).await.gql().map(Campaign::from)
    }

    #[graphql(
        guard = "Allow::ANYONE_SIGNED_IN",
        complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn campaigns(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, Campaign>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let request = pagination::request(after, first, CampaignId::parse, CampaignId::uuid).gql()?;
        let page = Campaigns::scoped(&state.db, scope).list(request).await.gql()?;
        Ok(pagination::connection(page, request, |c| (pagination::cursor(c.id), Campaign::from(c))))
    }
}

#[derive(Default)]
pub struct CampaignMutation;

#[Object]
impl CampaignMutation {
    #[graphql(guard = "Allow::STAFF")]
    async fn create_campaign(
        &self,
        ctx: &Context<'_>,
        input: CreateCampaignInput,
    ) -> async_graphql::Result<Campaign> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let new = NewCampaign {
            name: validate::name(&input.name, "name").gql()?,
            landing_url: validate::landing_url(&input.landing_url, "landingUrl").gql()?,
            fallback_url: input
                .fallback_url
                .map(|url| validate::landing_url(&url, "fallbackUrl"))
                .transpose()
                .gql()?,
            attribution_model: input.attribution_model.unwrap_or_default().as_str().to_owned(),
            lookback_days: lookback(input.lookback_days.unwrap_or(DEFAULT_LOOKBACK_DAYS))?,
        };
        Campaigns::scoped(&state.db, scope).create(new).await.gql().map(Campaign::from)
    }

    #[graphql(guard = "Allow::STAFF")]
    async fn update_campaign(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCampaignInput,
    ) -> async_graphql::Result<Campaign> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let _invalidate = InvalidateOnDrop(&state.links);
        let patch = CampaignPatch {
            name: input.name.map(|n| validate::name(&n, "name")).transpose().gql()?,
            landing_url: input
                .landing_url
                .map(|u| validate::landing_url(&u, "landingUrl"))
                .transpose()
                .gql()?,
            fallback_url: match input.fallback_url {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(url) => Some(Some(validate::landing_url(&url, "fallbackUrl").gql()?)),
            },
            attribution_model: input.attribution_model.map(|m| m.as_str().to_owned()),
            lookback_days: input.lookback_days.map(lookback).transpose()?,
        };
        Campaigns::scoped(&state.db, scope)
            .update(parse_id(&id, "id")?, patch)
            .await
            .gql()
            .map(Campaign::from)
    }

    /// Moves a campaign between ACTIVE, PAUSED (links answer with the fallback URL) and
    /// ARCHIVED (links answer 404).
    #[graphql(guard = "Allow::STAFF")]
    async fn set_campaign_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: CampaignStatus,
    ) -> async_graphql::Result<Campaign> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let _invalidate = InvalidateOnDrop(&state.links);
        Campaigns::scoped(&state.db, principal.scope())
            .set_status(parse_id(&id, "id")?, DomainCampaignStatus::from(status), principal.actor())
            .await
            .gql()
            .map(Campaign::from)
    }
}
