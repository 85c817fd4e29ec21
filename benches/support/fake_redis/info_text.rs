//! A plausible `INFO all` text of a Redis 7.2 server (about 4.7 KB, CRLF lines),
//! its numbers varied per server but deterministic, and its Replication section
//! true to the server's place in its group.

use std::fmt::Write;

/// A replica at index `i` of its group reports an offset `i * LAG_STEP` behind its
/// master, so topom's `lag_bytes` can be checked.
pub const LAG_STEP: i64 = 4096;

/// SplitMix64, so each responder varies its numbers deterministically.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub fn hex(&mut self, len: usize) -> String {
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
pub struct Role<'a> {
    /// Its own port.
    pub port: u16,
    /// Its index in its group (0 = master).
    pub index: usize,
    /// Its group master (itself for index 0).
    pub master: &'a str,
    /// The group's replicas (for the master's `slaveN` lines).
    pub replicas: &'a [String],
    /// The master's replication offset; a replica is `index * LAG_STEP` behind.
    pub master_offset: i64,
    /// The group's replication id.
    pub replid: &'a str,
}

/// A plausible `INFO all` text of a Redis 7.2 server, CRLF-separated.
pub fn info_text(seed: u64, role: &Role<'_>) -> String {
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
