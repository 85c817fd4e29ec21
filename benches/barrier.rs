//! Barrier latency: time from a slot-table change to every connected proxy having
//! applied (and acknowledged) it, with 100 simulated proxies on loopback.
//!
//! Run: `cargo bench --bench barrier` (optionally `-- --proxies 100 --changes 200`).
//! Each change is one AssignSlots call flipping a slot between two groups; the
//! clock starts before the call and stops when the last proxy has applied the
//! new revision (the proxies run in this process, so both ends share a clock).

mod support;

use std::time::{Duration, Instant};

use support::args::arg;
use support::cluster::{revision, two_groups};
use support::common::proxy::SimProxy;
use support::common::redis::RedisServer;
use support::common::topom::{Options, Topom};
use support::common::wait_until;
use support::figures::{at, sorted};
use topom::pb;

#[tokio::main]
async fn main() {
    let n = arg("--proxies", 100) as usize;
    let changes = arg("--changes", 200);
    let (a, b) = (RedisServer::start().await, RedisServer::start().await);
    let t = Topom::start_with(Options {
        config: vec!["log_level = \"warn\"".into()],
        ..Default::default()
    })
    .await;
    let mut c = t.client().await;
    two_groups(&mut c, a.addr(), b.addr()).await;
    let mut proxies = Vec::with_capacity(n);
    for i in 0..n {
        proxies.push(SimProxy::start(t.addr(), &format!("bench-{i}")).await);
    }
    let mut lat = Vec::new();
    for k in 0..changes {
        let slot = (k % 1024) as u32;
        let group = if k % 2 == 0 { 2 } else { 1 };
        let t0 = Instant::now();
        let rev = c
            .assign_slots(pb::AssignSlotsRequest {
                mappings: vec![pb::SlotMapping {
                    id: slot,
                    group_id: group,
                    action: None,
                }],
            })
            .await
            .unwrap()
            .into_inner()
            .revision;
        let deadline = Instant::now() + Duration::from_secs(10);
        let last = loop {
            let times: Vec<Option<Instant>> = proxies
                .iter()
                .map(|p| p.table.lock().unwrap().applied_at.get(&rev).copied())
                .collect();
            if times.iter().all(Option::is_some) {
                break times.into_iter().flatten().max().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "revision {rev} not applied everywhere within 10 s"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        lat.push(last.duration_since(t0).as_secs_f64() * 1e3);
    }
    let lat = sorted(lat);
    let pct = |p: f64| at(&lat, p);
    println!("Barrier latency: {n} proxies, {changes} table changes (AssignSlots of one slot)");
    println!(
        "  change -> every proxy applied: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    // The same through topom's own barrier: ListProxies shows every ack.
    let rev = revision(&mut c).await;
    wait_until(
        Duration::from_secs(10),
        "every ack recorded by topom",
        async || {
            let ps = c
                .list_proxies(pb::ListProxiesRequest {})
                .await
                .unwrap()
                .into_inner()
                .proxies;
            ps.len() == n
                && ps
                    .iter()
                    .all(|p| p.status.as_ref().is_some_and(|s| s.applied_revision >= rev))
        },
    )
    .await;
    println!("  every proxy's ack of the last revision is recorded by topom (ListProxies)");
}
