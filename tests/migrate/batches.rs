//! How a pass spends its time: the interval between batches, and a big value
//! moved alone and timed.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use topom::model::slot_of;
use topom::redis::{MigrateOptions, Migrator, PlainMigrator, Value};

use crate::common::redis::RedisServer;
use crate::{T, client, cmd, opts, pipe};

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
