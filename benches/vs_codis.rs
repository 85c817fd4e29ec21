//! Side by side on one topology of real servers: 32 groups of master + replica
//! (64 redis-server processes, or codis-server with `--servers codis-server`),
//! every slot assigned. Each *side* is a control plane over that topology: a
//! topom binary (`--topom-bin PATH`, repeatable, so the binary of the branch
//! point and the new one run in one sitting) or the Codis 3.2 dashboard
//! (`--codis`). Sides run in turn, `--runs N` times each (default 3), and the
//! table prints the median of the runs, the ratio of each side to the first, and
//! the machine's load average at the end of each window.
//!
//! Run through `scripts/bench-vs-codis`, which builds what is needed.
//!
//! Both sides refresh stats every second on their own (topom with
//! `stats_refresh_period = "1s"`, the dashboard's fixed period), as in use.
//! Workloads (a row each, in `workloads`; a migration row is one more entry in
//! `WORKLOADS`):
//! - `idle rss`: the control plane's RSS after the set-up and one round.
//! - `ListSlots` / `GetStats` (Codis `GET /topom/slots` / `GET /topom/stats`) by
//!   8 callers for `--seconds` (default 5): calls per second and p99. Answers
//!   are taken as bytes, never decoded.
//! - `round span`: first to last INFO arrival of a round as the servers record
//!   it (`MONITOR` on every server, see `monitor`), median over ~7 rounds: one
//!   method for both sides, since the dashboard reports no round times.
//! - `period, one server SIGSTOPped`: a master stopped (it accepts, never
//!   answers), the median time between round starts on the other servers.

#[path = "support/mod.rs"]
mod support;

#[path = "vs_codis/codis.rs"]
mod codis;
#[path = "vs_codis/monitor.rs"]
mod monitor;
#[path = "vs_codis/workloads.rs"]
mod workloads;

use std::path::PathBuf;
use std::time::Duration;

use support::common::redis::RedisServer;
use support::topom::{Seeded, group};
use topom::model::SlotMapping;
use topom::pb;
use topom::store::StoreBatch;

const PRODUCT: &str = "bench";
const GROUPS: u32 = 32;

/// One control plane under test.
#[derive(Clone)]
enum Side {
    /// A topom binary, named for the table.
    Topom { name: String, bin: PathBuf },
    /// The Codis 3.2 dashboard of `/work/shared/codis/bin`.
    Codis,
}

impl Side {
    fn name(&self) -> &str {
        match self {
            Side::Topom { name, .. } => name,
            Side::Codis => "codis-dashboard 3.2",
        }
    }
}

/// A running control plane over the topology.
enum Running {
    Topom(Box<Seeded>),
    Codis(codis::Dashboard),
}

impl Running {
    fn pid(&self) -> u32 {
        match self {
            Running::Topom(t) => t.pid(),
            Running::Codis(d) => d.pid(),
        }
    }
}

/// The figures of one workload on one side in one run.
struct Figure {
    value: f64,
    /// Extra text (p99, sizes).
    note: String,
    /// `/proc/loadavg` (1 min) at the end of the window.
    load: f64,
}

type Workload =
    for<'a> fn(&'a Running, &'a Args) -> std::pin::Pin<Box<dyn Future<Output = Figure> + 'a>>;

/// Name, unit, higher-is-better, the workload.
const WORKLOADS: [(&str, &str, bool, Workload); 5] = [
    ("idle rss after set-up", "MB", false, |r, a| {
        Box::pin(workloads::idle_rss(r, a))
    }),
    ("ListSlots, 8 callers", "calls/s", true, |r, a| {
        Box::pin(workloads::list_slots(r, a))
    }),
    ("GetStats, 8 callers", "calls/s", true, |r, a| {
        Box::pin(workloads::get_stats(r, a))
    }),
    ("round span, 64 servers", "ms", false, |r, a| {
        Box::pin(workloads::round_span(r, a))
    }),
    ("period, one server SIGSTOPped", "ms", false, |r, a| {
        Box::pin(workloads::stopped_period(r, a))
    }),
];

struct Args {
    sides: Vec<Side>,
    runs: usize,
    seconds: Duration,
    /// `codis-server` or `redis-server`: what the 64 servers run.
    server_bin: String,
    /// Every server of the topology (filled once they run).
    server_addrs: Vec<String>,
    /// The master the SIGSTOP row stops, and its pid.
    stopped_addr: String,
    stopped_pid: u32,
}

fn args() -> Args {
    let mut sides = Vec::new();
    if support::args::flag("--codis") {
        sides.push(Side::Codis);
    }
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        if argv[i] == "--topom-bin" {
            let spec = argv.get(i + 1).expect("--topom-bin NAME=PATH");
            let (name, bin) = spec.split_once('=').unwrap_or(("topom", spec));
            sides.push(Side::Topom {
                name: name.to_owned(),
                bin: PathBuf::from(bin),
            });
            i += 1;
        }
        i += 1;
    }
    assert!(!sides.is_empty(), "give at least one --topom-bin NAME=PATH");
    let server_bin = support::args::value("--servers").unwrap_or_else(|| "redis-server".into());
    assert!(
        server_bin == "redis-server" || server_bin == "codis-server",
        "--servers is redis-server or codis-server, not {server_bin}"
    );
    Args {
        sides,
        runs: support::args::arg("--runs", 3) as usize,
        seconds: Duration::from_secs(support::args::arg("--seconds", 5)),
        server_bin,
        server_addrs: Vec::new(),
        stopped_addr: String::new(),
        stopped_pid: 0,
    }
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn main() {
    let args = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(args));
}

async fn run(mut args: Args) {
    eprintln!("starting {} {}s", GROUPS * 2, args.server_bin);
    if args.server_bin == "codis-server" {
        // The fixtures start what this names instead of redis-server.
        // SAFETY: set before any thread of ours reads the environment for it.
        unsafe {
            std::env::set_var(
                "TOPOM_TEST_REDIS_SERVER",
                support::common::codis::bin("codis-server"),
            )
        };
    }
    let mut servers = Vec::new();
    for _ in 0..GROUPS {
        let master = RedisServer::start().await;
        // `slaveof`: codis-server (Redis 3.2) has no `replicaof`.
        let replica =
            RedisServer::start_with(&[&format!("slaveof 127.0.0.1 {}", master.port())]).await;
        servers.push((master, replica));
    }
    args.server_addrs = servers
        .iter()
        .flat_map(|(m, r)| [m.addr(), r.addr()])
        .collect();
    args.stopped_addr = servers[0].0.addr();
    args.stopped_pid = servers[0].0.pid().expect("the first master runs");
    // figures[workload][side] = one per run
    let mut figures: Vec<Vec<Vec<Figure>>> = WORKLOADS
        .iter()
        .map(|_| args.sides.iter().map(|_| Vec::new()).collect())
        .collect();
    for run in 0..args.runs {
        for (si, side) in args.sides.iter().enumerate() {
            eprintln!("run {}/{}: {}", run + 1, args.runs, side.name());
            let running = start(side, &servers).await;
            for (wi, (_, _, _, w)) in WORKLOADS.iter().enumerate() {
                figures[wi][si].push(w(&running, &args).await);
            }
            stop(running).await;
        }
    }
    print_table(&args, &figures);
}

async fn start(side: &Side, servers: &[(RedisServer, RedisServer)]) -> Running {
    match side {
        Side::Topom { bin, .. } => {
            let batch = topology(servers);
            // The launcher runs the binary TOPOM_BIN names.
            // SAFETY: set before any thread of ours reads the environment for it.
            unsafe { std::env::set_var("TOPOM_BIN", bin) };
            // Rounds every second on its own, as the dashboard's.
            let t =
                Seeded::start(PRODUCT, vec!["stats_refresh_period = \"1s\"".into()], batch).await;
            let mut c = t.client().await;
            c.refresh_redis_stats(pb::RefreshRedisStatsRequest::default())
                .await
                .expect("a first round");
            Running::Topom(Box::new(t))
        }
        Side::Codis => Running::Codis(codis::Dashboard::start(PRODUCT, topology(servers)).await),
    }
}

/// The groups (master, replica) and every slot, in contiguous ranges per group.
fn topology(servers: &[(RedisServer, RedisServer)]) -> StoreBatch {
    let mut batch = StoreBatch::default();
    for (i, (m, r)) in servers.iter().enumerate() {
        batch.put_group(&group(i as u32 + 1, &[m.addr(), r.addr()]));
    }
    for id in 0..1024u32 {
        batch.put_slot(&SlotMapping {
            id,
            group_id: id / (1024 / GROUPS) + 1,
            action: None,
        });
    }
    batch
}

async fn stop(r: Running) {
    match r {
        Running::Topom(t) => t.stop().await,
        Running::Codis(d) => drop(d),
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn print_table(args: &Args, figures: &[Vec<Vec<Figure>>]) {
    let base = args.sides[0].name();
    println!(
        "\n{} x {}, {} runs each, alternating; median of the runs; ratio against {base} (>1: better)\n",
        GROUPS * 2,
        args.server_bin,
        args.runs
    );
    println!("| workload | side | median | runs | load (1 min) | ratio |");
    println!("|---|---|---|---|---|---|");
    for (wi, (name, unit, higher_better, _)) in WORKLOADS.iter().enumerate() {
        let base_median = median(&figures[wi][0].iter().map(|f| f.value).collect::<Vec<_>>());
        for (si, side) in args.sides.iter().enumerate() {
            let runs = &figures[wi][si];
            let m = median(&runs.iter().map(|f| f.value).collect::<Vec<_>>());
            let ratio = if *higher_better {
                m / base_median
            } else {
                base_median / m
            };
            let each: Vec<String> = runs
                .iter()
                .map(|f| {
                    if f.note.is_empty() {
                        format!("{:.1}", f.value)
                    } else {
                        format!("{:.1} ({})", f.value, f.note)
                    }
                })
                .collect();
            let loads: Vec<String> = runs.iter().map(|f| format!("{:.1}", f.load)).collect();
            println!(
                "| {name} | {} | {m:.1} {unit} | {} | {} | {ratio:.2}× |",
                side.name(),
                each.join("; "),
                loads.join(", "),
            );
        }
    }
}
