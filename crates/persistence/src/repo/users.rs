use chrono::Utc;
use clickledger_domain::ids::UserId;
use clickledger_domain::role::Role;
use clickledger_domain::status::ActiveStatus;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, Select};

use super::require_staff;
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
    ) -> Result<User> {
        require_staff(&self.scope)?;
        if !role.is_staff() {
            return Err(
                clickledger_domain::Error::invalid("role", "staff logins are OWNER or MANAGER").into()
            );
        }
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
        }
        .insert(self.db.writer())
        .await
        .map_err(Error::from)
        .map_err(Error::conflict_on("email"))?;
        User::try_from(model)
    }
}
