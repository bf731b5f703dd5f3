//! Writes a validated [`Program`] (another tracker's export) into one tenant, in one
//! transaction: affiliates and campaigns by their external IDs, links by their old codes,
//! players bound for life, and opening ledger entries of kind `migration`. A re-run finds what
//! an earlier run wrote and updates it; nothing is duplicated. A dry run does the same work
//! and rolls it back, so what it reports is exactly what a real run would change.
//!
//! A player is bound the way a registration binds one here: an attributed `registration`
//! conversion crediting the affiliate in full, and the player's row pointing at it, so a
//! later deposit for the player finds the binding and credits it `LIFETIME`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use clickledger_domain::conversion::{ConversionStatus, EventKind};
use clickledger_domain::ids::{AffiliateId, CampaignId, ConversionId, TenantId, TrackingLinkId};
use clickledger_domain::migration::{
    self, Affiliate, Campaign, ImportError, ImportErrors, Known, Link, Player, Program,
};
use clickledger_domain::period::Period;
use clickledger_domain::status::ActiveStatus;
use rand::Rng;
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect, Set, TransactionTrait,
};

use crate::entities::{
    affiliates, campaigns, commission_plans, conversion_credits, conversions, players, tracking_links,
};
use crate::{Backend, Db, Error, Result};

mod history;
mod openings;
mod plans;

mod clicks;

/// How an imported player's binding is recognised on a re-run (and told apart from one made
/// here by a registration, which an import never moves).
const PLAYER_KEY: &str = "import:player:";
/// The `model` of an imported binding's conversion.
pub const IMPORTED_MODEL: &str = "IMPORTED";

/// What one kind of row did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl Tally {
    fn count(&mut self, change: Change) {
        match change {
            Change::Created => self.created += 1,
            Change::Updated => self.updated += 1,
            Change::Unchanged => self.unchanged += 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Created,
    Updated,
    Unchanged,
}

/// What an import changed (or, for a dry run, would change). Kept as JSON on an import job.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ImportSummary {
    pub dry_run: bool,
    pub affiliates: Tally,
    pub campaigns: Tally,
    pub links: Tally,
    pub players: Tally,
    pub openings: Tally,
    pub plans: Tally,
    pub assignments: Tally,
    /// Conversion history (`conversions.csv`).
    pub history: Tally,
    /// The old tracker's click IDs (`clicks.csv`).
    pub clicks: Tally,
    /// Transactions this server had already received by a postback: kept as they are.
    pub kept_conversions: Vec<String>,
    /// Players this server had already bound (by a registration here): kept as they are.
    pub kept_players: Vec<String>,
    /// Each row created or updated, e.g. "create affiliate `aff-100` (affiliates.csv:2)".
    pub changes: Vec<String>,
}

impl ImportSummary {
    /// Each kind of row with its tally, named as the output and `importJob` name it, in the
    /// order they are imported.
    pub fn tallies(&self) -> [(&'static str, &Tally); 9] {
        [
            ("affiliates", &self.affiliates),
            ("campaigns", &self.campaigns),
            ("links", &self.links),
            ("players", &self.players),
            ("balances", &self.openings),
            ("plans", &self.plans),
            ("assignments", &self.assignments),
            ("conversions", &self.history),
            ("clicks", &self.clicks),
        ]
    }
}

/// The external IDs earlier imports left in this tenant, which an export may refer to, and
/// the tenant's current month.
pub async fn known(db: &Db, tenant: TenantId) -> Result<Known> {
    let affiliates = affiliates::Entity::find()
        .select_only()
        .column(affiliates::Column::ExternalId)
        .filter(affiliates::Column::TenantId.eq(tenant.uuid()))
        .filter(affiliates::Column::ExternalId.is_not_null())
        .into_tuple::<Option<String>>()
        .all(db.reader())
        .await?;
    let campaigns = campaigns::Entity::find()
        .select_only()
        .column(campaigns::Column::ExternalId)
        .filter(campaigns::Column::TenantId.eq(tenant.uuid()))
        .filter(campaigns::Column::ExternalId.is_not_null())
        .into_tuple::<Option<String>>()
        .all(db.reader())
        .await?;
    let plans = commission_plans::Entity::find()
        .select_only()
        .column(commission_plans::Column::ExternalId)
        .filter(commission_plans::Column::TenantId.eq(tenant.uuid()))
        .filter(commission_plans::Column::ExternalId.is_not_null())
        .into_tuple::<Option<String>>()
        .all(db.reader())
        .await?;
    let zone = crate::commission::tenant_zone(db.reader(), tenant).await?;
    Ok(Known {
        affiliates: affiliates.into_iter().flatten().collect(),
        campaigns: campaigns.into_iter().flatten().collect(),
        plans: plans.into_iter().flatten().collect(),
        this_month: Some(Period::of(Utc::now(), zone)),
    })
}

/// Imports `program` into `tenant` in one transaction; `source` names the old system on the
/// opening entries. With `dry_run` the transaction is rolled back. Problems that only the
/// database can show (a code another tenant uses, an e-mail another affiliate has) come back
/// as [`Error::Import`], each with its file and line, and nothing is written.
pub async fn import(
    db: &Db,
    tenant: TenantId,
    program: &Program,
    source: &str,
    dry_run: bool,
) -> Result<ImportSummary> {
    let txn = db.writer().begin().await?;
    let mut run = Run {
        txn: &txn,
        backend: db.backend(),
        tenant,
        summary: ImportSummary { dry_run, ..Default::default() },
        errors: Vec::new(),
    };
    let affiliates = run.affiliates(&program.affiliates).await?;
    let campaigns = run.campaigns(&program.campaigns).await?;
    if run.errors.is_empty() {
        let refs = Refs { affiliates, campaigns };
        run.links(&program.links, &refs).await?;
        run.players(&program.players, &refs, source).await?;
        run.openings(&program.openings, &refs, source).await?;
        let plans = run.plans(&program.plans).await?;
        run.assignments(&program.assignments, &refs, &plans).await?;
        run.history(&program.history, &refs, source).await?;
        run.history_facts(&program.history_deposits).await?;
        run.clicks(&program.clicks).await?;
    }
    let Run { summary, errors, .. } = run;
    if !errors.is_empty() {
        txn.rollback().await?;
        return Err(Error::Import(ImportErrors(errors)));
    }
    if dry_run {
        txn.rollback().await?;
    } else {
        txn.commit().await?;
    }
    Ok(summary)
}

struct Run<'a> {
    txn: &'a DatabaseTransaction,
    backend: Backend,
    tenant: TenantId,
    summary: ImportSummary,
    errors: Vec<ImportError>,
}

/// External IDs resolved to this tenant's rows.
struct Refs {
    affiliates: HashMap<String, uuid::Uuid>,
    campaigns: HashMap<String, uuid::Uuid>,
}

impl Refs {
    /// Rows of the export were checked against the file and the known IDs before: a miss here
    /// is a row deleted since, reported like any other problem.
    fn affiliate(&self, id: &str) -> Option<uuid::Uuid> {
        self.affiliates.get(id).copied()
    }
}

impl Run<'_> {
    fn note(&mut self, change: Change, what: &str, file: &'static str, line: u64) {
        let verb = match change {
            Change::Created => "create",
            Change::Updated => "update",
            Change::Unchanged => return,
        };
        self.summary.changes.push(format!("{verb} {what} ({file}:{line})"));
    }

    fn fail(&mut self, file: &'static str, line: u64, message: impl Into<String>) {
        self.errors.push(ImportError::new(file, line, message));
    }

    async fn external_affiliates(&self) -> Result<HashMap<String, uuid::Uuid>> {
        let rows = affiliates::Entity::find()
            .select_only()
            .columns([affiliates::Column::ExternalId, affiliates::Column::Id])
            .filter(affiliates::Column::TenantId.eq(self.tenant.uuid()))
            .filter(affiliates::Column::ExternalId.is_not_null())
            .into_tuple::<(Option<String>, uuid::Uuid)>()
            .all(self.txn)
            .await?;
        Ok(rows.into_iter().filter_map(|(ext, id)| ext.map(|ext| (ext, id))).collect())
    }

    async fn affiliates(&mut self, rows: &[Affiliate]) -> Result<HashMap<String, uuid::Uuid>> {
        let mut ids = self.external_affiliates().await?;
        let now = Utc::now();
        for row in rows {
            let parent = match &row.parent {
                None => None,
                Some(parent) => match ids.get(parent) {
                    Some(id) => Some(*id),
                    None => {
                        self.fail(
                            migration::AFFILIATES,
                            row.line,
                            format!("unknown parent_external_id `{parent}`"),
                        );
                        continue;
                    }
                },
            };
            // By external ID, or else an affiliate created here with the same e-mail, which
            // the import adopts rather than failing on the e-mail's uniqueness.
            let mut existing = affiliates::Entity::find()
                .filter(affiliates::Column::TenantId.eq(self.tenant.uuid()))
                .filter(affiliates::Column::ExternalId.eq(row.external_id.as_str()))
                .one(self.txn)
                .await?;
            if existing.is_none() {
                existing = affiliates::Entity::find()
                    .filter(affiliates::Column::TenantId.eq(self.tenant.uuid()))
                    .filter(affiliates::Column::Email.eq(row.email.as_str()))
                    .filter(affiliates::Column::ExternalId.is_null())
                    .one(self.txn)
                    .await?;
            }
            // The e-mail is unique in the tenant; checked first, since on PostgreSQL a failed
            // insert would spoil the whole transaction.
            let mut others = affiliates::Entity::find()
                .filter(affiliates::Column::TenantId.eq(self.tenant.uuid()))
                .filter(affiliates::Column::Email.eq(row.email.as_str()));
            if let Some(current) = &existing {
                others = others.filter(affiliates::Column::Id.ne(current.id));
            }
            if others.one(self.txn).await?.is_some() {
                self.fail(
                    migration::AFFILIATES,
                    row.line,
                    format!("email `{}` belongs to another affiliate of this tenant", row.email),
                );
                continue;
            }
            let status = row.status.as_str().to_owned();
            let (id, change) = match existing {
                Some(current) => {
                    let same = current.name == row.name
                        && current.email == row.email
                        && current.parent_id == parent
                        && current.status == status
                        && current.external_id.as_deref() == Some(row.external_id.as_str());
                    if !same {
                        affiliates::ActiveModel {
                            id: Set(current.id),
                            name: Set(row.name.clone()),
                            email: Set(row.email.clone()),
                            parent_id: Set(parent),
                            status: Set(status),
                            external_id: Set(Some(row.external_id.clone())),
                            updated_at: Set(now),
                            ..Default::default()
                        }
                        .update(self.txn)
                        .await?;
                    }
                    (current.id, if same { Change::Unchanged } else { Change::Updated })
                }
                None => {
                    let id = AffiliateId::new().uuid();
                    affiliates::ActiveModel {
                        id: Set(id),
                        tenant_id: Set(self.tenant.uuid()),
                        name: Set(row.name.clone()),
                        email: Set(row.email.clone()),
                        parent_id: Set(parent),
                        status: Set(status),
                        external_id: Set(Some(row.external_id.clone())),
                        created_at: Set(now),
                        updated_at: Set(now),
                    }
                    .insert(self.txn)
                    .await?;
                    (id, Change::Created)
                }
            };
            self.summary.affiliates.count(change);
            self.note(change, &format!("affiliate `{}`", row.external_id), migration::AFFILIATES, row.line);
            ids.insert(row.external_id.clone(), id);
        }
        self.check_hierarchy(rows, &ids).await?;
        Ok(ids)
    }

    /// The export's own hierarchy was checked in the domain; this checks the tenant's as it
    /// now stands, since an imported affiliate may hang under one of earlier imports (or one
    /// of those under it).
    async fn check_hierarchy(&mut self, rows: &[Affiliate], ids: &HashMap<String, uuid::Uuid>) -> Result<()> {
        let parents: HashMap<uuid::Uuid, uuid::Uuid> = affiliates::Entity::find()
            .select_only()
            .columns([affiliates::Column::Id, affiliates::Column::ParentId])
            .filter(affiliates::Column::TenantId.eq(self.tenant.uuid()))
            .filter(affiliates::Column::ParentId.is_not_null())
            .into_tuple::<(uuid::Uuid, Option<uuid::Uuid>)>()
            .all(self.txn)
            .await?
            .into_iter()
            .filter_map(|(id, parent)| parent.map(|parent| (id, parent)))
            .collect();
        for row in rows {
            let Some(id) = ids.get(&row.external_id) else { continue };
            match migration::check_chain(*id, |k| parents.get(&k).copied()) {
                Ok(()) => {}
                Err(migration::ChainProblem::Cycle) => self.fail(
                    migration::AFFILIATES,
                    row.line,
                    "the affiliate hierarchy would have a cycle (with affiliates imported earlier)",
                ),
                Err(migration::ChainProblem::TooDeep) => self.fail(
                    migration::AFFILIATES,
                    row.line,
                    format!("affiliate chains are limited to {} levels", migration::MAX_ANCESTORS),
                ),
            }
        }
        Ok(())
    }

    async fn campaigns(&mut self, rows: &[Campaign]) -> Result<HashMap<String, uuid::Uuid>> {
        let existing = campaigns::Entity::find()
            .filter(campaigns::Column::TenantId.eq(self.tenant.uuid()))
            .filter(campaigns::Column::ExternalId.is_not_null())
            .all(self.txn)
            .await?;
        let mut ids: HashMap<String, uuid::Uuid> = HashMap::new();
        let mut by_external: HashMap<String, campaigns::Model> = HashMap::new();
        for current in existing {
            if let Some(ext) = current.external_id.clone() {
                ids.insert(ext.clone(), current.id);
                by_external.insert(ext, current);
            }
        }
        let now = Utc::now();
        for row in rows {
            let status = row.status.as_str().to_owned();
            let change = match by_external.get(&row.external_id) {
                Some(current) => {
                    let same = current.name == row.name
                        && current.landing_url == row.landing_url
                        && current.fallback_url == row.fallback_url
                        && current.status == status;
                    if !same {
                        campaigns::ActiveModel {
                            id: Set(current.id),
                            name: Set(row.name.clone()),
                            landing_url: Set(row.landing_url.clone()),
                            fallback_url: Set(row.fallback_url.clone()),
                            status: Set(status),
                            updated_at: Set(now),
                            ..Default::default()
                        }
                        .update(self.txn)
                        .await?;
                    }
                    if same { Change::Unchanged } else { Change::Updated }
                }
                None => {
                    let id = CampaignId::new().uuid();
                    campaigns::ActiveModel {
                        id: Set(id),
                        tenant_id: Set(self.tenant.uuid()),
                        name: Set(row.name.clone()),
                        landing_url: Set(row.landing_url.clone()),
                        fallback_url: Set(row.fallback_url.clone()),
                        attribution_model: Set(clickledger_domain::attribution::AttributionModel::default()
                            .as_str()
                            .to_owned()),
                        lookback_days: Set(DEFAULT_LOOKBACK_DAYS),
                        status: Set(status),
                        external_id: Set(Some(row.external_id.clone())),
                        created_at: Set(now),
                        updated_at: Set(now),
                    }
                    .insert(self.txn)
                    .await?;
                    ids.insert(row.external_id.clone(), id);
                    Change::Created
                }
            };
            self.summary.campaigns.count(change);
            self.note(change, &format!("campaign `{}`", row.external_id), migration::CAMPAIGNS, row.line);
        }
        Ok(ids)
    }

    async fn links(&mut self, rows: &[Link], refs: &Refs) -> Result<()> {
        let codes: Vec<&str> = rows.iter().map(|l| l.code.as_str()).collect();
        let mut existing: HashMap<String, tracking_links::Model> = HashMap::new();
        for chunk in codes.chunks(500) {
            for link in tracking_links::Entity::find()
                .filter(tracking_links::Column::Code.is_in(chunk.iter().copied()))
                .all(self.txn)
                .await?
            {
                existing.insert(link.code.clone(), link);
            }
        }
        let now = Utc::now();
        let active = ActiveStatus::Active.as_str();
        for row in rows {
            let (Some(affiliate), Some(campaign)) =
                (refs.affiliate(&row.affiliate), refs.campaigns.get(&row.campaign))
            else {
                self.fail(migration::LINKS, row.line, "its affiliate or campaign is gone");
                continue;
            };
            let change = match existing.get(&row.code) {
                // Codes answer on the shared tracking domain, so one tenant's code is taken
                // for every other.
                Some(current) if current.tenant_id != self.tenant.uuid() => {
                    self.fail(migration::LINKS, row.line, format!("code `{}` is already in use", row.code));
                    continue;
                }
                Some(current) => {
                    let same = current.affiliate_id == affiliate && current.campaign_id == *campaign;
                    if !same {
                        tracking_links::ActiveModel {
                            id: Set(current.id),
                            affiliate_id: Set(affiliate),
                            campaign_id: Set(*campaign),
                            status: Set(active.to_owned()),
                            ..Default::default()
                        }
                        .update(self.txn)
                        .await?;
                    }
                    if same { Change::Unchanged } else { Change::Updated }
                }
                None => {
                    let link_tag = self.free_link_tag().await?;
                    tracking_links::ActiveModel {
                        id: Set(TrackingLinkId::new().uuid()),
                        tenant_id: Set(self.tenant.uuid()),
                        affiliate_id: Set(affiliate),
                        campaign_id: Set(*campaign),
                        code: Set(row.code.clone()),
                        link_tag: Set(link_tag),
                        status: Set(active.to_owned()),
                        created_at: Set(now),
                    }
                    .insert(self.txn)
                    .await?;
                    Change::Created
                }
            };
            self.summary.links.count(change);
            self.note(change, &format!("link `{}`", row.code), migration::LINKS, row.line);
        }
        Ok(())
    }

    /// A link tag (the 48 bits a click ID names its link by) no link of the tenant has. Looked
    /// up rather than retried on conflict: on PostgreSQL a failed insert spoils the transaction.
    async fn free_link_tag(&self) -> Result<i64> {
        loop {
            let tag = rand::rng().random_range(0..(1i64 << 48));
            let taken = tracking_links::Entity::find()
                .filter(tracking_links::Column::TenantId.eq(self.tenant.uuid()))
                .filter(tracking_links::Column::LinkTag.eq(tag))
                .one(self.txn)
                .await?
                .is_some();
            if !taken {
                return Ok(tag);
            }
        }
    }

    async fn players(&mut self, rows: &[Player], refs: &Refs, source: &str) -> Result<()> {
        let now = Utc::now();
        for row in rows {
            let Some(affiliate) = refs.affiliate(&row.affiliate) else {
                self.fail(migration::PLAYERS, row.line, "its affiliate is gone");
                continue;
            };
            let campaign = row.campaign.as_ref().and_then(|c| refs.campaigns.get(c).copied());
            let key = format!("{PLAYER_KEY}{}", row.player_id);
            let bound = players::Entity::find()
                .filter(players::Column::TenantId.eq(self.tenant.uuid()))
                .filter(players::Column::PlayerId.eq(row.player_id.as_str()))
                .one(self.txn)
                .await?;
            let change = match bound {
                Some(bound) => {
                    let origin = conversions::Entity::find()
                        .filter(conversions::Column::TenantId.eq(self.tenant.uuid()))
                        .filter(conversions::Column::Id.eq(bound.conversion_id))
                        .one(self.txn)
                        .await?
                        .ok_or(Error::NotFound)?;
                    // The old system's CPA holds whoever bound the player: raised, never lowered.
                    let cpa_paid =
                        migration::cpa_paid_after_import(bound.cpa_paid_before_import, row.cpa_paid);
                    let cpa_raised = cpa_paid != bound.cpa_paid_before_import;
                    if cpa_raised {
                        players::ActiveModel {
                            tenant_id: Set(bound.tenant_id),
                            player_id: Set(bound.player_id.clone()),
                            cpa_paid_before_import: Set(cpa_paid),
                            ..Default::default()
                        }
                        .update(self.txn)
                        .await?;
                    }
                    if origin.dedupe_key != key {
                        // Bound for life by a registration here: the live binding wins.
                        self.summary.kept_players.push(row.player_id.clone());
                        if cpa_raised {
                            let what = format!("player `{}`: CPA paid by the old system", row.player_id);
                            self.note(Change::Updated, &what, migration::PLAYERS, row.line);
                        }
                        continue;
                    }
                    match self.rebind(&origin, row, affiliate, campaign).await? {
                        Change::Unchanged if cpa_raised => Change::Updated,
                        change => change,
                    }
                }
                None => {
                    let conversion = ConversionId::new().uuid();
                    let payload = serde_json::json!({
                        "imported_from": source,
                        "tracking_code": row.tracking_code,
                        "affiliate_external_id": row.affiliate,
                    })
                    .to_string();
                    conversions::ActiveModel {
                        id: Set(conversion),
                        dedupe_key: Set(key),
                        txn_id: Set(None),
                        event: Set(EventKind::Registration.as_str().to_owned()),
                        status: Set(ConversionStatus::Approved.as_str().to_owned()),
                        amount: Set(None),
                        currency: Set(None),
                        player_id: Set(Some(row.player_id.clone())),
                        campaign_id: Set(campaign),
                        attributed: Set(true),
                        payload: Set(payload),
                        occurred_at: Set(row.bound_at),
                        ..imported_conversion(self.tenant, source, now)
                    }
                    .insert(self.txn)
                    .await?;
                    credit(self.txn, self.tenant, conversion, affiliate).await?;
                    players::ActiveModel {
                        tenant_id: Set(self.tenant.uuid()),
                        player_id: Set(row.player_id.clone()),
                        conversion_id: Set(conversion),
                        created_at: Set(now),
                        cpa_paid_before_import: Set(row.cpa_paid),
                    }
                    .insert(self.txn)
                    .await?;
                    Change::Created
                }
            };
            self.summary.players.count(change);
            self.note(change, &format!("player `{}`", row.player_id), migration::PLAYERS, row.line);
        }
        Ok(())
    }

    /// A re-run moves an imported binding to what the export now says.
    async fn rebind(
        &self,
        origin: &conversions::Model,
        row: &Player,
        affiliate: uuid::Uuid,
        campaign: Option<uuid::Uuid>,
    ) -> Result<Change> {
        let credits = conversion_credits::Entity::find()
            .filter(conversion_credits::Column::TenantId.eq(self.tenant.uuid()))
            .filter(conversion_credits::Column::ConversionId.eq(origin.id))
            .all(self.txn)
            .await?;
        let same_credit = credits.len() == 1 && credits[0].affiliate_id == affiliate;
        let same = same_credit && origin.campaign_id == campaign && origin.occurred_at == row.bound_at;
        if same {
            return Ok(Change::Unchanged);
        }
        if !same_credit {
            conversion_credits::Entity::delete_many()
                .filter(conversion_credits::Column::TenantId.eq(self.tenant.uuid()))
                .filter(conversion_credits::Column::ConversionId.eq(origin.id))
                .exec(self.txn)
                .await?;
            credit(self.txn, self.tenant, origin.id, affiliate).await?;
        }
        conversions::ActiveModel {
            id: Set(origin.id),
            campaign_id: Set(campaign),
            occurred_at: Set(row.bound_at),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(self.txn)
        .await?;
        Ok(Change::Updated)
    }
}

/// Lookback of a campaign created by an import, as of one created without one here.
const DEFAULT_LOOKBACK_DAYS: i32 = 30;

/// What every conversion the import writes has in common (a player's binding, a history
/// row): credited under model `IMPORTED` from `source`, with no click, journey or verdict
/// of ours (the old tracker judged it, if at all). The caller sets the rest.
pub(super) fn imported_conversion(
    tenant: TenantId,
    source: &str,
    now: DateTime<Utc>,
) -> conversions::ActiveModel {
    conversions::ActiveModel {
        tenant_id: Set(tenant.uuid()),
        lots: Set(None),
        instrument: Set(None),
        click_id: Set(None),
        original_conversion_id: Set(None),
        unattributed_reason: Set(None),
        model: Set(Some(IMPORTED_MODEL.to_owned())),
        model_version: Set(Some(format!("imported from {source}"))),
        journey: Set("[]".to_owned()),
        payload_hash: Set(String::new()),
        received_at: Set(now),
        updated_at: Set(now),
        risk: Set(0),
        fraud_flags: Set("[]".to_owned()),
        fraud_action: Set(None),
        rejection_reason: Set(None),
        review_state: Set(None),
        reviewed_by: Set(None),
        reviewed_at: Set(None),
        review_note: Set(None),
        ..Default::default()
    }
}

async fn credit<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    conversion: uuid::Uuid,
    affiliate: uuid::Uuid,
) -> Result<()> {
    conversion_credits::ActiveModel {
        conversion_id: Set(conversion),
        affiliate_id: Set(affiliate),
        tenant_id: Set(tenant.uuid()),
        share: Set(Decimal::ONE.into()),
        position: Set(0),
    }
    .insert(conn)
    .await?;
    Ok(())
}
