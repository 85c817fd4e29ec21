//! What import and export refuse, naming why and writing nothing: a live
//! codis-dashboard (unless forced), a corrupt store or dump, a topom serving
//! the product.

use crate::common::codis::{CodisServer, Dashboard};
use crate::common::topom::{Options, Topom};
use crate::{
    PRODUCT, QUEUED_STORE, export, fs_store, holds_records, import, import_from, path, topom,
};

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
