//! Operator staff logins: owners add managers (or co-owners).

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object};
use clickledger_domain::ids::UserId;
use clickledger_domain::password::Password;
use clickledger_domain::status::ActiveStatus;
use clickledger_domain::validate;
use clickledger_persistence::repo::Users;

use super::account::hash_off_thread;
use super::context::{principal, state};
use super::guard::Allow;
use super::pagination;
use super::types::{Role, User};
use crate::Error;
use crate::error::GqlResultExt;
use crate::sessions::Ended;

#[derive(InputObject)]
pub struct CreateUserInput {
    pub email: String,
    pub password: String,
    /// Defaults to the e-mail address.
    pub name: Option<String>,
    /// OWNER or MANAGER; affiliates get logins through createAffiliate.
    pub role: Role,
}

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The tenant's staff logins (owners and managers). Owner only.
    #[graphql(
        guard = "Allow::OWNER",
        complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn users(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, User>> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let request = pagination::request(after, first, UserId::parse, UserId::uuid).gql()?;
        let page = Users::scoped(&state.db, scope).staff(request).await.gql()?;
        Ok(pagination::connection(page, request, |u| (pagination::cursor(u.id), User::from(u))))
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    /// Adds a manager (or another owner). Owner only.
    #[graphql(guard = "Allow::OWNER")]
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> async_graphql::Result<User> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let email = validate::email(&input.email, "email").gql()?;
        let name = match input.name {
            Some(name) => validate::name(&name, "name").gql()?,
            None => email.clone(),
        };
        let role = match input.role {
            Role::Owner => clickledger_domain::role::Role::Owner,
            Role::Manager => clickledger_domain::role::Role::Manager,
            Role::Affiliate => {
                return Err(
                    Error::bad_input("role", "affiliate logins are created with createAffiliate").into_gql()
                );
            }
        };
        let hash = hash_off_thread(Password::parse(&input.password).gql()?).await?;
        Users::scoped(&state.db, principal.scope())
            .create_staff(email, name, hash, role, principal.actor())
            .await
            .gql()
            .map(User::from)
    }

    /// Suspends a staff login (owner or manager): it cannot sign in, and its sessions end at
    /// once, open subscriptions included. No one suspends themselves; an affiliate's login
    /// goes with its affiliate (`suspendAffiliate`). Owner only.
    #[graphql(guard = "Allow::OWNER")]
    async fn suspend_user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<User> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        let user = Users::scoped(&state.db, principal.scope())
            .set_status(UserId::parse(&id, "id").gql()?, ActiveStatus::Suspended, principal.actor())
            .await
            .gql()?;
        // Its open connections close now (other replicas hear it from the database).
        state.sessions.ended(Ended::User(user.id));
        Ok(User::from(user))
    }

    /// Lets a suspended staff login sign in again (its old sessions stay ended). Owner only.
    #[graphql(guard = "Allow::OWNER")]
    async fn activate_user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<User> {
        let (state, principal) = (state(ctx), principal(ctx)?);
        Users::scoped(&state.db, principal.scope())
            .set_status(UserId::parse(&id, "id").gql()?, ActiveStatus::Active, principal.actor())
            .await
            .gql()
            .map(User::from)
    }
}
