//! The real [`HaAdmin`]: SetMaster on a one-shot connection, replication INFO
//! and write pauses over pooled connections to group servers, Sentinel
//! administration over pooled connections to Sentinels, and `+switch-master`
//! subscriptions on dedicated connections (Codis dashboard §4.3, §4.4, §5.4, §6).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::dial::{MAX_CONNECT_TIMEOUT, bounded, dial};
use super::info::parse_info;
use super::pool::Pool;
use super::reply::{records, unexpected};
use super::resp::{Push, RespConn, Subscription, Value, is_auth_error};
use super::{HaAdmin, MonitorSpec, Persisted, RedisError, SwitchMaster, SwitchStream};
use crate::model::InfoMap;

/// How long a pooled connection may sit idle before it is dropped rather than
/// reused (Codis's HA pool: 5 s).
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a `+switch-master` subscription may stay quiet before it sends a
/// `PING`. Without it a Sentinel that vanished without closing the socket (a
/// dead host, a partition) would leave the subscriber waiting forever: TCP
/// keepalive would need socket2 and still takes minutes by default.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

/// The shortest heartbeat allowed: a subscription must not spin on PINGs.
const MIN_HEARTBEAT: Duration = Duration::from_millis(50);

/// The Sentinel channel announcing a completed failover.
const SWITCH_MASTER: &str = "+switch-master";

/// `SENTINEL SET` keys whose values must never reach an error message or a log.
const SECRET_SETTINGS: &[&str] = &["auth-pass"];

/// [`HaAdmin`] over two pools: group servers with `product_auth`, Sentinels
/// without a password. SetMaster and subscriptions use their own connections.
pub struct PooledHa {
    /// For `AUTH` on the one-shot SetMaster connection and for `masterauth`.
    product_auth: String,
    servers: Pool,
    sentinels: Pool,
    /// Quiet time before a subscription checks its connection with `PING`.
    heartbeat: Duration,
}

// Written by hand so that the password never reaches a log line.
impl std::fmt::Debug for PooledHa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledHa")
            .field("auth", &!self.product_auth.is_empty())
            .field("servers", &self.servers)
            .field("sentinels", &self.sentinels)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

impl PooledHa {
    /// `product_auth` authenticates to group servers and becomes their
    /// `masterauth` (empty: none). Idle pooled connections expire after 5 s.
    pub fn new(product_auth: &str) -> PooledHa {
        PooledHa {
            product_auth: product_auth.to_owned(),
            servers: Pool::new(product_auth, IDLE_TIMEOUT),
            sentinels: Pool::new("", IDLE_TIMEOUT),
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }

    /// Replaces how long a `+switch-master` subscription may stay quiet before
    /// it sends a `PING` (default 10 s). A missing answer within the
    /// subscribe `timeout` ends the subscription with an error. Values below
    /// 50 ms are raised to 50 ms.
    pub fn with_heartbeat(mut self, heartbeat: Duration) -> PooledHa {
        self.heartbeat = heartbeat.max(MIN_HEARTBEAT);
        self
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

    /// The SetMaster transaction, unbounded (the caller bounds it).
    async fn run_set_master(
        &self,
        addr: &str,
        master: Option<(&str, &str)>,
        timeout: Duration,
    ) -> Result<Persisted, RedisError> {
        // A one-shot connection, as in Codis: the caller's deadline may be long
        // (a sync action allows minutes), and the transaction kills every
        // other normal client, pooled ones included.
        let mut conn = dial(addr, &self.product_auth, timeout).await?;
        let (host, port) = master.unwrap_or(("NO", "ONE"));
        let slaveof = format!("SLAVEOF {host} {port}");
        // The labels name each command in errors; the password is left out.
        let labels = [
            "MULTI",
            "CONFIG SET masterauth",
            &slaveof,
            "CONFIG REWRITE",
            "CLIENT KILL TYPE normal",
            "EXEC",
        ];
        // CLIENT KILL defaults to SKIPME yes, so this connection survives to
        // read EXEC's reply.
        let cmds: [&[&[u8]]; 6] = [
            &[b"MULTI"],
            &[
                b"CONFIG",
                b"SET",
                b"masterauth",
                self.product_auth.as_bytes(),
            ],
            &[b"SLAVEOF", host.as_bytes(), port.as_bytes()],
            &[b"CONFIG", b"REWRITE"],
            &[b"CLIENT", b"KILL", b"TYPE", b"normal"],
            &[b"EXEC"],
        ];
        let replies = conn.pipeline(&cmds).await?;
        check_transaction(addr, &labels, replies)
    }

    async fn monitor(
        &self,
        addr: &str,
        name: &str,
        master: (&str, u16),
        quorum: u32,
        settings: &[(String, String)],
        timeout: Duration,
    ) -> Result<(), RedisError> {
        let pool = &self.sentinels;
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

    async fn remove(&self, addr: &str, name: &str, timeout: Duration) -> Result<bool, RedisError> {
        let pool = &self.sentinels;
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
}

#[async_trait]
impl HaAdmin for PooledHa {
    async fn set_master(
        &self,
        addr: &str,
        master: Option<&str>,
        timeout: Duration,
    ) -> Result<Persisted, RedisError> {
        let master = match master {
            Some(m) => Some(split_master(addr, m)?),
            None => None,
        };
        bounded(addr, timeout, self.run_set_master(addr, master, timeout)).await
    }

    async fn replication(&self, addr: &str, timeout: Duration) -> Result<InfoMap, RedisError> {
        let reply = self
            .servers
            .call(addr, &[b"INFO", b"replication"], timeout)
            .await?;
        let text = reply
            .to_text()
            .ok_or_else(|| unexpected(addr, "INFO replication", &reply))?;
        Ok(parse_info(&text))
    }

    async fn pause_writes(
        &self,
        addr: &str,
        pause: Duration,
        timeout: Duration,
    ) -> Result<(), RedisError> {
        let ms = pause.as_millis().to_string();
        self.servers
            .call(
                addr,
                &[b"CLIENT", b"PAUSE", ms.as_bytes(), b"WRITE"],
                timeout,
            )
            .await?;
        Ok(())
    }

    async fn unpause(&self, addr: &str, timeout: Duration) -> Result<(), RedisError> {
        self.servers
            .call(addr, &[b"CLIENT", b"UNPAUSE"], timeout)
            .await?;
        Ok(())
    }

    async fn sentinel_probe(&self, addr: &str, timeout: Duration) -> Result<(), RedisError> {
        match self
            .sentinels
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

    async fn sentinel_masters(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<Vec<BTreeMap<String, String>>, RedisError> {
        let reply = self
            .sentinels
            .call(addr, &[b"SENTINEL", b"MASTERS"], timeout)
            .await?;
        records(addr, "SENTINEL MASTERS", reply)
    }

    async fn sentinel_remove(
        &self,
        addr: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<bool, RedisError> {
        bounded(addr, timeout, self.remove(addr, name, timeout)).await
    }

    async fn sentinel_monitor(
        &self,
        addr: &str,
        spec: &MonitorSpec<'_>,
        timeout: Duration,
    ) -> Result<(), RedisError> {
        let run = self.monitor(
            addr,
            spec.name,
            (spec.master_ip, spec.master_port),
            spec.quorum,
            spec.settings,
            timeout,
        );
        bounded(addr, timeout, run).await
    }

    async fn subscribe_switch_master(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<Box<dyn SwitchStream>, RedisError> {
        let subscribe = async {
            let conn = RespConn::connect(addr, timeout.min(MAX_CONNECT_TIMEOUT)).await?;
            conn.subscribe(&[SWITCH_MASTER.as_bytes()]).await
        };
        let sub = bounded(addr, timeout, subscribe).await?;
        Ok(Box::new(SwitchSubscription {
            sub,
            heartbeat: self.heartbeat,
            pong_timeout: timeout,
            last_heard: Instant::now(),
            ping_sent: None,
        }))
    }
}

// === impl SwitchSubscription ===

/// A `+switch-master` subscription on its own connection, with a heartbeat.
struct SwitchSubscription {
    sub: Subscription,
    /// Quiet time before a `PING`.
    heartbeat: Duration,
    /// How long to wait for the answer to a `PING`.
    pong_timeout: Duration,
    /// When the Sentinel last sent anything.
    last_heard: Instant,
    /// When the unanswered `PING` was sent, if there is one. Kept here, not in
    /// the `next` future, so that dropping `next` loses no state.
    ping_sent: Option<Instant>,
}

#[async_trait]
impl SwitchStream for SwitchSubscription {
    async fn next(&mut self) -> Result<SwitchMaster, RedisError> {
        loop {
            let deadline = match self.ping_sent {
                Some(sent) => sent + self.pong_timeout,
                None => self.last_heard + self.heartbeat,
            };
            match tokio::time::timeout_at(deadline, self.sub.next_push()).await {
                Ok(push) => {
                    let push = push?;
                    // Anything at all proves the connection alive.
                    self.last_heard = Instant::now();
                    self.ping_sent = None;
                    if let Some(switch) = self.switch_of(push) {
                        return Ok(switch);
                    }
                }
                Err(_) if self.ping_sent.is_some() => {
                    return Err(RedisError::Timeout {
                        addr: self.sub.addr().to_owned(),
                        timeout: self.pong_timeout,
                    });
                }
                Err(_) => {
                    let addr = self.sub.addr().to_owned();
                    bounded(&addr, self.pong_timeout, self.sub.ping()).await?;
                    self.ping_sent = Some(Instant::now());
                }
            }
        }
    }
}

impl SwitchSubscription {
    /// The announcement in `push`, if it is one; anything else is skipped.
    fn switch_of(&self, push: Push) -> Option<SwitchMaster> {
        match push {
            Push::Message { channel, payload } if channel == SWITCH_MASTER.as_bytes() => {
                let parsed = parse_switch_master(&payload);
                if parsed.is_none() {
                    tracing::warn!(
                        sentinel = self.sub.addr(),
                        payload = %String::from_utf8_lossy(&payload),
                        "skipping a malformed +switch-master message"
                    );
                }
                parsed
            }
            Push::Pong => None,
            other => {
                tracing::debug!(sentinel = self.sub.addr(), push = ?other, "ignoring a push");
                None
            }
        }
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

/// `host:port` of a master, split at the last ':' (brackets of an IPv6
/// address removed). `addr` is the server being configured, for the error.
fn split_master<'a>(addr: &str, master: &'a str) -> Result<(&'a str, &'a str), RedisError> {
    let bad = || RedisError::Reply {
        addr: addr.to_owned(),
        reason: format!("master address {master:?} is not host:port"),
    };
    let (host, port) = master.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok((host, port))
}

/// Judges the replies to `MULTI`, the queued commands and `EXEC`; `labels`
/// names each command, in the same order. Redis does not roll back: commands
/// before the failed one in EXEC have taken effect.
fn check_transaction(
    addr: &str,
    labels: &[&str],
    replies: Vec<Value>,
) -> Result<Persisted, RedisError> {
    // `error` is Redis's own text, which tells an auth failure from others.
    let fail = |error: &str, reason: String| {
        let addr = addr.to_owned();
        if is_auth_error(error) {
            RedisError::Auth { addr, reason }
        } else {
            RedisError::Reply { addr, reason }
        }
    };
    let queued = labels.len().saturating_sub(2);
    if replies.len() != labels.len() || queued == 0 {
        let reason = format!(
            "{} replies to a transaction of {} commands",
            replies.len(),
            labels.len()
        );
        return Err(fail("", reason));
    }
    if let Value::Error(e) = &replies[0] {
        return Err(fail(e, format!("MULTI failed: {e}")));
    }
    // A command refused while queueing makes EXEC answer EXECABORT; the
    // refusal says why.
    let refused = labels[1..=queued]
        .iter()
        .zip(&replies[1..=queued])
        .find_map(|(label, reply)| match reply {
            Value::Error(e) => Some((e, format!("{label} failed: {e}"))),
            _ => None,
        });
    match &replies[queued + 1] {
        Value::Array(results) if results.len() == queued => {
            let mut persisted = Persisted::Yes;
            for (label, result) in labels[1..=queued].iter().zip(results) {
                match result {
                    Value::Error(e) if *label == "CONFIG REWRITE" => {
                        persisted = Persisted::No(format!("{label} failed: {e}"));
                    }
                    Value::Error(e) => return Err(fail(e, format!("{label} failed: {e}"))),
                    _ => {}
                }
            }
            Ok(persisted)
        }
        Value::Error(e) => Err(match refused {
            Some((first, why)) => fail(first, format!("{why}; transaction discarded ({e})")),
            None => fail(e, format!("EXEC failed: {e}")),
        }),
        other => Err(unexpected(addr, "EXEC", other)),
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

    fn ok() -> Value {
        Value::Simple("OK".into())
    }

    fn queued() -> Value {
        Value::Simple("QUEUED".into())
    }

    const LABELS: [&str; 6] = [
        "MULTI",
        "CONFIG SET masterauth",
        "SLAVEOF NO ONE",
        "CONFIG REWRITE",
        "CLIENT KILL TYPE normal",
        "EXEC",
    ];

    fn reason(r: Result<Persisted, RedisError>) -> String {
        match r {
            Err(RedisError::Reply { addr, reason }) => {
                assert_eq!(addr, "h:1");
                reason
            }
            other => panic!("expected a reply error, got {other:?}"),
        }
    }

    #[test]
    fn a_successful_transaction() {
        let exec = Value::Array(vec![ok(), ok(), ok(), Value::Int(3)]);
        let replies = vec![ok(), queued(), queued(), queued(), queued(), exec];
        assert_eq!(
            check_transaction("h:1", &LABELS, replies).unwrap(),
            Persisted::Yes
        );
    }

    #[test]
    fn a_failed_rewrite_is_reported_apart_from_the_switch() {
        let exec = Value::Array(vec![
            ok(),
            ok(),
            Value::Error("ERR The server is running without a config file".into()),
            Value::Int(0),
        ]);
        let replies = vec![ok(), queued(), queued(), queued(), queued(), exec];
        assert_eq!(
            check_transaction("h:1", &LABELS, replies).unwrap(),
            Persisted::No(
                "CONFIG REWRITE failed: ERR The server is running without a config file".into()
            )
        );
    }

    #[test]
    fn an_error_inside_exec_names_the_command() {
        let exec = Value::Array(vec![
            ok(),
            Value::Error("ERR Unbalanced quotes".into()),
            ok(),
            Value::Int(0),
        ]);
        let replies = vec![ok(), queued(), queued(), queued(), queued(), exec];
        assert_eq!(
            reason(check_transaction("h:1", &LABELS, replies)),
            "SLAVEOF NO ONE failed: ERR Unbalanced quotes"
        );
    }

    #[test]
    fn a_refused_command_explains_execabort() {
        let replies = vec![
            ok(),
            Value::Error("ERR unknown command 'CONFIG'".into()),
            queued(),
            Value::Error("ERR unknown command 'CONFIG'".into()),
            queued(),
            Value::Error("EXECABORT Transaction discarded because of previous errors.".into()),
        ];
        let why = reason(check_transaction("h:1", &LABELS, replies));
        assert!(
            why.starts_with("CONFIG SET masterauth failed: ERR unknown command 'CONFIG'"),
            "{why}"
        );
        assert!(why.contains("EXECABORT"), "{why}");
    }

    #[test]
    fn noauth_is_an_auth_error() {
        let noauth = || Value::Error("NOAUTH Authentication required.".into());
        let replies = vec![noauth(), noauth(), noauth(), noauth(), noauth(), noauth()];
        let r = check_transaction("h:1", &LABELS, replies);
        assert!(matches!(r, Err(RedisError::Auth { .. })), "{r:?}");
    }

    #[test]
    fn odd_exec_replies() {
        let base = || vec![ok(), queued(), queued(), queued(), queued()];
        for exec in [
            Value::Nil,
            Value::Array(vec![ok()]),
            Value::Simple("OK".into()),
        ] {
            let mut replies = base();
            replies.push(exec.clone());
            let why = reason(check_transaction("h:1", &LABELS, replies));
            assert!(why.contains("EXEC"), "{exec:?}: {why}");
        }
        assert!(check_transaction("h:1", &LABELS, base()).is_err());
    }

    #[test]
    fn master_addresses() {
        assert_eq!(
            split_master("h:1", "10.0.0.1:6379").unwrap(),
            ("10.0.0.1", "6379")
        );
        assert_eq!(
            split_master("h:1", "redis-a.local:7000").unwrap(),
            ("redis-a.local", "7000")
        );
        assert_eq!(split_master("h:1", "[::1]:6379").unwrap(), ("::1", "6379"));
        assert_eq!(split_master("h:1", "::1:6379").unwrap(), ("::1", "6379"));
        for bad in ["10.0.0.1", ":6379", "h:", "h:port", "h:70000", ""] {
            assert!(split_master("h:1", bad).is_err(), "{bad}");
        }
    }

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
    fn debug_hides_the_password() {
        let shown = format!("{:?}", PooledHa::new("s3cret"));
        assert!(!shown.contains("s3cret"), "{shown}");
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
