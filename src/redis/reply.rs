//! Replies: the [`Value`] callers match on, and the decoders several commands
//! share (flat field/value arrays of `SENTINEL masters`, `replicas`; the error
//! for anything unexpected).

use std::collections::BTreeMap;

use super::RedisError;

/// One reply, in RESP2's shapes. The `redis` crate's own value also has RESP3
/// shapes that topom never asks for (it speaks RESP2); folding them here keeps
/// every match at the call sites short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A null bulk string (`$-1`) or null array (`*-1`).
    Nil,
    /// An integer (`:`).
    Int(i64),
    /// A status reply (`+OK`).
    Simple(String),
    /// A bulk string (`$`).
    Bulk(Vec<u8>),
    /// An array (`*`), possibly nested.
    Array(Vec<Value>),
    /// An error reply (`-ERR ...`) inside an array or a pipeline, as Redis
    /// wrote it. A single command's error reply is a [`RedisError`] instead.
    Error(String),
}

impl Value {
    /// The bytes of a bulk or status reply.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// A bulk, status or integer reply as text (invalid UTF-8 replaced).
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::Int(i) => Some(i.to_string()),
            _ => self
                .as_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        }
    }
}

impl From<redis::Value> for Value {
    fn from(v: redis::Value) -> Value {
        use redis::Value as R;
        match v {
            R::Nil => Value::Nil,
            R::Int(i) => Value::Int(i),
            // Moved, not copied: the hot path (INFO) allocates nothing here.
            R::BulkString(b) => Value::Bulk(b),
            R::SimpleString(s) => Value::Simple(s),
            R::Okay => Value::Simple("OK".into()),
            R::Array(items) | R::Set(items) | R::Push { data: items, .. } => {
                Value::Array(items.into_iter().map(Value::from).collect())
            }
            R::Map(pairs) => Value::Array(
                pairs
                    .into_iter()
                    .flat_map(|(k, v)| [Value::from(k), Value::from(v)])
                    .collect(),
            ),
            R::Attribute { data, .. } => Value::from(*data),
            R::ServerError(e) => Value::Error(server_error_text(&e)),
            R::Boolean(b) => Value::Int(i64::from(b)),
            R::VerbatimString { text, .. } => Value::Bulk(text.into_bytes()),
            other => Value::Simple(format!("{other:?}")),
        }
    }
}

/// An error reply as Redis wrote it: `<CODE> <detail>`.
pub(crate) fn server_error_text(e: &redis::ServerError) -> String {
    match e.details() {
        Some(detail) => format!("{} {detail}", e.code()),
        None => e.code().to_owned(),
    }
}

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
