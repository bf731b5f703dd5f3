use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use clickledger_domain::ids::ApiKeyId;
use clickledger_domain::validate;
use clickledger_persistence::records;
use clickledger_persistence::repo::{ApiKeyChange, ApiKeys, NewApiKey};

use super::context::{principal, state};
use super::guard::Allow;
use super::pagination;
use super::types::{ApiKey, CustomDialect, PostbackDialect};
use crate::Error;
use crate::error::GqlResultExt;
use crate::http::api_key;
use clickledger_domain::dialect::{Dialect, Mapping};

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    pub name: String,
    /// Postbacks a minute this key may send (1–1,000,000, in bursts of as many); left out or
    /// null: the server's `--postbacks-per-minute-per-key`. Counted per replica.
    pub postbacks_per_minute: Option<i32>,
    /// Refuse postbacks without a valid `v2` signature (`BAD_SIGNATURE`). Default false.
    #[graphql(default)]
    pub signature_required: bool,
    /// Whose parameter names the key's postbacks use. Default `CLICKLEDGER`.
    #[graphql(default)]
    pub dialect: PostbackDialect,
    /// The mapping of a `CUSTOM` dialect (required with it, refused with any other).
    pub custom_dialect: Option<CustomDialect>,
}

#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    /// The key itself. Shown once: only its hash is stored.
    pub key: String,
    /// The key's signing secret, the HMAC key of signed postbacks. Shown once (a new one can
    /// be rotated in).
    pub signing_secret: String,
    pub api_key: ApiKey,
}

/// Fields left out keep their values.
#[derive(InputObject)]
pub struct UpdateApiKeyInput {
    pub name: Option<String>,
    /// 1–1,000,000 a minute; null: back to the server's default.
    pub postbacks_per_minute: MaybeUndefined<i32>,
    /// Refuse unsigned postbacks; needs a signing secret (keys made before signing secrets
    /// existed get one from `rotateApiKeySigningSecret`).
    pub signature_required: Option<bool>,
    /// Whose parameter names the key's postbacks use; in force at once on every replica.
    pub dialect: Option<PostbackDialect>,
    /// A new mapping for a `CUSTOM` dialect (required when switching to it, refused with any
    /// other; switching away drops the mapping).
    pub custom_dialect: Option<CustomDialect>,
}

#[derive(SimpleObject)]
pub struct RotateApiKeySigningSecretPayload {
    /// The new signing secret. Shown once; the old one stops verifying at once.
    pub signing_secret: String,
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
    /// Creates a key for the inbound postback, with a signing secret of its own. Owner only.
    #[graphql(guard = "Allow::OWNER")]
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> async_graphql::Result<CreateApiKeyPayload> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let name = validate::name(&input.name, "name").gql()?;
        let postbacks_per_minute = input
            .postbacks_per_minute
            .map(|limit| validate::per_minute_limit(limit, "postbacksPerMinute"))
            .transpose()
            .gql()?;
        let dialect: Dialect = input.dialect.into();
        let custom_dialect = custom_mapping(dialect, input.custom_dialect, None)?;
        let generated = api_key::generate();
        let stored = ApiKeys::scoped(&state.db, principal.scope())
            .create(
                NewApiKey {
                    name,
                    prefix: generated.prefix,
                    secret_hash: generated.hash,
                    signing_secret: generated.signing_secret.clone(),
                    postbacks_per_minute,
                    signature_required: input.signature_required,
                    dialect,
                    custom_dialect,
                },
                principal.actor(),
            )
            .await
            .gql()?;
        Ok(CreateApiKeyPayload {
            key: generated.secret,
            signing_secret: generated.signing_secret,
            api_key: stored.into(),
        })
    }

    /// Renames a key, sets its postback rate limit or dialect, or switches required signatures
    /// on or off; in force at once on every replica. Owner only.
    #[graphql(guard = "Allow::OWNER")]
    async fn update_api_key(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateApiKeyInput,
    ) -> async_graphql::Result<ApiKey> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let keys = ApiKeys::scoped(&state.db, principal.scope());
        let current = live(&keys, &id).await?;
        let name = input.name.map(|name| validate::name(&name, "name")).transpose().gql()?;
        let postbacks_per_minute = match input.postbacks_per_minute {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(limit) => {
                Some(Some(validate::per_minute_limit(limit, "postbacksPerMinute").gql()?))
            }
        };
        if input.signature_required == Some(true) && current.signing_secret_created_at.is_none() {
            return Err(Error::bad_input(
                "signatureRequired",
                "the key has no signing secret yet: rotate one in first (rotateApiKeySigningSecret)",
            )
            .into_gql());
        }
        let dialect: Dialect = input.dialect.map(Into::into).unwrap_or(current.dialect);
        let custom_dialect = custom_mapping(dialect, input.custom_dialect, current.custom_dialect.clone())?;
        let change = ApiKeyChange {
            name,
            postbacks_per_minute,
            signature_required: input.signature_required,
            dialect: Some(dialect),
            custom_dialect: Some(custom_dialect),
        };
        let updated = keys.update(current.id, change, principal.actor()).await.gql()?;
        // Other replicas hear of it from the database (PostgreSQL); this one forgets now.
        state.api_keys.forget_all();
        Ok(ApiKey::from(updated))
    }

    /// Replaces a key's signing secret and returns the new one (shown once); postbacks signed
    /// with the old one are refused from then on. Owner only.
    #[graphql(guard = "Allow::OWNER")]
    async fn rotate_api_key_signing_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<RotateApiKeySigningSecretPayload> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let keys = ApiKeys::scoped(&state.db, principal.scope());
        let current = live(&keys, &id).await?;
        let signing_secret = api_key::signing_secret();
        let rotated =
            keys.rotate_signing_secret(current.id, signing_secret.clone(), principal.actor()).await.gql()?;
        state.api_keys.forget_all();
        Ok(RotateApiKeySigningSecretPayload { signing_secret, api_key: ApiKey::from(rotated) })
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

/// The mapping a key speaking `dialect` keeps: the one given (validated), else the one it had
/// when it stays CUSTOM; none for any other dialect.
fn custom_mapping(
    dialect: Dialect,
    given: Option<CustomDialect>,
    current: Option<Mapping>,
) -> async_graphql::Result<Option<Mapping>> {
    match (dialect, given) {
        (Dialect::Custom, Some(given)) => Ok(Some(Mapping::from(given).validated("customDialect").gql()?)),
        (Dialect::Custom, None) => match current {
            Some(current) => Ok(Some(current)),
            None => Err(Error::bad_input("customDialect", "is required with the CUSTOM dialect").into_gql()),
        },
        (_, Some(_)) => Err(Error::bad_input("customDialect", "is only for the CUSTOM dialect").into_gql()),
        (_, None) => Ok(None),
    }
}

/// The key `id` names, if it is not revoked (a revoked key cannot be changed).
async fn live(keys: &ApiKeys<'_>, id: &ID) -> async_graphql::Result<records::ApiKey> {
    let current = keys.get(ApiKeyId::parse(id, "id").gql()?).await.gql()?;
    if current.revoked_at.is_some() {
        return Err(Error::bad_input("id", "the key is revoked").into_gql());
    }
    Ok(current)
}
