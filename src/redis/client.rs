//! [`Conn`]: one connection to a Redis server or Sentinel on the `redis` crate,
//! and the one place where the crate's errors become [`RedisError`]s.
//!
//! The crate's multiplexed connection would survive a cancelled call, but a
//! connection that saw a failure or a cut-off call is never used again all the
//! same: a rule with no exceptions is easier to trust than one about which
//! failures leave the stream in step. Error *replies* are not failures: the
//! reply was read whole, so the connection stays usable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisConnectionInfo};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::RedisError;
use super::budget::{Budgeted, StreamState};
use super::reply::{Value, server_error_text};
use crate::model::Addr;

/// The reason of the error for a reply over the byte budget; the probe tells
/// it from other protocol errors by this start.
pub(crate) const OVERSIZED: &str = "protocol error: reply exceeds the limit";

/// One connection, used one exchange at a time.
#[derive(Debug)]
pub struct Conn {
    addr: String,
    inner: MultiplexedConnection,
    state: Arc<StreamState>,
    /// The crate's I/O task for this connection; aborted on drop so the
    /// socket closes with the `Conn`, not whenever the task next wakes.
    driver: JoinHandle<()>,
    /// Set when an exchange starts, cleared when it completed: a failed or
    /// cancelled call leaves it set, and the connection then refuses calls.
    broken: bool,
    last_used: Instant,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Conn {
    /// Connects to `addr` (`host:port`) within `connect_timeout`, without
    /// `AUTH`, with the default reply budget (8 MiB per exchange).
    pub async fn connect(addr: &str, connect_timeout: Duration) -> Result<Conn, RedisError> {
        Conn::open(addr, connect_timeout, super::dial::DEFAULT_REPLY_BUDGET).await
    }

    /// Connects with TCP_NODELAY (commands are small and each waits for its
    /// reply) and a reply budget of `budget` bytes per exchange.
    pub(crate) async fn open(
        addr: &str,
        connect_timeout: Duration,
        budget: usize,
    ) -> Result<Conn, RedisError> {
        let (stream, state) = connect_stream(addr, connect_timeout, budget).await?;
        // No password here: the dialer sends AUTH itself, so a refusal keeps
        // Redis's own words. No CLIENT SETINFO either: one round trip less, and
        // servers older than 7.2 would answer it with an error.
        let info = RedisConnectionInfo::default().set_skip_set_lib_name();
        let config = AsyncConnectionConfig::new().set_response_timeout(None);
        let (inner, driver) = MultiplexedConnection::new_with_config(&info, stream, config)
            .await
            .map_err(|e| classify(addr, &state, &e))?;
        Ok(Conn {
            addr: addr.to_owned(),
            inner,
            state,
            driver: tokio::spawn(driver),
            broken: false,
            last_used: Instant::now(),
        })
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether a call failed or was cancelled on this connection.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// When the last call completed (or the connection was opened).
    pub fn last_used(&self) -> Instant {
        self.last_used
    }

    /// Whether the server closed this connection (a restart, its idle
    /// timeout); seen by the crate's I/O task as soon as the close arrives.
    pub fn is_closed_by_peer(&self) -> bool {
        self.state.closed()
    }

    /// Sends one command and reads its reply. An error reply becomes
    /// [`RedisError::Auth`] (`NOAUTH`, `WRONGPASS`) or [`RedisError::Reply`] and
    /// leaves the connection usable; anything else that fails breaks it.
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<Value, RedisError> {
        self.call_cmd(&command(args)).await
    }

    /// [`Conn::call`] with a command built once by the caller (hot paths).
    pub async fn call_cmd(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        self.begin()?;
        let reply = self.inner.send_packed_command(cmd).await;
        match reply {
            Ok(redis::Value::ServerError(e)) => {
                self.finish();
                Err(self.error_reply(server_error_text(&e)))
            }
            Ok(v) => {
                self.finish();
                Ok(Value::from(v))
            }
            Err(e) => Err(self.failure(&e)),
        }
    }

    /// Sends `cmds` in one write and reads one reply per command, in order.
    /// Error replies come back as [`Value::Error`]: in a transaction each
    /// reply is judged by the caller.
    pub async fn pipeline(&mut self, cmds: &[&[&[u8]]]) -> Result<Vec<Value>, RedisError> {
        self.begin()?;
        let mut pipe = Pipeline::with_capacity(cmds.len());
        for args in cmds {
            pipe.add_command(command(args));
        }
        match self.inner.send_packed_commands(&pipe, 0, cmds.len()).await {
            Ok(replies) => {
                self.finish();
                Ok(replies.into_iter().map(Value::from).collect())
            }
            Err(e) => Err(self.failure(&e)),
        }
    }

    fn begin(&mut self) -> Result<(), RedisError> {
        if self.broken {
            return Err(RedisError::Connect {
                addr: self.addr.clone(),
                reason: "connection unusable after an earlier failed or cancelled call".into(),
            });
        }
        self.broken = true;
        self.state.reset();
        Ok(())
    }

    fn finish(&mut self) {
        self.broken = false;
        self.last_used = Instant::now();
    }

    /// An error reply as a [`RedisError`].
    pub(crate) fn error_reply(&self, reason: String) -> RedisError {
        error_reply(&self.addr, reason)
    }

    fn failure(&self, e: &redis::RedisError) -> RedisError {
        classify(&self.addr, &self.state, e)
    }
}

/// A TCP connection to `addr` within `connect_timeout`, with TCP_NODELAY
/// (commands are small and each waits for its reply), under a reply budget
/// of `budget` bytes per exchange.
pub(crate) async fn connect_stream(
    addr: &str,
    connect_timeout: Duration,
    budget: usize,
) -> Result<(Budgeted<TcpStream>, Arc<StreamState>), RedisError> {
    let err = |reason: String| RedisError::Connect {
        addr: addr.to_owned(),
        reason,
    };
    let (host, port) = host_port(addr)?;
    let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect((host, port))).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(err(e.to_string())),
        Err(_) => return Err(err(format!("connect timed out after {connect_timeout:?}"))),
    };
    tcp.set_nodelay(true).map_err(|e| err(e.to_string()))?;
    let state = StreamState::new(budget);
    Ok((Budgeted::new(tcp, state.clone()), state))
}

/// The host and port of `addr`, or an error naming it: no connection can be
/// opened to anything else.
pub(crate) fn host_port(addr: &str) -> Result<(&str, u16), RedisError> {
    Addr::split(addr).map_err(|e| RedisError::Connect {
        addr: addr.to_owned(),
        reason: e.to_string(),
    })
}

/// What the stream itself saw go wrong (budget spent, peer closed), if
/// anything: more precise than the crate's error, which reports both as a
/// dropped connection.
pub(crate) fn seen_by_stream(addr: &str, state: &StreamState) -> Option<RedisError> {
    let addr = addr.to_owned();
    if state.exceeded() {
        return Some(RedisError::Reply {
            addr,
            reason: format!("{OVERSIZED} of {} bytes", state.budget()),
        });
    }
    if state.closed() {
        let reason = if state.received_any() {
            "connection closed in the middle of a reply"
        } else {
            "connection closed by the server"
        };
        return Some(RedisError::Connect {
            addr,
            reason: reason.into(),
        });
    }
    None
}

/// A crate failure on `addr` as a [`RedisError`]: the one classifier.
pub(crate) fn classify(addr: &str, state: &StreamState, e: &redis::RedisError) -> RedisError {
    if let Some(seen) = seen_by_stream(addr, state) {
        return seen;
    }
    // An error reply the crate turned into an error (a refused SUBSCRIBE).
    if let Some(code) = e.code() {
        let reason = match e.detail() {
            Some(detail) => format!("{code} {detail}"),
            None => code.to_owned(),
        };
        return error_reply(addr, reason);
    }
    let addr = addr.to_owned();
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        return RedisError::Connect {
            addr,
            reason: e.to_string(),
        };
    }
    RedisError::Reply {
        addr,
        reason: format!("protocol error: {e}"),
    }
}

/// An error reply (Redis's text) as a [`RedisError`].
pub(crate) fn error_reply(addr: &str, reason: String) -> RedisError {
    let addr = addr.to_owned();
    if is_auth_error(&reason) {
        RedisError::Auth { addr, reason }
    } else {
        RedisError::Reply { addr, reason }
    }
}

/// Whether an error reply means our credentials were missing or refused.
pub(crate) fn is_auth_error(msg: &str) -> bool {
    msg.starts_with("NOAUTH") || msg.starts_with("WRONGPASS")
}

/// `args` as a command for the crate.
pub(crate) fn command(args: &[&[u8]]) -> Cmd {
    let mut cmd = Cmd::new();
    for arg in args {
        cmd.arg(*arg);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const T: Duration = Duration::from_secs(5);

    /// A listener whose first connection gets `script[i]` written after the
    /// client's i-th write, then is held open until the client leaves (or
    /// closed at once when `close` is set).
    async fn scripted(script: &'static [&'static [u8]], close: bool) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            for part in script {
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(part).await;
            }
            if !close {
                while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
            }
        });
        addr
    }

    async fn conn(script: &'static [&'static [u8]], close: bool) -> Conn {
        Conn::connect(&scripted(script, close).await, T)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn error_replies_keep_the_connection() {
        let mut c = conn(&[b"-ERR unknown command 'X'\r\n", b"+PONG\r\n"], false).await;
        match c.call(&[b"X"]).await {
            Err(RedisError::Reply { reason, addr }) => {
                assert_eq!(reason, "ERR unknown command 'X'");
                assert_eq!(addr, c.addr());
            }
            other => panic!("{other:?}"),
        }
        assert!(!c.is_broken());
        assert_eq!(
            c.call(&[b"PING"]).await.unwrap(),
            Value::Simple("PONG".into())
        );
    }

    #[tokio::test]
    async fn auth_errors() {
        const NOAUTH: &[&[u8]] = &[b"-NOAUTH Authentication required.\r\n"];
        const WRONGPASS: &[&[u8]] = &[b"-WRONGPASS invalid username-password pair\r\n"];
        for reply in [NOAUTH, WRONGPASS] {
            let mut c = conn(reply, false).await;
            let r = c.call(&[b"PING"]).await;
            assert!(matches!(r, Err(RedisError::Auth { .. })), "{r:?}");
        }
    }

    #[tokio::test]
    async fn garbage_breaks_the_connection() {
        let mut c = conn(&[b"@@@\r\n"], false).await;
        match c.call(&[b"PING"]).await {
            Err(RedisError::Reply { reason, .. }) => {
                assert!(reason.contains("protocol"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(c.is_broken());
        match c.call(&[b"PING"]).await {
            Err(RedisError::Connect { reason, .. }) => {
                assert!(reason.contains("unusable"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_close_mid_reply_says_so() {
        let mut c = conn(&[b"$10\r\nabc"], true).await;
        match c.call(&[b"GET", b"k"]).await {
            Err(RedisError::Connect { reason, .. }) => {
                assert!(reason.contains("middle"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(c.is_broken());
    }

    #[tokio::test]
    async fn a_cancelled_call_breaks_the_connection() {
        // Reads, never answers.
        let mut c = conn(&[], false).await;
        let r = tokio::time::timeout(Duration::from_millis(50), c.call(&[b"PING"])).await;
        assert!(r.is_err(), "the call should have timed out");
        assert!(c.is_broken());
    }

    #[tokio::test]
    async fn pipelines_keep_error_replies() {
        let mut c = conn(&[b"+OK\r\n-ERR no\r\n:3\r\n"], false).await;
        let replies = c
            .pipeline(&[&[b"MULTI"], &[b"X"], &[b"EXEC"]])
            .await
            .unwrap();
        assert_eq!(
            replies,
            [
                Value::Simple("OK".into()),
                Value::Error("ERR no".into()),
                Value::Int(3)
            ]
        );
        assert!(!c.is_broken());
    }

    #[tokio::test]
    async fn notices_a_peer_close() {
        let mut c = conn(&[b"+PONG\r\n"], true).await;
        assert_eq!(
            c.call(&[b"PING"]).await.unwrap(),
            Value::Simple("PONG".into())
        );
        let deadline = Instant::now() + T;
        while !c.is_closed_by_peer() {
            assert!(Instant::now() < deadline, "the close was never noticed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
