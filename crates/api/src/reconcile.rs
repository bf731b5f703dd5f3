//! Reconciling a parallel run, for the `reconcile` query and `POST /reports/reconcile.csv`:
//! the old system's conversions file (CSV text, the columns `docs/MIGRATION.md` lists)
//! against the tenant's own conversions of the period.

use chrono::{DateTime, Utc};
use clickledger_domain::migration::ImportErrors;
use clickledger_domain::reconcile::{self, Report};
use clickledger_persistence::{Db, Scope};

use crate::Error;

/// Longest period compared at once (as for `stats`).
const MAX_DAYS: i64 = 400;

/// Checks the period and the file (every problem named `conversions.csv:LINE`, under
/// `field`), then compares.
pub async fn run(
    db: &Db,
    scope: Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    theirs: &[u8],
    field: &'static str,
) -> Result<Report, Error> {
    if to <= from {
        return Err(Error::bad_input("to", "must be after from"));
    }
    if to - from > chrono::Duration::days(MAX_DAYS) {
        return Err(Error::bad_input("to", format!("must be at most {MAX_DAYS} days after from")));
    }
    // Staff only, before the file is even read.
    let ours = clickledger_persistence::reconcile::our_transactions(db, scope, from, to).await?;
    let mut errors = Vec::new();
    let rows = crate::import::parse(reconcile::THEIRS, Some(theirs), reconcile::THEIR_COLUMNS, &mut errors);
    let theirs = match reconcile::validate(&rows) {
        Ok(theirs) if errors.is_empty() => theirs,
        Ok(_) => return Err(Error::bad_input(field, ImportErrors(errors).to_string())),
        Err(more) => {
            errors.extend(more);
            return Err(Error::bad_input(field, ImportErrors(errors).to_string()));
        }
    };
    Ok(reconcile::reconcile(from, to, theirs, ours))
}
