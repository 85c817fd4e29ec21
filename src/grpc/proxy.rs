//! The `topom.v1.ProxyControl` service: registration and the slot-table stream.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use super::convert;
use crate::coordinator::Coordinator;
use crate::coordinator::proxies::{ProxyReport, ProxyStream, SlotsUpdate};
use crate::model::{self, Proxy};
use crate::pb;
use crate::pb::proxy_control_server::ProxyControl;
use crate::pb::watch_slots_request::Kind as In;
use crate::pb::watch_slots_response::Kind as Out;

/// How long a new stream may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The proxy-facing service.
pub struct ProxyControlService {
    coordinator: Arc<Coordinator>,
    shutdown: CancellationToken,
    /// Where each stream's task runs, so shutdown can wait for them to end.
    streams: TaskTracker,
}

impl ProxyControlService {
    /// A service over `coordinator`; streams end when `shutdown` is cancelled,
    /// and their tasks run in `streams`.
    pub fn new(
        coordinator: Arc<Coordinator>,
        shutdown: CancellationToken,
        streams: TaskTracker,
    ) -> Self {
        ProxyControlService {
            coordinator,
            shutdown,
            streams,
        }
    }
}

type OutStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::WatchSlotsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ProxyControl for ProxyControlService {
    async fn register_proxy(
        &self,
        r: Request<pb::RegisterProxyRequest>,
    ) -> Result<Response<pb::RegisterProxyResponse>, Status> {
        let p = r
            .into_inner()
            .proxy
            .ok_or_else(|| Status::invalid_argument("proxy is required"))?;
        let proxy = Proxy {
            id: 0,
            token: p.token,
            start_time: p
                .start_time
                .and_then(|t| std::time::SystemTime::try_from(t).ok())
                .map(model::format_rfc3339)
                .unwrap_or_default(),
            admin_addr: p.admin_addr,
            proto_type: p.proto_type,
            proxy_addr: p.proxy_addr,
            jodis_path: String::new(),
            product_name: p.product_name,
            pid: p.pid,
            pwd: p.pwd,
            sys: p.sys,
            hostname: p.hostname,
            datacenter: p.datacenter,
            version: p.version,
            kind: model::ProxyKind::Topom,
        };
        let stored = self.coordinator.register_proxy(proxy).await?;
        let s = self.coordinator.proxy_settings();
        Ok(Response::new(pb::RegisterProxyResponse {
            id: stored.id,
            lease_ttl: prost_types::Duration::try_from(s.lease_ttl).ok(),
            heartbeat_interval: prost_types::Duration::try_from(s.heartbeat).ok(),
            product_name: self.coordinator.product().to_owned(),
        }))
    }

    type WatchSlotsStream = OutStream;

    async fn watch_slots(
        &self,
        r: Request<Streaming<pb::WatchSlotsRequest>>,
    ) -> Result<Response<OutStream>, Status> {
        let mut inbound = r.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
            Ok(Ok(Some(pb::WatchSlotsRequest {
                kind: Some(In::Hello(h)),
            }))) => h,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(Status::invalid_argument(
                    "no hello within 10s: the first message must be a hello",
                ));
            }
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be a hello",
                ));
            }
        };
        super::limits::check_typed(&hello, "topom.v1.WatchHello")?;
        let stream = self.coordinator.open_proxy_stream(&hello.token)?;
        stream.heard();
        let (tx, rx) = mpsc::channel(16);
        self.streams.spawn(serve(
            self.coordinator.clone(),
            stream,
            hello,
            inbound,
            tx,
            self.shutdown.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn update(u: SlotsUpdate) -> pb::WatchSlotsResponse {
    pb::WatchSlotsResponse {
        kind: Some(Out::Update(pb::SlotsUpdate {
            epoch: u.epoch,
            revision: u.revision,
            nonce: u.nonce,
            reset: u.reset,
            slots: u.slots.iter().map(convert::slot).collect(),
            sentinel: u.sentinel.as_ref().map(convert::sentinel),
        })),
    }
}

fn heartbeat(revision: u64, ack_seq: u64) -> pb::WatchSlotsResponse {
    pb::WatchSlotsResponse {
        kind: Some(Out::Heartbeat(pb::ServerHeartbeat {
            time: Some(convert::now()),
            revision,
            ack_seq,
        })),
    }
}

/// One proxy's stream: the first update at once, then one update per table
/// revision, heartbeat answers, and idle heartbeats; the proxy's acks, nacks,
/// heartbeats and stats are recorded.
async fn serve(
    c: Arc<Coordinator>,
    stream: ProxyStream,
    hello: pb::WatchHello,
    mut inbound: Streaming<pb::WatchSlotsRequest>,
    tx: mpsc::Sender<Result<pb::WatchSlotsResponse, Status>>,
    shutdown: CancellationToken,
) {
    let token = stream.token().to_owned();
    let have = (!hello.epoch.is_empty()).then_some((hello.epoch.as_str(), hello.applied_revision));
    let mut table = c.watch_table();
    table.borrow_and_update();
    let first = c.proxy_update(&token, have);
    let (mut epoch, mut sent) = (first.epoch.clone(), first.revision);
    tracing::info!(proxy = %token, revision = sent, reset = first.reset, slots = first.slots.len(), "proxy stream opened");
    if tx.send(Ok(update(first))).await.is_err() {
        return;
    }
    let mut idle = tokio::time::interval(c.proxy_settings().heartbeat);
    idle.tick().await;
    loop {
        let out = tokio::select! {
            () = shutdown.cancelled() => break,
            // Stepped down: the proxy must follow the new leader.
            () = c.until_not_leader() => {
                let error = c.stepped_down().await;
                let _ = tx.send(Err(Status::from(error))).await;
                break;
            }
            r = table.changed() => {
                if r.is_err() { break }
                table.borrow_and_update();
                let u = c.proxy_update(&token, Some((&epoch, sent)));
                (epoch, sent) = (u.epoch.clone(), u.revision);
                update(u)
            }
            () = stream.poked() => {
                if stream.removed() { break }
                if !stream.take_reinit() { continue }
                let u = c.proxy_update(&token, None);
                (epoch, sent) = (u.epoch.clone(), u.revision);
                update(u)
            }
            _ = idle.tick() => heartbeat(c.table().revision, 0),
            m = inbound.message() => match m {
                Ok(Some(pb::WatchSlotsRequest { kind: Some(k) })) => {
                    stream.heard();
                    match k {
                        In::Ack(a) => { stream.ack(a.revision, &a.nonce); continue }
                        In::Nack(n) => {
                            tracing::warn!(proxy = %token, revision = n.revision, reason = %n.reason, "proxy rejected an update");
                            stream.nack(n.revision, &n.nonce, &n.reason);
                            continue
                        }
                        In::Heartbeat(h) => heartbeat(c.table().revision, h.seq),
                        In::Stats(s) => { stream.report(report(s)); continue }
                        In::Hello(_) => {
                            let _ = tx.send(Err(Status::invalid_argument("hello may only be the first message"))).await;
                            break;
                        }
                    }
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            },
        };
        if tx.send(Ok(out)).await.is_err() {
            break;
        }
    }
    tracing::info!(proxy = %token, "proxy stream closed");
}

fn report(s: pb::ProxyStats) -> ProxyReport {
    ProxyReport {
        ops_total: s.ops_total,
        ops_fails: s.ops_fails,
        redis_errors: s.redis_errors,
        ops_qps: s.ops_qps,
        sessions_total: s.sessions_total,
        sessions_alive: s.sessions_alive,
        backends: s.backends,
        rss_bytes: s.rss_bytes,
        cpu: s.cpu,
        time: s.time.and_then(|t| std::time::SystemTime::try_from(t).ok()),
    }
}
