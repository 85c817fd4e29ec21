//! A throwaway Redis Sentinel (`redis-server <conf> --sentinel`) on a free
//! loopback port.

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

/// A Sentinel child process with its own directory, killed when dropped.
#[derive(Debug)]
pub struct SentinelServer {
    // Field order matters: the child is killed before its directory is removed.
    child: ChildGuard,
    port: u16,
    dir: TempDir,
}

impl SentinelServer {
    /// Starts a Sentinel monitoring `monitors` (`(name, "127.0.0.1:<port>",
    /// quorum)`, with `down-after-milliseconds` 1000), its config file ending with
    /// `extra` lines. Waits (10 s per try, three tries) until it answers.
    pub async fn start(monitors: &[(&str, &str, u32)], extra: &[&str]) -> SentinelServer {
        let bin = require_binary("redis-server", "TOPOM_TEST_REDIS_SERVER");
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("topom-sentinel-")
                .tempdir()
                .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
            let port = free_port();
            write_config(dir.path(), port, monitors, extra);
            let child = spawn(&bin, dir.path());
            let mut server = SentinelServer { child, port, dir };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(why) => failures.push(format!(
                    "attempt {attempt} on port {port}: {why}\n{}",
                    log_tail(&server.log_path(), 20)
                )),
            }
        }
        panic!("redis sentinel did not start:\n{}", failures.join("\n"));
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pid, unless killed.
    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// The Sentinel's directory (its config, which it rewrites, and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The Sentinel's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("sentinel.log")
    }

    /// Kills the Sentinel with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Sends `signal` (e.g. `"STOP"`, `"CONT"`) without waiting: a stopped
    /// Sentinel keeps its sockets open but answers nothing.
    pub fn signal(&self, signal: &str) {
        self.child.signal(signal);
    }

    /// Waits until *this* Sentinel answers `PING` on its port and `INFO server`
    /// names our child's pid (not another test's server on the same port).
    async fn wait_ready(&mut self) -> Result<(), String> {
        let pid = self.child.pid().ok_or("not running")?;
        let url = format!("redis://127.0.0.1:{}", self.port);
        let start = Instant::now();
        let mut last = String::from("no answer yet");
        while start.elapsed() < START_DEADLINE {
            if !self.child.is_running() {
                return Err("the sentinel exited".into());
            }
            match tokio::time::timeout(Duration::from_secs(1), sentinel_pid(&url)).await {
                Ok(Ok(p)) if p == pid => return Ok(()),
                Ok(Ok(p)) => return Err(format!("port {} is served by pid {p}", self.port)),
                Ok(Err(e)) => last = e,
                Err(_) => last = "PING/INFO timed out".into(),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!("not ready after {START_DEADLINE:?}: {last}"))
    }
}

fn write_config(dir: &Path, port: u16, monitors: &[(&str, &str, u32)], extra: &[&str]) {
    let mut conf = format!(
        "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {log}\ndaemonize no\n",
        dir = dir.display(),
        log = dir.join("sentinel.log").display(),
    );
    for (name, addr, quorum) in monitors {
        let (host, master_port) = addr
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("master address {addr:?} is not host:port"));
        conf.push_str(&format!(
            "sentinel monitor {name} {host} {master_port} {quorum}\n\
             sentinel down-after-milliseconds {name} 1000\n\
             sentinel failover-timeout {name} 10000\n"
        ));
    }
    for line in extra {
        conf.push_str(line);
        conf.push('\n');
    }
    // Sentinel rewrites this file (it records what it learns), so it lives in
    // the writable temp dir.
    fs::write(dir.join("sentinel.conf"), conf)
        .unwrap_or_else(|e| panic!("cannot write sentinel.conf in {}: {e}", dir.display()));
}

fn spawn(bin: &Path, dir: &Path) -> ChildGuard {
    // Config errors go to stderr before the log file is opened: keep them too.
    let stderr = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("sentinel.log"))
        .unwrap_or_else(|e| panic!("cannot open sentinel.log: {e}"));
    let mut cmd = Command::new(bin);
    cmd.arg(dir.join("sentinel.conf"))
        .arg("--sentinel")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    ChildGuard::spawn(cmd, "redis sentinel")
}

/// The `process_id` of the Sentinel at `url`, after it answers `PING`.
async fn sentinel_pid(url: &str) -> Result<u32, String> {
    let client = ::redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let pong: String = ::redis::cmd("PING")
        .query_async(&mut con)
        .await
        .map_err(|e| e.to_string())?;
    if pong != "PONG" {
        return Err(format!("PING answered {pong:?}"));
    }
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
