//! High-availability timings on real redis-server and Sentinel processes.
//!
//! Run: `cargo bench --bench ha` (optionally `-- --failovers 5 --promotes 5 --rate 10000`).
//!
//! 1. Sentinel failover: kill a group's master by pid and split the time until the
//!    new table revision is published into the Sentinel part (kill → the
//!    majority's `+switch-master`, observed by the bench's own subscriptions) and
//!    topom's part (the majority's `+switch-master` → published, measured inside
//!    topom and reported in the event; also observed from outside by polling
//!    ListSlots every millisecond).
//! 2. Planned promote under a steady write load: the write pause topom reports,
//!    and the longest write latency the writer saw.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::args::arg;
use support::cluster::{add_group, assign_all, revision};
use support::common::redis::RedisServer;
use support::common::sentinel::SentinelServer;
use support::common::topom::{Client, Options, Topom, get_group};
use support::common::wait_until;
use support::figures::{at, sorted};
use topom::pb;
use topom::redis::{HaAdmin, PooledHa};

/// `p50 .. ms, max .. ms` of `v`, each with `decimals` decimals.
fn p50_max(v: Vec<f64>, decimals: usize) -> String {
    let v = sorted(v);
    format!(
        "p50 {:.decimals$} ms, max {:.decimals$} ms",
        at(&v, 0.5),
        at(&v, 1.0)
    )
}

async fn master_of(c: &mut Client) -> String {
    get_group(c, 1).await.servers[0].addr.clone()
}

async fn wait_linked(replica: &RedisServer) {
    let ha = PooledHa::new("");
    wait_until(Duration::from_secs(30), "replica link up", async || {
        ha.replication(&replica.addr(), Duration::from_secs(1))
            .await
            .is_ok_and(|i| i.get("master_link_status").map(String::as_str) == Some("up"))
    })
    .await;
}

async fn failover_once() -> (f64, f64, f64) {
    let mut m = RedisServer::start().await;
    let r = RedisServer::start_with(&[&format!("replicaof 127.0.0.1 {}", m.port())]).await;
    wait_linked(&r).await;
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
    add_group(&mut c, 1, &[m.addr(), r.addr()]).await;
    assign_all(&mut c, 1).await;
    for s in &sentinels {
        c.add_sentinel(pb::AddSentinelRequest { addr: s.addr() })
            .await
            .unwrap();
    }
    c.resync_sentinels(pb::ResyncSentinelsRequest {})
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "sentinels to know the replica and each other",
        async || {
            let mut ok = true;
            for s in &sentinels {
                let i = c
                    .get_sentinel_info(pb::GetSentinelInfoRequest {
                        addr: s.addr(),
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

    // The bench's own view of the announcements.
    let ha = Arc::new(PooledHa::new(""));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for s in &sentinels {
        let mut sub = ha
            .subscribe_switch_master(&s.addr(), Duration::from_secs(5))
            .await
            .unwrap();
        let tx = tx.clone();
        tokio::spawn(async move {
            if sub.next().await.is_ok() {
                let _ = tx.send(Instant::now());
            }
        });
    }
    let before = revision(&mut c).await;
    let killed = Instant::now();
    m.kill();
    let _first = rx.recv().await.unwrap();
    let majority = rx.recv().await.unwrap();
    // Observe the publication from outside.
    let published = loop {
        let rev = revision(&mut c).await;
        if rev > before && master_of(&mut c).await == r.addr() {
            break Instant::now();
        }
        if killed.elapsed() > Duration::from_secs(60) {
            panic!("no failover within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let events = c
        .list_events(pb::ListEventsRequest {})
        .await
        .unwrap()
        .into_inner()
        .events;
    let detail = &events
        .iter()
        .find(|e| e.kind == pb::EventKind::MasterSwitch as i32)
        .unwrap()
        .detail;
    let inside: f64 = detail
        .split("published ")
        .nth(1)
        .and_then(|s| s.split(" ms").next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    let sentinel_part = majority.duration_since(killed).as_secs_f64() * 1e3;
    let outside = published.saturating_duration_since(majority).as_secs_f64() * 1e3;
    (sentinel_part, inside, outside)
}

async fn promote_once(rate: u64) -> (f64, f64, usize) {
    let m = RedisServer::start().await;
    let r = RedisServer::start_with(&[&format!("replicaof 127.0.0.1 {}", m.port())]).await;
    wait_linked(&r).await;
    let t = Topom::start().await;
    let mut c = t.client().await;
    add_group(&mut c, 1, &[m.addr(), r.addr()]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let (old, new) = (m.url(), r.url());
        tokio::spawn(async move {
            let mut conn = redis::Client::open(old)
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let mut switched = false;
            let mut worst = Duration::ZERO;
            let mut writes = 0usize;
            let period = Duration::from_secs_f64(1.0 / rate as f64);
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                next += period;
                let t0 = Instant::now();
                let res: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(format!("k{writes}"))
                    .arg(writes)
                    .query_async(&mut conn)
                    .await;
                match res {
                    Ok(()) => {
                        worst = worst.max(t0.elapsed());
                        writes += 1;
                    }
                    Err(_) if !switched => {
                        switched = true;
                        conn = redis::Client::open(new.clone())
                            .unwrap()
                            .get_multiplexed_async_connection()
                            .await
                            .unwrap();
                    }
                    Err(_) => {}
                }
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    tokio::time::sleep(d).await;
                }
            }
            (worst, writes)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = c
        .promote_server(pb::PromoteServerRequest {
            group_id: 1,
            addr: r.addr(),
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (worst, writes) = writer.await.unwrap();
    let pause = Duration::try_from(out.write_pause.unwrap()).unwrap();
    (pause.as_secs_f64() * 1e3, worst.as_secs_f64() * 1e3, writes)
}

#[tokio::main]
async fn main() {
    let failovers = arg("--failovers", 5);
    let promotes = arg("--promotes", 5);
    let rate = arg("--rate", 10_000);

    let (mut sp, mut tp, mut op) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..failovers {
        let (s, t, o) = failover_once().await;
        println!(
            "failover {i}: sentinel part {s:.1} ms, topom part {t:.3} ms (inside), {o:.1} ms (observed by polling ListSlots)"
        );
        sp.push(s);
        tp.push(t);
        op.push(o);
    }
    if failovers > 0 {
        println!("Sentinel failover ({failovers} runs, 3 sentinels, down-after 1 s):");
        println!(
            "  sentinel part (kill -> majority +switch-master): {}",
            p50_max(sp, 0)
        );
        let tp = sorted(tp);
        println!(
            "  topom part (majority +switch-master -> revision published): p50 {:.3} ms, p99 {:.3} ms",
            at(&tp, 0.5),
            at(&tp, 0.99)
        );
        println!(
            "  topom part observed from outside (1 ms polling): {}",
            p50_max(op, 1)
        );
    }

    let (mut pauses, mut worst) = (Vec::new(), Vec::new());
    for i in 0..promotes {
        let (p, w, n) = promote_once(rate).await;
        println!(
            "promote {i}: write pause {p:.1} ms, worst write latency seen by the writer {w:.1} ms, {n} writes"
        );
        pauses.push(p);
        worst.push(w);
    }
    if promotes > 0 {
        println!("Planned promote under {rate} writes/s ({promotes} runs):");
        println!("  write pause: {}", p50_max(pauses, 1));
        println!("  worst write latency: {}", p50_max(worst, 1));
    }
}
