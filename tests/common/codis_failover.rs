//! A Sentinel failover of a codis-server group under topom, seen from the
//! codis-proxies topom drives: what the codis-proxy tests and the adoption test
//! share.

use std::time::Duration;

use topom::pb;

use super::codis::{CodisProxy, CodisServer};
use super::codis_load::set;
use super::sentinel::SentinelServer;
use super::topom::{Client, get_group, proxies};
use super::wait_until;

/// topom settings under which three Sentinels fail a dead master over within
/// seconds.
pub const FAST_FAILOVER: &[&str] = &[
    "sentinel_quorum = 2",
    "sentinel_down_after = \"1s\"",
    "sentinel_failover_timeout = \"5s\"",
];

/// Adds `sentinels` to topom, resyncs them, and waits until each monitors
/// group 1 of `product` with its replica and knows the other two.
pub async fn watch_group_1(c: &mut Client, sentinels: &[SentinelServer], product: &str) {
    for s in sentinels {
        c.add_sentinel(pb::AddSentinelRequest { addr: s.addr() })
            .await
            .unwrap();
    }
    c.resync_sentinels(pb::ResyncSentinelsRequest {})
        .await
        .unwrap();
    let name = format!("{product}-1");
    let others = (sentinels.len() - 1).to_string();
    wait_until(
        Duration::from_secs(60),
        "sentinels to discover group 1's replica and each other",
        async || {
            let mut ok = true;
            for sen in sentinels {
                let i = c
                    .get_sentinel_info(pb::GetSentinelInfoRequest {
                        addr: sen.addr(),
                        monitored: true,
                    })
                    .await
                    .unwrap()
                    .into_inner();
                ok &= i.monitored.get(&name).is_some_and(|g| {
                    !g.replicas.is_empty() && g.master.get("num-other-sentinels") == Some(&others)
                });
            }
            ok
        },
    )
    .await;
}

/// Kills group 1's master `master`; waits until topom names `replica` the
/// group's master and every proxy applied that revision.
pub async fn fail_over_group_1(c: &mut Client, master: &mut CodisServer, replica: &CodisServer) {
    let new = replica.addr();
    master.kill();
    wait_until(
        Duration::from_secs(60),
        "topom to follow the sentinels' failover of group 1",
        async || get_group(c, 1).await.servers[0].addr == new,
    )
    .await;
    // topom published the new master; the proxies acknowledge that table by
    // a successful fillslots of it.
    let revision = c
        .list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner()
        .revision;
    wait_until(
        Duration::from_secs(30),
        "the codis-proxies to apply the failover's revision",
        async || {
            proxies(c)
                .await
                .iter()
                .all(|p| p.status.as_ref().unwrap().applied_revision >= revision)
        },
    )
    .await;
}

/// Asserts that a write of `key` through each proxy succeeds (within a
/// deadline) and lands on `master`.
pub async fn assert_writes_reach(proxies: &[CodisProxy], key: &str, master: &CodisServer) {
    let mut m = master.conn().await.unwrap();
    for (i, p) in proxies.iter().enumerate() {
        let v = format!("after-{i}");
        let mut conn = p.conn().await.unwrap();
        let mut last = String::new();
        wait_until(
            Duration::from_secs(30),
            "a write through the codis-proxy to reach the new master",
            async || match set(&mut conn, key, &v).await {
                Ok(()) => true,
                Err(e) => {
                    last = e;
                    false
                }
            },
        )
        .await;
        let on_master: Option<String> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut m)
            .await
            .unwrap();
        assert_eq!(
            on_master.as_deref(),
            Some(v.as_str()),
            "through {} ({last})",
            p.proxy_addr()
        );
    }
}
