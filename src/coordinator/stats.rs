//! Stats rounds: probe every group server and every Sentinel concurrently, each
//! with its own deadline, and publish the round as one immutable value.
//!
//! No coordinator lock is held while waiting on the network: the targets are read
//! from the cache first, then probed. Rounds never overlap (a tokio mutex), and a
//! new round replaces the previous one atomically; servers no longer in the
//! topology simply are not in the new round.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::{JoinError, JoinSet};

use super::error::{invalid, not_found};
use super::{Coordinator, Result};
use crate::model::{Info, Probe, ProbeOutcome, SentinelReport};
use crate::redis::RedisError;

/// The longest per-target deadline a caller may ask for.
pub const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// The fields operators look for first, derived from a server's INFO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSummary {
    /// `master` or `slave`.
    pub role: String,
    /// For a replica: the master it follows (`host:port`).
    pub master_addr: String,
    /// For a replica: `up` or `down`.
    pub master_link_status: String,
    /// The server's replication offset.
    pub repl_offset: i64,
    /// For a replica of its group's master: bytes behind the master's offset in
    /// the same round.
    pub lag_bytes: i64,
    /// `used_memory`.
    pub used_memory: i64,
    /// `maxmemory`.
    pub maxmemory: i64,
    /// `instantaneous_ops_per_sec`.
    pub ops_per_sec: i64,
    /// `connected_clients`.
    pub connected_clients: i64,
    /// Keys per database index.
    pub keys_per_db: BTreeMap<u32, i64>,
    /// `redis_version`.
    pub redis_version: String,
}

/// One group server in a round.
#[derive(Debug, Clone)]
pub struct ServerStats {
    /// Address.
    pub addr: String,
    /// Its group.
    pub group_id: u32,
    /// Its index in the group (0 = master).
    pub index: u32,
    /// What the probe found.
    pub probe: Probe<Info>,
    /// Derived fields (when the probe succeeded).
    pub summary: Option<ServerSummary>,
}

/// One Sentinel in a round.
#[derive(Debug, Clone)]
pub struct SentinelStats {
    /// Address.
    pub addr: String,
    /// What the probe found.
    pub probe: Probe<SentinelReport>,
}

/// A completed stats round.
#[derive(Debug, Clone)]
pub struct StatsRound {
    /// Sequence number: 1 for the first round, +1 per round; 0 = no round yet.
    pub seq: u64,
    /// When the round started.
    pub started: SystemTime,
    /// When the last probe finished or gave up.
    pub finished: SystemTime,
    /// Every group server, in group then index order.
    pub servers: Vec<ServerStats>,
    /// Every Sentinel, in configured order.
    pub sentinels: Vec<SentinelStats>,
}

impl StatsRound {
    /// The round before any probe ran.
    pub fn empty() -> StatsRound {
        let now = SystemTime::now();
        StatsRound {
            seq: 0,
            started: now,
            finished: now,
            servers: Vec::new(),
            sentinels: Vec::new(),
        }
    }

    /// The master address of each group as the Sentinels report it: per group
    /// the entry with the highest `config-epoch`.
    pub fn sentinel_masters(&self, product: &str) -> BTreeMap<u32, String> {
        let mut best: BTreeMap<u32, (i64, String)> = BTreeMap::new();
        for s in &self.sentinels {
            let ProbeOutcome::Ok(report) = &s.probe.outcome else {
                continue;
            };
            for (name, group) in &report.monitored {
                let Some(gid) = name
                    .strip_prefix(product)
                    .and_then(|r| r.strip_prefix('-'))
                    .and_then(|g| g.parse::<u32>().ok())
                else {
                    continue;
                };
                let (Some(ip), Some(port)) = (group.master.get("ip"), group.master.get("port"))
                else {
                    continue;
                };
                let epoch = group
                    .master
                    .get("config-epoch")
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(0);
                if best.get(&gid).is_none_or(|(e, _)| epoch > *e) {
                    best.insert(gid, (epoch, format!("{ip}:{port}")));
                }
            }
        }
        best.into_iter().map(|(g, (_, a))| (g, a)).collect()
    }
}

impl Coordinator {
    /// The latest round.
    pub fn stats(&self) -> Arc<StatsRound> {
        self.stats.latest.borrow().clone()
    }

    /// Follows the rounds: the receiver sees each completed round (a slow reader
    /// sees only the latest one).
    pub fn watch_stats(&self) -> tokio::sync::watch::Receiver<Arc<StatsRound>> {
        self.stats.latest.subscribe()
    }

    /// Checks a WatchStats filter against the topology: unknown groups and
    /// addresses are named.
    pub fn check_stats_filter(&self, group_ids: &[u32], addrs: &[String]) -> Result<()> {
        let cache = self.cache();
        for g in group_ids {
            if !cache.groups.contains_key(g) {
                return Err(not_found(format!("group-{g} does not exist")));
            }
        }
        for a in addrs {
            let known = cache.groups.values().any(|g| g.position(a).is_some())
                || cache.sentinel.servers.iter().any(|s| s == a);
            if !known {
                return Err(not_found(format!(
                    "{a} is neither a group server nor a sentinel"
                )));
            }
        }
        Ok(())
    }

    /// Runs one round now with the per-target `timeout` and publishes it.
    pub async fn refresh_stats(&self, timeout: Duration) -> Result<Arc<StatsRound>> {
        if timeout.is_zero() || timeout > MAX_PROBE_TIMEOUT {
            return Err(invalid(format!(
                "timeout {timeout:?} is out of range: it must be > 0 and <= 60s"
            )));
        }
        let _one_round_at_a_time = self.stats.refresh.lock().await;
        let (servers, sentinels) = {
            let cache = self.cache();
            let servers: Vec<(String, u32, u32)> = cache
                .groups
                .values()
                .flat_map(|g| {
                    g.servers
                        .iter()
                        .enumerate()
                        .map(move |(i, s)| (s.addr.clone(), g.id, i as u32))
                })
                .collect();
            (servers, cache.sentinel.servers.clone())
        };
        let started = SystemTime::now();
        // One deadline for the whole round, and one task per target so that
        // parsing the replies spreads over every core. The tasks live in join
        // sets: a round given up (its caller cancelled) aborts its probes
        // instead of leaving them running.
        let deadline = tokio::time::Instant::now() + timeout;
        let mut server_tasks = Ordered::default();
        for (addr, _, _) in &servers {
            let (probe, addr) = (self.backends.probe.clone(), addr.clone());
            server_tasks.spawn(async move {
                let p = bounded(deadline, probe.server_info(&addr, timeout)).await;
                let summary = match &p.outcome {
                    ProbeOutcome::Ok(info) => Some(summarize(info)),
                    _ => None,
                };
                (p, summary)
            });
        }
        let mut sentinel_tasks = Ordered::default();
        for addr in &sentinels {
            let (probe, addr) = (self.backends.probe.clone(), addr.clone());
            let product = self.product().to_owned();
            sentinel_tasks.spawn(async move {
                bounded(deadline, probe.sentinel_info(&addr, &product, timeout)).await
            });
        }
        let (server_results, sentinel_results) =
            tokio::join!(server_tasks.join(), sentinel_tasks.join());
        let mut stats: Vec<ServerStats> = servers
            .into_iter()
            .zip(server_results)
            .map(|((addr, group_id, index), r)| {
                let (probe, summary) = r.unwrap_or_else(|e| (crashed(&e), None));
                ServerStats {
                    summary,
                    addr,
                    group_id,
                    index,
                    probe,
                }
            })
            .collect();
        fill_lag(&mut stats);
        let round = Arc::new(StatsRound {
            seq: self.stats.latest.borrow().seq + 1,
            started,
            finished: SystemTime::now(),
            servers: stats,
            sentinels: sentinels
                .into_iter()
                .zip(sentinel_results)
                .map(|(addr, r)| SentinelStats {
                    addr,
                    probe: r.unwrap_or_else(|e| crashed(&e)),
                })
                .collect(),
        });
        self.metrics.stats_round(&round);
        self.stats.latest.send_replace(round.clone());
        Ok(round)
    }
}

/// The latest stats round, and the one round running.
pub(crate) struct Rounds {
    /// The latest round.
    pub(crate) latest: tokio::sync::watch::Sender<Arc<StatsRound>>,
    /// Keeps rounds from overlapping.
    pub(crate) refresh: tokio::sync::Mutex<()>,
}

impl Default for Rounds {
    fn default() -> Self {
        Rounds {
            latest: tokio::sync::watch::channel(Arc::new(StatsRound::empty())).0,
            refresh: tokio::sync::Mutex::new(()),
        }
    }
}

/// Tasks joined in the order they were spawned (a [`JoinSet`] yields them as
/// they finish).
struct Ordered<T> {
    set: JoinSet<T>,
    index: BTreeMap<tokio::task::Id, usize>,
}

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered {
            set: JoinSet::new(),
            index: BTreeMap::new(),
        }
    }
}

impl<T: Send + 'static> Ordered<T> {
    fn spawn(&mut self, task: impl Future<Output = T> + Send + 'static) {
        let id = self.set.spawn(task).id();
        self.index.insert(id, self.index.len());
    }

    /// Each task's output, or why it has none.
    async fn join(mut self) -> Vec<std::result::Result<T, String>> {
        let mut out: Vec<Option<std::result::Result<T, JoinError>>> =
            std::iter::repeat_with(|| None)
                .take(self.index.len())
                .collect();
        while let Some(r) = self.set.join_next_with_id().await {
            let id = match &r {
                Ok((id, _)) => *id,
                Err(e) => e.id(),
            };
            if let Some(&i) = self.index.get(&id) {
                out[i] = Some(r.map(|(_, v)| v));
            }
        }
        out.into_iter()
            .map(|r| match r {
                Some(r) => r.map_err(|e| e.to_string()),
                None => Err("its task was never joined".to_owned()),
            })
            .collect()
    }
}

/// Runs `f` with a hard deadline: a silent target costs at most `timeout`.
async fn bounded<T>(
    deadline: tokio::time::Instant,
    f: impl Future<Output = std::result::Result<T, RedisError>>,
) -> Probe<T> {
    let outcome = match tokio::time::timeout_at(deadline, f).await {
        Ok(Ok(v)) => ProbeOutcome::Ok(v),
        Ok(Err(RedisError::Timeout { .. })) | Err(_) => ProbeOutcome::Timeout,
        Ok(Err(e)) => ProbeOutcome::Error(e.to_string()),
    };
    Probe {
        outcome,
        time: SystemTime::now(),
    }
}

/// A probe task that panicked (a bug): shown as that target's error, not lost.
fn crashed<T>(e: &str) -> Probe<T> {
    Probe {
        outcome: ProbeOutcome::Error(format!("probe failed: {e}")),
        time: SystemTime::now(),
    }
}

fn int(info: &Info, key: &str) -> i64 {
    info.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Derives the summary of one server from its INFO.
pub fn summarize(info: &Info) -> ServerSummary {
    let role = info.get("role").unwrap_or_default().to_owned();
    let replica = role == "slave";
    let master_addr = match (info.get("master_host"), info.get("master_port")) {
        (Some(h), Some(p)) if replica => format!("{h}:{p}"),
        _ => String::new(),
    };
    let keys_per_db = info
        .iter()
        .filter_map(|(k, v)| {
            let db = k.strip_prefix("db")?.parse::<u32>().ok()?;
            let keys = v
                .split(',')
                .find_map(|kv| kv.strip_prefix("keys="))?
                .parse()
                .ok()?;
            Some((db, keys))
        })
        .collect();
    ServerSummary {
        master_link_status: if replica {
            info.get("master_link_status")
                .unwrap_or_default()
                .to_owned()
        } else {
            String::new()
        },
        repl_offset: if replica && info.contains_key("slave_repl_offset") {
            int(info, "slave_repl_offset")
        } else {
            int(info, "master_repl_offset")
        },
        lag_bytes: 0,
        used_memory: int(info, "used_memory"),
        maxmemory: int(info, "maxmemory"),
        ops_per_sec: int(info, "instantaneous_ops_per_sec"),
        connected_clients: int(info, "connected_clients"),
        keys_per_db,
        redis_version: info.get("redis_version").unwrap_or_default().to_owned(),
        role,
        master_addr,
    }
}

/// Lag of each replica that follows its group's master: the master's offset
/// minus the replica's, both from this round.
fn fill_lag(servers: &mut [ServerStats]) {
    let masters: BTreeMap<u32, (String, i64)> = servers
        .iter()
        .filter(|s| s.index == 0)
        .filter_map(|s| {
            let sum = s.summary.as_ref()?;
            Some((s.group_id, (s.addr.clone(), sum.repl_offset)))
        })
        .collect();
    for s in servers.iter_mut().filter(|s| s.index > 0) {
        let (Some(sum), Some((maddr, moff))) = (s.summary.as_mut(), masters.get(&s.group_id))
        else {
            continue;
        };
        if sum.role == "slave" && same_server(&sum.master_addr, maddr) {
            sum.lag_bytes = (moff - sum.repl_offset).max(0);
        }
    }
}

/// Replicas report their master by IP; the group may name it by hostname.
fn same_server(reported: &str, configured: &str) -> bool {
    if reported == configured {
        return true;
    }
    use crate::model::Addr;
    match (Addr::split(reported), Addr::split(configured)) {
        (Ok((reported, rport)), Ok((configured, cport))) => {
            rport == cport
                && matches!(
                    (reported, configured),
                    ("127.0.0.1", "localhost") | ("::1", "localhost")
                )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(pairs: &[(&str, &str)]) -> Info {
        pairs.iter().copied().collect()
    }

    #[test]
    fn summary_of_a_replica() {
        let s = summarize(&info(&[
            ("role", "slave"),
            ("master_host", "127.0.0.1"),
            ("master_port", "7000"),
            ("master_link_status", "up"),
            ("slave_repl_offset", "900"),
            ("master_repl_offset", "950"),
            ("used_memory", "1048576"),
            ("instantaneous_ops_per_sec", "12"),
            ("connected_clients", "3"),
            ("db0", "keys=10,expires=0,avg_ttl=0"),
            ("db3", "keys=2,expires=1,avg_ttl=0"),
            ("redis_version", "7.0.15"),
        ]));
        assert_eq!(s.master_addr, "127.0.0.1:7000");
        assert_eq!(s.repl_offset, 900);
        assert_eq!(s.keys_per_db, BTreeMap::from([(0, 10), (3, 2)]));
        assert_eq!(
            (s.used_memory, s.ops_per_sec, s.connected_clients),
            (1_048_576, 12, 3)
        );
    }

    #[test]
    fn lag_against_the_group_master_only() {
        let mk = |addr: &str, gid, index, pairs: &[(&str, &str)]| ServerStats {
            addr: addr.into(),
            group_id: gid,
            index,
            probe: Probe {
                outcome: ProbeOutcome::Ok(info(pairs)),
                time: SystemTime::now(),
            },
            summary: Some(summarize(&info(pairs))),
        };
        let mut v = vec![
            mk(
                "m:1",
                1,
                0,
                &[("role", "master"), ("master_repl_offset", "1000")],
            ),
            mk(
                "r:2",
                1,
                1,
                &[
                    ("role", "slave"),
                    ("master_host", "m"),
                    ("master_port", "1"),
                    ("slave_repl_offset", "400"),
                ],
            ),
            mk(
                "r:3",
                1,
                2,
                &[
                    ("role", "slave"),
                    ("master_host", "x"),
                    ("master_port", "9"),
                    ("slave_repl_offset", "1"),
                ],
            ),
        ];
        fill_lag(&mut v);
        assert_eq!(v[1].summary.as_ref().unwrap().lag_bytes, 600);
        assert_eq!(
            v[2].summary.as_ref().unwrap().lag_bytes,
            0,
            "follows another master"
        );
    }
}
