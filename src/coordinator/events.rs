//! A bounded history of what changed a group's master (Sentinel failovers,
//! promotes), for operators.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

/// How many events are kept.
const KEEP: usize = 256;

/// What changed a master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Sentinel failed the master over.
    MasterSwitch,
    /// An operator promoted a replica.
    Promote,
    /// This instance became leader (old/new master: the old/new leader).
    LeaderElected,
    /// This instance stopped leading.
    SteppedDown,
}

/// One change of a group's master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// When topom recorded it (after publishing).
    pub time: SystemTime,
    /// The group.
    pub group_id: u32,
    /// The master before.
    pub old_master: String,
    /// The master after.
    pub new_master: String,
    /// The slot-table revision that published it.
    pub revision: u64,
    /// Free-form detail (timings).
    pub detail: String,
}

/// The event history.
#[derive(Debug, Default)]
pub struct Events(Mutex<VecDeque<Event>>);

impl Events {
    /// Records an event, dropping the oldest beyond the bound.
    pub fn push(&self, e: Event) {
        tracing::info!(group = e.group_id, old = %e.old_master, new = %e.new_master, revision = e.revision, detail = %e.detail, kind = ?e.kind, "event");
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() == KEEP {
            q.pop_front();
        }
        q.push_back(e);
    }

    /// Every kept event, oldest first.
    pub fn list(&self) -> Vec<Event> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// What the coordinator keeps about masters changing.
#[derive(Debug, Default)]
pub(crate) struct HaState {
    /// Master switches and promotes.
    pub(crate) events: Events,
    /// Masters as the Sentinels last reported them.
    pub(crate) masters: Mutex<BTreeMap<u32, String>>,
    /// Keeps promotes from interleaving.
    pub(crate) promote: tokio::sync::Mutex<()>,
}
