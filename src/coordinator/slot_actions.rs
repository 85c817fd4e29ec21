//! The slot-action engine (reference §4.2): moves slots between groups without
//! losing a key.
//!
//! pending → preparing → prepared → migrating → finished → (done: the slot belongs
//! to the target). Every transition is written to the store *before* it takes
//! effect and published as a new table revision; the transitions proxies must
//! see (prepared, migrating, done) wait for the barrier: every proxy with a live
//! lease has applied the revision. So a topom killed at any point resumes from
//! the stored state: a slot found `migrating` after a restart re-runs its
//! barrier before moving data again.
//!
//! Up to `migration_parallel_slots` slots are being prepared at once (pending,
//! preparing, prepared: what proxies hold locked); a `migrating` slot no longer
//! counts, so every queued slot reaches `migrating` in a few quick steps. A
//! source's data pass waits while more of its slots are on their way there
//! (see [`Coordinator::joining_sources`]), so one scan of the source serves
//! every queued slot instead of one scan per batch; sources are scanned
//! concurrently, so one slow or failing source does not stall the others.
//!
//! Every pass of the engine, whatever its source, takes from one [`Throttle`]
//! (`migration_max_keys_per_sec`, `migration_max_bytes_per_sec`): the limits
//! hold for this topom instance as a whole.
//!
//! What each migrating slot reports (progress, stalls) is kept in `progress`.

mod progress;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::future::join_all;

pub use progress::SlotProgress;

use super::{Change, Coordinator, Result};
use crate::model::{SlotMapping, SlotState};
use crate::redis::{Limits, MigrateOptions, SlotPass, Throttle};
use crate::store::ProductData;

/// Slot migration settings.
#[derive(Debug, Clone)]
pub struct MigrationSettings {
    /// Slots being prepared at once (see the module docs).
    pub parallel_slots: u32,
    /// Timeout of one MIGRATE.
    pub timeout: Duration,
    /// Keys per MIGRATE batch.
    pub batch_keys: usize,
    /// SCAN COUNT hint.
    pub scan_count: usize,
    /// Values above this many bytes move alone.
    pub big_value_bytes: u64,
    /// Keys per second for every pass together (0: unlimited).
    pub max_keys_per_sec: u64,
    /// Estimated bytes per second for every pass together (0: unlimited).
    pub max_bytes_per_sec: u64,
}

impl Default for MigrationSettings {
    fn default() -> Self {
        MigrationSettings {
            parallel_slots: 100,
            timeout: Duration::from_secs(30),
            batch_keys: 200,
            scan_count: 1000,
            big_value_bytes: 1 << 20,
            max_keys_per_sec: 0,
            max_bytes_per_sec: 0,
        }
    }
}

/// What a step did to one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotStep {
    /// The slot.
    pub slot: u32,
    /// The state reached; `None` once the slot belongs to its target.
    pub state: Option<SlotState>,
    /// The step's error, if any.
    pub error: String,
}

/// The engine's runtime state (not stored: everything needed to resume is).
#[derive(Debug, Default)]
pub struct Engine {
    running: AtomicU32,
    progress: Mutex<BTreeMap<u32, SlotProgress>>,
    /// Slots whose `migrating` barrier passed in this leadership term.
    confirmed: Mutex<BTreeSet<u32>>,
    /// Slots whose `prepared` barrier passed in this leadership term.
    prepared: Mutex<BTreeSet<u32>>,
    status: Mutex<String>,
    /// One step at a time (the task and ProcessSlotAction may both call).
    step: tokio::sync::Mutex<()>,
    /// Every pass draws from it, so its limits hold for the whole engine.
    throttle: Throttle,
}

impl Engine {
    /// An idle engine whose passes share one throttle of `settings`' limits.
    pub fn new(settings: &MigrationSettings) -> Engine {
        Engine {
            throttle: Throttle::new(Limits {
                keys_per_sec: settings.max_keys_per_sec,
                bytes_per_sec: settings.max_bytes_per_sec,
            }),
            ..Engine::default()
        }
    }

    /// Forgets the barriers passed: a new leader must see them pass again for
    /// the proxies of its own term.
    pub fn new_term(&self) {
        Engine::lock(&self.confirmed).clear();
        Engine::lock(&self.prepared).clear();
    }

    /// Migration passes running now.
    pub fn running(&self) -> u32 {
        self.running.load(Ordering::Relaxed)
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Coordinator {
    /// The engine's last status line.
    pub fn slot_action_status(&self) -> String {
        Engine::lock(&self.engine.status).clone()
    }

    /// Runs one step of the engine: every selected slot advances by one
    /// transition (a migrating slot by one scan pass). Returns what each did;
    /// empty when there was nothing to do.
    pub async fn process_slot_action(&self) -> Result<Vec<SlotStep>> {
        self.ensure_online()?;
        let _one_step_at_a_time = self.engine.step.lock().await;
        let picked = self.pick_slots();
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        let by_state = |s: SlotState| -> Vec<u32> {
            picked
                .iter()
                .filter(|m| m.state() == Some(s))
                .map(|m| m.id)
                .collect()
        };
        // Read before the advances: a slot `prepared` now is `migrating` after
        // them, and joins the next pass of its source rather than costing one.
        let joining = self.joining_sources();
        let mut steps = Vec::new();
        // Each slot is in one list, so it moves one state per call.
        steps.extend(self.complete(&by_state(SlotState::Finished)).await?);
        let mut advanced = Vec::new();
        advanced.extend(
            self.advance(
                &by_state(SlotState::Prepared),
                SlotState::Prepared,
                SlotState::Migrating,
            )
            .await?,
        );
        advanced.extend(
            self.advance(
                &by_state(SlotState::Preparing),
                SlotState::Preparing,
                SlotState::Prepared,
            )
            .await?,
        );
        advanced.extend(
            self.advance(
                &by_state(SlotState::Pending),
                SlotState::Pending,
                SlotState::Preparing,
            )
            .await?,
        );
        // A barrier that fails would keep its slots from joining: then the
        // pass runs with the slots it has.
        let wait = if advanced.iter().all(|s| s.error.is_empty()) {
            joining
        } else {
            BTreeSet::new()
        };
        steps.extend(self.migrate(&by_state(SlotState::Migrating), &wait).await?);
        steps.extend(advanced);
        let errors = steps.iter().filter(|s| !s.error.is_empty()).count();
        *Engine::lock(&self.engine.status) = match steps.iter().find(|s| !s.error.is_empty()) {
            None => format!("[OK] {} slot(s) advanced", steps.len()),
            // The first error names what holds the step (a barrier names the
            // proxies it waits for), so an operator sees why without the logs.
            Some(first) => format!(
                "[ERROR] {errors} of {} slot(s) failed; slot {}: {}",
                steps.len(),
                first.slot,
                first.error
            ),
        };
        Ok(steps)
    }

    /// Every slot in progress, and pending ones (by index, unless the engine is
    /// disabled) while fewer than `parallel_slots` slots are `preparing`; never
    /// a slot whose source or target group is promoting. A `prepared` slot
    /// leaves for `migrating` in this very step, so the next batch starts
    /// preparing alongside, and at most `parallel_slots` are ever `prepared`
    /// (locked at proxies).
    fn pick_slots(&self) -> Vec<SlotMapping> {
        let d = self.cache();
        let mut candidates: Vec<&SlotMapping> =
            d.slots.iter().filter(|m| actionable(&d, m)).collect();
        candidates.sort_by_key(|m| {
            let a = m.action.expect("filtered on action");
            (a.state == SlotState::Pending, a.index, m.id)
        });
        let preparing = candidates
            .iter()
            .filter(|m| m.state() == Some(SlotState::Preparing))
            .count();
        let room = (self.settings.migration.parallel_slots as usize).saturating_sub(preparing);
        let (pending, in_progress): (Vec<&SlotMapping>, Vec<&SlotMapping>) = candidates
            .into_iter()
            .partition(|m| m.state() == Some(SlotState::Pending));
        in_progress
            .into_iter()
            .chain(pending.into_iter().take(room))
            .cloned()
            .collect()
    }

    /// Source groups with slots on their way to `migrating` (pending and
    /// pickable, preparing, prepared). Their data pass waits for those slots:
    /// a pass scans the whole source whatever slots it serves. The wait is
    /// bounded: each step advances every such slot (or fails, and then the pass
    /// runs), and at most 1024 slots can be queued.
    fn joining_sources(&self) -> BTreeSet<u32> {
        let d = self.cache();
        d.slots
            .iter()
            .filter(|m| actionable(&d, m) && m.state().is_some_and(is_preparation))
            .map(|m| m.group_id)
            .collect()
    }

    /// Moves `slots` from `from` to `to` (one store write, one revision), then,
    /// for the transitions proxies must see, waits for the barrier. A failed
    /// `prepared` barrier rolls back to `preparing`.
    async fn advance(
        &self,
        slots: &[u32],
        from: SlotState,
        to: SlotState,
    ) -> Result<Vec<SlotStep>> {
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        if from == SlotState::Prepared {
            // Found `prepared` after a takeover: a proxy of the old term may
            // still serve the slot unlocked from the source, and the first
            // proxy to see `migrating` moves keys on touch. Every proxy must
            // hold the slot first.
            let unconfirmed: Vec<u32> = {
                let c = Engine::lock(&self.engine.prepared);
                slots.iter().copied().filter(|s| !c.contains(s)).collect()
            };
            if !unconfirmed.is_empty() {
                if let Err(e) = self.wait_applied(self.table().revision).await {
                    return Ok(steps(&unconfirmed, Some(from), &e.to_string()));
                }
                Engine::lock(&self.engine.prepared).extend(unconfirmed);
            }
        }
        let moved = self.set_state(slots, from, Some(to)).await?;
        if moved.is_empty() || to == SlotState::Preparing {
            return Ok(steps(&moved, Some(to), ""));
        }
        let revision = self.table().revision;
        match self.wait_applied(revision).await {
            Ok(()) => {
                match to {
                    SlotState::Migrating => {
                        Engine::lock(&self.engine.confirmed).extend(moved.iter().copied());
                    }
                    SlotState::Prepared => {
                        Engine::lock(&self.engine.prepared).extend(moved.iter().copied());
                    }
                    _ => {}
                }
                Ok(steps(&moved, Some(to), ""))
            }
            Err(e) if to == SlotState::Prepared => {
                // Proxies that did lock the slot unlock it again; the slot stays
                // with its source.
                self.set_state(&moved, SlotState::Prepared, Some(SlotState::Preparing))
                    .await?;
                Ok(steps(&moved, Some(SlotState::Preparing), &e.to_string()))
            }
            Err(e) => Ok(steps(&moved, Some(to), &e.to_string())),
        }
    }

    /// One scan pass per source for the migrating `slots`, except the sources
    /// in `wait` (their slots stay `migrating` for a pass that serves the ones
    /// still joining); slots whose pass left no key behind become `finished`.
    async fn migrate(&self, slots: &[u32], wait: &BTreeSet<u32>) -> Result<Vec<SlotStep>> {
        let mut out = Vec::new();
        let slots: Vec<u32> = {
            let d = self.cache();
            let (waiting, now): (Vec<u32>, Vec<u32>) = slots
                .iter()
                .partition(|&&sid| wait.contains(&d.slots[sid as usize].group_id));
            out.extend(steps(&waiting, Some(SlotState::Migrating), ""));
            now
        };
        let slots = &slots[..];
        if slots.is_empty() {
            return Ok(out);
        }
        // After a restart, the migrating state must be known to every proxy
        // before keys move again.
        let unconfirmed: Vec<u32> = {
            let c = Engine::lock(&self.engine.confirmed);
            slots.iter().copied().filter(|s| !c.contains(s)).collect()
        };
        if !unconfirmed.is_empty() {
            if let Err(e) = self.wait_applied(self.table().revision).await {
                let failed = steps(&unconfirmed, Some(SlotState::Migrating), &e.to_string());
                out.extend(failed);
                return Ok(out);
            }
            Engine::lock(&self.engine.confirmed).extend(unconfirmed);
        }
        let disabled = self.slot_action_config().disabled;
        if disabled {
            let idle = "the engine is disabled: no data moves";
            out.extend(steps(slots, Some(SlotState::Migrating), idle));
            return Ok(out);
        }
        // (source master, both codis-server) → (slot → target master)
        let mut by_source: BTreeMap<(String, bool), BTreeMap<u32, String>> = BTreeMap::new();
        {
            let d = self.cache();
            for &sid in slots {
                let m = &d.slots[sid as usize];
                let Some(a) = m.action else { continue };
                let source = master_of(&d, m.group_id);
                let target = master_of(&d, a.target_id);
                let codis = is_codis(&d, m.group_id) && is_codis(&d, a.target_id);
                if target.is_empty() {
                    out.push(SlotStep {
                        slot: sid,
                        state: Some(SlotState::Migrating),
                        error: format!("target group-{} has no master", a.target_id),
                    });
                    continue;
                }
                by_source
                    .entry((source, codis))
                    .or_default()
                    .insert(sid, target);
            }
        }
        let cfg = self.slot_action_config();
        let opts = MigrateOptions {
            batch_keys: self.settings.migration.batch_keys,
            scan_count: self.settings.migration.scan_count,
            big_value_bytes: self.settings.migration.big_value_bytes,
            timeout: self.settings.migration.timeout,
            interval: Duration::from_micros(u64::from(cfg.interval_us)),
            throttle: self.engine.throttle.clone(),
        };
        let passes = by_source.iter().map(|((source, codis), moves)| {
            let opts = &opts;
            async move {
                // An offline slot (no source) has no keys: nothing to scan.
                if source.is_empty() {
                    let empty = moves.keys().map(|s| (*s, SlotPass::default())).collect();
                    return (moves, Ok(empty));
                }
                self.engine.running.fetch_add(1, Ordering::Relaxed);
                self.note_pass_start(source, moves.keys());
                let progress = |t: &BTreeMap<u32, SlotPass>| self.note_progress(t, false);
                let migrator = if *codis {
                    &self.backends.codis_migrator
                } else {
                    &self.backends.migrator
                };
                let r = migrator.migrate_pass(source, moves, opts, &progress).await;
                self.engine.running.fetch_sub(1, Ordering::Relaxed);
                (moves, r)
            }
        });
        let mut done = Vec::new();
        for (moves, r) in join_all(passes).await {
            match r {
                Ok(pass) => {
                    self.note_progress(&pass, true);
                    for sid in moves.keys() {
                        // One complete pass that left nothing behind empties
                        // the slot (see `SlotPass::left`): no confirming pass.
                        if pass.get(sid).is_none_or(|p| p.left == 0) {
                            done.push(*sid);
                        } else {
                            out.push(SlotStep {
                                slot: *sid,
                                state: Some(SlotState::Migrating),
                                error: String::new(),
                            });
                        }
                    }
                }
                Err(e) => {
                    self.metrics.migration_pass_failed();
                    let msg = e.to_string();
                    self.note_pass_failed(moves.keys(), &msg);
                    for sid in moves.keys() {
                        out.push(SlotStep {
                            slot: *sid,
                            state: Some(SlotState::Migrating),
                            error: msg.clone(),
                        });
                    }
                }
            }
        }
        let finished = self
            .set_state(&done, SlotState::Migrating, Some(SlotState::Finished))
            .await?;
        out.extend(steps(&finished, Some(SlotState::Finished), ""));
        Ok(out)
    }

    /// `finished` slots now belong to their target; waits for the barrier so the
    /// step completes only once proxies serve the final mapping.
    async fn complete(&self, slots: &[u32]) -> Result<Vec<SlotStep>> {
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        let done = self.set_state(slots, SlotState::Finished, None).await?;
        {
            let mut p = Engine::lock(&self.engine.progress);
            let mut c = Engine::lock(&self.engine.confirmed);
            let mut r = Engine::lock(&self.engine.prepared);
            for s in &done {
                p.remove(s);
                c.remove(s);
                r.remove(s);
            }
        }
        let error = match self.wait_applied(self.table().revision).await {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        };
        Ok(steps(&done, None, &error))
    }

    /// Writes the slots that are still in state `from` as `to` (`None`: done,
    /// owned by the target). Returns the slots changed.
    async fn set_state(
        &self,
        slots: &[u32],
        from: SlotState,
        to: Option<SlotState>,
    ) -> Result<Vec<u32>> {
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        self.mutate(|d| {
            let mut changed = Vec::new();
            for &sid in slots {
                let m = &d.slots[sid as usize];
                let Some(a) = m.action.filter(|a| a.state == from) else {
                    continue;
                };
                changed.push(match to {
                    Some(state) => SlotMapping {
                        action: Some(crate::model::SlotAction { state, ..a }),
                        ..m.clone()
                    },
                    None => SlotMapping {
                        id: m.id,
                        group_id: a.target_id,
                        action: None,
                    },
                });
            }
            let ids = changed.iter().map(|m| m.id).collect();
            Ok((
                Change {
                    slots: changed,
                    ..Change::default()
                },
                ids,
            ))
        })
        .await
    }
}

/// Whether the engine may work on `m` now: it has an action, neither group is
/// promoting, and a pending one waits while the engine is disabled.
fn actionable(d: &ProductData, m: &SlotMapping) -> bool {
    let promoting = |gid: u32| d.groups.get(&gid).is_some_and(|g| g.promoting.is_some());
    m.action.is_some_and(|a| {
        !promoting(m.group_id)
            && !promoting(a.target_id)
            && (a.state != SlotState::Pending || !d.slot_action.disabled)
    })
}

/// The states before `migrating`, bounded by `migration_parallel_slots`.
fn is_preparation(s: SlotState) -> bool {
    matches!(
        s,
        SlotState::Pending | SlotState::Preparing | SlotState::Prepared
    )
}

fn master_of(d: &ProductData, gid: u32) -> String {
    d.groups
        .get(&gid)
        .map(|g| g.master().to_owned())
        .unwrap_or_default()
}

/// Whether group `gid`'s master is a codis-server.
fn is_codis(d: &ProductData, gid: u32) -> bool {
    d.groups
        .get(&gid)
        .and_then(|g| g.servers.first())
        .is_some_and(|s| s.kind == crate::model::ServerKind::CodisServer)
}

fn steps(slots: &[u32], state: Option<SlotState>, error: &str) -> Vec<SlotStep> {
    slots
        .iter()
        .map(|&slot| SlotStep {
            slot,
            state,
            error: error.to_owned(),
        })
        .collect()
}
