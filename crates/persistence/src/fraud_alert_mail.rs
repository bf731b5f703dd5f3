//! The fraud-alert e-mail, off the postback's path: the notifier reads each tenant's event
//! log past its own cursor (`fraud_alert_cursors`), and for each flagged new conversion and
//! each (rule, affiliate) it names either queues the alert to the tenant's owners or, when
//! one went out for that pair within the hour (`clickledger_domain::fraud::alert_mail_due`),
//! counts it for that day's digest. The e-mails, the counts and the cursor move in one
//! transaction, so a crash or another replica never mails an alert twice.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use clickledger_domain::fraud::{Rule, alert_mail_due};
use clickledger_domain::ids::{AffiliateId, ConversionId, TenantId};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, TransactionTrait};

use crate::conversions::{ConversionEvent, EVENT_CREATED};
use crate::entities::{affiliates, fraud_alert_cursors, fraud_alert_digest, fraud_alert_mails, tenants};
use crate::mail::{Message, owner_addresses, queue_on};
use crate::records::Tenant;
use crate::{Db, Result};

/// One rule's hit on a new conversion, for one affiliate it credits (`None`: it credits none).
#[derive(Debug, Clone)]
pub struct Alert {
    pub rule: Rule,
    pub affiliate: Option<AffiliateId>,
    /// The affiliate's name, or `(no affiliate)`.
    pub affiliate_name: String,
    pub conversion: ConversionId,
    pub score: u8,
    pub evidence: String,
}

/// A tenant whose event log has moved past its stored fraud-alert cursor (the migration gave
/// every older tenant one).
pub type Behind = crate::event_cursor::Behind<Tenant>;

/// Tenants whose event log has moved past the stored fraud-alert cursor.
pub async fn tenants_behind(db: &Db) -> Result<Vec<Behind>> {
    let cursors: HashMap<uuid::Uuid, i64> = fraud_alert_cursors::Entity::find()
        .all(db.reader())
        .await?
        .into_iter()
        .map(|cursor| (cursor.tenant_id, cursor.last_seq))
        .collect();
    let tenants = tenants::Entity::find().all(db.reader()).await?;
    Ok(crate::event_cursor::behind(tenants, &cursors, Tenant::from))
}

/// The alerts of a batch of events: each flagged new conversion, per rule and credited
/// affiliate.
pub async fn alerts_of(db: &Db, tenant: TenantId, events: &[ConversionEvent]) -> Result<Vec<Alert>> {
    let flagged: Vec<&ConversionEvent> = events
        .iter()
        .filter(|event| event.kind == EVENT_CREATED && !event.conversion.fraud.flags.is_empty())
        .collect();
    let ids: Vec<uuid::Uuid> = flagged
        .iter()
        .flat_map(|event| event.conversion.credits.iter().map(|credit| credit.affiliate_id.uuid()))
        .collect();
    let names = affiliate_names(db, tenant, ids).await?;
    let mut alerts = Vec::new();
    for event in flagged {
        let conversion = &event.conversion;
        let credited: Vec<Option<AffiliateId>> = if conversion.credits.is_empty() {
            vec![None]
        } else {
            conversion.credits.iter().map(|credit| Some(credit.affiliate_id)).collect()
        };
        for flag in &conversion.fraud.flags {
            for affiliate in &credited {
                alerts.push(Alert {
                    rule: flag.rule,
                    affiliate: *affiliate,
                    affiliate_name: affiliate
                        .and_then(|a| names.get(&a.uuid()).cloned())
                        .unwrap_or_else(|| "(no affiliate)".to_owned()),
                    conversion: conversion.id,
                    score: flag.score,
                    evidence: flag.evidence.clone(),
                });
            }
        }
    }
    Ok(alerts)
}

/// Mails or holds back each alert and moves the tenant's cursor from `from_seq` to
/// `through_seq`, in one transaction; `None` (and nothing done) when another process moved
/// the cursor first. Otherwise how many alerts were mailed and how many held back.
pub async fn apply(
    db: &Db,
    tenant: TenantId,
    alerts: &[Alert],
    (from_seq, through_seq): (i64, i64),
    now: DateTime<Utc>,
    message: impl Fn(&Alert) -> Message,
) -> Result<Option<(usize, usize)>> {
    let txn = db.writer().begin().await?;
    fraud_alert_cursors::Entity::insert(fraud_alert_cursors::ActiveModel {
        tenant_id: Set(tenant.uuid()),
        last_seq: Set(0),
    })
    .on_conflict(OnConflict::column(fraud_alert_cursors::Column::TenantId).do_nothing().to_owned())
    .exec_without_returning(&txn)
    .await?;
    let moved = fraud_alert_cursors::Entity::update_many()
        .col_expr(fraud_alert_cursors::Column::LastSeq, Expr::value(through_seq))
        .filter(fraud_alert_cursors::Column::TenantId.eq(tenant.uuid()))
        .filter(fraud_alert_cursors::Column::LastSeq.eq(from_seq))
        .exec(&txn)
        .await?;
    if moved.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(None);
    }
    let owners = if alerts.is_empty() { Vec::new() } else { owner_addresses(&txn, tenant).await? };
    let day = now.date_naive().to_string();
    let (mut mailed, mut held) = (0, 0);
    for alert in alerts {
        let affiliate = alert.affiliate.map(|a| a.uuid()).unwrap_or_default();
        let last =
            fraud_alert_mails::Entity::find_by_id((tenant.uuid(), alert.rule.as_str().to_owned(), affiliate))
                .one(&txn)
                .await?
                .map(|row| row.last_sent_at);
        if alert_mail_due(last, now) {
            let row = fraud_alert_mails::ActiveModel {
                tenant_id: Set(tenant.uuid()),
                rule: Set(alert.rule.as_str().to_owned()),
                affiliate_id: Set(affiliate),
                last_sent_at: Set(now),
            };
            let sent_again = OnConflict::columns([
                fraud_alert_mails::Column::TenantId,
                fraud_alert_mails::Column::Rule,
                fraud_alert_mails::Column::AffiliateId,
            ])
            .update_column(fraud_alert_mails::Column::LastSentAt)
            .to_owned();
            fraud_alert_mails::Entity::insert(row)
                .on_conflict(sent_again)
                .exec_without_returning(&txn)
                .await?;
            let message = message(alert);
            for to in &owners {
                queue_on(&txn, tenant, to, message.clone(), now).await?;
            }
            mailed += 1;
        } else {
            let row = fraud_alert_digest::ActiveModel {
                tenant_id: Set(tenant.uuid()),
                day: Set(day.clone()),
                rule: Set(alert.rule.as_str().to_owned()),
                affiliate_id: Set(affiliate),
                held: Set(1),
            };
            let add = OnConflict::columns([
                fraud_alert_digest::Column::TenantId,
                fraud_alert_digest::Column::Day,
                fraud_alert_digest::Column::Rule,
                fraud_alert_digest::Column::AffiliateId,
            ])
            .value(fraud_alert_digest::Column::Held, Expr::cust("fraud_alert_digest.held + excluded.held"))
            .to_owned();
            fraud_alert_digest::Entity::insert(row).on_conflict(add).exec_without_returning(&txn).await?;
            held += 1;
        }
    }
    txn.commit().await?;
    Ok(Some((mailed, held)))
}

/// The alerts held back on `day` for the digest: (rule, affiliate name, how many).
pub async fn held_back(db: &Db, tenant: TenantId, day: NaiveDate) -> Result<Vec<(String, String, u64)>> {
    let rows = fraud_alert_digest::Entity::find()
        .filter(fraud_alert_digest::Column::TenantId.eq(tenant.uuid()))
        .filter(fraud_alert_digest::Column::Day.eq(day.to_string()))
        .all(db.reader())
        .await?;
    let ids: Vec<uuid::Uuid> = rows.iter().map(|row| row.affiliate_id).collect();
    let names = affiliate_names(db, tenant, ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let name = names.get(&row.affiliate_id).cloned().unwrap_or_else(|| "(no affiliate)".to_owned());
            (row.rule, name, u64::try_from(row.held).unwrap_or(0))
        })
        .collect())
}

/// The names of the tenant's affiliates among `ids` (another tenant's are not found).
pub(crate) async fn affiliate_names(
    db: &Db,
    tenant: TenantId,
    ids: impl IntoIterator<Item = uuid::Uuid>,
) -> Result<HashMap<uuid::Uuid, String>> {
    let ids: Vec<uuid::Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(affiliates::Entity::find()
        .select_only()
        .column(affiliates::Column::Id)
        .column(affiliates::Column::Name)
        .filter(affiliates::Column::TenantId.eq(tenant.uuid()))
        .filter(affiliates::Column::Id.is_in(ids))
        .into_tuple::<(uuid::Uuid, String)>()
        .all(db.reader())
        .await?
        .into_iter()
        .collect())
}
