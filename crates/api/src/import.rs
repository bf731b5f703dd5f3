//! `clickledger import`: reads another tracker's export (the CSV files `docs/MIGRATION.md`
//! documents) from a directory, has the domain validate it as a whole, and writes it into one
//! tenant in one transaction. Every problem is listed with its file and line, and then
//! nothing is written.

use std::path::Path;

use clickledger_domain::click_map;
use clickledger_domain::ids::TenantId;
use clickledger_domain::migration::{self, Columns, Export, ImportError, ImportErrors, Lined, check_header};
use clickledger_persistence::Db;
use clickledger_persistence::directory::Directory;
use clickledger_persistence::import::{ImportSummary, Tally};
use serde::de::DeserializeOwned;

use crate::cli::anyhow_like;

pub struct ImportArgs<'a> {
    pub tenant: &'a str,
    pub dir: &'a Path,
    pub source: Option<&'a str>,
    pub dry_run: bool,
}

pub async fn run(db: &Db, args: ImportArgs<'_>) -> anyhow_like::Result<String> {
    let slug = args.tenant.trim().to_lowercase();
    let tenant = match Directory::new(db).tenant_by_slug(&slug).await {
        Ok(tenant) => tenant,
        Err(clickledger_persistence::Error::NotFound) => return Err(format!("no tenant `{slug}`").into()),
        Err(err) => return Err(err.into()),
    };
    if !args.dir.is_dir() {
        return Err(format!("{} is not a directory", args.dir.display()).into());
    }
    let source = match args.source {
        Some(source) => source.trim().to_owned(),
        None => args
            .dir
            .canonicalize()
            .ok()
            .and_then(|dir| dir.file_name().map(|name| name.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "another tracker".to_owned()),
    };
    let summary = import_export(db, tenant.id, read_export(args.dir), &source, args.dry_run).await?;
    Ok(render(&slug, &summary))
}

/// Validates an export as read (with the problems found reading it) and imports it: every
/// problem at once, the files' own (unreadable rows, columns) and the program's, or what
/// only the database can tell. Shared by the CLI and the `importProgram` job.
pub async fn import_export(
    db: &Db,
    tenant: TenantId,
    (export, mut errors): (Export, Vec<ImportError>),
    source: &str,
    dry_run: bool,
) -> Result<ImportSummary, clickledger_persistence::Error> {
    let known = clickledger_persistence::import::known(db, tenant).await?;
    let program = match migration::validate(&export, &known) {
        Ok(program) if errors.is_empty() => program,
        Ok(_) => return Err(ImportErrors(errors).into()),
        Err(ImportErrors(more)) => {
            errors.extend(more);
            errors.sort_by_key(|e| (migration::file_order(e.file), e.line));
            return Err(ImportErrors(errors).into());
        }
    };
    clickledger_persistence::import::import(db, tenant, &program, source, dry_run).await
}

/// Reads every file of the export that is present (an absent file imports nothing of its
/// kind), with the problems of every file; a file whose header is wrong yields no rows.
pub fn read_export(dir: &Path) -> (Export, Vec<ImportError>) {
    let mut errors = Vec::new();
    let export = Export {
        affiliates: read(dir, migration::AFFILIATES, migration::AFFILIATE_COLUMNS, &mut errors),
        campaigns: read(dir, migration::CAMPAIGNS, migration::CAMPAIGN_COLUMNS, &mut errors),
        links: read(dir, migration::LINKS, migration::LINK_COLUMNS, &mut errors),
        players: read(dir, migration::PLAYERS, migration::PLAYER_COLUMNS, &mut errors),
        balances: read(dir, migration::BALANCES, migration::BALANCE_COLUMNS, &mut errors),
        plans: read(dir, migration::PLANS, migration::PLAN_COLUMNS, &mut errors),
        assignments: read(dir, migration::ASSIGNMENTS, migration::ASSIGNMENT_COLUMNS, &mut errors),
        history: read(dir, migration::CONVERSIONS, migration::CONVERSION_COLUMNS, &mut errors),
        clicks: read(dir, click_map::CLICKS, click_map::CLICK_COLUMNS, &mut errors),
    };
    (export, errors)
}

/// The files an export may have, in the order they are imported.
pub const FILES: [&str; 9] = [
    migration::AFFILIATES,
    migration::CAMPAIGNS,
    migration::LINKS,
    migration::PLAYERS,
    migration::BALANCES,
    migration::PLANS,
    migration::ASSIGNMENTS,
    migration::CONVERSIONS,
    click_map::CLICKS,
];

/// Reads an export handed over as (file name, contents) pairs, as `importProgram` takes it:
/// the same rules as files of a directory; a name that is none of [`FILES`], or one given
/// twice, is an error.
pub fn export_of_files(files: &[(String, String)]) -> (Export, Vec<ImportError>) {
    let mut errors = Vec::new();
    let mut given: Vec<&'static str> = Vec::new();
    for (name, _) in files {
        match FILES.iter().find(|known| **known == name.trim()) {
            Some(known) if given.contains(known) => {
                errors.push(ImportError::new(known, 0, "given twice"));
            }
            Some(known) => given.push(known),
            None => errors.push(ImportError::new(
                "files",
                0,
                format!("unknown file `{}` (expected one of {})", name.trim(), FILES.join(", ")),
            )),
        }
    }
    let bytes =
        |file: &str| files.iter().find(|(name, _)| name.trim() == file).map(|(_, text)| text.as_bytes());
    let export = Export {
        affiliates: parse(
            migration::AFFILIATES,
            bytes(migration::AFFILIATES),
            migration::AFFILIATE_COLUMNS,
            &mut errors,
        ),
        campaigns: parse(
            migration::CAMPAIGNS,
            bytes(migration::CAMPAIGNS),
            migration::CAMPAIGN_COLUMNS,
            &mut errors,
        ),
        links: parse(migration::LINKS, bytes(migration::LINKS), migration::LINK_COLUMNS, &mut errors),
        players: parse(migration::PLAYERS, bytes(migration::PLAYERS), migration::PLAYER_COLUMNS, &mut errors),
        balances: parse(
            migration::BALANCES,
            bytes(migration::BALANCES),
            migration::BALANCE_COLUMNS,
            &mut errors,
        ),
        plans: parse(migration::PLANS, bytes(migration::PLANS), migration::PLAN_COLUMNS, &mut errors),
        assignments: parse(
            migration::ASSIGNMENTS,
            bytes(migration::ASSIGNMENTS),
            migration::ASSIGNMENT_COLUMNS,
            &mut errors,
        ),
        history: parse(
            migration::CONVERSIONS,
            bytes(migration::CONVERSIONS),
            migration::CONVERSION_COLUMNS,
            &mut errors,
        ),
        clicks: parse(click_map::CLICKS, bytes(click_map::CLICKS), click_map::CLICK_COLUMNS, &mut errors),
    };
    (export, errors)
}

fn read<T: DeserializeOwned>(
    dir: &Path,
    file: &'static str,
    columns: Columns,
    errors: &mut Vec<ImportError>,
) -> Vec<Lined<T>> {
    let path = dir.join(file);
    if !path.exists() {
        return Vec::new();
    }
    match std::fs::read(&path) {
        Ok(bytes) => parse(file, Some(&bytes), columns, errors),
        Err(err) => {
            errors.push(ImportError::new(file, 0, format!("cannot read: {err}")));
            Vec::new()
        }
    }
}

/// The rows of one CSV file's contents (`file` names it in the errors): the header checked
/// against `columns`, each row with its line; `None`, an absent file, has none, and so does
/// a file whose header is wrong.
pub fn parse<T: DeserializeOwned>(
    file: &'static str,
    bytes: Option<&[u8]>,
    columns: Columns,
    errors: &mut Vec<ImportError>,
) -> Vec<Lined<T>> {
    let Some(bytes) = bytes else { return Vec::new() };
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
    let header = match reader.headers() {
        Ok(header) => header.clone(),
        Err(err) => {
            errors.push(ImportError::new(file, 1, format!("cannot read the header: {}", csv_reason(&err))));
            return Vec::new();
        }
    };
    let names: Vec<&str> = header.iter().collect();
    let header_errors = check_header(file, &names, columns);
    if !header_errors.is_empty() {
        errors.extend(header_errors);
        return Vec::new();
    }
    let mut lines = Lines::new(bytes);
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| lines.at(p.byte())).unwrap_or(0);
                match record.deserialize::<T>(Some(&header)) {
                    Ok(row) => rows.push(Lined { line, row }),
                    Err(err) => errors.push(ImportError::new(file, line, csv_reason(&err))),
                }
            }
            Err(err) => {
                let line = err.position().map(|p| lines.at(p.byte())).unwrap_or(0);
                let fatal = matches!(err.kind(), csv::ErrorKind::Io(_));
                errors.push(ImportError::new(file, line, csv_reason(&err)));
                if fatal {
                    break;
                }
            }
        }
    }
    rows
}

/// Line numbers of records, from the byte offsets the csv reader gives. The reader's offset
/// is where it started reading, before the empty lines it skips, so those are stepped over
/// here; counting goes forward from the last record, never from the file's start again.
struct Lines<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Lines { bytes, offset: 0, line: 1 }
    }

    fn at(&mut self, byte: u64) -> u64 {
        let start = usize::try_from(byte).unwrap_or(usize::MAX).min(self.bytes.len());
        if start < self.offset {
            (self.offset, self.line) = (0, 1);
        }
        self.line += self.bytes[self.offset..start].iter().filter(|&&b| b == b'\n').count() as u64;
        self.offset = start;
        let mut line = self.line;
        for &b in self.bytes[start..].iter().take_while(|&&b| b == b'\n' || b == b'\r') {
            if b == b'\n' {
                line += 1;
            }
        }
        line
    }
}

/// The csv crate's message without its own position (we print file and line ourselves).
fn csv_reason(err: &csv::Error) -> String {
    match err.kind() {
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(_) => err.kind().to_string(),
            None => err.to_string(),
        },
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("has {len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_owned(),
        _ => err.to_string(),
    }
}

fn render(slug: &str, summary: &ImportSummary) -> String {
    let line = |what: &str, tally: &Tally| {
        format!(
            "  {what:<11} {} created, {} updated, {} unchanged\n",
            tally.created, tally.updated, tally.unchanged
        )
    };
    let mut out = if summary.dry_run {
        format!("Dry run for tenant `{slug}`: nothing was written. The import would change:\n")
    } else {
        format!("Imported into tenant `{slug}`:\n")
    };
    for (what, tally) in summary.tallies() {
        out += &line(what, tally);
    }
    if summary.dry_run && !summary.changes.is_empty() {
        out += "Changes:\n";
        for change in &summary.changes {
            out += &format!("  {change}\n");
        }
    }
    if !summary.kept_players.is_empty() {
        out += &format!("  kept as bound here already: {}\n", summary.kept_players.join(", "));
    }
    if !summary.kept_conversions.is_empty() {
        out += &format!("  kept as received here already: {}\n", summary.kept_conversions.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export_of(files: &[(&str, &str)]) -> (Export, Vec<String>) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write a fixture");
        }
        let (export, errors) = read_export(dir.path());
        (export, errors.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn rows_keep_their_lines_through_quotes_blank_lines_and_a_byte_order_mark() {
        let (export, errors) = export_of(&[(
            "affiliates.csv",
            "\u{feff}external_id,name,email\n\
             a1,\"Media, Ltd\",a1@x.test\n\
             \n\
             a2,\"Two\nLines\",a2@x.test\n\
             a3, Padded ,a3@x.test\n",
        )]);
        assert_eq!(errors, Vec::<String>::new());
        let rows: Vec<(u64, &str, &str)> = export
            .affiliates
            .iter()
            .map(|r| (r.line, r.row.external_id.as_str(), r.row.name.as_str()))
            .collect();
        assert_eq!(rows, [(2, "a1", "Media, Ltd"), (4, "a2", "Two\nLines"), (6, "a3", "Padded")]);
    }

    #[test]
    fn files_given_as_text_read_as_a_directory_does() {
        let file = |name: &str, text: &str| (name.to_owned(), text.to_owned());
        let (export, errors) = export_of_files(&[
            file("plans.csv", "plan_external_id,name,currency,rule,amount\np1,Plan,EUR,cpl,5\n"),
            file(" conversions.csv ", "txn_id,event,occurred_at\n\nt1,registration,2026-01-01T00:00:00Z\n"),
            file("plans.csv", "plan_external_id,name,currency,rule\n"),
            file("notes.txt", "hello"),
        ]);
        let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            [
                "plans.csv:0: given twice",
                "files:0: unknown file `notes.txt` (expected one of affiliates.csv, campaigns.csv, links.csv, \
                 players.csv, balances.csv, plans.csv, assignments.csv, conversions.csv, clicks.csv)",
            ]
        );
        assert_eq!(export.plans.len(), 1);
        assert_eq!(export.history.iter().map(|r| r.line).collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn unreadable_rows_and_headers_are_errors_with_their_lines() {
        let (export, errors) = export_of(&[
            ("links.csv", "code,affiliate_external_id,campaign_external_id\nA1,a,c\nA2,a\nA3,a,c\n"),
            ("players.csv", "player_id,affiliate\np1,a\n"),
        ]);
        assert_eq!(export.links.len(), 2);
        assert_eq!(
            errors,
            [
                "links.csv:3: has 2 fields where the header has 3",
                "players.csv:1: missing column `affiliate_external_id`",
                "players.csv:1: missing column `bound_at`",
                "players.csv:1: unknown column `affiliate`",
            ]
        );
    }
}
