//! The rebalance planner (reference §3.4): a pure function of the slots and groups.
//!
//! It spreads the [`MAX_SLOTS`] slots evenly over the *candidates*, the groups that have
//! at least one server, moving as few slots as it can:
//!
//! * a slot with an action counts for its target and never moves;
//! * every candidate first keeps up to `floor(1024/N)` of its own idle slots (lowest ids
//!   first); the rest are *movable*;
//! * unserved slots (offline, or on a group that is not a candidate) are docked, one by
//!   one, to the currently smallest candidate;
//! * then the largest candidate gives one slot to the smallest until they are within one
//!   slot of each other or within `[floor, ceil]` of 1024/N; a giver hands over its
//!   highest-numbered movable slots;
//! * finally the docked slots, sorted, are dealt out to the receivers in group-id order.
//!
//! The result is deterministic for a given input.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Group, MAX_SLOTS, SlotMapping};

/// Error when no group has a server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no valid group could be found: rebalance needs at least one group with a server")]
pub struct NoValidGroup;

/// One candidate group's bookkeeping (§3.4 step 2).
#[derive(Debug, Default)]
struct Load {
    /// Slots that stay: action targets plus the idle slots kept below `lower`.
    assigned: i64,
    /// Idle slots of this group that may be given away, ascending ids.
    movable: Vec<u32>,
    /// Net slots leaving: positive gives (from `movable`), negative receives.
    moveout: i64,
}

impl Load {
    /// `size(g) = assigned + |pendings| − moveout`: what the group holds once the plan ran.
    fn size(&self) -> i64 {
        self.assigned + self.movable.len() as i64 - self.moveout
    }
}

/// Plans an even spread of the 1024 slots over the non-empty groups (§3.4).
///
/// Returns slot id → target group id for every slot that should move, in slot order.
/// `slots` should hold every slot of the product (a missing record means offline, so
/// the caller fills it in); `groups` is keyed by group id.
///
/// Unlike Codis, an idle slot whose `group_id` names a group that is missing or has no
/// servers is treated like an offline slot: nobody can serve it, so it is docked to a
/// candidate. (Codis counts such slots under their dead group, which the while-loop
/// never visits, so they would stay unserved and the spread would be uneven.)
pub fn plan_rebalance(
    slots: &[SlotMapping],
    groups: &BTreeMap<u32, Group>,
) -> Result<BTreeMap<u32, u32>, NoValidGroup> {
    // Step 1. `loads[i]` belongs to `ids[i]`; `ids` ascends because the map is ordered,
    // so a position orders exactly like the group id it stands for.
    let ids: Vec<u32> = groups
        .iter()
        .filter(|(_, g)| !g.servers.is_empty())
        .map(|(&id, _)| id)
        .collect();
    if ids.is_empty() {
        return Err(NoValidGroup);
    }
    let pos_of: BTreeMap<u32, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut loads: Vec<Load> = ids.iter().map(|_| Load::default()).collect();
    let n = ids.len() as i64;
    let total = MAX_SLOTS as i64;
    let lower = total / n;
    let upper = (total + n - 1) / n;

    let mut by_id: Vec<&SlotMapping> = slots.iter().collect();
    by_id.sort_by_key(|m| m.id);

    // Step 3: queued and running migrations are committed; count them for their target
    // first, so they take precedence over the idle slots the target already owns.
    for m in &by_id {
        if let Some(a) = m.action
            && let Some(&p) = pos_of.get(&a.target_id)
        {
            loads[p].assigned += 1;
        }
    }

    // Step 4 (and the input of step 6): keep up to `lower` slots where they are; the
    // lowest ids are kept so that a giver later hands over its highest ids.
    let mut unserved = Vec::new();
    for m in by_id.iter().filter(|m| m.action.is_none()) {
        match pos_of.get(&m.group_id) {
            Some(&p) if loads[p].size() < lower => loads[p].assigned += 1,
            Some(&p) => loads[p].movable.push(m.id),
            None => unserved.push(m.id),
        }
    }

    // Step 5: the candidates ordered by (size, id); an entry must be taken out before
    // its group's size changes and put back afterwards.
    let mut set: BTreeSet<(i64, usize)> = loads
        .iter()
        .enumerate()
        .map(|(p, l)| (l.size(), p))
        .collect();

    // Step 6: each unserved slot goes to whichever group is smallest at that moment.
    let mut docking = Vec::with_capacity(unserved.len());
    for sid in unserved {
        let Some((_, p)) = set.pop_first() else {
            break;
        };
        loads[p].moveout -= 1;
        docking.push(sid);
        set.insert((loads[p].size(), p));
    }

    // Step 7: move one slot at a time from the largest to the smallest group.
    while set.len() >= 2 {
        let Some((_, from)) = set.pop_last() else {
            break;
        };
        // Nothing left to give: the largest group is done and leaves the set for good.
        if loads[from].movable.len() as i64 == loads[from].moveout {
            continue;
        }
        let Some((_, dest)) = set.pop_first() else {
            break;
        };
        let (from_size, dest_size) = (loads[from].size(), loads[dest].size());
        if from_size <= lower || dest_size >= upper || from_size - dest_size <= 1 {
            break;
        }
        loads[from].moveout += 1;
        loads[dest].moveout -= 1;
        set.insert((loads[from].size(), from));
        set.insert((loads[dest].size(), dest));
    }

    // Step 8: givers hand over their highest-numbered movable slots. `moveout` never
    // exceeds `movable.len()` (step 7 stops a group there), the `min` is only a guard.
    for load in &loads {
        let give = usize::try_from(load.moveout)
            .unwrap_or(0)
            .min(load.movable.len());
        docking.extend_from_slice(&load.movable[load.movable.len() - give..]);
    }
    docking.sort_unstable();

    // Step 9: receivers, in ascending id order, take their share from the front.
    let mut docking = docking.into_iter();
    let mut plan = BTreeMap::new();
    for (p, load) in loads.iter().enumerate() {
        let take = usize::try_from(-load.moveout).unwrap_or(0);
        for sid in docking.by_ref().take(take) {
            plan.insert(sid, ids[p]);
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GroupServer, ServerKind, SlotAction, SlotState};

    const N: u32 = MAX_SLOTS as u32;

    /// Groups with the given ids and server counts.
    fn groups(spec: &[(u32, usize)]) -> BTreeMap<u32, Group> {
        spec.iter()
            .map(|&(id, servers)| {
                let mut g = Group::new(id);
                g.servers = (0..servers)
                    .map(|i| {
                        GroupServer::new(format!("10.0.{id}.{i}:6379"), "", ServerKind::CodisServer)
                    })
                    .collect();
                (id, g)
            })
            .collect()
    }

    fn offline() -> Vec<SlotMapping> {
        (0..N).map(SlotMapping::offline).collect()
    }

    fn pending(m: &mut SlotMapping, target_id: u32) {
        m.action = Some(SlotAction {
            index: m.id + 1,
            state: SlotState::Pending,
            target_id,
        });
    }

    /// Slot count per group once the plan and every queued action have run.
    fn apply(slots: &[SlotMapping], plan: &BTreeMap<u32, u32>) -> BTreeMap<u32, u32> {
        let mut held = BTreeMap::new();
        for m in slots {
            let gid = match (plan.get(&m.id), m.action) {
                (Some(&gid), _) => gid,
                (None, Some(a)) => a.target_id,
                (None, None) => m.group_id,
            };
            *held.entry(gid).or_insert(0) += 1;
        }
        held
    }

    /// Every planned slot is idle and really changes group.
    fn assert_moves_are_real(slots: &[SlotMapping], plan: &BTreeMap<u32, u32>) {
        for (&sid, &gid) in plan {
            let m = &slots[sid as usize];
            assert!(m.action.is_none(), "slot {sid} has an action");
            assert_ne!(m.group_id, gid, "slot {sid} planned onto its own group");
        }
    }

    /// Every candidate holds floor or ceil of 1024/N, and nothing is left elsewhere.
    fn assert_even(slots: &[SlotMapping], gs: &BTreeMap<u32, Group>, plan: &BTreeMap<u32, u32>) {
        let candidates: Vec<u32> = gs
            .values()
            .filter(|g| !g.servers.is_empty())
            .map(|g| g.id)
            .collect();
        let n = candidates.len() as u32;
        let held = apply(slots, plan);
        for gid in &candidates {
            let c = held.get(gid).copied().unwrap_or(0);
            assert!(
                c == N / n || c == N.div_ceil(n),
                "group {gid} holds {c}: {held:?}"
            );
        }
        let on_candidates: u32 = candidates.iter().filter_map(|g| held.get(g)).sum();
        assert_eq!(on_candidates, N, "{held:?}");
    }

    #[test]
    fn one_group_all_offline_takes_everything() {
        let slots = offline();
        let plan = plan_rebalance(&slots, &groups(&[(1, 1)])).unwrap();
        assert_eq!(plan.len(), 1024);
        assert!(plan.values().all(|&g| g == 1));
    }

    #[test]
    fn two_groups_all_offline_split_in_halves() {
        let slots = offline();
        let plan = plan_rebalance(&slots, &groups(&[(1, 1), (2, 2)])).unwrap();
        assert_eq!(plan.len(), 1024);
        // Receivers take from the front of the sorted docking list in id order.
        assert!((0..512).all(|s| plan[&s] == 1));
        assert!((512..1024).all(|s| plan[&s] == 2));
    }

    #[test]
    fn all_in_one_group_moves_the_upper_half_to_the_empty_one() {
        let slots: Vec<_> = (0..N)
            .map(|id| SlotMapping {
                id,
                group_id: 1,
                action: None,
            })
            .collect();
        let plan = plan_rebalance(&slots, &groups(&[(1, 1), (2, 1)])).unwrap();
        assert_eq!(plan.len(), 512);
        // The giver keeps its lowest ids and hands over the highest.
        assert_eq!(
            plan.keys().copied().collect::<Vec<_>>(),
            (512..1024).collect::<Vec<_>>()
        );
        assert!(plan.values().all(|&g| g == 2));
        assert_moves_are_real(&slots, &plan);
    }

    #[test]
    fn pending_slots_count_for_their_target_and_never_move() {
        let gs = groups(&[(1, 1), (2, 1)]);
        for source in [0, 2] {
            let mut slots = offline();
            for m in &mut slots[256..] {
                m.group_id = source;
                pending(m, 1);
            }
            let plan = plan_rebalance(&slots, &gs).unwrap();
            assert_eq!(plan.len(), 256, "source {source}");
            assert!((0..256).all(|s| plan[&s] == 2), "source {source}");
            assert_moves_are_real(&slots, &plan);
        }
    }

    #[test]
    fn giver_hands_over_its_highest_movable_slots_in_receiver_id_order() {
        let gs = groups(&[(1, 1), (2, 1), (3, 1)]);
        let slots: Vec<_> = (0..N)
            .map(|id| SlotMapping {
                id,
                group_id: 3,
                action: None,
            })
            .collect();
        let plan = plan_rebalance(&slots, &gs).unwrap();
        // Group 3 keeps 0..=340 (floor), 341..=1023 are movable and it gives 682 of
        // them: the highest, so 341 stays. Group 1 then takes the front half.
        let expected: BTreeMap<u32, u32> = (342..683)
            .map(|s| (s, 1))
            .chain((683..N).map(|s| (s, 2)))
            .collect();
        assert_eq!(plan, expected);
    }

    #[test]
    fn three_groups_differ_by_at_most_one() {
        let gs = groups(&[(1, 1), (2, 1), (3, 1)]);
        let all_in_one: Vec<_> = (0..N)
            .map(|id| SlotMapping {
                id,
                group_id: 3,
                action: None,
            })
            .collect();
        for slots in [offline(), all_in_one] {
            let plan = plan_rebalance(&slots, &gs).unwrap();
            assert_moves_are_real(&slots, &plan);
            let held = apply(&slots, &plan);
            let mut counts: Vec<u32> = held.values().copied().collect();
            counts.sort_unstable();
            assert_eq!(counts, vec![341, 341, 342], "{held:?}");
        }
    }

    #[test]
    fn balanced_layout_gives_an_empty_plan() {
        let gs = groups(&[(1, 1), (2, 1), (3, 1)]);
        // 341 / 341 / 342, with the larger group last so it has one movable slot.
        let slots: Vec<_> = (0..N)
            .map(|id| SlotMapping {
                id,
                group_id: 1 + (id / 341).min(2),
                action: None,
            })
            .collect();
        assert_eq!(apply(&slots, &BTreeMap::new())[&3], 342);
        assert!(plan_rebalance(&slots, &gs).unwrap().is_empty());
        // Interleaved ownership is just as balanced.
        let slots: Vec<_> = (0..N)
            .map(|id| SlotMapping {
                id,
                group_id: 1 + id % 3,
                action: None,
            })
            .collect();
        assert!(plan_rebalance(&slots, &gs).unwrap().is_empty());
    }

    #[test]
    fn no_group_with_a_server_is_an_error() {
        let slots = offline();
        assert_eq!(plan_rebalance(&slots, &BTreeMap::new()), Err(NoValidGroup));
        assert_eq!(
            plan_rebalance(&slots, &groups(&[(1, 0), (2, 0)])),
            Err(NoValidGroup)
        );
        assert!(
            NoValidGroup
                .to_string()
                .contains("no valid group could be found")
        );
    }

    #[test]
    fn slots_on_a_group_without_servers_are_rehomed() {
        // Group 3 lost its servers (or its record); its slots are unserved like offline ones.
        let gs = groups(&[(1, 1), (2, 1), (3, 0)]);
        let slots: Vec<_> = (0..N)
            .map(|id| SlotMapping {
                id,
                group_id: if id < 512 { 1 } else { 3 },
                action: None,
            })
            .collect();
        let plan = plan_rebalance(&slots, &gs).unwrap();
        assert_eq!(plan.len(), 512);
        assert!((512..1024).all(|s| plan[&s] == 2));
        assert_even(&slots, &gs, &plan);

        let missing = groups(&[(1, 1), (2, 1)]);
        assert_eq!(plan_rebalance(&slots, &missing).unwrap(), plan);
    }

    /// Numerical Recipes' 32-bit LCG: deterministic, no dependency.
    struct Lcg(u32);

    impl Lcg {
        fn next(&mut self, below: u32) -> u32 {
            self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (self.0 >> 8) % below
        }
    }

    #[test]
    fn every_plan_is_even_and_moves_only_idle_slots() {
        let mut rng = Lcg(0x5eed);
        // Guards against a generator that only ever produces trivial layouts.
        let (mut moved, mut with_dead, mut with_pending) = (0, 0, 0);
        for round in 0..200 {
            let n_groups = 1 + rng.next(8);
            // Group ids are sparse, and one extra group without servers may hold slots.
            let mut spec: Vec<(u32, usize)> = (0..n_groups)
                .map(|i| (1 + i * 3, 1 + (i as usize % 2)))
                .collect();
            let dead = if rng.next(2) == 0 {
                spec.push((100, 0));
                Some(100)
            } else {
                None
            };
            let gs = groups(&spec);
            // A skew per round: from all-offline to all-in-one-group.
            let offline_pct = rng.next(101);
            let hot = spec[rng.next(n_groups) as usize].0;
            let slots: Vec<_> = (0..N)
                .map(|id| {
                    let group_id = if rng.next(100) < offline_pct {
                        0
                    } else if rng.next(3) == 0 {
                        hot
                    } else {
                        let i = rng.next(spec.len() as u32) as usize;
                        spec[i].0
                    };
                    let mut m = SlotMapping {
                        id,
                        group_id,
                        action: None,
                    };
                    // ~5% queued migrations, few enough that no target exceeds floor(1024/N).
                    if rng.next(20) == 0 {
                        let target = spec[rng.next(n_groups) as usize].0;
                        if target != group_id {
                            pending(&mut m, target);
                        }
                    }
                    m
                })
                .collect();
            let plan = plan_rebalance(&slots, &gs).unwrap();
            assert_moves_are_real(&slots, &plan);
            assert_even(&slots, &gs, &plan);
            moved += usize::from(!plan.is_empty());
            with_pending += usize::from(slots.iter().any(|m| m.action.is_some()));
            if let Some(dead) = dead {
                with_dead += 1;
                assert!(!apply(&slots, &plan).contains_key(&dead), "round {round}");
            }
            // A second run over the result has nothing left to do.
            let after: Vec<_> = slots
                .iter()
                .map(|m| match plan.get(&m.id) {
                    Some(&gid) => SlotMapping {
                        id: m.id,
                        group_id: gid,
                        action: None,
                    },
                    None => m.clone(),
                })
                .collect();
            assert!(
                plan_rebalance(&after, &gs).unwrap().is_empty(),
                "round {round}"
            );
        }
        assert!(
            moved > 150 && with_dead > 50 && with_pending > 150,
            "{moved} {with_dead} {with_pending}"
        );
    }
}
