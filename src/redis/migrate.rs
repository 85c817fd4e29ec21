//! The plain-Redis [`Migrator`]: moves the keys of migrating slots with `SCAN`
//! and `MIGRATE ... KEYS` (issue 5 §3; hashing as in reference §7.1).
//!
//! A pass walks every db of the source that holds keys (`INFO keyspace`), so
//! one scan serves every slot that migrates out of that source. A scanner
//! queues the keys of migrating slots per target and hands full queues to a
//! mover; each has its own connection to the source (they `SELECT`), and they
//! run together so the source keeps working while we parse its replies:
//!
//! ```text
//! scanner: SCAN ─► slot_of(key) ∈ moves? ─► queue[target] ─full─► MEMORY USAGE
//!          (pipelined) ─► small | big ─► channel
//! mover:   channel ─► up to 4 batches' MIGRATE ... KEYS in one pipeline
//!                     │ BUSYKEY                        big: MIGRATE alone, timed
//!          key by key; busy ones: EXISTS on target, then DEL here
//! ```
//!
//! The source runs one command at a time, and MIGRATE holds it until the
//! target restored the keys; what we can take off the critical path is our
//! own round trips. So sizing happens on the scanner's connection (it fills
//! the gaps between MIGRATEs) and the mover sends the MIGRATEs of the batches
//! already sized back to back, so the source finishes one and starts the next
//! without waiting for us.
//!
//! With a [`Throttle`] set, the mover takes each pipeline's keys and sizes
//! (and each big value's) from it before sending the MIGRATEs.
//!
//! `MIGRATE` never gets `REPLACE`: a key already on the target was moved there
//! by a proxy and written since, so the target's copy is the newer one.

mod plan;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_trait::async_trait;

pub(crate) use plan::{SlotTarget, slot_targets};

use plan::{BySize, Keyed, Migrated, Queues, Target, classify, migrate_args, split_by_size};

use super::client::Conn;
use super::dial::{bounded, connect};
use super::info::dbs_with_keys;
use super::reply::Value;
use super::{Cost, MigrateOptions, Migrator, RedisError, SlotPass, Throttle};

/// Redis's own MIGRATE timeout is per socket operation, so a whole batch may
/// legitimately take somewhat longer than it; our deadline adds this much
/// (or the timeout itself, if larger) before giving up on the source.
const MIGRATE_MARGIN: Duration = Duration::from_secs(1);

/// What MIGRATE does when its timeout argument is 0, and so what we do too.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// [`Migrator`] for plain Redis masters (≥ 6.2: `MIGRATE ... AUTH ... KEYS`).
pub struct PlainMigrator {
    /// Authenticates our connections and the source's MIGRATE connections to
    /// the target; empty means none.
    product_auth: String,
}

// Written by hand so that the password never reaches a log line.
impl std::fmt::Debug for PlainMigrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMigrator")
            .field("auth", &!self.product_auth.is_empty())
            .finish()
    }
}

impl PlainMigrator {
    /// A migrator whose connections (and MIGRATE's, through `AUTH`)
    /// authenticate with `product_auth` (empty: no password).
    pub fn new(product_auth: &str) -> PlainMigrator {
        PlainMigrator {
            product_auth: product_auth.to_owned(),
        }
    }
}

#[async_trait]
impl Migrator for PlainMigrator {
    async fn migrate_pass(
        &self,
        source: &str,
        moves: &BTreeMap<u32, String>,
        opts: &MigrateOptions,
        progress: &(dyn for<'p> Fn(&'p BTreeMap<u32, SlotPass>) + Send + Sync),
    ) -> Result<BTreeMap<u32, SlotPass>, RedisError> {
        let mut totals: BTreeMap<u32, SlotPass> =
            moves.keys().map(|&s| (s, SlotPass::default())).collect();
        let (targets, queues) = Queues::new(moves, opts.batch_keys)?;
        if targets.is_empty() {
            return Ok(totals);
        }
        let settings = Settings::from(opts);
        let auth = self.product_auth.as_str();
        // Two connections: the scan goes on while a batch moves.
        let (conn, scan_conn) = tokio::try_join!(
            connect(source, auth, settings.timeout),
            connect(source, auth, settings.timeout)
        )?;
        let mut pass = Pass {
            scanner: Scanner {
                conn: scan_conn,
                queues,
                settings,
            },
            mover: Mover {
                auth,
                settings,
                targets,
                conn,
                target_conns: HashMap::new(),
                db: 0,
                throttle: &opts.throttle,
                totals: &mut totals,
                progress,
            },
        };
        pass.run().await?;
        Ok(totals)
    }
}

// === settings and targets ===

/// [`MigrateOptions`] with the degenerate values made usable.
#[derive(Debug, Clone, Copy)]
struct Settings {
    scan_count: usize,
    /// 0: no value counts as big.
    big_value_bytes: u64,
    /// The deadline of the mover's commands other than MIGRATE.
    timeout: Duration,
    /// MIGRATE's own timeout argument, in ms.
    timeout_ms: u128,
    /// Our deadline for one MIGRATE.
    migrate_deadline: Duration,
    /// Our deadline for the scanner's commands: the source may first have to
    /// finish the MIGRATEs of the mover's pipeline.
    scan_deadline: Duration,
    interval: Duration,
}

impl From<&MigrateOptions> for Settings {
    fn from(o: &MigrateOptions) -> Settings {
        let timeout = if o.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            o.timeout
        };
        let migrate_deadline = timeout + timeout.max(MIGRATE_MARGIN);
        Settings {
            // SCAN refuses COUNT 0.
            scan_count: o.scan_count.max(1),
            big_value_bytes: o.big_value_bytes,
            timeout,
            // MIGRATE reads 0 as "use 1000 ms": send at least 1.
            timeout_ms: timeout.as_millis().max(1),
            migrate_deadline,
            scan_deadline: migrate_deadline * MIGRATES_IN_FLIGHT as u32 + timeout,
            interval: o.interval,
        }
    }
}

/// What `keys` cost the throttle: their count and `MEMORY USAGE` sizes.
fn cost_of<'k>(keys: impl Iterator<Item = &'k SizedKey>) -> Cost {
    keys.fold(Cost::default(), |c, (_, _, bytes)| Cost {
        keys: c.keys + 1,
        bytes: c.bytes.saturating_add(*bytes),
    })
}

// === connections ===

/// Batches on their way from the scanner to the mover: enough for the scan
/// to run ahead while batches move, and a bound on what a pass holds.
const BATCHES_QUEUED: usize = 8;

/// MIGRATEs the mover sends in one pipeline (when no interval paces the
/// batches): enough that the source never waits for our next command, few
/// enough that a failing target costs little more than one batch.
const MIGRATES_IN_FLIGHT: usize = 4;

/// A key, its slot and its size in bytes.
type SizedKey = (Vec<u8>, u32, u64);

/// A batch sized by the scanner: every key of migrating slots the scan saw
/// (their slots, for `found`), and those still present, split by size.
#[derive(Debug)]
struct Sized {
    target: usize,
    found: Vec<u32>,
    keys: BySize,
}

/// One pass over one source: a scanner feeding a mover, each on its own
/// connection to the source, running together so that the source is rarely
/// idle while we parse a reply.
struct Pass<'a> {
    scanner: Scanner,
    mover: Mover<'a>,
}

impl Pass<'_> {
    async fn run(&mut self) -> Result<(), RedisError> {
        let info = self.mover.call(&[b"INFO", b"keyspace"]).await?;
        let info = info.to_text().unwrap_or_default();
        for db in dbs_with_keys(&info) {
            let select = db.to_string();
            let select: [&[u8]; 2] = [b"SELECT", select.as_bytes()];
            self.mover.db = db;
            self.mover.call(&select).await?;
            self.scanner.call(&select).await?;
            let (tx, rx) = tokio::sync::mpsc::channel(BATCHES_QUEUED);
            // Everything queued belongs to this db: both finish before the
            // next SELECT. The first error ends both.
            tokio::try_join!(self.scanner.scan_db(tx), self.mover.consume(rx))?;
        }
        Ok(())
    }
}

/// Walks a db with SCAN and hands full batches to the mover.
struct Scanner {
    /// To the source, `SELECT`ed to the db being scanned.
    conn: Conn,
    queues: Queues,
    settings: Settings,
}

impl Scanner {
    /// Scans the selected db to the end, then sends what is still queued.
    async fn scan_db(&mut self, tx: tokio::sync::mpsc::Sender<Sized>) -> Result<(), RedisError> {
        let count = self.settings.scan_count.to_string();
        let mut cursor = b"0".to_vec();
        loop {
            let reply = self
                .call(&[b"SCAN", &cursor, b"COUNT", count.as_bytes()])
                .await?;
            let (next, keys) = self.scan_reply(reply)?;
            for key in keys {
                if let Some(batch) = self.queues.push(key) {
                    self.send(&tx, batch).await?;
                }
            }
            if next == b"0" {
                break;
            }
            cursor = next;
        }
        for batch in self.queues.drain() {
            self.send(&tx, batch).await?;
        }
        Ok(())
    }

    /// Sizes `batch` (`MEMORY USAGE`, pipelined) and hands it to the mover.
    async fn send(
        &mut self,
        tx: &tokio::sync::mpsc::Sender<Sized>,
        (target, batch): (usize, Vec<Keyed>),
    ) -> Result<(), RedisError> {
        let usage: Vec<[&[u8]; 5]> = batch
            .iter()
            .map(|(key, _)| [&b"MEMORY"[..], b"USAGE", key, b"SAMPLES", b"1"])
            .collect();
        let cmds: Vec<&[&[u8]]> = usage.iter().map(|c| &c[..]).collect();
        let source = self.conn.addr().to_owned();
        let deadline = self.settings.scan_deadline;
        let sizes = bounded(&source, deadline, self.conn.pipeline(&cmds)).await?;
        let found = batch.iter().map(|(_, slot)| *slot).collect();
        let keys = split_by_size(&source, batch, sizes, self.settings.big_value_bytes)?;
        let sized = Sized {
            target,
            found,
            keys,
        };
        // The mover only stops early on an error, which ends the pass first.
        tx.send(sized).await.map_err(|_| RedisError::Reply {
            addr: source,
            reason: "the migration pass stopped".into(),
        })
    }

    /// One command on the source, within the scan deadline.
    async fn call(&mut self, args: &[&[u8]]) -> Result<Value, RedisError> {
        let source = self.conn.addr().to_owned();
        bounded(&source, self.settings.scan_deadline, self.conn.call(args)).await
    }

    /// `[cursor, [keys...]]`.
    fn scan_reply(&self, reply: Value) -> Result<(Vec<u8>, Vec<Vec<u8>>), RedisError> {
        if let Value::Array(mut parts) = reply
            && parts.len() == 2
            && let (Value::Array(keys), Value::Bulk(cursor)) = (parts.remove(1), parts.remove(0))
        {
            let keys: Option<Vec<Vec<u8>>> = keys
                .into_iter()
                .map(|k| match k {
                    Value::Bulk(k) => Some(k),
                    _ => None,
                })
                .collect();
            if let Some(keys) = keys {
                return Ok((cursor, keys));
            }
        }
        Err(RedisError::Reply {
            addr: self.conn.addr().to_owned(),
            reason: "unexpected reply to SCAN".into(),
        })
    }
}

/// Moves batches: sizes them, MIGRATEs them, settles conflicts, counts.
struct Mover<'a> {
    auth: &'a str,
    settings: Settings,
    targets: Vec<Target>,
    /// To the source, `SELECT`ed to `db`.
    conn: Conn,
    /// To targets, for the `EXISTS` check of a conflict: opened on first need,
    /// with the db they have selected.
    target_conns: HashMap<usize, (Conn, u32)>,
    db: u32,
    /// Shared with every other pass of the engine.
    throttle: &'a Throttle,
    totals: &'a mut BTreeMap<u32, SlotPass>,
    progress: &'a (dyn for<'p> Fn(&'p BTreeMap<u32, SlotPass>) + Send + Sync),
}

impl Mover<'_> {
    /// Moves every batch the scanner sends, until it is done: the batches
    /// already waiting go together (see [`MIGRATES_IN_FLIGHT`]).
    async fn consume(
        &mut self,
        mut rx: tokio::sync::mpsc::Receiver<Sized>,
    ) -> Result<(), RedisError> {
        // A pause between batches means one batch at a time.
        let together = if self.settings.interval.is_zero() {
            MIGRATES_IN_FLIGHT
        } else {
            1
        };
        let mut ready = Vec::with_capacity(together);
        while rx.recv_many(&mut ready, together).await > 0 {
            for sized in &ready {
                // Every key of a migrating slot that the scan saw is in one batch.
                for slot in &sized.found {
                    self.slot(*slot).found += 1;
                }
            }
            self.batches(std::mem::take(&mut ready)).await?;
            if !self.settings.interval.is_zero() {
                tokio::time::sleep(self.settings.interval).await;
            }
        }
        Ok(())
    }

    /// Moves sized batches: their small keys in one pipeline of MIGRATEs (one
    /// per batch), then their big values alone; progress after each.
    async fn batches(&mut self, batches: Vec<Sized>) -> Result<(), RedisError> {
        let mut small = Vec::with_capacity(batches.len());
        let mut big = Vec::new();
        for Sized { target, keys, .. } in batches {
            if !keys.small.is_empty() {
                small.push((target, keys.small));
            }
            big.extend(keys.big.into_iter().map(|k| (target, k)));
        }
        let cost = cost_of(small.iter().flat_map(|(_, keys)| keys));
        if cost.keys > 0 {
            self.throttle.take(cost).await;
        }
        let replies = self.migrate_many(&small).await?;
        for ((target, keys), reply) in small.into_iter().zip(replies) {
            match reply {
                Migrated::Ok => {
                    for (_, slot, bytes) in &keys {
                        self.count_moved(*slot, *bytes);
                    }
                }
                Migrated::NoKey => {}
                Migrated::Busy => self.key_by_key(target, keys).await?,
            }
            (self.progress)(self.totals);
        }
        for (target, (key, slot, bytes)) in big {
            self.throttle.take(Cost { keys: 1, bytes }).await;
            // Timed from here: the wait for the throttle is not the move.
            let started = Instant::now();
            if self.migrate_one(target, &key, slot, bytes).await? {
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let shown = String::from_utf8_lossy(&key).into_owned();
                self.slot(slot).big_values.push((shown, bytes, ms));
            }
            (self.progress)(self.totals);
        }
        Ok(())
    }

    /// After a batch hit `BUSYKEY`: the keys gone from the source were moved
    /// by it; the others are tried alone to find and settle the busy ones.
    async fn key_by_key(
        &mut self,
        target: usize,
        keys: Vec<(Vec<u8>, u32, u64)>,
    ) -> Result<(), RedisError> {
        let exists: Vec<[&[u8]; 2]> = keys.iter().map(|(k, _, _)| [&b"EXISTS"[..], k]).collect();
        let cmds: Vec<&[&[u8]]> = exists.iter().map(|c| &c[..]).collect();
        let source = self.conn.addr().to_owned();
        let left = bounded(&source, self.settings.timeout, self.conn.pipeline(&cmds)).await?;
        for ((key, slot, bytes), here) in keys.into_iter().zip(left) {
            match here {
                Value::Int(0) => self.count_moved(slot, bytes),
                Value::Int(_) => {
                    self.migrate_one(target, &key, slot, bytes).await?;
                }
                other => {
                    return Err(RedisError::Reply {
                        addr: source,
                        reason: format!("unexpected reply to EXISTS: {other:?}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Moves one key; whether it moved. A key busy on the target is settled
    /// in the target's favour.
    async fn migrate_one(
        &mut self,
        target: usize,
        key: &[u8],
        slot: u32,
        bytes: u64,
    ) -> Result<bool, RedisError> {
        match self.migrate(target, [key]).await? {
            Migrated::Ok => {
                self.count_moved(slot, bytes);
                Ok(true)
            }
            Migrated::NoKey => Ok(false),
            Migrated::Busy => {
                self.conflict(target, key, slot).await?;
                Ok(false)
            }
        }
    }

    /// The key exists on both sides. The target's copy is newer (a proxy moved
    /// the key and a client wrote it there), so the source's is deleted, once
    /// the target confirms it holds the key. If it no longer does, the key is
    /// left for the next pass to move.
    async fn conflict(&mut self, target: usize, key: &[u8], slot: u32) -> Result<(), RedisError> {
        let on_target = self.target_call(target, &[b"EXISTS", key]).await?;
        if on_target != Value::Int(1) {
            self.slot(slot).left += 1;
            return Ok(());
        }
        self.call(&[b"DEL", key]).await?;
        let shown = String::from_utf8_lossy(key).into_owned();
        tracing::warn!(slot, key = %shown, target = %self.targets[target].addr,
            "key on both sides: kept the target's copy");
        self.slot(slot).conflicts.push(shown);
        Ok(())
    }

    async fn migrate<'k>(
        &mut self,
        target: usize,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<Migrated, RedisError> {
        let db = self.db.to_string();
        let timeout_ms = self.settings.timeout_ms.to_string();
        let t = &self.targets[target];
        let args = migrate_args(t, db.as_bytes(), timeout_ms.as_bytes(), self.auth, keys);
        let source = self.conn.addr().to_owned();
        let deadline = self.settings.migrate_deadline;
        let reply = bounded(&source, deadline, self.conn.call(&args)).await;
        classify(&source, &t.addr, reply)
    }

    /// One MIGRATE per (target, keys), sent in one pipeline; each reply
    /// judged on its own. The first failure fails the pass.
    async fn migrate_many(
        &mut self,
        batches: &[(usize, Vec<SizedKey>)],
    ) -> Result<Vec<Migrated>, RedisError> {
        if batches.is_empty() {
            return Ok(Vec::new());
        }
        let db = self.db.to_string();
        let timeout_ms = self.settings.timeout_ms.to_string();
        let args: Vec<Vec<&[u8]>> = batches
            .iter()
            .map(|(target, keys)| {
                let t = &self.targets[*target];
                let keys = keys.iter().map(|(k, _, _)| &k[..]);
                migrate_args(t, db.as_bytes(), timeout_ms.as_bytes(), self.auth, keys)
            })
            .collect();
        let cmds: Vec<&[&[u8]]> = args.iter().map(Vec::as_slice).collect();
        let source = self.conn.addr().to_owned();
        // The source runs them one after the other.
        let deadline = self.settings.migrate_deadline * batches.len() as u32;
        let replies = bounded(&source, deadline, self.conn.pipeline(&cmds)).await?;
        batches
            .iter()
            .zip(replies)
            .map(|((target, _), reply)| {
                let reply = match reply {
                    Value::Error(reason) => Err(RedisError::Reply {
                        addr: source.clone(),
                        reason,
                    }),
                    v => Ok(v),
                };
                classify(&source, &self.targets[*target].addr, reply)
            })
            .collect()
    }

    /// One command on the source, within the timeout.
    async fn call(&mut self, args: &[&[u8]]) -> Result<Value, RedisError> {
        let source = self.conn.addr().to_owned();
        bounded(&source, self.settings.timeout, self.conn.call(args)).await
    }

    /// One command on `target`, in the current db, within the timeout.
    async fn target_call(&mut self, target: usize, args: &[&[u8]]) -> Result<Value, RedisError> {
        let addr = self.targets[target].addr.clone();
        let timeout = self.settings.timeout;
        let (db, auth) = (self.db, self.auth);
        let mut conn = match self.target_conns.remove(&target) {
            Some((conn, selected)) if selected == db && !conn.is_broken() => conn,
            _ => {
                let mut conn = connect(&addr, auth, timeout).await?;
                let select = db.to_string();
                bounded(&addr, timeout, conn.call(&[b"SELECT", select.as_bytes()])).await?;
                conn
            }
        };
        let reply = bounded(&addr, timeout, conn.call(args)).await;
        self.target_conns.insert(target, (conn, db));
        reply
    }

    fn count_moved(&mut self, slot: u32, bytes: u64) {
        let s = self.slot(slot);
        s.moved += 1;
        s.bytes += bytes;
    }

    fn slot(&mut self, slot: u32) -> &mut SlotPass {
        self.totals.entry(slot).or_default()
    }
}
