//! Promotes that cannot finish leave the group as it was.

use crate::coordinator::testing::{Harness, harness, settings};

const M: &str = "127.0.0.1:7001";
const R: &str = "127.0.0.1:7002";

async fn master_and_replica() -> Harness {
    let h = harness(settings()).await;
    h.group(1, &[M, R]).await;
    h
}

fn assert_unchanged(h: &Harness) {
    let g = h.coordinator.group(1).expect("group");
    assert_eq!(g.promoting, None, "the promote was not rolled back");
    assert_eq!(g.master(), M);
    assert_eq!(h.ha.master_of(R).as_deref(), Some(M));
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_never_catches_up_aborts_the_promote() {
    let h = master_and_replica().await;
    h.ha.keep_link_down(R);
    let err = h.coordinator.promote_server(1, R).await.unwrap_err();
    assert!(
        err.to_string().contains("did not catch up")
            && err.to_string().contains("replica not linked"),
        "{err}"
    );
    assert_unchanged(&h);
    assert!(h.ha.calls().is_empty(), "{:?}", h.ha.calls());
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_cannot_become_master_aborts_and_unpauses() {
    let h = master_and_replica().await;
    h.ha.fail_set_master(R, "ERR no thanks");
    let err = h.coordinator.promote_server(1, R).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("could not make {R} master"))
            && err.to_string().contains("ERR no thanks"),
        "{err}"
    );
    assert_unchanged(&h);
    let calls = h.ha.calls();
    assert_eq!(
        calls,
        [
            format!("PAUSE {M}"),
            format!("SLAVEOF {R} NO ONE"),
            format!("UNPAUSE {M}")
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_promote_switches_the_master_and_queues_the_old_one_to_follow() {
    let h = master_and_replica().await;
    let out = h.coordinator.promote_server(1, R).await.expect("promote");
    assert_eq!(out.group.master(), R);
    assert_eq!(out.group.promoting, None);
    assert_eq!(h.ha.master_of(R), None);
    assert_eq!(h.ha.master_of(M).as_deref(), Some(R));
    let old = &out.group.servers[1];
    assert_eq!(old.addr, M);
    assert!(old.action.is_some(), "the old master gets a sync action");
}
