//! The slot engine's transitions, rollback and failed passes.

use std::sync::Arc;

use super::live_proxy;
use crate::coordinator::testing::{Harness, harness, settings};
use crate::model::SlotState;
use crate::store::Store;

const A: &str = "127.0.0.1:7001";
const B: &str = "127.0.0.1:7002";

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
