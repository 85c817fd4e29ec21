//! Slot operations (reference §3.4): assign, take offline, rebalance, and queueing
//! slot actions. Moving data is the slot-action engine's job.

use std::collections::BTreeMap;

use super::error::{exists, invalid, not_found, precondition};
use super::rebalance::plan_rebalance;
use super::{Change, Coordinator, Result, check_group_id, check_slot_id};
use crate::model::{Group, SlotAction, SlotActionConfig, SlotMapping, SlotState};
use crate::store::ProductData;

/// The longest pause between migration batches, in microseconds.
pub const MAX_INTERVAL_US: u32 = 1_000_000;

/// One planned move of a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// The slot.
    pub slot: u32,
    /// Its group now (0 = offline).
    pub from: u32,
    /// The group it moves to.
    pub to: u32,
}

impl Coordinator {
    /// Assigns slots to groups directly, without moving data. Each target group
    /// must exist and have a master. A queued (pending) action on a slot is
    /// dropped; a migration already under way is not overwritten (unlike Codis),
    /// because that would strand keys on the source.
    pub async fn assign_slots(&self, assignments: &[(u32, u32)]) -> Result<u64> {
        if assignments.is_empty() {
            return Err(invalid("no slots to assign"));
        }
        for &(sid, gid) in assignments {
            check_slot_id(sid)?;
            check_group_id(gid)?;
        }
        check_unique(assignments.iter().map(|a| a.0))?;
        self.mutate(|d| {
            let mut slots = Vec::with_capacity(assignments.len());
            for &(sid, gid) in assignments {
                usable_target(d, gid)?;
                check_not_migrating(&d.slots[sid as usize])?;
                slots.push(SlotMapping {
                    id: sid,
                    group_id: gid,
                    action: None,
                });
            }
            Ok((Change::of_slots(slots), ()))
        })
        .await?;
        Ok(self.table().revision)
    }

    /// Takes slots offline (group 0): proxies answer "slot is not ready".
    pub async fn assign_slots_offline(&self, slot_ids: &[u32]) -> Result<u64> {
        if slot_ids.is_empty() {
            return Err(invalid("no slots to take offline"));
        }
        for &sid in slot_ids {
            check_slot_id(sid)?;
        }
        check_unique(slot_ids.iter().copied())?;
        self.mutate(|d| {
            let mut slots = Vec::with_capacity(slot_ids.len());
            for &sid in slot_ids {
                check_not_migrating(&d.slots[sid as usize])?;
                slots.push(SlotMapping::offline(sid));
            }
            Ok((Change::of_slots(slots), ()))
        })
        .await?;
        Ok(self.table().revision)
    }

    /// Plans an even spread of the slots over the non-empty groups; with
    /// `confirm`, queues a pending action for every planned slot.
    pub async fn rebalance(&self, confirm: bool) -> Result<Vec<Move>> {
        let plan_of = |d: &ProductData| -> Result<Vec<Move>> {
            let plan =
                plan_rebalance(&d.slots, &d.groups).map_err(|e| precondition(e.to_string()))?;
            Ok(plan
                .into_iter()
                .map(|(slot, to)| Move {
                    slot,
                    from: d.slots[slot as usize].group_id,
                    to,
                })
                .collect())
        };
        if !confirm {
            return plan_of(&self.cache());
        }
        self.mutate(|d| {
            let moves = plan_of(d)?;
            let mut index = next_action_index(&d.slots);
            let slots = moves
                .iter()
                .map(|mv| {
                    let m = pending(&d.slots[mv.slot as usize], index, mv.to);
                    index += 1;
                    m
                })
                .collect();
            Ok((Change::of_slots(slots), moves))
        })
        .await
    }

    /// Queues the migration of one slot to group `target`.
    pub async fn create_slot_action(&self, sid: u32, target: u32) -> Result<SlotMapping> {
        check_slot_id(sid)?;
        check_group_id(target)?;
        self.mutate(|d| {
            usable_target(d, target)?;
            let m = &d.slots[sid as usize];
            check_can_move(m, target)?;
            let m = pending(m, next_action_index(&d.slots), target);
            Ok((Change::of_slots(vec![m.clone()]), m))
        })
        .await
    }

    /// Queues the migration of every slot in `begin..=end`; refused as a whole if
    /// any of them has an action or already belongs to `target`.
    pub async fn create_slot_action_range(
        &self,
        begin: u32,
        end: u32,
        target: u32,
    ) -> Result<Vec<u32>> {
        check_slot_id(begin)?;
        check_slot_id(end)?;
        if begin > end {
            return Err(invalid(format!(
                "invalid slot range {begin}..{end}: begin must not exceed end"
            )));
        }
        check_group_id(target)?;
        self.mutate(|d| {
            usable_target(d, target)?;
            let mut slots = Vec::new();
            for (index, sid) in (next_action_index(&d.slots)..).zip(begin..=end) {
                let m = &d.slots[sid as usize];
                check_can_move(m, target)?;
                slots.push(pending(m, index, target));
            }
            let ids = slots.iter().map(|m| m.id).collect();
            Ok((Change::of_slots(slots), ids))
        })
        .await
    }

    /// Queues up to `count` idle slots of group `source` to move to `target`, in
    /// slot order.
    pub async fn create_slot_action_some(
        &self,
        source: u32,
        target: u32,
        count: u32,
    ) -> Result<Vec<u32>> {
        check_group_id(source)?;
        check_group_id(target)?;
        if source == target {
            return Err(invalid(format!(
                "source and target are both group-{source}"
            )));
        }
        if count == 0 {
            return Err(invalid("count must be at least 1"));
        }
        self.mutate(|d| {
            usable_target(d, target)?;
            let mut index = next_action_index(&d.slots);
            let slots: Vec<SlotMapping> = d
                .slots
                .iter()
                .filter(|m| m.action.is_none() && m.group_id == source)
                .take(count as usize)
                .map(|m| {
                    let p = pending(m, index, target);
                    index += 1;
                    p
                })
                .collect();
            let ids = slots.iter().map(|m| m.id).collect();
            Ok((Change::of_slots(slots), ids))
        })
        .await
    }

    /// Removes a queued (pending) slot action.
    pub async fn remove_slot_action(&self, sid: u32) -> Result<()> {
        check_slot_id(sid)?;
        self.mutate(|d| {
            let m = &d.slots[sid as usize];
            match m.action {
                None => Err(not_found(format!("slot-{sid} has no action"))),
                Some(a) if a.state != SlotState::Pending => Err(precondition(format!(
                    "slot-{sid} action is {}, only a pending action can be removed",
                    a.state.as_str()
                ))),
                Some(_) => Ok((
                    Change {
                        slots: vec![SlotMapping {
                            action: None,
                            ..m.clone()
                        }],
                        ..Change::default()
                    },
                    (),
                )),
            }
        })
        .await
    }

    /// Sets the pause between migration batches (persisted).
    pub async fn set_slot_action_interval(&self, interval_us: u32) -> Result<()> {
        if interval_us > MAX_INTERVAL_US {
            return Err(invalid(format!(
                "interval {interval_us}us is out of range 0..={MAX_INTERVAL_US}"
            )));
        }
        self.set_slot_action_config(|c| c.interval_us = interval_us)
            .await
    }

    /// Pauses or resumes starting new migrations (persisted).
    pub async fn set_slot_action_disabled(&self, disabled: bool) -> Result<()> {
        self.set_slot_action_config(|c| c.disabled = disabled).await
    }

    async fn set_slot_action_config(&self, f: impl FnOnce(&mut SlotActionConfig)) -> Result<()> {
        self.mutate(|d| {
            let mut c = d.slot_action;
            f(&mut c);
            Ok((
                Change {
                    slot_action: Some(c),
                    ..Change::default()
                },
                (),
            ))
        })
        .await
    }

    /// Slots owned per group id (0 = offline).
    pub fn slots_per_group(&self) -> BTreeMap<u32, u32> {
        let mut out = BTreeMap::new();
        for m in self.table().mappings.iter() {
            *out.entry(m.group_id).or_insert(0) += 1;
        }
        out
    }
}

fn usable_target(d: &ProductData, gid: u32) -> Result<&Group> {
    let g = d
        .groups
        .get(&gid)
        .ok_or_else(|| not_found(format!("group-{gid} does not exist")))?;
    if g.servers.is_empty() {
        return Err(precondition(format!(
            "group-{gid} is empty: add a server to it first"
        )));
    }
    Ok(g)
}

fn check_can_move(m: &SlotMapping, target: u32) -> Result<()> {
    if let Some(a) = m.action {
        return Err(exists(format!(
            "slot-{} already has an action ({} to group-{})",
            m.id,
            a.state.as_str(),
            a.target_id
        )));
    }
    if m.group_id == target {
        return Err(precondition(format!(
            "slot-{} is already in group-{target}",
            m.id
        )));
    }
    Ok(())
}

fn check_not_migrating(m: &SlotMapping) -> Result<()> {
    match m.action {
        Some(a) if a.state != SlotState::Pending => Err(precondition(format!(
            "slot-{} is being migrated to group-{} (state {}); wait for it to finish",
            m.id,
            a.target_id,
            a.state.as_str()
        ))),
        _ => Ok(()),
    }
}

fn check_unique(ids: impl Iterator<Item = u32>) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(invalid(format!("slot-{id} is listed twice")));
        }
    }
    Ok(())
}

/// Codis numbers actions from 1 + the highest index in use, so the numbering
/// restarts when the queue drains.
fn next_action_index(slots: &[SlotMapping]) -> u32 {
    slots
        .iter()
        .filter_map(|m| m.action.map(|a| a.index))
        .max()
        .unwrap_or(0)
        + 1
}

fn pending(m: &SlotMapping, index: u32, target: u32) -> SlotMapping {
    SlotMapping {
        id: m.id,
        group_id: m.group_id,
        action: Some(SlotAction {
            index,
            state: SlotState::Pending,
            target_id: target,
        }),
    }
}
