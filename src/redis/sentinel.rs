//! Sentinel administration over pooled connections (probe, `SENTINEL
//! MASTERS`, `MONITOR`/`SET`, `REMOVE`), and `+switch-master` subscriptions on
//! dedicated connections, with a heartbeat (Codis dashboard §5.4, §6).
//! Sentinels take no password.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::{PubSub, PubSubSink, PubSubStream};
use redis::{Msg, RedisConnectionInfo};
use tokio::time::Instant;

use super::budget::StreamState;
use super::client::{classify, connect_stream, seen_by_stream};
use super::dial::{DEFAULT_REPLY_BUDGET, MAX_CONNECT_TIMEOUT, bounded};
use super::pool::Pool;
use super::reply::{Value, records};
use super::{MonitorSpec, RedisError, SwitchMaster, SwitchStream};

/// How long a `+switch-master` subscription may stay quiet before it sends a
/// `PING`. Without it a Sentinel that vanished without closing the socket (a
/// dead host, a partition) would leave the subscriber waiting forever: TCP
/// keepalive would need socket2 and still takes minutes by default.
pub(crate) const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

/// The shortest heartbeat allowed: a subscription must not spin on PINGs.
pub(crate) const MIN_HEARTBEAT: Duration = Duration::from_millis(50);

/// The Sentinel channel announcing a completed failover.
const SWITCH_MASTER: &str = "+switch-master";

/// `SENTINEL SET` keys whose values must never reach an error message or a log.
const SECRET_SETTINGS: &[&str] = &["auth-pass"];

/// Sentinel side of [`super::PooledHa`].
#[derive(Debug)]
pub(crate) struct Sentinels {
    pool: Pool,
    /// Quiet time before a subscription checks its connection with `PING`.
    pub(crate) heartbeat: Duration,
}

impl Sentinels {
    pub(crate) fn new(idle_timeout: Duration) -> Sentinels {
        Sentinels {
            pool: Pool::new("", idle_timeout),
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn monitor_unbounded(
        &self,
        addr: &str,
        name: &str,
        master: (&str, u16),
        quorum: u32,
        settings: &[(String, String)],
        timeout: Duration,
    ) -> Result<(), RedisError> {
        let pool = &self.pool;
        let (port, quorum) = (master.1.to_string(), quorum.to_string());
        let monitor: [&[u8]; 6] = [
            b"SENTINEL",
            b"MONITOR",
            name.as_bytes(),
            master.0.as_bytes(),
            port.as_bytes(),
            quorum.as_bytes(),
        ];
        pool.call(addr, &monitor, timeout)
            .await
            .map_err(|e| in_command(e, &monitor))?;
        for (key, value) in settings {
            let set: [&[u8]; 5] = [
                b"SENTINEL",
                b"SET",
                name.as_bytes(),
                key.as_bytes(),
                value.as_bytes(),
            ];
            pool.call(addr, &set, timeout)
                .await
                .map_err(|e| in_command(e, &set))?;
        }
        Ok(())
    }

    async fn remove_unbounded(
        &self,
        addr: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<bool, RedisError> {
        let pool = &self.pool;
        let lookup: [&[u8]; 3] = [b"SENTINEL", b"GET-MASTER-ADDR-BY-NAME", name.as_bytes()];
        let known = pool
            .call(addr, &lookup, timeout)
            .await
            .map_err(|e| in_command(e, &lookup))?;
        if known == Value::Nil {
            return Ok(false);
        }
        let remove: [&[u8]; 3] = [b"SENTINEL", b"REMOVE", name.as_bytes()];
        match pool.call(addr, &remove, timeout).await {
            Ok(_) => Ok(true),
            // Removed by someone else between the two commands.
            Err(RedisError::Reply { reason, .. }) if reason.contains("No such master") => Ok(false),
            Err(e) => Err(in_command(e, &remove)),
        }
    }

    /// See [`super::HaAdmin::sentinel_probe`].
    pub(crate) async fn probe(&self, addr: &str, timeout: Duration) -> Result<(), RedisError> {
        match self
            .pool
            .call(addr, &[b"SENTINEL", b"FLUSHCONFIG"], timeout)
            .await
        {
            Ok(_) => Ok(()),
            // A plain Redis (or codis-server) has no SENTINEL command.
            Err(RedisError::Reply { addr, reason }) if reason.contains("unknown command") => {
                Err(RedisError::Reply {
                    addr,
                    reason: format!("not a sentinel: {reason}"),
                })
            }
            Err(e) => Err(in_command(e, &[b"SENTINEL", b"FLUSHCONFIG"])),
        }
    }

    /// See [`super::HaAdmin::sentinel_masters`].
    pub(crate) async fn masters(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<Vec<BTreeMap<String, String>>, RedisError> {
        let reply = self
            .pool
            .call(addr, &[b"SENTINEL", b"MASTERS"], timeout)
            .await?;
        records(addr, "SENTINEL MASTERS", reply)
    }

    /// See [`super::HaAdmin::sentinel_remove`].
    pub(crate) async fn remove(
        &self,
        addr: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<bool, RedisError> {
        bounded(addr, timeout, self.remove_unbounded(addr, name, timeout)).await
    }

    /// See [`super::HaAdmin::sentinel_monitor`].
    pub(crate) async fn monitor(
        &self,
        addr: &str,
        spec: &MonitorSpec<'_>,
        timeout: Duration,
    ) -> Result<(), RedisError> {
        let run = self.monitor_unbounded(
            addr,
            spec.name,
            (spec.master_ip, spec.master_port),
            spec.quorum,
            spec.settings,
            timeout,
        );
        bounded(addr, timeout, run).await
    }

    /// Subscribes to `+switch-master` on a new connection, handshake bounded
    /// by `timeout`, which also bounds each heartbeat's answer.
    pub(crate) async fn subscribe(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<Box<dyn SwitchStream>, RedisError> {
        let subscribe = async {
            let (stream, state) =
                connect_stream(addr, timeout.min(MAX_CONNECT_TIMEOUT), DEFAULT_REPLY_BUDGET)
                    .await?;
            let info = RedisConnectionInfo::default().set_skip_set_lib_name();
            let mut pubsub = PubSub::new(&info, stream)
                .await
                .map_err(|e| classify(addr, &state, &e))?;
            pubsub
                .subscribe(SWITCH_MASTER)
                .await
                .map_err(|e| classify(addr, &state, &e))?;
            Ok((pubsub, state))
        };
        let (pubsub, state) = bounded(addr, timeout, subscribe).await?;
        let (sink, stream) = pubsub.split();
        Ok(Box::new(SwitchSubscription {
            addr: addr.to_owned(),
            sink,
            stream,
            state,
            heartbeat: self.heartbeat,
            pong_timeout: timeout,
            last_heard: Instant::now(),
        }))
    }
}

// === impl SwitchSubscription ===

/// A `+switch-master` subscription on its own connection, with a heartbeat.
struct SwitchSubscription {
    addr: String,
    /// Sends the heartbeat `PING`s.
    sink: PubSubSink,
    /// The published messages, in order; ends when the connection does.
    stream: PubSubStream,
    state: Arc<StreamState>,
    /// Quiet time before a `PING`.
    heartbeat: Duration,
    /// How long to wait for the answer to a `PING`.
    pong_timeout: Duration,
    /// When the Sentinel last proved alive. Kept here, not in the `next`
    /// future, so that dropping `next` (a `select!`) loses no state.
    last_heard: Instant,
}

#[async_trait]
impl SwitchStream for SwitchSubscription {
    async fn next(&mut self) -> Result<SwitchMaster, RedisError> {
        loop {
            // Each message may use the whole budget again.
            self.state.reset();
            let quiet_until = self.last_heard + self.heartbeat;
            match tokio::time::timeout_at(quiet_until, self.stream.next()).await {
                Ok(Some(msg)) => {
                    self.last_heard = Instant::now();
                    if let Some(switch) = self.switch_of(&msg) {
                        return Ok(switch);
                    }
                }
                Ok(None) => return Err(self.ended()),
                Err(_) => {
                    let ping = self.sink.ping::<redis::Value>();
                    match tokio::time::timeout(self.pong_timeout, ping).await {
                        Ok(Ok(_)) => self.last_heard = Instant::now(),
                        Ok(Err(e)) => return Err(classify(&self.addr, &self.state, &e)),
                        Err(_) => {
                            return Err(RedisError::Timeout {
                                addr: self.addr.clone(),
                                timeout: self.pong_timeout,
                            });
                        }
                    }
                }
            }
        }
    }
}

impl SwitchSubscription {
    /// The announcement in `msg`, if it is one; anything else is skipped.
    fn switch_of(&self, msg: &Msg) -> Option<SwitchMaster> {
        if msg.get_channel_name() != SWITCH_MASTER {
            tracing::debug!(sentinel = %self.addr, channel = msg.get_channel_name(), "ignoring a message");
            return None;
        }
        let payload = msg.get_payload_bytes();
        let parsed = parse_switch_master(payload);
        if parsed.is_none() {
            tracing::warn!(
                sentinel = %self.addr,
                payload = %String::from_utf8_lossy(payload),
                "skipping a malformed +switch-master message"
            );
        }
        parsed
    }

    /// Why the message stream ended.
    fn ended(&self) -> RedisError {
        seen_by_stream(&self.addr, &self.state).unwrap_or_else(|| RedisError::Connect {
            addr: self.addr.clone(),
            reason: "subscription closed by the server".into(),
        })
    }
}

/// `<name> <old-ip> <old-port> <new-ip> <new-port>` → [`SwitchMaster`].
fn parse_switch_master(payload: &[u8]) -> Option<SwitchMaster> {
    let text = std::str::from_utf8(payload).ok()?;
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    let [name, old_ip, old_port, new_ip, new_port] = fields[..] else {
        return None;
    };
    let old_port: u16 = old_port.parse().ok()?;
    let new_port: u16 = new_port.parse().ok()?;
    Some(SwitchMaster {
        name: name.to_owned(),
        old: join_host_port(old_ip, old_port),
        new: join_host_port(new_ip, new_port),
    })
}

/// `ip:port`, with an IPv6 address in brackets (as Go's `net.JoinHostPort`,
/// so that splitting at the last ':' gives the address back).
fn join_host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Adds the command to the reason of a Redis error reply: `<cmd>: <reply>`.
/// Values of [`SECRET_SETTINGS`] are shown as `<redacted>`.
fn in_command(e: RedisError, args: &[&[u8]]) -> RedisError {
    let label = || {
        let mut words: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if let [first, second, _, key, value, ..] = &mut words[..]
            && first.eq_ignore_ascii_case("SENTINEL")
            && second.eq_ignore_ascii_case("SET")
            && SECRET_SETTINGS.iter().any(|s| key.eq_ignore_ascii_case(s))
        {
            *value = "<redacted>".into();
        }
        words.join(" ")
    };
    match e {
        RedisError::Reply { addr, reason } => RedisError::Reply {
            addr,
            reason: format!("{}: {reason}", label()),
        },
        RedisError::Auth { addr, reason } => RedisError::Auth {
            addr,
            reason: format!("{}: {reason}", label()),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_master_payloads() {
        assert_eq!(
            parse_switch_master(b"topom-1 127.0.0.1 6379 127.0.0.1 6380"),
            Some(SwitchMaster {
                name: "topom-1".into(),
                old: "127.0.0.1:6379".into(),
                new: "127.0.0.1:6380".into(),
            })
        );
        assert_eq!(
            parse_switch_master(b"p-2 ::1 6379 fe80::2 6380").map(|m| (m.old, m.new)),
            Some(("[::1]:6379".into(), "[fe80::2]:6380".into()))
        );
        for bad in [
            &b""[..],
            b"topom-1",
            b"topom-1 127.0.0.1 6379 127.0.0.1",
            b"topom-1 127.0.0.1 6379 127.0.0.1 6380 extra",
            b"topom-1 127.0.0.1 x 127.0.0.1 6380",
            b"topom-1 127.0.0.1 6379 127.0.0.1 99999",
            b"\xff\xfe 127.0.0.1 6379 127.0.0.1 6380",
        ] {
            assert_eq!(parse_switch_master(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn command_errors_name_the_command_and_hide_secrets() {
        let e = RedisError::Reply {
            addr: "127.0.0.1:26379".into(),
            reason: "ERR Invalid argument".into(),
        };
        let shown = in_command(
            e.clone(),
            &[
                b"SENTINEL",
                b"SET",
                b"topom-1",
                b"down-after-milliseconds",
                b"1000",
            ],
        )
        .to_string();
        assert_eq!(
            shown,
            "127.0.0.1:26379: SENTINEL SET topom-1 down-after-milliseconds 1000: ERR Invalid argument"
        );
        let shown = in_command(
            e,
            &[b"SENTINEL", b"SET", b"topom-1", b"auth-pass", b"s3cret"],
        )
        .to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("auth-pass <redacted>"), "{shown}");
        let timeout = RedisError::Timeout {
            addr: "h:1".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(matches!(
            in_command(timeout, &[b"SENTINEL", b"MASTERS"]),
            RedisError::Timeout { .. }
        ));
    }

    #[test]
    fn masters_records() {
        let bulk = |s: &str| Value::Bulk(s.as_bytes().to_vec());
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("name"),
            bulk("p-1"),
            bulk("quorum"),
            Value::Int(2),
        ])]);
        let r = records("h:1", "SENTINEL MASTERS", reply).unwrap();
        assert_eq!(r[0]["name"], "p-1");
        assert_eq!(r[0]["quorum"], "2");
        assert!(records("h:1", "x", Value::Array(vec![bulk("flat")])).is_err());
        assert!(records("h:1", "x", Value::Nil).is_err());
    }
}
