//! In-process tests of the core over the fakes of [`super::testing`], on paused
//! time: each runs in milliseconds however long the timeouts it crosses.

mod barrier;
mod online;
mod promote;
mod slot_engine;
mod sync;

use std::sync::Arc;

use super::proxies::ProxyStream;
use super::testing::Harness;
use crate::model::Proxy;

/// Registers proxy `token`, opens its stream and renews its lease: a live
/// proxy that acks nothing until the test says so.
async fn live_proxy(h: &Harness, token: &str) -> ProxyStream {
    let c: &Arc<super::Coordinator> = &h.coordinator;
    c.register_proxy(Proxy {
        token: token.to_owned(),
        ..Proxy::default()
    })
    .await
    .expect("register proxy");
    let stream = c.open_proxy_stream(token).expect("open stream");
    stream.heard();
    stream
}
