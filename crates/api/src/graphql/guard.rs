use async_graphql::{Context, Guard};
use clickledger_domain::role::Role;
use clickledger_domain::status::ActiveStatus;
use clickledger_persistence::Scope;
use clickledger_persistence::repo::Users;

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
        if ctx.data_opt::<LongLivedSession>().is_some() {
            let users = Users::scoped(&state(ctx).db, Scope::staff(principal.tenant));
            let active =
                users.get(principal.user).await.is_ok_and(|user| user.status == ActiveStatus::Active);
            if !active {
                return Err(Error::Unauthenticated.into_gql());
            }
        }
        if self.0.contains(&principal.role) { Ok(()) } else { Err(Error::Forbidden.into_gql()) }
    }
}
