//! The real [`StatsProbe`]: `INFO` of group servers and of Sentinels, plus what
//! each Sentinel monitors for the product, over pooled connections.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::info::parse_info;
use super::pool::Pool;
use super::reply::{Value, records, unexpected};
use super::{RedisError, StatsProbe};
use crate::model::{Info, InfoSections, SentinelGroup, SentinelReport};

/// Probes over two pools: group servers with `product_auth`, Sentinels without
/// a password.
#[derive(Debug)]
pub struct PooledProbe {
    servers: Pool,
    sentinels: Pool,
    /// `INFO <section>...`, built once: it goes to every group server every round.
    info: redis::Cmd,
    /// The same for servers that take at most one section name.
    legacy_info: redis::Cmd,
    /// Servers that refused several section names (Redis < 7, codis-server).
    legacy: Mutex<HashSet<String>>,
}

fn info_cmd(args: &[String]) -> redis::Cmd {
    let mut cmd = redis::cmd("INFO");
    for a in args {
        cmd.arg(a);
    }
    cmd
}

impl PooledProbe {
    /// `product_auth` authenticates to group servers (empty: none). `timeout` is
    /// how long a connection may sit idle before it is dropped rather than reused
    /// (Codis uses 5 s for its stats and HA pools); each probe takes its own
    /// deadline.
    pub fn new(product_auth: &str, timeout: Duration) -> PooledProbe {
        PooledProbe {
            servers: Pool::new(product_auth, timeout),
            sentinels: Pool::new("", timeout),
            info: info_cmd(&InfoSections::default().args()),
            legacy_info: info_cmd(&InfoSections::default().legacy_args()),
            legacy: Mutex::default(),
        }
    }

    /// Asks group servers for `sections` instead of the derived ones only.
    pub fn with_sections(mut self, sections: &InfoSections) -> PooledProbe {
        self.info = info_cmd(&sections.args());
        self.legacy_info = info_cmd(&sections.legacy_args());
        self
    }

    fn legacy(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A set of names stays whole whatever panicked.
        self.legacy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops stale idle connections in both pools; for the owner's janitor.
    pub fn evict_idle(&self) {
        self.servers.evict_idle();
        self.sentinels.evict_idle();
    }

    /// Idle connections held, over both pools.
    pub fn idle_count(&self) -> usize {
        self.servers.idle_count() + self.sentinels.idle_count()
    }

    async fn sentinel_report(
        &self,
        addr: &str,
        product: &str,
        timeout: Duration,
    ) -> Result<SentinelReport, RedisError> {
        let pool = &self.sentinels;
        let info = text(addr, "INFO", pool.call(addr, &[b"INFO"], timeout).await?)?;
        let masters = pool.call(addr, &[b"SENTINEL", b"masters"], timeout).await?;
        let mut monitored = BTreeMap::new();
        for master in records(addr, "SENTINEL masters", masters)? {
            let Some(name) = master.get("name").cloned() else {
                continue;
            };
            if product_gid(&name, product).is_none() {
                continue;
            }
            let Some(replicas) = self.replicas(addr, &name, timeout).await? else {
                // Removed between the two commands: not monitored any more.
                continue;
            };
            monitored.insert(name, SentinelGroup { master, replicas });
        }
        Ok(SentinelReport {
            info: parse_info(&info),
            monitored,
        })
    }

    /// `SENTINEL replicas <name>` (`slaves` on Sentinels older than 5.0); `None`
    /// if the Sentinel no longer monitors `name`.
    async fn replicas(
        &self,
        addr: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Option<Vec<BTreeMap<String, String>>>, RedisError> {
        let pool = &self.sentinels;
        let name = name.as_bytes();
        let mut reply = pool
            .call(addr, &[b"SENTINEL", b"replicas", name], timeout)
            .await;
        if matches!(&reply, Err(RedisError::Reply { reason, .. })
            if reason.to_ascii_lowercase().contains("unknown"))
        {
            reply = pool
                .call(addr, &[b"SENTINEL", b"slaves", name], timeout)
                .await;
        }
        match reply {
            Ok(v) => records(addr, "SENTINEL replicas", v).map(Some),
            Err(RedisError::Reply { reason, .. }) if reason.contains("No such master") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl StatsProbe for PooledProbe {
    async fn server_info(&self, addr: &str, timeout: Duration) -> Result<Info, RedisError> {
        let legacy = self.legacy().contains(addr);
        let cmd = if legacy {
            &self.legacy_info
        } else {
            &self.info
        };
        let reply = match self.servers.call_cmd(addr, cmd, timeout).await {
            // Learnt once per address: later rounds ask it the legacy way.
            Err(RedisError::Reply { reason, .. }) if !legacy && takes_one_section(&reason) => {
                self.legacy().insert(addr.to_owned());
                self.servers
                    .call_cmd(addr, &self.legacy_info, timeout)
                    .await?
            }
            r => r?,
        };
        Ok(Info::parse(owned_text(addr, "INFO", reply)?))
    }

    async fn sentinel_info(
        &self,
        addr: &str,
        product: &str,
        timeout: Duration,
    ) -> Result<SentinelReport, RedisError> {
        // One deadline for the whole exchange; each call's own bound is then
        // never the one that fires first.
        match tokio::time::timeout(timeout, self.sentinel_report(addr, product, timeout)).await {
            Ok(r) => r,
            Err(_) => Err(RedisError::Timeout {
                addr: addr.to_owned(),
                timeout,
            }),
        }
    }
}

/// The gid of a monitoring name of `product`: `<product>-<integer>`.
pub(crate) fn product_gid(name: &str, product: &str) -> Option<u32> {
    let gid = name.strip_prefix(product)?.strip_prefix('-')?;
    if gid.is_empty() || !gid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    gid.parse().ok()
}

/// Redis < 7 and codis-server answer `INFO a b` with a syntax error.
fn takes_one_section(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("syntax error") || r.contains("wrong number of arguments")
}

/// The text of a bulk or status reply, without copying valid UTF-8.
fn owned_text(addr: &str, what: &str, reply: Value) -> Result<String, RedisError> {
    match reply {
        Value::Bulk(b) => Ok(String::from_utf8(b)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
        other => text(addr, what, other),
    }
}

/// The text of a bulk or status reply.
fn text(addr: &str, what: &str, reply: Value) -> Result<String, RedisError> {
    match reply {
        Value::Bulk(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Value::Simple(s) => Ok(s),
        other => Err(unexpected(addr, what, &other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::reply::flat_map;

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn product_names() {
        assert_eq!(product_gid("codis-demo-1", "codis-demo"), Some(1));
        assert_eq!(product_gid("topom_test-42", "topom_test"), Some(42));
        for (name, product) in [
            ("codis-demo-1", "codis"),
            ("codis-demo", "codis-demo"),
            ("codis-demo-", "codis-demo"),
            ("codis-demo-x", "codis-demo"),
            ("codis-demo-+1", "codis-demo"),
            ("codis-demo--1", "codis-demo"),
            ("codis-demo-1 ", "codis-demo"),
            ("codis-demo-99999999999", "codis-demo"),
            ("other-1", "codis-demo"),
            ("xcodis-demo-1", "codis-demo"),
        ] {
            assert_eq!(product_gid(name, product), None, "{name} / {product}");
        }
    }

    #[test]
    fn flat_arrays_to_maps() {
        let v = Value::Array(vec![
            bulk("name"),
            bulk("p-1"),
            bulk("port"),
            Value::Simple("6379".into()),
            bulk("num-slaves"),
            Value::Int(2),
        ]);
        let m = flat_map(&v).unwrap();
        assert_eq!(m["name"], "p-1");
        assert_eq!(m["port"], "6379");
        assert_eq!(m["num-slaves"], "2");
        assert_eq!(flat_map(&Value::Array(vec![])), Some(BTreeMap::new()));
        assert_eq!(flat_map(&Value::Array(vec![bulk("odd")])), None);
        assert_eq!(
            flat_map(&Value::Array(vec![bulk("k"), Value::Array(vec![])])),
            None
        );
        assert_eq!(flat_map(&Value::Array(vec![bulk("k"), Value::Nil])), None);
        assert_eq!(flat_map(&bulk("x")), None);
    }

    #[test]
    fn records_of_a_reply() {
        let reply = Value::Array(vec![
            Value::Array(vec![bulk("name"), bulk("a-1")]),
            Value::Array(vec![bulk("name"), bulk("a-2")]),
        ]);
        let r = records("h:1", "SENTINEL masters", reply).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1]["name"], "a-2");
        assert!(
            records("h:1", "x", Value::Array(vec![]))
                .unwrap()
                .is_empty()
        );
        match records("h:1", "SENTINEL masters", Value::Int(3)) {
            Err(RedisError::Reply { addr, reason }) => {
                assert_eq!(addr, "h:1");
                assert!(reason.contains("SENTINEL masters"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(records("h:1", "x", Value::Array(vec![bulk("flat")])).is_err());
    }

    #[test]
    fn long_unexpected_replies_are_cut() {
        let e = unexpected("h:1", "INFO", &bulk(&"é".repeat(500)));
        assert!(e.to_string().len() < 200, "{e}");
    }
}
