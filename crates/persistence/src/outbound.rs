//! Outbound postbacks: affiliates' endpoints (a tenant-scoped repository) and the durable
//! delivery queue the notifier works from. A delivery row is written before it is tried, each
//! try is claimed by bumping its attempt counter (compare-and-set, so two workers never send
//! the same attempt) and leased: a worker that dies mid-send leaves the row due again once
//! the lease runs out. That is what makes delivery at-least-once across crashes.

use chrono::{DateTime, Utc};
use clickledger_domain::audit::AuditAction;
use clickledger_domain::ids::{AffiliateId, CampaignId, ConversionId, DeliveryId, EndpointId, TenantId};
use clickledger_domain::status::ActiveStatus;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select, TransactionTrait,
};

use crate::audit::{self, Actor, Change, Diff};
use crate::entities::{
    affiliates, clicks, notifier_cursors, postback_attempts, postback_deliveries, postback_endpoints, tenants,
};
use crate::page::{self, Page, PageRequest};
use crate::{Db, Error, Result, Scope, Viewer};

pub const ENDPOINT_ACTIVE: &str = "active";
pub const ENDPOINT_DISABLED: &str = "disabled";

pub const DELIVERY_PENDING: &str = "pending";
pub const DELIVERY_SUCCEEDED: &str = "succeeded";
/// Dead-lettered: every scheduled retry failed, or the endpoint said 410 Gone.
pub const DELIVERY_FAILED: &str = "failed";

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: EndpointId,
    pub tenant_id: TenantId,
    pub affiliate_id: AffiliateId,
    pub campaign_id: Option<CampaignId>,
    pub url_template: String,
    /// `GET` or `POST`.
    pub method: String,
    /// Event kinds to send (`registration`, `ftd`, …); empty means all.
    pub events: Vec<String>,
    /// Conversion statuses to send; empty means all.
    pub statuses: Vec<String>,
    pub secret: String,
    /// The secret before the last rotation, still signed with until `previous_secret_until`.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub max_concurrency: u32,
    pub timeout_ms: u32,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Start of the current run of failures; cleared by a success.
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Endpoint {
    /// The secrets to sign with now: the current one, plus the previous during its overlap.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_secret_until)
            && now < until
        {
            secrets.push(previous);
        }
        secrets
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

impl Endpoint {
    /// The endpoint a row describes, its secrets opened.
    fn from_row(db: &Db, m: postback_endpoints::Model) -> Result<Endpoint> {
        let owner = crate::secrets::endpoint_secret_owner(m.id);
        let secret = db.secrets().open(&owner, &m.secret)?;
        let previous_secret =
            m.previous_secret.map(|stored| db.secrets().open(&owner, &stored)).transpose()?;
        Ok(Endpoint {
            id: EndpointId::from_uuid(m.id),
            tenant_id: TenantId::from_uuid(m.tenant_id),
            affiliate_id: AffiliateId::from_uuid(m.affiliate_id),
            campaign_id: m.campaign_id.map(CampaignId::from_uuid),
            url_template: m.url_template,
            method: m.method,
            events: split_list(&m.events),
            statuses: split_list(&m.statuses),
            secret,
            previous_secret,
            previous_secret_until: m.previous_secret_until,
            max_concurrency: Ord::max(u32::try_from(m.max_concurrency).unwrap_or(1), 1),
            timeout_ms: Ord::max(u32::try_from(m.timeout_ms).unwrap_or(5_000), 1),
            enabled: m.status == ENDPOINT_ACTIVE,
            disabled_reason: m.disabled_reason,
            failing_since: m.failing_since,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub affiliate_id: AffiliateId,
    pub campaign_id: Option<CampaignId>,
    pub url_template: String,
    pub method: String,
    pub events: Vec<String>,
    pub statuses: Vec<String>,
    pub secret: String,
    pub max_concurrency: u32,
    pub timeout_ms: u32,
}

#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url_template: Option<String>,
    pub method: Option<String>,
    pub events: Option<Vec<String>>,
    pub statuses: Option<Vec<String>>,
    /// `Some(None)` makes the endpoint apply to every campaign.
    pub campaign_id: Option<Option<CampaignId>>,
    pub max_concurrency: Option<u32>,
    pub timeout_ms: Option<u32>,
    /// Re-enabling clears the disabled reason and the failure run.
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub endpoint_id: EndpointId,
    pub event_seq: Option<i64>,
    pub conversion_id: Option<ConversionId>,
    /// `conversion.created`, `conversion.status_changed` or `test`.
    pub event: String,
    pub state: String,
    /// Attempts started so far.
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub method: String,
    pub url: String,
    pub body: String,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<postback_deliveries::Model> for Delivery {
    fn from(m: postback_deliveries::Model) -> Self {
        Delivery {
            id: DeliveryId::from_uuid(m.id),
            tenant_id: TenantId::from_uuid(m.tenant_id),
            endpoint_id: EndpointId::from_uuid(m.endpoint_id),
            event_seq: m.event_seq,
            conversion_id: m.conversion_id.map(ConversionId::from_uuid),
            event: m.event,
            state: m.state,
            attempts: u32::try_from(m.attempts).unwrap_or(0),
            next_attempt_at: m.next_attempt_at,
            method: m.method,
            url: m.url,
            body: m.body,
            last_status: m.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: m.last_error,
            last_attempt_at: m.last_attempt_at,
            created_at: m.created_at,
        }
    }
}

/// One try of a delivery, as the delivery log shows it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub delivery_id: DeliveryId,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    /// Method, URL and signature headers as sent.
    pub request: String,
    pub response_status: Option<u16>,
    /// The first bytes of the response body.
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub latency_ms: u32,
}

impl From<postback_attempts::Model> for Attempt {
    fn from(m: postback_attempts::Model) -> Self {
        Attempt {
            delivery_id: DeliveryId::from_uuid(m.delivery_id),
            attempt: u32::try_from(m.attempt).unwrap_or(0),
            started_at: m.started_at,
            request: m.request,
            response_status: m.response_status.and_then(|s| u16::try_from(s).ok()),
            response_body: m.response_body,
            error: m.error,
            latency_ms: u32::try_from(m.latency_ms).unwrap_or(0),
        }
    }
}

/// A delivery to store: the request is rendered once, at enqueue time, so retries send the
/// same thing (only the signature timestamp changes).
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub endpoint_id: EndpointId,
    pub event_seq: Option<i64>,
    pub conversion_id: Option<ConversionId>,
    pub event: String,
    pub method: String,
    pub url: String,
    pub body: String,
}

fn delivery_row(tenant: TenantId, new: NewDelivery, now: DateTime<Utc>) -> postback_deliveries::ActiveModel {
    postback_deliveries::ActiveModel {
        id: Set(DeliveryId::new().uuid()),
        tenant_id: Set(tenant.uuid()),
        endpoint_id: Set(new.endpoint_id.uuid()),
        event_seq: Set(new.event_seq),
        conversion_id: Set(new.conversion_id.map(ConversionId::uuid)),
        event: Set(new.event),
        state: Set(DELIVERY_PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        method: Set(new.method),
        url: Set(new.url),
        body: Set(new.body),
        last_status: Set(None),
        last_error: Set(None),
        last_attempt_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Endpoints as a viewer may see them: staff see the tenant's; an affiliate only its own.
pub struct Endpoints<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> Endpoints<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        Endpoints { db, scope }
    }

    fn visible(&self) -> Select<postback_endpoints::Entity> {
        let query = postback_endpoints::Entity::find()
            .filter(postback_endpoints::Column::TenantId.eq(self.scope.tenant().uuid()));
        match self.scope.viewer() {
            Viewer::Staff => query,
            Viewer::Affiliate(me) => query.filter(postback_endpoints::Column::AffiliateId.eq(me.uuid())),
        }
    }

    pub async fn get(&self, id: EndpointId) -> Result<Endpoint> {
        self.visible()
            .filter(postback_endpoints::Column::Id.eq(id.uuid()))
            .one(self.db.writer())
            .await?
            .map(|row| Endpoint::from_row(self.db, row))
            .ok_or(Error::NotFound)?
    }

    pub async fn list(&self, request: PageRequest) -> Result<Page<Endpoint>> {
        let page =
            page::fetch(self.visible(), postback_endpoints::Column::Id, request, self.db.reader()).await?;
        page.try_map(|row| Endpoint::from_row(self.db, row))
    }

    /// The campaign must be one this viewer may see (an affiliate: one it has a link for);
    /// any other is simply not found, like every other lookup.
    async fn check_campaign(&self, campaign: Option<CampaignId>) -> Result<()> {
        let Some(campaign) = campaign else { return Ok(()) };
        crate::repo::Campaigns::scoped(self.db, self.scope).get(campaign).await.map(|_| ())
    }

    /// An affiliate creates endpoints for itself only; staff for any affiliate of the tenant.
    /// Creates an endpoint unless the affiliate already has `limit` (a caller's policy; the
    /// count and the insert are not atomic, so concurrent creations may pass it by a few).
    pub async fn create(&self, new: NewEndpoint, limit: u64, actor: Actor) -> Result<Endpoint> {
        if let Viewer::Affiliate(me) = self.scope.viewer()
            && me != new.affiliate_id
        {
            return Err(Error::NotFound);
        }
        affiliates::Entity::find()
            .filter(affiliates::Column::TenantId.eq(self.scope.tenant().uuid()))
            .filter(affiliates::Column::Id.eq(new.affiliate_id.uuid()))
            .one(self.db.reader())
            .await?
            .ok_or(Error::NotFound)?;
        let existing = postback_endpoints::Entity::find()
            .filter(postback_endpoints::Column::TenantId.eq(self.scope.tenant().uuid()))
            .filter(postback_endpoints::Column::AffiliateId.eq(new.affiliate_id.uuid()))
            .count(self.db.reader())
            .await?;
        if existing >= limit {
            return Err(Error::Invalid(clickledger_domain::Error::invalid(
                "affiliateId",
                format!(
                    "an affiliate has at most {limit} postback endpoints; change an existing one instead"
                ),
            )));
        }
        self.check_campaign(new.campaign_id).await?;
        let now = Utc::now();
        let id = EndpointId::new();
        let secret = self.db.secrets().seal(&crate::secrets::endpoint_secret_owner(id.uuid()), &new.secret);
        // Never the secret.
        let details = serde_json::json!({
            "affiliateId": new.affiliate_id.to_string(),
            "campaignId": new.campaign_id.map(|c| c.to_string()),
            "urlTemplate": new.url_template,
            "method": new.method,
            "events": new.events,
            "statuses": new.statuses,
        });
        let txn = self.db.writer().begin().await?;
        postback_endpoints::ActiveModel {
            id: Set(id.uuid()),
            tenant_id: Set(self.scope.tenant().uuid()),
            affiliate_id: Set(new.affiliate_id.uuid()),
            campaign_id: Set(new.campaign_id.map(CampaignId::uuid)),
            url_template: Set(new.url_template),
            method: Set(new.method),
            events: Set(new.events.join(",")),
            statuses: Set(new.statuses.join(",")),
            secret: Set(secret),
            previous_secret: Set(None),
            previous_secret_until: Set(None),
            max_concurrency: Set(to_i32(new.max_concurrency)),
            timeout_ms: Set(to_i32(new.timeout_ms)),
            status: Set(ENDPOINT_ACTIVE.to_owned()),
            disabled_reason: Set(None),
            failing_since: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        let change = Change::new(AuditAction::PostbackEndpointCreated, id, details);
        audit::record(&txn, self.scope.tenant(), actor, vec![change]).await?;
        txn.commit().await?;
        self.get(id).await
    }

    pub async fn update(&self, id: EndpointId, patch: EndpointPatch, actor: Actor) -> Result<Endpoint> {
        let current = self.get(id).await?;
        if let Some(campaign) = patch.campaign_id {
            self.check_campaign(campaign).await?;
        }
        let mut row = postback_endpoints::ActiveModel {
            id: Set(current.id.uuid()),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        let mut diff = Diff::default();
        if let Some(url) = patch.url_template {
            diff.field("urlTemplate", &current.url_template, &url);
            row.url_template = Set(url);
        }
        if let Some(method) = patch.method {
            diff.field("method", &current.method, &method);
            row.method = Set(method);
        }
        if let Some(events) = patch.events {
            diff.field("events", &current.events, &events);
            row.events = Set(events.join(","));
        }
        if let Some(statuses) = patch.statuses {
            diff.field("statuses", &current.statuses, &statuses);
            row.statuses = Set(statuses.join(","));
        }
        if let Some(campaign) = patch.campaign_id {
            let name = |c: Option<CampaignId>| c.map(|c| c.to_string());
            diff.field("campaignId", name(current.campaign_id), name(campaign));
            row.campaign_id = Set(campaign.map(CampaignId::uuid));
        }
        if let Some(n) = patch.max_concurrency {
            diff.field("maxConcurrency", current.max_concurrency, n);
            row.max_concurrency = Set(to_i32(n));
        }
        if let Some(ms) = patch.timeout_ms {
            diff.field("timeoutMs", current.timeout_ms, ms);
            row.timeout_ms = Set(to_i32(ms));
        }
        if let Some(enabled) = patch.enabled {
            diff.field("enabled", current.enabled, enabled);
        }
        match patch.enabled {
            Some(true) => {
                row.status = Set(ENDPOINT_ACTIVE.to_owned());
                row.disabled_reason = Set(None);
                row.failing_since = Set(None);
            }
            Some(false) => {
                row.status = Set(ENDPOINT_DISABLED.to_owned());
                row.disabled_reason = Set(Some("disabled by a user".to_owned()));
            }
            None => {}
        }
        let txn = self.db.writer().begin().await?;
        row.update(&txn).await?;
        let changed = diff.into_value();
        if changed.as_object().is_some_and(|fields| !fields.is_empty()) {
            let change = Change::new(AuditAction::PostbackEndpointUpdated, id, changed);
            audit::record(&txn, self.scope.tenant(), actor, vec![change]).await?;
        }
        txn.commit().await?;
        self.get(id).await
    }

    /// Replaces the secret; the old one keeps being signed with until `overlap_until`, so the
    /// receiver can switch without dropping a message.
    pub async fn rotate_secret(
        &self,
        id: EndpointId,
        new_secret: String,
        overlap_until: DateTime<Utc>,
        actor: Actor,
    ) -> Result<Endpoint> {
        let current = self.get(id).await?;
        let owner = crate::secrets::endpoint_secret_owner(current.id.uuid());
        let txn = self.db.writer().begin().await?;
        postback_endpoints::ActiveModel {
            id: Set(current.id.uuid()),
            secret: Set(self.db.secrets().seal(&owner, &new_secret)),
            previous_secret: Set(Some(self.db.secrets().seal(&owner, &current.secret))),
            previous_secret_until: Set(Some(overlap_until)),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        let details = serde_json::json!({ "previousSecretUntil": overlap_until });
        let change = Change::new(AuditAction::PostbackSecretRotated, id, details);
        audit::record(&txn, self.scope.tenant(), actor, vec![change]).await?;
        txn.commit().await?;
        self.get(id).await
    }

    /// The delivery log of one endpoint, oldest first.
    pub async fn deliveries(&self, endpoint: EndpointId, request: PageRequest) -> Result<Page<Delivery>> {
        let endpoint = self.get(endpoint).await?;
        let query = postback_deliveries::Entity::find()
            .filter(postback_deliveries::Column::TenantId.eq(self.scope.tenant().uuid()))
            .filter(postback_deliveries::Column::EndpointId.eq(endpoint.id.uuid()));
        let page = page::fetch(query, postback_deliveries::Column::Id, request, self.db.writer()).await?;
        Ok(page.map(Delivery::from))
    }

    pub async fn delivery(&self, id: DeliveryId) -> Result<Delivery> {
        let row = postback_deliveries::Entity::find()
            .filter(postback_deliveries::Column::TenantId.eq(self.scope.tenant().uuid()))
            .filter(postback_deliveries::Column::Id.eq(id.uuid()))
            .one(self.db.writer())
            .await?
            .ok_or(Error::NotFound)?;
        // Visible only through a visible endpoint.
        self.get(EndpointId::from_uuid(row.endpoint_id)).await?;
        Ok(Delivery::from(row))
    }

    /// The attempts of these deliveries, in order.
    pub async fn attempts(&self, deliveries: &[DeliveryId]) -> Result<Vec<Attempt>> {
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        let rows = postback_attempts::Entity::find()
            .filter(postback_attempts::Column::TenantId.eq(self.scope.tenant().uuid()))
            .filter(postback_attempts::Column::DeliveryId.is_in(deliveries.iter().map(|d| d.uuid())))
            .order_by_asc(postback_attempts::Column::DeliveryId)
            .order_by_asc(postback_attempts::Column::Attempt)
            .all(self.db.writer())
            .await?;
        Ok(rows.into_iter().map(Attempt::from).collect())
    }

    /// Makes a delivery due again now (whatever its state): one more try, same `webhook-id`,
    /// so a receiver that already has it can tell.
    pub async fn redeliver(&self, id: DeliveryId) -> Result<Delivery> {
        let current = self.delivery(id).await?;
        postback_deliveries::ActiveModel {
            id: Set(current.id.uuid()),
            state: Set(DELIVERY_PENDING.to_owned()),
            next_attempt_at: Set(Some(Utc::now())),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(self.db.writer())
        .await?;
        self.delivery(id).await
    }

    /// Queues a delivery outside the event log (a test message).
    pub async fn enqueue(&self, new: NewDelivery) -> Result<Delivery> {
        self.get(new.endpoint_id).await?;
        let row = delivery_row(self.scope.tenant(), new, Utc::now());
        let id = DeliveryId::from_uuid(*row.id.as_ref());
        row.insert(self.db.writer()).await?;
        self.delivery(id).await
    }
}

/// The notifier's side: unscoped by necessity (it serves every tenant), and so kept to what
/// delivery needs.
pub mod work {
    use super::*;

    /// A tenant whose event log has moved past the last event the notifier has turned into
    /// deliveries.
    pub type Behind = crate::event_cursor::Behind<TenantId>;

    /// Tenants whose event log has moved past the notifier's cursor. Reads here go to the
    /// reader pool (on SQLite the single writer stays free for ingest); a slightly stale
    /// answer only means a repeat, which the unique index and the claim's compare-and-set
    /// absorb.
    pub async fn tenants_behind(db: &Db) -> Result<Vec<Behind>> {
        let with_endpoints: Vec<uuid::Uuid> = postback_endpoints::Entity::find()
            .select_only()
            .column(postback_endpoints::Column::TenantId)
            .distinct()
            .into_tuple()
            .all(db.reader())
            .await?;
        if with_endpoints.is_empty() {
            return Ok(Vec::new());
        }
        let tenants = tenants::Entity::find()
            .filter(tenants::Column::Id.is_in(with_endpoints.clone()))
            .all(db.reader())
            .await?;
        let cursors: std::collections::HashMap<uuid::Uuid, i64> = notifier_cursors::Entity::find()
            .filter(notifier_cursors::Column::TenantId.is_in(with_endpoints))
            .all(db.reader())
            .await?
            .into_iter()
            .map(|cursor| (cursor.tenant_id, cursor.last_seq))
            .collect();
        Ok(crate::event_cursor::behind(tenants, &cursors, |tenant| TenantId::from_uuid(tenant.id)))
    }

    /// A tenant's endpoints, enabled or not (deliveries for a disabled one wait until it is
    /// enabled again).
    /// The tenant's endpoints that may receive new events: those of active affiliates (a
    /// suspended affiliate gets nothing queued while suspended, so nothing floods it later).
    pub async fn endpoints(db: &Db, tenant: TenantId) -> Result<Vec<Endpoint>> {
        postback_endpoints::Entity::find()
            .filter(postback_endpoints::Column::TenantId.eq(tenant.uuid()))
            .filter(postback_endpoints::Column::AffiliateId.in_subquery(active_affiliates()))
            .all(db.reader())
            .await?
            .into_iter()
            .map(|row| Endpoint::from_row(db, row))
            .collect()
    }

    pub async fn endpoint(db: &Db, tenant: TenantId, id: EndpointId) -> Result<Endpoint> {
        postback_endpoints::Entity::find()
            .filter(postback_endpoints::Column::TenantId.eq(tenant.uuid()))
            .filter(postback_endpoints::Column::Id.eq(id.uuid()))
            .one(db.reader())
            .await?
            .map(|row| Endpoint::from_row(db, row))
            .ok_or(Error::NotFound)?
    }

    /// The click's sub-IDs, when its row has been written (clicks are written behind).
    pub async fn click_subs(
        db: &Db,
        tenant: TenantId,
        click_id: &str,
    ) -> Result<Option<[Option<String>; 5]>> {
        Ok(clicks::Entity::find()
            .filter(clicks::Column::TenantId.eq(tenant.uuid()))
            .filter(clicks::Column::ClickId.eq(click_id))
            .one(db.reader())
            .await?
            .map(|c| [c.sub1, c.sub2, c.sub3, c.sub4, c.sub5]))
    }

    /// Stores the deliveries that events up to `through_seq` produced and moves the cursor
    /// there, in one transaction: a crash either keeps both or neither, and a repeat is a no-op
    /// thanks to the unique (tenant, endpoint, event) index.
    pub async fn enqueue_events(
        db: &Db,
        tenant: TenantId,
        deliveries: Vec<NewDelivery>,
        through_seq: i64,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let txn = db.writer().begin().await?;
        for new in deliveries {
            postback_deliveries::Entity::insert(delivery_row(tenant, new, now))
                .on_conflict(
                    OnConflict::columns([
                        postback_deliveries::Column::TenantId,
                        postback_deliveries::Column::EndpointId,
                        postback_deliveries::Column::EventSeq,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        notifier_cursors::Entity::insert(notifier_cursors::ActiveModel {
            tenant_id: Set(tenant.uuid()),
            last_seq: Set(through_seq),
            updated_at: Set(now),
        })
        .on_conflict(OnConflict::column(notifier_cursors::Column::TenantId).do_nothing().to_owned())
        .exec_without_returning(&txn)
        .await?;
        // Only forwards: with several replicas, a slower one must not move the cursor back.
        notifier_cursors::Entity::update_many()
            .col_expr(notifier_cursors::Column::LastSeq, Expr::value(through_seq))
            .col_expr(notifier_cursors::Column::UpdatedAt, Expr::value(now))
            .filter(notifier_cursors::Column::TenantId.eq(tenant.uuid()))
            .filter(notifier_cursors::Column::LastSeq.lt(through_seq))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Pending deliveries due by `now` whose endpoint is enabled, oldest due first.
    fn active_affiliates() -> sea_orm::sea_query::SelectStatement {
        Query::select()
            .column(affiliates::Column::Id)
            .from(affiliates::Entity)
            .and_where(affiliates::Column::Status.eq(ActiveStatus::Active.as_str()))
            .to_owned()
    }

    pub async fn due(db: &Db, now: DateTime<Utc>, limit: u64) -> Result<Vec<Delivery>> {
        let rows = postback_deliveries::Entity::find()
            .filter(postback_deliveries::Column::State.eq(DELIVERY_PENDING))
            .filter(postback_deliveries::Column::NextAttemptAt.lte(now))
            .filter(
                postback_deliveries::Column::EndpointId.in_subquery(
                    Query::select()
                        .column(postback_endpoints::Column::Id)
                        .from(postback_endpoints::Entity)
                        .and_where(postback_endpoints::Column::Status.eq(ENDPOINT_ACTIVE))
                        // Deliveries queued before the affiliate was suspended wait, as those
                        // of a disabled endpoint do.
                        .and_where(postback_endpoints::Column::AffiliateId.in_subquery(active_affiliates()))
                        .to_owned(),
                ),
            )
            .order_by_asc(postback_deliveries::Column::NextAttemptAt)
            .limit(limit)
            .all(db.reader())
            .await?;
        Ok(rows.into_iter().map(Delivery::from).collect())
    }

    /// Takes the next attempt of `delivery` for this worker: bumps its attempt counter if no one
    /// else has, and pushes it out of the due set until `lease_until`. False if lost the race.
    pub async fn claim(db: &Db, delivery: &Delivery, lease_until: DateTime<Utc>) -> Result<bool> {
        let result = postback_deliveries::Entity::update_many()
            .col_expr(
                postback_deliveries::Column::Attempts,
                Expr::col(postback_deliveries::Column::Attempts).add(1),
            )
            .col_expr(postback_deliveries::Column::NextAttemptAt, Expr::value(Some(lease_until)))
            .filter(postback_deliveries::Column::TenantId.eq(delivery.tenant_id.uuid()))
            .filter(postback_deliveries::Column::Id.eq(delivery.id.uuid()))
            .filter(postback_deliveries::Column::State.eq(DELIVERY_PENDING))
            .filter(postback_deliveries::Column::Attempts.eq(delivery.attempts as i32))
            .exec(db.writer())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// What became of one attempt, and what to do next.
    #[derive(Debug, Clone)]
    pub struct Outcome {
        pub attempt: Attempt,
        /// `DELIVERY_SUCCEEDED`, `DELIVERY_PENDING` (retry at `next_attempt_at`) or `DELIVERY_FAILED`.
        pub state: &'static str,
        pub next_attempt_at: Option<DateTime<Utc>>,
        /// Disable the endpoint, with this reason.
        pub disable_endpoint: Option<String>,
        /// Sent to the tenant's owners when the endpoint is disabled.
        pub owner_notice: Option<crate::mail::Message>,
    }

    /// Records an attempt and its consequences in one transaction. Returns the endpoint's
    /// failure-run start after this attempt (None once it succeeded).
    pub async fn record(
        db: &Db,
        delivery: &Delivery,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        let txn = db.writer().begin().await?;
        let attempt = &outcome.attempt;
        postback_attempts::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            tenant_id: Set(delivery.tenant_id.uuid()),
            delivery_id: Set(delivery.id.uuid()),
            endpoint_id: Set(delivery.endpoint_id.uuid()),
            attempt: Set(attempt.attempt as i32),
            started_at: Set(attempt.started_at),
            request: Set(attempt.request.clone()),
            response_status: Set(attempt.response_status.map(i32::from)),
            response_body: Set(attempt.response_body.clone()),
            error: Set(attempt.error.clone()),
            latency_ms: Set(to_i32(attempt.latency_ms)),
        }
        .insert(&txn)
        .await?;
        postback_deliveries::ActiveModel {
            id: Set(delivery.id.uuid()),
            state: Set(outcome.state.to_owned()),
            next_attempt_at: Set(outcome.next_attempt_at),
            last_status: Set(attempt.response_status.map(i32::from)),
            last_error: Set(attempt.error.clone()),
            last_attempt_at: Set(Some(attempt.started_at)),
            updated_at: Set(now),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        let endpoint = postback_endpoints::Entity::find_by_id(delivery.endpoint_id.uuid())
            .one(&txn)
            .await?
            .ok_or(Error::NotFound)?;
        let failing_since = if outcome.state == DELIVERY_SUCCEEDED {
            None
        } else {
            Some(endpoint.failing_since.unwrap_or(now))
        };
        postback_endpoints::ActiveModel {
            id: Set(endpoint.id),
            failing_since: Set(failing_since),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        if let Some(reason) = outcome.disable_endpoint {
            // Conditional, so that of several attempts concluding this at once only one
            // disables the endpoint and tells the owners.
            let disabled = postback_endpoints::Entity::update_many()
                .col_expr(postback_endpoints::Column::Status, Expr::value(ENDPOINT_DISABLED))
                .col_expr(postback_endpoints::Column::DisabledReason, Expr::value(Some(reason)))
                .col_expr(postback_endpoints::Column::UpdatedAt, Expr::value(now))
                .filter(postback_endpoints::Column::TenantId.eq(delivery.tenant_id.uuid()))
                .filter(postback_endpoints::Column::Id.eq(endpoint.id))
                .filter(postback_endpoints::Column::Status.eq(ENDPOINT_ACTIVE))
                .exec(&txn)
                .await?;
            if disabled.rows_affected == 1
                && let Some(notice) = outcome.owner_notice
            {
                let tenant = delivery.tenant_id;
                for to in crate::mail::owner_addresses(&txn, tenant).await? {
                    crate::mail::queue_on(&txn, tenant, &to, notice.clone(), now).await?;
                }
            }
        }
        txn.commit().await?;
        Ok(failing_since)
    }

    /// Every delivery of an endpoint, for tests and tools.
    pub async fn deliveries_of(db: &Db, tenant: TenantId, endpoint: EndpointId) -> Result<Vec<Delivery>> {
        Ok(postback_deliveries::Entity::find()
            .filter(postback_deliveries::Column::TenantId.eq(tenant.uuid()))
            .filter(postback_deliveries::Column::EndpointId.eq(endpoint.uuid()))
            .order_by_asc(postback_deliveries::Column::Id)
            .all(db.writer())
            .await?
            .into_iter()
            .map(Delivery::from)
            .collect())
    }
}
