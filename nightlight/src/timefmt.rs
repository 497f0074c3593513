//! Times and durations as Prometheus writes and reads them.

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Go's zero time, which Prometheus prints for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Unix seconds (fractions allowed) or RFC 3339, to milliseconds.
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds.is_finite()
    {
        return Some((seconds * 1000.0).round() as i64);
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some((parsed.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Seconds (fractions allowed) or a Prometheus duration, as the HTTP API accepts them.
pub fn parse_duration(text: &str) -> Option<Duration> {
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    parse_prometheus_duration(text)
}

/// A Prometheus duration such as `1h30m` or `250ms` (units y, w, d, h, m, s, ms; no bare
/// numbers), as rule files and the configuration file write them.
pub fn parse_prometheus_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let millis = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        total += Duration::from_millis(number.checked_mul(millis)?);
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Milliseconds since the epoch in RFC 3339 (UTC, fractional seconds when there are any);
/// `None` is Go's zero time.
pub fn rfc3339(t_ms: Option<i64>) -> String {
    t_ms.and_then(|t| OffsetDateTime::from_unix_timestamp_nanos(i128::from(t) * 1_000_000).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ZERO_TIME.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_parse_as_prometheus_accepts_them() {
        assert_eq!(parse_time("1700000000.5"), Some(1_700_000_000_500));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000_000));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_duration("15"), Some(Duration::from_secs(15)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_prometheus_duration("15"), None);
        assert_eq!(
            parse_prometheus_duration("1m30s"),
            Some(Duration::from_secs(90))
        );
    }

    #[test]
    fn times_print_as_rfc3339() {
        assert_eq!(rfc3339(Some(1_700_000_000_000)), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(Some(1_700_000_000_250)), "2023-11-14T22:13:20.25Z");
        assert_eq!(rfc3339(None), ZERO_TIME);
    }
}
