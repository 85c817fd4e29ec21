//! Proxies and slot migration against real redis-server processes, with proxies
//! simulated by a small router that speaks WatchSlots.
//!
//! `data`: keys moved under load, across a kill -9, and the progress shown;
//! `proxies`: the barrier, a reconnecting watch, tokens and acks.

#[path = "../common/mod.rs"]
mod common;

mod data;
mod proxies;

use std::collections::BTreeMap;
use std::time::Duration;

use common::redis::RedisServer;
use common::topom::{Client, Options};
use topom::pb;

fn opts(extra: &[&str]) -> Options {
    let mut config = vec!["proxy_lease_ttl = \"3s\"".to_owned()];
    config.extend(extra.iter().map(|s| s.to_string()));
    Options {
        config,
        ..Default::default()
    }
}

async fn two_groups(c: &mut Client, a: &RedisServer, b: &RedisServer) {
    for (gid, r) in [(1, a), (2, b)] {
        c.create_group(pb::CreateGroupRequest { group_id: gid })
            .await
            .unwrap();
        c.add_group_server(pb::AddGroupServerRequest {
            group_id: gid,
            addr: r.addr(),
            datacenter: String::new(),
            no_sync: true,
        })
        .await
        .unwrap();
    }
    c.assign_slots(pb::AssignSlotsRequest {
        mappings: (0..1024)
            .map(|id| pb::SlotMapping {
                id,
                group_id: 1,
                action: None,
            })
            .collect(),
    })
    .await
    .unwrap();
}

async fn wait_moved(c: &mut Client, range: std::ops::Range<u32>, to: u32, within: Duration) {
    common::wait_until(within, "the slots to reach their target", async || {
        let t = c
            .list_slots(pb::ListSlotsRequest {})
            .await
            .unwrap()
            .into_inner();
        range.clone().all(|s| {
            let m = &t.mappings[s as usize];
            m.group_id == to && m.action.is_none()
        })
    })
    .await;
}

async fn keys_on(r: &RedisServer) -> BTreeMap<String, String> {
    // KEYS over 100,000 keys outlasts the client's default 500 ms response
    // timeout on a loaded machine (seen at load 12).
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
    let mut c = redis::Client::open(r.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for chunk in keys.chunks(1000) {
        let vals: Vec<String> = redis::cmd("MGET")
            .arg(chunk)
            .query_async(&mut c)
            .await
            .unwrap();
        out.extend(chunk.iter().cloned().zip(vals));
    }
    out
}
