//! The pure pieces of a plain-Redis migration pass: targets, the per-target
//! key queues, splitting a batch by size, MIGRATE's arguments and the judging
//! of its reply. No I/O here.

use std::collections::BTreeMap;

use super::super::RedisError;
use super::super::client::host_port;
use super::super::reply::Value;
use crate::model::{MAX_SLOTS, slot_of};

/// A target master, with its address split the way MIGRATE wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) addr: String,
    pub(super) host: String,
    pub(super) port: String,
}

impl Target {
    /// Splits `host:port` at the last `:`; `[v6]:port` loses its brackets.
    pub(super) fn parse(addr: &str) -> Result<Target, RedisError> {
        let (host, port) = host_port(addr)?;
        Ok(Target {
            addr: addr.to_owned(),
            host: host.to_owned(),
            port: port.to_string(),
        })
    }
}

/// A slot to drain and the index of its target.
pub(crate) type SlotTarget = (u32, usize);

/// The distinct targets of `moves`, each parsed once by `parse`, and every
/// slot in range with the index of its target, in slot order. Slots out of
/// range are left out: no key hashes there (both migrators share this).
pub(crate) fn slot_targets<T>(
    moves: &BTreeMap<u32, String>,
    parse: impl Fn(&str) -> Result<T, RedisError>,
) -> Result<(Vec<T>, Vec<SlotTarget>), RedisError> {
    let mut addrs: Vec<&str> = Vec::new();
    let mut targets = Vec::new();
    let mut slots = Vec::new();
    for (&slot, addr) in moves.range(..MAX_SLOTS as u32) {
        let index = match addrs.iter().position(|a| a == addr) {
            Some(i) => i,
            None => {
                targets.push(parse(addr)?);
                addrs.push(addr);
                targets.len() - 1
            }
        };
        slots.push((slot, index));
    }
    Ok((targets, slots))
}

/// A key and its slot, as queued.
pub(super) type Keyed = (Vec<u8>, u32);

/// Keys waiting to be moved, one queue per target.
#[derive(Debug)]
pub(super) struct Queues {
    /// Slot → index in `pending` (and in the target list), for migrating slots.
    pub(super) slot_target: Vec<Option<usize>>,
    pub(super) pending: Vec<Vec<Keyed>>,
    pub(super) batch_keys: usize,
}

impl Queues {
    /// The distinct targets of `moves` (in slot order) and empty queues for
    /// them. Slots out of range are ignored: no key hashes there.
    pub(super) fn new(
        moves: &BTreeMap<u32, String>,
        batch_keys: usize,
    ) -> Result<(Vec<Target>, Queues), RedisError> {
        let (targets, slots) = slot_targets(moves, Target::parse)?;
        let mut slot_target = vec![None; MAX_SLOTS];
        for (slot, index) in slots {
            slot_target[slot as usize] = Some(index);
        }
        let queues = Queues {
            slot_target,
            pending: vec![Vec::new(); targets.len()],
            batch_keys: batch_keys.max(1),
        };
        Ok((targets, queues))
    }

    /// Queues `key` if its slot is migrating; a queue that reaches the batch
    /// size is handed back, emptied, as (target, batch).
    pub(super) fn push(&mut self, key: Vec<u8>) -> Option<(usize, Vec<Keyed>)> {
        let slot = slot_of(&key);
        let target = self.slot_target.get(slot as usize).copied().flatten()?;
        let queue = &mut self.pending[target];
        queue.push((key, slot));
        (queue.len() >= self.batch_keys).then(|| (target, std::mem::take(queue)))
    }

    /// Every non-empty queue, emptied, as (target, batch).
    pub(super) fn drain(&mut self) -> Vec<(usize, Vec<Keyed>)> {
        self.pending
            .iter_mut()
            .enumerate()
            .filter(|(_, q)| !q.is_empty())
            .map(|(t, q)| (t, std::mem::take(q)))
            .collect()
    }
}

/// A batch split by `MEMORY USAGE`: (key, slot, bytes).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct BySize {
    pub(super) small: Vec<(Vec<u8>, u32, u64)>,
    pub(super) big: Vec<(Vec<u8>, u32, u64)>,
}

/// Splits `batch` by the `MEMORY USAGE` replies (one per key, in order). A nil
/// reply means the key is gone (expired, or moved by a proxy): dropped.
pub(super) fn split_by_size(
    addr: &str,
    batch: Vec<Keyed>,
    sizes: Vec<Value>,
    big_value_bytes: u64,
) -> Result<BySize, RedisError> {
    let mut out = BySize::default();
    for ((key, slot), size) in batch.into_iter().zip(sizes) {
        let bytes = match size {
            Value::Nil => continue,
            Value::Int(n) => u64::try_from(n).unwrap_or(0),
            other => {
                return Err(RedisError::Reply {
                    addr: addr.to_owned(),
                    reason: format!("unexpected reply to MEMORY USAGE: {other:?}"),
                });
            }
        };
        if big_value_bytes > 0 && bytes > big_value_bytes {
            out.big.push((key, slot, bytes));
        } else {
            out.small.push((key, slot, bytes));
        }
    }
    Ok(out)
}

/// `MIGRATE <host> <port> "" <db> <timeout_ms> [AUTH <pw>] KEYS <keys...>`.
pub(super) fn migrate_args<'a, 'k: 'a>(
    target: &'a Target,
    db: &'a [u8],
    timeout_ms: &'a [u8],
    auth: &'a str,
    keys: impl IntoIterator<Item = &'k [u8]>,
) -> Vec<&'a [u8]> {
    let mut args: Vec<&[u8]> = vec![
        b"MIGRATE",
        target.host.as_bytes(),
        target.port.as_bytes(),
        b"",
        db,
        timeout_ms,
    ];
    if !auth.is_empty() {
        args.extend([&b"AUTH"[..], auth.as_bytes()]);
    }
    args.push(b"KEYS");
    args.extend(keys.into_iter().map(|k| -> &'a [u8] { k }));
    args
}

/// How a MIGRATE went, when it did not fail the pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Migrated {
    /// `+OK`: every key that still existed was moved.
    Ok,
    /// `+NOKEY`: none of the keys existed any more.
    NoKey,
    /// A key exists on the target (`BUSYKEY`); in a multi-key MIGRATE the
    /// other keys may or may not have moved.
    Busy,
}

/// Judges a MIGRATE reply. Auth and I/O errors name the target (the source
/// reports the target's reply); anything else fails the pass as a reply error.
pub(super) fn classify(
    source: &str,
    target: &str,
    reply: Result<Value, RedisError>,
) -> Result<Migrated, RedisError> {
    let reason = match reply {
        Ok(Value::Simple(s)) if s == "OK" => return Ok(Migrated::Ok),
        Ok(Value::Simple(s)) if s == "NOKEY" => return Ok(Migrated::NoKey),
        Ok(other) => format!("unexpected reply to MIGRATE: {other:?}"),
        Err(RedisError::Reply { reason, .. }) => reason,
        Err(e) => return Err(e),
    };
    let target = target.to_owned();
    if reason.contains("BUSYKEY") {
        Ok(Migrated::Busy)
    } else if reason.starts_with("IOERR") {
        Err(RedisError::Connect {
            addr: target,
            reason: format!("MIGRATE from {source}: {reason}"),
        })
    } else if ["NOAUTH", "WRONGPASS", "AUTH", "invalid password"]
        .iter()
        .any(|w| reason.contains(w))
    {
        Err(RedisError::Auth {
            addr: target,
            reason: format!("MIGRATE from {source}: {reason}"),
        })
    } else {
        Err(RedisError::Reply {
            addr: source.to_owned(),
            reason: format!("MIGRATE to {target}: {reason}"),
        })
    }
}
