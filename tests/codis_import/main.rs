//! `topom import` / `topom export` against the real Codis 3.2 binaries: a Codis
//! deployment built with codis-dashboard and codis-admin is adopted (dry run,
//! then --confirm), topom resumes the migration Codis had queued (63 slots
//! `pending`, one `migrating` with a tag group already moved), and the
//! product goes back to codis-dashboard (`export --to-fs`) and to
//! `codis-admin --config-restore` (`export --to-dump`). Refusals: a live
//! dashboard, a corrupt store or dump, a non-empty target.
//!
//! `round_trip`: a real Codis deployment adopted and given back; `refusals`:
//! what import and export refuse; `stores`: a dump, an fs store and etcd v3 as
//! source or target.

#[path = "../common/mod.rs"]
mod common;

mod refusals;
mod round_trip;
mod stores;

use std::path::Path;

const PRODUCT: &str = "demo";

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

/// Writes `records` (path under `data/codis3/demo/` → text) as a Codis fs store.
fn fs_store(root: &Path, records: &[(&str, &str)]) {
    for (rel, text) in records {
        let file = root.join("data/codis3").join(PRODUCT).join(rel);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
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
