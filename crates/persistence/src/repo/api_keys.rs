use chrono::{DateTime, Utc};
use clickledger_domain::audit::AuditAction;
use clickledger_domain::ids::ApiKeyId;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, Select, TransactionTrait,
};

use super::require_staff;
use crate::audit::{self, Actor, Change};
use crate::entities::api_keys;
use crate::page::{self, Page, PageRequest};
use crate::records::ApiKey;
use crate::{Db, Error, Result, Scope};

pub struct ApiKeys<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> ApiKeys<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        ApiKeys { db, scope }
    }

    fn visible(&self) -> Result<Select<api_keys::Entity>> {
        require_staff(&self.scope)?;
        Ok(api_keys::Entity::find().filter(api_keys::Column::TenantId.eq(self.scope.tenant().uuid())))
    }

    pub async fn get(&self, id: ApiKeyId) -> Result<ApiKey> {
        self.visible()?
            .filter(api_keys::Column::Id.eq(id.uuid()))
            .one(self.db.reader())
            .await?
            .map(ApiKey::from)
            .ok_or(Error::NotFound)
    }

    pub async fn list(&self, request: PageRequest) -> Result<Page<ApiKey>> {
        let page = page::fetch(self.visible()?, api_keys::Column::Id, request, self.db.reader()).await?;
        Ok(page.map(ApiKey::from))
    }

    /// Stores `secret_hash` (see `Directory::authenticate_api_key`); `prefix` is kept for display.
    pub async fn create(
        &self,
        name: String,
        prefix: String,
        secret_hash: String,
        actor: Actor,
    ) -> Result<ApiKey> {
        self.visible()?;
        let txn = self.db.writer().begin().await?;
        let model = api_keys::ActiveModel {
            id: Set(ApiKeyId::new().uuid()),
            tenant_id: Set(self.scope.tenant().uuid()),
            name: Set(name),
            key_prefix: Set(prefix),
            key_hash: Set(secret_hash),
            created_at: Set(Utc::now()),
            revoked_at: Set(None),
            last_used_at: Set(None),
        }
        .insert(&txn)
        .await?;
        let key = ApiKey::from(model);
        let change = Change::new(AuditAction::ApiKeyCreated, key.id, described(&key));
        audit::record(&txn, self.scope.tenant(), actor, vec![change]).await?;
        txn.commit().await?;
        Ok(key)
    }

    pub async fn revoke(&self, id: ApiKeyId, actor: Actor) -> Result<ApiKey> {
        let current = self.get(id).await?;
        if current.revoked_at.is_none() {
            let txn = self.db.writer().begin().await?;
            api_keys::ActiveModel {
                id: Set(current.id.uuid()),
                revoked_at: Set(Some(Utc::now())),
                ..Default::default()
            }
            .update(&txn)
            .await?;
            let change = Change::new(AuditAction::ApiKeyRevoked, current.id, described(&current));
            audit::record(&txn, self.scope.tenant(), actor, vec![change]).await?;
            txn.commit().await?;
            crate::key_revocations::announce(self.db).await?;
        }
        self.get(id).await
    }
}

/// A key in the audit log: its name and displayed prefix, never the key.
fn described(key: &ApiKey) -> serde_json::Value {
    serde_json::json!({ "name": key.name, "prefix": key.prefix })
}

/// Stamps when keys were last used: one statement per key, never moving a stamp back (uses
/// are gathered by the caller and written in batches, not per postback).
pub async fn record_uses(db: &Db, uses: &[(ApiKeyId, DateTime<Utc>)]) -> Result<()> {
    for &(key, at) in uses {
        api_keys::Entity::update_many()
            .col_expr(api_keys::Column::LastUsedAt, sea_orm::sea_query::Expr::value(Some(at)))
            .filter(api_keys::Column::Id.eq(key.uuid()))
            .filter(
                sea_orm::Condition::any()
                    .add(api_keys::Column::LastUsedAt.is_null())
                    .add(api_keys::Column::LastUsedAt.lt(at)),
            )
            .exec(db.writer())
            .await?;
    }
    Ok(())
}
