//! The published slot table: the stored mappings and their proxy view, stamped
//! with a revision that grows with every change.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
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
    /// The last answer of [`Self::changed_since`].
    changed: ChangedMemo,
}

/// When a revision is published every proxy's stream asks which slots changed
/// since the revision it holds, and they almost all hold the same one: the
/// answer is computed once, not once per proxy (1,000 proxies made that scan of
/// 1024 slots the largest single cost of sending an update).
#[derive(Debug, Default)]
struct ChangedMemo(Mutex<Option<(u64, Arc<[usize]>)>>);

impl Clone for ChangedMemo {
    /// A copy of a table may get another revision: it starts without an answer.
    fn clone(&self) -> Self {
        ChangedMemo::default()
    }
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
            changed: ChangedMemo::default(),
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
            changed: ChangedMemo::default(),
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

impl SlotTable {
    /// The slots whose view may differ between `old` and this table, in
    /// increasing order: their mapping changed, or a group they refer to did.
    pub fn changed_since(&self, old: &SlotTable) -> Arc<[usize]> {
        let same_epoch = old.epoch == self.epoch;
        let mut memo = self.changed.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((rev, ids)) = &*memo
            && same_epoch
            && *rev == old.revision
        {
            return ids.clone();
        }
        let ids: Arc<[usize]> = changed_slots(old, self).into_iter().collect();
        if same_epoch {
            *memo = Some((old.revision, ids.clone()));
        }
        ids
    }
}

fn changed_slots(old: &SlotTable, new: &SlotTable) -> BTreeSet<usize> {
    let groups_changed: BTreeSet<u32> = old
        .groups
        .keys()
        .chain(new.groups.keys())
        .filter(|g| old.groups.get(g) != new.groups.get(g))
        .copied()
        .collect();
    (0..new.mappings.len())
        .filter(|&i| {
            let (a, b) = (&old.mappings[i], &new.mappings[i]);
            a != b
                || [b.group_id, b.action.map_or(0, |x| x.target_id)]
                    .iter()
                    .any(|g| groups_changed.contains(g))
        })
        .collect()
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

    /// Makes `first`, the first table of a new epoch, current, forgetting the
    /// old epoch's history.
    pub(crate) fn restart(&self, first: SlotTable) {
        let first = Arc::new(first);
        *self.history() = VecDeque::from([first.clone()]);
        self.current.send_replace(first);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GroupServer, ServerKind};

    fn table(owners: &[(u32, u32)], groups: &[(u32, &str)], prev: Option<&SlotTable>) -> SlotTable {
        let mut slots: Vec<SlotMapping> = (0..1024).map(SlotMapping::offline).collect();
        for &(id, g) in owners {
            slots[id as usize].group_id = g;
        }
        let groups: BTreeMap<u32, Group> = groups
            .iter()
            .map(|&(id, addr)| {
                let mut g = Group::new(id);
                g.servers
                    .push(GroupServer::new(addr, "", ServerKind::Redis));
                (id, g)
            })
            .collect();
        match prev {
            None => SlotTable::initial("e".into(), &slots, &groups, ForwardMethod::Sync),
            Some(p) => p
                .next(&slots, &groups, ForwardMethod::Sync)
                .expect("the table changed"),
        }
    }

    #[test]
    fn changed_since_names_moved_slots_and_those_of_changed_groups() {
        let groups = [(1, "10.0.0.1:6379"), (2, "10.0.0.2:6379")];
        let r1 = table(&[(1, 1), (2, 2)], &groups, None);
        let r2 = table(&[(1, 1), (2, 2), (3, 1)], &groups, Some(&r1));
        assert_eq!(&*r2.changed_since(&r1), &[3]);
        // Group 2's master moved: the slot it owns changes with it.
        let moved = [(1, "10.0.0.1:6379"), (2, "10.0.0.9:6379")];
        let r3 = table(&[(1, 1), (2, 2), (3, 1)], &moved, Some(&r2));
        assert_eq!(&*r3.changed_since(&r2), &[2]);
        assert_eq!(&*r3.changed_since(&r1), &[2, 3]);
    }

    #[test]
    fn changed_since_is_computed_once_per_base() {
        let groups = [(1, "10.0.0.1:6379")];
        let r1 = table(&[], &groups, None);
        let r2 = table(&[(7, 1)], &groups, Some(&r1));
        let first = r2.changed_since(&r1);
        // Every later stream from the same base gets the same answer, not a
        // new scan.
        assert!(Arc::ptr_eq(&first, &r2.changed_since(&r1)));
        // A copy under a new revision (a resync) does not reuse it.
        assert!(!Arc::ptr_eq(&first, &r2.bumped().changed_since(&r1)));
    }
}
