//! Child processes of the fixtures: finding the binary, killing and reaping.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The command that installs the servers the integration tests run.
pub const INSTALL_HINT: &str = "run the project's test command (.ci/run), which installs it, \
     or install it yourself: apt-get install -y redis-server etcd-server etcd-client";

/// The path of server binary `name`: `$env_var` if set, else `name` on `PATH`.
/// Panics with an install hint when it is missing: a test that needs a real
/// server must not pass by skipping.
pub fn require_binary(name: &str, env_var: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        assert!(
            is_executable(&path),
            "{env_var}={} is not an executable file",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
        .unwrap_or_else(|| panic!("`{name}` is not on PATH (or set {env_var}); {INSTALL_HINT}"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A running child that is killed (SIGKILL) and reaped when dropped, so a failing
/// test leaves no server behind and no zombie.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    /// Spawns `cmd`, panicking with `what` if it cannot start.
    pub fn spawn(mut cmd: Command, what: &str) -> ChildGuard {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        ChildGuard { child: Some(child) }
    }

    /// The pid, while the child has not been killed through this guard.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the child is still running (it may have exited on its own).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL and reap. Does nothing if already killed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // It may have exited already; reaping is what matters then.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. `"TERM"`, `"STOP"`, `"CONT"`) with `kill(1)`, without
    /// waiting.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status()
                .unwrap_or_else(|e| panic!("cannot run kill -{signal} {pid}: {e}"));
            assert!(status.success(), "kill -{signal} {pid} failed: {status}");
        }
    }

    /// Waits for the child to exit on its own (e.g. after SIGTERM) for up to
    /// `timeout`; returns whether it did.
    pub async fn wait_exit(&mut self, timeout: std::time::Duration) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            match self.child.as_mut().map(Child::try_wait) {
                None | Some(Ok(Some(_))) | Some(Err(_)) => {
                    self.child = None;
                    return true;
                }
                Some(Ok(None)) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        false
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `lines` lines of a log file, for failure messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
