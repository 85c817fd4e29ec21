//! The workloads of the side-by-side bench, each a function of a running side
//! that returns one figure.

use std::time::{Duration, Instant};

use crate::monitor::{self, Monitor};
use crate::support::figures::{at, ms, sorted};
use crate::support::procfs::rss_kib;
use crate::support::raw_grpc;
use crate::{Args, Figure, Running, codis, loadavg};
use topom::pb;

/// Concurrent callers of the throughput rows.
const CALLERS: usize = 8;
/// How long the round rows watch the servers: about this many rounds at 1 s.
const ROUND_WINDOW: Duration = Duration::from_secs(9);
/// The same with one server stopped (Codis then needs 2 s a round).
const STOPPED_WINDOW: Duration = Duration::from_secs(13);

/// One throughput row: the gRPC method on topom, the HTTP path on Codis.
struct Call {
    grpc: &'static str,
    http: &'static str,
}

/// ListSlots vs `GET /topom/slots`.
pub async fn list_slots(r: &Running, a: &Args) -> Figure {
    let call = Call {
        grpc: "/topom.v1.Topom/ListSlots",
        http: "/topom/slots",
    };
    calls(r, a, call, pb::ListSlotsRequest::default()).await
}

/// GetStats vs `GET /topom/stats`.
pub async fn get_stats(r: &Running, a: &Args) -> Figure {
    let call = Call {
        grpc: "/topom.v1.Topom/GetStats",
        http: "/topom/stats",
    };
    calls(r, a, call, pb::GetStatsRequest::default()).await
}

/// `CALLERS` callers for `--seconds`; answers are read whole, never decoded.
async fn calls<Req>(r: &Running, a: &Args, call: Call, req: Req) -> Figure
where
    Req: prost::Message + Clone + Send + 'static,
{
    let end = Instant::now() + a.seconds;
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        match r {
            Running::Codis(d) => {
                let addr = d.addr().to_owned();
                callers.push(tokio::spawn(async move {
                    let mut conn = codis::Http::connect(&addr).await;
                    let mut took = Vec::new();
                    let mut bytes = 0;
                    while Instant::now() < end {
                        let started = Instant::now();
                        bytes = conn.get(call.http).await;
                        took.push(started.elapsed());
                    }
                    (took, bytes)
                }));
            }
            Running::Topom(t) => {
                let channel = t.channel_for(1).await;
                let req = req.clone();
                callers.push(tokio::spawn(async move {
                    let mut grpc =
                        tonic::client::Grpc::new(channel).max_decoding_message_size(256 << 20);
                    let mut took = Vec::new();
                    let mut bytes = 0;
                    while Instant::now() < end {
                        let (body, d) = raw_grpc::unary(&mut grpc, call.grpc, req.clone()).await;
                        bytes = body.len();
                        took.push(d);
                    }
                    (took, bytes)
                }));
            }
        }
    }
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

/// The rounds the servers saw during `window`: (median span, median period).
async fn watch_rounds(a: &Args, window: Duration) -> (Duration, Duration, usize) {
    let m = Monitor::start(&a.server_addrs).await;
    tokio::time::sleep(window).await;
    let rounds = monitor::rounds(&m.stop().await);
    let (span, period) = monitor::span_and_period(&rounds);
    (span, period, rounds.len())
}

/// The round span, first to last INFO arrival on the servers (both sides refresh
/// every second on their own).
pub async fn round_span(_: &Running, a: &Args) -> Figure {
    let (span, period, n) = watch_rounds(a, ROUND_WINDOW).await;
    Figure {
        value: ms(span),
        note: format!("{n} rounds, period {:.0} ms", ms(period)),
        load: loadavg(),
    }
}

/// The round period with one master SIGSTOPped (a black hole: it accepts and
/// never answers), seen on the servers still running.
pub async fn stopped_period(_: &Running, a: &Args) -> Figure {
    let pid = a.stopped_pid.to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid} failed");
    };
    signal("-STOP");
    let live: Vec<String> = a
        .server_addrs
        .iter()
        .filter(|s| **s != a.stopped_addr)
        .cloned()
        .collect();
    let m = Monitor::start(&live).await;
    tokio::time::sleep(STOPPED_WINDOW).await;
    let arrivals = m.stop().await;
    signal("-CONT");
    let rounds = monitor::rounds(&arrivals);
    let (span, period) = monitor::span_and_period(&rounds);
    Figure {
        value: ms(period),
        note: format!("{} rounds, span {:.0} ms", rounds.len(), ms(span)),
        load: loadavg(),
    }
}

/// The control plane's RSS after the set-up and the rows before this one.
pub async fn idle_rss(r: &Running, _: &Args) -> Figure {
    Figure {
        value: rss_kib(r.pid()) as f64 / 1024.0,
        note: String::new(),
        load: loadavg(),
    }
}
