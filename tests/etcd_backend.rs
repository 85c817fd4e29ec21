//! topom on a real etcd: persistence, the lease-bound ownership lock, and what
//! happens when the lease is lost.

#![cfg(feature = "etcd")]

mod common;

use std::time::{Duration, Instant};

use common::etcd::EtcdServer;
use common::topom::{Options, Topom};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use topom::pb;

fn on(etcd: &EtcdServer) -> Options {
    Options {
        etcd: Some(etcd.endpoint()),
        config: vec!["etcd_lease_ttl = \"2s\"".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn etcd_store_persists_and_locks_with_a_lease() {
    let etcd = EtcdServer::start().await;
    let mut first = Topom::start_with(on(&etcd)).await;
    let mut c = first.client().await;
    c.create_group(pb::CreateGroupRequest { group_id: 12 })
        .await
        .unwrap();
    c.create_group(pb::CreateGroupRequest { group_id: 13 })
        .await
        .unwrap();
    c.remove_group(pb::RemoveGroupRequest { group_id: 13 })
        .await
        .unwrap();

    // The keys are Codis's.
    let mut kv = etcd.client().await;
    let got = kv
        .get("/codis3/topom_test/group/group-0012", None)
        .await
        .unwrap();
    let value = got
        .kvs()
        .first()
        .expect("group key in etcd")
        .value_str()
        .unwrap()
        .to_owned();
    assert!(value.contains("\"id\": 12"), "{value}");
    let got = kv.get("/codis3/topom_test/topom", None).await.unwrap();
    assert!(
        got.kvs()[0].lease() != 0,
        "the lock key is bound to a lease"
    );

    // A second instance stands by, naming the first as the leader.
    let mut second = Topom::start_with(on(&etcd)).await;
    let o = second
        .client()
        .await
        .get_overview(pb::GetOverviewRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(o.role(), pb::InstanceRole::Standby);
    assert_eq!(o.leader_addr, first.addr());

    // A graceful stop releases the lock at once: the standby leads well before
    // the lease (2 s) could have run out, and the data survives.
    assert_eq!(first.terminate().await, Some(0), "{}", first.log());
    let took = common::wait_until(
        Duration::from_secs(10),
        "the standby to accept a write",
        async || {
            let mut c = second.client().await;
            c.create_group(pb::CreateGroupRequest { group_id: 14 })
                .await
                .is_ok()
        },
    )
    .await;
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let groups = second
        .client()
        .await
        .list_groups(pb::ListGroupsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        groups.groups.iter().map(|g| g.id).collect::<Vec<_>>(),
        [12, 14]
    );

    // kill -9: the lock outlives the process only until its lease expires (2 s).
    // A new instance starts at once as a standby and leads after that.
    second.kill9().await;
    let killed = Instant::now();
    let third = Topom::start_with(on(&etcd)).await;
    common::wait_until(
        Duration::from_secs(10),
        "the new instance to accept a write",
        async || {
            let mut c = third.client().await;
            c.create_group(pb::CreateGroupRequest { group_id: 15 })
                .await
                .is_ok()
        },
    )
    .await;
    let waited = killed.elapsed();
    assert!(waited < Duration::from_secs(6), "took {waited:?}");
}

#[tokio::test]
async fn losing_the_lease_stops_writes_until_it_is_back() {
    let mut etcd = EtcdServer::start().await;
    let t = Topom::start_with(on(&etcd)).await;
    let mut c = t.client().await;
    c.create_group(pb::CreateGroupRequest { group_id: 1 })
        .await
        .unwrap();
    assert_eq!(t.health().await, Some(ServingStatus::Serving as i32));

    etcd.kill();
    common::wait_until(
        Duration::from_secs(15),
        "NOT_SERVING after etcd died",
        async || t.health().await == Some(ServingStatus::NotServing as i32),
    )
    .await;
    let e = c
        .create_group(pb::CreateGroupRequest { group_id: 2 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    // Reads keep answering from the cache.
    assert_eq!(
        c.list_groups(pb::ListGroupsRequest {})
            .await
            .unwrap()
            .into_inner()
            .groups
            .len(),
        1
    );

    etcd.restart().await;
    common::wait_until(
        Duration::from_secs(20),
        "SERVING after etcd came back",
        async || t.health().await == Some(ServingStatus::Serving as i32),
    )
    .await;
    c.create_group(pb::CreateGroupRequest { group_id: 2 })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_frozen_etcd_fails_writes_fast_and_turns_health_off_at_once() {
    let etcd = EtcdServer::start().await;
    // The default lease (10 s): every bound below is well inside it.
    let t = Topom::start_with(Options {
        etcd: Some(etcd.endpoint()),
        ..Default::default()
    })
    .await;
    let mut c = t.client().await;
    c.create_group(pb::CreateGroupRequest { group_id: 1 })
        .await
        .unwrap();
    assert_eq!(t.health().await, Some(ServingStatus::Serving as i32));

    etcd.pause();
    let frozen = Instant::now();
    let e = c
        .create_group(pb::CreateGroupRequest { group_id: 2 })
        .await
        .unwrap_err();
    let took = frozen.elapsed();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    // One store call (2 s bound), plus the reload the failed write triggers.
    assert!(took < Duration::from_secs(6), "the write took {took:?}");
    // The failed call alone turns health off: no waiting for the lease to run out.
    common::wait_until(
        Duration::from_secs(1),
        "NOT_SERVING once a store call went unanswered",
        async || t.health().await == Some(ServingStatus::NotServing as i32),
    )
    .await;
    let e = c
        .create_group(pb::CreateGroupRequest { group_id: 3 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    assert!(e.message().contains("not answering"), "{}", e.message());

    etcd.resume();
    common::wait_until(
        Duration::from_secs(20),
        "SERVING after etcd thawed",
        async || t.health().await == Some(ServingStatus::Serving as i32),
    )
    .await;
    c.create_group(pb::CreateGroupRequest { group_id: 2 })
        .await
        .unwrap();
}
