use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clicks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub click_id: String,
    pub tenant_id: Uuid,
    pub link_id: Uuid,
    pub affiliate_id: Uuid,
    pub campaign_id: Uuid,
    pub visitor_id: Uuid,
    pub clicked_at: DateTimeUtc,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub referrer: Option<String>,
    pub sub1: Option<String>,
    pub sub2: Option<String>,
    pub sub3: Option<String>,
    pub sub4: Option<String>,
    pub sub5: Option<String>,
    pub source: Option<String>,
    pub creative: Option<String>,
    pub landing_page: Option<String>,
    pub accept_language: Option<String>,
    pub is_bot: bool,
    pub velocity: bool,
    /// ISO 3166-1 alpha-2, from the `--geoip-db` database.
    pub country: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
