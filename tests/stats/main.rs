//! Live stats against real redis-server and Sentinel processes: RefreshRedisStats,
//! the refresh task, GetStats and WatchStats.
//!
//! `refresh`: RefreshRedisStats rounds; `watch`: WatchStats streams;
//! `get_stats`: GetStats filters.

#[path = "../common/mod.rs"]
mod common;
// The raw-bytes codec of the benches: subscribers compare rounds as sent.
#[allow(dead_code)]
#[path = "../../benches/support/raw_grpc.rs"]
mod raw_grpc;

mod get_stats;
mod refresh;
mod watch;

use std::sync::Arc;

use common::redis::RedisServer;
use common::topom::{Options, Topom};
use topom::model::{Group, GroupServer, Sentinel, ServerKind};
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
