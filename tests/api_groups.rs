//! Groups over gRPC against real redis-server processes (reference §3.3).

mod common;

use common::redis::RedisServer;
use common::topom::{Options, Topom};
use tonic::Code;
use topom::pb;

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (Code, String) {
    let e = r.expect_err("expected an error");
    (e.code(), e.message().to_owned())
}

#[tokio::test]
async fn group_lifecycle_with_real_servers() {
    let t = Topom::start_with(Options {
        config: vec!["sync_link_timeout = \"120s\"".into()],
        ..Default::default()
    })
    .await;
    let mut c = t.client().await;
    let (r1, r2) = (RedisServer::start().await, RedisServer::start().await);

    let g = c
        .create_group(pb::CreateGroupRequest { group_id: 1 })
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    assert_eq!((g.id, g.servers.len()), (1, 0));

    // The first server becomes the master, the next a replica, in order.
    c.add_group_server(pb::AddGroupServerRequest {
        group_id: 1,
        addr: r1.addr(),
        datacenter: String::new(),
        no_sync: true,
    })
    .await
    .unwrap();
    let g = c
        .add_group_server(pb::AddGroupServerRequest {
            group_id: 1,
            addr: r2.addr(),
            datacenter: "dc2".into(),
            no_sync: true,
        })
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    let addrs: Vec<_> = g.servers.iter().map(|s| s.addr.clone()).collect();
    assert_eq!(addrs, [r1.addr(), r2.addr()]);
    assert_eq!(g.servers[1].datacenter, "dc2");
    assert_eq!(g.servers[0].kind, pb::ServerKind::Redis as i32);

    let listed = c
        .list_groups(pb::ListGroupsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.groups, vec![g.clone()]);
    let got = c
        .get_group(pb::GetGroupRequest { group_id: 1 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.group.unwrap(), g);

    // Replica-group flag.
    let g = c
        .set_replica_group(pb::SetReplicaGroupRequest {
            group_id: 1,
            addr: r2.addr(),
            enabled: true,
        })
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    assert!(g.servers[1].replica_group && !g.servers[0].replica_group);
    c.set_replica_group_all(pb::SetReplicaGroupAllRequest { enabled: true })
        .await
        .unwrap();
    let g = c
        .get_group(pb::GetGroupRequest { group_id: 1 })
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap();
    assert!(g.servers.iter().all(|s| s.replica_group));

    // Sync actions are queued (processing them is another capability). The
    // engine starts a queued action at once, one at a time: keep it busy with
    // a replica whose master is gone (it waits `sync_link_timeout` for a link
    // that never comes), so the actions below stay queued behind it.
    c.create_group(pb::CreateGroupRequest { group_id: 2 })
        .await
        .unwrap();
    let (mut gone, blocked) = (RedisServer::start().await, RedisServer::start().await);
    for r in [&gone, &blocked] {
        c.add_group_server(pb::AddGroupServerRequest {
            group_id: 2,
            addr: r.addr(),
            datacenter: String::new(),
            no_sync: true,
        })
        .await
        .unwrap();
    }
    gone.kill();
    let busy = c
        .create_sync_action(pb::CreateSyncActionRequest {
            addr: blocked.addr(),
        })
        .await
        .unwrap()
        .into_inner()
        .action
        .unwrap();
    assert_eq!(busy.index, 1);
    common::wait_until(
        std::time::Duration::from_secs(10),
        "the engine to take up the blocking action",
        async || {
            let g = c
                .get_group(pb::GetGroupRequest { group_id: 2 })
                .await
                .unwrap()
                .into_inner()
                .group
                .unwrap();
            g.servers[1].action.as_ref().map(|a| a.state)
                == Some(pb::SyncActionState::Syncing as i32)
        },
    )
    .await;
    let a = c
        .create_sync_action(pb::CreateSyncActionRequest { addr: r2.addr() })
        .await
        .unwrap()
        .into_inner()
        .action
        .unwrap();
    assert_eq!((a.index, a.state), (1, pb::SyncActionState::Pending as i32));
    let a1 = c
        .create_sync_action(pb::CreateSyncActionRequest { addr: r1.addr() })
        .await
        .unwrap()
        .into_inner()
        .action
        .unwrap();
    assert_eq!(
        a1.index, 2,
        "the next pending action queues behind the first"
    );
    let (k, msg) = code(
        c.create_sync_action(pb::CreateSyncActionRequest { addr: r2.addr() })
            .await,
    );
    assert_eq!(k, Code::AlreadyExists, "{msg}");
    c.remove_sync_action(pb::RemoveSyncActionRequest { addr: r2.addr() })
        .await
        .unwrap();
    let (k, msg) = code(
        c.remove_sync_action(pb::RemoveSyncActionRequest { addr: r2.addr() })
            .await,
    );
    assert_eq!(k, Code::NotFound, "{msg}");
    let (k, _) = code(
        c.create_sync_action(pb::CreateSyncActionRequest {
            addr: "127.0.0.1:1".into(),
        })
        .await,
    );
    assert_eq!(k, Code::NotFound);

    // The master cannot go while it has replicas.
    let (k, msg) = code(
        c.delete_group_server(pb::DeleteGroupServerRequest {
            group_id: 1,
            addr: r1.addr(),
        })
        .await,
    );
    assert_eq!(k, Code::FailedPrecondition);
    assert!(msg.contains("replica"), "{msg}");
    c.delete_group_server(pb::DeleteGroupServerRequest {
        group_id: 1,
        addr: r2.addr(),
    })
    .await
    .unwrap();

    // ... nor while the group owns slots.
    c.assign_slots(pb::AssignSlotsRequest {
        mappings: (0..4)
            .map(|id| pb::SlotMapping {
                id,
                group_id: 1,
                action: None,
            })
            .collect(),
    })
    .await
    .unwrap();
    let (k, msg) = code(
        c.delete_group_server(pb::DeleteGroupServerRequest {
            group_id: 1,
            addr: r1.addr(),
        })
        .await,
    );
    assert_eq!(k, Code::FailedPrecondition);
    assert!(msg.contains("slot-0"), "{msg}");
    let (k, msg) = code(c.remove_group(pb::RemoveGroupRequest { group_id: 1 }).await);
    assert_eq!(k, Code::FailedPrecondition, "{msg}");

    c.assign_slots_offline(pb::AssignSlotsOfflineRequest {
        slot_ids: (0..4).collect(),
    })
    .await
    .unwrap();
    c.delete_group_server(pb::DeleteGroupServerRequest {
        group_id: 1,
        addr: r1.addr(),
    })
    .await
    .unwrap();
    c.remove_group(pb::RemoveGroupRequest { group_id: 1 })
        .await
        .unwrap();
    let (k, _) = code(c.get_group(pb::GetGroupRequest { group_id: 1 }).await);
    assert_eq!(k, Code::NotFound);
}

#[tokio::test]
async fn server_info_reads_a_real_server() {
    let t = Topom::start().await;
    let mut c = t.client().await;
    let r = RedisServer::start().await;
    let info = c
        .get_server_info(pb::GetServerInfoRequest { addr: r.addr() })
        .await
        .unwrap()
        .into_inner()
        .fields;
    assert!(info["redis_version"].starts_with('7') || info["redis_version"].starts_with('6'));
    assert_eq!(info["role"], "master");
    assert!(info.contains_key("maxmemory"));
    assert_eq!(info["tcp_port"], r.port().to_string());
}

#[tokio::test]
async fn password_protected_servers_use_product_auth() {
    let r = RedisServer::start_with(&["requirepass sesame"]).await;
    let wrong = Topom::start().await;
    let mut c = wrong.client().await;
    c.create_group(pb::CreateGroupRequest { group_id: 1 })
        .await
        .unwrap();
    let (k, msg) = code(
        c.add_group_server(pb::AddGroupServerRequest {
            group_id: 1,
            addr: r.addr(),
            datacenter: String::new(),
            no_sync: true,
        })
        .await,
    );
    assert_eq!(k, Code::FailedPrecondition, "{msg}");
    assert!(
        msg.contains(&r.addr()) && msg.to_lowercase().contains("auth"),
        "{msg}"
    );

    let right = Topom::start_with(common::topom::Options {
        config: vec!["product_auth = \"sesame\"".into()],
        ..Default::default()
    })
    .await;
    let mut c = right.client().await;
    c.create_group(pb::CreateGroupRequest { group_id: 1 })
        .await
        .unwrap();
    c.add_group_server(pb::AddGroupServerRequest {
        group_id: 1,
        addr: r.addr(),
        datacenter: String::new(),
        no_sync: true,
    })
    .await
    .unwrap();
}
