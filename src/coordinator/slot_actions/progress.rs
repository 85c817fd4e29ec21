//! What a migrating slot reports while the engine moves it: keys and bytes
//! moved, speed and ETA, conflicts and big values, and the error that holds it
//! (a failed pass, or a pass that stalled).

use std::collections::BTreeMap;
use std::time::Duration;

// tokio's clock: the same as std's in a running server, and one tests can pause.
use tokio::time::Instant;

use super::Engine;
use crate::coordinator::Coordinator;
use crate::redis::SlotPass;

/// Progress of one migrating slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotProgress {
    /// Keys moved so far.
    pub keys_moved: u64,
    /// Keys still on the source at the last pass.
    pub keys_left: u64,
    /// Bytes moved so far (estimated).
    pub bytes_moved: u64,
    /// Keys per second since the first pass.
    pub keys_per_sec: f64,
    /// Estimated seconds left (negative: unknown).
    pub eta_seconds: f64,
    /// The last error.
    pub error: String,
    /// Keys found on both sides (target kept).
    pub conflicts: Vec<String>,
    /// Big values moved alone: (key, bytes, ms).
    pub big_values: Vec<(String, u64, u64)>,
    started: Option<Instant>,
    /// Keys and bytes moved by passes that completed; the running pass adds its
    /// own running totals on top.
    done_keys: u64,
    done_bytes: u64,
    /// While a pass runs: its source, and when it last moved a key.
    pass: Option<(String, Instant)>,
}

/// A running pass that moved no key for this long shows as stalled (or as
/// throttled, when the migration limit is what holds it).
const STALL_AFTER: Duration = Duration::from_secs(5);

impl Coordinator {
    /// Progress of every slot migrating now. A pass that has moved nothing for
    /// [`STALL_AFTER`] says so in `error`, with what the stats round knows of its
    /// source.
    pub fn slot_progress(&self) -> BTreeMap<u32, SlotProgress> {
        let mut all = Engine::lock(&self.engine.progress).clone();
        let stalled: Vec<_> = all
            .iter()
            .filter_map(|(sid, p)| {
                let (source, last) = p.pass.as_ref()?;
                let idle = last.elapsed();
                (idle >= STALL_AFTER).then(|| (*sid, source.clone(), idle))
            })
            .collect();
        if stalled.is_empty() {
            return all;
        }
        // Passes waiting for the limit move nothing for a while by design; the
        // source's health is still shown, as the limit may hide a real stall.
        let throttled = (self.engine.throttle.waiting() > 0).then(|| {
            let l = self.engine.throttle.limits();
            format!(
                ", passes wait for the migration limit ({} keys/s, {} bytes/s; 0: unlimited)",
                l.keys_per_sec, l.bytes_per_sec
            )
        });
        let round = self.stats();
        for (sid, source, idle) in stalled {
            let health = round
                .servers
                .iter()
                .find(|s| s.addr == source)
                .map(|s| match &s.probe.outcome {
                    crate::model::ProbeOutcome::Ok(_) => "it answers INFO".to_owned(),
                    crate::model::ProbeOutcome::Timeout => "it is not answering".to_owned(),
                    crate::model::ProbeOutcome::Error(e) => format!("it fails: {e}"),
                })
                .unwrap_or_else(|| "no stats of it yet".to_owned());
            if let Some(p) = all.get_mut(&sid) {
                let (state, limit) = match &throttled {
                    Some(limit) => ("throttled", limit.as_str()),
                    None => ("stalled", ""),
                };
                p.error = format!(
                    "{state}: no key moved for {}s{limit}; source {source}: {health}",
                    idle.as_secs()
                );
            }
        }
        all
    }

    pub(super) fn note_pass_start<'a>(&self, source: &str, slots: impl Iterator<Item = &'a u32>) {
        let now = Instant::now();
        let mut p = Engine::lock(&self.engine.progress);
        for sid in slots {
            let e = p.entry(*sid).or_default();
            e.started.get_or_insert(now);
            e.pass = Some((source.to_owned(), now));
        }
    }

    /// Running totals of a pass (`end_of_pass`: its final ones). Shown figures are
    /// the completed passes plus the running one, so they move while a pass runs.
    pub(super) fn note_progress(&self, pass: &BTreeMap<u32, SlotPass>, end_of_pass: bool) {
        let now = Instant::now();
        let mut p = Engine::lock(&self.engine.progress);
        for (sid, s) in pass {
            let e = p.entry(*sid).or_default();
            let started = *e.started.get_or_insert(now);
            let moved = e.done_keys + s.moved;
            if moved > e.keys_moved
                && let Some((_, last)) = &mut e.pass
            {
                *last = now;
            }
            e.keys_moved = moved;
            e.bytes_moved = e.done_bytes + s.bytes;
            e.keys_left = s.found.saturating_sub(s.moved);
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            e.keys_per_sec = e.keys_moved as f64 / secs;
            if end_of_pass {
                self.metrics.migration_moved(s.moved, s.bytes);
                e.done_keys = e.keys_moved;
                e.done_bytes = e.bytes_moved;
                e.pass = None;
                e.error.clear();
                e.conflicts.extend(s.conflicts.iter().cloned());
                e.big_values.extend(s.big_values.iter().cloned());
            }
            // Mid-pass the keys still to be found are unknown, so is the end.
            e.eta_seconds = if end_of_pass && e.keys_left == 0 {
                0.0
            } else if end_of_pass && e.keys_per_sec > 0.0 {
                e.keys_left as f64 / e.keys_per_sec
            } else {
                -1.0
            };
        }
    }

    /// A pass over `slots` failed with `msg`: they show it until a later pass
    /// completes.
    pub(super) fn note_pass_failed<'a>(&self, slots: impl Iterator<Item = &'a u32>, msg: &str) {
        let mut p = Engine::lock(&self.engine.progress);
        for sid in slots {
            let e = p.entry(*sid).or_default();
            e.error = msg.to_owned();
            e.pass = None;
        }
    }
}
