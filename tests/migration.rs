//! Proxies and slot migration against real redis-server processes, with proxies
//! simulated by a small router that speaks WatchSlots.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::proxy::SimProxy;
use common::redis::RedisServer;
use common::topom::{Client, Options, Topom};
use tonic::Code;
use topom::pb;

fn opts(extra: &[&str]) -> Options {
    let mut config = vec!["proxy_lease_ttl = \"3s\"".to_owned()];
    config.extend(extra.iter().map(|s| s.to_string()));
    Options {
        config,
        ..Default::default()
    }
}

async fn two_groups(c: &mut Client, a: &RedisServer, b: &RedisServer) {
    for (gid, r) in [(1, a), (2, b)] {
        c.create_group(pb::CreateGroupRequest { group_id: gid })
            .await
            .unwrap();
        c.add_group_server(pb::AddGroupServerRequest {
            group_id: gid,
            addr: r.addr(),
            datacenter: String::new(),
            no_sync: true,
        })
        .await
        .unwrap();
    }
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
}

async fn wait_moved(c: &mut Client, range: std::ops::Range<u32>, to: u32, within: Duration) {
    common::wait_until(within, "the slots to reach their target", async || {
        let t = c
            .list_slots(pb::ListSlotsRequest {})
            .await
            .unwrap()
            .into_inner();
        range.clone().all(|s| {
            let m = &t.mappings[s as usize];
            m.group_id == to && m.action.is_none()
        })
    })
    .await;
}

async fn keys_on(r: &RedisServer) -> BTreeMap<String, String> {
    // KEYS over 100,000 keys outlasts the client's default 500 ms response
    // timeout on a loaded machine (seen at load 12).
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
    let mut c = redis::Client::open(r.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for chunk in keys.chunks(1000) {
        let vals: Vec<String> = redis::cmd("MGET")
            .arg(chunk)
            .query_async(&mut c)
            .await
            .unwrap();
        out.extend(chunk.iter().cloned().zip(vals));
    }
    out
}

#[tokio::test]
async fn migrate_512_slots_while_proxies_write_and_read() {
    let (a, b) = (RedisServer::start().await, RedisServer::start().await);
    let t = Topom::start_with(opts(&[])).await;
    let mut c = t.client().await;
    two_groups(&mut c, &a, &b).await;
    let proxies = Arc::new(vec![
        SimProxy::start(t.addr(), "p1").await,
        SimProxy::start(t.addr(), "p2").await,
        SimProxy::start(t.addr(), "p3").await,
    ]);

    // 100,000 keys, written straight to the source (the proxies would put them
    // there too), then checked through a proxy.
    const N: usize = 100_000;
    {
        let mut conn = redis::Client::open(a.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        for chunk in (0..N).collect::<Vec<_>>().chunks(5000) {
            let mut p = redis::pipe();
            for i in chunk {
                p.cmd("SET")
                    .arg(format!("key:{i}"))
                    .arg(format!("v0-{i}"))
                    .ignore();
            }
            p.query_async::<()>(&mut conn).await.unwrap();
        }
    }
    assert_eq!(
        proxies[0].get("key:7").await.unwrap().as_deref(),
        Some("v0-7")
    );

    // Writers and readers through the proxies during the move; the last value
    // written per key is remembered.
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..3usize {
        let (proxies, stop) = (proxies.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut last: BTreeMap<String, String> = BTreeMap::new();
            let mut i = w;
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                // Each worker owns the keys whose index is w modulo 3, so the last
                // write per key is well defined.
                let key = format!("key:{}", w + 3 * ((n * 7919) % (N / 3)));
                let p = &proxies[i % 3];
                if i % 2 == 0 {
                    let v = format!("w{w}-{n}");
                    p.set(&key, &v)
                        .await
                        .unwrap_or_else(|e| panic!("SET {key} via {}: {e}", p.token));
                    last.insert(key, v);
                } else {
                    let got = p
                        .get(&key)
                        .await
                        .unwrap_or_else(|e| panic!("GET {key} via {}: {e}", p.token));
                    assert!(got.is_some(), "{key} vanished during the migration");
                }
                i += 3;
                n += 1;
            }
            last
        }));
    }
    let ids = c
        .create_slot_action_range(pb::CreateSlotActionRangeRequest {
            begin: 0,
            end: 511,
            target_group_id: 2,
        })
        .await
        .unwrap()
        .into_inner()
        .slot_ids;
    assert_eq!(ids.len(), 512);
    wait_moved(&mut c, 0..512, 2, Duration::from_secs(120)).await;
    stop.store(true, Ordering::Relaxed);
    let mut last = BTreeMap::new();
    for w in workers {
        last.extend(w.await.unwrap());
    }
    assert!(
        last.len() > 100,
        "the writers made progress: {}",
        last.len()
    );

    // Every key is in the right group, none lost, none left behind, last write wins.
    let (on_a, on_b) = (keys_on(&a).await, keys_on(&b).await);
    assert_eq!(on_a.len() + on_b.len(), N, "no key lost or duplicated");
    for k in on_a.keys() {
        assert!(
            topom::model::slot_of(k.as_bytes()) >= 512,
            "{k} left on the source"
        );
    }
    for k in on_b.keys() {
        assert!(
            topom::model::slot_of(k.as_bytes()) < 512,
            "{k} moved by mistake"
        );
    }
    for (k, v) in &last {
        let got = on_a.get(k).or_else(|| on_b.get(k));
        assert_eq!(got, Some(v), "last write of {k}");
    }
    // Every proxy serves the final table.
    let rev = c
        .list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner()
        .revision;
    for p in proxies.iter() {
        common::wait_until(
            Duration::from_secs(5),
            "proxies at the last revision",
            async || p.revision() >= rev,
        )
        .await;
        let view = p.table.lock().unwrap().slots[&3].clone();
        assert_eq!(
            (view.backend_addr, view.migrate_from),
            (b.addr(), String::new())
        );
    }
}

#[tokio::test]
async fn a_silent_proxy_blocks_the_barrier_only_until_its_lease_expires() {
    let (a, b) = (RedisServer::start().await, RedisServer::start().await);
    let t = Topom::start_with(opts(&["migration_barrier_timeout = \"1s\""])).await;
    let mut c = t.client().await;
    two_groups(&mut c, &a, &b).await;
    let good = SimProxy::start(t.addr(), "good").await;
    let silent = SimProxy::start(t.addr(), "silent").await;
    silent.hung.store(true, Ordering::Relaxed);
    c.set_slot_action_disabled(pb::SetSlotActionDisabledRequest { disabled: true })
        .await
        .unwrap();
    c.create_slot_action(pb::CreateSlotActionRequest {
        slot_id: 9,
        target_group_id: 2,
    })
    .await
    .unwrap();
    c.set_slot_action_disabled(pb::SetSlotActionDisabledRequest { disabled: false })
        .await
        .unwrap();

    let mut saw_laggard = false;
    common::wait_until(
        Duration::from_secs(30),
        "the slot to move despite the silent proxy",
        async || {
            if let Ok(r) = c.process_slot_action(pb::ProcessSlotActionRequest {}).await {
                for s in r.into_inner().steps {
                    if s.error.contains("silent") && s.error.contains("proxy silent") {
                        saw_laggard = true;
                    }
                }
            }
            let t = c
                .list_slots(pb::ListSlotsRequest {})
                .await
                .unwrap()
                .into_inner();
            t.mappings[9].group_id == 2 && t.mappings[9].action.is_none()
        },
    )
    .await;
    assert!(
        saw_laggard,
        "the barrier named the silent proxy while its lease was live"
    );
    assert!(
        !silent.serving(),
        "by then the silent proxy has fenced itself"
    );
    assert!(good.serving());
    let proxies = c
        .list_proxies(pb::ListProxiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .proxies;
    let st = |tok: &str| {
        proxies
            .iter()
            .find(|p| p.token == tok)
            .unwrap()
            .status
            .clone()
            .unwrap()
    };
    assert_eq!(st("silent").lease_state, pb::LeaseState::Expired as i32);
    assert_eq!(st("good").lease_state, pb::LeaseState::Live as i32);

    // The removed proxy's stream ends; unknown tokens are NOT_FOUND.
    let e = c
        .remove_proxy(pb::RemoveProxyRequest {
            token: "good".into(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    c.remove_proxy(pb::RemoveProxyRequest {
        token: "silent".into(),
        force: false,
    })
    .await
    .unwrap();
    let e = c
        .remove_proxy(pb::RemoveProxyRequest {
            token: "nope".into(),
            force: true,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn kill9_in_the_middle_of_a_migration_resumes_without_loss() {
    let (a, b) = (RedisServer::start().await, RedisServer::start().await);
    let mut t = Topom::start_with(opts(&[])).await;
    let mut c = t.client().await;
    two_groups(&mut c, &a, &b).await;
    const N: usize = 30_000;
    {
        let mut conn = redis::Client::open(a.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let mut p = redis::pipe();
        for i in 0..N {
            p.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
        }
        p.query_async::<()>(&mut conn).await.unwrap();
    }
    // Slow the move down so that the kill lands mid-way.
    c.set_slot_action_interval(pb::SetSlotActionIntervalRequest {
        interval_us: 20_000,
    })
    .await
    .unwrap();
    c.create_slot_action_range(pb::CreateSlotActionRangeRequest {
        begin: 0,
        end: 511,
        target_group_id: 2,
    })
    .await
    .unwrap();
    common::wait_until(Duration::from_secs(60), "some keys to move", async || {
        keys_on(&b).await.len() > 1000
    })
    .await;
    t.kill9().await;
    let t2 = Topom::start_with(Options {
        data_dir: Some(t.data_dir.clone()),
        ..opts(&[])
    })
    .await;
    let mut c = t2.client().await;
    c.set_slot_action_interval(pb::SetSlotActionIntervalRequest { interval_us: 0 })
        .await
        .unwrap();
    wait_moved(&mut c, 0..512, 2, Duration::from_secs(120)).await;
    let (on_a, on_b) = (keys_on(&a).await, keys_on(&b).await);
    assert_eq!(on_a.len() + on_b.len(), N, "no key lost or duplicated");
    assert!(
        on_a.keys()
            .all(|k| topom::model::slot_of(k.as_bytes()) >= 512)
    );
    assert!(
        on_b.keys()
            .all(|k| topom::model::slot_of(k.as_bytes()) < 512)
    );
}

#[tokio::test]
async fn a_reconnecting_proxy_gets_only_the_changes_or_a_reset() {
    let (a, b) = (RedisServer::start().await, RedisServer::start().await);
    let t = Topom::start_with(opts(&[])).await;
    let mut c = t.client().await;
    two_groups(&mut c, &a, &b).await;
    let p = SimProxy::start(t.addr(), "p").await;
    let (epoch, rev) = {
        let tb = p.table.lock().unwrap();
        assert!(tb.updates[0].1, "the first update is a full snapshot");
        assert_eq!(tb.slots.len(), 1024);
        (tb.epoch.clone(), tb.revision)
    };
    drop(p);
    c.assign_slots(pb::AssignSlotsRequest {
        mappings: vec![pb::SlotMapping {
            id: 5,
            group_id: 2,
            action: None,
        }],
    })
    .await
    .unwrap();
    let p = SimProxy::start_from(t.addr(), "p", &epoch, rev).await;
    {
        let tb = p.table.lock().unwrap();
        let (r, reset, n) = tb.updates[0];
        assert!(
            !reset && n == 1 && r > rev,
            "only the change: {:?}",
            tb.updates[0]
        );
        assert_eq!(tb.slots[&5].backend_addr, b.addr());
    }
    drop(p);
    // Too old (beyond the retained history) or another epoch: a reset.
    for _ in 0..130 {
        c.resync_group(pb::ResyncGroupRequest { group_id: 1 })
            .await
            .unwrap();
    }
    let p = SimProxy::start_from(t.addr(), "p", &epoch, rev).await;
    assert!(p.table.lock().unwrap().updates[0].1, "too old: reset");
    drop(p);
    let p = SimProxy::start_from(t.addr(), "p", "another-epoch", rev).await;
    assert!(p.table.lock().unwrap().updates[0].1, "other epoch: reset");
}

#[tokio::test]
async fn a_token_live_elsewhere_is_refused_and_stale_acks_are_ignored() {
    let t = Topom::start_with(opts(&[])).await;
    let p = SimProxy::start(t.addr(), "dup").await;
    assert!(p.serving());
    // Another process (another pid) claiming the same token while the first is
    // connected with a live lease.
    let mut client = topom::pb::proxy_control_client::ProxyControlClient::connect(format!(
        "http://{}",
        t.addr()
    ))
    .await
    .unwrap();
    let e = client
        .register_proxy(pb::RegisterProxyRequest {
            proxy: Some(pb::Proxy {
                token: "dup".into(),
                admin_addr: "127.0.0.1:9".into(),
                pid: 1,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{}", e.message());
    assert!(e.message().contains("dup"), "{}", e.message());
    let e = client
        .register_proxy(pb::RegisterProxyRequest {
            proxy: Some(pb::Proxy {
                token: String::new(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // An ack for a revision never sent changes nothing.
    let before = p.revision();
    let mut c = t.client().await;
    let applied = applied_of(&mut c, "dup").await;
    assert_eq!(applied, before);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::WatchSlotsRequest {
        kind: Some(topom::pb::watch_slots_request::Kind::Hello(
            pb::WatchHello {
                token: "dup".into(),
                epoch: String::new(),
                applied_revision: 0,
            },
        )),
    })
    .await
    .unwrap();
    let mut s = client
        .watch_slots(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    s.message().await.unwrap().unwrap();
    tx.send(pb::WatchSlotsRequest {
        kind: Some(topom::pb::watch_slots_request::Kind::Ack(pb::SlotsAck {
            revision: before + 1000,
            nonce: "forged".into(),
        })),
    })
    .await
    .unwrap();
    // A heartbeat after it: once it is answered, the forged ack was processed.
    round_trip(&tx, &mut s, 77).await;
    assert_eq!(
        applied_of(&mut c, "dup").await,
        applied,
        "a forged ack is ignored"
    );

    // An ack for the revision just sent, with a nonce that is not the one sent
    // with it, changes nothing either; the true nonce then counts.
    client
        .register_proxy(pb::RegisterProxyRequest {
            proxy: Some(pb::Proxy {
                token: "solo".into(),
                admin_addr: "127.0.0.1:10".into(),
                pid: 2,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(hello("solo")).await.unwrap();
    let mut s = client
        .watch_slots(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let Some(topom::pb::watch_slots_response::Kind::Update(update)) =
        s.message().await.unwrap().unwrap().kind
    else {
        panic!("the first message of a stream is an update");
    };
    assert!(update.revision > 0 && !update.nonce.is_empty());
    tx.send(ack(update.revision, &format!("{}-forged", update.nonce)))
        .await
        .unwrap();
    round_trip(&tx, &mut s, 78).await;
    assert_eq!(
        applied_of(&mut c, "solo").await,
        0,
        "an ack of the current revision with a wrong nonce is ignored"
    );
    tx.send(ack(update.revision, &update.nonce)).await.unwrap();
    round_trip(&tx, &mut s, 79).await;
    assert_eq!(applied_of(&mut c, "solo").await, update.revision);
}

fn hello(token: &str) -> pb::WatchSlotsRequest {
    pb::WatchSlotsRequest {
        kind: Some(topom::pb::watch_slots_request::Kind::Hello(
            pb::WatchHello {
                token: token.into(),
                epoch: String::new(),
                applied_revision: 0,
            },
        )),
    }
}

fn ack(revision: u64, nonce: &str) -> pb::WatchSlotsRequest {
    pb::WatchSlotsRequest {
        kind: Some(topom::pb::watch_slots_request::Kind::Ack(pb::SlotsAck {
            revision,
            nonce: nonce.into(),
        })),
    }
}

/// Sends heartbeat `seq` and waits for its answer: topom handles a stream's
/// messages in order, so everything sent before it has been processed.
async fn round_trip(
    tx: &tokio::sync::mpsc::Sender<pb::WatchSlotsRequest>,
    s: &mut tonic::Streaming<pb::WatchSlotsResponse>,
    seq: u64,
) {
    tx.send(pb::WatchSlotsRequest {
        kind: Some(topom::pb::watch_slots_request::Kind::Heartbeat(
            pb::ProxyHeartbeat { seq },
        )),
    })
    .await
    .unwrap();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), s.message())
            .await
            .expect("heartbeat answer")
            .unwrap()
            .unwrap();
        if let Some(topom::pb::watch_slots_response::Kind::Heartbeat(h)) = m.kind
            && h.ack_seq == seq
        {
            return;
        }
    }
}

/// The revision proxy `token` has applied, as ListProxies shows it.
async fn applied_of(c: &mut Client, token: &str) -> u64 {
    let listed = c
        .list_proxies(pb::ListProxiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .proxies;
    let p = listed.iter().find(|p| p.token == token).expect("listed");
    p.status.as_ref().unwrap().applied_revision
}

/// Progress in GetStats, slot by slot (only slots with an entry).
async fn progress(c: &mut Client) -> Vec<pb::SlotProgress> {
    c.get_stats(pb::GetStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats
        .and_then(|s| s.slot_action)
        .map(|s| s.progress)
        .unwrap_or_default()
}

fn signal(r: &RedisServer, sig: &str) {
    let pid = r.pid().expect("redis-server runs").to_string();
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

#[tokio::test]
async fn progress_moves_during_a_pass_and_a_frozen_source_shows_as_stalled() {
    let t = Topom::start_with(opts(&["migration_timeout = \"60s\""])).await;
    let mut c = t.client().await;
    let (a, b) = tokio::join!(RedisServer::start(), RedisServer::start());
    two_groups(&mut c, &a, &b).await;
    // 100,000 keys, about half of them in slots 0..511.
    let client = redis::Client::open(a.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for chunk in (0..100_000).collect::<Vec<u32>>().chunks(10_000) {
        let mut p = redis::pipe();
        for i in chunk {
            p.cmd("SET").arg(format!("key:{i}")).arg("v").ignore();
        }
        let () = p.query_async(&mut conn).await.unwrap();
    }
    c.create_slot_action_range(pb::CreateSlotActionRangeRequest {
        begin: 0,
        end: 511,
        target_group_id: 2,
    })
    .await
    .unwrap();

    // Keys moved show while the pass still runs (its ETA is still unknown), not
    // only once it has ended.
    common::wait_until(
        Duration::from_secs(60),
        "keys moved to show mid-pass",
        async || {
            progress(&mut c)
                .await
                .iter()
                .any(|p| p.keys_moved > 0 && p.eta_seconds < 0.0)
        },
    )
    .await;
    signal(&a, "STOP");
    let stalled = common::wait_until(
        Duration::from_secs(30),
        "the frozen source to show as stalled",
        async || {
            progress(&mut c)
                .await
                .iter()
                .any(|p| p.error.contains("stalled") && p.error.contains(&a.addr()))
        },
    )
    .await;
    let shown = progress(&mut c).await;
    let with_error = shown.iter().find(|p| p.error.contains("stalled")).unwrap();
    eprintln!("stalled after {stalled:?}: {}", with_error.error);
    signal(&a, "CONT");
    wait_moved(&mut c, 0..512, 2, Duration::from_secs(120)).await;
}
