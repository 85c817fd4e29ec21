//! The service's life: restart persistence, the ownership lock (no stale lock after
//! kill -9), corrupt records, graceful shutdown, health and reflection.

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use common::topom::{Options, Topom};
use topom::pb;

async fn populate(t: &Topom, r: &RedisServer) -> pb::ListSlotsResponse {
    let mut c = t.client().await;
    c.create_group(pb::CreateGroupRequest { group_id: 7 })
        .await
        .unwrap();
    c.add_group_server(pb::AddGroupServerRequest {
        group_id: 7,
        addr: r.addr(),
        datacenter: "dc1".into(),
        no_sync: true,
    })
    .await
    .unwrap();
    c.assign_slots(pb::AssignSlotsRequest {
        mappings: (100..200)
            .map(|id| pb::SlotMapping {
                id,
                group_id: 7,
                action: None,
            })
            .collect(),
    })
    .await
    .unwrap();
    // Queued actions stay queued: the engine is paused (a persisted setting).
    c.set_slot_action_disabled(pb::SetSlotActionDisabledRequest { disabled: true })
        .await
        .unwrap();
    c.create_slot_action_range(pb::CreateSlotActionRangeRequest {
        begin: 300,
        end: 301,
        target_group_id: 7,
    })
    .await
    .unwrap();
    c.set_slot_action_interval(pb::SetSlotActionIntervalRequest { interval_us: 777 })
        .await
        .unwrap();
    c.list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn restart_keeps_everything() {
    let r = RedisServer::start().await;
    let mut t = Topom::start().await;
    let before = populate(&t, &r).await;
    let groups = t
        .client()
        .await
        .list_groups(pb::ListGroupsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        t.terminate().await,
        Some(0),
        "SIGTERM exits 0; log:\n{}",
        t.log()
    );

    let t2 = Topom::start_with(Options {
        data_dir: Some(t.data_dir.clone()),
        ..Default::default()
    })
    .await;
    let mut c = t2.client().await;
    let after = c
        .list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.mappings, before.mappings);
    assert_eq!(after.slots, before.slots);
    assert_ne!(
        after.epoch, before.epoch,
        "a restart starts a new revision epoch"
    );
    assert_eq!(
        c.list_groups(pb::ListGroupsRequest {})
            .await
            .unwrap()
            .into_inner(),
        groups
    );
    // The slot-action interval is persisted (Codis keeps it in memory only).
    let stored =
        std::fs::read_to_string(t.data_dir.join("data/codis3/topom_test/slot-action")).unwrap();
    assert!(stored.contains("\"interval_us\": 777"), "{stored}");
    assert!(stored.contains("\"disabled\": true"), "{stored}");
    // The store keeps Codis's layout.
    assert!(
        t.data_dir
            .join("data/codis3/topom_test/slots/slot-0150")
            .is_file()
    );
    assert!(
        t.data_dir
            .join("data/codis3/topom_test/group/group-0007")
            .is_file()
    );
}

#[tokio::test]
async fn second_instance_is_refused_and_kill9_leaves_no_stale_lock() {
    let r = RedisServer::start().await;
    let mut first = Topom::start().await;
    populate(&first, &r).await;
    let same = Options {
        data_dir: Some(first.data_dir.clone()),
        ..Default::default()
    };

    let err = Topom::try_start(same.clone())
        .await
        .err()
        .expect("a second owner must be refused");
    assert!(
        err.contains(first.addr()),
        "the refusal names the owner's address: {err}"
    );
    assert!(
        err.contains(&format!("pid {}", first.pid())),
        "and its pid: {err}"
    );
    // Another product in the same store is independent.
    let other = Topom::start_with(Options {
        product: Some("other".into()),
        ..same.clone()
    })
    .await;
    drop(other);

    // kill -9: the kernel drops the file lock; a new owner starts at once with the
    // same data, no manual step.
    first.kill9().await;
    let second = Topom::start_with(same).await;
    let table = second
        .client()
        .await
        .list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(table.mappings[150].group_id, 7);
}

#[tokio::test]
async fn corrupt_record_stops_startup_naming_the_path() {
    let mut t = Topom::start().await;
    t.client()
        .await
        .create_group(pb::CreateGroupRequest { group_id: 3 })
        .await
        .unwrap();
    assert_eq!(t.terminate().await, Some(0));
    let path = t.data_dir.join("data/codis3/topom_test/group/group-0003");
    std::fs::write(&path, b"{\"id\": 3, \"servers\": [").unwrap();
    let err = Topom::try_start(Options {
        data_dir: Some(t.data_dir.clone()),
        ..Default::default()
    })
    .await
    .err()
    .expect("a corrupt record must stop the start");
    // The message names the file itself, which is what the operator edits.
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("corrupt"), "{err}");

    // A record that decodes but contradicts its name: group 2's file says 7.
    std::fs::remove_file(&path).unwrap();
    let path = t.data_dir.join("data/codis3/topom_test/group/group-0002");
    std::fs::write(&path, b"{\"id\": 7, \"servers\": []}").unwrap();
    let err = Topom::try_start(Options {
        data_dir: Some(t.data_dir.clone()),
        ..Default::default()
    })
    .await
    .err()
    .expect("a group stored under another id must stop the start");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("says group 7"), "{err}");
}

#[tokio::test]
async fn shutdown_rpc_drains_and_releases_the_lock() {
    // A grace longer than the exit wait below: a stream that ignored the
    // shutdown would hold the process past it.
    let mut t = Topom::start_with(Options {
        config: vec!["shutdown_grace = \"60s\"".into()],
        ..Default::default()
    })
    .await;
    let mut c = t.client().await;
    // In flight during the shutdown: a proxy's open WatchSlots stream.
    let mut proxy = pb::proxy_control_client::ProxyControlClient::new(t.channel().await);
    proxy
        .register_proxy(pb::RegisterProxyRequest {
            proxy: Some(pb::Proxy {
                token: "p1".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::WatchSlotsRequest {
        kind: Some(pb::watch_slots_request::Kind::Hello(pb::WatchHello {
            token: "p1".into(),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut stream = proxy
        .watch_slots(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().expect("the first update");

    c.shutdown(pb::ShutdownRequest {}).await.unwrap();
    // The server ends the stream itself, cleanly (end of stream, status OK),
    // while the client still holds its side open.
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => return other.map(|_| ()),
            }
        }
    })
    .await
    .expect("the stream was not ended by the shutdown");
    assert!(
        ended.is_ok(),
        "the stream broke instead of ending: {ended:?}"
    );
    assert_eq!(
        t.wait_exit(Duration::from_secs(15)).await,
        Some(0),
        "log:\n{}",
        t.log()
    );
    drop(tx);
    let log = t.log();
    assert!(log.contains("proxy stream closed"), "{log}");
    assert!(
        !log.contains("did not finish within shutdown_grace"),
        "{log}"
    );
    assert!(log.contains("ownership lock released"), "{log}");
    // Released, so a successor starts at once.
    Topom::start_with(Options {
        data_dir: Some(t.data_dir.clone()),
        ..Default::default()
    })
    .await;
}

#[tokio::test]
async fn health_and_reflection() {
    let t = Topom::start().await;
    let channel = t.channel().await;

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["", "topom.v1.Topom"] {
        let s = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            s,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }

    let expected = [
        "topom.v1.Topom",
        "topom.v1.ProxyControl",
        "grpc.health.v1.Health",
    ];
    {
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(channel.clone());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = client
            .server_reflection_info(tokio_stream::iter([req]))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            stream.message().await.unwrap().unwrap().message_response
        else {
            panic!("v1 reflection did not list services")
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        for e in expected {
            assert!(names.iter().any(|n| n == e), "v1 lists {names:?}");
        }
    }
    {
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(channel.clone());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "topom.v1.Topom".into(),
            )),
        };
        let mut stream = client
            .server_reflection_info(tokio_stream::iter([req]))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::FileDescriptorResponse(files)) =
            stream.message().await.unwrap().unwrap().message_response
        else {
            panic!("v1alpha reflection did not describe topom.v1.Topom")
        };
        assert!(!files.file_descriptor_proto.is_empty());
    }
}
