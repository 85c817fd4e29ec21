//! The real [`RedisAdmin`]: the add-server probe and `GetServerInfo`, each on
//! a one-shot connection under one deadline.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::client::{Conn, OVERSIZED};
use super::dial::{Dialer, bounded};
use super::info::{parse_info, version_tuple};
use super::reply::{Value, unexpected};
use super::{RedisAdmin, RedisError, ServerIdentity};
use crate::model::{Addr, ServerKind};

/// What an address under probe may send per exchange: `INFO server` and
/// `SLOTSINFO` are a few KiB, and an operator's typo must not cost more.
const PROBE_REPLY_BUDGET: usize = 1 << 20;

/// Talks to group servers with `product_auth` and a deadline.
#[derive(Debug, Clone)]
pub struct Connector {
    dialer: Dialer,
    timeout: Duration,
}

impl Connector {
    /// Connections authenticate with `password` (empty: none); every exchange,
    /// connect included, is bounded by `timeout` (connect: min(1 s, timeout)).
    pub fn new(password: impl Into<String>, timeout: Duration) -> Connector {
        Connector {
            dialer: Dialer::new(&password.into()).with_reply_budget(PROBE_REPLY_BUDGET),
            timeout,
        }
    }

    /// Connects to `addr` (`host:port`), authenticated.
    pub async fn connect(&self, addr: &str) -> Result<Conn, RedisError> {
        self.dialer.dial(addr, self.timeout).await
    }

    /// Runs one command on `conn` within the timeout.
    async fn query(&self, conn: &mut Conn, args: &[&[u8]]) -> Result<Value, RedisError> {
        let addr = conn.addr().to_owned();
        bounded(&addr, self.timeout, conn.call(args)).await
    }

    /// The text of a bulk reply to `args`.
    async fn query_text(&self, conn: &mut Conn, args: &[&[u8]]) -> Result<String, RedisError> {
        let reply = self.query(conn, args).await?;
        match &reply {
            Value::Bulk(_) | Value::Simple(_) => Ok(reply.to_text().unwrap_or_default()),
            other => Err(unexpected(conn.addr(), &label(args), other)),
        }
    }
}

fn label(args: &[&[u8]]) -> String {
    args.iter()
        .map(|a| String::from_utf8_lossy(a))
        .collect::<Vec<_>>()
        .join(" ")
}

#[async_trait]
impl RedisAdmin for Connector {
    async fn probe(&self, addr: &str) -> Result<ServerIdentity, RedisError> {
        let started = Instant::now();
        let probed = tokio::time::timeout(self.timeout, self.identify(addr)).await;
        let error = match probed {
            Ok(Ok(identity)) => return Ok(identity),
            Ok(Err(e)) => e,
            Err(_) => RedisError::Timeout {
                addr: addr.to_owned(),
                timeout: self.timeout,
            },
        };
        // A connection that broke or a reply the client could not parse: look at
        // what the port really says, within what is left of the deadline.
        // A reply over the budget is already plain about what happened.
        let oversized =
            matches!(&error, RedisError::Reply { reason, .. } if reason.starts_with(OVERSIZED));
        if matches!(error, RedisError::Connect { .. } | RedisError::Reply { .. })
            && !oversized
            && let Some(left) = self.timeout.checked_sub(started.elapsed())
            && let Some(answer) = sniff(addr, left).await
        {
            return Err(RedisError::NotRedis {
                addr: addr.to_owned(),
                answer,
            });
        }
        Err(error)
    }

    async fn resolve(&self, addr: &str) -> Vec<SocketAddr> {
        let Ok((host, port)) = Addr::split(addr) else {
            return Vec::new();
        };
        match tokio::time::timeout(self.timeout, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(found)) => found.collect(),
            _ => Vec::new(),
        }
    }

    async fn server_info(&self, addr: &str) -> Result<BTreeMap<String, String>, RedisError> {
        let mut conn = self.connect(addr).await?;
        let text = self.query_text(&mut conn, &[b"INFO", b"all"]).await?;
        let mut info = parse_info(&text);
        if info.get("role").map(String::as_str) == Some("slave")
            && let (Some(h), Some(p)) = (info.get("master_host"), info.get("master_port"))
        {
            let master = format!("{h}:{p}");
            info.insert("master_addr".into(), master);
        }
        let maxmemory = self
            .query(&mut conn, &[b"CONFIG", b"GET", b"maxmemory"])
            .await?;
        if let Value::Array(pair) = &maxmemory
            && let Some(v) = pair.get(1).and_then(Value::to_text)
        {
            info.insert("maxmemory".into(), v);
        }
        Ok(info)
    }
}

impl Connector {
    async fn identify(&self, addr: &str) -> Result<ServerIdentity, RedisError> {
        let resolved = self.resolve(addr).await;
        let mut conn = self.connect(addr).await?;
        // codis-server answers SLOTSINFO; plain Redis says "unknown command".
        let slotsinfo = self.query(&mut conn, &[b"SLOTSINFO"]).await;
        // An error reply means plain Redis; a failure is the probe's answer.
        if let Err(e) = slotsinfo.as_ref()
            && conn.is_broken()
        {
            return Err(e.clone());
        }
        let text = self.query_text(&mut conn, &[b"INFO", b"server"]).await?;
        let info = parse_info(&text);
        let run_id = info.get("run_id").cloned().unwrap_or_default();
        if slotsinfo.is_ok() {
            return Ok(ServerIdentity {
                kind: ServerKind::CodisServer,
                run_id,
                resolved,
            });
        }
        let version = info.get("redis_version").cloned().unwrap_or_default();
        match version_tuple(&version) {
            Some(v) if v >= (6, 2, 0) => Ok(ServerIdentity {
                kind: ServerKind::Redis,
                run_id,
                resolved,
            }),
            _ => Err(RedisError::Unsupported {
                addr: addr.to_owned(),
                reason: format!(
                    "redis_version {version:?}; Redis >= 6.2 or codis-server is required"
                ),
            }),
        }
    }
}

/// Sends an inline `PING` on a fresh connection and describes the answer when it
/// is not Redis's (`+PONG`, or an error reply such as `-NOAUTH`). `None` when it is
/// Redis after all, or nothing could be learnt (refused, silent).
async fn sniff(addr: &str, within: Duration) -> Option<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let talk = async {
        let (host, port) = Addr::split(addr).ok()?;
        let mut conn = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        conn.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 64];
        Some(match conn.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(buf[..n].to_vec()),
        })
    };
    let answer = tokio::time::timeout(within, talk).await.ok()??;
    match answer {
        None => Some("nothing to PING and closed the connection".into()),
        Some(bytes) if matches!(bytes.first(), Some(b'+' | b'-')) => None,
        Some(bytes) => Some(format!("\"{}\"", printable(&bytes))),
    }
}

/// The bytes as text, non-printable ones escaped, so a binary answer (an HTTP/2
/// frame) stays readable in one line.
fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect()
}
