//! A key already on the target (BUSYKEY): the target's copy is kept, and the
//! rest of its batch moves all the same.

use std::collections::BTreeMap;
use std::time::Duration;

use topom::model::slot_of;
use topom::redis::{MigrateOptions, Migrator, PlainMigrator, Value};

use crate::common::redis::RedisServer;
use crate::{client, cmd, move_all, opts, pipe, signal};

#[tokio::test]
async fn a_key_on_both_sides_keeps_the_targets_copy() {
    let (a, b) = tokio::join!(RedisServer::start(), RedisServer::start());
    // A busy key among others of its slot in db 0, and one alone in db 3.
    let busy = b"{c}busy\xfe".to_vec();
    let busy3 = b"{c}busy3".to_vec();
    let slot = slot_of(&busy);
    let others: Vec<Vec<u8>> = (0..10).map(|i| format!("{{c}}:{i}").into_bytes()).collect();
    let (mut ca, mut cb) = (client(&a, "", 0).await, client(&b, "", 0).await);
    let (mut ca3, mut cb3) = (client(&a, "", 3).await, client(&b, "", 3).await);
    let mut writes: Vec<_> = others.iter().map(|k| cmd(&[b"SET", k, b"old"])).collect();
    writes.push(cmd(&[b"SET", &busy, b"old"]));
    pipe(&mut ca, &writes).await;
    pipe(&mut cb, &[cmd(&[b"SET", &busy, b"new"])]).await;
    pipe(&mut ca3, &[cmd(&[b"SET", &busy3, b"old"])]).await;
    pipe(&mut cb3, &[cmd(&[b"SET", &busy3, b"new"])]).await;

    let moves = BTreeMap::from([(slot, b.addr())]);
    let m = PlainMigrator::new("");
    // The 11 keys of db 0 share a slot and a batch: the batch hits BUSYKEY.
    let pass = m
        .migrate_pass(&a.addr(), &moves, &opts(), &|_| {})
        .await
        .expect("pass");
    let p = &pass[&slot];
    assert_eq!(p.found, 12, "{p:?}");
    assert_eq!(p.moved, 10, "{p:?}");
    let shown = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
    assert_eq!(p.conflicts, [shown(&busy), shown(&busy3)]);

    for (src, dst, key) in [(&mut ca, &mut cb, &busy), (&mut ca3, &mut cb3, &busy3)] {
        assert_eq!(src.call(&[b"DBSIZE"]).await.unwrap(), Value::Int(0));
        let kept = dst.call(&[b"GET", key]).await.unwrap();
        assert_eq!(kept, Value::Bulk(b"new".to_vec()), "{}", shown(key));
    }
    for k in &others {
        let moved = cb.call(&[b"GET", k]).await.unwrap();
        assert_eq!(moved, Value::Bulk(b"old".to_vec()));
    }
    let done = move_all(&m, &a.addr(), &moves, &opts(), 2).await;
    assert_eq!(done.len(), 1, "{done:?}");
}

#[tokio::test]
async fn a_busy_key_in_one_of_several_migrates_in_flight_is_settled_alone() {
    let (a, b) = tokio::join!(RedisServer::start(), RedisServer::start());
    // 60 keys of one slot in batches of 10: the mover sends the MIGRATEs of
    // the batches waiting in one pipeline; two batches hold a key busy on B.
    let keys: Vec<Vec<u8>> = (0..60)
        .map(|i| format!("{{fly}}:{i:02}").into_bytes())
        .collect();
    let slot = slot_of(&keys[0]);
    let (mut ca, mut cb) = (client(&a, "", 0).await, client(&b, "", 0).await);
    let writes: Vec<_> = keys.iter().map(|k| cmd(&[b"SET", k, b"old"])).collect();
    pipe(&mut ca, &writes).await;
    // Which batch a key lands in follows SCAN's order: one busy key in the
    // second batch, one in the fifth.
    let order = match ca.call(&[b"SCAN", b"0", b"COUNT", b"1000"]).await {
        Ok(Value::Array(mut parts)) => match parts.pop() {
            Some(Value::Array(ks)) => ks,
            other => panic!("SCAN keys: {other:?}"),
        },
        other => panic!("SCAN: {other:?}"),
    };
    let busy: Vec<Vec<u8>> = [15, 45]
        .iter()
        .map(|&i| match &order[i] {
            Value::Bulk(k) => k.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let busy_writes: Vec<_> = busy.iter().map(|k| cmd(&[b"SET", k, b"new"])).collect();
    pipe(&mut cb, &busy_writes).await;
    let opts = MigrateOptions {
        batch_keys: 10,
        scan_count: 1000,
        ..opts()
    };
    let m = PlainMigrator::new("");
    let moves = BTreeMap::from([(slot, b.addr())]);
    // B frozen for a moment holds the first MIGRATE, so the other batches
    // queue up and go together (MIGRATE waits up to its 5 s timeout).
    signal(&b, "STOP");
    let thaw = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        signal(&b, "CONT");
    };
    let source = a.addr();
    let (pass, ()) = tokio::join!(m.migrate_pass(&source, &moves, &opts, &|_| {}), thaw);
    let pass = pass.expect("pass");
    let p = &pass[&slot];
    assert_eq!((p.found, p.moved, p.left), (60, 58, 0), "{p:?}");
    let mut conflicts = p.conflicts.clone();
    conflicts.sort();
    let mut shown: Vec<String> = busy
        .iter()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    shown.sort();
    assert_eq!(conflicts, shown);
    assert_eq!(ca.call(&[b"DBSIZE"]).await.unwrap(), Value::Int(0));
    assert_eq!(cb.call(&[b"DBSIZE"]).await.unwrap(), Value::Int(60));
    for k in &busy {
        assert_eq!(
            cb.call(&[b"GET", k]).await.unwrap(),
            Value::Bulk(b"new".to_vec())
        );
    }
    for k in keys.iter().filter(|k| !busy.contains(k)) {
        assert_eq!(
            cb.call(&[b"GET", k]).await.unwrap(),
            Value::Bulk(b"old".to_vec())
        );
    }
}
