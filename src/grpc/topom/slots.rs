//! The slot RPCs: the table, assignments, rebalancing, and slot actions
//! (queueing and removing them, tuning the engine, running one step of it).

use tonic::Status;

use super::TopomService;
use crate::coordinator::Coordinator;
use crate::grpc::convert;
use crate::pb;
use crate::pb::encoded::Encoded;

pub(super) fn list_slots(s: &TopomService) -> Encoded {
    s.slots_cache.get(&s.coordinator.table())
}

pub(super) async fn assign_slots(
    c: &Coordinator,
    r: pb::AssignSlotsRequest,
) -> Result<pb::AssignSlotsResponse, Status> {
    let mut pairs = Vec::new();
    for m in r.mappings {
        if m.action.is_some() {
            return Err(Status::invalid_argument(format!(
                "slot-{}: an assignment must not carry an action",
                m.id
            )));
        }
        pairs.push((m.id, m.group_id));
    }
    let revision = c.assign_slots(&pairs).await?;
    Ok(pb::AssignSlotsResponse { revision })
}

pub(super) async fn assign_slots_offline(
    c: &Coordinator,
    r: pb::AssignSlotsOfflineRequest,
) -> Result<pb::AssignSlotsOfflineResponse, Status> {
    let revision = c.assign_slots_offline(&r.slot_ids).await?;
    Ok(pb::AssignSlotsOfflineResponse { revision })
}

pub(super) async fn rebalance_slots(
    c: &Coordinator,
    r: pb::RebalanceSlotsRequest,
) -> Result<pb::RebalanceSlotsResponse, Status> {
    let confirm = r.confirm;
    let moves = c.rebalance(confirm).await?;
    Ok(pb::RebalanceSlotsResponse {
        moves: moves.iter().map(convert::planned_move).collect(),
        confirmed: confirm,
    })
}

pub(super) async fn create_slot_action(
    c: &Coordinator,
    r: pb::CreateSlotActionRequest,
) -> Result<pb::CreateSlotActionResponse, Status> {
    let m = c.create_slot_action(r.slot_id, r.target_group_id).await?;
    Ok(pb::CreateSlotActionResponse {
        mapping: Some(convert::mapping(&m)),
    })
}

pub(super) async fn create_slot_action_range(
    c: &Coordinator,
    r: pb::CreateSlotActionRangeRequest,
) -> Result<pb::CreateSlotActionRangeResponse, Status> {
    let slot_ids = c
        .create_slot_action_range(r.begin, r.end, r.target_group_id)
        .await?;
    Ok(pb::CreateSlotActionRangeResponse { slot_ids })
}

pub(super) async fn create_slot_action_some(
    c: &Coordinator,
    r: pb::CreateSlotActionSomeRequest,
) -> Result<pb::CreateSlotActionSomeResponse, Status> {
    let slot_ids = c
        .create_slot_action_some(r.source_group_id, r.target_group_id, r.count)
        .await?;
    Ok(pb::CreateSlotActionSomeResponse { slot_ids })
}

pub(super) async fn remove_slot_action(
    c: &Coordinator,
    r: pb::RemoveSlotActionRequest,
) -> Result<pb::RemoveSlotActionResponse, Status> {
    c.remove_slot_action(r.slot_id).await?;
    Ok(pb::RemoveSlotActionResponse {})
}

pub(super) async fn set_slot_action_interval(
    c: &Coordinator,
    r: pb::SetSlotActionIntervalRequest,
) -> Result<pb::SetSlotActionIntervalResponse, Status> {
    c.set_slot_action_interval(r.interval_us).await?;
    Ok(pb::SetSlotActionIntervalResponse {})
}

pub(super) async fn set_slot_action_disabled(
    c: &Coordinator,
    r: pb::SetSlotActionDisabledRequest,
) -> Result<pb::SetSlotActionDisabledResponse, Status> {
    c.set_slot_action_disabled(r.disabled).await?;
    Ok(pb::SetSlotActionDisabledResponse {})
}

pub(super) async fn process_slot_action(
    c: &Coordinator,
) -> Result<pb::ProcessSlotActionResponse, Status> {
    let steps = c.process_slot_action().await?;
    Ok(pb::ProcessSlotActionResponse {
        steps: steps.into_iter().map(convert::slot_step).collect(),
    })
}
