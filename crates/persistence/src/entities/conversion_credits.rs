use sea_orm::entity::prelude::*;

use super::ExactDecimal;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversion_credits")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub conversion_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub affiliate_id: Uuid,
    pub tenant_id: Uuid,
    #[sea_orm(column_type = "Decimal(Some((12, 6)))")]
    pub share: ExactDecimal<6>,
    pub position: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
