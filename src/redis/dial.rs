//! [`Dialer`]: opening authenticated connections, and bounding exchanges. One
//! place for the connect timeout rule, the AUTH step, the reply budget and the
//! deadline error.

use std::time::Duration;

use super::RedisError;
use super::client::Conn;

/// Connecting never waits longer than this, whatever the caller's deadline.
pub(crate) const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Bytes a server may send in one exchange unless a dialer says otherwise:
/// `INFO all` of a busy server is tens of KiB, `SENTINEL masters` for
/// thousands of groups a few MiB.
pub(crate) const DEFAULT_REPLY_BUDGET: usize = 8 << 20;

/// Opens connections that authenticate with one password.
#[derive(Clone)]
pub struct Dialer {
    /// Sent with `AUTH` on every new connection; empty means none.
    password: String,
    /// Bytes a server may send per exchange.
    budget: usize,
}

// Written by hand so that the password never reaches a log line.
impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialer")
            .field("auth", &!self.password.is_empty())
            .field("budget", &self.budget)
            .finish()
    }
}

impl Dialer {
    /// Connections authenticate with `password` (empty: no `AUTH`).
    pub fn new(password: &str) -> Dialer {
        Dialer {
            password: password.to_owned(),
            budget: DEFAULT_REPLY_BUDGET,
        }
    }

    /// Replaces the number of bytes a server may send in one exchange.
    pub fn with_reply_budget(mut self, bytes: usize) -> Dialer {
        self.budget = bytes;
        self
    }

    /// The password (for `masterauth`, which must match `AUTH`).
    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    /// Connects to `addr` within min(1 s, `timeout`) and authenticates when
    /// the dialer has a password. Callers bound the whole exchange themselves.
    pub async fn dial(&self, addr: &str, timeout: Duration) -> Result<Conn, RedisError> {
        let mut conn = Conn::open(addr, timeout.min(MAX_CONNECT_TIMEOUT), self.budget).await?;
        if !self.password.is_empty() {
            match conn.call(&[b"AUTH", self.password.as_bytes()]).await {
                Ok(_) => {}
                // e.g. "ERR AUTH <password> called without any password
                // configured": still a credentials problem, not a command one.
                Err(RedisError::Reply { addr, reason })
                    if !reason.starts_with("protocol error") =>
                {
                    return Err(RedisError::Auth { addr, reason });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(conn)
    }
}

/// A new connection to `addr`, authenticated when `password` is set, dial and
/// AUTH within `timeout` (the migrators' one-off connections).
pub(crate) async fn connect(
    addr: &str,
    password: &str,
    timeout: Duration,
) -> Result<Conn, RedisError> {
    bounded(addr, timeout, Dialer::new(password).dial(addr, timeout)).await
}

/// `fut` within `timeout`, else [`RedisError::Timeout`] naming `addr`. A cut-off
/// call leaves its connection broken, so it is never reused out of step.
pub(crate) async fn bounded<T>(
    addr: &str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| {
            Err(RedisError::Timeout {
                addr: addr.to_owned(),
                timeout,
            })
        })
}
