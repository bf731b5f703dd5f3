use sea_orm::entity::prelude::*;

/// An address an affiliate logged in from, and when last.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "affiliate_logins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub affiliate_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub ip: String,
    pub last_seen_at: DateTimeUtc,
    /// The user agent of the latest login from this address.
    pub user_agent: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
