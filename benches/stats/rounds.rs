//! Part 1: round time at each size, all targets live.

use std::collections::HashSet;

use crate::Plan;
use crate::calls::{check_round, get_stats_raw, groups_of, grpc, head, refresh};
use crate::start_topom;
use crate::support::cpu_meter::CpuMeter;
use crate::support::fake_redis::fleet::Targets;
use crate::support::figures::{ms, nearest_rank, sorted};
use crate::support::procfs::rss_kib;

/// 1. Round time at each size, all targets live, default 1 s deadline.
pub async fn round_time(plan: &Plan, targets: &Targets, meter_for: impl Fn(u32) -> CpuMeter) {
    println!(
        "-- 1. RefreshRedisStats rounds, all targets live, 1 s deadline ({} rounds per size after {} warm-up) --",
        plan.rounds, plan.warmup
    );
    let none = HashSet::new();
    for &n in &plan.round_sizes {
        let live = &targets.live[..n];
        let server = start_topom(&groups_of(live), "1h").await;
        let meter = meter_for(server.pid());
        let mut g = grpc(server.channel_for(1).await);
        let mut last = None;
        for _ in 0..plan.warmup {
            last = Some(refresh(&mut g, None).await.0);
        }
        let last = last.expect("warm-up rounds");
        if let Err(e) = check_round(&last, live, &none, targets.info_fields) {
            panic!(
                "round set-up at {n} targets is wrong: {e}\nlog:\n{}",
                server.log()
            );
        }
        let (mut prev_round, _) = head(&last);
        let before = meter.sample();
        let (mut server_ms, mut rpc_ms) = (Vec::new(), Vec::new());
        let mut size = 0;
        // The slowest round, kept whole to see where its time went.
        let mut slowest = None;
        for _ in 0..plan.rounds {
            let sent = std::time::SystemTime::now();
            let (raw, rpc) = refresh(&mut g, None).await;
            let (round, elapsed) = head(&raw);
            assert_eq!(round, prev_round + 1, "rounds run one after the other");
            prev_round = round;
            size = raw.len();
            if slowest.as_ref().is_none_or(|(e, _, _)| elapsed > *e) {
                slowest = Some((elapsed, raw.clone(), sent));
            }
            server_ms.push(ms(elapsed));
            rpc_ms.push(ms(rpc));
        }
        let cpu = meter.per(before, plan.rounds as f64);
        // The last measured round must be as complete as the warm-up one.
        let (raw, _) = refresh(&mut g, None).await;
        if let Err(e) = check_round(&raw, live, &none, targets.info_fields) {
            panic!("round at {n} targets went wrong under load: {e}");
        }
        let (s, r) = (sorted(server_ms), sorted(rpc_ms));
        println!(
            "round {n:>4} targets: p50 {:6.2} ms, p99 {:6.2} ms (server elapsed) | RPC p50 {:6.2} ms, p99 {:6.2} ms (client) | cpu {:6.2} ms/round (topom) | response {:.2} MB",
            nearest_rank(&s, 0.5),
            nearest_rank(&s, 0.99),
            nearest_rank(&r, 0.5),
            nearest_rank(&r, 0.99),
            cpu.server,
            size as f64 / 1e6,
        );
        println!(
            "                     max {:.2} ms (server); per round on the same cores: responders {:.2} ms cpu, bench client {:.2} ms cpu; other processes {:.2} cores; topom RSS {:.1} MB",
            s.last().copied().unwrap_or(f64::NAN),
            cpu.responders,
            cpu.clients,
            cpu.others,
            rss_kib(server.pid()) as f64 / 1024.0
        );
        if let Some((elapsed, raw, sent)) = &slowest {
            println!(
                "                     the slowest round ({:.2} ms): {}",
                ms(*elapsed),
                breakdown(raw, *elapsed, *sent)
            );
        }
        // The same data without a round: what building and sending the answer costs.
        let calls = (plan.rounds / 2).max(1);
        let before = meter.sample();
        let mut get_ms = Vec::new();
        let mut get_size = 0;
        for _ in 0..calls {
            let (len, t) = get_stats_raw(&mut g).await;
            get_size = len;
            get_ms.push(ms(t));
        }
        let get_cpu = meter.per(before, calls as f64);
        let gs = sorted(get_ms);
        println!(
            "                     GetStats, the same data without a round ({calls} calls, {:.2} MB): cpu {:.2} ms/call (topom), RPC p50 {:.2} ms -> the round itself ~ {:.2} ms cpu",
            get_size as f64 / 1e6,
            get_cpu.server,
            nearest_rank(&gs, 0.5),
            (cpu.server - get_cpu.server).max(0.0)
        );
        server.stop().await;
    }
    println!(
        "   (target: p99 <= 50 ms at 1024 targets, server elapsed; p99 is nearest-rank: with {} samples it is the max)",
        plan.rounds
    );
}

/// Where a round's time went, from the completion time of each target's probe
/// (the response has no start time): the spread from the first answer to the
/// median and the last, and the rest of `elapsed` (dispatching the probes
/// before the first answer, assembling and publishing after the last). `sent`
/// is when the client sent the call, so `first - sent` bounds the dispatch.
fn breakdown(
    raw: &bytes::Bytes,
    elapsed: std::time::Duration,
    sent: std::time::SystemTime,
) -> String {
    use prost::Message;
    let r = topom::pb::RefreshRedisStatsResponse::decode(raw.clone()).expect("decode a round");
    let at = |t: &prost_types::Timestamp| t.seconds as f64 * 1e3 + t.nanos as f64 / 1e6;
    let times = sorted(
        r.servers
            .iter()
            .filter_map(|s| s.stats.as_ref()?.time.as_ref().map(at))
            .collect(),
    );
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        return "no probe times".into();
    };
    let sent = sent
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    format!(
        "first answer {:.2} ms after the call was sent; median answer +{:.2} ms, last +{:.2} ms after the first; the rest of elapsed {:.2} ms",
        first - sent,
        nearest_rank(&times, 0.5) - first,
        last - first,
        ms(elapsed) - (last - first)
    )
}
