use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub key_prefix: String,
    #[sea_orm(unique)]
    pub key_hash: String,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    /// Postbacks allowed per minute; `None`: the server's default.
    pub postbacks_per_minute: Option<i32>,
    /// The HMAC key of signed postbacks. Kept as is: verifying needs it (unlike the key
    /// itself, which is only compared by hash).
    pub signing_secret: Option<String>,
    pub signing_secret_created_at: Option<DateTimeUtc>,
    pub signature_required: bool,
    /// Whose parameter names the key's postbacks use (`domain::dialect::Dialect`).
    pub dialect: String,
    /// A CUSTOM dialect's mapping, as JSON (`domain::dialect::Mapping`); `None` otherwise.
    pub custom_dialect: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
