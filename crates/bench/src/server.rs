//! The processes under test and their databases: a fresh SQLite file or PostgreSQL database,
//! the `clickledger` binary (and the baseline) started on loopback, waited for, stopped.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::Result;

pub const SERVER_READY_PREFIX: &str = "Clickledger listening on ";
/// Session tokens are signed with this; any value of at least 32 bytes does.
pub const JWT_SECRET: &str = "bench-secret-bench-secret-bench-secret-0123";
/// Seals the stored secrets of the bench's own fresh database.
const SECRET_KEY: &str = "62656e63682d62656e63682d62656e63682d62656e63682d62656e63682d3031";
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub enum Database {
    Sqlite { url: String, path: PathBuf },
    Postgres { admin_url: String, name: String, url: String, version: String },
}

impl Database {
    /// `sqlite`, or a PostgreSQL URL on which to create a fresh database.
    pub async fn create(spec: &str, dir: &Path) -> Result<Database> {
        if spec == "sqlite" {
            let path = dir.join("clickledger.db");
            return Ok(Database::Sqlite { url: format!("sqlite://{}", path.display()), path });
        }
        if !(spec.starts_with("postgres://") || spec.starts_with("postgresql://")) {
            return Err(format!("--database must be `sqlite` or a postgres:// URL, not `{spec}`").into());
        }
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(spec)
            .await
            .map_err(|err| format!("cannot connect to {}: {err}", redact(spec)))?;
        let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&mut conn).await?;
        let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .map_err(|err| format!("cannot create database {name}: {err}"))?;
        let _ = conn.close().await;
        let url = replace_database(spec, &name);
        Ok(Database::Postgres { admin_url: spec.to_owned(), name, url, version })
    }

    pub fn url(&self) -> &str {
        match self {
            Database::Sqlite { url, .. } | Database::Postgres { url, .. } => url,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Database::Postgres { .. })
    }

    /// For the report: what the data sits on.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite { path, .. } => {
                let fs = filesystem_of(path).unwrap_or_else(|| "unknown filesystem".into());
                format!("SQLite (WAL, synchronous=FULL), a fresh file on {fs}")
            }
            Database::Postgres { admin_url, version, .. } => {
                format!("PostgreSQL {version} at {}, a fresh database", host_of(admin_url))
            }
        }
    }

    /// Refreshes PostgreSQL's planner statistics of the bench's database, as autovacuum does
    /// about a minute after a table's first writes. SQLite plans without them.
    pub async fn analyze(&self) -> Result {
        if let Database::Postgres { url, .. } = self {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(url).await?;
            sqlx::query("ANALYZE").execute(&mut conn).await?;
            conn.close().await?;
        }
        Ok(())
    }

    /// Drops the PostgreSQL database (forcibly: the server may still hold connections).
    pub async fn drop_database(&self) {
        if let Database::Postgres { admin_url, name, .. } = self {
            use sqlx::Connection;
            match sqlx::PgConnection::connect(admin_url).await {
                Ok(mut conn) => {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    if let Err(err) = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await {
                        eprintln!("warning: cannot drop database {name}: {err}");
                    }
                    let _ = conn.close().await;
                }
                Err(err) => eprintln!("warning: cannot connect to drop database {name}: {err}"),
            }
        }
    }
}

/// A child process that announced its address on standard output.
pub struct Process {
    pub name: &'static str,
    pub base: String,
    pub addr: SocketAddr,
    pub pid: u32,
    pub log: PathBuf,
    child: Child,
}

impl Process {
    /// Starts `program args…`, standard error to `log`, and waits for the stdout line
    /// `<ready_prefix>http://ADDR`.
    pub async fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        log: PathBuf,
        ready_prefix: &str,
    ) -> Result<Process> {
        let stderr = File::create(&log).map_err(|err| format!("cannot create {}: {err}", log.display()))?;
        let mut child = Command::new(program)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", program.display()))?;
        let pid = child.id().ok_or("the process exited at once")?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        let waited = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix(ready_prefix) {
                    return Ok::<_, std::io::Error>(Some(rest.trim().to_owned()));
                }
                seen.push(line);
            }
            Ok(None)
        })
        .await;
        let base = match waited {
            Ok(Ok(Some(base))) => base,
            Ok(Ok(None)) | Ok(Err(_)) => {
                return Err(format!(
                    "{name} exited before listening; stdout: {seen:?}; stderr: {}",
                    tail(&log, 20)
                )
                .into());
            }
            Err(_) => return Err(format!("{name} did not start within {START_TIMEOUT:?}").into()),
        };
        // Keep draining standard output so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let addr: SocketAddr = base
            .strip_prefix("http://")
            .and_then(|hostport| hostport.parse().ok())
            .ok_or_else(|| format!("{name} announced an address I cannot parse: {base}"))?;
        Ok(Process { name, base, addr, pid, log, child })
    }

    /// SIGTERM, then a clean exit within 30 s (killed otherwise). True if it exited cleanly.
    pub async fn stop(mut self) -> bool {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => {
                eprintln!("warning: {} did not stop within 30 s; killing it", self.name);
                let _ = self.child.kill().await;
                false
            }
        }
    }

    /// Lines the process wrote to standard error so far.
    pub fn log_lines(&self) -> usize {
        std::fs::read_to_string(&self.log).map(|text| text.lines().count()).unwrap_or(0)
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The arguments that start the server under test.
pub fn server_args(database_url: &str) -> Vec<String> {
    [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        database_url,
        "--jwt-secret",
        JWT_SECRET,
        "--secret-key",
        SECRET_KEY,
        "--no-demo",
        // The load is one API key and one owner: the per-key and per-user limits would
        // measure themselves, not the server.
        "--postbacks-per-minute-per-key",
        "0",
        "--graphql-requests-per-minute",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn replace_database(url: &str, name: &str) -> String {
    let (without_query, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = without_query.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match without_query[scheme_end..].find('/') {
        Some(slash) => &without_query[..scheme_end + slash],
        None => without_query,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// `host:port` of a URL, without credentials.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    let rest = rest.split(['/', '?']).next().unwrap_or(rest);
    rest.rsplit_once('@').map(|(_, host)| host).unwrap_or(rest).to_owned()
}

fn redact(url: &str) -> String {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme).unwrap_or("postgres");
    format!("{scheme}://{}", host_of(url))
}

/// The filesystem type holding `path`, from /proc/mounts (the longest matching mount point).
fn filesystem_of(path: &Path) -> Option<String> {
    let path = path.parent().unwrap_or(path).canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_device, mount_point, fs) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(mount_point).then(|| (mount_point.len(), format!("{fs} ({mount_point})")))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs)| fs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/test", "bench_x"),
            "postgres://postgres@127.0.0.1:5432/bench_x"
        );
        assert_eq!(
            replace_database("postgres://u:p@localhost/test?sslmode=disable", "b"),
            "postgres://u:p@localhost/b?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://localhost", "b"), "postgres://localhost/b");
        assert_eq!(host_of("postgres://u:secret@db:5432/test?x=1"), "db:5432");
        assert_eq!(redact("postgres://u:secret@db/test"), "postgres://db");
    }
}
