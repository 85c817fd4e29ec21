//! The real Codis 3.2 binaries (`../shared/codis/bin`, or `$TOPOM_TEST_CODIS_BIN`):
//! codis-server processes, a codis-dashboard on a filesystem store, codis-admin.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::ports::free_port;
use super::process::{ChildGuard, log_tail};

/// How long a Codis process may take to answer after its start, on a loaded host.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// The path of Codis binary `name`; panics saying where it was looked for.
pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("TOPOM_TEST_CODIS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/codis/bin"));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: the Codis 3.2 binaries are expected in {} (or set TOPOM_TEST_CODIS_BIN)",
        path.display(),
        dir.display()
    );
    path
}

/// A codis-server (Redis 3.2 with the slot commands), killed when dropped.
pub struct CodisServer {
    child: ChildGuard,
    port: u16,
    _dir: TempDir,
}

impl CodisServer {
    /// Starts one on a free port and waits until it answers PING.
    pub async fn start() -> CodisServer {
        let dir = tempfile::Builder::new()
            .prefix("topom-codis-server-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let mut cmd = Command::new(bin("codis-server"));
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--protected-mode", "no", "--dir"])
        .arg(dir.path())
        .arg("--logfile")
        .arg(dir.path().join("server.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = ChildGuard::spawn(cmd, "codis-server");
        let server = CodisServer {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        loop {
            if server.conn().await.is_ok() {
                return server;
            }
            assert!(
                start.elapsed() < START_DEADLINE,
                "codis-server on port {port} did not answer within {START_DEADLINE:?}:\n{}",
                log_tail(&server._dir.path().join("server.log"), 20)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A connection to it.
    pub async fn conn(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port))?;
        let mut c = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut c).await?;
        Ok(c)
    }

    /// The pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// SIGKILL (a crash).
    pub fn kill(&mut self) {
        self.child.kill();
    }
}

/// A codis-dashboard on a filesystem store; killed when dropped.
pub struct Dashboard {
    child: ChildGuard,
    addr: String,
    /// The filesystem store root (`coordinator_addr`).
    pub root: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl Dashboard {
    /// Starts a dashboard for `product` on the store at `root` and waits until
    /// it answers HTTP. Panics with its log when it does not.
    pub async fn start(root: &Path, product: &str) -> Dashboard {
        let dir = tempfile::Builder::new()
            .prefix("topom-codis-dashboard-")
            .tempdir()
            .unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let conf = dir.path().join("dashboard.toml");
        std::fs::write(
            &conf,
            format!(
                "coordinator_name = \"filesystem\"\ncoordinator_addr = \"{}\"\n\
                 product_name = \"{product}\"\nadmin_addr = \"{addr}\"\n",
                root.display()
            ),
        )
        .unwrap();
        let log = dir.path().join("dashboard.log");
        let mut cmd = Command::new(bin("codis-dashboard"));
        cmd.arg("-c")
            .arg(&conf)
            .arg("--host-admin")
            .arg(&addr)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
        let mut child = ChildGuard::spawn(cmd, "codis-dashboard");
        let start = Instant::now();
        while http_get(&addr, "/topom/model").is_err() {
            assert!(
                child.is_running() && start.elapsed() < START_DEADLINE,
                "codis-dashboard did not answer at {addr} within {START_DEADLINE:?}:\n{}",
                log_tail(&log, 30)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Dashboard {
            child,
            addr,
            root: root.to_owned(),
            log,
            _dir: dir,
        }
    }

    /// Its admin address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Runs `codis-admin --dashboard=ADDR args...`; panics with the output and
    /// the dashboard's log when it fails. Returns stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = codis_admin(&[&[format!("--dashboard={}", self.addr).as_str()], args].concat());
        assert!(
            out.status.success(),
            "codis-admin {args:?} failed: {}\n{}\ndashboard log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            log_tail(&self.log, 20)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The JSON of `codis-admin --dashboard=ADDR <args>`.
    pub fn admin_json(&self, args: &[&str]) -> serde_json::Value {
        let text = self.admin(args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("codis-admin {args:?}: {e}: {text}"))
    }

    /// Two groups of a master and a replica each (`servers`: m1, r1, m2, r2),
    /// replicas synced; slots 0-511 in group 1 and 512-1023 in group 2.
    pub fn two_groups(&self, servers: &[CodisServer]) {
        for (gid, pair) in [(1, &servers[0..2]), (2, &servers[2..4])] {
            self.admin(&["--create-group", &format!("--gid={gid}")]);
            for s in pair {
                self.admin(&[
                    "--group-add",
                    &format!("--gid={gid}"),
                    &format!("--addr={}", s.addr()),
                ]);
            }
            self.admin(&[
                "--sync-action",
                "--create",
                &format!("--addr={}", pair[1].addr()),
            ]);
        }
        for (gid, beg, end) in [(1, 0, 511), (2, 512, 1023)] {
            self.admin(&[
                "--slots-assign",
                &format!("--beg={beg}"),
                &format!("--end={end}"),
                &format!("--gid={gid}"),
                "--confirm",
            ]);
        }
    }

    /// A clean stop (`--shutdown`: it releases its lock), waiting for the exit.
    pub async fn shutdown(mut self) {
        self.admin(&["--shutdown"]);
        assert!(
            self.child.wait_exit(START_DEADLINE).await,
            "codis-dashboard ignored --shutdown"
        );
    }
}

/// Runs codis-admin with `args`.
pub fn codis_admin(args: &[&str]) -> Output {
    Command::new(bin("codis-admin"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run codis-admin")
}

/// `GET path` over HTTP/1.0: the status code and the body.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// A real codis-proxy (admin API and RESP listener on free ports), killed when
/// dropped. It starts offline: a dashboard (or topom) must fill its slots and
/// start it.
pub struct CodisProxy {
    child: ChildGuard,
    admin: String,
    proxy: String,
    log: PathBuf,
    _dir: TempDir,
}

impl CodisProxy {
    /// Starts one for `product` (Redis password `auth`) and waits until its
    /// admin API answers. Panics with its log when it does not.
    pub async fn start(product: &str, auth: &str) -> CodisProxy {
        Self::start_args(product, auth, &[]).await
    }

    /// [`Self::start`] with extra command-line arguments (e.g. `--dashboard=ADDR`).
    pub async fn start_args(product: &str, auth: &str, args: &[String]) -> CodisProxy {
        let dir = tempfile::Builder::new()
            .prefix("topom-codis-proxy-")
            .tempdir()
            .unwrap();
        let admin = format!("127.0.0.1:{}", free_port());
        let proxy = format!("127.0.0.1:{}", free_port());
        let conf = dir.path().join("proxy.toml");
        // No heap placeholder and a small off-heap cap: tests run many processes.
        std::fs::write(
            &conf,
            format!(
                "product_name = \"{product}\"\nproduct_auth = \"{auth}\"\n\
                 admin_addr = \"{admin}\"\nproto_type = \"tcp4\"\nproxy_addr = \"{proxy}\"\n\
                 proxy_heap_placeholder = \"0\"\nproxy_max_offheap_size = \"64mb\"\n"
            ),
        )
        .unwrap();
        let log = dir.path().join("proxy.log");
        let mut cmd = Command::new(bin("codis-proxy"));
        cmd.arg("-c")
            .arg(&conf)
            .arg(format!("--log={}", log.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
        let mut child = ChildGuard::spawn(cmd, "codis-proxy");
        let start = Instant::now();
        while http_get(&admin, "/api/proxy/model").is_err() {
            assert!(
                child.is_running() && start.elapsed() < START_DEADLINE,
                "codis-proxy did not answer at {admin} within {START_DEADLINE:?}:\n{}\n{}",
                log_tail(&log, 30),
                log_tail(&dir.path().join("stderr.log"), 30)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        CodisProxy {
            child,
            admin,
            proxy,
            log,
            _dir: dir,
        }
    }

    /// Its admin (HTTP) address.
    pub fn admin_addr(&self) -> &str {
        &self.admin
    }

    /// Its client (RESP) address.
    pub fn proxy_addr(&self) -> &str {
        &self.proxy
    }

    /// A client connection through it.
    pub async fn conn(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(format!("redis://{}", self.proxy))?;
        client.get_multiplexed_async_connection().await
    }

    /// Sends it a signal (`STOP`, `CONT`, ...).
    pub fn signal(&self, signal: &str) {
        self.child.signal(signal);
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// Waits until it exits, for at most `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> bool {
        self.child.wait_exit(timeout).await
    }

    /// Slot id → (backend group id, backend address) of the table it serves,
    /// from its own `GET /api/proxy/slots/XAUTH`.
    pub fn slots(&self, xauth: &str) -> Vec<(u64, u64, String)> {
        let (code, body) = http_get(&self.admin, &format!("/api/proxy/slots/{xauth}"))
            .unwrap_or_else(|e| panic!("GET slots of codis-proxy {}: {e}", self.admin));
        assert_eq!(code, 200, "GET slots of codis-proxy {}: {body}", self.admin);
        let slots: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("slots of codis-proxy {}: {e}: {body}", self.admin));
        slots
            .as_array()
            .unwrap_or_else(|| panic!("slots of codis-proxy {}: {body}", self.admin))
            .iter()
            .map(|s| {
                (
                    s["id"].as_u64().unwrap_or_default(),
                    s["backend_addr_group_id"].as_u64().unwrap_or_default(),
                    s["backend_addr"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The end of its log.
    pub fn log(&self) -> String {
        log_tail(&self.log, 40)
    }
}
