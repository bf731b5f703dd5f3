//! A decimal column that both databases store and read back exactly.
//!
//! PostgreSQL has `NUMERIC(p, s)`. SQLite has no decimal type: sea-orm declared such columns
//! `real(p, s)` and read them back through `f64`, so `98765432109.123456` came back as
//! `98765432109.1235`. On SQLite these columns are therefore `TEXT` holding the value written
//! at the column's scale (`"50.000000"`, `"-0.333333"`), which is what PostgreSQL's
//! `NUMERIC(p, s)` hands back too: both databases read the same `Decimal`, scale included.
//!
//! Text rather than integer minor units, because:
//! - one bound value suits both databases: sea-query binds a `Decimal` as its text on SQLite and
//!   as `NUMERIC` on PostgreSQL, so no statement needs to know which backend it runs on;
//! - no range of its own: `i64` micro-units end at 9.2 × 10¹², below what `NUMERIC(20, 6)`
//!   holds, and 12-place exchange rates would end at 9.2 × 10⁶;
//! - the stored text is the value a person reads in the database file.
//!
//! The price: on SQLite, SQL must not compute on these columns (text compares as text, and
//! `SUM` goes through floats). Sums, comparisons and orderings of amounts are done in Rust over
//! exact values; no query filters, sorts or aggregates on a decimal column.

use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, DbErr, QueryResult, TryGetError, TryGetable, Value};

/// A decimal kept at `SCALE` places: 6 for amounts, lots and shares, 12 for exchange rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ExactDecimal<const SCALE: u32>(Decimal);

impl<const SCALE: u32> ExactDecimal<SCALE> {
    /// `value` at the column's scale. More places than that are rounded half away from zero,
    /// as PostgreSQL's `NUMERIC(p, s)` does, so both databases store the same value.
    pub fn new(value: Decimal) -> Self {
        let mut value = value.round_dp_with_strategy(SCALE, RoundingStrategy::MidpointAwayFromZero);
        value.rescale(SCALE);
        ExactDecimal(value)
    }

    /// The stored value, at the column's scale.
    pub fn get(self) -> Decimal {
        self.0
    }

    /// The stored value without the column's padding, as it was reported: `0.5` for a share
    /// stored as `0.500000`, `1.1` for a rate stored as `1.100000000000`. What the API shows
    /// for values that are not booked amounts (those show their currency's decimals).
    pub fn normalized(self) -> Decimal {
        self.0.normalize()
    }
}

impl<const SCALE: u32> From<Decimal> for ExactDecimal<SCALE> {
    fn from(value: Decimal) -> Self {
        ExactDecimal::new(value)
    }
}

impl<const SCALE: u32> From<ExactDecimal<SCALE>> for Value {
    fn from(value: ExactDecimal<SCALE>) -> Value {
        Value::Decimal(Some(value.0))
    }
}

impl<const SCALE: u32> TryGetable for ExactDecimal<SCALE> {
    fn try_get_by<I: ColIdx>(res: &QueryResult, index: I) -> Result<Self, TryGetError> {
        if res.try_as_sqlite_row().is_none() {
            return Decimal::try_get_by(res, index).map(ExactDecimal);
        }
        // Never through `f64` (sea-orm's own `Decimal` does that on SQLite): the text itself.
        let text = String::try_get_by(res, index)?;
        text.parse::<Decimal>().map(ExactDecimal).map_err(|err| {
            TryGetError::DbErr(DbErr::Type(format!("decimal column {index:?} holds `{text}`: {err}")))
        })
    }
}

impl<const SCALE: u32> ValueType for ExactDecimal<SCALE> {
    fn try_from(value: Value) -> Result<Self, ValueTypeErr> {
        match value {
            Value::Decimal(Some(decimal)) => Ok(ExactDecimal::new(decimal)),
            _ => Err(ValueTypeErr),
        }
    }

    fn type_name() -> String {
        format!("ExactDecimal<{SCALE}>")
    }

    fn array_type() -> ArrayType {
        ArrayType::Decimal
    }

    fn column_type() -> ColumnType {
        ColumnType::Decimal(None)
    }
}

impl<const SCALE: u32> Nullable for ExactDecimal<SCALE> {
    fn null() -> Value {
        Value::Decimal(None)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn values_are_kept_at_the_columns_scale_and_extra_places_round_like_postgresql() {
        assert_eq!(ExactDecimal::<6>::new(d("50")).get().to_string(), "50.000000");
        assert_eq!(ExactDecimal::<6>::new(d("98765432109.123456")).get().to_string(), "98765432109.123456");
        assert_eq!(ExactDecimal::<12>::new(d("1.1")).get().to_string(), "1.100000000000");
        assert_eq!(ExactDecimal::<6>::new(d("0.0000005")).get().to_string(), "0.000001");
        assert_eq!(ExactDecimal::<6>::new(d("-0.0000005")).get().to_string(), "-0.000001");
        assert_eq!(ExactDecimal::<2>::new(d("-12.345")).get().to_string(), "-12.35");
    }

    #[test]
    fn what_is_bound_carries_the_columns_scale() {
        // sea-query binds a decimal on SQLite as its `to_string()`: "-0.500000".
        let Value::Decimal(Some(bound)) = ExactDecimal::<6>::new(d("-0.5")).into() else {
            panic!("not a decimal")
        };
        assert_eq!(bound.to_string(), "-0.500000");
    }
}
