//! Invitations and password resets: a random token goes out in an e-mail link (queued in the
//! same transaction that stores the token's hash); `setPassword` spends it once.

use async_graphql::{Context, ID, Object};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use clickledger_domain::ids::AffiliateId;
use clickledger_notifier::mail::templates;
use clickledger_persistence::mail;
use rand::RngCore;

use super::context::{client_ip, principal, state};
use super::guard::Allow;
use super::types::Affiliate;
use crate::Error;
use crate::error::GqlResultExt;

const INVITATION_DAYS: i64 = 7;
const RESET_MINUTES: i64 = 60;

/// A fresh token (what the link carries) and its hash (what is stored).
fn token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

fn hash(token: &str) -> String {
    mail::hash_token(token)
}

fn link(public_url: &str, token: &str) -> String {
    format!("{public_url}/set-password?token={token}")
}

#[derive(Default)]
pub struct InvitationMutation;

#[Object]
impl InvitationMutation {
    /// E-mails the affiliate a link to set its password and sign in to its portal (creating its
    /// login if it has none). Each invitation's link works once, for 7 days.
    #[graphql(guard = "Allow::STAFF")]
    async fn invite_affiliate(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Affiliate> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let affiliate = AffiliateId::parse(&id, "id").gql()?;
        let (token, token_hash) = token();
        let link = link(&state.public_url, &token);
        let expires_at = Utc::now() + Duration::days(INVITATION_DAYS);
        let invited = mail::invite_affiliate(
            &state.db,
            scope,
            affiliate,
            token_hash,
            expires_at,
            |tenant, affiliate| {
                let sign_in_url = crate::http::sign_in_url(&state.public_url);
                let sign_in = templates::SignIn {
                    tenant_slug: &tenant.slug,
                    email: &affiliate.email,
                    url: &sign_in_url,
                };
                templates::invitation(&tenant.name, &affiliate.name, &link, INVITATION_DAYS, &sign_in)
            },
        )
        .await
        .gql()?;
        state.outbound.wake.notify_one();
        Ok(invited.into())
    }

    /// E-mails a password-reset link (valid once, for an hour) if the account exists. Answers
    /// `true` either way, so it cannot be used to find out which e-mails have accounts.
    async fn request_password_reset(
        &self,
        ctx: &Context<'_>,
        tenant_slug: String,
        email: String,
    ) -> async_graphql::Result<bool> {
        let state = state(ctx);
        let slug = tenant_slug.trim().to_lowercase();
        let email = email.trim().to_lowercase();
        if !state.login_limiter.check(&format!("reset/{slug}/{email}"), client_ip(ctx)) {
            return Err(Error::RateLimited.into_gql());
        }
        let (token, token_hash) = token();
        let link = link(&state.public_url, &token);
        let expires_at = Utc::now() + Duration::minutes(RESET_MINUTES);
        mail::request_password_reset(&state.db, &slug, &email, token_hash, expires_at, |tenant, user| {
            templates::password_reset(&tenant.name, &user.name, &link, RESET_MINUTES)
        })
        .await
        .gql()?;
        state.outbound.wake.notify_one();
        Ok(true)
    }

    /// Sets a password with the token from an invitation or reset e-mail. A token works once;
    /// unknown, used and expired tokens are all `NOT_FOUND`. Throttled per token and per client
    /// address (`RATE_LIMITED`).
    async fn set_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: String,
    ) -> async_graphql::Result<bool> {
        crate::auth::password_token::redeem(state(ctx), &token, &password, client_ip(ctx))
            .await
            .map_err(Error::into_gql)?;
        Ok(true)
    }
}
