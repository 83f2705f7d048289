//! Durations (`30s`, `1h30m`) and sizes (`10MiB`) as the config writes them.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A duration as the file writes it (`30s`, `1h30m`); reads itself, so toml
/// positions its error at the value. A bare integer is refused with why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

/// A size in bytes as the file writes it (`10MiB`, or an integer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parsed = match deserializer.deserialize_any(ScalarVisitor)? {
            Scalar::Text(text) => {
                parse_duration(&text).map_err(|e| format!("invalid duration {text:?}: {e}"))
            }
            Scalar::Integer(n) => Err(format!(
                "invalid duration {n}: `{n}` needs a unit (ms, s, m, h, d, w), e.g. \"{n}s\""
            )),
        };
        parsed.map(ConfigDuration).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parsed = match deserializer.deserialize_any(ScalarVisitor)? {
            Scalar::Text(text) => {
                parse_size(&text).map_err(|e| format!("invalid size {text:?}: {e}"))
            }
            Scalar::Integer(n) => {
                u64::try_from(n).map_err(|_| format!("invalid size {n}: must be positive"))
            }
        };
        parsed.map(ByteSize).map_err(de::Error::custom)
    }
}

/// A string or an integer: sizes take both, and durations say why a bare
/// integer is wrong instead of a generic type error.
enum Scalar {
    Text(String),
    Integer(i64),
}

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an integer")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Integer(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        i64::try_from(v)
            .map(Scalar::Integer)
            .map_err(|_| E::custom("integer too large"))
    }
}

/// Parses a duration such as `30s`, `15m`, `2h`, `90d`, `1w`, `500ms` or
/// `1h30m`. A bare number is refused: its unit would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("empty duration".to_string());
    }
    let mut millis: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| "number too large".to_string())?;
        if rest[digits..].starts_with(['.', ',']) {
            return Err("use whole numbers, e.g. \"1h30m\" rather than \"1.5h\"".to_string());
        }
        rest = rest[digits..].trim_start();
        let letters = rest.len() - rest.trim_start_matches(|c: char| c.is_alphabetic()).len();
        let unit = &rest[..letters];
        let scale: u64 = match unit {
            "ms" | "msec" => 1,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
            "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
            "h" | "hr" | "hour" | "hours" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            "w" | "week" | "weeks" => 604_800_000,
            "" => {
                return Err(format!(
                    "`{number}` needs a unit (ms, s, m, h, d, w), e.g. \"{number}s\""
                ))
            }
            _ => {
                return Err(format!(
                    "unknown unit `{unit}`, expected ms, s, m, h, d or w"
                ))
            }
        };
        millis = number
            .checked_mul(scale)
            .and_then(|part| millis.checked_add(part))
            .ok_or_else(|| "duration too large".to_string())?;
        rest = rest[letters..].trim_start();
    }
    Ok(Duration::from_millis(millis))
}

/// Parses a size in bytes: `10MiB`, `512KiB`, `1GiB`, `10MB`, `1KB`, or a
/// bare number of bytes. Units are case-insensitive; `K`/`M`/`G` are powers
/// of 1000, `Ki`/`Mi`/`Gi` powers of 1024.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return Err("expected a number of bytes, optionally with a unit such as MiB".to_string());
    }
    let number: u64 = text[..digits]
        .parse()
        .map_err(|_| "size too large".to_string())?;
    if text[digits..].starts_with(['.', ',']) {
        return Err("use whole numbers, e.g. \"1536KiB\" rather than \"1.5MiB\"".to_string());
    }
    let unit = text[digits..].trim_start();
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" | "ki" => 1 << 10,
        "mib" | "mi" => 1 << 20,
        "gib" | "gi" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit `{unit}`, expected B, KB, MB, GB, KiB, MiB or GiB"
            ))
        }
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| "size too large".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let ok = [
            ("30s", 30_000),
            ("15m", 900_000),
            ("2h", 7_200_000),
            ("90d", 7_776_000_000),
            ("1w", 604_800_000),
            ("500ms", 500),
            ("1h30m", 5_400_000),
            ("1h 30m 15s", 5_415_000),
            ("2 days", 172_800_000),
            (" 10min ", 600_000),
        ];
        for (text, millis) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
        let bad = [
            ("", "empty"),
            ("30", "needs a unit"),
            ("1h30", "`30` needs a unit"),
            ("s", "expected a number"),
            ("1.5h", "use whole numbers"),
            ("5y", "unknown unit `y`"),
            ("-5s", "expected a number"),
            ("99999999999999999999s", "too large"),
            ("999999999999999w", "too large"),
        ];
        for (text, expected) in bad {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn sizes_parse() {
        let ok = [
            ("10MiB", 10 << 20),
            ("512KiB", 512 << 10),
            ("1GiB", 1 << 30),
            ("10MB", 10_000_000),
            ("1KB", 1_000),
            ("1kb", 1_000),
            ("4 MiB", 4 << 20),
            ("1048576", 1_048_576),
            ("7B", 7),
        ];
        for (text, bytes) in ok {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for text in ["", "MiB", "1.5MiB", "10XB", "-1", "99999999999GiB"] {
            assert!(parse_size(text).is_err(), "{text}");
        }
    }
}
