//! topom drives unmodified codis-proxy processes (the real Codis 3.2 binaries)
//! over their HTTP admin API, in front of real codis-server groups: a checked
//! load through two proxies while 256 slots migrate, a Sentinel failover both
//! proxies follow, a stopped proxy holding the barrier until it is removed with
//! force, and add-codis of what is not a codis-proxy of this product.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::codis::{CodisProxy, CodisServer};
use common::codis_failover::{
    FAST_FAILOVER, assert_writes_reach, fail_over_group_1, watch_group_1,
};
use common::codis_load::{
    BULK, assert_keys_on_owners, assert_read_back, bulk_key, crossed_load, fill_bulk, set,
};
use common::sentinel::SentinelServer;
use common::topom::{Client, Options, Topom, proxies, wait_slot_actions_done};
use common::wait_until;
use topom::model::slot_of;
use topom::pb;

const PRODUCT: &str = "cpx";

/// topom with two codis-server groups (master + replica each), slots 0-511 on
/// group 1 and 512-1023 on group 2, and `proxies` codis-proxies added with
/// add-codis (the first through the `topom-admin` CLI).
struct Deployment {
    topom: Topom,
    /// m1, r1, m2, r2.
    servers: Vec<CodisServer>,
    proxies: Vec<CodisProxy>,
    tokens: Vec<String>,
}

async fn deployment(proxies: usize, config: &[&str]) -> Deployment {
    let mut servers = Vec::new();
    for _ in 0..4 {
        servers.push(CodisServer::start().await);
    }
    let topom = Topom::start_with(Options {
        product: Some(PRODUCT.into()),
        config: config.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    })
    .await;
    let mut c = topom.client().await;
    for (gid, pair) in [(1, &servers[0..2]), (2, &servers[2..4])] {
        c.create_group(pb::CreateGroupRequest { group_id: gid })
            .await
            .unwrap();
        for s in pair {
            c.add_group_server(pb::AddGroupServerRequest {
                group_id: gid,
                addr: s.addr(),
                datacenter: String::new(),
                no_sync: false,
            })
            .await
            .unwrap();
        }
    }
    c.assign_slots(pb::AssignSlotsRequest {
        mappings: (0..1024)
            .map(|id| pb::SlotMapping {
                id,
                group_id: if id < 512 { 1 } else { 2 },
                action: None,
            })
            .collect(),
    })
    .await
    .unwrap();
    let mut started = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..proxies {
        let p = CodisProxy::start(PRODUCT, "").await;
        let token = if i == 0 {
            let out = admin(&topom, &["proxy", "add-codis", p.admin_addr()]).await;
            out.strip_prefix("added codis-proxy ")
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or_else(|| panic!("unexpected add-codis output: {out}"))
                .to_owned()
        } else {
            c.add_codis_proxy(pb::AddCodisProxyRequest {
                admin_addr: p.admin_addr().into(),
            })
            .await
            .unwrap_or_else(|e| panic!("add-codis: {e}\n{}", p.log()))
            .into_inner()
            .proxy
            .unwrap()
            .token
        };
        tokens.push(token);
        started.push(p);
    }
    Deployment {
        topom,
        servers,
        proxies: started,
        tokens,
    }
}

/// Runs `topom-admin --addr ADDR args...`; panics unless it succeeds.
async fn admin(t: &Topom, args: &[&str]) -> String {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_topom")).with_file_name("topom-admin");
    assert!(
        bin.is_file(),
        "{} not found: build it first with `cargo build -p topom-admin`",
        bin.display()
    );
    let out = tokio::process::Command::new(bin)
        .arg("--addr")
        .arg(t.addr())
        .args(args)
        .output()
        .await
        .expect("run topom-admin");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "topom-admin {args:?}: {stdout}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        t.log()
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checked_load_through_two_codis_proxies_while_256_slots_migrate() {
    let d = deployment(2, &[]).await;
    let mut c = d.topom.client().await;
    let listed = proxies(&mut c).await;
    assert_eq!(listed.len(), 2);
    for p in &listed {
        assert_eq!(p.kind, pb::ProxyKind::Codis as i32, "{p:?}");
        let st = p.status.clone().unwrap();
        assert_eq!(st.codis_state, pb::CodisProxyState::Online as i32, "{p:?}");
    }
    // Bulk data so the migration takes a while; written through a proxy.
    fill_bulk(&d.proxies[0], BULK).await;
    let keys: Vec<String> = (0..2000).map(|i| format!("k:{i}")).collect();
    let moving = keys.iter().filter(|k| slot_of(k.as_bytes()) < 256).count();
    assert!(
        moving > 300,
        "only {moving} checked keys in the moving slots"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let load = crossed_load(&keys, &d.proxies[0], &d.proxies[1], stop.clone());
    let migrate = async {
        // Let the load run on the old table first.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let queued = c
            .create_slot_action_range(pb::CreateSlotActionRangeRequest {
                begin: 0,
                end: 255,
                target_group_id: 2,
            })
            .await
            .unwrap()
            .into_inner()
            .slot_ids;
        assert_eq!(queued.len(), 256);
        wait_slot_actions_done(
            &mut c,
            Duration::from_secs(300),
            "256 slots to migrate under load",
        )
        .await;
        stop.store(true, Ordering::Relaxed);
    };
    let ((last, writes, retries), ()) = tokio::join!(load, migrate);
    eprintln!("checked load: {writes} acknowledged writes, {retries} retried");
    assert_eq!(last.len(), keys.len());

    let table = c
        .list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner();
    for m in &table.mappings {
        let want = if m.id < 512 && m.id >= 256 { 1 } else { 2 };
        assert_eq!(m.group_id, want, "slot {}", m.id);
    }
    // Through both proxies: the last acknowledged value of every key.
    for p in &d.proxies {
        assert_read_back(p, &last).await;
    }
    // On the servers: every key on the master of the group owning its slot
    // only; none lost (the bulk keys too).
    let mut masters = [
        d.servers[0].conn().await.unwrap(),
        d.servers[2].conn().await.unwrap(),
    ];
    let group_of: Vec<u32> = table.mappings.iter().map(|m| m.group_id).collect();
    let bulk = (0..BULK).map(bulk_key);
    let checked =
        assert_keys_on_owners(&mut masters, &group_of, keys.iter().cloned().chain(bulk)).await;
    assert_eq!(checked, 2000 + BULK);
    // Both proxies acknowledged the final revision (the barrier they are in).
    for p in proxies(&mut c).await {
        let st = p.status.unwrap();
        assert!(
            st.applied_revision >= table.revision,
            "proxy {} applied {} < {}",
            p.token,
            st.applied_revision,
            table.revision
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_codis_proxies_serve_the_new_master_after_a_sentinel_failover() {
    let sentinels = [
        SentinelServer::start(&[], &[]).await,
        SentinelServer::start(&[], &[]).await,
        SentinelServer::start(&[], &[]).await,
    ];
    let mut d = deployment(2, FAST_FAILOVER).await;
    let mut c = d.topom.client().await;
    watch_group_1(&mut c, &sentinels, PRODUCT).await;
    // A key of group 1, before the failover.
    let key = (0..)
        .map(|i| format!("f:{i}"))
        .find(|k| slot_of(k.as_bytes()) < 512)
        .unwrap();
    for p in &d.proxies {
        let mut conn = p.conn().await.unwrap();
        set(&mut conn, &key, "before").await.unwrap();
    }
    let (master, replica) = d.servers.split_at_mut(1);
    fail_over_group_1(&mut c, &mut master[0], &replica[0]).await;
    // Both proxies took that table from topom and serve the new master.
    assert_writes_reach(&d.proxies, &key, &d.servers[1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_codis_proxy_holds_the_barrier_until_removed_with_force() {
    let d = deployment(
        2,
        &[
            "proxy_lease_ttl = \"2s\"",
            "migration_barrier_timeout = \"2s\"",
        ],
    )
    .await;
    let mut c = d.topom.client().await;
    // The stats of a codis-proxy appear in GetStats like any proxy's.
    wait_until(
        Duration::from_secs(30),
        "codis-proxy stats in GetStats",
        async || {
            let s = c
                .get_stats(pb::GetStatsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .stats
                .unwrap_or_default();
            d.tokens.iter().all(|t| {
                s.proxies.iter().any(|e| {
                    e.proxy.as_ref().is_some_and(|p| p.token == *t)
                        && e.stats.as_ref().is_some_and(|st| st.rss_bytes > 0)
                })
            })
        },
    )
    .await;
    let stopped = &d.proxies[1];
    let token = &d.tokens[1];
    stopped.signal("STOP");
    c.create_slot_action(pb::CreateSlotActionRequest {
        slot_id: 300,
        target_group_id: 2,
    })
    .await
    .unwrap();
    // The barrier names the stopped proxy...
    let mut status = String::new();
    wait_until(
        Duration::from_secs(60),
        "the slot-action status to name the stopped codis-proxy",
        async || {
            let s = c
                .get_stats(pb::GetStatsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .stats
                .unwrap_or_default();
            status = s.slot_action.map(|a| a.status).unwrap_or_default();
            status.contains(token.as_str())
        },
    )
    .await;
    assert!(status.contains("codis-proxy"), "{status}");
    // ...and is not dropped by any lease: well past the 3 s a topom proxy's
    // lease would last, the slot has not moved.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let m = c
        .list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner()
        .mappings
        .remove(300);
    assert!(
        m.action.is_some() && m.group_id == 1,
        "slot 300 moved with a codis-proxy stopped: {m:?}"
    );
    let listed = proxies(&mut c).await;
    let st = listed
        .iter()
        .find(|p| p.token == *token)
        .unwrap()
        .status
        .clone()
        .unwrap();
    assert_eq!(
        st.codis_state,
        pb::CodisProxyState::Unreachable as i32,
        "{st:?}"
    );
    assert!(!st.last_error.is_empty());
    // RemoveProxy without force fails (the shutdown gets no answer); with
    // force the migration goes on.
    let err = c
        .remove_proxy(pb::RemoveProxyRequest {
            token: token.clone(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    c.remove_proxy(pb::RemoveProxyRequest {
        token: token.clone(),
        force: true,
    })
    .await
    .unwrap();
    wait_until(
        Duration::from_secs(60),
        "slot 300 to finish moving once the stopped proxy is removed",
        async || {
            let m = &c
                .list_slots(pb::ListSlotsRequest {})
                .await
                .unwrap()
                .into_inner()
                .mappings[300];
            m.action.is_none() && m.group_id == 2
        },
    )
    .await;
    assert_eq!(proxies(&mut c).await.len(), 1);
    // The remaining proxy serves the moved slot.
    let key = (0..)
        .map(|i| format!("s:{i}"))
        .find(|k| slot_of(k.as_bytes()) == 300)
        .unwrap();
    let mut conn = d.proxies[0].conn().await.unwrap();
    set(&mut conn, &key, "v").await.unwrap();
    let mut m2 = d.servers[2].conn().await.unwrap();
    let v: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut m2)
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    stopped.signal("CONT");
}

async fn refused(c: &mut Client, admin_addr: &str, code: tonic::Code, text: &str) {
    let err = c
        .add_codis_proxy(pb::AddCodisProxyRequest {
            admin_addr: admin_addr.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), code, "{admin_addr}: {err:?}");
    assert!(
        err.message().contains(text),
        "{admin_addr}: {:?} lacks {text:?}",
        err.message()
    );
    assert!(
        proxies(c).await.is_empty(),
        "{admin_addr}: something stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_codis_refuses_what_is_not_a_codis_proxy_of_this_product() {
    let t = Topom::start_with(Options {
        product: Some(PRODUCT.into()),
        metrics: true,
        ..Options::default()
    })
    .await;
    let mut c = t.client().await;
    refused(&mut c, "not an address", tonic::Code::InvalidArgument, "").await;
    // Nothing listens there.
    let closed = format!("127.0.0.1:{}", common::ports::free_port());
    refused(
        &mut c,
        &closed,
        tonic::Code::Unavailable,
        &format!("cannot connect to codis-proxy admin {closed}"),
    )
    .await;
    // HTTP, but not a codis-proxy (topom's own /metrics server).
    let metrics = t.metrics_addr().unwrap().to_owned();
    refused(
        &mut c,
        &metrics,
        tonic::Code::FailedPrecondition,
        &format!("{metrics} is not a codis-proxy admin port: GET model answered HTTP 404"),
    )
    .await;
    // Not HTTP at all: a codis-server.
    let server = CodisServer::start().await;
    refused(
        &mut c,
        &server.addr(),
        tonic::Code::FailedPrecondition,
        &format!("{} is not a codis-proxy admin port", server.addr()),
    )
    .await;
    // A codis-proxy of another product.
    let other = CodisProxy::start("other", "").await;
    refused(
        &mut c,
        other.admin_addr(),
        tonic::Code::FailedPrecondition,
        &format!(
            "the codis-proxy at {} serves product \"other\"; this topom coordinates \"{PRODUCT}\"",
            other.admin_addr()
        ),
    )
    .await;
    // The right product with another product_auth: its xping refuses our xauth.
    let wrong_auth = CodisProxy::start(PRODUCT, "secret").await;
    refused(
        &mut c,
        wrong_auth.admin_addr(),
        tonic::Code::FailedPrecondition,
        "refused topom's xauth (invalid xauth, please check product name & auth)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_codis_proxy_started_with_dashboard_registers_itself() {
    let t = Topom::start_with(Options {
        product: Some(PRODUCT.into()),
        metrics: true,
        ..Options::default()
    })
    .await;
    let mut c = t.client().await;
    // The start script of a Codis deployment, pointed at topom's HTTP address.
    let dashboard = format!("--dashboard={}", t.metrics_addr().unwrap());
    let p = CodisProxy::start_args(PRODUCT, "", &[dashboard]).await;
    let mut last = Vec::new();
    wait_until(
        Duration::from_secs(60),
        "the codis-proxy to register itself and be driven online",
        async || {
            last = proxies(&mut c).await;
            last.iter().any(|x| {
                x.admin_addr == p.admin_addr()
                    && x.kind == pb::ProxyKind::Codis as i32
                    && x.status.as_ref().unwrap().codis_state == pb::CodisProxyState::Online as i32
            })
        },
    )
    .await;
    assert_eq!(last.len(), 1, "{last:?}\n{}", p.log());
}
