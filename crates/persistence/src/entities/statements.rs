use sea_orm::entity::prelude::*;

use super::ExactDecimal;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "statements")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub affiliate_id: Uuid,
    pub period: String,
    pub currency: String,
    #[sea_orm(column_type = "Decimal(Some((20, 6)))")]
    pub opening_carryover: ExactDecimal<6>,
    #[sea_orm(column_type = "Decimal(Some((20, 6)))")]
    pub closing_carryover: ExactDecimal<6>,
    #[sea_orm(column_type = "Decimal(Some((20, 6)))")]
    pub balance: ExactDecimal<6>,
    /// JSON: `[{"kind": "cpa", "amount": "100.00"}, …]`.
    #[sea_orm(column_type = "Text")]
    pub lines: String,
    pub status: String,
    pub closed_at: DateTimeUtc,
    pub paid_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
