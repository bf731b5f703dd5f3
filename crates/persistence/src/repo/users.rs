use chrono::Utc;
use clickledger_domain::audit::AuditAction;
use clickledger_domain::ids::UserId;
use clickledger_domain::role::Role;
use clickledger_domain::status::ActiveStatus;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, Select, TransactionTrait,
};
use serde_json::json;

use super::require_staff;
use crate::audit::{self, Actor, Change};
use crate::entities::users;
use crate::page::{self, Page, PageRequest};
use crate::records::{User, try_page};
use crate::{Db, Error, Result, Scope, Viewer};

/// Logins of a tenant. Staff see every login; an affiliate only its own.
pub struct Users<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> Users<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        Users { db, scope }
    }

    fn visible(&self) -> Select<users::Entity> {
        let query = users::Entity::find().filter(users::Column::TenantId.eq(self.scope.tenant().uuid()));
        match self.scope.viewer() {
            Viewer::Staff => query,
            Viewer::Affiliate(me) => query.filter(users::Column::AffiliateId.eq(me.uuid())),
        }
    }

    pub async fn get(&self, id: UserId) -> Result<User> {
        self.visible()
            .filter(users::Column::Id.eq(id.uuid()))
            .one(self.db.reader())
            .await?
            .ok_or(Error::NotFound)
            .and_then(User::try_from)
    }

    /// Operator staff (owners and managers), not affiliate logins.
    pub async fn staff(&self, request: PageRequest) -> Result<Page<User>> {
        require_staff(&self.scope)?;
        let query = self.visible().filter(users::Column::AffiliateId.is_null());
        try_page(page::fetch(query, users::Column::Id, request, self.db.reader()).await?)
    }

    /// Adds an owner or manager login.
    pub async fn create_staff(
        &self,
        email: String,
        name: String,
        password_hash: String,
        role: Role,
        actor: Actor,
    ) -> Result<User> {
        require_staff(&self.scope)?;
        if !role.is_staff() {
            return Err(
                clickledger_domain::Error::invalid("role", "staff logins are OWNER or MANAGER").into()
            );
        }
        let txn = self.db.writer().begin().await?;
        let model = users::ActiveModel {
            id: Set(UserId::new().uuid()),
            tenant_id: Set(self.scope.tenant().uuid()),
            email: Set(email),
            name: Set(name),
            password_hash: Set(password_hash),
            role: Set(role.as_str().to_owned()),
            affiliate_id: Set(None),
            status: Set(ActiveStatus::Active.as_str().to_owned()),
            created_at: Set(Utc::now()),
            last_login_at: Set(None),
            session_epoch: Set(0),
        }
        .insert(&txn)
        .await
        .map_err(Error::from)
        .map_err(Error::conflict_on("email"))?;
        let user = User::try_from(model)?;
        let details = json!({ "email": user.email, "role": role.as_str().to_uppercase() });
        audit::record(
            &txn,
            self.scope.tenant(),
            actor,
            vec![Change::new(AuditAction::UserCreated, user.id, details)],
        )
        .await?;
        txn.commit().await?;
        Ok(user)
    }

    /// Suspends or reactivates a staff login. Suspending ends its sessions at once (and
    /// reactivating does not bring them back: the user signs in again). No one suspends
    /// themselves, so a tenant always keeps the owner who acts; affiliate logins go with their
    /// affiliate (`Affiliates::set_status`). Setting the status it already has changes nothing.
    pub async fn set_status(&self, id: UserId, status: ActiveStatus, actor: Actor) -> Result<User> {
        require_staff(&self.scope)?;
        let current = self.get(id).await?;
        if current.affiliate_id.is_some() {
            return Err(clickledger_domain::Error::invalid(
                "id",
                "an affiliate's login is suspended with its affiliate (suspendAffiliate)",
            )
            .into());
        }
        if status == ActiveStatus::Suspended && actor == Actor::User(id) {
            return Err(clickledger_domain::Error::invalid("id", "you cannot suspend yourself").into());
        }
        if current.status == status {
            return Ok(current);
        }
        let txn = self.db.writer().begin().await?;
        users::Entity::update_many()
            .col_expr(users::Column::Status, sea_orm::sea_query::Expr::value(status.as_str()))
            .filter(users::Column::TenantId.eq(self.scope.tenant().uuid()))
            .filter(users::Column::Id.eq(id.uuid()))
            .exec(&txn)
            .await?;
        let action = match status {
            ActiveStatus::Suspended => {
                crate::sessions::revoke(&txn, self.scope.tenant(), &[id.uuid()]).await?;
                AuditAction::UserSuspended
            }
            ActiveStatus::Active => AuditAction::UserActivated,
        };
        let mut details = audit::status_change(current.status.as_str(), status.as_str());
        details["email"] = json!(current.email);
        audit::record(&txn, self.scope.tenant(), actor, vec![Change::new(action, id, details)]).await?;
        txn.commit().await?;
        users::Entity::find_by_id(id.uuid())
            .one(self.db.writer())
            .await?
            .ok_or(Error::NotFound)
            .and_then(User::try_from)
    }
}
