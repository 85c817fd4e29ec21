//! Opening connections and bounding exchanges: one place for the connect
//! timeout rule, the AUTH step and the deadline error.

use std::time::Duration;

use super::RedisError;
use super::resp::RespConn;

/// Connecting never waits longer than this, whatever the caller's deadline.
pub(crate) const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connects to `addr` within min(1 s, `timeout`) and authenticates with
/// `password` when it is set. Callers bound the whole exchange themselves.
pub(crate) async fn dial(
    addr: &str,
    password: &str,
    timeout: Duration,
) -> Result<RespConn, RedisError> {
    let mut conn = RespConn::connect(addr, timeout.min(MAX_CONNECT_TIMEOUT)).await?;
    if !password.is_empty() {
        match conn.call(&[b"AUTH", password.as_bytes()]).await {
            Ok(_) => {}
            // e.g. "ERR AUTH <password> called without any password
            // configured": still a credentials problem, not a command one.
            Err(RedisError::Reply { addr, reason }) => {
                return Err(RedisError::Auth { addr, reason });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(conn)
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
