//! The inbound postback, parsed from whatever the operator's backend sent (query string, form
//! or JSON, all flattened to name/value pairs). Every bad field is reported, not just the first,
//! so an integrator fixes them in one round trip.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use rust_decimal::Decimal;

use crate::Error;
use crate::conversion::{ConversionStatus, EventKind};
use crate::fraud::Signals;
use crate::money::{Currency, Money};

pub const MAX_ID_LEN: usize = 128;
pub const MAX_INSTRUMENT_LEN: usize = 32;
/// How far `occurred_at` may lie from the receive time, either way. Beyond it the date is a
/// mistake (or an attack): a far-future event books into a month that can never close, and
/// arithmetic on dates near the calendar's end overflows.
pub const MAX_OCCURRED_AT_SKEW_DAYS: i64 = 366;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postback {
    pub subject: Subject,
    pub event: EventKind,
    pub txn_id: Option<String>,
    /// The amount with its currency, parsed once here (required for money events).
    pub amount: Option<Money>,
    pub lots: Option<Decimal>,
    pub instrument: Option<String>,
    pub status: ConversionStatus,
    /// When the operator says it happened; the receive time is ours.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The player's country, ISO 3166-1 alpha-2 (upper case), for country-specific CPA.
    pub country: Option<String>,
    /// The wagering behind a revenue report, in the amount's currency, for CPA turnover
    /// thresholds.
    pub turnover: Option<Money>,
    /// What the operator knows of the player's device, identity and payment, for fraud
    /// rules. Not part of the transaction's identity: a repeat may carry more or fewer.
    pub signals: Signals,
}

/// Whom a postback is about: a click (which a player may register through), or a player
/// known from an earlier conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Click { click_id: String, player_id: Option<String> },
    Player { player_id: String },
}

impl Subject {
    pub fn click_id(&self) -> Option<&str> {
        match self {
            Subject::Click { click_id, .. } => Some(click_id),
            Subject::Player { .. } => None,
        }
    }

    pub fn player_id(&self) -> Option<&str> {
        match self {
            Subject::Click { player_id, .. } => player_id.as_deref(),
            Subject::Player { player_id } => Some(player_id),
        }
    }
}

impl Postback {
    /// The identity of the transaction for idempotency: the operator's transaction ID, or for
    /// a registration without one, the player (a player registers once).
    pub fn dedupe_key(&self) -> String {
        match (&self.txn_id, self.event) {
            (Some(txn), EventKind::Chargeback) => chargeback_key(txn),
            (Some(txn), _) => format!("txn:{txn}"),
            (None, event) => {
                let who = self.subject.player_id().or(self.subject.click_id()).unwrap_or_default();
                format!("{event}:{who}")
            }
        }
    }

    /// For a transaction that a chargeback may reverse, the key the chargeback is stored
    /// under: where a chargeback that arrived first waits for it.
    pub fn chargeback_key(&self) -> Option<String> {
        match (&self.txn_id, self.event) {
            (Some(txn), event) if event != EventKind::Chargeback => Some(chargeback_key(txn)),
            _ => None,
        }
    }

    /// The currency of the postback's money, if it carries any.
    pub fn currency(&self) -> Option<Currency> {
        self.amount.or(self.turnover).map(|m| m.currency)
    }

    /// The fields that define the transaction, for "same payload?" comparisons. Status is left
    /// out on purpose: a repeat whose status moves forward is an update, not a conflict.
    pub fn identity_fields(&self) -> BTreeMap<&'static str, String> {
        let mut fields = BTreeMap::new();
        let mut put = |name: &'static str, value: Option<String>| {
            if let Some(value) = value {
                fields.insert(name, value);
            }
        };
        put("click_id", self.subject.click_id().map(str::to_owned));
        put("player_id", self.subject.player_id().map(str::to_owned));
        put("event", Some(self.event.as_str().to_owned()));
        put("txn_id", self.txn_id.clone());
        put("amount", self.amount.map(|a| a.amount.normalize().to_string()));
        put("currency", self.currency().map(|c| c.code().to_owned()));
        put("lots", self.lots.map(|l| l.normalize().to_string()));
        put("instrument", self.instrument.clone());
        put("occurred_at", self.occurred_at.map(|t| t.timestamp_millis().to_string()));
        put("country", self.country.clone());
        put("turnover", self.turnover.map(|t| t.amount.normalize().to_string()));
        fields
    }
}

/// The dedupe key of a chargeback of transaction `txn`.
fn chargeback_key(txn: &str) -> String {
    format!("chargeback:{txn}")
}

/// A field the integrator must fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field as the sender named it.
    pub field: Cow<'static, str>,
    pub message: String,
}

impl From<Error> for FieldError {
    fn from(err: Error) -> Self {
        match err {
            Error::Invalid { field, reason } => FieldError { field: field.into(), message: reason },
            Error::InvalidAt { field, reason } => FieldError { field: field.into(), message: reason },
        }
    }
}

/// Parses name/value pairs (the last value of a repeated name wins; empty values count as
/// absent, as trackers commonly send `amount=` for "none"), received at `received_at`.
pub fn parse<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    received_at: DateTime<Utc>,
) -> Result<Postback, Vec<FieldError>> {
    let mut params: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, value) in pairs {
        let value = value.trim();
        if !value.is_empty() {
            params.insert(name, value);
        }
    }
    let mut errors = Vec::new();

    let click_id = keep(&mut errors, identifier(params.get("click_id").copied(), "click_id"));
    let player_id = keep(&mut errors, identifier(params.get("player_id").copied(), "player_id"));
    let txn_id = keep(&mut errors, identifier(params.get("txn_id").copied(), "txn_id"));
    let event = keep(
        &mut errors,
        match params.get("event") {
            Some(raw) => EventKind::from_str(raw).map(Some),
            None => Err(Error::invalid("event", "is required")),
        },
    );
    let amount = keep(&mut errors, decimal(params.get("amount").copied(), "amount"));
    let currency = keep(&mut errors, currency(params.get("currency").copied()));
    let lots = keep(&mut errors, decimal(params.get("lots").copied(), "lots"));
    let instrument =
        keep(&mut errors, text(params.get("instrument").copied(), "instrument", MAX_INSTRUMENT_LEN));
    let status =
        keep(&mut errors, params.get("status").map(|raw| ConversionStatus::from_str(raw)).transpose())
            .unwrap_or(ConversionStatus::Approved);
    let occurred_at = keep(
        &mut errors,
        timestamp(params.get("occurred_at").copied()).and_then(|t| near_receipt(t, received_at)),
    );
    let country = keep(&mut errors, country(params.get("country").copied()));
    let turnover = keep(&mut errors, decimal(params.get("turnover").copied(), "turnover"));
    let signals = crate::fraud::parse_signals(|name| params.get(name).copied(), &mut errors);
    if turnover.is_some_and(|t| t.is_sign_negative() && !t.is_zero()) {
        errors.push(FieldError { field: "turnover".into(), message: "must not be negative".into() });
    }

    if click_id.is_none()
        && player_id.is_none()
        && !errors.iter().any(|e| e.field == "click_id" || e.field == "player_id")
    {
        errors.push(FieldError {
            field: "click_id".into(),
            message: "click_id or player_id is required".into(),
        });
    }
    if let Some(event) = event {
        if event.needs_txn_id() && txn_id.is_none() && !errors.iter().any(|e| e.field == "txn_id") {
            errors.push(FieldError { field: "txn_id".into(), message: format!("is required for {event}") });
        }
        if event.needs_amount() && amount.is_none() && !errors.iter().any(|e| e.field == "amount") {
            errors.push(FieldError { field: "amount".into(), message: format!("is required for {event}") });
        }
        if event == EventKind::Trade && lots.is_none() && !errors.iter().any(|e| e.field == "lots") {
            errors.push(FieldError { field: "lots".into(), message: "is required for trade".into() });
        }
        if let Some(amount) = amount
            && amount.is_sign_negative()
            && !amount.is_zero()
            && event != EventKind::Revenue
        {
            errors.push(FieldError {
                field: "amount".into(),
                message: "must not be negative (only revenue may be)".into(),
            });
        }
    }
    if let Some(lots) = lots
        && lots <= Decimal::ZERO
    {
        errors.push(FieldError { field: "lots".into(), message: "must be positive".into() });
    }
    if (amount.is_some() || turnover.is_some())
        && currency.is_none()
        && !errors.iter().any(|e| e.field == "currency")
    {
        errors.push(FieldError { field: "currency".into(), message: "is required with amount".into() });
    }

    let subject = match (click_id, player_id) {
        (Some(click_id), player_id) => Some(Subject::Click { click_id, player_id }),
        (None, Some(player_id)) => Some(Subject::Player { player_id }),
        (None, None) => None,
    };
    let money = |amount: Option<Decimal>, field: &'static str| match (amount, currency) {
        (Some(amount), Some(currency)) => Money::from_input(amount, currency, field).map(Some),
        _ => Ok(None),
    };
    let amount = keep(&mut errors, money(amount, "amount"));
    let turnover = keep(&mut errors, money(turnover, "turnover"));

    match (event, subject) {
        (Some(event), Some(subject)) if errors.is_empty() => Ok(Postback {
            subject,
            event,
            txn_id,
            amount,
            lots,
            instrument,
            status,
            occurred_at,
            country,
            turnover,
            signals,
        }),
        _ => Err(errors),
    }
}

/// The value, or `None` with the error recorded.
pub(crate) fn keep<T>(errors: &mut Vec<FieldError>, result: Result<Option<T>, Error>) -> Option<T> {
    match result {
        Ok(value) => value,
        Err(err) => {
            errors.push(FieldError::from(err));
            None
        }
    }
}

fn identifier(raw: Option<&str>, field: &'static str) -> Result<Option<String>, Error> {
    text(raw, field, MAX_ID_LEN)
}

pub(crate) fn text(raw: Option<&str>, field: &'static str, max: usize) -> Result<Option<String>, Error> {
    match raw {
        None => Ok(None),
        Some(value) if value.len() > max => {
            Err(Error::invalid(field, format!("must be at most {max} characters")))
        }
        Some(value) if value.chars().any(char::is_control) => {
            Err(Error::invalid(field, "must not contain control characters"))
        }
        Some(value) => Ok(Some(value.to_owned())),
    }
}

pub(crate) fn decimal(raw: Option<&str>, field: &'static str) -> Result<Option<Decimal>, Error> {
    match raw {
        None => Ok(None),
        Some(value) => {
            let parsed =
                Decimal::from_str(value).map_err(|_| Error::invalid(field, "must be a decimal number"))?;
            if parsed.scale() > 6 {
                return Err(Error::invalid(field, "must have at most 6 decimal places"));
            }
            if parsed.abs() >= Decimal::from(100_000_000_000_000i64) {
                return Err(Error::invalid(field, "is out of range"));
            }
            // One representation per value (`50.00` is `50`), whatever the database echoes back.
            Ok(Some(parsed.normalize()))
        }
    }
}

fn currency(raw: Option<&str>) -> Result<Option<Currency>, Error> {
    match raw {
        None => Ok(None),
        Some(code) => Currency::from_str(code)
            .map(Some)
            .map_err(|_| Error::invalid("currency", "must be an ISO 4217 currency code")),
    }
}

/// ISO 3166-1 alpha-2, any case (`de` → `DE`).
fn country(raw: Option<&str>) -> Result<Option<String>, Error> {
    match raw {
        None => Ok(None),
        Some(code) if code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Ok(Some(code.to_ascii_uppercase()))
        }
        Some(_) => Err(Error::invalid("country", "must be an ISO 3166-1 alpha-2 code such as DE")),
    }
}

/// RFC 3339, or milliseconds since the Unix epoch.
fn timestamp(raw: Option<&str>) -> Result<Option<DateTime<Utc>>, Error> {
    let Some(value) = raw else { return Ok(None) };
    if value.bytes().all(|b| b.is_ascii_digit()) {
        let millis: i64 =
            value.parse().map_err(|_| Error::invalid("occurred_at", "epoch milliseconds out of range"))?;
        return Utc
            .timestamp_millis_opt(millis)
            .single()
            .map(Some)
            .ok_or_else(|| Error::invalid("occurred_at", "epoch milliseconds out of range"));
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| Error::invalid("occurred_at", "must be RFC 3339 or epoch milliseconds"))
}

/// Refuses an `occurred_at` more than [`MAX_OCCURRED_AT_SKEW_DAYS`] from the receive time.
fn near_receipt(
    occurred_at: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Error> {
    let Some(t) = occurred_at else { return Ok(None) };
    // Subtracting two representable instants cannot overflow (chrono's range is far smaller
    // than TimeDelta's).
    if (t - received_at).abs() > TimeDelta::days(MAX_OCCURRED_AT_SKEW_DAYS) {
        return Err(Error::invalid(
            "occurred_at",
            format!("must be within {MAX_OCCURRED_AT_SKEW_DAYS} days of the time the postback is received"),
        ));
    }
    Ok(Some(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// When the postbacks of these tests arrive.
    fn received() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_700_000_000_000).unwrap()
    }

    fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Postback, Vec<FieldError>> {
        super::parse(pairs, received())
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        let mut names: Vec<_> = errors.into_iter().map(|e| e.field.into_owned()).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn parses_a_deposit() {
        let p = parse([
            ("click_id", "abc"),
            ("event", "deposit"),
            ("txn_id", "T1"),
            ("amount", "25.50"),
            ("currency", "eur"),
            ("occurred_at", "1700000000000"),
        ])
        .unwrap();
        assert_eq!(p.event, EventKind::Deposit);
        let eur = Currency::parse("EUR", "currency").unwrap();
        assert_eq!(p.amount, Some(Money::new(Decimal::new(2550, 2), eur)));
        assert_eq!(p.subject, Subject::Click { click_id: "abc".into(), player_id: None });
        assert_eq!(p.status, ConversionStatus::Approved);
        assert_eq!(p.dedupe_key(), "txn:T1");
        // A chargeback of T1 that arrived first waits under the key this deposit names.
        let chargeback = parse([("click_id", "abc"), ("event", "chargeback"), ("txn_id", "T1")]).unwrap();
        assert_eq!(p.chargeback_key(), Some(chargeback.dedupe_key()));
        assert_eq!(chargeback.chargeback_key(), None);
    }

    #[test]
    fn names_every_bad_field() {
        let errors =
            parse([("event", "deposit"), ("amount", "lots"), ("occurred_at", "yesterday")]).unwrap_err();
        assert_eq!(fields(errors), vec!["amount", "click_id", "occurred_at", "txn_id"]);
        let errors = parse([("player_id", "p"), ("event", "trade"), ("txn_id", "t")]).unwrap_err();
        assert_eq!(fields(errors), vec!["lots"]);
        let errors = parse([
            ("player_id", "p"),
            ("event", "deposit"),
            ("txn_id", "t"),
            ("amount", "-1"),
            ("currency", "USD"),
        ])
        .unwrap_err();
        assert_eq!(fields(errors), vec!["amount"]);
        let errors =
            parse([("player_id", "p"), ("event", "registration"), ("country", "Germany")]).unwrap_err();
        assert_eq!(fields(errors), vec!["country"]);
        let errors = parse([
            ("player_id", "p"),
            ("event", "revenue"),
            ("txn_id", "t"),
            ("amount", "5"),
            ("currency", "USD"),
            ("turnover", "-1"),
        ])
        .unwrap_err();
        assert_eq!(fields(errors), vec!["turnover"]);
    }

    #[test]
    fn registration_dedupes_by_player() {
        let p = parse([("player_id", "p1"), ("click_id", "c"), ("event", "registration")]).unwrap();
        assert_eq!(p.dedupe_key(), "registration:p1");
    }

    #[test]
    fn occurred_at_stays_within_a_year_of_receipt() {
        let at = |value: &str| parse([("player_id", "p"), ("event", "registration"), ("occurred_at", value)]);
        // Epoch milliseconds chrono can represent, but whose arithmetic overflows downstream.
        assert_eq!(fields(at("8210266876799999").unwrap_err()), vec!["occurred_at"]);
        assert_eq!(fields(at("9999-12-31T23:59:59Z").unwrap_err()), vec!["occurred_at"]);
        assert_eq!(fields(at("1970-01-01T00:00:00Z").unwrap_err()), vec!["occurred_at"]);
        let a_year = TimeDelta::days(MAX_OCCURRED_AT_SKEW_DAYS);
        for edge in [received() - a_year, received() + a_year] {
            assert_eq!(at(&edge.timestamp_millis().to_string()).unwrap().occurred_at, Some(edge));
        }
        let beyond = received() + a_year + TimeDelta::milliseconds(1);
        assert!(at(&beyond.to_rfc3339()).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(pairs in proptest::collection::vec(("(click_id|player_id|event|txn_id|amount|currency|lots|instrument|status|occurred_at|x)", "\\PC{0,40}"), 0..12)) {
            let _ = parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
    }
}
