//! WatchStats: rounds streamed with filters, the same bytes to every
//! subscriber of a round, a stalled reader holding nobody back, streams ended
//! on shutdown.

use std::time::{Duration, Instant, SystemTime};

use tonic::Code;
use topom::pb;

use crate::common::redis::RedisServer;
use crate::common::topom::Topom;
use crate::{opts, raw_grpc, seed, two_groups};

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
