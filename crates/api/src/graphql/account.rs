//! Sign-up, login and `me`.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use clickledger_domain::password::{self, Password};
use clickledger_domain::role::Role;
use clickledger_domain::status::ActiveStatus;
use clickledger_domain::validate;
use clickledger_persistence::directory::{Directory, NewTenant};
use clickledger_persistence::repo::{Affiliates, Users};

use super::context::{client_ip, client_user_agent, principal, state};
use super::guard::Allow;
use super::types::{Affiliate, Tenant, User};
use crate::Error;
use crate::auth::Principal;
use crate::error::GqlResultExt;

#[derive(InputObject)]
pub struct SignUpInput {
    pub tenant_name: String,
    /// Lower-case letters, digits and dashes; used at login.
    pub tenant_slug: String,
    pub email: String,
    pub password: String,
    /// The owner's display name; defaults to the e-mail address.
    pub name: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateTenantInput {
    pub name: Option<String>,
    /// IANA time zone such as `Europe/Malta`. Months already booked keep their period;
    /// commission from now on falls into months of the new calendar.
    pub time_zone: Option<String>,
}

#[derive(InputObject)]
pub struct LoginInput {
    pub tenant_slug: String,
    pub email: String,
    pub password: String,
}

#[derive(SimpleObject)]
pub struct SignUpPayload {
    /// A session token: send it as `Authorization: Bearer <token>`.
    pub token: String,
    pub tenant: Tenant,
    pub user: User,
}

#[derive(SimpleObject)]
pub struct LoginPayload {
    pub token: String,
    pub user: User,
}

/// The caller.
pub struct Me {
    principal: Principal,
}

#[Object]
impl Me {
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let state = state(ctx);
        Users::scoped(&state.db, self.principal.scope()).get(self.principal.user).await.gql().map(User::from)
    }

    async fn tenant(&self, ctx: &Context<'_>) -> async_graphql::Result<Tenant> {
        let state = state(ctx);
        Directory::new(&state.db).tenant(self.principal.tenant).await.gql().map(Tenant::from)
    }

    async fn role(&self) -> super::types::Role {
        self.principal.role.into()
    }

    /// The caller's affiliate record, for affiliate logins.
    async fn affiliate(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Affiliate>> {
        let Some(id) = self.principal.affiliate else {
            return Ok(None);
        };
        let state = state(ctx);
        Affiliates::scoped(&state.db, self.principal.scope()).get(id).await.gql().map(|a| Some(a.into()))
    }
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    #[graphql(guard = "Allow::ANYONE_SIGNED_IN")]
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        Ok(Me { principal: *principal(ctx)? })
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Renames the caller's tenant or sets its time zone. Owner only.
    #[graphql(guard = "Allow::OWNER")]
    async fn update_tenant(
        &self,
        ctx: &Context<'_>,
        input: UpdateTenantInput,
    ) -> async_graphql::Result<Tenant> {
        let (state, scope) = (state(ctx), principal(ctx)?.scope());
        let name = input.name.map(|n| validate::name(&n, "name")).transpose().gql()?;
        let zone = input.time_zone.map(|z| validate::time_zone(&z, "timeZone")).transpose().gql()?;
        Directory::new(&state.db).update_tenant(scope, name, zone).await.gql().map(Tenant::from)
    }

    /// Creates a tenant and its owner, and logs the owner in.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> async_graphql::Result<SignUpPayload> {
        let state = state(ctx);
        if !state.signup_enabled {
            return Err(Error::Forbidden.extend_message(
                "sign-up is disabled on this server; its operator creates tenants with \
                 `clickledger tenant create --slug … --owner-email …`",
            ));
        }
        // Throttled per client address only: a shared key would let one client block everyone.
        let ip = client_ip(ctx);
        let key = format!("sign-up/{}", ip.map(|ip| ip.to_string()).unwrap_or_default());
        if !state.login_limiter.check(&key, ip) {
            return Err(Error::RateLimited.into_gql());
        }
        let tenant_name = validate::name(&input.tenant_name, "tenantName").gql()?;
        let slug = validate::slug(&input.tenant_slug, "tenantSlug").gql()?;
        let email = validate::email(&input.email, "email").gql()?;
        let owner_name = match input.name {
            Some(name) => validate::name(&name, "name").gql()?,
            None => email.clone(),
        };
        let password = Password::parse(&input.password).gql()?;
        let owner_password_hash = hash_off_thread(password).await?;
        let (tenant, user) = Directory::new(&state.db)
            .sign_up(NewTenant {
                name: tenant_name,
                slug,
                owner_email: email,
                owner_name,
                owner_password_hash,
            })
            .await
            .gql()?;
        let principal = Principal {
            user: user.id,
            tenant: tenant.id,
            role: Role::Owner,
            affiliate: None,
            session_epoch: user.session_epoch,
        };
        let token = state.jwt.issue(&principal).gql()?;
        Ok(SignUpPayload { token, tenant: tenant.into(), user: user.into() })
    }

    /// Logs in an owner, manager or affiliate. Throttled per account and per address.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> async_graphql::Result<LoginPayload> {
        let state = state(ctx);
        let slug = input.tenant_slug.trim().to_lowercase();
        let email = input.email.trim().to_lowercase();
        if !state.login_limiter.check(&format!("{slug}/{email}"), client_ip(ctx)) {
            return Err(Error::RateLimited.into_gql());
        }
        let candidate = Directory::new(&state.db).find_login(&slug, &email).await.gql()?;
        // Verify against a decoy when there is no such user, so timing does not reveal which
        // e-mails have accounts.
        let stored = candidate
            .as_ref()
            .map(|c| c.password_hash.clone())
            .unwrap_or_else(|| password::decoy_hash().to_owned());
        let presented = input.password;
        let matches = tokio::task::spawn_blocking(move || password::verify(&presented, &stored))
            .await
            .map_err(|err| Error::Internal(err.to_string()).into_gql())?;
        let user = match candidate {
            Some(candidate) if matches && candidate.user.status == ActiveStatus::Active => candidate.user,
            _ => return Err(Error::Unauthenticated.extend_message("invalid tenant, e-mail or password")),
        };
        Directory::new(&state.db).record_login(&user, client_ip(ctx), client_user_agent(ctx)).await.gql()?;
        let principal = Principal {
            user: user.id,
            tenant: user.tenant_id,
            role: user.role,
            affiliate: user.affiliate_id,
            session_epoch: user.session_epoch,
        };
        let token = state.jwt.issue(&principal).gql()?;
        Ok(LoginPayload { token, user: user.into() })
    }
}

/// Argon2 takes tens of milliseconds of CPU by design; keep it off the async workers.
pub async fn hash_off_thread(password: Password) -> async_graphql::Result<String> {
    tokio::task::spawn_blocking(move || password.hash())
        .await
        .map_err(|err| Error::Internal(err.to_string()).into_gql())
}
