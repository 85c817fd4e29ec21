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

use std::collections::HashSet;
use std::marker::PhantomData;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes};
use http::uri::PathAndQuery;
use prost::Message;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::client::Grpc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use topom::model::{Group, GroupServer, ServerKind};
use topom::pb;
use topom::store::{Store, StoreBatch, local::LocalStore};

const PRODUCT: &str = "bench";
const SERVERS_PER_GROUP: usize = 4;
/// A replica at index `i` of its group reports an offset `i * LAG_STEP` behind its
/// master, so topom's `lag_bytes` can be checked.
const LAG_STEP: i64 = 4096;
/// Big enough for a RefreshRedisStats answer at 1024 targets (~6 MB).
const MAX_MESSAGE: usize = 256 << 20;
/// HTTP/2 stream window of the bench clients: hyper's client default (2 MB). A
/// connection gets this much per stream it carries (at least hyper's 5 MB), as if
/// each subscriber had a connection of its own.
const STREAM_WINDOW: u32 = 2 << 20;

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

// ---- /proc ---------------------------------------------------------------------

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

/// utime + stime (fields 14 and 15) of a `/proc/.../stat` file, in clock ticks.
fn cpu_ticks(stat: &str) -> u64 {
    std::fs::read_to_string(stat)
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// The id of the calling thread, from the `/proc/thread-self` link.
fn thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// Clock ticks per second of `/proc/.../stat` (USER_HZ).
fn ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The soft limit on open files of this process (inherited by topom).
fn nofile_soft() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Busy and total jiffies of all CPUs, from the first line of `/proc/stat`.
fn system_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    // idle + iowait
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle.min(total), total)
}

/// CPU ticks of topom, the responders' thread, the clients' thread, this whole
/// process and the whole machine.
#[derive(Clone, Copy)]
struct Cpu {
    server: u64,
    responders: u64,
    clients: u64,
    bench: u64,
    busy: u64,
    total: u64,
}

/// CPU use over a measurement: ms per unit (a round) of each party, and how many
/// cores other processes on the machine kept busy meanwhile.
struct Usage {
    server: f64,
    responders: f64,
    clients: f64,
    others: f64,
}

struct CpuMeter {
    server: String,
    responders: String,
    clients: String,
    hz: f64,
    cores: f64,
}

impl CpuMeter {
    fn sample(&self) -> Cpu {
        let (busy, total) = system_ticks();
        Cpu {
            server: cpu_ticks(&self.server),
            responders: cpu_ticks(&self.responders),
            clients: cpu_ticks(&self.clients),
            bench: cpu_ticks("/proc/self/stat"),
            busy,
            total,
        }
    }

    fn per(&self, before: Cpu, units: f64) -> Usage {
        let now = self.sample();
        let d = |a: u64, b: u64| a.saturating_sub(b) as f64;
        let ms = |a: u64, b: u64| d(a, b) / self.hz * 1e3 / units.max(1.0);
        // /proc/stat counts every CPU: its total grows `cores` times as fast as a
        // process's clock.
        let ours = d(now.server, before.server) + d(now.bench, before.bench);
        let wall = d(now.total, before.total) / self.cores.max(1.0);
        Usage {
            server: ms(now.server, before.server),
            responders: ms(now.responders, before.responders),
            clients: ms(now.clients, before.clients),
            others: ((d(now.busy, before.busy) - ours) / wall.max(1.0)).max(0.0),
        }
    }
}

// ---- the fake INFO responder ----------------------------------------------------

/// SplitMix64, so each responder varies its numbers deterministically.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(len);
        s
    }
}

/// Redis's `bytesToHuman`.
fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2}G", b / 1024.0 / 1024.0 / 1024.0)
    }
}

/// Where a responder sits in the topology.
struct Role<'a> {
    /// Its own port.
    port: u16,
    /// Its index in its group (0 = master).
    index: usize,
    /// Its group master (itself for index 0).
    master: &'a str,
    /// The group's replicas (for the master's `slaveN` lines).
    replicas: &'a [String],
    /// The master's replication offset; a replica is `index * LAG_STEP` behind.
    master_offset: i64,
    /// The group's replication id.
    replid: &'a str,
}

/// A plausible `INFO all` text of a Redis 7.2 server, CRLF-separated.
fn info_text(seed: u64, role: &Role<'_>) -> String {
    use std::fmt::Write;
    let mut r = Rng(seed);
    let mut s = String::with_capacity(6 * 1024);
    let uptime = r.range(86_400, 90 * 86_400);
    let port = role.port;
    let offset = role.master_offset - role.index as i64 * LAG_STEP;
    let used = r.range(64 << 20, 6 << 30);
    let rss = used + used / 10 + r.range(0, 32 << 20);
    let peak = used + r.range(0, used / 4);
    let maxmemory: u64 = 8 << 30;
    let startup = 866_000 + r.range(0, 4096);
    let overhead = startup + r.range(1 << 20, 64 << 20);
    let dataset = used - overhead.min(used);
    let clients = r.range(8, 900);
    let commands = r.range(1 << 30, 1 << 36);
    let keys0 = r.range(10_000, 5_000_000);
    let keys1 = r.range(0, 20_000);
    let now_us = 1_718_000_000_000_000 + r.range(0, 1 << 30);
    let _ = write!(
        s,
        "# Server\r\n\
         redis_version:7.2.4\r\n\
         redis_git_sha1:00000000\r\n\
         redis_git_dirty:0\r\n\
         redis_build_id:{build}\r\n\
         redis_mode:standalone\r\n\
         os:Linux 6.1.0-18-amd64 x86_64\r\n\
         arch_bits:64\r\n\
         monotonic_clock:POSIX clock_gettime\r\n\
         multiplexing_api:epoll\r\n\
         atomicvar_api:c11-builtin\r\n\
         gcc_version:12.2.0\r\n\
         process_id:{pid}\r\n\
         process_supervised:systemd\r\n\
         run_id:{run_id}\r\n\
         tcp_port:{port}\r\n\
         server_time_usec:{now_us}\r\n\
         uptime_in_seconds:{uptime}\r\n\
         uptime_in_days:{days}\r\n\
         hz:10\r\n\
         configured_hz:10\r\n\
         lru_clock:{lru}\r\n\
         executable:/usr/bin/redis-server\r\n\
         config_file:/etc/redis/redis-{port}.conf\r\n\
         io_threads_active:0\r\n\
         listener0:name=tcp,bind=127.0.0.1,port={port}\r\n\
         \r\n",
        build = r.hex(16),
        pid = r.range(1000, 4_000_000),
        run_id = r.hex(40),
        days = uptime / 86_400,
        lru = r.range(0, 1 << 24),
    );
    let _ = write!(
        s,
        "# Clients\r\n\
         connected_clients:{clients}\r\n\
         cluster_connections:0\r\n\
         maxclients:10000\r\n\
         client_recent_max_input_buffer:{inbuf}\r\n\
         client_recent_max_output_buffer:{outbuf}\r\n\
         blocked_clients:{blocked}\r\n\
         tracking_clients:0\r\n\
         pubsub_clients:0\r\n\
         total_watched_keys:0\r\n\
         total_blocking_keys:0\r\n\
         \r\n",
        inbuf = r.range(8, 40) * 1024,
        outbuf = r.range(0, 20) * 1024,
        blocked = r.range(0, 3),
    );
    let _ = write!(
        s,
        "# Memory\r\n\
         used_memory:{used}\r\n\
         used_memory_human:{used_h}\r\n\
         used_memory_rss:{rss}\r\n\
         used_memory_rss_human:{rss_h}\r\n\
         used_memory_peak:{peak}\r\n\
         used_memory_peak_human:{peak_h}\r\n\
         used_memory_peak_perc:{peak_perc:.2}%\r\n\
         used_memory_overhead:{overhead}\r\n\
         used_memory_startup:{startup}\r\n\
         used_memory_dataset:{dataset}\r\n\
         used_memory_dataset_perc:{dataset_perc:.2}%\r\n\
         allocator_allocated:{alloc}\r\n\
         allocator_active:{active}\r\n\
         allocator_resident:{resident}\r\n\
         total_system_memory:33558396928\r\n\
         total_system_memory_human:31.25G\r\n\
         used_memory_lua:31744\r\n\
         maxmemory:{maxmemory}\r\n\
         maxmemory_human:{max_h}\r\n\
         maxmemory_policy:allkeys-lru\r\n\
         allocator_frag_ratio:1.01\r\n\
         allocator_frag_bytes:{frag_bytes}\r\n\
         allocator_rss_ratio:1.05\r\n\
         allocator_rss_bytes:{rss_bytes}\r\n\
         rss_overhead_ratio:1.02\r\n\
         rss_overhead_bytes:{rss_over}\r\n\
         mem_fragmentation_ratio:{frag:.2}\r\n\
         mem_fragmentation_bytes:{frag_b}\r\n\
         mem_not_counted_for_evict:0\r\n\
         mem_replication_backlog:1048592\r\n\
         mem_total_replication_buffers:1066208\r\n\
         mem_clients_slaves:{mem_slaves}\r\n\
         mem_clients_normal:{mem_normal}\r\n\
         mem_allocator:jemalloc-5.3.0\r\n\
         active_defrag_running:0\r\n\
         lazyfree_pending_objects:0\r\n\
         lazyfreed_objects:{lazy}\r\n\
         \r\n",
        used_h = human(used),
        rss_h = human(rss),
        peak_h = human(peak),
        peak_perc = used as f64 * 100.0 / peak as f64,
        dataset_perc = dataset as f64 * 100.0 / (used - startup.min(used)).max(1) as f64,
        alloc = used + r.range(0, 1 << 20),
        active = used + used / 100,
        resident = used + used / 20,
        max_h = human(maxmemory),
        frag_bytes = used / 100,
        rss_bytes = used / 20,
        rss_over = used / 50,
        frag = rss as f64 / used as f64,
        frag_b = rss - used,
        mem_slaves = if role.index == 0 {
            role.replicas.len() as u64 * 17_632
        } else {
            0
        },
        mem_normal = clients * 22_428,
        lazy = r.range(0, 10_000),
    );
    let _ = write!(
        s,
        "# Persistence\r\n\
         loading:0\r\n\
         current_cow_peak:0\r\n\
         current_cow_size:0\r\n\
         current_save_keys_processed:0\r\n\
         current_save_keys_total:0\r\n\
         rdb_changes_since_last_save:{changes}\r\n\
         rdb_bgsave_in_progress:0\r\n\
         rdb_last_save_time:{last_save}\r\n\
         rdb_last_bgsave_status:ok\r\n\
         rdb_last_bgsave_time_sec:{bgsave_sec}\r\n\
         rdb_current_bgsave_time_sec:-1\r\n\
         rdb_saves:{saves}\r\n\
         rdb_last_cow_size:{cow}\r\n\
         aof_enabled:0\r\n\
         aof_rewrite_in_progress:0\r\n\
         aof_rewrite_scheduled:0\r\n\
         aof_last_rewrite_time_sec:-1\r\n\
         aof_current_rewrite_time_sec:-1\r\n\
         aof_last_bgrewrite_status:ok\r\n\
         aof_rewrites:0\r\n\
         aof_rewrites_consecutive_failures:0\r\n\
         aof_last_write_status:ok\r\n\
         aof_last_cow_size:0\r\n\
         \r\n",
        changes = r.range(0, 100_000),
        last_save = now_us / 1_000_000 - r.range(0, 3600),
        bgsave_sec = r.range(0, 30),
        saves = r.range(10, 5000),
        cow = r.range(0, 64) << 20,
    );
    let net_in = commands * r.range(30, 200);
    let _ = write!(
        s,
        "# Stats\r\n\
         total_connections_received:{conns}\r\n\
         total_commands_processed:{commands}\r\n\
         instantaneous_ops_per_sec:{ops}\r\n\
         total_net_input_bytes:{net_in}\r\n\
         total_net_output_bytes:{net_out}\r\n\
         total_net_repl_input_bytes:{repl_in}\r\n\
         total_net_repl_output_bytes:{repl_out}\r\n\
         instantaneous_input_kbps:{in_kbps:.2}\r\n\
         instantaneous_output_kbps:{out_kbps:.2}\r\n\
         instantaneous_input_repl_kbps:0.00\r\n\
         instantaneous_output_repl_kbps:{repl_kbps:.2}\r\n\
         rejected_connections:0\r\n\
         sync_full:{sync_full}\r\n\
         sync_partial_ok:{sync_ok}\r\n\
         sync_partial_err:0\r\n\
         expired_keys:{expired}\r\n\
         expired_stale_perc:{stale:.2}\r\n\
         expired_time_cap_reached_count:0\r\n\
         expire_cycle_cpu_milliseconds:{expire_ms}\r\n\
         evicted_keys:{evicted}\r\n\
         evicted_clients:0\r\n\
         total_eviction_exceeded_time:0\r\n\
         current_eviction_exceeded_time:0\r\n\
         keyspace_hits:{hits}\r\n\
         keyspace_misses:{misses}\r\n\
         pubsub_channels:0\r\n\
         pubsub_patterns:0\r\n\
         pubsubshard_channels:0\r\n\
         latest_fork_usec:{fork_us}\r\n\
         total_forks:{forks}\r\n\
         migrate_cached_sockets:0\r\n\
         slave_expires_tracked_keys:0\r\n\
         unexpected_error_replies:0\r\n\
         total_error_replies:{errors}\r\n\
         dump_payload_sanitizations:0\r\n\
         total_reads_processed:{reads}\r\n\
         total_writes_processed:{writes}\r\n\
         reply_buffer_shrinks:{shrinks}\r\n\
         reply_buffer_expands:{expands}\r\n\
         \r\n",
        conns = r.range(1000, 10_000_000),
        ops = r.range(100, 120_000),
        net_out = net_in * 3,
        repl_in = if role.index == 0 { 0 } else { net_in / 2 },
        repl_out = if role.index == 0 { net_in / 2 * 3 } else { 0 },
        in_kbps = r.range(10, 90_000) as f64 / 7.0,
        out_kbps = r.range(10, 200_000) as f64 / 7.0,
        repl_kbps = if role.index == 0 {
            r.range(10, 60_000) as f64 / 7.0
        } else {
            0.0
        },
        sync_full = if role.index == 0 {
            role.replicas.len()
        } else {
            0
        },
        sync_ok = r.range(0, 20),
        expired = r.range(0, 50_000_000),
        stale = r.range(0, 3000) as f64 / 100.0,
        expire_ms = r.range(1000, 5_000_000),
        evicted = r.range(0, 1_000_000),
        hits = commands / 2,
        misses = commands / 9,
        fork_us = r.range(500, 90_000),
        forks = r.range(10, 5000),
        errors = r.range(0, 10_000),
        reads = commands + r.range(0, 1 << 20),
        writes = commands + r.range(0, 1 << 20),
        shrinks = r.range(0, 1_000_000),
        expands = r.range(0, 1_000_000),
    );
    let backlog_first = (offset - 1_048_575).max(1);
    if role.index == 0 {
        let _ = write!(
            s,
            "# Replication\r\nrole:master\r\nconnected_slaves:{}\r\n",
            role.replicas.len()
        );
        for (i, replica) in role.replicas.iter().enumerate() {
            let rport = replica.rsplit_once(':').map_or("0", |(_, p)| p);
            let _ = write!(
                s,
                "slave{i}:ip=127.0.0.1,port={rport},state=online,offset={},lag=0\r\n",
                role.master_offset - (i as i64 + 1) * LAG_STEP
            );
        }
    } else {
        let (mhost, mport) = role.master.rsplit_once(':').unwrap_or(("127.0.0.1", "0"));
        let _ = write!(
            s,
            "# Replication\r\n\
             role:slave\r\n\
             master_host:{mhost}\r\n\
             master_port:{mport}\r\n\
             master_link_status:up\r\n\
             master_last_io_seconds_ago:{io_ago}\r\n\
             master_sync_in_progress:0\r\n\
             slave_read_repl_offset:{offset}\r\n\
             slave_repl_offset:{offset}\r\n\
             slave_priority:100\r\n\
             slave_read_only:1\r\n\
             replica_announced:1\r\n\
             connected_slaves:0\r\n",
            io_ago = r.range(0, 1),
        );
    }
    let _ = write!(
        s,
        "master_failover_state:no-failover\r\n\
         master_replid:{replid}\r\n\
         master_replid2:0000000000000000000000000000000000000000\r\n\
         master_repl_offset:{offset}\r\n\
         second_repl_offset:-1\r\n\
         repl_backlog_active:1\r\n\
         repl_backlog_size:1048576\r\n\
         repl_backlog_first_byte_offset:{backlog_first}\r\n\
         repl_backlog_histlen:{histlen}\r\n\
         \r\n",
        replid = role.replid,
        histlen = offset - backlog_first + 1,
    );
    let sys = r.range(1000, 1_000_000) as f64 / 100.0;
    let user = r.range(1000, 2_000_000) as f64 / 100.0;
    let _ = write!(
        s,
        "# CPU\r\n\
         used_cpu_sys:{sys:.6}\r\n\
         used_cpu_user:{user:.6}\r\n\
         used_cpu_sys_children:{sys_c:.6}\r\n\
         used_cpu_user_children:{user_c:.6}\r\n\
         used_cpu_sys_main_thread:{sys_m:.6}\r\n\
         used_cpu_user_main_thread:{user_m:.6}\r\n\
         \r\n",
        sys_c = sys / 50.0,
        user_c = user / 20.0,
        sys_m = sys * 0.97,
        user_m = user * 0.99,
    );
    let _ = write!(
        s,
        "# Keyspace\r\n\
         db0:keys={keys0},expires={exp0},avg_ttl={ttl0},subexpiry=0\r\n\
         db1:keys={keys1},expires={exp1},avg_ttl={ttl1},subexpiry=0\r\n",
        exp0 = keys0 / 3,
        ttl0 = r.range(1000, 86_400_000),
        exp1 = keys1 / 5,
        ttl1 = r.range(0, 86_400_000),
    );
    s
}

/// A responder's canned answers.
struct Info {
    /// `INFO` / `INFO all` as a RESP bulk string.
    bulk: Bytes,
    /// The text, for `INFO <section>`.
    text: String,
    /// How many `field:value` lines the text has.
    fields: usize,
}

impl Info {
    fn new(text: String) -> Info {
        let mut bulk = format!("${}\r\n", text.len()).into_bytes();
        bulk.extend_from_slice(text.as_bytes());
        bulk.extend_from_slice(b"\r\n");
        let fields = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#') && l.contains(':'))
            .count();
        Info {
            bulk: Bytes::from(bulk),
            text,
            fields,
        }
    }

    /// `INFO <section>`: that section, or an empty bulk string if unknown.
    fn section(&self, name: &[u8], out: &mut Vec<u8>) {
        let name = String::from_utf8_lossy(name);
        let body = self
            .text
            .split("\r\n\r\n")
            .find(|sec| {
                sec.strip_prefix("# ")
                    .and_then(|s| s.split("\r\n").next())
                    .is_some_and(|h| h.eq_ignore_ascii_case(name.trim()))
            })
            .unwrap_or("");
        out.extend_from_slice(format!("${}\r\n{body}\r\n", body.len()).as_bytes());
    }
}

enum Behaviour {
    Answer(Info),
    Silent,
}

/// The responders' runtime: a current-thread runtime driven by its own thread.
struct Responders {
    handle: tokio::runtime::Handle,
    tid: u32,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responders {
    fn start() -> Responders {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("responder runtime");
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("fake-redis".into())
            .spawn(move || {
                let _ = tid_tx.send(thread_id().unwrap_or(0));
                let _ = rt.block_on(stopped);
                // Dropping the runtime closes every listener and connection.
            })
            .expect("responder thread");
        let tid = tid_rx.recv().expect("responder thread id");
        Responders {
            handle,
            tid,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Serves each listener (already bound) on the responders' runtime.
    fn serve(&self, listeners: Vec<(std::net::TcpListener, Behaviour)>) {
        for (l, behaviour) in listeners {
            self.handle.spawn(async move {
                let l = tokio::net::TcpListener::from_std(l).expect("register listener");
                let behaviour = Arc::new(behaviour);
                loop {
                    match l.accept().await {
                        Ok((sock, _)) => {
                            let b = behaviour.clone();
                            tokio::spawn(async move {
                                match &*b {
                                    Behaviour::Answer(info) => answer(sock, info).await,
                                    Behaviour::Silent => swallow(sock).await,
                                }
                            });
                        }
                        // Out of file descriptors, most likely: back off.
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            });
        }
    }
}

impl Drop for Responders {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A silent target: reads and discards until the peer goes.
async fn swallow(mut sock: tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// Serves RESP2 commands (pipelined or not) until the peer goes.
async fn answer(mut sock: tokio::net::TcpStream, info: &Info) {
    let _ = sock.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut out: Vec<u8> = Vec::with_capacity(8 * 1024);
    loop {
        let mut used = 0;
        loop {
            match parse_command(&buf[used..]) {
                Ok(Some((args, n))) => {
                    let base = used;
                    let args: Vec<&[u8]> = args
                        .iter()
                        .map(|&(a, b)| &buf[base + a..base + b])
                        .collect();
                    respond(&args, info, &mut out);
                    used += n;
                }
                Ok(None) => break,
                Err(e) => {
                    out.extend_from_slice(format!("-ERR Protocol error: {e}\r\n").as_bytes());
                    let _ = sock.write_all(&out).await;
                    return;
                }
            }
        }
        buf.drain(..used);
        if !out.is_empty() {
            if sock.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        match sock.read_buf(&mut buf).await {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

/// A parsed command: the byte range of each argument, and the bytes it took.
type Command = (Vec<(usize, usize)>, usize);

/// One command from the front of `buf`; `None` if incomplete. Handles RESP arrays
/// of bulk strings and inline commands.
fn parse_command(buf: &[u8]) -> Result<Option<Command>, &'static str> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != b'*' {
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let mut args = Vec::new();
        let mut start = None;
        for (i, &b) in buf[..nl].iter().enumerate() {
            let space = b.is_ascii_whitespace();
            match (start, space) {
                (None, false) => start = Some(i),
                (Some(s), true) => {
                    args.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            args.push((s, nl));
        }
        return Ok(Some((args, nl + 1)));
    }
    let Some((n, mut pos)) = int_line(buf, 1)? else {
        return Ok(None);
    };
    if n > 1024 {
        return Err("too many arguments");
    }
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        match buf.get(pos) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err("expected '$'"),
        }
        let Some((len, start)) = int_line(buf, pos + 1)? else {
            return Ok(None);
        };
        if len > 1 << 20 {
            return Err("argument too long");
        }
        if buf.len() < start + len + 2 {
            return Ok(None);
        }
        args.push((start, start + len));
        pos = start + len + 2;
    }
    Ok(Some((args, pos)))
}

/// A decimal number ending in CRLF at `start`: its value and the position after.
fn int_line(buf: &[u8], start: usize) -> Result<Option<(usize, usize)>, &'static str> {
    let Some(rel) = buf
        .get(start..)
        .and_then(|b| b.windows(2).position(|w| w == b"\r\n"))
    else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[start..start + rel]).map_err(|_| "bad length")?;
    let n = text.parse().map_err(|_| "bad length")?;
    Ok(Some((n, start + rel + 2)))
}

fn respond(args: &[&[u8]], info: &Info, out: &mut Vec<u8>) {
    let Some(cmd) = args.first() else {
        return; // an empty command gets no reply, as in Redis
    };
    if cmd.eq_ignore_ascii_case(b"INFO") {
        match args.get(1) {
            None => out.extend_from_slice(&info.bulk),
            Some(s)
                if s.eq_ignore_ascii_case(b"all")
                    || s.eq_ignore_ascii_case(b"default")
                    || s.eq_ignore_ascii_case(b"everything") =>
            {
                out.extend_from_slice(&info.bulk)
            }
            Some(section) => info.section(section, out),
        }
    } else if cmd.eq_ignore_ascii_case(b"PING") {
        out.extend_from_slice(b"+PONG\r\n");
    } else if cmd.eq_ignore_ascii_case(b"AUTH") {
        out.extend_from_slice(b"+OK\r\n");
    } else {
        let name = String::from_utf8_lossy(cmd);
        out.extend_from_slice(format!("-ERR unknown command '{name}'\r\n").as_bytes());
    }
}

/// The fake servers of a run: `live[i]` answers INFO as member `i % 4` of group
/// `i / 4`; `silent` never answer.
struct Targets {
    live: Vec<String>,
    silent: Vec<String>,
    info_bytes: (usize, usize),
    info_fields: usize,
}

fn bind_local() -> std::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.set_nonblocking(true).expect("non-blocking listener");
    l
}

fn start_targets(responders: &Responders, live: usize, silent: usize) -> Targets {
    let live_l: Vec<_> = (0..live).map(|_| bind_local()).collect();
    let addrs: Vec<String> = live_l
        .iter()
        .map(|l| l.local_addr().expect("local addr").to_string())
        .collect();
    let mut seeds = Rng(0x5eed);
    let mut info_bytes = (usize::MAX, 0);
    let mut info_fields = usize::MAX;
    let mut served = Vec::new();
    for (i, l) in live_l.into_iter().enumerate() {
        let g = i / SERVERS_PER_GROUP * SERVERS_PER_GROUP;
        let group_end = (g + SERVERS_PER_GROUP).min(addrs.len());
        let mut group_rng = Rng(g as u64 + 1);
        let master_offset = group_rng.range(1 << 30, 1 << 40) as i64;
        let replid = group_rng.hex(40);
        let text = info_text(
            seeds.next(),
            &Role {
                port: l.local_addr().expect("local addr").port(),
                index: i - g,
                master: &addrs[g],
                replicas: &addrs[g + 1..group_end],
                master_offset,
                replid: &replid,
            },
        );
        let info = Info::new(text);
        info_bytes = (
            info_bytes.0.min(info.bulk.len()),
            info_bytes.1.max(info.bulk.len()),
        );
        info_fields = info_fields.min(info.fields);
        served.push((l, Behaviour::Answer(info)));
    }
    let silent_l: Vec<_> = (0..silent).map(|_| bind_local()).collect();
    let silent_addrs = silent_l
        .iter()
        .map(|l| l.local_addr().expect("local addr").to_string())
        .collect();
    served.extend(silent_l.into_iter().map(|l| (l, Behaviour::Silent)));
    responders.serve(served);
    Targets {
        live: addrs,
        silent: silent_addrs,
        info_bytes,
        info_fields,
    }
}

// ---- topom ---------------------------------------------------------------------

/// Groups of 4 consecutive addresses.
fn groups_of(addrs: &[String]) -> Vec<Vec<String>> {
    addrs
        .chunks(SERVERS_PER_GROUP)
        .map(<[String]>::to_vec)
        .collect()
}

async fn seed(dir: &Path, groups: &[Vec<String>]) {
    let raw = Arc::new(LocalStore::open(dir).expect("open store"));
    let store = Store::new(raw, PRODUCT);
    let mut batch = StoreBatch::default();
    for (i, addrs) in groups.iter().enumerate() {
        let mut g = Group::new(i as u32 + 1);
        for (j, a) in addrs.iter().enumerate() {
            let mut s = GroupServer::new(a.clone(), "dc1", ServerKind::Redis);
            s.replica_group = j > 0;
            g.servers.push(s);
        }
        batch.put_group(&g);
    }
    store.commit(batch).await.expect("write the topology");
}

/// The release `topom` binary on a seeded local store; killed on drop.
struct Topom {
    child: tokio::process::Child,
    pid: u32,
    addr: String,
    dir: tempfile::TempDir,
}

impl Topom {
    async fn start(groups: &[Vec<String>], period: &str) -> Topom {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        seed(&data, groups).await;
        let conf = dir.path().join("topom.toml");
        std::fs::write(&conf, format!("stats_refresh_period = \"{period}\"\n"))
            .expect("write config");
        let log = std::fs::File::create(dir.path().join("topom.log")).expect("log file");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_topom"))
            .arg("--config")
            .arg(&conf)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--product",
                PRODUCT,
                "--data-dir",
            ])
            .arg(&data)
            .env("RUST_LOG", "warn")
            .env_remove("TOPOM_ADMIN_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start topom");
        let pid = child.id().expect("topom pid");
        let stdout = child.stdout.take().expect("topom stdout");
        let line = tokio::time::timeout(
            Duration::from_secs(10),
            BufReader::new(stdout).lines().next_line(),
        )
        .await;
        let t = |addr: String| Topom {
            child,
            pid,
            addr,
            dir,
        };
        match line {
            Ok(Ok(Some(l))) if l.starts_with("LISTENING ") => {
                t(l["LISTENING ".len()..].trim().to_owned())
            }
            other => {
                let t = t(String::new());
                panic!("topom did not start ({other:?}); log:\n{}", t.log());
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("topom.log")).unwrap_or_default()
    }

    /// A connection meant to carry up to `streams` concurrent streams.
    async fn channel(&self, streams: usize) -> Channel {
        let window = (STREAM_WINDOW as usize * streams).clamp(5 << 20, i32::MAX as usize);
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("endpoint")
            .tcp_nodelay(true)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(window as u32)
            .connect()
            .await
            .expect("connect to topom")
    }

    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

// ---- gRPC helpers ----------------------------------------------------------------

/// Encodes a request with prost, takes the response body as bytes.
struct RawCodec<Req>(PhantomData<fn(Req)>);

impl<Req> Default for RawCodec<Req> {
    fn default() -> Self {
        RawCodec(PhantomData)
    }
}

struct ReqEncoder<Req>(PhantomData<fn(Req)>);
struct BytesDecoder;

impl<Req: Message + 'static> Codec for RawCodec<Req> {
    type Encode = Req;
    type Decode = Bytes;
    type Encoder = ReqEncoder<Req>;
    type Decoder = BytesDecoder;

    fn encoder(&mut self) -> ReqEncoder<Req> {
        ReqEncoder(PhantomData)
    }

    fn decoder(&mut self) -> BytesDecoder {
        BytesDecoder
    }
}

impl<Req: Message> Encoder for ReqEncoder<Req> {
    type Item = Req;
    type Error = Status;

    fn encode(&mut self, item: Req, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}

/// Just the head of a RefreshRedisStatsResponse; prost skips the servers.
#[derive(Clone, PartialEq, prost::Message)]
struct RefreshHead {
    #[prost(uint64, tag = "1")]
    round: u64,
    #[prost(message, optional, tag = "4")]
    elapsed: Option<prost_types::Duration>,
}

/// Just the head of a WatchStatsResponse; prost skips the servers.
#[derive(Clone, PartialEq, prost::Message)]
struct WatchHead {
    #[prost(uint64, tag = "1")]
    round: u64,
    #[prost(message, optional, tag = "3")]
    finished_at: Option<prost_types::Timestamp>,
}

/// Just `stats.round` of a GetStatsResponse.
#[derive(Clone, PartialEq, prost::Message)]
struct GetStatsHead {
    #[prost(message, optional, tag = "1")]
    stats: Option<SnapshotHead>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SnapshotHead {
    #[prost(uint64, tag = "7")]
    round: u64,
}

fn grpc(channel: Channel) -> Grpc<Channel> {
    Grpc::new(channel).max_decoding_message_size(MAX_MESSAGE)
}

/// One RefreshRedisStats; the raw response and the client-observed time.
async fn refresh(grpc: &mut Grpc<Channel>, timeout: Option<Duration>) -> (Bytes, Duration) {
    grpc.ready().await.expect("channel ready");
    let req = pb::RefreshRedisStatsRequest {
        timeout: timeout.map(|t| prost_types::Duration::try_from(t).expect("a duration")),
    };
    let t0 = Instant::now();
    let r = grpc
        .unary(
            tonic::Request::new(req),
            PathAndQuery::from_static("/topom.v1.Topom/RefreshRedisStats"),
            RawCodec::<pb::RefreshRedisStatsRequest>::default(),
        )
        .await
        .expect("RefreshRedisStats");
    (r.into_inner(), t0.elapsed())
}

/// One GetStats, taken as bytes; the client-observed time.
async fn get_stats_raw(grpc: &mut Grpc<Channel>) -> (usize, Duration) {
    grpc.ready().await.expect("channel ready");
    let t0 = Instant::now();
    let r = grpc
        .unary(
            tonic::Request::new(pb::GetStatsRequest {}),
            PathAndQuery::from_static("/topom.v1.Topom/GetStats"),
            RawCodec::<pb::GetStatsRequest>::default(),
        )
        .await
        .expect("GetStats");
    (r.into_inner().len(), t0.elapsed())
}

fn head(raw: &Bytes) -> (u64, Duration) {
    let h = RefreshHead::decode(raw.clone()).expect("decode RefreshRedisStatsResponse");
    let elapsed = h
        .elapsed
        .and_then(|d| Duration::try_from(d).ok())
        .expect("a round elapsed time");
    (h.round, elapsed)
}

/// Checks a full round: every target present; silent ones timed out, live ones
/// with the INFO of the right responder and topom's derived summary.
fn check_round(
    raw: &Bytes,
    live: &[String],
    silent: &HashSet<String>,
    min_fields: usize,
) -> Result<(), String> {
    let r =
        pb::RefreshRedisStatsResponse::decode(raw.clone()).map_err(|e| format!("decode: {e}"))?;

    let want: HashSet<&str> = live
        .iter()
        .map(String::as_str)
        .chain(silent.iter().map(String::as_str))
        .collect();
    if r.servers.len() != want.len() {
        return Err(format!(
            "{} servers in the round, {} in the topology",
            r.servers.len(),
            want.len()
        ));
    }
    let mut bad = Vec::new();
    for s in &r.servers {
        let Some(st) = s.stats.as_ref() else {
            bad.push(format!("{}: no stats", s.addr));
            continue;
        };
        if !want.contains(s.addr.as_str()) {
            bad.push(format!("{}: not in the topology", s.addr));
        } else if silent.contains(&s.addr) {
            if !st.timeout || !st.fields.is_empty() {
                bad.push(format!(
                    "{} (silent): timeout {}, {} fields, error {:?}",
                    s.addr,
                    st.timeout,
                    st.fields.len(),
                    st.error
                ));
            }
        } else {
            let port = s.addr.rsplit_once(':').map_or("", |(_, p)| p);
            let sum = st.summary.clone().unwrap_or_default();
            let want_role = if s.index == 0 { "master" } else { "slave" };
            let ok = !st.timeout
                && st.error.is_empty()
                && st.fields.len() >= min_fields
                && st.fields.get("tcp_port").map(String::as_str) == Some(port)
                && sum.role == want_role
                && sum.redis_version == "7.2.4"
                && sum.used_memory > 0;
            if !ok {
                bad.push(format!(
                    "{} (live, index {}): timeout {}, error {:?}, {} fields, role {:?}",
                    s.addr,
                    s.index,
                    st.timeout,
                    st.error,
                    st.fields.len(),
                    sum.role
                ));
            } else if s.index > 0 && sum.lag_bytes != s.index as i64 * LAG_STEP {
                // Only when the group master answered too (it is never silent here).
                bad.push(format!(
                    "{}: lag_bytes {} (expected {})",
                    s.addr,
                    sum.lag_bytes,
                    s.index as i64 * LAG_STEP
                ));
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} servers wrong, e.g. {}",
            bad.len(),
            r.servers.len(),
            bad[..bad.len().min(3)].join("; ")
        ))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

// ---- the runs ----------------------------------------------------------------------

/// 1. Round time at each size, all targets live, default 1 s deadline.
async fn round_time(plan: &Plan, targets: &Targets, meter_for: impl Fn(u32) -> CpuMeter) {
    println!(
        "-- 1. RefreshRedisStats rounds, all targets live, 1 s deadline ({} rounds per size after {} warm-up) --",
        plan.rounds, plan.warmup
    );
    let none = HashSet::new();
    for &n in &plan.round_sizes {
        let live = &targets.live[..n];
        let server = Topom::start(&groups_of(live), "1h").await;
        let meter = meter_for(server.pid);
        let mut g = grpc(server.channel(1).await);
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
        for _ in 0..plan.rounds {
            let (raw, rpc) = refresh(&mut g, None).await;
            let (round, elapsed) = head(&raw);
            assert_eq!(round, prev_round + 1, "rounds run one after the other");
            prev_round = round;
            size = raw.len();
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
            pct(&s, 0.5),
            pct(&s, 0.99),
            pct(&r, 0.5),
            pct(&r, 0.99),
            cpu.server,
            size as f64 / 1e6,
        );
        println!(
            "                     max {:.2} ms (server); per round on the same cores: responders {:.2} ms cpu, bench client {:.2} ms cpu; other processes {:.2} cores; topom RSS {:.1} MB",
            s.last().copied().unwrap_or(f64::NAN),
            cpu.responders,
            cpu.clients,
            cpu.others,
            rss_kib(server.pid) as f64 / 1024.0
        );
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
            pct(&gs, 0.5),
            (cpu.server - get_cpu.server).max(0.0)
        );
        server.stop().await;
    }
    println!(
        "   (target: p99 <= 50 ms at 1024 targets, server elapsed; p99 is nearest-rank: with {} samples it is the max)",
        plan.rounds
    );
}

/// Reads `watch` up to `round`: when its first and last server gave up, in ms
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
async fn silent_round(plan: &Plan, targets: &Targets, meter_for: impl Fn(u32) -> CpuMeter) {
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
    let server = Topom::start(&groups_of(&addrs), "1h").await;
    let meter = meter_for(server.pid);
    let mut g = grpc(server.channel(1).await);
    for _ in 0..plan.warmup {
        let (raw, _) = refresh(&mut g, Some(plan.deadline)).await;
        if let Err(e) = check_round(&raw, &live, &silent, targets.info_fields) {
            panic!("silent-round set-up is wrong: {e}\nlog:\n{}", server.log());
        }
    }
    // A WatchStats stream of just the silent targets: each round's started_at and
    // finished_at, and when each silent probe gave up.
    let mut wg = grpc(server.channel(1).await);
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
        pct(&s, 0.5),
        pct(&s, 0.99),
        max,
        pct(&s, 0.5) - d,
        pct(&s, 0.99) - d,
        max - d,
        pct(&r, 0.5),
        pct(&r, 0.99),
    );
    let (fg, lg, al) = (
        sorted(first_gave_up),
        sorted(last_gave_up),
        sorted(after_last),
    );
    println!(
        "           where the time goes (p50 over rounds, from WatchStats started_at / finished_at and each probe's time): silent probes gave up {:.2} .. {:.2} ms after the start; the round finished {:.2} ms after the last probe",
        pct(&fg, 0.5),
        pct(&lg, 0.5),
        pct(&al, 0.5)
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

/// The round the server last published, from GetStats (only `round` decoded).
async fn server_round(g: &mut Grpc<Channel>) -> u64 {
    g.ready().await.expect("channel ready");
    let r = g
        .unary(
            tonic::Request::new(pb::GetStatsRequest {}),
            PathAndQuery::from_static("/topom.v1.Topom/GetStats"),
            tonic_prost::ProstCodec::<pb::GetStatsRequest, GetStatsHead>::default(),
        )
        .await
        .expect("GetStats");
    r.into_inner().stats.map_or(0, |s| s.round)
}

/// 3. WatchStats fan-out, every subscriber sending `req`.
async fn fan_out(
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
    let server = Topom::start(&groups_of(&targets.live[..n]), &period).await;
    let meter = meter_for(server.pid);

    // Wait for round 2 (the pools warm, the round cache filled) and size a message.
    let mut g = grpc(server.channel(1).await);
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
    let rss_before = rss_kib(server.pid);

    let shared = Arc::new(Watchers {
        target: AtomicU64::new(u64::MAX),
        ..Default::default()
    });
    let stop = CancellationToken::new();
    let mut channels = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        channels.push(server.channel(subs.div_ceil(plan.connections)).await);
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
    let rss_connected = rss_kib(server.pid);

    // Measure the next `watch_rounds` rounds the server publishes.
    let first = server_round(&mut g).await;
    let last = first + plan.watch_rounds;
    shared.target.store(last, Ordering::Relaxed);
    let before = meter.sample();
    let t0 = Instant::now();
    let limit = plan.watch_period * (plan.watch_rounds as u32 + 5);
    let mut rss_samples = Vec::new();
    while shared.reached.load(Ordering::Relaxed) < subs && t0.elapsed() < limit {
        rss_samples.push(rss_kib(server.pid) as f64);
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
    let rss_steady = pct(&rss_sorted, 0.5);
    let rss_peak = rss_sorted.last().copied().unwrap_or(f64::NAN);
    println!(
        "watch {subs} {what} subscribers, {n} targets: delivery delay p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (now - finished_at), rounds {}..={last}",
        pct(&d, 0.5),
        pct(&d, 0.99),
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

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // `cargo bench` passes `--bench`, which is ignored.
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--only 1|2|3|3f`: one part (3f = the fan-out with filtered, small messages).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1).cloned());
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
        server: format!("/proc/{pid}/stat"),
        responders: format!("/proc/self/task/{}/stat", responders.tid),
        clients: format!("/proc/self/task/{clients_tid}/stat"),
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
        round_time(&plan, &targets, meter_for).await;
    }
    if run("2") {
        silent_round(&plan, &targets, meter_for).await;
    }
    if run("3") {
        fan_out(&plan, &targets, meter_for, pb::WatchStatsRequest::default()).await;
    }
    if run("3f") {
        // The same fan-out with small messages: the cost of the mechanism itself.
        let small = pb::WatchStatsRequest {
            fields: vec!["used_memory".into()],
            ..Default::default()
        };
        fan_out(&plan, &targets, meter_for, small).await;
    }
    drop(responders);
}
