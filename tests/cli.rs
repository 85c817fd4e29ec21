//! The admin CLI as an operator runs it: a real `topom-admin` process against a
//! real topom.

mod common;

use common::redis::RedisServer;
use common::topom::{Options, Topom};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// topom-admin is a crate of its own, so cargo names no binary of it to this
/// package's tests; it is built next to topom (`cargo build` at the workspace root,
/// which `scripts/test` runs first, builds both).
fn admin_bin() -> std::path::PathBuf {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_topom")).with_file_name("topom-admin");
    assert!(
        bin.exists(),
        "{} not found: build it first with `cargo build -p topom-admin`",
        bin.display()
    );
    bin
}

async fn admin(t: &Topom, args: &[&str]) -> Run {
    admin_at(t.addr(), args).await
}

/// Runs topom-admin with `--addr addrs` (one endpoint or several, comma-separated).
async fn admin_at(addrs: &str, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(admin_bin())
        .arg("--addr")
        .arg(addrs)
        .args(args)
        .env_remove("TOPOM_ADDR")
        .env_remove("TOPOM_TOKEN")
        .output()
        .await
        .expect("run topom-admin");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn operator_session() {
    let t = Topom::start_with(Options {
        token: Some("tok".into()),
        ..Default::default()
    })
    .await;
    let r = RedisServer::start().await;

    // Without the token a mutation fails with the server's status, exit 1.
    let denied = admin(&t, &["group", "create", "1"]).await;
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    assert!(
        denied.stderr.contains("UNAUTHENTICATED"),
        "{}",
        denied.stderr
    );

    let ok = |run: &Run| {
        assert_eq!(
            run.code, 0,
            "stdout: {}\nstderr: {}",
            run.stdout, run.stderr
        )
    };
    ok(&admin(&t, &["--token", "tok", "group", "create", "1"]).await);
    ok(&admin(
        &t,
        &["--token", "tok", "group", "add-server", "1", &r.addr()],
    )
    .await);
    ok(&admin(&t, &["--token", "tok", "slots", "assign", "0-1023", "1"]).await);

    let list = admin(&t, &["slots", "list"]).await;
    ok(&list);
    assert!(
        list.stdout.contains("0-1023") && list.stdout.contains(&r.addr()),
        "{}",
        list.stdout
    );

    let json = admin(&t, &["--json", "slots", "list"]).await;
    ok(&json);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("--json prints JSON");
    assert_eq!(v["slots"].as_array().map(Vec::len), Some(1024));
    assert_eq!(v["mappings"][5]["groupId"], 1);

    let groups = admin(&t, &["group", "list"]).await;
    ok(&groups);
    assert!(
        groups.stdout.contains(&r.addr()) && groups.stdout.contains("master"),
        "{}",
        groups.stdout
    );

    // A queued action shows in the actions view.
    ok(&admin(&t, &["--token", "tok", "slots", "action", "disable"]).await);
    ok(&admin(&t, &["--token", "tok", "group", "create", "2"]).await);
    let r2 = RedisServer::start().await;
    ok(&admin(
        &t,
        &["--token", "tok", "group", "add-server", "2", &r2.addr()],
    )
    .await);
    ok(&admin(
        &t,
        &["--token", "tok", "slots", "action", "create", "7", "2"],
    )
    .await);
    let actions = admin(&t, &["slots", "action", "list"]).await;
    ok(&actions);
    assert!(
        actions.stdout.contains("1 slot action(s)") && actions.stdout.contains("pending"),
        "{}",
        actions.stdout
    );

    // A server error: exit 1 with the code and the message.
    let missing = admin(&t, &["--token", "tok", "group", "remove", "42"]).await;
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("NOT_FOUND") && missing.stderr.contains("group-42"),
        "{}",
        missing.stderr
    );
    // A usage error: exit 2, nothing sent.
    let usage = admin(&t, &["group", "create", "0"]).await;
    assert_eq!(usage.code, 2, "{}", usage.stderr);
}

/// The migration throttle set in the config file reaches GetOverview and the
/// CLI's overview.
#[tokio::test]
async fn the_overview_shows_the_migration_throttle() {
    let t = Topom::start_with(Options {
        config: vec![
            "migration_max_keys_per_sec = 5000".into(),
            "migration_max_bytes_per_sec = \"64mb\"".into(),
        ],
        ..Default::default()
    })
    .await;
    let overview = admin(&t, &["overview"]).await;
    assert_eq!(overview.code, 0, "{}", overview.stderr);
    assert!(
        overview.stdout.contains("at most 5000 keys/s, 64.0M/s"),
        "{}",
        overview.stdout
    );
}

/// Several endpoints, the first one down (nothing listens there): reads and
/// mutations go on to the real topom, which is second.
#[tokio::test]
async fn a_dead_first_endpoint_is_skipped() {
    let t = Topom::start_with(Options {
        token: Some("tok".into()),
        ..Default::default()
    })
    .await;
    let dead = format!("127.0.0.1:{}", common::ports::free_port());
    let addrs = format!("{dead},{}", t.addr());
    let ok = |run: &Run| {
        assert_eq!(
            run.code, 0,
            "stdout: {}\nstderr: {}",
            run.stdout, run.stderr
        )
    };
    let overview = admin_at(&addrs, &["overview"]).await;
    ok(&overview);
    assert!(overview.stdout.contains("revision"), "{}", overview.stdout);
    ok(&admin_at(&addrs, &["--token", "tok", "group", "create", "7"]).await);
    let groups = admin(&t, &["--json", "group", "list"]).await;
    ok(&groups);
    let v: serde_json::Value = serde_json::from_str(&groups.stdout).expect("--json prints JSON");
    assert_eq!(v["groups"][0]["id"], 7, "{}", groups.stdout);
    // With no topom at either endpoint, the error names both.
    let gone = format!("127.0.0.1:{}", common::ports::free_port());
    let down = admin_at(&format!("{dead},{gone}"), &["overview"]).await;
    assert_eq!(down.code, 1, "{}", down.stderr);
    assert!(
        down.stderr.contains(&dead) && down.stderr.contains(&gone),
        "{}",
        down.stderr
    );
}

/// Against real instances on etcd: the CLI pointed at a standby reaches the
/// leader for mutations and for Resign, and shows both in the overview.
#[cfg(feature = "etcd")]
#[tokio::test]
async fn the_cli_follows_the_leader_from_a_standby() {
    let etcd = common::etcd::EtcdServer::start().await;
    let on = || Options {
        etcd: Some(etcd.endpoint()),
        config: vec!["etcd_lease_ttl = \"2s\"".into()],
        ..Default::default()
    };
    let leader = Topom::start_with(on()).await;
    let standby = Topom::start_with(on()).await;

    let created = admin(&standby, &["group", "create", "7"]).await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let groups = leader
        .client()
        .await
        .list_groups(topom::pb::ListGroupsRequest {})
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert_eq!(groups.iter().map(|g| g.id).collect::<Vec<_>>(), [7]);

    let overview = admin(&standby, &["overview"]).await;
    assert_eq!(overview.code, 0, "{}", overview.stderr);
    for needle in [leader.addr(), standby.addr(), "standby", "leader"] {
        assert!(
            overview.stdout.contains(needle),
            "{needle}: {}",
            overview.stdout
        );
    }

    // Resign sent to the standby goes to the leader, which hands over to it.
    let resigned = admin(&standby, &["resign", "--wait", "10s"]).await;
    assert_eq!(resigned.code, 0, "{}", resigned.stderr);
    assert!(
        resigned.stdout.contains(standby.addr()),
        "{}",
        resigned.stdout
    );
}
