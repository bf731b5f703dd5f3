use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// A calendar month, written `YYYY-MM`: the unit of period close. Its boundaries are local
/// midnights in the tenant's time zone (operators settle by their own calendar), so the same
/// period is a different span of UTC for a tenant in Malta and one in New York.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: i32,
    month: u32,
}

impl Period {
    pub fn parse(raw: &str, field: &'static str) -> Result<Period, crate::Error> {
        let invalid = || crate::Error::invalid(field, "must be a month written YYYY-MM");
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

    /// The month that `at` falls in, on the calendar of `zone`.
    pub fn of(at: DateTime<Utc>, zone: Tz) -> Period {
        let local = at.with_timezone(&zone);
        Period { year: local.year(), month: local.month() }
    }

    /// The first instant of the month: local midnight of its first day in `zone`. Where a
    /// daylight-saving change skips that midnight, the first local minute that exists.
    pub fn start(self, zone: Tz) -> DateTime<Utc> {
        match NaiveDate::from_ymd_opt(self.year, self.month, 1) {
            Some(first) => local_midnight(first, zone),
            None => DateTime::<Utc>::MIN_UTC,
        }
    }

    /// The first instant after the month.
    pub fn end(self, zone: Tz) -> DateTime<Utc> {
        self.next().start(zone)
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

/// The first instant of `day` in `zone`: its local midnight, or where a daylight-saving change
/// skips that midnight, the first local minute that exists (Samoa skipped a whole day in 2011).
pub fn local_midnight(day: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    (0..=2 * 24 * 60)
        .find_map(|minutes| zone.from_local_datetime(&(midnight + Duration::minutes(minutes))).earliest())
        .map(|local| local.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
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
        assert_eq!(p.end(Tz::UTC), Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(
            Period::of(Utc.with_ymd_and_hms(2026, 3, 31, 23, 59, 59).unwrap(), Tz::UTC).to_string(),
            "2026-03"
        );
        for bad in ["2026-13", "2026-1", "26-01", "march", "", "2026-00"] {
            assert_eq!(Period::parse(bad, "period").unwrap_err().field(), "period");
        }
    }

    #[test]
    fn months_follow_the_tenants_calendar() {
        let new_york = Tz::America__New_York;
        // 23:30 on 31 March in New York is already April in UTC.
        let late = Utc.with_ymd_and_hms(2026, 4, 1, 3, 30, 0).unwrap();
        assert_eq!(Period::of(late, new_york).to_string(), "2026-03");
        assert_eq!(Period::of(late, Tz::UTC).to_string(), "2026-04");
        let march = Period::parse("2026-03", "period").unwrap();
        // March opens in winter time (UTC-5) and closes in summer time (UTC-4).
        assert_eq!(march.start(new_york), Utc.with_ymd_and_hms(2026, 3, 1, 5, 0, 0).unwrap());
        assert_eq!(march.end(new_york), Utc.with_ymd_and_hms(2026, 4, 1, 4, 0, 0).unwrap());
        assert!(march.start(new_york) <= late && late < march.end(new_york));
        // Malta is ahead of UTC: its April starts on 31 March in UTC.
        let april = march.next();
        assert_eq!(april.start(Tz::Europe__Malta), Utc.with_ymd_and_hms(2026, 3, 31, 22, 0, 0).unwrap());
    }

    #[test]
    fn a_month_whose_first_midnight_does_not_exist_starts_at_the_first_minute_that_does() {
        // Paraguay sprang forward at local midnight on Sunday 1 October 2023 (00:00 → 01:00).
        let asuncion = Tz::America__Asuncion;
        let october = Period::parse("2023-10", "period").unwrap();
        let start = october.start(asuncion);
        assert_eq!(start, Utc.with_ymd_and_hms(2023, 10, 1, 4, 0, 0).unwrap());
        assert_eq!(Period::of(start, asuncion), october);
        assert_eq!(Period::of(start - Duration::seconds(1), asuncion), october.previous());
    }
}
