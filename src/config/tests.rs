//! Unit tests of the config: defaults, parsing, validation messages.

use super::*;

#[test]
fn defaults_are_valid() {
    let c = Config::default();
    c.validate().unwrap();
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
        ("stats_info_sections = 'memory,cpus'", "stats_info_sections"),
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
fn a_duration_is_an_integer_of_seconds_or_text_with_a_unit() {
    let c = Config::from_toml("migration_timeout = 7\nshutdown_grace = '1m30s'").unwrap();
    assert_eq!(c.migration_timeout, Duration::from_secs(7));
    assert_eq!(c.shutdown_grace, Duration::from_secs(90));
    // One parser with the CLI: text without a unit is ambiguous, so refused.
    for text in [
        "migration_timeout = '7'",
        "migration_timeout = -1",
        "migration_timeout = true",
    ] {
        let err = Config::from_toml(text).unwrap_err().to_string();
        assert!(err.contains("migration_timeout"), "{text}: {err}");
    }
    let c = Config::from_toml("migration_async_maxbytes = 4096").unwrap();
    assert_eq!(c.migration_async_maxbytes, 4096);
}

#[test]
fn the_migration_throttle_is_keys_and_a_size_per_second() {
    let c = Config::from_toml(
        "migration_max_keys_per_sec = 5000\nmigration_max_bytes_per_sec = '64mb'",
    )
    .unwrap();
    assert_eq!(c.migration_max_keys_per_sec, 5000);
    assert_eq!(c.migration_max_bytes_per_sec, 64 << 20);
    let s = Settings::from(&c);
    assert_eq!(s.migration.max_keys_per_sec, 5000);
    assert_eq!(s.migration.max_bytes_per_sec, 64 << 20);
    // 0, as a number or as text, and absence mean unlimited.
    for text in [
        "migration_max_bytes_per_sec = 0",
        "migration_max_bytes_per_sec = '0'",
        "migration_max_keys_per_sec = 0",
        "",
    ] {
        let c = Config::from_toml(text).unwrap();
        assert_eq!(
            (c.migration_max_keys_per_sec, c.migration_max_bytes_per_sec),
            (0, 0),
            "{text}"
        );
    }
    let c = Config::from_toml("migration_max_bytes_per_sec = 1024").unwrap();
    assert_eq!(c.migration_max_bytes_per_sec, 1024);
}

#[test]
fn a_bad_throttle_is_refused_with_the_reason() {
    for (text, key, reason) in [
        (
            "migration_max_keys_per_sec = -1",
            "keys",
            "cannot be negative",
        ),
        ("migration_max_keys_per_sec = '5000'", "keys", "is text"),
        (
            "migration_max_keys_per_sec = 1.5",
            "keys",
            "float is not a number",
        ),
        (
            "migration_max_bytes_per_sec = -1",
            "bytes",
            "cannot be negative",
        ),
        (
            "migration_max_bytes_per_sec = '9zb'",
            "bytes",
            "unknown unit 'zb'",
        ),
        (
            "migration_max_bytes_per_sec = '64mb/s'",
            "bytes",
            "unknown unit",
        ),
        ("migration_max_bytes_per_sec = 100", "bytes", "below 1kb/s"),
        (
            "migration_max_bytes_per_sec = '1023b'",
            "bytes",
            "below 1kb/s",
        ),
    ] {
        let err = Config::from_toml(text).unwrap_err().to_string();
        let key = format!("migration_max_{key}_per_sec");
        assert!(err.contains(&key) && err.contains(reason), "{text}: {err}");
    }
}

#[test]
fn info_sections_add_to_the_derived_ones_or_are_all() {
    let c = Config::from_toml("stats_info_sections = 'cpu, commandstats'").unwrap();
    assert_eq!(
        c.stats_info_sections.to_string(),
        "clients,commandstats,cpu,keyspace,memory,replication,server,stats"
    );
    let c = Config::from_toml("stats_info_sections = 'all'").unwrap();
    assert_eq!(c.stats_info_sections, InfoSections::All);
    let err = Config::from_toml("stats_info_sections = 'all,cpu'")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stats_info_sections") && err.contains("alone"),
        "{err}"
    );
}

#[test]
fn an_empty_store_address_is_the_backends_default() {
    let c = Config::from_toml("coordinator_name = 'etcd'").unwrap();
    assert_eq!(c.coordinator_addr, "127.0.0.1:2379");
    let c = Config::from_toml("coordinator_addr = ''").unwrap();
    assert_eq!(c.coordinator_addr, "topom-data");
}

#[test]
fn the_settings_carry_the_configured_values() {
    let c = Config::from_toml("proxy_lease_ttl = '9s'\nsentinel_quorum = 3").unwrap();
    let s = Settings::from(&c);
    assert_eq!(s.proxy.lease_ttl, Duration::from_secs(9));
    assert_eq!(s.proxy.heartbeat, Duration::from_secs(3));
    assert_eq!(s.ha.sentinel.quorum, 3);
}
