use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use clickledger_domain::ids::AffiliateId;
use clickledger_domain::password::Password;
use clickledger_domain::status::ActiveStatus;
use clickledger_domain::validate;
use clickledger_persistence::repo::{AffiliatePatch, Affiliates, NewAffiliate};

use super::account::hash_off_thread;
use super::context::{principal, state};
use super::guard::Allow;
use super::pagination;
use super::types::Affiliate;
use crate::error::GqlResultExt;
use crate::sessions::Ended;
use crate::tracking::InvalidateOnDrop;

#[derive(InputObject)]
pub struct CreateAffiliateInput {
    pub name: String,
    pub email: String,
    /// With a password the affiliate can log in to its portal.
    pub password: Option<String>,
    /// The recruiting affiliate, for multi-tier programmes.
    pub parent_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateAffiliateInput {
    pub name: Option<String>,
    pub email: Option<String>,
    /// `null` detaches the affiliate from its parent; omit to leave it.
    pub parent_id: MaybeUndefined<ID>,
}

pub fn parse_id(id: &ID, field: &'static str) -> async_graphql::Result<AffiliateId> {
    AffiliateId::parse(id, field).gql()
}

#[derive(Default)]
pub struct AffiliateQuery;

#[Object]
impl AffiliateQuery {
    /// One affiliate. An affiliate may read itself and its sub-affiliates.
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn affiliate(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Affiliate> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        Affiliates::scoped(&state.db, scope).get(parse_id(&id, "id")?).await.gql().map(Affiliate::from)
    }

    /// Affiliates, oldest first. An affiliate sees itself and its sub-affiliates.
    #[graphql(
        guard = "Allow::ANYONE_SIGNED_IN",
        complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn affiliates(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, Affiliate>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let request = pagination::request(after, first, AffiliateId::parse, AffiliateId::uuid).gql()?;
        let page = Affiliates::scoped(&state.db, scope).list(request).await.gql()?;
        Ok(pagination::connection(page, request, |a| (pagination::cursor(a.id), Affiliate::from(a))))
    }
}

#[derive(Default)]
pub struct AffiliateMutation;

#[Object]
impl AffiliateMutation {
    #[graphql(guard = "Allow::STAFF")]
    async fn create_affiliate(
        &self,
        ctx: &Context<'_>,
        input: CreateAffiliateInput,
    ) -> async_graphql::Result<Affiliate> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let name = validate::name(&input.name, "name").gql()?;
        let email = validate::email(&input.email, "email").gql()?;
        let parent_id = input.parent_id.as_ref().map(|id| parse_id(id, "parentId")).transpose()?;
        let password_hash = match input.password {
            Some(raw) => Some(hash_off_thread(Password::parse(&raw).gql()?).await?),
            None => None,
        };
        Affiliates::scoped(&state.db, scope)
            .create(NewAffiliate { name, email, parent_id, password_hash })
            .await
            .gql()
            .map(Affiliate::from)
    }

    #[graphql(guard = "Allow::STAFF")]
    async fn update_affiliate(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateAffiliateInput,
    ) -> async_graphql::Result<Affiliate> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let patch = AffiliatePatch {
            name: input.name.map(|n| validate::name(&n, "name")).transpose().gql()?,
            email: input.email.map(|e| validate::email(&e, "email")).transpose().gql()?,
            parent_id: match input.parent_id {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(parent) => Some(Some(parse_id(&parent, "parentId")?)),
            },
        };
        Affiliates::scoped(&state.db, scope)
            .update(parse_id(&id, "id")?, patch)
            .await
            .gql()
            .map(Affiliate::from)
    }

    /// Suspends the affiliate: its logins stop working at once, its links stop tracking and
    /// its postback endpoints receive nothing (what was queued waits until it is active again).
    #[graphql(guard = "Allow::STAFF")]
    async fn suspend_affiliate(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Affiliate> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let _invalidate = InvalidateOnDrop(&state.links);
        let suspended = Affiliates::scoped(&state.db, principal.scope())
            .set_status(parse_id(&id, "id")?, ActiveStatus::Suspended, principal.actor())
            .await
            .gql()?;
        // Its open connections close now (other replicas hear it from the database).
        state.sessions.ended(Ended::Affiliate(suspended.id));
        Ok(Affiliate::from(suspended))
    }

    #[graphql(guard = "Allow::STAFF")]
    async fn activate_affiliate(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Affiliate> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let _invalidate = InvalidateOnDrop(&state.links);
        Affiliates::scoped(&state.db, principal.scope())
            .set_status(parse_id(&id, "id")?, ActiveStatus::Active, principal.actor())
            .await
            .gql()
            .map(Affiliate::from)
    }
}
