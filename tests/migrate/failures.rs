//! Passes that cannot move: a password the target refuses, and dead or silent
//! targets and sources, all failing fast and deleting nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use topom::model::slot_of;
use topom::redis::{MigrateOptions, Migrator, PlainMigrator, RedisError, Value};

use crate::common::ports::free_port;
use crate::common::redis::RedisServer;
use crate::{client, cmd, move_all, opts, pipe};

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
