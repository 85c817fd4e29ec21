//! Free loopback ports.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// Ports already handed out by this process, so two fixtures of one test binary
/// never get the same one even if the kernel offers it again.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read the port,
/// close). Another process may still take it before the caller binds it, so
/// fixtures retry their start on a bind failure.
pub fn free_port() -> u16 {
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"));
        if given.insert(port) {
            return port;
        }
    }
}

/// Bytes received but not yet read by the process listening on `port`,
/// summed over its loopback connections (`/proc/net/tcp{,6}` rx_queue). A
/// SIGSTOPped server reads nothing, so this shows a request queued at it.
pub fn unread_bytes_at(port: u16) -> u64 {
    let local = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let mut f = line.split_whitespace();
                    let local_addr = f.nth(1)?;
                    let queues = f.nth(2)?;
                    let rx = queues.split(':').nth(1)?;
                    local_addr
                        .ends_with(&local)
                        .then(|| u64::from_str_radix(rx, 16).ok())?
                })
                .collect::<Vec<_>>()
        })
        .sum()
}
