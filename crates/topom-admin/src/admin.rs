//! Housekeeping commands: `overview`, `model`, `reload`, `shutdown`,
//! `resign`, `log-level`, `server-info`, `sentinel-info`, `events`.

use std::time::Duration;

use clap::ValueEnum;

use super::client::{Ctx, call};
use super::error::CliError;
use super::output::{Table, enum_label, fmt_bytes, fmt_pb_duration, fmt_time, key_values, or_dash};
use super::parse;
use crate::pb;

/// The levels `log-level` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Level {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default.
    Info,
    /// Verbose.
    Debug,
    /// Very verbose.
    Trace,
    /// Nothing.
    Off,
}

impl From<Level> for pb::LogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Error => Self::Error,
            Level::Warn => Self::Warn,
            Level::Info => Self::Info,
            Level::Debug => Self::Debug,
            Level::Trace => Self::Trace,
            Level::Off => Self::Off,
        }
    }
}

/// `overview`: version, configuration, owner, counts, and the instances.
pub async fn overview(ctx: &Ctx) -> Result<(), CliError> {
    let resp = call!(ctx, get_overview, pb::GetOverviewRequest {})?;
    ctx.out.emit(&resp, |r| {
        let mut text = render_overview(r);
        if !r.instances.is_empty() {
            text.push('\n');
            text.push_str(&render_instances(&r.instances));
        }
        text
    })
}

fn role_label(role: i32) -> String {
    pb::InstanceRole::try_from(role).map_or_else(
        |_| role.to_string(),
        |r| enum_label(r.as_str_name(), "INSTANCE_ROLE_"),
    )
}

/// One row per instance. SINCE is when the leader took over, and when a
/// standby started (it has been one since).
fn render_instances(instances: &[pb::TopomInstance]) -> String {
    let mut table = Table::new(&["ADDR", "ROLE", "PID", "HOST", "SINCE"]);
    for i in instances {
        let since = i.leader_since.as_ref().or(i.started.as_ref());
        table.row([
            i.addr.clone(),
            role_label(i.role),
            i.pid.to_string(),
            or_dash(&i.hostname),
            fmt_time(since),
        ]);
    }
    table.render()
}

/// The migration throttle as the overview shows it: `unthrottled`, or the
/// limits set (`at most 5000 keys/s, 64.0M/s`).
fn fmt_throttle(keys_per_sec: u64, bytes_per_sec: u64) -> String {
    let mut limits = Vec::new();
    if keys_per_sec > 0 {
        limits.push(format!("{keys_per_sec} keys/s"));
    }
    if bytes_per_sec > 0 {
        let bytes = i64::try_from(bytes_per_sec).unwrap_or(i64::MAX);
        limits.push(format!("{}/s", fmt_bytes(bytes)));
    }
    if limits.is_empty() {
        "unthrottled".into()
    } else {
        format!("at most {}", limits.join(", "))
    }
}

fn render_overview(resp: &pb::GetOverviewResponse) -> String {
    let mut pairs = vec![("version", resp.version.clone())];
    // An older topom sets neither.
    if resp.role != pb::InstanceRole::Unspecified as i32 || !resp.leader_addr.is_empty() {
        pairs.push(("role", role_label(resp.role)));
        pairs.push(("leader", or_dash(&resp.leader_addr)));
    }
    if let Some(c) = &resp.config {
        pairs.push(("product", c.product_name.clone()));
        pairs.push((
            "coordinator",
            format!("{} {}", c.coordinator_name, c.coordinator_addr),
        ));
        pairs.push(("listen", c.listen_addr.clone()));
        pairs.push((
            "migration",
            format!(
                "{}, {} slot(s) at once, timeout {}, {}",
                pb::ForwardMethod::try_from(c.migration_method).map_or_else(
                    |_| c.migration_method.to_string(),
                    |m| enum_label(m.as_str_name(), "FORWARD_METHOD_")
                ),
                c.migration_parallel_slots,
                fmt_pb_duration(c.migration_timeout.as_ref()),
                fmt_throttle(c.migration_max_keys_per_sec, c.migration_max_bytes_per_sec)
            ),
        ));
        pairs.push(("sentinel quorum", c.sentinel_quorum.to_string()));
        pairs.push((
            "stats period",
            fmt_pb_duration(c.stats_refresh_period.as_ref()),
        ));
        pairs.push(("redis auth", yes_no(c.product_auth_set, "set", "none")));
        pairs.push((
            "admin auth",
            yes_no(c.admin_auth_required, "required", "none"),
        ));
    }
    if let Some(m) = &resp.model {
        pairs.push((
            "owner",
            format!("{} pid {} on {}", m.admin_addr, m.pid, m.hostname),
        ));
        pairs.push(("started", fmt_time(m.start_time.as_ref())));
    }
    pairs.push((
        "groups",
        format!("{} ({} servers)", resp.group_count, resp.server_count),
    ));
    pairs.push(("proxies", resp.proxy_count.to_string()));
    pairs.push(("revision", resp.revision.to_string()));
    let mut per_group: Vec<(u32, u32)> =
        resp.slots_per_group.iter().map(|(g, n)| (*g, *n)).collect();
    per_group.sort_unstable();
    let slots = per_group
        .iter()
        .map(|(g, n)| match g {
            0 => format!("offline {n}"),
            g => format!("group {g}: {n}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    pairs.push(("slots", or_dash(&slots)));
    key_values(&pairs)
}

fn yes_no(v: bool, yes: &str, no: &str) -> String {
    if v { yes } else { no }.to_string()
}

/// `model`: the owner record of the topom instance.
pub async fn model(ctx: &Ctx) -> Result<(), CliError> {
    let resp = call!(ctx, get_model, pb::GetModelRequest {})?;
    ctx.out.emit(&resp, |r| match &r.model {
        Some(m) => render_model(m),
        None => "no owner record".to_string(),
    })
}

fn render_model(m: &pb::TopomModel) -> String {
    key_values(&[
        ("token", m.token.clone()),
        ("product", m.product_name.clone()),
        ("admin addr", m.admin_addr.clone()),
        ("started", fmt_time(m.start_time.as_ref())),
        ("pid", m.pid.to_string()),
        ("pwd", m.pwd.clone()),
        ("hostname", m.hostname.clone()),
        ("sys", m.sys.clone()),
    ])
}

/// `reload`: drop the caches and reload the product from the store.
pub async fn reload(ctx: &Ctx) -> Result<(), CliError> {
    let resp = call!(ctx, reload, pb::ReloadRequest {})?;
    ctx.out
        .emit(&resp, |r| format!("reloaded; revision {}", r.revision))
}

/// `shutdown`: stop the topom instance gracefully.
pub async fn shutdown(ctx: &Ctx) -> Result<(), CliError> {
    let resp = call!(ctx, shutdown, pb::ShutdownRequest {})?;
    ctx.out.emit(&resp, |_| "shutting down".to_string())
}

/// `resign [--wait D]`: hand leadership to a standby and wait for it.
pub async fn resign(ctx: &Ctx, wait: Duration) -> Result<(), CliError> {
    let req = pb::ResignRequest {
        wait: Some(parse::proto_duration(wait, "--wait").map_err(CliError::Usage)?),
    };
    // topom answers once a standby leads, or when `wait` is over.
    let deadline = ctx.timeout().max(wait + Duration::from_secs(5));
    let resp = call!(ctx, resign, req, deadline)?;
    ctx.out.emit(&resp, |r| {
        format!(
            "leader is now {} (takeover {})",
            or_dash(&r.leader_addr),
            fmt_pb_duration(r.takeover.as_ref())
        )
    })
}

/// `log-level <level>`.
pub async fn log_level(ctx: &Ctx, level: Level) -> Result<(), CliError> {
    let level = pb::LogLevel::from(level);
    let req = pb::SetLogLevelRequest {
        level: level as i32,
    };
    let resp = call!(ctx, set_log_level, req)?;
    ctx.out.emit(&resp, |_| {
        format!(
            "log level set to {}",
            enum_label(level.as_str_name(), "LOG_LEVEL_")
        )
    })
}

/// `server-info <addr>`: INFO of any Redis server.
pub async fn server_info(ctx: &Ctx, addr: String) -> Result<(), CliError> {
    let resp = call!(ctx, get_server_info, pb::GetServerInfoRequest { addr })?;
    ctx.out.emit(&resp, |r| render_fields(&r.fields))
}

/// `sentinel-info <addr> [--monitored]`: INFO of a Sentinel.
pub async fn sentinel_info(ctx: &Ctx, addr: String, monitored: bool) -> Result<(), CliError> {
    let req = pb::GetSentinelInfoRequest { addr, monitored };
    let resp = call!(ctx, get_sentinel_info, req)?;
    ctx.out.emit(&resp, |r| {
        let mut text = render_fields(&r.fields);
        if monitored {
            text.push('\n');
            text.push_str(&render_monitored(&r.monitored));
        }
        text
    })
}

/// INFO fields as a sorted `FIELD VALUE` table.
fn render_fields(fields: &std::collections::HashMap<String, String>) -> String {
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort();
    let mut table = Table::new(&["FIELD", "VALUE"]);
    for k in keys {
        table.row([k.as_str(), fields[k].as_str()]);
    }
    table.render()
}

/// What a Sentinel monitors for this product, one line per group.
fn render_monitored(groups: &std::collections::HashMap<String, pb::SentinelGroup>) -> String {
    if groups.is_empty() {
        return "monitors nothing for this product".to_string();
    }
    let mut names: Vec<&String> = groups.keys().collect();
    names.sort();
    let mut table = Table::new(&["NAME", "MASTER", "FLAGS", "REPLICAS"]);
    for name in names {
        let group = &groups[name];
        let get = |k: &str| group.master.get(k).map_or("", String::as_str);
        table.row([
            name.clone(),
            format!("{}:{}", get("ip"), get("port")),
            or_dash(get("flags")),
            group.replicas.len().to_string(),
        ]);
    }
    table.render()
}

/// `events`: recent master switches and promotes.
pub async fn events(ctx: &Ctx) -> Result<(), CliError> {
    let resp = call!(ctx, list_events, pb::ListEventsRequest {})?;
    ctx.out.emit(&resp, |r| {
        if r.events.is_empty() {
            return "no events".to_string();
        }
        let mut table = Table::new(&["TIME", "KIND", "GROUP", "OLD", "NEW", "REVISION", "DETAIL"]);
        for e in &r.events {
            let kind = pb::EventKind::try_from(e.kind).map_or_else(
                |_| e.kind.to_string(),
                |k| enum_label(k.as_str_name(), "EVENT_KIND_"),
            );
            table.row([
                fmt_time(e.time.as_ref()),
                kind,
                e.group_id.to_string(),
                or_dash(&e.old_master),
                or_dash(&e.new_master),
                e.revision.to_string(),
                e.detail.clone(),
            ]);
        }
        table.render()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overview_lists_slots_per_group() {
        let resp = pb::GetOverviewResponse {
            version: "0.1.0".into(),
            group_count: 2,
            server_count: 3,
            slots_per_group: [(2, 512), (0, 12), (1, 500)].into(),
            revision: 9,
            ..Default::default()
        };
        let text = render_overview(&resp);
        assert!(text.contains("groups    2 (3 servers)"), "{text}");
        assert!(
            text.contains("slots     offline 12, group 1: 500, group 2: 512"),
            "{text}"
        );
    }

    #[test]
    fn overview_shows_the_role_leader_and_instances() {
        let ts = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        let resp = pb::GetOverviewResponse {
            role: pb::InstanceRole::Standby as i32,
            leader_addr: "10.0.0.1:18080".into(),
            instances: vec![
                pb::TopomInstance {
                    addr: "10.0.0.1:18080".into(),
                    role: pb::InstanceRole::Leader as i32,
                    pid: 41,
                    hostname: "a".into(),
                    started: ts(1_000),
                    leader_since: ts(2_000),
                },
                pb::TopomInstance {
                    addr: "10.0.0.2:18080".into(),
                    role: pb::InstanceRole::Standby as i32,
                    pid: 42,
                    hostname: "b".into(),
                    started: ts(3_000),
                    leader_since: None,
                },
            ],
            ..Default::default()
        };
        let text = render_overview(&resp);
        assert!(text.contains("role      standby"), "{text}");
        assert!(text.contains("leader    10.0.0.1:18080"), "{text}");
        let table = render_instances(&resp.instances);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[0].starts_with("ADDR") && lines[0].contains("SINCE"),
            "{table}"
        );
        // The leader's SINCE is when it took over; a standby's when it started.
        assert!(
            lines[1].contains("leader") && lines[1].contains(&fmt_time(ts(2_000).as_ref())),
            "{table}"
        );
        assert!(
            lines[2].contains("standby") && lines[2].contains(&fmt_time(ts(3_000).as_ref())),
            "{table}"
        );
        // An older topom reports neither: no role line.
        let old = render_overview(&pb::GetOverviewResponse::default());
        assert!(!old.contains("role"), "{old}");
    }

    #[test]
    fn overview_shows_the_migration_throttle() {
        let config = |keys, bytes| pb::GetOverviewResponse {
            config: Some(pb::ConfigView {
                migration_parallel_slots: 100,
                migration_max_keys_per_sec: keys,
                migration_max_bytes_per_sec: bytes,
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = render_overview(&config(0, 0));
        assert!(
            text.contains("100 slot(s) at once, timeout -, unthrottled"),
            "{text}"
        );
        let text = render_overview(&config(5000, 64 << 20));
        assert!(text.contains("at most 5000 keys/s, 64.0M/s"), "{text}");
        let text = render_overview(&config(0, 1 << 20));
        assert!(text.contains("timeout -, at most 1.0M/s"), "{text}");
    }

    #[test]
    fn levels_map_to_proto() {
        assert_eq!(pb::LogLevel::from(Level::Off), pb::LogLevel::Off);
        assert_eq!(pb::LogLevel::from(Level::Warn), pb::LogLevel::Warn);
    }
}
