//! Sync actions that fail say why, and the stored state says so too.

use crate::coordinator::testing::{Harness, harness, settings};
use crate::model::SyncState;

const M: &str = "127.0.0.1:7001";
const R: &str = "127.0.0.1:7002";

/// Group 1 with master M, then R added with a pending sync action.
async fn replica_queued() -> Harness {
    let h = harness(settings()).await;
    h.group(1, &[M]).await;
    h.coordinator
        .add_group_server(1, R, "", false)
        .await
        .expect("add replica");
    h
}

fn stored_action(h: &Harness) -> (SyncState, String) {
    let g = h.coordinator.group(1).expect("group");
    let a = g.servers[1].action.clone().expect("an action");
    (a.state, a.error)
}

#[tokio::test(start_paused = true)]
async fn a_refused_slaveof_fails_the_action_with_the_reply() {
    let h = replica_queued().await;
    h.ha.fail_set_master(R, "ERR masterauth refused");
    let step = h.coordinator.process_sync_action().await.expect("step");
    let step = step.expect("the pending action ran");
    assert_eq!(step.state, SyncState::SyncedFailed);
    assert!(step.error.contains("ERR masterauth refused"), "{step:?}");
    let (state, error) = stored_action(&h);
    assert_eq!(state, SyncState::SyncedFailed);
    assert_eq!(error, step.error);
    assert!(
        h.coordinator
            .process_sync_action()
            .await
            .expect("step")
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn a_link_that_never_comes_up_fails_the_action() {
    let h = replica_queued().await;
    h.ha.keep_link_down(R);
    let started = tokio::time::Instant::now();
    let step = h.coordinator.process_sync_action().await.expect("step");
    let step = step.expect("the pending action ran");
    assert_eq!(step.state, SyncState::SyncedFailed);
    assert!(
        step.error
            .contains(&format!("{R} follows {M} but its link did not come up")),
        "{step:?}"
    );
    assert!(started.elapsed() >= settings().ha.sync_link_timeout);
    assert_eq!(stored_action(&h).0, SyncState::SyncedFailed);
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_replica_fails_the_action_naming_it() {
    let h = replica_queued().await;
    h.ha.unreachable(R);
    let step = h.coordinator.process_sync_action().await.expect("step");
    let step = step.expect("the pending action ran");
    assert_eq!(step.state, SyncState::SyncedFailed);
    assert!(
        step.error.contains(&format!("cannot connect to {R}")),
        "{step:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_working_replica_is_synced_and_follows_its_master() {
    let h = replica_queued().await;
    let step = h.coordinator.process_sync_action().await.expect("step");
    assert_eq!(step.expect("ran").state, SyncState::Synced);
    assert_eq!(h.ha.master_of(R).as_deref(), Some(M));
    assert_eq!(stored_action(&h), (SyncState::Synced, String::new()));
}
