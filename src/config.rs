//! Service configuration: a TOML file using Codis `dashboard.toml` key names where
//! the meaning is the same. Every key has a default, so no file is needed; an
//! invalid value is refused at start with the key and the reason.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::model::{ForwardMethod, validate_product_name};

/// Which metadata store backs the product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store: a local directory (Codis `filesystem`).
    Local,
    /// etcd v3.
    Etcd,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Store backend (`coordinator_name`: `local`, `filesystem`/`fs`, or `etcd`).
    pub backend: Backend,
    /// Store location: a directory, or comma-separated etcd endpoints.
    pub coordinator_addr: String,
    /// etcd `user:password`; empty for none.
    pub coordinator_auth: String,
    /// Prefix prepended to every etcd key.
    pub etcd_prefix: String,
    /// TTL of the etcd ownership lease.
    pub etcd_lease_ttl: Duration,
    /// The product (namespace) coordinated.
    pub product_name: String,
    /// The Redis password of every group server (`requirepass`).
    pub product_auth: String,
    /// gRPC listen address (Codis `admin_addr`).
    pub admin_addr: String,
    /// Bearer token required by mutating RPCs; empty disables auth.
    pub admin_token: String,
    /// When true, read RPCs need the token as well.
    pub auth_reads: bool,
    /// How proxies serve migrating keys.
    pub migration_method: ForwardMethod,
    /// Maximum slots migrating at once.
    pub migration_parallel_slots: u32,
    /// codis-server async migration: elements per chunk.
    pub migration_async_maxbulks: u32,
    /// codis-server async migration: buffered bytes.
    pub migration_async_maxbytes: u64,
    /// codis-server async migration: keys per batch.
    pub migration_async_numkeys: u32,
    /// Timeout of one migration command.
    pub migration_timeout: Duration,
    /// Deadline of sentinel admin operations.
    pub sentinel_client_timeout: Duration,
    /// Sentinel `monitor` quorum.
    pub sentinel_quorum: u32,
    /// Sentinel `parallel-syncs`.
    pub sentinel_parallel_syncs: u32,
    /// Sentinel `down-after-milliseconds`.
    pub sentinel_down_after: Duration,
    /// Sentinel `failover-timeout`.
    pub sentinel_failover_timeout: Duration,
    /// Sentinel `notification-script` (set only when non-empty).
    pub sentinel_notification_script: String,
    /// Sentinel `client-reconfig-script` (set only when non-empty).
    pub sentinel_client_reconfig_script: String,
    /// How long a sync action waits for a replica's link to come up.
    pub sync_link_timeout: Duration,
    /// How long a promote waits for the replica to get close to the master.
    pub promote_catchup_timeout: Duration,
    /// The longest a promote pauses writes on the old master.
    pub promote_max_write_pause: Duration,
    /// How long a proxy may go without renewing its lease.
    pub proxy_lease_ttl: Duration,
    /// The longest a migration step waits for every live proxy to apply a table.
    pub migration_barrier_timeout: Duration,
    /// Period of the stats refresh task.
    pub stats_refresh_period: Duration,
    /// How long in-flight RPCs may run after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Log filter (`RUST_LOG` syntax); `RUST_LOG` in the environment wins.
    pub log_level: String,
    /// HTTP address serving `/metrics` and `/healthz`; `None` (the default,
    /// an empty `metrics_addr`) serves none.
    pub metrics_addr: Option<String>,
}

/// The file format: every field optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    coordinator_name: Option<String>,
    coordinator_addr: Option<String>,
    coordinator_auth: Option<String>,
    etcd_prefix: Option<String>,
    etcd_lease_ttl: Option<toml::Value>,
    product_name: Option<String>,
    product_auth: Option<String>,
    admin_addr: Option<String>,
    admin_token: Option<String>,
    auth_reads: Option<bool>,
    migration_method: Option<String>,
    migration_parallel_slots: Option<i64>,
    migration_async_maxbulks: Option<i64>,
    migration_async_maxbytes: Option<toml::Value>,
    migration_async_numkeys: Option<i64>,
    migration_timeout: Option<toml::Value>,
    sentinel_client_timeout: Option<toml::Value>,
    sentinel_quorum: Option<i64>,
    sentinel_parallel_syncs: Option<i64>,
    sentinel_down_after: Option<toml::Value>,
    sentinel_failover_timeout: Option<toml::Value>,
    sentinel_notification_script: Option<String>,
    sentinel_client_reconfig_script: Option<String>,
    sync_link_timeout: Option<toml::Value>,
    promote_catchup_timeout: Option<toml::Value>,
    promote_max_write_pause: Option<toml::Value>,
    proxy_lease_ttl: Option<toml::Value>,
    migration_barrier_timeout: Option<toml::Value>,
    stats_refresh_period: Option<toml::Value>,
    shutdown_grace: Option<toml::Value>,
    log_level: Option<String>,
    metrics_addr: Option<String>,
}

/// A configuration error: the key and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown key.
    #[error("invalid config file {path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (names the key and line).
        reason: String,
    },
    /// A key has an invalid value.
    #[error("invalid config key `{key}`: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

impl Default for Config {
    fn default() -> Self {
        // Cannot fail: the defaults are valid (pinned by a unit test).
        Config::from_raw(RawConfig::default()).unwrap_or_else(|e| unreachable!("{e}"))
    }
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { reason, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<text>".into(),
            reason: e.to_string(),
        })?;
        Config::from_raw(raw)
    }

    fn from_raw(r: RawConfig) -> Result<Config, ConfigError> {
        let backend = match r
            .coordinator_name
            .as_deref()
            .unwrap_or("local")
            .to_ascii_lowercase()
            .as_str()
        {
            "local" | "filesystem" | "fs" => Backend::Local,
            "etcd" => Backend::Etcd,
            other => {
                return Err(invalid(
                    "coordinator_name",
                    format!("{other:?} is not one of local, filesystem, fs, etcd"),
                ));
            }
        };
        let default_addr = match backend {
            Backend::Local => "topom-data",
            Backend::Etcd => "127.0.0.1:2379",
        };
        let cfg = Config {
            backend,
            coordinator_addr: non_empty(
                "coordinator_addr",
                r.coordinator_addr.unwrap_or_else(|| default_addr.into()),
            )?,
            coordinator_auth: r.coordinator_auth.unwrap_or_default(),
            etcd_prefix: r.etcd_prefix.unwrap_or_default(),
            etcd_lease_ttl: duration("etcd_lease_ttl", r.etcd_lease_ttl, "10s")?,
            product_name: {
                let p = r.product_name.unwrap_or_else(|| "codis-demo".into());
                validate_product_name(&p).map_err(|e| invalid("product_name", e))?;
                p
            },
            product_auth: r.product_auth.unwrap_or_default(),
            admin_addr: {
                let a = r.admin_addr.unwrap_or_else(|| "127.0.0.1:18080".into());
                a.parse::<std::net::SocketAddr>()
                    .map_err(|e| invalid("admin_addr", format!("{a:?} is not an ip:port ({e})")))?;
                a
            },
            admin_token: r.admin_token.unwrap_or_default(),
            auth_reads: r.auth_reads.unwrap_or(false),
            migration_method: match r.migration_method.as_deref().unwrap_or("semi-async") {
                "sync" => ForwardMethod::Sync,
                "semi-async" | "semi_async" => ForwardMethod::SemiAsync,
                other => {
                    return Err(invalid(
                        "migration_method",
                        format!("{other:?} is not sync or semi-async"),
                    ));
                }
            },
            migration_parallel_slots: positive(
                "migration_parallel_slots",
                r.migration_parallel_slots,
                100,
                1024,
            )?,
            migration_async_maxbulks: positive(
                "migration_async_maxbulks",
                r.migration_async_maxbulks,
                200,
                512 * 1024,
            )?,
            migration_async_maxbytes: bytes(
                "migration_async_maxbytes",
                r.migration_async_maxbytes,
                "32mb",
            )?,
            migration_async_numkeys: positive(
                "migration_async_numkeys",
                r.migration_async_numkeys,
                500,
                1 << 20,
            )?,
            migration_timeout: duration("migration_timeout", r.migration_timeout, "30s")?,
            sentinel_client_timeout: duration(
                "sentinel_client_timeout",
                r.sentinel_client_timeout,
                "10s",
            )?,
            sentinel_quorum: positive("sentinel_quorum", r.sentinel_quorum, 2, 1000)?,
            sentinel_parallel_syncs: positive(
                "sentinel_parallel_syncs",
                r.sentinel_parallel_syncs,
                1,
                1000,
            )?,
            sentinel_down_after: duration("sentinel_down_after", r.sentinel_down_after, "30s")?,
            sentinel_failover_timeout: duration(
                "sentinel_failover_timeout",
                r.sentinel_failover_timeout,
                "5m",
            )?,
            sentinel_notification_script: r.sentinel_notification_script.unwrap_or_default(),
            sentinel_client_reconfig_script: r.sentinel_client_reconfig_script.unwrap_or_default(),
            sync_link_timeout: duration("sync_link_timeout", r.sync_link_timeout, "5s")?,
            promote_catchup_timeout: duration(
                "promote_catchup_timeout",
                r.promote_catchup_timeout,
                "5s",
            )?,
            promote_max_write_pause: duration(
                "promote_max_write_pause",
                r.promote_max_write_pause,
                "1s",
            )?,
            proxy_lease_ttl: duration("proxy_lease_ttl", r.proxy_lease_ttl, "10s")?,
            migration_barrier_timeout: duration(
                "migration_barrier_timeout",
                r.migration_barrier_timeout,
                "30s",
            )?,
            stats_refresh_period: duration("stats_refresh_period", r.stats_refresh_period, "1s")?,
            shutdown_grace: duration("shutdown_grace", r.shutdown_grace, "10s")?,
            log_level: r.log_level.unwrap_or_else(|| "info".into()),
            metrics_addr: optional_addr("metrics_addr", r.metrics_addr)?,
        };
        tracing_subscriber::EnvFilter::try_new(&cfg.log_level)
            .map_err(|e| invalid("log_level", format!("{:?}: {e}", cfg.log_level)))?;
        Ok(cfg)
    }

    /// etcd endpoints from `coordinator_addr`, with `http://` added when missing.
    pub fn etcd_endpoints(&self) -> Vec<String> {
        self.coordinator_addr
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.contains("://") {
                    s.to_owned()
                } else {
                    format!("http://{s}")
                }
            })
            .collect()
    }
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

fn non_empty(key: &'static str, v: String) -> Result<String, ConfigError> {
    if v.trim().is_empty() {
        Err(invalid(key, "must not be empty"))
    } else {
        Ok(v)
    }
}

/// An `ip:port`, or nothing when absent or empty.
fn optional_addr(key: &'static str, v: Option<String>) -> Result<Option<String>, ConfigError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(a) => match a.parse::<std::net::SocketAddr>() {
            Ok(_) => Ok(Some(a.to_owned())),
            Err(e) => Err(invalid(key, format!("{a:?} is not an ip:port ({e})"))),
        },
    }
}

fn positive(key: &'static str, v: Option<i64>, default: u32, max: u32) -> Result<u32, ConfigError> {
    match v {
        None => Ok(default),
        Some(n) if n > 0 && n <= i64::from(max) => Ok(n as u32),
        Some(n) => Err(invalid(key, format!("{n} is not in 1..={max}"))),
    }
}

fn duration(
    key: &'static str,
    v: Option<toml::Value>,
    default: &str,
) -> Result<Duration, ConfigError> {
    let d = match v {
        None => parse_duration(default),
        Some(toml::Value::Integer(n)) if n > 0 => Ok(Duration::from_secs(n as u64)),
        Some(toml::Value::String(s)) => parse_duration(&s),
        Some(other) => Err(format!(
            "{other} is not a duration like \"30s\" or \"500ms\""
        )),
    }
    .map_err(|e| invalid(key, e))?;
    if d.is_zero() {
        return Err(invalid(key, "must be greater than zero"));
    }
    Ok(d)
}

fn bytes(key: &'static str, v: Option<toml::Value>, default: &str) -> Result<u64, ConfigError> {
    let n = match v {
        None => parse_bytes(default),
        Some(toml::Value::Integer(n)) if n > 0 => Ok(n as u64),
        Some(toml::Value::String(s)) => parse_bytes(&s),
        Some(other) => Err(format!("{other} is not a size like \"32mb\"")),
    }
    .map_err(|e| invalid(key, e))?;
    if n == 0 {
        return Err(invalid(key, "must be greater than zero"));
    }
    Ok(n)
}

/// Parses a Go-style duration (`1h30m`, `30s`, `500ms`, `250us`); a bare integer
/// means seconds, as in Codis.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{s:?}: missing unit (h, m, s, ms, us, ns)"))?;
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("{s:?}: {num:?} is not a number"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let nanos_per = match unit {
            "h" => 3_600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => {
                return Err(format!(
                    "{s:?}: unknown unit {unit:?} (h, m, s, ms, us, ns)"
                ));
            }
        };
        total += Duration::from_nanos((value * nanos_per) as u64);
        rest = next;
    }
    Ok(total)
}

/// Parses a byte size (`512`, `64kb`, `32mb`, `1g`); units are powers of 1024.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like \"32mb\""))?;
    let mult = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        "t" | "tb" => 1 << 40,
        other => return Err(format!("{s:?}: unknown unit {other:?} (b, kb, mb, gb, tb)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::default();
        assert_eq!(c.backend, Backend::Local);
        assert_eq!(c.product_name, "codis-demo");
        assert_eq!(c.migration_parallel_slots, 100);
        assert_eq!(c.migration_async_maxbytes, 32 << 20);
        assert_eq!(c.sentinel_failover_timeout, Duration::from_secs(300));
        assert_eq!(c.stats_refresh_period, Duration::from_secs(1));
    }

    #[test]
    fn codis_keys_parse() {
        let c = Config::from_toml(
            r#"
            coordinator_name = "etcd"
            coordinator_addr = "127.0.0.1:2379,127.0.0.1:2380"
            product_name = "shop"
            product_auth = "secret"
            migration_method = "sync"
            migration_timeout = 10
            sentinel_down_after = "500ms"
            "#,
        )
        .unwrap();
        assert_eq!(c.backend, Backend::Etcd);
        assert_eq!(
            c.etcd_endpoints(),
            ["http://127.0.0.1:2379", "http://127.0.0.1:2380"]
        );
        assert_eq!(c.migration_method, ForwardMethod::Sync);
        assert_eq!(c.migration_timeout, Duration::from_secs(10));
        assert_eq!(c.sentinel_down_after, Duration::from_millis(500));
    }

    #[test]
    fn invalid_values_name_the_key() {
        for (text, key) in [
            ("product_name = 'a/b'", "product_name"),
            ("coordinator_name = 'zk2'", "coordinator_name"),
            ("migration_parallel_slots = 0", "migration_parallel_slots"),
            ("migration_timeout = '3 parsecs'", "migration_timeout"),
            ("admin_addr = 'nowhere'", "admin_addr"),
            (
                "migration_async_maxbytes = '9zb'",
                "migration_async_maxbytes",
            ),
            ("stats_refresh_period = '0s'", "stats_refresh_period"),
            ("metrics_addr = 'localhost'", "metrics_addr"),
        ] {
            let err = Config::from_toml(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = Config::from_toml("no_such_key = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no_such_key"), "{err}");
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert!(parse_duration("5").is_ok());
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_bytes("64kb").unwrap(), 64 << 10);
        assert_eq!(parse_bytes("2G").unwrap(), 2 << 30);
        assert!(parse_bytes("mb").is_err());
    }
}

#[cfg(test)]
mod sample_file {
    use super::*;

    /// `topom --default-config` prints topom.toml: it must parse and match the
    /// built-in defaults.
    #[test]
    fn shipped_file_is_the_defaults() {
        let c = Config::from_toml(include_str!("../topom.toml")).unwrap();
        let d = Config::default();
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
    }
}
