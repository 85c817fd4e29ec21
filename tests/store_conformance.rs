//! One behaviour for every `MetaStore` backend.
//!
//! Each case below is an `async fn(Backend)`; `conformance!` runs it against the
//! memory, local and etcd backends (`memory::case`, `local::case`, `etcd::case`).
//! Every etcd case gets its own etcd server. Tests that only make sense for one
//! backend (files on disk, leases) follow, prefixed `local_` and `etcd_`.

mod common;

use std::sync::Arc;

use topom::model::{
    Group, GroupServer, PromoteState, Promoting, Proxy, Sentinel, ServerKind, SlotAction,
    SlotActionConfig, SlotMapping, SlotState, SyncAction, SyncState, TopomRecord,
};
use topom::store::local::LocalStore;
use topom::store::memory::MemoryStore;
use topom::store::{LockState, MetaStore, ProductData, Store, StoreError, keys};

const PRODUCT: &str = "demo";

/// A backend under test. [`Backend::open`] gives a new client of the same
/// storage each time, as a second process would have.
enum Backend {
    Memory(MemoryStore),
    Local(tempfile::TempDir),
    #[cfg(feature = "etcd")]
    Etcd(common::etcd::EtcdServer),
}

impl Backend {
    fn memory() -> Backend {
        Backend::Memory(MemoryStore::new())
    }

    fn local() -> Backend {
        Backend::Local(tempfile::tempdir().unwrap())
    }

    #[cfg(feature = "etcd")]
    async fn etcd() -> Backend {
        Backend::Etcd(common::etcd::EtcdServer::start().await)
    }

    async fn open(&self) -> Arc<dyn MetaStore> {
        match self {
            Backend::Memory(m) => Arc::new(m.clone()),
            Backend::Local(dir) => Arc::new(LocalStore::open(dir.path()).unwrap()),
            #[cfg(feature = "etcd")]
            Backend::Etcd(server) => Arc::new(
                topom::store::etcd::EtcdStore::connect(
                    &server.endpoints(),
                    "",
                    topom::store::etcd::EtcdOptions::default(),
                )
                .await
                .unwrap(),
            ),
        }
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $case() {
                super::$case(super::Backend::memory()).await;
            })*
        }
        mod local {
            $(#[tokio::test]
            async fn $case() {
                super::$case(super::Backend::local()).await;
            })*
        }
        #[cfg(feature = "etcd")]
        mod etcd {
            $(#[tokio::test]
            async fn $case() {
                super::$case(super::Backend::etcd().await).await;
            })*
        }
    };
}

conformance!(
    get_missing_is_none,
    put_get_round_trip,
    put_overwrites,
    delete_is_idempotent,
    list_returns_direct_children_sorted,
    write_batch_applies_in_order,
    write_batch_large,
    deep_paths,
    invalid_keys_are_rejected,
    lock_refused_while_held,
    release_then_relock,
    typed_store_round_trip,
    typed_store_load_reports_corrupt_record,
);

// === helpers ===

fn owner(admin_addr: &str, pid: u32) -> TopomRecord {
    TopomRecord {
        token: format!("token-{pid}"),
        start_time: "2026-11-26T12:00:00Z".into(),
        admin_addr: admin_addr.into(),
        product_name: PRODUCT.into(),
        pid,
        pwd: "/srv/topom".into(),
        sys: "Linux test".into(),
        hostname: "host-a".into(),
    }
}

fn bytes(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

fn names(entries: &[(String, Vec<u8>)]) -> Vec<&str> {
    entries.iter().map(|(k, _)| k.as_str()).collect()
}

#[track_caller]
fn assert_locked(result: Result<impl Sized, StoreError>, admin_addr: &str, pid: u32) {
    match result {
        Err(e @ StoreError::Locked { .. }) => {
            let text = e.to_string();
            let StoreError::Locked { product, owner } = e else {
                unreachable!()
            };
            assert_eq!(product, PRODUCT);
            assert!(
                owner.contains(admin_addr),
                "owner {owner:?} lacks {admin_addr}"
            );
            assert!(
                owner.contains(&pid.to_string()),
                "owner {owner:?} lacks pid {pid}"
            );
            assert!(text.contains(admin_addr), "{text}");
        }
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("expected Locked, but the lock was granted"),
    }
}

/// A product with every kind of record and every optional part filled in.
fn sample_product() -> ProductData {
    let mut slots: Vec<SlotMapping> = (0..1024u32)
        .map(|id| SlotMapping {
            id,
            group_id: if id < 512 { 1 } else { 2 },
            action: None,
        })
        .collect();
    slots[3].action = Some(SlotAction {
        index: 1,
        state: SlotState::Pending,
        target_id: 2,
    });
    slots[4].action = Some(SlotAction {
        index: 2,
        state: SlotState::Migrating,
        target_id: 2,
    });
    slots[600].action = Some(SlotAction {
        index: 3,
        state: SlotState::Prepared,
        target_id: 1,
    });
    slots[1000] = SlotMapping::offline(1000);

    let mut replica = GroupServer::new("127.0.0.1:6380", "dc2", ServerKind::CodisServer);
    replica.replica_group = true;
    replica.action = Some(SyncAction {
        index: 7,
        state: SyncState::SyncedFailed,
        error: "MASTER aborted".into(),
    });
    let mut g1 = Group::new(1);
    g1.servers = vec![
        GroupServer::new("127.0.0.1:6379", "dc1", ServerKind::Redis),
        replica,
    ];
    let mut g2 = Group::new(2);
    let mut pending = GroupServer::new("127.0.0.1:6382", "", ServerKind::Unknown);
    pending.action = Some(SyncAction {
        index: 1,
        state: SyncState::Pending,
        error: String::new(),
    });
    g2.servers = vec![
        GroupServer::new("127.0.0.1:6381", "", ServerKind::Redis),
        pending,
    ];
    g2.promoting = Some(Promoting {
        index: 1,
        state: PromoteState::Prepared,
    });
    g2.out_of_sync = true;

    let proxy = |id: u32, token: &str| Proxy {
        id,
        token: token.into(),
        start_time: "2026-11-26T12:00:00Z".into(),
        admin_addr: format!("10.0.0.{id}:11080"),
        proto_type: "tcp4".into(),
        proxy_addr: format!("10.0.0.{id}:19000"),
        jodis_path: String::new(),
        product_name: PRODUCT.into(),
        pid: 1000 + id,
        pwd: "/srv/proxy".into(),
        sys: "Linux".into(),
        hostname: format!("proxy-{id}"),
        datacenter: "dc1".into(),
        version: "0.1.0".into(),
        kind: topom::model::ProxyKind::Topom,
    };
    ProductData {
        slots,
        groups: [(1, g1), (2, g2)].into(),
        proxies: [
            ("aaa".to_owned(), proxy(1, "aaa")),
            ("bbb".to_owned(), proxy(2, "bbb")),
        ]
        .into(),
        sentinel: Sentinel {
            servers: vec!["127.0.0.1:26379".into(), "127.0.0.1:26380".into()],
            out_of_sync: true,
        },
        slot_action: SlotActionConfig {
            interval_us: 1500,
            disabled: true,
        },
    }
}

#[track_caller]
fn assert_same_product(got: &ProductData, want: &ProductData) {
    assert_eq!(got.slots.len(), want.slots.len());
    for (g, w) in got.slots.iter().zip(&want.slots) {
        assert_eq!(g, w);
    }
    assert_eq!(got.groups, want.groups);
    assert_eq!(got.proxies, want.proxies);
    assert_eq!(got.sentinel, want.sentinel);
    assert_eq!(got.slot_action, want.slot_action);
}

// === conformance cases ===

async fn get_missing_is_none(b: Backend) {
    let s = b.open().await;
    assert_eq!(s.get("/codis3/demo/nothing").await.unwrap(), None);
    assert_eq!(s.get("/codis3/nowhere/at/all").await.unwrap(), None);
}

async fn put_get_round_trip(b: Backend) {
    let s = b.open().await;
    s.put("/codis3/demo/sentinel", b"{\"out_of_sync\": false}")
        .await
        .unwrap();
    s.put("/codis3/demo/binary", &[0, 159, 146, 150, 255, b'\n'])
        .await
        .unwrap();
    s.put("/codis3/demo/empty", b"").await.unwrap();
    // A second client (another process) sees the same.
    let other = b.open().await;
    for store in [&s, &other] {
        assert_eq!(
            store.get("/codis3/demo/sentinel").await.unwrap(),
            bytes("{\"out_of_sync\": false}")
        );
        assert_eq!(
            store.get("/codis3/demo/binary").await.unwrap(),
            Some(vec![0, 159, 146, 150, 255, b'\n'])
        );
        assert_eq!(store.get("/codis3/demo/empty").await.unwrap(), Some(vec![]));
    }
}

async fn put_overwrites(b: Backend) {
    let s = b.open().await;
    let key = "/codis3/demo/group/group-0001";
    s.put(key, b"a much longer first value").await.unwrap();
    s.put(key, b"short").await.unwrap();
    // No tail of the longer value may survive.
    assert_eq!(s.get(key).await.unwrap(), bytes("short"));
}

async fn delete_is_idempotent(b: Backend) {
    let s = b.open().await;
    let key = "/codis3/demo/proxy/proxy-x";
    s.delete(key).await.unwrap();
    s.delete("/codis3/missing/dir/key").await.unwrap();
    s.put(key, b"1").await.unwrap();
    s.delete(key).await.unwrap();
    assert_eq!(s.get(key).await.unwrap(), None);
    s.delete(key).await.unwrap();
}

async fn list_returns_direct_children_sorted(b: Backend) {
    let s = b.open().await;
    for (key, value) in [
        ("/codis3/demo/slots/slot-0010", "10"),
        ("/codis3/demo/slots/slot-0000", "0"),
        ("/codis3/demo/slots/slot-0002", "2"),
        ("/codis3/demo/slots/slot-0001", "1"),
        // Deeper, and a sibling whose name starts like the directory's.
        ("/codis3/demo/slots/nested/slot-0003", "nested"),
        ("/codis3/demo/slotsX", "sibling"),
        ("/codis3/other/slots/slot-0000", "other product"),
    ] {
        s.put(key, value.as_bytes()).await.unwrap();
    }
    let slots = s.list("/codis3/demo/slots").await.unwrap();
    assert_eq!(
        names(&slots),
        [
            "/codis3/demo/slots/slot-0000",
            "/codis3/demo/slots/slot-0001",
            "/codis3/demo/slots/slot-0002",
            "/codis3/demo/slots/slot-0010",
        ]
    );
    let values: Vec<&[u8]> = slots.iter().map(|(_, v)| v.as_slice()).collect();
    assert_eq!(values, [&b"0"[..], b"1", b"2", b"10"]);
    // Only files directly under the product, not the records in its directories.
    assert_eq!(
        names(&s.list("/codis3/demo").await.unwrap()),
        ["/codis3/demo/slotsX"]
    );
    assert!(s.list("/codis3/demo/missing").await.unwrap().is_empty());
    assert!(
        s.list("/codis3/demo/slots/slot-0000")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn write_batch_applies_in_order(b: Backend) {
    let s = b.open().await;
    let g = |id: u32| keys::group(PRODUCT, id);
    s.put(&g(3), b"doomed").await.unwrap();
    s.write_batch(vec![
        (g(1), bytes("a")),
        (g(2), bytes("b")),
        (g(3), None),
        (g(4), bytes("x")),
        (g(4), None),
        (g(5), None),
        (g(6), bytes("first")),
        (g(6), bytes("second")),
    ])
    .await
    .unwrap();
    assert_eq!(s.get(&g(1)).await.unwrap(), bytes("a"));
    assert_eq!(s.get(&g(2)).await.unwrap(), bytes("b"));
    assert_eq!(s.get(&g(3)).await.unwrap(), None);
    assert_eq!(s.get(&g(4)).await.unwrap(), None);
    assert_eq!(s.get(&g(6)).await.unwrap(), bytes("second"));
    s.write_batch(vec![(g(1), None), (g(1), bytes("again"))])
        .await
        .unwrap();
    assert_eq!(s.get(&g(1)).await.unwrap(), bytes("again"));
    assert_eq!(
        names(&s.list(&keys::groups_dir(PRODUCT)).await.unwrap()),
        [g(1), g(2), g(6)]
    );
    s.write_batch(Vec::new()).await.unwrap();
}

async fn write_batch_large(b: Backend) {
    // More writes than etcd allows in one flat transaction (128).
    let s = b.open().await;
    let key = |i: usize| format!("/codis3/demo/big/k-{i:04}");
    let writes = (0..1100).map(|i| (key(i), bytes(&i.to_string()))).collect();
    s.write_batch(writes).await.unwrap();
    let listed = s.list("/codis3/demo/big").await.unwrap();
    assert_eq!(listed.len(), 1100);
    for (i, (k, v)) in listed.iter().enumerate() {
        assert_eq!(k, &key(i));
        assert_eq!(v, i.to_string().as_bytes());
    }
    s.write_batch((0..1100).map(|i| (key(i), None)).collect())
        .await
        .unwrap();
    assert!(s.list("/codis3/demo/big").await.unwrap().is_empty());
}

async fn deep_paths(b: Backend) {
    let s = b.open().await;
    let key = "/codis3/demo/a/b/c/d/e/f/g/record";
    s.put(key, b"deep").await.unwrap();
    assert_eq!(s.get(key).await.unwrap(), bytes("deep"));
    assert_eq!(
        names(&s.list("/codis3/demo/a/b/c/d/e/f/g").await.unwrap()),
        [key]
    );
    assert!(s.list("/codis3/demo/a").await.unwrap().is_empty());
    s.delete(key).await.unwrap();
    assert_eq!(s.get(key).await.unwrap(), None);
}

async fn invalid_keys_are_rejected(b: Backend) {
    let s = b.open().await;
    for bad in [
        "",
        "/",
        "codis3/demo/x",
        "/codis3/../x",
        "/codis3/demo/..",
        "/codis3/./x",
        "/codis3/demo/",
        "//codis3",
        "/codis3//demo",
    ] {
        assert!(s.get(bad).await.is_err(), "get {bad:?}");
        assert!(s.put(bad, b"x").await.is_err(), "put {bad:?}");
        assert!(s.delete(bad).await.is_err(), "delete {bad:?}");
        assert!(s.list(bad).await.is_err(), "list {bad:?}");
        assert!(s.lock(bad, b"x").await.is_err(), "lock {bad:?}");
    }
    // One bad key fails the whole batch before anything is written.
    let batch = vec![
        ("/codis3/demo/ok".to_owned(), bytes("1")),
        ("/codis3/demo/../escape".to_owned(), bytes("2")),
    ];
    assert!(s.write_batch(batch).await.is_err());
    assert_eq!(s.get("/codis3/demo/ok").await.unwrap(), None);
}

async fn lock_refused_while_held(b: Backend) {
    let mine = Store::new(b.open().await, PRODUCT);
    let theirs = Store::new(b.open().await, PRODUCT);
    let me = owner("10.0.0.1:18080", 4242);
    let held = mine.acquire(&me).await.unwrap();
    assert_eq!(*held.state().borrow(), LockState::Held);
    assert_eq!(theirs.owner().await.unwrap(), Some(me.clone()));

    assert_locked(
        theirs.acquire(&owner("10.0.0.2:18080", 777)).await,
        "10.0.0.1:18080",
        4242,
    );
    // Not even the holder's own client may take it twice.
    assert_locked(mine.acquire(&me).await, "10.0.0.1:18080", 4242);
    // A refused attempt leaves the owner record alone.
    assert_eq!(theirs.owner().await.unwrap(), Some(me));
    // The holder can write while it holds the lock.
    mine.update_sentinel(&Sentinel::default()).await.unwrap();
    held.release().await.unwrap();
}

async fn release_then_relock(b: Backend) {
    let first = Store::new(b.open().await, PRODUCT);
    let second = Store::new(b.open().await, PRODUCT);
    let held = first.acquire(&owner("10.0.0.1:18080", 1)).await.unwrap();
    held.release().await.unwrap();
    assert_eq!(second.owner().await.unwrap(), None);

    let them = owner("10.0.0.2:18080", 2);
    let held = second.acquire(&them).await.unwrap();
    assert_eq!(first.owner().await.unwrap(), Some(them));
    // Another product's lock is independent.
    let other = Store::new(b.open().await, "demo2")
        .acquire(&owner("10.0.0.3:18080", 3))
        .await
        .unwrap();
    held.release().await.unwrap();
    other.release().await.unwrap();
    // And the first client can take it again after the second released it.
    let again = first.acquire(&owner("10.0.0.1:18080", 1)).await.unwrap();
    again.release().await.unwrap();
}

async fn typed_store_round_trip(b: Backend) {
    let writer = Store::new(b.open().await, PRODUCT);
    // Write as an owner does, under the lock (on etcd every write is then fenced).
    let lock = writer.acquire(&owner("10.0.0.1:18080", 1)).await.unwrap();
    let want = sample_product();
    let groups: Vec<Group> = want.groups.values().cloned().collect();
    writer
        .update_groups_and_slots(&groups, &want.slots)
        .await
        .unwrap();
    for proxy in want.proxies.values() {
        writer.update_proxy(proxy).await.unwrap();
    }
    writer.update_sentinel(&want.sentinel).await.unwrap();
    writer
        .update_slot_action_config(&want.slot_action)
        .await
        .unwrap();

    let reader = Store::new(b.open().await, PRODUCT);
    assert_same_product(&reader.load().await.unwrap(), &want);

    // Partial updates and deletions show up too.
    let mut want = want;
    want.slots[5].group_id = 2;
    writer.update_slots(&want.slots[5..6]).await.unwrap();
    // A group goes only once no slot points at it (load refuses dangling ones).
    for slot in &mut want.slots {
        if slot.group_id == 1 {
            slot.group_id = 2;
        }
        if slot.action.is_some_and(|a| a.target_id == 1) {
            slot.action = None;
        }
    }
    writer.update_slots(&want.slots).await.unwrap();
    writer.delete_group(1).await.unwrap();
    want.groups.remove(&1);
    writer.delete_proxy("aaa").await.unwrap();
    want.proxies.remove("aaa");
    assert_same_product(&reader.load().await.unwrap(), &want);
    lock.release().await.unwrap();

    // A product with no records loads as empty: every slot offline.
    let empty = Store::new(b.open().await, "empty").load().await.unwrap();
    assert!(
        empty
            .slots
            .iter()
            .enumerate()
            .all(|(i, s)| *s == SlotMapping::offline(i as u32))
    );
    assert!(empty.groups.is_empty() && empty.proxies.is_empty());
    assert_eq!(empty.sentinel, Sentinel::default());
}

async fn typed_store_load_reports_corrupt_record(b: Backend) {
    let raw = b.open().await;
    let store = Store::new(raw.clone(), PRODUCT);
    store.update_group(&Group::new(1)).await.unwrap();
    for (path, junk) in [
        (keys::group(PRODUCT, 3), "{not json"),
        // Valid JSON, but the slot id does not match the path.
        (
            keys::slot(PRODUCT, 7),
            r#"{"id": 5, "group_id": 1, "action": {}}"#,
        ),
        (keys::sentinel(PRODUCT), r#"{"servers": "not a list"}"#),
        // A group stored under another id.
        (keys::group(PRODUCT, 2), r#"{"id": 7, "servers": []}"#),
        // A slot of a group that does not exist.
        (
            keys::slot(PRODUCT, 9),
            r#"{"id": 9, "group_id": 4, "action": {}}"#,
        ),
        // A slot action toward a group that does not exist.
        (
            keys::slot(PRODUCT, 9),
            r#"{"id": 9, "group_id": 1, "action": {"index": 1, "state": "pending", "target_id": 5}}"#,
        ),
    ] {
        raw.put(&path, junk.as_bytes()).await.unwrap();
        match store.load().await {
            Err(e @ StoreError::Corrupt { .. }) => {
                assert!(e.to_string().contains(&path), "{e}");
                let StoreError::Corrupt { path: got, .. } = e else {
                    unreachable!()
                };
                // The local store names the file; the others the key.
                assert!(got.ends_with(&path), "{got} for {path}");
                if let Backend::Local(_) = b {
                    assert!(std::path::Path::new(&got).is_file(), "{got}");
                }
            }
            Err(e) => panic!("expected Corrupt for {path}, got {e}"),
            Ok(_) => panic!("loaded despite the corrupt record at {path}"),
        }
        raw.delete(&path).await.unwrap();
    }
    assert_eq!(store.load().await.unwrap().groups.len(), 1);
}

// === local backend ===

mod local_backend {
    use std::fs;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    const LOCK_KEY: &str = "/codis3/demo/topom";

    #[tokio::test]
    async fn codis_path_layout_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("nested/root");
        let raw = LocalStore::open(&root).unwrap();
        assert_eq!(raw.describe(), format!("local:{}", root.display()));
        let store = Store::new(Arc::new(raw), PRODUCT);
        store
            .update_slots(&[SlotMapping {
                id: 1,
                group_id: 2,
                action: None,
            }])
            .await
            .unwrap();
        let file = root.join("data/codis3/demo/slots/slot-0001");
        assert_eq!(
            fs::read_to_string(&file).unwrap(),
            "{\n    \"id\": 1,\n    \"group_id\": 2,\n    \"action\": {}\n}"
        );
        let lock = store.acquire(&owner("10.0.0.1:18080", 9)).await.unwrap();
        assert!(root.join("codis3.demo.topom.lck").is_file());
        let record: TopomRecord =
            serde_json::from_slice(&fs::read(root.join("data/codis3/demo/topom")).unwrap())
                .unwrap();
        assert_eq!(record.pid, 9);
        lock.release().await.unwrap();
        assert!(!root.join("data/codis3/demo/topom").exists());
        assert_eq!(fs::read_dir(root.join("temp")).unwrap().count(), 0);
    }

    /// A reader must only ever see a whole old or a whole new record, and no temp
    /// file may be left behind.
    #[tokio::test]
    async fn writes_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let key = "/codis3/demo/group/group-0001";
        let file = dir.path().join("data/codis3/demo/group/group-0001");
        // Different lengths, so a torn or truncated read cannot match either.
        let a = vec![b'a'; 1 << 20];
        let b = vec![b'b'; (1 << 20) + 7];
        store.put(key, &a).await.unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (stop, file, a, b) = (stop.clone(), file.clone(), a.clone(), b.clone());
            std::thread::spawn(move || {
                let mut reads = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let got = fs::read(&file).expect("the record vanished during a rewrite");
                    assert!(
                        got == a || got == b,
                        "read a torn record of {} bytes",
                        got.len()
                    );
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..40 {
            store
                .put(key, if i % 2 == 0 { &b } else { &a })
                .await
                .unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let reads = reader.join().unwrap();
        assert!(reads > 0);
        assert_eq!(fs::read_dir(dir.path().join("temp")).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn delete_of_a_directory_is_recursive() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        for key in [
            "/codis3/demo/proxy/proxy-a",
            "/codis3/demo/proxy/proxy-b",
            "/codis3/demo/proxy/sub/x",
            "/codis3/demo/sentinel",
        ] {
            store.put(key, b"1").await.unwrap();
        }
        store.delete("/codis3/demo/proxy").await.unwrap();
        assert!(!dir.path().join("data/codis3/demo/proxy").exists());
        assert!(store.list("/codis3/demo/proxy").await.unwrap().is_empty());
        assert_eq!(
            store.get("/codis3/demo/sentinel").await.unwrap(),
            bytes("1")
        );
    }

    #[tokio::test]
    async fn lock_is_released_when_the_handle_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let a = LocalStore::open(dir.path()).unwrap();
        let b = LocalStore::open(dir.path()).unwrap();
        let me = serde_json::to_vec(&owner("10.0.0.1:18080", 1)).unwrap();
        let held = a.lock(LOCK_KEY, &me).await.unwrap();
        assert_locked(b.lock(LOCK_KEY, b"them").await, "10.0.0.1:18080", 1);
        drop(held);
        // The record stays, as after a crash, but no longer blocks anyone.
        assert_eq!(b.get(LOCK_KEY).await.unwrap(), Some(me));
        let held = b.lock(LOCK_KEY, b"them").await.unwrap();
        assert_eq!(a.get(LOCK_KEY).await.unwrap(), bytes("them"));
        held.release().await.unwrap();
    }

    #[tokio::test]
    async fn stale_owner_record_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let dead = serde_json::to_vec(&owner("10.0.0.9:18080", 99999)).unwrap();
        store.put(LOCK_KEY, &dead).await.unwrap();
        let held = store.lock(LOCK_KEY, b"alive").await.unwrap();
        assert_eq!(store.get(LOCK_KEY).await.unwrap(), bytes("alive"));
        held.release().await.unwrap();
    }

    /// Another process holds the OS lock: refused, naming the owner's record;
    /// after that process is killed with SIGKILL the lock is free at once.
    #[tokio::test]
    async fn lock_held_by_a_killed_process_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let lock_file = dir.path().join("codis3.demo.topom.lck");
        // The shell opens the lock file, flock(1) locks that open file, and exec
        // keeps it open in `sleep`: one process, our child, holds the lock.
        let mut holder = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 9>>"$0"; flock --exclusive --nonblock 9 && echo locked && exec sleep 600"#)
            .arg(&lock_file)
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot run sh");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked", "the helper could not take the lock");
        let pid = holder.id();
        let record = serde_json::to_vec(&owner("10.0.0.7:18080", pid)).unwrap();
        store.put(LOCK_KEY, &record).await.unwrap();

        assert_locked(store.lock(LOCK_KEY, b"me").await, "10.0.0.7:18080", pid);

        holder.kill().unwrap();
        holder.wait().unwrap();
        let held = store.lock(LOCK_KEY, b"me").await.unwrap();
        assert_eq!(store.get(LOCK_KEY).await.unwrap(), bytes("me"));
        held.release().await.unwrap();
    }
}

// === etcd backend ===

#[cfg(feature = "etcd")]
mod etcd_backend {
    use std::time::{Duration, Instant};

    use etcd_client::PutOptions;
    use topom::store::etcd::{EtcdOptions, EtcdStore};

    use super::common::etcd::EtcdServer;
    use super::common::{ports::free_port, wait_for_watch};
    use super::*;

    const LOCK_KEY: &str = "/codis3/demo/topom";

    fn short_lease() -> EtcdOptions {
        EtcdOptions {
            lease_ttl: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            user: None,
        }
    }

    async fn connect(server: &EtcdServer, prefix: &str) -> EtcdStore {
        EtcdStore::connect(&server.endpoints(), prefix, short_lease())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn dropped_holder_expires_after_the_ttl() {
        let server = EtcdServer::start().await;
        let a = connect(&server, "").await;
        let b = connect(&server, "").await;
        let me = serde_json::to_vec(&owner("10.0.0.1:18080", 1)).unwrap();
        let held = a.lock(LOCK_KEY, &me).await.unwrap();
        drop(held);
        let dropped = Instant::now();
        // A crash does not revoke: the key stays until the lease runs out, and
        // the next taker waits for that instead of failing.
        assert_eq!(b.get(LOCK_KEY).await.unwrap(), Some(me));
        let held = b.lock(LOCK_KEY, b"them").await.unwrap();
        let gone = dropped.elapsed();
        eprintln!("lock taken {gone:?} after the holder was dropped (TTL 2 s)");
        assert!(
            gone >= Duration::from_millis(1000),
            "taken after only {gone:?}: the dead holder's lease was not waited out"
        );
        assert_eq!(
            b.get(LOCK_KEY).await.unwrap().as_deref(),
            Some(&b"them"[..])
        );
        // The old holder's writes are fenced off now.
        assert!(matches!(
            a.put("/codis3/demo/sentinel", b"{}").await,
            Err(StoreError::LockLost(_))
        ));
        assert_eq!(b.get("/codis3/demo/sentinel").await.unwrap(), None);
        held.release().await.unwrap();
    }

    #[tokio::test]
    async fn lease_lost_when_etcd_dies_and_regained_after_restart() {
        let mut server = EtcdServer::start().await;
        let a = connect(&server, "").await;
        let held = a.lock(LOCK_KEY, b"me").await.unwrap();
        let mut state = held.state();
        a.put("/codis3/demo/sentinel", b"1").await.unwrap();

        server.kill();
        let lost = wait_for_watch(&mut state, Duration::from_secs(10), "Lost", |s| {
            *s == LockState::Lost
        })
        .await;
        eprintln!("lock state Lost {lost:?} after etcd was killed (TTL 2 s)");
        for result in [
            a.put("/codis3/demo/sentinel", b"2").await,
            a.delete("/codis3/demo/sentinel").await,
            a.write_batch(vec![("/codis3/demo/x".into(), bytes("1"))])
                .await,
        ] {
            assert!(matches!(result, Err(StoreError::LockLost(_))), "{result:?}");
        }

        let restart = Instant::now();
        server.restart().await;
        let restarted = restart.elapsed();
        let held_again = wait_for_watch(&mut state, Duration::from_secs(20), "Held", |s| {
            *s == LockState::Held
        })
        .await;
        eprintln!("etcd restarted in {restarted:?}; lock Held again {held_again:?} later");
        a.put("/codis3/demo/sentinel", b"3").await.unwrap();
        assert_eq!(a.get("/codis3/demo/sentinel").await.unwrap(), bytes("3"));
        assert_eq!(a.get(LOCK_KEY).await.unwrap(), bytes("me"));
        held.release().await.unwrap();
        assert_eq!(a.get(LOCK_KEY).await.unwrap(), None);
    }

    /// A holder whose key was taken over (here: re-bound to another lease behind
    /// its back) cannot write; it takes the lock back once the key is free.
    #[tokio::test]
    async fn writes_are_fenced_by_the_lock() {
        let server = EtcdServer::start().await;
        let a = connect(&server, "").await;
        let held = a.lock(LOCK_KEY, b"me").await.unwrap();
        let mut state = held.state();
        a.put("/codis3/demo/sentinel", b"mine").await.unwrap();

        let mut raw = server.client().await;
        let intruder = raw.lease_grant(60, None).await.unwrap().id();
        raw.put(
            LOCK_KEY,
            "intruder",
            Some(PutOptions::new().with_lease(intruder)),
        )
        .await
        .unwrap();
        assert!(matches!(
            a.put("/codis3/demo/sentinel", b"stale").await,
            Err(StoreError::LockLost(_))
        ));
        assert_eq!(*state.borrow(), LockState::Lost);
        assert!(matches!(
            a.write_batch(vec![("/codis3/demo/x".into(), bytes("1"))])
                .await,
            Err(StoreError::LockLost(_))
        ));
        let b = connect(&server, "").await;
        assert_eq!(b.get("/codis3/demo/sentinel").await.unwrap(), bytes("mine"));
        assert_eq!(b.get("/codis3/demo/x").await.unwrap(), None);
        assert_eq!(b.get(LOCK_KEY).await.unwrap(), bytes("intruder"));

        // The intruder goes away: the holder takes the lock back by itself.
        raw.lease_revoke(intruder).await.unwrap();
        let took = wait_for_watch(&mut state, Duration::from_secs(10), "Held", |s| {
            *s == LockState::Held
        })
        .await;
        eprintln!("lock retaken {took:?} after the intruder left");
        assert_eq!(b.get(LOCK_KEY).await.unwrap(), bytes("me"));
        a.put("/codis3/demo/sentinel", b"mine again").await.unwrap();
        held.release().await.unwrap();
    }

    /// SIGSTOP makes etcd hang rather than refuse: requests time out, and the lock
    /// is given up after the TTL.
    #[tokio::test]
    async fn hung_etcd_times_out_and_loses_the_lock() {
        let server = EtcdServer::start().await;
        let a = connect(&server, "").await;
        let held = a.lock(LOCK_KEY, b"me").await.unwrap();
        let mut state = held.state();
        server.pause();
        let start = Instant::now();
        let err = a.get("/codis3/demo/sentinel").await.unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(
            err.to_string().contains(&server.client_port().to_string()),
            "{err}"
        );
        assert!(
            took < Duration::from_secs(3),
            "get took {took:?} with a 1 s timeout"
        );
        let lost = wait_for_watch(&mut state, Duration::from_secs(10), "Lost", |s| {
            *s == LockState::Lost
        })
        .await;
        eprintln!("lock Lost {lost:?} after etcd hung (TTL 2 s)");
        server.resume();
        wait_for_watch(&mut state, Duration::from_secs(20), "Held", |s| {
            *s == LockState::Held
        })
        .await;
        a.put("/codis3/demo/sentinel", b"ok").await.unwrap();
        held.release().await.unwrap();
    }

    #[tokio::test]
    async fn unreachable_etcd_fails_with_the_endpoint() {
        let port = free_port();
        let start = Instant::now();
        let err = EtcdStore::connect(&[format!("127.0.0.1:{port}")], "", short_lease())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(err.to_string().contains(&port.to_string()), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn prefix_keeps_deployments_apart() {
        let server = EtcdServer::start().await;
        let a = connect(&server, "/deploy-a").await;
        let b = connect(&server, "/deploy-b/").await;
        assert!(a.describe().contains("/deploy-a"), "{}", a.describe());
        a.put("/codis3/demo/sentinel", b"a").await.unwrap();
        assert_eq!(b.get("/codis3/demo/sentinel").await.unwrap(), None);
        assert!(b.list("/codis3/demo").await.unwrap().is_empty());
        let mut raw = server.client().await;
        let got = raw
            .get("/deploy-a/codis3/demo/sentinel", None)
            .await
            .unwrap();
        assert_eq!(got.kvs()[0].value(), b"a");
        // Each deployment has its own lock.
        let la = a.lock(LOCK_KEY, b"a").await.unwrap();
        let lb = b.lock(LOCK_KEY, b"b").await.unwrap();
        la.release().await.unwrap();
        lb.release().await.unwrap();
        assert!(
            EtcdStore::connect(&server.endpoints(), "no-slash", short_lease())
                .await
                .is_err()
        );
    }

    /// Beyond 4096 writes a batch is split into several transactions.
    #[tokio::test]
    async fn very_large_batch() {
        let server = EtcdServer::start().await;
        let a = connect(&server, "").await;
        let held = a.lock(LOCK_KEY, b"me").await.unwrap();
        let writes = (0..5000)
            .map(|i| (format!("/codis3/demo/huge/k-{i:05}"), bytes("v")))
            .collect();
        a.write_batch(writes).await.unwrap();
        assert_eq!(a.list("/codis3/demo/huge").await.unwrap().len(), 5000);
        held.release().await.unwrap();
    }
}

// === the fixtures themselves (tests/common) ===

mod harness {
    use std::time::Duration;

    use super::common::redis::RedisServer;
    use super::common::{ports::free_port, wait_until};

    async fn ping(url: &str) -> Result<String, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let mut con = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async(&mut con).await
    }

    #[tokio::test]
    async fn redis_server_lifecycle() {
        let mut server = RedisServer::start_with(&["maxmemory 10mb"]).await;
        assert_eq!(server.addr(), format!("127.0.0.1:{}", server.port()));
        assert_eq!(ping(&server.url()).await.unwrap(), "PONG");
        let client = redis::Client::open(server.url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let maxmemory: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(maxmemory, ["maxmemory", "10485760"]);

        let first = server.pid().unwrap();
        server.kill();
        assert_eq!(server.pid(), None);
        assert!(
            ping(&server.url()).await.is_err(),
            "still answering after kill"
        );
        server.restart().await;
        assert_ne!(server.pid(), Some(first));
        assert_eq!(ping(&server.url()).await.unwrap(), "PONG");
        server.terminate().await;
        assert!(
            ping(&server.url()).await.is_err(),
            "still answering after SIGTERM"
        );
    }

    #[test]
    fn free_ports_are_not_handed_out_twice() {
        let ports: std::collections::HashSet<u16> = (0..50).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 50);
    }

    #[tokio::test]
    #[should_panic(expected = "timed out after 100ms waiting for the impossible")]
    async fn wait_until_panics_on_timeout() {
        wait_until(Duration::from_millis(100), "the impossible", async || false).await;
    }
}
