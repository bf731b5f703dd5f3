use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

/// A calendar month in UTC, written `YYYY-MM`: the unit of period close. UTC rather than the
/// tenant's zone keeps month boundaries identical for every tenant and replica; a conversion
/// at 23:30 local time on the last day may therefore fall into the next month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: i32,
    month: u32,
}

impl Period {
    pub fn parse(raw: &str, field: &'static str) -> Result<Period, clickledger_domain::Error> {
        let invalid = || clickledger_domain::Error::invalid(field, "must be a month written YYYY-MM");
        let (year, month) = raw.trim().split_once('-').ok_or_else(invalid)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(invalid());
        }
        let year: i32 = year.parse().map_err(|_| invalid())?;
        let month: u32 = month.parse().map_err(|_| invalid())?;
        if !(1..=12).contains(&month) || !(2000..=9999).contains(&year) {
            return Err(invalid());
        }
        Ok(Period { year, month })
    }

    pub fn of(at: DateTime<Utc>) -> Period {
        Period { year: at.year(), month: at.month() }
    }

    /// The first instant of the month.
    pub fn start(self) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Utc.from_utc_datetime(&t))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// The first instant after the month.
    pub fn end(self) -> DateTime<Utc> {
        self.next().start()
    }

    pub fn next(self) -> Period {
        if self.month == 12 {
            Period { year: self.year + 1, month: 1 }
        } else {
            Period { year: self.year, month: self.month + 1 }
        }
    }

    pub fn previous(self) -> Period {
        if self.month == 1 {
            Period { year: self.year - 1, month: 12 }
        } else {
            Period { year: self.year, month: self.month - 1 }
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_round_trip_and_step() {
        let p = Period::parse("2026-12", "period").unwrap();
        assert_eq!(p.to_string(), "2026-12");
        assert_eq!(p.next().to_string(), "2027-01");
        assert_eq!(p.next().previous(), p);
        assert_eq!(p.end(), Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(Period::of(Utc.with_ymd_and_hms(2026, 3, 31, 23, 59, 59).unwrap()).to_string(), "2026-03");
        for bad in ["2026-13", "2026-1", "26-01", "march", "", "2026-00"] {
            assert_eq!(Period::parse(bad, "period").unwrap_err().field(), "period");
        }
    }
}
