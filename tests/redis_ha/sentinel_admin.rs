//! Sentinel administration: probe, MONITOR with settings, errors naming the
//! sentinel and the command, REMOVE.

use topom::redis::{HaAdmin, MonitorSpec, PooledHa, RedisError};

use crate::common::redis::RedisServer;
use crate::common::sentinel::SentinelServer;
use crate::{NAME, T};

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
