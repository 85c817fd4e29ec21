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

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use topom::model::{Group, GroupServer, ServerKind, SlotMapping};
use topom::pb;
use topom::store::{Store, StoreBatch, local::LocalStore};

const GROUPS: u32 = 100;
const SERVERS_PER_GROUP: u32 = 3;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    // utime + stime, fields 14 and 15 of /proc/pid/stat.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

async fn prepare(dir: &std::path::Path) {
    let raw = Arc::new(LocalStore::open(dir).expect("open store"));
    let store = Store::new(raw, "bench");
    let mut batch = StoreBatch::default();
    for gid in 1..=GROUPS {
        let mut g = Group::new(gid);
        for i in 0..SERVERS_PER_GROUP {
            let port = 10_000 + gid * 10 + i;
            let mut s = GroupServer::new(
                format!("10.0.{}.{}:{port}", gid / 250, gid % 250),
                "dc1",
                ServerKind::Redis,
            );
            s.replica_group = i > 0;
            g.servers.push(s);
        }
        batch.put_group(&g);
    }
    for id in 0..1024u32 {
        batch.put_slot(&SlotMapping {
            id,
            group_id: 1 + id % GROUPS,
            action: None,
        });
    }
    store.commit(batch).await.expect("write the topology");
}

// One worker for the callers, so the server keeps a core to itself on a 2-core machine.
#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let seconds = arg("--seconds", 10);
    let callers = arg("--callers", 32) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    prepare(dir.path()).await;

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_topom"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--product",
            "bench",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start topom");
    let pid = child.id().expect("pid");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = lines
        .next_line()
        .await
        .expect("read")
        .expect("LISTENING line");
    let addr = line.trim_start_matches("LISTENING ").to_owned();
    let endpoint = format!("http://{addr}");

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
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait().await;
}

/// Takes a response body as bytes, without decoding it.
#[derive(Default, Clone, Copy)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = ();
    type Decode = bytes::Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = ();
    type Error = tonic::Status;

    // ListSlotsRequest has no fields: its encoding is empty.
    fn encode(&mut self, _: (), _: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = bytes::Bytes;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        buf: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<bytes::Bytes>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}

async fn call_raw(grpc: &mut tonic::client::Grpc<tonic::transport::Channel>) -> usize {
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/topom.v1.Topom/ListSlots");
    let r = grpc
        .unary(tonic::Request::new(()), path, RawCodec)
        .await
        .expect("ListSlots");
    r.into_inner().len()
}

async fn run(endpoint: &str, pid: u32, callers: usize, seconds: u64, decode: bool, encoded: usize) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let cpu_before = cpu_ticks(pid);
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
    let cpu = cpu_ticks(pid) - cpu_before;
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    let ticks_per_sec = 100.0; // USER_HZ on Linux
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
    println!(
        "  latency p50        : {:.3} ms",
        pct(0.50).as_secs_f64() * 1e3
    );
    println!(
        "  latency p99        : {:.3} ms",
        pct(0.99).as_secs_f64() * 1e3
    );
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
