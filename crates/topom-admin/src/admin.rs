//! Housekeeping commands: `overview`, `model`, `reload`, `shutdown`,
//! `log-level`, `server-info`, `sentinel-info`, `events`.

use clap::ValueEnum;

use super::client::{Ctx, call};
use super::error::CliError;
use super::output::{Table, enum_label, fmt_pb_duration, fmt_time, key_values, or_dash};
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

/// `overview`: version, configuration, owner and counts.
pub async fn overview(ctx: &Ctx) -> Result<(), CliError> {
    let resp = call!(ctx, get_overview, pb::GetOverviewRequest {})?;
    ctx.out.emit(&resp, render_overview)
}

fn render_overview(resp: &pb::GetOverviewResponse) -> String {
    let mut pairs = vec![("version", resp.version.clone())];
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
                "{}, {} slot(s) at once, timeout {}",
                pb::ForwardMethod::try_from(c.migration_method).map_or_else(
                    |_| c.migration_method.to_string(),
                    |m| enum_label(m.as_str_name(), "FORWARD_METHOD_")
                ),
                c.migration_parallel_slots,
                fmt_pb_duration(c.migration_timeout.as_ref())
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
    fn levels_map_to_proto() {
        assert_eq!(pb::LogLevel::from(Level::Off), pb::LogLevel::Off);
        assert_eq!(pb::LogLevel::from(Level::Warn), pb::LogLevel::Warn);
    }
}
