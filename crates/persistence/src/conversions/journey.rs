//! One statement per postback for everything attribution reads about a click: its link and
//! campaign, the visitor's clicks on that campaign (found through this click's row), and the
//! click's own row as the fraud rules and the reporting rollups read it. On PostgreSQL each
//! statement is a round trip and server CPU; on SQLite two thread hand-offs. This runs on the
//! readers, concurrently, so the single writer reads nothing more about the click.

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
    /// The click's own row; `None` when it is not written yet.
    pub click: Option<ClickRow>,
}

/// A stored click as the fraud rules and the reporting rollups read it.
#[derive(Debug, Clone)]
pub(crate) struct ClickRow {
    pub click_id: String,
    pub tenant: Uuid,
    pub affiliate: Uuid,
    pub campaign: Uuid,
    pub link: Uuid,
    pub subs: [Option<String>; 5],
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub is_bot: bool,
    pub velocity: bool,
    pub source: Option<String>,
    pub creative: Option<String>,
    pub landing_page: Option<String>,
    pub country: Option<String>,
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
     k.clicked_at AS touch_at, n.tenant_id AS n_tenant, n.affiliate_id AS n_affiliate, \
     n.campaign_id AS n_campaign, n.link_id AS n_link, n.sub1 AS n_sub1, n.sub2 AS n_sub2, n.sub3 AS n_sub3, \
     n.sub4 AS n_sub4, n.sub5 AS n_sub5, n.ip AS n_ip, n.user_agent AS n_user_agent, n.is_bot AS n_is_bot, \
     n.velocity AS n_velocity, n.source AS n_source, n.creative AS n_creative, n.landing_page AS n_landing_page, \
     n.country AS n_country \
     FROM tracking_links l \
     JOIN campaigns c ON c.tenant_id = l.tenant_id AND c.id = l.campaign_id \
     LEFT JOIN clicks n ON n.click_id = {p} \
     LEFT JOIN clicks k ON k.tenant_id = l.tenant_id AND k.campaign_id = c.id \
       AND k.visitor_id = n.visitor_id \
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
        click: click_row(first, click_id, tenant)?,
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

/// The named click's columns of a row, when its row exists and is the tenant's.
fn click_row(row: &sea_orm::QueryResult, click_id: &str, tenant: TenantId) -> Result<Option<ClickRow>> {
    let Some(click_tenant) = row.try_get::<Option<Uuid>>("", "n_tenant")? else { return Ok(None) };
    if click_tenant != tenant.uuid() {
        return Ok(None);
    }
    let text = |column: &str| row.try_get::<Option<String>>("", column);
    Ok(Some(ClickRow {
        click_id: click_id.to_owned(),
        tenant: click_tenant,
        affiliate: row.try_get("", "n_affiliate")?,
        campaign: row.try_get("", "n_campaign")?,
        link: row.try_get("", "n_link")?,
        subs: [text("n_sub1")?, text("n_sub2")?, text("n_sub3")?, text("n_sub4")?, text("n_sub5")?],
        ip: text("n_ip")?,
        user_agent: text("n_user_agent")?,
        is_bot: row.try_get("", "n_is_bot")?,
        velocity: row.try_get("", "n_velocity")?,
        source: text("n_source")?,
        creative: text("n_creative")?,
        landing_page: text("n_landing_page")?,
        country: text("n_country")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_in_order_for_postgres_and_stay_positional_for_sqlite() {
        let pg = sql(DbBackend::Postgres, 50);
        assert!(pg.contains("n.click_id = $1") && pg.contains("<= $2") && pg.contains("l.tenant_id = $3"));
        assert!(pg.contains("l.link_tag = $4") && pg.ends_with("LIMIT 50"));
        let lite = sql(DbBackend::Sqlite, 50);
        assert_eq!(lite.matches('?').count(), 4);
        assert!(!lite.contains('$') && !lite.contains("{p}"));
    }
}
