//! A replica whose Redis was started without a config file: CONFIG REWRITE
//! fails there, yet it replicates. The sync action records both facts: synced,
//! with the persisting failure as its warning, never `synced_failed`.

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use common::topom::{Topom, get_group};
use topom::pb;

#[tokio::test]
async fn a_replica_without_a_config_file_ends_synced_with_a_warning() {
    let master = RedisServer::start().await;
    let replica_server = RedisServer::start_without_config_file().await;
    let replica = replica_server.addr();

    let t = Topom::start().await;
    let mut c = t.client().await;
    c.create_group(pb::CreateGroupRequest { group_id: 1 })
        .await
        .unwrap();
    c.add_group_server(pb::AddGroupServerRequest {
        group_id: 1,
        addr: master.addr(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.add_group_server(pb::AddGroupServerRequest {
        group_id: 1,
        addr: replica.clone(),
        ..Default::default()
    })
    .await
    .unwrap();

    let mut action = None;
    common::wait_until(
        Duration::from_secs(30),
        "the replica's sync action to end",
        async || {
            let g = get_group(&mut c, 1).await;
            action = g.servers[1].action.clone();
            action.as_ref().is_some_and(|a| {
                a.state == pb::SyncActionState::Synced as i32
                    || a.state == pb::SyncActionState::SyncedFailed as i32
            })
        },
    )
    .await;
    let a = action.unwrap();
    assert_eq!(a.state, pb::SyncActionState::Synced as i32, "{a:?}");
    assert!(
        a.error.contains("not persisted") && a.error.contains("CONFIG REWRITE failed"),
        "the warning names what failed: {a:?}"
    );

    let info = c
        .get_server_info(pb::GetServerInfoRequest {
            addr: replica.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .fields;
    assert_eq!(
        info.get("role").map(String::as_str),
        Some("slave"),
        "{info:?}"
    );
    assert_eq!(
        info.get("master_port").map(String::as_str),
        Some(master.port().to_string().as_str())
    );
}
