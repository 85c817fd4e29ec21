//! The HA operations (SetMaster, write pauses, Sentinel administration and
//! `+switch-master` subscriptions) of [`PooledHa`] against real `redis-server`
//! and Sentinel processes.
//!
//! `set_master`: SLAVEOF with CONFIG REWRITE; `pause`: CLIENT PAUSE WRITE;
//! `sentinel_admin`: MONITOR, SET, REMOVE; `subscribe`: `+switch-master`.

#[path = "../common/mod.rs"]
mod common;

mod pause;
mod sentinel_admin;
mod set_master;
mod subscribe;

use std::time::Duration;

use common::wait_until;
use topom::model::InfoMap;
use topom::redis::{Conn, HaAdmin, PooledHa};

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
