//! What a new user meets in the first hour, against the real binary and real
//! redis-server: one server under two names, a replica that starts replicating
//! by itself, oversized strings, and ports that are not Redis.

mod common;

use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::topom::{Client, Topom, get_group};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use topom::pb;

async fn add(c: &mut Client, gid: u32, addr: &str) -> Result<pb::Group, tonic::Status> {
    c.add_group_server(pb::AddGroupServerRequest {
        group_id: gid,
        addr: addr.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().group.unwrap())
}

async fn role(r: &RedisServer) -> String {
    let info = r.replication().await;
    format!(
        "{} {}:{} {}",
        info.get("role").cloned().unwrap_or_default(),
        info.get("master_host").cloned().unwrap_or_default(),
        info.get("master_port").cloned().unwrap_or_default(),
        info.get("master_link_status").cloned().unwrap_or_default(),
    )
}

#[tokio::test]
async fn one_server_under_two_names_is_refused_naming_both() {
    let t = Topom::start().await;
    let mut c = t.client().await;
    let r = RedisServer::start().await;
    for gid in [1, 3] {
        c.create_group(pb::CreateGroupRequest { group_id: gid })
            .await
            .unwrap();
    }
    add(&mut c, 1, &r.addr()).await.unwrap();
    let alias = format!("localhost:{}", r.port());
    let e = add(&mut c, 3, &alias).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{}", e.message());
    assert!(
        e.message().contains(&alias) && e.message().contains(&r.addr()),
        "{}",
        e.message()
    );
    assert!(e.message().contains("group-1"), "{}", e.message());
    let g3 = get_group(&mut c, 3).await;
    assert!(g3.servers.is_empty(), "{g3:?}");
}

#[tokio::test]
async fn an_added_replica_replicates_by_itself_unless_told_not_to() {
    let t = Topom::start().await;
    let mut c = t.client().await;
    let (m, r, idle) = tokio::join!(
        RedisServer::start(),
        RedisServer::start(),
        RedisServer::start()
    );
    c.create_group(pb::CreateGroupRequest { group_id: 1 })
        .await
        .unwrap();
    let g = add(&mut c, 1, &m.addr()).await.unwrap();
    assert!(g.servers[0].action.is_none(), "a master needs no sync");
    let queued = Instant::now();
    let g = add(&mut c, 1, &r.addr()).await.unwrap();
    let action = g.servers[1].action.as_ref().expect("a queued sync action");
    assert_eq!(action.state, pb::SyncActionState::Pending as i32);
    // The sync task is woken by the queueing, not by its next tick (reported,
    // not asserted: speed is for benchmarks).
    let started = common::wait_until(
        Duration::from_secs(10),
        "the sync action to start",
        async || {
            let g = get_group(&mut c, 1).await;
            g.servers[1]
                .action
                .as_ref()
                .is_none_or(|a| a.state != pb::SyncActionState::Pending as i32)
        },
    )
    .await;
    eprintln!(
        "sync action left pending {:?} after it was queued ({started:?} of polling)",
        queued.elapsed()
    );
    let want = format!("slave 127.0.0.1:{} up", m.port());
    common::wait_until(
        Duration::from_secs(30),
        "the added replica to follow its master",
        async || role(&r).await == want,
    )
    .await;

    // Opted out: left as it was.
    let g = c
        .add_group_server(pb::AddGroupServerRequest {
            group_id: 1,
            addr: idle.addr(),
            no_sync: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    assert!(g.servers[2].action.is_none(), "{g:?}");
    assert!(role(&idle).await.starts_with("master"));
}

#[tokio::test]
async fn oversized_strings_are_refused_naming_field_and_limit() {
    let t = Topom::start().await;
    let mut c = t.client().await;
    let r = RedisServer::start().await;
    c.create_group(pb::CreateGroupRequest { group_id: 1 })
        .await
        .unwrap();
    let e = c
        .add_group_server(pb::AddGroupServerRequest {
            group_id: 1,
            addr: r.addr(),
            datacenter: "x".repeat(3 << 20),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    assert!(
        e.message().contains("`datacenter`") && e.message().contains("128 bytes"),
        "{}",
        e.message()
    );
    let e = c
        .remove_proxy(pb::RemoveProxyRequest {
            token: "t".repeat(129),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    assert!(e.message().contains("`token`"), "{}", e.message());
    // Nothing was stored.
    let g = get_group(&mut c, 1).await;
    assert!(g.servers.is_empty(), "{g:?}");
}

/// A port that answers every connection with `reply` and closes.
async fn answering(reply: &'static [u8]) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(reply).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn ports_that_are_not_redis_are_named_as_such() {
    let t = Topom::start().await;
    let mut c = t.client().await;
    c.create_group(pb::CreateGroupRequest { group_id: 1 })
        .await
        .unwrap();

    let http = answering(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
    let e = add(&mut c, 1, &http).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(
        e.message().contains(&format!(
            "not a Redis server at {http} (it answered \"HTTP/1.1 400"
        )),
        "{}",
        e.message()
    );

    // topom's own gRPC port answers HTTP/2 frames.
    let e = add(&mut c, 1, t.addr()).await.unwrap_err();
    assert!(
        e.message()
            .contains(&format!("not a Redis server at {}", t.addr())),
        "{}",
        e.message()
    );

    // A port that accepts and never answers costs one deadline (1 s), connect
    // and reply together; the margin covers the RPC around it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let started = Instant::now();
    let e = add(&mut c, 1, &silent_addr).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.code(), Code::Unavailable, "{}", e.message());
    assert!(e.message().contains("within 1s"), "{}", e.message());
    assert!(took < Duration::from_millis(1800), "took {took:?}");
    drop(silent);
}
