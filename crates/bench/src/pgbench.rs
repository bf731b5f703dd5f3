//! The PostgreSQL baseline of scenario 2, measured in the same run: `pgbench` (it ships with
//! PostgreSQL) inserting single rows, one transaction each, from 16 clients into a scratch
//! table of the bench's own database. Postbacks/s ÷ these inserts/s says how much of what
//! this PostgreSQL can commit the server turns into accepted postbacks.

use std::path::{Path, PathBuf};

use crate::BenchArgs;

pub const CLIENTS: usize = 16;
const SCRATCH_TABLE: &str = "bench_pgbench_scratch";

pub struct Pgbench {
    pub clients: usize,
    pub seconds: u64,
    /// Transactions per second as pgbench reports them (without connection time), or why not.
    pub inserts_per_second: Result<f64, String>,
}

pub async fn inserts_per_second(url: &str, args: &BenchArgs, dir: &Path) -> Pgbench {
    let seconds = args.duration.ceil().max(1.0) as u64;
    eprintln!("scenario 2 baseline: pgbench, single-row inserts from {CLIENTS} clients for {seconds} s");
    Pgbench { clients: CLIENTS, seconds, inserts_per_second: run(url, seconds, dir).await }
}

async fn run(url: &str, seconds: u64, dir: &Path) -> Result<f64, String> {
    let binary =
        binary().ok_or("pgbench not found (neither /usr/lib/postgresql/*/bin/pgbench nor on PATH)")?;
    create_scratch_table(url).await?;
    let script = dir.join("pgbench-insert.sql");
    std::fs::write(
        &script,
        format!("INSERT INTO {SCRATCH_TABLE} (payload) VALUES ('one row, about a postback''s size');\n"),
    )
    .map_err(|err| format!("cannot write {}: {err}", script.display()))?;
    let output = tokio::process::Command::new(&binary)
        .args([
            "--no-vacuum",
            "--client",
            &CLIENTS.to_string(),
            "--jobs",
            "2",
            "--time",
            &seconds.to_string(),
        ])
        .arg("--file")
        .arg(&script)
        .arg(url)
        .output()
        .await
        .map_err(|err| format!("cannot run {}: {err}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("pgbench failed ({}): {}", output.status, stderr.trim()));
    }
    tps(&stdout).ok_or_else(|| format!("no tps in pgbench's output: {}", stdout.trim()))
}

/// The newest PostgreSQL's pgbench, else the one on PATH.
fn binary() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin/pgbench");
            bin.is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("pgbench")).find(|bin| bin.is_file())
}

async fn create_scratch_table(url: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.map_err(|err| format!("cannot connect: {err}"))?;
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {SCRATCH_TABLE} \
         (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), payload text NOT NULL)"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .map_err(|err| format!("cannot create the scratch table: {err}"))?;
    let _ = conn.close().await;
    Ok(())
}

/// `tps = 9194.123456 (without initial connection time)` → 9194.123456.
fn tps(output: &str) -> Option<f64> {
    output
        .lines()
        .filter_map(|line| line.trim().strip_prefix("tps = "))
        .find_map(|rest| rest.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_pgbench_tps() {
        let output = "transaction type: insert.sql\nscaling factor: 1\nnumber of clients: 16\n\
                      latency average = 1.740 ms\ninitial connection time = 20.5 ms\n\
                      tps = 9194.123456 (without initial connection time)\n";
        assert_eq!(super::tps(output), Some(9194.123456));
        assert_eq!(super::tps("pgbench: error"), None);
    }
}
