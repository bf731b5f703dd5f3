use chrono::{DateTime, Utc};
use clickledger_domain::audit::AuditAction;
use clickledger_domain::dialect::{Dialect, Mapping};
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
            .map(ApiKey::try_from)
            .transpose()?
            .ok_or(Error::NotFound)
    }

    pub async fn list(&self, request: PageRequest) -> Result<Page<ApiKey>> {
        let page = page::fetch(self.visible()?, api_keys::Column::Id, request, self.db.reader()).await?;
        crate::records::try_page(page)
    }

    /// Stores `secret_hash` (see `Directory::authenticate_api_key`); `prefix` is kept for display.
    pub async fn create(&self, new: NewApiKey, actor: Actor) -> Result<ApiKey> {
        self.visible()?;
        let now = Utc::now();
        let id = ApiKeyId::new();
        let signing_secret = self
            .db
            .secrets()
            .seal(&crate::secrets::api_key_signing_secret_owner(id.uuid()), &new.signing_secret);
        let txn = self.db.writer().begin().await?;
        let model = api_keys::ActiveModel {
            id: Set(id.uuid()),
            tenant_id: Set(self.scope.tenant().uuid()),
            name: Set(new.name),
            key_prefix: Set(new.prefix),
            key_hash: Set(new.secret_hash),
            created_at: Set(now),
            revoked_at: Set(None),
            last_used_at: Set(None),
            postbacks_per_minute: Set(new.postbacks_per_minute.map(stored_limit)),
            signing_secret: Set(Some(signing_secret)),
            signing_secret_created_at: Set(Some(now)),
            signature_required: Set(new.signature_required),
            dialect: Set(new.dialect.as_str().to_owned()),
            custom_dialect: Set(new.custom_dialect.as_ref().map(stored_mapping).transpose()?),
        }
        .insert(&txn)
        .await?;
        let key = ApiKey::try_from(model)?;
        let mut details = described(&key);
        details["dialect"] = key.dialect.as_str().into();
        if let Some(mapping) = &key.custom_dialect {
            details["customDialect"] = serde_json::to_value(mapping).map_err(corrupt)?;
        }
        let change = Change::new(AuditAction::ApiKeyCreated, key.id, details);
        audit::record(&txn, self.scope.tenant(), actor, vec![change]).await?;
        txn.commit().await?;
        Ok(key)
    }

    /// Changes what `change` names; every replica drops its cached keys, so the change holds
    /// at once.
    pub async fn update(&self, id: ApiKeyId, change: ApiKeyChange, actor: Actor) -> Result<ApiKey> {
        let current = self.get(id).await?;
        let mut model = api_keys::ActiveModel { id: Set(id.uuid()), ..Default::default() };
        let mut changed = serde_json::Map::new();
        if let Some(name) = change.name.filter(|name| *name != current.name) {
            changed.insert("name".into(), serde_json::json!({ "from": current.name, "to": name }));
            model.name = Set(name);
        }
        if let Some(limit) =
            change.postbacks_per_minute.filter(|limit| *limit != current.postbacks_per_minute)
        {
            changed.insert(
                "postbacksPerMinute".into(),
                serde_json::json!({ "from": current.postbacks_per_minute, "to": limit }),
            );
            model.postbacks_per_minute = Set(limit.map(stored_limit));
        }
        if let Some(required) =
            change.signature_required.filter(|required| *required != current.signature_required)
        {
            changed.insert(
                "signatureRequired".into(),
                serde_json::json!({ "from": current.signature_required, "to": required }),
            );
            model.signature_required = Set(required);
        }
        if let Some(dialect) = change.dialect.filter(|dialect| *dialect != current.dialect) {
            changed.insert(
                "dialect".into(),
                serde_json::json!({ "from": current.dialect.as_str(), "to": dialect.as_str() }),
            );
            model.dialect = Set(dialect.as_str().to_owned());
        }
        if let Some(mapping) = change.custom_dialect.filter(|mapping| *mapping != current.custom_dialect) {
            changed.insert(
                "customDialect".into(),
                serde_json::json!({
                    "from": serde_json::to_value(&current.custom_dialect).map_err(corrupt)?,
                    "to": serde_json::to_value(&mapping).map_err(corrupt)?,
                }),
            );
            model.custom_dialect = Set(mapping.as_ref().map(stored_mapping).transpose()?);
        }
        if model.is_changed() {
            let txn = self.db.writer().begin().await?;
            model.update(&txn).await?;
            let change = Change::new(AuditAction::ApiKeyUpdated, id, serde_json::Value::Object(changed));
            audit::record(&txn, self.scope.tenant(), actor, vec![change]).await?;
            txn.commit().await?;
            crate::key_revocations::announce(self.db).await?;
        }
        self.get(id).await
    }

    /// Replaces the key's signing secret; the old one stops verifying at once, on every
    /// replica.
    pub async fn rotate_signing_secret(&self, id: ApiKeyId, secret: String, actor: Actor) -> Result<ApiKey> {
        let current = self.get(id).await?;
        let sealed =
            self.db.secrets().seal(&crate::secrets::api_key_signing_secret_owner(id.uuid()), &secret);
        let txn = self.db.writer().begin().await?;
        api_keys::ActiveModel {
            id: Set(id.uuid()),
            signing_secret: Set(Some(sealed)),
            signing_secret_created_at: Set(Some(Utc::now())),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        let change = Change::new(AuditAction::ApiKeySigningSecretRotated, id, described(&current));
        audit::record(&txn, self.scope.tenant(), actor, vec![change]).await?;
        txn.commit().await?;
        crate::key_revocations::announce(self.db).await?;
        self.get(id).await
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

/// A key to store: its hash and display prefix, its signing secret, and its settings.
pub struct NewApiKey {
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub signing_secret: String,
    pub postbacks_per_minute: Option<u32>,
    pub signature_required: bool,
    pub dialect: Dialect,
    /// A CUSTOM dialect's mapping (validated by `domain::dialect::Mapping::validated`).
    pub custom_dialect: Option<Mapping>,
}

/// Changes to a key; `None` leaves a setting as it is. `postbacks_per_minute: Some(None)`
/// returns the key to the server's default.
#[derive(Default)]
pub struct ApiKeyChange {
    pub name: Option<String>,
    pub postbacks_per_minute: Option<Option<u32>>,
    pub signature_required: Option<bool>,
    pub dialect: Option<Dialect>,
    /// `Some(None)` drops the CUSTOM mapping.
    pub custom_dialect: Option<Option<Mapping>>,
}

fn stored_mapping(mapping: &Mapping) -> Result<String> {
    serde_json::to_string(mapping).map_err(corrupt)
}

fn corrupt(err: serde_json::Error) -> crate::Error {
    crate::Error::Corrupt(format!("custom dialect: {err}"))
}

fn stored_limit(per_minute: u32) -> i32 {
    i32::try_from(per_minute).unwrap_or(i32::MAX)
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
