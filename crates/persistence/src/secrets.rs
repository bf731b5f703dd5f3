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
pub(crate) const SECRET_SETTINGS: [&str; 2] = ["generated_jwt_secret", "demo_api_key"];

/// Seals every stored secret that is not yet sealed under the current key: values written
/// before sealing existed, and values whose data key an earlier key wrapped (after a
/// rotation). Run at start-up, it is also the check that the configured keys open every
/// stored secret: one that does not open fails the start, naming the key it needs, rather
/// than the first click or webhook an hour later. Returns how many values it rewrote.
///
/// Each rewrite is conditional on the value it read, so replicas starting together with the
/// same keys never overwrite one another's work with something else.
pub async fn reseal_all(db: &Db) -> Result<usize> {
    let mut rewritten = 0;

    let tenants = tenants::Entity::find()
        .select_only()
        .columns([tenants::Column::Id, tenants::Column::ClickSecret])
        .into_tuple::<(Uuid, String)>()
        .all(db.writer())
        .await?;
    for (id, stored) in tenants {
        rewritten += reseal::<tenants::Entity>(
            db,
            tenants::Column::Id,
            id,
            tenants::Column::ClickSecret,
            stored,
            &click_secret_owner(id),
        )
        .await?;
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
        use postback_endpoints::Column::{Id, PreviousSecret, Secret};
        let owner = endpoint_secret_owner(id);
        rewritten += reseal::<postback_endpoints::Entity>(db, Id, id, Secret, secret, &owner).await?;
        if let Some(previous) = previous {
            rewritten +=
                reseal::<postback_endpoints::Entity>(db, Id, id, PreviousSecret, previous, &owner).await?;
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
        let owner = api_key_signing_secret_owner(id);
        rewritten += reseal::<api_keys::Entity>(
            db,
            api_keys::Column::Id,
            id,
            api_keys::Column::SigningSecret,
            stored,
            &owner,
        )
        .await?;
    }

    let settings = instance_settings::Entity::find()
        .filter(instance_settings::Column::Key.is_in(SECRET_SETTINGS))
        .all(db.writer())
        .await?;
    for setting in settings {
        use instance_settings::Column::{Key, Value};
        let owner = setting_owner(&setting.key);
        rewritten +=
            reseal::<instance_settings::Entity>(db, Key, setting.key, Value, setting.value, &owner).await?;
    }
    Ok(rewritten)
}

/// Rewrites one stored secret (`column` of the row whose `key_column` is `key`) if it is not
/// sealed under the current key, only if it still holds what was read. How many it rewrote.
async fn reseal<E: EntityTrait>(
    db: &Db,
    key_column: E::Column,
    key: impl Into<sea_orm::Value>,
    column: E::Column,
    stored: String,
    owner: &str,
) -> Result<usize> {
    let Some(resealed) = db.secrets().reseal(owner, &stored)? else {
        return Ok(0);
    };
    E::update_many()
        .col_expr(column, Expr::value(resealed))
        .filter(key_column.eq(key))
        .filter(column.eq(stored))
        .exec(db.writer())
        .await?;
    Ok(1)
}
