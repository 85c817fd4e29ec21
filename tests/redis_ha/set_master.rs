//! SetMaster: a replica made and made a master again, with product auth, toward
//! a dead master, without a config file to persist it, refused as a whole.

use std::time::{Duration, Instant};

use topom::redis::{HaAdmin, Persisted, PooledHa, RedisError, Value};

use crate::common::ports::free_port;
use crate::common::redis::RedisServer;
use crate::common::wait_until;
use crate::{NO_SYNC_DELAY, T, client, field, replication, wait_link_up};

fn config_of(server: &RedisServer) -> String {
    std::fs::read_to_string(server.dir().join("redis.conf")).expect("read redis.conf")
}

#[tokio::test]
async fn set_master_makes_a_replica_and_back() {
    let a = RedisServer::start_with(&[NO_SYNC_DELAY]).await;
    let b = RedisServer::start().await;
    let ha = PooledHa::new("");
    // A normal client of B, connected before: SetMaster kills it.
    let mut bystander = client(&b.addr(), None).await;
    bystander.call(&[b"PING"]).await.expect("PING");
    // The pool holds a connection to B as well, killed just the same.
    assert_eq!(field(&replication(&ha, &b.addr()).await, "role"), "master");

    let started = Instant::now();
    ha.set_master(&b.addr(), Some(&a.addr()), T)
        .await
        .expect("set_master B -> A");
    eprintln!("set_master took {:?}", started.elapsed());

    // The pool notices that its connection was killed and dials again.
    let info = replication(&ha, &b.addr()).await;
    assert_eq!(field(&info, "role"), "slave", "{info:?}");
    assert_eq!(field(&info, "master_host"), "127.0.0.1");
    assert_eq!(field(&info, "master_port"), a.port().to_string());
    let took = wait_link_up(&ha, &b.addr()).await;
    eprintln!("link up after {took:?}");
    // CONFIG REWRITE recorded the new role.
    let replicaof = format!("replicaof 127.0.0.1 {}", a.port());
    let conf = config_of(&b);
    assert!(conf.lines().any(|l| l == replicaof), "{conf}");
    // CLIENT KILL TYPE normal closed the bystander.
    let r = bystander.call(&[b"PING"]).await;
    assert!(matches!(r, Err(RedisError::Connect { .. })), "{r:?}");
    // Data flows from A to B.
    let mut on_a = client(&a.addr(), None).await;
    on_a.call(&[b"SET", b"k", b"v"]).await.expect("SET");
    let mut on_b = client(&b.addr(), None).await;
    wait_until(Duration::from_secs(5), "the key to replicate", async || {
        on_b.call(&[b"GET", b"k"]).await.ok() == Some(Value::Bulk(b"v".to_vec()))
    })
    .await;

    ha.set_master(&b.addr(), None, T)
        .await
        .expect("set_master B -> NO ONE");
    let info = replication(&ha, &b.addr()).await;
    assert_eq!(field(&info, "role"), "master", "{info:?}");
    let conf = config_of(&b);
    assert!(!conf.lines().any(|l| l.starts_with("replicaof")), "{conf}");
}

#[tokio::test]
async fn set_master_with_product_auth() {
    let a = RedisServer::start_with(&["requirepass s3cret", NO_SYNC_DELAY]).await;
    let b = RedisServer::start_with(&["requirepass s3cret"]).await;
    let ha = PooledHa::new("s3cret");
    ha.set_master(&b.addr(), Some(&a.addr()), T)
        .await
        .expect("set_master");
    // The link needs masterauth: the transaction set it.
    let took = wait_link_up(&ha, &b.addr()).await;
    eprintln!("link up with masterauth after {took:?}");

    match PooledHa::new("wrong").set_master(&b.addr(), None, T).await {
        Err(e @ RedisError::Auth { .. }) => assert!(e.to_string().contains(&b.addr()), "{e}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
    match PooledHa::new("").set_master(&b.addr(), None, T).await {
        Err(e @ RedisError::Auth { .. }) => assert!(e.to_string().contains("NOAUTH"), "{e}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
    // Neither changed anything.
    assert_eq!(field(&replication(&ha, &b.addr()).await, "role"), "slave");
}

#[tokio::test]
async fn set_master_to_a_dead_master() {
    let b = RedisServer::start().await;
    let ha = PooledHa::new("");
    let dead_port = free_port();
    let dead = format!("127.0.0.1:{dead_port}");
    // SLAVEOF only records the master; the connection is attempted later.
    ha.set_master(&b.addr(), Some(&dead), T)
        .await
        .expect("set_master to a dead master");
    // Wait for a failed attempt, so that "down" is a result, not a start.
    wait_until(
        Duration::from_secs(10),
        "a failed connection to the master in the log",
        async || {
            std::fs::read_to_string(b.log_path()).is_ok_and(|log| {
                log.contains("Error condition on socket for SYNC")
                    || log.contains("Unable to connect to MASTER")
            })
        },
    )
    .await;
    let info = replication(&ha, &b.addr()).await;
    assert_eq!(field(&info, "role"), "slave");
    assert_eq!(field(&info, "master_port"), dead_port.to_string());
    assert_eq!(field(&info, "master_link_status"), "down", "{info:?}");

    // A server that is itself unreachable fails fast.
    let started = Instant::now();
    let r = ha.set_master(&dead, None, T).await;
    assert!(matches!(r, Err(RedisError::Connect { .. })), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn set_master_without_a_config_file() {
    let server = RedisServer::start_without_config_file().await;
    let addr = server.addr();
    let ha = PooledHa::new("");
    // Replication switches all the same; only persisting it failed, and the
    // two facts come back apart.
    let master = RedisServer::start().await;
    let persisted = ha
        .set_master(&addr, Some(&master.addr()), T)
        .await
        .expect("replication switched");
    assert_eq!(
        persisted,
        Persisted::No(
            "CONFIG REWRITE failed: ERR The server is running without a config file".into()
        )
    );
    let info = ha.replication(&addr, T).await.unwrap();
    assert_eq!(
        info.get("role").map(String::as_str),
        Some("slave"),
        "{info:?}"
    );
    assert_eq!(
        info.get("master_port").map(String::as_str),
        Some(master.port().to_string().as_str())
    );
}

#[tokio::test]
async fn set_master_refused_while_queueing() {
    // Without CONFIG the transaction is refused as a whole (EXECABORT).
    let a = RedisServer::start().await;
    let b = RedisServer::start_with(&["rename-command CONFIG \"\""]).await;
    let ha = PooledHa::new("");
    match ha.set_master(&b.addr(), Some(&a.addr()), T).await {
        Err(RedisError::Reply { reason, .. }) => {
            assert!(
                reason.starts_with("CONFIG SET masterauth failed: ERR unknown command"),
                "{reason}"
            );
            assert!(reason.contains("EXECABORT"), "{reason}");
        }
        other => panic!("expected a reply error, got {other:?}"),
    }
    // Nothing ran: B is still a master.
    assert_eq!(field(&replication(&ha, &b.addr()).await, "role"), "master");
}
