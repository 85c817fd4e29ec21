//! Unit tests of the plain-Redis migrator: batching by target, sizing, MIGRATE
//! arguments and the judging of its replies.

use super::*;
use crate::model::slot_of;

fn moves(pairs: &[(u32, &str)]) -> BTreeMap<u32, String> {
    pairs.iter().map(|&(s, a)| (s, a.to_owned())).collect()
}

/// A key whose slot is `slot` (searching `k0`, `k1`, ...), skipping `skip`.
fn key_in(slot: u32, skip: usize) -> Vec<u8> {
    (0..)
        .map(|i| format!("k{i}").into_bytes())
        .filter(|k| slot_of(k) == slot)
        .nth(skip)
        .unwrap()
}

#[test]
fn batches_group_by_target() {
    let m = moves(&[(1, "h:1"), (2, "h:2"), (3, "h:1")]);
    let (targets, mut q) = Queues::new(&m, 2).unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(
        (targets[0].host.as_str(), targets[0].port.as_str()),
        ("h", "1")
    );

    let (a, b, c, d) = (key_in(1, 0), key_in(2, 0), key_in(3, 0), key_in(2, 1));
    assert_eq!(q.push(a.clone()), None);
    assert_eq!(q.push(b.clone()), None);
    // A key of a slot that is not migrating is not queued.
    assert_eq!(q.push(key_in(4, 0)), None);
    // Slots 1 and 3 share a target: their keys fill one batch.
    assert_eq!(q.push(c.clone()), Some((0, vec![(a, 1), (c, 3)])));
    assert_eq!(q.push(d.clone()), Some((1, vec![(b, 2), (d, 2)])));
    assert!(q.drain().is_empty());
    let e = key_in(1, 1);
    q.push(e.clone());
    assert_eq!(q.drain(), vec![(0, vec![(e, 1)])]);
    assert!(q.drain().is_empty());
}

#[test]
fn degenerate_moves() {
    // Out-of-range slots are ignored; a zero batch size means one key.
    let (targets, mut q) = Queues::new(&moves(&[(5000, "h:1"), (7, "h:2")]), 0).unwrap();
    assert_eq!(targets.len(), 1);
    let k = key_in(7, 0);
    assert_eq!(q.push(k.clone()), Some((0, vec![(k, 7)])));
    for bad in ["nohost", "h:", ":1", "h:99999", "h:x"] {
        assert!(Queues::new(&moves(&[(1, bad)]), 1).is_err(), "{bad}");
    }
    let t = Target::parse("[::1]:6379").unwrap();
    assert_eq!((t.host.as_str(), t.port.as_str()), ("::1", "6379"));
}

#[test]
fn big_values_go_alone() {
    let batch = vec![(b"a".to_vec(), 1), (b"b".to_vec(), 2), (b"c".to_vec(), 3)];
    let sizes = vec![Value::Int(100), Value::Nil, Value::Int(2000)];
    let s = split_by_size("h:1", batch.clone(), sizes.clone(), 1000).unwrap();
    assert_eq!(s.small, vec![(b"a".to_vec(), 1, 100)]);
    assert_eq!(s.big, vec![(b"c".to_vec(), 3, 2000)]);
    // 0: nothing is big.
    let s = split_by_size("h:1", batch.clone(), sizes, 0).unwrap();
    assert_eq!(s.small.len(), 2);
    assert!(s.big.is_empty());
    let bad = vec![Value::Int(1), Value::Error("ERR x".into()), Value::Int(1)];
    assert!(split_by_size("h:1", batch, bad, 0).is_err());
}

#[test]
fn migrate_replies() {
    let c = |r| classify("src:1", "dst:2", r);
    let err = |s: &str| {
        Err(RedisError::Reply {
            addr: "src:1".into(),
            reason: s.into(),
        })
    };
    assert_eq!(c(Ok(Value::Simple("OK".into()))).unwrap(), Migrated::Ok);
    assert_eq!(
        c(Ok(Value::Simple("NOKEY".into()))).unwrap(),
        Migrated::NoKey
    );
    assert_eq!(
        c(err(
            "ERR Target instance replied with error: BUSYKEY Target key name already exists."
        ))
        .unwrap(),
        Migrated::Busy
    );
    match c(err("IOERR error or timeout connecting to the client")) {
        Err(RedisError::Connect { addr, reason }) => {
            assert_eq!(addr, "dst:2");
            assert!(
                reason.contains("src:1") && reason.contains("IOERR"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    for auth in [
        "ERR Target instance replied with error: NOAUTH Authentication required.",
        "ERR Target instance replied with error: WRONGPASS invalid username-password pair",
        "ERR Target instance replied with error: ERR AUTH <password> called without any password configured for the default user.",
    ] {
        assert!(
            matches!(c(err(auth)), Err(RedisError::Auth { addr, .. }) if addr == "dst:2"),
            "{auth}"
        );
    }
    match c(err(
        "ERR Target instance replied with error: OOM command not allowed",
    )) {
        Err(RedisError::Reply { addr, reason }) => {
            assert_eq!(addr, "src:1");
            assert!(
                reason.contains("dst:2") && reason.contains("OOM"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        c(Ok(Value::Int(1))),
        Err(RedisError::Reply { .. })
    ));
    let timeout = Err(RedisError::Timeout {
        addr: "src:1".into(),
        timeout: Duration::from_secs(1),
    });
    assert!(matches!(c(timeout), Err(RedisError::Timeout { .. })));
}

#[test]
fn migrate_commands() {
    let t = Target::parse("10.0.0.1:6380").unwrap();
    let keys = [&b"a"[..], b"b\xff"];
    assert_eq!(
        migrate_args(&t, b"3", b"500", "", keys),
        [
            &b"MIGRATE"[..],
            b"10.0.0.1",
            b"6380",
            b"",
            b"3",
            b"500",
            b"KEYS",
            b"a",
            b"b\xff"
        ]
    );
    assert_eq!(
        migrate_args(&t, b"0", b"500", "pw", [&b"a"[..]]),
        [
            &b"MIGRATE"[..],
            b"10.0.0.1",
            b"6380",
            b"",
            b"0",
            b"500",
            b"AUTH",
            b"pw",
            b"KEYS",
            b"a"
        ]
    );
}

#[test]
fn keyspace_dbs() {
    let info = "# Keyspace\r\ndb3:keys=5,expires=1,avg_ttl=0\r\ndb0:keys=2,expires=0\r\n\
                db7:keys=0,expires=0\r\ndbx:keys=1\r\n";
    assert_eq!(dbs_with_keys(info), [0, 3]);
    assert!(dbs_with_keys("# Keyspace\r\n").is_empty());
}

#[test]
fn settings_are_usable() {
    let s = Settings::from(&MigrateOptions {
        batch_keys: 0,
        scan_count: 0,
        big_value_bytes: 0,
        timeout: Duration::ZERO,
        interval: Duration::ZERO,
        throttle: Throttle::default(),
    });
    assert_eq!(s.scan_count, 1);
    assert_eq!(s.timeout, DEFAULT_TIMEOUT);
    assert_eq!(s.timeout_ms, 1000);
    assert_eq!(s.migrate_deadline, Duration::from_secs(2));
    assert_eq!(s.scan_deadline, Duration::from_secs(9));
    let s = Settings::from(&MigrateOptions {
        batch_keys: 100,
        scan_count: 1000,
        big_value_bytes: 1 << 20,
        timeout: Duration::from_micros(10),
        interval: Duration::ZERO,
        throttle: Throttle::default(),
    });
    // MIGRATE's timeout argument is never 0 (which would mean 1 s).
    assert_eq!(s.timeout_ms, 1);
    assert_eq!(
        s.migrate_deadline,
        Duration::from_micros(10) + MIGRATE_MARGIN
    );
}

#[test]
fn debug_hides_the_password() {
    let shown = format!("{:?}", PlainMigrator::new("s3cret"));
    assert!(!shown.contains("s3cret"), "{shown}");
}
