//! The ListSlots answer, encoded once per table: proxies, the CLI and monitoring
//! read the table far more often than it changes, and encoding 1024 slots per call
//! would dominate the cost of the call.

use std::sync::{Arc, Mutex};

use super::convert;
use crate::coordinator::SlotTable;
use crate::pb;
use crate::pb::encoded::Encoded;

/// The encoded answer of the last table asked for, by epoch and revision.
#[derive(Default)]
pub(super) struct SlotsCache(Mutex<Option<(u64, Arc<str>, Encoded)>>);

impl SlotsCache {
    /// The encoded ListSlots answer for `table`, encoding it only when it is not
    /// the one cached.
    pub(super) fn get(&self, table: &SlotTable) -> Encoded {
        // The slot holds a whole value or none, so a poisoned lock is still usable.
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((rev, epoch, enc)) = cache.as_ref()
            && *rev == table.revision
            && *epoch == table.epoch
        {
            return enc.clone();
        }
        let enc = Encoded::of(&list_slots_response(table));
        *cache = Some((table.revision, table.epoch.clone(), enc.clone()));
        enc
    }
}

/// The full ListSlots answer for one table.
pub fn list_slots_response(t: &SlotTable) -> pb::ListSlotsResponse {
    pb::ListSlotsResponse {
        revision: t.revision,
        epoch: t.epoch.to_string(),
        mappings: t.mappings.iter().map(convert::mapping).collect(),
        slots: t.views.iter().map(convert::slot).collect(),
    }
}
