//! Slot-migration throughput of [`PlainMigrator`] on real redis-server processes.
//!
//! Run: `cargo bench --bench migrate` (optionally `-- --keys 1000000 --batch 200
//! --scan 1000 --p1-slots 32 --load-rate 1000 --only p100,p100p`).
//!
//! Each run starts two fresh servers, loads `--keys` small keys (16-byte keys,
//! 16-byte values, pipelined `MSET`s) on A, and moves slots 0..511 (about half
//! the keys) to B. A pass reads A's whole keyspace with SCAN whatever slots it
//! serves, so what "parallel slots P" buys is fewer full scans:
//!
//! - `p1`, `p16`, `p100` (what the engine does with `migration_parallel_slots
//!   = P` and one source): rounds of `P` slots, each round passing until a pass
//!   finds none of its keys, so about `2 × ceil(512 / P)` scans (the last pass
//!   of a round only confirms). With `P = 1` that is 1,024 scans of up to a
//!   million keys, so only the first `--p1-slots` slots are moved and the rate
//!   is measured on those.
//! - `p100c`: the six rounds of 100 run at the same time: the same scans,
//!   overlapped (so about 512 slots are in flight).
//! - `p100p`: 100 new slots per pass, with the previous pass's slots riding
//!   along to be confirmed: `ceil(512 / P) + 1` scans. A scheduling the engine
//!   could adopt.
//! - `all`: the floor, one moving scan and one confirming scan.
//! - `p16load`, `p100load` (with `--load-rate N`, default 1,000): `p16` and
//!   `p100` again while a client does N GET/SET per second on A (keys of slots
//!   that stay), with its latencies: MIGRATE blocks the source while it runs.
//!
//! After each run: where A spent its time (`INFO commandstats`), and checks
//! that B holds exactly the keys moved and no key was lost.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::args::{arg, value};
use support::common::redis::RedisServer;
use support::figures::{at, sorted};
use topom::model::slot_of;
use topom::redis::{Conn, MigrateOptions, Migrator, PlainMigrator, SlotPass, Throttle, Value};

/// Slots moved from A to B.
const MOVED_SLOTS: u32 = 512;
/// The deadline of setup and load commands.
const T: Duration = Duration::from_secs(10);

fn key(i: u64) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

async fn connect(server: &RedisServer) -> Conn {
    Conn::connect(&server.addr(), T).await.expect("connect")
}

/// Loads `n` keys on `server` with pipelined MSETs; returns how many fall in
/// the slots below `MOVED_SLOTS`.
async fn load(server: &RedisServer, n: u64) -> u64 {
    const PAIRS: u64 = 500;
    const PER_TRIP: u64 = 20;
    let mut c = connect(server).await;
    let mut moving = 0;
    let mut i = 0;
    while i < n {
        let mut cmds: Vec<Vec<Vec<u8>>> = Vec::new();
        for _ in 0..PER_TRIP {
            if i >= n {
                break;
            }
            let mut cmd = vec![b"MSET".to_vec()];
            for j in i..(i + PAIRS).min(n) {
                let k = key(j);
                if slot_of(&k) < MOVED_SLOTS {
                    moving += 1;
                }
                cmd.push(k);
                cmd.push(format!("val:{j:012}").into_bytes());
            }
            i = (i + PAIRS).min(n);
            cmds.push(cmd);
        }
        let args: Vec<Vec<&[u8]>> = cmds
            .iter()
            .map(|c| c.iter().map(Vec::as_slice).collect())
            .collect();
        let refs: Vec<&[&[u8]]> = args.iter().map(Vec::as_slice).collect();
        for r in c.pipeline(&refs).await.expect("MSET") {
            assert_eq!(r, Value::Simple("OK".into()));
        }
    }
    moving
}

/// Seconds spent by `server` in each of `commands` (`INFO commandstats`).
async fn busy(server: &RedisServer, commands: &[&str]) -> Vec<f64> {
    let info = match connect(server)
        .await
        .call(&[b"INFO", b"commandstats"])
        .await
    {
        Ok(v) => v.to_text().unwrap_or_default(),
        Err(e) => panic!("INFO commandstats: {e}"),
    };
    let stats = topom::redis::parse_info(&info);
    commands
        .iter()
        .map(|c| {
            stats
                .get(&format!("cmdstat_{c}"))
                .and_then(|v| v.split(',').find_map(|f| f.strip_prefix("usec=")))
                .and_then(|u| u.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1e6
        })
        .collect()
}

async fn dbsize(server: &RedisServer) -> i64 {
    match connect(server).await.call(&[b"DBSIZE"]).await {
        Ok(Value::Int(n)) => n,
        other => panic!("DBSIZE: {other:?}"),
    }
}

/// A client doing `rate` GET/SET per second on A, on keys of slots that stay
/// there, until `stop`; returns each request's latency.
async fn client_load(addr: String, rate: u64, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let keys: Vec<Vec<u8>> = (0..)
        .map(key)
        .filter(|k| slot_of(k) >= MOVED_SLOTS)
        .take(1000)
        .collect();
    let mut c = Conn::connect(&addr, T).await.expect("connect");
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1) as u32);
    // A request held up by a MIGRATE is not followed by a burst of catch-up ones.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut latencies = Vec::new();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let k = &keys[n % keys.len()];
        let started = Instant::now();
        let r = if n.is_multiple_of(2) {
            c.call(&[b"GET", k]).await
        } else {
            c.call(&[b"SET", k, b"val:written-now!"]).await
        };
        r.expect("client request");
        latencies.push(started.elapsed());
        n += 1;
    }
    latencies
}

/// How the slots are grouped into passes.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Rounds of `P` slots, one after the other: what the engine does with
    /// `migration_parallel_slots = P` and one source.
    Rounds(usize),
    /// Rounds of `P` slots, all at the same time: the same scans, overlapped.
    Concurrent(usize),
    /// `P` new slots per pass; the slots moved by the previous pass ride along
    /// to be confirmed (found 0), instead of costing a scan of their own.
    Pipelined(usize),
}

/// What one run measured.
struct Outcome {
    moved: u64,
    bytes: u64,
    passes: u64,
    took: Duration,
}

/// One pass over `source` moving `slots` to `target`: (moved, bytes, the
/// slots in which it found keys).
async fn pass(
    m: &PlainMigrator,
    source: &str,
    target: &str,
    slots: &[u32],
    opts: &MigrateOptions,
) -> (u64, u64, Vec<u32>) {
    let moves: BTreeMap<u32, String> = slots.iter().map(|&s| (s, target.to_owned())).collect();
    let pass = m
        .migrate_pass(source, &moves, opts, &|_: &BTreeMap<u32, SlotPass>| {})
        .await
        .expect("migration pass");
    let found = pass.iter().filter(|(_, p)| p.found > 0).map(|(s, _)| *s);
    (
        pass.values().map(|p| p.moved).sum(),
        pass.values().map(|p| p.bytes).sum(),
        found.collect(),
    )
}

/// Passes for `slots` until one finds none of their keys: (moved, bytes,
/// passes).
async fn round(
    m: &PlainMigrator,
    source: &str,
    target: &str,
    slots: &[u32],
    opts: &MigrateOptions,
) -> (u64, u64, u64) {
    let (mut moved, mut bytes, mut passes) = (0, 0, 0);
    loop {
        let (m_, b_, found) = pass(m, source, target, slots, opts).await;
        (moved, bytes, passes) = (moved + m_, bytes + b_, passes + 1);
        if found.is_empty() {
            return (moved, bytes, passes);
        }
    }
}

/// [`Mode::Pipelined`]: (moved, bytes, passes).
async fn pipelined(
    m: &PlainMigrator,
    source: &str,
    target: &str,
    all: &[u32],
    p: usize,
    opts: &MigrateOptions,
) -> (u64, u64, u64) {
    let (mut moved, mut bytes, mut passes) = (0, 0, 0);
    let mut groups = all.chunks(p);
    // Slots whose last pass found keys: not done until a pass finds none.
    let mut unconfirmed: Vec<u32> = Vec::new();
    loop {
        let fresh = groups.next().unwrap_or_default();
        if fresh.is_empty() && unconfirmed.is_empty() {
            return (moved, bytes, passes);
        }
        let mut slots = std::mem::take(&mut unconfirmed);
        slots.extend_from_slice(fresh);
        let (m_, b_, found) = pass(m, source, target, &slots, opts).await;
        (moved, bytes, passes) = (moved + m_, bytes + b_, passes + 1);
        unconfirmed = found;
    }
}

async fn migrate(
    a: &RedisServer,
    b: &RedisServer,
    slots: u32,
    mode: Mode,
    opts: &MigrateOptions,
) -> Outcome {
    let m = PlainMigrator::new("");
    let all: Vec<u32> = (0..slots).collect();
    let (source, target) = (a.addr(), b.addr());
    let started = Instant::now();
    let results = match mode {
        Mode::Rounds(p) => {
            let mut results = Vec::new();
            for group in all.chunks(p) {
                results.push(round(&m, &source, &target, group, opts).await);
            }
            results
        }
        Mode::Concurrent(p) => {
            let rounds = all.chunks(p).map(|g| round(&m, &source, &target, g, opts));
            futures::future::join_all(rounds).await
        }
        Mode::Pipelined(p) => vec![pipelined(&m, &source, &target, &all, p, opts).await],
    };
    let took = started.elapsed();
    let sum = |f: fn(&(u64, u64, u64)) -> u64| results.iter().map(f).sum();
    Outcome {
        moved: sum(|r| r.0),
        bytes: sum(|r| r.1),
        passes: sum(|r| r.2),
        took,
    }
}

struct Plan {
    /// For `--only`.
    id: String,
    label: String,
    slots: u32,
    mode: Mode,
    load_rate: u64,
}

async fn run(plan: &Plan, keys: u64, opts: &MigrateOptions) {
    let (a, b) = tokio::join!(RedisServer::start(), RedisServer::start());
    let loading = Instant::now();
    let moving_total = load(&a, keys).await;
    let loaded_in = loading.elapsed();

    let stop = Arc::new(AtomicBool::new(false));
    let loader = (plan.load_rate > 0)
        .then(|| tokio::spawn(client_load(a.addr(), plan.load_rate, stop.clone())));
    // Let the client reach its pace before the move starts.
    if loader.is_some() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = migrate(&a, &b, plan.slots, plan.mode, opts).await;
    stop.store(true, Ordering::Relaxed);
    let latencies = match loader {
        Some(h) => Some(h.await.expect("client load task")),
        None => None,
    };

    // Everything of the moved slots is on B, the rest still on A.
    let (on_a, on_b) = (dbsize(&a).await as u64, dbsize(&b).await as u64);
    assert_eq!(
        on_b, out.moved,
        "{}: B has {on_b} keys, moved {}",
        plan.label, out.moved
    );
    assert_eq!(on_a + on_b, keys, "{}: keys lost", plan.label);
    if plan.slots == MOVED_SLOTS {
        assert_eq!(out.moved, moving_total, "{}", plan.label);
    }

    let secs = out.took.as_secs_f64();
    println!(
        "{:<34} {:>8} keys in {:>7.2} s ({:>4} passes) = {:>8.0} keys/s, {:>6.2} MB/s est. \
         ({:>5.2} MB/s of key+value bytes) [load {:.1} s]",
        plan.label,
        out.moved,
        secs,
        out.passes,
        out.moved as f64 / secs,
        out.bytes as f64 / secs / 1e6,
        (out.moved * 32) as f64 / secs / 1e6,
        loaded_in.as_secs_f64(),
    );
    let a_busy = busy(&a, &["scan", "memory|usage", "migrate", "exists", "del"]).await;
    let b_busy = busy(&b, &["restore"]).await;
    println!(
        "{:<34} server time: A scan {:.2} s, memory usage {:.2} s, migrate {:.2} s \
         (B restore {:.2} s)",
        "", a_busy[0], a_busy[1], a_busy[2], b_busy[0]
    );
    if let Some(l) = latencies {
        let l = sorted(l);
        println!(
            "{:<34} client: {} requests ({:.0}/s): p50 {:?}, p99 {:?}, max {:?}",
            "",
            l.len(),
            l.len() as f64 / (secs + 0.2),
            at(&l, 0.5),
            at(&l, 0.99),
            at(&l, 1.0),
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let keys = arg("--keys", 1_000_000);
    let p1_slots = arg("--p1-slots", 32).clamp(1, u64::from(MOVED_SLOTS)) as u32;
    let load_rate = arg("--load-rate", 1000);
    let opts = MigrateOptions {
        batch_keys: arg("--batch", 200) as usize,
        scan_count: arg("--scan", 1000) as usize,
        big_value_bytes: 1 << 20,
        timeout: Duration::from_secs(5),
        interval: Duration::ZERO,
        throttle: Throttle::default(),
    };
    println!(
        "PlainMigrator: {keys} keys (16 B keys, 16 B values), slots 0..{MOVED_SLOTS} A -> B, \
         MIGRATE batches of {}, SCAN COUNT {}",
        opts.batch_keys, opts.scan_count
    );
    let plan = |id: &str, label: String, slots: u32, mode: Mode, load_rate: u64| Plan {
        id: id.to_owned(),
        label,
        slots,
        mode,
        load_rate,
    };
    let all = MOVED_SLOTS;
    let mut plans = vec![
        plan(
            "p1",
            format!("parallel slots 1 (first {p1_slots} slots)"),
            p1_slots,
            Mode::Rounds(1),
            0,
        ),
        plan("p16", "parallel slots 16".into(), all, Mode::Rounds(16), 0),
        plan(
            "p100",
            "parallel slots 100".into(),
            all,
            Mode::Rounds(100),
            0,
        ),
        plan(
            "p100c",
            "parallel slots 100, 6 rounds at once".into(),
            all,
            Mode::Concurrent(100),
            0,
        ),
        plan(
            "p100p",
            "parallel slots 100, pipelined confirm".into(),
            all,
            Mode::Pipelined(100),
            0,
        ),
        plan(
            "all",
            "all 512 slots in one pass".into(),
            all,
            Mode::Rounds(all as usize),
            0,
        ),
    ];
    if load_rate > 0 {
        for p in [16, 100] {
            let label = format!("parallel slots {p} + {load_rate} req/s");
            plans.push(plan(
                &format!("p{p}load"),
                label,
                all,
                Mode::Rounds(p),
                load_rate,
            ));
        }
    }
    // `--only p100,all`: the plans with those ids.
    let only: Vec<String> = value("--only")
        .map(|ids| ids.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    for plan in plans
        .iter()
        .filter(|p| only.is_empty() || only.contains(&p.id))
    {
        run(plan, keys, &opts).await;
    }
}
