//! Stats rounds, the per-target deadline and the WatchStats fan-out, against fake
//! INFO responders.
//!
//! Run: `cargo bench --bench stats` (`-- --quick` for a smoke run of a few seconds).
//!
//! The fake responders are benchmark-only: one current-thread tokio runtime on its
//! own thread in this process, listening on up to 1024 + 102 loopback ports and
//! speaking just enough RESP2 (`INFO [section]` with a ~4.7 KB Redis 7.2 INFO text,
//! `AUTH`, `PING`, anything else `-ERR unknown command`); a "silent" responder
//! accepts and never answers. The topology is written straight into a local store
//! (groups of 4: one master, three replicas that name it as their master), then the
//! release `topom` binary is started on it as a separate process, with
//! `stats_refresh_period = "1h"` when this bench drives the rounds itself.
//!
//! 1. Round time at 64, 256 and 1024 targets: RefreshRedisStats (1 s deadline),
//!    server-reported `elapsed`, client-observed RPC time, server CPU per round.
//! 2. 1024 targets of which 10 % are silent, 200 ms deadline: the round ends at the
//!    deadline; every silent target is `timeout`, every other has its fields.
//! 3. WatchStats fan-out: 256 targets refreshed every second, 1,000 unfiltered
//!    subscribers over 25 HTTP/2 connections; delivery delay (`now - finished_at`)
//!    and the server's RSS growth per subscriber. Subscribers decode only `round`
//!    and `finished_at` (prost skips the rest).
//!    3f. The same with `fields = ["used_memory"]`: small messages, so the cost of
//!    the fan-out itself (each filtered subscriber gets its own encoding).
//!
//! `-- --only 1|2|3|3f` runs one part.
//!
//! The bench clients run on the main thread (a current-thread runtime), so this
//! process uses two busy threads next to topom's two workers: on a 2-core machine
//! they compete. The CPU of the responders and of the clients is printed with each
//! figure, and so is the CPU other processes on the machine used meanwhile, so the
//! distortion can be judged.

#[path = "../support/mod.rs"]
mod support;

mod calls;
mod fan_out;
mod rounds;
mod silent;

use std::time::Duration;

use support::args::{flag, value};
use support::cpu_meter::CpuMeter;
use support::fake_redis::fleet::{SERVERS_PER_GROUP, start_targets};
use support::fake_redis::responders::Responders;
use support::procfs::{nofile_soft, stat_of, thread_id, thread_stat, ticks_per_sec};
use support::topom::{Seeded, group};
use topom::pb;
use topom::store::StoreBatch;

const PRODUCT: &str = "bench";

/// What a run does; `--quick` shrinks everything for a smoke run.
struct Plan {
    round_sizes: Vec<usize>,
    warmup: usize,
    rounds: usize,
    silent_targets: usize,
    silent_rounds: usize,
    deadline: Duration,
    watch_targets: usize,
    subscribers: usize,
    connections: usize,
    watch_period: Duration,
    watch_rounds: u64,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                round_sizes: vec![16, 64],
                warmup: 2,
                rounds: 10,
                silent_targets: 128,
                silent_rounds: 5,
                deadline: Duration::from_millis(200),
                watch_targets: 64,
                subscribers: 100,
                connections: 5,
                watch_period: Duration::from_millis(500),
                watch_rounds: 3,
            }
        } else {
            Plan {
                round_sizes: vec![64, 256, 1024],
                warmup: 3,
                rounds: 50,
                silent_targets: 1024,
                silent_rounds: 30,
                deadline: Duration::from_millis(200),
                watch_targets: 256,
                subscribers: 1000,
                connections: 25,
                watch_period: Duration::from_secs(1),
                watch_rounds: 10,
            }
        }
    }

    fn live_needed(&self) -> usize {
        let max = self.round_sizes.iter().copied().max().unwrap_or(0);
        max.max(self.silent_targets).max(self.watch_targets)
    }
}

/// The release topom on a store holding `groups` (the first address of each its
/// master), refreshing stats every `period`.
async fn start_topom(groups: &[Vec<String>], period: &str) -> Seeded {
    let mut batch = StoreBatch::default();
    for (i, addrs) in groups.iter().enumerate() {
        batch.put_group(&group(i as u32 + 1, addrs));
    }
    let config = vec![format!("stats_refresh_period = \"{period}\"")];
    Seeded::start(PRODUCT, config, batch).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let quick = flag("--quick");
    // `--only 1|2|3|3f`: one part (3f = the fan-out with filtered, small messages).
    let only = value("--only");
    let plan = Plan::new(quick);
    let live = plan.live_needed();
    // Targets 9, 19, 29, ... of the silent run.
    let silent = plan.silent_targets / 10;
    // Listeners + their accepted connections here; topom's sockets to them, and its
    // gRPC connections, count against the same soft limit (it inherits it).
    let need = 2 * (live + silent) + plan.connections + 256;
    let soft = nofile_soft();
    if let Some(soft) = soft
        && soft < need as u64
    {
        eprintln!(
            "the soft open-files limit is {soft}, this run needs about {need}: run `ulimit -n {}` in this shell first",
            need.next_power_of_two().max(4096)
        );
        std::process::exit(2);
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let hz = ticks_per_sec();
    let clients_tid = thread_id().unwrap_or(0);
    let responders = Responders::start();
    let targets = start_targets(&responders, live, silent);
    let meter_for = |pid: u32| CpuMeter {
        server: stat_of(pid),
        responders: thread_stat(responders.tid),
        clients: thread_stat(clients_tid),
        hz,
        cores: cores as f64,
    };

    println!(
        "stats benchmark{}: {cores} cores; topom = release binary, separate process, default runtime ({cores} workers)",
        if quick { " (--quick)" } else { "" }
    );
    println!(
        "  fake INFO responders: {live} live + {silent} silent loopback ports, one current-thread tokio runtime on its own thread in this process"
    );
    println!(
        "  INFO reply: {}..{} bytes, >= {} fields, sections Server Clients Memory Persistence Stats Replication CPU Keyspace (Redis 7.2); groups of {SERVERS_PER_GROUP} (1 master + 3 replicas)",
        targets.info_bytes.0, targets.info_bytes.1, targets.info_fields
    );
    println!(
        "  bench clients: one current-thread runtime (main thread). On {cores} cores the responders and the clients share the CPU with topom: their CPU is printed next to each figure"
    );
    println!(
        "  open files: soft limit {}, this run needs about {need}",
        soft.map_or("unknown".to_owned(), |s| s.to_string())
    );

    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if run("1") {
        rounds::round_time(&plan, &targets, meter_for).await;
    }
    if run("2") {
        silent::silent_round(&plan, &targets, meter_for).await;
    }
    if run("3") {
        fan_out::fan_out(&plan, &targets, meter_for, pb::WatchStatsRequest::default()).await;
    }
    if run("3f") {
        // The same fan-out with small messages: the cost of the mechanism itself.
        let small = pb::WatchStatsRequest {
            fields: vec!["used_memory".into()],
            ..Default::default()
        };
        fan_out::fan_out(&plan, &targets, meter_for, small).await;
    }
    drop(responders);
}
