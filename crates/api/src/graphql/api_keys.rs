use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use clickledger_domain::ids::ApiKeyId;
use clickledger_domain::validate;
use clickledger_persistence::repo::ApiKeys;

use super::context::{principal, state};
use super::guard::Allow;
use super::pagination;
use super::types::ApiKey;
use crate::error::GqlResultExt;
use crate::http::api_key;

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub name: String,
}

#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    /// The key itself. Shown once: only its hash is stored.
    pub key: String,
    pub api_key: ApiKey,
}

#[derive(Default)]
pub struct ApiKeyQuery;

#[Object]
impl ApiKeyQuery {
    /// The tenant's server-to-server keys (never their secrets). Owner only.
    #[graphql(
        guard = "Allow::OWNER",
        complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, ApiKey>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let request = pagination::request(after, first, ApiKeyId::parse, ApiKeyId::uuid).gql()?;
        let page = ApiKeys::scoped(&state.db, scope).list(request).await.gql()?;
        Ok(pagination::connection(page, request, |k| (pagination::cursor(k.id), ApiKey::from(k))))
    }
}

#[derive(Default)]
pub struct ApiKeyMutation;

#[Object]
impl ApiKeyMutation {
    /// Creates a key for the inbound postback. Owner only.
    #[graphql(guard = "Allow::OWNER")]
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreateApiKeyPayload> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let name = validate::name(&input.name, "name").gql()?;
        let generated = api_key::generate();
        let stored = ApiKeys::scoped(&state.db, principal.scope())
            .create(name, generated.prefix, generated.hash, principal.actor())
            .await
            .gql()?;
        Ok(CreateApiKeyPayload { key: generated.secret, api_key: stored.into() })
    }

    /// Revokes a key at once; postbacks using it are refused from then on.
    #[graphql(guard = "Allow::OWNER")]
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiKey> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let revoked = ApiKeys::scoped(&state.db, principal.scope())
            .revoke(ApiKeyId::parse(&id, "id").gql()?, principal.actor())
            .await
            .gql()?;
        // Other replicas hear of it from the database (PostgreSQL); this one forgets now.
        state.api_keys.forget_all();
        Ok(ApiKey::from(revoked))
    }
}
