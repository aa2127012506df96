//! The bounds every number the tool reads must keep. A value beyond its bound is bad input:
//! refused at validation (file:line:col, exit 2), before anything is called, so no arithmetic
//! on it can overflow later. Documented in docs/runbook-format.md.

use std::time::Duration;

/// The longest duration any input may give (a step's timeout, a wait, a settle or hold
/// period, a lease TTL, a fault's start or length): seven days. An outage runbook never needs
/// more, and sums of a few such durations stay far from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How MAX_DURATION is written in messages.
pub const MAX_DURATION_TEXT: &str = "7d";

/// A duration as people write it (`30s`, `5m`, `1h 30m`), at most [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| e.to_string())?;
    if d > MAX_DURATION {
        return Err(format!(
            "longer than {MAX_DURATION_TEXT}, the longest duration accepted"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("7d"), Ok(MAX_DURATION));
        assert!(parse_duration("7d 1s")
            .unwrap_err()
            .contains("longer than 7d"));
        assert!(parse_duration("18446744073709551600s").is_err());
        assert!(parse_duration("3074457345618258604s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
