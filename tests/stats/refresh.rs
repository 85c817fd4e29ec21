//! RefreshRedisStats: every server and sentinel probed within its deadline
//! (dead and silent ones too), servers gone from the topology gone from the
//! round, an auth error shown.

use std::time::Duration;

use tonic::Code;
use topom::pb;

use crate::common::redis::RedisServer;
use crate::common::sentinel::SentinelServer;
use crate::common::topom::Topom;
use crate::{common, opts, seed};

/// A port that accepts connections and never answers.
async fn silent_port() -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    (addr, h)
}

fn find<'a>(servers: &'a [pb::ServerStats], addr: &str) -> &'a pb::RedisStats {
    servers
        .iter()
        .find(|s| s.addr == addr)
        .and_then(|s| s.stats.as_ref())
        .unwrap_or_else(|| panic!("no stats for {addr}"))
}

#[tokio::test]
async fn refresh_probes_servers_and_sentinels_each_within_its_deadline() {
    let master = RedisServer::start().await;
    let replica =
        RedisServer::start_with(&[&format!("replicaof 127.0.0.1 {}", master.port())]).await;
    let sentinel = SentinelServer::start(&[("topom_test-1", &master.addr(), 1)], &[]).await;
    let (silent, _hold) = silent_port().await;
    let dead = format!("127.0.0.1:{}", common::ports::free_port());
    let dir = seed(
        &[
            (1, vec![master.addr(), replica.addr()]),
            (2, vec![dead.clone(), silent.clone()]),
        ],
        &[sentinel.addr()],
    )
    .await;
    let t = Topom::start_with(opts(dir, "1h")).await; // no background rounds: we drive them
    let mut c = t.client().await;

    // Wait (bounded) until the replica's link is up and the sentinel has seen it.
    let mut last = None;
    common::wait_until(
        Duration::from_secs(20),
        "replica link up and sentinel seeing the replica",
        async || {
            let r = c
                .refresh_redis_stats(pb::RefreshRedisStatsRequest {
                    timeout: Some(prost_types::Duration {
                        seconds: 0,
                        nanos: 500_000_000,
                    }),
                })
                .await
                .unwrap()
                .into_inner();
            let up = find(&r.servers, &replica.addr())
                .summary
                .as_ref()
                .is_some_and(|s| s.master_link_status == "up");
            let seen = r.sentinels[0]
                .stats
                .as_ref()
                .unwrap()
                .sentinel
                .get("topom_test-1")
                .is_some_and(|g| !g.replicas.is_empty());
            last = Some(r);
            up && seen
        },
    )
    .await;
    let r = last.unwrap();

    let m = find(&r.servers, &master.addr());
    assert!(m.error.is_empty() && !m.timeout, "{}", m.error);
    assert!(
        m.fields["redis_version"].starts_with('7') || m.fields["redis_version"].starts_with('6')
    );
    assert_eq!(m.fields["role"], "master");
    assert!(m.fields.contains_key("master_repl_offset"));
    let ms = m.summary.as_ref().unwrap();
    assert_eq!(ms.role, "master");
    assert!(ms.used_memory > 0 && ms.connected_clients >= 1);

    let rs = find(&r.servers, &replica.addr()).summary.clone().unwrap();
    assert_eq!(rs.role, "slave");
    assert_eq!(rs.master_addr, master.addr());
    assert!(rs.lag_bytes >= 0);

    let d = find(&r.servers, &dead);
    assert!(!d.timeout && d.error.contains(&dead), "dead: {d:?}");
    let s = find(&r.servers, &silent);
    assert!(s.timeout, "silent: {s:?}");
    let elapsed = Duration::try_from(r.elapsed.unwrap()).unwrap();
    assert!(
        elapsed < Duration::from_millis(500 + 400),
        "a silent target cost {elapsed:?} with a 500ms deadline"
    );

    let sen = r.sentinels[0].stats.as_ref().unwrap();
    assert!(
        sen.fields.contains_key("sentinel_masters"),
        "{:?}",
        sen.fields.keys().collect::<Vec<_>>()
    );
    let g = &sen.sentinel["topom_test-1"];
    assert_eq!(
        format!("{}:{}", g.master["ip"], g.master["port"]),
        master.addr()
    );
    assert_eq!(g.replicas[0].fields["port"], replica.port().to_string());

    // GetStats carries the same round, grouped, with the sentinels' masters.
    let snap = c
        .get_stats(pb::GetStatsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stats
        .unwrap();
    assert_eq!(snap.round, r.round);
    assert_eq!(snap.slots.len(), 1024);
    assert_eq!(snap.groups.len(), 2);
    assert_eq!(snap.groups[0].servers.len(), 2);
    assert_eq!(snap.sentinels.as_ref().unwrap().masters[&1], master.addr());

    // Deadlines: 0 and > 60 s are refused.
    for bad in [
        prost_types::Duration {
            seconds: 0,
            nanos: 0,
        },
        prost_types::Duration {
            seconds: 61,
            nanos: 0,
        },
    ] {
        let e = c
            .refresh_redis_stats(pb::RefreshRedisStatsRequest { timeout: Some(bad) })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    }
}

#[tokio::test]
async fn servers_leaving_the_topology_leave_the_stats() {
    let (a, b) = (RedisServer::start().await, RedisServer::start().await);
    let t = Topom::start_with(opts(
        seed(&[(1, vec![a.addr(), b.addr()])], &[]).await,
        "1h",
    ))
    .await;
    let mut c = t.client().await;
    let r = c
        .refresh_redis_stats(pb::RefreshRedisStatsRequest { timeout: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.servers.len(), 2);
    c.delete_group_server(pb::DeleteGroupServerRequest {
        group_id: 1,
        addr: b.addr(),
    })
    .await
    .unwrap();
    let r2 = c
        .refresh_redis_stats(pb::RefreshRedisStatsRequest { timeout: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r2.round, r.round + 1);
    assert_eq!(
        r2.servers
            .iter()
            .map(|s| s.addr.clone())
            .collect::<Vec<_>>(),
        vec![a.addr()]
    );
}

#[tokio::test]
async fn a_password_mismatch_shows_the_auth_error() {
    let locked = RedisServer::start_with(&["requirepass other"]).await;
    let open = RedisServer::start().await;
    let dir = seed(&[(1, vec![locked.addr(), open.addr()])], &[]).await;
    let mut o = opts(dir, "1h");
    o.config.push("product_auth = \"sesame\"".into());
    let t = Topom::start_with(o).await;
    let mut c = t.client().await;
    let r = c
        .refresh_redis_stats(pb::RefreshRedisStatsRequest { timeout: None })
        .await
        .unwrap()
        .into_inner();
    let e = find(&r.servers, &locked.addr());
    assert!(
        e.error.to_lowercase().contains("auth") && e.error.contains(&locked.addr()),
        "{e:?}"
    );
    assert!(e.fields.is_empty());
    // A server with no password refuses AUTH too: that is shown, not hidden.
    let o = find(&r.servers, &open.addr());
    assert!(o.error.contains("AUTH") && o.fields.is_empty(), "{o:?}");
}
