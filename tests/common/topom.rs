//! The topom binary under test, started as a real process on a free port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use topom::pb::topom_client::TopomClient;

/// A client that sends `authorization: Bearer <token>` when a token is set.
pub type Client = TopomClient<InterceptedService<Channel, Bearer>>;

/// Adds the admin token to every request.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// How to start topom.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Embedded store directory (default: a fresh temp dir).
    pub data_dir: Option<PathBuf>,
    /// etcd endpoints instead of the embedded store.
    pub etcd: Option<String>,
    /// Product name (default `topom_test`).
    pub product: Option<String>,
    /// Admin token.
    pub token: Option<String>,
    /// Extra TOML config lines.
    pub config: Vec<String>,
    /// Serve `/metrics` on a free port (`--metrics-addr 127.0.0.1:0`).
    pub metrics: bool,
    /// Another topom binary (a bench comparing builds); default: this build's.
    pub binary: Option<PathBuf>,
}

/// A running topom process; killed (SIGKILL) on drop.
pub struct Topom {
    child: Child,
    addr: String,
    metrics_addr: Option<String>,
    log: PathBuf,
    /// Keeps the temp dir (data and log) alive as long as the process.
    dir: tempfile::TempDir,
    /// The data directory in use.
    pub data_dir: PathBuf,
}

impl Topom {
    /// Starts topom with a fresh embedded store.
    pub async fn start() -> Topom {
        Self::start_with(Options::default()).await
    }

    /// Starts topom and waits (10 s at most) until it listens; panics with its log
    /// if it does not.
    pub async fn start_with(opts: Options) -> Topom {
        match Self::try_start(opts).await {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts topom; `Err` carries the exit status and log when it fails to start.
    pub async fn try_start(opts: Options) -> Result<Topom, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let data_dir = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let log = dir.path().join("topom.log");
        let conf = dir.path().join("topom.toml");
        std::fs::write(&conf, opts.config.join("\n")).map_err(|e| e.to_string())?;
        // A bench may run another build: `binary`, or TOPOM_BIN (e.g. the
        // branch point's); tests run the one cargo built.
        let bin = opts
            .binary
            .clone()
            .or_else(|| std::env::var_os("TOPOM_BIN").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_topom")));
        let mut cmd = Command::new(bin);
        cmd.arg("--config")
            .arg(&conf)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--product")
            .arg(opts.product.as_deref().unwrap_or("topom_test"))
            .env("RUST_LOG", "info")
            .env_remove("TOPOM_ADMIN_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).map_err(|e| e.to_string())?)
            .kill_on_drop(true);
        match &opts.etcd {
            Some(e) => cmd.arg("--etcd").arg(e),
            None => cmd.arg("--data-dir").arg(&data_dir),
        };
        if let Some(t) = &opts.token {
            cmd.arg("--admin-token").arg(t);
        }
        if opts.metrics {
            cmd.arg("--metrics-addr").arg("127.0.0.1:0");
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start topom: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await;
        let addr = match first {
            Ok(Ok(Some(line))) if line.starts_with("LISTENING ") => {
                line["LISTENING ".len()..].to_owned()
            }
            other => {
                let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                return Err(format!(
                    "topom did not start ({other:?}, exit {status:?}); log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
        };
        // With metrics, the METRICS line follows LISTENING at once.
        let metrics_addr = if opts.metrics {
            match tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await {
                Ok(Ok(Some(line))) if line.starts_with("METRICS ") => {
                    Some(line["METRICS ".len()..].to_owned())
                }
                other => {
                    return Err(format!(
                        "topom printed no METRICS line ({other:?}); log:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    ));
                }
            }
        } else {
            None
        };
        Ok(Topom {
            child,
            addr,
            metrics_addr,
            log,
            dir,
            data_dir,
        })
    }

    /// `host:port` it listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `host:port` of `/metrics`, when started with `metrics: true`.
    pub fn metrics_addr(&self) -> Option<&str> {
        self.metrics_addr.as_deref()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The temp dir holding its log and config.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A channel to it.
    pub async fn channel(&self) -> Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to topom")
    }

    /// A client without a token.
    pub async fn client(&self) -> Client {
        TopomClient::with_interceptor(self.channel().await, Bearer(None))
    }

    /// A client sending `token`.
    pub async fn client_with_token(&self, token: &str) -> Client {
        let v = format!("Bearer {token}").parse().expect("ascii token");
        TopomClient::with_interceptor(self.channel().await, Bearer(Some(v)))
    }

    /// The health status of `topom.v1.Topom` (`None` when the check fails).
    pub async fn health(&self) -> Option<i32> {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let mut h = HealthClient::new(self.channel().await);
        h.check(HealthCheckRequest {
            service: "topom.v1.Topom".into(),
        })
        .await
        .ok()
        .map(|r| r.into_inner().status)
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to the process.
    pub fn signal(&self, signal: &str) {
        let _ = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status();
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill9(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// SIGTERM, and the exit code (None if it did not exit within 15 s).
    pub async fn terminate(&mut self) -> Option<i32> {
        let pid = self.pid().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        self.wait_exit(Duration::from_secs(15)).await
    }

    /// Waits for the process to exit on its own; its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => None,
        }
    }
}

/// Group `gid` as topom has it (panics when it does not exist).
pub async fn get_group(c: &mut Client, gid: u32) -> topom::pb::Group {
    c.get_group(topom::pb::GetGroupRequest { group_id: gid })
        .await
        .unwrap()
        .into_inner()
        .group
        .unwrap()
}

/// Waits up to `within` until no slot has an action left (every queued
/// migration finished); `what` names the wait in the timeout message.
pub async fn wait_slot_actions_done(c: &mut Client, within: Duration, what: &str) {
    super::wait_until(within, what, async || {
        let r = c
            .list_slots(topom::pb::ListSlotsRequest {})
            .await
            .unwrap()
            .into_inner();
        r.mappings.iter().all(|m| m.action.is_none())
    })
    .await;
}

/// The proxies topom lists.
pub async fn proxies(c: &mut Client) -> Vec<topom::pb::Proxy> {
    c.list_proxies(topom::pb::ListProxiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .proxies
}

/// Runs the `topom` binary of this build with `args` (a one-shot command such
/// as `import`): exit code, stdout, stderr.
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_topom"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run topom");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
