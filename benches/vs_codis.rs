//! Side by side on one topology of real servers: 32 groups of master + replica
//! (64 redis-server processes), every slot assigned. Each *side* is a control
//! plane over that topology: a topom binary (`--topom-bin PATH`, repeatable, so
//! the binary of the branch point and the new one run in one sitting) or the
//! Codis 3.2 dashboard (`--codis`). Sides run in turn, `--runs N` times each
//! (default 3), and the table prints the median of the runs, the ratio of each
//! side to the first, and the machine's load average during each window.
//!
//! Run through `scripts/bench-vs-codis`, which builds what is needed.
//!
//! Workloads (a row each; a workload is a function of a side, so a migration row
//! is one more entry in `WORKLOADS`):
//! - `stats`: GetStats (or Codis `GET /topom/stats`) by 8 callers for
//!   `--seconds` (default 5): calls per second and p99. The answers are taken as
//!   bytes, never decoded.
//! - `round span`: 20 rounds driven by RefreshRedisStats, the server-side span of
//!   each (`elapsed`: first INFO sent to last answer in); median.
//! - `idle rss`: the control plane's RSS after the set-up and one round.

#[path = "support/mod.rs"]
mod support;

#[path = "vs_codis/codis.rs"]
mod codis;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::common::redis::RedisServer;
use support::figures::{at, ms, sorted};
use support::procfs::rss_kib;
use support::raw_grpc;
use support::topom::{Seeded, group};
use topom::model::SlotMapping;
use topom::pb;
use topom::store::StoreBatch;

const PRODUCT: &str = "bench";
const GROUPS: u32 = 32;
const CALLERS: usize = 8;
const SPAN_ROUNDS: usize = 20;

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
const WORKLOADS: [(&str, &str, bool, Workload); 3] = [
    ("stats, 8 callers", "calls/s", true, |r, a| {
        Box::pin(stats_calls(r, a))
    }),
    ("round span, 64 servers", "ms", false, |r, _| {
        Box::pin(round_span(r))
    }),
    ("idle rss", "MB", false, |r, _| Box::pin(idle_rss(r))),
];

struct Args {
    sides: Vec<Side>,
    runs: usize,
    seconds: Duration,
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
    Args {
        sides,
        runs: support::args::arg("--runs", 3) as usize,
        seconds: Duration::from_secs(support::args::arg("--seconds", 5)),
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

async fn run(args: Args) {
    eprintln!("starting {} redis-servers", GROUPS * 2);
    let mut servers = Vec::new();
    for _ in 0..GROUPS {
        let master = RedisServer::start().await;
        let replica =
            RedisServer::start_with(&[&format!("replicaof 127.0.0.1 {}", master.port())]).await;
        servers.push((master, replica));
    }
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
            // Rounds are driven by the bench (RefreshRedisStats), so the span
            // windows are not disturbed by background rounds.
            let t =
                Seeded::start(PRODUCT, vec!["stats_refresh_period = \"1h\"".into()], batch).await;
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

async fn stats_calls(r: &Running, a: &Args) -> Figure {
    let end = Instant::now() + a.seconds;
    let t = match r {
        Running::Topom(t) => t,
        Running::Codis(d) => {
            let mut callers = Vec::new();
            for _ in 0..CALLERS {
                let addr = d.addr().to_owned();
                callers.push(tokio::spawn(async move {
                    let mut conn = codis::Http::connect(&addr).await;
                    let mut took = Vec::new();
                    let mut bytes = 0;
                    while Instant::now() < end {
                        let started = Instant::now();
                        bytes = conn.get("/topom/stats").await;
                        took.push(started.elapsed());
                    }
                    (took, bytes)
                }));
            }
            return throughput(callers, a).await;
        }
    };
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let channel = t.channel_for(1).await;
        callers.push(tokio::spawn(async move {
            let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(256 << 20);
            let mut took = Vec::new();
            let mut bytes = 0;
            while Instant::now() < end {
                let (body, d) = raw_grpc::unary(
                    &mut grpc,
                    "/topom.v1.Topom/GetStats",
                    pb::GetStatsRequest::default(),
                )
                .await;
                bytes = body.len();
                took.push(d);
            }
            (took, bytes)
        }));
    }
    throughput(callers, a).await
}

/// Calls per second and p99 over the callers' samples.
async fn throughput(
    callers: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize)>>,
    a: &Args,
) -> Figure {
    let mut all = Vec::new();
    let mut size = 0;
    for c in callers {
        let (took, bytes) = c.await.expect("a caller");
        all.extend(took);
        size = bytes;
    }
    let load = loadavg();
    let n = all.len();
    let all = sorted(all);
    Figure {
        value: n as f64 / a.seconds.as_secs_f64(),
        note: format!("p99 {:.1} ms, {} KB", ms(at(&all, 0.99)), size / 1024),
        load,
    }
}

/// Just `elapsed` of a RefreshRedisStatsResponse.
#[derive(Clone, PartialEq, prost::Message)]
struct RefreshHead {
    #[prost(message, optional, tag = "4")]
    elapsed: Option<prost_types::Duration>,
}

async fn round_span(r: &Running) -> Figure {
    use prost::Message;
    let Running::Topom(t) = r else {
        // The dashboard reports no round times: shown as not measured.
        return Figure {
            value: f64::NAN,
            note: "not measured by this bench".into(),
            load: loadavg(),
        };
    };
    let mut grpc =
        tonic::client::Grpc::new(t.channel_for(1).await).max_decoding_message_size(256 << 20);
    let mut spans = Vec::new();
    for _ in 0..SPAN_ROUNDS {
        let (body, _) = raw_grpc::unary(
            &mut grpc,
            "/topom.v1.Topom/RefreshRedisStats",
            pb::RefreshRedisStatsRequest::default(),
        )
        .await;
        let head = RefreshHead::decode(body).expect("a RefreshRedisStatsResponse");
        spans.push(
            head.elapsed
                .and_then(|d| Duration::try_from(d).ok())
                .expect("elapsed"),
        );
        // Rounds one after the other, as the refresh task runs them (a pause
        // between, not a storm).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let load = loadavg();
    let spans = sorted(spans);
    Figure {
        value: ms(at(&spans, 0.5)),
        note: format!("p90 {:.1} ms", ms(at(&spans, 0.9))),
        load,
    }
}

async fn idle_rss(r: &Running) -> Figure {
    Figure {
        value: rss_kib(r.pid()) as f64 / 1024.0,
        note: String::new(),
        load: loadavg(),
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
        "\n{} runs each, alternating; median of the runs; ratio against {base} (>1: better)\n",
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
