use clickledger_domain::ids::UserId;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::entities::users;
use crate::records::User;
use crate::{Db, Error, Result, Scope};

pub struct Users<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> Users<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        Users { db, scope }
    }

    pub async fn get(&self, id: UserId) -> Result<User> {
        users::Entity::find()
            .filter(users::Column::TenantId.eq(self.scope.tenant().uuid()))
            .filter(users::Column::Id.eq(id.uuid()))
            .one(self.db.reader())
            .await?
            .ok_or(Error::NotFound)
            .and_then(User::try_from)
    }
}
