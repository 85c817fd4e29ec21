//! What a pass moves: every key of the slots asked for, of every type, with
//! its TTL, in every db, to each slot's target; nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use topom::model::slot_of;
use topom::redis::{Conn, Migrator, PlainMigrator, SlotPass, Value};

use crate::common::redis::RedisServer;
use crate::{client, cmd, move_all, opts, pipe, sum};

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
