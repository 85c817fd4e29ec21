//! The Codis 3.2 dashboard as a side of the bench: started on a filesystem
//! store in a temp dir (written beforehand), its stats read
//! with `GET /topom/stats` over keep-alive HTTP/1.1 (the body is read, never
//! parsed).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::common::ports::free_port;
use crate::support::common::process::ChildGuard;
use crate::support::common::wait_until;
use topom::store::local::LocalStore;
use topom::store::{Store, StoreBatch};

fn bin(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/codis/bin")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing: the Codis side needs the real Codis binaries",
        p.display()
    );
    p
}

/// A running dashboard; stopped when dropped.
pub struct Dashboard {
    child: ChildGuard,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Dashboard {
    /// The dashboard of `product` on a filesystem store holding `batch` (the
    /// topology the topom side gets). The store is written by topom's local
    /// store, which keeps Codis's layout and JSON: the dashboard's own
    /// `group-add` would refuse plain Redis (it asks every server `SLOTSINFO`).
    pub async fn start(product: &str, batch: StoreBatch) -> Dashboard {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = dir.path().join("store");
        let raw = Arc::new(LocalStore::open(&store).expect("open store"));
        Store::new(raw, product)
            .commit(batch)
            .await
            .expect("write the topology");
        let addr = format!("127.0.0.1:{}", free_port());
        let conf = dir.path().join("dashboard.toml");
        std::fs::write(
            &conf,
            format!(
                "coordinator_name = \"filesystem\"\ncoordinator_addr = \"{}\"\nproduct_name = \"{product}\"\nproduct_auth = \"\"\nadmin_addr = \"{addr}\"\n",
                store.display()
            ),
        )
        .expect("write dashboard.toml");
        let mut cmd = Command::new(bin("codis-dashboard"));
        cmd.arg(format!("--config={}", conf.display()))
            .arg(format!(
                "--log={}",
                dir.path().join("dashboard.log").display()
            ))
            .arg("--log-level=WARN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = ChildGuard::spawn(cmd, "codis-dashboard");
        wait_until(
            Duration::from_secs(20),
            "codis-dashboard to listen",
            async || TcpStream::connect(&addr).await.is_ok(),
        )
        .await;
        let d = Dashboard {
            child,
            addr,
            _dir: dir,
        };
        // A first stats round with every server in it.
        let mut http = Http::connect(&d.addr).await;
        wait_until(Duration::from_secs(20), "a Codis stats round", async || {
            http.get_body("/topom/stats")
                .await
                .contains("redis_version")
        })
        .await;
        d
    }

    /// `host:port` of its HTTP API.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.pid().expect("the dashboard runs")
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Http(BufReader<TcpStream>);

impl Http {
    pub async fn connect(addr: &str) -> Http {
        let s = TcpStream::connect(addr)
            .await
            .expect("connect to the dashboard");
        s.set_nodelay(true).expect("nodelay");
        Http(BufReader::new(s))
    }

    /// `GET path`: the body's length (read whole, not parsed).
    pub async fn get(&mut self, path: &str) -> usize {
        self.body(path, false).await.0
    }

    async fn get_body(&mut self, path: &str) -> String {
        self.body(path, true).await.1
    }

    async fn body(&mut self, path: &str, keep: bool) -> (usize, String) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
        self.0
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .expect("send");
        let mut line = String::new();
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            self.0.read_line(&mut line).await.expect("a header line");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.0.read_line(&mut line).await.expect("a chunk size");
                let size = usize::from_str_radix(line.trim(), 16).expect("a hex chunk size");
                let mut chunk = vec![0; size + 2];
                self.0.read_exact(&mut chunk).await.expect("a chunk");
                chunk.truncate(size);
                body.extend_from_slice(&chunk);
                if size == 0 {
                    break;
                }
            }
        } else {
            let n = length.expect("a Content-Length or chunked body");
            body.resize(n, 0);
            self.0.read_exact(&mut body).await.expect("the body");
        }
        let text = if keep {
            String::from_utf8_lossy(&body).into_owned()
        } else {
            String::new()
        };
        (body.len(), text)
    }
}
