//! One statement per postback for everything attribution reads about a click: its link and
//! campaign, and the visitor's clicks on that campaign (found through this click's row). On
//! PostgreSQL each statement is a round trip and server CPU; on SQLite two thread hand-offs.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use clickledger_domain::ids::TenantId;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use crate::Result;

/// Longest journey considered: older touches beyond this add nothing but cost.
pub(super) const MAX_TOUCHES: u64 = 50;

/// The link a click ID names, its campaign, and the visitor's clicks on the campaign up to
/// `until`, newest first (at most `MAX_TOUCHES`); empty when this click's row is not written
/// yet.
pub(super) struct LinkJourney {
    pub link_affiliate: Uuid,
    pub campaign: Uuid,
    pub lookback_days: i32,
    pub model: String,
    pub touches: Vec<StoredTouch>,
}

pub(super) struct StoredTouch {
    pub click_id: String,
    pub affiliate: Uuid,
    pub at: DateTime<Utc>,
}

/// Each parameter appears once, in this order, so `?` (SQLite) and `$n` (PostgreSQL) number
/// alike.
const SQL: &str = "SELECT l.affiliate_id AS link_affiliate, c.id AS campaign, c.lookback_days AS lookback_days, \
     c.attribution_model AS model, k.click_id AS touch_click, k.affiliate_id AS touch_affiliate, \
     k.clicked_at AS touch_at \
     FROM tracking_links l \
     JOIN campaigns c ON c.tenant_id = l.tenant_id AND c.id = l.campaign_id \
     LEFT JOIN clicks k ON k.tenant_id = l.tenant_id AND k.campaign_id = c.id \
       AND k.visitor_id = (SELECT v.visitor_id FROM clicks v WHERE v.click_id = {p}) \
       AND k.clicked_at <= {p} \
     WHERE l.tenant_id = {p} AND l.link_tag = {p} \
     ORDER BY k.clicked_at DESC \
     LIMIT {limit}";

/// The statement text for each backend, built once: this runs for every postback.
static SQLITE_SQL: LazyLock<String> = LazyLock::new(|| sql(DbBackend::Sqlite, MAX_TOUCHES));
static POSTGRES_SQL: LazyLock<String> = LazyLock::new(|| sql(DbBackend::Postgres, MAX_TOUCHES));

fn sql(backend: DbBackend, limit: u64) -> String {
    let mut n = 0;
    let mut out = String::with_capacity(SQL.len());
    for (i, part) in SQL.replace("{limit}", &limit.to_string()).split("{p}").enumerate() {
        if i > 0 {
            n += 1;
            match backend {
                DbBackend::Postgres => out.push_str(&format!("${n}")),
                _ => out.push('?'),
            }
        }
        out.push_str(part);
    }
    out
}

pub(super) async fn link_and_journey<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    link_tag: i64,
    click_id: &str,
    until: DateTime<Utc>,
) -> Result<Option<LinkJourney>> {
    let backend = conn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => &*POSTGRES_SQL,
        _ => &*SQLITE_SQL,
    };
    let statement = Statement::from_sql_and_values(
        backend,
        sql.as_str(),
        [click_id.into(), until.into(), tenant.uuid().into(), link_tag.into()],
    );
    let rows = conn.query_all_raw(statement).await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let mut journey = LinkJourney {
        link_affiliate: first.try_get("", "link_affiliate")?,
        campaign: first.try_get("", "campaign")?,
        lookback_days: first.try_get("", "lookback_days")?,
        model: first.try_get("", "model")?,
        touches: Vec::with_capacity(rows.len()),
    };
    for row in &rows {
        let click_id: Option<String> = row.try_get("", "touch_click")?;
        let affiliate: Option<Uuid> = row.try_get("", "touch_affiliate")?;
        let at: Option<DateTime<Utc>> = row.try_get("", "touch_at")?;
        if let (Some(click_id), Some(affiliate), Some(at)) = (click_id, affiliate, at) {
            journey.touches.push(StoredTouch { click_id, affiliate, at });
        }
    }
    Ok(Some(journey))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_in_order_for_postgres_and_stay_positional_for_sqlite() {
        let pg = sql(DbBackend::Postgres, 50);
        assert!(pg.contains("v.click_id = $1") && pg.contains("<= $2") && pg.contains("l.tenant_id = $3"));
        assert!(pg.contains("l.link_tag = $4") && pg.ends_with("LIMIT 50"));
        let lite = sql(DbBackend::Sqlite, 50);
        assert_eq!(lite.matches('?').count(), 4);
        assert!(!lite.contains('$') && !lite.contains("{p}"));
    }
}
