//! `plans.csv` and `assignments.csv`: the subset of commission plans a flat CSV row can say.
//! A plan takes one row per rule, grouped by `plan_external_id`: a CPA amount (by country,
//! with a minimum first deposit), a CPL amount, revshare percentages by net-revenue tier.
//! Each plan is then checked as `createCommissionPlan` checks one.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::{Columns, ImportError, Lined, Program, external_id, optional};
use crate::commission::{CpaRules, Plan, RevShareRules, RevShareTier, TierBasis};
use crate::money::Currency;
use crate::validate;

pub const PLANS: &str = "plans.csv";
pub const ASSIGNMENTS: &str = "assignments.csv";

pub const PLAN_COLUMNS: Columns = Columns {
    required: &["plan_external_id", "name", "currency", "rule"],
    optional: &["amount", "percent", "country", "min_first_deposit", "tier_from", "effective_from"],
};
pub const ASSIGNMENT_COLUMNS: Columns = Columns {
    required: &["plan_external_id", "campaign_external_id"],
    optional: &["affiliate_external_id", "effective_from"],
};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PlanRow {
    pub plan_external_id: String,
    pub name: String,
    pub currency: String,
    pub rule: String,
    #[serde(default)]
    pub amount: String,
    #[serde(default)]
    pub percent: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub min_first_deposit: String,
    #[serde(default)]
    pub tier_from: String,
    #[serde(default)]
    pub effective_from: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AssignmentRow {
    pub plan_external_id: String,
    pub campaign_external_id: String,
    #[serde(default)]
    pub affiliate_external_id: String,
    #[serde(default)]
    pub effective_from: String,
}

/// A plan of the export: its rules, checked as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedPlan {
    /// The plan's first row.
    pub line: u64,
    pub external_id: String,
    pub name: String,
    /// When version 1 takes effect: the start of time unless the file says otherwise, so the
    /// plan covers players who joined long before the import.
    pub effective_from: DateTime<Utc>,
    pub plan: Plan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedAssignment {
    pub line: u64,
    pub plan: String,
    pub campaign: String,
    /// `None`: the campaign's default plan.
    pub affiliate: Option<String>,
    pub effective_from: DateTime<Utc>,
}

/// A stable default for an absent `effective_from`, so that a re-run finds the same row.
fn effective_from(raw: &str) -> Result<DateTime<Utc>, String> {
    match optional(raw) {
        None => Ok(DateTime::<Utc>::UNIX_EPOCH),
        Some(at) => DateTime::parse_from_rfc3339(&at)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| format!("effective_from `{at}` is not an RFC 3339 time")),
    }
}

fn decimal(raw: &str, column: &str) -> Result<Option<Decimal>, String> {
    match optional(raw) {
        None => Ok(None),
        Some(value) => {
            value.parse().map(Some).map_err(|_| format!("{column}: `{value}` is not a decimal number"))
        }
    }
}

/// A plan's rows as they are gathered; the first row names it.
struct Draft {
    line: u64,
    name: String,
    currency: Currency,
    effective_from: DateTime<Utc>,
    cpa: Option<Decimal>,
    by_country: BTreeMap<String, Decimal>,
    min_first_deposit: Option<Decimal>,
    cpl: Option<Decimal>,
    tiers: Vec<RevShareTier>,
    ok: bool,
}

impl Draft {
    fn plan(&self) -> Plan {
        let cpa = (self.cpa.is_some() || !self.by_country.is_empty()).then(|| CpaRules {
            amount: self.cpa.unwrap_or_default(),
            by_country: self.by_country.clone(),
            min_first_deposit: self.min_first_deposit,
            ..CpaRules::default()
        });
        let mut tiers = self.tiers.clone();
        tiers.sort_by_key(|tier| tier.from);
        Plan {
            currency: self.currency,
            cpa,
            cpl: self.cpl,
            revshare: (!tiers.is_empty()).then_some(RevShareRules {
                tier_by: TierBasis::NetRevenue,
                tiers,
                negative_carryover: true,
            }),
            per_lot: None,
            kpi: Vec::new(),
            overrides: Vec::new(),
        }
    }
}

/// Reads the rules of one row into its plan's draft.
fn add_rule(draft: &mut Draft, row: &PlanRow) -> Result<(), String> {
    let amount = decimal(&row.amount, "amount")?;
    let percent = decimal(&row.percent, "percent")?;
    let tier_from = decimal(&row.tier_from, "tier_from")?;
    let min_first_deposit = decimal(&row.min_first_deposit, "min_first_deposit")?;
    let country = optional(&row.country).map(|c| c.to_ascii_uppercase());
    let unused = |what: &str, set: bool| {
        if set { Err(format!("{what} does not apply to rule `{}`", row.rule.trim())) } else { Ok(()) }
    };
    match row.rule.trim().to_ascii_lowercase().as_str() {
        "cpa" => {
            unused("percent", percent.is_some())?;
            unused("tier_from", tier_from.is_some())?;
            let amount = amount.ok_or("amount is required for rule `cpa`")?;
            match country {
                Some(country) => {
                    unused(
                        "min_first_deposit (set it on the row without country)",
                        min_first_deposit.is_some(),
                    )?;
                    if draft.by_country.insert(country.clone(), amount).is_some() {
                        return Err(format!("a second cpa amount for country `{country}`"));
                    }
                }
                None => {
                    if draft.cpa.replace(amount).is_some() {
                        return Err("a second cpa row without country".into());
                    }
                    draft.min_first_deposit = min_first_deposit;
                }
            }
        }
        "cpl" => {
            for (what, set) in [
                ("percent", percent.is_some()),
                ("tier_from", tier_from.is_some()),
                ("country", country.is_some()),
                ("min_first_deposit", min_first_deposit.is_some()),
            ] {
                unused(what, set)?;
            }
            let amount = amount.ok_or("amount is required for rule `cpl`")?;
            if draft.cpl.replace(amount).is_some() {
                return Err("a second cpl row".into());
            }
        }
        "revshare" => {
            for (what, set) in [
                ("amount", amount.is_some()),
                ("country", country.is_some()),
                ("min_first_deposit", min_first_deposit.is_some()),
            ] {
                unused(what, set)?;
            }
            let percent = percent.ok_or("percent is required for rule `revshare`")?;
            let from = tier_from.unwrap_or_default();
            if draft.tiers.iter().any(|tier| tier.from == from) {
                return Err(format!("a second revshare tier from {from}"));
            }
            draft.tiers.push(RevShareTier { from, percent });
        }
        other => return Err(format!("unknown rule `{other}` (cpa, cpl or revshare)")),
    }
    Ok(())
}

/// Checks `plans.csv`: rows grouped into plans, each plan valid as a whole. Returns the
/// external IDs of the file's plans (those in error included, so that their assignments are
/// not reported twice).
pub(super) fn validate_plans(
    rows: &[Lined<PlanRow>],
    program: &mut Program,
    errors: &mut Vec<ImportError>,
) -> HashSet<String> {
    let mut drafts: Vec<(String, Draft)> = Vec::new();
    // `None`: the plan's first row was in error (and reported); its other rows are skipped.
    let mut index: HashMap<String, Option<usize>> = HashMap::new();
    for Lined { line, row } in rows {
        let mut fail = |message: String| errors.push(ImportError::new(PLANS, *line, message));
        let id = match external_id(&row.plan_external_id) {
            Ok(id) => id,
            Err(reason) => {
                fail(format!("plan_external_id {reason}"));
                continue;
            }
        };
        let at = match index.get(&id).copied() {
            Some(None) => continue,
            Some(Some(at)) => {
                // Later rows of a plan leave its name, currency and date empty or repeat them.
                let first = &drafts[at].1;
                let differs =
                    |raw: &str, same: &dyn Fn(&str) -> bool| optional(raw).is_some_and(|v| !same(&v));
                if differs(&row.name, &|v| v == first.name)
                    || differs(&row.currency, &|v| {
                        Currency::parse(v, "currency").ok() == Some(first.currency)
                    })
                    || differs(&row.effective_from, &|v| effective_from(v).ok() == Some(first.effective_from))
                {
                    fail(format!(
                        "name, currency and effective_from of plan `{id}` differ from its first row (line {})",
                        first.line
                    ));
                    drafts[at].1.ok = false;
                    continue;
                }
                at
            }
            None => {
                let name = validate::name(&row.name, "name").map_err(|e| e.to_string());
                let currency = Currency::parse(&row.currency, "currency")
                    .map_err(|_| format!("unknown currency `{}`", row.currency.trim()));
                let from = effective_from(&row.effective_from);
                let (name, currency, from) = match (name, currency, from) {
                    (Ok(name), Ok(currency), Ok(from)) => (name, currency, from),
                    (name, currency, from) => {
                        for err in [name.err(), currency.err(), from.err()].into_iter().flatten() {
                            fail(err);
                        }
                        // Known as a plan of the file all the same: its assignments are fine.
                        index.insert(id.clone(), None);
                        continue;
                    }
                };
                drafts.push((
                    id.clone(),
                    Draft {
                        line: *line,
                        name,
                        currency,
                        effective_from: from,
                        cpa: None,
                        by_country: BTreeMap::new(),
                        min_first_deposit: None,
                        cpl: None,
                        tiers: Vec::new(),
                        ok: true,
                    },
                ));
                index.insert(id.clone(), Some(drafts.len() - 1));
                drafts.len() - 1
            }
        };
        if let Err(reason) = add_rule(&mut drafts[at].1, row) {
            fail(reason);
            drafts[at].1.ok = false;
        }
    }
    for (external_id, draft) in drafts {
        if !draft.ok {
            continue;
        }
        let plan = draft.plan();
        match plan.validate() {
            Ok(()) => program.plans.push(ImportedPlan {
                line: draft.line,
                external_id,
                name: draft.name,
                effective_from: draft.effective_from,
                plan,
            }),
            Err(err) => {
                errors.push(ImportError::new(PLANS, draft.line, format!("plan `{external_id}`: {err}")))
            }
        }
    }
    index.into_keys().collect()
}

/// Checks `assignments.csv`: known plan, campaign and affiliate; one plan per campaign,
/// affiliate and date.
pub(super) fn validate_assignments(
    rows: &[Lined<AssignmentRow>],
    plan_known: &dyn Fn(&str) -> bool,
    campaign_known: &dyn Fn(&str) -> bool,
    affiliate_known: &dyn Fn(&str) -> bool,
    program: &mut Program,
    errors: &mut Vec<ImportError>,
) {
    let mut slots: HashMap<(String, Option<String>, DateTime<Utc>), u64> = HashMap::new();
    for Lined { line, row } in rows {
        let mut fail = |message: String| errors.push(ImportError::new(ASSIGNMENTS, *line, message));
        let plan = row.plan_external_id.trim().to_owned();
        let campaign = row.campaign_external_id.trim().to_owned();
        let affiliate = optional(&row.affiliate_external_id);
        let mut ok = true;
        if !plan_known(&plan) {
            fail(format!("unknown plan_external_id `{plan}`"));
            ok = false;
        }
        if !campaign_known(&campaign) {
            fail(format!("unknown campaign_external_id `{campaign}`"));
            ok = false;
        }
        if let Some(affiliate) = affiliate.as_deref().filter(|a| !affiliate_known(a)) {
            fail(format!("unknown affiliate_external_id `{affiliate}`"));
            ok = false;
        }
        let from = match effective_from(&row.effective_from) {
            Ok(from) => from,
            Err(reason) => {
                fail(reason);
                continue;
            }
        };
        if !ok {
            continue;
        }
        if let Some(first) = slots.insert((campaign.clone(), affiliate.clone(), from), *line) {
            fail(format!(
                "a second plan for campaign `{campaign}`{} from {from} (first on line {first})",
                affiliate.as_deref().map(|a| format!(" and affiliate `{a}`")).unwrap_or_default()
            ));
            continue;
        }
        program.assignments.push(ImportedAssignment {
            line: *line,
            plan,
            campaign,
            affiliate,
            effective_from: from,
        });
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::migration::{Export, ImportErrors, Known, validate};

    fn rule(line: u64, id: &str, head: (&str, &str), rule: &str, cells: [&str; 6]) -> Lined<PlanRow> {
        let [amount, percent, country, min_first_deposit, tier_from, effective_from] =
            cells.map(String::from);
        Lined {
            line,
            row: PlanRow {
                plan_external_id: id.into(),
                name: head.0.into(),
                currency: head.1.into(),
                rule: rule.into(),
                amount,
                percent,
                country,
                min_first_deposit,
                tier_from,
                effective_from,
            },
        }
    }

    fn assign(line: u64, plan: &str, campaign: &str, affiliate: &str, from: &str) -> Lined<AssignmentRow> {
        Lined {
            line,
            row: AssignmentRow {
                plan_external_id: plan.into(),
                campaign_external_id: campaign.into(),
                affiliate_external_id: affiliate.into(),
                effective_from: from.into(),
            },
        }
    }

    fn known() -> Known {
        Known {
            affiliates: ["aff".to_owned()].into(),
            campaigns: ["cmp".to_owned()].into(),
            plans: ["old-plan".to_owned()].into(),
            ..Known::default()
        }
    }

    fn messages(export: &Export) -> Vec<String> {
        match validate(export, &known()) {
            Ok(_) => Vec::new(),
            Err(ImportErrors(errors)) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn rows_of_a_plan_make_one_hybrid_plan() {
        let export = Export {
            plans: vec![
                rule(2, "p", ("Hybrid", "eur"), "CPA", ["100", "", "", "20", "", ""]),
                rule(3, "p", ("", ""), "cpa", ["150", "", "de", "", "", ""]),
                rule(4, "p", ("Hybrid", ""), "revshare", ["", "35", "", "", "10000", ""]),
                rule(5, "p", ("", ""), "revshare", ["", "25", "", "", "", ""]),
            ],
            assignments: vec![
                assign(2, "p", "cmp", "", ""),
                assign(3, "old-plan", "cmp", "aff", "2026-01-01T00:00:00Z"),
            ],
            ..Export::default()
        };
        let program = validate(&export, &known()).unwrap();
        let [plan] = program.plans.as_slice() else { panic!("one plan: {:?}", program.plans) };
        assert_eq!((plan.line, plan.name.as_str()), (2, "Hybrid"));
        assert_eq!(plan.effective_from, DateTime::<Utc>::UNIX_EPOCH);
        let cpa = plan.plan.cpa.as_ref().unwrap();
        assert_eq!(cpa.amount, Decimal::new(100, 0));
        assert_eq!(cpa.by_country["DE"], Decimal::new(150, 0));
        assert_eq!(cpa.min_first_deposit, Some(Decimal::new(20, 0)));
        let tiers: Vec<(Decimal, Decimal)> =
            plan.plan.revshare.as_ref().unwrap().tiers.iter().map(|t| (t.from, t.percent)).collect();
        assert_eq!(
            tiers,
            [(Decimal::ZERO, Decimal::new(25, 0)), (Decimal::new(10000, 0), Decimal::new(35, 0))]
        );
        assert_eq!(program.assignments.len(), 2);
        assert_eq!(program.assignments[1].affiliate.as_deref(), Some("aff"));
    }

    #[test]
    fn bad_plan_and_assignment_rows_are_named() {
        let export = Export {
            plans: vec![
                rule(2, "p", ("P", "EUR"), "cpa", ["", "", "", "", "", ""]),
                rule(3, "p", ("Other", ""), "cpl", ["5", "", "", "", "", ""]),
                rule(4, "q", ("Q", "EUR"), "cpl", ["5", "3", "", "", "", ""]),
                rule(5, "r", ("R", "XYZ"), "cpl", ["5", "", "", "", "", ""]),
                rule(6, "s", ("S", "EUR"), "revshare", ["", "150", "", "", "", ""]),
            ],
            assignments: vec![
                assign(2, "r", "cmp", "", ""),
                assign(3, "ghost", "nope", "who", "soon"),
                assign(4, "old-plan", "cmp", "", ""),
                assign(5, "old-plan", "cmp", "", "1970-01-01T00:00:00Z"),
            ],
            ..Export::default()
        };
        let found = messages(&export);
        let expected = [
            "plans.csv:2: amount is required for rule `cpa`",
            "plans.csv:3: name, currency and effective_from of plan `p` differ from its first row (line 2)",
            "plans.csv:4: percent does not apply to rule `cpl`",
            "plans.csv:5: unknown currency `XYZ`",
            "assignments.csv:3: unknown plan_external_id `ghost`",
            "assignments.csv:3: unknown campaign_external_id `nope`",
            "assignments.csv:3: unknown affiliate_external_id `who`",
            "assignments.csv:3: effective_from `soon` is not an RFC 3339 time",
        ];
        for line in expected {
            assert!(found.iter().any(|f| f == line), "`{line}` not in {found:?}");
        }
        assert!(found.iter().any(|f| f.starts_with("plans.csv:6: plan `s`: ")), "{found:?}");
        assert!(
            found.iter().any(|f| f.starts_with("assignments.csv:5: a second plan for campaign `cmp`")),
            "{found:?}"
        );
        // A plan in error is still a plan of the file: its assignment is not reported again.
        assert!(!found.iter().any(|f| f.starts_with("assignments.csv:2")), "{found:?}");
    }

    proptest! {
        #[test]
        fn arbitrary_plan_rows_never_panic(id in ".{0,20}", rule_name in "(cpa|cpl|revshare|.{0,8})", cells in proptest::array::uniform6(".{0,12}"), currency in "(EUR|JPY|.{0,4})") {
            let cells = cells.each_ref().map(String::as_str);
            let export = Export {
                plans: vec![rule(2, &id, ("Name", &currency), &rule_name, cells), rule(3, &id, ("", ""), &rule_name, cells)],
                assignments: vec![assign(2, &id, "cmp", cells[2], cells[5])],
                ..Export::default()
            };
            let _ = validate(&export, &known());
        }
    }
}
