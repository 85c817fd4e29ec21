//! Whether the codis-dashboard named in a Codis store's lock record still runs.
//!
//! Codis's lock is a plain record with no lease: a dashboard that crashed leaves
//! it behind. So the record alone proves nothing; an answer over HTTP at its
//! `admin_addr` does. Importing under a live dashboard would leave two
//! controllers driving the same servers.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::model::TopomRecord;

/// What became of the dashboard that wrote a lock record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// It answered HTTP at its admin address.
    Live(String),
    /// Nothing answered; the record is a leftover (the reason says why we think so).
    Stale(String),
}

/// How long the dashboard gets to answer; generous for a loaded host.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// Asks the dashboard of `rec` for its model (`GET /topom/model`, no auth).
pub async fn probe(rec: &TopomRecord) -> Holder {
    let who = format!(
        "codis-dashboard {} (pid {}, started {}, cwd {})",
        rec.admin_addr, rec.pid, rec.start_time, rec.pwd
    );
    match tokio::time::timeout(ANSWER_WITHIN, ask(&rec.admin_addr)).await {
        Ok(Ok(status)) => Holder::Live(format!("{who} answers HTTP ({status})")),
        Ok(Err(e)) => Holder::Stale(format!("{who} does not answer: {e}")),
        Err(_) => Holder::Stale(format!(
            "{who} does not answer within {}s",
            ANSWER_WITHIN.as_secs()
        )),
    }
}

/// The status line of the answer, or why there is none.
async fn ask(addr: &str) -> Result<String, String> {
    let mut conn = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let req = format!("GET /topom/model HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    conn.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = vec![0u8; 256];
    let n = conn.read(&mut head).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&head[..n]);
    let line = text.lines().next().unwrap_or_default();
    if line.starts_with("HTTP/") {
        Ok(line.to_owned())
    } else {
        Err(format!("something answers but not HTTP ({line:?})"))
    }
}
