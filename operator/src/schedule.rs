//! Time arithmetic of the pure core: maintenance windows (cron start + duration in an IANA
//! time zone), the per-template jitter that spreads a fleet's schedules, and the retry backoff.
//!
//! Nothing here reads the clock: every function takes `now`. `decide` uses these to know
//! whether scheduled remediation may apply and when to look again.

use std::time::Duration;

use croner::{
    Cron,
    parser::{CronParser, Seconds, Year},
};
use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use pangea_api::template::MaintenanceWindow;

/// First retry delay after a transient failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// Retries never wait longer than this.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10 * 60);
/// Jitter never exceeds this, whatever the interval.
pub const JITTER_MAX: Duration = Duration::from_secs(60);

/// Why a maintenance window cannot be used. The schema checks the shape of `schedule` only;
/// these are the errors it cannot see.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    /// The cron expression does not parse.
    #[error(
        "maintenance window schedule {schedule:?} is not a valid 5-field cron expression: {source}"
    )]
    Schedule {
        schedule: String,
        #[source]
        source: croner::errors::CronError,
    },
    /// The time zone is not in the time zone database.
    #[error("maintenance window timeZone {zone:?} is not a known IANA time zone: {source}")]
    TimeZone {
        zone: String,
        #[source]
        source: jiff::Error,
    },
    /// The duration is zero or negative.
    #[error("maintenance window duration must be positive")]
    Duration,
}

/// A validated maintenance window: parsed once, evaluated many times.
#[derive(Debug, Clone)]
pub struct Window {
    cron: Cron,
    length: SignedDuration,
    zone: TimeZone,
}

impl Window {
    /// Validates one `spec.driftDetection.maintenanceWindows[]` entry. The time zone defaults
    /// to UTC.
    pub fn parse(window: &MaintenanceWindow) -> Result<Self, WindowError> {
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(&window.schedule)
            .map_err(|source| WindowError::Schedule {
                schedule: window.schedule.clone(),
                source,
            })?;
        let zone = match window.time_zone.as_deref() {
            None | Some("") => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|source| WindowError::TimeZone {
                zone: name.to_owned(),
                source,
            })?,
        };
        if window.duration.is_negative() {
            return Err(WindowError::Duration);
        }
        let length = SignedDuration::try_from(Duration::from(window.duration))
            .map_err(|_| WindowError::Duration)?;
        if length.is_zero() {
            return Err(WindowError::Duration);
        }
        Ok(Self { cron, length, zone })
    }

    /// Whether `now` lies in `[start, start + duration)` of the latest start at or before it.
    /// The latest start suffices: with one duration per window, an earlier start ends earlier.
    pub fn is_open(&self, now: Timestamp) -> bool {
        let here = now.to_zoned(self.zone.clone());
        match self.cron.find_previous_occurrence(&here, true) {
            Ok(start) => now < add_signed(start.timestamp(), self.length),
            Err(_) => false,
        }
    }

    /// The first start strictly after `now`.
    pub fn next_start(&self, now: Timestamp) -> Option<Timestamp> {
        let here = now.to_zoned(self.zone.clone());
        self.cron
            .find_next_occurrence(&here, false)
            .ok()
            .map(|z| z.timestamp())
    }
}

/// Validates every window; the first invalid one is the error.
pub fn parse_windows(windows: &[MaintenanceWindow]) -> Result<Vec<Window>, WindowError> {
    windows.iter().map(Window::parse).collect()
}

/// Whether any window is open at `now`.
pub fn is_open(windows: &[Window], now: Timestamp) -> bool {
    windows.iter().any(|w| w.is_open(now))
}

/// The earliest start of any window strictly after `now`.
pub fn next_start(windows: &[Window], now: Timestamp) -> Option<Timestamp> {
    windows.iter().filter_map(|w| w.next_start(now)).min()
}

/// A deterministic offset for one template's schedules, so templates created together do not
/// all run at the same instant. At most 10% of `interval` and at most [`JITTER_MAX`].
pub fn jitter_for(uid: &str, interval: Duration) -> Duration {
    let cap = (interval / 10).min(JITTER_MAX);
    let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    if cap_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(fnv1a(uid.as_bytes()) % (cap_ms + 1))
}

/// Delay before retry after `failures` failures in a row: `min(10s * 2^(n-1), 10m)`; zero
/// when nothing failed.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_MAX)
}

/// `t + d`, saturating at the end of time.
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// `to - from`, zero when `to` is not after `from`.
pub fn until(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

fn add_signed(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// FNV-1a: tiny, and unlike `DefaultHasher` its output is fixed forever, so a template's
/// jitter does not move when the operator is rebuilt.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn window(schedule: &str, duration: &str, zone: Option<&str>) -> Window {
        Window::parse(&MaintenanceWindow {
            schedule: schedule.into(),
            duration: duration.parse().unwrap(),
            time_zone: zone.map(Into::into),
        })
        .unwrap()
    }

    #[rstest]
    // Saturday 02:00-05:00 Berlin (CEST, UTC+2 in June).
    #[case("0 2 * * 6", "3h", Some("Europe/Berlin"), "2025-06-14T00:00:00Z", true)]
    #[case("0 2 * * 6", "3h", Some("Europe/Berlin"), "2025-06-14T02:59:59Z", true)]
    #[case(
        "0 2 * * 6",
        "3h",
        Some("Europe/Berlin"),
        "2025-06-14T03:00:00Z",
        false
    )]
    #[case(
        "0 2 * * 6",
        "3h",
        Some("Europe/Berlin"),
        "2025-06-13T23:59:59Z",
        false
    )]
    // The same wall-clock window in winter is an hour later in UTC (CET, UTC+1).
    #[case(
        "0 2 * * 6",
        "3h",
        Some("Europe/Berlin"),
        "2025-01-11T00:30:00Z",
        false
    )]
    #[case("0 2 * * 6", "3h", Some("Europe/Berlin"), "2025-01-11T01:00:00Z", true)]
    // A window that spans midnight: 23:00 for 3h, UTC by default.
    #[case("0 23 * * *", "3h", None, "2025-06-14T23:30:00Z", true)]
    #[case("0 23 * * *", "3h", None, "2025-06-15T01:59:00Z", true)]
    #[case("0 23 * * *", "3h", None, "2025-06-15T02:00:00Z", false)]
    #[case("0 23 * * *", "3h", None, "2025-06-15T22:59:59Z", false)]
    // Friday 23:00 for 4h is still open early on Saturday.
    #[case("0 23 * * 5", "4h", None, "2025-06-14T02:00:00Z", true)]
    #[case("0 23 * * 5", "4h", None, "2025-06-14T03:00:00Z", false)]
    fn open_or_closed(
        #[case] schedule: &str,
        #[case] duration: &str,
        #[case] zone: Option<&str>,
        #[case] now: &str,
        #[case] open: bool,
    ) {
        assert_eq!(window(schedule, duration, zone).is_open(ts(now)), open);
    }

    #[rstest]
    #[case(
        "0 2 * * 6",
        Some("Europe/Berlin"),
        "2025-06-14T03:00:00Z",
        "2025-06-21T00:00:00Z"
    )]
    #[case("0 23 * * *", None, "2025-06-14T23:00:00Z", "2025-06-15T23:00:00Z")]
    #[case("0 23 * * *", None, "2025-06-14T22:59:00Z", "2025-06-14T23:00:00Z")]
    // Spring forward in Berlin (2025-03-30, 02:00 -> 03:00): 02:30 does not exist that
    // night, so the window starts at the first valid minute after the gap, 03:00 CEST.
    #[case(
        "30 2 * * *",
        Some("Europe/Berlin"),
        "2025-03-29T23:00:00Z",
        "2025-03-30T01:00:00Z"
    )]
    // The next night is normal again: 02:30 CEST.
    #[case(
        "30 2 * * *",
        Some("Europe/Berlin"),
        "2025-03-30T02:00:00Z",
        "2025-03-31T00:30:00Z"
    )]
    // Fall back (2025-10-26, 03:00 -> 02:00): 02:30 happens twice; the window starts once,
    // at the first of them (02:30 CEST = 00:30Z), not again an hour later.
    #[case(
        "30 2 * * *",
        Some("Europe/Berlin"),
        "2025-10-25T23:00:00Z",
        "2025-10-26T00:30:00Z"
    )]
    #[case(
        "30 2 * * *",
        Some("Europe/Berlin"),
        "2025-10-26T00:30:00Z",
        "2025-10-27T01:30:00Z"
    )]
    // New York: spring forward 2025-03-09 02:00 -> 03:00.
    #[case(
        "0 2 * * *",
        Some("America/New_York"),
        "2025-03-09T05:00:00Z",
        "2025-03-09T07:00:00Z"
    )]
    fn next_window_start(
        #[case] schedule: &str,
        #[case] zone: Option<&str>,
        #[case] now: &str,
        #[case] next: &str,
    ) {
        let w = window(schedule, "1h", zone);
        assert_eq!(w.next_start(ts(now)), Some(ts(next)));
    }

    #[test]
    fn window_is_open_after_a_dst_gap_start() {
        let w = window("30 2 * * *", "1h", Some("Europe/Berlin"));
        // 03:10 CEST on the spring-forward night: the shifted 03:00 start covers it.
        assert!(w.is_open(ts("2025-03-30T01:10:00Z")));
        assert!(!w.is_open(ts("2025-03-30T02:00:00Z")));
    }

    #[rstest]
    // Fall back in Berlin (2025-10-26): 02:30 happens at 00:30Z (CEST) and again at 01:30Z
    // (CET). The window opens once and lasts its hour; the repeated 02:30 does not reopen it.
    #[case("2025-10-26T00:20:00Z", false)]
    #[case("2025-10-26T00:45:00Z", true)]
    #[case("2025-10-26T01:29:00Z", true)]
    #[case("2025-10-26T01:30:00Z", false)]
    #[case("2025-10-26T01:45:00Z", false)]
    fn window_over_a_dst_overlap_opens_once(#[case] now: &str, #[case] open: bool) {
        let w = window("30 2 * * *", "1h", Some("Europe/Berlin"));
        assert_eq!(w.is_open(ts(now)), open);
    }

    #[test]
    fn several_windows_union_and_earliest_start() {
        let windows = parse_windows(&[
            MaintenanceWindow {
                schedule: "0 2 * * 6".into(),
                duration: "1h".parse().unwrap(),
                time_zone: None,
            },
            MaintenanceWindow {
                schedule: "0 12 * * *".into(),
                duration: "30m".parse().unwrap(),
                time_zone: Some("UTC".into()),
            },
        ])
        .unwrap();
        assert!(is_open(&windows, ts("2025-06-14T02:30:00Z")));
        assert!(is_open(&windows, ts("2025-06-11T12:10:00Z")));
        assert!(!is_open(&windows, ts("2025-06-11T13:00:00Z")));
        assert_eq!(
            next_start(&windows, ts("2025-06-13T13:00:00Z")),
            Some(ts("2025-06-14T02:00:00Z"))
        );
        assert!(!is_open(&[], ts("2025-06-14T02:30:00Z")));
        assert_eq!(next_start(&[], ts("2025-06-14T02:30:00Z")), None);
    }

    #[rstest]
    #[case("0 2 * * 6", Some("Mars/Olympus_Mons"), "timeZone")]
    #[case("61 2 * * 6", None, "schedule")]
    #[case("0 2 * * 6 2030", None, "schedule")]
    #[case("0 0 2 * * 6", None, "schedule")]
    fn invalid_windows_are_reported(
        #[case] schedule: &str,
        #[case] zone: Option<&str>,
        #[case] names: &str,
    ) {
        let err = Window::parse(&MaintenanceWindow {
            schedule: schedule.into(),
            duration: "1h".parse().unwrap(),
            time_zone: zone.map(Into::into),
        })
        .unwrap_err();
        assert!(err.to_string().contains(names), "{err}");
    }

    #[test]
    fn zero_duration_is_invalid() {
        let err = Window::parse(&MaintenanceWindow {
            schedule: "0 2 * * 6".into(),
            duration: "0s".parse().unwrap(),
            time_zone: None,
        })
        .unwrap_err();
        assert!(matches!(err, WindowError::Duration));
    }

    #[rstest]
    #[case(0, 0)]
    #[case(1, 10)]
    #[case(2, 20)]
    #[case(3, 40)]
    #[case(6, 320)]
    #[case(7, 600)]
    #[case(40, 600)]
    #[case(u32::MAX, 600)]
    fn backoff_doubles_and_caps(#[case] failures: u32, #[case] secs: u64) {
        assert_eq!(backoff(failures), Duration::from_secs(secs));
    }

    #[test]
    fn jitter_is_deterministic_and_bounded() {
        let ten_min = Duration::from_secs(600);
        let a = jitter_for("0b6a9c3e-uid-a", ten_min);
        assert_eq!(a, jitter_for("0b6a9c3e-uid-a", ten_min));
        assert!(a <= Duration::from_secs(60));
        // Spread: many uids do not collapse onto a few values.
        let distinct: std::collections::BTreeSet<_> = (0..50)
            .map(|i| jitter_for(&format!("uid-{i}"), ten_min))
            .collect();
        assert!(distinct.len() > 40, "{}", distinct.len());
        // 10% of a short interval.
        let one_min = Duration::from_secs(60);
        assert!((0..50).all(|i| jitter_for(&format!("uid-{i}"), one_min) <= one_min / 10));
        // A long interval is capped at one minute.
        let day = Duration::from_secs(86_400);
        assert!((0..50).all(|i| jitter_for(&format!("uid-{i}"), day) <= JITTER_MAX));
        assert_eq!(jitter_for("x", Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        // Published FNV-1a 64-bit test vectors: the hash must never change.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn arithmetic_saturates() {
        let t = ts("2025-01-01T00:00:00Z");
        assert_eq!(add(Timestamp::MAX, Duration::from_secs(1)), Timestamp::MAX);
        assert_eq!(
            until(t, add(t, Duration::from_secs(5))),
            Duration::from_secs(5)
        );
        assert_eq!(until(add(t, Duration::from_secs(5)), t), Duration::ZERO);
    }
}
