//! The stored facts the fraud rules read for a batch, fetched once per batch before its
//! conversions are judged, rather than once per conversion on the single writer:
//!
//! - for each cluster signal a conversion carries, the oldest players stored with it (the
//!   multi-accounting evidence);
//! - for each IP and device a registration carries, the newest players stored with it within
//!   the velocity window;
//! - the credited affiliates' logins from the postbacks' addresses (self-referral).
//!
//! Each (tenant, signal, value) is one indexed probe with a limit; all of a batch's probes go
//! in one statement, a `UNION ALL` of limited subqueries, which both databases run as index
//! range reads (never a scan of a popular value). Its text must not change with the batch, or
//! it is parsed and planned anew each time (on PostgreSQL 20 ms for a batch's `UNION ALL`):
//! PostgreSQL gets one text for any batch, the probes as one JSON parameter, each run as a
//! `LATERAL` limited read; SQLite, which has no `LATERAL`, a `UNION ALL` padded to a power of
//! two, a handful of texts that each connection prepares once.
//!
//! The batch's own signals are written at its end ([`super::fraud::BatchSignals`]), so these
//! reads see exactly what a read per conversion would have seen, and the batch's earlier
//! conversions are found in memory.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use clickledger_domain::fraud::{AffiliateLogin, FraudSettings, VELOCITY_WINDOW};
use clickledger_domain::ids::{AffiliateId, ConversionId, TenantId};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement, Value};
use uuid::Uuid;

use super::ingest::Prepared;
use crate::Result;
use crate::entities::affiliate_logins;

/// Other players reported per shared signal: enough to name the cluster, never a scan.
pub(super) const OTHERS_PER_SIGNAL: usize = 3;

/// The name a registration's IP is kept under among the player's signals (never a cluster
/// signal: players behind one address are not linked by it).
pub(super) const IP_SIGNAL: &str = "ip";

/// Probes per statement: SQLite allows 500 terms in a compound select.
const PROBES_PER_STATEMENT: usize = 200;

/// The probes a statement of `probes` is padded to: the next power of two, at most
/// [`PROBES_PER_STATEMENT`], which keeps the texts a connection caches to a few.
fn padded_len(probes: usize) -> usize {
    probes.next_power_of_two().min(PROBES_PER_STATEMENT)
}

type Key = (TenantId, String, String);

/// A player stored with a signal's value.
#[derive(Debug, Clone)]
pub(super) struct StoredSignal {
    pub player: String,
    pub conversion: ConversionId,
    pub at: DateTime<Utc>,
}

/// What the batch's fraud rules read from storage.
#[derive(Default)]
pub(super) struct StoredFacts {
    /// Per (tenant, signal, value): the oldest players stored with it, one more than
    /// reported (the asking player may be among them).
    oldest: HashMap<Key, Vec<StoredSignal>>,
    /// Per (tenant, signal, value): the newest players stored with it since the earliest
    /// window start of the batch, one more than the velocity limit.
    newest: HashMap<Key, Vec<StoredSignal>>,
    /// Per (tenant, address): the affiliate logins from it.
    logins: HashMap<(TenantId, String), Vec<affiliate_logins::Model>>,
}

impl StoredFacts {
    /// Reads the facts for the batch's `jobs`, each judged under its tenant's `settings`.
    pub(super) async fn read<C: ConnectionTrait>(
        conn: &C,
        settings: &HashMap<TenantId, FraudSettings>,
        jobs: &[&Prepared],
    ) -> Result<Self> {
        let mut oldest: HashSet<Key> = HashSet::new();
        // Per key: the earliest window start and the largest limit asked.
        let mut newest: HashMap<Key, (DateTime<Utc>, u64)> = HashMap::new();
        let mut logins: HashSet<(TenantId, String)> = HashSet::new();
        let mut affiliates: HashSet<Uuid> = HashSet::new();
        for job in jobs {
            let Some(settings) = settings.get(&job.tenant) else { continue };
            let signals = &job.postback.signals;
            let player = job.postback.subject.player_id();
            if player.is_some() && settings.checks_clusters() {
                for (signal, value) in signals.cluster_values() {
                    oldest.insert((job.tenant, signal.as_str().to_owned(), value.to_owned()));
                }
            }
            if let Some(limit) = settings.velocity_probe(job.postback.event) {
                let since = job.received_at - VELOCITY_WINDOW;
                let ip = signals.ip.map(|ip| ip.to_string());
                for (signal, value) in [(IP_SIGNAL, ip), ("device_id", signals.device_id.clone())] {
                    let Some(value) = value else { continue };
                    let probe =
                        newest.entry((job.tenant, signal.to_owned(), value)).or_insert((since, limit));
                    *probe = (probe.0.min(since), probe.1.max(limit));
                }
            }
            let credits = &job.resolution.credits;
            if let Some(ip) = signals.ip.filter(|_| settings.checks_logins() && !credits.is_empty()) {
                affiliates.extend(credits.iter().map(|credit| credit.affiliate_id.uuid()));
                logins.insert((job.tenant, ip.to_string()));
            }
        }
        let oldest_probes: Vec<Probe> = oldest
            .into_iter()
            .map(|key| Probe { key, since: None, limit: OTHERS_PER_SIGNAL as u64 + 1 })
            .collect();
        let newest_probes: Vec<Probe> = newest
            .into_iter()
            .map(|(key, (since, limit))| Probe { key, since: Some(since), limit: limit + 1 })
            .collect();
        Ok(StoredFacts {
            oldest: probe_all(conn, oldest_probes).await?,
            newest: probe_all(conn, newest_probes).await?,
            logins: read_logins(conn, logins, affiliates).await?,
        })
    }

    /// Up to [`OTHERS_PER_SIGNAL`] other players stored with `(signal, value)`, oldest first.
    pub(super) fn others<'a>(
        &'a self,
        tenant: TenantId,
        signal: &str,
        value: &str,
        player: &'a str,
    ) -> impl Iterator<Item = &'a StoredSignal> + 'a {
        self.oldest
            .get(&(tenant, signal.to_owned(), value.to_owned()))
            .into_iter()
            .flatten()
            .filter(move |stored| stored.player != player)
            .take(OTHERS_PER_SIGNAL)
    }

    /// How many other players were stored with `(signal, value)` after `since`, counting at
    /// most `limit`.
    pub(super) fn recent(
        &self,
        tenant: TenantId,
        signal: &str,
        value: &str,
        player: Option<&str>,
        since: DateTime<Utc>,
        limit: u64,
    ) -> usize {
        let found = self
            .newest
            .get(&(tenant, signal.to_owned(), value.to_owned()))
            .into_iter()
            .flatten()
            .filter(|stored| stored.at > since && Some(stored.player.as_str()) != player)
            .count();
        found.min(usize::try_from(limit).unwrap_or(usize::MAX))
    }

    /// The credited affiliates' logins from the postback's IP.
    pub(super) fn logins(&self, job: &Prepared) -> Vec<AffiliateLogin> {
        let Some(ip) = job.postback.signals.ip else { return Vec::new() };
        let credited: HashSet<Uuid> =
            job.resolution.credits.iter().map(|credit| credit.affiliate_id.uuid()).collect();
        self.logins
            .get(&(job.tenant, ip.to_string()))
            .into_iter()
            .flatten()
            .filter(|login| credited.contains(&login.affiliate_id))
            .map(|login| AffiliateLogin {
                affiliate: AffiliateId::from_uuid(login.affiliate_id),
                last_seen_at: login.last_seen_at,
                user_agent: login.user_agent.clone(),
            })
            .collect()
    }
}

/// One limited probe of `player_signals`: the oldest rows of a key, or (with `since`) its
/// newest rows after `since`.
struct Probe {
    key: Key,
    since: Option<DateTime<Utc>>,
    limit: u64,
}

const COLUMNS: &str = "tenant_id, signal, value, player_id, conversion_id, created_at";

/// Runs the probes, [`PROBES_PER_STATEMENT`] to a statement, and groups what they found by
/// key, in each probe's order.
async fn probe_all<C: ConnectionTrait>(
    conn: &C,
    probes: Vec<Probe>,
) -> Result<HashMap<Key, Vec<StoredSignal>>> {
    let backend = conn.get_database_backend();
    let mut found: HashMap<Key, Vec<StoredSignal>> = HashMap::new();
    for chunk in probes.chunks(PROBES_PER_STATEMENT) {
        let (sql, values) = statement(backend, chunk);
        for row in conn.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await? {
            let key = (
                TenantId::from_uuid(row.try_get("", "tenant_id")?),
                row.try_get("", "signal")?,
                row.try_get("", "value")?,
            );
            found.entry(key).or_default().push(StoredSignal {
                player: row.try_get("", "player_id")?,
                conversion: ConversionId::from_uuid(row.try_get("", "conversion_id")?),
                at: row.try_get("", "created_at")?,
            });
        }
    }
    Ok(found)
}

/// The probes as one statement, and its values. All of one statement's probes have a window,
/// or none has.
fn statement(backend: DbBackend, probes: &[Probe]) -> (String, Vec<Value>) {
    match backend {
        DbBackend::Postgres => lateral(probes),
        _ => padded_union(probes),
    }
}

/// PostgreSQL: the probes as rows of one JSON parameter, each joined to its limited read.
fn lateral(probes: &[Probe]) -> (String, Vec<Value>) {
    let rows: Vec<serde_json::Value> = probes
        .iter()
        .map(|probe| {
            let (tenant, signal, value) = &probe.key;
            serde_json::json!({
                "tenant_id": tenant.uuid().to_string(),
                "signal": signal,
                "value": value,
                "since": probe.since.map(|since| since.to_rfc3339()),
                "lim": probe.limit,
            })
        })
        .collect();
    let windowed = probes.first().is_some_and(|probe| probe.since.is_some());
    let (window, order) = if windowed { (" AND created_at > p.since", "DESC") } else { ("", "ASC") };
    let sql = format!(
        "SELECT s.tenant_id, s.signal, s.value, s.player_id, s.conversion_id, s.created_at \
         FROM jsonb_to_recordset($1::jsonb) \
         AS p(tenant_id uuid, signal text, value text, since timestamptz, lim bigint) \
         CROSS JOIN LATERAL (SELECT {COLUMNS} FROM player_signals \
         WHERE tenant_id = p.tenant_id AND signal = p.signal AND value = p.value{window} \
         ORDER BY created_at {order} LIMIT p.lim) AS s"
    );
    (sql, vec![serde_json::Value::Array(rows).to_string().into()])
}

/// SQLite: a `UNION ALL` of the probes, padded to [`padded_len`] with probes of the nil tenant
/// (which find nothing), so that its text depends only on the padded count and the window.
fn padded_union(probes: &[Probe]) -> (String, Vec<Value>) {
    let Some(first) = probes.first() else { return (String::new(), Vec::new()) };
    let filler = Probe {
        key: (TenantId::from_uuid(Uuid::nil()), String::new(), String::new()),
        since: first.since,
        limit: 1,
    };
    let count = padded_len(probes.len());
    let mut values: Vec<Value> = Vec::with_capacity(count * 5);
    let param = |value: Value, values: &mut Vec<Value>| {
        values.push(value);
        "?"
    };
    let mut parts = Vec::with_capacity(count);
    for i in 0..count {
        let probe = probes.get(i).unwrap_or(&filler);
        let (tenant, signal, value) = &probe.key;
        let tenant = param(tenant.uuid().into(), &mut values);
        let signal = param(signal.clone().into(), &mut values);
        let value = param(value.clone().into(), &mut values);
        let (window, order) = match probe.since {
            Some(since) => (format!(" AND created_at > {}", param(since.into(), &mut values)), "DESC"),
            None => (String::new(), "ASC"),
        };
        let limit = param(i64::try_from(probe.limit).unwrap_or(i64::MAX).into(), &mut values);
        parts.push(format!(
            "SELECT {COLUMNS} FROM (SELECT {COLUMNS} FROM player_signals \
             WHERE tenant_id = {tenant} AND signal = {signal} AND value = {value}{window} \
             ORDER BY created_at {order} LIMIT {limit}) AS probe{i}",
        ));
    }
    (parts.join(" UNION ALL "), values)
}

/// The logins from the batch's addresses of the affiliates its postbacks credit: one
/// statement, probing the `(tenant, affiliate, ip)` key.
async fn read_logins<C: ConnectionTrait>(
    conn: &C,
    wanted: HashSet<(TenantId, String)>,
    affiliates: HashSet<Uuid>,
) -> Result<HashMap<(TenantId, String), Vec<affiliate_logins::Model>>> {
    let mut found: HashMap<(TenantId, String), Vec<affiliate_logins::Model>> = HashMap::new();
    if wanted.is_empty() {
        return Ok(found);
    }
    let tenants: HashSet<Uuid> = wanted.iter().map(|(tenant, _)| tenant.uuid()).collect();
    let ips: HashSet<&str> = wanted.iter().map(|(_, ip)| ip.as_str()).collect();
    let rows = affiliate_logins::Entity::find()
        .filter(affiliate_logins::Column::TenantId.is_in(tenants))
        .filter(affiliate_logins::Column::AffiliateId.is_in(affiliates))
        .filter(affiliate_logins::Column::Ip.is_in(ips))
        .all(conn)
        .await?;
    for row in rows {
        let key = (TenantId::from_uuid(row.tenant_id), row.ip.clone());
        if wanted.contains(&key) {
            found.entry(key).or_default().push(row);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(since: Option<DateTime<Utc>>) -> Probe {
        Probe { key: (TenantId::new(), "device_id".into(), "d-1".into()), since, limit: 4 }
    }

    #[test]
    fn postgres_gets_one_text_for_any_batch_and_the_probes_as_one_parameter() {
        let (one, values) = statement(DbBackend::Postgres, &[probe(None)]);
        assert_eq!(values.len(), 1);
        let (three, values) = statement(DbBackend::Postgres, &[probe(None), probe(None), probe(None)]);
        assert_eq!(one, three);
        let Value::String(Some(json)) = &values[0] else { panic!("a JSON text: {values:?}") };
        let rows: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["lim"], 4);
        assert!(one.contains("ORDER BY created_at ASC LIMIT p.lim"));
        let (windowed, values) = statement(DbBackend::Postgres, &[probe(Some(Utc::now()))]);
        assert!(windowed.contains("AND created_at > p.since ORDER BY created_at DESC"));
        let Value::String(Some(json)) = &values[0] else { panic!("a JSON text: {values:?}") };
        assert!(json.contains(r#""since":"20"#), "{json}");
    }

    #[test]
    fn sqlite_gets_a_union_padded_so_that_its_text_depends_only_on_the_padded_count() {
        let three = [probe(None), probe(None), probe(None)];
        let (padded, values) = statement(DbBackend::Sqlite, &three);
        assert_eq!(padded.matches(" UNION ALL ").count(), 3, "three probes pad to four");
        assert_eq!(padded.matches('?').count(), 16);
        assert!(
            padded.contains("tenant_id = ? AND signal = ? AND value = ? ORDER BY created_at ASC LIMIT ?")
        );
        assert_eq!(values[12], Value::from(Uuid::nil()), "the filler probes the nil tenant");
        let four = [probe(None), probe(None), probe(None), probe(None)];
        assert_eq!(statement(DbBackend::Sqlite, &four).0, padded);
        let (windowed, values) = statement(DbBackend::Sqlite, &[probe(Some(Utc::now()))]);
        assert_eq!(values.len(), 5);
        assert!(windowed.contains("AND created_at > ? ORDER BY created_at DESC LIMIT ?"));
        assert_eq!([1, 2, 3, 5, 129, 200].map(padded_len), [1, 2, 4, 8, 200, 200]);
    }
}
