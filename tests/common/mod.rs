//! Fixtures shared by the integration tests: real `etcd` and `redis-server`
//! processes on free loopback ports, and waiting on conditions with deadlines.
//!
//! Each test binary includes this with `mod common;` (one split into
//! `tests/<name>/main.rs` and sibling modules: `#[path = "../common/mod.rs"]
//! mod common;`) and uses what it needs.
//!
//! ```ignore
//! let etcd = common::etcd::EtcdServer::start().await;
//! let redis = common::redis::RedisServer::start().await;
//! common::wait_until(Duration::from_secs(5), "the key to expire", async || {
//!     store.get(key).await.unwrap().is_none()
//! })
//! .await;
//! ```
//!
//! The servers must be installed (`etcd`, `redis-server` on `PATH`, or the paths
//! in `TOPOM_TEST_ETCD` / `TOPOM_TEST_REDIS_SERVER`). A missing binary fails the
//! test with a message; nothing is skipped silently.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod codis;
pub mod codis_failover;
pub mod codis_load;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod fake_codis;
pub mod ports;
pub mod process;
pub mod proxy;
pub mod redis;
pub mod sentinel;
pub mod topom;

use std::time::{Duration, Instant};

/// How often [`wait_until`] re-checks its condition.
const POLL: Duration = Duration::from_millis(20);

/// Waits until `cond` returns true, checking every 20 ms, and returns how long it
/// took. Panics naming `what` if it is still false after `timeout`.
pub async fn wait_until(
    timeout: Duration,
    what: &str,
    mut cond: impl AsyncFnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if cond().await {
            return start.elapsed();
        }
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the watched value satisfies `cond` (no polling), and returns how
/// long it took. Panics naming `what` on timeout or if the sender is gone.
pub async fn wait_for_watch<T>(
    rx: &mut tokio::sync::watch::Receiver<T>,
    timeout: Duration,
    what: &str,
    cond: impl FnMut(&T) -> bool,
) -> Duration {
    let start = Instant::now();
    match tokio::time::timeout(timeout, rx.wait_for(cond)).await {
        Ok(Ok(_)) => start.elapsed(),
        Ok(Err(_)) => panic!("the watch closed while waiting for {what}"),
        Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}
