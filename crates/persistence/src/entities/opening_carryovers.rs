use sea_orm::entity::prelude::*;

use super::ExactDecimal;

/// A revshare carryover imported from another tracker (`m20261207_000025`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "opening_carryovers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub affiliate_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub currency: String,
    /// `YYYY-MM`: the month whose revshare netting it opens.
    pub period: String,
    /// ≤ 0.
    #[sea_orm(column_type = "Decimal(Some((20, 6)))")]
    pub amount: ExactDecimal<6>,
    /// The tracker it came from.
    #[sea_orm(column_type = "Text")]
    pub source: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
