//! The proxies' side of a migration: a silent proxy holds the barrier only
//! until its lease expires, a reconnecting watch gets the changes or a reset,
//! and duplicate tokens and stale or forged acks are refused or ignored.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tonic::Code;
use topom::pb;

use crate::common::proxy::SimProxy;
use crate::common::redis::RedisServer;
use crate::common::topom::{Client, Topom};
use crate::{common, opts, two_groups};

#[tokio::test]
async fn a_silent_proxy_blocks_the_barrier_only_until_its_lease_expires() {
    let (a, b) = (RedisServer::start().await, RedisServer::start().await);
    let t = Topom::start_with(opts(&["migration_barrier_timeout = \"1s\""])).await;
    let mut c = t.client().await;
    two_groups(&mut c, &a, &b).await;
    let good = SimProxy::start(t.addr(), "good").await;
    let silent = SimProxy::start(t.addr(), "silent").await;
    silent.hung.store(true, Ordering::Relaxed);
    c.set_slot_action_disabled(pb::SetSlotActionDisabledRequest { disabled: true })
        .await
        .unwrap();
    c.create_slot_action(pb::CreateSlotActionRequest {
        slot_id: 9,
        target_group_id: 2,
    })
    .await
    .unwrap();
    c.set_slot_action_disabled(pb::SetSlotActionDisabledRequest { disabled: false })
        .await
        .unwrap();

    let mut saw_laggard = false;
    common::wait_until(
        Duration::from_secs(30),
        "the slot to move despite the silent proxy",
        async || {
            if let Ok(r) = c.process_slot_action(pb::ProcessSlotActionRequest {}).await {
                for s in r.into_inner().steps {
                    if s.error.contains("silent") && s.error.contains("proxy silent") {
                        saw_laggard = true;
                    }
                }
            }
            let t = c
                .list_slots(pb::ListSlotsRequest {})
                .await
                .unwrap()
                .into_inner();
            t.mappings[9].group_id == 2 && t.mappings[9].action.is_none()
        },
    )
    .await;
    assert!(
        saw_laggard,
        "the barrier named the silent proxy while its lease was live"
    );
    assert!(
        !silent.serving(),
        "by then the silent proxy has fenced itself"
    );
    assert!(good.serving());
    let proxies = c
        .list_proxies(pb::ListProxiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .proxies;
    let st = |tok: &str| {
        proxies
            .iter()
            .find(|p| p.token == tok)
            .unwrap()
            .status
            .clone()
            .unwrap()
    };
    assert_eq!(st("silent").lease_state, pb::LeaseState::Expired as i32);
    assert_eq!(st("good").lease_state, pb::LeaseState::Live as i32);

    // The removed proxy's stream ends; unknown tokens are NOT_FOUND.
    let e = c
        .remove_proxy(pb::RemoveProxyRequest {
            token: "good".into(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    c.remove_proxy(pb::RemoveProxyRequest {
        token: "silent".into(),
        force: false,
    })
    .await
    .unwrap();
    let e = c
        .remove_proxy(pb::RemoveProxyRequest {
            token: "nope".into(),
            force: true,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn a_reconnecting_proxy_gets_only_the_changes_or_a_reset() {
    let (a, b) = (RedisServer::start().await, RedisServer::start().await);
    let t = Topom::start_with(opts(&[])).await;
    let mut c = t.client().await;
    two_groups(&mut c, &a, &b).await;
    let p = SimProxy::start(t.addr(), "p").await;
    let (epoch, rev) = {
        let tb = p.table.lock().unwrap();
        assert!(tb.updates[0].1, "the first update is a full snapshot");
        assert_eq!(tb.slots.len(), 1024);
        (tb.epoch.clone(), tb.revision)
    };
    drop(p);
    c.assign_slots(pb::AssignSlotsRequest {
        mappings: vec![pb::SlotMapping {
            id: 5,
            group_id: 2,
            action: None,
        }],
    })
    .await
    .unwrap();
    let p = SimProxy::start_from(t.addr(), "p", &epoch, rev).await;
    {
        let tb = p.table.lock().unwrap();
        let (r, reset, n) = tb.updates[0];
        assert!(
            !reset && n == 1 && r > rev,
            "only the change: {:?}",
            tb.updates[0]
        );
        assert_eq!(tb.slots[&5].backend_addr, b.addr());
    }
    drop(p);
    // Too old (beyond the retained history) or another epoch: a reset.
    for _ in 0..130 {
        c.resync_group(pb::ResyncGroupRequest { group_id: 1 })
            .await
            .unwrap();
    }
    let p = SimProxy::start_from(t.addr(), "p", &epoch, rev).await;
    assert!(p.table.lock().unwrap().updates[0].1, "too old: reset");
    drop(p);
    let p = SimProxy::start_from(t.addr(), "p", "another-epoch", rev).await;
    assert!(p.table.lock().unwrap().updates[0].1, "other epoch: reset");
}

#[tokio::test]
async fn a_token_live_elsewhere_is_refused_and_stale_acks_are_ignored() {
    let t = Topom::start_with(opts(&[])).await;
    let p = SimProxy::start(t.addr(), "dup").await;
    assert!(p.serving());
    // Another process (another pid) claiming the same token while the first is
    // connected with a live lease.
    let mut client = topom::pb::proxy_control_client::ProxyControlClient::connect(format!(
        "http://{}",
        t.addr()
    ))
    .await
    .unwrap();
    let e = client
        .register_proxy(pb::RegisterProxyRequest {
            proxy: Some(pb::Proxy {
                token: "dup".into(),
                admin_addr: "127.0.0.1:9".into(),
                pid: 1,
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{}", e.message());
    assert!(e.message().contains("dup"), "{}", e.message());
    let e = client
        .register_proxy(pb::RegisterProxyRequest {
            proxy: Some(pb::Proxy {
                token: String::new(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // An ack for a revision never sent changes nothing.
    let before = p.revision();
    let mut c = t.client().await;
    let applied = applied_of(&mut c, "dup").await;
    assert_eq!(applied, before);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::WatchSlotsRequest {
        kind: Some(topom::pb::watch_slots_request::Kind::Hello(
            pb::WatchHello {
                token: "dup".into(),
                epoch: String::new(),
                applied_revision: 0,
            },
        )),
    })
    .await
    .unwrap();
    let mut s = client
        .watch_slots(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    s.message().await.unwrap().unwrap();
    tx.send(pb::WatchSlotsRequest {
        kind: Some(topom::pb::watch_slots_request::Kind::Ack(pb::SlotsAck {
            revision: before + 1000,
            nonce: "forged".into(),
        })),
    })
    .await
    .unwrap();
    // A heartbeat after it: once it is answered, the forged ack was processed.
    round_trip(&tx, &mut s, 77).await;
    assert_eq!(
        applied_of(&mut c, "dup").await,
        applied,
        "a forged ack is ignored"
    );

    // An ack for the revision just sent, with a nonce that is not the one sent
    // with it, changes nothing either; the true nonce then counts.
    client
        .register_proxy(pb::RegisterProxyRequest {
            proxy: Some(pb::Proxy {
                token: "solo".into(),
                admin_addr: "127.0.0.1:10".into(),
                pid: 2,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(hello("solo")).await.unwrap();
    let mut s = client
        .watch_slots(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let Some(topom::pb::watch_slots_response::Kind::Update(update)) =
        s.message().await.unwrap().unwrap().kind
    else {
        panic!("the first message of a stream is an update");
    };
    assert!(update.revision > 0 && !update.nonce.is_empty());
    tx.send(ack(update.revision, &format!("{}-forged", update.nonce)))
        .await
        .unwrap();
    round_trip(&tx, &mut s, 78).await;
    assert_eq!(
        applied_of(&mut c, "solo").await,
        0,
        "an ack of the current revision with a wrong nonce is ignored"
    );
    tx.send(ack(update.revision, &update.nonce)).await.unwrap();
    round_trip(&tx, &mut s, 79).await;
    assert_eq!(applied_of(&mut c, "solo").await, update.revision);
}

fn hello(token: &str) -> pb::WatchSlotsRequest {
    pb::WatchSlotsRequest {
        kind: Some(topom::pb::watch_slots_request::Kind::Hello(
            pb::WatchHello {
                token: token.into(),
                epoch: String::new(),
                applied_revision: 0,
            },
        )),
    }
}

fn ack(revision: u64, nonce: &str) -> pb::WatchSlotsRequest {
    pb::WatchSlotsRequest {
        kind: Some(topom::pb::watch_slots_request::Kind::Ack(pb::SlotsAck {
            revision,
            nonce: nonce.into(),
        })),
    }
}

/// Sends heartbeat `seq` and waits for its answer: topom handles a stream's
/// messages in order, so everything sent before it has been processed.
async fn round_trip(
    tx: &tokio::sync::mpsc::Sender<pb::WatchSlotsRequest>,
    s: &mut tonic::Streaming<pb::WatchSlotsResponse>,
    seq: u64,
) {
    tx.send(pb::WatchSlotsRequest {
        kind: Some(topom::pb::watch_slots_request::Kind::Heartbeat(
            pb::ProxyHeartbeat { seq },
        )),
    })
    .await
    .unwrap();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), s.message())
            .await
            .expect("heartbeat answer")
            .unwrap()
            .unwrap();
        if let Some(topom::pb::watch_slots_response::Kind::Heartbeat(h)) = m.kind
            && h.ack_seq == seq
        {
            return;
        }
    }
}

/// The revision proxy `token` has applied, as ListProxies shows it.
async fn applied_of(c: &mut Client, token: &str) -> u64 {
    let listed = c
        .list_proxies(pb::ListProxiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .proxies;
    let p = listed.iter().find(|p| p.token == token).expect("listed");
    p.status.as_ref().unwrap().applied_revision
}
