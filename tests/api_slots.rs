//! Slots over gRPC (reference §3.4, §4.1): the table, assign, offline, rebalance,
//! and queueing slot actions.

mod common;

use std::collections::BTreeMap;

use common::redis::RedisServer;
use common::topom::{Client, Topom};
use tonic::Code;
use topom::pb;

async fn group_with_master(c: &mut Client, gid: u32, r: &RedisServer) {
    c.create_group(pb::CreateGroupRequest { group_id: gid })
        .await
        .unwrap();
    c.add_group_server(pb::AddGroupServerRequest {
        group_id: gid,
        addr: r.addr(),
        datacenter: String::new(),
        no_sync: true,
    })
    .await
    .unwrap();
}

async fn slots(c: &mut Client) -> pb::ListSlotsResponse {
    c.list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn owners(t: &pb::ListSlotsResponse) -> BTreeMap<u32, usize> {
    let mut m = BTreeMap::new();
    for s in &t.mappings {
        *m.entry(s.group_id).or_default() += 1;
    }
    m
}

#[tokio::test]
async fn table_assign_and_views() {
    let t = Topom::start().await;
    let mut c = t.client().await;
    let fresh = slots(&mut c).await;
    assert_eq!((fresh.mappings.len(), fresh.slots.len()), (1024, 1024));
    assert!(fresh.revision >= 1 && !fresh.epoch.is_empty());
    for (i, (m, v)) in fresh.mappings.iter().zip(&fresh.slots).enumerate() {
        assert_eq!((m.id, v.id), (i as u32, i as u32));
        assert_eq!(m.group_id, 0);
        assert!(v.backend_addr.is_empty(), "offline slots have no backend");
    }

    let (r1, r2) = (RedisServer::start().await, RedisServer::start().await);
    group_with_master(&mut c, 1, &r1).await;
    group_with_master(&mut c, 2, &r2).await;
    let rev = c
        .assign_slots(pb::AssignSlotsRequest {
            mappings: (0..512)
                .map(|id| pb::SlotMapping {
                    id,
                    group_id: 1,
                    action: None,
                })
                .chain((512..1024).map(|id| pb::SlotMapping {
                    id,
                    group_id: 2,
                    action: None,
                }))
                .collect(),
        })
        .await
        .unwrap()
        .into_inner()
        .revision;
    assert!(rev > fresh.revision);
    let table = slots(&mut c).await;
    assert_eq!(table.revision, rev);
    assert_eq!(owners(&table), BTreeMap::from([(1, 512), (2, 512)]));
    assert_eq!(table.slots[0].backend_addr, r1.addr());
    assert_eq!(table.slots[0].backend_group_id, 1);
    assert_eq!(table.slots[1023].backend_addr, r2.addr());
    assert_eq!(
        table.slots[7].forward_method,
        pb::ForwardMethod::SemiAsync as i32
    );

    // A read changes nothing: the same revision is served again.
    assert_eq!(slots(&mut c).await.revision, rev);

    // Replica groups appear in the view once a flagged replica exists.
    let r3 = RedisServer::start().await;
    c.add_group_server(pb::AddGroupServerRequest {
        group_id: 1,
        addr: r3.addr(),
        datacenter: String::new(),
        no_sync: true,
    })
    .await
    .unwrap();
    c.set_replica_group(pb::SetReplicaGroupRequest {
        group_id: 1,
        addr: r3.addr(),
        enabled: true,
    })
    .await
    .unwrap();
    let table = slots(&mut c).await;
    assert!(table.revision > rev);
    assert_eq!(
        table.slots[0].replica_groups,
        vec![pb::ReplicaGroup {
            addrs: vec![r3.addr()]
        }]
    );
    assert!(table.slots[600].replica_groups.is_empty());

    c.assign_slots_offline(pb::AssignSlotsOfflineRequest {
        slot_ids: vec![0, 1, 2],
    })
    .await
    .unwrap();
    let table = slots(&mut c).await;
    assert_eq!(table.mappings[1].group_id, 0);
    assert!(table.slots[1].backend_addr.is_empty());
    assert_eq!(owners(&table)[&1], 509);
}

#[tokio::test]
async fn rebalance_plans_and_queues() {
    let t = Topom::start().await;
    let mut c = t.client().await;
    // Queued actions must stay queued here: pause the slot-action engine.
    c.set_slot_action_disabled(pb::SetSlotActionDisabledRequest { disabled: true })
        .await
        .unwrap();
    let (k, msg) = {
        let e = c
            .rebalance_slots(pb::RebalanceSlotsRequest { confirm: false })
            .await
            .unwrap_err();
        (e.code(), e.message().to_owned())
    };
    assert_eq!(k, Code::FailedPrecondition, "{msg}");
    assert!(msg.contains("no valid group"), "{msg}");

    let (r1, r2) = (RedisServer::start().await, RedisServer::start().await);
    group_with_master(&mut c, 1, &r1).await;
    group_with_master(&mut c, 2, &r2).await;
    let before = slots(&mut c).await;
    let plan = c
        .rebalance_slots(pb::RebalanceSlotsRequest { confirm: false })
        .await
        .unwrap()
        .into_inner();
    assert!(!plan.confirmed);
    assert_eq!(plan.moves.len(), 1024);
    let to1 = plan.moves.iter().filter(|m| m.to_group_id == 1).count();
    assert_eq!(to1, 512);
    assert_eq!(
        slots(&mut c).await.revision,
        before.revision,
        "a plan writes nothing"
    );

    let done = c
        .rebalance_slots(pb::RebalanceSlotsRequest { confirm: true })
        .await
        .unwrap()
        .into_inner();
    assert!(done.confirmed);
    assert_eq!(done.moves, plan.moves);
    let table = slots(&mut c).await;
    let mut last_index = 0;
    for m in &table.mappings {
        let a = m.action.as_ref().expect("every slot is queued");
        assert_eq!(a.state, pb::SlotActionState::Pending as i32);
        assert!(a.index > last_index, "indexes grow in slot order");
        last_index = a.index;
    }
    // Queued work is not planned twice.
    let again = c
        .rebalance_slots(pb::RebalanceSlotsRequest { confirm: false })
        .await
        .unwrap()
        .into_inner();
    assert!(again.moves.is_empty(), "{:?}", again.moves.first());
}

#[tokio::test]
async fn slot_actions_are_queued_and_removed() {
    let t = Topom::start().await;
    let mut c = t.client().await;
    // Queued actions must stay queued here: pause the slot-action engine.
    c.set_slot_action_disabled(pb::SetSlotActionDisabledRequest { disabled: true })
        .await
        .unwrap();
    let (r1, r2) = (RedisServer::start().await, RedisServer::start().await);
    group_with_master(&mut c, 1, &r1).await;
    group_with_master(&mut c, 2, &r2).await;
    c.assign_slots(pb::AssignSlotsRequest {
        mappings: (0..1024)
            .map(|id| pb::SlotMapping {
                id,
                group_id: 1,
                action: None,
            })
            .collect(),
    })
    .await
    .unwrap();

    let m = c
        .create_slot_action(pb::CreateSlotActionRequest {
            slot_id: 5,
            target_group_id: 2,
        })
        .await
        .unwrap()
        .into_inner()
        .mapping
        .unwrap();
    let a = m.action.unwrap();
    assert_eq!((m.id, m.group_id, a.target_group_id, a.index), (5, 1, 2, 1));

    let ids = c
        .create_slot_action_range(pb::CreateSlotActionRangeRequest {
            begin: 10,
            end: 19,
            target_group_id: 2,
        })
        .await
        .unwrap()
        .into_inner()
        .slot_ids;
    assert_eq!(ids, (10..20).collect::<Vec<_>>());

    let some = c
        .create_slot_action_some(pb::CreateSlotActionSomeRequest {
            source_group_id: 1,
            target_group_id: 2,
            count: 3,
        })
        .await
        .unwrap()
        .into_inner()
        .slot_ids;
    assert_eq!(
        some,
        vec![0, 1, 2],
        "idle slots of the source, in slot order"
    );

    let table = slots(&mut c).await;
    let idx = |s: usize| table.mappings[s].action.as_ref().unwrap().index;
    assert!(idx(5) < idx(10) && idx(19) < idx(0));
    // Pending actions do not change what proxies do yet.
    assert_eq!(table.slots[5].backend_addr, r1.addr());

    c.remove_slot_action(pb::RemoveSlotActionRequest { slot_id: 5 })
        .await
        .unwrap();
    let table = slots(&mut c).await;
    assert!(table.mappings[5].action.is_none());
    assert_eq!(table.mappings[5].group_id, 1);

    c.set_slot_action_interval(pb::SetSlotActionIntervalRequest { interval_us: 2500 })
        .await
        .unwrap();
    c.set_slot_action_disabled(pb::SetSlotActionDisabledRequest { disabled: true })
        .await
        .unwrap();

    // Assigning over a pending action replaces it (Codis behaviour).
    c.assign_slots(pb::AssignSlotsRequest {
        mappings: vec![pb::SlotMapping {
            id: 10,
            group_id: 2,
            action: None,
        }],
    })
    .await
    .unwrap();
    let table = slots(&mut c).await;
    assert!(table.mappings[10].action.is_none());
    assert_eq!(table.mappings[10].group_id, 2);
}
