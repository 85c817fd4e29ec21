//! The `topom.v1.ProxyControl` service (registration and the slot-table stream).

use std::pin::Pin;

use tonic::{Request, Response, Status, Streaming};

use crate::pb;
use crate::pb::proxy_control_server::ProxyControl;

/// The proxy-facing service. Registration and WatchSlots arrive with the proxies
/// and migration capability; until then both answer UNIMPLEMENTED.
#[derive(Debug, Default)]
pub struct ProxyControlService;

const MIGRATION: &str =
    "proxies and slot migration (RegisterProxy, WatchSlots, the slot-action engine)";

#[tonic::async_trait]
impl ProxyControl for ProxyControlService {
    async fn register_proxy(
        &self,
        _: Request<pb::RegisterProxyRequest>,
    ) -> Result<Response<pb::RegisterProxyResponse>, Status> {
        Err(Status::unimplemented(format!(
            "RegisterProxy is not implemented yet (it arrives with {MIGRATION})"
        )))
    }

    type WatchSlotsStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::WatchSlotsResponse, Status>> + Send>>;

    async fn watch_slots(
        &self,
        _: Request<Streaming<pb::WatchSlotsRequest>>,
    ) -> Result<Response<Self::WatchSlotsStream>, Status> {
        Err(Status::unimplemented(format!(
            "WatchSlots is not implemented yet (it arrives with {MIGRATION})"
        )))
    }
}
