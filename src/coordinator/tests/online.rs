//! What the core refuses before any Redis or store work: writes without the
//! ownership lock, servers that do not answer; and what a stats round reports.

use std::time::Duration;

use crate::coordinator::Error;
use crate::coordinator::testing::{harness, settings};
use crate::model::ProbeOutcome;
use crate::store::LockState;

const A: &str = "127.0.0.1:7001";
const B: &str = "127.0.0.1:7002";

#[tokio::test(start_paused = true)]
async fn a_coordinator_without_its_lock_refuses_every_write() {
    let h = harness(settings()).await;
    h.group(1, &[A]).await;
    h.lock.send_replace(LockState::Lost);
    let err = h.coordinator.create_group(2).await.unwrap_err();
    assert!(matches!(err, Error::NotOnline(_)), "{err:?}");
    assert!(err.to_string().contains("lost its ownership lock"), "{err}");
    assert!(h.coordinator.process_slot_action().await.is_err());
    assert!(h.coordinator.process_sync_action().await.is_err());
    assert!(h.coordinator.group(2).is_err());
    h.lock.send_replace(LockState::Held);
    h.coordinator.create_group(2).await.expect("held again");
}

#[tokio::test(start_paused = true)]
async fn a_server_that_does_not_answer_is_not_added() {
    let h = harness(settings()).await;
    h.coordinator.create_group(1).await.expect("group");
    h.redis.refuse(A);
    let err = h.coordinator.add_group_server(1, A, "", false).await;
    let err = err.unwrap_err().to_string();
    assert!(err.contains(&format!("cannot connect to {A}")), "{err}");
    assert!(h.coordinator.group(1).expect("group").servers.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_stats_round_leaves_no_probe_running() {
    let h = harness(settings()).await;
    h.group(1, &[A]).await;
    h.probe.hang(A);
    let round = h.coordinator.refresh_stats(Duration::from_secs(30));
    let cut = tokio::time::timeout(Duration::from_secs(1), round).await;
    assert!(cut.is_err(), "the round should still be waiting on A");
    // Aborted tasks are dropped by the runtime: let it run them once.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(h.probe.in_flight(), 0, "a probe outlived its round");
}

#[tokio::test(start_paused = true)]
async fn a_stats_round_reports_each_server_on_its_own() {
    let h = harness(settings()).await;
    h.group(1, &[A, B]).await;
    let info = [("role".to_owned(), "master".to_owned())].into();
    h.probe.set_info(A, info);
    let round = h.coordinator.refresh_stats(Duration::from_secs(1)).await;
    let round = round.expect("round");
    let by_addr = |a: &str| {
        let s = round.servers.iter().find(|s| s.addr == a).expect("listed");
        s.probe.outcome.clone()
    };
    assert!(matches!(by_addr(A), ProbeOutcome::Ok(_)));
    match by_addr(B) {
        ProbeOutcome::Error(e) => assert!(e.contains(&format!("cannot connect to {B}")), "{e}"),
        other => panic!("{other:?}"),
    }
}
