//! Acks, nonces and leases as the barrier sees them.

use std::time::Duration;

use tokio::time::Instant;

use super::live_proxy;
use crate::coordinator::testing::{harness, settings};

#[tokio::test(start_paused = true)]
async fn a_forged_ack_for_the_current_revision_does_not_count() {
    let h = harness(settings()).await;
    let stream = live_proxy(&h, "p").await;
    let update = h.coordinator.proxy_update("p", None);
    let current = h.coordinator.table().revision;
    assert_eq!(update.revision, current);
    assert!(!stream.ack(current, "forged-nonce"));
    assert_eq!(h.coordinator.proxy_status("p").applied_revision, 0);
    let err = h.coordinator.wait_applied(current).await.unwrap_err();
    assert!(err.to_string().contains("proxy p (applied 0)"), "{err}");
    assert!(stream.ack(current, &update.nonce));
    assert_eq!(h.coordinator.proxy_status("p").applied_revision, current);
    h.coordinator.wait_applied(current).await.expect("acked");
}

#[tokio::test(start_paused = true)]
async fn the_barrier_stops_waiting_for_a_silent_proxy_when_its_lease_ends() {
    let mut s = settings();
    s.proxy.lease_ttl = Duration::from_secs(10);
    s.proxy.barrier_timeout = Duration::from_secs(60);
    let h = harness(s).await;
    let _stream = live_proxy(&h, "p").await;
    let started = Instant::now();
    let revision = h.coordinator.table().revision;
    h.coordinator
        .wait_applied(revision)
        .await
        .expect("an expired lease no longer holds the barrier");
    // topom's side of the lease is 1.5 ttl; the barrier wakes exactly then, not
    // at its own deadline.
    assert_eq!(started.elapsed(), Duration::from_secs(15));
    assert!(!h.coordinator.proxy_status("p").lease_live);
}

#[tokio::test(start_paused = true)]
async fn the_barrier_names_a_proxy_that_refused_and_why() {
    let h = harness(settings()).await;
    let stream = live_proxy(&h, "p").await;
    let update = h.coordinator.proxy_update("p", None);
    assert!(stream.nack(update.revision, &update.nonce, "slot 3 unknown group"));
    let err = h
        .coordinator
        .wait_applied(update.revision)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("proxy p (applied 0): rejected it: slot 3 unknown group"),
        "{err}"
    );
}
