//! Pure data: the records topom stores and the values derived from them.
//!
//! Serde names follow the Codis dashboard's JSON (`group_id`, `target_id`, `server`,
//! ...), so an existing Codis store reads as-is. No I/O and no async here.

mod addr;
mod group;
mod hash;
mod info;
mod proxy;
mod sentinel;
mod slot;
mod stats;
mod time;
mod topom;

pub use addr::{Addr, AddrError};
pub use group::{Group, GroupServer, PromoteState, Promoting, ServerKind, SyncAction, SyncState};
pub use hash::{hash_tag, slot_of};
pub use info::{DERIVED_SECTIONS, Info, InfoSections};
pub use proxy::{Proxy, ProxyKind};
pub use sentinel::Sentinel;
pub use slot::{
    ForwardMethod, MAX_SLOTS, ReplicaGroups, SlotAction, SlotActionConfig, SlotMapping, SlotState,
    SlotView,
};
pub use stats::{InfoMap, Probe, ProbeOutcome, SentinelGroup, SentinelReport};
pub use time::{format_rfc3339, parse_rfc3339};
pub use topom::TopomRecord;

/// The highest group id; group ids are 1..=MAX_GROUP_ID and 0 means "offline".
pub const MAX_GROUP_ID: u32 = topom_proto::limits::MAX_GROUP_ID;

/// Returns the product-name rule violation, if any (`^\w[\w.\-]*$`, ASCII).
pub fn validate_product_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match chars.next() {
        None => return Err("product name is empty".into()),
        Some(c) if !word(c) => {
            return Err(format!(
                "product name {name:?} must start with a letter, digit or '_'"
            ));
        }
        _ => {}
    }
    if let Some(bad) = chars.find(|&c| !(word(c) || c == '.' || c == '-')) {
        return Err(format!(
            "product name {name:?} contains {bad:?}; only letters, digits, '_', '.' and '-' are allowed"
        ));
    }
    Ok(())
}

/// Checks that `addr` is `host:port` with a non-empty host and a port in 1..=65535
/// (see [`Addr::parse`]).
pub fn validate_addr(addr: &str) -> Result<(), String> {
    Addr::split(addr).map(drop).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_names() {
        assert!(validate_product_name("codis-demo").is_ok());
        assert!(validate_product_name("a.b_c-1").is_ok());
        assert!(validate_product_name("").is_err());
        assert!(validate_product_name("-x").is_err());
        assert!(validate_product_name("a/b").is_err());
    }

    #[test]
    fn addrs() {
        assert!(validate_addr("127.0.0.1:6379").is_ok());
        assert!(validate_addr("[::1]:6379").is_ok());
        assert!(validate_addr("redis-1:6379").is_ok());
        for bad in ["", "127.0.0.1", ":6379", "h:0", "h:70000", "h:x", "a b:1"] {
            assert!(validate_addr(bad).is_err(), "{bad}");
        }
    }
}
