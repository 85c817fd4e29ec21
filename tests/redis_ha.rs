//! The HA operations (SetMaster, write pauses, Sentinel administration and
//! `+switch-master` subscriptions) of [`PooledHa`] against real `redis-server`
//! and Sentinel processes.

mod common;

use topom::redis::MonitorSpec;

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use common::ports::free_port;
use common::redis::RedisServer;
use common::sentinel::SentinelServer;
use common::wait_until;
use topom::model::InfoMap;
use topom::redis::{Conn, HaAdmin, Persisted, PooledHa, RedisError, SwitchMaster, Value};

/// The per-call deadline where the test is not about deadlines.
const T: Duration = Duration::from_secs(5);

/// The monitoring name used throughout (`<product>-<gid>`).
const NAME: &str = "topom_test-1";

/// For masters: start a full sync at once (Redis waits 5 s by default for
/// more replicas to share a diskless transfer).
const NO_SYNC_DELAY: &str = "repl-diskless-sync-delay 0";

fn field<'a>(map: &'a InfoMap, key: &str) -> &'a str {
    map.get(key).map_or("", String::as_str)
}

async fn replication(ha: &PooledHa, addr: &str) -> InfoMap {
    ha.replication(addr, T)
        .await
        .unwrap_or_else(|e| panic!("INFO replication of {addr}: {e}"))
}

async fn wait_link_up(ha: &PooledHa, addr: &str) -> Duration {
    wait_until(
        Duration::from_secs(15),
        "the replication link to come up",
        async || {
            ha.replication(addr, T)
                .await
                .is_ok_and(|i| field(&i, "master_link_status") == "up")
        },
    )
    .await
}

/// A plain client of `addr` (authenticating with `password` if given).
async fn client(addr: &str, password: Option<&str>) -> Conn {
    let mut c = Conn::connect(addr, T).await.expect("connect");
    if let Some(p) = password {
        c.call(&[b"AUTH", p.as_bytes()]).await.expect("AUTH");
    }
    c
}

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

/// Whether `CLIENT LIST` (asked on `c`) shows a client held on a `SET`.
async fn a_set_is_held(c: &mut Conn) -> bool {
    let Ok(list) = c.call(&[b"CLIENT", b"LIST"]).await else {
        return false;
    };
    let list = list.to_text().unwrap_or_default();
    list.lines().any(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        fields.contains(&"cmd=set")
            && fields
                .iter()
                .any(|f| f.strip_prefix("flags=").is_some_and(|v| v.contains('b')))
    })
}

#[tokio::test]
async fn pause_writes_holds_writes_until_unpause() {
    let a = RedisServer::start().await;
    let ha = PooledHa::new("");
    let mut writer = client(&a.addr(), None).await;
    let mut reader = client(&a.addr(), None).await;
    // Long enough that only the unpause can release the write.
    let pause = Duration::from_secs(5);
    ha.pause_writes(&a.addr(), pause, T).await.expect("pause");
    let paused_at = Instant::now();
    let write = tokio::spawn(async move {
        writer
            .call(&[b"SET", b"k", b"v"])
            .await
            .map(|_| Instant::now())
    });
    wait_until(Duration::from_secs(2), "the SET to be held", async || {
        a_set_is_held(&mut reader).await
    })
    .await;
    // Reads still answer.
    let got = reader
        .call(&[b"GET", b"k"])
        .await
        .expect("GET during pause");
    assert_eq!(got, Value::Nil);
    assert!(!write.is_finished());

    let unpaused_at = Instant::now();
    ha.unpause(&a.addr(), T).await.expect("unpause");
    let done_at = tokio::time::timeout(Duration::from_secs(2), write)
        .await
        .expect("the write should complete after the unpause")
        .expect("writer task")
        .expect("SET");
    assert!(done_at >= unpaused_at);
    assert!(done_at - unpaused_at < Duration::from_secs(1));
    assert!(done_at - paused_at < pause, "the pause expired instead");
    eprintln!(
        "write held {:?}, released {:?} after the unpause",
        done_at - paused_at,
        done_at - unpaused_at
    );
    let got = reader.call(&[b"GET", b"k"]).await.expect("GET");
    assert_eq!(got, Value::Bulk(b"v".to_vec()));
}

fn settings() -> Vec<(String, String)> {
    [
        ("down-after-milliseconds", "1000"),
        ("failover-timeout", "5000"),
        ("parallel-syncs", "1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

#[tokio::test]
async fn sentinel_administration() {
    let master = RedisServer::start().await;
    let plain = RedisServer::start().await;
    let sentinel = SentinelServer::start(&[], &[]).await;
    let s = sentinel.addr();
    let ha = PooledHa::new("");

    ha.sentinel_probe(&s, T).await.expect("probe a sentinel");
    match ha.sentinel_probe(&plain.addr(), T).await {
        Err(e @ RedisError::Reply { .. }) => {
            let shown = e.to_string();
            assert!(shown.starts_with(&plain.addr()), "{shown}");
            assert!(shown.contains("not a sentinel"), "{shown}");
        }
        other => panic!("expected an error, got {other:?}"),
    }

    ha.sentinel_monitor(
        &s,
        &MonitorSpec {
            name: NAME,
            master_ip: "127.0.0.1",
            master_port: master.port(),
            quorum: 1,
            settings: &settings(),
        },
        T,
    )
    .await
    .expect("monitor");
    let masters = ha.sentinel_masters(&s, T).await.expect("masters");
    assert_eq!(masters.len(), 1, "{masters:?}");
    let m = &masters[0];
    assert_eq!(m["name"], NAME);
    assert_eq!(m["ip"], "127.0.0.1");
    assert_eq!(m["port"], master.port().to_string());
    assert_eq!(m["quorum"], "1");
    assert_eq!(m["down-after-milliseconds"], "1000");
    assert_eq!(m["failover-timeout"], "5000");
    assert_eq!(m["parallel-syncs"], "1");

    // Errors name the sentinel and the command.
    let r = ha
        .sentinel_monitor(
            &s,
            &MonitorSpec {
                name: NAME,
                master_ip: "127.0.0.1",
                master_port: master.port(),
                quorum: 1,
                settings: &[],
            },
            T,
        )
        .await;
    let shown = r.expect_err("a duplicate monitor").to_string();
    let want = format!(
        "{s}: SENTINEL MONITOR {NAME} 127.0.0.1 {} 1: ERR",
        master.port()
    );
    assert!(shown.starts_with(&want), "{shown}");
    let bad = [("no-such-option".to_owned(), "1".to_owned())];
    let r = ha
        .sentinel_monitor(
            &s,
            &MonitorSpec {
                name: "topom_test-2",
                master_ip: "127.0.0.1",
                master_port: master.port(),
                quorum: 1,
                settings: &bad,
            },
            T,
        )
        .await;
    let shown = r.expect_err("a bad setting").to_string();
    let want = format!("{s}: SENTINEL SET topom_test-2 no-such-option 1: ERR");
    assert!(shown.starts_with(&want), "{shown}");

    assert!(ha.sentinel_remove(&s, NAME, T).await.expect("remove"));
    assert!(!ha.sentinel_remove(&s, NAME, T).await.expect("remove again"));
    // MONITOR had succeeded before the bad SET.
    assert!(
        ha.sentinel_remove(&s, "topom_test-2", T)
            .await
            .expect("remove")
    );
    assert!(
        ha.sentinel_masters(&s, T)
            .await
            .expect("masters")
            .is_empty()
    );
}

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
