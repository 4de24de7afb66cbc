//! Time formats as OSS clients parse them: XML times always end in `.000Z`,
//! HTTP dates are RFC 1123 with a two-digit day.

use std::time::{Duration, UNIX_EPOCH};

use time::OffsetDateTime;
use time::macros::format_description;

/// `2015-12-05T00:00:00.000Z`.
pub fn iso8601(unix: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z")).unwrap_or_default()
}

/// `Wed, 09 Nov 2022 08:45:46 GMT`.
pub fn http_date(unix: i64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64))
}

/// Parses an RFC 1123 date into unix seconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// Parses a V4 `YYYYMMDDTHHMMSSZ` time into unix seconds.
pub fn parse_v4_datetime(s: &str) -> Option<i64> {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(s, fmt).ok()?;
    Some(t.assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(iso8601(1449273600), "2015-12-05T00:00:00.000Z");
        assert_eq!(http_date(1449273600), "Sat, 05 Dec 2015 00:00:00 GMT");
        assert_eq!(parse_http_date("Sat, 05 Dec 2015 00:00:00 GMT"), Some(1449273600));
        assert_eq!(parse_v4_datetime("20231216T162057Z"), Some(1702743657));
        assert_eq!(parse_v4_datetime("2023-12-16"), None);
    }
}
