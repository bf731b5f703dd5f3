use sea_orm::entity::prelude::*;

use super::ExactDecimal;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub dedupe_key: String,
    pub txn_id: Option<String>,
    pub event: String,
    pub status: String,
    #[sea_orm(column_type = "Decimal(Some((20, 6)))", nullable)]
    pub amount: Option<ExactDecimal<6>>,
    pub currency: Option<String>,
    #[sea_orm(column_type = "Decimal(Some((20, 6)))", nullable)]
    pub lots: Option<ExactDecimal<6>>,
    pub instrument: Option<String>,
    pub click_id: Option<String>,
    pub player_id: Option<String>,
    pub campaign_id: Option<Uuid>,
    pub original_conversion_id: Option<Uuid>,
    pub attributed: bool,
    pub unattributed_reason: Option<String>,
    pub model: Option<String>,
    pub model_version: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub journey: String,
    pub payload_hash: String,
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub occurred_at: DateTimeUtc,
    pub received_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// 0–100, from the fraud rules' flags.
    pub risk: i16,
    /// The rules' flags as JSON: `[{rule, score, action, evidence}]`.
    #[sea_orm(column_type = "Text")]
    pub fraud_flags: String,
    /// The strongest action of the flags (`flag`, `hold`, `reject`).
    pub fraud_action: Option<String>,
    /// `fraud:<rule>` when a rule rejected the conversion.
    pub rejection_reason: Option<String>,
    /// `open`, `approved`, `rejected`: a person's review; `NULL` until decided.
    pub review_state: Option<String>,
    pub reviewed_by: Option<Uuid>,
    pub reviewed_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub review_note: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
