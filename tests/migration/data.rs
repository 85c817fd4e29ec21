//! Migrations of real keys: none lost or left behind while proxies write and
//! read (throttled or not), none lost across a kill -9, and the progress GetStats shows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use topom::pb;

use crate::common::proxy::SimProxy;
use crate::common::redis::RedisServer;
use crate::common::topom::{Client, Options, Topom};
use crate::{common, keys_on, opts, two_groups, wait_moved};

#[tokio::test]
async fn migrate_512_slots_while_proxies_write_and_read() {
    migrate_half_while_proxies_write_and_read(100_000, &[]).await;
}

/// A throttled engine moves the same keys, later: nothing lost, last write
/// wins, proxies' contract unchanged (the keys they move on touch are theirs).
#[tokio::test]
async fn a_throttled_migration_under_load_loses_nothing() {
    let started = std::time::Instant::now();
    migrate_half_while_proxies_write_and_read(12_000, &["migration_max_keys_per_sec = 3000"]).await;
    eprintln!(
        "12,000 keys, half moved at 3000 keys/s: {:?}",
        started.elapsed()
    );
}

/// `total` keys on group 1, slots 0..512 (about half of them) moved to group 2
/// while three simulated proxies write and read; checks where every key ended
/// and that the last write won.
async fn migrate_half_while_proxies_write_and_read(total: usize, config: &[&str]) {
    let (a, b) = (RedisServer::start().await, RedisServer::start().await);
    let t = Topom::start_with(opts(config)).await;
    let mut c = t.client().await;
    two_groups(&mut c, &a, &b).await;
    let proxies = Arc::new(vec![
        SimProxy::start(t.addr(), "p1").await,
        SimProxy::start(t.addr(), "p2").await,
        SimProxy::start(t.addr(), "p3").await,
    ]);

    // The keys, written straight to the source (the proxies would put them
    // there too), then checked through a proxy.
    {
        let mut conn = redis::Client::open(a.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        for chunk in (0..total).collect::<Vec<_>>().chunks(5000) {
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
                let key = format!("key:{}", w + 3 * ((n * 7919) % (total / 3)));
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
    assert_eq!(on_a.len() + on_b.len(), total, "no key lost or duplicated");
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
