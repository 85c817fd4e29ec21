//! ListSlots throughput and latency over loopback, and the server's RSS.
//!
//! Run: `cargo bench --bench list_slots` (optionally `-- --seconds 10 --callers 32`).
//!
//! Set-up: a local store pre-filled with 100 groups of 3 servers (300 servers)
//! and all 1024 slots assigned, written through topom's own typed store; then the
//! release `topom` binary is started on it as a separate process, so its RSS is
//! measured alone. Two runs: `raw` callers take each response as bytes (this
//! measures the server: on 2 cores, decoding 1024 slots in the callers would
//! otherwise eat most of the CPU), then `decode` callers decode every response with
//! the generated client, as a proxy would.

mod support;

use std::time::{Duration, Instant};

use support::args::arg;
use support::figures::{at, ms, sorted};
use support::procfs::{cpu_ticks, rss_kib, stat_of, ticks_per_sec};
use support::raw_grpc;
use support::topom::{Seeded, group};
use topom::model::SlotMapping;
use topom::pb;
use topom::store::StoreBatch;

const GROUPS: u32 = 100;
const SERVERS_PER_GROUP: u32 = 3;

/// 100 groups of 3 made-up servers, and every slot assigned round the groups.
fn topology() -> StoreBatch {
    let mut batch = StoreBatch::default();
    for gid in 1..=GROUPS {
        let addrs: Vec<String> = (0..SERVERS_PER_GROUP)
            .map(|i| {
                let port = 10_000 + gid * 10 + i;
                format!("10.0.{}.{}:{port}", gid / 250, gid % 250)
            })
            .collect();
        batch.put_group(&group(gid, &addrs));
    }
    for id in 0..1024u32 {
        batch.put_slot(&SlotMapping {
            id,
            group_id: 1 + id % GROUPS,
            action: None,
        });
    }
    batch
}

// One worker for the callers, so the server keeps a core to itself on a 2-core machine.
#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let seconds = arg("--seconds", 10);
    let callers = arg("--callers", 32) as usize;
    let server = Seeded::start("bench", Vec::new(), topology()).await;
    let pid = server.pid();
    let endpoint = format!("http://{}", server.addr());

    // Idle RSS with the topology loaded and one table encoded.
    let mut c = pb::topom_client::TopomClient::connect(endpoint.clone())
        .await
        .expect("connect");
    let first = c
        .list_slots(pb::ListSlotsRequest {})
        .await
        .expect("ListSlots")
        .into_inner();
    assert_eq!(first.slots.len(), 1024);
    assert_eq!(
        c.list_groups(pb::ListGroupsRequest {})
            .await
            .unwrap()
            .into_inner()
            .groups
            .len(),
        GROUPS as usize
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kib(pid);
    let encoded = prost::Message::encoded_len(&first);

    println!("ListSlots benchmark: {callers} concurrent callers over loopback, {seconds}s per run");
    println!(
        "  topology           : {GROUPS} groups, {} servers, 1024 slots",
        GROUPS * SERVERS_PER_GROUP
    );
    println!("  response size      : {encoded} bytes");
    println!("  server RSS idle    : {:.1} MB", idle_rss as f64 / 1024.0);
    for decode in [false, true] {
        run(&endpoint, pid, callers, seconds, decode, encoded).await;
    }
    server.stop().await;
}

async fn call_raw(grpc: &mut tonic::client::Grpc<tonic::transport::Channel>) -> usize {
    let (body, _) =
        raw_grpc::unary(grpc, "/topom.v1.Topom/ListSlots", pb::ListSlotsRequest {}).await;
    body.len()
}

async fn run(endpoint: &str, pid: u32, callers: usize, seconds: u64, decode: bool, encoded: usize) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let cpu_before = cpu_ticks(&stat_of(pid));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let endpoint = endpoint.to_owned();
        tasks.push(tokio::spawn(async move {
            let channel = tonic::transport::Endpoint::from_shared(endpoint)
                .expect("endpoint")
                .connect()
                .await
                .expect("connect");
            let mut typed = pb::topom_client::TopomClient::new(channel.clone());
            let mut raw = tonic::client::Grpc::new(channel);
            let mut lat = Vec::with_capacity(100_000);
            while Instant::now() < deadline {
                let t0 = Instant::now();
                if decode {
                    let r = typed
                        .list_slots(pb::ListSlotsRequest {})
                        .await
                        .expect("ListSlots")
                        .into_inner();
                    assert_eq!(r.slots.len(), 1024);
                } else {
                    assert_eq!(call_raw(&mut raw).await, encoded);
                }
                lat.push(t0.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("caller"));
    }
    let elapsed = started.elapsed();
    let cpu = cpu_ticks(&stat_of(pid)) - cpu_before;
    let all = sorted(all);
    let pct = |p: f64| ms(at(&all, p));
    let ticks_per_sec = ticks_per_sec();
    println!(
        "  -- callers {} --",
        if decode {
            "decode (generated client)"
        } else {
            "raw (bytes)"
        }
    );
    println!("  requests           : {}", all.len());
    println!(
        "  throughput         : {:.0} ListSlots/s",
        all.len() as f64 / elapsed.as_secs_f64()
    );
    println!("  latency p50        : {:.3} ms", pct(0.50));
    println!("  latency p99        : {:.3} ms", pct(0.99));
    println!(
        "  server CPU         : {:.2} cores ({:.1} us/request)",
        cpu as f64 / ticks_per_sec / elapsed.as_secs_f64(),
        cpu as f64 / ticks_per_sec * 1e6 / all.len() as f64
    );
    println!(
        "  server RSS         : {:.1} MB",
        rss_kib(pid) as f64 / 1024.0
    );
}
