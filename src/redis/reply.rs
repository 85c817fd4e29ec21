//! Decoding the replies several commands share: flat field/value arrays
//! (`SENTINEL masters`, `replicas`) and the error for anything unexpected.

use std::collections::BTreeMap;

use super::RedisError;
use super::resp::Value;

/// An array of flat field/value arrays as maps.
pub(crate) fn records(
    addr: &str,
    what: &str,
    reply: Value,
) -> Result<Vec<BTreeMap<String, String>>, RedisError> {
    let Value::Array(items) = reply else {
        return Err(unexpected(addr, what, &reply));
    };
    items
        .iter()
        .map(|item| flat_map(item).ok_or_else(|| unexpected(addr, what, item)))
        .collect()
}

/// `[k1, v1, k2, v2, ...]` → `{k1: v1, k2: v2}`; `None` unless it is an array
/// of an even number of strings or integers.
pub(crate) fn flat_map(value: &Value) -> Option<BTreeMap<String, String>> {
    let Value::Array(items) = value else {
        return None;
    };
    if items.len() % 2 != 0 {
        return None;
    }
    items
        .chunks_exact(2)
        .map(|kv| Some((kv[0].to_text()?, kv[1].to_text()?)))
        .collect()
}

/// An "unexpected reply" error, with the reply shortened for the message.
pub(crate) fn unexpected(addr: &str, what: &str, reply: &Value) -> RedisError {
    let mut shown = format!("{reply:?}");
    if shown.len() > 120 {
        let cut = (0..=120)
            .rev()
            .find(|&i| shown.is_char_boundary(i))
            .unwrap_or(0);
        shown.truncate(cut);
        shown.push_str("...");
    }
    RedisError::Reply {
        addr: addr.to_owned(),
        reason: format!("unexpected reply to {what}: {shown}"),
    }
}
