//! topom's own `/metrics` and `/healthz` (HTTP on `--metrics-addr`), scraped after
//! known operations against a real redis-server: each counter and gauge must
//! have moved by what those operations account for.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::redis::RedisServer;
use common::topom::{Options, Topom};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use topom::pb;
use topom::pb::proxy_control_client::ProxyControlClient;

/// One HTTP/1.1 GET: (status, content-type, body).
async fn get(addr: &str, path: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("the metrics endpoint answered within 10 s")
        .unwrap();
    let raw = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

/// The samples of an exposition, by series (`name{labels}` as printed).
struct Scrape {
    text: String,
    samples: BTreeMap<String, f64>,
}

impl Scrape {
    async fn take(addr: &str) -> Scrape {
        let (status, ct, text) = get(addr, "/metrics").await;
        assert_eq!(status, 200, "{text}");
        assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
        assert!(text.ends_with("# EOF\n"), "not OpenMetrics: {text}");
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').expect("series value");
                let v = value
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {l:?}"));
                (series.to_owned(), v)
            })
            .collect();
        Scrape { text, samples }
    }

    /// Each series' labels as (name, value) pairs.
    fn labels(&self) -> Vec<(&str, Vec<(&str, &str)>)> {
        self.samples
            .keys()
            .filter_map(|s| {
                let inner = s.split_once('{')?.1.strip_suffix('}')?;
                let pairs = inner
                    .split("\",")
                    .filter_map(|kv| {
                        let (k, v) = kv.split_once("=\"")?;
                        Some((k, v.trim_end_matches('"')))
                    })
                    .collect();
                Some((s.as_str(), pairs))
            })
            .collect()
    }

    /// A series' value; an absent series (a family with no sample yet) is 0.
    fn get(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }
}

fn rpc(method: &str, code: &str) -> String {
    format!(
        "topom_rpc_requests_total{{service=\"topom.v1.Topom\",method=\"{method}\",code=\"{code}\"}}"
    )
}

#[tokio::test]
async fn metrics_move_with_known_operations() {
    let mut redis = RedisServer::start().await;
    let t = Topom::start_with(Options {
        token: Some("T".into()),
        metrics: true,
        config: vec!["stats_refresh_period = \"100ms\"".into()],
        ..Default::default()
    })
    .await;
    let m = t.metrics_addr().expect("a METRICS line").to_owned();

    let (status, _, body) = get(&m, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "SERVING\n"));

    let before = Scrape::take(&m).await;
    assert_eq!(before.get("topom_ownership_lock_held"), 1.0);
    assert_eq!(before.get("topom_slots{state=\"offline\"}"), 1024.0);

    let mut admin = t.client_with_token("T").await;
    admin
        .create_group(pb::CreateGroupRequest { group_id: 1 })
        .await
        .unwrap();
    // Refused by the auth layer: counted all the same, with its code.
    let refused = t
        .client()
        .await
        .create_group(pb::CreateGroupRequest { group_id: 2 })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    admin
        .add_group_server(pb::AddGroupServerRequest {
            group_id: 1,
            addr: redis.addr(),
            datacenter: String::new(),
            ..Default::default()
        })
        .await
        .unwrap();
    // A registered proxy that never opened its stream has no live lease.
    let mut pc =
        ProxyControlClient::with_interceptor(t.channel().await, |mut req: tonic::Request<()>| {
            req.metadata_mut()
                .insert("authorization", "Bearer T".parse().unwrap());
            Ok(req)
        });
    pc.register_proxy(pb::RegisterProxyRequest {
        proxy: Some(pb::Proxy {
            token: "proxy-metrics-1".into(),
            proxy_addr: "127.0.0.1:19000".into(),
            ..Default::default()
        }),
    })
    .await
    .unwrap();

    // Stats rounds run every 100 ms: wait for two that started after the server
    // joined, without assuming how long a round takes.
    let rounds_then = Scrape::take(&m).await.get("topom_stats_rounds_total");
    common::wait_until(
        Duration::from_secs(10),
        "two more stats rounds",
        async || Scrape::take(&m).await.get("topom_stats_rounds_total") >= rounds_then + 2.0,
    )
    .await;
    let after = Scrape::take(&m).await;
    let delta = |s: &str| after.get(s) - before.get(s);

    assert_eq!(delta(&rpc("CreateGroup", "OK")), 1.0, "{}", after.text);
    assert_eq!(delta(&rpc("CreateGroup", "Unauthenticated")), 1.0);
    assert_eq!(delta(&rpc("AddGroupServer", "OK")), 1.0);
    assert_eq!(
        delta(
            "topom_rpc_requests_total{service=\"topom.v1.ProxyControl\",method=\"RegisterProxy\",code=\"OK\"}"
        ),
        1.0
    );
    assert_eq!(
        delta(
            "topom_rpc_duration_seconds_count{service=\"topom.v1.Topom\",method=\"CreateGroup\"}"
        ),
        2.0
    );
    // CreateGroup, AddGroupServer and RegisterProxy each wrote one batch.
    assert!(
        delta("topom_store_write_duration_seconds_count") >= 3.0,
        "{}",
        after.text
    );
    assert_eq!(after.get("topom_store_write_errors_total"), 0.0);
    assert!(
        after.get("topom_slot_table_revision") > before.get("topom_slot_table_revision"),
        "a group change publishes a new revision"
    );
    assert_eq!(after.get("topom_groups"), 1.0);
    assert_eq!(after.get("topom_proxies{state=\"expired\"}"), 1.0);
    assert_eq!(after.get("topom_proxies{state=\"connected\"}"), 0.0);
    assert!(after.get("topom_stats_round_duration_seconds_count") >= 2.0);
    assert_eq!(
        after.get("topom_stats_targets_failed_total{kind=\"server\",reason=\"error\"}"),
        0.0,
        "the server answers"
    );

    // A dead server: the next rounds count it as failed.
    redis.kill();
    common::wait_until(
        Duration::from_secs(10),
        "a failed stats target",
        async || {
            Scrape::take(&m)
                .await
                .get("topom_stats_targets_failed_total{kind=\"server\",reason=\"error\"}")
                >= 1.0
        },
    )
    .await;

    // No label ever carries a key, an address or a proxy token.
    let last = Scrape::take(&m).await;
    let port = redis.port().to_string();
    for (series, labels) in last.labels() {
        for (name, value) in labels {
            let bad = value.contains(':')
                || value.contains("proxy-metrics")
                || (name != "le" && value.contains(&port));
            assert!(!bad, "{series} has label {name}={value:?}");
        }
    }
}

#[tokio::test]
async fn a_metrics_addr_in_use_stops_the_start() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    let err = match Topom::try_start(Options {
        config: vec![format!("metrics_addr = \"{addr}\"")],
        ..Default::default()
    })
    .await
    {
        Ok(_) => panic!("topom started with metrics_addr {addr} in use"),
        Err(e) => e,
    };
    assert!(
        err.contains(&format!("cannot listen on {addr} (metrics_addr)")),
        "{err}"
    );
}

#[tokio::test]
async fn the_metrics_endpoint_stops_with_topom() {
    let mut t = Topom::start_with(Options {
        metrics: true,
        ..Default::default()
    })
    .await;
    let m = t.metrics_addr().unwrap().to_owned();
    assert_eq!(get(&m, "/healthz").await.0, 200);
    assert_eq!(get(&m, "/nope").await.0, 404);
    assert_eq!(t.terminate().await, Some(0), "log:\n{}", t.log());
    assert!(
        tokio::net::TcpStream::connect(&m).await.is_err(),
        "still listening on {m}"
    );
}
