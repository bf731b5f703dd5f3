//! Money: a `rust_decimal` amount in an ISO 4217 currency. Never floats.
//!
//! **Rounding rule.** Every amount that is booked (a ledger entry, a converted amount, a split
//! part) is rounded to its currency's minor unit with banker's rounding
//! ([`RoundingStrategy::MidpointNearestEven`]). A commission ledger rounds millions of small
//! per-event amounts; half-away-from-zero would push every exact tie the same way and drift
//! systematically in the affiliate's favour, while ties-to-even has no expected bias. It is
//! also symmetric under negation, so a reversal rounds to exactly the negation of what it
//! reverses. Intermediate values (a player's turnover, a rate product) stay unrounded.

use std::fmt;
use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The one rounding rule for booked amounts; see the module documentation for why.
pub const ROUNDING: RoundingStrategy = RoundingStrategy::MidpointNearestEven;

/// The largest magnitude accepted from outside. Far above any real deposit or revenue report
/// (10¹⁵ of a major unit), yet far enough below `Decimal::MAX` (≈ 7.9 × 10²⁸) that products
/// with percentages and exchange rates cannot overflow.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(0xA4C6_8000, 0x0003_8D7E, 0, false, 0);

/// Exchange rates are bounded for the same reason as amounts.
const MAX_FX_RATE: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

const NOT_A_CURRENCY: &str = "must be an ISO 4217 currency code such as USD or EUR";

/// ISO 4217 alphabetic codes with their minor-unit exponents, sorted for binary search.
/// Codes without a minor unit (metals, SDR, test codes) are left out: nothing is paid in
/// them. A few recently withdrawn codes (ANG, CUC, HRK, SLL, ZWL) stay, because operators
/// still report historical transactions in them.
#[rustfmt::skip]
const ISO_4217: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2), ("AUD", 2),
    ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2), ("BHD", 3), ("BIF", 0),
    ("BMD", 2), ("BND", 2), ("BOB", 2), ("BOV", 2), ("BRL", 2), ("BSD", 2), ("BTN", 2), ("BWP", 2),
    ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHE", 2), ("CHF", 2), ("CHW", 2), ("CLF", 4),
    ("CLP", 0), ("CNY", 2), ("COP", 2), ("COU", 2), ("CRC", 2), ("CUC", 2), ("CUP", 2), ("CVE", 2),
    ("CZK", 2), ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2),
    ("EUR", 2), ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2), ("GMD", 2),
    ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HRK", 2), ("HTG", 2), ("HUF", 2),
    ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0), ("JMD", 2), ("JOD", 3),
    ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0), ("KPW", 2), ("KRW", 0), ("KWD", 3),
    ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2), ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3),
    ("MAD", 2), ("MDL", 2), ("MGA", 2), ("MKD", 2), ("MMK", 2), ("MNT", 2), ("MOP", 2), ("MRU", 2),
    ("MUR", 2), ("MVR", 2), ("MWK", 2), ("MXN", 2), ("MXV", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2),
    ("NGN", 2), ("NIO", 2), ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2),
    ("PGK", 2), ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2),
    ("RUB", 2), ("RWF", 0), ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2), ("SGD", 2),
    ("SHP", 2), ("SLE", 2), ("SLL", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2), ("SVC", 2),
    ("SYP", 2), ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3), ("TOP", 2), ("TRY", 2),
    ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0), ("USD", 2), ("USN", 2), ("UYI", 0),
    ("UYU", 2), ("UYW", 4), ("UZS", 2), ("VED", 2), ("VES", 2), ("VND", 0), ("VUV", 0), ("WST", 2),
    ("XAF", 0), ("XCD", 2), ("XCG", 2), ("XOF", 0), ("XPF", 0), ("YER", 2), ("ZAR", 2), ("ZMW", 2),
    ("ZWG", 2), ("ZWL", 2),
];

/// An ISO 4217 currency with its minor-unit exponent (2 for USD cents, 0 for JPY, 3 for KWD).
/// Only values from the table exist, so a `Currency` in hand is always valid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    exponent: u8,
}

impl Currency {
    pub const USD: Currency = Currency { code: "USD", exponent: 2 };
    pub const EUR: Currency = Currency { code: "EUR", exponent: 2 };
    pub const GBP: Currency = Currency { code: "GBP", exponent: 2 };
    pub const JPY: Currency = Currency { code: "JPY", exponent: 0 };

    /// Parses an alphabetic code, ignoring case and surrounding whitespace (`eur` → `EUR`);
    /// `field` names the input in the error.
    pub fn parse(raw: &str, field: &'static str) -> Result<Currency, Error> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() != 3 {
            return Err(Error::invalid(field, NOT_A_CURRENCY));
        }
        ISO_4217
            .binary_search_by(|(known, _)| (*known).cmp(code.as_str()))
            .map(|i| Currency { code: ISO_4217[i].0, exponent: ISO_4217[i].1 })
            .map_err(|_| Error::invalid(field, NOT_A_CURRENCY))
    }

    pub fn code(self) -> &'static str {
        self.code
    }

    /// Decimal places of the minor unit.
    pub fn exponent(self) -> u32 {
        u32::from(self.exponent)
    }

    /// The smallest payable amount: 0.01 for USD, 1 for JPY.
    pub fn minor_unit(self) -> Decimal {
        Decimal::new(1, self.exponent())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl FromStr for Currency {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Currency::parse(s, "currency")
    }
}

impl TryFrom<String> for Currency {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Currency::parse(&s, "currency")
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code.to_owned()
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Currency::parse(&raw, "currency").map_err(serde::de::Error::custom)
    }
}

/// Rounds to the currency's minor unit with [`ROUNDING`].
pub fn round_to_minor(amount: Decimal, currency: Currency) -> Decimal {
    amount.round_dp_with_strategy(currency.exponent(), ROUNDING)
}

/// An amount in a currency. Not necessarily rounded: see [`Money::rounded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub const fn new(amount: Decimal, currency: Currency) -> Money {
        Money { amount, currency }
    }

    pub const fn zero(currency: Currency) -> Money {
        Money { amount: Decimal::ZERO, currency }
    }

    /// An amount that arrived from outside, checked against [`MAX_AMOUNT`] so that later
    /// arithmetic cannot overflow.
    pub fn from_input(amount: Decimal, currency: Currency, field: &'static str) -> Result<Money, Error> {
        if amount.abs() > MAX_AMOUNT {
            return Err(Error::invalid(field, "amount is out of range"));
        }
        Ok(Money { amount, currency })
    }

    /// Rounded to the minor unit with [`ROUNDING`].
    pub fn rounded(self) -> Money {
        Money { amount: round_to_minor(self.amount, self.currency), currency: self.currency }
    }

    pub fn is_rounded(self) -> bool {
        self.amount.round_dp(self.currency.exponent()) == self.amount
    }

    pub fn is_zero(self) -> bool {
        self.amount.is_zero()
    }

    pub fn checked_add(self, other: Money) -> Result<Money, Error> {
        self.same_currency(other)?;
        let amount = self.amount.checked_add(other.amount).ok_or_else(out_of_range)?;
        Ok(Money { amount, currency: self.currency })
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, Error> {
        self.checked_add(-other)
    }

    /// The exact product with `factor`, unrounded.
    pub fn times(self, factor: Decimal) -> Result<Money, Error> {
        let amount = self.amount.checked_mul(factor).ok_or_else(out_of_range)?;
        Ok(Money { amount, currency: self.currency })
    }

    /// `percent` % of this amount, rounded to the minor unit.
    pub fn percent(self, percent: Decimal) -> Result<Money, Error> {
        let amount = self.amount.checked_mul(percent).ok_or_else(out_of_range)? / Decimal::ONE_HUNDRED;
        Ok(Money { amount, currency: self.currency }.rounded())
    }

    /// The rounded amount as a count of minor units (cents).
    pub fn minor_units(self) -> Result<i128, Error> {
        let scale = Decimal::from(10_i64.pow(self.currency.exponent()));
        self.rounded().amount.checked_mul(scale).and_then(|d| d.to_i128()).ok_or_else(out_of_range)
    }

    pub fn from_minor_units(units: i128, currency: Currency) -> Result<Money, Error> {
        Decimal::try_from_i128_with_scale(units, currency.exponent())
            .map(|amount| Money { amount, currency })
            .map_err(|_| out_of_range())
    }

    fn same_currency(self, other: Money) -> Result<(), Error> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(Error::invalid(
                "currency",
                format!("cannot combine {} with {}", self.currency, other.currency),
            ))
        }
    }
}

impl std::ops::Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money { amount: -self.amount, currency: self.currency }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

fn out_of_range() -> Error {
    Error::invalid("amount", "amount is out of range")
}

/// An operator-supplied exchange rate: one unit of `from` is worth `rate` units of `to`.
/// Clickledger never looks rates up itself; the rate used is recorded on every entry it
/// affected, so a statement can be re-derived by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FxRate {
    from: Currency,
    to: Currency,
    rate: Decimal,
}

impl FxRate {
    /// `rate` must be positive; a rate between a currency and itself must be 1, since anything
    /// else would silently create or destroy money.
    pub fn new(from: Currency, to: Currency, rate: Decimal) -> Result<FxRate, Error> {
        if rate <= Decimal::ZERO || rate > MAX_FX_RATE {
            return Err(Error::invalid("fxRate", "must be positive and at most 1000000000"));
        }
        if from == to && rate != Decimal::ONE {
            return Err(Error::invalid("fxRate", "a rate from a currency to itself must be 1"));
        }
        Ok(FxRate { from, to, rate })
    }

    pub fn from(self) -> Currency {
        self.from
    }

    pub fn to(self) -> Currency {
        self.to
    }

    pub fn rate(self) -> Decimal {
        self.rate
    }

    /// Converts into `to`, rounded to its minor unit with [`ROUNDING`]: a converted amount is
    /// booked money, and rounding it once here means a later percentage is taken of a figure
    /// a person can read off the entry.
    pub fn convert(self, money: Money) -> Result<Money, Error> {
        if money.currency != self.from {
            return Err(Error::invalid(
                "currency",
                format!("the rate converts from {}, not from {}", self.from, money.currency),
            ));
        }
        Ok(Money::new(money.times(self.rate)?.amount, self.to).rounded())
    }
}

/// Splits `total` (rounded first) into parts proportional to `weights`, in whole minor units,
/// by the largest-remainder method: each part gets the floor of its exact quota, and the units
/// left over go one each to the largest fractional remainders, ties to the lowest index. The
/// parts therefore always sum exactly to the rounded total, and the result is deterministic.
/// A negative total is split as its magnitude and negated, so splitting a reversal mirrors
/// splitting the original. Weights must be non-negative with a positive sum.
pub fn split(total: Money, weights: &[Decimal]) -> Result<Vec<Money>, Error> {
    let weight_sum = checked_weight_sum(weights)?;
    let units = total.minor_units()?;
    let magnitude = units.unsigned_abs();
    let magnitude_dec =
        Decimal::try_from_i128_with_scale(units.saturating_abs(), 0).map_err(|_| out_of_range())?;

    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for weight in weights {
        let quota = magnitude_dec
            .checked_mul(*weight)
            .and_then(|q| q.checked_div(weight_sum))
            .ok_or_else(|| Error::invalid("weights", "weights are out of range"))?;
        let floor = quota.floor();
        parts.push(floor.to_u128().unwrap_or(0).min(magnitude));
        remainders.push(quota - floor);
    }
    distribute_leftover(&mut parts, &remainders, magnitude);

    let sign = if units < 0 { -1 } else { 1 };
    parts.into_iter().map(|p| Money::from_minor_units(sign * p as i128, total.currency)).collect()
}

fn checked_weight_sum(weights: &[Decimal]) -> Result<Decimal, Error> {
    if weights.iter().any(|w| w.is_sign_negative() && !w.is_zero()) {
        return Err(Error::invalid("weights", "weights must not be negative"));
    }
    let sum = weights
        .iter()
        .try_fold(Decimal::ZERO, |acc, w| acc.checked_add(*w))
        .ok_or_else(|| Error::invalid("weights", "weights are out of range"))?;
    if sum <= Decimal::ZERO {
        return Err(Error::invalid("weights", "at least one weight must be positive"));
    }
    Ok(sum)
}

/// Hands out (or, if decimal rounding of a quota overshot, takes back) single units until the
/// parts sum to `target`, largest remainder first, ties to the lowest index. With exact
/// quotas the leftover is below the number of parts, so each part gains at most one unit.
fn distribute_leftover(parts: &mut [u128], remainders: &[Decimal], target: u128) {
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| remainders[b].cmp(&remainders[a]).then(a.cmp(&b)));
    let mut sum: u128 = parts.iter().sum();
    while sum < target {
        for &i in &order {
            if sum == target {
                break;
            }
            parts[i] += 1;
            sum += 1;
        }
    }
    while sum > target {
        for &i in order.iter().rev() {
            if sum == target {
                break;
            }
            if parts[i] > 0 {
                parts[i] -= 1;
                sum -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Amounts are written as text in tests, exactly as an operator would send them.
    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn usd(amount: Decimal) -> Money {
        Money::new(amount, Currency::USD)
    }

    #[test]
    fn the_table_is_sorted_unique_uppercase_and_has_known_exponents() {
        assert!(ISO_4217.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(
            ISO_4217
                .iter()
                .all(|(c, e)| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) && *e <= 4)
        );
        let exponent = |code| Currency::parse(code, "currency").unwrap().exponent();
        assert_eq!((exponent("USD"), exponent("JPY"), exponent("KWD"), exponent("CLF")), (2, 0, 3, 4));
    }

    #[test]
    fn parse_is_case_insensitive_and_rejects_unknown_codes() {
        assert_eq!(Currency::parse(" eur ", "currency").unwrap(), Currency::EUR);
        assert_eq!(Currency::parse("Jpy", "currency").unwrap().to_string(), "JPY");
        for bad in ["", "US", "USDD", "XAU", "ZZZ", "€", "U$D"] {
            assert_eq!(Currency::parse(bad, "cpa.currency").unwrap_err().field(), "cpa.currency", "{bad}");
        }
    }

    #[test]
    fn serde_form_is_the_code() {
        assert_eq!(String::from(Currency::EUR), "EUR");
        assert_eq!(Currency::try_from(String::from("gbp")).unwrap(), Currency::GBP);
        assert!(Currency::try_from(String::from("GBX")).is_err());
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000_000_000_i64));
    }

    #[test]
    fn rounding_is_bankers() {
        let cases = [
            (d("0.125"), d("0.12")),
            (d("0.135"), d("0.14")),
            (d("-0.125"), d("-0.12")),
            (d("2.5"), d("2.5")),
            (d("1.005"), d("1.00")),
            (d("1.0051"), d("1.01")),
        ];
        for (input, expected) in cases {
            assert_eq!(usd(input).rounded().amount, expected, "{input}");
        }
        assert_eq!(Money::new(d("2.5"), Currency::JPY).rounded().amount, d("2"));
        assert_eq!(Money::new(d("3.5"), Currency::JPY).rounded().amount, d("4"));
    }

    #[test]
    fn fx_converts_rounds_and_refuses_the_wrong_currency() {
        let rate = FxRate::new(Currency::EUR, Currency::USD, d("1.0856")).unwrap();
        let converted = rate.convert(Money::new(d("100"), Currency::EUR)).unwrap();
        assert_eq!(converted, usd(d("108.56")));
        assert_eq!(rate.convert(usd(d("1"))).unwrap_err().field(), "currency");
        assert_eq!(FxRate::new(Currency::EUR, Currency::USD, d("0")).unwrap_err().field(), "fxRate");
        assert!(FxRate::new(Currency::EUR, Currency::EUR, d("1.1")).is_err());
        let to_yen = FxRate::new(Currency::USD, Currency::JPY, d("151.37")).unwrap();
        assert_eq!(to_yen.convert(usd(d("10"))).unwrap(), Money::new(d("1514"), Currency::JPY));
    }

    #[test]
    fn split_worked_examples() {
        let cases: &[(Decimal, &[Decimal], &[Decimal])] = &[
            (d("100"), &[d("1"), d("1"), d("1")], &[d("33.34"), d("33.33"), d("33.33")]),
            (d("0.05"), &[d("0.5"), d("0.5")], &[d("0.03"), d("0.02")]),
            (d("10"), &[d("0.2"), d("0.3"), d("0.5")], &[d("2"), d("3"), d("5")]),
            (d("1"), &[d("0.335"), d("0.335"), d("0.33")], &[d("0.34"), d("0.33"), d("0.33")]),
            (d("-0.05"), &[d("1"), d("1")], &[d("-0.03"), d("-0.02")]),
            (d("7"), &[d("0"), d("1")], &[d("0"), d("7")]),
        ];
        for (total, weights, expected) in cases {
            let parts: Vec<Decimal> = split(usd(*total), weights).unwrap().iter().map(|m| m.amount).collect();
            assert_eq!(&parts, expected, "{total} by {weights:?}");
        }
    }

    #[test]
    fn split_rejects_bad_weights() {
        for weights in [&[][..], &[d("0")], &[d("1"), d("-1")]] {
            assert_eq!(split(usd(d("1")), weights).unwrap_err().field(), "weights");
        }
    }

    fn amount() -> impl Strategy<Value = Decimal> {
        (-10_000_000_000_i64..10_000_000_000, 0_u32..6).prop_map(|(m, s)| Decimal::new(m, s))
    }

    fn weight() -> impl Strategy<Value = Decimal> {
        (0_i64..1_000_000, 0_u32..8).prop_map(|(m, s)| Decimal::new(m, s))
    }

    proptest! {
        #[test]
        fn split_sums_exactly_to_the_rounded_total(total in amount(), mut weights in prop::collection::vec(weight(), 1..12)) {
            weights[0] += Decimal::ONE;
            let total = usd(total);
            let parts = split(total, &weights).unwrap();
            prop_assert_eq!(parts.len(), weights.len());
            let sum = parts.iter().try_fold(Money::zero(Currency::USD), |acc, p| acc.checked_add(*p)).unwrap();
            prop_assert_eq!(sum, total.rounded());
            prop_assert!(parts.iter().all(|p| p.is_rounded()));
            if !total.amount.is_sign_negative() {
                prop_assert!(parts.iter().all(|p| p.amount >= Decimal::ZERO));
            }
        }

        #[test]
        fn split_of_a_negation_is_the_negated_split(total in amount(), weights in prop::collection::vec(1_i64..1000, 1..8)) {
            let weights: Vec<Decimal> = weights.into_iter().map(Decimal::from).collect();
            let parts = split(usd(total), &weights).unwrap();
            let negated: Vec<Money> = split(-usd(total), &weights).unwrap().into_iter().map(|p| -p).collect();
            prop_assert_eq!(parts, negated);
        }

        #[test]
        fn currency_parse_and_display_round_trip(i in 0..ISO_4217.len(), lower in any::<bool>()) {
            let code = ISO_4217[i].0;
            let input = if lower { code.to_ascii_lowercase() } else { code.to_owned() };
            let currency = Currency::parse(&input, "currency").unwrap();
            prop_assert_eq!(currency.to_string(), code);
            prop_assert_eq!(currency.to_string().parse::<Currency>().unwrap(), currency);
        }

        #[test]
        fn parsing_arbitrary_strings_never_panics(raw in ".{0,12}") {
            if let Ok(currency) = Currency::parse(&raw, "currency") {
                prop_assert_eq!(currency.code(), raw.trim().to_ascii_uppercase());
            }
        }

        #[test]
        fn money_never_drifts_under_repeated_add_and_sub(start in amount(), steps in prop::collection::vec(amount(), 0..50)) {
            let start = usd(start);
            let mut running = start;
            for step in &steps {
                running = running.checked_add(usd(*step)).unwrap();
            }
            for step in steps.iter().rev() {
                running = running.checked_sub(usd(*step)).unwrap();
            }
            prop_assert_eq!(running, start);
        }

        #[test]
        fn minor_units_round_trip(units in -1_000_000_000_000_i64..1_000_000_000_000) {
            let money = Money::from_minor_units(i128::from(units), Currency::USD).unwrap();
            prop_assert_eq!(money.minor_units().unwrap(), i128::from(units));
        }
    }
}
