//! Human units used throughout the spec: durations (`30s`, `15m`, `28d`), percentages
//! (`1%`, `99.9%`) and rates (`200/s`). Each parses from a string, keeps the text the user
//! wrote for messages, and rejects anything ambiguous with an error that shows a valid form.

use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a unit value did not parse; the text is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(pub String);

/// Splits `"1.5s"` into `(1.5, "s")`; the number part allows digits and one dot.
fn split_number(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let end = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    if end == 0 {
        return None;
    }
    let number: f64 = text[..end].parse().ok()?;
    number.is_finite().then_some((number, text[end..].trim()))
}

/// A duration such as `250ms`, `30s`, `15m`, `6h` or `28d`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(StdDuration);

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Self(StdDuration::from_millis(ms))
    }
    pub const fn from_secs(s: u64) -> Self {
        Self(StdDuration::from_secs(s))
    }
    pub fn as_std(self) -> StdDuration {
        self.0
    }
}

impl FromStr for Duration {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let bad = || {
            UnitError(format!(
                "invalid duration `{text}`: expected a non-negative number and a unit (ms, s, m, h, d), e.g. `30s`, `15m` or `28d`"
            ))
        };
        if text.trim_start().starts_with('-') {
            return Err(UnitError(format!(
                "invalid duration `{text}`: a duration cannot be negative"
            )));
        }
        let (number, unit) = split_number(text).ok_or_else(bad)?;
        let unit_micros = match unit {
            "ms" => 1e3,
            "s" => 1e6,
            "m" => 60e6,
            "h" => 3600e6,
            "d" => 86_400e6,
            _ => return Err(bad()),
        };
        // Ten years is far beyond any window a release gate uses; it keeps the value exact:
        // whole microseconds below 2^53 convert without rounding error.
        let micros = (number * unit_micros).round();
        if micros > 315_360_000e6 {
            return Err(UnitError(format!(
                "invalid duration `{text}`: longer than ten years"
            )));
        }
        Ok(Self(StdDuration::from_micros(micros as u64)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        for (unit_ms, unit) in [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1000, "s"),
        ] {
            if ms > 0 && ms.is_multiple_of(unit_ms) {
                return write!(f, "{}{unit}", ms / unit_ms);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A percentage written as `1%` or `99.9%`, held as the exact text and as a ratio.
///
/// Objectives stay as the decimal the user wrote (SRE Workbook: keep objectives as decimals,
/// not floats with noise); `ratio()` is for arithmetic.
#[derive(Clone, PartialEq)]
pub struct Percent {
    text: String,
    ratio: f64,
}

impl Percent {
    pub fn ratio(&self) -> f64 {
        self.ratio
    }
    /// A default written in the source: its text and its ratio.
    pub(crate) fn from_ratio(text: &str, ratio: f64) -> Self {
        Self {
            text: text.to_string(),
            ratio,
        }
    }
}

impl FromStr for Percent {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let bad = || {
            UnitError(format!(
                "invalid percentage `{text}`: expected a number from 0 to 100 followed by `%`, e.g. `1%` or `99.9%`"
            ))
        };
        let trimmed = text.trim();
        let number = trimmed.strip_suffix('%').ok_or_else(bad)?;
        let (value, rest) = split_number(number).ok_or_else(bad)?;
        if !rest.is_empty() || !(0.0..=100.0).contains(&value) {
            return Err(bad());
        }
        Ok(Self {
            text: trimmed.to_string(),
            ratio: value / 100.0,
        })
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A rate of events per unit of time: `200/s`, `30/m`, `1000/h`.
#[derive(Clone, Copy, PartialEq)]
pub struct Rate {
    per_second: f64,
}

impl Rate {
    pub fn per_second(self) -> f64 {
        self.per_second
    }
}

impl FromStr for Rate {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let bad = || {
            UnitError(format!(
                "invalid rate `{text}`: expected a positive number of requests per s, m or h, e.g. `200/s`"
            ))
        };
        let trimmed = text.trim();
        if trimmed.starts_with('-') {
            return Err(UnitError(format!(
                "invalid rate `{text}`: a rate must be positive"
            )));
        }
        let (count, unit) = trimmed.split_once('/').ok_or_else(bad)?;
        let (value, rest) = split_number(count).ok_or_else(bad)?;
        if !rest.is_empty() {
            return Err(bad());
        }
        let seconds = match unit.trim() {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        if value <= 0.0 {
            return Err(UnitError(format!(
                "invalid rate `{text}`: a rate must be positive"
            )));
        }
        if value / seconds > 1_000_000.0 {
            return Err(UnitError(format!(
                "invalid rate `{text}`: more than 1,000,000 requests per second"
            )));
        }
        Ok(Self {
            per_second: value / seconds,
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", self.per_second)
    }
}

impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A size in bytes: `512B`, `64KiB`, `256MiB`, `1GiB`, or decimal `100KB`, `10MB`, `1GB`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(u64);

impl ByteSize {
    pub const fn bytes(self) -> u64 {
        self.0
    }
    pub const fn from_bytes(bytes: u64) -> Self {
        Self(bytes)
    }
}

impl FromStr for ByteSize {
    type Err = UnitError;
    fn from_str(text: &str) -> Result<Self, UnitError> {
        let bad = || {
            UnitError(format!(
                "invalid size `{text}`: expected a non-negative number and a unit (B, KB, MB, GB, KiB, MiB, GiB), e.g. `256MiB`"
            ))
        };
        if text.trim_start().starts_with('-') {
            return Err(UnitError(format!(
                "invalid size `{text}`: a size cannot be negative"
            )));
        }
        let (number, unit) = split_number(text).ok_or_else(bad)?;
        let scale: f64 = match unit {
            "B" => 1.0,
            "KB" => 1e3,
            "MB" => 1e6,
            "GB" => 1e9,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            _ => return Err(bad()),
        };
        let bytes = (number * scale).round();
        if bytes > 1024.0_f64.powi(5) {
            return Err(UnitError(format!(
                "invalid size `{text}`: larger than 1 PiB"
            )));
        }
        Ok(Self(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (scale, unit) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                return write!(f, "{}{unit}", self.0 / scale);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl fmt::Debug for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Serde and JSON Schema glue shared by the unit types: each is a string in YAML.
macro_rules! string_unit {
    ($ty:ty, $name:literal, $pattern:literal, $description:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($description)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(|e: UnitError| E::custom(e.0))
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$ty, E> {
                        Err(E::custom(format!(
                            "`{v}` has no unit: expected {}",
                            $description
                        )))
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$ty, E> {
                        self.visit_i64(v as i64)
                    }
                    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<$ty, E> {
                        Err(E::custom(format!(
                            "`{v}` has no unit: expected {}",
                            $description
                        )))
                    }
                }
                deserializer.deserialize_any(Visitor)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "description": $description,
                })
            }
        }
    };
}

string_unit!(
    Duration,
    "Duration",
    r"^\s*[0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d)\s*$",
    "a duration such as `250ms`, `30s`, `15m`, `6h` or `28d`"
);
string_unit!(
    Percent,
    "Percent",
    r"^\s*[0-9]+(\.[0-9]+)?\s*%\s*$",
    "a percentage such as `1%` or `99.9%`"
);
string_unit!(
    Rate,
    "Rate",
    r"^\s*[0-9]+(\.[0-9]+)?\s*/\s*(s|m|h)\s*$",
    "a rate such as `200/s`, `30/m` or `1000/h`"
);

string_unit!(
    ByteSize,
    "ByteSize",
    r"^\s*[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)\s*$",
    "a size such as `64KiB`, `256MiB` or `1GB`"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes_in_binary_and_decimal_units() {
        assert_eq!("256MiB".parse::<ByteSize>().unwrap().bytes(), 256 << 20);
        assert_eq!("100KB".parse::<ByteSize>().unwrap().bytes(), 100_000);
        assert_eq!("1.5KiB".parse::<ByteSize>().unwrap().bytes(), 1536);
        assert_eq!(ByteSize::from_bytes(64 << 20).to_string(), "64MiB");
        assert!(
            "12 parsecs"
                .parse::<ByteSize>()
                .unwrap_err()
                .0
                .contains("e.g. `256MiB`")
        );
        assert!("-1MiB".parse::<ByteSize>().is_err());
        assert!("5".parse::<ByteSize>().is_err());
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(
            "250ms".parse::<Duration>().unwrap().as_std().as_millis(),
            250
        );
        assert_eq!("30s".parse::<Duration>().unwrap().as_std().as_secs(), 30);
        assert_eq!("15m".parse::<Duration>().unwrap().as_std().as_secs(), 900);
        assert_eq!("1.5h".parse::<Duration>().unwrap().as_std().as_secs(), 5400);
        assert_eq!("28d".parse::<Duration>().unwrap().to_string(), "28d");
    }

    #[test]
    fn bad_durations_explain_the_expected_form() {
        let err = "15 parsecs".parse::<Duration>().unwrap_err();
        assert!(
            err.0.contains("15 parsecs") && err.0.contains("e.g. `30s`"),
            "{err}"
        );
        assert!(
            "-5s"
                .parse::<Duration>()
                .unwrap_err()
                .0
                .contains("negative")
        );
        assert!("s".parse::<Duration>().is_err());
        assert!("".parse::<Duration>().is_err());
        assert!("1e400s".parse::<Duration>().is_err());
    }

    #[test]
    fn percentages_keep_the_written_decimal() {
        let p: Percent = "99.9%".parse().unwrap();
        assert_eq!(p.to_string(), "99.9%");
        assert!((p.ratio() - 0.999).abs() < 1e-12);
        assert!("101%".parse::<Percent>().is_err());
        assert!("5".parse::<Percent>().is_err());
        assert!("-1%".parse::<Percent>().is_err());
    }

    #[test]
    fn rates_are_positive_per_second() {
        assert_eq!("200/s".parse::<Rate>().unwrap().per_second(), 200.0);
        assert_eq!("120/m".parse::<Rate>().unwrap().per_second(), 2.0);
        assert!("-5/s".parse::<Rate>().unwrap_err().0.contains("positive"));
        assert!("0/s".parse::<Rate>().is_err());
        assert!("200".parse::<Rate>().is_err());
        assert!("200/fortnight".parse::<Rate>().is_err());
    }

    proptest! {
        #[test]
        fn unit_parsers_never_panic(text in "\\PC{0,24}") {
            let _ = text.parse::<Duration>();
            let _ = text.parse::<Percent>();
            let _ = text.parse::<Rate>();
            let _ = text.parse::<ByteSize>();
        }

        #[test]
        fn displayed_durations_parse_back(ms in 0u64..10_000_000_000) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(d.to_string().parse::<Duration>().unwrap(), d);
        }
    }
}
