//! Per-address pools of idle [`Conn`]s (Codis dashboard §5.7).
//!
//! Per address the pool keeps a short list of idle connections, freshest first.
//! [`Pool::call`] takes the freshest one that is not stale (idle longer than the
//! pool timeout) and not closed by the server, or dials a new one, runs one
//! command under a deadline that covers the connect too, and puts the connection
//! back only if the exchange completed. A failed or cancelled call drops its
//! connection, so a broken one is never handed out again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::Cmd;

use super::RedisError;
use super::client::{Conn, command};
use super::dial::Dialer;
use super::reply::Value;

/// Idle connections kept per address. Probes are one at a time per address, so
/// a few cover overlapping rounds; more would only hold sockets and buffers.
const MAX_IDLE_PER_ADDR: usize = 4;

/// How often [`Pool::put`] sweeps stale connections of every address (the Codis
/// janitor's cadence), so an address no longer called does not keep its sockets
/// even if the owner never calls [`Pool::evict_idle`].
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The idle lists, behind the pool's mutex.
#[derive(Debug)]
struct Idle {
    /// Per address, freshest first.
    lists: HashMap<String, VecDeque<Conn>>,
    /// When stale connections of all addresses were last dropped.
    last_sweep: Instant,
}

/// Idle connections per address, authenticating with one password.
///
/// One pool per purpose: e.g. stats (with `product_auth`) and HA (no auth).
pub struct Pool {
    /// Opens connections, with `AUTH` when it holds a password.
    dialer: Dialer,
    /// An idle connection older than this is dropped instead of reused (zero:
    /// never). Servers may close idle clients, and a fresh dial is cheap next to
    /// a failed probe.
    idle_timeout: Duration,
    /// The interval of the automatic sweep ([`SWEEP_EVERY`]; shorter in tests).
    sweep_every: Duration,
    /// A std mutex: it guards only list operations, never an `.await`.
    idle: Mutex<Idle>,
}

// Written by hand so that the password never reaches a log line.
impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("dialer", &self.dialer)
            .field("idle_timeout", &self.idle_timeout)
            .field("idle", &self.idle_count())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool whose connections authenticate with `password` (empty: no `AUTH`)
    /// and are dropped after `timeout` idle (zero: never).
    pub fn new(password: &str, timeout: Duration) -> Pool {
        Pool {
            dialer: Dialer::new(password),
            idle_timeout: timeout,
            sweep_every: SWEEP_EVERY,
            idle: Mutex::new(Idle {
                lists: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Runs one command on `addr`, reusing an idle connection when there is one.
    /// Everything (connect and `AUTH` included) must finish within `timeout`,
    /// else [`RedisError::Timeout`]; the connection in use is then closed.
    pub async fn call(
        &self,
        addr: &str,
        args: &[&[u8]],
        timeout: Duration,
    ) -> Result<Value, RedisError> {
        self.call_cmd(addr, &command(args), timeout).await
    }

    /// [`Pool::call`] with a command built once by the caller (hot paths).
    pub async fn call_cmd(
        &self,
        addr: &str,
        cmd: &Cmd,
        timeout: Duration,
    ) -> Result<Value, RedisError> {
        let exchange = async {
            let mut conn = match self.take(addr) {
                Some(conn) => conn,
                None => self.dialer.dial(addr, timeout).await?,
            };
            let result = conn.call_cmd(cmd).await;
            Ok::<_, RedisError>((conn, result))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok((conn, result))) => {
                self.put(conn);
                result
            }
            Ok(Err(e)) => Err(e),
            // Dropping the exchange dropped its connection mid-call: closed.
            Err(_) => Err(RedisError::Timeout {
                addr: addr.to_owned(),
                timeout,
            }),
        }
    }

    /// Drops every stale idle connection now: a janitor step for the owner to
    /// call periodically. The pool also does this by itself, at most once a
    /// minute, when a connection is put back.
    pub fn evict_idle(&self) {
        let mut evicted = Vec::new();
        self.sweep(&mut self.lock(), Instant::now(), &mut evicted);
        // Sockets close here, outside the lock.
        drop(evicted);
    }

    /// How many idle connections the pool holds, over all addresses.
    pub fn idle_count(&self) -> usize {
        self.lock().lists.values().map(VecDeque::len).sum()
    }

    /// Moves the stale connections of every address to `evicted`.
    fn sweep(&self, idle: &mut Idle, now: Instant, evicted: &mut Vec<Conn>) {
        for list in idle.lists.values_mut() {
            // Freshest first, so the stale ones are at the back.
            while list.back().is_some_and(|c| self.is_stale(c, now)) {
                evicted.extend(list.pop_back());
            }
        }
        idle.lists.retain(|_, list| !list.is_empty());
        idle.last_sweep = now;
    }

    /// The freshest usable idle connection to `addr`, if any.
    fn take(&self, addr: &str) -> Option<Conn> {
        let now = Instant::now();
        let mut discarded = Vec::new();
        let found = loop {
            let next = {
                let mut idle = self.lock();
                let list = idle.lists.get_mut(addr)?;
                let next = list.pop_front();
                if list.is_empty() {
                    idle.lists.remove(addr);
                }
                next
            };
            match next {
                None => break None,
                // Try the next one. (If the freshest is stale, so are the rest,
                // and this empties the list.)
                Some(conn) if self.is_stale(&conn, now) || conn.is_closed_by_peer() => {
                    discarded.push(conn);
                }
                Some(conn) => break Some(conn),
            }
        };
        drop(discarded);
        found
    }

    /// Keeps `conn` for reuse if its last call completed and there is room.
    fn put(&self, conn: Conn) {
        if conn.is_broken() {
            return;
        }
        let now = Instant::now();
        let mut dropped = Vec::new();
        {
            let mut idle = self.lock();
            if now.saturating_duration_since(idle.last_sweep) >= self.sweep_every {
                self.sweep(&mut idle, now, &mut dropped);
            }
            let list = idle.lists.entry(conn.addr().to_owned()).or_default();
            if list.len() < MAX_IDLE_PER_ADDR {
                list.push_front(conn);
            } else {
                dropped.push(conn);
            }
        }
        // Sockets close here, outside the lock.
        drop(dropped);
    }

    fn is_stale(&self, conn: &Conn, now: Instant) -> bool {
        !self.idle_timeout.is_zero()
            && now.saturating_duration_since(conn.last_used()) >= self.idle_timeout
    }

    fn lock(&self) -> MutexGuard<'_, Idle> {
        // The lists stay consistent even if a holder panicked: every critical
        // section is a single push or pop.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server answering every command with `+PONG`, counting connections.
    async fn pong_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {
                        if sock.write_all(b"+PONG\r\n").await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    const T: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn reuses_one_connection() {
        use std::sync::atomic::Ordering;
        let (addr, accepted) = pong_server().await;
        let pool = Pool::new("", Duration::from_secs(60));
        for _ in 0..3 {
            let v = pool.call(&addr, &[b"PING"], T).await.unwrap();
            assert_eq!(v, Value::Simple("PONG".into()));
        }
        assert_eq!(pool.idle_count(), 1);
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn stale_connections_are_dropped() {
        use std::sync::atomic::Ordering;
        let (addr, accepted) = pong_server().await;
        let pool = Pool::new("", Duration::from_millis(30));
        pool.call(&addr, &[b"PING"], T).await.unwrap();
        assert_eq!(pool.idle_count(), 1);
        tokio::time::sleep(Duration::from_millis(40)).await;
        pool.evict_idle();
        assert_eq!(pool.idle_count(), 0);
        pool.call(&addr, &[b"PING"], T).await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        // Stale at take time: redialled rather than reused.
        pool.call(&addr, &[b"PING"], T).await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn put_sweeps_other_addresses() {
        let (a, _) = pong_server().await;
        let (b, _) = pong_server().await;
        let mut pool = Pool::new("", Duration::from_millis(30));
        pool.sweep_every = Duration::from_millis(30);
        pool.call(&a, &[b"PING"], T).await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        // No call to `a` and no evict_idle: the put after the call to `b` sweeps.
        pool.call(&b, &[b"PING"], T).await.unwrap();
        assert_eq!(pool.idle_count(), 1);
        assert!(pool.lock().lists.contains_key(&b));
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", Pool::new("s3cret", Duration::ZERO));
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[tokio::test]
    async fn idle_connections_are_capped() {
        let (addr, _) = pong_server().await;
        let pool = Pool::new("", Duration::ZERO);
        let calls = (0..8).map(|_| pool.call(&addr, &[b"PING"], T));
        for r in futures::future::join_all(calls).await {
            r.unwrap();
        }
        assert_eq!(pool.idle_count(), MAX_IDLE_PER_ADDR);
    }

    #[tokio::test]
    async fn a_timed_out_call_is_not_pooled() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        let pool = Pool::new("", Duration::ZERO);
        let started = Instant::now();
        let r = pool
            .call(&addr, &[b"PING"], Duration::from_millis(100))
            .await;
        assert!(matches!(r, Err(RedisError::Timeout { .. })), "{r:?}");
        assert!(started.elapsed() < Duration::from_millis(400));
        assert_eq!(pool.idle_count(), 0);
    }

    #[tokio::test]
    async fn auth_reply_errors_are_auth_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"-ERR AUTH <password> called without any password configured\r\n")
                .await;
            let _ = sock.read(&mut buf).await;
        });
        let pool = Pool::new("secret", Duration::ZERO);
        let r = pool.call(&addr, &[b"PING"], T).await;
        assert!(matches!(r, Err(RedisError::Auth { .. })), "{r:?}");
    }
}
