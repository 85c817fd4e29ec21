//! Part 3: the WatchStats fan-out to many subscribers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use http::uri::PathAndQuery;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use topom::pb;

use crate::Plan;
use crate::calls::{WatchHead, groups_of, grpc, server_round};
use crate::start_topom;
use crate::support::cpu_meter::CpuMeter;
use crate::support::fake_redis::fleet::Targets;
use crate::support::figures::{ms, nearest_rank, sorted};
use crate::support::procfs::rss_kib;
use crate::support::raw_grpc::RawCodec;

/// Shared state of the WatchStats subscribers.
#[derive(Default)]
struct Watchers {
    /// Subscribers that got their first message.
    ready: AtomicUsize,
    /// The highest round any subscriber has seen.
    latest: AtomicU64,
    /// The round the measurement waits for (u64::MAX until set).
    target: AtomicU64,
    /// Subscribers that have seen `target`.
    reached: AtomicUsize,
}

/// One WatchStats subscriber: (round, delivery delay in ms) of every message.
async fn subscriber(
    channel: Channel,
    req: pb::WatchStatsRequest,
    shared: Arc<Watchers>,
    stop: CancellationToken,
) -> Result<Vec<(u64, f64)>, String> {
    let mut g = grpc(channel);
    g.ready().await.map_err(|e| e.to_string())?;
    let mut stream = g
        .server_streaming(
            tonic::Request::new(req),
            PathAndQuery::from_static("/topom.v1.Topom/WatchStats"),
            tonic_prost::ProstCodec::<pb::WatchStatsRequest, WatchHead>::default(),
        )
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    let mut seen = Vec::with_capacity(32);
    let mut counted = false;
    loop {
        let next = tokio::select! {
            m = stream.message() => m,
            () = stop.cancelled() => break,
        };
        let now = SystemTime::now();
        let Some(m) = next.map_err(|e| e.to_string())? else {
            return Err("the stream ended".into());
        };
        let delay = m
            .finished_at
            .and_then(|t| SystemTime::try_from(t).ok())
            .map_or(f64::NAN, |f| match now.duration_since(f) {
                Ok(d) => ms(d),
                Err(e) => -ms(e.duration()),
            });
        if seen.is_empty() {
            shared.ready.fetch_add(1, Ordering::Relaxed);
        }
        seen.push((m.round, delay));
        shared.latest.fetch_max(m.round, Ordering::Relaxed);
        if !counted && m.round >= shared.target.load(Ordering::Relaxed) {
            counted = true;
            shared.reached.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(seen)
}

pub async fn fan_out(
    plan: &Plan,
    targets: &Targets,
    meter_for: impl Fn(u32) -> CpuMeter,
    req: pb::WatchStatsRequest,
) {
    let n = plan.watch_targets;
    let subs = plan.subscribers;
    let period = format!("{}ms", plan.watch_period.as_millis());
    let what = if req.fields.is_empty() {
        "unfiltered".to_owned()
    } else {
        format!("fields={:?}", req.fields)
    };
    println!(
        "-- 3. WatchStats fan-out: {n} targets, stats_refresh_period = \"{period}\", {subs} {what} subscribers over {} HTTP/2 connections, {} rounds --",
        plan.connections, plan.watch_rounds
    );
    let server = start_topom(&groups_of(&targets.live[..n]), &period).await;
    let meter = meter_for(server.pid());

    // Wait for round 2 (the pools warm, the round cache filled) and size a message.
    let mut g = grpc(server.channel_for(1).await);
    g.ready().await.expect("channel ready");
    let mut probe = g
        .server_streaming(
            tonic::Request::new(req.clone()),
            PathAndQuery::from_static("/topom.v1.Topom/WatchStats"),
            RawCodec::<pb::WatchStatsRequest>::default(),
        )
        .await
        .expect("WatchStats")
        .into_inner();
    let min_fields = if req.fields.is_empty() {
        targets.info_fields
    } else {
        req.fields.len()
    };
    let msg_size = loop {
        let raw = tokio::time::timeout(plan.watch_period * 5, probe.message())
            .await
            .expect("a round within 5 periods")
            .expect("WatchStats message")
            .expect("WatchStats stream open");
        let full = pb::WatchStatsResponse::decode(raw.clone()).expect("decode WatchStatsResponse");
        if full.round >= 2 {
            assert_eq!(full.servers.len(), n, "every target in the round");
            let with_fields = full
                .servers
                .iter()
                .filter(|s| {
                    s.stats
                        .as_ref()
                        .is_some_and(|st| st.fields.len() >= min_fields && !st.timeout)
                })
                .count();
            assert_eq!(with_fields, n, "every live target has its fields");
            break raw.len();
        }
    };
    drop(probe);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib(server.pid());

    let shared = Arc::new(Watchers {
        target: AtomicU64::new(u64::MAX),
        ..Default::default()
    });
    let stop = CancellationToken::new();
    let mut channels = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        channels.push(server.channel_for(subs.div_ceil(plan.connections)).await);
    }
    let t_subscribe = Instant::now();
    let tasks: Vec<_> = (0..subs)
        .map(|i| {
            tokio::spawn(subscriber(
                channels[i % channels.len()].clone(),
                req.clone(),
                shared.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let ramp_limit = Duration::from_secs(60);
    while shared.ready.load(Ordering::Relaxed) < subs {
        assert!(
            t_subscribe.elapsed() < ramp_limit,
            "only {} of {subs} subscribers got a first message within {ramp_limit:?}",
            shared.ready.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ramp = t_subscribe.elapsed();
    let rss_connected = rss_kib(server.pid());

    // Measure the next `watch_rounds` rounds the server publishes.
    let first = server_round(&mut g).await;
    let last = first + plan.watch_rounds;
    shared.target.store(last, Ordering::Relaxed);
    let before = meter.sample();
    let t0 = Instant::now();
    let limit = plan.watch_period * (plan.watch_rounds as u32 + 5);
    let mut rss_samples = Vec::new();
    while shared.reached.load(Ordering::Relaxed) < subs && t0.elapsed() < limit {
        rss_samples.push(rss_kib(server.pid()) as f64);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let window = t0.elapsed();
    let rounds_run = server_round(&mut g).await.saturating_sub(first);
    let cpu = meter.per(before, rounds_run as f64);
    stop.cancel();
    let mut delays = Vec::new();
    let mut failures = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(seen)) => delays.extend(
                seen.iter()
                    .filter(|(r, _)| *r > first && *r <= last)
                    .map(|&(_, d)| d),
            ),
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let reached = shared.reached.load(Ordering::Relaxed);
    let expected = subs * plan.watch_rounds as usize;
    let d = sorted(delays);
    let rss_sorted = sorted(rss_samples);
    let rss_steady = nearest_rank(&rss_sorted, 0.5);
    let rss_peak = rss_sorted.last().copied().unwrap_or(f64::NAN);
    println!(
        "watch {subs} {what} subscribers, {n} targets: delivery delay p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (now - finished_at), rounds {}..={last}",
        nearest_rank(&d, 0.5),
        nearest_rank(&d, 0.99),
        d.last().copied().unwrap_or(f64::NAN),
        first + 1,
    );
    println!(
        "           deliveries of those rounds: {} of {expected} ({} skipped by latest-value or still queued at the end); {reached}/{subs} subscribers saw round {last} within {:.1} s; failures: {}",
        d.len(),
        expected.saturating_sub(d.len()),
        window.as_secs_f64(),
        failures.len()
    );
    println!(
        "           message: {:.3} MB each, {:.1} MB per round to all subscribers; subscribing all took {:.1} s",
        msg_size as f64 / 1e6,
        msg_size as f64 * subs as f64 / 1e6,
        ramp.as_secs_f64()
    );
    println!(
        "           topom RSS: {:.1} MB before subscribing, {:.1} MB with {subs} connected, {:.1} MB median / {:.1} MB peak while streaming",
        rss_before as f64 / 1024.0,
        rss_connected as f64 / 1024.0,
        rss_steady / 1024.0,
        rss_peak / 1024.0
    );
    println!(
        "           growth per subscriber: {:.1} KB (connected), {:.1} KB (median while streaming), {:.1} KB (peak)",
        (rss_connected as f64 - rss_before as f64) / subs as f64,
        (rss_steady - rss_before as f64) / subs as f64,
        (rss_peak - rss_before as f64) / subs as f64
    );
    println!(
        "           cpu per round ({rounds_run} rounds in {:.1} s): topom {:.1} ms, responders {:.1} ms, bench subscribers {:.1} ms; other processes {:.2} cores",
        window.as_secs_f64(),
        cpu.server,
        cpu.responders,
        cpu.clients,
        cpu.others
    );
    println!("   (targets: delivery p99 <= 50 ms; growth <= 64 KB per subscriber)");
    drop(channels);
    server.stop().await;
    assert!(
        failures.is_empty(),
        "subscribers failed: {:?}",
        &failures[..failures.len().min(3)]
    );
}
