//! The slot engine's transitions, rollback and failed passes.

use std::sync::Arc;

use super::live_proxy;
use crate::coordinator::testing::{Harness, harness, settings};
use crate::model::SlotState;
use crate::store::Store;

const A: &str = "127.0.0.1:7001";
const B: &str = "127.0.0.1:7002";
const C: &str = "127.0.0.1:7003";

/// Groups 1 (A) and 2 (B), slot 0 on group 1 with an action to group 2.
async fn one_slot_queued() -> Harness {
    let h = harness(settings()).await;
    h.group(1, &[A]).await;
    h.group(2, &[B]).await;
    h.coordinator.assign_slots(&[(0, 1)]).await.expect("assign");
    h.coordinator.create_slot_action(0, 2).await.expect("queue");
    h
}

fn slot_state(h: &Harness) -> Option<SlotState> {
    h.coordinator.table().mappings[0].state()
}

#[tokio::test(start_paused = true)]
async fn a_slot_moves_through_every_state_to_its_target() {
    let h = one_slot_queued().await;
    h.migrator.set_keys(0, 10);
    h.migrator.per_pass(4);
    let mut seen = Vec::new();
    let mut revision = h.coordinator.table().revision;
    for _ in 0..10 {
        let steps = h.coordinator.process_slot_action().await.expect("step");
        if steps.is_empty() {
            break;
        }
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].error, "", "{steps:?}");
        seen.push(steps[0].state);
        let now = h.coordinator.table().revision;
        assert!(now >= revision);
        revision = now;
    }
    use SlotState::*;
    assert_eq!(
        seen,
        [
            Some(Preparing),
            Some(Prepared),
            Some(Migrating),
            Some(Migrating),
            Some(Migrating),
            Some(Finished),
            None
        ]
    );
    let m = &h.coordinator.table().mappings[0];
    assert_eq!((m.group_id, m.action), (2, None));
    assert_eq!(h.migrator.passes(), [A, A, A]);
    // The store, not just the cache, has the final mapping.
    let stored = Store::new(Arc::new(h.store.clone()), "test").load().await;
    let stored = stored.expect("load");
    assert_eq!(
        (stored.slots[0].group_id, stored.slots[0].action),
        (2, None)
    );
}

#[tokio::test(start_paused = true)]
async fn a_prepared_slot_rolls_back_when_a_proxy_does_not_apply_it() {
    let h = one_slot_queued().await;
    let _silent = live_proxy(&h, "p").await;
    let steps = h.coordinator.process_slot_action().await.expect("step");
    assert_eq!(steps[0].state, Some(SlotState::Preparing));
    let steps = h.coordinator.process_slot_action().await.expect("step");
    assert_eq!(steps[0].state, Some(SlotState::Preparing), "{steps:?}");
    assert!(
        steps[0].error.contains("did not apply revision") && steps[0].error.contains("proxy p"),
        "{steps:?}"
    );
    assert_eq!(slot_state(&h), Some(SlotState::Preparing));
    assert!(h.migrator.passes().is_empty(), "no data may move");
}

#[tokio::test(start_paused = true)]
async fn a_failed_pass_keeps_the_slot_migrating_with_the_error() {
    let h = one_slot_queued().await;
    for _ in 0..3 {
        h.coordinator.process_slot_action().await.expect("step");
    }
    assert_eq!(slot_state(&h), Some(SlotState::Migrating));
    h.migrator.fail(Some("ERR target refused"));
    let steps = h.coordinator.process_slot_action().await.expect("step");
    assert_eq!(steps[0].state, Some(SlotState::Migrating));
    assert!(steps[0].error.contains("ERR target refused"), "{steps:?}");
    assert!(
        h.coordinator.slot_progress()[&0]
            .error
            .contains("ERR target refused")
    );
    assert_eq!(slot_state(&h), Some(SlotState::Migrating));
    h.migrator.fail(None);
    let steps = h.coordinator.process_slot_action().await.expect("step");
    assert_eq!(steps[0].state, Some(SlotState::Finished), "{steps:?}");
    assert_eq!(h.coordinator.slot_progress()[&0].error, "");
}

/// Groups 1 (A), 2 (B) and 3 (C) under a `keys_per_sec` throttle; each of
/// `slots` (slot, source group, keys) queued to group 2.
async fn throttled(keys_per_sec: u64, slots: &[(u32, u32, u64)]) -> Harness {
    let mut s = settings();
    s.migration.max_keys_per_sec = keys_per_sec;
    let h = harness(s).await;
    h.group(1, &[A]).await;
    h.group(2, &[B]).await;
    h.group(3, &[C]).await;
    let owners: Vec<(u32, u32)> = slots.iter().map(|&(sid, gid, _)| (sid, gid)).collect();
    h.coordinator.assign_slots(&owners).await.expect("assign");
    for &(sid, _, keys) in slots {
        h.coordinator
            .create_slot_action(sid, 2)
            .await
            .expect("queue");
        h.migrator.set_keys(sid, keys);
    }
    h
}

#[tokio::test(start_paused = true)]
async fn one_throttle_paces_every_source_together() {
    // Two sources, 20 keys each.
    let h = throttled(10, &[(0, 1, 20), (1, 3, 20)]).await;
    let started = tokio::time::Instant::now();
    for _ in 0..10 {
        let steps = h.coordinator.process_slot_action().await.expect("step");
        assert!(steps.iter().all(|s| s.error.is_empty()), "{steps:?}");
        if steps.is_empty() {
            break;
        }
    }
    assert!(
        h.coordinator.table().mappings[..2]
            .iter()
            .all(|m| m.group_id == 2)
    );
    let mut sources = h.migrator.passes();
    sources.sort();
    sources.dedup();
    assert_eq!(sources, [A, C]);
    // 40 keys at 10/s, the first 10 free: 3 s. A throttle per pass would let
    // the two sources go side by side in 1 s.
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_pass_held_by_the_limit_shows_as_throttled_not_stalled() {
    let h = throttled(1, &[(0, 1, 100)]).await;
    for _ in 0..3 {
        h.coordinator.process_slot_action().await.expect("step");
    }
    assert_eq!(slot_state(&h), Some(SlotState::Migrating));
    // 100 keys at 1/s: the pass waits 99 s for the throttle.
    let c = Arc::clone(&h.coordinator);
    let pass = tokio::spawn(async move { c.process_slot_action().await });
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let error = h.coordinator.slot_progress()[&0].error.clone();
    assert!(
        error.starts_with(
            "throttled: no key moved for 6s, passes wait for the migration limit (1 keys/s"
        ),
        "{error}"
    );
    assert!(error.contains(&format!("source {A}")), "{error}");
    let steps = pass.await.expect("task").expect("step");
    assert_eq!(steps[0].state, Some(SlotState::Finished), "{steps:?}");
}

/// Groups 1 (A) and 2 (B), slots `0..n` on group 1 with 10 keys each, queued
/// to group 2, with `parallel` slots prepared at once.
async fn slots_queued(n: u32, parallel: u32) -> Harness {
    let mut s = settings();
    s.migration.parallel_slots = parallel;
    let h = harness(s).await;
    h.group(1, &[A]).await;
    h.group(2, &[B]).await;
    let all: Vec<(u32, u32)> = (0..n).map(|sid| (sid, 1)).collect();
    h.coordinator.assign_slots(&all).await.expect("assign");
    for sid in 0..n {
        h.coordinator
            .create_slot_action(sid, 2)
            .await
            .expect("queue");
        h.migrator.set_keys(sid, 10);
    }
    h
}

/// Slots in preparing or prepared: what proxies may hold locked.
fn being_prepared(h: &Harness) -> usize {
    h.coordinator
        .table()
        .mappings
        .iter()
        .filter(|m| matches!(m.state(), Some(SlotState::Preparing | SlotState::Prepared)))
        .count()
}

#[tokio::test(start_paused = true)]
async fn one_pass_of_a_source_serves_every_queued_slot() {
    let h = slots_queued(5, 2).await;
    for _ in 0..30 {
        let steps = h.coordinator.process_slot_action().await.expect("step");
        assert!(steps.iter().all(|s| s.error.is_empty()), "{steps:?}");
        assert!(being_prepared(&h) <= 2, "the parallel limit bounds locking");
        if steps.is_empty() {
            break;
        }
    }
    // Not one scan per batch of 2: the first slots waited for the others.
    assert_eq!(h.migrator.pass_slots(), [vec![0, 1, 2, 3, 4]]);
    let t = h.coordinator.table();
    assert!(
        (0..5).all(|s| t.mappings[s].group_id == 2 && t.mappings[s].action.is_none()),
        "{:?}",
        &t.mappings[..5]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_barrier_does_not_hold_back_the_pass() {
    let h = slots_queued(2, 1).await;
    // Slot 0 reaches migrating as slot 1 starts preparing behind it.
    for _ in 0..3 {
        h.coordinator.process_slot_action().await.expect("step");
    }
    let t = h.coordinator.table();
    assert_eq!(t.mappings[0].state(), Some(SlotState::Migrating));
    assert_eq!(t.mappings[1].state(), Some(SlotState::Preparing));
    assert!(
        h.migrator.pass_slots().is_empty(),
        "slot 0 waits for slot 1"
    );
    // From now on slot 1's prepared barrier fails: slot 0 must move anyway.
    let _silent = live_proxy(&h, "p").await;
    h.coordinator.process_slot_action().await.expect("step");
    assert_eq!(h.migrator.pass_slots(), [vec![0]]);
    assert_eq!(slot_state(&h), Some(SlotState::Finished));
}

#[tokio::test(start_paused = true)]
async fn a_new_leader_holds_a_prepared_slot_at_every_proxy_before_keys_move() {
    let h = one_slot_queued().await;
    for _ in 0..2 {
        h.coordinator.process_slot_action().await.expect("step");
    }
    assert_eq!(slot_state(&h), Some(SlotState::Prepared));
    // A proxy the previous leader served: stored, never heard by this term.
    h.coordinator
        .register_proxy(crate::model::Proxy {
            token: "p".to_owned(),
            ..crate::model::Proxy::default()
        })
        .await
        .expect("register proxy");
    h.coordinator.take_leadership().await.expect("take over");
    let steps = h.coordinator.process_slot_action().await.expect("step");
    assert_eq!(steps[0].state, Some(SlotState::Prepared), "{steps:?}");
    assert!(steps[0].error.contains("proxy p"), "{steps:?}");
    assert_eq!(slot_state(&h), Some(SlotState::Prepared));
    assert!(h.migrator.passes().is_empty(), "no data may move");
}
