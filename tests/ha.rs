//! Replication and high availability against real redis-server and Sentinel
//! processes: sync actions, promote without lost writes, Sentinel management and
//! master switches.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::redis::RedisServer;
use common::sentinel::SentinelServer;
use common::topom::{Client, Options, Topom, get_group};
use tonic::Code;
use topom::pb;

async fn group(c: &mut Client, gid: u32, servers: &[&RedisServer]) {
    c.create_group(pb::CreateGroupRequest { group_id: gid })
        .await
        .unwrap();
    for s in servers {
        c.add_group_server(pb::AddGroupServerRequest {
            group_id: gid,
            addr: s.addr(),
            datacenter: String::new(),
            no_sync: true,
        })
        .await
        .unwrap();
    }
}

/// Waits until `replica` follows `master` with its link up.
async fn wait_following(replica: &RedisServer, master: &RedisServer) {
    common::wait_until(
        Duration::from_secs(20),
        "the replica to follow its master",
        async || {
            let i = replica.replication().await;
            i.get("role").map(String::as_str) == Some("slave")
                && i.get("master_port") == Some(&master.port().to_string())
                && i.get("master_link_status").map(String::as_str) == Some("up")
        },
    )
    .await;
}

fn no_background_sync() -> Options {
    // The sync-action task runs every second; these tests drive it by hand, which
    // is what ProcessSyncAction is for. Steps are idempotent either way.
    Options::default()
}

#[tokio::test]
async fn sync_actions_make_the_group_follow_its_master() {
    let (m, r1) = (RedisServer::start().await, RedisServer::start().await);
    let stranger = RedisServer::start().await;
    // r2 follows a wrong master at first.
    let r2 = RedisServer::start_with(&[&format!("replicaof 127.0.0.1 {}", stranger.port())]).await;
    let t = Topom::start_with(no_background_sync()).await;
    let mut c = t.client().await;
    group(&mut c, 1, &[&m, &r1, &r2]).await;

    c.resync_group(pb::ResyncGroupRequest { group_id: 1 })
        .await
        .unwrap();
    let g = get_group(&mut c, 1).await;
    assert!(
        g.servers.iter().all(|s| s.action.is_some()),
        "every server queued: {g:?}"
    );

    // Drain the queue by hand (the background task may take some first).
    for _ in 0..3 {
        let step = c
            .process_sync_action(pb::ProcessSyncActionRequest {})
            .await
            .unwrap()
            .into_inner();
        if step.processed {
            assert_eq!(step.state, pb::SyncActionState::Synced as i32, "{step:?}");
        }
    }
    common::wait_until(
        Duration::from_secs(20),
        "every sync action synced",
        async || {
            let g = get_group(&mut c, 1).await;
            g.servers.iter().all(|s| {
                s.action
                    .as_ref()
                    .is_some_and(|a| a.state == pb::SyncActionState::Synced as i32)
            })
        },
    )
    .await;
    wait_following(&r1, &m).await;
    wait_following(&r2, &m).await; // re-pointed away from the stranger
    assert_eq!(m.replication().await["role"], "master");
    // CONFIG REWRITE persisted it.
    let conf = std::fs::read_to_string(r2.dir().join("redis.conf")).unwrap();
    assert!(
        conf.contains(&format!("replicaof 127.0.0.1 {}", m.port())),
        "{conf}"
    );
}

#[tokio::test]
async fn a_replica_of_a_dead_master_ends_synced_failed() {
    let (mut m, r) = (RedisServer::start().await, RedisServer::start().await);
    let t = Topom::start_with(Options {
        config: vec!["sync_link_timeout = \"1s\"".into()],
        ..Default::default()
    })
    .await;
    let mut c = t.client().await;
    group(&mut c, 1, &[&m, &r]).await;
    m.kill();
    c.create_sync_action(pb::CreateSyncActionRequest { addr: r.addr() })
        .await
        .unwrap();
    let mut failed = None;
    common::wait_until(
        Duration::from_secs(30),
        "the sync action to end synced_failed",
        async || {
            let a = get_group(&mut c, 1).await.servers[1]
                .action
                .clone()
                .unwrap();
            assert_ne!(
                a.state,
                pb::SyncActionState::Synced as i32,
                "a dead master cannot be synced"
            );
            if a.state == pb::SyncActionState::SyncedFailed as i32 {
                failed = Some(a);
                return true;
            }
            let _ = c.process_sync_action(pb::ProcessSyncActionRequest {}).await;
            false
        },
    )
    .await;
    let s = failed.unwrap();
    assert!(
        s.error.contains(&m.addr()) && s.error.contains("link"),
        "{}",
        s.error
    );
    assert!(
        s.error.to_lowercase().contains("connect"),
        "Redis's connect error is shown: {}",
        s.error
    );

    let e = c
        .create_sync_action(pb::CreateSyncActionRequest {
            addr: "127.0.0.1:9".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn promote_switches_without_losing_acknowledged_writes() {
    let m = RedisServer::start().await;
    let r1 = RedisServer::start_with(&[&format!("replicaof 127.0.0.1 {}", m.port())]).await;
    let r2 = RedisServer::start_with(&[&format!("replicaof 127.0.0.1 {}", m.port())]).await;
    wait_following(&r1, &m).await;
    let t = Topom::start().await;
    let mut c = t.client().await;
    group(&mut c, 1, &[&m, &r1, &r2]).await;

    let e = c
        .promote_server(pb::PromoteServerRequest {
            group_id: 1,
            addr: m.addr(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("already the master"),
        "{}",
        e.message()
    );
    let e = c
        .promote_server(pb::PromoteServerRequest {
            group_id: 1,
            addr: "127.0.0.1:9".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // A writer that records every acknowledged write; on READONLY (the old
    // master demoted) it moves to the new master, as a client would.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        let (old, new) = (m.url(), r1.url());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut url = old;
            let mut conn = redis::Client::open(url.clone())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(format!("k{i}"))
                    .arg(i)
                    .query_async(&mut conn)
                    .await;
                match r {
                    Ok(()) => {
                        acked.push(i);
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) if url != new => {
                        url = new.clone();
                        conn = redis::Client::open(url.clone())
                            .unwrap()
                            .get_multiplexed_async_connection()
                            .await
                            .unwrap();
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                }
                i += 1;
            }
            acked
        })
    };
    // Writes flow before the switch...
    let acked_before = common::wait_until(
        Duration::from_secs(10),
        "writes before the switch",
        async || written.load(Ordering::Relaxed) >= 200,
    );
    acked_before.await;
    let out = c
        .promote_server(pb::PromoteServerRequest {
            group_id: 1,
            addr: r1.addr(),
        })
        .await
        .unwrap()
        .into_inner();
    // ...and after it, on the new master.
    let at_switch = written.load(Ordering::Relaxed);
    common::wait_until(
        Duration::from_secs(10),
        "writes after the switch",
        async || written.load(Ordering::Relaxed) >= at_switch + 200,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let acked = writer.await.unwrap();
    assert!(
        acked.len() > 100,
        "the writer made progress: {}",
        acked.len()
    );

    let g = out.group.unwrap();
    let order: Vec<_> = g.servers.iter().map(|s| s.addr.clone()).collect();
    assert_eq!(
        order,
        [r1.addr(), r2.addr(), m.addr()],
        "[promoted, other replicas, old master]"
    );
    assert!(g.promoting.is_none());
    let pause = Duration::try_from(out.write_pause.unwrap()).unwrap();
    assert!(pause < Duration::from_secs(1), "{pause:?}");
    assert_eq!(r1.replication().await["role"], "master");
    wait_following(&m, &r1).await; // the old master was demoted

    // No acknowledged write is lost: every one is on the new master.
    let mut conn = redis::Client::open(r1.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut missing = BTreeSet::new();
    for chunk in acked.chunks(500) {
        let keys: Vec<String> = chunk.iter().map(|i| format!("k{i}")).collect();
        let vals: Vec<Option<u64>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
        for (i, v) in chunk.iter().zip(vals) {
            if v != Some(*i) {
                missing.insert(*i);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );

    // The other replica follows the new master (through the queued sync actions).
    wait_following(&r2, &r1).await;
    let events = c
        .list_events(pb::ListEventsRequest {})
        .await
        .unwrap()
        .into_inner()
        .events;
    let e = events.last().unwrap();
    assert_eq!(
        (e.kind, e.old_master.clone(), e.new_master.clone()),
        (pb::EventKind::Promote as i32, m.addr(), r1.addr())
    );
    assert!(e.detail.contains("write pause"), "{}", e.detail);
}

#[tokio::test]
async fn sentinels_are_managed_and_their_failover_is_followed() {
    let mut m = RedisServer::start().await;
    let r = RedisServer::start_with(&[&format!("replicaof 127.0.0.1 {}", m.port())]).await;
    wait_following(&r, &m).await;
    let sentinels = [
        SentinelServer::start(&[], &[]).await,
        SentinelServer::start(&[], &[]).await,
        SentinelServer::start(&[], &[]).await,
    ];
    let t = Topom::start_with(Options {
        config: vec![
            "sentinel_quorum = 2".into(),
            "sentinel_down_after = \"1s\"".into(),
            "sentinel_failover_timeout = \"5s\"".into(),
        ],
        ..Default::default()
    })
    .await;
    let mut c = t.client().await;
    group(&mut c, 1, &[&m, &r]).await;
    c.assign_slots(pb::AssignSlotsRequest {
        mappings: (0..1024)
            .map(|id| pb::SlotMapping {
                id,
                group_id: 1,
                action: None,
            })
            .collect(),
    })
    .await
    .unwrap();

    // Bad input first.
    let e = c
        .add_sentinel(pb::AddSentinelRequest {
            addr: "127.0.0.1:9".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    assert!(e.message().contains("127.0.0.1:9"), "{}", e.message());
    let e = c
        .add_sentinel(pb::AddSentinelRequest { addr: m.addr() })
        .await
        .unwrap_err();
    assert_ne!(e.code(), Code::Ok);
    let e = c
        .remove_sentinel(pb::RemoveSentinelRequest {
            addr: "127.0.0.1:9".into(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    for s in &sentinels {
        c.add_sentinel(pb::AddSentinelRequest { addr: s.addr() })
            .await
            .unwrap();
    }
    let e = c
        .add_sentinel(pb::AddSentinelRequest {
            addr: sentinels[0].addr(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    let listed = c
        .list_sentinels(pb::ListSentinelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .sentinel
        .unwrap();
    assert_eq!(listed.servers.len(), 3);
    assert!(listed.out_of_sync, "nothing is monitored before a resync");

    let s = c
        .resync_sentinels(pb::ResyncSentinelsRequest {})
        .await
        .unwrap()
        .into_inner()
        .sentinel
        .unwrap();
    assert!(!s.out_of_sync);
    for sen in &sentinels {
        let i = c
            .get_sentinel_info(pb::GetSentinelInfoRequest {
                addr: sen.addr(),
                monitored: true,
            })
            .await
            .unwrap()
            .into_inner();
        let g = &i.monitored["topom_test-1"];
        assert_eq!(format!("{}:{}", g.master["ip"], g.master["port"]), m.addr());
        assert_eq!(g.master["down-after-milliseconds"], "1000");
        assert_eq!(g.master["quorum"], "2");
    }
    // Wait until the sentinels know the replica and each other, then kill the master.
    common::wait_until(
        Duration::from_secs(30),
        "sentinels to discover the replica and each other",
        async || {
            let mut ok = true;
            for sen in &sentinels {
                let i = c
                    .get_sentinel_info(pb::GetSentinelInfoRequest {
                        addr: sen.addr(),
                        monitored: true,
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let g = &i.monitored["topom_test-1"];
                ok &= !g.replicas.is_empty()
                    && g.master.get("num-other-sentinels").map(String::as_str) == Some("2");
            }
            ok
        },
    )
    .await;
    let before = c
        .list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner()
        .revision;
    m.kill();
    common::wait_until(
        Duration::from_secs(60),
        "topom to follow the sentinels' failover",
        async || get_group(&mut c, 1).await.servers[0].addr == r.addr(),
    )
    .await;
    let after = c
        .list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(after.revision > before, "a new table revision is published");
    assert!(
        after.slots.iter().all(|s| s.backend_addr == r.addr()),
        "proxies are pointed at the new master"
    );
    let events = c
        .list_events(pb::ListEventsRequest {})
        .await
        .unwrap()
        .into_inner()
        .events;
    let e = events
        .iter()
        .find(|e| e.kind == pb::EventKind::MasterSwitch as i32)
        .expect("a master-switch event");
    assert_eq!(
        (e.group_id, e.old_master.clone(), e.new_master.clone()),
        (1, m.addr(), r.addr())
    );
    let stats = c
        .get_stats(pb::GetStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    assert_eq!(stats.sentinels.unwrap().masters[&1], r.addr());

    // Removing a sentinel drops this product's names from it.
    let s = c
        .remove_sentinel(pb::RemoveSentinelRequest {
            addr: sentinels[2].addr(),
            force: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.sentinel.unwrap().servers.len(), 2);
    let i = c
        .get_sentinel_info(pb::GetSentinelInfoRequest {
            addr: sentinels[2].addr(),
            monitored: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        i.monitored.is_empty(),
        "{:?}",
        i.monitored.keys().collect::<Vec<_>>()
    );
}
