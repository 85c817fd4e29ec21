//! Parsers for command-line values: slots and slot ranges, group ids, `on|off`,
//! and topom's address. Durations use the API crate's one parser,
//! `topom_proto::units`.
//!
//! Each parser returns `Err(String)` with a message meant for the operator; used
//! as a clap `value_parser`, clap prints it as a usage error and exits with 2.

use std::fmt;
use std::ops::RangeInclusive;

pub use topom_proto::limits::{MAX_GROUP_ID, MAX_SLOTS};

/// The default address of topom's gRPC listener.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:18080";

/// An inclusive range of slot ids, `begin <= end < MAX_SLOTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRange {
    /// First slot.
    pub begin: u32,
    /// Last slot (inclusive).
    pub end: u32,
}

impl SlotRange {
    /// A range of one slot.
    pub fn single(slot: u32) -> Self {
        Self {
            begin: slot,
            end: slot,
        }
    }

    /// The slot ids of the range, in order.
    pub fn ids(&self) -> RangeInclusive<u32> {
        self.begin..=self.end
    }

    /// Number of slots in the range (never 0).
    pub fn count(&self) -> u32 {
        self.end - self.begin + 1
    }
}

impl fmt::Display for SlotRange {
    /// `7` for one slot, `0-511` otherwise: the syntax [`parse_slot_range`] accepts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.begin == self.end {
            write!(f, "{}", self.begin)
        } else {
            write!(f, "{}-{}", self.begin, self.end)
        }
    }
}

/// Parses a slot id, `0..=1023`.
pub fn parse_slot(s: &str) -> Result<u32, String> {
    let id: u32 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid slot '{s}': expected a number 0..{}", MAX_SLOTS - 1))?;
    if id >= MAX_SLOTS {
        return Err(format!(
            "slot {id} out of range: slots are 0..{}",
            MAX_SLOTS - 1
        ));
    }
    Ok(id)
}

/// Parses `<slot>` or `<begin>-<end>` (inclusive), e.g. `7` or `0-511`.
pub fn parse_slot_range(s: &str) -> Result<SlotRange, String> {
    let Some((begin, end)) = s.split_once('-') else {
        return parse_slot(s).map(SlotRange::single);
    };
    let begin = parse_slot(begin)?;
    let end = parse_slot(end)?;
    check_range(begin, end)
}

/// Checks `begin <= end`, both already valid slots.
pub fn check_range(begin: u32, end: u32) -> Result<SlotRange, String> {
    if begin > end {
        return Err(format!(
            "invalid slot range {begin}-{end}: begin is greater than end"
        ));
    }
    Ok(SlotRange { begin, end })
}

/// Parses a group id, `1..=9999` (0 is "offline", never a real group).
pub fn parse_group_id(s: &str) -> Result<u32, String> {
    let gid: u32 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid group id '{s}': expected a number 1..{MAX_GROUP_ID}"))?;
    if gid == 0 || gid > MAX_GROUP_ID {
        return Err(format!(
            "group id {gid} out of range: groups are 1..{MAX_GROUP_ID}"
        ));
    }
    Ok(gid)
}

/// Parses `on|off` (also `true|false`, `yes|no`, `1|0`; any case).
pub fn parse_switch(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("invalid switch '{s}': expected on or off")),
    }
}

/// Turns `host:port` into `http://host:port`; a URL with a scheme is kept.
pub fn normalize_addr(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty address: expected host:port or http://host:port".to_string());
    }
    let url = if t.contains("://") {
        t.to_string()
    } else {
        format!("http://{t}")
    };
    // Validate here so a typo is a usage error, not a connection error.
    url.parse::<http::Uri>()
        .map_err(|e| format!("invalid address '{s}': {e}"))?;
    Ok(url)
}

/// A duration flag as the API's `google.protobuf.Duration`.
pub fn proto_duration(d: std::time::Duration, flag: &str) -> Result<prost_types::Duration, String> {
    prost_types::Duration::try_from(d).map_err(|e| format!("invalid {flag}: {e}"))
}

/// Parses the arguments of `slots assign`: either `<range> <group>` or one or
/// more `<range>:<group>`; a slot may appear only once.
pub fn parse_assignments(args: &[String]) -> Result<Vec<(SlotRange, u32)>, String> {
    let pairs: Vec<(SlotRange, u32)> = match args {
        [range, gid] if !range.contains(':') && !gid.contains(':') => {
            vec![(parse_slot_range(range)?, parse_group_id(gid)?)]
        }
        _ => args
            .iter()
            .map(|arg| {
                let (range, gid) = arg.split_once(':').ok_or_else(|| {
                    format!(
                        "invalid assignment '{arg}': expected RANGE:GROUP (e.g. 0-511:1), \
                         or a single RANGE GROUP pair"
                    )
                })?;
                Ok((parse_slot_range(range)?, parse_group_id(gid)?))
            })
            .collect::<Result<_, String>>()?,
    };
    if pairs.is_empty() {
        return Err("nothing to assign: give RANGE GROUP or RANGE:GROUP...".to_string());
    }
    let mut seen = vec![false; MAX_SLOTS as usize];
    for (range, _) in &pairs {
        for id in range.ids() {
            let slot = &mut seen[id as usize];
            if *slot {
                return Err(format!("slot {id} is assigned more than once"));
            }
            *slot = true;
        }
    }
    Ok(pairs)
}

/// Collapses sorted slot ids into ranges (`[0,1,2,5]` → `0-2, 5`).
pub fn collapse_ids(ids: &[u32]) -> Vec<SlotRange> {
    let mut out: Vec<SlotRange> = Vec::new();
    for &id in ids {
        match out.last_mut() {
            Some(last) if last.end.checked_add(1) == Some(id) => last.end = id,
            _ => out.push(SlotRange::single(id)),
        }
    }
    out
}

/// `0-2,5` for ids `[0,1,2,5]`.
pub fn format_ids(ids: &[u32]) -> String {
    collapse_ids(ids)
        .iter()
        .map(SlotRange::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_bounds() {
        assert_eq!(parse_slot("0"), Ok(0));
        assert_eq!(parse_slot("1023"), Ok(1023));
        let err = parse_slot("1024").unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        assert!(parse_slot("-1").is_err());
        assert!(parse_slot("abc").unwrap_err().contains("invalid slot"));
    }

    #[test]
    fn slot_ranges() {
        assert_eq!(
            parse_slot_range("0-511"),
            Ok(SlotRange { begin: 0, end: 511 })
        );
        assert_eq!(parse_slot_range("7"), Ok(SlotRange::single(7)));
        assert_eq!(parse_slot_range("7-7").map(|r| r.count()), Ok(1));
        let err = parse_slot_range("600-500").unwrap_err();
        assert!(err.contains("begin is greater than end"), "{err}");
        assert!(parse_slot_range("0-1024").unwrap_err().contains("1024"));
        assert!(parse_slot_range("0-").is_err());
        assert!(parse_slot_range("-5").is_err());
        assert!(parse_slot_range("1-2-3").is_err());
        assert_eq!(SlotRange { begin: 0, end: 511 }.to_string(), "0-511");
        assert_eq!(SlotRange::single(9).to_string(), "9");
    }

    #[test]
    fn group_ids() {
        assert_eq!(parse_group_id("1"), Ok(1));
        assert_eq!(parse_group_id("9999"), Ok(9999));
        assert!(parse_group_id("0").unwrap_err().contains("out of range"));
        assert!(parse_group_id("10000").is_err());
        assert!(parse_group_id("g1").is_err());
    }

    #[test]
    fn switches() {
        assert_eq!(parse_switch("on"), Ok(true));
        assert_eq!(parse_switch("OFF"), Ok(false));
        assert_eq!(parse_switch("1"), Ok(true));
        assert!(parse_switch("maybe").unwrap_err().contains("on or off"));
    }

    #[test]
    fn addresses() {
        assert_eq!(
            normalize_addr("127.0.0.1:18080").as_deref(),
            Ok("http://127.0.0.1:18080")
        );
        assert_eq!(
            normalize_addr("https://topom:443").as_deref(),
            Ok("https://topom:443")
        );
        assert!(normalize_addr("").is_err());
        assert!(normalize_addr("bad host:1").is_err());
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn assignments() {
        assert_eq!(
            parse_assignments(&strings(&["0-511", "1"])),
            Ok(vec![(SlotRange { begin: 0, end: 511 }, 1)])
        );
        assert_eq!(
            parse_assignments(&strings(&["0-511:1", "512-1023:2"])),
            Ok(vec![
                (SlotRange { begin: 0, end: 511 }, 1),
                (
                    SlotRange {
                        begin: 512,
                        end: 1023
                    },
                    2
                ),
            ])
        );
        assert_eq!(
            parse_assignments(&strings(&["5:3"])),
            Ok(vec![(SlotRange::single(5), 3)])
        );
        let err = parse_assignments(&strings(&["0-10:1", "10-20:2"])).unwrap_err();
        assert!(err.contains("slot 10 is assigned more than once"), "{err}");
        assert!(parse_assignments(&strings(&["0-511"])).is_err());
        assert!(parse_assignments(&strings(&["0-511", "1", "2"])).is_err());
        assert!(parse_assignments(&strings(&["0-511:0"])).is_err());
        assert!(parse_assignments(&strings(&["511-0:1"])).is_err());
        assert!(parse_assignments(&[]).is_err());
    }

    #[test]
    fn collapsing_ids() {
        assert_eq!(format_ids(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_ids(&[]), "");
        assert_eq!(collapse_ids(&[3]), vec![SlotRange::single(3)]);
    }
}
