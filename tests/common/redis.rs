//! A throwaway `redis-server` on a free loopback port.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::ports::free_port;
use super::process::{ChildGuard, log_tail, require_binary};

/// How long a start may take before it counts as failed.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// Starts are retried this many times: the free port may be taken meanwhile.
const START_ATTEMPTS: usize = 3;

/// A `redis-server` child process with its own directory, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    // Field order matters: the child is killed before its directory is removed.
    child: ChildGuard,
    port: u16,
    bin: PathBuf,
    dir: TempDir,
    /// From a `requirepass` line in the extra config, for our own connections.
    password: Option<String>,
    /// Started from `redis.conf` or, when false, from command-line options
    /// only (a server without a config file, where CONFIG REWRITE fails).
    config_file: bool,
}

impl RedisServer {
    /// `INFO replication`, parsed; empty when the server did not answer.
    /// Callers poll it: a server switching role (SLAVEOF) may reset the
    /// connection, which is a "not yet", not a failure.
    pub async fn replication(&self) -> std::collections::BTreeMap<String, String> {
        let asked = async {
            let client = redis::Client::open(self.url())?;
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("INFO")
                .arg("replication")
                .query_async::<String>(&mut c)
                .await
        };
        match asked.await {
            Ok(text) => topom::redis::parse_info(&text),
            Err(_) => std::collections::BTreeMap::new(),
        }
    }

    /// Starts a server with the default test configuration.
    pub async fn start() -> RedisServer {
        RedisServer::start_with(&[]).await
    }

    /// Starts a server whose config file ends with `extra` lines (e.g.
    /// `"maxmemory 10mb"`), which override the defaults.
    pub async fn start_with(extra: &[&str]) -> RedisServer {
        RedisServer::launch(extra, true).await
    }

    /// Starts a server from command-line options alone, as some deployments
    /// do: it runs like any other, but has no config file to rewrite.
    pub async fn start_without_config_file() -> RedisServer {
        RedisServer::launch(&[], false).await
    }

    async fn launch(extra: &[&str], config_file: bool) -> RedisServer {
        let bin = require_binary("redis-server", "TOPOM_TEST_REDIS_SERVER");
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("topom-redis-")
                .tempdir()
                .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
            let port = free_port();
            if config_file {
                write_config(dir.path(), port, extra);
            }
            let child = spawn(&bin, dir.path(), port, config_file);
            let mut server = RedisServer {
                child,
                port,
                bin: bin.clone(),
                dir,
                password: extra
                    .iter()
                    .find_map(|l| l.strip_prefix("requirepass "))
                    .map(|p| p.trim().trim_matches('"').to_owned()),
                config_file,
            };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(why) => failures.push(format!(
                    "attempt {attempt} on port {port}: {why}\n{}",
                    log_tail(&server.log_path(), 20)
                )),
            }
        }
        panic!("redis-server did not start:\n{}", failures.join("\n"));
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:<port>`, for the redis crate.
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pid, unless killed.
    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// The server's directory (config, log, dumps).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Kills the server with SIGKILL (a crash) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Sends SIGTERM (a clean shutdown) and waits up to 10 s for the exit.
    pub async fn terminate(&mut self) {
        self.child.signal("TERM");
        assert!(
            self.child.wait_exit(START_DEADLINE).await,
            "redis-server on port {} ignored SIGTERM",
            self.port
        );
    }

    /// Starts the server again (after [`RedisServer::kill`] or not) on the same
    /// port with the same config and directory.
    pub async fn restart(&mut self) {
        self.child.kill();
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            self.child = spawn(&self.bin, self.dir.path(), self.port, self.config_file);
            match self.wait_ready().await {
                Ok(()) => return,
                Err(why) => failures.push(format!("attempt {attempt}: {why}")),
            }
            self.child.kill();
        }
        panic!(
            "redis-server did not restart on port {}:\n{}\n{}",
            self.port,
            failures.join("\n"),
            log_tail(&self.log_path(), 20)
        );
    }

    /// Waits until *this* server answers on its port: the pid in `INFO server`
    /// must be our child's, not another test's server that got the same port.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let pid = self.child.pid().ok_or("not running")?;
        let start = Instant::now();
        let mut last = String::from("no answer yet");
        while start.elapsed() < START_DEADLINE {
            if !self.child.is_running() {
                return Err("redis-server exited".into());
            }
            match tokio::time::timeout(Duration::from_secs(1), server_pid(&self.url())).await {
                Ok(Ok(p)) if p == pid => return Ok(()),
                Ok(Ok(p)) => return Err(format!("port {} is served by pid {p}", self.port)),
                Ok(Err(e)) => last = e,
                Err(_) => last = "INFO timed out".into(),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!("not ready after {START_DEADLINE:?}: {last}"))
    }
}

fn write_config(dir: &Path, port: u16, extra: &[&str]) {
    let mut conf = format!(
        "bind 127.0.0.1\nport {port}\ndir {dir}\nsave \"\"\nappendonly no\n\
         logfile {log}\ndaemonize no\n",
        dir = dir.display(),
        log = dir.join("redis.log").display(),
    );
    for line in extra {
        conf.push_str(line);
        conf.push('\n');
    }
    fs::write(dir.join("redis.conf"), conf)
        .unwrap_or_else(|e| panic!("cannot write redis.conf in {}: {e}", dir.display()));
}

/// Starts `bin` in `dir`: from the `redis.conf` there, or with the same
/// settings as options when there is to be no config file.
fn spawn(bin: &Path, dir: &Path, port: u16, config_file: bool) -> ChildGuard {
    // Config errors go to stderr before the log file is opened: keep them too.
    let stderr = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("redis.log"))
        .unwrap_or_else(|e| panic!("cannot open redis.log: {e}"));
    let mut cmd = Command::new(bin);
    if config_file {
        cmd.arg(dir.join("redis.conf"));
    } else {
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    ChildGuard::spawn(cmd, "redis-server")
}

/// The `process_id` that the server at `url` reports.
async fn server_pid(url: &str) -> Result<u32, String> {
    let client = ::redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let info: String = ::redis::cmd("INFO")
        .arg("server")
        .query_async(&mut con)
        .await
        .map_err(|e| e.to_string())?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| "INFO server has no process_id".to_owned())
}

/// A connection to `server`'s database `db`, authenticated when `password` is
/// not empty: what the migrator tests load and read keys through.
pub async fn client(server: &RedisServer, password: &str, db: u32) -> topom::redis::Conn {
    let deadline = Duration::from_secs(5);
    let mut c = topom::redis::Conn::connect(&server.addr(), deadline)
        .await
        .expect("connect");
    if !password.is_empty() {
        c.call(&[b"AUTH", password.as_bytes()]).await.expect("AUTH");
    }
    c.call(&[b"SELECT", db.to_string().as_bytes()])
        .await
        .expect("SELECT");
    c
}

/// Runs `cmds` in pipelines of 1,000; panics on an error reply.
pub async fn pipe(c: &mut topom::redis::Conn, cmds: &[Vec<Vec<u8>>]) -> Vec<topom::redis::Value> {
    let mut replies = Vec::with_capacity(cmds.len());
    for chunk in cmds.chunks(1000) {
        let args: Vec<Vec<&[u8]>> = chunk
            .iter()
            .map(|cmd| cmd.iter().map(Vec::as_slice).collect())
            .collect();
        let refs: Vec<&[&[u8]]> = args.iter().map(Vec::as_slice).collect();
        for r in c.pipeline(&refs).await.expect("pipeline") {
            assert!(!matches!(r, topom::redis::Value::Error(_)), "{r:?}");
            replies.push(r);
        }
    }
    replies
}

/// One command for [`pipe`].
pub fn cmd(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}
