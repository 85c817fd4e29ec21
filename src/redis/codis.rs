//! The codis-server [`Migrator`]: codis-server moves the keys itself, slot by
//! slot, with `SLOTSMGRTTAGSLOT` (sync) or `SLOTSMGRTTAGSLOT-ASYNC`
//! (semi-async); we only drive it (reference §4.2 "Batch(db)", §7.2).
//!
//! ```text
//! INFO keyspace ──► dbs with keys ──► work units ──► ≤ 4 workers, one connection each
//!   sync:        a unit per (db, slot)   SELECT db; SLOTSMGRTTAGSLOT ... until left = 0
//!   semi-async:  a unit per db           SELECT db; for each slot:
//!                                          SLOTSMGRTTAGSLOT-ASYNC ... until left = 0
//! ```
//!
//! Every call answers `[migrated, left_in_slot]` for the selected db, so one
//! pass drains each slot to 0 and the engine's next pass reports `found == 0`.
//!
//! **Why the units differ.** codis-server keeps one async migration client per
//! db and refuses a second batch on a db while one is in flight ("the specified
//! DB is being migrated"), so in semi-async mode the slots of one db go one after
//! the other and only distinct dbs run in parallel. A sync call is atomic in the
//! single-threaded server, so calls of any db and slot may overlap: more
//! connections hide our round trip and the interval, not the server's work,
//! which is why a few (4 by default) are enough and more would only queue
//! behind each other while client traffic waits.
//!
//! **Throttle.** Each call takes its expected cost before it is sent: one key
//! (sync) or `numkeys` (semi-async), no more than the slot is expected to hold
//! (its share of the db's keys before its first call, what the last reply left
//! after), times the source's average key size (`used_memory` / keys, from
//! `INFO` at the start of the pass: codis-server has no `MEMORY USAGE`). The
//! reply says what the call moved, and the throttle is settled to that: an
//! estimate off by a few keys costs the next call, not the limit.
//!
//! codis-server's restore overwrites a key on the target. That is safe in the
//! Codis protocol: a proxy writes a migrating key to the target only after
//! `SLOTSMGRTTAGONE` (or the exec wrapper) took it off the source, so the two
//! copies never coexist; no conflicts are reported.

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::try_join_all;

use super::client::{Conn, host_port};
use super::dial::{bounded, connect};
use super::info::{keyspace, parse_info};
use super::migrate::{SlotTarget, slot_targets};
use super::reply::Value;
use super::{Cost, MigrateOptions, Migrator, RedisError, SlotPass, Throttle};
use crate::model::MAX_SLOTS;

/// codis-server bounds each socket operation towards the target by the timeout
/// argument, so one call may take somewhat longer; our deadline adds this much
/// (or the timeout itself, if larger) before giving up on the source.
const CALL_MARGIN: Duration = Duration::from_secs(1);

/// Used when `MigrateOptions::timeout` is zero (as [`super::PlainMigrator`]
/// does), rather than codis-server's own defaults (100 ms sync, 30 s async).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The dashboard's cap on the async timeout: a batch blocks its caller, and
/// a long one holds back the proxies waiting on its keys.
const MAX_ASYNC_TIMEOUT: Duration = Duration::from_secs(5);

/// Default number of connections (and so of calls in flight) per pass.
const DEFAULT_PARALLEL: usize = 4;

/// A slot whose calls move nothing and leave no fewer keys this many times in a
/// row fails the pass: a server in that state would otherwise keep the pass,
/// and the engine's step, running forever.
const MAX_IDLE_CALLS: u32 = 10;

/// codis-server's batch when `numkeys` is 0.
const DEFAULT_NUMKEYS: u64 = 100;

/// codis-server parses every numeric argument as a C `int` and refuses larger
/// values, so ours are clamped to this (the server clamps further itself).
const C_INT_MAX: u64 = i32::MAX as u64;

/// How codis-server moves keys: the dashboard's `migration_method` and
/// `migration_async_*` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodisMode {
    /// `SLOTSMGRTTAGSLOT`: one key (or tag group) per call, restored on the
    /// target before the call returns; timeout `MigrateOptions::timeout`.
    Sync,
    /// `SLOTSMGRTTAGSLOT-ASYNC`: about `numkeys` keys (whole tag groups) per
    /// call, streamed in chunks; the call returns once the target acknowledged
    /// the batch. Timeout min(5 s, `MigrateOptions::timeout`). A 0 below means
    /// codis-server's default.
    SemiAsync {
        /// Elements per `SLOTSRESTORE-ASYNC` chunk (`migration_async_maxbulks`;
        /// 0: 200).
        maxbulks: u32,
        /// Bytes buffered towards the target (`migration_async_maxbytes`;
        /// 0: 512 KiB).
        maxbytes: u64,
        /// Keys per batch (`migration_async_numkeys`; 0: 100).
        numkeys: u32,
    },
}

impl Default for CodisMode {
    /// Codis's defaults: semi-async, 200 bulks, 32 MiB, 500 keys.
    fn default() -> CodisMode {
        CodisMode::SemiAsync {
            maxbulks: 200,
            maxbytes: 32 << 20,
            numkeys: 500,
        }
    }
}

/// [`Migrator`] for codis-server masters (both source and target).
pub struct CodisMigrator {
    /// Authenticates our connections to the source; empty means none.
    /// codis-server authenticates to the target with its own password.
    product_auth: String,
    mode: CodisMode,
    /// Connections per pass, at least 1.
    parallel: usize,
}

// Written by hand so that the password never reaches a log line.
impl std::fmt::Debug for CodisMigrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodisMigrator")
            .field("auth", &!self.product_auth.is_empty())
            .field("mode", &self.mode)
            .field("parallel", &self.parallel)
            .finish()
    }
}

impl CodisMigrator {
    /// A migrator whose connections authenticate with `product_auth` (empty:
    /// no password), moving keys the `mode` way, with up to 4 connections
    /// per pass.
    pub fn new(product_auth: &str, mode: CodisMode) -> CodisMigrator {
        CodisMigrator {
            product_auth: product_auth.to_owned(),
            mode,
            parallel: DEFAULT_PARALLEL,
        }
    }

    /// Up to `connections` calls in flight per pass (0 counts as 1). In
    /// semi-async mode only distinct dbs run in parallel (see the module
    /// docs), so more connections than dbs with keys are never opened.
    pub fn with_parallel(mut self, connections: usize) -> CodisMigrator {
        self.parallel = connections.max(1);
        self
    }

    /// The mode this migrator uses.
    pub fn mode(&self) -> CodisMode {
        self.mode
    }
}

#[async_trait]
impl Migrator for CodisMigrator {
    async fn migrate_pass(
        &self,
        source: &str,
        moves: &BTreeMap<u32, String>,
        opts: &MigrateOptions,
        progress: &(dyn for<'p> Fn(&'p BTreeMap<u32, SlotPass>) + Send + Sync),
    ) -> Result<BTreeMap<u32, SlotPass>, RedisError> {
        let totals: BTreeMap<u32, SlotPass> =
            moves.keys().map(|&s| (s, SlotPass::default())).collect();
        let (targets, slots) = parse_targets(moves)?;
        if slots.is_empty() {
            return Ok(totals);
        }
        let settings = Settings::new(self.mode, opts);
        let mut first = connect(source, &self.product_auth, settings.timeout).await?;
        let info = bounded(
            source,
            settings.timeout,
            first.call(&[b"INFO", b"keyspace"]),
        )
        .await?;
        let keyspace = keyspace(&info.to_text().unwrap_or_default());
        let dbs: Vec<u32> = keyspace.iter().map(|&(db, _)| db).collect();
        let keys_per_slot = keyspace
            .iter()
            .map(|&(db, n)| (db, n.div_ceil(MAX_SLOTS as u64)))
            .collect();
        let key_bytes = if opts.throttle.limits().bytes_per_sec > 0 {
            let keys = keyspace.iter().map(|&(_, n)| n).sum();
            let memory = bounded(source, settings.timeout, first.call(&[b"INFO", b"memory"]));
            average_key_bytes(&memory.await?.to_text().unwrap_or_default(), keys)
        } else {
            0
        };
        let units = plan(self.mode, &dbs, &slots);
        let workers = self.parallel.min(units.len());
        let shared = Shared {
            units: Mutex::new(units),
            totals: Mutex::new(totals),
            progress,
        };
        let pass = Pass {
            source,
            auth: &self.product_auth,
            settings,
            targets: &targets,
            shared: &shared,
            throttle: &opts.throttle,
            key_bytes,
            keys_per_slot,
        };
        let mut first = Some(first);
        try_join_all((0..workers).map(|_| pass.worker(first.take()))).await?;
        Ok(shared.into_totals())
    }
}

// === settings, targets, plans ===

/// [`MigrateOptions`] as this mode uses them, degenerate values made usable.
#[derive(Debug, Clone, Copy)]
struct Settings {
    mode: CodisMode,
    /// The deadline of connect, AUTH, INFO and SELECT.
    timeout: Duration,
    /// The timeout argument of the migration command, in ms (1..=INT_MAX).
    timeout_ms: u64,
    /// Our deadline for one migration call.
    call_deadline: Duration,
    interval: Duration,
}

impl Settings {
    fn new(mode: CodisMode, opts: &MigrateOptions) -> Settings {
        let timeout = if opts.timeout.is_zero() {
            DEFAULT_TIMEOUT
        } else {
            opts.timeout
        };
        let timeout = match mode {
            CodisMode::Sync => timeout,
            CodisMode::SemiAsync { .. } => timeout.min(MAX_ASYNC_TIMEOUT),
        };
        Settings {
            mode,
            timeout,
            // 0 would mean codis-server's default, not ours: send at least 1.
            timeout_ms: u64::try_from(timeout.as_millis())
                .unwrap_or(u64::MAX)
                .clamp(1, C_INT_MAX),
            call_deadline: timeout + timeout.max(CALL_MARGIN),
            interval: opts.interval,
        }
    }
}

/// A target master, with its address split the way the commands want it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    addr: String,
    host: String,
    port: u16,
}

impl Target {
    /// Splits `host:port` at the last `:`; `[v6]:port` loses its brackets.
    fn parse(addr: &str) -> Result<Target, RedisError> {
        let (host, port) = host_port(addr)?;
        Ok(Target {
            addr: addr.to_owned(),
            host: host.to_owned(),
            port,
        })
    }
}

/// The distinct targets of `moves` and the slots with their target, in slot
/// order. Slots out of range are left out (codis-server would refuse them, and
/// no key hashes there); they report `found == 0`.
fn parse_targets(
    moves: &BTreeMap<u32, String>,
) -> Result<(Vec<Target>, Vec<SlotTarget>), RedisError> {
    slot_targets(moves, Target::parse)
}

/// Work for one connection: drain `slots` in `db`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unit {
    db: u32,
    slots: Vec<SlotTarget>,
}

/// Sync: a unit per (db, slot), so any connection may take any of them.
/// Semi-async: a unit per db, so no two connections ever migrate in one db.
fn plan(mode: CodisMode, dbs: &[u32], slots: &[SlotTarget]) -> VecDeque<Unit> {
    match mode {
        CodisMode::Sync => dbs
            .iter()
            .flat_map(|&db| slots.iter().map(move |&s| Unit { db, slots: vec![s] }))
            .collect(),
        CodisMode::SemiAsync { .. } => dbs
            .iter()
            .map(|&db| Unit {
                db,
                slots: slots.to_vec(),
            })
            .collect(),
    }
}

// === commands and replies ===

/// The migration command for `slot` towards `target`.
fn command(s: &Settings, target: &Target, slot: u32) -> Vec<String> {
    let (host, port, timeout) = (target.host.clone(), target.port.to_string(), s.timeout_ms);
    match s.mode {
        CodisMode::Sync => vec![
            "SLOTSMGRTTAGSLOT".into(),
            host,
            port,
            timeout.to_string(),
            slot.to_string(),
        ],
        CodisMode::SemiAsync {
            maxbulks,
            maxbytes,
            numkeys,
        } => vec![
            "SLOTSMGRTTAGSLOT-ASYNC".into(),
            host,
            port,
            timeout.to_string(),
            u64::from(maxbulks).min(C_INT_MAX).to_string(),
            maxbytes.min(C_INT_MAX).to_string(),
            slot.to_string(),
            u64::from(numkeys).min(C_INT_MAX).to_string(),
        ],
    }
}

/// The source's average key size: `used_memory` over its keys. An
/// overestimate (it counts the server's own overhead), so the throttle errs
/// on the slow side. 0 when `INFO` does not say.
fn average_key_bytes(info_memory: &str, keys: u64) -> u64 {
    parse_info(info_memory)
        .get("used_memory")
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |used| used / keys.max(1))
}

/// `[migrated, left_in_slot]`, both non-negative.
fn parse_reply(reply: &Value) -> Option<(u64, u64)> {
    match reply {
        Value::Array(items) => match items.as_slice() {
            [Value::Int(moved), Value::Int(left)] => {
                Some((u64::try_from(*moved).ok()?, u64::try_from(*left).ok()?))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Names the culprit of a failed migration call: I/O towards the target
/// (`IOERR`, "create client to h:p failed") and refused credentials name the
/// target; anything else ("the specified DB is being migrated", "previous
/// operation has not finished", bad arguments) names the source.
fn classify(source: &str, target: &str, cmd: &str, e: RedisError) -> RedisError {
    let RedisError::Reply { reason, .. } = e else {
        return e;
    };
    let target = target.to_owned();
    if reason.starts_with("IOERR") || reason.contains("create client to") {
        RedisError::Connect {
            addr: target,
            reason: format!("{cmd} from {source}: {reason}"),
        }
    } else if ["NOAUTH", "WRONGPASS", "invalid password"]
        .iter()
        .any(|w| reason.contains(w))
    {
        RedisError::Auth {
            addr: target,
            reason: format!("{cmd} from {source}: {reason}"),
        }
    } else {
        RedisError::Reply {
            addr: source.to_owned(),
            reason: format!("{cmd} to {target}: {reason}"),
        }
    }
}

// === connections ===

// === the pass ===

/// What the workers of one pass share. Std mutexes: each is held for a queue
/// pop or a counter update (and the progress callback), never across an await.
struct Shared<'a> {
    units: Mutex<VecDeque<Unit>>,
    totals: Mutex<BTreeMap<u32, SlotPass>>,
    progress: &'a (dyn Fn(&BTreeMap<u32, SlotPass>) + Send + Sync),
}

impl Shared<'_> {
    fn next_unit(&self) -> Option<Unit> {
        lock(&self.units).pop_front()
    }

    /// Counts one call's reply and reports the running totals. `first`: the
    /// slot's first call in this db, whose reply tells how many keys it held.
    fn record(&self, slot: u32, moved: u64, left: u64, first: bool) {
        let mut totals = lock(&self.totals);
        let s = totals.entry(slot).or_default();
        if first {
            s.found += moved + left;
        }
        s.moved += moved;
        // Under the lock, so that reports never go backwards.
        (self.progress)(&totals);
    }

    fn into_totals(self) -> BTreeMap<u32, SlotPass> {
        self.totals
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The maps stay consistent even if a holder panicked: every critical section
/// is one pop or one counter update.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One pass over one source.
struct Pass<'a> {
    source: &'a str,
    auth: &'a str,
    settings: Settings,
    targets: &'a [Target],
    shared: &'a Shared<'a>,
    /// Shared with every other pass of the engine.
    throttle: &'a Throttle,
    /// The estimated size of one key, for the throttle (0: bytes unlimited).
    key_bytes: u64,
    /// Db → its keys over the slots, rounded up: what a slot holds on average
    /// (keys hash evenly), the throttle's guess before a slot's first call.
    keys_per_slot: BTreeMap<u32, u64>,
}

impl Pass<'_> {
    /// Takes units until none are left, on one connection (`conn`, or a new
    /// one on first need).
    async fn worker(&self, mut conn: Option<Conn>) -> Result<(), RedisError> {
        let mut selected = None;
        while let Some(unit) = self.shared.next_unit() {
            let c = match &mut conn {
                Some(c) => c,
                None => conn.insert(connect(self.source, self.auth, self.settings.timeout).await?),
            };
            if selected != Some(unit.db) {
                let db = unit.db.to_string();
                let select: [&[u8]; 2] = [b"SELECT", db.as_bytes()];
                bounded(self.source, self.settings.timeout, c.call(&select)).await?;
                selected = Some(unit.db);
            }
            for &(slot, target) in &unit.slots {
                self.drain(c, unit.db, slot, &self.targets[target]).await?;
            }
        }
        Ok(())
    }

    /// Calls the migration command for `slot` until it leaves no key in the
    /// selected db, pausing `interval` between calls.
    async fn drain(
        &self,
        conn: &mut Conn,
        db: u32,
        slot: u32,
        target: &Target,
    ) -> Result<(), RedisError> {
        let args = command(&self.settings, target, slot);
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let cmd = args[0].as_str();
        let mut first = true;
        let mut idle = 0;
        let mut last_left = u64::MAX;
        let mut expect_left = self.keys_per_slot.get(&db).copied().unwrap_or(1);
        loop {
            let expected = self.cost(self.expected_keys(expect_left));
            self.throttle.take(expected).await;
            let call = conn.call(&argv);
            let reply = bounded(self.source, self.settings.call_deadline, call)
                .await
                .map_err(|e| classify(self.source, &target.addr, cmd, e))?;
            let Some((moved, left)) = parse_reply(&reply) else {
                return Err(RedisError::Reply {
                    addr: self.source.to_owned(),
                    reason: format!("unexpected reply to {cmd}: {reply:?}"),
                });
            };
            self.throttle.settle(expected, self.cost(moved));
            expect_left = left;
            self.shared.record(slot, moved, left, first);
            first = false;
            if left == 0 {
                tracing::debug!(source = self.source, target = %target.addr, db, slot,
                    "slot drained");
                return Ok(());
            }
            idle = if moved == 0 && left >= last_left {
                idle + 1
            } else {
                0
            };
            if idle >= MAX_IDLE_CALLS {
                return Err(RedisError::Reply {
                    addr: self.source.to_owned(),
                    reason: format!(
                        "{cmd} to {}: slot {slot} in db {db} still has {left} keys \
                         after {idle} calls that moved none",
                        target.addr
                    ),
                });
            }
            last_left = left;
            if !self.settings.interval.is_zero() {
                tokio::time::sleep(self.settings.interval).await;
            }
        }
    }
}

// === the throttle ===

impl Pass<'_> {
    /// Keys the next call should move: one key (or tag group) in sync mode,
    /// `numkeys` in semi-async, never more than the slot is expected to hold.
    fn expected_keys(&self, left: u64) -> u64 {
        let batch = match self.settings.mode {
            CodisMode::Sync => 1,
            CodisMode::SemiAsync { numkeys: 0, .. } => DEFAULT_NUMKEYS,
            CodisMode::SemiAsync { numkeys, .. } => u64::from(numkeys),
        };
        batch.min(left)
    }

    fn cost(&self, keys: u64) -> Cost {
        Cost {
            keys,
            bytes: keys.saturating_mul(self.key_bytes),
        }
    }
}
