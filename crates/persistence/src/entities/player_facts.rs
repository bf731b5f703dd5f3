use sea_orm::entity::prelude::*;

use super::ExactDecimal;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "player_facts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub player_key: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub currency: String,
    pub registered_at: Option<DateTimeUtc>,
    pub country: Option<String>,
    #[sea_orm(column_type = "Decimal(Some((20, 6)))", nullable)]
    pub first_deposit: Option<ExactDecimal<6>>,
    #[sea_orm(column_type = "Decimal(Some((32, 6)))")]
    pub total_deposits: ExactDecimal<6>,
    #[sea_orm(column_type = "Decimal(Some((32, 6)))")]
    pub turnover: ExactDecimal<6>,
    #[sea_orm(column_type = "Decimal(Some((32, 6)))")]
    pub lots: ExactDecimal<6>,
    pub trades: i32,
    pub cpa_paid: bool,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
