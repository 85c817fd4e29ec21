//! The cases every backend must pass, each an `async fn(Backend)` that
//! `conformance!` in main.rs runs once per backend.

use topom::model::{Group, Sentinel, SlotMapping};
use topom::store::{LockState, Store, StoreError, keys};

use crate::support::{assert_locked, assert_same_product, bytes, names, owner, sample_product};
use crate::{Backend, PRODUCT};

pub async fn get_missing_is_none(b: Backend) {
    let s = b.open().await;
    assert_eq!(s.get("/codis3/demo/nothing").await.unwrap(), None);
    assert_eq!(s.get("/codis3/nowhere/at/all").await.unwrap(), None);
}

pub async fn put_get_round_trip(b: Backend) {
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

pub async fn put_overwrites(b: Backend) {
    let s = b.open().await;
    let key = "/codis3/demo/group/group-0001";
    s.put(key, b"a much longer first value").await.unwrap();
    s.put(key, b"short").await.unwrap();
    // No tail of the longer value may survive.
    assert_eq!(s.get(key).await.unwrap(), bytes("short"));
}

pub async fn delete_is_idempotent(b: Backend) {
    let s = b.open().await;
    let key = "/codis3/demo/proxy/proxy-x";
    s.delete(key).await.unwrap();
    s.delete("/codis3/missing/dir/key").await.unwrap();
    s.put(key, b"1").await.unwrap();
    s.delete(key).await.unwrap();
    assert_eq!(s.get(key).await.unwrap(), None);
    s.delete(key).await.unwrap();
}

pub async fn list_returns_direct_children_sorted(b: Backend) {
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

pub async fn write_batch_applies_in_order(b: Backend) {
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

pub async fn write_batch_large(b: Backend) {
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

pub async fn deep_paths(b: Backend) {
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

pub async fn invalid_keys_are_rejected(b: Backend) {
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

pub async fn lock_refused_while_held(b: Backend) {
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

pub async fn release_then_relock(b: Backend) {
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

pub async fn typed_store_round_trip(b: Backend) {
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

pub async fn typed_store_load_reports_corrupt_record(b: Backend) {
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
