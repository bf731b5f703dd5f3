//! Another tracker's click IDs (`clicks.csv` of an import): each names the old link it was
//! made on and when, so that a postback carrying the old tracker's click ID (sent for a visitor
//! who clicked before the cut-over) is attributed through that link, as a click of ours would
//! be. Here a file's rows become valid foreign clicks, or problems naming file and line;
//! whether each code is a link of the tenant only the database can tell.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::migration::{Columns, ImportError, Lined, link_code};

pub const CLICKS: &str = "clicks.csv";

pub const CLICK_COLUMNS: Columns = Columns {
    required: &["click_id", "tracking_code", "clicked_at"],
    optional: &["sub1", "sub2", "sub3", "sub4", "sub5"],
};

/// As long as a postback's `click_id` may be, so that every imported ID can be asked for.
const MAX_CLICK_ID: usize = crate::postback::MAX_ID_LEN;
/// As long as a sub-ID recorded on a click here may be.
const MAX_SUB: usize = 256;

#[derive(Debug, Clone, Deserialize)]
pub struct ClickRow {
    pub click_id: String,
    pub tracking_code: String,
    pub clicked_at: String,
    #[serde(default)]
    pub sub1: String,
    #[serde(default)]
    pub sub2: String,
    #[serde(default)]
    pub sub3: String,
    #[serde(default)]
    pub sub4: String,
    #[serde(default)]
    pub sub5: String,
}

/// One valid row of `clicks.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignClick {
    pub line: u64,
    pub click_id: String,
    pub tracking_code: String,
    pub clicked_at: DateTime<Utc>,
    pub subs: [Option<String>; 5],
}

/// Checks each row on its own and the click IDs' uniqueness in the file; every problem is
/// reported, with its line.
pub fn validate(rows: &[Lined<ClickRow>]) -> (Vec<ForeignClick>, Vec<ImportError>) {
    let mut errors = Vec::new();
    let mut clicks = Vec::with_capacity(rows.len());
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for Lined { line, row } in rows {
        let mut fail = |message: String| errors.push(ImportError::new(CLICKS, *line, message));
        let click_id = row.click_id.trim();
        if click_id.is_empty() || click_id.len() > MAX_CLICK_ID || click_id.chars().any(char::is_control) {
            fail(format!("click_id must be 1–{MAX_CLICK_ID} bytes without control characters"));
            continue;
        }
        if let Some(first) = seen.insert(click_id, *line) {
            fail(format!("duplicate click_id `{click_id}` (first on line {first})"));
            continue;
        }
        let code = link_code(&row.tracking_code).map_err(|reason| format!("tracking_code: {reason}"));
        let clicked_at = DateTime::parse_from_rfc3339(row.clicked_at.trim())
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| format!("clicked_at `{}` is not an RFC 3339 time", row.clicked_at.trim()));
        let mut subs: [Option<String>; 5] = Default::default();
        let mut sub_errors = Vec::new();
        for (n, (slot, raw)) in
            subs.iter_mut().zip([&row.sub1, &row.sub2, &row.sub3, &row.sub4, &row.sub5]).enumerate()
        {
            let value = raw.trim();
            if value.len() > MAX_SUB || value.chars().any(char::is_control) {
                sub_errors
                    .push(format!("sub{} must be at most {MAX_SUB} bytes without control characters", n + 1));
            }
            *slot = (!value.is_empty()).then(|| value.to_owned());
        }
        match (code, clicked_at) {
            (Ok(tracking_code), Ok(clicked_at)) if sub_errors.is_empty() => clicks.push(ForeignClick {
                line: *line,
                click_id: click_id.to_owned(),
                tracking_code,
                clicked_at,
                subs,
            }),
            (code, clicked_at) => {
                for err in [code.err(), clicked_at.err()].into_iter().flatten().chain(sub_errors) {
                    fail(err);
                }
            }
        }
    }
    (clicks, errors)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn row(line: u64, id: &str, code: &str, at: &str, sub1: &str) -> Lined<ClickRow> {
        Lined {
            line,
            row: ClickRow {
                click_id: id.into(),
                tracking_code: code.into(),
                clicked_at: at.into(),
                sub1: sub1.into(),
                sub2: String::new(),
                sub3: String::new(),
                sub4: String::new(),
                sub5: String::new(),
            },
        }
    }

    #[test]
    fn valid_rows_become_clicks_and_bad_ones_name_their_line() {
        let (clicks, errors) = validate(&[
            row(2, "kt-1", "NL-casino_01", "2026-06-01T10:00:00Z", " spring "),
            row(3, "kt-1", "NL-casino_01", "2026-06-01T10:00:00Z", ""),
            row(4, "kt-2", "bad/code", "yesterday", ""),
            row(5, "", "NL-casino_01", "2026-06-01T10:00:00Z", ""),
        ]);
        assert_eq!(clicks.len(), 1);
        assert_eq!(clicks[0].subs[0].as_deref(), Some("spring"));
        assert_eq!(clicks[0].clicked_at.to_rfc3339(), "2026-06-01T10:00:00+00:00");
        let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            [
                "clicks.csv:3: duplicate click_id `kt-1` (first on line 2)",
                "clicks.csv:4: tracking_code: code `bad/code` must be 1–32 of A-Z a-z 0-9 - _",
                "clicks.csv:4: clicked_at `yesterday` is not an RFC 3339 time",
                "clicks.csv:5: click_id must be 1–128 bytes without control characters",
            ]
        );
    }

    proptest! {
        /// Every row is either a click or at least one error on its own line, never both.
        #[test]
        fn each_row_is_a_click_or_an_error(rows in proptest::collection::vec((".{0,12}", "[A-Za-z0-9_/-]{0,6}", prop_oneof![Just("2026-01-01T00:00:00Z".to_owned()), ".{0,8}"]), 0..20)) {
            let lined: Vec<_> = rows.iter().enumerate().map(|(i, (id, code, at))| row(i as u64 + 2, id, code, at, "")).collect();
            let (clicks, errors) = validate(&lined);
            for line in 2..(rows.len() as u64 + 2) {
                let ok = clicks.iter().filter(|c| c.line == line).count();
                let bad = errors.iter().any(|e| e.line == line);
                prop_assert!(ok + usize::from(bad) == 1, "line {line}: {ok} clicks, errors {bad}");
            }
        }
    }
}
