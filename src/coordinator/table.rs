//! The published slot table: the stored mappings and their proxy view, stamped
//! with a revision that grows with every change.

use std::collections::BTreeMap;
use std::sync::Arc;

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
