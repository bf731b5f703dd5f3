//! Which rollups answer a `stats` request, so a report over months reads thousands of rows,
//! not millions.
//!
//! Three rollups hold the same counters at three grains (see the migrations
//! `m20261206_000009_stats_rollups` and `m20261207_000024_coarse_rollups`):
//!
//! - **detailed**: per UTC hour and full dimension key (link, sub-IDs, country, device, …);
//! - **hourly by affiliate and campaign**: per UTC hour, affiliate and campaign;
//! - **daily by affiliate and campaign**: per local day of the tenant's time zone, affiliate
//!   and campaign. A UTC hour belongs to the local day its first instant falls on (in zones
//!   whose offset is not whole hours, an hour that straddles midnight counts in the day it
//!   starts, as `stats` has always counted it).
//!
//! A request that groups and filters only by affiliate, campaign and time reads the coarse
//! rollups: whole local days from the daily one when it asks in the tenant's zone and not by
//! hour, the partial days at either end from the hourly one. Anything else reads the
//! detailed rollup.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use crate::reporting::{Dimension, StatsRequest};

/// The grain of the hourly rows a request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HourlyGrain {
    Detailed,
    ByAffiliateAndCampaign,
}

/// Where a request's rows come from: hourly rows of `grain` over `hours` (disjoint UTC hour
/// ranges, each `[from, to)`), and daily rows of the local days `days` (`[first, end)`, as
/// [`local_day`] numbers) when whole days can be read at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    pub grain: HourlyGrain,
    pub hours: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    pub days: Option<(i64, i64)>,
}

/// The local day (days since 1970-01-01 in `zone`) that `at` falls on.
pub fn local_day(at: DateTime<Utc>, zone: Tz) -> i64 {
    days_since_epoch(at.with_timezone(&zone).date_naive())
}

fn days_since_epoch(date: NaiveDate) -> i64 {
    (date - NaiveDate::default()).num_days()
}

/// An instant inside local day `day` of `zone` (its noon, which every zone has), to stand
/// for the day's rows wherever a row needs a time.
pub fn instant_in_day(day: i64, zone: Tz) -> DateTime<Utc> {
    let date = NaiveDate::default() + Duration::days(day);
    let noon = date.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default());
    zone.from_local_datetime(&noon)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or_else(|| noon.and_utc())
}

/// The zone's offset from UTC, in seconds, over `[from, to)` hour by hour: `(until, offset)`
/// pairs, each offset holding for the hours before `until` (epoch seconds) and after the
/// previous pair's; the last holds up to `to`. Lets SQL compute [`local_day`] of a stored hour:
/// `(hour + offset) / 86400`.
pub fn offsets_by_hour(zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(i64, i64)> {
    let offset =
        |at: DateTime<Utc>| i64::from(zone.offset_from_utc_datetime(&at.naive_utc()).fix().local_minus_utc());
    let mut segments = Vec::new();
    let mut at = crate::reporting::hour_of(from);
    let mut current = offset(at);
    while at < to {
        let next = offset(at);
        if next != current {
            segments.push((at.timestamp(), current));
            current = next;
        }
        at += Duration::hours(1);
    }
    segments.push((to.timestamp(), current));
    segments
}

/// Dimensions the coarse rollups keep.
fn coarse(dimension: Dimension) -> bool {
    matches!(
        dimension,
        Dimension::Affiliate | Dimension::Campaign | Dimension::Hour | Dimension::Day | Dimension::Month
    )
}

impl StatsRequest {
    /// Every dimension the request groups or filters by.
    pub fn dimensions(&self) -> impl Iterator<Item = Dimension> + '_ {
        self.group_by.iter().copied().chain(self.filters.iter().map(|(dimension, _)| *dimension))
    }

    /// Whether the rows read must keep their hour (a time dimension is grouped or filtered).
    pub fn needs_time(&self) -> bool {
        self.dimensions().any(|d| matches!(d, Dimension::Hour | Dimension::Day | Dimension::Month))
    }

    /// The rollups that answer this request, given the zone the daily rollup is kept in (the
    /// tenant's).
    pub fn plan(&self, daily_zone: Tz) -> ReadPlan {
        let (start, end) = self.hours();
        if !self.dimensions().all(coarse) {
            return ReadPlan { grain: HourlyGrain::Detailed, hours: vec![(start, end)], days: None };
        }
        let grain = HourlyGrain::ByAffiliateAndCampaign;
        let by_hour = self.dimensions().any(|d| d == Dimension::Hour);
        if by_hour || self.zone != daily_zone {
            return ReadPlan { grain, hours: vec![(start, end)], days: None };
        }
        let day = |at: DateTime<Utc>| local_day(at, daily_zone);
        let hour = Duration::hours(1);
        // The first hour of the first whole day: `start` itself if a day begins there.
        let mut head = start;
        while head < end && day(head - hour) == day(head) {
            head += hour;
        }
        // The first hour of the partial day `end` falls in (`end` itself if a day begins there).
        let mut tail = end;
        while tail > head && day(tail - hour) == day(tail) {
            tail -= hour;
        }
        if head >= tail {
            return ReadPlan { grain, hours: vec![(start, end)], days: None };
        }
        let hours = [(start, head), (tail, end)].into_iter().filter(|(from, to)| from < to).collect();
        ReadPlan { grain, hours, days: Some((day(head), day(tail))) }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::reporting::StatsInput;
    use crate::stats_window::StatsWindow;

    fn request(from: i64, to: i64, zone: Tz, group_by: &[&str], filters: &[&str]) -> StatsRequest {
        let at = |secs| DateTime::from_timestamp(secs, 0).unwrap();
        StatsRequest::parse(
            StatsInput {
                window: StatsWindow::Fixed { from: at(from), to: at(to) },
                zone: Some(zone),
                group_by: group_by.iter().map(|s| s.to_string()).collect(),
                filters: filters.iter().map(|s| (s.to_string(), vec!["x".to_owned()])).collect(),
                ..StatsInput::default()
            },
            zone,
        )
        .unwrap()
    }

    const ZONES: [Tz; 5] = [
        chrono_tz::UTC,
        chrono_tz::Europe::Berlin,
        chrono_tz::America::New_York,
        chrono_tz::Asia::Kolkata,
        chrono_tz::Australia::Lord_Howe,
    ];

    #[test]
    fn a_detailed_dimension_reads_the_detailed_rollup_and_an_hour_or_another_zone_no_days() {
        let berlin = chrono_tz::Europe::Berlin;
        let month = (1_780_000_000, 1_780_000_000 + 30 * 86_400);
        let plan = request(month.0, month.1, berlin, &["AFFILIATE", "DAY"], &["COUNTRY"]).plan(berlin);
        assert_eq!((plan.grain, plan.days), (HourlyGrain::Detailed, None));
        let plan = request(month.0, month.1, berlin, &["CAMPAIGN", "HOUR"], &[]).plan(berlin);
        assert_eq!((plan.grain, plan.days), (HourlyGrain::ByAffiliateAndCampaign, None));
        let plan = request(month.0, month.1, berlin, &["AFFILIATE", "DAY"], &[]).plan(chrono_tz::UTC);
        assert_eq!((plan.grain, plan.days), (HourlyGrain::ByAffiliateAndCampaign, None));
        let plan = request(month.0, month.1, berlin, &["AFFILIATE", "DAY"], &["MONTH"]).plan(berlin);
        assert_eq!(plan.days.map(|(first, end)| end - first), Some(29));
    }

    #[test]
    fn offsets_change_where_the_zone_does() {
        let berlin = chrono_tz::Europe::Berlin;
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        let from = "2026-01-01T00:00:00Z".parse().unwrap();
        let to = "2027-01-01T00:00:00Z".parse().unwrap();
        let march: DateTime<Utc> = "2026-03-29T01:00:00Z".parse().unwrap();
        let october: DateTime<Utc> = "2026-10-25T01:00:00Z".parse().unwrap();
        assert_eq!(
            offsets_by_hour(berlin, from, to),
            vec![(march.timestamp(), 3_600), (october.timestamp(), 7_200), (to.timestamp(), 3_600)]
        );
    }

    proptest! {
        /// The plan reads every hour of the request exactly once: its hourly ranges and the
        /// hours of its days tile the request's hours without overlap.
        #[test]
        fn the_plan_reads_every_hour_once(
            from in 1_700_000_000i64..1_800_000_000,
            span in 0i64..(70 * 86_400),
            zone in 0usize..ZONES.len(),
        ) {
            let zone = ZONES[zone];
            let request = request(from, from + span, zone, &["AFFILIATE", "DAY"], &[]);
            let plan = request.plan(zone);
            let (start, end) = request.hours();
            let mut hour = start;
            while hour < end {
                let in_ranges = plan.hours.iter().filter(|(f, t)| *f <= hour && hour < *t).count();
                let day = local_day(hour, zone);
                let in_days = plan.days.map_or(0, |(first, end)| usize::from(first <= day && day < end));
                prop_assert_eq!(in_ranges + in_days, 1, "hour {} read {} times", hour, in_ranges + in_days);
                hour += Duration::hours(1);
            }
            for (from, to) in &plan.hours {
                prop_assert!(start <= *from && from < to && *to <= end);
            }
            if let Some((first, end_day)) = plan.days {
                prop_assert!(first < end_day);
                // A day read whole has all its hours inside the request.
                prop_assert!(local_day(start - Duration::hours(1), zone) < first);
                prop_assert!(local_day(end, zone) >= end_day);
                for day in [first, end_day - 1] {
                    prop_assert_eq!(local_day(instant_in_day(day, zone), zone), day);
                }
            }
        }

        /// SQL's `(hour + offset) / 86400` with the offsets given is the local day.
        #[test]
        fn offsets_give_the_local_day(from in 1_700_000_000i64..1_800_000_000, hours in 1i64..2_000, zone in 0usize..ZONES.len()) {
            let zone = ZONES[zone];
            let from = crate::reporting::hour_of(DateTime::from_timestamp(from, 0).unwrap());
            let to = from + Duration::hours(hours);
            let segments = offsets_by_hour(zone, from, to);
            let mut hour = from;
            while hour < to {
                let offset = segments.iter().find(|(until, _)| hour.timestamp() < *until).map(|(_, o)| *o).unwrap();
                prop_assert_eq!((hour.timestamp() + offset).div_euclid(86_400), local_day(hour, zone));
                hour += Duration::hours(1);
            }
        }
    }
}
