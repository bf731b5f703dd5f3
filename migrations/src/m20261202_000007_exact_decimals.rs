//! Exact decimals on SQLite. The earlier migrations declared every amount, share, lot count
//! and exchange rate with `decimal_len`, which SQLite turns into `real(p, s)`: a float, so
//! `98765432109.123456` was stored as `98765432109.12346`. Each such column becomes `TEXT`
//! holding the value at its scale (`"19.990000"`), which the persistence crate reads and writes
//! exactly (`ExactDecimal`); see there for why text rather than integer minor units.
//!
//! SQLite cannot change a column's type, so each table with such a column is rebuilt the way
//! SQLite documents (create the new table, copy, drop the old one, rename, recreate its
//! indexes). The new table's statement is the old one with only those columns' types changed,
//! so whatever other migrations gave the table (columns, keys, defaults) stays as it was.
//!
//! Existing floats become the shortest decimal that reads back as the same float (what the
//! float was written from, when it had at most about 15 significant digits: `19.99`, not
//! `19.989999999999998`), rounded to the column's scale.
//!
//! PostgreSQL's columns are `NUMERIC(p, s)` already: nothing to do there.
//!
//! New decimal columns: `decimal_len` on PostgreSQL, `text` on SQLite (a test fails when a
//! `real(p, s)` column appears again).

use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Rows converted per read, so a large table is never held in memory at once.
const PAGE: i64 = 1_000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        let conn = manager.get_connection();
        for (table, create) in tables(conn).await? {
            let decimals = float_decimals(conn, &table).await?;
            if !decimals.is_empty() {
                rebuild(conn, &table, &create, &decimals).await?;
            }
        }
        Ok(())
    }

    /// All tables or none: a failure half-way leaves the database as it was.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// A `real(p, s)` column: its name, declared type and scale.
struct FloatDecimal {
    name: String,
    declared: String,
    scale: u32,
}

fn query(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

/// Every table with the statement that created it.
async fn tables<C: ConnectionTrait>(conn: &C) -> Result<Vec<(String, String)>, DbErr> {
    let rows = conn
        .query_all_raw(query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            vec![],
        ))
        .await?;
    rows.iter().map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?))).collect()
}

/// The table's columns declared `real(p, s)` (a decimal, as sea-query spells it on SQLite); a
/// bare `real` is a float on purpose and stays.
async fn float_decimals<C: ConnectionTrait>(conn: &C, table: &str) -> Result<Vec<FloatDecimal>, DbErr> {
    let rows = conn
        .query_all_raw(query("SELECT name, type FROM pragma_table_info(?) ORDER BY cid", vec![table.into()]))
        .await?;
    let mut found = Vec::new();
    for row in rows {
        let name: String = row.try_get_by_index(0)?;
        let declared: String = row.try_get_by_index(1)?;
        if let Some(scale) = decimal_scale(&declared) {
            found.push(FloatDecimal { name, declared, scale });
        }
    }
    Ok(found)
}

/// `Some(6)` for `real(20, 6)`, `Some(0)` for `real(20)`; `None` for anything else.
fn decimal_scale(declared: &str) -> Option<u32> {
    let inner = declared.trim().to_ascii_lowercase().strip_prefix("real(")?.strip_suffix(')')?.to_owned();
    match inner.split_once(',') {
        Some((_, scale)) => scale.trim().parse().ok(),
        None => inner.trim().parse::<u32>().ok().map(|_| 0),
    }
}

async fn rebuild<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    create: &str,
    decimals: &[FloatDecimal],
) -> Result<(), DbErr> {
    let fail = |what: String| DbErr::Migration(format!("exact decimals, table `{table}`: {what}"));
    let rebuilt = format!("{table}__exact");
    // The column list and constraints, with only the decimals' types changed.
    let mut body =
        create.find('(').map(|at| create[at..].to_owned()).ok_or_else(|| fail("no column list".into()))?;
    for column in decimals {
        let old = format!("\"{}\" {}", column.name, column.declared);
        if body.matches(&old).count() != 1 {
            return Err(fail(format!("cannot find `{old}` in its CREATE TABLE")));
        }
        body = body.replacen(&old, &format!("\"{}\" text", column.name), 1);
    }
    let indexes: Vec<String> = conn
        .query_all_raw(query(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            vec![table.into()],
        ))
        .await?
        .iter()
        .map(|row| row.try_get_by_index(0))
        .collect::<Result<_, _>>()?;
    let columns: Vec<String> = conn
        .query_all_raw(query("SELECT name FROM pragma_table_info(?) ORDER BY cid", vec![table.into()]))
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).map(|name| format!("\"{name}\"")))
        .collect::<Result<_, _>>()?;
    let columns = columns.join(", ");

    conn.execute_unprepared(&format!("CREATE TABLE \"{rebuilt}\" {body}")).await?;
    // The copy keeps each rowid, so the floats can be converted row by row afterwards (storing a
    // float in a text column would keep only SQLite's 15-digit rendering of it).
    conn.execute_unprepared(&format!(
        "INSERT INTO \"{rebuilt}\" (rowid, {columns}) SELECT rowid, {columns} FROM \"{table}\""
    ))
    .await?;
    convert_floats(conn, table, &rebuilt, decimals).await?;
    conn.execute_unprepared(&format!("DROP TABLE \"{table}\"")).await?;
    conn.execute_unprepared(&format!("ALTER TABLE \"{rebuilt}\" RENAME TO \"{table}\"")).await?;
    for index in indexes {
        conn.execute_unprepared(&index).await?;
    }
    Ok(())
}

/// Writes each float of `table` into `rebuilt` as its decimal text.
async fn convert_floats<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    rebuilt: &str,
    decimals: &[FloatDecimal],
) -> Result<(), DbErr> {
    let names: Vec<String> = decimals.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let select = format!(
        "SELECT rowid, {} FROM \"{table}\" WHERE rowid > ? ORDER BY rowid LIMIT {PAGE}",
        names.join(", ")
    );
    let update = format!(
        "UPDATE \"{rebuilt}\" SET {} WHERE rowid = ?",
        names.iter().map(|name| format!("{name} = ?")).collect::<Vec<_>>().join(", ")
    );
    let mut after = i64::MIN;
    loop {
        let rows = conn.query_all_raw(query(&select, vec![after.into()])).await?;
        let Some(last) = rows.last() else { return Ok(()) };
        after = last.try_get_by_index(0)?;
        for row in &rows {
            let rowid: i64 = row.try_get_by_index(0)?;
            let mut values = Vec::with_capacity(decimals.len() + 1);
            for (i, column) in decimals.iter().enumerate() {
                values.push(Value::from(converted(row, i + 1, column).map_err(|what| {
                    DbErr::Migration(format!(
                        "exact decimals, `{table}`.`{}` row {rowid}: {what}",
                        column.name
                    ))
                })?));
            }
            values.push(rowid.into());
            conn.execute_raw(query(&update, values)).await?;
        }
    }
}

fn converted(row: &QueryResult, index: usize, column: &FloatDecimal) -> Result<Option<String>, String> {
    let stored: Option<f64> = row.try_get_by_index(index).map_err(|err| err.to_string())?;
    stored.map(|float| decimal_text(float, column.scale)).transpose()
}

/// The float as the decimal text an exact column holds: the shortest decimal that reads back as
/// the same float (Rust prints exactly that), rounded half away from zero to `scale` places,
/// as PostgreSQL's NUMERIC rounds.
fn decimal_text(float: f64, scale: u32) -> Result<String, String> {
    if !float.is_finite() {
        return Err(format!("{float} is not a number"));
    }
    let shortest = Decimal::from_str(&float.to_string())
        // Beyond 28 digits (tiny or huge floats): the float's own digits, rounded by Rust.
        .or_else(|_| Decimal::from_str(&format!("{float:.prec$}", prec = scale as usize)))
        .map_err(|err| format!("{float} does not fit a decimal: {err}"))?;
    let mut exact = shortest.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
    if exact.is_zero() {
        exact = Decimal::ZERO;
    }
    exact.rescale(scale);
    Ok(exact.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_become_the_decimal_they_were_written_from_at_the_columns_scale() {
        assert_eq!(decimal_text(19.99, 6).unwrap(), "19.990000");
        assert_eq!(decimal_text(0.1 + 0.2, 6).unwrap(), "0.300000");
        assert_eq!(decimal_text(0.333333, 6).unwrap(), "0.333333");
        assert_eq!(decimal_text(-1234.5, 6).unwrap(), "-1234.500000");
        assert_eq!(decimal_text(1.234567890123, 12).unwrap(), "1.234567890123");
        assert_eq!(decimal_text(-0.0, 6).unwrap(), "0.000000");
        assert_eq!(decimal_text(0.0000005, 6).unwrap(), "0.000001");
        // Seventeen significant digits never fitted a float: the nearest the float still knows.
        assert_eq!(decimal_text("98765432109.123456".parse().unwrap(), 6).unwrap(), "98765432109.123460");
        assert_eq!(decimal_text(1e-30, 6).unwrap(), "0.000000");
        assert!(decimal_text(f64::NAN, 6).is_err());
        assert!(decimal_text(1e30, 6).is_err());
    }

    #[test]
    fn only_declared_decimals_have_a_scale() {
        assert_eq!(decimal_scale("real(20, 6)"), Some(6));
        assert_eq!(decimal_scale("REAL(28,12)"), Some(12));
        assert_eq!(decimal_scale("real(20)"), Some(0));
        assert_eq!(decimal_scale("real"), None);
        assert_eq!(decimal_scale("text"), None);
        assert_eq!(decimal_scale("double"), None);
    }
}
