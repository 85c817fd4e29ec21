//! `+switch-master` subscriptions: messages parsed and malformed ones skipped,
//! a bounded handshake, a dead sentinel noticed, a real failover announced.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use topom::redis::{Conn, HaAdmin, PooledHa, RedisError, SwitchMaster, Value};

use crate::common::redis::RedisServer;
use crate::common::sentinel::SentinelServer;
use crate::common::wait_until;
use crate::{NAME, NO_SYNC_DELAY, T, client, field, replication, wait_link_up};

#[tokio::test]
async fn switch_master_messages_are_parsed_and_malformed_ones_skipped() {
    // A plain Redis serves the channel: unlike a Sentinel, it lets us PUBLISH.
    let redis = RedisServer::start().await;
    let ha = PooledHa::new("");
    let mut stream = ha
        .subscribe_switch_master(&redis.addr(), T)
        .await
        .expect("subscribe");
    let mut publisher = client(&redis.addr(), None).await;
    for payload in [
        &b"garbage"[..],
        b"topom_test-1 127.0.0.1 notaport 127.0.0.1 2",
        b"topom_test-1 127.0.0.1 6379 127.0.0.1 6380",
    ] {
        let receivers = publisher
            .call(&[b"PUBLISH", b"+switch-master", payload])
            .await
            .expect("PUBLISH");
        assert_eq!(receivers, Value::Int(1));
    }
    let got = tokio::time::timeout(T, stream.next())
        .await
        .expect("a message")
        .expect("a switch");
    assert_eq!(
        got,
        SwitchMaster {
            name: NAME.into(),
            old: "127.0.0.1:6379".into(),
            new: "127.0.0.1:6380".into(),
        }
    );
}

#[tokio::test]
async fn the_subscribe_handshake_is_bounded() {
    // Accepts and reads, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    let deadline = Duration::from_millis(300);
    let started = Instant::now();
    let r = PooledHa::new("")
        .subscribe_switch_master(&addr, deadline)
        .await;
    assert!(
        matches!(r, Err(RedisError::Timeout { .. })),
        "{:?}",
        r.err()
    );
    assert!(started.elapsed() < deadline + Duration::from_millis(300));
}

/// Whether the Sentinel at `addr` lists a subscribed client whose last command
/// was our heartbeat `PING`.
async fn heartbeat_seen(addr: &str) -> bool {
    let Ok(mut c) = Conn::connect(addr, T).await else {
        return false;
    };
    let Ok(list) = c.call(&[b"CLIENT", b"LIST"]).await else {
        return false;
    };
    list.to_text()
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(" sub=1 ") && l.contains(" cmd=ping "))
}

#[tokio::test]
async fn a_subscription_notices_a_dead_sentinel() {
    let mut sentinel = SentinelServer::start(&[], &[]).await;
    let heartbeat = Duration::from_millis(200);
    let pong_timeout = Duration::from_millis(500);
    let ha = PooledHa::new("").with_heartbeat(heartbeat);
    let mut stream = ha
        .subscribe_switch_master(&sentinel.addr(), pong_timeout)
        .await
        .expect("subscribe");
    // Quiet but alive: the heartbeats are answered and next() keeps waiting.
    let addr = sentinel.addr();
    let mut waiting = Box::pin(stream.next());
    wait_until(Duration::from_secs(5), "a heartbeat PING", async || {
        tokio::select! {
            r = &mut waiting => panic!("next() ended on a live sentinel: {r:?}"),
            seen = heartbeat_seen(&addr) => seen,
        }
    })
    .await;
    drop(waiting);

    // A stopped Sentinel keeps the socket open; the heartbeat notices.
    sentinel.signal("STOP");
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("next() should fail on a stopped sentinel");
    let took = started.elapsed();
    sentinel.signal("CONT");
    assert!(matches!(r, Err(RedisError::Timeout { .. })), "{r:?}");
    assert!(
        took < heartbeat + pong_timeout + Duration::from_millis(500),
        "took {took:?}"
    );
    eprintln!("a stopped sentinel noticed after {took:?}");

    // A closed connection ends the subscription at once.
    let mut stream = ha
        .subscribe_switch_master(&sentinel.addr(), T)
        .await
        .expect("subscribe again");
    sentinel.kill();
    let r = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("next() should fail on a killed sentinel");
    assert!(matches!(r, Err(RedisError::Connect { .. })), "{r:?}");
}

#[tokio::test]
async fn sentinels_announce_a_failover() {
    let mut master = RedisServer::start_with(&[NO_SYNC_DELAY]).await;
    let replica =
        RedisServer::start_with(&[&format!("replicaof 127.0.0.1 {}", master.port())]).await;
    let ha = PooledHa::new("");
    // Attached before the Sentinels start, so their first INFO of the master
    // lists it (the next one is 10 s later).
    wait_until(
        Duration::from_secs(10),
        "the replica to attach",
        async || {
            ha.replication(&master.addr(), T)
                .await
                .is_ok_and(|i| field(&i, "connected_slaves") == "1")
        },
    )
    .await;
    wait_link_up(&ha, &replica.addr()).await;

    let mut sentinels = Vec::new();
    for _ in 0..3 {
        let s = SentinelServer::start(
            &[(NAME, &master.addr(), 2)],
            &[&format!("sentinel failover-timeout {NAME} 3000")],
        )
        .await;
        sentinels.push(s);
    }
    let addrs: Vec<String> = sentinels.iter().map(SentinelServer::addr).collect();
    // Each must know the replica and the two other Sentinels (hello messages
    // every 2 s), or there is no quorum and no one to promote.
    let took = wait_until(
        Duration::from_secs(20),
        "the sentinels to know the replica and each other",
        async || {
            for s in &addrs {
                let Ok(masters) = ha.sentinel_masters(s, T).await else {
                    return false;
                };
                let ready = masters.iter().any(|m| {
                    m.get("name").map(String::as_str) == Some(NAME)
                        && m.get("num-slaves").map(String::as_str) == Some("1")
                        && m.get("num-other-sentinels").map(String::as_str) == Some("2")
                });
                if !ready {
                    return false;
                }
            }
            true
        },
    )
    .await;
    eprintln!("sentinels ready after {took:?}");

    let mut streams = Vec::new();
    for s in &addrs {
        streams.push(ha.subscribe_switch_master(s, T).await.expect("subscribe"));
    }
    let old = master.addr();
    let new = replica.addr();
    master.kill();
    let killed_at = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let waits = streams.iter_mut().map(|stream| async move {
        let found = async {
            loop {
                let m = stream.next().await?;
                if m.name == NAME {
                    return Ok::<_, RedisError>((m, killed_at.elapsed()));
                }
            }
        };
        tokio::time::timeout_at(deadline, found).await
    });
    let results = futures::future::join_all(waits).await;
    let mut announced = 0;
    for (addr, r) in addrs.iter().zip(&results) {
        match r {
            Ok(Ok((m, after))) => {
                eprintln!("{addr}: {m:?} {after:?} after the kill");
                assert_eq!(
                    (m.old.as_str(), m.new.as_str()),
                    (old.as_str(), new.as_str())
                );
                announced += 1;
            }
            Ok(Err(e)) => eprintln!("{addr}: subscription failed: {e}"),
            Err(_) => eprintln!("{addr}: no announcement within the deadline"),
        }
    }
    assert!(announced >= 2, "only {announced} of 3 sentinels announced");
    let info = replication(&ha, &replica.addr()).await;
    assert_eq!(field(&info, "role"), "master");
}
