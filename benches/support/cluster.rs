//! The set-up the benches on live servers share, done over topom's API.

use topom::pb;

use super::common::topom::Client;

/// Creates group `gid` with `addrs` in order (the first becomes its master),
/// without syncing them: the benches start the servers already replicating.
pub async fn add_group(c: &mut Client, gid: u32, addrs: &[String]) {
    c.create_group(pb::CreateGroupRequest { group_id: gid })
        .await
        .unwrap_or_else(|e| panic!("CreateGroup {gid}: {e}"));
    for addr in addrs {
        c.add_group_server(pb::AddGroupServerRequest {
            group_id: gid,
            addr: addr.clone(),
            datacenter: String::new(),
            no_sync: true,
        })
        .await
        .unwrap_or_else(|e| panic!("AddGroupServer {addr} to {gid}: {e}"));
    }
}

/// Assigns all 1024 slots to group `gid`.
pub async fn assign_all(c: &mut Client, gid: u32) {
    c.assign_slots(pb::AssignSlotsRequest {
        mappings: (0..1024)
            .map(|id| pb::SlotMapping {
                id,
                group_id: gid,
                action: None,
            })
            .collect(),
    })
    .await
    .unwrap_or_else(|e| panic!("AssignSlots of every slot to {gid}: {e}"));
}

/// Group 1 on `a` holding every slot, and an empty group 2 on `b`: the start of
/// the benches that flip slots between two groups.
pub async fn two_groups(c: &mut Client, a: String, b: String) {
    add_group(c, 1, &[a]).await;
    add_group(c, 2, &[b]).await;
    assign_all(c, 1).await;
}

/// The slot table's current revision.
pub async fn revision(c: &mut Client) -> u64 {
    c.list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap_or_else(|e| panic!("ListSlots: {e}"))
        .into_inner()
        .revision
}
