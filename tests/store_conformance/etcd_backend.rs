//! What only the etcd backend has: leases, fencing, timeouts and prefixes.

use std::time::{Duration, Instant};

use etcd_client::PutOptions;
use topom::store::etcd::{EtcdOptions, EtcdStore};
use topom::store::{LockState, MetaStore, StoreError};

use crate::common::etcd::EtcdServer;
use crate::common::{ports::free_port, wait_for_watch};
use crate::support::{bytes, owner};

const LOCK_KEY: &str = "/codis3/demo/topom";

fn short_lease() -> EtcdOptions {
    EtcdOptions {
        lease_ttl: Duration::from_secs(2),
        timeout: Duration::from_secs(1),
        user: None,
    }
}

async fn connect(server: &EtcdServer, prefix: &str) -> EtcdStore {
    EtcdStore::connect(&server.endpoints(), prefix, short_lease())
        .await
        .unwrap()
}

#[tokio::test]
async fn dropped_holder_expires_after_the_ttl() {
    let server = EtcdServer::start().await;
    let a = connect(&server, "").await;
    let b = connect(&server, "").await;
    let me = serde_json::to_vec(&owner("10.0.0.1:18080", 1)).unwrap();
    let held = a.lock(LOCK_KEY, &me).await.unwrap();
    drop(held);
    let dropped = Instant::now();
    // A crash does not revoke: the key stays until the lease runs out, and
    // the next taker waits for that instead of failing.
    assert_eq!(b.get(LOCK_KEY).await.unwrap(), Some(me));
    let held = b.lock(LOCK_KEY, b"them").await.unwrap();
    let gone = dropped.elapsed();
    eprintln!("lock taken {gone:?} after the holder was dropped (TTL 2 s)");
    assert!(
        gone >= Duration::from_millis(1000),
        "taken after only {gone:?}: the dead holder's lease was not waited out"
    );
    assert_eq!(
        b.get(LOCK_KEY).await.unwrap().as_deref(),
        Some(&b"them"[..])
    );
    // The old holder's writes are fenced off now.
    assert!(matches!(
        a.put("/codis3/demo/sentinel", b"{}").await,
        Err(StoreError::LockLost(_))
    ));
    assert_eq!(b.get("/codis3/demo/sentinel").await.unwrap(), None);
    held.release().await.unwrap();
}

#[tokio::test]
async fn lease_lost_when_etcd_dies_and_regained_after_restart() {
    let mut server = EtcdServer::start().await;
    let a = connect(&server, "").await;
    let held = a.lock(LOCK_KEY, b"me").await.unwrap();
    let mut state = held.state();
    a.put("/codis3/demo/sentinel", b"1").await.unwrap();

    server.kill();
    let lost = wait_for_watch(&mut state, Duration::from_secs(10), "Lost", |s| {
        *s == LockState::Lost
    })
    .await;
    eprintln!("lock state Lost {lost:?} after etcd was killed (TTL 2 s)");
    for result in [
        a.put("/codis3/demo/sentinel", b"2").await,
        a.delete("/codis3/demo/sentinel").await,
        a.write_batch(vec![("/codis3/demo/x".into(), bytes("1"))])
            .await,
    ] {
        assert!(matches!(result, Err(StoreError::LockLost(_))), "{result:?}");
    }

    let restart = Instant::now();
    server.restart().await;
    let restarted = restart.elapsed();
    let held_again = wait_for_watch(&mut state, Duration::from_secs(20), "Held", |s| {
        *s == LockState::Held
    })
    .await;
    eprintln!("etcd restarted in {restarted:?}; lock Held again {held_again:?} later");
    a.put("/codis3/demo/sentinel", b"3").await.unwrap();
    assert_eq!(a.get("/codis3/demo/sentinel").await.unwrap(), bytes("3"));
    assert_eq!(a.get(LOCK_KEY).await.unwrap(), bytes("me"));
    held.release().await.unwrap();
    assert_eq!(a.get(LOCK_KEY).await.unwrap(), None);
}

/// A holder whose key was taken over (here: re-bound to another lease behind
/// its back) cannot write; it takes the lock back once the key is free.
#[tokio::test]
async fn writes_are_fenced_by_the_lock() {
    let server = EtcdServer::start().await;
    let a = connect(&server, "").await;
    let held = a.lock(LOCK_KEY, b"me").await.unwrap();
    let mut state = held.state();
    a.put("/codis3/demo/sentinel", b"mine").await.unwrap();

    let mut raw = server.client().await;
    let intruder = raw.lease_grant(60, None).await.unwrap().id();
    raw.put(
        LOCK_KEY,
        "intruder",
        Some(PutOptions::new().with_lease(intruder)),
    )
    .await
    .unwrap();
    assert!(matches!(
        a.put("/codis3/demo/sentinel", b"stale").await,
        Err(StoreError::LockLost(_))
    ));
    assert_eq!(*state.borrow(), LockState::Lost);
    assert!(matches!(
        a.write_batch(vec![("/codis3/demo/x".into(), bytes("1"))])
            .await,
        Err(StoreError::LockLost(_))
    ));
    let b = connect(&server, "").await;
    assert_eq!(b.get("/codis3/demo/sentinel").await.unwrap(), bytes("mine"));
    assert_eq!(b.get("/codis3/demo/x").await.unwrap(), None);
    assert_eq!(b.get(LOCK_KEY).await.unwrap(), bytes("intruder"));

    // The intruder goes away: the holder takes the lock back by itself.
    raw.lease_revoke(intruder).await.unwrap();
    let took = wait_for_watch(&mut state, Duration::from_secs(10), "Held", |s| {
        *s == LockState::Held
    })
    .await;
    eprintln!("lock retaken {took:?} after the intruder left");
    assert_eq!(b.get(LOCK_KEY).await.unwrap(), bytes("me"));
    a.put("/codis3/demo/sentinel", b"mine again").await.unwrap();
    held.release().await.unwrap();
}

/// SIGSTOP makes etcd hang rather than refuse: requests time out, and the lock
/// is given up after the TTL.
#[tokio::test]
async fn hung_etcd_times_out_and_loses_the_lock() {
    let server = EtcdServer::start().await;
    let a = connect(&server, "").await;
    let held = a.lock(LOCK_KEY, b"me").await.unwrap();
    let mut state = held.state();
    server.pause();
    let start = Instant::now();
    let err = a.get("/codis3/demo/sentinel").await.unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(
        err.to_string().contains(&server.client_port().to_string()),
        "{err}"
    );
    assert!(
        took < Duration::from_secs(3),
        "get took {took:?} with a 1 s timeout"
    );
    let lost = wait_for_watch(&mut state, Duration::from_secs(10), "Lost", |s| {
        *s == LockState::Lost
    })
    .await;
    eprintln!("lock Lost {lost:?} after etcd hung (TTL 2 s)");
    server.resume();
    wait_for_watch(&mut state, Duration::from_secs(20), "Held", |s| {
        *s == LockState::Held
    })
    .await;
    a.put("/codis3/demo/sentinel", b"ok").await.unwrap();
    held.release().await.unwrap();
}

#[tokio::test]
async fn unreachable_etcd_fails_with_the_endpoint() {
    let port = free_port();
    let start = Instant::now();
    let err = EtcdStore::connect(&[format!("127.0.0.1:{port}")], "", short_lease())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn prefix_keeps_deployments_apart() {
    let server = EtcdServer::start().await;
    let a = connect(&server, "/deploy-a").await;
    let b = connect(&server, "/deploy-b/").await;
    assert!(a.describe().contains("/deploy-a"), "{}", a.describe());
    a.put("/codis3/demo/sentinel", b"a").await.unwrap();
    assert_eq!(b.get("/codis3/demo/sentinel").await.unwrap(), None);
    assert!(b.list("/codis3/demo").await.unwrap().is_empty());
    let mut raw = server.client().await;
    let got = raw
        .get("/deploy-a/codis3/demo/sentinel", None)
        .await
        .unwrap();
    assert_eq!(got.kvs()[0].value(), b"a");
    // Each deployment has its own lock.
    let la = a.lock(LOCK_KEY, b"a").await.unwrap();
    let lb = b.lock(LOCK_KEY, b"b").await.unwrap();
    la.release().await.unwrap();
    lb.release().await.unwrap();
    assert!(
        EtcdStore::connect(&server.endpoints(), "no-slash", short_lease())
            .await
            .is_err()
    );
}

/// Beyond 4096 writes a batch is split into several transactions.
#[tokio::test]
async fn very_large_batch() {
    let server = EtcdServer::start().await;
    let a = connect(&server, "").await;
    let held = a.lock(LOCK_KEY, b"me").await.unwrap();
    let writes = (0..5000)
        .map(|i| (format!("/codis3/demo/huge/k-{i:05}"), bytes("v")))
        .collect();
    a.write_batch(writes).await.unwrap();
    assert_eq!(a.list("/codis3/demo/huge").await.unwrap().len(), 5000);
    held.release().await.unwrap();
}
