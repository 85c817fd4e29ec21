//! The throttle: a move under a keys/s or bytes/s limit takes at least
//! `(cost - one burst) / rate` (a lower bound, which no slow machine breaks),
//! and every key arrives.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use topom::model::slot_of;
use topom::redis::{BURST, Limits, MigrateOptions, PlainMigrator, SlotPass, Throttle, Value};

use crate::common::redis::RedisServer;
use crate::{client, cmd, move_all, opts, pipe, sum};

/// Writes `n` keys (spread over many slots) whose values are `value_len`
/// bytes; their names.
async fn seed(server: &RedisServer, n: usize, value_len: usize) -> Vec<Vec<u8>> {
    let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("thr:{i}").into_bytes()).collect();
    let writes: Vec<_> = keys
        .iter()
        .map(|k| cmd(&[b"SET", k, &value_of(k, value_len)]))
        .collect();
    pipe(&mut client(server, "", 0).await, &writes).await;
    keys
}

fn value_of(key: &[u8], len: usize) -> Vec<u8> {
    key.iter().copied().cycle().take(len).collect()
}

/// Moves every slot of `keys` from `a` to `b` under `limits`; how long it
/// took and the first pass.
async fn throttled_move(
    a: &RedisServer,
    b: &RedisServer,
    keys: &[Vec<u8>],
    limits: Limits,
) -> (Duration, BTreeMap<u32, SlotPass>) {
    let moves: BTreeMap<u32, String> = keys.iter().map(|k| (slot_of(k), b.addr())).collect();
    let opts = MigrateOptions {
        throttle: Throttle::new(limits),
        ..opts()
    };
    let started = Instant::now();
    let passes = move_all(&PlainMigrator::new(""), &a.addr(), &moves, &opts, 3).await;
    (
        started.elapsed(),
        passes.into_iter().next().expect("a pass"),
    )
}

/// Every key is on the target with its value, none left on the source.
async fn arrived(a: &RedisServer, b: &RedisServer, keys: &[Vec<u8>], value_len: usize) {
    let mut ca = client(a, "", 0).await;
    assert_eq!(ca.call(&[b"DBSIZE"]).await.unwrap(), Value::Int(0));
    let mut cb = client(b, "", 0).await;
    let gets: Vec<_> = keys.iter().map(|k| cmd(&[b"GET", k])).collect();
    let got = pipe(&mut cb, &gets).await;
    for (k, v) in keys.iter().zip(got) {
        assert_eq!(v, Value::Bulk(value_of(k, value_len)), "{k:?}");
    }
}

/// The least a move of `cost` can take at `rate`: the bucket starts full.
fn lower_bound(cost: u64, rate: u64) -> Duration {
    let burst = rate * BURST.as_secs();
    Duration::from_secs_f64(cost.saturating_sub(burst) as f64 / rate as f64)
}

#[tokio::test]
async fn a_keys_per_second_limit_slows_the_move_and_loses_nothing() {
    let (a, b) = tokio::join!(RedisServer::start(), RedisServer::start());
    let keys = seed(&a, 1000, 8).await;
    let rate = 400;
    let (took, pass) = throttled_move(
        &a,
        &b,
        &keys,
        Limits {
            keys_per_sec: rate,
            bytes_per_sec: 0,
        },
    )
    .await;
    assert_eq!(sum(&pass, |p| p.moved), 1000, "{pass:?}");
    let least = lower_bound(1000, rate);
    eprintln!("1000 keys at {rate} keys/s: {took:?} (at least {least:?})");
    assert!(took >= least, "took {took:?}, less than {least:?}");
    arrived(&a, &b, &keys, 8).await;
}

#[tokio::test]
async fn a_bytes_per_second_limit_slows_the_move_and_loses_nothing() {
    let (a, b) = tokio::join!(RedisServer::start(), RedisServer::start());
    let keys = seed(&a, 400, 1000).await;
    let rate = 128 << 10;
    let (took, pass) = throttled_move(
        &a,
        &b,
        &keys,
        Limits {
            keys_per_sec: 0,
            bytes_per_sec: rate,
        },
    )
    .await;
    assert_eq!(sum(&pass, |p| p.moved), 400, "{pass:?}");
    // What the throttle was charged: the sizes MEMORY USAGE gave.
    let bytes = sum(&pass, |p| p.bytes);
    assert!(bytes >= 400 * 1000, "{bytes}");
    let least = lower_bound(bytes, rate);
    eprintln!("{bytes} bytes at {rate} bytes/s: {took:?} (at least {least:?})");
    assert!(took >= least, "took {took:?}, less than {least:?}");
    arrived(&a, &b, &keys, 1000).await;
}
