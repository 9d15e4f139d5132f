//! The knobs that make a candidate defective, one per later step to catch.

use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Defect {
    /// `errors=5%`: answer 500 to that share of reads (items and quotes).
    Errors(f64),
    /// `latency=+200ms`: add that delay to reads (items and quotes).
    Latency(Duration),
    /// `no-failover`: do not fall back to the secondary provider.
    NoFailover,
    /// `auth-bypass`: accept writes without an API key.
    AuthBypass,
    /// `no-rate-limit`: never answer 429.
    NoRateLimit,
    /// `corrupt-data`: skip the data file's integrity check.
    CorruptData,
    /// `no-clock-leeway`: refuse a quote issued more than 2 s from this clock (instead of
    /// a minute), so a provider whose clock is slightly off is taken for a broken one.
    NoClockLeeway,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown defect `{0}`: expected errors=N%, latency=+Nms, no-failover, auth-bypass, no-rate-limit, corrupt-data or no-clock-leeway"
)]
pub struct DefectParseError(pub String);

impl FromStr for Defect {
    type Err = DefectParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || DefectParseError(text.to_string());
        Ok(match text {
            "no-failover" => Defect::NoFailover,
            "auth-bypass" => Defect::AuthBypass,
            "no-rate-limit" => Defect::NoRateLimit,
            "corrupt-data" => Defect::CorruptData,
            "no-clock-leeway" => Defect::NoClockLeeway,
            other => {
                if let Some(share) = other.strip_prefix("errors=") {
                    let percent: f64 = share
                        .strip_suffix('%')
                        .and_then(|n| n.parse().ok())
                        .filter(|p| (0.0..=100.0).contains(p))
                        .ok_or_else(bad)?;
                    Defect::Errors(percent / 100.0)
                } else if let Some(delay) = other.strip_prefix("latency=+") {
                    let ms: u64 = delay
                        .strip_suffix("ms")
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(bad)?;
                    Defect::Latency(Duration::from_millis(ms))
                } else {
                    return Err(bad());
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_parses() {
        assert_eq!("errors=5%".parse::<Defect>().unwrap(), Defect::Errors(0.05));
        assert_eq!(
            "latency=+200ms".parse::<Defect>().unwrap(),
            Defect::Latency(Duration::from_millis(200))
        );
        for knob in [
            "no-failover",
            "auth-bypass",
            "no-rate-limit",
            "corrupt-data",
        ] {
            assert!(knob.parse::<Defect>().is_ok(), "{knob}");
        }
        assert!("errors=150%".parse::<Defect>().is_err());
        assert!("flaky".parse::<Defect>().is_err());
    }
}
