//! Several topom instances on one etcd: one leads, the others stand by, serve
//! reads and point mutations at the leader; a dead, frozen or resigning leader
//! is replaced without split brain.

#![cfg(feature = "etcd")]

mod common;

use std::time::{Duration, Instant};

use common::etcd::EtcdServer;
use common::topom::{Options, Topom};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use topom::pb;

/// The lease TTL of these tests: short, so takeovers are quick.
const TTL: Duration = Duration::from_secs(2);

fn on(etcd: &EtcdServer) -> Options {
    Options {
        etcd: Some(etcd.endpoint()),
        config: vec![format!("etcd_lease_ttl = \"{}s\"", TTL.as_secs())],
        ..Default::default()
    }
}

async fn overview(t: &Topom) -> Option<pb::GetOverviewResponse> {
    let mut c = t.client().await;
    c.get_overview(pb::GetOverviewRequest {})
        .await
        .ok()
        .map(|r| r.into_inner())
}

async fn role(t: &Topom) -> Option<pb::InstanceRole> {
    overview(t).await.map(|o| o.role())
}

async fn create_group(t: &Topom, id: u32) -> Result<(), tonic::Status> {
    let mut c = t.client().await;
    c.create_group(pb::CreateGroupRequest { group_id: id })
        .await
        .map(|_| ())
}

async fn group_ids(t: &Topom) -> Vec<u32> {
    let mut c = t.client().await;
    let groups = c.list_groups(pb::ListGroupsRequest {}).await.unwrap();
    groups.into_inner().groups.iter().map(|g| g.id).collect()
}

/// Whether etcd holds group `id`'s record.
async fn stored(etcd: &EtcdServer, id: u32) -> bool {
    let mut kv = etcd.client().await;
    let key = format!("/codis3/topom_test/group/group-{id:04}");
    !kv.get(key, None).await.unwrap().kvs().is_empty()
}

/// Two instances: the first leads, the second stands by.
async fn pair(etcd: &EtcdServer) -> (Topom, Topom) {
    let leader = Topom::start_with(on(etcd)).await;
    let standby = Topom::start_with(on(etcd)).await;
    assert_eq!(role(&leader).await, Some(pb::InstanceRole::Leader));
    assert_eq!(role(&standby).await, Some(pb::InstanceRole::Standby));
    (leader, standby)
}

#[tokio::test]
async fn a_standby_serves_reads_and_points_writes_at_the_leader() {
    let etcd = EtcdServer::start().await;
    let (leader, standby) = pair(&etcd).await;
    assert_eq!(
        standby.health().await,
        Some(ServingStatus::Serving as i32),
        "a standby serves reads"
    );

    // The standby's cache follows the leader's writes.
    create_group(&leader, 3).await.unwrap();
    common::wait_until(
        Duration::from_secs(10),
        "the standby to see group 3",
        async || group_ids(&standby).await == [3],
    )
    .await;

    // A mutation on the standby is refused, naming the leader in the message
    // and in the trailing metadata; nothing is written.
    let e = create_group(&standby, 4).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    assert!(e.message().contains(leader.addr()), "{}", e.message());
    assert_eq!(
        e.metadata()
            .get("topom-leader")
            .and_then(|v| v.to_str().ok()),
        Some(leader.addr())
    );
    assert!(!stored(&etcd, 4).await);

    // Reads carry the leader in a response header.
    let mut c = standby.client().await;
    let read = c.list_slots(pb::ListSlotsRequest {}).await.unwrap();
    assert_eq!(
        read.metadata()
            .get("topom-leader")
            .and_then(|v| v.to_str().ok()),
        Some(leader.addr())
    );
    assert!(
        leader
            .client()
            .await
            .list_slots(pb::ListSlotsRequest {})
            .await
            .unwrap()
            .metadata()
            .get("topom-leader")
            .is_none(),
        "the leader names nobody"
    );

    // WatchStats and GetStats need the leader too.
    let Err(e) = c.watch_stats(pb::WatchStatsRequest::default()).await else {
        panic!("WatchStats served on a standby");
    };
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());

    // Both overviews list every instance, the leader first.
    for t in [&leader, &standby] {
        let o = overview(t).await.unwrap();
        assert_eq!(o.leader_addr, leader.addr());
        let listed: Vec<_> = o
            .instances
            .iter()
            .map(|i| (i.addr.as_str(), i.role(), i.pid))
            .collect();
        assert_eq!(
            listed,
            [
                (leader.addr(), pb::InstanceRole::Leader, leader.pid()),
                (standby.addr(), pb::InstanceRole::Standby, standby.pid()),
            ]
        );
    }
    assert!(
        overview(&leader).await.unwrap().instances[0]
            .leader_since
            .is_some()
    );
}

#[tokio::test]
async fn a_killed_leader_is_replaced_within_the_lease() {
    let etcd = EtcdServer::start().await;
    let (mut leader, standby) = pair(&etcd).await;
    create_group(&leader, 1).await.unwrap();
    let old = leader.addr().to_owned();

    leader.kill9().await;
    let killed = Instant::now();
    common::wait_until(TTL * 4, "the standby to accept a mutation", async || {
        create_group(&standby, 2).await.is_ok()
    })
    .await;
    let gap = killed.elapsed();
    // The lease runs out within its TTL; the standby is watching the key.
    assert!(
        gap < TTL + Duration::from_secs(2),
        "took over after {gap:?}"
    );
    assert_eq!(group_ids(&standby).await, [1, 2]);
    assert_eq!(role(&standby).await, Some(pb::InstanceRole::Leader));
    let events = standby
        .client()
        .await
        .list_events(pb::ListEventsRequest {})
        .await
        .unwrap()
        .into_inner()
        .events;
    let elected = events
        .iter()
        .find(|e| e.kind() == pb::EventKind::LeaderElected)
        .expect("a leadership event");
    assert_eq!(elected.new_master, standby.addr());
    assert_eq!(elected.old_master, old);
    // The dead instance drops out of the list when its record's lease ends.
    common::wait_until(
        TTL * 4,
        "the killed instance to leave the list",
        async || {
            overview(&standby)
                .await
                .is_some_and(|o| o.instances.len() == 1)
        },
    )
    .await;
}

#[tokio::test]
async fn a_frozen_leader_is_fenced_then_becomes_a_standby() {
    let etcd = EtcdServer::start().await;
    let (leader, standby) = pair(&etcd).await;

    leader.signal("STOP");
    common::wait_until(
        TTL * 5,
        "the standby to take over from the frozen leader",
        async || create_group(&standby, 1).await.is_ok(),
    )
    .await;

    // A mutation queued at the frozen leader: when it wakes up it must not
    // land, whichever of its tasks runs first.
    let channel = leader.channel().await;
    let port: u16 = leader.addr().rsplit(':').next().unwrap().parse().unwrap();
    let before = common::ports::unread_bytes_at(port);
    let queued = tokio::spawn(async move {
        let mut c = pb::topom_client::TopomClient::new(channel);
        c.create_group(pb::CreateGroupRequest { group_id: 9 })
            .await
            .map(|_| ())
    });
    // The request (its HEADERS frame alone is over 100 bytes, more than the
    // connection preface that may arrive meanwhile) waits unread in the
    // frozen process's socket.
    common::wait_until(
        Duration::from_secs(10),
        "the mutation to be queued at the frozen leader",
        async || common::ports::unread_bytes_at(port) >= before + 100,
    )
    .await;
    leader.signal("CONT");
    let e = queued.await.unwrap().unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    assert!(!stored(&etcd, 9).await, "the deposed leader's write landed");

    // It notices, stops its tasks and stands by, naming the new leader.
    common::wait_until(TTL * 5, "the old leader to stand by", async || {
        overview(&leader).await.is_some_and(|o| {
            o.role() == pb::InstanceRole::Standby && o.leader_addr == standby.addr()
        })
    })
    .await;
    assert!(leader.log().contains("stepped down"), "{}", leader.log());
    let e = create_group(&leader, 10).await.unwrap_err();
    assert_eq!(
        e.metadata()
            .get("topom-leader")
            .and_then(|v| v.to_str().ok()),
        Some(standby.addr())
    );
    // One leader: the new one still writes.
    create_group(&standby, 11).await.unwrap();
    assert_eq!(group_ids(&standby).await, [1, 11]);
}

#[tokio::test]
async fn resign_hands_leadership_to_the_standby() {
    let etcd = EtcdServer::start().await;
    let (leader, standby) = pair(&etcd).await;

    // Only the leader can resign.
    let e = standby
        .client()
        .await
        .resign(pb::ResignRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(e.message().contains(leader.addr()), "{}", e.message());

    // A proxy's stream to the leader: it must end when the leader steps down,
    // naming the new one, so the proxy follows.
    let mut proxies = pb::proxy_control_client::ProxyControlClient::new(leader.channel().await);
    proxies
        .register_proxy(pb::RegisterProxyRequest {
            proxy: Some(pb::Proxy {
                token: "p1".into(),
                admin_addr: "127.0.0.1:1".into(),
                proxy_addr: "127.0.0.1:2".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let hello = pb::WatchSlotsRequest {
        kind: Some(pb::watch_slots_request::Kind::Hello(pb::WatchHello {
            token: "p1".into(),
            ..Default::default()
        })),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(hello).await.unwrap();
    let mut stream = proxies
        .watch_slots(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    assert!(
        stream.message().await.unwrap().is_some(),
        "the first update"
    );
    let mut rounds = leader
        .client()
        .await
        .watch_stats(pb::WatchStatsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(rounds.message().await.unwrap().is_some(), "the first round");

    let started = Instant::now();
    let r = leader
        .client()
        .await
        .resign(pb::ResignRequest {
            wait: Some(prost_types::Duration {
                seconds: 10,
                nanos: 0,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.leader_addr, standby.addr());
    let took = Duration::try_from(r.takeover.unwrap()).unwrap();
    assert!(took <= started.elapsed(), "{took:?}");
    // It may still be reloading the product (refused, marked safe to retry).
    common::wait_until(
        Duration::from_secs(5),
        "the new leader to accept a write",
        async || match create_group(&standby, 5).await {
            Ok(()) => true,
            Err(e) => {
                assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
                assert!(e.metadata().get("topom-role").is_some(), "{}", e.message());
                false
            }
        },
    )
    .await;
    assert_eq!(role(&leader).await, Some(pb::InstanceRole::Standby));
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.message()).await {
            Ok(Ok(Some(_))) => continue, // heartbeats sent before the step-down
            Ok(Err(status)) => break status,
            other => panic!("the stream did not end with a status: {other:?}"),
        }
    };
    let stats_ended = loop {
        match tokio::time::timeout(Duration::from_secs(5), rounds.message()).await {
            Ok(Ok(Some(_))) => continue, // rounds completed before the step-down
            Ok(Err(status)) => break status,
            other => panic!("WatchStats did not end with a status: {other:?}"),
        }
    };
    for e in [&ended, &stats_ended] {
        assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
        assert_eq!(
            e.metadata()
                .get("topom-leader")
                .and_then(|v| v.to_str().ok()),
            Some(standby.addr())
        );
    }
    drop(tx);
    let e = create_group(&leader, 6).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
}

#[tokio::test]
async fn a_frozen_etcd_deposes_the_leader_until_it_returns() {
    let etcd = EtcdServer::start().await;
    let (leader, standby) = pair(&etcd).await;

    etcd.pause();
    common::wait_until(
        Duration::from_secs(10),
        "the leader to stop serving writes",
        async || leader.health().await == Some(ServingStatus::NotServing as i32),
    )
    .await;
    let e = create_group(&leader, 1).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    // Past the lease: nobody may count itself leader on a lease etcd cannot confirm.
    tokio::time::sleep(TTL + Duration::from_secs(1)).await;
    assert_ne!(role(&standby).await, Some(pb::InstanceRole::Leader));

    etcd.resume();
    // Exactly one of them leads again and accepts the write.
    let t = [&leader, &standby];
    common::wait_until(
        Duration::from_secs(20),
        "an instance to lead again",
        async || {
            for x in t {
                if create_group(x, 2).await.is_ok() {
                    return true;
                }
            }
            false
        },
    )
    .await;
    common::wait_until(
        Duration::from_secs(10),
        "one leader and one standby",
        async || {
            let mut r = Vec::new();
            for x in t {
                r.push(role(x).await);
            }
            r.sort_by_key(|r| r.map(|r| r as i32));
            r == [
                Some(pb::InstanceRole::Leader),
                Some(pb::InstanceRole::Standby),
            ]
        },
    )
    .await;
    assert!(stored(&etcd, 2).await);
}
