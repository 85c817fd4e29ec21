//! `topom import` / `topom export` against the real Codis 3.2 binaries: a Codis
//! deployment built with codis-dashboard and codis-admin is adopted (dry run,
//! then --confirm), topom resumes the migration Codis had queued (63 slots
//! `pending`, one `migrating` with a tag group already moved), and the
//! product goes back to codis-dashboard (`export --to-fs`) and to
//! `codis-admin --config-restore` (`export --to-dump`). Refusals: a live
//! dashboard, a corrupt store or dump, a non-empty target.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::codis::{CodisServer, Dashboard, codis_admin};
use common::topom::{Options, Topom};
use common::wait_until;
use topom::model::slot_of;

const PRODUCT: &str = "demo";
/// Keys written before the import, spread over every slot.
const KEYS: usize = 3000;
/// Slots 0..QUEUED are queued to move from group 1 to group 2.
const QUEUED: u32 = 64;

/// Runs `topom <args>`: exit code, stdout, stderr.
fn topom(args: &[&str]) -> (i32, String, String) {
    common::topom::run_cli(args)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// `topom import` from `--from-fs root` into the local store at `data`.
fn import(root: &Path, data: &Path, extra: &[&str]) -> (i32, String, String) {
    import_from("--from-fs", root, data, extra)
}

/// `topom import FLAG source` into the local store at `data`.
fn import_from(flag: &str, source: &Path, data: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "import",
        flag,
        path(source),
        "--data-dir",
        path(data),
        "--product",
        PRODUCT,
    ];
    args.extend_from_slice(extra);
    topom(&args)
}

/// `topom export FLAG target` from the local store at `data`.
fn export(flag: &str, target: &Path, data: &Path) -> (i32, String, String) {
    topom(&[
        "export",
        flag,
        path(target),
        "--data-dir",
        path(data),
        "--product",
        PRODUCT,
    ])
}

/// Whether the local store at `data` holds any record of the product.
fn holds_records(data: &Path) -> bool {
    let dir = data.join("data/codis3").join(PRODUCT);
    ["group", "slots", "proxy", "sentinel"]
        .iter()
        .any(|d| dir.join(d).exists())
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_dashboard_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("codis");
    let data = tmp.path().join("topom");
    let server = CodisServer::start().await;
    let d = Dashboard::start(&root, PRODUCT).await;
    d.admin(&["--create-group", "--gid=1"]);
    d.admin(&[
        "--group-add",
        "--gid=1",
        &format!("--addr={}", server.addr()),
    ]);
    d.admin(&[
        "--slots-assign",
        "--beg=0",
        "--end=1023",
        "--gid=1",
        "--confirm",
    ]);

    let (code, out, _) = import(&root, &data, &["--confirm"]);
    assert_eq!(code, 1, "{out}");
    let want = format!("codis-dashboard {} (pid ", d.addr());
    assert!(
        out.contains(&want) && out.contains("still holds product \"demo\""),
        "{out}"
    );
    assert!(out.contains("or pass --force"), "{out}");
    assert!(!holds_records(&data), "a refused import wrote records");

    let (code, out, err) = import(&root, &data, &["--confirm", "--force"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("note: --force: importing although"), "{out}");
    assert!(holds_records(&data));
    d.shutdown().await;
}

/// Writes `records` (path under `data/codis3/demo/` → text) as a Codis fs store.
fn fs_store(root: &Path, records: &[(&str, &str)]) {
    for (rel, text) in records {
        let file = root.join("data/codis3").join(PRODUCT).join(rel);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
}

#[test]
fn a_corrupt_store_or_dump_names_every_problem_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("codis");
    let data = tmp.path().join("topom");
    fs_store(
        &root,
        &[
            (
                "group/group-0001",
                r#"{"id": 1, "servers": [{"server": "127.0.0.1:7001"}]}"#,
            ),
            (
                "group/group-0002",
                r#"{"id": 2, "servers": [{"server": "127.0.0.1:7001"}]}"#,
            ),
            ("group/group-0003", r#"{"id": 10000, "servers": []}"#),
            (
                "slots/slot-0000",
                r#"{"id": 0, "group_id": 5, "action": {}}"#,
            ),
            (
                "slots/slot-0001",
                r#"{"id": 1, "group_id": 1, "action": {"index": 1, "state": "pending", "target_id": 9}}"#,
            ),
            ("slots/slot-0002", "{\"id\": 2, "),
        ],
    );
    let (code, out, err) = import(&root, &data, &["--confirm"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let base = root.join("data/codis3").join(PRODUCT);
    let at = |rel: &str| base.join(rel).display().to_string();
    for want in [
        format!("problem: {}: not a valid record", at("slots/slot-0002")),
        format!(
            "problem: {}: server 127.0.0.1:7001 is in group 1 and in group 2",
            at("group/group-0002")
        ),
        format!(
            "problem: {}: group id 10000 is out of range 1..9999",
            at("group/group-0003")
        ),
        format!(
            "problem: {}: slot 0 belongs to group 5, which does not exist",
            at("slots/slot-0000")
        ),
        format!(
            "problem: {}: slot 1 has an action toward group 9, which does not exist",
            at("slots/slot-0001")
        ),
        "5 problems found; nothing written".to_owned(),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
    assert!(!holds_records(&data), "a refused import wrote records");

    let dump = tmp.path().join("dump.json");
    std::fs::write(&dump, r#"{"slots": [{"id": 0, "group_id": 1, "action": {}}], "group": [{"id": 1, "servers": "x"}]}"#).unwrap();
    let (code, out, _) = import_from("--from-dump", &dump, &data, &["--confirm"]);
    assert_eq!(code, 1, "{out}");
    let d = dump.display();
    assert!(
        out.contains(&format!("problem: {d}: group[0]: not a valid record")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "problem: {d}: slots[0]: slot 0 belongs to group 1, which does not exist"
        )),
        "{out}"
    );
    assert!(!holds_records(&data), "a refused import wrote records");

    std::fs::write(&dump, "{\"slots\": [").unwrap();
    let (code, out, _) = import_from("--from-dump", &dump, &data, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("problem: {d}: not valid JSON")),
        "{out}"
    );

    // Usage errors exit 2.
    let (code, _, err) = topom(&["import", "--data-dir", path(&data)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--from-fs"), "{err}");
}

/// Two groups of fake addresses (import and export contact no server) and slot
/// 3 queued from group 1 to group 2.
const QUEUED_STORE: &[(&str, &str)] = &[
    (
        "group/group-0001",
        r#"{"id": 1, "servers": [{"server": "127.0.0.1:7001"}]}"#,
    ),
    (
        "group/group-0002",
        r#"{"id": 2, "servers": [{"server": "127.0.0.1:7002"}]}"#,
    ),
    (
        "slots/slot-0000",
        r#"{"id": 0, "group_id": 1, "action": {}}"#,
    ),
    (
        "slots/slot-0003",
        r#"{"id": 3, "group_id": 1, "action": {"index": 1, "state": "pending", "target_id": 2}}"#,
    ),
    (
        "sentinel",
        r#"{"servers": ["127.0.0.1:26379"], "out_of_sync": false}"#,
    ),
];

#[test]
fn export_to_dump_refuses_what_config_restore_refuses_and_to_fs_keeps_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("codis");
    let data = tmp.path().join("topom");
    fs_store(&root, QUEUED_STORE);
    let (code, out, err) = import(&root, &data, &["--confirm", "--disable-slot-actions"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("slot actions: disabled when topom starts"),
        "{out}"
    );
    let engine = data.join("data/codis3").join(PRODUCT).join("slot-action");
    let engine = std::fs::read_to_string(&engine).unwrap();
    assert!(engine.contains("\"disabled\": true"), "{engine}");

    let dump = tmp.path().join("dump.json");
    let (code, out, _) = export("--to-dump", &dump, &data);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("problem: slot 3 has a pending action toward group 2"),
        "{out}"
    );
    assert!(
        out.contains("codis-admin --config-restore refuses slot actions"),
        "{out}"
    );
    assert!(!dump.exists(), "a refused export wrote {}", dump.display());

    let back = tmp.path().join("back");
    let (code, out, err) = export("--to-fs", &back, &data);
    assert_eq!(code, 0, "{out}\n{err}");
    let dir = back.join("data/codis3").join(PRODUCT);
    let slot3 = std::fs::read_to_string(dir.join("slots/slot-0003")).unwrap();
    assert!(
        slot3.contains("\"state\": \"pending\"") && slot3.contains("\"target_id\": 2"),
        "{slot3}"
    );
    // What only topom knows stays out of a Codis store.
    let group1 = std::fs::read_to_string(dir.join("group/group-0001")).unwrap();
    assert!(!group1.contains("kind"), "{group1}");
    assert!(!dir.join("topom").exists() && !dir.join("slot-action").exists());
    let sentinel = std::fs::read_to_string(dir.join("sentinel")).unwrap();
    assert!(sentinel.contains("127.0.0.1:26379"), "{sentinel}");
    // A second export into the same directory is refused.
    let (code, out, _) = export("--to-fs", &back, &data);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("already exists there"), "{out}");
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reads_codis_keys_on_etcd_v3() {
    let etcd = common::etcd::EtcdServer::start().await;
    let mut client = etcd.client().await;
    for (rel, text) in QUEUED_STORE {
        client
            .put(format!("/prod-a/codis3/{PRODUCT}/{rel}"), *text, None)
            .await
            .unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("topom");
    let endpoint = etcd.endpoint();
    let args = [
        "import",
        "--from-etcd",
        &endpoint,
        "--from-etcd-prefix",
        "/prod-a",
        "--data-dir",
        path(&data),
        "--product",
        PRODUCT,
    ];
    let (code, out, err) = topom(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    for want in [
        "product demo: 2 groups, 2 servers, 2 of 1024 slots assigned, 1 slot actions, 0 proxies, 1 sentinels",
        "group 1: 127.0.0.1:7001 (master); slots 0,3 (2)",
        "slot action: slots 3 (1) group 1 -> group 2, pending",
        "sentinels: 127.0.0.1:26379",
        "dry run: nothing written",
    ] {
        assert!(out.contains(want), "the plan lacks {want:?}:\n{out}");
    }
    // Into a topom store on the same etcd (no prefix): one transaction.
    let into_etcd = [
        &args[..5],
        &["--etcd", &endpoint, "--product", PRODUCT, "--confirm"],
    ]
    .concat();
    let (code, out, err) = topom(&into_etcd);
    assert_eq!(code, 0, "{out}\n{err}");
    let got = client
        .get(format!("/codis3/{PRODUCT}/slots/slot-0003"), None)
        .await
        .unwrap();
    let slot3 = String::from_utf8_lossy(got.kvs()[0].value()).into_owned();
    assert!(slot3.contains("\"state\": \"pending\""), "{slot3}");
    let got = client
        .get(format!("/codis3/{PRODUCT}/slots/slot-1023"), None)
        .await
        .unwrap();
    assert_eq!(got.kvs().len(), 1, "all 1024 slots are written");

    // A corrupt key is named by its etcd key.
    client
        .put(
            format!("/prod-a/codis3/{PRODUCT}/group/group-0002"),
            "{",
            None,
        )
        .await
        .unwrap();
    let (code, out, _) = topom(&args);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "problem: /prod-a/codis3/{PRODUCT}/group/group-0002: not a valid record"
        )),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_export_refuse_while_a_topom_serves_the_product() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("codis");
    fs_store(&root, QUEUED_STORE);
    let mut t = Topom::start_with(Options {
        product: Some(PRODUCT.into()),
        ..Options::default()
    })
    .await;
    let data = t.data_dir.clone();
    let (code, out, _) = import(&root, &data, &["--confirm"]);
    assert_eq!(code, 1, "{out}");
    let holder = format!("owned by another topom: {} (pid {}", t.addr(), t.pid());
    assert!(
        out.contains(&holder),
        "the holder is not named ({holder:?}):\n{out}"
    );
    assert!(out.contains("1 problems found; nothing written"), "{out}");
    assert!(!holds_records(&data), "a refused import wrote records");

    let back = tmp.path().join("back");
    let (code, out, _) = export("--to-fs", &back, &data);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&holder) && out.contains("stop it first"),
        "{out}"
    );
    assert!(
        !back.join("data/codis3").join(PRODUCT).exists(),
        "a refused export wrote records"
    );
    assert_eq!(t.terminate().await, Some(0));
}
