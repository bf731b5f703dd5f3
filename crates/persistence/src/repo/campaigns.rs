use chrono::Utc;
use clickledger_domain::audit::AuditAction;
use clickledger_domain::ids::CampaignId;
use clickledger_domain::status::CampaignStatus;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, Select, TransactionTrait,
};

use super::require_staff;
use crate::audit::{self, Actor, Change};
use crate::entities::{campaigns, tracking_links};
use crate::page::{self, Page, PageRequest};
use crate::records::{Campaign, try_page};
use crate::{Db, Error, Result, Scope, Viewer};

pub struct NewCampaign {
    pub name: String,
    pub landing_url: String,
    pub fallback_url: Option<String>,
    pub attribution_model: String,
    pub lookback_days: u32,
}

#[derive(Default)]
pub struct CampaignPatch {
    pub name: Option<String>,
    pub landing_url: Option<String>,
    pub fallback_url: Option<Option<String>>,
    pub attribution_model: Option<String>,
    pub lookback_days: Option<u32>,
}

pub struct Campaigns<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> Campaigns<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        Campaigns { db, scope }
    }

    /// Staff see every campaign; an affiliate sees the campaigns it has a link for.
    fn visible(&self) -> Select<campaigns::Entity> {
        let query =
            campaigns::Entity::find().filter(campaigns::Column::TenantId.eq(self.scope.tenant().uuid()));
        match self.scope.viewer() {
            Viewer::Staff => query,
            Viewer::Affiliate(me) => query.filter(
                campaigns::Column::Id.in_subquery(
                    Query::select()
                        .column(tracking_links::Column::CampaignId)
                        .from(tracking_links::Entity)
                        .and_where(tracking_links::Column::TenantId.eq(self.scope.tenant().uuid()))
                        .and_where(tracking_links::Column::AffiliateId.eq(me.uuid()))
                        .to_owned(),
                ),
            ),
        }
    }

    pub async fn get(&self, id: CampaignId) -> Result<Campaign> {
        self.visible()
            .filter(campaigns::Column::Id.eq(id.uuid()))
            .one(self.db.reader())
            .await?
            .ok_or(Error::NotFound)
            .and_then(Campaign::try_from)
    }

    pub async fn list(&self, request: PageRequest) -> Result<Page<Campaign>> {
        let page = page::fetch(self.visible(), campaigns::Column::Id, request, self.db.reader()).await?;
        try_page(page)
    }

    pub async fn create(&self, new: NewCampaign) -> Result<Campaign> {
        require_staff(&self.scope)?;
        let now = Utc::now();
        let model = campaigns::ActiveModel {
            id: Set(CampaignId::new().uuid()),
            tenant_id: Set(self.scope.tenant().uuid()),
            name: Set(new.name),
            landing_url: Set(new.landing_url),
            fallback_url: Set(new.fallback_url),
            attribution_model: Set(new.attribution_model),
            lookback_days: Set(lookback(new.lookback_days)),
            status: Set(CampaignStatus::Active.as_str().to_owned()),
            external_id: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(self.db.writer())
        .await?;
        Campaign::try_from(model)
    }

    pub async fn update(&self, id: CampaignId, patch: CampaignPatch) -> Result<Campaign> {
        require_staff(&self.scope)?;
        let current = self.get(id).await?;
        let mut model = campaigns::ActiveModel {
            id: Set(current.id.uuid()),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        if let Some(name) = patch.name {
            model.name = Set(name);
        }
        if let Some(url) = patch.landing_url {
            model.landing_url = Set(url);
        }
        if let Some(url) = patch.fallback_url {
            model.fallback_url = Set(url);
        }
        if let Some(attribution_model) = patch.attribution_model {
            model.attribution_model = Set(attribution_model);
        }
        if let Some(days) = patch.lookback_days {
            model.lookback_days = Set(lookback(days));
        }
        model.update(self.db.writer()).await?;
        self.get(id).await
    }

    /// Moves the campaign to `status`; setting the status it already has changes nothing.
    pub async fn set_status(&self, id: CampaignId, status: CampaignStatus, actor: Actor) -> Result<Campaign> {
        require_staff(&self.scope)?;
        let current = self.get(id).await?;
        if current.status == status {
            return Ok(current);
        }
        let txn = self.db.writer().begin().await?;
        campaigns::ActiveModel {
            id: Set(current.id.uuid()),
            status: Set(status.as_str().to_owned()),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        let details = audit::status_change(current.status.as_str(), status.as_str());
        let change = Change::new(AuditAction::CampaignStatusChanged, id, details);
        audit::record(&txn, self.scope.tenant(), actor, vec![change]).await?;
        txn.commit().await?;
        self.get(id).await
    }
}

fn lookback(days: u32) -> i32 {
    i32::try_from(days).unwrap_or(i32::MAX)
}
