//! The entry points that establish a scope rather than take one: sign-up, login and API-key
//! authentication. Everything else goes through a scoped repository.

use chrono::Utc;
use clickledger_domain::ids::{TenantId, UserId};
use clickledger_domain::role::Role;
use clickledger_domain::status::ActiveStatus;
use rand::Rng;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use crate::entities::{affiliate_logins, api_keys, tenants, users};
use crate::records::{PresentedKey, Tenant, User};
use crate::{Db, Error, Result};

pub struct NewTenant {
    pub name: String,
    pub slug: String,
    pub owner_email: String,
    pub owner_name: String,
    pub owner_password_hash: String,
}

/// A user found for a login attempt, with what is needed to check the password.
pub struct LoginCandidate {
    pub user: User,
    pub password_hash: String,
}

pub struct Directory<'a> {
    db: &'a Db,
}

impl<'a> Directory<'a> {
    pub fn new(db: &'a Db) -> Self {
        Directory { db }
    }

    /// Creates a tenant and its owner in one transaction.
    pub async fn sign_up(&self, new: NewTenant) -> Result<(Tenant, User)> {
        let now = Utc::now();
        let tenant_id = TenantId::new();
        let user_id = UserId::new();
        let click_tag = i64::from(rand::rng().random::<u32>());
        let click_secret =
            self.db.secrets().seal(&crate::secrets::click_secret_owner(tenant_id.uuid()), &hex_secret());
        let txn = self.db.writer().begin().await?;
        let tenant = tenants::ActiveModel {
            id: Set(tenant_id.uuid()),
            name: Set(new.name),
            slug: Set(new.slug),
            click_tag: Set(click_tag),
            click_secret: Set(click_secret),
            status: Set(ActiveStatus::Active.as_str().to_owned()),
            created_at: Set(now),
            event_seq: Set(0),
            time_zone: Set("UTC".to_owned()),
        }
        .insert(&txn)
        .await
        .map_err(Error::from)
        .map_err(Error::conflict_on("tenantSlug"))?;
        let user = users::ActiveModel {
            id: Set(user_id.uuid()),
            tenant_id: Set(tenant_id.uuid()),
            email: Set(new.owner_email),
            name: Set(new.owner_name),
            password_hash: Set(new.owner_password_hash),
            role: Set(Role::Owner.as_str().to_owned()),
            affiliate_id: Set(None),
            status: Set(ActiveStatus::Active.as_str().to_owned()),
            created_at: Set(now),
            last_login_at: Set(None),
            session_epoch: Set(0),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok((tenant.into(), User::try_from(user)?))
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Tenant> {
        tenants::Entity::find()
            .filter(tenants::Column::Slug.eq(slug))
            .one(self.db.reader())
            .await?
            .map(Tenant::from)
            .ok_or(Error::NotFound)
    }

    /// Sets a user's password from the host (`clickledger user reset-password`), whatever it
    /// was, spends the user's open invitation and reset links and ends its sessions.
    pub async fn reset_password(
        &self,
        tenant_slug: &str,
        email: &str,
        password_hash: String,
    ) -> Result<User> {
        let tenant = self.tenant_by_slug(tenant_slug).await?;
        let txn = self.db.writer().begin().await?;
        let user = users::Entity::find()
            .filter(users::Column::TenantId.eq(tenant.id.uuid()))
            .filter(users::Column::Email.eq(email))
            .one(&txn)
            .await?
            .ok_or(Error::NotFound)?;
        users::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(user.id),
            password_hash: Set(password_hash),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        crate::mail::spend_open_tokens(&txn, tenant.id, user.id, Utc::now()).await?;
        crate::sessions::revoke(&txn, tenant.id, &[user.id]).await?;
        txn.commit().await?;
        User::try_from(user)
    }

    pub async fn tenant_count(&self) -> Result<u64> {
        use sea_orm::PaginatorTrait;
        Ok(tenants::Entity::find().count(self.db.reader()).await?)
    }

    pub async fn find_login(&self, tenant_slug: &str, email: &str) -> Result<Option<LoginCandidate>> {
        let Ok(tenant) = self.tenant_by_slug(tenant_slug).await else {
            return Ok(None);
        };
        let found = users::Entity::find()
            .filter(users::Column::TenantId.eq(tenant.id.uuid()))
            .filter(users::Column::Email.eq(email))
            .one(self.db.reader())
            .await?;
        match found {
            Some(model) => {
                let password_hash = model.password_hash.clone();
                Ok(Some(LoginCandidate { user: User::try_from(model)?, password_hash }))
            }
            None => Ok(None),
        }
    }

    /// Stamps the login; an affiliate's also records the address it came from and its user
    /// agent, which the self-referral rule compares with the players it brings (the address,
    /// and the address with the user agent as the device).
    pub async fn record_login(
        &self,
        user: &User,
        from: Option<std::net::IpAddr>,
        user_agent: Option<&str>,
    ) -> Result<()> {
        let now = Utc::now();
        users::Entity::update_many()
            .col_expr(users::Column::LastLoginAt, sea_orm::sea_query::Expr::value(now))
            .filter(users::Column::Id.eq(user.id.uuid()))
            .exec(self.db.writer())
            .await?;
        if let (Some(affiliate), Some(ip)) = (user.affiliate_id, from) {
            let row = affiliate_logins::ActiveModel {
                tenant_id: Set(user.tenant_id.uuid()),
                affiliate_id: Set(affiliate.uuid()),
                ip: Set(ip.to_string()),
                last_seen_at: Set(now),
                // A longer one could never equal a postback's, which is cut off there.
                user_agent: Set(user_agent
                    .filter(|agent| agent.len() <= clickledger_domain::fraud::MAX_USER_AGENT_LEN)
                    .map(str::to_owned)),
            };
            let seen_again = sea_orm::sea_query::OnConflict::columns([
                affiliate_logins::Column::TenantId,
                affiliate_logins::Column::AffiliateId,
                affiliate_logins::Column::Ip,
            ])
            .update_columns([affiliate_logins::Column::LastSeenAt, affiliate_logins::Column::UserAgent])
            .to_owned();
            affiliate_logins::Entity::insert(row)
                .on_conflict(seen_again)
                .exec_without_returning(self.db.writer())
                .await?;
        }
        Ok(())
    }

    /// The tenant and key a presented API key belongs to, if it exists and is not revoked.
    /// `key_hash` is the SHA-256 of the presented key: keys are long random strings, so a
    /// fast hash is the right tool (argon2 is for low-entropy passwords).
    pub async fn authenticate_api_key(&self, key_hash: &str) -> Result<Option<PresentedKey>> {
        let found = api_keys::Entity::find()
            .filter(api_keys::Column::KeyHash.eq(key_hash))
            .filter(api_keys::Column::RevokedAt.is_null())
            .one(self.db.reader())
            .await?;
        found.map(|row| PresentedKey::from_row(self.db, row)).transpose()
    }
}

fn hex_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Directory<'_> {
    /// Renames the scope's tenant and/or moves it to another time zone (staff only). Months
    /// already booked keep their period; commission from now on follows the new calendar.
    pub async fn update_tenant(
        &self,
        scope: crate::Scope,
        name: Option<String>,
        time_zone: Option<chrono_tz::Tz>,
    ) -> Result<Tenant> {
        crate::repo::require_staff_pub(&scope)?;
        let mut row = tenants::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(scope.tenant().uuid()),
            ..Default::default()
        };
        if let Some(name) = name {
            row.name = Set(name);
        }
        let moved = match time_zone {
            Some(zone) if zone.name() != self.tenant(scope.tenant()).await?.time_zone => Some(zone),
            _ => None,
        };
        if let Some(zone) = moved {
            row.time_zone = Set(zone.name().to_owned());
        }
        if row.is_changed() {
            let txn = self.db.writer().begin().await?;
            // The row first: a postback's transaction holds it from its start and reads the
            // zone there, so the two run one after the other. Click batches, which do not touch
            // the row, meet this change on the rollups' advisory lock, taken next.
            row.update(&txn).await?;
            // The daily report rows are kept by local day: they move with the zone.
            if let Some(zone) = moved {
                crate::rollups::rebuild_daily(&txn, self.db.backend(), scope.tenant(), zone).await?;
            }
            txn.commit().await?;
        }
        self.tenant(scope.tenant()).await
    }

    pub async fn tenant(&self, id: TenantId) -> Result<Tenant> {
        tenants::Entity::find_by_id(id.uuid())
            .one(self.db.reader())
            .await?
            .map(Tenant::from)
            .ok_or(Error::NotFound)
    }
}
