use sea_orm::entity::prelude::*;

/// A player's first claim of a promo code, with where it claimed it from.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "promo_claims")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub promo_code: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub player_id: String,
    pub ip: Option<String>,
    pub device_id: Option<String>,
    pub conversion_id: Uuid,
    pub created_at: DateTimeUtc,
    /// The postback's `bonus_amount`, exact as given.
    pub bonus_amount: Option<String>,
    /// When the claiming conversion happened (for the period it belongs to).
    pub occurred_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
