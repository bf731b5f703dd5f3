//! E-mail, durably: messages are queued as rows (in the same transaction as whatever caused
//! them) and sent by the notifier, which claims and retries them the way it does postbacks.
//! Invitation and password-reset tokens live here too: random, single-use, expiring, and
//! stored only as their SHA-256.

use chrono::{DateTime, Utc};
use clickledger_domain::ids::{AffiliateId, TenantId, UserId};
use clickledger_domain::role::Role;
use clickledger_domain::status::ActiveStatus;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use crate::entities::{affiliates, outbound_emails, tenants, user_tokens, users};
use crate::records::{Affiliate, Tenant, User};
use crate::repo::Affiliates;
use crate::{Db, Error, Result, Scope};

pub const EMAIL_PENDING: &str = "pending";
pub const EMAIL_SENT: &str = "sent";
pub const EMAIL_FAILED: &str = "failed";

pub const PURPOSE_INVITATION: &str = "invitation";
pub const PURPOSE_PASSWORD_RESET: &str = "password_reset";

/// A password hash no password matches: an invited user cannot log in before setting one.
const NO_PASSWORD: &str = "!invited";

/// A rendered message, before it has a recipient.
#[derive(Debug, Clone)]
pub struct Message {
    /// `invitation`, `password_reset`, `fraud_alert`, `endpoint_disabled`, `daily_digest`.
    pub kind: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone)]
pub struct Email {
    pub id: uuid::Uuid,
    pub tenant_id: TenantId,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub state: String,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl From<outbound_emails::Model> for Email {
    fn from(m: outbound_emails::Model) -> Self {
        Email {
            id: m.id,
            tenant_id: TenantId::from_uuid(m.tenant_id),
            kind: m.kind,
            to: m.to_address,
            subject: m.subject,
            text: m.text_body,
            html: m.html_body,
            state: m.state,
            attempts: u32::try_from(m.attempts).unwrap_or(0),
            next_attempt_at: m.next_attempt_at,
            last_error: m.last_error,
        }
    }
}

pub(crate) async fn queue_on<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    to: &str,
    message: Message,
    now: DateTime<Utc>,
) -> Result<()> {
    outbound_emails::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        tenant_id: Set(tenant.uuid()),
        kind: Set(message.kind),
        to_address: Set(to.to_owned()),
        subject: Set(message.subject),
        text_body: Set(message.text),
        html_body: Set(message.html),
        state: Set(EMAIL_PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        last_error: Set(None),
        sent_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Queues a message to `to`.
pub async fn queue(db: &Db, tenant: TenantId, to: &str, message: Message) -> Result<()> {
    queue_on(db.writer(), tenant, to, message, Utc::now()).await
}

/// The tenant's owners' addresses: who hears about disabled endpoints and fraud.
pub(crate) async fn owner_addresses<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> Result<Vec<String>> {
    Ok(users::Entity::find()
        .filter(users::Column::TenantId.eq(tenant.uuid()))
        .filter(users::Column::Role.eq(Role::Owner.as_str()))
        .filter(users::Column::Status.eq(ActiveStatus::Active.as_str()))
        .all(conn)
        .await?
        .into_iter()
        .map(|u| u.email)
        .collect())
}

/// Queues `message` to every owner of the tenant.
pub async fn queue_to_owners(db: &Db, tenant: TenantId, message: Message) -> Result<()> {
    let now = Utc::now();
    for to in owner_addresses(db.writer(), tenant).await? {
        queue_on(db.writer(), tenant, &to, message.clone(), now).await?;
    }
    Ok(())
}

fn token_row(
    tenant: TenantId,
    user: uuid::Uuid,
    purpose: &str,
    token_hash: String,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> user_tokens::ActiveModel {
    user_tokens::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        tenant_id: Set(tenant.uuid()),
        user_id: Set(user),
        purpose: Set(purpose.to_owned()),
        token_hash: Set(token_hash),
        expires_at: Set(expires_at),
        used_at: Set(None),
        created_at: Set(now),
    }
}

/// Invites an affiliate to its portal: gives it a login without a password (creating one if
/// it has none), stores a set-password token and queues the invitation, in one transaction.
pub async fn invite_affiliate(
    db: &Db,
    scope: Scope,
    affiliate: AffiliateId,
    token_hash: String,
    expires_at: DateTime<Utc>,
    render: impl FnOnce(&Tenant, &Affiliate) -> Message,
) -> Result<Affiliate> {
    crate::repo::require_staff_pub(&scope)?;
    let affiliate = Affiliates::scoped(db, scope).get(affiliate).await?;
    let tenant =
        tenants::Entity::find_by_id(scope.tenant().uuid()).one(db.writer()).await?.ok_or(Error::NotFound)?;
    let tenant = Tenant::from(tenant);
    let now = Utc::now();
    let txn = db.writer().begin().await?;
    let existing = users::Entity::find()
        .filter(users::Column::TenantId.eq(scope.tenant().uuid()))
        .filter(users::Column::AffiliateId.eq(affiliate.id.uuid()))
        .one(&txn)
        .await?;
    let user_id = match existing {
        Some(user) => user.id,
        None => {
            let id = UserId::new().uuid();
            users::ActiveModel {
                id: Set(id),
                tenant_id: Set(scope.tenant().uuid()),
                email: Set(affiliate.email.clone()),
                name: Set(affiliate.name.clone()),
                password_hash: Set(NO_PASSWORD.to_owned()),
                role: Set(Role::Affiliate.as_str().to_owned()),
                affiliate_id: Set(Some(affiliate.id.uuid())),
                // A suspended affiliate's login is suspended with it, until it is activated.
                status: Set(affiliate.status.as_str().to_owned()),
                created_at: Set(now),
                last_login_at: Set(None),
                session_epoch: Set(0),
            }
            .insert(&txn)
            .await
            .map_err(Error::from)
            .map_err(Error::conflict_on("email"))?;
            id
        }
    };
    token_row(scope.tenant(), user_id, PURPOSE_INVITATION, token_hash, expires_at, now).insert(&txn).await?;
    queue_on(&txn, scope.tenant(), &affiliate.email, render(&tenant, &affiliate), now).await?;
    txn.commit().await?;
    // The affiliate row itself is unchanged; re-read so the caller sees the current state.
    affiliates::Entity::find_by_id(affiliate.id.uuid())
        .one(db.writer())
        .await?
        .ok_or(Error::NotFound)
        .and_then(Affiliate::try_from)
}

/// Stores a reset token and queues the reset e-mail if the tenant has an active user with this
/// e-mail; does nothing otherwise (the caller answers the same either way).
pub async fn request_password_reset(
    db: &Db,
    tenant_slug: &str,
    email: &str,
    token_hash: String,
    expires_at: DateTime<Utc>,
    render: impl FnOnce(&Tenant, &User) -> Message,
) -> Result<()> {
    let Some(tenant) =
        tenants::Entity::find().filter(tenants::Column::Slug.eq(tenant_slug)).one(db.writer()).await?
    else {
        return Ok(());
    };
    let Some(user) = users::Entity::find()
        .filter(users::Column::TenantId.eq(tenant.id))
        .filter(users::Column::Email.eq(email))
        .filter(users::Column::Status.eq(ActiveStatus::Active.as_str()))
        .one(db.writer())
        .await?
    else {
        return Ok(());
    };
    let tenant = Tenant::from(tenant);
    let user = User::try_from(user)?;
    let now = Utc::now();
    let txn = db.writer().begin().await?;
    token_row(tenant.id, user.id.uuid(), PURPOSE_PASSWORD_RESET, token_hash, expires_at, now)
        .insert(&txn)
        .await?;
    queue_on(&txn, tenant.id, &user.email, render(&tenant, &user), now).await?;
    txn.commit().await?;
    Ok(())
}

/// What is stored of a token: its SHA-256, hex. Tokens are 256 random bits, so a fast hash is
/// the right tool (a stolen table yields nothing usable).
pub fn hash_token(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a token (by hash) is unused and unexpired. A cheap read that lets the caller skip
/// hashing the new password (Argon2: memory and tens of milliseconds) for a token that cannot
/// be spent anyway; [`redeem_token`] checks again in its transaction.
pub async fn token_is_live(db: &Db, token_hash: &str) -> Result<bool> {
    Ok(user_tokens::Entity::find()
        .filter(user_tokens::Column::TokenHash.eq(token_hash))
        .filter(user_tokens::Column::UsedAt.is_null())
        .filter(user_tokens::Column::ExpiresAt.gt(Utc::now()))
        .one(db.reader())
        .await?
        .is_some())
}

/// Spends a token: sets the user's password, marks this and every other open token of the
/// user as used, and ends the user's sessions. Unknown, used and expired tokens are all
/// simply `NotFound`.
pub async fn redeem_token(db: &Db, token_hash: &str, password_hash: String) -> Result<User> {
    let now = Utc::now();
    let txn = db.writer().begin().await?;
    let token = user_tokens::Entity::find()
        .filter(user_tokens::Column::TokenHash.eq(token_hash))
        .filter(user_tokens::Column::UsedAt.is_null())
        .filter(user_tokens::Column::ExpiresAt.gt(now))
        .one(&txn)
        .await?
        .ok_or(Error::NotFound)?;
    let spent = spend_open_tokens(&txn, TenantId::from_uuid(token.tenant_id), token.user_id, now).await?;
    if spent == 0 {
        return Err(Error::NotFound);
    }
    let user = users::Entity::find()
        .filter(users::Column::TenantId.eq(token.tenant_id))
        .filter(users::Column::Id.eq(token.user_id))
        .one(&txn)
        .await?
        .ok_or(Error::NotFound)?;
    users::ActiveModel { id: Set(user.id), password_hash: Set(password_hash), ..Default::default() }
        .update(&txn)
        .await?;
    // A new password ends every session opened with the old one.
    crate::sessions::revoke(&txn, TenantId::from_uuid(user.tenant_id), &[user.id]).await?;
    txn.commit().await?;
    User::try_from(user)
}

/// Marks every open token of the user as used; returns how many there were.
pub(crate) async fn spend_open_tokens(
    txn: &sea_orm::DatabaseTransaction,
    tenant: TenantId,
    user: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<u64> {
    let spent = user_tokens::Entity::update_many()
        .col_expr(user_tokens::Column::UsedAt, Expr::value(Some(now)))
        .filter(user_tokens::Column::TenantId.eq(tenant.uuid()))
        .filter(user_tokens::Column::UserId.eq(user))
        .filter(user_tokens::Column::UsedAt.is_null())
        .exec(txn)
        .await?;
    Ok(spent.rows_affected)
}

/// The notifier's side of the mail queue.
pub mod work {
    use super::*;

    pub async fn due(db: &Db, now: DateTime<Utc>, limit: u64) -> Result<Vec<Email>> {
        Ok(outbound_emails::Entity::find()
            .filter(outbound_emails::Column::State.eq(EMAIL_PENDING))
            .filter(outbound_emails::Column::NextAttemptAt.lte(now))
            .order_by_asc(outbound_emails::Column::NextAttemptAt)
            .limit(limit)
            .all(db.reader())
            .await?
            .into_iter()
            .map(Email::from)
            .collect())
    }

    /// Claims the next attempt (compare-and-set on the attempt counter) with a lease.
    pub async fn claim(db: &Db, email: &Email, lease_until: DateTime<Utc>) -> Result<bool> {
        let result = outbound_emails::Entity::update_many()
            .col_expr(outbound_emails::Column::Attempts, Expr::col(outbound_emails::Column::Attempts).add(1))
            .col_expr(outbound_emails::Column::NextAttemptAt, Expr::value(Some(lease_until)))
            .filter(outbound_emails::Column::TenantId.eq(email.tenant_id.uuid()))
            .filter(outbound_emails::Column::Id.eq(email.id))
            .filter(outbound_emails::Column::State.eq(EMAIL_PENDING))
            .filter(outbound_emails::Column::Attempts.eq(i32::try_from(email.attempts).unwrap_or(i32::MAX)))
            .exec(db.writer())
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn record(
        db: &Db,
        email: &Email,
        state: &str,
        next_attempt_at: Option<DateTime<Utc>>,
        error: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        outbound_emails::ActiveModel {
            id: Set(email.id),
            state: Set(state.to_owned()),
            next_attempt_at: Set(next_attempt_at),
            last_error: Set(error),
            sent_at: Set((state == EMAIL_SENT).then_some(now)),
            updated_at: Set(now),
            ..Default::default()
        }
        .update(db.writer())
        .await?;
        Ok(())
    }

    /// Every queued message of a tenant, oldest first (tests and tools).
    pub async fn emails_of(db: &Db, tenant: TenantId) -> Result<Vec<Email>> {
        Ok(outbound_emails::Entity::find()
            .filter(outbound_emails::Column::TenantId.eq(tenant.uuid()))
            .order_by_asc(outbound_emails::Column::Id)
            .all(db.writer())
            .await?
            .into_iter()
            .map(Email::from)
            .collect())
    }
}

/// The day's figures a digest reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DigestFigures {
    pub conversions: u64,
    pub attributed: u64,
    pub postbacks_delivered: u64,
    pub postbacks_failed: u64,
}

pub mod digest {
    use chrono::NaiveDate;
    use sea_orm::PaginatorTrait;
    use sea_orm::sea_query::OnConflict;

    use super::*;
    use crate::entities::{conversions, digest_marks, postback_deliveries};
    use crate::outbound::{DELIVERY_FAILED, DELIVERY_SUCCEEDED};

    /// Tenants that existed for the whole of the day ending at `day_end` and have not had
    /// that day's digest yet.
    pub async fn tenants_due(db: &Db, day: NaiveDate, day_end: DateTime<Utc>) -> Result<Vec<Tenant>> {
        let done: Vec<uuid::Uuid> = digest_marks::Entity::find()
            .filter(digest_marks::Column::Day.eq(day.to_string()))
            .select_only()
            .column(digest_marks::Column::TenantId)
            .into_tuple()
            .all(db.writer())
            .await?;
        Ok(tenants::Entity::find()
            .filter(tenants::Column::CreatedAt.lt(day_end - chrono::Duration::days(1)))
            .all(db.writer())
            .await?
            .into_iter()
            .filter(|t| !done.contains(&t.id))
            .map(Tenant::from)
            .collect())
    }

    pub async fn figures(
        db: &Db,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<DigestFigures> {
        let in_day = || {
            conversions::Entity::find()
                .filter(conversions::Column::TenantId.eq(tenant.uuid()))
                .filter(conversions::Column::ReceivedAt.gte(from))
                .filter(conversions::Column::ReceivedAt.lt(to))
        };
        let deliveries = |state: &'static str| {
            postback_deliveries::Entity::find()
                .filter(postback_deliveries::Column::TenantId.eq(tenant.uuid()))
                .filter(postback_deliveries::Column::State.eq(state))
                .filter(postback_deliveries::Column::UpdatedAt.gte(from))
                .filter(postback_deliveries::Column::UpdatedAt.lt(to))
        };
        Ok(DigestFigures {
            conversions: in_day().count(db.reader()).await?,
            attributed: in_day().filter(conversions::Column::Attributed.eq(true)).count(db.reader()).await?,
            postbacks_delivered: deliveries(DELIVERY_SUCCEEDED).count(db.reader()).await?,
            postbacks_failed: deliveries(DELIVERY_FAILED).count(db.reader()).await?,
        })
    }

    /// One affiliate's day: the conversions that credited it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AffiliateDay {
        pub email: String,
        pub name: String,
        pub conversions: u64,
    }

    /// Every affiliate credited with at least one conversion received in [from, to).
    pub async fn affiliate_days(
        db: &Db,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AffiliateDay>> {
        use crate::entities::{affiliates, conversion_credits};
        let ids: Vec<uuid::Uuid> = conversions::Entity::find()
            .filter(conversions::Column::TenantId.eq(tenant.uuid()))
            .filter(conversions::Column::ReceivedAt.gte(from))
            .filter(conversions::Column::ReceivedAt.lt(to))
            .select_only()
            .column(conversions::Column::Id)
            .into_tuple()
            .all(db.reader())
            .await?;
        let mut counts: std::collections::BTreeMap<uuid::Uuid, u64> = Default::default();
        // Chunked: SQLite caps the parameters of one statement.
        for chunk in ids.chunks(500) {
            let credited: Vec<uuid::Uuid> = conversion_credits::Entity::find()
                .filter(conversion_credits::Column::TenantId.eq(tenant.uuid()))
                .filter(conversion_credits::Column::ConversionId.is_in(chunk.to_vec()))
                .select_only()
                .column(conversion_credits::Column::AffiliateId)
                .into_tuple()
                .all(db.reader())
                .await?;
            for affiliate in credited {
                *counts.entry(affiliate).or_default() += 1;
            }
        }
        let mut days = Vec::new();
        for (affiliate, conversions) in counts {
            if let Some(row) = affiliates::Entity::find()
                .filter(affiliates::Column::TenantId.eq(tenant.uuid()))
                .filter(affiliates::Column::Id.eq(affiliate))
                .one(db.reader())
                .await?
            {
                days.push(AffiliateDay { email: row.email, name: row.name, conversions });
            }
        }
        Ok(days)
    }

    /// Marks the day done for the tenant and queues the digest to its owners, and each
    /// affiliate's own digest to that affiliate, in one transaction; false (and nothing
    /// queued) when another process got there first.
    pub async fn queue(
        db: &Db,
        tenant: TenantId,
        day: NaiveDate,
        message: Message,
        affiliate_messages: Vec<(String, Message)>,
    ) -> Result<bool> {
        let now = Utc::now();
        let txn = db.writer().begin().await?;
        let inserted = digest_marks::Entity::insert(digest_marks::ActiveModel {
            tenant_id: Set(tenant.uuid()),
            day: Set(day.to_string()),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([digest_marks::Column::TenantId, digest_marks::Column::Day])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 0 {
            return Ok(false);
        }
        for to in owner_addresses(&txn, tenant).await? {
            queue_on(&txn, tenant, &to, message.clone(), now).await?;
        }
        for (to, message) in affiliate_messages {
            queue_on(&txn, tenant, &to, message, now).await?;
        }
        txn.commit().await?;
        Ok(true)
    }
}
