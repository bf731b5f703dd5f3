use sea_orm::entity::prelude::*;

/// One count of an affiliate's conversions on one UTC day (days since 1970-01-01): all of
/// them, the flagged ones, those flagged by one rule, or those in one CTIT bucket.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "affiliate_fraud_days")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub affiliate_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub metric: String,
    pub hits: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
