//! Where sealed secrets live, and keeping them sealed under the current key.
//!
//! Each sealed column names its row as the value's owner (see [`crate::sealed`]), so a
//! value moved to another row or column does not open.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};
use uuid::Uuid;

use crate::entities::{api_keys, instance_settings, postback_endpoints, tenants};
use crate::{Db, Result};

pub(crate) fn click_secret_owner(tenant: Uuid) -> String {
    format!("tenants.click_secret:{tenant}")
}

pub(crate) fn endpoint_secret_owner(endpoint: Uuid) -> String {
    format!("postback_endpoints.secret:{endpoint}")
}

pub(crate) fn api_key_signing_secret_owner(key: Uuid) -> String {
    format!("api_keys.signing_secret:{key}")
}

pub(crate) fn setting_owner(key: &str) -> String {
    format!("instance_settings:{key}")
}

/// Instance settings that hold secrets, and only these, are sealed.
pub(crate) const SECRET_SETTINGS: [&str; 1] = ["generated_jwt_secret"];

/// Seals every stored secret that is not yet sealed under the current key: values written
/// before sealing existed, and values whose data key an earlier key wrapped (after a
/// rotation). Run at start-up, it is also the check that the configured keys open every
/// stored secret: one that does not open fails the start, naming the key it needs, rather
/// than the first click or webhook an hour later. Returns how many values it rewrote.
///
/// Each rewrite is conditional on the value it read, so replicas starting together with the
/// same keys never overwrite one another's work with something else.
pub async fn reseal_all(db: &Db) -> Result<usize> {
    let ring = db.secrets();
    let mut rewritten = 0;

    let tenants = tenants::Entity::find()
        .select_only()
        .columns([tenants::Column::Id, tenants::Column::ClickSecret])
        .into_tuple::<(Uuid, String)>()
        .all(db.writer())
        .await?;
    for (id, stored) in tenants {
        if let Some(resealed) = ring.reseal(&click_secret_owner(id), &stored)? {
            tenants::Entity::update_many()
                .col_expr(tenants::Column::ClickSecret, Expr::value(resealed))
                .filter(tenants::Column::Id.eq(id))
                .filter(tenants::Column::ClickSecret.eq(stored))
                .exec(db.writer())
                .await?;
            rewritten += 1;
        }
    }

    let endpoints = postback_endpoints::Entity::find()
        .select_only()
        .columns([
            postback_endpoints::Column::Id,
            postback_endpoints::Column::Secret,
            postback_endpoints::Column::PreviousSecret,
        ])
        .into_tuple::<(Uuid, String, Option<String>)>()
        .all(db.writer())
        .await?;
    for (id, secret, previous) in endpoints {
        let owner = endpoint_secret_owner(id);
        if let Some(resealed) = ring.reseal(&owner, &secret)? {
            postback_endpoints::Entity::update_many()
                .col_expr(postback_endpoints::Column::Secret, Expr::value(resealed))
                .filter(postback_endpoints::Column::Id.eq(id))
                .filter(postback_endpoints::Column::Secret.eq(secret))
                .exec(db.writer())
                .await?;
            rewritten += 1;
        }
        if let Some(previous) = previous
            && let Some(resealed) = ring.reseal(&owner, &previous)?
        {
            postback_endpoints::Entity::update_many()
                .col_expr(postback_endpoints::Column::PreviousSecret, Expr::value(resealed))
                .filter(postback_endpoints::Column::Id.eq(id))
                .filter(postback_endpoints::Column::PreviousSecret.eq(previous))
                .exec(db.writer())
                .await?;
            rewritten += 1;
        }
    }

    let keys = api_keys::Entity::find()
        .select_only()
        .columns([api_keys::Column::Id, api_keys::Column::SigningSecret])
        .filter(api_keys::Column::SigningSecret.is_not_null())
        .into_tuple::<(Uuid, String)>()
        .all(db.writer())
        .await?;
    for (id, stored) in keys {
        if let Some(resealed) = ring.reseal(&api_key_signing_secret_owner(id), &stored)? {
            api_keys::Entity::update_many()
                .col_expr(api_keys::Column::SigningSecret, Expr::value(resealed))
                .filter(api_keys::Column::Id.eq(id))
                .filter(api_keys::Column::SigningSecret.eq(stored))
                .exec(db.writer())
                .await?;
            rewritten += 1;
        }
    }

    let settings = instance_settings::Entity::find()
        .filter(instance_settings::Column::Key.is_in(SECRET_SETTINGS))
        .all(db.writer())
        .await?;
    for setting in settings {
        if let Some(resealed) = ring.reseal(&setting_owner(&setting.key), &setting.value)? {
            instance_settings::Entity::update_many()
                .col_expr(instance_settings::Column::Value, Expr::value(resealed))
                .filter(instance_settings::Column::Key.eq(setting.key))
                .filter(instance_settings::Column::Value.eq(setting.value))
                .exec(db.writer())
                .await?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}
