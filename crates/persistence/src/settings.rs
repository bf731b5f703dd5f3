//! Instance-wide settings (not tenant data): the demo JWT secret, whether the demo was seeded,
//! the demo's API key (for `clickledger simulate`).

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::entities::instance_settings;
use crate::{Db, Result};

/// The stored value for `key`, if any.
pub async fn get(db: &Db, key: &str) -> Result<Option<String>> {
    Ok(instance_settings::Entity::find_by_id(key.to_owned()).one(db.writer()).await?.map(|row| row.value))
}

/// Returns the stored value for `key`, storing `init()` first if there is none. Safe when
/// several processes start at once: the first insert wins and everyone reads it back.
pub async fn get_or_init(db: &Db, key: &str, init: impl FnOnce() -> String) -> Result<(String, bool)> {
    if let Some(existing) = instance_settings::Entity::find_by_id(key.to_owned()).one(db.writer()).await? {
        return Ok((existing.value, false));
    }
    let row = instance_settings::ActiveModel { key: Set(key.to_owned()), value: Set(init()) };
    let inserted = instance_settings::Entity::insert(row)
        .on_conflict(OnConflict::column(instance_settings::Column::Key).do_nothing().to_owned())
        .exec_without_returning(db.writer())
        .await?;
    let stored = instance_settings::Entity::find_by_id(key.to_owned())
        .one(db.writer())
        .await?
        .ok_or(crate::Error::NotFound)?;
    Ok((stored.value, inserted > 0))
}

/// A stored secret (one of [`crate::secrets::SECRET_SETTINGS`]), opened; `None` when unset.
pub async fn get_secret(db: &Db, key: &str) -> Result<Option<String>> {
    debug_assert!(crate::secrets::SECRET_SETTINGS.contains(&key), "{key} is not listed as a secret setting");
    let owner = crate::secrets::setting_owner(key);
    match get(db, key).await? {
        Some(stored) => Ok(Some(db.secrets().open(&owner, &stored)?)),
        None => Ok(None),
    }
}

/// [`get_or_init`] for a secret (one of [`crate::secrets::SECRET_SETTINGS`]): stored sealed.
pub async fn get_or_init_secret(db: &Db, key: &str, init: impl FnOnce() -> String) -> Result<(String, bool)> {
    debug_assert!(crate::secrets::SECRET_SETTINGS.contains(&key), "{key} is not listed as a secret setting");
    let owner = crate::secrets::setting_owner(key);
    let (stored, created) = get_or_init(db, key, || db.secrets().seal(&owner, &init())).await?;
    Ok((db.secrets().open(&owner, &stored)?, created))
}
