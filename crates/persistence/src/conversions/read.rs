use std::collections::HashMap;

use chrono::{DateTime, Utc};

use clickledger_domain::ids::{AffiliateId, CampaignId, ConversionId, TenantId};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Conversion, ConversionEvent, Credit};
use crate::entities::{ExactDecimal, conversion_credits, conversions, events, tenants};
use crate::page::{self, Page, PageRequest};
use crate::{Db, Error, Result, Scope, Viewer};
use clickledger_domain::fraud::{Flag, Verdict};

pub(crate) async fn load_conversion<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    id: ConversionId,
) -> Result<Conversion> {
    let row = conversions::Entity::find()
        .filter(conversions::Column::TenantId.eq(tenant.uuid()))
        .filter(conversions::Column::Id.eq(id.uuid()))
        .one(conn)
        .await?
        .ok_or(Error::NotFound)?;
    let mut loaded = with_credits(conn, tenant, vec![row]).await?;
    loaded.pop().ok_or(Error::NotFound)
}

pub(super) async fn with_credits<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    rows: Vec<conversions::Model>,
) -> Result<Vec<Conversion>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
    let mut credits: HashMap<uuid::Uuid, Vec<Credit>> = HashMap::new();
    let commission = crate::commission::own_commission(conn, tenant, &ids).await?;
    for credit in conversion_credits::Entity::find()
        .filter(conversion_credits::Column::TenantId.eq(tenant.uuid()))
        .filter(conversion_credits::Column::ConversionId.is_in(ids.iter().copied()))
        .order_by_asc(conversion_credits::Column::Position)
        .all(conn)
        .await?
    {
        credits.entry(credit.conversion_id).or_default().push(Credit {
            affiliate_id: AffiliateId::from_uuid(credit.affiliate_id),
            // Stored at the column's scale ("1.000000"); shown as attribution produced it
            // ("1", "0.5"), the same as on the live event.
            share: credit.share.normalized(),
            commission: commission
                .get(&(credit.conversion_id, AffiliateId::from_uuid(credit.affiliate_id)))
                .copied(),
        });
    }
    rows.into_iter()
        .map(|row| {
            let credits = credits.remove(&row.id).unwrap_or_default();
            to_conversion(row, credits)
        })
        .collect()
}

fn to_conversion(row: conversions::Model, credits: Vec<Credit>) -> Result<Conversion> {
    let fraud = stored_verdict(&row)?;
    Ok(Conversion {
        id: ConversionId::from_uuid(row.id),
        tenant_id: TenantId::from_uuid(row.tenant_id),
        event: row.event.parse()?,
        status: row.status.parse()?,
        txn_id: row.txn_id,
        click_id: row.click_id,
        player_id: row.player_id,
        campaign_id: row.campaign_id.map(CampaignId::from_uuid),
        // As reported ("50", not the column's "50.000000"), like the live event.
        amount: row.amount.map(ExactDecimal::normalized),
        currency: row.currency,
        lots: row.lots.map(ExactDecimal::normalized),
        instrument: row.instrument,
        attributed: row.attributed,
        unattributed_reason: row.unattributed_reason.as_deref().map(str::parse).transpose().map_err(
            |_| crate::Error::Corrupt(format!("conversion {} has an unknown unattributed reason", row.id)),
        )?,
        model: row.model,
        model_version: row.model_version,
        occurred_at: row.occurred_at,
        received_at: row.received_at,
        journey: serde_json::from_str(&row.journey).unwrap_or_default(),
        fraud,
        credits,
    })
}

/// The verdict stored with a conversion; flags this build cannot read are an error.
fn stored_verdict(row: &conversions::Model) -> Result<Verdict> {
    let flags: Vec<Flag> = serde_json::from_str(&row.fraud_flags).map_err(|err| {
        crate::Error::Corrupt(format!("conversion {} has unreadable fraud flags: {err}", row.id))
    })?;
    Ok(Verdict::of(flags))
}

/// Conversions as a viewer may see them: staff see all of the tenant's; an affiliate sees the
/// conversions that credit it, with only its own share and no player ID.
pub struct Conversions<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> Conversions<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        Conversions { db, scope }
    }

    fn visible(&self) -> sea_orm::Select<conversions::Entity> {
        let tenant = self.scope.tenant().uuid();
        let query = conversions::Entity::find().filter(conversions::Column::TenantId.eq(tenant));
        match self.scope.viewer() {
            Viewer::Staff => query,
            Viewer::Affiliate(me) => query.filter(
                conversions::Column::Id.in_subquery(
                    Query::select()
                        .column(conversion_credits::Column::ConversionId)
                        .from(conversion_credits::Entity)
                        .and_where(conversion_credits::Column::TenantId.eq(tenant))
                        .and_where(conversion_credits::Column::AffiliateId.eq(me.uuid()))
                        .to_owned(),
                ),
            ),
        }
    }

    fn present(&self, conversion: Conversion) -> Option<Conversion> {
        match self.scope.viewer() {
            Viewer::Staff => Some(conversion),
            Viewer::Affiliate(me) => conversion.for_affiliate(me),
        }
    }

    pub async fn get(&self, id: ConversionId) -> Result<Conversion> {
        let row = self
            .visible()
            .filter(conversions::Column::Id.eq(id.uuid()))
            .one(self.db.reader())
            .await?
            .ok_or(Error::NotFound)?;
        let conversion = with_credits(self.db.reader(), self.scope.tenant(), vec![row])
            .await?
            .pop()
            .ok_or(Error::NotFound)?;
        self.present(conversion).ok_or(Error::NotFound)
    }

    /// Newest last, like every list here (keyset on the time-ordered ID).
    pub async fn list(&self, request: PageRequest) -> Result<Page<Conversion>> {
        self.fetch(self.visible(), request).await
    }

    /// Those that occurred in `[from, to)`, in the order of [`Conversions::list`]: an export.
    pub async fn list_occurred(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        request: PageRequest,
    ) -> Result<Page<Conversion>> {
        let query = self
            .visible()
            .filter(conversions::Column::OccurredAt.gte(from))
            .filter(conversions::Column::OccurredAt.lt(to));
        self.fetch(query, request).await
    }

    async fn fetch(
        &self,
        query: sea_orm::Select<conversions::Entity>,
        request: PageRequest,
    ) -> Result<Page<Conversion>> {
        let page = page::fetch(query, conversions::Column::Id, request, self.db.reader()).await?;
        let items = with_credits(self.db.reader(), self.scope.tenant(), page.items).await?;
        Ok(Page {
            items: items.into_iter().filter_map(|c| self.present(c)).collect(),
            has_next: page.has_next,
        })
    }

    /// Events after `after_seq`, oldest first, as this viewer may see them. The returned
    /// `next` is the last sequence number read, including events the viewer may not see, so
    /// a subscriber's cursor moves past them.
    pub async fn events_after(&self, after_seq: i64, limit: u64) -> Result<(Vec<ConversionEvent>, i64)> {
        let (events, last) = events_after(self.db, self.scope.tenant(), after_seq, limit).await?;
        let visible = events
            .into_iter()
            .filter_map(|mut event| {
                let conversion = self.present(event.conversion)?;
                event.conversion = conversion;
                Some(event)
            })
            .collect();
        Ok((visible, last))
    }

    /// The newest sequence number of the tenant's event log (0 when empty).
    pub async fn latest_seq(&self) -> Result<i64> {
        let tenant = tenants::Entity::find_by_id(self.scope.tenant().uuid())
            .one(self.db.reader())
            .await?
            .ok_or(Error::NotFound)?;
        Ok(tenant.event_seq)
    }
}

/// A tenant's events after `after_seq` with the conversions as of each event, unfiltered:
/// for fan-out, which filters per subscriber.
pub async fn events_after(
    db: &Db,
    tenant: TenantId,
    after_seq: i64,
    limit: u64,
) -> Result<(Vec<ConversionEvent>, i64)> {
    let (rows, last) = event_rows_after(db, tenant, after_seq, limit).await?;
    Ok((with_conversions(db, tenant, rows).await?, last))
}

/// Among a tenant's events after `after_seq` (at most `limit` read), those announcing a new
/// conversion with fraud flags, and the last sequence number read: for the fraud alerts, which
/// load only the flagged conversions (most have none; the event says), not every conversion.
pub async fn flagged_created_after(
    db: &Db,
    tenant: TenantId,
    after_seq: i64,
    limit: u64,
) -> Result<(Vec<ConversionEvent>, i64)> {
    let (rows, last) = event_rows_after(db, tenant, after_seq, limit).await?;
    let flagged = rows.into_iter().filter(|row| row.flagged && row.kind == super::EVENT_CREATED).collect();
    Ok((with_conversions(db, tenant, flagged).await?, last))
}

/// The event rows after `after_seq` (at most `limit`), and the last sequence number read.
async fn event_rows_after(
    db: &Db,
    tenant: TenantId,
    after_seq: i64,
    limit: u64,
) -> Result<(Vec<events::Model>, i64)> {
    let rows = events::Entity::find()
        .filter(events::Column::TenantId.eq(tenant.uuid()))
        .filter(events::Column::Seq.gt(after_seq))
        .order_by_asc(events::Column::Seq)
        .limit(limit)
        .all(db.reader())
        .await?;
    let last = rows.last().map(|e| e.seq).unwrap_or(after_seq);
    Ok((rows, last))
}

/// The events of `rows` with their conversions as of each event.
async fn with_conversions(
    db: &Db,
    tenant: TenantId,
    rows: Vec<events::Model>,
) -> Result<Vec<ConversionEvent>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<uuid::Uuid> = rows.iter().map(|e| e.conversion_id).collect();
    let conversion_rows = conversions::Entity::find()
        .filter(conversions::Column::TenantId.eq(tenant.uuid()))
        .filter(conversions::Column::Id.is_in(ids))
        .all(db.reader())
        .await?;
    let by_id: HashMap<ConversionId, Conversion> =
        with_credits(db.reader(), tenant, conversion_rows).await?.into_iter().map(|c| (c.id, c)).collect();
    let mut out = Vec::with_capacity(by_id.len());
    for row in rows {
        let Some(conversion) = by_id.get(&ConversionId::from_uuid(row.conversion_id)) else { continue };
        let mut conversion = conversion.clone();
        conversion.status = row.status.parse()?;
        out.push(ConversionEvent {
            tenant_id: tenant,
            seq: row.seq,
            kind: row.kind,
            created_at: row.created_at,
            conversion,
        });
    }
    Ok(out)
}
