//! The time window of a `stats` request: either fixed (`from`/`to`) or a rolling period
//! (`TODAY`, `LAST_24_HOURS`, `THIS_MONTH`) that is resolved against the clock at each read,
//! in the request's time zone. A live report (`statsLive`) of a rolling period moves to the
//! next period when the current one ends: its end is when to read again.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::Error;
use crate::period::{Period, local_midnight};
use crate::reporting::hour_of;

/// A period that moves with the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollingPeriod {
    /// From local midnight today to local midnight tomorrow, in the request's time zone.
    Today,
    /// The 24 whole UTC hours ending with the current one (the rollups are hourly).
    Last24Hours,
    /// The calendar month containing now, in the request's time zone.
    ThisMonth,
}

impl RollingPeriod {
    pub const ALL: [RollingPeriod; 3] =
        [RollingPeriod::Today, RollingPeriod::Last24Hours, RollingPeriod::ThisMonth];

    pub fn as_str(self) -> &'static str {
        match self {
            RollingPeriod::Today => "TODAY",
            RollingPeriod::Last24Hours => "LAST_24_HOURS",
            RollingPeriod::ThisMonth => "THIS_MONTH",
        }
    }

    /// Case-insensitive; `field` names the input on error.
    pub fn parse(raw: &str, field: &'static str) -> Result<RollingPeriod, Error> {
        let upper = raw.trim().to_ascii_uppercase();
        RollingPeriod::ALL
            .into_iter()
            .find(|p| p.as_str() == upper)
            .ok_or_else(|| Error::invalid(field, "must be TODAY, LAST_24_HOURS or THIS_MONTH"))
    }

    /// The period containing `now`, as `[from, to)`; `to` is when the next one starts.
    pub fn window(self, now: DateTime<Utc>, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            RollingPeriod::Today => {
                let today = now.with_timezone(&zone).date_naive();
                let from = local_midnight(today, zone);
                let to = today
                    .succ_opt()
                    .map_or(DateTime::<Utc>::MAX_UTC, |tomorrow| local_midnight(tomorrow, zone));
                (from, to)
            }
            RollingPeriod::Last24Hours => {
                let to = hour_of(now) + Duration::hours(1);
                (to - Duration::hours(24), to)
            }
            RollingPeriod::ThisMonth => {
                let month = Period::of(now, zone);
                (month.start(zone), month.end(zone))
            }
        }
    }
}

/// The window a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsWindow {
    Fixed {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    /// `period` as of `now` (the read's clock).
    Rolling {
        period: RollingPeriod,
        now: DateTime<Utc>,
    },
}

impl Default for StatsWindow {
    fn default() -> Self {
        StatsWindow::Fixed { from: DateTime::<Utc>::UNIX_EPOCH, to: DateTime::<Utc>::UNIX_EPOCH }
    }
}

impl StatsWindow {
    /// Exactly one of the two forms: `from` and `to`, or `period` (read as of `now`).
    pub fn of_input(
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        period: Option<RollingPeriod>,
        now: DateTime<Utc>,
    ) -> Result<StatsWindow, Error> {
        match (from, to, period) {
            (None, None, Some(period)) => Ok(StatsWindow::Rolling { period, now }),
            (_, _, Some(_)) => {
                Err(Error::invalid("period", "give either `period` or `from` and `to`, not both"))
            }
            (Some(from), Some(to), None) => Ok(StatsWindow::Fixed { from, to }),
            (None, _, None) => Err(Error::invalid("from", "is required unless `period` is given")),
            (Some(_), None, None) => Err(Error::invalid("to", "is required unless `period` is given")),
        }
    }

    /// The same window read at `now`: a rolling period moves, a fixed window does not.
    pub fn at(self, now: DateTime<Utc>) -> StatsWindow {
        match self {
            StatsWindow::Rolling { period, .. } => StatsWindow::Rolling { period, now },
            fixed => fixed,
        }
    }

    pub fn is_rolling(self) -> bool {
        matches!(self, StatsWindow::Rolling { .. })
    }

    /// `[from, to)` in `zone`.
    pub fn bounds(self, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            StatsWindow::Fixed { from, to } => (from, to),
            StatsWindow::Rolling { period, now } => period.window(now, zone),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn today_is_the_local_day() {
        let malta = Tz::Europe__Malta;
        // 23:30 UTC on 6 December is already 7 December in Malta (UTC+1).
        let (from, to) = RollingPeriod::Today.window(utc(2026, 12, 6, 23, 30), malta);
        assert_eq!((from, to), (utc(2026, 12, 6, 23, 0), utc(2026, 12, 7, 23, 0)));
        let (from, to) = RollingPeriod::Today.window(utc(2026, 12, 6, 23, 30), Tz::UTC);
        assert_eq!((from, to), (utc(2026, 12, 6, 0, 0), utc(2026, 12, 7, 0, 0)));
        // The day New York springs forward has 23 hours.
        let (from, to) = RollingPeriod::Today.window(utc(2026, 3, 8, 12, 0), Tz::America__New_York);
        assert_eq!((from, to), (utc(2026, 3, 8, 5, 0), utc(2026, 3, 9, 4, 0)));
    }

    #[test]
    fn the_last_24_hours_end_with_the_current_hour_and_this_month_is_the_local_month() {
        let (from, to) = RollingPeriod::Last24Hours.window(utc(2026, 12, 7, 5, 42), Tz::Europe__Malta);
        assert_eq!((from, to), (utc(2026, 12, 6, 6, 0), utc(2026, 12, 7, 6, 0)));
        let (from, to) = RollingPeriod::ThisMonth.window(utc(2026, 11, 30, 23, 30), Tz::Europe__Malta);
        assert_eq!((from, to), (utc(2026, 11, 30, 23, 0), utc(2026, 12, 31, 23, 0)));
    }

    #[test]
    fn exactly_one_form_is_accepted_and_the_error_names_the_field() {
        let now = utc(2026, 12, 7, 5, 0);
        let field =
            |from, to, period| StatsWindow::of_input(from, to, period, now).unwrap_err().field().to_owned();
        assert_eq!(field(None, None, None), "from");
        assert_eq!(field(Some(now), None, None), "to");
        assert_eq!(field(None, Some(now), None), "from");
        assert_eq!(field(Some(now), Some(now), Some(RollingPeriod::Today)), "period");
        assert_eq!(field(None, Some(now), Some(RollingPeriod::Today)), "period");
        assert_eq!(
            StatsWindow::of_input(None, None, Some(RollingPeriod::Today), now),
            Ok(StatsWindow::Rolling { period: RollingPeriod::Today, now })
        );
        assert_eq!(
            StatsWindow::of_input(Some(now), Some(now), None, now),
            Ok(StatsWindow::Fixed { from: now, to: now })
        );
        assert_eq!(RollingPeriod::parse(" last_24_hours", "period"), Ok(RollingPeriod::Last24Hours));
        assert_eq!(RollingPeriod::parse("YESTERDAY", "period").unwrap_err().field(), "period");
    }

    fn zones() -> impl Strategy<Value = Tz> {
        proptest::sample::select(vec![
            Tz::UTC,
            Tz::Europe__Malta,
            Tz::America__New_York,
            Tz::Asia__Kolkata,
            Tz::Asia__Kathmandu,
            Tz::Australia__Lord_Howe,
            Tz::America__Asuncion,
            Tz::Pacific__Apia,
        ])
    }

    fn periods() -> impl Strategy<Value = RollingPeriod> {
        proptest::sample::select(RollingPeriod::ALL.to_vec())
    }

    proptest! {
        /// Now is inside its period; the period holds until its end, where the next one
        /// begins: right at it for calendar periods, an hour on for the last 24 hours.
        #[test]
        fn a_period_contains_now_holds_until_its_end_and_then_moves_on(
            seconds in 946_684_800i64..4_102_444_800,
            zone in zones(),
            period in periods(),
        ) {
            let now = Utc.timestamp_opt(seconds, 0).unwrap();
            let (from, to) = period.window(now, zone);
            prop_assert!(from <= now && now < to, "{from} <= {now} < {to}");
            prop_assert_eq!(period.window(to - Duration::seconds(1), zone), (from, to));
            let (next_from, next_to) = period.window(to, zone);
            prop_assert!(next_to > to);
            if period == RollingPeriod::Last24Hours {
                prop_assert_eq!(period.window(to - Duration::hours(1), zone), (from, to));
                prop_assert_eq!((next_from, next_to), (from + Duration::hours(1), to + Duration::hours(1)));
            } else {
                prop_assert_eq!(period.window(from, zone), (from, to));
                prop_assert_eq!(next_from, to);
            }
            let hours = (to - from).num_minutes() as f64 / 60.0;
            match period {
                RollingPeriod::Last24Hours => prop_assert_eq!(hours, 24.0),
                // Daylight saving moves a day by at most an hour.
                RollingPeriod::Today => prop_assert!((23.0..=25.0).contains(&hours), "{hours}"),
                RollingPeriod::ThisMonth => prop_assert!((27.0 * 24.0..=31.0 * 24.0 + 1.0).contains(&hours), "{hours}"),
            }
        }
    }
}
