//! The release `topom` binary (what `cargo bench` builds) as a separate process on
//! a store written beforehand through topom's own typed store, so a large
//! topology needs no thousand RPCs and the server's RSS and CPU are its own.
//!
//! The process itself is started by the integration tests' launcher
//! ([`common::topom`](super::common::topom)); this adds the seeding and the
//! connections a streaming bench needs.

use std::ops::Deref;
use std::sync::Arc;

use tonic::transport::Channel;
use topom::model::{Group, GroupServer, ServerKind};
use topom::store::{Store, StoreBatch, local::LocalStore};

use super::common::topom::{Options, Topom};

/// HTTP/2 stream window of the bench clients: hyper's client default (2 MB). A
/// connection gets this much per stream it carries (at least hyper's 5 MB), as if
/// each stream had a connection of its own.
const STREAM_WINDOW: u32 = 2 << 20;

/// A group of redis servers in datacenter `dc1`: the first is the master, the
/// others its replicas.
pub fn group(id: u32, addrs: &[String]) -> Group {
    let mut g = Group::new(id);
    for (j, a) in addrs.iter().enumerate() {
        let mut s = GroupServer::new(a.clone(), "dc1", ServerKind::Redis);
        s.replica_group = j > 0;
        g.servers.push(s);
    }
    g
}

/// A topom process on a seeded store; the store lives as long as it.
pub struct Seeded {
    topom: Topom,
    _data: tempfile::TempDir,
}

impl Deref for Seeded {
    type Target = Topom;

    fn deref(&self) -> &Topom {
        &self.topom
    }
}

impl Seeded {
    /// Writes `batch` into a fresh local store of `product`, then starts topom on
    /// it with the extra TOML `config` lines.
    pub async fn start(product: &str, config: Vec<String>, batch: StoreBatch) -> Seeded {
        let data = tempfile::tempdir().expect("temp dir for the store");
        let raw = Arc::new(LocalStore::open(data.path()).expect("open store"));
        Store::new(raw, product)
            .commit(batch)
            .await
            .expect("write the topology");
        let topom = Topom::start_with(Options {
            data_dir: Some(data.path().to_owned()),
            product: Some(product.to_owned()),
            config,
            ..Default::default()
        })
        .await;
        Seeded { topom, _data: data }
    }

    /// A connection meant to carry up to `streams` concurrent streams.
    pub async fn channel_for(&self, streams: usize) -> Channel {
        let window = (STREAM_WINDOW as usize * streams).clamp(5 << 20, i32::MAX as usize);
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr()))
            .expect("endpoint")
            .tcp_nodelay(true)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(window as u32)
            .connect()
            .await
            .expect("connect to topom")
    }

    /// SIGTERM, then SIGKILL if it has not exited within 15 s.
    pub async fn stop(mut self) {
        if self.topom.terminate().await.is_none() {
            self.topom.kill9().await;
        }
    }
}
