//! Issue 12's adoption, end to end with the real Codis 3.2 binaries: a live
//! Codis deployment (codis-dashboard on a filesystem store, two codis-server
//! groups with replicas, two codis-proxies online, 256 slots queued to move)
//! is imported into topom, which then drives the unmodified codis-proxies and
//! finishes the queued migration under a checked load through both of them;
//! then a Sentinel failover, which both codis-proxies follow through topom.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::codis::{CodisProxy, CodisServer, Dashboard};
use common::codis_failover::{
    FAST_FAILOVER, assert_writes_reach, fail_over_group_1, watch_group_1,
};
use common::codis_load::{
    BULK, assert_keys_on_owners, assert_read_back, bulk_key, crossed_load, fill_bulk, get, set,
};
use common::sentinel::SentinelServer;
use common::topom::{Client, Options, Topom, proxies, run_cli, wait_slot_actions_done};
use common::wait_until;
use topom::model::slot_of;
use topom::pb;

const PRODUCT: &str = "adopt";
/// Slots 0..MOVING are queued in Codis to move from group 1 to group 2.
const MOVING: u32 = 256;
/// Checked keys: written through the proxies before the import, then by the
/// load during the migration.
const KEYS: usize = 2000;

/// The deployment as Codis left it: servers m1, r1, m2, r2 and the proxies.
struct Codis {
    servers: Vec<CodisServer>,
    proxies: [CodisProxy; 2],
    /// (token, admin address) of each proxy, as the dashboard stored them.
    registered: Vec<(String, String)>,
}

/// Builds the deployment with codis-dashboard and codis-admin, writes the keys
/// through its proxies, queues the migration with slot actions disabled (so
/// none has started) and stops the dashboard.
async fn codis_deployment(root: &std::path::Path, keys: &[String]) -> Codis {
    let mut servers = Vec::new();
    for _ in 0..4 {
        servers.push(CodisServer::start().await);
    }
    let d = Dashboard::start(root, PRODUCT).await;
    d.two_groups(&servers);
    let proxies = [
        CodisProxy::start(PRODUCT, "").await,
        CodisProxy::start(PRODUCT, "").await,
    ];
    for p in &proxies {
        // The dashboard fills its slots and starts it before answering.
        d.admin(&["--create-proxy", &format!("--addr={}", p.admin_addr())]);
    }
    let listed = d.admin_json(&["--list-proxy"]);
    let registered: Vec<(String, String)> = listed
        .as_array()
        .expect("--list-proxy is an array")
        .iter()
        .map(|p| {
            (
                p["token"].as_str().unwrap().to_owned(),
                p["admin_addr"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(registered.len(), 2, "{listed}");

    fill_bulk(&proxies[0], BULK).await;
    let mut via = proxies[1].conn().await.unwrap();
    for k in keys {
        set(&mut via, k, "0").await.unwrap();
    }
    d.admin(&["--slot-action", "--disabled=1"]);
    d.admin(&[
        "--slot-action",
        "--create-range",
        "--beg=0",
        &format!("--end={}", MOVING - 1),
        "--gid=2",
    ]);
    d.shutdown().await;
    Codis {
        servers,
        proxies,
        registered,
    }
}

/// Asserts that each proxy serves topom's table from its own
/// `/api/proxy/slots`: every slot on the master of the group topom maps it to.
async fn assert_proxies_serve_topoms_table(c: &mut Client, codis: &Codis) {
    let table = c
        .list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner();
    let masters = [codis.servers[0].addr(), codis.servers[2].addr()];
    for p in proxies(c).await {
        let driven = codis
            .proxies
            .iter()
            .find(|x| x.admin_addr() == p.admin_addr)
            .unwrap_or_else(|| panic!("topom lists an unknown proxy {p:?}"));
        let served = driven.slots(&topom::codis_proxy::xauth(PRODUCT, "", &p.token));
        assert_eq!(served.len(), 1024, "codis-proxy {}", p.admin_addr);
        for ((id, gid, addr), m) in served.iter().zip(&table.mappings) {
            let master = &masters[usize::from(m.group_id == 2)];
            assert_eq!(
                (*id, *gid, addr),
                (u64::from(m.id), u64::from(m.group_id), master),
                "codis-proxy {} serves slot {id} unlike topom's revision {}",
                p.admin_addr,
                table.revision
            );
        }
    }
}

/// `INFO commandstats` of a server: how often it ran `SLOTSMGRTTAGSLOT-ASYNC`.
async fn async_migrate_calls(server: &CodisServer) -> u64 {
    let mut conn = server.conn().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_slotsmgrttagslot-async:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn topom_adopts_a_live_codis_deployment_and_drives_its_codis_proxies() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("codis");
    let data = tmp.path().join("topom");
    let keys: Vec<String> = (0..KEYS).map(|i| format!("k:{i}")).collect();
    let moving = keys
        .iter()
        .filter(|k| slot_of(k.as_bytes()) < MOVING)
        .count();
    assert!(
        moving > 300,
        "only {moving} checked keys in the moving slots"
    );
    let mut codis = codis_deployment(&root, &keys).await;

    // The dry run names both proxies and writes nothing; then --confirm, with
    // topom's engine held so that the load is running when the migration goes.
    let import = |extra: &[&str]| {
        let mut args = vec!["import", "--from-fs", root.to_str().unwrap()];
        args.extend(["--data-dir", data.to_str().unwrap(), "--product", PRODUCT]);
        args.extend_from_slice(extra);
        run_cli(&args)
    };
    let (code, out, err) = import(&[]);
    assert_eq!(code, 0, "dry run failed:\n{out}\n{err}");
    let summary = format!(
        "product {PRODUCT}: 2 groups, 4 servers, 1024 of 1024 slots assigned, {MOVING} slot actions, 2 proxies"
    );
    assert!(out.contains(&summary), "the plan lacks {summary:?}:\n{out}");
    for (token, admin) in &codis.registered {
        let want = format!("proxy {token}: admin {admin},");
        assert!(out.contains(&want), "the plan lacks {want:?}:\n{out}");
    }
    assert!(out.contains("dry run: nothing written"), "{out}");
    let (code, out, err) = import(&["--confirm", "--disable-slot-actions"]);
    assert_eq!(code, 0, "import failed:\n{out}\n{err}");
    assert!(out.contains("written into topom store"), "{out}");

    let t = Topom::start_with(Options {
        data_dir: Some(data.clone()),
        product: Some(PRODUCT.into()),
        config: FAST_FAILOVER.iter().map(|s| s.to_string()).collect(),
        ..Options::default()
    })
    .await;
    let mut c = t.client().await;

    // topom drives both codis-proxies: online, its revision applied.
    let revision = c
        .list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner()
        .revision;
    wait_until(
        Duration::from_secs(60),
        "topom to drive both imported codis-proxies online at its revision",
        async || {
            let listed = proxies(&mut c).await;
            listed.len() == 2
                && listed.iter().all(|p| {
                    let st = p.status.as_ref().unwrap();
                    p.kind == pb::ProxyKind::Codis as i32
                        && st.codis_state == pb::CodisProxyState::Online as i32
                        && st.applied_revision >= revision
                })
        },
    )
    .await;
    assert_proxies_serve_topoms_table(&mut c, &codis).await;

    // The queued migration resumes under a checked load through both proxies.
    let before = async_migrate_calls(&codis.servers[0]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let [a, b] = &codis.proxies;
    let load = crossed_load(&keys, a, b, stop.clone());
    let migrate = async {
        // The load's first write is on the servers: it runs on the old table.
        let first = &keys[0];
        let mut owner = codis.servers[if slot_of(first.as_bytes()) < 512 {
            0
        } else {
            2
        }]
        .conn()
        .await
        .unwrap();
        wait_until(Duration::from_secs(60), "the load to start", async || {
            get(&mut owner, first).await == Ok(Some("1".into()))
        })
        .await;
        c.set_slot_action_disabled(pb::SetSlotActionDisabledRequest { disabled: false })
            .await
            .unwrap();
        wait_slot_actions_done(
            &mut c,
            Duration::from_secs(300),
            "the imported migration of 256 slots to finish under load",
        )
        .await;
        stop.store(true, Ordering::Relaxed);
    };
    let ((last, writes, retries), ()) = tokio::join!(load, migrate);
    eprintln!("checked load: {writes} acknowledged writes, {retries} retried");
    assert_eq!(last.len(), keys.len());
    let calls = async_migrate_calls(&codis.servers[0]).await - before;
    assert!(calls > 0, "group 1's master ran no SLOTSMGRTTAGSLOT-ASYNC");
    eprintln!("SLOTSMGRTTAGSLOT-ASYNC calls on group 1's master: {calls}");

    let table = c
        .list_slots(pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner();
    for m in &table.mappings {
        let want = if m.id < MOVING || m.id >= 512 { 2 } else { 1 };
        assert_eq!(m.group_id, want, "slot {}", m.id);
    }
    // Last write wins through both proxies; on the servers every key is in
    // the group owning its slot, and none is lost (the bulk keys too).
    for p in &codis.proxies {
        assert_read_back(p, &last).await;
    }
    let mut masters = [
        codis.servers[0].conn().await.unwrap(),
        codis.servers[2].conn().await.unwrap(),
    ];
    let group_of: Vec<u32> = table.mappings.iter().map(|m| m.group_id).collect();
    let all = keys.iter().cloned().chain((0..BULK).map(bulk_key));
    let checked = assert_keys_on_owners(&mut masters, &group_of, all).await;
    assert_eq!(checked, KEYS + BULK);
    // Both proxies took the final table from topom.
    wait_until(
        Duration::from_secs(30),
        "both codis-proxies to apply the final revision",
        async || {
            proxies(&mut c)
                .await
                .iter()
                .all(|p| p.status.as_ref().unwrap().applied_revision >= table.revision)
        },
    )
    .await;
    assert_proxies_serve_topoms_table(&mut c, &codis).await;

    // A master killed: the Sentinels fail group 1 over, topom updates the
    // group, and writes through both codis-proxies land on the new master.
    let sentinels = [
        SentinelServer::start(&[], &[]).await,
        SentinelServer::start(&[], &[]).await,
        SentinelServer::start(&[], &[]).await,
    ];
    watch_group_1(&mut c, &sentinels, PRODUCT).await;
    let key = keys
        .iter()
        .find(|k| (MOVING..512).contains(&slot_of(k.as_bytes())))
        .unwrap();
    let (master, replica) = codis.servers.split_at_mut(1);
    fail_over_group_1(&mut c, &mut master[0], &replica[0]).await;
    assert_writes_reach(&codis.proxies, key, &codis.servers[1]).await;
}
