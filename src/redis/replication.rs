//! Replication on group servers: the SetMaster transaction (`SLAVEOF`,
//! `CONFIG REWRITE`) on a one-shot connection, and `INFO replication` (role,
//! offsets) and write pauses over pooled connections (Codis dashboard §4.3,
//! §4.4).

use std::time::Duration;

use super::client::is_auth_error;
use super::dial::{Dialer, bounded};
use super::info::parse_info;
use super::pool::Pool;
use super::reply::{Value, unexpected};
use super::{Persisted, RedisError};
use crate::model::{Addr, InfoMap};

/// Group-server side of [`super::PooledHa`]: every connection authenticates
/// with `product_auth`.
#[derive(Debug)]
pub(crate) struct Replication {
    /// For the one-shot SetMaster connection; its password is also the
    /// `masterauth` a replica needs to reach its master.
    dialer: Dialer,
    servers: Pool,
}

impl Replication {
    pub(crate) fn new(product_auth: &str, idle_timeout: Duration) -> Replication {
        Replication {
            dialer: Dialer::new(product_auth),
            servers: Pool::new(product_auth, idle_timeout),
        }
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.servers
    }

    /// See [`super::HaAdmin::set_master`].
    pub(crate) async fn set_master(
        &self,
        addr: &str,
        master: Option<&str>,
        timeout: Duration,
    ) -> Result<Persisted, RedisError> {
        let master = match master {
            Some(m) => Some(split_master(addr, m)?),
            None => None,
        };
        bounded(addr, timeout, self.run_set_master(addr, master, timeout)).await
    }

    /// The SetMaster transaction, unbounded (the caller bounds it).
    async fn run_set_master(
        &self,
        addr: &str,
        master: Option<(&str, u16)>,
        timeout: Duration,
    ) -> Result<Persisted, RedisError> {
        // A one-shot connection, as in Codis: the caller's deadline may be long
        // (a sync action allows minutes), and the transaction kills every
        // other normal client, pooled ones included.
        let mut conn = self.dialer.dial(addr, timeout).await?;
        let (host, port) = match master {
            Some((host, port)) => (host, port.to_string()),
            None => ("NO", "ONE".to_owned()),
        };
        let slaveof = format!("SLAVEOF {host} {port}");
        // The labels name each command in errors; the password is left out.
        let labels = [
            "MULTI",
            "CONFIG SET masterauth",
            &slaveof,
            "CONFIG REWRITE",
            "CLIENT KILL TYPE normal",
            "EXEC",
        ];
        // CLIENT KILL defaults to SKIPME yes, so this connection survives to
        // read EXEC's reply.
        let cmds: [&[&[u8]]; 6] = [
            &[b"MULTI"],
            &[
                b"CONFIG",
                b"SET",
                b"masterauth",
                self.dialer.password().as_bytes(),
            ],
            &[b"SLAVEOF", host.as_bytes(), port.as_bytes()],
            &[b"CONFIG", b"REWRITE"],
            &[b"CLIENT", b"KILL", b"TYPE", b"normal"],
            &[b"EXEC"],
        ];
        let replies = conn.pipeline(&cmds).await?;
        check_transaction(addr, &labels, replies)
    }

    /// See [`super::HaAdmin::replication`].
    pub(crate) async fn replication(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<InfoMap, RedisError> {
        let reply = self
            .servers
            .call(addr, &[b"INFO", b"replication"], timeout)
            .await?;
        let text = reply
            .to_text()
            .ok_or_else(|| unexpected(addr, "INFO replication", &reply))?;
        Ok(parse_info(&text))
    }

    /// See [`super::HaAdmin::pause_writes`].
    pub(crate) async fn pause_writes(
        &self,
        addr: &str,
        pause: Duration,
        timeout: Duration,
    ) -> Result<(), RedisError> {
        let ms = pause.as_millis().to_string();
        self.servers
            .call(
                addr,
                &[b"CLIENT", b"PAUSE", ms.as_bytes(), b"WRITE"],
                timeout,
            )
            .await?;
        Ok(())
    }

    /// See [`super::HaAdmin::unpause`].
    pub(crate) async fn unpause(&self, addr: &str, timeout: Duration) -> Result<(), RedisError> {
        self.servers
            .call(addr, &[b"CLIENT", b"UNPAUSE"], timeout)
            .await?;
        Ok(())
    }
}

/// `host:port` of a master as SLAVEOF's two arguments. `addr` is the server
/// being configured, for the error.
fn split_master<'a>(addr: &str, master: &'a str) -> Result<(&'a str, u16), RedisError> {
    Addr::split(master).map_err(|e| RedisError::Reply {
        addr: addr.to_owned(),
        reason: format!("master {e}"),
    })
}

/// Judges the replies to `MULTI`, the queued commands and `EXEC`; `labels`
/// names each command, in the same order. Redis does not roll back: commands
/// before the failed one in EXEC have taken effect.
fn check_transaction(
    addr: &str,
    labels: &[&str],
    replies: Vec<Value>,
) -> Result<Persisted, RedisError> {
    // `error` is Redis's own text, which tells an auth failure from others.
    let fail = |error: &str, reason: String| {
        let addr = addr.to_owned();
        if is_auth_error(error) {
            RedisError::Auth { addr, reason }
        } else {
            RedisError::Reply { addr, reason }
        }
    };
    let queued = labels.len().saturating_sub(2);
    if replies.len() != labels.len() || queued == 0 {
        let reason = format!(
            "{} replies to a transaction of {} commands",
            replies.len(),
            labels.len()
        );
        return Err(fail("", reason));
    }
    if let Value::Error(e) = &replies[0] {
        return Err(fail(e, format!("MULTI failed: {e}")));
    }
    // A command refused while queueing makes EXEC answer EXECABORT; the
    // refusal says why.
    let refused = labels[1..=queued]
        .iter()
        .zip(&replies[1..=queued])
        .find_map(|(label, reply)| match reply {
            Value::Error(e) => Some((e, format!("{label} failed: {e}"))),
            _ => None,
        });
    match &replies[queued + 1] {
        Value::Array(results) if results.len() == queued => {
            let mut persisted = Persisted::Yes;
            for (label, result) in labels[1..=queued].iter().zip(results) {
                match result {
                    Value::Error(e) if *label == "CONFIG REWRITE" => {
                        persisted = Persisted::No(format!("{label} failed: {e}"));
                    }
                    Value::Error(e) => return Err(fail(e, format!("{label} failed: {e}"))),
                    _ => {}
                }
            }
            Ok(persisted)
        }
        Value::Error(e) => Err(match refused {
            Some((first, why)) => fail(first, format!("{why}; transaction discarded ({e})")),
            None => fail(e, format!("EXEC failed: {e}")),
        }),
        other => Err(unexpected(addr, "EXEC", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Value {
        Value::Simple("OK".into())
    }

    fn queued() -> Value {
        Value::Simple("QUEUED".into())
    }

    const LABELS: [&str; 6] = [
        "MULTI",
        "CONFIG SET masterauth",
        "SLAVEOF NO ONE",
        "CONFIG REWRITE",
        "CLIENT KILL TYPE normal",
        "EXEC",
    ];

    fn reason(r: Result<Persisted, RedisError>) -> String {
        match r {
            Err(RedisError::Reply { addr, reason }) => {
                assert_eq!(addr, "h:1");
                reason
            }
            other => panic!("expected a reply error, got {other:?}"),
        }
    }

    #[test]
    fn a_successful_transaction() {
        let exec = Value::Array(vec![ok(), ok(), ok(), Value::Int(3)]);
        let replies = vec![ok(), queued(), queued(), queued(), queued(), exec];
        assert_eq!(
            check_transaction("h:1", &LABELS, replies).unwrap(),
            Persisted::Yes
        );
    }

    #[test]
    fn a_failed_rewrite_is_reported_apart_from_the_switch() {
        let exec = Value::Array(vec![
            ok(),
            ok(),
            Value::Error("ERR The server is running without a config file".into()),
            Value::Int(0),
        ]);
        let replies = vec![ok(), queued(), queued(), queued(), queued(), exec];
        assert_eq!(
            check_transaction("h:1", &LABELS, replies).unwrap(),
            Persisted::No(
                "CONFIG REWRITE failed: ERR The server is running without a config file".into()
            )
        );
    }

    #[test]
    fn an_error_inside_exec_names_the_command() {
        let exec = Value::Array(vec![
            ok(),
            Value::Error("ERR Unbalanced quotes".into()),
            ok(),
            Value::Int(0),
        ]);
        let replies = vec![ok(), queued(), queued(), queued(), queued(), exec];
        assert_eq!(
            reason(check_transaction("h:1", &LABELS, replies)),
            "SLAVEOF NO ONE failed: ERR Unbalanced quotes"
        );
    }

    #[test]
    fn a_refused_command_explains_execabort() {
        let replies = vec![
            ok(),
            Value::Error("ERR unknown command 'CONFIG'".into()),
            queued(),
            Value::Error("ERR unknown command 'CONFIG'".into()),
            queued(),
            Value::Error("EXECABORT Transaction discarded because of previous errors.".into()),
        ];
        let why = reason(check_transaction("h:1", &LABELS, replies));
        assert!(
            why.starts_with("CONFIG SET masterauth failed: ERR unknown command 'CONFIG'"),
            "{why}"
        );
        assert!(why.contains("EXECABORT"), "{why}");
    }

    #[test]
    fn noauth_is_an_auth_error() {
        let noauth = || Value::Error("NOAUTH Authentication required.".into());
        let replies = vec![noauth(), noauth(), noauth(), noauth(), noauth(), noauth()];
        let r = check_transaction("h:1", &LABELS, replies);
        assert!(matches!(r, Err(RedisError::Auth { .. })), "{r:?}");
    }

    #[test]
    fn odd_exec_replies() {
        let base = || vec![ok(), queued(), queued(), queued(), queued()];
        for exec in [
            Value::Nil,
            Value::Array(vec![ok()]),
            Value::Simple("OK".into()),
        ] {
            let mut replies = base();
            replies.push(exec.clone());
            let why = reason(check_transaction("h:1", &LABELS, replies));
            assert!(why.contains("EXEC"), "{exec:?}: {why}");
        }
        assert!(check_transaction("h:1", &LABELS, base()).is_err());
    }

    #[test]
    fn master_addresses() {
        assert_eq!(
            split_master("h:1", "10.0.0.1:6379").unwrap(),
            ("10.0.0.1", 6379)
        );
        assert_eq!(
            split_master("h:1", "redis-a.local:7000").unwrap(),
            ("redis-a.local", 7000)
        );
        assert_eq!(split_master("h:1", "[::1]:6379").unwrap(), ("::1", 6379));
        assert_eq!(split_master("h:1", "::1:6379").unwrap(), ("::1", 6379));
        for bad in ["10.0.0.1", ":6379", "h:", "h:port", "h:70000", ""] {
            assert!(split_master("h:1", bad).is_err(), "{bad}");
        }
    }
}
