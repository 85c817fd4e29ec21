//! A small RESP2 client with hard limits on what a server may make us allocate.
//!
//! We use our own code rather than the `redis` crate for the stats and HA pools:
//! a probed address may be anything (a misconfigured port, a hung or hostile
//! server), so every reply is bounded in size and nesting, and a connection that
//! may hold the rest of an unread reply is never used again.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::RedisError;

/// Limits on one reply. A reply that exceeds any of them is a protocol error; the
/// announced size is never allocated beyond the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string, in bytes (default 8 MiB: `INFO all` of a busy server
    /// is tens of KiB).
    pub max_bulk: usize,
    /// Most elements in one array (default 2^20).
    pub max_array: usize,
    /// Deepest array nesting (default 8; `SENTINEL masters` needs 2).
    pub max_depth: usize,
    /// Longest status, error, integer or length line, in bytes (default 64 KiB).
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bulk: 8 << 20,
            max_array: 1 << 20,
            max_depth: 8,
            max_line: 64 << 10,
        }
    }
}

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A null bulk string (`$-1`) or null array (`*-1`).
    Nil,
    /// An integer (`:`).
    Int(i64),
    /// A status reply (`+OK`).
    Simple(String),
    /// A bulk string (`$`).
    Bulk(Vec<u8>),
    /// An array (`*`), possibly nested.
    Array(Vec<Value>),
    /// An error reply (`-ERR ...`) inside an array. At the top level,
    /// [`RespConn::call`] turns it into a [`RedisError`] instead.
    Error(String),
}

impl Value {
    /// The bytes of a bulk or status reply.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// A bulk, status or integer reply as text (invalid UTF-8 replaced).
    pub fn to_text(&self) -> Option<String> {
        match self {
            Value::Int(i) => Some(i.to_string()),
            _ => self
                .as_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        }
    }
}

/// Why reading a reply failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The socket failed.
    Io(std::io::Error),
    /// The peer closed the stream; `mid_reply` if part of a reply had arrived.
    Eof {
        /// Whether some bytes of the reply had been read.
        mid_reply: bool,
    },
    /// The bytes are not RESP2, or break a [`Limits`] bound.
    Protocol(String),
}

impl ReadError {
    fn into_redis(self, addr: &str) -> RedisError {
        let addr = addr.to_owned();
        match self {
            ReadError::Io(e) => RedisError::Connect {
                addr,
                reason: e.to_string(),
            },
            ReadError::Eof { mid_reply } => RedisError::Connect {
                addr,
                reason: if mid_reply {
                    "connection closed in the middle of a reply".into()
                } else {
                    "connection closed by the server".into()
                },
            },
            ReadError::Protocol(why) => RedisError::Reply {
                addr,
                reason: format!("protocol error: {why}"),
            },
        }
    }
}

/// Appends `args` to `out` as a RESP array of bulk strings.
pub(crate) fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Reads one reply from `r`. Error replies come back as [`Value::Error`].
///
/// Arrays are parsed with an explicit stack rather than recursion: async
/// recursion needs boxing, and the stack makes the depth bound plain.
pub(crate) async fn read_value<R>(r: &mut R, limits: &Limits) -> Result<Value, ReadError>
where
    R: AsyncBufRead + Unpin,
{
    // Open arrays: the elements so far and how many are announced.
    let mut stack: Vec<(Vec<Value>, usize)> = Vec::new();
    let mut line = Vec::new();
    let mut first = true;
    loop {
        read_line(r, &mut line, limits.max_line, !first).await?;
        first = false;
        let Some((&kind, rest)) = line.split_first() else {
            return Err(ReadError::Protocol("empty line".into()));
        };
        let mut value = match kind {
            b'+' => Value::Simple(String::from_utf8_lossy(rest).into_owned()),
            b'-' => Value::Error(String::from_utf8_lossy(rest).into_owned()),
            b':' => Value::Int(parse_int(rest)?),
            b'$' => match parse_len(rest)? {
                None => Value::Nil,
                Some(n) if n > limits.max_bulk => {
                    return Err(ReadError::Protocol(format!(
                        "bulk of {n} bytes exceeds the limit of {}",
                        limits.max_bulk
                    )));
                }
                Some(n) => Value::Bulk(read_bulk(r, n).await?),
            },
            b'*' => {
                if stack.len() >= limits.max_depth {
                    return Err(ReadError::Protocol(format!(
                        "arrays nested deeper than {}",
                        limits.max_depth
                    )));
                }
                match parse_len(rest)? {
                    None => Value::Nil,
                    Some(n) if n > limits.max_array => {
                        return Err(ReadError::Protocol(format!(
                            "array of {n} elements exceeds the limit of {}",
                            limits.max_array
                        )));
                    }
                    Some(0) => Value::Array(Vec::new()),
                    Some(n) => {
                        // Grow as elements arrive: the count is only a claim.
                        stack.push((Vec::with_capacity(n.min(1024)), n));
                        continue;
                    }
                }
            }
            other => {
                return Err(ReadError::Protocol(format!(
                    "unknown reply type byte 0x{other:02x}"
                )));
            }
        };
        // Attach the value to its array; a completed array becomes the value to
        // attach one level up.
        loop {
            let Some((mut items, want)) = stack.pop() else {
                return Ok(value);
            };
            items.push(value);
            if items.len() < want {
                stack.push((items, want));
                break;
            }
            value = Value::Array(items);
        }
    }
}

/// Reads one `\r\n`-terminated line into `line`, without the terminator.
async fn read_line<R>(
    r: &mut R,
    line: &mut Vec<u8>,
    max: usize,
    mid_reply: bool,
) -> Result<(), ReadError>
where
    R: AsyncBufRead + Unpin,
{
    line.clear();
    loop {
        let buf = r.fill_buf().await.map_err(ReadError::Io)?;
        if buf.is_empty() {
            return Err(ReadError::Eof {
                mid_reply: mid_reply || !line.is_empty(),
            });
        }
        let (taken, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..taken]);
        r.consume(taken);
        // +2 for the terminator, which is not part of the line.
        if line.len() > max.saturating_add(2) {
            return Err(ReadError::Protocol(format!("line longer than {max} bytes")));
        }
        if done {
            break;
        }
    }
    if !line.ends_with(b"\r\n") {
        return Err(ReadError::Protocol("line not terminated by CRLF".into()));
    }
    line.truncate(line.len() - 2);
    Ok(())
}

/// Reads `n` bytes and the CRLF after them.
async fn read_bulk<R>(r: &mut R, n: usize) -> Result<Vec<u8>, ReadError>
where
    R: AsyncBufRead + Unpin,
{
    // Start small and let the buffer grow with what really arrives.
    let mut data = Vec::with_capacity(n.min(64 << 10));
    let got = (&mut *r)
        .take(n as u64)
        .read_to_end(&mut data)
        .await
        .map_err(ReadError::Io)?;
    if got < n {
        return Err(ReadError::Eof { mid_reply: true });
    }
    let mut crlf = [0u8; 2];
    match r.read_exact(&mut crlf).await {
        Ok(_) if crlf == *b"\r\n" => Ok(data),
        Ok(_) => Err(ReadError::Protocol(
            "bulk string not terminated by CRLF".into(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(ReadError::Eof { mid_reply: true })
        }
        Err(e) => Err(ReadError::Io(e)),
    }
}

/// A decimal integer: an optional `-` and 1–19 digits, nothing else.
fn parse_int(text: &[u8]) -> Result<i64, ReadError> {
    let bad = || {
        ReadError::Protocol(format!(
            "not an integer: {:?}",
            String::from_utf8_lossy(&text[..text.len().min(32)])
        ))
    };
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)
}

/// A bulk or array length: `-1` is null (`None`), other negatives are garbage.
fn parse_len(text: &[u8]) -> Result<Option<usize>, ReadError> {
    match parse_int(text)? {
        -1 => Ok(None),
        n => usize::try_from(n)
            .map(Some)
            .map_err(|_| ReadError::Protocol(format!("invalid length {n}"))),
    }
}

/// Whether an error reply means our credentials were missing or refused.
pub(crate) fn is_auth_error(msg: &str) -> bool {
    msg.starts_with("NOAUTH") || msg.starts_with("WRONGPASS")
}

/// One connection to a Redis server or Sentinel, speaking RESP2 one command at a
/// time (no pipelining, so a completed call leaves nothing pending).
#[derive(Debug)]
pub struct RespConn {
    addr: String,
    stream: BufReader<TcpStream>,
    limits: Limits,
    /// Set when a call starts and cleared only once its whole reply has been
    /// read. A call that fails or whose future is dropped half way (a timeout)
    /// leaves it set: the stream may still hold the rest of a reply, so the
    /// connection must never be used again. Acts as the drop guard, with no
    /// `Drop` needed.
    broken: bool,
    /// The end of the last completed call (or the connect), for idle expiry.
    last_used: Instant,
    /// The encoded command, kept to reuse its allocation.
    out: Vec<u8>,
}

impl RespConn {
    /// Connects to `addr` (`host:port`) within `connect_timeout`, with
    /// TCP_NODELAY (commands are small and we wait for each reply).
    pub async fn connect(addr: &str, connect_timeout: Duration) -> Result<RespConn, RedisError> {
        let err = |reason: String| RedisError::Connect {
            addr: addr.to_owned(),
            reason,
        };
        let stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(err(e.to_string())),
            Err(_) => return Err(err(format!("connect timed out after {connect_timeout:?}"))),
        };
        stream.set_nodelay(true).map_err(|e| err(e.to_string()))?;
        Ok(RespConn {
            addr: addr.to_owned(),
            stream: BufReader::new(stream),
            limits: Limits::default(),
            broken: false,
            last_used: Instant::now(),
            out: Vec::new(),
        })
    }

    /// Replaces the reply limits.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether a call failed or was cancelled on this connection; it then
    /// refuses further calls.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// When the last call completed (or the connection was opened).
    pub fn last_used(&self) -> Instant {
        self.last_used
    }

    /// Sends one command and reads its reply. An error reply becomes
    /// [`RedisError::Auth`] (`NOAUTH`, `WRONGPASS`) or [`RedisError::Reply`] and
    /// leaves the connection usable; an I/O or protocol error breaks it.
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<Value, RedisError> {
        self.start_exchange()?;
        self.out.clear();
        encode(args, &mut self.out);
        self.write_out().await?;
        let value = self.read_reply().await?;
        self.finish_exchange();
        match value {
            Value::Error(reason) => Err(self.error_reply(reason)),
            v => Ok(v),
        }
    }

    /// Whether an idle connection is known to be dead: the server closed it
    /// (a restart, its idle timeout) or sent bytes nobody asked for. Does not
    /// block; a close not yet seen by the runtime goes unnoticed, and the next
    /// call then fails and breaks the connection instead.
    pub fn is_closed_by_peer(&self) -> bool {
        if !self.stream.buffer().is_empty() {
            return true;
        }
        let mut probe = [0u8; 1];
        match self.stream.get_ref().try_read(&mut probe) {
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            // 0 bytes: EOF; any byte: an unsolicited reply, so we are out of step.
            Ok(_) => true,
        }
    }
}

// === pipelines and subscriptions ===

impl RespConn {
    /// Sends `cmds` in one write and reads one reply per command, in order.
    /// Unlike [`RespConn::call`], error replies come back as [`Value::Error`]:
    /// in a transaction each reply is judged by the caller. An I/O or protocol
    /// error (or a dropped future) breaks the connection.
    pub async fn pipeline(&mut self, cmds: &[&[&[u8]]]) -> Result<Vec<Value>, RedisError> {
        self.start_exchange()?;
        self.out.clear();
        for args in cmds {
            encode(args, &mut self.out);
        }
        self.write_out().await?;
        let mut replies = Vec::with_capacity(cmds.len());
        for _ in cmds {
            replies.push(self.read_reply().await?);
        }
        self.finish_exchange();
        Ok(replies)
    }

    /// Sends `SUBSCRIBE <channels>` and checks one confirmation per channel
    /// (`["subscribe", channel, count]`). The connection then only receives
    /// pushed messages, so it is consumed: a subscribed connection can never
    /// return to a pool. Not bounded by time; the caller wraps it in a timeout.
    pub async fn subscribe(mut self, channels: &[&[u8]]) -> Result<Subscription, RedisError> {
        self.start_exchange()?;
        self.out.clear();
        let mut args: Vec<&[u8]> = Vec::with_capacity(channels.len() + 1);
        args.push(b"SUBSCRIBE");
        args.extend_from_slice(channels);
        encode(&args, &mut self.out);
        self.write_out().await?;
        for channel in channels {
            match self.read_reply().await? {
                Value::Array(items)
                    if items.len() == 3
                        && items[0].as_bytes() == Some(b"subscribe")
                        && items[1].as_bytes() == Some(channel)
                        && matches!(items[2], Value::Int(_)) => {}
                // The server refused (e.g. NOAUTH) and is still in step.
                Value::Error(reason) => {
                    self.finish_exchange();
                    return Err(self.error_reply(reason));
                }
                other => {
                    return Err(RedisError::Reply {
                        addr: self.addr.clone(),
                        reason: format!("unexpected reply to SUBSCRIBE: {other:?}"),
                    });
                }
            }
        }
        self.finish_exchange();
        Ok(Subscription { conn: self })
    }

    /// Refuses a broken connection, else marks an exchange as started: until
    /// [`RespConn::finish_exchange`], the stream may be out of step.
    fn start_exchange(&mut self) -> Result<(), RedisError> {
        self.check_usable()?;
        self.broken = true;
        Ok(())
    }

    /// Refuses a connection left out of step by a failed or cancelled call.
    fn check_usable(&self) -> Result<(), RedisError> {
        if self.broken {
            return Err(RedisError::Connect {
                addr: self.addr.clone(),
                reason: "connection unusable after an earlier failed or cancelled call".into(),
            });
        }
        Ok(())
    }

    fn finish_exchange(&mut self) {
        self.broken = false;
        self.last_used = Instant::now();
    }

    /// Writes the encoded commands in `out`.
    async fn write_out(&mut self) -> Result<(), RedisError> {
        self.stream
            .get_mut()
            .write_all(&self.out)
            .await
            .map_err(|e| ReadError::Io(e).into_redis(&self.addr))
    }

    async fn read_reply(&mut self) -> Result<Value, RedisError> {
        read_value(&mut self.stream, &self.limits)
            .await
            .map_err(|e| e.into_redis(&self.addr))
    }

    /// An error reply as a [`RedisError`].
    fn error_reply(&self, reason: String) -> RedisError {
        let addr = self.addr.clone();
        if is_auth_error(&reason) {
            RedisError::Auth { addr, reason }
        } else {
            RedisError::Reply { addr, reason }
        }
    }
}

/// A connection in RESP2 subscribed mode, made by [`RespConn::subscribe`]. It
/// receives pushed messages; the only command it sends is `PING`, to check
/// that a quiet channel is still connected.
#[derive(Debug)]
pub struct Subscription {
    conn: RespConn,
}

/// One pushed reply on a [`Subscription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// `["message", channel, payload]`: something published on a channel.
    Message {
        /// The channel it was published on.
        channel: Vec<u8>,
        /// What was published.
        payload: Vec<u8>,
    },
    /// `["pong", ""]`: the answer to [`Subscription::ping`].
    Pong,
    /// Anything else, as received (e.g. a later subscribe confirmation).
    Other(Value),
}

impl Subscription {
    /// The address of the server.
    pub fn addr(&self) -> &str {
        &self.conn.addr
    }

    /// Waits, without a time limit, for the next pushed reply. A closed or
    /// broken connection is an error ([`RedisError::Connect`]).
    ///
    /// Cancel-safe while nothing has arrived: the wait for the first byte
    /// consumes nothing, so dropping the future then (a timeout, a shutdown)
    /// leaves the subscription usable. Dropping it half way through a reply
    /// breaks the connection.
    pub async fn next_push(&mut self) -> Result<Push, RedisError> {
        let conn = &mut self.conn;
        conn.check_usable()?;
        let arrived = match conn.stream.fill_buf().await {
            Ok(buf) => !buf.is_empty(),
            Err(e) => {
                conn.broken = true;
                return Err(ReadError::Io(e).into_redis(&conn.addr));
            }
        };
        if !arrived {
            conn.broken = true;
            return Err(ReadError::Eof { mid_reply: false }.into_redis(&conn.addr));
        }
        conn.broken = true;
        let value = conn.read_reply().await?;
        conn.finish_exchange();
        Ok(match value {
            Value::Array(mut items)
                if items.len() == 3 && items[0].as_bytes() == Some(b"message") =>
            {
                match (items.pop(), items.pop()) {
                    (Some(Value::Bulk(payload)), Some(Value::Bulk(channel))) => {
                        Push::Message { channel, payload }
                    }
                    (payload, channel) => {
                        items.extend(channel);
                        items.extend(payload);
                        Push::Other(Value::Array(items))
                    }
                }
            }
            Value::Array(items) if items.first().and_then(Value::as_bytes) == Some(b"pong") => {
                Push::Pong
            }
            other => Push::Other(other),
        })
    }

    /// Sends `PING`; its answer arrives as [`Push::Pong`] among the messages.
    /// Dropping the future half way through the write breaks the connection.
    pub async fn ping(&mut self) -> Result<(), RedisError> {
        let conn = &mut self.conn;
        // Broken only while writing: the answer is read by next_push, but a
        // write cut short leaves a partial command.
        conn.start_exchange()?;
        conn.out.clear();
        encode(&[b"PING"], &mut conn.out);
        conn.write_out().await?;
        conn.broken = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn parse(bytes: &[u8]) -> Result<Value, ReadError> {
        let mut r = bytes;
        read_value(&mut r, &Limits::default()).await
    }

    async fn parse_with(bytes: &[u8], limits: Limits) -> Result<Value, ReadError> {
        let mut r = bytes;
        read_value(&mut r, &limits).await
    }

    /// Feeds `bytes` through a duplex pipe one byte at a time.
    async fn parse_split(bytes: &'static [u8]) -> Result<Value, ReadError> {
        let (mut tx, rx) = tokio::io::duplex(1);
        let writer = tokio::spawn(async move {
            for b in bytes {
                if tx.write_all(&[*b]).await.is_err() {
                    break;
                }
            }
        });
        let mut r = BufReader::with_capacity(1, rx);
        let v = read_value(&mut r, &Limits::default()).await;
        drop(r);
        writer.await.expect("writer task");
        v
    }

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.as_bytes().to_vec())
    }

    fn protocol(r: Result<Value, ReadError>) -> String {
        match r {
            Err(ReadError::Protocol(why)) => why,
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode(&[b"INFO", b"all", b""], &mut out);
        assert_eq!(out, b"*3\r\n$4\r\nINFO\r\n$3\r\nall\r\n$0\r\n\r\n");
    }

    #[tokio::test]
    async fn every_reply_type() {
        assert_eq!(parse(b"+OK\r\n").await.unwrap(), Value::Simple("OK".into()));
        assert_eq!(
            parse(b"-ERR bad\r\n").await.unwrap(),
            Value::Error("ERR bad".into())
        );
        assert_eq!(parse(b":-42\r\n").await.unwrap(), Value::Int(-42));
        assert_eq!(parse(b"$5\r\nhe\r\no\r\n").await.unwrap(), bulk("he\r\no"));
        assert_eq!(parse(b"$0\r\n\r\n").await.unwrap(), bulk(""));
        assert_eq!(parse(b"$-1\r\n").await.unwrap(), Value::Nil);
        assert_eq!(parse(b"*-1\r\n").await.unwrap(), Value::Nil);
        assert_eq!(parse(b"*0\r\n").await.unwrap(), Value::Array(vec![]));
        assert_eq!(
            parse(b"*3\r\n$1\r\na\r\n*2\r\n:1\r\n*1\r\n$-1\r\n-E x\r\n")
                .await
                .unwrap(),
            Value::Array(vec![
                bulk("a"),
                Value::Array(vec![Value::Int(1), Value::Array(vec![Value::Nil])]),
                Value::Error("E x".into()),
            ])
        );
    }

    #[tokio::test]
    async fn reads_one_reply_and_leaves_the_next() {
        let mut r: &[u8] = b":1\r\n:2\r\n";
        let limits = Limits::default();
        assert_eq!(read_value(&mut r, &limits).await.unwrap(), Value::Int(1));
        assert_eq!(read_value(&mut r, &limits).await.unwrap(), Value::Int(2));
        assert!(matches!(
            read_value(&mut r, &limits).await,
            Err(ReadError::Eof { mid_reply: false })
        ));
    }

    #[tokio::test]
    async fn split_reads() {
        assert_eq!(
            parse_split(b"*2\r\n$11\r\nhello world\r\n*1\r\n:12345\r\n")
                .await
                .unwrap(),
            Value::Array(vec![
                bulk("hello world"),
                Value::Array(vec![Value::Int(12345)])
            ])
        );
        assert_eq!(
            parse_split(b"+PONG\r\n").await.unwrap(),
            Value::Simple("PONG".into())
        );
    }

    #[tokio::test]
    async fn limits() {
        let small = Limits {
            max_bulk: 10,
            max_array: 3,
            max_depth: 2,
            max_line: 16,
        };
        assert_eq!(
            parse_with(b"$10\r\n0123456789\r\n", small).await.unwrap(),
            bulk("0123456789")
        );
        assert!(protocol(parse_with(b"$11\r\n", small).await).contains("bulk of 11"));
        assert!(protocol(parse_with(b"*4\r\n", small).await).contains("array of 4"));
        assert!(parse_with(b"*1\r\n*1\r\n:1\r\n", small).await.is_ok());
        assert!(protocol(parse_with(b"*1\r\n*1\r\n*1\r\n:1\r\n", small).await).contains("nested"));
        assert!(protocol(parse_with(b"+0123456789abcdefg\r\n", small).await).contains("line"));
        // A line that never ends is cut off at the limit, not buffered forever.
        assert!(protocol(parse_with(&[b'+'; 100], small).await).contains("line"));
        // The default limits: 100 MB announced, nothing allocated.
        assert!(protocol(parse(b"$100000000\r\n").await).contains("exceeds"));
        assert!(protocol(parse(b"*2000000\r\n").await).contains("exceeds"));
        let deep = "*1\r\n".repeat(9) + ":1\r\n";
        assert!(protocol(parse(deep.as_bytes()).await).contains("nested"));
        let ok = "*1\r\n".repeat(8) + ":1\r\n";
        assert!(parse(ok.as_bytes()).await.is_ok());
    }

    #[tokio::test]
    async fn garbage() {
        assert!(protocol(parse(b"@@@\r\n").await).contains("0x40"));
        assert!(protocol(parse(b"$abc\r\n").await).contains("not an integer"));
        assert!(protocol(parse(b"$-2\r\n").await).contains("invalid length"));
        assert!(protocol(parse(b"$+3\r\nabc\r\n").await).contains("not an integer"));
        assert!(protocol(parse(b":\r\n").await).contains("not an integer"));
        assert!(protocol(parse(b":99999999999999999999\r\n").await).contains("not an integer"));
        assert!(protocol(parse(b"+OK\n").await).contains("CRLF"));
        assert!(protocol(parse(b"\r\n").await).contains("empty"));
        assert!(protocol(parse(b"$3\r\nabcd\r\n").await).contains("CRLF"));
    }

    #[tokio::test]
    async fn eof_mid_reply() {
        for bytes in [
            &b"$5\r\nab"[..],
            b"$2\r\nab",
            b"$2\r\nab\r",
            b"*2\r\n:1\r\n",
            b"+OK",
            b"*1\r\n",
        ] {
            assert!(
                matches!(parse(bytes).await, Err(ReadError::Eof { mid_reply: true })),
                "{bytes:?}"
            );
        }
        assert!(matches!(
            parse(b"").await,
            Err(ReadError::Eof { mid_reply: false })
        ));
    }

    /// A listener that answers each connection's first command with `reply`.
    async fn fake_server(reply: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = sock.read(&mut buf).await;
                    let _ = sock.write_all(reply).await;
                    // Keep the socket open until the client goes away.
                    let _ = sock.read(&mut buf).await;
                });
            }
        });
        addr
    }

    async fn conn_to(reply: &'static [u8]) -> RespConn {
        let addr = fake_server(reply).await;
        RespConn::connect(&addr, Duration::from_secs(1))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn error_replies_keep_the_connection() {
        let mut c = conn_to(b"-ERR unknown command 'X'\r\n").await;
        match c.call(&[b"X"]).await {
            Err(RedisError::Reply { reason, addr }) => {
                assert_eq!(reason, "ERR unknown command 'X'");
                assert_eq!(addr, c.addr());
            }
            other => panic!("{other:?}"),
        }
        assert!(!c.is_broken());
    }

    #[tokio::test]
    async fn auth_errors() {
        for reply in [
            &b"-NOAUTH Authentication required.\r\n"[..],
            b"-WRONGPASS invalid username-password pair\r\n",
        ] {
            let reply: &'static [u8] = reply;
            let mut c = conn_to(reply).await;
            assert!(
                matches!(c.call(&[b"PING"]).await, Err(RedisError::Auth { .. })),
                "{reply:?}"
            );
        }
    }

    #[tokio::test]
    async fn garbage_and_eof_break_the_connection() {
        let mut c = conn_to(b"@@@\r\n").await;
        match c.call(&[b"PING"]).await {
            Err(RedisError::Reply { reason, .. }) => assert!(reason.contains("protocol")),
            other => panic!("{other:?}"),
        }
        assert!(c.is_broken());
        assert!(matches!(
            c.call(&[b"PING"]).await,
            Err(RedisError::Connect { .. })
        ));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            let _ = sock.read(&mut buf).await;
            let _ = sock.write_all(b"$10\r\nabc").await;
        });
        let mut c = RespConn::connect(&addr, Duration::from_secs(1))
            .await
            .unwrap();
        match c.call(&[b"GET", b"k"]).await {
            Err(RedisError::Connect { reason, .. }) => assert!(reason.contains("middle")),
            other => panic!("{other:?}"),
        }
        assert!(c.is_broken());
    }

    #[tokio::test]
    async fn a_cancelled_call_breaks_the_connection() {
        // Accepts and reads, never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        let mut c = RespConn::connect(&addr, Duration::from_secs(1))
            .await
            .unwrap();
        let r = tokio::time::timeout(Duration::from_millis(50), c.call(&[b"PING"])).await;
        assert!(r.is_err(), "the call should have timed out");
        assert!(c.is_broken());
    }

    /// A listener whose first connection gets `script[i]` written after the
    /// client's i-th write, then is held open until the client leaves.
    async fn scripted_server(script: &'static [&'static [u8]]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            for part in script {
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(part).await;
            }
            while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        addr
    }

    #[tokio::test]
    async fn pipelines_keep_error_replies() {
        let addr = scripted_server(&[b"+OK\r\n-ERR no\r\n:3\r\n"]).await;
        let mut c = RespConn::connect(&addr, Duration::from_secs(1))
            .await
            .unwrap();
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

    fn message(channel: &str, payload: &str) -> Push {
        Push::Message {
            channel: channel.as_bytes().to_vec(),
            payload: payload.as_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn subscriptions() {
        let addr = scripted_server(&[
            b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n\
              *3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n\
              *3\r\n$7\r\nmessage\r\n$2\r\nch\r\n:1\r\n",
            // The answer to PING, then another message.
            b"*2\r\n$4\r\npong\r\n$0\r\n\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
        ])
        .await;
        let c = RespConn::connect(&addr, Duration::from_secs(1))
            .await
            .unwrap();
        let mut sub = c.subscribe(&[b"ch"]).await.unwrap();
        assert_eq!(sub.next_push().await.unwrap(), message("ch", "hello"));
        assert!(matches!(
            sub.next_push().await.unwrap(),
            Push::Other(Value::Array(items)) if items.len() == 3
        ));
        // A wait cut short before anything arrives loses nothing.
        let quiet = tokio::time::timeout(Duration::from_millis(50), sub.next_push()).await;
        assert!(quiet.is_err(), "{quiet:?}");
        sub.ping().await.unwrap();
        assert_eq!(sub.next_push().await.unwrap(), Push::Pong);
        assert_eq!(sub.next_push().await.unwrap(), message("ch", "hi"));
        assert_eq!(sub.addr(), addr);
    }

    #[tokio::test]
    async fn a_refused_subscribe() {
        let addr = scripted_server(&[b"-NOAUTH Authentication required.\r\n"]).await;
        let c = RespConn::connect(&addr, Duration::from_secs(1))
            .await
            .unwrap();
        let r = c.subscribe(&[b"ch"]).await;
        assert!(matches!(r, Err(RedisError::Auth { .. })), "{r:?}");

        let addr = scripted_server(&[b"+OK\r\n"]).await;
        let c = RespConn::connect(&addr, Duration::from_secs(1))
            .await
            .unwrap();
        match c.subscribe(&[b"ch"]).await {
            Err(RedisError::Reply { reason, .. }) => assert!(reason.contains("SUBSCRIBE")),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_closed_subscription_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n*3\r\n$7\r\nmess")
                .await;
            // Dropped half way through a message.
        });
        let c = RespConn::connect(&addr, Duration::from_secs(1))
            .await
            .unwrap();
        let mut sub = c.subscribe(&[b"ch"]).await.unwrap();
        match sub.next_push().await {
            Err(RedisError::Connect { reason, .. }) => {
                assert!(reason.contains("middle"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            sub.next_push().await,
            Err(RedisError::Connect { .. })
        ));
        assert!(sub.ping().await.is_err());
    }

    #[tokio::test]
    async fn notices_a_peer_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            let _ = sock.read(&mut buf).await;
            let _ = sock.write_all(b"+PONG\r\n").await;
            let _ = close_rx.await;
        });
        let mut c = RespConn::connect(&addr, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(
            c.call(&[b"PING"]).await.unwrap(),
            Value::Simple("PONG".into())
        );
        assert!(!c.is_closed_by_peer());
        drop(close_tx);
        let deadline = Instant::now() + Duration::from_secs(2);
        while !c.is_closed_by_peer() {
            assert!(Instant::now() < deadline, "the close was never noticed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
