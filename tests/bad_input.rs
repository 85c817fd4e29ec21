//! Every bad input of the foundation issue gets a precise status and a message a
//! person can act on, and writes nothing.

mod common;

use common::redis::RedisServer;
use common::topom::{Client, Options, Topom};
use tonic::Code;
use topom::pb;

/// Everything a bad request could have changed.
async fn state(c: &mut Client) -> (u64, Vec<pb::SlotMapping>, Vec<pb::Group>) {
    let s = c
        .list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner();
    let g = c
        .list_groups(pb::ListGroupsRequest {})
        .await
        .unwrap()
        .into_inner();
    (s.revision, s.mappings, g.groups)
}

/// Asserts `r` failed with `code`, its message mentions every `needle`, and the
/// product is unchanged.
async fn refused<T: std::fmt::Debug>(
    c: &mut Client,
    before: &(u64, Vec<pb::SlotMapping>, Vec<pb::Group>),
    r: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
    needles: &[&str],
) {
    let e = r.expect_err("the request should fail");
    assert_eq!(e.code(), code, "{}", e.message());
    for n in needles {
        assert!(
            e.message().contains(n),
            "{:?} does not mention {n:?}",
            e.message()
        );
    }
    assert_eq!(
        &state(c).await,
        before,
        "a refused request changed the product"
    );
}

#[tokio::test]
async fn bad_input_is_refused_precisely_and_writes_nothing() {
    let t = Topom::start().await;
    let mut c = t.client().await;
    // Queued actions must stay queued here: pause the slot-action engine.
    c.set_slot_action_disabled(pb::SetSlotActionDisabledRequest { disabled: true })
        .await
        .unwrap();
    let (r1, r2) = (RedisServer::start().await, RedisServer::start().await);
    for (gid, r) in [(1, &r1), (2, &r2)] {
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
    c.create_group(pb::CreateGroupRequest { group_id: 3 })
        .await
        .unwrap(); // stays empty
    c.assign_slots(pb::AssignSlotsRequest {
        mappings: (0..8)
            .map(|id| pb::SlotMapping {
                id,
                group_id: 1,
                action: None,
            })
            .collect(),
    })
    .await
    .unwrap();
    c.create_slot_action(pb::CreateSlotActionRequest {
        slot_id: 0,
        target_group_id: 2,
    })
    .await
    .unwrap();
    let before = state(&mut c).await;

    // Group ids: 0, "negative" (a negative int sent as uint32 arrives as a huge
    // number), and > 9999.
    for gid in [0, u32::MAX, 10_000] {
        let r = c
            .create_group(pb::CreateGroupRequest { group_id: gid })
            .await;
        refused(
            &mut c,
            &before,
            r,
            Code::InvalidArgument,
            &["group id", "1..=9999"],
        )
        .await;
    }
    let r = c.create_group(pb::CreateGroupRequest { group_id: 1 }).await;
    refused(&mut c, &before, r, Code::AlreadyExists, &["group-1"]).await;

    // Slot ids >= 1024.
    let r = c
        .create_slot_action(pb::CreateSlotActionRequest {
            slot_id: 1024,
            target_group_id: 2,
        })
        .await;
    refused(
        &mut c,
        &before,
        r,
        Code::InvalidArgument,
        &["slot id 1024", "0..=1023"],
    )
    .await;
    let r = c
        .assign_slots(pb::AssignSlotsRequest {
            mappings: vec![pb::SlotMapping {
                id: 4096,
                group_id: 1,
                action: None,
            }],
        })
        .await;
    refused(&mut c, &before, r, Code::InvalidArgument, &["4096"]).await;
    let r = c
        .assign_slots_offline(pb::AssignSlotsOfflineRequest {
            slot_ids: vec![1, 2000],
        })
        .await;
    refused(&mut c, &before, r, Code::InvalidArgument, &["2000"]).await;

    // A range with begin > end.
    let r = c
        .create_slot_action_range(pb::CreateSlotActionRangeRequest {
            begin: 20,
            end: 10,
            target_group_id: 2,
        })
        .await;
    refused(
        &mut c,
        &before,
        r,
        Code::InvalidArgument,
        &["20", "10", "begin"],
    )
    .await;

    // Addresses that are not host:port.
    for addr in [
        "localhost",
        "127.0.0.1:",
        ":6379",
        "127.0.0.1:99999",
        "127.0.0.1:abc",
        "",
    ] {
        let r = c
            .add_group_server(pb::AddGroupServerRequest {
                group_id: 1,
                addr: addr.into(),
                datacenter: String::new(),
                no_sync: true,
            })
            .await;
        refused(&mut c, &before, r, Code::InvalidArgument, &["host:port"]).await;
    }
    // An address where nothing listens: the connect error.
    let r = c
        .add_group_server(pb::AddGroupServerRequest {
            group_id: 1,
            addr: "127.0.0.1:1".into(),
            datacenter: String::new(),
            no_sync: true,
        })
        .await;
    refused(
        &mut c,
        &before,
        r,
        Code::Unavailable,
        &["127.0.0.1:1", "connect"],
    )
    .await;

    // A server already in another group.
    let r = c
        .add_group_server(pb::AddGroupServerRequest {
            group_id: 2,
            addr: r1.addr(),
            datacenter: String::new(),
            no_sync: true,
        })
        .await;
    refused(
        &mut c,
        &before,
        r,
        Code::AlreadyExists,
        &[&r1.addr(), "group-1"],
    )
    .await;

    // Removing a non-empty group; removing an unknown one.
    let r = c.remove_group(pb::RemoveGroupRequest { group_id: 2 }).await;
    refused(
        &mut c,
        &before,
        r,
        Code::FailedPrecondition,
        &["group-2", "not empty"],
    )
    .await;
    let r = c
        .remove_group(pb::RemoveGroupRequest { group_id: 42 })
        .await;
    refused(&mut c, &before, r, Code::NotFound, &["group-42"]).await;

    // Removing a master that still owns slots.
    let r = c
        .delete_group_server(pb::DeleteGroupServerRequest {
            group_id: 1,
            addr: r1.addr(),
        })
        .await;
    refused(
        &mut c,
        &before,
        r,
        Code::FailedPrecondition,
        &["master", "slot-"],
    )
    .await;
    let r = c
        .delete_group_server(pb::DeleteGroupServerRequest {
            group_id: 1,
            addr: r2.addr(),
        })
        .await;
    refused(&mut c, &before, r, Code::NotFound, &["group-1", &r2.addr()]).await;

    // Assigning to an empty or unknown group.
    let r = c
        .assign_slots(pb::AssignSlotsRequest {
            mappings: vec![pb::SlotMapping {
                id: 9,
                group_id: 3,
                action: None,
            }],
        })
        .await;
    refused(
        &mut c,
        &before,
        r,
        Code::FailedPrecondition,
        &["group-3", "empty"],
    )
    .await;
    let r = c
        .assign_slots(pb::AssignSlotsRequest {
            mappings: vec![pb::SlotMapping {
                id: 9,
                group_id: 77,
                action: None,
            }],
        })
        .await;
    refused(&mut c, &before, r, Code::NotFound, &["group-77"]).await;
    let r = c
        .create_slot_action(pb::CreateSlotActionRequest {
            slot_id: 9,
            target_group_id: 3,
        })
        .await;
    refused(
        &mut c,
        &before,
        r,
        Code::FailedPrecondition,
        &["group-3", "empty"],
    )
    .await;
    // A mapping that carries an action, and a slot listed twice.
    let r = c
        .assign_slots(pb::AssignSlotsRequest {
            mappings: vec![pb::SlotMapping {
                id: 9,
                group_id: 1,
                action: Some(pb::SlotAction {
                    index: 1,
                    state: 1,
                    target_group_id: 2,
                }),
            }],
        })
        .await;
    refused(
        &mut c,
        &before,
        r,
        Code::InvalidArgument,
        &["slot-9", "action"],
    )
    .await;
    let r = c
        .assign_slots(pb::AssignSlotsRequest {
            mappings: vec![
                pb::SlotMapping {
                    id: 9,
                    group_id: 1,
                    action: None,
                },
                pb::SlotMapping {
                    id: 9,
                    group_id: 2,
                    action: None,
                },
            ],
        })
        .await;
    refused(
        &mut c,
        &before,
        r,
        Code::InvalidArgument,
        &["slot-9", "twice"],
    )
    .await;

    // An action on a slot that already has one, alone or inside a range (which
    // fails as a whole).
    let r = c
        .create_slot_action(pb::CreateSlotActionRequest {
            slot_id: 0,
            target_group_id: 2,
        })
        .await;
    refused(
        &mut c,
        &before,
        r,
        Code::AlreadyExists,
        &["slot-0", "already has an action"],
    )
    .await;
    let r = c
        .create_slot_action_range(pb::CreateSlotActionRangeRequest {
            begin: 0,
            end: 7,
            target_group_id: 2,
        })
        .await;
    refused(&mut c, &before, r, Code::AlreadyExists, &["slot-0"]).await;
    let r = c
        .create_slot_action(pb::CreateSlotActionRequest {
            slot_id: 3,
            target_group_id: 1,
        })
        .await;
    refused(
        &mut c,
        &before,
        r,
        Code::FailedPrecondition,
        &["slot-3", "already in group-1"],
    )
    .await;
    let r = c
        .remove_slot_action(pb::RemoveSlotActionRequest { slot_id: 5 })
        .await;
    refused(&mut c, &before, r, Code::NotFound, &["slot-5"]).await;
    let r = c
        .set_slot_action_interval(pb::SetSlotActionIntervalRequest {
            interval_us: 1_000_001,
        })
        .await;
    refused(&mut c, &before, r, Code::InvalidArgument, &["interval"]).await;
    let r = c
        .create_slot_action_some(pb::CreateSlotActionSomeRequest {
            source_group_id: 1,
            target_group_id: 2,
            count: 0,
        })
        .await;
    refused(&mut c, &before, r, Code::InvalidArgument, &["count"]).await;
}

#[tokio::test]
async fn admin_token_guards_mutations_only() {
    let t = Topom::start_with(Options {
        token: Some("s3cret".into()),
        ..Default::default()
    })
    .await;
    let mut anon = t.client().await;
    let mut wrong = t.client_with_token("guess").await;
    let mut admin = t.client_with_token("s3cret").await;
    let before = state(&mut anon).await; // reads are open

    let r = anon
        .create_group(pb::CreateGroupRequest { group_id: 1 })
        .await;
    refused(
        &mut anon,
        &before,
        r,
        Code::Unauthenticated,
        &["CreateGroup", "authorization: Bearer"],
    )
    .await;
    let r = wrong
        .create_group(pb::CreateGroupRequest { group_id: 1 })
        .await;
    refused(
        &mut anon,
        &before,
        r,
        Code::Unauthenticated,
        &["token is wrong"],
    )
    .await;
    let r = wrong.shutdown(pb::ShutdownRequest {}).await;
    refused(&mut anon, &before, r, Code::Unauthenticated, &["Shutdown"]).await;

    admin
        .create_group(pb::CreateGroupRequest { group_id: 1 })
        .await
        .unwrap();
    assert_eq!(state(&mut anon).await.2.len(), 1);
}
