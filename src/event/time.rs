//! Event time: UTC milliseconds since the Unix epoch, read from every timestamp shape the
//! sources and pipelines write, and written back as RFC 3339.
//!
//! Hand-written rather than a date library: the per-event path needs only civil-date arithmetic,
//! with no allocation and no time-zone database. Accepted forms:
//! RFC 3339 with `T` or a space, any fraction length, `Z`, `±hh:mm`, `±hhmm` or no zone (UTC);
//! Java's `Date.toString()` (`Mon Jul 19 20:36:24 UTC 2021`), which old CloudTrail
//! `creationDate`s use; and epoch numbers in seconds, milliseconds, microseconds or nanoseconds
//! (told apart by magnitude), as numbers or numeric strings.

use std::fmt;

use serde::{Serialize, Serializer};

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

const MS_PER_DAY: i64 = 86_400_000;

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Reads any textual form listed in the module docs.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let bytes = text.as_bytes();
        if bytes.is_empty() {
            return None;
        }
        if bytes.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
            return Self::from_epoch_text(text);
        }
        if bytes[0].is_ascii_digit() {
            parse_iso(bytes)
        } else {
            parse_java_date(text)
        }
    }

    /// An epoch number whose unit is inferred from its magnitude.
    pub fn from_epoch(value: i64) -> Option<Self> {
        let abs = value.unsigned_abs();
        let ms = if abs < 100_000_000_000 {
            value.checked_mul(1000)? // seconds (until year 5138)
        } else if abs < 100_000_000_000_000 {
            value // milliseconds
        } else if abs < 100_000_000_000_000_000 {
            value / 1000 // microseconds
        } else {
            value / 1_000_000 // nanoseconds
        };
        Some(Timestamp(ms))
    }

    fn from_epoch_text(text: &str) -> Option<Self> {
        match text.split_once('.') {
            None => Self::from_epoch(text.parse().ok()?),
            Some((whole, fraction)) => {
                let whole: i64 = whole.parse().ok()?;
                let base = Self::from_epoch(whole)?;
                // A fraction only refines seconds; finer units already are whole numbers.
                if whole.unsigned_abs() < 100_000_000_000 {
                    Some(Timestamp(base.0 + fraction_millis(fraction.as_bytes())?))
                } else {
                    Some(base)
                }
            }
        }
    }
}

impl Timestamp {
    /// The RFC 3339 form (`2024-08-01T11:30:25.000Z`) written into `buf`, for years 0 to 9999;
    /// `None` for the rest, which `Display` writes.
    pub fn rfc3339(self, buf: &mut [u8; 24]) -> Option<&str> {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return None;
        }
        let secs = ms_of_day / 1000;
        let mut put = |at: usize, width: usize, mut n: i64| {
            for i in (at..at + width).rev() {
                buf[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, y);
        put(5, 2, m);
        put(8, 2, d);
        put(11, 2, secs / 3600);
        put(14, 2, secs / 60 % 60);
        put(17, 2, secs % 60);
        put(20, 3, ms_of_day % 1000);
        for (at, mark) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
        ] {
            buf[at] = mark;
        }
        buf[23] = b'Z';
        std::str::from_utf8(buf).ok()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.rfc3339(&mut [0; 24]) {
            return f.write_str(text);
        }
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            ms_of_day % 1000
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

fn digits(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0i64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

fn fraction_millis(fraction: &[u8]) -> Option<i64> {
    if fraction.is_empty() || !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut ms = 0;
    for i in 0..3 {
        ms = ms * 10 + fraction.get(i).map_or(0, |b| i64::from(b - b'0'));
    }
    Some(ms)
}

/// `YYYY-MM-DD[T ]hh:mm:ss[.f+][Z|±hh:mm|±hhmm]`, or a bare date.
fn parse_iso(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * MS_PER_DAY;
    let rest = &b[10..];
    if rest.is_empty() {
        return Some(Timestamp(ms));
    }
    if !(rest[0] == b'T' || rest[0] == b't' || rest[0] == b' ') || rest.len() < 9 {
        return None;
    }
    let (hh, mm, ss) = (
        digits(&rest[1..3])?,
        digits(&rest[4..6])?,
        digits(&rest[7..9])?,
    );
    if rest[3] != b':' || rest[6] != b':' || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    ms += (hh * 3600 + mm * 60 + ss) * 1000;
    let mut rest = &rest[9..];
    if let Some(after_dot) = rest.strip_prefix(b".") {
        let n = after_dot.iter().take_while(|c| c.is_ascii_digit()).count();
        ms += fraction_millis(&after_dot[..n])?;
        rest = &after_dot[n..];
    }
    let offset_minutes = match rest {
        [] | [b'Z' | b'z'] => 0,
        [b' ', b'U', b'T', b'C'] | [b' ', b'+', b'0', b'0', b'0', b'0'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let minutes = digits(&[*h1, *h2])? * 60 + digits(&[*m1, *m2])?;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    Some(Timestamp(ms - offset_minutes * 60_000))
}

/// `EEE MMM dd HH:mm:ss zzz yyyy` with zone UTC or GMT.
fn parse_java_date(text: &str) -> Option<Timestamp> {
    let mut parts = text.split_ascii_whitespace();
    let _weekday = parts.next()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let day: i64 = parts.next()?.parse().ok()?;
    let clock = parts.next()?.as_bytes();
    if !matches!(parts.next()?, "UTC" | "GMT") {
        return None;
    }
    let year: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || clock.len() != 8 || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (hh, mm, ss) = (
        digits(&clock[0..2])?,
        digits(&clock[3..5])?,
        digits(&clock[6..8])?,
    );
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(Timestamp(
        days_from_civil(year, month, day) * MS_PER_DAY + (hh * 3600 + mm * 60 + ss) * 1000,
    ))
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_form_is_the_formatted_one() {
        let slow = |t: Timestamp| {
            let days = t.0.div_euclid(MS_PER_DAY);
            let ms_of_day = t.0.rem_euclid(MS_PER_DAY);
            let (y, m, d) = civil_from_days(days);
            let secs = ms_of_day / 1000;
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                ms_of_day % 1000
            )
        };
        let mut ms: i64 = -62_167_219_200_000; // 0000-01-01
        while ms < 253_402_300_800_000 {
            // to 9999-12-31, in irregular steps
            let t = Timestamp(ms);
            assert_eq!(t.rfc3339(&mut [0; 24]).unwrap(), slow(t));
            assert_eq!(t.to_string(), slow(t));
            ms += 3_999_999_937;
        }
        for ms in [
            -62_167_219_200_001,
            253_402_300_800_000,
            i64::MIN / 2,
            i64::MAX / 2,
        ] {
            let t = Timestamp(ms);
            assert!(t.rfc3339(&mut [0; 24]).is_none());
            assert_eq!(t.to_string(), slow(t));
        }
    }

    /// Each text is refused, not read as some other instant.
    fn refused(texts: &[&str]) {
        for text in texts {
            assert_eq!(Timestamp::parse(text), None, "{text}");
        }
    }

    fn iso(s: &str) -> String {
        Timestamp::parse(s)
            .unwrap_or_else(|| panic!("{s} did not parse"))
            .to_string()
    }

    #[test]
    fn every_source_shape_reads_to_the_same_instant() {
        let expected = "2024-08-01T13:33:28.000Z";
        for s in [
            "2024-08-01T13:33:28Z",
            "2024-08-01 13:33:28",
            "2024-08-01T13:33:28.0000000Z",
            "2024-08-01T15:33:28+02:00",
            "2024-08-01T08:33:28-0500",
            "Thu Aug 01 13:33:28 UTC 2024",
            "1722519208",
            "1722519208000",
            "1722519208000000",
            "1722519208000000000",
        ] {
            assert_eq!(iso(s), expected, "{s}");
        }
    }

    #[test]
    fn fractions_are_truncated_to_milliseconds() {
        assert_eq!(
            iso("2020-04-21T17:57:05.548299Z"),
            "2020-04-21T17:57:05.548Z"
        );
        assert_eq!(iso("2022-03-22 14:21:53.2"), "2022-03-22T14:21:53.200Z");
        assert_eq!(iso("1722519208.5"), "2024-08-01T13:33:28.500Z");
    }

    #[test]
    fn calendar_round_trips_over_four_centuries() {
        for days in (-150_000..150_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn an_epoch_numbers_unit_changes_exactly_at_its_magnitude_edges() {
        let at = |n: i64| Timestamp::from_epoch(n).unwrap().to_string();
        // Below 10^11 seconds, below 10^14 milliseconds, below 10^17 microseconds, else nanoseconds.
        assert_eq!(at(99_999_999_999), "5138-11-16T09:46:39.000Z");
        assert_eq!(at(100_000_000_000), "1973-03-03T09:46:40.000Z");
        assert_eq!(at(99_999_999_999_999), "5138-11-16T09:46:39.999Z");
        assert_eq!(at(100_000_000_000_000), "1973-03-03T09:46:40.000Z");
        assert_eq!(at(99_999_999_999_999_999), "5138-11-16T09:46:39.999Z");
        assert_eq!(at(100_000_000_000_000_000), "1973-03-03T09:46:40.000Z");
        // A negative number is before 1970, in the unit its magnitude says.
        assert_eq!(at(-1), "1969-12-31T23:59:59.000Z");
        assert_eq!(at(-100_000_000_000_000), "1966-10-31T14:13:20.000Z");
        // A fraction refines seconds only; past them it is left out.
        assert_eq!(iso("99999999999.25"), "5138-11-16T09:46:39.250Z");
        assert_eq!(iso("100000000000.25"), "1973-03-03T09:46:40.000Z");
        assert_eq!(iso("1722519208.05"), "2024-08-01T13:33:28.050Z");
        assert_eq!(iso("1722519208.9999"), "2024-08-01T13:33:28.999Z");
        refused(&["1722519208.", "1.2.3", ".5", "17225192080000000000000"]);
    }

    #[test]
    fn every_rfc3339_variant_reads_and_every_field_is_checked_at_its_edge() {
        for (s, expected) in [
            ("2024-08-01", "2024-08-01T00:00:00.000Z"),
            ("2024-08-01t13:33:28z", "2024-08-01T13:33:28.000Z"),
            ("2024-08-01 13:33:28 UTC", "2024-08-01T13:33:28.000Z"),
            ("2024-08-01 13:33:28 +0000", "2024-08-01T13:33:28.000Z"),
            ("2024-08-01T19:03:28+05:30", "2024-08-01T13:33:28.000Z"),
            ("2024-08-01T08:03:28-0530", "2024-08-01T13:33:28.000Z"),
            ("2024-08-01T00:00:00-00:01", "2024-08-01T00:01:00.000Z"),
            ("2024-12-31T23:59:59.999Z", "2024-12-31T23:59:59.999Z"),
            // A leap second is the next second's start, not a refusal.
            ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00.000Z"),
            ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"),
            ("2000-02-29T00:00:00Z", "2000-02-29T00:00:00.000Z"),
            ("2024-04-30T00:00:00Z", "2024-04-30T00:00:00.000Z"),
            ("2024-01-31T00:00:00Z", "2024-01-31T00:00:00.000Z"),
            ("2024-03-01T00:00:00Z", "2024-03-01T00:00:00.000Z"),
        ] {
            assert_eq!(iso(s), expected, "{s}");
        }
        refused(&[
            "2024-08-0",
            "2024/08/01",
            "2024-08/01",
            "2024-00-01",
            "2024-08-00",
            "2024-04-31T00:00:00Z",
            "2024-06-31",
            "2024-09-31",
            "2024-11-31",
            "1900-02-29",
            "2024-08-01X13:33:28Z",
            "2024-08-01T13:33:2",
            "2024-08-01T13-33:28Z",
            "2024-08-01T13:33-28Z",
            "2024-08-01T24:00:00Z",
            "2024-08-01T23:60:00Z",
            "2024-08-01T23:59:61Z",
            "2024-08-01T13:33:28.Z",
            "2024-08-01T13:33:28.5x",
            "2024-08-01T13:33:28+0a:00",
            "2024-08-01T13:33:28 PST",
        ]);
    }

    #[test]
    fn every_java_date_month_reads_and_every_field_is_checked_at_its_edge() {
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        for (index, name) in months.iter().enumerate() {
            let s = format!("Mon {name} 01 20:36:24 UTC 2021");
            assert_eq!(
                iso(&s),
                format!("2021-{:02}-01T20:36:24.000Z", index + 1),
                "{s}"
            );
        }
        for (s, expected) in [
            ("Mon Jul 19 20:36:24 GMT 2021", "2021-07-19T20:36:24.000Z"),
            ("Thu Feb 29 23:59:60 UTC 2024", "2024-03-01T00:00:00.000Z"),
            ("Fri Dec 31 23:59:59 UTC 2021", "2021-12-31T23:59:59.000Z"),
        ] {
            assert_eq!(iso(s), expected, "{s}");
        }
        refused(&[
            "Mon Jul 00 20:36:24 UTC 2021",
            "Mon Jun 31 20:36:24 UTC 2021",
            "Mon Feb 29 20:36:24 UTC 2021",
            "Mon Jul 19 24:36:24 UTC 2021",
            "Mon Jul 19 20:60:24 UTC 2021",
            "Mon Jul 19 20:36:61 UTC 2021",
            "Mon Jul 19 0:36:24 UTC 2021",
            "Mon Jul 19 20:36:24 UTC 2021 extra",
            "Mon July 19 20:36:24 UTC 2021",
            "Mon Jul 19 20:36:24 UTC",
        ]);
    }

    #[test]
    fn nonsense_is_refused() {
        refused(&[
            "",
            "redacted",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-08-01T25:00:00Z",
            "2024-08-01T13:33:28Q",
            "2024-08-01T13:33",
            "Thu Aug 01 13:33:28 PST 2024",
        ]);
    }
}
