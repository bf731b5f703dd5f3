use async_graphql::{Context, Guard};
use clickledger_domain::role::Role;

use super::context::{LongLivedSession, principal, state};
use crate::Error;

/// Who may call a field: `#[graphql(guard = "Allow::STAFF")]`.
pub struct Allow(&'static [Role]);

impl Allow {
    pub const ANYONE_SIGNED_IN: Allow = Allow(&[Role::Owner, Role::Manager, Role::Affiliate]);
    pub const STAFF: Allow = Allow(&[Role::Owner, Role::Manager]);
    pub const OWNER: Allow = Allow(&[Role::Owner]);
}

impl Guard for Allow {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let principal = principal(ctx)?;
        if ctx.data_opt::<LongLivedSession>().is_some()
            && crate::sessions::check(&state(ctx).db, principal).await.is_err()
        {
            return Err(Error::Unauthenticated.into_gql());
        }
        if self.0.contains(&principal.role) { Ok(()) } else { Err(Error::Forbidden.into_gql()) }
    }
}
