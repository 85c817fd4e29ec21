//! The stats probes and the connection pool against real `redis-server` and
//! Sentinel processes, and against fake servers that misbehave on purpose.

mod common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::ports::free_port;
use common::redis::RedisServer;
use common::sentinel::SentinelServer;
use common::wait_until;
use topom::model::InfoSections;
use topom::redis::{Pool, PooledProbe, RedisError, StatsProbe, Value};

/// The per-probe deadline used where the test is not about deadlines.
const T: Duration = Duration::from_secs(2);
/// How long pooled connections may sit idle (Codis: 5 s).
const IDLE: Duration = Duration::from_secs(5);

fn probe() -> PooledProbe {
    PooledProbe::new("", IDLE)
}

/// A listener whose connections are handed to `serve`; returns its address.
async fn fake_server<F, Fut>(serve: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(serve(sock));
        }
    });
    addr
}

/// Reads whatever the client sent (one command, in these tests).
async fn read_request(sock: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    matches!(sock.read(&mut buf).await, Ok(n) if n > 0)
}

#[tokio::test]
async fn server_info_of_a_master() {
    let redis = RedisServer::start().await;
    let info = probe().server_info(&redis.addr(), T).await.unwrap();
    assert!(info.contains_key("redis_version"), "{info:?}");
    assert_eq!(info.get("role").unwrap(), "master");
    for derived in [
        "used_memory",
        "connected_clients",
        "instantaneous_ops_per_sec",
    ] {
        assert!(info.contains_key(derived), "no {derived}: {info:?}");
    }
    // Only the sections of the derived fields, unless more are configured.
    assert!(!info.contains_key("used_cpu_sys"), "cpu: {info:?}");
    assert!(!info.contains_key("cmdstat_info"), "commandstats: {info:?}");
    let with_cpu = probe()
        .with_sections(&InfoSections::parse("cpu").unwrap())
        .server_info(&redis.addr(), T)
        .await
        .unwrap();
    assert!(with_cpu.contains_key("used_cpu_sys"), "{with_cpu:?}");
    assert!(with_cpu.contains_key("used_memory"), "{with_cpu:?}");
    let all = probe()
        .with_sections(&InfoSections::All)
        .server_info(&redis.addr(), T)
        .await
        .unwrap();
    assert!(all.contains_key("cmdstat_info"), "no commandstats: {all:?}");
}

/// codis-server (Redis 3.2) takes one INFO section name at most.
#[tokio::test]
async fn server_info_of_a_codis_server() {
    let bin = common::codis::bin("codis-server");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut cmd = std::process::Command::new(&bin);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let _server = common::process::ChildGuard::spawn(cmd, "codis-server");
    let addr = format!("127.0.0.1:{port}");
    let probe = probe();
    let mut last = None;
    wait_until(
        Duration::from_secs(10),
        "codis-server to answer INFO",
        async || {
            last = Some(probe.server_info(&addr, T).await);
            last.as_ref().is_some_and(Result::is_ok)
        },
    )
    .await;
    // Twice: the first call learns that it takes one section, the second asks
    // it that way at once.
    for _ in 0..2 {
        let info = probe.server_info(&addr, T).await.unwrap();
        assert!(
            info.get("redis_version").unwrap().starts_with("3.2"),
            "{info:?}"
        );
        assert_eq!(info.get("role"), Some("master"));
        assert!(info.contains_key("used_memory"), "{info:?}");
    }
}

#[tokio::test]
async fn server_info_of_a_replica() {
    let master = RedisServer::start().await;
    let replica =
        RedisServer::start_with(&[&format!("replicaof 127.0.0.1 {}", master.port())]).await;
    let info = probe().server_info(&replica.addr(), T).await.unwrap();
    assert_eq!(info.get("role").unwrap(), "slave");
    assert_eq!(info.get("master_host").unwrap(), "127.0.0.1");
    assert_eq!(info.get("master_port").unwrap(), master.port().to_string());
}

#[tokio::test]
async fn passwords() {
    let redis = RedisServer::start_with(&["requirepass s3cret"]).await;
    let addr = redis.addr();
    let info = PooledProbe::new("s3cret", IDLE)
        .server_info(&addr, T)
        .await
        .unwrap();
    assert_eq!(info.get("role").unwrap(), "master");

    for password in ["wrong", ""] {
        match PooledProbe::new(password, IDLE).server_info(&addr, T).await {
            Err(e @ RedisError::Auth { .. }) => {
                assert!(e.to_string().contains(&addr), "{e}");
            }
            other => panic!("password {password:?}: expected an auth error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn nothing_listening_fails_fast() {
    let addr = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let r = probe().server_info(&addr, Duration::from_secs(5)).await;
    let took = started.elapsed();
    match r {
        Err(e @ RedisError::Connect { .. }) => assert!(e.to_string().contains(&addr)),
        other => panic!("expected a connect error, got {other:?}"),
    }
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // Accepts and holds the sockets, never answers.
    let addr = fake_server(|mut sock| async move {
        let mut buf = [0u8; 4096];
        while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
    let probe = probe();
    let deadline = Duration::from_millis(500);
    for sentinel in [false, true] {
        let started = Instant::now();
        let r = if sentinel {
            probe
                .sentinel_info(&addr, "topom_test", deadline)
                .await
                .map(|_| ())
        } else {
            probe.server_info(&addr, deadline).await.map(|_| ())
        };
        let took = started.elapsed();
        match r {
            Err(RedisError::Timeout { addr: a, timeout }) => {
                assert_eq!((a.as_str(), timeout), (addr.as_str(), deadline));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(
            took >= deadline && took < deadline + Duration::from_millis(300),
            "sentinel={sentinel}: took {took:?}"
        );
        eprintln!("silent server (sentinel={sentinel}): timed out after {took:?}");
    }
    // The connections that timed out were closed, not pooled.
    assert_eq!(probe.idle_count(), 0);
}

#[tokio::test]
async fn garbage_is_an_error() {
    let addr = fake_server(|mut sock| async move {
        while read_request(&mut sock).await {
            if sock.write_all(b"@@@\r\n").await.is_err() {
                break;
            }
        }
    })
    .await;
    let probe = probe();
    match probe.server_info(&addr, T).await {
        Err(RedisError::Reply { reason, .. }) => assert!(reason.contains("protocol"), "{reason}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert!(probe.sentinel_info(&addr, "topom_test", T).await.is_err());
    assert_eq!(probe.idle_count(), 0);
}

#[tokio::test]
async fn closing_mid_reply_is_an_error() {
    let addr = fake_server(|mut sock| async move {
        if read_request(&mut sock).await {
            let _ = sock.write_all(b"$100\r\nredis_version:7").await;
        }
        // Dropping the socket closes it half way through the bulk.
    })
    .await;
    match probe().server_info(&addr, T).await {
        Err(RedisError::Connect { reason, .. }) => assert!(reason.contains("middle"), "{reason}"),
        other => panic!("expected a connection error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_huge_bulk_is_refused() {
    let addr = fake_server(|mut sock| async move {
        if read_request(&mut sock).await {
            let _ = sock.write_all(b"$100000000\r\n").await;
            let chunk = vec![b'x'; 64 << 10];
            // Streams until the client hangs up.
            while sock.write_all(&chunk).await.is_ok() {}
        }
    })
    .await;
    let started = Instant::now();
    match probe().server_info(&addr, T).await {
        Err(RedisError::Reply { reason, .. }) => assert!(reason.contains("exceeds"), "{reason}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert!(started.elapsed() < T, "took {:?}", started.elapsed());
}

/// `CLIENT ID` of the connection the pool uses for `addr`.
async fn client_id(pool: &Pool, addr: &str) -> Result<i64, RedisError> {
    match pool.call(addr, &[b"CLIENT", b"ID"], T).await? {
        Value::Int(id) => Ok(id),
        other => panic!("CLIENT ID answered {other:?}"),
    }
}

#[tokio::test]
async fn the_pool_reuses_a_connection() {
    let redis = RedisServer::start().await;
    let addr = redis.addr();
    let pool = Pool::new("", IDLE);
    let first = client_id(&pool, &addr).await.unwrap();
    assert_eq!(client_id(&pool, &addr).await.unwrap(), first);
    assert_eq!(pool.idle_count(), 1);

    // An error reply leaves the connection usable.
    let r = pool.call(&addr, &[b"NOSUCHCOMMAND"], T).await;
    assert!(matches!(r, Err(RedisError::Reply { .. })), "{r:?}");
    assert_eq!(pool.idle_count(), 1);
    assert_eq!(client_id(&pool, &addr).await.unwrap(), first);
}

#[tokio::test]
async fn the_pool_recovers_after_a_restart() {
    let mut redis = RedisServer::start().await;
    let addr = redis.addr();
    let pool = Pool::new("", IDLE);
    client_id(&pool, &addr).await.unwrap();
    assert_eq!(pool.idle_count(), 1);

    redis.restart().await;
    let mut failures = Vec::new();
    let mut ok = false;
    for _ in 0..3 {
        match client_id(&pool, &addr).await {
            Ok(_) => {
                ok = true;
                break;
            }
            Err(e) => failures.push(e),
        }
    }
    assert!(ok, "no call succeeded after the restart: {failures:?}");
    assert!(failures.len() <= 1, "{failures:?}");
    eprintln!(
        "after the restart: {} failed call(s) before success",
        failures.len()
    );
    assert_eq!(pool.idle_count(), 1);
}

#[tokio::test]
async fn sentinel_info_lists_only_the_product() {
    let master = RedisServer::start().await;
    let replica =
        RedisServer::start_with(&[&format!("replicaof 127.0.0.1 {}", master.port())]).await;
    let other = RedisServer::start().await;
    let probe = probe();
    // With the replica attached first, the Sentinel sees it on its first INFO
    // of the master instead of the next one, 10 s later.
    wait_until(
        Duration::from_secs(10),
        "the replica to attach",
        async || {
            probe
                .server_info(&master.addr(), T)
                .await
                .is_ok_and(|i| i.get("connected_slaves") == Some("1"))
        },
    )
    .await;

    let sentinel = SentinelServer::start(
        &[
            ("topom_test-1", &master.addr(), 1),
            ("other-1", &other.addr(), 1),
        ],
        &[],
    )
    .await;
    let took = wait_until(
        Duration::from_secs(15),
        "the Sentinel to report the replica",
        async || {
            probe
                .sentinel_info(&sentinel.addr(), "topom_test", T)
                .await
                .is_ok_and(|r| {
                    r.monitored
                        .get("topom_test-1")
                        .is_some_and(|g| !g.replicas.is_empty())
                })
        },
    )
    .await;
    eprintln!("the Sentinel reported the replica after {took:?}");

    let report = probe
        .sentinel_info(&sentinel.addr(), "topom_test", T)
        .await
        .unwrap();
    assert_eq!(report.info["sentinel_masters"], "2");
    assert_eq!(
        report.monitored.keys().collect::<Vec<_>>(),
        ["topom_test-1"]
    );
    let group = &report.monitored["topom_test-1"];
    assert_eq!(group.master["name"], "topom_test-1");
    assert_eq!(group.master["ip"], "127.0.0.1");
    assert_eq!(group.master["port"], master.port().to_string());
    assert_eq!(group.replicas.len(), 1);
    assert_eq!(group.replicas[0]["ip"], "127.0.0.1");
    assert_eq!(group.replicas[0]["port"], replica.port().to_string());

    // Another product sees only its own name.
    let report = probe
        .sentinel_info(&sentinel.addr(), "other", T)
        .await
        .unwrap();
    assert_eq!(report.monitored.keys().collect::<Vec<_>>(), ["other-1"]);
    assert!(report.monitored["other-1"].replicas.is_empty());
}

/// The RESP encoding of a flat field/value array.
fn flat(fields: &[(&str, &str)]) -> String {
    let mut out = format!("*{}\r\n", fields.len() * 2);
    for (k, v) in fields {
        out.push_str(&format!("${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len()));
    }
    out
}

#[tokio::test]
async fn sentinel_info_of_an_old_sentinel() {
    // Answers like a Sentinel older than 5.0 (no `SENTINEL replicas`), and
    // `topom_test-2` vanishes between `SENTINEL masters` and `slaves`.
    let addr = fake_server(|mut sock| async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let reply = if req.contains("masters") {
                let m1 = flat(&[
                    ("name", "topom_test-1"),
                    ("ip", "10.0.0.1"),
                    ("port", "6379"),
                ]);
                let m2 = flat(&[
                    ("name", "topom_test-2"),
                    ("ip", "10.0.0.2"),
                    ("port", "6379"),
                ]);
                let m3 = flat(&[
                    ("name", "topom_test-x"),
                    ("ip", "10.0.0.3"),
                    ("port", "6379"),
                ]);
                format!("*3\r\n{m1}{m2}{m3}")
            } else if req.contains("replicas") {
                "-ERR Unknown sentinel subcommand 'replicas'\r\n".to_owned()
            } else if req.contains("topom_test-1") {
                let r = flat(&[("ip", "10.0.0.9"), ("port", "6380"), ("flags", "slave")]);
                format!("*1\r\n{r}")
            } else if req.contains("slaves") {
                "-ERR No such master with that name\r\n".to_owned()
            } else {
                "$20\r\n# Sentinel\r\nmode:old\r\n".to_owned()
            };
            if sock.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
    })
    .await;
    let report = probe().sentinel_info(&addr, "topom_test", T).await.unwrap();
    assert_eq!(report.info["mode"], "old");
    assert_eq!(
        report.monitored.keys().collect::<Vec<_>>(),
        ["topom_test-1"]
    );
    let group = &report.monitored["topom_test-1"];
    assert_eq!(group.master["ip"], "10.0.0.1");
    assert_eq!(group.replicas.len(), 1);
    assert_eq!(group.replicas[0]["port"], "6380");
}

/// A listener that answers the first command of each connection with `header`
/// and then streams `item` until the client hangs up; `sent` counts the bytes
/// the client let through (what it had to buffer, at most).
async fn streaming_server(
    header: &'static [u8],
    item: &'static [u8],
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let addr = fake_server(move |mut sock| {
        let counter = counter.clone();
        async move {
            if !read_request(&mut sock).await || sock.write_all(header).await.is_err() {
                return;
            }
            let chunk: Vec<u8> = item.iter().copied().cycle().take(64 << 10).collect();
            while sock.write_all(&chunk).await.is_ok() {
                counter.fetch_add(chunk.len(), Ordering::Relaxed);
            }
        }
    })
    .await;
    (addr, sent)
}

/// The address an operator types for add-server may be anything: a 512 MB bulk
/// header or an endless array is cut off at the probe's reply budget (1 MiB),
/// long before the deadline, and says so.
#[tokio::test]
async fn a_hostile_add_server_target_is_cut_off() {
    use std::sync::atomic::Ordering;
    use topom::redis::{Connector, RedisAdmin};
    // Far above what the budget allows, far below what 512 MB would need.
    const MAX_SENT: usize = 64 << 20;
    let deadline = Duration::from_secs(30);
    for (header, item) in [
        (&b"$536870912\r\n"[..], &b"x"[..]),
        (b"*2147483647\r\n", b":1\r\n"),
    ] {
        let (addr, sent) = streaming_server(header, item).await;
        let connector = Connector::new("", deadline);
        let started = Instant::now();
        let probed = connector.probe(&addr).await;
        let info = connector.server_info(&addr).await;
        let took = started.elapsed();
        for r in [probed.map(drop), info.map(drop)] {
            match r {
                Err(e @ RedisError::Reply { .. }) => {
                    let shown = e.to_string();
                    assert!(shown.contains(&addr), "{shown}");
                    assert!(
                        shown.contains("reply exceeds the limit of 1048576 bytes"),
                        "{shown}"
                    );
                }
                other => panic!("{header:?}: expected a reply error, got {other:?}"),
            }
        }
        let sent = sent.load(Ordering::Relaxed);
        assert!(sent < MAX_SENT, "{header:?}: the client took {sent} bytes");
        assert!(took < deadline / 2, "{header:?}: took {took:?}");
        let header = String::from_utf8_lossy(header);
        eprintln!("{header:?}: cut off after {took:?}, {sent} bytes sent");
    }
}
