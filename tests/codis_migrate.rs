//! [`CodisMigrator`] against fake codis-servers (`common::fake_codis`) in front
//! of real `redis-server`s: whole slots moved in both modes, across two dbs,
//! tag groups together, nothing else touched; `AUTH`; dead targets and a hung
//! source fail the pass within the timeout.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use common::fake_codis::FakeCodis;
use common::ports::free_port;
use common::redis::{RedisServer, client, cmd, pipe};
use topom::model::{hash_tag, slot_of};
use topom::redis::{
    CodisMigrator, CodisMode, Conn, Limits, MigrateOptions, Migrator, RedisError, SlotPass,
    Throttle, Value,
};

/// The deadline of commands where the test is not about deadlines.
const T: Duration = Duration::from_secs(5);

/// Slots `0..MOVING` move; the others stay.
const MOVING: u32 = 256;

/// A TTL long enough to outlast the test.
const TTL_MS: i64 = 600_000;

fn opts(timeout: Duration, interval: Duration) -> MigrateOptions {
    MigrateOptions {
        batch_keys: 100,
        scan_count: 500,
        big_value_bytes: 1 << 20,
        timeout,
        interval,
        throttle: Throttle::default(),
    }
}

/// Two real redis-servers, each behind a fake codis-server.
struct Cluster {
    src_redis: RedisServer,
    dst_redis: RedisServer,
    src: FakeCodis,
    dst: FakeCodis,
    password: String,
}

async fn cluster(password: &str) -> Cluster {
    let line = format!("requirepass {password}");
    let extra: Vec<&str> = if password.is_empty() {
        Vec::new()
    } else {
        vec![line.as_str()]
    };
    let src_redis = RedisServer::start_with(&extra).await;
    let dst_redis = RedisServer::start_with(&extra).await;
    let pw = (!password.is_empty()).then_some(password);
    let src = FakeCodis::start(&src_redis.addr(), pw).await;
    let dst = FakeCodis::start(&dst_redis.addr(), pw).await;
    Cluster {
        src_redis,
        dst_redis,
        src,
        dst,
        password: password.to_owned(),
    }
}

// === the dataset ===

/// One key of the dataset.
#[derive(Debug, Clone)]
struct Spec {
    db: u32,
    key: String,
    /// A hash (one field `f`) rather than a string.
    hash: bool,
    ttl: bool,
}

impl Spec {
    fn slot(&self) -> u32 {
        slot_of(self.key.as_bytes())
    }

    fn value(&self) -> Vec<u8> {
        format!("v:{}", self.key).into_bytes()
    }
}

/// `db0` keys in db 0 (a third tagged, 150 tags) and `db2` in db 2 (half
/// tagged, 25 tags); one in 7 a hash, one in 11 with a TTL.
fn dataset(db0: usize, db2: usize) -> Vec<Spec> {
    let zero = (0..db0).map(|i| Spec {
        db: 0,
        key: if i % 3 == 0 {
            format!("{{tag{}}}:{i}", i % 150)
        } else {
            format!("key:{i}")
        },
        hash: i % 7 == 0,
        ttl: i % 11 == 0,
    });
    let two = (0..db2).map(|i| Spec {
        db: 2,
        key: if i % 2 == 0 {
            format!("{{d2-{}}}:{i}", i % 25)
        } else {
            format!("d2:{i}")
        },
        hash: i % 7 == 3,
        ttl: i % 11 == 5,
    });
    zero.chain(two).collect()
}

async fn seed(server: &RedisServer, password: &str, data: &[Spec]) {
    for db in [0, 2] {
        let mut c = client(server, password, db).await;
        let mut cmds = Vec::new();
        for s in data.iter().filter(|s| s.db == db) {
            let (k, v) = (s.key.as_bytes(), s.value());
            cmds.push(if s.hash {
                cmd(&[b"HSET", k, b"f", &v])
            } else {
                cmd(&[b"SET", k, &v])
            });
            if s.ttl {
                cmds.push(cmd(&[b"PEXPIRE", k, TTL_MS.to_string().as_bytes()]));
            }
        }
        pipe(&mut c, &cmds).await;
    }
}

/// Every key of the connection's db.
async fn keys_of(c: &mut Conn) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut cursor = b"0".to_vec();
    loop {
        let reply = c
            .call(&[b"SCAN", &cursor, b"COUNT", b"1000"])
            .await
            .expect("SCAN");
        let Value::Array(mut parts) = reply else {
            panic!("SCAN replied {reply:?}");
        };
        let (Value::Bulk(next), Value::Array(batch)) = (parts.remove(0), parts.remove(0)) else {
            panic!("SCAN replied {parts:?}");
        };
        for k in batch {
            let Value::Bulk(k) = k else { panic!("{k:?}") };
            keys.insert(String::from_utf8(k).expect("utf-8 key"));
        }
        if next == b"0" {
            return keys;
        }
        cursor = next;
    }
}

/// Checks that the keys of slots below [`MOVING`] are all (and only) on the
/// target and the others all (and only) on the source, with their values and
/// TTLs.
async fn verify(c: &Cluster, data: &[Spec]) {
    for db in [0, 2] {
        for (server, moved_here) in [(&c.dst_redis, true), (&c.src_redis, false)] {
            let mut conn = client(server, &c.password, db).await;
            let want: Vec<&Spec> = data
                .iter()
                .filter(|s| s.db == db && (s.slot() < MOVING) == moved_here)
                .collect();
            let names: BTreeSet<String> = want.iter().map(|s| s.key.clone()).collect();
            let side = if moved_here { "target" } else { "source" };
            let got = keys_of(&mut conn).await;
            assert_eq!(got.len(), names.len(), "keys on the {side} in db {db}");
            assert!(got == names, "wrong keys on the {side} in db {db}");
            let mut cmds = Vec::new();
            for s in &want {
                let k = s.key.as_bytes();
                cmds.push(if s.hash {
                    cmd(&[b"HGET", k, b"f"])
                } else {
                    cmd(&[b"GET", k])
                });
                cmds.push(cmd(&[b"PTTL", k]));
            }
            let replies = pipe(&mut conn, &cmds).await;
            for (s, r) in want.iter().zip(replies.chunks(2)) {
                assert_eq!(r[0], Value::Bulk(s.value()), "{}", s.key);
                match (&r[1], s.ttl) {
                    (Value::Int(ms), true) => assert!(*ms > 0 && *ms <= TTL_MS, "{}: {ms}", s.key),
                    (Value::Int(-1), false) => {}
                    other => panic!("{}: TTL {other:?}", s.key),
                }
            }
        }
    }
}

fn moves_to(target: &str) -> BTreeMap<u32, String> {
    (0..MOVING).map(|s| (s, target.to_owned())).collect()
}

/// Keys per slot (both dbs) of the moving slots.
fn expected_found(data: &[Spec]) -> BTreeMap<u32, u64> {
    let mut found: BTreeMap<u32, u64> = (0..MOVING).map(|s| (s, 0)).collect();
    for s in data.iter().filter(|s| s.slot() < MOVING) {
        *found.entry(s.slot()).or_default() += 1;
    }
    found
}

/// Every call of a pass as `progress` saw it: (slot, keys moved).
type Calls = Vec<(u32, u64)>;

/// One pass, plus its calls that moved keys.
async fn pass_with_calls(
    m: &CodisMigrator,
    source: &str,
    moves: &BTreeMap<u32, String>,
    opts: &MigrateOptions,
) -> Result<(BTreeMap<u32, SlotPass>, Calls), RedisError> {
    /// The last totals seen, and the calls told apart by them.
    #[derive(Default)]
    struct Seen {
        last: BTreeMap<u32, u64>,
        calls: Calls,
    }
    let seen = Mutex::new(Seen::default());
    let progress = |totals: &BTreeMap<u32, SlotPass>| {
        let mut seen = seen.lock().expect("progress lock");
        for (&slot, p) in totals {
            let before = seen.last.insert(slot, p.moved).unwrap_or(0);
            assert!(p.moved >= before, "slot {slot} went backwards");
            if p.moved > before {
                seen.calls.push((slot, p.moved - before));
            }
        }
    };
    let pass = m.migrate_pass(source, moves, opts, &progress).await?;
    Ok((pass, seen.into_inner().expect("progress lock").calls))
}

/// Migrates slots `0..MOVING` in `mode` with ~5,600 keys over dbs 0 and 2,
/// passing until a pass finds nothing; checks counts, data and placement.
/// Returns the first pass's calls (slot, keys moved) and the fake source.
async fn migrate_everything(
    mode: CodisMode,
    interval: Duration,
) -> (Cluster, Vec<Spec>, Calls, usize) {
    let c = cluster("").await;
    let data = dataset(5_000, 600);
    seed(&c.src_redis, "", &data).await;
    let m = CodisMigrator::new("", mode);
    let moves = moves_to(c.dst.addr());
    let o = opts(T, interval);

    let started = Instant::now();
    let (first, deltas) = pass_with_calls(&m, c.src.addr(), &moves, &o)
        .await
        .expect("first pass");
    let first_took = started.elapsed();
    let calls = c.src.sync_calls() + c.src.async_calls();
    let started = Instant::now();
    let second = m
        .migrate_pass(c.src.addr(), &moves, &o, &|_| {})
        .await
        .expect("second pass");
    let second_took = started.elapsed();

    let want = expected_found(&data);
    let total: u64 = want.values().sum();
    eprintln!(
        "{mode:?}: first pass moved {total} keys in {calls} calls, {first_took:?}; \
         second pass {second_took:?}; peak calls in flight {}",
        c.src.peak_in_flight()
    );
    assert!(total > 1_000, "the dataset should hit the moving slots");
    for (slot, &n) in &want {
        let p = &first[slot];
        assert_eq!((p.found, p.moved), (n, n), "slot {slot}");
        assert_eq!(second[slot], SlotPass::default(), "slot {slot}");
    }
    assert_eq!(first.len(), MOVING as usize);
    assert_eq!(deltas.iter().map(|d| d.1).sum::<u64>(), total);
    verify(&c, &data).await;
    (c, data, deltas, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_moves_whole_slots_and_tag_groups() {
    let (c, data, deltas, calls) = migrate_everything(CodisMode::Sync, Duration::ZERO).await;
    // One key or one whole tag group per call: every call moved 1 key or the
    // size of a tag group of its slot.
    let mut groups: BTreeMap<(u32, u32, &[u8]), u64> = BTreeMap::new();
    for s in data.iter().filter(|s| s.slot() < MOVING) {
        let tag = hash_tag(s.key.as_bytes());
        if tag.len() < s.key.len() {
            *groups.entry((s.slot(), s.db, tag)).or_default() += 1;
        }
    }
    for &(slot, n) in &deltas {
        assert!(
            n == 1 || groups.iter().any(|(&(s, _, _), &g)| s == slot && g == n),
            "a call moved {n} keys of slot {slot}"
        );
    }
    let grouped = deltas.iter().filter(|d| d.1 > 1).count();
    assert_eq!(grouped, groups.len(), "one call per tag group");
    assert_eq!(c.src.async_calls(), 0);
    assert!(calls >= deltas.len());
    // Sync calls overlap (several connections); see the module docs of codis.rs.
    assert!(c.src.peak_in_flight() >= 2, "{}", c.src.peak_in_flight());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semi_async_mode_moves_whole_slots() {
    // 4 keys per batch: most slots need several calls, and tag groups (about
    // 11 keys in db 0) exceed a batch yet move whole.
    let mode = CodisMode::SemiAsync {
        maxbulks: 200,
        maxbytes: 1 << 20,
        numkeys: 4,
    };
    let (c, data, deltas, calls) = migrate_everything(mode, Duration::from_millis(1)).await;
    let biggest_group = data
        .iter()
        .filter(|s| s.slot() < MOVING)
        .map(|s| hash_tag(s.key.as_bytes()))
        .fold(BTreeMap::<&[u8], u64>::new(), |mut m, t| {
            *m.entry(t).or_default() += 1;
            m
        })
        .into_values()
        .max()
        .unwrap_or(1);
    for &(slot, n) in &deltas {
        assert!(
            n < 4 + biggest_group,
            "a call moved {n} keys of slot {slot}"
        );
    }
    assert!(
        deltas.iter().any(|d| d.1 > 4),
        "no tag group exceeded a batch"
    );
    // Every (db, slot) needs a call; several slots needed more.
    assert!(calls > 2 * MOVING as usize, "{calls} calls");
    assert_eq!(c.src.sync_calls(), 0);
    // The fake refuses a second async batch in a db; with two dbs, at most two
    // batches ran at once.
    assert!(c.src.peak_in_flight() <= 2, "{}", c.src.peak_in_flight());
}

/// Keys per semi-async call in the throttle tests: few, so that the calls in
/// flight at the end (whose cost is known only once they return) are a small
/// part of the move.
const THROTTLED_NUMKEYS: u32 = 10;

/// Moves slots `0..MOVING` of a small dataset (semi-async) under `limits`
/// and checks that every key arrived. Returns how long the pass took, the keys
/// it moved, the source's `used_memory` per key before it, and the most keys
/// the calls in flight at the end may have moved beyond what they took.
async fn throttled_pass(limits: Limits) -> (Duration, u64, u64, u64) {
    let c = cluster("").await;
    let data = dataset(2_000, 200);
    seed(&c.src_redis, "", &data).await;
    let info = client(&c.src_redis, "", 0)
        .await
        .call(&[b"INFO", b"memory"])
        .await
        .expect("INFO");
    let used: u64 = info
        .to_text()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:")?.trim().parse().ok())
        .expect("used_memory");
    let mode = CodisMode::SemiAsync {
        maxbulks: 200,
        maxbytes: 1 << 20,
        numkeys: THROTTLED_NUMKEYS,
    };
    let o = MigrateOptions {
        throttle: Throttle::new(limits),
        ..opts(T, Duration::ZERO)
    };
    let started = Instant::now();
    let pass = CodisMigrator::new("", mode)
        .migrate_pass(c.src.addr(), &moves_to(c.dst.addr()), &o, &|_| {})
        .await
        .expect("pass");
    let took = started.elapsed();
    let total: u64 = expected_found(&data).values().sum();
    assert_eq!(pass.values().map(|p| p.moved).sum::<u64>(), total);
    verify(&c, &data).await;
    // The last call of each of the two workers (one per db) may move more
    // than it took, up to a whole tag group (about 11 keys) beyond its batch.
    let in_flight = 2 * (u64::from(THROTTLED_NUMKEYS) + 15);
    (took, total, used / data.len() as u64, in_flight)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_per_second_limit_holds_for_codis_server_too() {
    let rate = 150;
    let (took, total, _, in_flight) = throttled_pass(Limits {
        keys_per_sec: rate,
        bytes_per_sec: 0,
    })
    .await;
    let least = Duration::from_secs_f64((total - rate - in_flight) as f64 / rate as f64);
    eprintln!("{total} keys at {rate} keys/s: {took:?} (at least {least:?})");
    assert!(took >= least, "took {took:?}, less than {least:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bytes_per_second_limit_holds_for_codis_server_too() {
    let rate = 100 << 10;
    let (took, total, key_bytes, in_flight) = throttled_pass(Limits {
        keys_per_sec: 0,
        bytes_per_sec: rate,
    })
    .await;
    // Charged: each key at the source's used_memory per key, read by the
    // pass a moment after the test did (a 10% margin for the drift).
    let bytes = (total - in_flight) * key_bytes;
    let least = Duration::from_secs_f64(0.9 * bytes.saturating_sub(rate) as f64 / rate as f64);
    eprintln!(
        "{total} keys of ~{key_bytes} bytes at {rate} bytes/s: {took:?} (at least {least:?})"
    );
    assert!(
        least >= Duration::from_secs(1),
        "a bound worth testing: {least:?}"
    );
    assert!(took >= least, "took {took:?}, less than {least:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_auth_is_sent() {
    let c = cluster("s3cret").await;
    let data = dataset(600, 100);
    seed(&c.src_redis, "s3cret", &data).await;
    let moves = moves_to(c.dst.addr());
    let o = opts(T, Duration::ZERO);
    for wrong in ["", "wrong"] {
        let m = CodisMigrator::new(wrong, CodisMode::Sync);
        let r = m.migrate_pass(c.src.addr(), &moves, &o, &|_| {}).await;
        assert!(
            matches!(r, Err(RedisError::Auth { .. })),
            "{wrong:?}: {r:?}"
        );
    }
    let m = CodisMigrator::new("s3cret", CodisMode::default());
    let first = m
        .migrate_pass(c.src.addr(), &moves, &o, &|_| {})
        .await
        .expect("first pass");
    let second = m
        .migrate_pass(c.src.addr(), &moves, &o, &|_| {})
        .await
        .expect("second pass");
    let want = expected_found(&data);
    for (slot, &n) in &want {
        assert_eq!(
            (first[slot].found, first[slot].moved),
            (n, n),
            "slot {slot}"
        );
        assert_eq!(second[slot].found, 0, "slot {slot}");
    }
    verify(&c, &data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_target_fails_within_the_timeout() {
    let c = cluster("").await;
    let data = dataset(300, 0);
    seed(&c.src_redis, "", &data).await;
    let timeout = Duration::from_millis(500);
    // Our deadline is the timeout plus 1 s; allow scheduling slack on top.
    let bound = timeout + Duration::from_secs(2);
    let o = opts(timeout, Duration::ZERO);

    // Accepts connections and never answers.
    let blackhole = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hole = blackhole.local_addr().expect("addr").to_string();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = blackhole.accept().await {
            held.push(sock);
        }
    });
    let closed = format!("127.0.0.1:{}", free_port());

    let semi = CodisMode::SemiAsync {
        maxbulks: 0,
        maxbytes: 0,
        numkeys: 0,
    };
    for mode in [CodisMode::Sync, semi] {
        let m = CodisMigrator::new("", mode);
        for target in [&closed, &hole] {
            let started = Instant::now();
            let r = m
                .migrate_pass(c.src.addr(), &moves_to(target), &o, &|_| {})
                .await;
            let took = started.elapsed();
            eprintln!("{mode:?} to {target}: {took:?}: {r:?}");
            match r {
                Err(RedisError::Connect { addr, reason }) => {
                    assert_eq!(&addr, target);
                    assert!(reason.contains("IOERR"), "{reason}");
                }
                Err(RedisError::Timeout { .. }) => {}
                other => panic!("{mode:?} to {target}: {other:?}"),
            }
            assert!(took < bound, "{mode:?} to {target} took {took:?}");
        }
    }
    // Nothing left the source.
    let mut src = client(&c.src_redis, "", 0).await;
    assert_eq!(keys_of(&mut src).await.len(), data.len());

    // A source that accepts and never answers: our own deadline.
    let hung = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hung_addr = hung.local_addr().expect("addr").to_string();
    let _hung = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = hung.accept().await {
            held.push(sock);
        }
    });
    let started = Instant::now();
    let r = CodisMigrator::new("", CodisMode::Sync)
        .migrate_pass(&hung_addr, &moves_to(c.dst.addr()), &o, &|_| {})
        .await;
    assert!(matches!(r, Err(RedisError::Timeout { .. })), "{r:?}");
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());
}
