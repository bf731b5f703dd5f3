use chrono::Utc;
use clickledger_domain::audit::AuditAction;
use clickledger_domain::ids::{AffiliateId, CampaignId, TrackingLinkId};
use clickledger_domain::status::ActiveStatus;
use rand::Rng;
use rand::distr::Alphanumeric;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, Select, TransactionTrait,
};

use super::{Affiliates, Campaigns, require_staff};
use crate::audit::{self, Actor, Change};
use crate::entities::tracking_links;
use crate::page::{self, Page, PageRequest};
use crate::records::{TrackingLink, try_page};
use crate::{Db, Error, Result, Scope, Viewer};

pub struct NewTrackingLink {
    pub affiliate_id: AffiliateId,
    pub campaign_id: CampaignId,
}

#[derive(Default, Clone, Copy)]
pub struct LinkFilter {
    pub affiliate_id: Option<AffiliateId>,
    pub campaign_id: Option<CampaignId>,
}

/// Length of a link's public code: 62^10 ≈ 8·10^17 codes, so guessing a live one is hopeless
/// and a collision (retried) is vanishingly rare.
const CODE_LEN: usize = 10;

pub struct TrackingLinks<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> TrackingLinks<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        TrackingLinks { db, scope }
    }

    fn visible(&self) -> Select<tracking_links::Entity> {
        let query = tracking_links::Entity::find()
            .filter(tracking_links::Column::TenantId.eq(self.scope.tenant().uuid()));
        match self.scope.viewer() {
            Viewer::Staff => query,
            Viewer::Affiliate(me) => query.filter(tracking_links::Column::AffiliateId.eq(me.uuid())),
        }
    }

    pub async fn get(&self, id: TrackingLinkId) -> Result<TrackingLink> {
        self.visible()
            .filter(tracking_links::Column::Id.eq(id.uuid()))
            .one(self.db.reader())
            .await?
            .ok_or(Error::NotFound)
            .and_then(TrackingLink::try_from)
    }

    pub async fn list(&self, filter: LinkFilter, request: PageRequest) -> Result<Page<TrackingLink>> {
        let mut query = self.visible();
        if let Some(affiliate) = filter.affiliate_id {
            query = query.filter(tracking_links::Column::AffiliateId.eq(affiliate.uuid()));
        }
        if let Some(campaign) = filter.campaign_id {
            query = query.filter(tracking_links::Column::CampaignId.eq(campaign.uuid()));
        }
        let page = page::fetch(query, tracking_links::Column::Id, request, self.db.reader()).await?;
        try_page(page)
    }

    pub async fn create(&self, new: NewTrackingLink) -> Result<TrackingLink> {
        require_staff(&self.scope)?;
        // Both must belong to this tenant: a foreign ID is simply not found.
        Affiliates::scoped(self.db, self.scope).get(new.affiliate_id).await?;
        Campaigns::scoped(self.db, self.scope).get(new.campaign_id).await?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            // 48 bits: the width the click ID reserves for the link.
            let link_tag = rand::rng().random_range(0..(1i64 << 48));
            let model = tracking_links::ActiveModel {
                id: Set(TrackingLinkId::new().uuid()),
                tenant_id: Set(self.scope.tenant().uuid()),
                affiliate_id: Set(new.affiliate_id.uuid()),
                campaign_id: Set(new.campaign_id.uuid()),
                code: Set(random_code()),
                link_tag: Set(link_tag),
                status: Set(ActiveStatus::Active.as_str().to_owned()),
                created_at: Set(Utc::now()),
            };
            match model.insert(self.db.writer()).await.map_err(Error::from) {
                Ok(model) => return TrackingLink::try_from(model),
                Err(Error::Conflict { .. }) if attempts < 5 => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// Suspends or reactivates the link; setting the status it already has changes nothing.
    pub async fn set_status(
        &self,
        id: TrackingLinkId,
        status: ActiveStatus,
        actor: Actor,
    ) -> Result<TrackingLink> {
        require_staff(&self.scope)?;
        let current = self.get(id).await?;
        if current.status == status {
            return Ok(current);
        }
        let txn = self.db.writer().begin().await?;
        tracking_links::ActiveModel {
            id: Set(current.id.uuid()),
            status: Set(status.as_str().to_owned()),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        let action = match status {
            ActiveStatus::Suspended => AuditAction::TrackingLinkSuspended,
            ActiveStatus::Active => AuditAction::TrackingLinkActivated,
        };
        let mut details = audit::status_change(current.status.as_str(), status.as_str());
        details["code"] = serde_json::json!(current.code);
        audit::record(&txn, self.scope.tenant(), actor, vec![Change::new(action, id, details)]).await?;
        txn.commit().await?;
        self.get(id).await
    }
}

/// A new link's public code (also for links made for another tracker's `?a=&c=` shape).
pub(crate) fn random_code() -> String {
    rand::rng().sample_iter(&Alphanumeric).take(CODE_LEN).map(char::from).collect()
}
