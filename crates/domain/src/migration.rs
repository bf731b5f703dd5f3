//! Importing a program exported from another tracker: the rows of the documented CSV files
//! (`docs/MIGRATION.md`) and the decisions about them. Reading the files is the edge's job;
//! here a set of rows, each with its file and line, becomes a [`Program`] that is valid as a
//! whole (unique external IDs, known references, no cycle in the hierarchy, known currencies,
//! exact amounts), or the list of every problem found, each naming its file and line.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::money::{Currency, Money};
use crate::period::Period;
use crate::status::{ActiveStatus, CampaignStatus};
use crate::validate;

mod facts;
mod history;
mod plans;
pub use facts::{HistoryDeposits, cpa_paid_after_import, history_deposits, with_history_deposits};
pub use history::{CONVERSION_COLUMNS, CONVERSIONS, ConversionRow, HistoryConversion};
pub use plans::{
    ASSIGNMENT_COLUMNS, ASSIGNMENTS, AssignmentRow, ImportedAssignment, ImportedPlan, PLAN_COLUMNS, PLANS,
    PlanRow,
};

pub const AFFILIATES: &str = "affiliates.csv";
pub const CAMPAIGNS: &str = "campaigns.csv";
pub const LINKS: &str = "links.csv";
pub const PLAYERS: &str = "players.csv";
pub const BALANCES: &str = "balances.csv";

/// One problem in the export: where it is and what is wrong. Line 1 is the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ImportError {
    pub file: &'static str,
    pub line: u64,
    pub message: String,
}

impl ImportError {
    pub fn new(file: &'static str, line: u64, message: impl Into<String>) -> Self {
        ImportError { file, line, message: message.into() }
    }
}

/// Every problem of one import; nothing is written while there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.0))]
pub struct ImportErrors(pub Vec<ImportError>);

fn render(errors: &[ImportError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("the export has {} error(s), nothing was written:\n{}", errors.len(), lines.join("\n"))
}

/// A file's columns: those it must have and those it may have. Any other column is an error,
/// so that a misspelt optional column is not silently ignored.
#[derive(Debug, Clone, Copy)]
pub struct Columns {
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
}

pub const AFFILIATE_COLUMNS: Columns =
    Columns { required: &["external_id", "name", "email"], optional: &["parent_external_id", "status"] };
pub const CAMPAIGN_COLUMNS: Columns =
    Columns { required: &["external_id", "name", "landing_url"], optional: &["fallback_url", "status"] };
pub const LINK_COLUMNS: Columns =
    Columns { required: &["code", "affiliate_external_id", "campaign_external_id"], optional: &[] };
pub const PLAYER_COLUMNS: Columns = Columns {
    required: &["player_id", "affiliate_external_id", "bound_at"],
    optional: &["tracking_code", "cpa_paid"],
};
pub const BALANCE_COLUMNS: Columns = Columns {
    required: &["affiliate_external_id", "currency"],
    optional: &["open_balance", "revshare_carryover", "period"],
};

/// Checks a file's header row against its [`Columns`]: each missing required column and
/// each unknown or repeated column is an error on line 1.
pub fn check_header(file: &'static str, header: &[&str], columns: Columns) -> Vec<ImportError> {
    let mut errors = Vec::new();
    for required in columns.required {
        if !header.iter().any(|h| h.trim() == *required) {
            errors.push(ImportError::new(file, 1, format!("missing column `{required}`")));
        }
    }
    let mut seen = HashSet::new();
    for found in header {
        let found = found.trim();
        if !columns.required.contains(&found) && !columns.optional.contains(&found) {
            errors.push(ImportError::new(file, 1, format!("unknown column `{found}`")));
        } else if !seen.insert(found) {
            errors.push(ImportError::new(file, 1, format!("column `{found}` appears twice")));
        }
    }
    errors
}

// ---- rows, as read ------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
pub struct AffiliateRow {
    pub external_id: String,
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub parent_external_id: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CampaignRow {
    pub external_id: String,
    pub name: String,
    pub landing_url: String,
    #[serde(default)]
    pub fallback_url: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LinkRow {
    pub code: String,
    pub affiliate_external_id: String,
    pub campaign_external_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlayerRow {
    pub player_id: String,
    pub affiliate_external_id: String,
    pub bound_at: String,
    #[serde(default)]
    pub tracking_code: String,
    /// `true` when the old system already paid CPA for the player; empty is `false`.
    #[serde(default)]
    pub cpa_paid: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BalanceRow {
    pub affiliate_external_id: String,
    pub currency: String,
    #[serde(default)]
    pub open_balance: String,
    #[serde(default)]
    pub revshare_carryover: String,
    /// `YYYY-MM`: the first month settled here (see [`Opening::period`]).
    #[serde(default)]
    pub period: String,
}

/// A row with the line it was read from.
#[derive(Debug, Clone)]
pub struct Lined<T> {
    pub line: u64,
    pub row: T,
}

/// Every row of an export, as read.
#[derive(Debug, Clone, Default)]
pub struct Export {
    pub affiliates: Vec<Lined<AffiliateRow>>,
    pub campaigns: Vec<Lined<CampaignRow>>,
    pub links: Vec<Lined<LinkRow>>,
    pub players: Vec<Lined<PlayerRow>>,
    pub balances: Vec<Lined<BalanceRow>>,
    pub plans: Vec<Lined<PlanRow>>,
    pub assignments: Vec<Lined<AssignmentRow>>,
    pub history: Vec<Lined<ConversionRow>>,
    pub clicks: Vec<Lined<crate::click_map::ClickRow>>,
}

/// What the database already holds that rows may refer to: external IDs imported earlier.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub affiliates: HashSet<String>,
    pub campaigns: HashSet<String>,
    pub plans: HashSet<String>,
    /// The tenant's current month: a balance cannot open a later one.
    pub this_month: Option<Period>,
}

// ---- the program, validated ---------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affiliate {
    pub line: u64,
    pub external_id: String,
    pub name: String,
    pub email: String,
    pub parent: Option<String>,
    pub status: ActiveStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub line: u64,
    pub external_id: String,
    pub name: String,
    pub landing_url: String,
    pub fallback_url: Option<String>,
    pub status: CampaignStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub line: u64,
    pub code: String,
    pub affiliate: String,
    pub campaign: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Player {
    pub line: u64,
    pub player_id: String,
    pub affiliate: String,
    pub bound_at: DateTime<Utc>,
    /// The campaign of the old tracking code, when the row names one.
    pub campaign: Option<String>,
    pub tracking_code: Option<String>,
    /// The old system already paid CPA for the player: none is ever booked for it here.
    pub cpa_paid: bool,
}

/// What an opening ledger entry carries over from the old system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpeningKind {
    OpenBalance,
    RevshareCarryover,
}

impl OpeningKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpeningKind::OpenBalance => "open balance",
            OpeningKind::RevshareCarryover => "revshare carryover",
        }
    }

    fn key(self) -> &'static str {
        match self {
            OpeningKind::OpenBalance => "balance",
            OpeningKind::RevshareCarryover => "carryover",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub line: u64,
    pub affiliate: String,
    pub kind: OpeningKind,
    pub amount: Money,
    /// The first month settled here, whose statement carries the opening: an open balance is
    /// booked in it, a revshare carryover opens its netting. `None`: the current month.
    pub period: Option<Period>,
}

/// A revshare carryover opens the netting of its first month here. Once that month's
/// statement is paid, with the carryover settled in it, the figure can no longer change.
pub fn carryover_may_change(first_month: Period, first_month_paid: bool) -> Result<(), String> {
    if first_month_paid {
        return Err(format!(
            "the statement of {first_month} is paid: the revshare carryover it opened can no longer change"
        ));
    }
    Ok(())
}

impl Opening {
    /// Stable across runs, so that a re-run finds (and updates) the entry it wrote before.
    pub fn external_id(&self) -> String {
        format!("{}:{}:{}", self.kind.key(), self.affiliate, self.amount.currency.code())
    }
}

/// A valid export. Affiliates come parents first, so each can be written after its parent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Program {
    pub affiliates: Vec<Affiliate>,
    pub campaigns: Vec<Campaign>,
    pub links: Vec<Link>,
    pub players: Vec<Player>,
    pub openings: Vec<Opening>,
    pub plans: Vec<ImportedPlan>,
    pub assignments: Vec<ImportedAssignment>,
    /// Conversion history: shown and counted, no commission booked.
    pub history: Vec<HistoryConversion>,
    /// The history's deposits, per player and currency, for the players' commission facts.
    pub history_deposits: Vec<HistoryDeposits>,
    /// Another tracker's click IDs (`clicks.csv`), validated by [`crate::click_map`].
    pub clicks: Vec<crate::click_map::ForeignClick>,
}

const MAX_EXTERNAL_ID: usize = 100;
const MAX_CODE: usize = 32;
const MAX_PLAYER_ID: usize = 200;

/// An external ID: trimmed, 1–100 characters, no control characters.
fn external_id(raw: &str) -> Result<String, String> {
    let id = raw.trim();
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.chars().count() > MAX_EXTERNAL_ID || id.chars().any(char::is_control) {
        return Err(format!("must be at most {MAX_EXTERNAL_ID} characters without control characters"));
    }
    Ok(id.to_owned())
}

/// A tracking code the redirect can answer: 1–32 of `A-Z a-z 0-9 - _`.
pub fn link_code(raw: &str) -> Result<String, String> {
    let code = raw.trim();
    let valid = !code.is_empty() && code.len() <= MAX_CODE && validate::is_link_code(code);
    if valid {
        Ok(code.to_owned())
    } else {
        Err(format!("code `{code}` must be 1–{MAX_CODE} of A-Z a-z 0-9 - _"))
    }
}

/// An amount column: empty is zero; otherwise a plain decimal rounded to the currency's
/// minor unit (an export that carries fractions of a cent is wrong, not ours to round).
fn amount(raw: &str, column: &'static str, currency: Currency) -> Result<Money, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Money::zero(currency));
    }
    let value: Decimal = raw.parse().map_err(|_| format!("{column}: `{raw}` is not a decimal number"))?;
    let money = Money::from_input(value, currency, column).map_err(|err| err.to_string())?;
    if !money.is_rounded() {
        return Err(format!("{column}: `{raw}` has more than {} decimal places", currency.exponent()));
    }
    Ok(money)
}

/// A balance's first month here: empty for the current one; never a later one, whose
/// statement could not be closed before the months in between.
fn opening_period(raw: &str, this_month: Option<Period>) -> Result<Option<Period>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let period =
        Period::parse(raw, "period").map_err(|_| format!("period: `{raw}` is not a month (YYYY-MM)"))?;
    match this_month {
        Some(current) if period > current => {
            Err(format!("period: `{raw}` is after the current month {current}"))
        }
        _ => Ok(Some(period)),
    }
}

/// A yes/no column: `true`, `false` or empty (`false`). Anything else is an error rather than
/// a guess, since a misread `cpa_paid` either pays CPA twice or withholds it.
fn flag(raw: &str, column: &'static str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" | "false" => Ok(false),
        "true" => Ok(true),
        other => Err(format!("{column} `{other}` must be `true`, `false` or empty")),
    }
}

fn optional(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Validates a whole export against what the database already holds. Every problem is
/// reported, not only the first.
pub fn validate(export: &Export, known: &Known) -> Result<Program, ImportErrors> {
    let mut errors = Vec::new();
    let mut program = Program::default();

    // Affiliates.
    let mut affiliate_lines: HashMap<String, u64> = HashMap::new();
    let mut emails: HashMap<String, u64> = HashMap::new();
    for Lined { line, row } in &export.affiliates {
        let mut fail = |message: String| errors.push(ImportError::new(AFFILIATES, *line, message));
        let id = match external_id(&row.external_id) {
            Ok(id) => id,
            Err(reason) => {
                fail(format!("external_id {reason}"));
                continue;
            }
        };
        if let Some(first) = affiliate_lines.insert(id.clone(), *line) {
            fail(format!("duplicate external_id `{id}` (first on line {first})"));
            continue;
        }
        let name = validate::name(&row.name, "name").map_err(|e| e.to_string());
        let email = validate::email(&row.email, "email").map_err(|e| e.to_string());
        let status = match optional(&row.status) {
            None => Ok(ActiveStatus::Active),
            Some(status) => status.to_lowercase().parse::<ActiveStatus>().map_err(|e| e.to_string()),
        };
        let parent = match optional(&row.parent_external_id) {
            None => Ok(None),
            Some(parent) => external_id(&parent).map(Some).map_err(|r| format!("parent_external_id {r}")),
        };
        match (name, email, status, parent) {
            (Ok(name), Ok(email), Ok(status), Ok(parent)) => {
                if let Some(first) = emails.insert(email.clone(), *line) {
                    fail(format!("duplicate email `{email}` (first on line {first})"));
                    continue;
                }
                program.affiliates.push(Affiliate {
                    line: *line,
                    external_id: id,
                    name,
                    email,
                    parent,
                    status,
                });
            }
            (name, email, status, parent) => {
                for err in [name.err(), email.err(), status.err(), parent.err()].into_iter().flatten() {
                    fail(err);
                }
            }
        }
    }
    let affiliate_known = |id: &str| affiliate_lines.contains_key(id) || known.affiliates.contains(id);
    for affiliate in &program.affiliates {
        if let Some(parent) = &affiliate.parent
            && !affiliate_known(parent)
        {
            errors.push(ImportError::new(
                AFFILIATES,
                affiliate.line,
                format!("unknown parent_external_id `{parent}`"),
            ));
        }
    }
    match parents_first(&program.affiliates) {
        Ok(order) => program.affiliates = order,
        Err(cycle) => {
            let mut ids: Vec<&str> = cycle.iter().map(|a| a.external_id.as_str()).collect();
            ids.extend(ids.first().copied());
            for affiliate in &cycle {
                errors.push(ImportError::new(
                    AFFILIATES,
                    affiliate.line,
                    format!("the affiliate hierarchy has a cycle: {}", ids.join(" → ")),
                ));
            }
        }
    }

    // Campaigns.
    let mut campaign_lines: HashMap<String, u64> = HashMap::new();
    for Lined { line, row } in &export.campaigns {
        let mut fail = |message: String| errors.push(ImportError::new(CAMPAIGNS, *line, message));
        let id = match external_id(&row.external_id) {
            Ok(id) => id,
            Err(reason) => {
                fail(format!("external_id {reason}"));
                continue;
            }
        };
        if let Some(first) = campaign_lines.insert(id.clone(), *line) {
            fail(format!("duplicate external_id `{id}` (first on line {first})"));
            continue;
        }
        let name = validate::name(&row.name, "name").map_err(|e| e.to_string());
        let landing = validate::landing_url(row.landing_url.trim(), "landing_url").map_err(|e| e.to_string());
        let fallback = match optional(&row.fallback_url) {
            None => Ok(None),
            Some(url) => validate::landing_url(&url, "fallback_url").map(Some).map_err(|e| e.to_string()),
        };
        let status = match optional(&row.status) {
            None => Ok(CampaignStatus::Active),
            Some(status) => status.to_lowercase().parse::<CampaignStatus>().map_err(|e| e.to_string()),
        };
        match (name, landing, fallback, status) {
            (Ok(name), Ok(landing_url), Ok(fallback_url), Ok(status)) => program.campaigns.push(Campaign {
                line: *line,
                external_id: id,
                name,
                landing_url,
                fallback_url,
                status,
            }),
            (name, landing, fallback, status) => {
                for err in [name.err(), landing.err(), fallback.err(), status.err()].into_iter().flatten() {
                    fail(err);
                }
            }
        }
    }
    let campaign_known = |id: &str| campaign_lines.contains_key(id) || known.campaigns.contains(id);

    // Links.
    let mut codes: HashMap<String, (u64, String)> = HashMap::new();
    for Lined { line, row } in &export.links {
        let mut fail = |message: String| errors.push(ImportError::new(LINKS, *line, message));
        let code = match link_code(&row.code) {
            Ok(code) => code,
            Err(reason) => {
                fail(reason);
                continue;
            }
        };
        let affiliate = row.affiliate_external_id.trim().to_owned();
        let campaign = row.campaign_external_id.trim().to_owned();
        if let Some((first, _)) = codes.insert(code.clone(), (*line, campaign.clone())) {
            fail(format!("duplicate code `{code}` (first on line {first})"));
            continue;
        }
        let mut ok = true;
        if !affiliate_known(&affiliate) {
            fail(format!("unknown affiliate_external_id `{affiliate}`"));
            ok = false;
        }
        if !campaign_known(&campaign) {
            fail(format!("unknown campaign_external_id `{campaign}`"));
            ok = false;
        }
        if ok {
            program.links.push(Link { line: *line, code, affiliate, campaign });
        }
    }

    // Players.
    let mut players: HashMap<String, u64> = HashMap::new();
    for Lined { line, row } in &export.players {
        let mut fail = |message: String| errors.push(ImportError::new(PLAYERS, *line, message));
        let player_id = row.player_id.trim().to_owned();
        if player_id.is_empty() || player_id.len() > MAX_PLAYER_ID || player_id.chars().any(char::is_control)
        {
            fail(format!("player_id must be 1–{MAX_PLAYER_ID} bytes without control characters"));
            continue;
        }
        if let Some(first) = players.insert(player_id.clone(), *line) {
            fail(format!("duplicate player_id `{player_id}` (first on line {first})"));
            continue;
        }
        let affiliate = row.affiliate_external_id.trim().to_owned();
        let mut ok = true;
        if !affiliate_known(&affiliate) {
            fail(format!("unknown affiliate_external_id `{affiliate}`"));
            ok = false;
        }
        let bound_at = match DateTime::parse_from_rfc3339(row.bound_at.trim()) {
            Ok(at) => Some(at.with_timezone(&Utc)),
            Err(_) => {
                fail(format!("bound_at `{}` is not an RFC 3339 time", row.bound_at.trim()));
                ok = false;
                None
            }
        };
        let cpa_paid = flag(&row.cpa_paid, "cpa_paid").unwrap_or_else(|reason| {
            fail(reason);
            ok = false;
            false
        });
        let tracking_code = optional(&row.tracking_code);
        let campaign = match &tracking_code {
            None => None,
            Some(code) => match codes.get(code) {
                Some((_, campaign)) => Some(campaign.clone()),
                None => {
                    fail(format!("tracking_code `{code}` is not in {LINKS}"));
                    ok = false;
                    None
                }
            },
        };
        if let (true, Some(bound_at)) = (ok, bound_at) {
            program.players.push(Player {
                line: *line,
                player_id,
                affiliate,
                bound_at,
                campaign,
                tracking_code,
                cpa_paid,
            });
        }
    }

    // Balances.
    let mut balances: HashMap<(String, Currency), u64> = HashMap::new();
    for Lined { line, row } in &export.balances {
        let mut fail = |message: String| errors.push(ImportError::new(BALANCES, *line, message));
        let affiliate = row.affiliate_external_id.trim().to_owned();
        let currency = match Currency::parse(&row.currency, "currency") {
            Ok(currency) => currency,
            Err(_) => {
                fail(format!("unknown currency `{}`", row.currency.trim()));
                continue;
            }
        };
        if !affiliate_known(&affiliate) {
            fail(format!("unknown affiliate_external_id `{affiliate}`"));
            continue;
        }
        if let Some(first) = balances.insert((affiliate.clone(), currency), *line) {
            fail(format!(
                "duplicate balance of `{affiliate}` in {} (first on line {first})",
                currency.code()
            ));
            continue;
        }
        let open = amount(&row.open_balance, "open_balance", currency);
        let carryover =
            amount(&row.revshare_carryover, "revshare_carryover", currency).and_then(|carryover| {
                // A carryover is a deficit still to be netted against revshare, never a credit.
                if carryover.amount > Decimal::ZERO {
                    return Err(format!(
                        "revshare_carryover: `{}` must be 0 or negative (a loss carried forward)",
                        row.revshare_carryover.trim()
                    ));
                }
                Ok(carryover)
            });
        let period = opening_period(&row.period, known.this_month);
        match (open, carryover, period) {
            (Ok(open), Ok(carryover), Ok(period)) => {
                // Zero amounts too: a balance settled since an earlier run needs its correction.
                for (kind, amount) in
                    [(OpeningKind::OpenBalance, open), (OpeningKind::RevshareCarryover, carryover)]
                {
                    program.openings.push(Opening {
                        line: *line,
                        affiliate: affiliate.clone(),
                        kind,
                        amount,
                        period,
                    });
                }
            }
            (open, carryover, period) => {
                for err in [open.err(), carryover.err(), period.err()].into_iter().flatten() {
                    fail(err);
                }
            }
        }
    }

    // Plans, assignments and conversion history: `migration/plans.rs`, `migration/history.rs`.
    let plan_ids = plans::validate_plans(&export.plans, &mut program, &mut errors);
    let plan_known = |id: &str| plan_ids.contains(id) || known.plans.contains(id);
    plans::validate_assignments(
        &export.assignments,
        &plan_known,
        &campaign_known,
        &affiliate_known,
        &mut program,
        &mut errors,
    );
    history::validate_history(&export.history, &affiliate_known, &campaign_known, &mut program, &mut errors);
    match facts::history_deposits(&program.history) {
        Ok(deposits) => program.history_deposits = deposits,
        Err(too_large) => errors.extend(too_large),
    }
    let (clicks, click_errors) = crate::click_map::validate(&export.clicks);
    program.clicks = clicks;
    errors.extend(click_errors);

    if errors.is_empty() {
        Ok(program)
    } else {
        errors.sort_by_key(|e| (file_order(e.file), e.line));
        Err(ImportErrors(errors))
    }
}

/// The order errors are listed in: by file as the import reads them, then by line.
pub fn file_order(file: &str) -> usize {
    [
        AFFILIATES,
        CAMPAIGNS,
        LINKS,
        PLAYERS,
        BALANCES,
        PLANS,
        ASSIGNMENTS,
        CONVERSIONS,
        crate::click_map::CLICKS,
    ]
    .iter()
    .position(|f| *f == file)
    .unwrap_or(usize::MAX)
}

/// Orders affiliates so that each comes after its parent (parents outside the list count as
/// already there), or returns the affiliates of a cycle, each followed by its parent.
pub fn parents_first(affiliates: &[Affiliate]) -> Result<Vec<Affiliate>, Vec<Affiliate>> {
    let index: HashMap<&str, usize> =
        affiliates.iter().enumerate().map(|(i, a)| (a.external_id.as_str(), i)).collect();
    // 0 = not visited, 1 = on the current path, 2 = placed.
    let mut state = vec![0u8; affiliates.len()];
    let mut order = Vec::with_capacity(affiliates.len());
    for start in 0..affiliates.len() {
        // Walk up from `start` to the first placed (or outside) ancestor, then place the path
        // top-down. Iterative: an export's hierarchy may be deep.
        let mut path: Vec<usize> = Vec::new();
        let mut at = Some(start);
        while let Some(i) = at {
            match state[i] {
                2 => break,
                1 => {
                    let from = path.iter().position(|&p| p == i).unwrap_or(0);
                    return Err(path[from..].iter().map(|&p| affiliates[p].clone()).collect());
                }
                _ => {
                    state[i] = 1;
                    path.push(i);
                    at = affiliates[i].parent.as_deref().and_then(|p| index.get(p).copied());
                }
            }
        }
        for &i in path.iter().rev() {
            state[i] = 2;
            order.push(affiliates[i].clone());
        }
    }
    Ok(order)
}

/// How many ancestors an affiliate may have (as for affiliates created here).
pub const MAX_ANCESTORS: usize = 10;

/// What is wrong with an affiliate's chain of parents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainProblem {
    Cycle,
    TooDeep,
}

/// Walks up from `start` through `parent_of`: the chain must end within [`MAX_ANCESTORS`]
/// ancestors and never come back to an affiliate it passed. For checking the hierarchy as it
/// stands after an import, with affiliates of earlier imports and of this server included.
pub fn check_chain<K: Copy + Eq + std::hash::Hash>(
    start: K,
    parent_of: impl Fn(K) -> Option<K>,
) -> Result<(), ChainProblem> {
    let mut seen = HashSet::from([start]);
    let mut at = start;
    while let Some(parent) = parent_of(at) {
        if !seen.insert(parent) {
            return Err(ChainProblem::Cycle);
        }
        if seen.len() > MAX_ANCESTORS + 1 {
            return Err(ChainProblem::TooDeep);
        }
        at = parent;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn aff(line: u64, id: &str, email: &str, parent: &str) -> Lined<AffiliateRow> {
        Lined {
            line,
            row: AffiliateRow {
                external_id: id.into(),
                name: format!("Affiliate {id}"),
                email: email.into(),
                parent_external_id: parent.into(),
                status: String::new(),
            },
        }
    }

    fn messages(result: Result<Program, ImportErrors>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(ImportErrors(errors)) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn headers_name_missing_unknown_and_repeated_columns() {
        let errors = check_header(AFFILIATES, &["external_id", "name", "e_mail", "name"], AFFILIATE_COLUMNS);
        let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            [
                "affiliates.csv:1: missing column `email`",
                "affiliates.csv:1: unknown column `e_mail`",
                "affiliates.csv:1: column `name` appears twice",
            ]
        );
        assert!(check_header(BALANCES, &["affiliate_external_id", "currency"], BALANCE_COLUMNS).is_empty());
    }

    #[test]
    fn a_small_program_is_valid_with_parents_first() {
        let export = Export {
            affiliates: vec![aff(2, "sub", "s@x.test", "top"), aff(3, "top", "t@x.test", "")],
            balances: vec![Lined {
                line: 2,
                row: BalanceRow {
                    affiliate_external_id: "sub".into(),
                    currency: "eur".into(),
                    open_balance: "10.50".into(),
                    revshare_carryover: "-3.25".into(),
                    period: String::new(),
                },
            }],
            ..Export::default()
        };
        let program = validate(&export, &Known::default()).unwrap();
        let order: Vec<&str> = program.affiliates.iter().map(|a| a.external_id.as_str()).collect();
        assert_eq!(order, ["top", "sub"]);
        assert_eq!(program.openings.len(), 2);
        assert_eq!(program.openings[1].amount.amount, Decimal::new(-325, 2));
        assert_eq!(program.openings[1].external_id(), "carryover:sub:EUR");
    }

    #[test]
    fn a_balance_opens_the_current_month_or_an_earlier_one_and_carries_only_deficits() {
        let balance = |carryover: &str, period: &str| Export {
            balances: vec![Lined {
                line: 2,
                row: BalanceRow {
                    affiliate_external_id: "old".into(),
                    currency: "EUR".into(),
                    open_balance: "5".into(),
                    revshare_carryover: carryover.into(),
                    period: period.into(),
                },
            }],
            ..Export::default()
        };
        let this_month = Period::parse("2026-12", "period").ok();
        let known = Known { affiliates: ["old".to_owned()].into(), this_month, ..Known::default() };
        let periods = |export: &Export| -> Vec<Option<String>> {
            let openings = validate(export, &known).unwrap().openings;
            openings.iter().map(|o| o.period.map(|p| p.to_string())).collect()
        };
        assert_eq!(periods(&balance("-1", "")), [None, None]);
        assert_eq!(
            periods(&balance("-1", "2026-11")),
            [Some("2026-11".to_owned()), Some("2026-11".to_owned())]
        );
        assert_eq!(
            periods(&balance("0", "2026-12")),
            [Some("2026-12".to_owned()), Some("2026-12".to_owned())]
        );
        assert_eq!(
            messages(validate(&balance("10", "2027-01"), &known)),
            [
                "balances.csv:2: revshare_carryover: `10` must be 0 or negative (a loss carried forward)",
                "balances.csv:2: period: `2027-01` is after the current month 2026-12",
            ]
        );
        assert_eq!(
            messages(validate(&balance("-1", "November"), &known)),
            ["balances.csv:2: period: `November` is not a month (YYYY-MM)"]
        );
    }

    #[test]
    fn a_carryover_is_frozen_once_its_first_month_is_paid() {
        let november = Period::parse("2026-11", "period").unwrap();
        assert_eq!(carryover_may_change(november, false), Ok(()));
        assert_eq!(
            carryover_may_change(november, true),
            Err("the statement of 2026-11 is paid: the revshare carryover it opened can no longer change"
                .to_owned())
        );
    }

    #[test]
    fn bad_rows_are_each_reported_with_file_and_line() {
        let export = Export {
            affiliates: vec![
                aff(2, "a", "a@x.test", ""),
                aff(3, "a", "a2@x.test", ""),
                aff(4, "b", "b@x.test", "ghost"),
                aff(5, "c", "c@x.test", "d"),
                aff(6, "d", "d@x.test", "c"),
            ],
            links: vec![Lined {
                line: 2,
                row: LinkRow {
                    code: "old/1".into(),
                    affiliate_external_id: "a".into(),
                    campaign_external_id: "x".into(),
                },
            }],
            balances: vec![Lined {
                line: 7,
                row: BalanceRow {
                    affiliate_external_id: "a".into(),
                    currency: "XYZ".into(),
                    open_balance: "1".into(),
                    revshare_carryover: String::new(),
                    period: String::new(),
                },
            }],
            ..Export::default()
        };
        assert_eq!(
            messages(validate(&export, &Known::default())),
            [
                "affiliates.csv:3: duplicate external_id `a` (first on line 2)",
                "affiliates.csv:4: unknown parent_external_id `ghost`",
                "affiliates.csv:5: the affiliate hierarchy has a cycle: c → d → c",
                "affiliates.csv:6: the affiliate hierarchy has a cycle: c → d → c",
                "links.csv:2: code `old/1` must be 1–32 of A-Z a-z 0-9 - _",
                "balances.csv:7: unknown currency `XYZ`",
            ]
        );
    }

    #[test]
    fn amounts_are_exact_and_references_may_be_known_from_earlier_imports() {
        let balance = |open: &str| Export {
            balances: vec![Lined {
                line: 2,
                row: BalanceRow {
                    affiliate_external_id: "old".into(),
                    currency: "JPY".into(),
                    open_balance: open.into(),
                    revshare_carryover: String::new(),
                    period: String::new(),
                },
            }],
            ..Export::default()
        };
        let known = Known { affiliates: ["old".to_owned()].into(), ..Known::default() };
        let openings = validate(&balance("1000"), &known).unwrap().openings;
        let amounts: Vec<Decimal> = openings.iter().map(|o| o.amount.amount).collect();
        assert_eq!(amounts, [Decimal::new(1000, 0), Decimal::ZERO]);
        assert_eq!(
            messages(validate(&balance("10.5"), &known)),
            ["balances.csv:2: open_balance: `10.5` has more than 0 decimal places"]
        );
        assert_eq!(
            messages(validate(&balance("ten"), &known)),
            ["balances.csv:2: open_balance: `ten` is not a decimal number"]
        );
        assert_eq!(
            messages(validate(&balance("1"), &Known::default())),
            ["balances.csv:2: unknown affiliate_external_id `old`"]
        );
    }

    #[test]
    fn cpa_paid_is_true_false_or_empty_and_anything_else_is_named() {
        let player = |line: u64, id: &str, cpa_paid: &str| Lined {
            line,
            row: PlayerRow {
                player_id: id.into(),
                affiliate_external_id: "old".into(),
                bound_at: "2026-01-05T10:00:00Z".into(),
                tracking_code: String::new(),
                cpa_paid: cpa_paid.into(),
            },
        };
        let known = Known { affiliates: ["old".to_owned()].into(), ..Known::default() };
        let export = Export {
            players: vec![player(2, "p1", "true"), player(3, "p2", " FALSE "), player(4, "p3", "")],
            ..Export::default()
        };
        let flags: Vec<bool> =
            validate(&export, &known).unwrap().players.iter().map(|p| p.cpa_paid).collect();
        assert_eq!(flags, [true, false, false]);
        let export =
            Export { players: vec![player(2, "p1", "yes"), player(3, "p2", "1")], ..Export::default() };
        assert_eq!(
            messages(validate(&export, &known)),
            [
                "players.csv:2: cpa_paid `yes` must be `true`, `false` or empty",
                "players.csv:3: cpa_paid `1` must be `true`, `false` or empty",
            ]
        );
        assert!(
            check_header(
                PLAYERS,
                &["player_id", "affiliate_external_id", "bound_at", "cpa_paid"],
                PLAYER_COLUMNS
            )
            .is_empty()
        );
    }

    #[test]
    fn chains_end_within_the_limit_and_never_loop() {
        let parents: HashMap<u32, u32> = (1..=20).map(|i| (i, i - 1)).collect();
        let parent_of = |k: u32| parents.get(&k).copied();
        assert_eq!(check_chain(10, parent_of), Ok(()));
        assert_eq!(check_chain(11, parent_of), Err(ChainProblem::TooDeep));
        let looped: HashMap<u32, u32> = [(1, 2), (2, 3), (3, 1)].into();
        assert_eq!(check_chain(1, |k| looped.get(&k).copied()), Err(ChainProblem::Cycle));
        assert_eq!(check_chain(7, |k: u32| (k == 7).then_some(7)), Err(ChainProblem::Cycle));
    }

    proptest! {
        /// A forest (each parent earlier in the list) is never a cycle, and its order puts
        /// every parent before its children; closing any path into a loop is always found.
        #[test]
        fn forests_order_and_loops_are_found(parents in proptest::collection::vec(any::<prop::sample::Index>(), 1..40), close in any::<prop::sample::Index>(), shuffle in any::<u64>()) {
            let n = parents.len();
            let mut affiliates: Vec<Affiliate> = (0..n).map(|i| Affiliate {
                line: i as u64 + 2,
                external_id: format!("a{i}"),
                name: format!("A{i}"),
                email: format!("a{i}@x.test"),
                parent: (i > 0 && parents[i].index(i + 1) < i).then(|| format!("a{}", parents[i].index(i + 1))),
                status: ActiveStatus::Active,
            }).collect();
            affiliates.rotate_left((shuffle as usize) % n);
            let ordered = parents_first(&affiliates).unwrap();
            prop_assert_eq!(ordered.len(), n);
            let position: HashMap<&str, usize> = ordered.iter().enumerate().map(|(i, a)| (a.external_id.as_str(), i)).collect();
            for a in &ordered {
                if let Some(p) = &a.parent {
                    prop_assert!(position[p.as_str()] < position[a.external_id.as_str()]);
                }
            }
            // Point the root of some affiliate's chain at that affiliate: a loop.
            let i = close.index(n);
            let mut root = i;
            let by_id: HashMap<String, usize> = affiliates.iter().enumerate().map(|(k, a)| (a.external_id.clone(), k)).collect();
            while let Some(p) = &affiliates[root].parent { root = by_id[p]; }
            let id = affiliates[i].external_id.clone();
            affiliates[root].parent = Some(id);
            prop_assert!(parents_first(&affiliates).is_err());
        }

        #[test]
        fn arbitrary_rows_never_panic(id in ".{0,120}", email in ".{0,40}", code in ".{0,40}", amount in ".{0,30}", at in ".{0,30}") {
            let export = Export {
                affiliates: vec![aff(2, &id, &email, &id)],
                links: vec![Lined { line: 2, row: LinkRow { code: code.clone(), affiliate_external_id: id.clone(), campaign_external_id: id.clone() } }],
                players: vec![Lined { line: 2, row: PlayerRow { player_id: id.clone(), affiliate_external_id: id.clone(), bound_at: at.clone(), tracking_code: code, cpa_paid: at } }],
                balances: vec![Lined { line: 2, row: BalanceRow { affiliate_external_id: id.clone(), currency: "EUR".into(), open_balance: amount.clone(), revshare_carryover: amount.clone(), period: amount } }],
                ..Export::default()
            };
            let _ = validate(&export, &Known::default());
        }
    }
}
