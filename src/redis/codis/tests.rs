//! Unit tests of the codis-server migrator: commands, settings, plans, replies,
//! and passes against a stub server that never drains or is busy.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ASYNC: CodisMode = CodisMode::SemiAsync {
    maxbulks: 200,
    maxbytes: 1 << 20,
    numkeys: 100,
};

fn opts(timeout: Duration) -> MigrateOptions {
    MigrateOptions {
        batch_keys: 1,
        scan_count: 1,
        big_value_bytes: 0,
        timeout,
        interval: Duration::ZERO,
        throttle: Throttle::default(),
    }
}

fn moves(pairs: &[(u32, &str)]) -> BTreeMap<u32, String> {
    pairs.iter().map(|&(s, a)| (s, a.to_owned())).collect()
}

#[test]
fn commands() {
    let t = Target::parse("10.0.0.1:6380").unwrap();
    let s = Settings::new(CodisMode::Sync, &opts(Duration::from_secs(30)));
    assert_eq!(
        command(&s, &t, 7),
        ["SLOTSMGRTTAGSLOT", "10.0.0.1", "6380", "30000", "7"]
    );
    // Async: the timeout is capped at 5 s.
    let s = Settings::new(ASYNC, &opts(Duration::from_secs(30)));
    assert_eq!(
        command(&s, &t, 1023),
        [
            "SLOTSMGRTTAGSLOT-ASYNC",
            "10.0.0.1",
            "6380",
            "5000",
            "200",
            "1048576",
            "1023",
            "100"
        ]
    );
    // Values codis-server would refuse as a C int are clamped.
    let huge = CodisMode::SemiAsync {
        maxbulks: u32::MAX,
        maxbytes: u64::MAX,
        numkeys: u32::MAX,
    };
    let s = Settings::new(huge, &opts(Duration::from_millis(200)));
    let args = command(&s, &t, 0);
    assert_eq!(args[3], "200");
    for i in [4, 5, 7] {
        assert_eq!(args[i], "2147483647");
    }
    let v6 = Target::parse("[::1]:7000").unwrap();
    assert_eq!((v6.host.as_str(), v6.port), ("::1", 7000));
}

#[test]
fn settings_are_usable() {
    let s = Settings::new(CodisMode::Sync, &opts(Duration::ZERO));
    assert_eq!((s.timeout, s.timeout_ms), (DEFAULT_TIMEOUT, 1000));
    assert_eq!(s.call_deadline, Duration::from_secs(2));
    // Never 0 ms: that would mean codis-server's default.
    let s = Settings::new(CodisMode::Sync, &opts(Duration::from_micros(10)));
    assert_eq!(s.timeout_ms, 1);
    assert_eq!(s.call_deadline, Duration::from_micros(10) + CALL_MARGIN);
    let s = Settings::new(ASYNC, &opts(Duration::from_secs(3)));
    assert_eq!(
        (s.timeout_ms, s.call_deadline),
        (3000, Duration::from_secs(6))
    );
}

#[test]
fn targets_and_plans() {
    let m = moves(&[(1, "h:1"), (2, "h:2"), (3, "h:1"), (5000, "h:3")]);
    let (targets, slots) = parse_targets(&m).unwrap();
    // The out-of-range slot is dropped, its target never parsed.
    assert_eq!(targets.len(), 2);
    assert_eq!(slots, [(1, 0), (2, 1), (3, 0)]);
    for bad in ["nohost", "h:", ":1", "h:99999", "h:0", "h:x"] {
        assert!(parse_targets(&moves(&[(1, bad)])).is_err(), "{bad}");
    }
    let sync = plan(CodisMode::Sync, &[0, 2], &slots);
    assert_eq!(sync.len(), 6);
    assert_eq!(
        sync[3],
        Unit {
            db: 2,
            slots: vec![(1, 0)]
        }
    );
    // Semi-async: one unit per db holding every slot, never a db twice.
    let semi = plan(ASYNC, &[0, 2], &slots);
    assert_eq!(semi.len(), 2);
    assert!(semi.iter().all(|u| u.slots == slots));
    assert!(plan(ASYNC, &[], &slots).is_empty());
}

#[test]
fn keyspace_and_key_size() {
    let info = "# Keyspace\r\ndb3:keys=5,expires=1,avg_ttl=0\r\ndb0:keys=2,expires=0\r\n\
                db7:keys=0,expires=0\r\ndbx:keys=1\r\n";
    assert_eq!(keyspace(info), [(0, 2), (3, 5)]);
    // The throttle's estimate of a key: used_memory over the keys.
    let memory = "# Memory\r\nused_memory:7000\r\nused_memory_human:6.84K\r\n";
    assert_eq!(average_key_bytes(memory, 7), 1000);
    assert_eq!(average_key_bytes(memory, 0), 7000);
    assert_eq!(average_key_bytes("# Memory\r\n", 7), 0);
}

#[test]
fn replies() {
    let pair = |a, b| Value::Array(vec![Value::Int(a), Value::Int(b)]);
    assert_eq!(parse_reply(&pair(3, 0)), Some((3, 0)));
    assert_eq!(parse_reply(&pair(-1, 0)), None);
    assert_eq!(parse_reply(&Value::Int(1)), None);
    assert_eq!(parse_reply(&Value::Array(vec![Value::Int(1)])), None);

    let c = |reason: &str| {
        let e = RedisError::Reply {
            addr: "src:1".into(),
            reason: reason.into(),
        };
        classify("src:1", "dst:2", "SLOTSMGRTTAGSLOT", e)
    };
    for io in ["IOERR error or timeout", "ERR create client to h:2 failed"] {
        assert!(
            matches!(c(io), RedisError::Connect { addr, .. } if addr == "dst:2"),
            "{io}"
        );
    }
    assert!(matches!(c("ERR invalid password"), RedisError::Auth { addr, .. } if addr == "dst:2"));
    for busy in [
        "ERR the specified DB is being migrated",
        "ERR previous operation has not finished",
    ] {
        match c(busy) {
            RedisError::Reply { addr, reason } => {
                assert_eq!(addr, "src:1");
                assert!(
                    reason.contains(busy) && reason.contains("dst:2"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    let t = RedisError::Timeout {
        addr: "src:1".into(),
        timeout: Duration::from_secs(1),
    };
    assert!(matches!(
        classify("src:1", "dst:2", "X", t),
        RedisError::Timeout { .. }
    ));
}

#[test]
fn debug_hides_the_password() {
    let shown = format!("{:?}", CodisMigrator::new("s3cret", CodisMode::default()));
    assert!(!shown.contains("s3cret"), "{shown}");
    assert_eq!(
        CodisMigrator::new("", CodisMode::Sync)
            .with_parallel(0)
            .parallel,
        1
    );
}

/// A server answering INFO with one db holding keys, and every other
/// command with `reply`.
async fn stuck_server(reply: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.read(&mut buf).await {
            let req = &buf[..n];
            let out: &[u8] = if n == 0 {
                break;
            } else if req.windows(4).any(|w| w == b"INFO") {
                b"$24\r\n# Keyspace\r\ndb0:keys=5\r\n\r\n"
            } else if req.windows(6).any(|w| w == b"SELECT") {
                b"+OK\r\n"
            } else {
                reply
            };
            if sock.write_all(out).await.is_err() {
                break;
            }
        }
    });
    addr
}

#[tokio::test]
async fn a_slot_that_never_drains_fails_the_pass() {
    let addr = stuck_server(b"*2\r\n:0\r\n:5\r\n").await;
    let m = CodisMigrator::new("", CodisMode::Sync);
    let calls = std::sync::atomic::AtomicU32::new(0);
    let r = m
        .migrate_pass(
            &addr,
            &moves(&[(9, "h:1")]),
            &opts(Duration::from_secs(1)),
            &|_| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
        )
        .await;
    match r {
        Err(RedisError::Reply { reason, .. }) => assert!(reason.contains("slot 9"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(calls.into_inner(), MAX_IDLE_CALLS + 1);
}

#[tokio::test]
async fn a_busy_db_fails_the_pass() {
    let addr = stuck_server(b"-ERR the specified DB is being migrated\r\n").await;
    let m = CodisMigrator::new("", ASYNC);
    let r = m
        .migrate_pass(
            &addr,
            &moves(&[(9, "h:1")]),
            &opts(Duration::from_secs(1)),
            &|_| {},
        )
        .await;
    assert!(
        matches!(&r, Err(RedisError::Reply { reason, .. }) if reason.contains("being migrated")),
        "{r:?}"
    );
}
