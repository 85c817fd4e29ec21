//! Service configuration: a TOML file using Codis `dashboard.toml` key names where
//! the meaning is the same. Every key has a default, so no file is needed; an
//! unknown key or an invalid value is refused at start, naming the key.
//!
//! Each key is written twice: its typed field in [`Config`] (the file format is
//! the struct itself, through serde) and its default in `Config::default`.
//! Cross-field rules and ranges live in one place, [`Config::validate`].

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::coordinator::proxies::ProxySettings;
use crate::coordinator::slot_actions::MigrationSettings;
use crate::coordinator::{HaSettings, SentinelSettings, Settings};
use crate::model::{ForwardMethod, InfoSections, validate_product_name};
use crate::units::{parse_bytes, parse_duration};

/// Which metadata store backs the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store: a local directory (Codis `filesystem`).
    Local,
    /// etcd v3.
    Etcd,
}

impl Backend {
    /// The name `coordinator_name` takes for it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Etcd => "etcd",
        }
    }

    /// Where the store is when `coordinator_addr` is not set.
    fn default_addr(self) -> &'static str {
        match self {
            Backend::Local => "topom-data",
            Backend::Etcd => "127.0.0.1:2379",
        }
    }
}

/// The configuration. Durations are written `"30s"`, `"500ms"`, `"5m"` (a bare
/// integer means seconds, as in Codis); sizes `"32mb"` or a number of bytes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Store backend (`coordinator_name`: `local`, `filesystem`/`fs`, or `etcd`).
    #[serde(rename = "coordinator_name", deserialize_with = "de_backend")]
    pub backend: Backend,
    /// Store location: a directory, or comma-separated etcd endpoints; empty
    /// means the backend's default (`topom-data`, `127.0.0.1:2379`).
    // Missing from a file means empty (not `Config::default`'s local directory), so
    // the default can follow `coordinator_name`.
    #[serde(default)]
    pub coordinator_addr: String,
    /// etcd `user:password`; empty for none.
    pub coordinator_auth: String,
    /// Prefix prepended to every etcd key.
    pub etcd_prefix: String,
    /// TTL of the etcd ownership lease.
    #[serde(deserialize_with = "de_duration")]
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
    #[serde(deserialize_with = "de_forward_method")]
    pub migration_method: ForwardMethod,
    /// Maximum slots being prepared at once (pending → preparing → prepared: what
    /// proxies hold locked). Slots already `migrating` do not count: one scan of
    /// a source serves all of them.
    pub migration_parallel_slots: u32,
    /// codis-server async migration: elements per chunk.
    pub migration_async_maxbulks: u32,
    /// codis-server async migration: buffered bytes.
    #[serde(deserialize_with = "de_bytes")]
    pub migration_async_maxbytes: u64,
    /// codis-server async migration: keys per batch.
    pub migration_async_numkeys: u32,
    /// Timeout of one migration command.
    #[serde(deserialize_with = "de_duration")]
    pub migration_timeout: Duration,
    /// Keys migrated per second by this topom instance, every pass and
    /// source together; 0 means unlimited.
    #[serde(deserialize_with = "de_keys_rate")]
    pub migration_max_keys_per_sec: u64,
    /// Bytes migrated per second by this topom instance (estimated sizes),
    /// every pass and source together; 0 means unlimited.
    #[serde(deserialize_with = "de_bytes_rate")]
    pub migration_max_bytes_per_sec: u64,
    /// Deadline of sentinel admin operations.
    #[serde(deserialize_with = "de_duration")]
    pub sentinel_client_timeout: Duration,
    /// Sentinel `monitor` quorum.
    pub sentinel_quorum: u32,
    /// Sentinel `parallel-syncs`.
    pub sentinel_parallel_syncs: u32,
    /// Sentinel `down-after-milliseconds`.
    #[serde(deserialize_with = "de_duration")]
    pub sentinel_down_after: Duration,
    /// Sentinel `failover-timeout`.
    #[serde(deserialize_with = "de_duration")]
    pub sentinel_failover_timeout: Duration,
    /// Sentinel `notification-script` (set only when non-empty).
    pub sentinel_notification_script: String,
    /// Sentinel `client-reconfig-script` (set only when non-empty).
    pub sentinel_client_reconfig_script: String,
    /// How long a sync action waits for a replica's link to come up.
    #[serde(deserialize_with = "de_duration")]
    pub sync_link_timeout: Duration,
    /// How long a promote waits for the replica to get close to the master.
    #[serde(deserialize_with = "de_duration")]
    pub promote_catchup_timeout: Duration,
    /// The longest a promote pauses writes on the old master.
    #[serde(deserialize_with = "de_duration")]
    pub promote_max_write_pause: Duration,
    /// How long a proxy may go without renewing its lease.
    #[serde(deserialize_with = "de_duration")]
    pub proxy_lease_ttl: Duration,
    /// The longest a migration step waits for every live proxy to apply a table.
    #[serde(deserialize_with = "de_duration")]
    pub migration_barrier_timeout: Duration,
    /// Period of the stats refresh task.
    #[serde(deserialize_with = "de_duration")]
    pub stats_refresh_period: Duration,
    /// The INFO sections a round asks each group server for: a comma-separated
    /// list (the sections of the derived fields are always added) or `all`.
    #[serde(deserialize_with = "de_info_sections")]
    pub stats_info_sections: InfoSections,
    /// How long in-flight RPCs may run after a shutdown signal.
    #[serde(deserialize_with = "de_duration")]
    pub shutdown_grace: Duration,
    /// Log filter (`RUST_LOG` syntax); `RUST_LOG` in the environment wins.
    pub log_level: String,
    /// HTTP address serving `/metrics` and `/healthz`; `None` (the default,
    /// an empty `metrics_addr`) serves none.
    #[serde(deserialize_with = "de_optional")]
    pub metrics_addr: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: Backend::Local,
            coordinator_addr: Backend::Local.default_addr().into(),
            coordinator_auth: String::new(),
            etcd_prefix: String::new(),
            etcd_lease_ttl: Duration::from_secs(5),
            product_name: "codis-demo".into(),
            product_auth: String::new(),
            admin_addr: "127.0.0.1:18080".into(),
            admin_token: String::new(),
            auth_reads: false,
            migration_method: ForwardMethod::SemiAsync,
            migration_parallel_slots: 100,
            migration_async_maxbulks: 200,
            migration_async_maxbytes: 32 << 20,
            migration_async_numkeys: 500,
            migration_timeout: Duration::from_secs(30),
            migration_max_keys_per_sec: 0,
            migration_max_bytes_per_sec: 0,
            sentinel_client_timeout: Duration::from_secs(10),
            sentinel_quorum: 2,
            sentinel_parallel_syncs: 1,
            sentinel_down_after: Duration::from_secs(30),
            sentinel_failover_timeout: Duration::from_secs(300),
            sentinel_notification_script: String::new(),
            sentinel_client_reconfig_script: String::new(),
            sync_link_timeout: Duration::from_secs(5),
            promote_catchup_timeout: Duration::from_secs(5),
            promote_max_write_pause: Duration::from_secs(1),
            proxy_lease_ttl: Duration::from_secs(10),
            migration_barrier_timeout: Duration::from_secs(30),
            stats_refresh_period: Duration::from_secs(1),
            stats_info_sections: InfoSections::default(),
            shutdown_grace: Duration::from_secs(10),
            log_level: "info".into(),
            metrics_addr: None,
        }
    }
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
    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
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

impl Config {
    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "<text>")
    }

    fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            reason: e.to_string(),
        })?;
        if config.coordinator_addr.trim().is_empty() {
            config.coordinator_addr = config.backend.default_addr().into();
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks what a field's type cannot: ranges, names, addresses, filters.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_product_name(&self.product_name).map_err(|e| invalid("product_name", e))?;
        socket_addr("admin_addr", &self.admin_addr)?;
        if let Some(a) = &self.metrics_addr {
            socket_addr("metrics_addr", a)?;
        }
        for (key, value, max) in [
            (
                "migration_parallel_slots",
                self.migration_parallel_slots,
                1024,
            ),
            (
                "migration_async_maxbulks",
                self.migration_async_maxbulks,
                512 * 1024,
            ),
            (
                "migration_async_numkeys",
                self.migration_async_numkeys,
                1 << 20,
            ),
            ("sentinel_quorum", self.sentinel_quorum, 1000),
            (
                "sentinel_parallel_syncs",
                self.sentinel_parallel_syncs,
                1000,
            ),
        ] {
            if !(1..=max).contains(&value) {
                return Err(invalid(key, format!("{value} is not in 1..={max}")));
            }
        }
        if self.migration_async_maxbytes == 0 {
            return Err(invalid(
                "migration_async_maxbytes",
                "must be greater than zero",
            ));
        }
        let bytes = self.migration_max_bytes_per_sec;
        if bytes > 0 && bytes < MIN_BYTES_PER_SEC {
            return Err(invalid(
                "migration_max_bytes_per_sec",
                format!(
                    "{bytes} bytes/s is below 1kb/s, less than a small key a second; \
                     write 0 for unlimited"
                ),
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .map_err(|e| invalid("log_level", format!("{:?}: {e}", self.log_level)))?;
        Ok(())
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

/// The core's settings: what the coordinator needs from the file, and nothing of
/// its format.
impl From<&Config> for Settings {
    fn from(c: &Config) -> Settings {
        Settings {
            product: c.product_name.clone(),
            method: c.migration_method,
            ha: HaSettings {
                product_auth: c.product_auth.clone(),
                sync_timeout: Duration::from_secs(10),
                sync_link_timeout: c.sync_link_timeout,
                promote_catchup_timeout: c.promote_catchup_timeout,
                promote_max_write_pause: c.promote_max_write_pause,
                sentinel: SentinelSettings {
                    client_timeout: c.sentinel_client_timeout,
                    quorum: c.sentinel_quorum,
                    parallel_syncs: c.sentinel_parallel_syncs,
                    down_after: c.sentinel_down_after,
                    failover_timeout: c.sentinel_failover_timeout,
                    notification_script: c.sentinel_notification_script.clone(),
                    client_reconfig_script: c.sentinel_client_reconfig_script.clone(),
                },
            },
            proxy: ProxySettings {
                lease_ttl: c.proxy_lease_ttl,
                heartbeat: c.proxy_lease_ttl / 3,
                barrier_timeout: c.migration_barrier_timeout,
            },
            migration: MigrationSettings {
                parallel_slots: c.migration_parallel_slots,
                timeout: c.migration_timeout,
                max_keys_per_sec: c.migration_max_keys_per_sec,
                max_bytes_per_sec: c.migration_max_bytes_per_sec,
                ..MigrationSettings::default()
            },
        }
    }
}

/// The lowest bytes/s limit: below it a batch of a few small keys would wait
/// for many seconds, which is no migration at all.
const MIN_BYTES_PER_SEC: u64 = 1 << 10;

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

fn socket_addr(key: &'static str, a: &str) -> Result<(), ConfigError> {
    a.parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|e| invalid(key, format!("{a:?} is not an ip:port ({e})")))
}

/// A duration or size as written: a number, or text with a unit. Anything else is
/// refused with what was expected (serde's own message would name an internal type).
fn number_or_text<'de, D: Deserializer<'de>>(
    d: D,
    what: &str,
) -> Result<Result<i64, String>, D::Error> {
    match toml::Value::deserialize(d)? {
        toml::Value::Integer(n) => Ok(Ok(n)),
        toml::Value::String(s) => Ok(Err(s)),
        other => Err(serde::de::Error::custom(format!(
            "{} is not {what}",
            other.type_str()
        ))),
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let parsed = match number_or_text(d, "a duration like \"30s\" or a number of seconds")? {
        // Codis writes some durations as bare seconds.
        Ok(n) if n > 0 => Ok(Duration::from_secs(n as u64)),
        Ok(n) => Err(format!("{n}: a duration must be greater than zero")),
        Err(s) => parse_duration(&s),
    };
    parsed.map_err(serde::de::Error::custom)
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let parsed = match number_or_text(d, "a size like \"32mb\" or a number of bytes")? {
        Ok(n) if n > 0 => Ok(n as u64),
        Ok(n) => Err(format!("{n}: a size must be greater than zero")),
        Err(s) => parse_bytes(&s),
    };
    parsed.map_err(serde::de::Error::custom)
}

/// A keys/s rate: a non-negative integer, 0 for unlimited.
fn de_keys_rate<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let parsed = match number_or_text(d, "a number of keys per second (0: unlimited)")? {
        Ok(n) => u64::try_from(n)
            .map_err(|_| format!("{n}: keys per second cannot be negative (0: unlimited)")),
        Err(s) => Err(format!(
            "{s:?} is text: write a number of keys per second, e.g. 5000 (0: unlimited)"
        )),
    };
    parsed.map_err(serde::de::Error::custom)
}

/// A bytes/s rate: a size as [`de_bytes`] takes it, or 0 for unlimited.
fn de_bytes_rate<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let parsed = match number_or_text(d, "a size per second like \"64mb\" (0: unlimited)")? {
        Ok(n) => u64::try_from(n)
            .map_err(|_| format!("{n}: bytes per second cannot be negative (0: unlimited)")),
        Err(s) => parse_bytes(&s),
    };
    parsed.map_err(serde::de::Error::custom)
}

fn de_backend<'de, D: Deserializer<'de>>(d: D) -> Result<Backend, D::Error> {
    let s = String::deserialize(d)?;
    match s.to_ascii_lowercase().as_str() {
        "local" | "filesystem" | "fs" => Ok(Backend::Local),
        "etcd" => Ok(Backend::Etcd),
        _ => Err(serde::de::Error::custom(format!(
            "{s:?} is not one of local, filesystem, fs, etcd"
        ))),
    }
}

fn de_forward_method<'de, D: Deserializer<'de>>(d: D) -> Result<ForwardMethod, D::Error> {
    let s = String::deserialize(d)?;
    match s.as_str() {
        "sync" => Ok(ForwardMethod::Sync),
        "semi-async" | "semi_async" => Ok(ForwardMethod::SemiAsync),
        _ => Err(serde::de::Error::custom(format!(
            "{s:?} is not sync or semi-async"
        ))),
    }
}

fn de_info_sections<'de, D: Deserializer<'de>>(d: D) -> Result<InfoSections, D::Error> {
    InfoSections::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

/// An empty string means "not set".
fn de_optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    let s = s.trim();
    Ok((!s.is_empty()).then(|| s.to_owned()))
}

#[cfg(test)]
mod tests;

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
