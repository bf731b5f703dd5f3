use chrono::Utc;
use clickledger_domain::audit::AuditAction;
use clickledger_domain::ids::{AffiliateId, UserId};
use clickledger_domain::role::Role;
use clickledger_domain::status::ActiveStatus;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, Select,
    TransactionTrait,
};

use super::require_staff;
use crate::audit::{self, Actor, Change};
use crate::entities::{affiliates, users};
use crate::page::{self, Page, PageRequest};
use crate::records::{Affiliate, try_page};
use crate::{Db, Error, Result, Scope, Viewer};

pub struct NewAffiliate {
    pub name: String,
    pub email: String,
    pub parent_id: Option<AffiliateId>,
    /// With a password hash, the affiliate gets a login.
    pub password_hash: Option<String>,
}

#[derive(Default)]
pub struct AffiliatePatch {
    pub name: Option<String>,
    pub email: Option<String>,
    /// `Some(None)` detaches from the parent.
    pub parent_id: Option<Option<AffiliateId>>,
}

/// Multi-tier chains deeper than this are refused: overrides are paid per level, and a
/// runaway chain is almost always a data-entry mistake.
const MAX_DEPTH: usize = clickledger_domain::migration::MAX_ANCESTORS;

pub struct Affiliates<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> Affiliates<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        Affiliates { db, scope }
    }

    /// The affiliates this viewer may see: all of the tenant's for staff; itself and its
    /// direct sub-affiliates for an affiliate.
    fn visible(&self) -> Select<affiliates::Entity> {
        let query =
            affiliates::Entity::find().filter(affiliates::Column::TenantId.eq(self.scope.tenant().uuid()));
        match self.scope.viewer() {
            Viewer::Staff => query,
            Viewer::Affiliate(me) => query.filter(
                Condition::any()
                    .add(affiliates::Column::Id.eq(me.uuid()))
                    .add(affiliates::Column::ParentId.eq(me.uuid())),
            ),
        }
    }

    pub async fn get(&self, id: AffiliateId) -> Result<Affiliate> {
        self.visible()
            .filter(affiliates::Column::Id.eq(id.uuid()))
            .one(self.db.reader())
            .await?
            .ok_or(Error::NotFound)
            .and_then(Affiliate::try_from)
    }

    pub async fn list(&self, request: PageRequest) -> Result<Page<Affiliate>> {
        let page = page::fetch(self.visible(), affiliates::Column::Id, request, self.db.reader()).await?;
        try_page(page)
    }

    pub async fn create(&self, new: NewAffiliate) -> Result<Affiliate> {
        require_staff(&self.scope)?;
        if let Some(parent) = new.parent_id {
            self.ensure_depth(parent, None).await?;
        }
        let now = Utc::now();
        let id = AffiliateId::new();
        let txn = self.db.writer().begin().await?;
        let model = affiliates::ActiveModel {
            id: Set(id.uuid()),
            tenant_id: Set(self.scope.tenant().uuid()),
            name: Set(new.name.clone()),
            email: Set(new.email.clone()),
            parent_id: Set(new.parent_id.map(AffiliateId::uuid)),
            status: Set(ActiveStatus::Active.as_str().to_owned()),
            external_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(Error::from)
        .map_err(Error::conflict_on("email"))?;
        if let Some(password_hash) = new.password_hash {
            users::ActiveModel {
                id: Set(UserId::new().uuid()),
                tenant_id: Set(self.scope.tenant().uuid()),
                email: Set(new.email),
                name: Set(new.name),
                password_hash: Set(password_hash),
                role: Set(Role::Affiliate.as_str().to_owned()),
                affiliate_id: Set(Some(id.uuid())),
                status: Set(ActiveStatus::Active.as_str().to_owned()),
                created_at: Set(now),
                last_login_at: Set(None),
                session_epoch: Set(0),
            }
            .insert(&txn)
            .await
            .map_err(Error::from)
            .map_err(Error::conflict_on("email"))?;
        }
        txn.commit().await?;
        Affiliate::try_from(model)
    }

    pub async fn update(&self, id: AffiliateId, patch: AffiliatePatch) -> Result<Affiliate> {
        require_staff(&self.scope)?;
        let current = self.get(id).await?;
        if let Some(Some(parent)) = patch.parent_id {
            self.ensure_depth(parent, Some(id)).await?;
        }
        let mut model = affiliates::ActiveModel {
            id: Set(current.id.uuid()),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        // The affiliate's login (if it has one) carries the same name and e-mail: the e-mail is
        // what it logs in with, so both change together or not at all.
        let mut login = <users::ActiveModel as Default>::default();
        let mut login_changed = false;
        if let Some(name) = patch.name {
            model.name = Set(name.clone());
            login.name = Set(name);
            login_changed = true;
        }
        if let Some(email) = patch.email {
            model.email = Set(email.clone());
            login.email = Set(email);
            login_changed = true;
        }
        if let Some(parent) = patch.parent_id {
            model.parent_id = Set(parent.map(AffiliateId::uuid));
        }
        let txn = self.db.writer().begin().await?;
        model.update(&txn).await.map_err(Error::from).map_err(Error::conflict_on("email"))?;
        if login_changed {
            users::Entity::update_many()
                .set(login)
                .filter(users::Column::TenantId.eq(self.scope.tenant().uuid()))
                .filter(users::Column::AffiliateId.eq(id.uuid()))
                .exec(&txn)
                .await
                .map_err(Error::from)
                .map_err(Error::conflict_on("email"))?;
        }
        txn.commit().await?;
        self.get(id).await
    }

    /// Suspends or reactivates the affiliate and its login together. Suspending ends the
    /// login's sessions at once (reactivating does not bring them back). Setting the status
    /// it already has changes nothing.
    pub async fn set_status(&self, id: AffiliateId, status: ActiveStatus, actor: Actor) -> Result<Affiliate> {
        require_staff(&self.scope)?;
        let current = self.get(id).await?;
        if current.status == status {
            return Ok(current);
        }
        let tenant = self.scope.tenant();
        let txn = self.db.writer().begin().await?;
        affiliates::ActiveModel {
            id: Set(current.id.uuid()),
            status: Set(status.as_str().to_owned()),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        users::Entity::update_many()
            .col_expr(users::Column::Status, sea_orm::sea_query::Expr::value(status.as_str()))
            .filter(users::Column::TenantId.eq(tenant.uuid()))
            .filter(users::Column::AffiliateId.eq(id.uuid()))
            .exec(&txn)
            .await?;
        let action = match status {
            ActiveStatus::Suspended => {
                let logins: Vec<uuid::Uuid> = users::Entity::find()
                    .filter(users::Column::TenantId.eq(tenant.uuid()))
                    .filter(users::Column::AffiliateId.eq(id.uuid()))
                    .all(&txn)
                    .await?
                    .into_iter()
                    .map(|login| login.id)
                    .collect();
                crate::sessions::revoke(&txn, tenant, &logins).await?;
                AuditAction::AffiliateSuspended
            }
            ActiveStatus::Active => AuditAction::AffiliateActivated,
        };
        let details = audit::status_change(current.status.as_str(), status.as_str());
        audit::record(&txn, tenant, actor, vec![Change::new(action, id, details)]).await?;
        txn.commit().await?;
        self.get(id).await
    }

    /// The parent must exist in this tenant, must not be `child` or one of its descendants
    /// (no cycles), and the resulting chain must stay within [`MAX_DEPTH`].
    async fn ensure_depth(&self, parent: AffiliateId, child: Option<AffiliateId>) -> Result<()> {
        let mut cursor = Some(parent);
        let mut depth = 0;
        while let Some(current) = cursor {
            if Some(current) == child {
                return Err(clickledger_domain::Error::invalid("parentId", "would make a cycle").into());
            }
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(clickledger_domain::Error::invalid(
                    "parentId",
                    format!("affiliate chains are limited to {MAX_DEPTH} levels"),
                )
                .into());
            }
            let row = affiliates::Entity::find()
                .filter(affiliates::Column::TenantId.eq(self.scope.tenant().uuid()))
                .filter(affiliates::Column::Id.eq(current.uuid()))
                .one(self.db.reader())
                .await?
                .ok_or(Error::NotFound)?;
            cursor = row.parent_id.map(AffiliateId::from_uuid);
        }
        Ok(())
    }
}
