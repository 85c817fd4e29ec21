//! [`Conn`]: one connection to a Redis server or Sentinel on the `redis` crate,
//! and the one place where the crate's errors become [`RedisError`]s.
//!
//! A `Conn` writes the crate's packed commands itself and reads each reply with
//! the crate's parser (`parse_redis_value_async`) straight off the socket, one
//! exchange at a time. Why not the crate's multiplexed connection: it keeps an
//! I/O task, a command channel and 8 KiB read and write buffers per connection
//! for its whole life; with a pool holding one connection per stats target that
//! was ≈ 20 KB per server (measured with heaptrack), the memory regression of
//! issue 9. Here an idle connection holds a socket and no buffer.
//!
//! A connection that saw a failure or a cut-off call is never used again: a
//! rule with no exceptions is easier to trust than one about which failures
//! leave the stream in step. Error *replies* are not failures: the reply was
//! read whole, so the connection stays usable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use combine::parser::combinator::AnySendSyncPartialState;
use combine::stream::PointerOffset;
use combine::stream::decoder::Decoder;
use redis::{Cmd, Pipeline};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::RedisError;
use super::budget::{Budgeted, StreamState};
use super::reply::Value;
use crate::model::Addr;

/// The reason of the error for a reply over the byte budget; the probe tells
/// it from other protocol errors by this start.
pub(crate) const OVERSIZED: &str = "protocol error: reply exceeds the limit";

/// The crate's reply parser state with its read buffer.
type ReplyDecoder = Decoder<AnySendSyncPartialState, PointerOffset<[u8]>>;

/// One connection, used one exchange at a time.
pub struct Conn {
    addr: String,
    stream: Budgeted<TcpStream>,
    state: Arc<StreamState>,
    /// Set when an exchange starts, cleared when it completed: a failed or
    /// cancelled call leaves it set, and the connection then refuses calls.
    broken: bool,
    last_used: Instant,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("addr", &self.addr)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Connects to `addr` (`host:port`) within `connect_timeout`, without
    /// `AUTH`, with the default reply budget (8 MiB per exchange).
    pub async fn connect(addr: &str, connect_timeout: Duration) -> Result<Conn, RedisError> {
        Conn::open(addr, connect_timeout, super::dial::DEFAULT_REPLY_BUDGET).await
    }

    /// Connects with TCP_NODELAY (commands are small and each waits for its
    /// reply) and a reply budget of `budget` bytes per exchange. Nothing is
    /// sent: the dialer sends AUTH itself, so a refusal keeps Redis's own words;
    /// and no CLIENT SETINFO (servers older than 7.2 answer it with an error).
    pub(crate) async fn open(
        addr: &str,
        connect_timeout: Duration,
        budget: usize,
    ) -> Result<Conn, RedisError> {
        let (stream, state) = connect_stream(addr, connect_timeout, budget).await?;
        Ok(Conn {
            addr: addr.to_owned(),
            stream,
            state,
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
    /// timeout). Nothing reads an idle connection, so this asks the socket
    /// without waiting: end of stream, an error, or bytes nobody asked for
    /// (out of step) all mean it is not to be used.
    pub fn is_closed_by_peer(&self) -> bool {
        if self.state.closed() {
            return true;
        }
        let mut probe = [0u8; 1];
        match self.stream.get_ref().try_read(&mut probe) {
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            Ok(_) => true,
        }
    }

    /// Sends one command and reads its reply. An error reply becomes
    /// [`RedisError::Auth`] (`NOAUTH`, `WRONGPASS`) or [`RedisError::Reply`] and
    /// leaves the connection usable; anything else that fails breaks it.
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<Value, RedisError> {
        self.call_cmd(&command(args)).await
    }

    /// [`Conn::call`] with a command built once by the caller (hot paths).
    pub async fn call_cmd(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        let mut replies = self.exchange(&cmd.get_packed_command(), 1).await?;
        // Exactly one reply was read.
        match replies.pop().unwrap_or(Value::Nil) {
            Value::Error(e) => Err(self.error_reply(e)),
            v => Ok(v),
        }
    }

    /// Sends `cmds` in one write and reads one reply per command, in order.
    /// Error replies come back as [`Value::Error`]: in a transaction each
    /// reply is judged by the caller.
    pub async fn pipeline(&mut self, cmds: &[&[&[u8]]]) -> Result<Vec<Value>, RedisError> {
        let mut pipe = Pipeline::with_capacity(cmds.len());
        for args in cmds {
            pipe.add_command(command(args));
        }
        self.exchange(&pipe.get_packed_pipeline(), cmds.len()).await
    }

    /// Writes `packed`, then reads `replies` replies. The parser and its buffer
    /// live for this exchange only; bytes left over after the last reply mean
    /// the stream is out of step, which breaks the connection.
    async fn exchange(&mut self, packed: &[u8], replies: usize) -> Result<Vec<Value>, RedisError> {
        self.begin()?;
        if let Err(e) = self.stream.write_all(packed).await {
            return Err(self.failure(&redis::RedisError::from(e)));
        }
        let mut decoder = ReplyDecoder::new();
        let mut out = Vec::with_capacity(replies);
        for _ in 0..replies {
            match redis::parse_redis_value_async(&mut decoder, &mut self.stream).await {
                // Error replies included (`Value::Error`).
                Ok(v) => out.push(Value::from(v)),
                Err(e) => return Err(self.failure(&e)),
            }
        }
        if !decoder.buffer().is_empty() {
            return Err(RedisError::Reply {
                addr: self.addr.clone(),
                reason: "protocol error: the server sent more than the replies asked for".into(),
            });
        }
        self.finish();
        Ok(out)
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

#[cfg(test)]
mod footprint {
    use super::*;
    use std::io::{Read, Write};

    /// Answers `+PONG` to every read on every connection, on plain threads: its
    /// work is not counted among the tokio tasks of the test's runtime.
    fn pong_server() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(mut sock) = sock else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 512];
                    while matches!(sock.read(&mut buf), Ok(n) if n > 0) {
                        if sock.write_all(b"+PONG\r\n").is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    // A pool holds one idle connection per server it probes (1024 for a large
    // topology): a task per connection (the crate's multiplexed driver) was most
    // of the memory regression of issue 9.
    #[tokio::test]
    async fn an_idle_connection_runs_no_task() {
        let addr = pong_server();
        let tasks = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        let before = tasks();
        let mut conns = Vec::new();
        for _ in 0..32 {
            let mut c = Conn::connect(&addr, Duration::from_secs(5)).await.unwrap();
            assert_eq!(
                c.call(&[b"PING"]).await.unwrap(),
                Value::Simple("PONG".into())
            );
            conns.push(c);
        }
        assert_eq!(tasks(), before, "tasks alive with 32 idle connections");
        assert!(conns.iter().all(|c| !c.is_closed_by_peer()));
    }
}
