//! The inputs of one event: what is known about the player before it, the event itself, and
//! the context the caller supplies (time, exchange rate, the affiliate's month so far).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::entry::FxSource;
use crate::Error;
use crate::money::{Currency, FxRate, MAX_AMOUNT, Money};

/// A player's running totals, kept in the plan's currency so that CPA thresholds compare like
/// with like. [`super::commission_for_event`] returns the updated facts; store those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerFacts {
    pub currency: Currency,
    pub registered_at: Option<DateTime<Utc>>,
    /// ISO 3166-1 alpha-2, for country-specific CPA amounts.
    pub country: Option<String>,
    pub first_deposit: Option<Decimal>,
    pub total_deposits: Decimal,
    pub turnover: Decimal,
    pub lots: Decimal,
    pub trades: u32,
    pub cpa_paid: bool,
}

impl PlayerFacts {
    /// A player nothing is known about yet.
    pub fn new(currency: Currency) -> PlayerFacts {
        PlayerFacts {
            currency,
            registered_at: None,
            country: None,
            first_deposit: None,
            total_deposits: Decimal::ZERO,
            turnover: Decimal::ZERO,
            lots: Decimal::ZERO,
            trades: 0,
            cpa_paid: false,
        }
    }
}

/// A conversion event as the commission engine sees it. Amounts are in the event's currency.
/// A chargeback is not an event here: it reverses entries (see [`super::reversal_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFacts {
    Registration,
    FirstDeposit {
        amount: Money,
    },
    Deposit {
        amount: Money,
    },
    /// A shop's sale; counts as a deposit towards CPA qualification.
    Purchase {
        amount: Money,
    },
    Trade {
        lots: Decimal,
        instrument: String,
    },
    /// Net revenue for a period (may be negative), with the wagering behind it if reported.
    Revenue {
        net: Money,
        turnover: Option<Money>,
    },
}

/// The affiliate's figures for the month so far, before this event; they pick the live
/// revshare tier. Close-time figures are in [`super::PeriodMetrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MonthToDate {
    pub net_revenue: Decimal,
    pub ftds: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventContext {
    /// When the event happened (the operator's event time).
    pub at: DateTime<Utc>,
    /// Event currency → plan currency; required when they differ.
    pub fx: Option<FxRate>,
    pub month_to_date: MonthToDate,
}

/// An event with its money converted into the plan's currency.
pub(super) struct Normalized<'a> {
    pub event: &'a EventFacts,
    /// Deposit, purchase or net revenue, converted.
    pub amount: Option<Money>,
    pub turnover: Option<Money>,
    pub fx: Option<FxSource>,
}

pub(super) fn normalize<'a>(
    event: &'a EventFacts,
    plan: Currency,
    fx: Option<FxRate>,
) -> Result<Normalized<'a>, Error> {
    let (amount, turnover) = match event {
        EventFacts::Registration => (None, None),
        EventFacts::FirstDeposit { amount }
        | EventFacts::Deposit { amount }
        | EventFacts::Purchase { amount } => {
            if amount.amount <= Decimal::ZERO {
                return Err(Error::invalid("amount", "must be positive"));
            }
            (Some(*amount), None)
        }
        EventFacts::Trade { lots, instrument } => {
            if *lots <= Decimal::ZERO || *lots > MAX_AMOUNT {
                return Err(Error::invalid("lots", "must be positive"));
            }
            if instrument.trim().is_empty() {
                return Err(Error::invalid("instrument", "must not be empty"));
            }
            (None, None)
        }
        EventFacts::Revenue { net, turnover } => {
            if turnover.is_some_and(|t| t.amount.is_sign_negative() && !t.amount.is_zero()) {
                return Err(Error::invalid("turnover", "must not be negative"));
            }
            (Some(*net), *turnover)
        }
    };
    let converted = amount.map(|a| convert(a, plan, fx)).transpose()?;
    let turnover = turnover.map(|t| convert(t, plan, fx)).transpose()?;
    let fx = match (amount, fx) {
        (Some(original), Some(rate)) if original.currency != plan => {
            Some(FxSource { amount: original, rate })
        }
        _ => None,
    };
    Ok(Normalized { event, amount: converted, turnover, fx })
}

fn convert(money: Money, plan: Currency, fx: Option<FxRate>) -> Result<Money, Error> {
    let money = Money::from_input(money.amount, money.currency, "amount")?;
    if money.currency == plan {
        return Ok(money);
    }
    match fx {
        Some(rate) if rate.to() == plan => rate.convert(money),
        _ => Err(Error::invalid(
            "currency",
            format!("{} needs an exchange rate into the plan's currency {plan}", money.currency),
        )),
    }
}

impl PlayerFacts {
    /// The facts once `event` has happened at `at`.
    pub(super) fn apply(&self, event: &Normalized<'_>, at: DateTime<Utc>) -> Result<PlayerFacts, Error> {
        let mut next = self.clone();
        match event.event {
            EventFacts::Registration => {
                next.registered_at.get_or_insert(at);
            }
            EventFacts::FirstDeposit { .. } | EventFacts::Deposit { .. } | EventFacts::Purchase { .. } => {
                let amount = event.amount.map_or(Decimal::ZERO, |m| m.amount);
                next.first_deposit.get_or_insert(amount);
                next.total_deposits = add(next.total_deposits, amount)?;
            }
            EventFacts::Trade { lots, .. } => {
                next.lots = add(next.lots, *lots)?;
                next.trades = next.trades.saturating_add(1);
            }
            EventFacts::Revenue { .. } => {
                next.turnover = add(next.turnover, event.turnover.map_or(Decimal::ZERO, |m| m.amount))?;
            }
        }
        Ok(next)
    }
}

fn add(a: Decimal, b: Decimal) -> Result<Decimal, Error> {
    a.checked_add(b)
        .filter(|sum| sum.abs() <= MAX_AMOUNT)
        .ok_or_else(|| Error::invalid("amount", "total is out of range"))
}

impl EventFacts {
    /// The event a postback reports, for the engine; `None` for a chargeback, which reverses
    /// entries instead. Its money was parsed with the postback, so nothing is parsed again.
    pub fn of(postback: &crate::postback::Postback) -> Result<Option<EventFacts>, Error> {
        use crate::conversion::EventKind;
        let money = || postback.amount.ok_or_else(|| Error::invalid("amount", "is required"));
        Ok(Some(match postback.event {
            EventKind::Registration => EventFacts::Registration,
            EventKind::Ftd => EventFacts::FirstDeposit { amount: money()? },
            EventKind::Deposit => EventFacts::Deposit { amount: money()? },
            EventKind::Purchase => EventFacts::Purchase { amount: money()? },
            EventKind::Trade => EventFacts::Trade {
                lots: postback.lots.unwrap_or_default(),
                instrument: postback.instrument.as_deref().unwrap_or("UNKNOWN").trim().to_ascii_uppercase(),
            },
            EventKind::Revenue => EventFacts::Revenue { net: money()?, turnover: postback.turnover },
            EventKind::Chargeback => return Ok(None),
        }))
    }

    /// The currency the event's money is in, if it carries money.
    pub fn currency(&self) -> Option<Currency> {
        match self {
            EventFacts::FirstDeposit { amount }
            | EventFacts::Deposit { amount }
            | EventFacts::Purchase { amount } => Some(amount.currency),
            EventFacts::Revenue { net, .. } => Some(net.currency),
            EventFacts::Registration | EventFacts::Trade { .. } => None,
        }
    }
}
