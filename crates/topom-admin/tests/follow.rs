//! `topom-admin` with several endpoints, against fake topom instances on
//! loopback: a standby that refuses and names the leader in its trailers, a
//! leader that answers every RPC with an empty message, one that never
//! answers, and one whose connection breaks mid-call. Each test runs the real
//! binary, as an operator would.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::metadata::MetadataValue;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

/// How a fake instance answers.
#[derive(Clone)]
enum Role {
    /// Every RPC succeeds with an empty message.
    Leader,
    /// UNAVAILABLE (FAILED_PRECONDITION for Resign) with `topom-leader`.
    Standby(String),
    /// Records the call and never answers.
    Hang,
    /// Records the call, then asks its relay to cut the connection.
    Break(Arc<Notify>),
}

/// One fake topom: its role and the RPCs it received, in order.
#[derive(Clone)]
struct Fake {
    role: Role,
    calls: Arc<Mutex<Vec<String>>>,
}

impl NamedService for Fake {
    const NAME: &'static str = "topom.v1.Topom";
}

/// The leader's answer: any request decodes as `()` (unknown fields are
/// skipped) and the empty reply decodes as the default of any response.
struct Empty;

impl UnaryService<()> for Empty {
    type Response = ();
    type Future = std::future::Ready<Result<Response<()>, Status>>;
    fn call(&mut self, _: Request<()>) -> Self::Future {
        std::future::ready(Ok(Response::new(())))
    }
}

impl Service<http::Request<Body>> for Fake {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let method = req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        self.calls.lock().unwrap().push(method.clone());
        let role = self.role.clone();
        Box::pin(async move {
            match role {
                Role::Leader => {
                    let mut grpc = Grpc::new(tonic_prost::ProstCodec::<(), ()>::default());
                    Ok(grpc.unary(Empty, req).await)
                }
                Role::Standby(leader) => {
                    let mut status = if method == "Resign" {
                        Status::failed_precondition("this instance is a standby")
                    } else {
                        Status::unavailable(format!("standby: the leader is {leader}"))
                    };
                    status
                        .metadata_mut()
                        .insert("topom-leader", MetadataValue::try_from(&leader).unwrap());
                    Ok(status.into_http())
                }
                Role::Hang => std::future::pending().await,
                Role::Break(cut) => {
                    cut.notify_one();
                    std::future::pending().await
                }
            }
        })
    }
}

/// A running fake; stops with the test's runtime.
struct Instance {
    addr: String,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Instance {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

async fn start(role: Role) -> Instance {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let fake = Fake {
        role,
        calls: calls.clone(),
    };
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(fake)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    Instance { addr, calls }
}

/// A fake whose connection is cut while it holds a call: a relay in
/// front of a `Break` instance drops both sides when told to.
async fn start_breaking() -> Instance {
    let cut = Arc::new(Notify::new());
    let inner = start(Role::Break(cut.clone())).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let upstream = inner.addr.clone();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let cut = cut.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::select! {
                    _ = tokio::io::copy(&mut cr, &mut sw) => {}
                    _ = tokio::io::copy(&mut sr, &mut cw) => {}
                    () = cut.notified() => {
                        // Both sides closed while the call is in flight.
                        cw.shutdown().await.ok();
                        sw.shutdown().await.ok();
                    }
                }
            });
        }
    });
    Instance {
        addr,
        calls: inner.calls,
    }
}

/// A loopback port nobody listens on.
fn dead() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `topom-admin args...` with `env` (TOPOM_ADDR and TOPOM_TOKEN cleared first).
async fn admin(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_topom-admin"));
    cmd.args(args)
        .env_remove("TOPOM_ADDR")
        .env_remove("TOPOM_TOKEN")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Far beyond any --timeout used below, so only a hang trips it.
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("topom-admin finished within 60 s")
        .expect("run topom-admin");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_failed(r: &Run) {
    if std::env::var_os("SHOW_STDERR").is_some() {
        eprintln!("{}", r.stderr);
    }
    assert_eq!(r.code, 1, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
}

fn assert_ok(r: &Run) {
    if std::env::var_os("SHOW_STDERR").is_some() {
        eprintln!("{}", r.stderr);
    }
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
}

/// Runs `args` with only a standby in `--addr`, which names a leader not in
/// the list (learned from the trailer); both must have seen `rpc` once.
async fn via_standby(args: &[&str], rpc: &str) -> Run {
    let leader = start(Role::Leader).await;
    let standby = start(Role::Standby(leader.addr.clone())).await;
    let all: Vec<&str> = ["--addr", standby.addr.as_str()]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let r = admin(&all, &[]).await;
    assert_ok(&r);
    assert_eq!(standby.calls(), [rpc]);
    assert_eq!(leader.calls(), [rpc]);
    r
}

#[tokio::test]
async fn a_mutation_follows_the_leader_a_standby_names() {
    via_standby(&["group", "create", "1"], "CreateGroup").await;
}

#[tokio::test]
async fn a_stats_stream_opens_on_the_leader() {
    via_standby(&["stats", "--watch", "--json"], "WatchStats").await;
}

#[tokio::test]
async fn resign_on_a_standby_goes_to_the_leader() {
    // A standby refuses Resign with FAILED_PRECONDITION, naming the leader.
    let r = via_standby(&["resign", "--wait", "1s"], "Resign").await;
    assert!(r.stdout.contains("leader is now"), "{}", r.stdout);
}

#[tokio::test]
async fn a_dead_endpoint_is_skipped_even_for_a_mutation() {
    let leader = start(Role::Leader).await;
    let addrs = format!("{},{}", dead(), leader.addr);
    let r = admin(&["--addr", &addrs, "group", "create", "1"], &[]).await;
    assert_ok(&r);
    assert_eq!(leader.calls(), ["CreateGroup"]);
}

#[tokio::test]
async fn topom_addr_is_used_without_addr_and_the_flag_wins() {
    let leader = start(Role::Leader).await;
    let list = format!("{},{}", dead(), leader.addr);
    let r = admin(&["overview"], &[("TOPOM_ADDR", &list)]).await;
    assert_ok(&r);
    assert_eq!(leader.calls(), ["GetOverview"]);
    let other = dead();
    let r = admin(&["--addr", &other, "overview"], &[("TOPOM_ADDR", &list)]).await;
    assert_failed(&r);
    assert!(r.stderr.contains(&other), "{}", r.stderr);
    assert_eq!(
        leader.calls(),
        ["GetOverview"],
        "the flag replaces TOPOM_ADDR"
    );
}

#[tokio::test]
async fn when_all_fail_the_error_names_every_endpoint() {
    let (d1, d2, d3) = (dead(), dead(), dead());
    // The standby names a leader that is down too: four endpoints in all.
    let standby = start(Role::Standby(d3.clone())).await;
    let addrs = format!("{d1},{},{d2}", standby.addr);
    let r = admin(&["--addr", &addrs, "slots", "list"], &[]).await;
    assert_failed(&r);
    // Each was tried: the leader the standby named as well.
    for a in [&d1, &d2, &d3] {
        let tried = format!("http://{a} (cannot connect");
        assert!(r.stderr.contains(&tried), "{a} not tried: {}", r.stderr);
    }
    let standby_tried = format!("http://{} (UNAVAILABLE", standby.addr);
    assert!(r.stderr.contains(&standby_tried), "{}", r.stderr);
    assert!(
        r.stderr.contains("no topom endpoint could serve ListSlots")
            && r.stderr.contains("refused"),
        "{}",
        r.stderr
    );
    // One pass: the standby was asked once, not once per redirect.
    assert_eq!(standby.calls(), ["ListSlots"]);
}

#[tokio::test]
async fn a_mutation_without_an_answer_is_not_resent() {
    let hang = start(Role::Hang).await;
    let leader = start(Role::Leader).await;
    let addrs = format!("{},{}", hang.addr, leader.addr);
    let r = admin(
        &["--timeout", "1s", "--addr", &addrs, "group", "create", "1"],
        &[],
    )
    .await;
    assert_failed(&r);
    assert!(
        r.stderr.contains("no answer came within 1s")
            && r.stderr.contains("not retried")
            && r.stderr.contains(&hang.addr),
        "{}",
        r.stderr
    );
    assert_eq!(hang.calls(), ["CreateGroup"]);
    assert!(leader.calls().is_empty(), "re-sent: {:?}", leader.calls());
}

#[tokio::test]
async fn a_mutation_cut_mid_call_is_not_resent_but_a_read_is() {
    let breaking = start_breaking().await;
    let leader = start(Role::Leader).await;
    let addrs = format!("{},{}", breaking.addr, leader.addr);
    let r = admin(&["--addr", &addrs, "group", "create", "1"], &[]).await;
    assert_failed(&r);
    assert!(
        r.stderr.contains("connection broke") && r.stderr.contains("not retried"),
        "{}",
        r.stderr
    );
    assert_eq!(breaking.calls(), ["CreateGroup"]);
    assert!(leader.calls().is_empty(), "re-sent: {:?}", leader.calls());
    // A read changes nothing: it goes on to the next endpoint.
    let r = admin(&["--addr", &addrs, "overview"], &[]).await;
    assert_ok(&r);
    assert_eq!(breaking.calls(), ["CreateGroup", "GetOverview"]);
    assert_eq!(leader.calls(), ["GetOverview"]);
}
