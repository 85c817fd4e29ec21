//! End-to-end migration throughput through topom's slot-action engine on plain
//! Redis: 1,000,000 small keys on group 1, slots 0..511 queued to group 2 with
//! CreateSlotActionRange, timed until every slot belongs to group 2, for several
//! `migration_parallel_slots`, with and without a light client load.
//!
//! Run: `cargo bench --bench engine` (optionally `-- --keys 1000000 --p1-slots 16`).
//! Parallel slots 1 moves only the first `--p1-slots` slots (one full scan of
//! the source per slot would take many minutes for all 512).
//!
//! Before and after in one run: `--topom PATH` (another build of the `topom`
//! binary, e.g. the branch point's `target/release/topom` copied aside) runs
//! each figure with that binary too, alternating, `--runs N` times each
//! (default 1). `--only-100 1` keeps parallel slots 100 without load. On
//! codis-server: `TOPOM_TEST_REDIS_SERVER=/path/to/codis-server` (the servers'
//! binary; topom then drives `SLOTSMGRTTAGSLOT-ASYNC`). Each figure is followed
//! by the machine's `/proc/loadavg` at its end.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::args::{arg, value};
use support::cluster::two_groups;
use support::common::redis::RedisServer;
use support::common::topom::{Options, Topom};
use topom::model::slot_of;
use topom::pb;

async fn load(r: &RedisServer, n: u64) {
    let mut c = redis::Client::open(r.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut i = 0;
    while i < n {
        let mut p = redis::pipe();
        for _ in 0..20 {
            let mut cmd = redis::cmd("MSET");
            for j in i..(i + 500).min(n) {
                cmd.arg(format!("key:{j:012}")).arg(format!("val:{j:012}"));
            }
            p.add_command(cmd).ignore();
            i = (i + 500).min(n);
            if i >= n {
                break;
            }
        }
        p.query_async::<()>(&mut c).await.unwrap();
    }
}

/// Which topom binary a run starts.
#[derive(Clone)]
struct Build {
    label: &'static str,
    /// `None`: this build's.
    binary: Option<PathBuf>,
}

async fn run(build: &Build, keys: u64, parallel: u64, slots: u32, load_rps: u64) {
    let (a, b) = (RedisServer::start().await, RedisServer::start().await);
    load(&a, keys).await;
    let moving = (0..keys)
        .filter(|j| slot_of(format!("key:{j:012}").as_bytes()) < slots)
        .count();
    let t = Topom::start_with(Options {
        config: vec![
            format!("migration_parallel_slots = {parallel}"),
            "log_level = \"warn\"".into(),
        ],
        binary: build.binary.clone(),
        ..Default::default()
    })
    .await;
    let mut c = t.client().await;
    two_groups(&mut c, a.addr(), b.addr()).await;
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let loader = (load_rps > 0).then(|| {
        let (stop, served, url) = (stop.clone(), served.clone(), a.url());
        tokio::spawn(async move {
            // Keys of slots that stay on group 1, at a steady rate.
            let mut conn = redis::Client::open(url)
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let every = Duration::from_secs_f64(1.0 / load_rps as f64);
            let mut j = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let k = format!("key:{j:012}");
                j = (j + 7919) % keys;
                if slot_of(k.as_bytes()) < 512 {
                    continue;
                }
                let _: redis::RedisResult<Option<String>> =
                    redis::cmd("GET").arg(&k).query_async(&mut conn).await;
                served.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(every).await;
            }
        })
    });
    let t0 = Instant::now();
    c.create_slot_action_range(pb::CreateSlotActionRangeRequest {
        begin: 0,
        end: slots - 1,
        target_group_id: 2,
    })
    .await
    .unwrap();
    // When no slot of the move is still being prepared: what follows is data.
    let mut prepared_in = None;
    loop {
        let tb = c
            .list_slots(pb::ListSlotsRequest {})
            .await
            .unwrap()
            .into_inner();
        let preparing = |m: &pb::SlotMapping| {
            m.action
                .as_ref()
                .is_some_and(|a| a.state <= pb::SlotActionState::Prepared as i32 && m.group_id != 2)
        };
        if prepared_in.is_none() && !tb.mappings[..slots as usize].iter().any(preparing) {
            prepared_in = Some(t0.elapsed().as_secs_f64());
        }
        if (0..slots as usize)
            .all(|s| tb.mappings[s].group_id == 2 && tb.mappings[s].action.is_none())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    if let Some(l) = loader {
        let _ = l.await;
    }
    // ~32 bytes of key and value per key.
    let mb = moving as f64 * 32.0 / 1e6;
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "[{}] parallel slots {parallel:>3}{}: {moving} keys of {slots} slots in {took:.2} s = {:.0} keys/s, {:.2} MB/s (key+value bytes){}",
        build.label,
        if load_rps > 0 { " + load" } else { "" },
        moving as f64 / took,
        mb / took,
        if load_rps > 0 {
            format!("; client served {} GETs", served.load(Ordering::Relaxed))
        } else {
            String::new()
        }
    );
    let scans = scan_calls(&a).await;
    println!(
        "    every slot past prepared after {:.2} s; source: {scans} SCAN calls (a full scan \
         is about {} with COUNT 1000); loadavg at the end: {}",
        prepared_in.unwrap_or(took),
        keys.div_ceil(1000),
        loadavg.trim()
    );
}

/// `SCAN` calls served by `r` (`INFO commandstats`), which counts full passes.
async fn scan_calls(r: &RedisServer) -> u64 {
    let mut c = redis::Client::open(r.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_scan:calls="))
        .and_then(|v| v.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let keys = arg("--keys", 1_000_000);
    let p1 = arg("--p1-slots", 16) as u32;
    println!(
        "Slot migration through topom's engine: {keys} keys of 32 B (key+value), slots 0..511 from group 1 to group 2"
    );
    if let Ok(server) = std::env::var("TOPOM_TEST_REDIS_SERVER") {
        println!("servers: {server}");
    }
    let mut builds = vec![Build {
        label: "this build",
        binary: None,
    }];
    if let Some(other) = value("--topom") {
        builds.push(Build {
            label: "--topom",
            binary: Some(other.into()),
        });
    }
    let mut runs: Vec<(u64, u32, u64)> = Vec::new();
    if arg("--only-100", 0) == 0 {
        runs.extend([(1, p1, 0), (16, 512, 0)]);
    }
    runs.push((100, 512, 0));
    if arg("--only-100", 0) == 0 {
        runs.push((100, 512, 1000));
    }
    for (parallel, slots, load_rps) in runs {
        for _ in 0..arg("--runs", 1) {
            for build in &builds {
                run(build, keys, parallel, slots, load_rps).await;
            }
        }
    }
}
