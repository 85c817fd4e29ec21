//! A Codis deployment built with codis-dashboard and codis-admin is imported
//! (dry run, then --confirm), topom finishes the migration Codis had queued,
//! and the product goes back to codis-dashboard and to codis-admin
//! --config-restore.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use topom::model::slot_of;

use crate::common::codis::{CodisServer, Dashboard, codis_admin};
use crate::common::topom::{Options, Topom};
use crate::common::wait_until;
use crate::{PRODUCT, export, holds_records, import};

/// Keys written before the import, spread over every slot.
const KEYS: usize = 3000;
/// Slots 0..QUEUED are queued to move from group 1 to group 2.
const QUEUED: u32 = 64;

/// Two groups of a master and a replica each; slots 0-511 in group 1, 512-1023
/// in group 2; KEYS keys on the masters; QUEUED slots queued toward group 2 with
/// the dashboard's slot actions disabled, so none of them has started.
async fn codis_deployment(root: &Path) -> (Vec<CodisServer>, Dashboard, Vec<String>) {
    let mut servers = Vec::new();
    for _ in 0..4 {
        servers.push(CodisServer::start().await);
    }
    let d = Dashboard::start(root, PRODUCT).await;
    d.two_groups(&servers);
    let mut keys = Vec::new();
    let mut conns = [
        servers[0].conn().await.unwrap(),
        servers[2].conn().await.unwrap(),
    ];
    for i in 0..KEYS {
        let key = format!("key:{i}");
        let master = usize::from(slot_of(key.as_bytes()) >= 512);
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(i)
            .query_async(&mut conns[master])
            .await
            .unwrap();
        keys.push(key);
    }
    d.admin(&["--slot-action", "--disabled=1"]);
    d.admin(&[
        "--slot-action",
        "--create-range",
        "--beg=0",
        &format!("--end={}", QUEUED - 1),
        "--gid=2",
    ]);
    (servers, d, keys)
}

/// Slot id → the address `codis-admin --slots-status` says serves it.
fn codis_backends(d: &Dashboard) -> BTreeMap<u64, String> {
    let slots = d.admin_json(&["--slots-status"]);
    slots
        .as_array()
        .expect("slots-status is an array")
        .iter()
        .map(|s| {
            (
                s["id"].as_u64().unwrap(),
                s["backend_addr"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_resumes_the_queued_migration_and_rolls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("codis");
    let data = tmp.path().join("topom");
    let (servers, dashboard, keys) = codis_deployment(&root).await;
    let before = codis_backends(&dashboard);
    dashboard.shutdown().await;
    // As if the dashboard had stopped in the middle of slot 0: its action is
    // `migrating` and one tag group has already moved.
    let slot0 = root
        .join("data/codis3")
        .join(PRODUCT)
        .join("slots/slot-0000");
    let text = std::fs::read_to_string(&slot0).unwrap();
    assert!(text.contains("\"pending\""), "{text}");
    std::fs::write(&slot0, text.replace("\"pending\"", "\"migrating\"")).unwrap();
    let mut src = servers[0].conn().await.unwrap();
    let moved: Vec<i64> = redis::cmd("SLOTSMGRTTAGSLOT")
        .arg("127.0.0.1")
        .arg(servers[2].addr().rsplit(':').next().unwrap())
        .arg(5000)
        .arg(0)
        .query_async(&mut src)
        .await
        .unwrap();
    assert_eq!(moved.len(), 2, "SLOTSMGRTTAGSLOT answered {moved:?}");

    // The dry run: the plan, and nothing written.
    let (code, out, err) = import(&root, &data, &[]);
    assert_eq!(code, 0, "dry run failed:\n{out}\n{err}");
    let (m1, r1, m2, r2) = (
        servers[0].addr(),
        servers[1].addr(),
        servers[2].addr(),
        servers[3].addr(),
    );
    for want in [
        format!(
            "product {PRODUCT}: 2 groups, 4 servers, 1024 of 1024 slots assigned, {QUEUED} slot actions, 0 proxies, 0 sentinels"
        ),
        format!("group 1: {m1} (master), {r1} (replica"),
        "; slots 0-511 (512)".to_owned(),
        format!("group 2: {m2} (master), {r2} (replica"),
        "; slots 512-1023 (512)".to_owned(),
        format!(
            "slot action: slots 1-{} ({}) group 1 -> group 2, pending",
            QUEUED - 1,
            QUEUED - 1
        ),
        "slot action: slots 0 (1) group 1 -> group 2, migrating".to_owned(),
        "dry run: nothing written".to_owned(),
    ] {
        assert!(out.contains(&want), "the plan lacks {want:?}:\n{out}");
    }
    assert!(!holds_records(&data), "the dry run wrote records");

    let (code, out, err) = import(&root, &data, &["--confirm"]);
    assert_eq!(code, 0, "import failed:\n{out}\n{err}");
    assert!(out.contains("written into topom store"), "{out}");
    // A second import meets a non-empty store.
    let (code, out, _) = import(&root, &data, &["--confirm"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("pass --replace to overwrite it"), "{out}");

    let mut t = Topom::start_with(Options {
        data_dir: Some(data.clone()),
        product: Some(PRODUCT.into()),
        ..Options::default()
    })
    .await;
    let mut c = t.client().await;
    let groups = c
        .list_groups(topom::pb::ListGroupsRequest {})
        .await
        .unwrap()
        .into_inner()
        .groups;
    let members: Vec<(u32, Vec<String>)> = groups
        .iter()
        .map(|g| (g.id, g.servers.iter().map(|s| s.addr.clone()).collect()))
        .collect();
    assert_eq!(
        members,
        [
            (1, vec![m1.clone(), r1.clone()]),
            (2, vec![m2.clone(), r2.clone()])
        ]
    );
    // The queued actions run to the end on topom's engine.
    let mut last = String::new();
    wait_until(
        Duration::from_secs(180),
        "the imported migration to finish",
        async || {
            let r = c
                .list_slots(topom::pb::ListSlotsRequest {})
                .await
                .unwrap()
                .into_inner();
            let pending = r.mappings.iter().filter(|m| m.action.is_some()).count();
            last = format!("{pending} slots still have an action");
            pending == 0
        },
    )
    .await;
    let r = c
        .list_slots(topom::pb::ListSlotsRequest {})
        .await
        .unwrap()
        .into_inner();
    for m in &r.mappings {
        let want = if m.id < QUEUED || m.id >= 512 { 2 } else { 1 };
        assert_eq!(m.group_id, want, "slot {} ({last})", m.id);
    }
    // Every key is on the master of the group that owns its slot, and only there.
    let mut conns = [
        servers[0].conn().await.unwrap(),
        servers[2].conn().await.unwrap(),
    ];
    for key in &keys {
        let owner = usize::from(r.mappings[slot_of(key.as_bytes()) as usize].group_id == 2);
        let here: i64 = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut conns[owner])
            .await
            .unwrap();
        let there: i64 = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut conns[1 - owner])
            .await
            .unwrap();
        assert_eq!(
            (here, there),
            (1, 0),
            "key {key} (slot {})",
            slot_of(key.as_bytes())
        );
    }
    assert_eq!(
        t.terminate().await,
        Some(0),
        "topom did not stop cleanly:\n{}",
        t.log()
    );

    // Roll back 1: a Codis filesystem store the original dashboard starts on.
    let back = tmp.path().join("codis-back");
    let (code, out, err) = export("--to-fs", &back, &data);
    assert_eq!(code, 0, "export --to-fs failed:\n{out}\n{err}");
    let d = Dashboard::start(&back, PRODUCT).await;
    let after = codis_backends(&d);
    for (slot, addr) in &after {
        let want = if *slot < u64::from(QUEUED) {
            &m2
        } else {
            &before[slot]
        };
        assert_eq!(addr, want, "slot {slot} after the roll back");
    }
    let codis_groups = d.admin_json(&["--list-group"]);
    let ids: Vec<u64> = codis_groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2], "{codis_groups}");
    d.shutdown().await;

    // Roll back 2: a --config-dump that codis-admin --config-restore accepts.
    let dump = tmp.path().join("dump.json");
    let (code, out, err) = export("--to-dump", &dump, &data);
    assert_eq!(code, 0, "export --to-dump failed:\n{out}\n{err}");
    let restored = tmp.path().join("codis-restored");
    let args = [
        format!("--config-restore={}", dump.display()),
        format!("--product={PRODUCT}"),
        format!("--filesystem={}", restored.display()),
        "--confirm".to_owned(),
    ];
    let out = codis_admin(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "config-restore refused the dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let slot0 =
        std::fs::read_to_string(restored.join(format!("data/codis3/{PRODUCT}/slots/slot-0000")))
            .unwrap();
    assert!(slot0.contains("\"group_id\": 2"), "{slot0}");
}
