//! Sources and targets besides a live Codis: export to a dump (refused with a
//! queued action) and to an fs store, import from Codis keys on etcd v3.

use crate::{PRODUCT, QUEUED_STORE, export, fs_store, import, path, topom};

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
    let etcd = crate::common::etcd::EtcdServer::start().await;
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
