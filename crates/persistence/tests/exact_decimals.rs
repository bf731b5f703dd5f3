//! Decimal columns on SQLite (always SQLite: PostgreSQL's NUMERIC columns were exact already).
//! A database written before exact decimals holds floats; after the migration it reads back
//! the decimals those floats were written from, through the same code the server runs, and
//! no decimal column is a float any more.

use chrono::Utc;
use clickledger_domain::ids::{ConversionId, TenantId};
use clickledger_migration::{Migrator, MigratorTrait};
use clickledger_persistence::commission::FxRates;
use clickledger_persistence::conversions::Conversions;
use clickledger_persistence::sealed::KeyRing;
use clickledger_persistence::{Db, Scope};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, Value};

const EXACT_DECIMALS: &str = "m20261202_000007_exact_decimals";

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("clickledger.db").display())
}

async fn execute(conn: &DatabaseConnection, sql: &str, values: Vec<Value>) {
    conn.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values))
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
}

/// Each row of a single-column query, as text.
async fn texts(conn: &DatabaseConnection, sql: &str) -> Vec<String> {
    conn.query_all_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect()
}

async fn index_names(conn: &DatabaseConnection) -> Vec<String> {
    texts(conn, "SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name").await
}

/// Columns still declared as floats with a precision (`real(20, 6)`): decimals that lose digits.
async fn float_decimal_columns(conn: &DatabaseConnection) -> Vec<String> {
    texts(
        conn,
        "SELECT m.name || '.' || c.name FROM sqlite_master m, pragma_table_info(m.name) c \
         WHERE m.type = 'table' AND lower(c.type) LIKE 'real(%' ORDER BY 1",
    )
    .await
}

#[tokio::test]
async fn floats_stored_before_the_migration_read_back_as_their_decimals() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let old = Database::connect(format!("{url}?mode=rwc")).await.unwrap();
    let before =
        Migrator::migrations().iter().position(|m| m.name() == EXACT_DECIMALS).expect("the migration");
    Migrator::up(&old, Some(u32::try_from(before).unwrap())).await.unwrap();
    assert!(!float_decimal_columns(&old).await.is_empty(), "the old schema stores decimals as floats");
    let indexes = index_names(&old).await;

    let (tenant, conversion, affiliate) = (TenantId::new(), ConversionId::new(), uuid::Uuid::new_v4());
    let now = Utc::now();
    let float = |x: f64| Value::Double(Some(x));
    execute(
        &old,
        "INSERT INTO conversions (id, tenant_id, dedupe_key, txn_id, event, status, amount, currency, lots, \
         attributed, journey, payload_hash, payload, occurred_at, received_at, updated_at) \
         VALUES (?, ?, 'txn:T1', 'T1', 'ftd', 'approved', ?, 'EUR', ?, true, '[]', '', '{}', ?, ?, ?)",
        vec![
            conversion.uuid().into(),
            tenant.uuid().into(),
            // What the old code stored for a postback's amount=98765432109.123456.
            float("98765432109.123456".parse().unwrap()),
            Value::Double(None),
            now.into(),
            now.into(),
            now.into(),
        ],
    )
    .await;
    execute(
        &old,
        "INSERT INTO conversion_credits (conversion_id, tenant_id, affiliate_id, share, position) \
         VALUES (?, ?, ?, ?, 0)",
        vec![conversion.uuid().into(), tenant.uuid().into(), affiliate.into(), float(0.333333)],
    )
    .await;
    execute(
        &old,
        "INSERT INTO ledger_entries (id, tenant_id, affiliate_id, conversion_id, kind, tier, amount, currency, \
         source_amount, source_currency, fx_rate, status, period, occurred_at, created_at) \
         VALUES (?, ?, ?, ?, 'cpa', 0, ?, 'USD', ?, 'EUR', ?, 'approved', '2026-11', ?, ?)",
        vec![
            uuid::Uuid::now_v7().into(),
            tenant.uuid().into(),
            affiliate.into(),
            conversion.uuid().into(),
            float(19.99),
            float(18.17),
            float(1.100110011001),
            now.into(),
            now.into(),
        ],
    )
    .await;
    execute(
        &old,
        "INSERT INTO fx_rates (tenant_id, day, from_currency, to_currency, rate, updated_at) \
         VALUES (?, '2026-11-30', 'EUR', 'USD', ?, ?)",
        vec![tenant.uuid().into(), float(1.234567890123), now.into()],
    )
    .await;
    execute(
        &old,
        "INSERT INTO statements (id, tenant_id, affiliate_id, period, currency, opening_carryover, \
         closing_carryover, balance, lines, status, closed_at) \
         VALUES (?, ?, ?, '2026-10', 'USD', ?, ?, ?, '[]', 'closed', ?)",
        vec![
            uuid::Uuid::now_v7().into(),
            tenant.uuid().into(),
            affiliate.into(),
            float(-1234.5),
            float(0.0),
            float(0.1 + 0.2),
            now.into(),
        ],
    )
    .await;
    assert_eq!(texts(&old, "SELECT typeof(amount) FROM conversions").await, ["real"]);
    old.close().await.unwrap();

    // The server's own start-up path: connect, migrate.
    let db = Db::connect(&url, KeyRing::ephemeral()).await.unwrap();
    db.migrate().await.unwrap();

    let raw = Database::connect(url.as_str()).await.unwrap();
    assert_eq!(float_decimal_columns(&raw).await, Vec::<String>::new());
    // Later migrations may add indexes of their own; every earlier one must still be there.
    let after = index_names(&raw).await;
    let missing: Vec<&String> = indexes.iter().filter(|name| !after.contains(name)).collect();
    assert!(missing.is_empty(), "every index is back; missing: {missing:?}");
    // Stored as text at each column's scale. 98765432109.123456 never fitted a float: the float
    // held 98765432109.12346, and that is what it becomes.
    assert_eq!(
        texts(&raw, "SELECT typeof(amount) || ' ' || amount || ' ' || typeof(lots) FROM conversions").await,
        ["text 98765432109.123460 null"]
    );
    assert_eq!(texts(&raw, "SELECT share FROM conversion_credits").await, ["0.333333"]);
    assert_eq!(
        texts(&raw, "SELECT amount || ' ' || source_amount || ' ' || fx_rate FROM ledger_entries").await,
        ["19.990000 18.170000 1.100110011001"]
    );
    assert_eq!(texts(&raw, "SELECT rate FROM fx_rates").await, ["1.234567890123"]);
    assert_eq!(
        texts(&raw, "SELECT opening_carryover || ' ' || closing_carryover || ' ' || balance FROM statements")
            .await,
        ["-1234.500000 0.000000 0.300000"]
    );

    // And read back exactly by the repositories.
    let staff = Scope::staff(tenant);
    let read = Conversions::scoped(&db, staff).get(conversion).await.unwrap();
    assert_eq!(read.amount.map(|a| a.to_string()).as_deref(), Some("98765432109.12346"));
    assert_eq!(read.credits[0].share.to_string(), "0.333333");
    let commission = read.credits[0].commission.expect("the ledger entry's commission");
    assert_eq!(commission.amount.to_string(), "19.99");
    let rates = FxRates::scoped(&db, staff).list().await.unwrap();
    assert_eq!(rates[0].rate.to_string(), "1.234567890123");
}

#[tokio::test]
async fn a_fresh_database_stores_no_decimal_as_a_float() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&sqlite_url(&dir), KeyRing::ephemeral()).await.unwrap();
    db.migrate().await.unwrap();
    let raw = Database::connect(sqlite_url(&dir).as_str()).await.unwrap();
    assert_eq!(
        float_decimal_columns(&raw).await,
        Vec::<String>::new(),
        "a decimal column declared with `decimal_len` is a float on SQLite: declare it `text` there \
         (see m20261202_000007_exact_decimals)"
    );
}
