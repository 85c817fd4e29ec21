//! Stats rounds as the servers see them, the same way for every side: `MONITOR`
//! on each server records when each `INFO` arrived (the server's own clock,
//! microseconds; all servers share the host's clock). The Codis dashboard reports
//! no round times, and topom's `elapsed` is its own view, so both sides are
//! measured here by one method.
//!
//! A round is a run of INFO arrivals with no gap longer than [`ROUND_GAP`]; its
//! span is first to last arrival. The period is the time between the starts of
//! consecutive rounds.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Arrivals further apart than this belong to different rounds (both sides
/// refresh every second; a round spans tens of ms).
const ROUND_GAP: f64 = 0.3;

/// INFO arrivals recorded on a set of servers until stopped.
pub struct Monitor {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<Vec<f64>>>,
}

impl Monitor {
    /// MONITOR on each of `addrs`; returns once every server acknowledged it.
    pub async fn start(addrs: &[String]) -> Monitor {
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        for addr in addrs {
            let s = TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| panic!("MONITOR {addr}: {e}"));
            let mut r = BufReader::new(s);
            r.get_mut()
                .write_all(b"MONITOR\r\n")
                .await
                .expect("send MONITOR");
            let mut ok = String::new();
            r.read_line(&mut ok).await.expect("MONITOR reply");
            assert!(ok.starts_with("+OK"), "MONITOR on {addr}: {ok:?}");
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut at = Vec::new();
                let mut line = String::new();
                loop {
                    line.clear();
                    tokio::select! {
                        n = r.read_line(&mut line) => match n {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        },
                        () = stop.cancelled() => break,
                    }
                    if let Some(t) = info_arrival(&line) {
                        at.push(t);
                    }
                }
                at
            }));
        }
        Monitor { stop, tasks }
    }

    /// Stops recording; every INFO arrival, sorted.
    pub async fn stop(self) -> Vec<f64> {
        self.stop.cancel();
        let mut all = Vec::new();
        for t in self.tasks {
            all.extend(t.await.expect("a MONITOR reader"));
        }
        all.sort_by(f64::total_cmp);
        all
    }
}

/// The time of a MONITOR line (`+1700000000.123456 [0 127.0.0.1:5] "INFO" ...`)
/// when its command is INFO.
fn info_arrival(line: &str) -> Option<f64> {
    let rest = line.strip_prefix('+')?;
    let (time, rest) = rest.split_once(' ')?;
    let (_, cmd) = rest.split_once("] \"")?;
    let name = cmd.split('"').next()?;
    name.eq_ignore_ascii_case("info")
        .then(|| time.parse().ok())
        .flatten()
}

/// The rounds in sorted arrivals: (start, span) each, in seconds. The first and
/// the last may be cut by the window and are left out.
pub fn rounds(arrivals: &[f64]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < arrivals.len() {
        let start = arrivals[i];
        let mut j = i;
        while j + 1 < arrivals.len() && arrivals[j + 1] - arrivals[j] <= ROUND_GAP {
            j += 1;
        }
        out.push((start, arrivals[j] - start));
        i = j + 1;
    }
    if out.len() > 2 {
        out.remove(0);
        out.pop();
    }
    out
}

/// The median of the spans and of the periods of `rounds`.
pub fn span_and_period(rounds: &[(f64, f64)]) -> (Duration, Duration) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2)
            .map_or(Duration::ZERO, |&s| Duration::from_secs_f64(s.max(0.0)))
    };
    let spans = rounds.iter().map(|r| r.1).collect();
    let periods = rounds.windows(2).map(|w| w[1].0 - w[0].0).collect();
    (median(spans), median(periods))
}
