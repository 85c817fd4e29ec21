//! The README's grpcurl recipes, run with a real grpcurl against the real server
//! (and a real redis-server), their output checked: grpcurl is a tested door.
//!
//! grpcurl is not a Rust crate: `scripts/test` installs the pinned version
//! (`github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3`) and passes its path in
//! `GRPCURL_BIN`. Without it these tests fail, saying how to get it.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::redis::RedisServer;
use common::topom::{Options, Topom};
use serde_json::Value;

/// The token of the server under test.
const TOKEN: &str = "T";

/// How long one grpcurl run may take (it starts, reflects, calls).
const RUN_DEADLINE: Duration = Duration::from_secs(30);

fn grpcurl_bin() -> String {
    let how = "scripts/test installs the pinned grpcurl and sets GRPCURL_BIN; by hand: \
               GOBIN=/tmp/grpcurl go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3 \
               && GRPCURL_BIN=/tmp/grpcurl/grpcurl cargo test --test grpcurl";
    let bin =
        std::env::var("GRPCURL_BIN").unwrap_or_else(|_| panic!("GRPCURL_BIN is not set. {how}"));
    let meta = std::fs::metadata(&bin).unwrap_or_else(|e| panic!("GRPCURL_BIN={bin}: {e}. {how}"));
    assert!(meta.is_file(), "GRPCURL_BIN={bin} is not a file. {how}");
    bin
}

/// What one grpcurl run printed.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `grpcurl -plaintext <args...>`, the address going where `{addr}` stands.
async fn grpcurl(addr: &str, args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.replace("{addr}", addr)).collect();
    let child = tokio::process::Command::new(grpcurl_bin())
        .arg("-plaintext")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start grpcurl");
    let out = tokio::time::timeout(RUN_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("grpcurl {args:?} ran for more than {RUN_DEADLINE:?}"))
        .expect("grpcurl output");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a recipe that must succeed; its stdout.
async fn ok(addr: &str, args: &[&str]) -> String {
    let r = grpcurl(addr, args).await;
    assert!(r.ok, "grpcurl {args:?} failed:\n{}{}", r.stdout, r.stderr);
    r.stdout
}

/// The JSON messages grpcurl printed, one after another.
fn messages(stdout: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("grpcurl printed no JSON ({e}):\n{stdout}"))
}

async fn start(period: &str) -> Topom {
    Topom::start_with(Options {
        token: Some(TOKEN.into()),
        config: vec![format!("stats_refresh_period = \"{period}\"")],
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn list_and_describe_show_the_services_and_their_comments() {
    let t = start("1s").await;
    let a = t.addr();

    let list = ok(a, &["{addr}", "list"]).await;
    for svc in [
        "topom.v1.Topom",
        "topom.v1.ProxyControl",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(list.lines().any(|l| l == svc), "{svc} not listed:\n{list}");
    }

    // A service: every RPC with its comment.
    let svc = ok(a, &["{addr}", "describe", "topom.v1.Topom"]).await;
    assert!(svc.contains("topom.v1.Topom is a service:"), "{svc}");
    assert!(svc.contains("rpc ListSlots ( .topom.v1.ListSlotsRequest )"));
    assert!(svc.contains("// Creates an empty group."), "{svc}");

    // One RPC: its proto comment.
    let rpc = ok(a, &["{addr}", "describe", "topom.v1.Topom.ListSlots"]).await;
    assert!(
        rpc.contains("topom.v1.Topom.ListSlots is a method:"),
        "{rpc}"
    );
    assert!(
        rpc.contains("// All 1024 slots: the stored mapping and the proxy view of each"),
        "{rpc}"
    );

    // A message: each field's comment.
    let msg = ok(a, &["{addr}", "describe", "topom.v1.CreateGroupRequest"]).await;
    assert!(msg.contains("message CreateGroupRequest {"), "{msg}");
    assert!(msg.contains("// The new group's id, 1..9999."), "{msg}");
    assert!(msg.contains("uint32 group_id = 1;"), "{msg}");
}

#[tokio::test]
async fn mutations_need_the_token_and_reads_show_the_cluster() {
    let redis = RedisServer::start().await;
    let t = start("100ms").await;
    let a = t.addr();

    // Without the token: refused, saying what to send.
    let refused = grpcurl(
        a,
        &[
            "-d",
            r#"{"group_id": 1}"#,
            "{addr}",
            "topom.v1.Topom/CreateGroup",
        ],
    )
    .await;
    assert!(!refused.ok, "CreateGroup without a token succeeded");
    assert!(
        refused.stderr.contains("Code: Unauthenticated"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("authorization: Bearer"));

    // With it: done.
    let auth = format!("authorization: Bearer {TOKEN}");
    let created = ok(
        a,
        &[
            "-H",
            &auth,
            "-d",
            r#"{"group_id": 1}"#,
            "{addr}",
            "topom.v1.Topom/CreateGroup",
        ],
    )
    .await;
    assert_eq!(messages(&created)[0]["group"]["id"], 1, "{created}");
    let add = format!(r#"{{"group_id": 1, "addr": "{}"}}"#, redis.addr());
    ok(
        a,
        &[
            "-H",
            &auth,
            "-d",
            &add,
            "{addr}",
            "topom.v1.Topom/AddGroupServer",
        ],
    )
    .await;

    // ListSlots: all 1024 slots, decoded from the pre-encoded response.
    let slots = messages(&ok(a, &["{addr}", "topom.v1.Topom/ListSlots"]).await);
    let s = &slots[0];
    assert_eq!(s["slots"].as_array().map(Vec::len), Some(1024), "{s}");
    assert_eq!(s["mappings"].as_array().map(Vec::len), Some(1024));
    assert!(
        s["revision"].as_str().is_some(),
        "uint64 is a JSON string: {s}"
    );

    // GetStats: the redis server, once a round has probed it.
    common::wait_until(
        Duration::from_secs(10),
        "GetStats to show the server",
        async || {
            let got = ok(a, &["{addr}", "topom.v1.Topom/GetStats"]).await;
            let stats = &messages(&got)[0]["stats"];
            stats["groups"][0]["servers"][0]["addr"] == redis.addr().as_str()
                && stats["groups"][0]["servers"][0]["stats"]["summary"]["role"] == "master"
        },
    )
    .await;

    // Health.
    let health = ok(
        a,
        &[
            "-d",
            r#"{"service": "topom.v1.Topom"}"#,
            "{addr}",
            "grpc.health.v1.Health/Check",
        ],
    )
    .await;
    assert_eq!(messages(&health)[0]["status"], "SERVING", "{health}");
}

#[tokio::test]
async fn watch_stats_streams_rounds() {
    let redis = RedisServer::start().await;
    let t = start("100ms").await;
    let mut c = t.client_with_token(TOKEN).await;
    c.create_group(topom::pb::CreateGroupRequest { group_id: 1 })
        .await
        .unwrap();
    c.add_group_server(topom::pb::AddGroupServerRequest {
        group_id: 1,
        addr: redis.addr(),
        datacenter: String::new(),
        ..Default::default()
    })
    .await
    .unwrap();

    // The stream never ends by itself: -max-time ends it (grpcurl then reports
    // DeadlineExceeded). Rounds come every 100 ms, so 5 s leaves room for many
    // even on a loaded machine; two are required.
    let r = grpcurl(
        t.addr(),
        &[
            "-max-time",
            "5",
            "-d",
            r#"{"fields": ["used_memory"]}"#,
            "{addr}",
            "topom.v1.Topom/WatchStats",
        ],
    )
    .await;
    assert!(r.stderr.contains("DeadlineExceeded"), "{}", r.stderr);
    let rounds: Vec<u64> = messages(&r.stdout)
        .iter()
        .map(|m| {
            m["round"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no round in {m}"))
        })
        .collect();
    assert!(rounds.len() >= 2, "rounds {rounds:?}:\n{}", r.stdout);
    assert!(
        rounds.windows(2).all(|w| w[0] < w[1]),
        "rounds must increase: {rounds:?}"
    );
    // The first message is the snapshot at hand; the last is a fresh round.
    let last = &messages(&r.stdout)[rounds.len() - 1];
    assert_eq!(last["servers"][0]["addr"], redis.addr().as_str(), "{last}");
    assert!(
        last["servers"][0]["stats"]["fields"]["used_memory"].is_string(),
        "the field filter keeps used_memory: {last}"
    );
}
