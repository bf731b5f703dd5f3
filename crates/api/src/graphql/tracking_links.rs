use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object};
use clickledger_domain::ids::{CampaignId, TrackingLinkId};
use clickledger_domain::status::ActiveStatus;
use clickledger_persistence::repo::{LinkFilter, NewTrackingLink, TrackingLinks};

use super::context::{principal, state};
use super::guard::Allow;
use super::pagination;
use super::types::TrackingLink;
use crate::error::GqlResultExt;
use crate::tracking::InvalidateOnDrop;

#[derive(InputObject)]
pub struct CreateTrackingLinkInput {
    pub affiliate_id: ID,
    pub campaign_id: ID,
}

fn parse_id(id: &ID, field: &'static str) -> async_graphql::Result<TrackingLinkId> {
    TrackingLinkId::parse(id, field).gql()
}

#[derive(Default)]
pub struct TrackingLinkQuery;

#[Object]
impl TrackingLinkQuery {
    /// One tracking link. Affiliates see only their own.
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn tracking_link(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<TrackingLink> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let link = TrackingLinks::scoped(&state.db, scope).get(parse_id(&id, "id")?).await.gql()?;
        Ok(TrackingLink::new(link, &state.public_url))
    }

    /// Tracking links, optionally of one affiliate or campaign. Affiliates see only their own.
    #[graphql(
        guard = "Allow::ANYONE_SIGNED_IN",
        complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn tracking_links(
        &self,
        ctx: &Context<'_>,
        affiliate_id: Option<ID>,
        campaign_id: Option<ID>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, TrackingLink>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let filter = LinkFilter {
            affiliate_id: affiliate_id
                .as_ref()
                .map(|id| super::affiliates::parse_id(id, "affiliateId"))
                .transpose()?,
            campaign_id: campaign_id
                .as_ref()
                .map(|id| CampaignId::parse(id, "campaignId"))
                .transpose()
                .gql()?,
        };
        let request = pagination::request(after, first, TrackingLinkId::parse, TrackingLinkId::uuid).gql()?;
        let page = TrackingLinks::scoped(&state.db, scope).list(filter, request).await.gql()?;
        Ok(pagination::connection(page, request, |link| {
            (pagination::cursor(link.id), TrackingLink::new(link, &state.public_url))
        }))
    }
}

#[derive(Default)]
pub struct TrackingLinkMutation;

#[Object]
impl TrackingLinkMutation {
    #[graphql(guard = "Allow::STAFF")]
    async fn create_tracking_link(
        &self,
        ctx: &Context<'_>,
        input: CreateTrackingLinkInput,
    ) -> async_graphql::Result<TrackingLink> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let new = NewTrackingLink {
            affiliate_id: super::affiliates::parse_id(&input.affiliate_id, "affiliateId")?,
            campaign_id: CampaignId::parse(&input.campaign_id, "campaignId").gql()?,
        };
        let link = TrackingLinks::scoped(&state.db, scope).create(new).await.gql()?;
        Ok(TrackingLink::new(link, &state.public_url))
    }

    /// A suspended link answers 404 and records no clicks.
    #[graphql(guard = "Allow::STAFF")]
    async fn suspend_tracking_link(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<TrackingLink> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let _invalidate = InvalidateOnDrop(&state.links);
        let link = TrackingLinks::scoped(&state.db, principal.scope())
            .set_status(parse_id(&id, "id")?, ActiveStatus::Suspended, principal.actor())
            .await
            .gql()?;
        Ok(TrackingLink::new(link, &state.public_url))
    }

    #[graphql(guard = "Allow::STAFF")]
    async fn activate_tracking_link(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<TrackingLink> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let _invalidate = InvalidateOnDrop(&state.links);
        let link = TrackingLinks::scoped(&state.db, principal.scope())
            .set_status(parse_id(&id, "id")?, ActiveStatus::Active, principal.actor())
            .await
            .gql()?;
        Ok(TrackingLink::new(link, &state.public_url))
    }
}
