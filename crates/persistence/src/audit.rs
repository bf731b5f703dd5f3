//! The audit log: what staff did, written by the repositories in the same transaction as the
//! change itself (so there is no change without its entry, and no entry for a change that
//! was rolled back), and read by the tenant's owners.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use clickledger_domain::audit::{AuditAction, AuditSubject};
use clickledger_domain::ids::{AuditEntryId, TenantId, UserId};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use crate::entities::{audit_log, users};
use crate::page::{self, Page, PageRequest};
use crate::repo::require_staff_pub;
use crate::{Db, Error, Result, Scope};

/// Who made a change: a signed-in user, or the host (`clickledger` on the command line, the
/// demo seeded on first start), which has no user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    Host,
}

/// One entry, as read back.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: AuditEntryId,
    pub at: DateTime<Utc>,
    /// The user and the e-mail it had when it acted; `None` for the host.
    pub actor: Option<(UserId, String)>,
    pub action: AuditAction,
    pub subject_type: AuditSubject,
    /// The subject's prefixed ID (`aff_…`, `pln_…`).
    pub subject_id: String,
    /// What changed, as a JSON object (never a secret).
    pub details: Value,
}

/// An entry to write: the action, its subject's ID and what changed.
pub(crate) struct Change {
    action: AuditAction,
    subject: String,
    details: Value,
}

impl Change {
    pub(crate) fn new(action: AuditAction, subject: impl Display, details: Value) -> Change {
        Change { action, subject: subject.to_string(), details }
    }
}

/// `{"from": "ACTIVE", "to": "SUSPENDED"}`: a status change, in the API's spelling.
pub(crate) fn status_change(from: &str, to: &str) -> Value {
    serde_json::json!({ "from": from.to_uppercase(), "to": to.to_uppercase() })
}

/// `{"field": {"from": …, "to": …}}` for each field whose value changed.
#[derive(Default)]
pub(crate) struct Diff(serde_json::Map<String, Value>);

impl Diff {
    pub(crate) fn field(&mut self, name: &str, from: impl serde::Serialize, to: impl serde::Serialize) {
        let (from, to) = (serde_json::json!(from), serde_json::json!(to));
        if from != to {
            self.0.insert(name.to_owned(), serde_json::json!({ "from": from, "to": to }));
        }
    }

    pub(crate) fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// Writes `changes` for `tenant`, done by `actor`, on `conn` (the change's own transaction).
/// The actor's e-mail is copied from its login as it is now, so the entry still says who it
/// was after the login changes its address.
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    actor: Actor,
    changes: Vec<Change>,
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let (actor_user, actor_email) = match actor {
        Actor::Host => (None, None),
        Actor::User(user) => {
            let login = users::Entity::find()
                .filter(users::Column::TenantId.eq(tenant.uuid()))
                .filter(users::Column::Id.eq(user.uuid()))
                .one(conn)
                .await?
                // The caller was authenticated as a login of this tenant a moment ago.
                .ok_or(Error::NotFound)?;
            (Some(login.id), Some(login.email))
        }
    };
    let at = Utc::now();
    let rows = changes.into_iter().map(|change| audit_log::ActiveModel {
        id: Set(AuditEntryId::new().uuid()),
        tenant_id: Set(tenant.uuid()),
        at: Set(at),
        actor_user_id: Set(actor_user),
        actor_email: Set(actor_email.clone()),
        action: Set(change.action.as_str().to_owned()),
        subject_type: Set(change.action.subject().as_str().to_owned()),
        subject_id: Set(change.subject),
        details: Set(change.details.to_string()),
    });
    audit_log::Entity::insert_many(rows).exec_without_returning(conn).await?;
    Ok(())
}

/// The scope's tenant's audit log (staff; the API lets owners only).
pub struct AuditLog<'a> {
    db: &'a Db,
    scope: Scope,
}

impl<'a> AuditLog<'a> {
    pub fn scoped(db: &'a Db, scope: Scope) -> Self {
        AuditLog { db, scope }
    }

    /// Oldest first, keyset-paginated on the time-ordered ID.
    pub async fn list(&self, request: PageRequest) -> Result<Page<AuditEntry>> {
        require_staff_pub(&self.scope)?;
        let select =
            audit_log::Entity::find().filter(audit_log::Column::TenantId.eq(self.scope.tenant().uuid()));
        let page = page::fetch(select, audit_log::Column::Id, request, self.db.reader()).await?;
        let items = page.items.into_iter().map(entry).collect::<Result<Vec<_>>>()?;
        Ok(Page { items, has_next: page.has_next })
    }
}

fn entry(row: audit_log::Model) -> Result<AuditEntry> {
    let actor = match (row.actor_user_id, row.actor_email) {
        (Some(user), Some(email)) => Some((UserId::from_uuid(user), email)),
        _ => None,
    };
    Ok(AuditEntry {
        id: AuditEntryId::from_uuid(row.id),
        at: row.at,
        actor,
        action: row.action.parse()?,
        subject_type: row.subject_type.parse()?,
        subject_id: row.subject_id,
        details: serde_json::from_str(&row.details)
            .map_err(|err| Error::Corrupt(format!("audit entry {}: {err}", row.id)))?,
    })
}
