//! The Sentinel RPCs: the Sentinels watching the product, adding and removing
//! one, and making them all monitor exactly the product's groups again.

use tonic::Status;

use crate::coordinator::Coordinator;
use crate::grpc::convert;
use crate::pb;

pub(super) fn list_sentinels(c: &Coordinator) -> pb::ListSentinelsResponse {
    pb::ListSentinelsResponse {
        sentinel: Some(convert::sentinel(&c.sentinel())),
    }
}

pub(super) async fn add_sentinel(
    c: &Coordinator,
    r: pb::AddSentinelRequest,
) -> Result<pb::AddSentinelResponse, Status> {
    let s = c.add_sentinel(&r.addr).await?;
    Ok(pb::AddSentinelResponse {
        sentinel: Some(convert::sentinel(&s)),
    })
}

pub(super) async fn remove_sentinel(
    c: &Coordinator,
    r: pb::RemoveSentinelRequest,
) -> Result<pb::RemoveSentinelResponse, Status> {
    let s = c.remove_sentinel(&r.addr, r.force).await?;
    Ok(pb::RemoveSentinelResponse {
        sentinel: Some(convert::sentinel(&s)),
    })
}

pub(super) async fn resync_sentinels(
    c: &Coordinator,
) -> Result<pb::ResyncSentinelsResponse, Status> {
    let s = c.resync_sentinels().await?;
    Ok(pb::ResyncSentinelsResponse {
        sentinel: Some(convert::sentinel(&s)),
    })
}
