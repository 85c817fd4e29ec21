//! [`PlainMigrator`] against real `redis-server` processes: whole slots moved
//! with every value type, TTLs, several dbs and targets; conflicts settled in
//! the target's favour; big values moved alone; `AUTH`; dead targets.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use common::ports::free_port;
use common::redis::RedisServer;
use topom::model::slot_of;
use topom::redis::{Conn, MigrateOptions, Migrator, PlainMigrator, RedisError, SlotPass, Value};

/// The deadline of commands where the test is not about deadlines.
const T: Duration = Duration::from_secs(5);

fn opts() -> MigrateOptions {
    MigrateOptions {
        batch_keys: 100,
        scan_count: 500,
        big_value_bytes: 1 << 20,
        timeout: T,
        interval: Duration::ZERO,
    }
}

/// A connection to `server`, authenticated with `password` (empty: none), on `db`.
async fn client(server: &RedisServer, password: &str, db: u32) -> Conn {
    let mut c = Conn::connect(&server.addr(), T).await.expect("connect");
    if !password.is_empty() {
        c.call(&[b"AUTH", password.as_bytes()]).await.expect("AUTH");
    }
    c.call(&[b"SELECT", db.to_string().as_bytes()])
        .await
        .expect("SELECT");
    c
}

/// Runs `cmds` in pipelines of 1,000; panics on an error reply.
async fn pipe(c: &mut Conn, cmds: &[Vec<Vec<u8>>]) -> Vec<Value> {
    let mut replies = Vec::with_capacity(cmds.len());
    for chunk in cmds.chunks(1000) {
        let args: Vec<Vec<&[u8]>> = chunk
            .iter()
            .map(|cmd| cmd.iter().map(Vec::as_slice).collect())
            .collect();
        let refs: Vec<&[&[u8]]> = args.iter().map(Vec::as_slice).collect();
        for r in c.pipeline(&refs).await.expect("pipeline") {
            assert!(!matches!(r, Value::Error(_)), "{r:?}");
            replies.push(r);
        }
    }
    replies
}

fn cmd(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// Passes until one finds no key of any slot (at most `max`); every pass's
/// result, in order.
async fn move_all(
    m: &PlainMigrator,
    source: &str,
    moves: &BTreeMap<u32, String>,
    opts: &MigrateOptions,
    max: usize,
) -> Vec<BTreeMap<u32, SlotPass>> {
    let mut passes = Vec::new();
    for _ in 0..max {
        let pass = m
            .migrate_pass(source, moves, opts, &|_| {})
            .await
            .expect("pass");
        let found: u64 = pass.values().map(|p| p.found).sum();
        passes.push(pass);
        if found == 0 {
            return passes;
        }
    }
    panic!("slots still had keys after {max} passes: {passes:?}");
}

fn sum(pass: &BTreeMap<u32, SlotPass>, f: impl Fn(&SlotPass) -> u64) -> u64 {
    pass.values().map(f).sum()
}

// === the dataset of the main test ===

/// The value types written.
#[derive(Debug, Clone, Copy)]
enum Kind {
    String,
    Hash,
    List,
    Set,
    Zset,
}

/// One key of the dataset.
#[derive(Debug, Clone)]
struct Spec {
    db: u32,
    key: Vec<u8>,
    kind: Kind,
    /// Set with a 10-minute TTL (long enough to outlast the test).
    ttl: bool,
}

const KEYS: usize = 20_000;
const TTL_MS: i64 = 600_000;

/// 20,000 keys: a third tagged (200 tags, so tag groups share slots), a third
/// plain, a third binary (NUL and invalid UTF-8); all five types; one in ten
/// with a TTL; a quarter in db 3, the rest in db 0.
fn dataset() -> Vec<Spec> {
    (0..KEYS)
        .map(|i| {
            let key = match i % 3 {
                0 => format!("{{t{}}}:{i}", i % 200).into_bytes(),
                1 => format!("key:{i}").into_bytes(),
                _ => [&b"bin\xff\x00"[..], i.to_string().as_bytes()].concat(),
            };
            let kind = [Kind::String, Kind::Hash, Kind::List, Kind::Set, Kind::Zset][i % 5];
            Spec {
                db: if i % 4 == 3 { 3 } else { 0 },
                key,
                kind,
                ttl: i % 10 == 0,
            }
        })
        .collect()
}

fn write_cmds(spec: &Spec, salt: &str) -> Vec<Vec<Vec<u8>>> {
    let k = spec.key.as_slice();
    let v = |n: usize| format!("{salt}-{n}-{}", String::from_utf8_lossy(k)).into_bytes();
    let mut cmds = vec![match spec.kind {
        Kind::String => cmd(&[b"SET", k, &v(0)]),
        Kind::Hash => cmd(&[b"HSET", k, b"f1", &v(1), b"f2", &v(2), b"f3", &v(3)]),
        Kind::List => cmd(&[b"RPUSH", k, &v(1), &v(2), &v(1), &v(3)]),
        Kind::Set => cmd(&[b"SADD", k, &v(1), &v(2), &v(3)]),
        Kind::Zset => cmd(&[b"ZADD", k, b"1.5", &v(1), b"-2", &v(2), b"3", &v(3)]),
    }];
    if spec.ttl {
        cmds.push(cmd(&[b"PEXPIRE", k, TTL_MS.to_string().as_bytes()]));
    }
    cmds
}

/// What a key holds, in a form that compares across servers.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    kind: Value,
    value: Value,
    pttl: i64,
}

/// Reads every key of `specs` in `db` from `c`: `None` for a missing key.
async fn snapshot(c: &mut Conn, specs: &[&Spec]) -> Vec<Option<Seen>> {
    let mut cmds = Vec::new();
    for s in specs {
        let k = s.key.as_slice();
        cmds.push(cmd(&[b"TYPE", k]));
        cmds.push(match s.kind {
            Kind::String => cmd(&[b"GET", k]),
            Kind::Hash => cmd(&[b"HGETALL", k]),
            Kind::List => cmd(&[b"LRANGE", k, b"0", b"-1"]),
            Kind::Set => cmd(&[b"SMEMBERS", k]),
            Kind::Zset => cmd(&[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"]),
        });
        cmds.push(cmd(&[b"PTTL", k]));
    }
    let replies = pipe(c, &cmds).await;
    replies
        .chunks_exact(3)
        .zip(specs)
        .map(|(r, s)| {
            if r[0] == Value::Simple("none".into()) {
                return None;
            }
            let mut value = r[1].clone();
            // Hash fields and set members come in no particular order.
            if let (Kind::Hash | Kind::Set, Value::Array(items)) = (s.kind, &mut value) {
                items.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
            }
            let Value::Int(pttl) = r[2] else {
                panic!("PTTL: {:?}", r[2]);
            };
            Some(Seen {
                kind: r[0].clone(),
                value,
                pttl,
            })
        })
        .collect()
}

/// The dataset's keys in `db`.
fn in_db(data: &[Spec], db: u32) -> Vec<&Spec> {
    data.iter().filter(|s| s.db == db).collect()
}

/// `got` holds what `orig` held, with the TTL (if any) run down by at most
/// `elapsed_ms` (MIGRATE carries the remaining TTL).
fn assert_same(spec: &Spec, orig: &Seen, got: &Seen, elapsed_ms: i64) {
    assert_eq!(
        (&got.kind, &got.value),
        (&orig.kind, &orig.value),
        "{spec:?}"
    );
    if orig.pttl < 0 {
        assert_eq!(got.pttl, orig.pttl, "{spec:?}");
    } else {
        assert!(
            got.pttl <= orig.pttl && got.pttl >= orig.pttl - elapsed_ms,
            "{spec:?}: {} then {}",
            orig.pttl,
            got.pttl
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_whole_slots_and_nothing_else() {
    let (a, b, c) = tokio::join!(
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start()
    );
    // Slots 0..512 go to B, 1000..1024 to C: one pass serves both targets.
    let mut moves: BTreeMap<u32, String> = (0..512).map(|s| (s, b.addr())).collect();
    moves.extend((1000..1024).map(|s| (s, c.addr())));

    let data = dataset();
    // A TTL read before may run down by at most the time between the first
    // "before" read and the last "after" read: the window starts here and ends
    // once every snapshot below has been taken, on any machine speed.
    let window_start = Instant::now();
    let mut before = BTreeMap::new();
    for db in [0, 3] {
        let specs = in_db(&data, db);
        let mut conn = client(&a, "", db).await;
        let cmds: Vec<_> = specs.iter().flat_map(|s| write_cmds(s, "v")).collect();
        pipe(&mut conn, &cmds).await;
        before.insert(db, snapshot(&mut conn, &specs).await);
    }
    let mut expected: BTreeMap<u32, u64> = BTreeMap::new();
    for s in &data {
        let slot = slot_of(&s.key);
        if moves.contains_key(&slot) {
            *expected.entry(slot).or_default() += 1;
        }
    }
    let expected_total: u64 = expected.values().sum();
    assert!(expected_total > 9_000, "{expected_total}");

    // The progress callback sees running totals that only grow.
    let seen = Mutex::new(Vec::new());
    let progress = |t: &BTreeMap<u32, SlotPass>| {
        seen.lock().unwrap().push(sum(t, |p| p.moved));
    };
    let m = PlainMigrator::new("");
    let started = Instant::now();
    let first = m
        .migrate_pass(&a.addr(), &moves, &opts(), &progress)
        .await
        .expect("first pass");
    let first_took = started.elapsed();
    assert_eq!(first.len(), moves.len(), "every slot of moves is reported");
    for (slot, pass) in &first {
        let want = expected.get(slot).copied().unwrap_or(0);
        assert_eq!(pass.moved, want, "slot {slot}");
        assert!(pass.found >= want, "slot {slot}: {pass:?}");
        assert!(pass.conflicts.is_empty() && pass.big_values.is_empty());
        assert_eq!(pass.bytes > 0, want > 0, "slot {slot}: {pass:?}");
    }
    let calls = seen.lock().unwrap().clone();
    assert!(
        calls.len() >= (expected_total / 100) as usize,
        "{}",
        calls.len()
    );
    assert!(calls.windows(2).all(|w| w[0] <= w[1]), "{calls:?}");
    assert_eq!(calls.last(), Some(&expected_total));

    // Repeated passes until one finds nothing; then another is a no-op.
    let rest = move_all(&m, &a.addr(), &moves, &opts(), 5).await;
    assert_eq!(rest.len(), 1, "the first pass moved everything: {rest:?}");
    let again = m
        .migrate_pass(&a.addr(), &moves, &opts(), &|_| {})
        .await
        .expect("no-op pass");
    assert!(
        again.values().all(|p| *p == SlotPass::default()),
        "{again:?}"
    );

    let mut after = BTreeMap::new();
    for db in [0, 3] {
        let specs = in_db(&data, db);
        let on_a = snapshot(&mut client(&a, "", db).await, &specs).await;
        let on_b = snapshot(&mut client(&b, "", db).await, &specs).await;
        let on_c = snapshot(&mut client(&c, "", db).await, &specs).await;
        after.insert(db, (on_a, on_b, on_c));
    }
    // Rounded up: PTTL counts whole milliseconds.
    let elapsed_ms = window_start.elapsed().as_millis() as i64 + 1;
    for db in [0, 3] {
        let specs = in_db(&data, db);
        let (on_a, on_b, on_c) = &after[&db];
        for (i, spec) in specs.iter().enumerate() {
            let orig = before[&db][i].clone().expect("written");
            let (here, elsewhere) = match moves.get(&slot_of(&spec.key)) {
                None => {
                    // Untouched on A, absent from the targets.
                    let got = on_a[i].as_ref().unwrap_or_else(|| panic!("gone: {spec:?}"));
                    assert_same(spec, &orig, got, elapsed_ms);
                    assert!(on_b[i].is_none() && on_c[i].is_none(), "{spec:?}");
                    continue;
                }
                Some(t) if *t == b.addr() => (&on_b[i], &on_c[i]),
                Some(_) => (&on_c[i], &on_b[i]),
            };
            assert!(on_a[i].is_none(), "left on the source: {spec:?}");
            assert!(elsewhere.is_none(), "on the wrong target: {spec:?}");
            let got = here.as_ref().unwrap_or_else(|| panic!("lost: {spec:?}"));
            assert_same(spec, &orig, got, elapsed_ms);
        }
    }
    eprintln!("first pass: {expected_total} keys in {first_took:?}");
}

#[tokio::test]
async fn a_key_on_both_sides_keeps_the_targets_copy() {
    let (a, b) = tokio::join!(RedisServer::start(), RedisServer::start());
    // A busy key among others of its slot in db 0, and one alone in db 3.
    let busy = b"{c}busy\xfe".to_vec();
    let busy3 = b"{c}busy3".to_vec();
    let slot = slot_of(&busy);
    let others: Vec<Vec<u8>> = (0..10).map(|i| format!("{{c}}:{i}").into_bytes()).collect();
    let (mut ca, mut cb) = (client(&a, "", 0).await, client(&b, "", 0).await);
    let (mut ca3, mut cb3) = (client(&a, "", 3).await, client(&b, "", 3).await);
    let mut writes: Vec<_> = others.iter().map(|k| cmd(&[b"SET", k, b"old"])).collect();
    writes.push(cmd(&[b"SET", &busy, b"old"]));
    pipe(&mut ca, &writes).await;
    pipe(&mut cb, &[cmd(&[b"SET", &busy, b"new"])]).await;
    pipe(&mut ca3, &[cmd(&[b"SET", &busy3, b"old"])]).await;
    pipe(&mut cb3, &[cmd(&[b"SET", &busy3, b"new"])]).await;

    let moves = BTreeMap::from([(slot, b.addr())]);
    let m = PlainMigrator::new("");
    // The 11 keys of db 0 share a slot and a batch: the batch hits BUSYKEY.
    let pass = m
        .migrate_pass(&a.addr(), &moves, &opts(), &|_| {})
        .await
        .expect("pass");
    let p = &pass[&slot];
    assert_eq!(p.found, 12, "{p:?}");
    assert_eq!(p.moved, 10, "{p:?}");
    let shown = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
    assert_eq!(p.conflicts, [shown(&busy), shown(&busy3)]);

    for (src, dst, key) in [(&mut ca, &mut cb, &busy), (&mut ca3, &mut cb3, &busy3)] {
        assert_eq!(src.call(&[b"DBSIZE"]).await.unwrap(), Value::Int(0));
        let kept = dst.call(&[b"GET", key]).await.unwrap();
        assert_eq!(kept, Value::Bulk(b"new".to_vec()), "{}", shown(key));
    }
    for k in &others {
        let moved = cb.call(&[b"GET", k]).await.unwrap();
        assert_eq!(moved, Value::Bulk(b"old".to_vec()));
    }
    let done = move_all(&m, &a.addr(), &moves, &opts(), 2).await;
    assert_eq!(done.len(), 1, "{done:?}");
}

#[tokio::test]
async fn the_interval_paces_batches() {
    let (a, b) = tokio::join!(RedisServer::start(), RedisServer::start());
    let keys: Vec<Vec<u8>> = (0..50)
        .map(|i| format!("{{pace}}:{i}").into_bytes())
        .collect();
    let slot = slot_of(&keys[0]);
    let writes: Vec<_> = keys.iter().map(|k| cmd(&[b"SET", k, b"v"])).collect();
    pipe(&mut client(&a, "", 0).await, &writes).await;
    let opts = MigrateOptions {
        batch_keys: 10,
        interval: Duration::from_millis(50),
        ..opts()
    };
    let calls = Mutex::new(0);
    let started = Instant::now();
    let pass = PlainMigrator::new("")
        .migrate_pass(
            &a.addr(),
            &BTreeMap::from([(slot, b.addr())]),
            &opts,
            &|_| {
                *calls.lock().unwrap() += 1;
            },
        )
        .await
        .expect("pass");
    assert_eq!(pass[&slot].moved, 50);
    // Five batches, each followed by the pause.
    assert_eq!(*calls.lock().unwrap(), 5);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_big_value_moves_alone_and_is_timed() {
    let (a, b) = tokio::join!(RedisServer::start(), RedisServer::start());
    let big = b"{bv}big".to_vec();
    let slot = slot_of(&big);
    let value: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut ca = client(&a, "", 0).await;
    let mut writes = vec![cmd(&[b"SET", &big, &value])];
    writes.extend((0..5).map(|i| cmd(&[b"SET", format!("{{bv}}s{i}").as_bytes(), b"small"])));
    pipe(&mut ca, &writes).await;

    let moves = BTreeMap::from([(slot, b.addr())]);
    let pass = PlainMigrator::new("")
        .migrate_pass(&a.addr(), &moves, &opts(), &|_| {})
        .await
        .expect("pass");
    let p = &pass[&slot];
    assert_eq!((p.found, p.moved), (6, 6), "{p:?}");
    let [(key, bytes, ms)] = p.big_values.as_slice() else {
        panic!("one big value expected: {p:?}");
    };
    assert_eq!(key, "{bv}big");
    assert!(*bytes >= 5_000_000 && *bytes < 6_000_000, "{bytes}");
    assert!(*ms < T.as_millis() as u64, "{ms}");
    assert!(p.bytes >= *bytes, "{p:?}");
    eprintln!("5 MB value moved in {ms} ms");

    let mut cb = client(&b, "", 0).await;
    assert_eq!(cb.call(&[b"GET", &big]).await.unwrap(), Value::Bulk(value));
    assert_eq!(cb.call(&[b"DBSIZE"]).await.unwrap(), Value::Int(6));
    assert_eq!(ca.call(&[b"DBSIZE"]).await.unwrap(), Value::Int(0));
}

#[tokio::test]
async fn product_auth_reaches_the_target() {
    let (a, b, other) = tokio::join!(
        RedisServer::start_with(&["requirepass s3cret"]),
        RedisServer::start_with(&["requirepass s3cret"]),
        RedisServer::start_with(&["requirepass other"]),
    );
    let keys: Vec<Vec<u8>> = (0..50)
        .map(|i| format!("{{auth}}:{i}").into_bytes())
        .collect();
    let slot = slot_of(&keys[0]);
    let mut ca = client(&a, "s3cret", 0).await;
    let writes: Vec<_> = keys.iter().map(|k| cmd(&[b"SET", k, b"v"])).collect();
    pipe(&mut ca, &writes).await;

    // A password the target does not take: an auth error naming the target,
    // and nothing deleted.
    let wrong = BTreeMap::from([(slot, other.addr())]);
    let m = PlainMigrator::new("s3cret");
    match m.migrate_pass(&a.addr(), &wrong, &opts(), &|_| {}).await {
        Err(RedisError::Auth { addr, .. }) => assert_eq!(addr, other.addr()),
        r => panic!("{r:?}"),
    }
    assert_eq!(ca.call(&[b"DBSIZE"]).await.unwrap(), Value::Int(50));
    // No password for the source itself.
    let r = PlainMigrator::new("")
        .migrate_pass(&a.addr(), &wrong, &opts(), &|_| {})
        .await;
    assert!(
        matches!(&r, Err(RedisError::Auth { addr, .. }) if *addr == a.addr()),
        "{r:?}"
    );

    let moves = BTreeMap::from([(slot, b.addr())]);
    let passes = move_all(&m, &a.addr(), &moves, &opts(), 3).await;
    assert_eq!(passes[0][&slot].moved, 50);
    assert_eq!(ca.call(&[b"DBSIZE"]).await.unwrap(), Value::Int(0));
    let mut cb = client(&b, "s3cret", 0).await;
    assert_eq!(cb.call(&[b"DBSIZE"]).await.unwrap(), Value::Int(50));
}

#[tokio::test]
async fn a_dead_target_fails_the_pass_quickly() {
    let a = RedisServer::start().await;
    let key = b"{dead}k".to_vec();
    let slot = slot_of(&key);
    let mut ca = client(&a, "", 0).await;
    pipe(&mut ca, &[cmd(&[b"SET", &key, b"v"])]).await;
    let opts = MigrateOptions {
        timeout: Duration::from_millis(500),
        ..opts()
    };
    let m = PlainMigrator::new("");

    // Nothing listens there: MIGRATE's connect is refused at once.
    let refused = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let r = m
        .migrate_pass(
            &a.addr(),
            &BTreeMap::from([(slot, refused.clone())]),
            &opts,
            &|_| {},
        )
        .await;
    assert!(
        matches!(&r, Err(RedisError::Connect { addr, .. }) if *addr == refused),
        "{r:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A target that accepts and never answers: MIGRATE's own timeout fires,
    // well within ours (timeout + 1 s).
    let hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole_addr = hole.local_addr().unwrap().to_string();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = hole.accept().await {
            held.push(sock);
        }
    });
    let started = Instant::now();
    let r = m
        .migrate_pass(
            &a.addr(),
            &BTreeMap::from([(slot, hole_addr.clone())]),
            &opts,
            &|_| {},
        )
        .await;
    let took = started.elapsed();
    assert!(
        matches!(
            &r,
            Err(RedisError::Connect { .. } | RedisError::Timeout { .. })
        ),
        "{r:?}"
    );
    assert!(took < Duration::from_millis(1500 + 500), "{took:?}");
    eprintln!("black-hole target: {r:?} after {took:?}");
    holder.abort();

    // The key is still on the source; a dead source fails at once too.
    assert_eq!(ca.call(&[b"EXISTS", &key]).await.unwrap(), Value::Int(1));
    let dead_source = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let r = m
        .migrate_pass(
            &dead_source,
            &BTreeMap::from([(slot, a.addr())]),
            &opts,
            &|_| {},
        )
        .await;
    assert!(matches!(&r, Err(RedisError::Connect { .. })), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_empty_or_foreign_move_set_touches_nothing() {
    let (a, b) = tokio::join!(RedisServer::start(), RedisServer::start());
    let mut ca = client(&a, "", 0).await;
    let writes: Vec<_> = (0..100)
        .map(|i| cmd(&[b"SET", format!("k{i}").as_bytes(), b"v"]))
        .collect();
    pipe(&mut ca, &writes).await;
    let used: BTreeSet<u32> = (0..100)
        .map(|i| slot_of(format!("k{i}").as_bytes()))
        .collect();
    let unused = (0..1024).find(|s| !used.contains(s)).unwrap();
    let m = PlainMigrator::new("");
    let none = m
        .migrate_pass(&a.addr(), &BTreeMap::new(), &opts(), &|_| {})
        .await
        .unwrap();
    assert!(none.is_empty());
    let pass = m
        .migrate_pass(
            &a.addr(),
            &BTreeMap::from([(unused, b.addr())]),
            &opts(),
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(pass[&unused], SlotPass::default());
    assert_eq!(ca.call(&[b"DBSIZE"]).await.unwrap(), Value::Int(100));
}

#[tokio::test]
async fn a_busy_key_in_one_of_several_migrates_in_flight_is_settled_alone() {
    let (a, b) = tokio::join!(RedisServer::start(), RedisServer::start());
    // 60 keys of one slot in batches of 10: the mover sends the MIGRATEs of
    // the batches waiting in one pipeline; two batches hold a key busy on B.
    let keys: Vec<Vec<u8>> = (0..60)
        .map(|i| format!("{{fly}}:{i:02}").into_bytes())
        .collect();
    let slot = slot_of(&keys[0]);
    let (mut ca, mut cb) = (client(&a, "", 0).await, client(&b, "", 0).await);
    let writes: Vec<_> = keys.iter().map(|k| cmd(&[b"SET", k, b"old"])).collect();
    pipe(&mut ca, &writes).await;
    // Which batch a key lands in follows SCAN's order: one busy key in the
    // second batch, one in the fifth.
    let order = match ca.call(&[b"SCAN", b"0", b"COUNT", b"1000"]).await {
        Ok(Value::Array(mut parts)) => match parts.pop() {
            Some(Value::Array(ks)) => ks,
            other => panic!("SCAN keys: {other:?}"),
        },
        other => panic!("SCAN: {other:?}"),
    };
    let busy: Vec<Vec<u8>> = [15, 45]
        .iter()
        .map(|&i| match &order[i] {
            Value::Bulk(k) => k.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let busy_writes: Vec<_> = busy.iter().map(|k| cmd(&[b"SET", k, b"new"])).collect();
    pipe(&mut cb, &busy_writes).await;
    let opts = MigrateOptions {
        batch_keys: 10,
        scan_count: 1000,
        ..opts()
    };
    let m = PlainMigrator::new("");
    let moves = BTreeMap::from([(slot, b.addr())]);
    // B frozen for a moment holds the first MIGRATE, so the other batches
    // queue up and go together (MIGRATE waits up to its 5 s timeout).
    signal(&b, "STOP");
    let thaw = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        signal(&b, "CONT");
    };
    let source = a.addr();
    let (pass, ()) = tokio::join!(m.migrate_pass(&source, &moves, &opts, &|_| {}), thaw);
    let pass = pass.expect("pass");
    let p = &pass[&slot];
    assert_eq!((p.found, p.moved, p.left), (60, 58, 0), "{p:?}");
    let mut conflicts = p.conflicts.clone();
    conflicts.sort();
    let mut shown: Vec<String> = busy
        .iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    shown.sort();
    assert_eq!(conflicts, shown);
    assert_eq!(ca.call(&[b"DBSIZE"]).await.unwrap(), Value::Int(0));
    assert_eq!(cb.call(&[b"DBSIZE"]).await.unwrap(), Value::Int(60));
    for k in &busy {
        assert_eq!(
            cb.call(&[b"GET", k]).await.unwrap(),
            Value::Bulk(b"new".to_vec())
        );
    }
    for k in keys.iter().filter(|k| !busy.contains(k)) {
        assert_eq!(
            cb.call(&[b"GET", k]).await.unwrap(),
            Value::Bulk(b"old".to_vec())
        );
    }
}

fn signal(r: &RedisServer, sig: &str) {
    let pid = r.pid().expect("redis-server runs").to_string();
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid}");
}
