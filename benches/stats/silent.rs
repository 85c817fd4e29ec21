//! Part 2: a round with silent targets ends at its deadline.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use http::uri::PathAndQuery;
use topom::pb;

use crate::Plan;
use crate::calls::{check_round, groups_of, grpc, head, refresh};
use crate::start_topom;
use crate::support::cpu_meter::CpuMeter;
use crate::support::fake_redis::fleet::Targets;
use crate::support::figures::{ms, nearest_rank, sorted};

/// after the round started, and how long after the last one the round finished.
async fn silent_timing(
    watch: &mut tonic::Streaming<pb::WatchStatsResponse>,
    round: u64,
) -> Option<(f64, f64, f64)> {
    let since = |a: SystemTime, b: SystemTime| match a.duration_since(b) {
        Ok(d) => ms(d),
        Err(e) => -ms(e.duration()),
    };
    loop {
        let m = watch.message().await.ok()??;
        if m.round < round {
            continue;
        }
        let started = SystemTime::try_from(m.started_at?).ok()?;
        let finished = SystemTime::try_from(m.finished_at?).ok()?;
        let times: Vec<SystemTime> = m
            .servers
            .iter()
            .filter_map(|s| SystemTime::try_from(s.stats.as_ref()?.time?).ok())
            .collect();
        let (first, last) = (times.iter().min()?, times.iter().max()?);
        return Some((
            since(*first, started),
            since(*last, started),
            since(finished, *last),
        ));
    }
}

/// 2. Silent targets: the round ends at the deadline.
pub async fn silent_round(plan: &Plan, targets: &Targets, meter_for: impl Fn(u32) -> CpuMeter) {
    let n = plan.silent_targets;
    // Every 10th target (index 9, 19, ...) is silent; masters (index % 4 == 0) never are.
    let mut silent_it = targets.silent.iter();
    let mut addrs = Vec::with_capacity(n);
    let mut silent = HashSet::new();
    let mut live = Vec::new();
    for (i, a) in targets.live[..n].iter().enumerate() {
        if i % 10 == 9 {
            let s = silent_it.next().expect("enough silent responders").clone();
            silent.insert(s.clone());
            addrs.push(s);
        } else {
            live.push(a.clone());
            addrs.push(a.clone());
        }
    }
    println!(
        "-- 2. {n} targets, {} silent ({:.1} %), deadline {} ms ({} rounds after {} warm-up) --",
        silent.len(),
        silent.len() as f64 * 100.0 / n as f64,
        plan.deadline.as_millis(),
        plan.silent_rounds,
        plan.warmup
    );
    let server = start_topom(&groups_of(&addrs), "1h").await;
    let meter = meter_for(server.pid());
    let mut g = grpc(server.channel_for(1).await);
    for _ in 0..plan.warmup {
        let (raw, _) = refresh(&mut g, Some(plan.deadline)).await;
        if let Err(e) = check_round(&raw, &live, &silent, targets.info_fields) {
            panic!("silent-round set-up is wrong: {e}\nlog:\n{}", server.log());
        }
    }
    // A WatchStats stream of just the silent targets: each round's started_at and
    // finished_at, and when each silent probe gave up.
    let mut wg = grpc(server.channel_for(1).await);
    wg.ready().await.expect("channel ready");
    let mut watch = wg
        .server_streaming(
            tonic::Request::new(pb::WatchStatsRequest {
                addrs: silent.iter().cloned().collect(),
                fields: vec!["redis_version".into()],
                ..Default::default()
            }),
            PathAndQuery::from_static("/topom.v1.Topom/WatchStats"),
            tonic_prost::ProstCodec::<pb::WatchStatsRequest, pb::WatchStatsResponse>::default(),
        )
        .await
        .expect("WatchStats of the silent targets")
        .into_inner();
    let before = meter.sample();
    let (mut server_ms, mut rpc_ms) = (Vec::new(), Vec::new());
    let mut wrong = Vec::new();
    let (mut first_gave_up, mut last_gave_up, mut after_last) =
        (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..plan.silent_rounds {
        let (raw, rpc) = refresh(&mut g, Some(plan.deadline)).await;
        let (round, elapsed) = head(&raw);
        server_ms.push(ms(elapsed));
        rpc_ms.push(ms(rpc));
        if let Err(e) = check_round(&raw, &live, &silent, targets.info_fields) {
            wrong.push(format!("round {round}: {e}"));
        }
        match tokio::time::timeout(Duration::from_secs(5), silent_timing(&mut watch, round)).await {
            Ok(Some((first, last, post))) => {
                first_gave_up.push(first);
                last_gave_up.push(last);
                after_last.push(post);
            }
            _ => wrong.push(format!("round {round}: not seen on WatchStats")),
        }
    }
    // The full decode of each round (the check) runs in the client between rounds
    // and is included in the client figure; it does not overlap any round.
    let cpu = meter.per(before, plan.silent_rounds as f64);
    let (s, r) = (sorted(server_ms), sorted(rpc_ms));
    let d = ms(plan.deadline);
    let max = s.last().copied().unwrap_or(f64::NAN);
    println!(
        "silent 10% of {n}, deadline {d:.0} ms: elapsed p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (server) = deadline {:+.2} / {:+.2} / {:+.2} ms | RPC p50 {:.2} ms, p99 {:.2} ms (client)",
        nearest_rank(&s, 0.5),
        nearest_rank(&s, 0.99),
        max,
        nearest_rank(&s, 0.5) - d,
        nearest_rank(&s, 0.99) - d,
        max - d,
        nearest_rank(&r, 0.5),
        nearest_rank(&r, 0.99),
    );
    let (fg, lg, al) = (
        sorted(first_gave_up),
        sorted(last_gave_up),
        sorted(after_last),
    );
    println!(
        "           where the time goes (p50 over rounds, from WatchStats started_at / finished_at and each probe's time): silent probes gave up {:.2} .. {:.2} ms after the start; the round finished {:.2} ms after the last probe",
        nearest_rank(&fg, 0.5),
        nearest_rank(&lg, 0.5),
        nearest_rank(&al, 0.5)
    );
    println!(
        "           checks: {} rounds x {} targets: every silent target timeout=true, every live one has its fields: {}",
        plan.silent_rounds,
        n,
        if wrong.is_empty() {
            "yes".to_owned()
        } else {
            format!("NO in {} rounds", wrong.len())
        }
    );
    println!(
        "           cpu per round: topom {:.2} ms, responders {:.2} ms, bench client {:.2} ms (incl. decoding and checking every round); other processes {:.2} cores",
        cpu.server, cpu.responders, cpu.clients, cpu.others
    );
    server.stop().await;
    assert!(wrong.is_empty(), "wrong rounds: {}", wrong.join("\n"));
    assert!(
        max <= d + 100.0,
        "a round with silent targets took {max:.1} ms for a {d:.0} ms deadline"
    );
}
