use sea_orm::entity::prelude::*;

use super::ExactDecimal;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub affiliate_id: Uuid,
    pub conversion_id: Option<Uuid>,
    pub plan_id: Option<Uuid>,
    pub plan_version: Option<i32>,
    pub kind: String,
    pub tier: i32,
    pub reverses: Option<String>,
    pub reverses_entry_id: Option<Uuid>,
    #[sea_orm(column_type = "Decimal(Some((20, 6)))")]
    pub amount: ExactDecimal<6>,
    pub currency: String,
    #[sea_orm(column_type = "Decimal(Some((20, 6)))", nullable)]
    pub basis_amount: Option<ExactDecimal<6>>,
    #[sea_orm(column_type = "Decimal(Some((20, 6)))", nullable)]
    pub source_amount: Option<ExactDecimal<6>>,
    pub source_currency: Option<String>,
    #[sea_orm(column_type = "Decimal(Some((28, 12)))", nullable)]
    pub fx_rate: Option<ExactDecimal<12>>,
    pub status: String,
    pub period: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    pub created_by: Option<Uuid>,
    pub external_id: Option<String>,
    pub occurred_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
