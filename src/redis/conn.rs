//! One-shot connections with a deadline, and the real [`RedisAdmin`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use super::info::{parse_info, version_tuple};
use super::{RedisAdmin, RedisError, ServerIdentity};
use crate::model::ServerKind;

/// Opens connections to Redis servers with `product_auth` and a deadline.
#[derive(Debug, Clone)]
pub struct Connector {
    password: String,
    timeout: Duration,
}

impl Connector {
    /// Connections authenticate with `password` (empty: none); every command and the
    /// connect itself are bounded by `timeout` (connect: min(1 s, timeout)).
    pub fn new(password: impl Into<String>, timeout: Duration) -> Connector {
        Connector {
            password: password.into(),
            timeout,
        }
    }

    /// Connects to `addr` (`host:port`).
    pub async fn connect(&self, addr: &str) -> Result<MultiplexedConnection, RedisError> {
        let (host, port) = split_addr(addr)?;
        let mut settings = RedisConnectionInfo::default().set_skip_set_lib_name();
        if !self.password.is_empty() {
            settings = settings.set_password(&self.password);
        }
        let info = ConnectionAddr::Tcp(host, port)
            .into_connection_info()
            .map_err(|e| connect_error(addr, &e))?
            .set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(|e| connect_error(addr, &e))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout.min(Duration::from_secs(1))))
            .set_response_timeout(Some(self.timeout));
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| classify(addr, self.timeout, &e))
    }

    /// Runs one command on `conn`, mapping errors to [`RedisError`].
    pub async fn query<T: redis::FromRedisValue>(
        &self,
        addr: &str,
        conn: &mut MultiplexedConnection,
        cmd: &redis::Cmd,
    ) -> Result<T, RedisError> {
        match tokio::time::timeout(self.timeout, cmd.query_async(conn)).await {
            Ok(r) => r.map_err(|e| classify(addr, self.timeout, &e)),
            Err(_) => Err(RedisError::Timeout {
                addr: addr.to_owned(),
                timeout: self.timeout,
            }),
        }
    }
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
        if matches!(error, RedisError::Connect { .. } | RedisError::Reply { .. })
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
        let Ok((host, port)) = split_addr(addr) else {
            return Vec::new();
        };
        match tokio::time::timeout(self.timeout, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(found)) => found.collect(),
            _ => Vec::new(),
        }
    }

    async fn server_info(&self, addr: &str) -> Result<BTreeMap<String, String>, RedisError> {
        let mut conn = self.connect(addr).await?;
        let text: String = self
            .query(addr, &mut conn, redis::cmd("INFO").arg("all"))
            .await?;
        let mut info = parse_info(&text);
        if info.get("role").map(String::as_str) == Some("slave")
            && let (Some(h), Some(p)) = (info.get("master_host"), info.get("master_port"))
        {
            let master = format!("{h}:{p}");
            info.insert("master_addr".into(), master);
        }
        let maxmemory: Vec<String> = self
            .query(
                addr,
                &mut conn,
                redis::cmd("CONFIG").arg("GET").arg("maxmemory"),
            )
            .await?;
        if let Some(v) = maxmemory.get(1) {
            info.insert("maxmemory".into(), v.clone());
        }
        Ok(info)
    }
}

impl Connector {
    async fn identify(&self, addr: &str) -> Result<ServerIdentity, RedisError> {
        let resolved = self.resolve(addr).await;
        let mut conn = self.connect(addr).await?;
        // codis-server answers SLOTSINFO; plain Redis says "unknown command".
        let slotsinfo: Result<redis::Value, RedisError> =
            self.query(addr, &mut conn, &redis::cmd("SLOTSINFO")).await;
        let text: String = self
            .query(addr, &mut conn, redis::cmd("INFO").arg("server"))
            .await?;
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
        let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
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

fn split_addr(addr: &str) -> Result<(String, u16), RedisError> {
    let bad = || RedisError::Connect {
        addr: addr.to_owned(),
        reason: "not a host:port address".into(),
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse().map_err(|_| bad())?;
    Ok((host.to_owned(), port))
}

fn connect_error(addr: &str, e: &redis::RedisError) -> RedisError {
    RedisError::Connect {
        addr: addr.to_owned(),
        reason: e.to_string(),
    }
}

fn classify(addr: &str, timeout: Duration, e: &redis::RedisError) -> RedisError {
    let text = e.to_string();
    if e.is_timeout() {
        RedisError::Timeout {
            addr: addr.to_owned(),
            timeout,
        }
    } else if text.contains("NOAUTH")
        || text.contains("WRONGPASS")
        || text.contains("invalid password")
        || text.contains("AUTH")
    {
        RedisError::Auth {
            addr: addr.to_owned(),
            reason: text,
        }
    } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        connect_error(addr, e)
    } else {
        RedisError::Reply {
            addr: addr.to_owned(),
            reason: text,
        }
    }
}
