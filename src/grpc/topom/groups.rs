//! The group RPCs: groups and their servers, promoting a replica, resyncing a
//! group's replication, and replica groups (servers that serve reads).

use tonic::Status;

use crate::coordinator::Coordinator;
use crate::grpc::convert;
use crate::pb;

pub(super) fn list_groups(c: &Coordinator) -> pb::ListGroupsResponse {
    pb::ListGroupsResponse {
        groups: c.groups().values().map(convert::group).collect(),
    }
}

pub(super) fn get_group(
    c: &Coordinator,
    r: pb::GetGroupRequest,
) -> Result<pb::GetGroupResponse, Status> {
    let g = c.group(r.group_id)?;
    Ok(pb::GetGroupResponse {
        group: Some(convert::group(&g)),
    })
}

pub(super) async fn create_group(
    c: &Coordinator,
    r: pb::CreateGroupRequest,
) -> Result<pb::CreateGroupResponse, Status> {
    let g = c.create_group(r.group_id).await?;
    Ok(pb::CreateGroupResponse {
        group: Some(convert::group(&g)),
    })
}

pub(super) async fn remove_group(
    c: &Coordinator,
    r: pb::RemoveGroupRequest,
) -> Result<pb::RemoveGroupResponse, Status> {
    c.remove_group(r.group_id).await?;
    Ok(pb::RemoveGroupResponse {})
}

pub(super) async fn add_group_server(
    c: &Coordinator,
    r: pb::AddGroupServerRequest,
) -> Result<pb::AddGroupServerResponse, Status> {
    let g = c
        .add_group_server(r.group_id, &r.addr, &r.datacenter, r.no_sync)
        .await?;
    Ok(pb::AddGroupServerResponse {
        group: Some(convert::group(&g)),
    })
}

pub(super) async fn delete_group_server(
    c: &Coordinator,
    r: pb::DeleteGroupServerRequest,
) -> Result<pb::DeleteGroupServerResponse, Status> {
    let g = c.delete_group_server(r.group_id, &r.addr).await?;
    Ok(pb::DeleteGroupServerResponse {
        group: Some(convert::group(&g)),
    })
}

pub(super) async fn promote_server(
    c: &Coordinator,
    r: pb::PromoteServerRequest,
) -> Result<pb::PromoteServerResponse, Status> {
    let out = c.promote_server(r.group_id, &r.addr).await?;
    Ok(pb::PromoteServerResponse {
        group: Some(convert::group(&out.group)),
        write_pause: prost_types::Duration::try_from(out.write_pause).ok(),
    })
}

pub(super) async fn resync_group(
    c: &Coordinator,
    r: pb::ResyncGroupRequest,
) -> Result<pb::ResyncGroupResponse, Status> {
    let revision = c.resync_group(r.group_id).await?;
    Ok(pb::ResyncGroupResponse { revision })
}

pub(super) async fn resync_group_all(
    c: &Coordinator,
) -> Result<pb::ResyncGroupAllResponse, Status> {
    let revision = c.resync_group_all().await?;
    Ok(pb::ResyncGroupAllResponse { revision })
}

pub(super) async fn set_replica_group(
    c: &Coordinator,
    r: pb::SetReplicaGroupRequest,
) -> Result<pb::SetReplicaGroupResponse, Status> {
    let g = c.set_replica_group(r.group_id, &r.addr, r.enabled).await?;
    Ok(pb::SetReplicaGroupResponse {
        group: Some(convert::group(&g)),
    })
}

pub(super) async fn set_replica_group_all(
    c: &Coordinator,
    r: pb::SetReplicaGroupAllRequest,
) -> Result<pb::SetReplicaGroupAllResponse, Status> {
    c.set_replica_group_all(r.enabled).await?;
    Ok(pb::SetReplicaGroupAllResponse {})
}
