//! A throwaway single-member `etcd` on free loopback ports.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};
use tempfile::TempDir;

use super::ports::free_port;
use super::process::{ChildGuard, log_tail, require_binary};

/// How long a start may take before it counts as failed.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// Starts are retried this many times: a free port may be taken meanwhile.
const START_ATTEMPTS: usize = 3;

/// An `etcd` child process with its own data directory, killed when dropped.
#[derive(Debug)]
pub struct EtcdServer {
    // Field order matters: the child is killed before its directory is removed.
    child: ChildGuard,
    client_port: u16,
    peer_port: u16,
    /// The member name, unique per server, to tell ours from another on the port.
    name: String,
    bin: PathBuf,
    dir: TempDir,
}

impl EtcdServer {
    /// Starts a fresh member and waits until it answers (at most 10 s per try,
    /// three tries on fresh ports).
    pub async fn start() -> EtcdServer {
        let bin = require_binary("etcd", "TOPOM_TEST_ETCD");
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("topom-etcd-")
                .tempdir()
                .unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
            let (client_port, peer_port) = (free_port(), free_port());
            let name = format!("topom-test-{}-{client_port}", std::process::id());
            let child = spawn(&bin, dir.path(), &name, client_port, peer_port);
            let mut server = EtcdServer {
                child,
                client_port,
                peer_port,
                name,
                bin: bin.clone(),
                dir,
            };
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(why) => failures.push(format!(
                    "attempt {attempt} on ports {client_port}/{peer_port}: {why}\n{}",
                    log_tail(&server.log_path(), 20)
                )),
            }
        }
        panic!("etcd did not start:\n{}", failures.join("\n"));
    }

    /// The client URL, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// [`EtcdServer::endpoint`] as a list, as connect functions take it.
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.endpoint()]
    }

    /// The client port.
    pub fn client_port(&self) -> u16 {
        self.client_port
    }

    /// The pid, unless killed.
    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// The server's log (stderr), kept across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// A raw client, to look at keys and leases behind the code under test.
    pub async fn client(&self) -> Client {
        Client::connect(self.endpoints(), None)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to etcd at {}: {e}", self.endpoint()))
    }

    /// Kills the server with SIGKILL (a crash) and reaps it. Its data stays.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Freezes the server with SIGSTOP: connections stay open but nothing answers,
    /// like a network partition.
    pub fn pause(&self) {
        self.child.signal("STOP");
    }

    /// Undoes [`EtcdServer::pause`] with SIGCONT.
    pub fn resume(&self) {
        self.child.signal("CONT");
    }

    /// Starts the server again on the same ports and data directory, after
    /// [`EtcdServer::kill`] (or kills it first).
    pub async fn restart(&mut self) {
        self.child.kill();
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            self.child = spawn(
                &self.bin,
                self.dir.path(),
                &self.name,
                self.client_port,
                self.peer_port,
            );
            match self.wait_ready().await {
                Ok(()) => return,
                Err(why) => failures.push(format!("attempt {attempt}: {why}")),
            }
            self.child.kill();
        }
        panic!(
            "etcd did not restart on port {}:\n{}\n{}",
            self.client_port,
            failures.join("\n"),
            log_tail(&self.log_path(), 20)
        );
    }

    /// Waits until *this* member answers: the member list must name it, so
    /// another test's etcd that got the same port does not count.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let start = Instant::now();
        let mut last = String::from("no answer yet");
        while start.elapsed() < START_DEADLINE {
            if !self.child.is_running() {
                return Err("etcd exited".into());
            }
            match tokio::time::timeout(Duration::from_secs(2), member_names(&self.endpoint())).await
            {
                Ok(Ok(names)) if names.contains(&self.name) => return Ok(()),
                Ok(Ok(names)) => {
                    return Err(format!("port {} is served by {names:?}", self.client_port));
                }
                Ok(Err(e)) => last = e,
                Err(_) => last = "member list timed out".into(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("not ready after {START_DEADLINE:?}: {last}"))
    }
}

fn spawn(bin: &Path, dir: &Path, name: &str, client_port: u16, peer_port: u16) -> ChildGuard {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("etcd.log"))
        .unwrap_or_else(|e| panic!("cannot open etcd.log: {e}"));
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let mut cmd = Command::new(bin);
    cmd.arg("--name")
        .arg(name)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--logger=zap", "--log-level=warn", "--log-outputs=stderr"])
        .arg("--listen-client-urls")
        .arg(&client_url)
        .arg("--advertise-client-urls")
        .arg(&client_url)
        .arg("--listen-peer-urls")
        .arg(&peer_url)
        .arg("--initial-advertise-peer-urls")
        .arg(&peer_url)
        .arg("--initial-cluster")
        .arg(format!("{name}={peer_url}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    ChildGuard::spawn(cmd, "etcd")
}

/// The member names reported by the etcd at `endpoint`, after a `status` works.
async fn member_names(endpoint: &str) -> Result<Vec<String>, String> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(500))
        .with_timeout(Duration::from_secs(1));
    let mut client = Client::connect([endpoint], Some(options))
        .await
        .map_err(|e| e.to_string())?;
    client.status().await.map_err(|e| e.to_string())?;
    let members = client.member_list().await.map_err(|e| e.to_string())?;
    Ok(members
        .members()
        .iter()
        .map(|m| m.name().to_owned())
        .collect())
}
