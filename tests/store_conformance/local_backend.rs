//! What only the local backend has: files on disk and an OS file lock.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use topom::model::{SlotMapping, TopomRecord};
use topom::store::local::LocalStore;
use topom::store::{MetaStore, Store};

use crate::PRODUCT;
use crate::support::{assert_locked, bytes, owner};

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
        serde_json::from_slice(&fs::read(root.join("data/codis3/demo/topom")).unwrap()).unwrap();
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
