//! The CloudTrail window: `--start-date`, `--end-date` and `--days`, as UTC days.

use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};

use super::{invalid, ConfigError};

/// LookupEvents only reaches back 90 days (CloudTrail event history), so that is the default window.
pub const LOOKUP_HISTORY_DAYS: i64 = 90;

/// Parse `YYYY-MM-DD` as a UTC date.
pub fn parse_date(key: &'static str, s: &str) -> Result<NaiveDate, ConfigError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        invalid(
            key,
            format!("'{s}' is not a date; use YYYY-MM-DD (UTC), e.g. 2026-03-05"),
        )
    })
}

/// The CloudTrail window: `--days` and `--start-date` conflict; `--end-date` is inclusive and defaults to
/// now; the default window is the whole of LookupEvents' 90 days.
pub fn resolve_window(
    start_date: Option<&str>,
    end_date: Option<&str>,
    days: Option<u32>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ConfigError> {
    if start_date.is_some() && days.is_some() {
        return Err(invalid(
            "days",
            "conflicts with start_date: give either a start date or a number of days",
        ));
    }
    let end = match end_date {
        Some(s) => {
            let d = parse_date("end_date", s)?;
            let next_midnight = d
                .succ_opt()
                .ok_or_else(|| invalid("end_date", format!("'{s}' is out of range")))?
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc();
            next_midnight.min(now)
        }
        None => now,
    };
    let start = match (start_date, days) {
        (Some(s), _) => parse_date("start_date", s)?
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc(),
        (None, Some(0)) => return Err(invalid("days", "must be at least 1")),
        (None, Some(n)) => end - ChronoDuration::days(i64::from(n)),
        (None, None) => end - ChronoDuration::days(LOOKUP_HISTORY_DAYS),
    };
    if start > now {
        return Err(invalid(
            "start_date",
            format!("{} is in the future", start.format("%Y-%m-%d")),
        ));
    }
    if start >= end {
        return Err(invalid(
            "end_date",
            format!(
                "the window is empty: start {} is not before end {}",
                start.format("%Y-%m-%d"),
                end.format("%Y-%m-%dT%H:%M:%SZ")
            ),
        ));
    }
    Ok((start, end))
}
