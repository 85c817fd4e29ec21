//! The sync-action RPCs: queueing and removing a server's SLAVEOF transaction,
//! and running one step of them.

use tonic::Status;

use crate::coordinator::Coordinator;
use crate::grpc::convert;
use crate::pb;

pub(super) async fn create_sync_action(
    c: &Coordinator,
    r: pb::CreateSyncActionRequest,
) -> Result<pb::CreateSyncActionResponse, Status> {
    let a = c.create_sync_action(&r.addr).await?;
    Ok(pb::CreateSyncActionResponse {
        action: Some(convert::sync_action(&a)),
    })
}

pub(super) async fn remove_sync_action(
    c: &Coordinator,
    r: pb::RemoveSyncActionRequest,
) -> Result<pb::RemoveSyncActionResponse, Status> {
    c.remove_sync_action(&r.addr).await?;
    Ok(pb::RemoveSyncActionResponse {})
}

pub(super) async fn process_sync_action(
    c: &Coordinator,
) -> Result<pb::ProcessSyncActionResponse, Status> {
    let step = c.process_sync_action().await?;
    Ok(match step {
        None => pb::ProcessSyncActionResponse::default(),
        Some(s) => pb::ProcessSyncActionResponse {
            processed: true,
            addr: s.addr,
            group_id: s.group_id,
            state: convert::sync_state(s.state) as i32,
            error: s.error,
            master_addr: s.master,
        },
    })
}
