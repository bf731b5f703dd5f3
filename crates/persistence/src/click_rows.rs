//! Writing clicks, the highest-volume rows we have, straight through sqlx: a statement whose
//! text never changes (prepared once per connection and cached) with the batch's values bound
//! by reference. Through sea-orm each click became an `ActiveModel`, then 18 `Value`s, then a
//! freshly built statement text of thousands of placeholders; at tens of thousands of clicks
//! a second that cost a third of the redirect path's CPU.

use std::collections::HashSet;
use std::sync::LazyLock;

use sqlx::{Executor, Postgres, Row, Sqlite};

use crate::db::sqlx_error;
use crate::tracking::NewClick;
use crate::{Backend, Db, Result};

/// The columns in bind order, each with its PostgreSQL type (the arrays of the UNNEST insert).
const COLUMNS: [(&str, &str); 22] = [
    ("click_id", "text"),
    ("tenant_id", "uuid"),
    ("link_id", "uuid"),
    ("affiliate_id", "uuid"),
    ("campaign_id", "uuid"),
    ("visitor_id", "uuid"),
    ("clicked_at", "timestamptz"),
    ("ip", "text"),
    ("user_agent", "text"),
    ("referrer", "text"),
    ("sub1", "text"),
    ("sub2", "text"),
    ("sub3", "text"),
    ("sub4", "text"),
    ("sub5", "text"),
    ("source", "text"),
    ("creative", "text"),
    ("landing_page", "text"),
    ("accept_language", "text"),
    ("is_bot", "boolean"),
    ("velocity", "boolean"),
    ("country", "text"),
];
/// Rows per SQLite statement (22 parameters each, far below SQLite's 32,766), then smaller
/// fixed sizes for the remainder, so only three statement texts ever exist.
const SQLITE_CHUNKS: [usize; 3] = [256, 16, 1];

fn column_names() -> String {
    COLUMNS.map(|(name, _)| name).join(", ")
}

fn sqlite_insert(rows: usize) -> String {
    let row = format!("({})", vec!["?"; COLUMNS.len()].join(","));
    format!(
        "INSERT INTO clicks ({}) VALUES {} ON CONFLICT (click_id) DO NOTHING RETURNING click_id",
        column_names(),
        vec![row; rows].join(",")
    )
}

static SQLITE_INSERTS: LazyLock<[String; 3]> = LazyLock::new(|| SQLITE_CHUNKS.map(sqlite_insert));

/// One statement for the whole batch: each column travels as one array.
static POSTGRES_INSERT: LazyLock<String> = LazyLock::new(|| {
    let arrays: Vec<String> =
        COLUMNS.iter().enumerate().map(|(n, (_, kind))| format!("${}::{kind}[]", n + 1)).collect();
    format!(
        "INSERT INTO clicks ({}) SELECT * FROM UNNEST({}) ON CONFLICT (click_id) DO NOTHING RETURNING click_id",
        column_names(),
        arrays.join(", ")
    )
});

/// Writes the batch in one transaction (one commit, one fsync), with its reporting rollups. A
/// click ID already stored is skipped, and counted only when it was first stored, so a retried
/// batch never fails on the part that made it, nor counts it twice.
pub(crate) async fn insert(db: &Db, batch: &[NewClick]) -> Result<()> {
    match db.backend() {
        Backend::Sqlite => insert_sqlite(db, batch).await,
        Backend::Postgres => insert_postgres(db, batch).await,
    }
}

async fn insert_sqlite(db: &Db, batch: &[NewClick]) -> Result<()> {
    let mut tx = db.writer().get_sqlite_connection_pool().begin().await.map_err(sqlx_error)?;
    let mut rest = batch;
    let mut inserted = HashSet::new();
    for (size, sql) in SQLITE_CHUNKS.iter().zip(SQLITE_INSERTS.iter()) {
        while rest.len() >= *size {
            let (chunk, after) = rest.split_at(*size);
            let mut query = sqlx::query::<Sqlite>(sql.as_str());
            for click in chunk {
                let [sub1, sub2, sub3, sub4, sub5] = &click.subs;
                query = query
                    .bind(click.click_id.as_str())
                    .bind(click.tenant_id.uuid())
                    .bind(click.link_id.uuid())
                    .bind(click.affiliate_id.uuid())
                    .bind(click.campaign_id.uuid())
                    .bind(click.visitor_id.uuid())
                    .bind(click.clicked_at)
                    .bind(click.ip.as_deref())
                    .bind(click.user_agent.as_deref())
                    .bind(click.referrer.as_deref())
                    .bind(sub1.as_deref())
                    .bind(sub2.as_deref())
                    .bind(sub3.as_deref())
                    .bind(sub4.as_deref())
                    .bind(sub5.as_deref())
                    .bind(click.source.as_deref())
                    .bind(click.creative.as_deref())
                    .bind(click.landing_page.as_deref())
                    .bind(click.accept_language.as_deref())
                    .bind(click.is_bot)
                    .bind(click.velocity)
                    .bind(click.country.as_deref());
            }
            for row in tx.fetch_all(query).await.map_err(sqlx_error)? {
                inserted.insert(row.try_get::<String, _>(0).map_err(sqlx_error)?);
            }
            rest = after;
        }
    }
    let new: Vec<&NewClick> = batch.iter().filter(|c| inserted.contains(&c.click_id)).collect();
    #[cfg(not(feature = "bench-without-click-rollups"))]
    crate::rollups::record_clicks(&mut *tx, &new).await?;
    tx.commit().await.map_err(sqlx_error)
}

async fn insert_postgres(db: &Db, batch: &[NewClick]) -> Result<()> {
    let column = |get: fn(&NewClick) -> Option<&str>| batch.iter().map(get).collect::<Vec<_>>();
    let ids = |get: fn(&NewClick) -> uuid::Uuid| batch.iter().map(get).collect::<Vec<_>>();
    let query = sqlx::query::<Postgres>(POSTGRES_INSERT.as_str())
        .bind(batch.iter().map(|c| c.click_id.as_str()).collect::<Vec<_>>())
        .bind(ids(|c| c.tenant_id.uuid()))
        .bind(ids(|c| c.link_id.uuid()))
        .bind(ids(|c| c.affiliate_id.uuid()))
        .bind(ids(|c| c.campaign_id.uuid()))
        .bind(ids(|c| c.visitor_id.uuid()))
        .bind(batch.iter().map(|c| c.clicked_at).collect::<Vec<_>>())
        .bind(column(|c| c.ip.as_deref()))
        .bind(column(|c| c.user_agent.as_deref()))
        .bind(column(|c| c.referrer.as_deref()))
        .bind(column(|c| c.subs[0].as_deref()))
        .bind(column(|c| c.subs[1].as_deref()))
        .bind(column(|c| c.subs[2].as_deref()))
        .bind(column(|c| c.subs[3].as_deref()))
        .bind(column(|c| c.subs[4].as_deref()))
        .bind(column(|c| c.source.as_deref()))
        .bind(column(|c| c.creative.as_deref()))
        .bind(column(|c| c.landing_page.as_deref()))
        .bind(column(|c| c.accept_language.as_deref()))
        .bind(batch.iter().map(|c| c.is_bot).collect::<Vec<_>>())
        .bind(batch.iter().map(|c| c.velocity).collect::<Vec<_>>())
        .bind(column(|c| c.country.as_deref()));
    let mut tx = db.writer().get_postgres_connection_pool().begin().await.map_err(sqlx_error)?;
    let mut inserted = HashSet::new();
    for row in tx.fetch_all(query).await.map_err(sqlx_error)? {
        inserted.insert(row.try_get::<String, _>(0).map_err(sqlx_error)?);
    }
    let new: Vec<&NewClick> = batch.iter().filter(|c| inserted.contains(&c.click_id)).collect();
    #[cfg(not(feature = "bench-without-click-rollups"))]
    crate::rollups::record_clicks(&mut *tx, &new).await?;
    tx.commit().await.map_err(sqlx_error)
}

#[cfg(test)]
mod tests {
    //! What sqlx writes here must read back through sea-orm exactly as if sea-orm had
    //! written it: the journey and every report read clicks that way.

    use chrono::{Duration, Utc};
    use clickledger_domain::ids::{AffiliateId, CampaignId, TenantId, TrackingLinkId, VisitorId};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

    use super::*;
    use crate::entities::clicks;

    fn click(n: usize, tenant: TenantId, visitor: VisitorId, at: chrono::DateTime<Utc>) -> NewClick {
        let some = |text: String| Some(text);
        NewClick {
            click_id: format!("clk-{n:05}"),
            tenant_id: tenant,
            link_id: TrackingLinkId::new(),
            affiliate_id: AffiliateId::new(),
            campaign_id: CampaignId::new(),
            visitor_id: visitor,
            new_visitor: false,
            clicked_at: at - Duration::milliseconds(n as i64 * 1_001),
            ip: some(format!("203.0.113.{}", n % 250)),
            user_agent: some(format!("Mozilla/5.0 ✓ 𝔘 {n}")),
            referrer: n.is_multiple_of(2).then(|| format!("https://ref.test/{n}?a=1&b='\"")),
            subs: [some(format!("s1-{n}")), None, some(String::new()), None, some("s5".into())],
            source: some("email".into()),
            creative: None,
            landing_page: some(format!("lp{n}")),
            accept_language: n.is_multiple_of(3).then(|| "de-CH, de;q=0.9, en;q=0.8".into()),
            is_bot: n.is_multiple_of(5),
            velocity: n.is_multiple_of(7),
            country: n.is_multiple_of(2).then(|| "SE".to_owned()),
        }
    }

    #[tokio::test]
    async fn every_chunk_size_round_trips_through_sea_orm_and_a_retry_adds_nothing() {
        let test = crate::test_support::fresh_db("clicks").await;
        let db = &test.db;
        let (tenant, visitor, now) = (TenantId::new(), VisitorId::new(), Utc::now());
        // 256 + 16 × 2 + 1 × 7: all three statement shapes.
        let batch: Vec<NewClick> = (0..295).map(|n| click(n, tenant, visitor, now)).collect();
        insert(db, &batch).await.unwrap();
        insert(db, &batch).await.unwrap();

        let stored = clicks::Entity::find()
            .filter(clicks::Column::TenantId.eq(tenant.uuid()))
            .filter(clicks::Column::VisitorId.eq(visitor.uuid()))
            .filter(clicks::Column::ClickedAt.lte(now))
            .order_by_asc(clicks::Column::ClickId)
            .all(db.reader())
            .await
            .unwrap();
        assert_eq!(stored.len(), batch.len(), "each click once, none lost, none doubled by the retry");
        for (row, sent) in stored.iter().zip(&batch) {
            assert_eq!(row.click_id, sent.click_id);
            assert_eq!(
                (row.link_id, row.affiliate_id, row.campaign_id),
                (sent.link_id.uuid(), sent.affiliate_id.uuid(), sent.campaign_id.uuid())
            );
            // PostgreSQL keeps microseconds.
            assert_eq!(row.clicked_at.timestamp_micros(), sent.clicked_at.timestamp_micros());
            assert_eq!(
                (&row.ip, &row.user_agent, &row.referrer),
                (&sent.ip, &sent.user_agent, &sent.referrer)
            );
            assert_eq!(
                [&row.sub1, &row.sub2, &row.sub3, &row.sub4, &row.sub5],
                [&sent.subs[0], &sent.subs[1], &sent.subs[2], &sent.subs[3], &sent.subs[4]]
            );
            assert_eq!(
                (&row.source, &row.creative, &row.landing_page),
                (&sent.source, &sent.creative, &sent.landing_page)
            );
            assert_eq!(
                (&row.accept_language, row.is_bot, row.velocity, &row.country),
                (&sent.accept_language, sent.is_bot, sent.velocity, &sent.country)
            );
        }
    }
}
