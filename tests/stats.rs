//! Live stats against real redis-server and Sentinel processes: RefreshRedisStats,
//! the refresh task, GetStats and WatchStats.

mod common;
// The raw-bytes codec of the benches: subscribers compare rounds as sent.
#[allow(dead_code)]
#[path = "../benches/support/raw_grpc.rs"]
mod raw_grpc;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::redis::RedisServer;
use common::sentinel::SentinelServer;
use common::topom::{Options, Topom};
use tonic::Code;
use topom::model::{Group, GroupServer, Sentinel, ServerKind};
use topom::pb;
use topom::store::{Store, StoreBatch, local::LocalStore};

/// Writes groups and sentinels straight into a fresh local store, so that the
/// topology may hold addresses that AddGroupServer would refuse (dead, silent).
async fn seed(groups: &[(u32, Vec<String>)], sentinels: &[String]) -> std::path::PathBuf {
    let dir = tempfile::tempdir().unwrap().keep();
    let store = Store::new(Arc::new(LocalStore::open(&dir).unwrap()), "topom_test");
    let mut batch = StoreBatch::default();
    for (gid, addrs) in groups {
        let mut g = Group::new(*gid);
        for a in addrs {
            g.servers
                .push(GroupServer::new(a.clone(), "", ServerKind::Redis));
        }
        batch.put_group(&g);
    }
    batch.put_sentinel(&Sentinel {
        servers: sentinels.to_vec(),
        out_of_sync: false,
    });
    store.commit(batch).await.unwrap();
    dir
}

fn opts(dir: std::path::PathBuf, period: &str) -> Options {
    Options {
        data_dir: Some(dir),
        config: vec![format!("stats_refresh_period = \"{period}\"")],
        ..Default::default()
    }
}

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

/// Groups 1 and 2 of one redis-server each, and topom refreshing every `period`.
async fn two_groups(period: &str) -> (RedisServer, RedisServer, Topom) {
    let (a, b) = (RedisServer::start().await, RedisServer::start().await);
    let t = Topom::start_with(opts(
        seed(&[(1, vec![a.addr()]), (2, vec![b.addr()])], &[]).await,
        period,
    ))
    .await;
    (a, b, t)
}

#[tokio::test]
async fn watch_stats_streams_rounds_with_filters() {
    let (a, b, t) = two_groups("200ms").await;
    let mut c = t.client().await;

    let mut all = c
        .watch_stats(pb::WatchStatsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = all.message().await.unwrap().unwrap();
    let mut seqs = vec![first.round];
    while seqs.len() < 3 {
        let m = tokio::time::timeout(Duration::from_secs(5), all.message())
            .await
            .expect("a round every 200ms")
            .unwrap()
            .unwrap();
        assert!(
            m.round > *seqs.last().unwrap(),
            "rounds increase: {seqs:?} then {}",
            m.round
        );
        assert!(m.finished_at.unwrap().seconds >= m.started_at.unwrap().seconds);
        assert_eq!(m.servers.len(), 2);
        seqs.push(m.round);
    }

    let mut filtered = c
        .watch_stats(pb::WatchStatsRequest {
            group_ids: vec![2],
            addrs: vec![],
            fields: vec!["used_memory".into(), "connected_clients".into()],
        })
        .await
        .unwrap()
        .into_inner();
    // Skip a possible initial round-0 snapshot; take one with data.
    let m = loop {
        let m = filtered.message().await.unwrap().unwrap();
        if !m.servers.is_empty() {
            break m;
        }
    };
    assert_eq!(m.servers.len(), 1);
    assert_eq!(m.servers[0].addr, b.addr());
    let fields = &m.servers[0].stats.as_ref().unwrap().fields;
    let mut keys: Vec<_> = fields.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["connected_clients", "used_memory"]);

    let mut by_addr = c
        .watch_stats(pb::WatchStatsRequest {
            addrs: vec![a.addr()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let m = loop {
        let m = by_addr.message().await.unwrap().unwrap();
        if !m.servers.is_empty() {
            break m;
        }
    };
    assert_eq!(
        m.servers.iter().map(|s| s.addr.clone()).collect::<Vec<_>>(),
        vec![a.addr()]
    );

    for (req, what) in [
        (
            pb::WatchStatsRequest {
                group_ids: vec![9],
                ..Default::default()
            },
            "group-9",
        ),
        (
            pb::WatchStatsRequest {
                addrs: vec!["127.0.0.1:1".into()],
                ..Default::default()
            },
            "127.0.0.1:1",
        ),
    ] {
        let e = c.watch_stats(req).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        assert!(e.message().contains(what), "{}", e.message());
    }
}

/// One unfiltered WatchStats subscriber on its own connection, rounds as bytes.
async fn raw_watch(t: &Topom) -> tonic::Streaming<bytes::Bytes> {
    let mut g = tonic::client::Grpc::new(t.channel().await);
    g.ready().await.unwrap();
    g.server_streaming(
        tonic::Request::new(pb::WatchStatsRequest::default()),
        http::uri::PathAndQuery::from_static("/topom.v1.Topom/WatchStats"),
        raw_grpc::RawCodec::<pb::WatchStatsRequest>::default(),
    )
    .await
    .unwrap()
    .into_inner()
}

/// Rounds `first..first + n` as one subscriber received them (by round number).
async fn rounds_from(
    s: &mut tonic::Streaming<bytes::Bytes>,
    first: u64,
    n: u64,
) -> std::collections::BTreeMap<u64, bytes::Bytes> {
    use prost::Message;
    let mut got = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.keys().next_back().is_none_or(|&r| r < first + n - 1) {
        let raw = tokio::time::timeout_at(deadline.into(), s.message())
            .await
            .expect("rounds every 100 ms reach round first + n within 30 s")
            .unwrap()
            .expect("the stream stays open");
        let round = pb::WatchStatsResponse::decode(raw.clone()).unwrap().round;
        if round >= first {
            got.insert(round, raw);
        }
    }
    got
}

#[tokio::test]
async fn watchers_of_a_round_receive_the_same_bytes() {
    use prost::Message;
    let (a, b, t) = two_groups("100ms").await;
    let (mut one, mut two) = (raw_watch(&t).await, raw_watch(&t).await);
    let first = pb::WatchStatsResponse::decode(one.message().await.unwrap().unwrap())
        .unwrap()
        .round
        + 1;
    let (r1, r2) = tokio::join!(
        rounds_from(&mut one, first, 3),
        rounds_from(&mut two, first, 3)
    );
    let common: Vec<u64> = r1.keys().filter(|r| r2.contains_key(r)).copied().collect();
    assert!(
        !common.is_empty(),
        "no round seen by both: {:?} {:?}",
        r1.keys(),
        r2.keys()
    );
    for r in common {
        assert_eq!(r1[&r], r2[&r], "round {r} differs between subscribers");
        let m = pb::WatchStatsResponse::decode(r1[&r].clone()).unwrap();
        let mut addrs: Vec<&str> = m.servers.iter().map(|s| s.addr.as_str()).collect();
        addrs.sort();
        let mut want = [a.addr(), b.addr()];
        want.sort();
        assert_eq!(addrs, want, "round {r}");
        for s in &m.servers {
            let fields = &s.stats.as_ref().unwrap().fields;
            assert!(
                fields.contains_key("used_memory"),
                "round {r} {}: {fields:?}",
                s.addr
            );
        }
    }
}

async fn get_stats(
    c: &mut common::topom::Client,
    r: pb::GetStatsRequest,
) -> Result<pb::StatsSnapshot, tonic::Status> {
    c.get_stats(r).await.map(|r| r.into_inner().stats.unwrap())
}

#[tokio::test]
async fn get_stats_filters_groups_servers_and_fields() {
    let (a, b, t) = two_groups("1h").await;
    let mut c = t.client().await;
    c.refresh_redis_stats(pb::RefreshRedisStatsRequest::default())
        .await
        .unwrap();

    let whole = get_stats(&mut c, pb::GetStatsRequest::default())
        .await
        .unwrap();
    assert_eq!(whole.groups.len(), 2);
    let fields = &whole.groups[1].servers[0].stats.as_ref().unwrap().fields;
    assert!(fields.contains_key("redis_version"), "{fields:?}");

    let narrow = get_stats(
        &mut c,
        pb::GetStatsRequest {
            group_ids: vec![2],
            addrs: vec![],
            fields: vec!["used_memory".into()],
        },
    )
    .await
    .unwrap();
    assert_eq!(narrow.round, whole.round);
    assert_eq!(narrow.slots.len(), 1024, "the slots stay whole");
    assert_eq!(narrow.groups.len(), 1);
    let s = &narrow.groups[0].servers[0];
    assert_eq!(s.addr, b.addr());
    let st = s.stats.as_ref().unwrap();
    assert_eq!(st.fields.keys().collect::<Vec<_>>(), ["used_memory"]);
    assert!(st.summary.as_ref().unwrap().used_memory > 0);

    let by_addr = get_stats(
        &mut c,
        pb::GetStatsRequest {
            addrs: vec![a.addr()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let addrs: Vec<&str> = by_addr
        .groups
        .iter()
        .flat_map(|g| g.servers.iter().map(|s| s.addr.as_str()))
        .collect();
    assert_eq!(addrs, [a.addr()]);

    let e = get_stats(
        &mut c,
        pb::GetStatsRequest {
            group_ids: vec![9],
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("group-9"), "{}", e.message());
}

#[tokio::test]
async fn a_stalled_reader_does_not_delay_others_and_shutdown_ends_streams() {
    let servers = [
        RedisServer::start().await,
        RedisServer::start().await,
        RedisServer::start().await,
    ];
    let addrs: Vec<String> = servers.iter().map(|s| s.addr()).collect();
    let mut t = Topom::start_with(opts(seed(&[(1, addrs)], &[]).await, "50ms")).await;

    // The stalled reader: its own connection, never reads. Full rounds (~3 x 5 KB)
    // fill its flow-control window within a few rounds.
    let mut stalled_client = t.client().await;
    let _stalled = stalled_client
        .watch_stats(pb::WatchStatsRequest::default())
        .await
        .unwrap()
        .into_inner();

    let mut c = t.client().await;
    let mut live = c
        .watch_stats(pb::WatchStatsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut last = 0;
    let mut delays = Vec::new();
    let start = Instant::now();
    while delays.len() < 40 {
        let m = tokio::time::timeout(Duration::from_secs(2), live.message())
            .await
            .expect("rounds keep coming")
            .unwrap()
            .unwrap();
        let finished: SystemTime = m.finished_at.unwrap().try_into().unwrap();
        if m.round > 0 {
            delays.push(
                SystemTime::now()
                    .duration_since(finished)
                    .unwrap_or_default(),
            );
        }
        assert!(m.round > last || last == 0);
        last = m.round;
    }
    // 40 rounds at 50 ms: the stalled reader (whose window filled long ago) held
    // nobody back.
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    delays.sort();
    assert!(
        delays[delays.len() - 1] < Duration::from_millis(500),
        "delays {delays:?}"
    );

    c.shutdown(pb::ShutdownRequest {}).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match live.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the stream ends on shutdown");
    assert!(matches!(end, Ok(None)), "clean end, got {end:?}");
    assert_eq!(
        t.wait_exit(Duration::from_secs(15)).await,
        Some(0),
        "{}",
        t.log()
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
