//! A fake codis-server: a small RESP server in the test process in front of a
//! real `redis-server` (its "backing" store), answering just what topom's
//! codis-server migrator and probe send.
//!
//! ```text
//! client ──RESP──► FakeCodis ──Conn──► backing redis-server
//!                     │ SLOTSMGRTTAGSLOT[-ASYNC] <fake host> <fake port> ...
//!                     └─ MIGRATE ... KEYS ... ──► the backing of the fake at host:port
//! ```
//!
//! * `SLOTSINFO` → `[]` (so topom's probe sees a codis-server).
//! * `SLOTSMGRTTAGSLOT host port timeout slot`: moves one key of `slot` in the
//!   current db, or, for a key with a `{tag}`, every key sharing its tag.
//! * `SLOTSMGRTTAGSLOT-ASYNC host port timeout maxbulks maxbytes slot numkeys`:
//!   whole tag groups until at least `numkeys` keys (0: 100). Like
//!   codis-server, it refuses a second async batch on a db while one runs
//!   ("the specified DB is being migrated").
//! * Both reply `[migrated, left_in_slot]`; keys move with `MIGRATE ... REPLACE
//!   KEYS` (codis-server's restore overwrites too) to the backing of the fake
//!   at host:port, looked up in a process-wide registry. An address that is
//!   no fake is used as is, so a dead target gives Redis's own `IOERR`.
//! * Everything else (`AUTH`, `PING`, `SELECT`, `INFO`, ...) is forwarded to the
//!   backing redis on a connection of its own per client, so AUTH and NOAUTH
//!   behave as the backing's `requirepass` says.
//!
//! Unlike codis-server, which indexes keys per slot, every migration call scans
//! the whole db: fine for test-sized data.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use topom::model::{MAX_SLOTS, hash_tag, slot_of};
use topom::redis::{Conn, RedisError, Value};

/// The deadline of the fake's own calls to its backing redis (MIGRATE gets its
/// command's timeout on top).
const BACKING_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest bulk argument accepted from a client.
const MAX_ARG: usize = 1 << 20;

/// SCAN COUNT for the per-call scan: one round trip for test-sized dbs.
const SCAN_COUNT: &str = "10000";

/// A backing redis: its address and `requirepass`.
#[derive(Debug, Clone)]
struct Backing {
    addr: String,
    password: Option<String>,
}

/// Fake address → its backing, for every fake alive in this process.
static REGISTRY: Mutex<BTreeMap<String, Backing>> = Mutex::new(BTreeMap::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counters of one fake, for assertions on how it was driven.
#[derive(Debug, Default)]
struct Stats {
    sync_calls: AtomicUsize,
    async_calls: AtomicUsize,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    /// Dbs with an async batch running (codis-server allows one per db).
    async_dbs: Mutex<HashSet<u32>>,
}

/// A running fake codis-server; stops (and leaves the registry) when dropped.
#[derive(Debug)]
pub struct FakeCodis {
    addr: String,
    stats: Arc<Stats>,
    /// Owns the connection tasks in a `JoinSet`: aborting it aborts them all.
    accept: JoinHandle<()>,
}

impl FakeCodis {
    /// Starts a fake on a free loopback port in front of the redis at
    /// `backing` (whose `requirepass` is `password`, if any).
    pub async fn start(backing: &str, password: Option<&str>) -> FakeCodis {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("fake codis-server cannot bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fake codis-server has no address: {e}"))
            .to_string();
        let backing = Backing {
            addr: backing.to_owned(),
            password: password.map(str::to_owned),
        };
        lock(&REGISTRY).insert(addr.clone(), backing.clone());
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Inner {
            backing,
            stats: stats.clone(),
        });
        let accept = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((sock, _)) = listener.accept().await {
                conns.spawn(serve(sock, shared.clone()));
                // Reap finished connections as we go.
                while conns.try_join_next().is_some() {}
            }
        });
        FakeCodis {
            addr,
            stats,
            accept,
        }
    }

    /// `127.0.0.1:<port>`, the address to give topom.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `SLOTSMGRTTAGSLOT` calls answered so far.
    pub fn sync_calls(&self) -> usize {
        self.stats.sync_calls.load(Ordering::Relaxed)
    }

    /// `SLOTSMGRTTAGSLOT-ASYNC` calls answered so far.
    pub fn async_calls(&self) -> usize {
        self.stats.async_calls.load(Ordering::Relaxed)
    }

    /// The most migration calls (of any kind) that were in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.stats.peak_in_flight.load(Ordering::Relaxed)
    }
}

impl Drop for FakeCodis {
    fn drop(&mut self) {
        self.accept.abort();
        lock(&REGISTRY).remove(&self.addr);
    }
}

/// What every connection of one fake shares.
#[derive(Debug)]
struct Inner {
    backing: Backing,
    stats: Arc<Stats>,
}

/// One client connection: commands in, replies out, until either side closes.
async fn serve(sock: TcpStream, inner: Arc<Inner>) {
    let (read, mut write) = sock.into_split();
    let mut read = BufReader::new(read);
    let Ok(mut backing) = Conn::connect(&inner.backing.addr, BACKING_TIMEOUT).await else {
        return;
    };
    let mut db = 0u32;
    let mut out = Vec::new();
    while let Ok(Some(args)) = read_command(&mut read).await {
        let reply = handle(&inner, &mut backing, &mut db, &args).await;
        out.clear();
        encode(&reply, &mut out);
        if write.write_all(&out).await.is_err() {
            return;
        }
    }
}

async fn handle(inner: &Inner, backing: &mut Conn, db: &mut u32, args: &[Vec<u8>]) -> Value {
    let name = args
        .first()
        .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
        .unwrap_or_default();
    match name.as_str() {
        "SLOTSINFO" => Value::Array(Vec::new()),
        "SLOTSMGRTTAGSLOT" | "SLOTSMGRTTAGSLOT-ASYNC" => {
            let is_async = name.ends_with("-ASYNC");
            let stats = &inner.stats;
            let counter = if is_async {
                &stats.async_calls
            } else {
                &stats.sync_calls
            };
            counter.fetch_add(1, Ordering::Relaxed);
            let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            stats.peak_in_flight.fetch_max(now, Ordering::SeqCst);
            let reply = match Migration::parse(args, is_async) {
                Ok(m) => m.run(inner, backing, *db).await,
                Err(e) => Value::Error(e),
            };
            stats.in_flight.fetch_sub(1, Ordering::SeqCst);
            reply
        }
        _ => {
            let reply = forward(backing, args).await;
            if name == "SELECT"
                && !matches!(reply, Value::Error(_))
                && let Some(n) = args
                    .get(1)
                    .and_then(|a| std::str::from_utf8(a).ok()?.parse().ok())
            {
                *db = n;
            }
            reply
        }
    }
}

/// Runs `args` on the backing redis; error replies come back as
/// [`Value::Error`] with the backing's text.
async fn forward(backing: &mut Conn, args: &[Vec<u8>]) -> Value {
    let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    match tokio::time::timeout(BACKING_TIMEOUT, backing.call(&argv)).await {
        Ok(Ok(v)) => v,
        Ok(Err(RedisError::Reply { reason, .. } | RedisError::Auth { reason, .. })) => {
            Value::Error(reason)
        }
        Ok(Err(e)) => Value::Error(format!("ERR fake codis-server backing: {e}")),
        Err(_) => Value::Error("ERR fake codis-server backing timed out".into()),
    }
}

/// One parsed migration command.
#[derive(Debug)]
struct Migration {
    target: String,
    timeout_ms: u64,
    slot: u32,
    /// `None`: sync, one key or tag group.
    numkeys: Option<usize>,
}

impl Migration {
    fn parse(args: &[Vec<u8>], is_async: bool) -> Result<Migration, String> {
        let want = if is_async { 8 } else { 5 };
        if args.len() != want {
            return Err(format!("ERR wrong number of arguments ({})", args.len()));
        }
        let text = |i: usize| String::from_utf8_lossy(&args[i]).into_owned();
        let num = |i: usize, what: &str| -> Result<u64, String> {
            text(i)
                .parse()
                .map_err(|_| format!("ERR invalid value of {what} ({})", text(i)))
        };
        let port = num(2, "port")?;
        let timeout_ms = num(3, "timeout")?;
        let slot_arg = if is_async { 6 } else { 4 };
        let slot = num(slot_arg, "slot")?;
        if slot >= MAX_SLOTS as u64 {
            return Err(format!("ERR invalid value of slot ({slot})"));
        }
        let numkeys = if is_async {
            Some(match num(7, "numkeys")? {
                0 => 100,
                n => usize::try_from(n).unwrap_or(usize::MAX),
            })
        } else {
            None
        };
        Ok(Migration {
            target: format!("{}:{port}", text(1)),
            timeout_ms,
            slot: slot as u32,
            numkeys,
        })
    }

    async fn run(&self, inner: &Inner, backing: &mut Conn, db: u32) -> Value {
        // Held for the whole async batch, as codis-server's per-db client is.
        let _busy = match self.numkeys {
            Some(_) => match DbBusy::claim(&inner.stats, db) {
                Some(guard) => Some(guard),
                None => return Value::Error("ERR the specified DB is being migrated".into()),
            },
            None => None,
        };
        let keys = match slot_keys(backing, self.slot).await {
            Ok(keys) => keys,
            Err(e) => return e,
        };
        let picked = pick(&keys, self.numkeys);
        if picked.is_empty() {
            return pair(0, 0);
        }
        let to = lock(&REGISTRY)
            .get(&self.target)
            .cloned()
            .unwrap_or_else(|| Backing {
                addr: self.target.clone(),
                password: None,
            });
        let Some((host, port)) = to.addr.rsplit_once(':') else {
            return Value::Error(format!("ERR bad target address {}", to.addr));
        };
        let (db, timeout) = (db.to_string(), self.timeout_ms.to_string());
        let mut argv: Vec<&[u8]> = vec![
            b"MIGRATE",
            host.as_bytes(),
            port.as_bytes(),
            b"",
            db.as_bytes(),
            timeout.as_bytes(),
            b"REPLACE",
        ];
        if let Some(pw) = &to.password {
            argv.extend([&b"AUTH"[..], pw.as_bytes()]);
        }
        argv.push(b"KEYS");
        argv.extend(picked.iter().map(Vec::as_slice));
        let deadline = BACKING_TIMEOUT + Duration::from_millis(self.timeout_ms);
        let moved = match tokio::time::timeout(deadline, backing.call(&argv)).await {
            Ok(Ok(Value::Simple(s))) if s == "OK" => picked.len(),
            Ok(Ok(Value::Simple(s))) if s == "NOKEY" => 0,
            Ok(Ok(other)) => return Value::Error(format!("ERR MIGRATE replied {other:?}")),
            // IOERR and friends, as codis-server reports them.
            Ok(Err(RedisError::Reply { reason, .. } | RedisError::Auth { reason, .. })) => {
                return Value::Error(reason);
            }
            Ok(Err(e)) => return Value::Error(format!("IOERR {e}")),
            Err(_) => return Value::Error("IOERR MIGRATE timed out".into()),
        };
        pair(moved, keys.len() - moved)
    }
}

/// Marks a db as running an async batch until dropped (an aborted call
/// included).
struct DbBusy<'a> {
    stats: &'a Stats,
    db: u32,
}

impl<'a> DbBusy<'a> {
    fn claim(stats: &'a Stats, db: u32) -> Option<DbBusy<'a>> {
        lock(&stats.async_dbs)
            .insert(db)
            .then_some(DbBusy { stats, db })
    }
}

impl Drop for DbBusy<'_> {
    fn drop(&mut self) {
        lock(&self.stats.async_dbs).remove(&self.db);
    }
}

/// Every key of `slot` in the backing's current db.
async fn slot_keys(backing: &mut Conn, slot: u32) -> Result<Vec<Vec<u8>>, Value> {
    let mut keys = Vec::new();
    let mut cursor = b"0".to_vec();
    loop {
        let args: Vec<Vec<u8>> = vec![
            b"SCAN".to_vec(),
            cursor,
            b"COUNT".to_vec(),
            SCAN_COUNT.into(),
        ];
        let (next, batch) = match forward(backing, &args).await {
            Value::Array(mut parts) if parts.len() == 2 => match (parts.remove(0), parts.remove(0))
            {
                (Value::Bulk(next), Value::Array(batch)) => (next, batch),
                other => return Err(Value::Error(format!("ERR SCAN replied {other:?}"))),
            },
            Value::Error(e) => return Err(Value::Error(e)),
            other => return Err(Value::Error(format!("ERR SCAN replied {other:?}"))),
        };
        keys.extend(batch.into_iter().filter_map(|k| match k {
            Value::Bulk(k) if slot_of(&k) == slot => Some(k),
            _ => None,
        }));
        if next == b"0" {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// The keys one call moves: sync (`numkeys` None) the first key or its tag
/// group; async whole groups until at least `numkeys`.
fn pick(keys: &[Vec<u8>], numkeys: Option<usize>) -> Vec<Vec<u8>> {
    let want = numkeys.unwrap_or(1);
    let mut picked: Vec<Vec<u8>> = Vec::new();
    let mut seen_tags: HashSet<&[u8]> = HashSet::new();
    for key in keys {
        if picked.len() >= want {
            break;
        }
        let tag = hash_tag(key);
        // A key has a tag when its hash tag is not the whole key.
        if tag.len() == key.len() {
            picked.push(key.clone());
        } else if seen_tags.insert(tag) {
            picked.extend(keys.iter().filter(|k| hash_tag(k) == tag).cloned());
        }
    }
    picked
}

fn pair(moved: usize, left: usize) -> Value {
    let int = |n: usize| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    Value::Array(vec![int(moved), int(left)])
}

// === RESP on the server side ===

/// One command (an array of bulk strings); `None` at a clean end of stream.
async fn read_command<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<Vec<u8>>>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let Some(header) = read_line(r).await? else {
        return Ok(None);
    };
    let count: usize = header
        .strip_prefix(b"*")
        .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok())
        .ok_or_else(|| bad("expected an array"))?;
    let mut args = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let line = read_line(r).await?.ok_or_else(|| bad("eof in a command"))?;
        let len: usize = line
            .strip_prefix(b"$")
            .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok())
            .filter(|&n| n <= MAX_ARG)
            .ok_or_else(|| bad("expected a bulk string"))?;
        let mut arg = vec![0u8; len + 2];
        r.read_exact(&mut arg).await?;
        arg.truncate(len);
        args.push(arg);
    }
    Ok(Some(args))
}

/// A CRLF-terminated line without its terminator; `None` at end of stream.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    if r.read_until(b'\n', &mut line).await? == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\r\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "line not terminated by CRLF",
        ));
    }
    line.truncate(line.len() - 2);
    Ok(Some(line))
}

fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Nil => out.extend_from_slice(b"$-1\r\n"),
        Value::Int(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
        Value::Simple(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
        // Error texts from Redis are one line; keep ours so too.
        Value::Error(e) => {
            out.extend_from_slice(format!("-{}\r\n", e.replace(['\r', '\n'], " ")).as_bytes())
        }
        Value::Bulk(b) => {
            out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Value::Array(items) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            for item in items {
                encode(item, out);
            }
        }
    }
}
