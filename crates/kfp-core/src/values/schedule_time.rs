//! [`ScheduleTime`]: the `startTime`/`endTime` of a schedule, readable over the whole range Go and the CRD accept.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ValueError;

/// An RFC 3339 time with any offset and up to nanosecond precision, years 0000 to 9999 as written.
///
/// `k8s_openapi`'s `Time` cannot hold times after 9999-12-30T22:00Z, so a schedule ending at
/// `9999-12-31T23:59:59Z` (valid for the CRD and for the Go operator) would make the whole object unreadable.
/// This type holds it, keeps the written offset and fraction when written back, and compares by instant.
#[derive(Debug, Clone)]
pub struct ScheduleTime {
    /// Seconds since 1970-01-01T00:00:00Z.
    seconds: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    nanos: u32,
    /// The offset it was written with, seconds east of UTC.
    offset: i32,
}

impl ScheduleTime {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix_seconds(&self) -> i64 {
        self.seconds
    }

    /// Nanoseconds within the second.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// The offset it was written with, seconds east of UTC.
    pub fn offset_seconds(&self) -> i32 {
        self.offset
    }

    /// The same instant as a Kubernetes `Time`, when that type can hold it.
    pub fn to_time(&self) -> Option<Time> {
        let ts = k8s_openapi::jiff::Timestamp::new(self.seconds, i32::try_from(self.nanos).ok()?).ok()?;
        Some(Time(ts))
    }

    /// Go's `time.Time.String()` of the instant in UTC (`2006-01-02 15:04:05.999999999 +0000 UTC`): what the
    /// Go operator hashes, since its container has no time zone.
    pub fn write_go_utc(&self, w: &mut impl fmt::Write) -> fmt::Result {
        write_civil(w, self.seconds, ' ')?;
        write_fraction(w, self.nanos, '.')?;
        w.write_str(" +0000 UTC")
    }
}

impl From<&Time> for ScheduleTime {
    fn from(time: &Time) -> Self {
        let (mut seconds, mut nanos) = (time.0.as_second(), time.0.subsec_nanosecond());
        // jiff gives a negative fraction before the epoch.
        if nanos < 0 {
            seconds -= 1;
            nanos += 1_000_000_000;
        }
        Self {
            seconds,
            nanos: u32::try_from(nanos).unwrap_or_default(),
            offset: 0,
        }
    }
}

impl PartialEq for ScheduleTime {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ScheduleTime {}

impl PartialOrd for ScheduleTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ScheduleTime {
    /// By instant: the same time written with another offset is the same schedule bound.
    fn cmp(&self, other: &Self) -> Ordering {
        (self.seconds, self.nanos).cmp(&(other.seconds, other.nanos))
    }
}

impl Hash for ScheduleTime {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.seconds, self.nanos).hash(state);
    }
}

impl fmt::Display for ScheduleTime {
    /// RFC 3339 in the offset it was written with, the fraction without trailing zeros, `Z` for UTC.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_civil(f, self.seconds + i64::from(self.offset), 'T')?;
        write_fraction(f, self.nanos, '.')?;
        if self.offset == 0 {
            return f.write_str("Z");
        }
        let sign = if self.offset < 0 { '-' } else { '+' };
        let minutes = self.offset.unsigned_abs() / 60;
        write!(f, "{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }
}

impl FromStr for ScheduleTime {
    type Err = ValueError;

    /// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, with Go's ranges (`time.Parse(time.RFC3339, ...)`, which
    /// also takes `,` before the fraction and ignores digits after the ninth).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &'static str| ValueError::Time {
            value: s.to_string(),
            reason,
        };
        let b = s.as_bytes();
        let digits = |from: usize, len: usize| -> Option<i64> {
            let part = b.get(from..from + len)?;
            part.iter()
                .all(u8::is_ascii_digit)
                .then(|| part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
        };
        let at = |i: usize, expected: &[u8]| b.get(i).is_some_and(|c| expected.contains(c));
        let shape = "expected RFC 3339, e.g. 2024-01-01T00:00:00Z";
        let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
            digits(0, 4),
            digits(5, 2),
            digits(8, 2),
            digits(11, 2),
            digits(14, 2),
            digits(17, 2),
        ) else {
            return Err(invalid(shape));
        };
        if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt") && at(13, b":") && at(16, b":")) {
            return Err(invalid(shape));
        }
        if !(1..=12).contains(&month) {
            return Err(invalid("month out of range"));
        }
        if day < 1 || day > days_in_month(year, month) {
            return Err(invalid("day out of range"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(invalid("time of day out of range"));
        }
        let mut i = 19;
        let mut nanos: u32 = 0;
        if at(i, b".,") {
            let fraction: Vec<u8> = b
                .iter()
                .skip(i + 1)
                .take_while(|c| c.is_ascii_digit())
                .copied()
                .collect();
            if fraction.is_empty() {
                return Err(invalid(shape));
            }
            let mut scale = 100_000_000;
            for d in fraction.iter().take(9) {
                nanos += u32::from(d - b'0') * scale;
                scale /= 10;
            }
            i += 1 + fraction.len();
        }
        let offset = match b.get(i..) {
            Some(b"Z" | b"z") => 0,
            Some([sign @ (b'+' | b'-'), ..]) if b.len() == i + 6 && at(i + 3, b":") => {
                let (Some(h), Some(m)) = (digits(i + 1, 2), digits(i + 4, 2)) else {
                    return Err(invalid(shape));
                };
                if h > 23 || m > 59 {
                    return Err(invalid("time zone offset out of range"));
                }
                let offset = i32::try_from(h * 3600 + m * 60).unwrap_or_default();
                if *sign == b'-' { -offset } else { offset }
            }
            _ => return Err(invalid(shape)),
        };
        let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
        Ok(Self {
            seconds: local - i64::from(offset),
            nanos,
            offset,
        })
    }
}

impl Serialize for ScheduleTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScheduleTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for ScheduleTime {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ScheduleTime".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "date-time" })
    }

    fn inline_schema() -> bool {
        true
    }
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

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian (year, month, day) of days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `YYYY-MM-DD<sep>HH:MM:SS` of seconds since the epoch; the year padded to 4 digits after its sign, as Go does.
pub(crate) fn write_civil(w: &mut impl fmt::Write, seconds: i64, separator: char) -> fmt::Result {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let second_of_day = seconds.rem_euclid(86_400);
    if year < 0 {
        write!(w, "-{:04}", -year)?;
    } else {
        write!(w, "{year:04}")?;
    }
    let (hour, minute, second) = (second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60);
    write!(
        w,
        "-{month:02}-{day:02}{separator}{hour:02}:{minute:02}:{second:02}"
    )
}

/// A nanosecond fraction with trailing zeros trimmed, nothing when zero (Go's `.999999999`).
pub(crate) fn write_fraction(w: &mut impl fmt::Write, nanos: u32, point: char) -> fmt::Result {
    if nanos == 0 {
        return Ok(());
    }
    let mut digits = 9;
    let mut fraction = nanos;
    while fraction.is_multiple_of(10) {
        fraction /= 10;
        digits -= 1;
    }
    write!(w, "{point}{fraction:0digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ScheduleTime {
        s.parse().unwrap()
    }

    fn go(s: &str) -> String {
        let mut out = String::new();
        parse(s).write_go_utc(&mut out).unwrap();
        out
    }

    #[test]
    fn far_future_times_read_write_and_hash_like_go() {
        let t = parse("9999-12-31T23:59:59Z");
        assert_eq!(t.to_string(), "9999-12-31T23:59:59Z");
        assert_eq!(go("9999-12-31T23:59:59Z"), "9999-12-31 23:59:59 +0000 UTC");
        assert_eq!(t.to_time(), None, "beyond k8s_openapi's Time");
        assert_eq!(
            go("9999-12-31T23:59:59.999999999-05:00"),
            "10000-01-01 04:59:59.999999999 +0000 UTC"
        );
        let json = serde_json::json!({"endTime": "9999-12-31T23:59:59Z"});
        let read: std::collections::BTreeMap<String, ScheduleTime> =
            serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&read).unwrap(), json);
    }

    #[test]
    fn offsets_and_fractions_are_kept_and_compare_by_instant() {
        for text in [
            "2024-01-01T00:00:00.5+01:00",
            "1999-12-31T23:59:59.123456789-05:30",
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999999Z",
            "2030-01-01T00:00:00+14:00",
        ] {
            assert_eq!(parse(text).to_string(), text);
        }
        assert_eq!(
            parse("2024-06-01T12:00:00.100Z").to_string(),
            "2024-06-01T12:00:00.1Z"
        );
        assert_eq!(
            parse("2021-03-14T01:59:26+00:00").to_string(),
            "2021-03-14T01:59:26Z"
        );
        assert_eq!(parse("2024-01-01T01:00:00+01:00"), parse("2024-01-01T00:00:00Z"));
        assert!(parse("2024-01-01T00:00:00Z") < parse("2024-01-01T00:00:00.000000001Z"));
        assert_eq!(
            go("2024-01-01T00:00:00.5+01:00"),
            "2023-12-31 23:00:00.5 +0000 UTC"
        );
        assert_eq!(go("1969-12-31T23:59:59.5Z"), "1969-12-31 23:59:59.5 +0000 UTC");
        assert_eq!(go("2000-02-29T12:00:00,010Z"), "2000-02-29 12:00:00.01 +0000 UTC");
        assert_eq!(
            go("2024-01-01T00:00:00.1234567891Z"),
            "2024-01-01 00:00:00.123456789 +0000 UTC"
        );
        assert_eq!(go("0000-01-01T00:30:00+01:00"), "-0001-12-31 23:30:00 +0000 UTC");
    }

    #[test]
    fn the_same_instants_as_kubernetes_time() {
        for text in [
            "2024-02-29T23:59:59Z",
            "1969-12-31T23:59:59.5Z",
            "9999-12-30T21:59:59Z",
        ] {
            let time: Time = serde_json::from_value(serde_json::Value::String(text.into())).unwrap();
            assert_eq!(ScheduleTime::from(&time), parse(text), "{text}");
            assert_eq!(parse(text).to_time(), Some(time), "{text}");
        }
    }

    #[test]
    fn invalid_times_are_refused() {
        for text in [
            "",
            "2024-01-01",
            "2024-01-01T00:00:00",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00+0100",
            "2024-01-01 00:00:00Z",
            "10000-01-01T00:00:00Z",
            "2024-01-01T00:00:00Zjunk",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert!(text.parse::<ScheduleTime>().is_err(), "{text}");
        }
    }
}
