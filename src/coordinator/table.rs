//! The published slot table: the stored mappings and their proxy view, stamped
//! with a revision that grows with every change.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::model::{ForwardMethod, Group, SlotMapping, SlotView};

use super::view::slot_views;

/// How many published tables are kept for reconnecting proxies.
pub const HISTORY: usize = 128;

/// One immutable version of the slot table.
#[derive(Debug, Clone)]
pub struct SlotTable {
    /// Identifies this instance's revision sequence (revisions of different
    /// epochs are not comparable: a restarted topom starts a new epoch).
    pub epoch: Arc<str>,
    /// Grows by one with every change of a mapping or of a view.
    pub revision: u64,
    /// The stored mappings, index = slot id.
    pub mappings: Arc<Vec<SlotMapping>>,
    /// The proxy view for no particular proxy, index = slot id.
    pub views: Arc<Vec<SlotView>>,
    /// The groups the views were computed from (per-proxy views need them).
    pub groups: Arc<BTreeMap<u32, Group>>,
}

impl SlotTable {
    /// The first table of an epoch.
    pub fn initial(
        epoch: Arc<str>,
        slots: &[SlotMapping],
        groups: &BTreeMap<u32, Group>,
        method: ForwardMethod,
    ) -> SlotTable {
        SlotTable {
            epoch,
            revision: 1,
            mappings: Arc::new(slots.to_vec()),
            views: Arc::new(views_of(slots, groups, method)),
            groups: Arc::new(groups.clone()),
        }
    }

    /// The table after a change, or `None` when nothing a reader sees changed.
    pub fn next(
        &self,
        slots: &[SlotMapping],
        groups: &BTreeMap<u32, Group>,
        method: ForwardMethod,
    ) -> Option<SlotTable> {
        let views = views_of(slots, groups, method);
        // Groups count too: a datacenter change reorders some proxies' replicas
        // without changing the proxy-independent view.
        if *self.mappings == slots && *self.views == views && *self.groups == *groups {
            return None;
        }
        Some(SlotTable {
            epoch: self.epoch.clone(),
            revision: self.revision + 1,
            mappings: Arc::new(slots.to_vec()),
            views: Arc::new(views),
            groups: Arc::new(groups.clone()),
        })
    }

    /// The same content under the next revision (an explicit resync).
    pub fn bumped(&self) -> SlotTable {
        SlotTable {
            revision: self.revision + 1,
            ..self.clone()
        }
    }
}

fn views_of(
    slots: &[SlotMapping],
    groups: &BTreeMap<u32, Group>,
    method: ForwardMethod,
) -> Vec<SlotView> {
    // The proxy-independent view: no proxy, so replicas land in the "elsewhere"
    // bucket and no address needs resolving.
    slot_views(slots, groups, method, None, &|_| None)
}

/// The table as last published, and the recent ones: a proxy reconnecting with
/// one of those gets only the slots that changed since.
#[derive(Debug)]
pub(crate) struct Publication {
    current: watch::Sender<Arc<SlotTable>>,
    history: Mutex<VecDeque<Arc<SlotTable>>>,
}

impl Publication {
    /// Publishes `first`.
    pub(crate) fn new(first: SlotTable) -> Publication {
        let first = Arc::new(first);
        Publication {
            history: Mutex::new(VecDeque::from([first.clone()])),
            current: watch::channel(first).0,
        }
    }

    /// The current table.
    pub(crate) fn current(&self) -> Arc<SlotTable> {
        self.current.borrow().clone()
    }

    /// Follows the table: the receiver sees every new revision.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<SlotTable>> {
        self.current.subscribe()
    }

    /// Makes `next` current, keeping the last [`HISTORY`] tables.
    pub(crate) fn publish(&self, next: SlotTable) {
        let next = Arc::new(next);
        {
            let mut h = self.history();
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(next.clone());
        }
        self.current.send_replace(next);
    }

    /// A recent table of this epoch, by revision.
    pub(crate) fn recent(&self, revision: u64) -> Option<Arc<SlotTable>> {
        self.history()
            .iter()
            .find(|t| t.revision == revision)
            .cloned()
    }

    fn history(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<SlotTable>>> {
        // Pushes and pops leave the queue whole, so poisoning is moot.
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }
}
