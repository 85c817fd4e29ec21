//! The one parser and formatter of durations and byte sizes, shared by the
//! config file and the CLI so the two never disagree on what `"10"` means.
//!
//! A duration string must carry its unit (`500ms`, `1.5s`, `1h30m`): a bare number
//! could mean seconds or milliseconds, so it is refused. The config file keeps
//! Codis's reading of a bare TOML *integer* as seconds; that is a type, not a
//! string, and the config's deserializer handles it.

use std::time::Duration;

/// The longest duration accepted anywhere (a week): far beyond any deadline or
/// period topom needs, and it keeps the float → integer conversion exact.
const MAX_NANOS: f64 = 7.0 * 86_400e9;

/// Parses a positive duration made of `<number><unit>` parts (`h`, `m`, `s`,
/// `ms`, `us`/`µs`, `ns`): `500ms`, `1.5s`, `2m`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration: expected e.g. 500ms, 10s or 5m".into());
    }
    let mut nanos = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("invalid duration '{s}': add a unit (ms, s, m, h)"))?;
        let (number, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let per_unit = match unit {
            "h" => 3_600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => {
                return Err(format!(
                    "invalid duration '{s}': unknown unit '{unit}' (use ms, s, m or h)"
                ));
            }
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration '{s}': '{number}' is not a number"))?;
        nanos += value * per_unit;
        rest = next;
    }
    if !(1.0..=MAX_NANOS).contains(&nanos) {
        return Err(format!(
            "invalid duration '{s}': must be between 1ns and 168h"
        ));
    }
    // In range and rounded, so the cast neither truncates nor saturates.
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// Formats a duration the way [`parse_duration`] reads it: `10s`, `1.5s`, `500ms`, `250us`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        "0s".to_string()
    } else if nanos.is_multiple_of(1_000_000_000) {
        format!("{}s", d.as_secs())
    } else if nanos >= 1_000_000_000 {
        format!("{}s", trim_float(d.as_secs_f64()))
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos >= 1_000_000 {
        format!("{}ms", trim_float(nanos as f64 / 1e6))
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

/// `1.500000` → `1.5`, at most three decimals.
fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Parses a byte size (`512`, `64kb`, `32mb`, `1g`); units are powers of 1024.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size '{s}': expected e.g. 512, 64kb or 32mb"))?;
    let mult: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        "t" | "tb" => 1 << 40,
        other => {
            return Err(format!(
                "invalid size '{s}': unknown unit '{other}' (b, kb, mb, gb, tb)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid size '{s}': too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_duration("10").unwrap_err().contains("add a unit"));
        assert!(parse_duration("0s").unwrap_err().contains("between"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("1..5s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("169h").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn durations_round_trip() {
        for s in ["10s", "1.5s", "500ms", "250us", "1ms", "2.25ms"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(format_duration(d), s);
        }
        assert_eq!(format_duration(Duration::from_secs(120)), "120s");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512"), Ok(512));
        assert_eq!(parse_bytes("64kb"), Ok(64 << 10));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert!(parse_bytes("mb").is_err());
        assert!(parse_bytes("9zb").unwrap_err().contains("unknown unit"));
        assert!(
            parse_bytes("99999999999tb")
                .unwrap_err()
                .contains("too large")
        );
    }
}
