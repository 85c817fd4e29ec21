//! `stats`: the servers' health table (GetStats), `stats --watch` (WatchStats,
//! redrawn each round until Ctrl-C) and `stats refresh` (RefreshRedisStats).

use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use clap::{Args, Subcommand};
use futures::{Stream, StreamExt};

use super::client::{Ctx, Rpc, call};
use super::error::CliError;
use super::output::{Table, fmt_bytes, fmt_time, note, or_dash, print, to_json};
use super::parse::{self, parse_group_id};
use crate::pb;
use crate::units::parse_duration;

/// Arguments of `stats`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct StatsArgs {
    /// Follow the stats: redraw the table after every refresh round until Ctrl-C
    /// (with --json: one JSON object per line).
    #[arg(long)]
    pub watch: bool,
    /// With --watch: only servers of this group (repeatable).
    #[arg(long = "group", value_name = "GID", requires = "watch", value_parser = parse_group_id)]
    pub groups: Vec<u32>,
    /// With --watch: only this server, `host:port` (repeatable).
    #[arg(long = "server", value_name = "ADDR", requires = "watch")]
    pub servers: Vec<String>,
    /// With --watch: only these INFO fields in the JSON output (repeatable).
    #[arg(long = "field", value_name = "NAME", requires = "watch")]
    pub fields: Vec<String>,
    /// A stats subcommand; without one, print the latest stats.
    #[command(subcommand)]
    pub command: Option<StatsCmd>,
}

/// Subcommands of `stats`.
#[derive(Debug, Subcommand)]
pub enum StatsCmd {
    /// Run one stats round now (INFO of every server and sentinel) and print it.
    Refresh {
        /// Deadline of each probe, e.g. 500ms or 2s (the server allows up to 60s).
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        timeout: Duration,
    },
}

/// Runs `stats` and its subcommands.
pub async fn run(ctx: &Ctx, args: StatsArgs) -> Result<(), CliError> {
    match args.command {
        Some(StatsCmd::Refresh { timeout }) => refresh(ctx, timeout).await,
        None if args.watch => {
            let req = pb::WatchStatsRequest {
                group_ids: args.groups,
                addrs: args.servers,
                fields: args.fields,
            };
            watch(ctx, req).await
        }
        None => show(ctx).await,
    }
}

async fn show(ctx: &Ctx) -> Result<(), CliError> {
    let resp = call!(ctx, get_stats, pb::GetStatsRequest::default())?;
    ctx.out.emit(&resp, |r| match &r.stats {
        Some(s) => render_snapshot(s),
        None => "no stats yet".to_string(),
    })
}

fn render_snapshot(s: &pb::StatsSnapshot) -> String {
    let servers: Vec<&pb::ServerStats> = s.groups.iter().flat_map(|g| &g.servers).collect();
    let mut head = format!("round {}", s.round);
    if s.closed {
        head.push_str("  (topom is shutting down)");
    }
    if let Some(a) = &s.slot_action {
        head.push_str(&format!(
            "  slot-action: {}, interval {}us, {} running",
            if a.disabled { "disabled" } else { "enabled" },
            a.interval_us,
            a.executor
        ));
    }
    format!("{head}\n{}", server_table(&servers).render())
}

async fn refresh(ctx: &Ctx, probe: Duration) -> Result<(), CliError> {
    let req = pb::RefreshRedisStatsRequest {
        timeout: Some(parse::proto_duration(probe, "--timeout").map_err(CliError::Usage)?),
    };
    // The round takes up to one probe deadline; leave room for the answer.
    let deadline = ctx.timeout().max(probe + Duration::from_secs(5));
    let resp = call!(ctx, refresh_redis_stats, req, deadline)?;
    ctx.out.emit(&resp, |r| {
        let servers: Vec<&pb::ServerStats> = r.servers.iter().collect();
        format!(
            "round {} took {}\n{}",
            r.round,
            r.elapsed.map_or_else(|| "?".to_string(), |d| d.to_string()),
            server_table(&servers).render()
        )
    })
}

async fn watch(ctx: &Ctx, req: pb::WatchStatsRequest) -> Result<(), CliError> {
    // Only opening the stream is bounded; it then runs until Ctrl-C. A standby
    // refuses to open it and names the leader, which `call` follows.
    let rpc = Rpc {
        method: "watch_stats",
        deadline: ctx.timeout(),
        stream: true,
    };
    let stream = ctx
        .call(rpc, req, |mut client, req| async move {
            client.watch_stats(req).await
        })
        .await?;
    let view = WatchView {
        json: ctx.out.json,
        redraw: std::io::stdout().is_terminal() && !ctx.out.json,
    };
    let stop = async {
        // If the handler cannot be installed, follow until the stream ends.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    follow(stream, view, stop, &mut |text: &str| print(text)).await
}

/// How `stats --watch` prints each round.
#[derive(Debug, Clone, Copy)]
struct WatchView {
    /// One compact JSON object per line instead of a table.
    json: bool,
    /// Clear the terminal before each table (stdout is a terminal).
    redraw: bool,
}

/// Prints each round of `stream` through `sink` until `stop` completes (Ctrl-C)
/// or the server ends the stream.
async fn follow<S>(
    mut stream: S,
    view: WatchView,
    stop: impl Future<Output = ()>,
    sink: &mut dyn FnMut(&str) -> Result<(), CliError>,
) -> Result<(), CliError>
where
    S: Stream<Item = Result<pb::WatchStatsResponse, tonic::Status>> + Unpin,
{
    let mut rounds = RoundCounter::default();
    tokio::pin!(stop);
    loop {
        let msg = tokio::select! {
            // Checked first: Ctrl-C wins over a round that is already there.
            biased;
            () = &mut stop => return Ok(()),
            msg = stream.next() => msg,
        };
        let round = match msg {
            Some(Ok(round)) => round,
            None => {
                note("stats stream closed by topom");
                return Ok(());
            }
            Some(Err(status)) => return Err(CliError::Status(status)),
        };
        let skipped = rounds.observe(round.round);
        if view.json {
            // One object per line, so `jq` and line readers can follow along.
            sink(&to_json(&round, false)?)?;
            continue;
        }
        let mut text = String::new();
        if view.redraw {
            // Cursor home + clear screen: redraw in place rather than scroll.
            text.push_str("\x1b[H\x1b[2J");
        }
        text.push_str(&format!(
            "round {}  skipped {} ({} total)  at {}  (Ctrl-C to stop)\n",
            round.round,
            skipped,
            rounds.skipped_total,
            fmt_time(round.finished_at.as_ref())
        ));
        let servers: Vec<&pb::ServerStats> = round.servers.iter().collect();
        text.push_str(&server_table(&servers).render());
        sink(&text)?;
    }
}

/// Tracks round numbers to count the rounds a slow reader missed.
#[derive(Debug, Default)]
struct RoundCounter {
    last: Option<u64>,
    skipped_total: u64,
}

impl RoundCounter {
    /// Records a round and returns how many rounds were skipped before it.
    fn observe(&mut self, round: u64) -> u64 {
        let skipped = match self.last {
            // A smaller or equal number (a restarted topom) is not a gap.
            Some(last) if round > last => round - last - 1,
            _ => 0,
        };
        self.last = Some(round);
        self.skipped_total += skipped;
        skipped
    }
}

/// The per-server table: group, addr, role, memory, ops/s, lag, status.
fn server_table(servers: &[&pb::ServerStats]) -> Table {
    let mut table = Table::new(&["GROUP", "ADDR", "ROLE", "MEMORY", "OPS/S", "LAG", "STATUS"])
        .right_align(&[3, 4, 5]);
    for s in servers {
        let master = servers
            .iter()
            .find(|m| m.group_id == s.group_id && m.index == 0)
            .map(|m| m.addr.as_str());
        let summary = s.stats.as_ref().and_then(|r| r.summary.as_ref());
        let (role, memory, ops, lag) = match summary {
            Some(sum) => (
                or_dash(&sum.role),
                match sum.maxmemory {
                    0 => fmt_bytes(sum.used_memory),
                    max => format!("{}/{}", fmt_bytes(sum.used_memory), fmt_bytes(max)),
                },
                sum.ops_per_sec.to_string(),
                if s.index == 0 {
                    "-".to_string()
                } else {
                    fmt_bytes(sum.lag_bytes)
                },
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        table.row([
            s.group_id.to_string(),
            s.addr.clone(),
            role,
            memory,
            ops,
            lag,
            server_status(s, master),
        ]);
    }
    table
}

/// `ok`, or what is wrong with a server: the probe failed, or its replication
/// does not match its place in the group (Codis `--group-status` `[X]`).
fn server_status(s: &pb::ServerStats, master: Option<&str>) -> String {
    let Some(stats) = &s.stats else {
        return "no data".to_string();
    };
    if stats.timeout {
        return "timeout".to_string();
    }
    if !stats.error.is_empty() {
        return format!("error: {}", stats.error);
    }
    let Some(sum) = &stats.summary else {
        return "ok".to_string();
    };
    if s.index == 0 {
        if !sum.role.is_empty() && sum.role != "master" {
            return format!("expected master, follows {}", or_dash(&sum.master_addr));
        }
        return "ok".to_string();
    }
    if sum.role == "master" {
        return "expected replica, is master".to_string();
    }
    if let Some(master) = master
        && !sum.master_addr.is_empty()
        && sum.master_addr != master
    {
        return format!("follows {}, expected {master}", sum.master_addr);
    }
    if !sum.master_link_status.is_empty() && sum.master_link_status != "up" {
        return format!("link {}", sum.master_link_status);
    }
    "ok".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(group: u32, index: u32, addr: &str, summary: pb::ServerSummary) -> pb::ServerStats {
        pb::ServerStats {
            addr: addr.into(),
            group_id: group,
            index,
            stats: Some(pb::RedisStats {
                summary: Some(summary),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn table_and_statuses() {
        let master = server(
            1,
            0,
            "h:1",
            pb::ServerSummary {
                role: "master".into(),
                used_memory: 2048,
                maxmemory: 1 << 30,
                ops_per_sec: 150,
                ..Default::default()
            },
        );
        let lagging = server(
            1,
            1,
            "h:2",
            pb::ServerSummary {
                role: "slave".into(),
                master_addr: "h:1".into(),
                master_link_status: "down".into(),
                lag_bytes: 1536,
                ..Default::default()
            },
        );
        let stray = server(
            1,
            2,
            "h:3",
            pb::ServerSummary {
                role: "slave".into(),
                master_addr: "h:9".into(),
                master_link_status: "up".into(),
                ..Default::default()
            },
        );
        let failed = pb::ServerStats {
            addr: "h:4".into(),
            group_id: 2,
            index: 0,
            stats: Some(pb::RedisStats {
                timeout: true,
                ..Default::default()
            }),
        };
        let text = server_table(&[&master, &lagging, &stray, &failed]).render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "GROUP  ADDR  ROLE       MEMORY  OPS/S   LAG  STATUS",
                "1      h:1   master  2.0K/1.0G    150     -  ok",
                "1      h:2   slave          0B      0  1.5K  link down",
                "1      h:3   slave          0B      0    0B  follows h:9, expected h:1",
                "2      h:4   -               -      -     -  timeout",
            ]
        );
    }

    #[test]
    fn role_mismatches() {
        let demoted = server(
            1,
            0,
            "h:1",
            pb::ServerSummary {
                role: "slave".into(),
                master_addr: "h:2".into(),
                ..Default::default()
            },
        );
        assert_eq!(
            server_status(&demoted, Some("h:1")),
            "expected master, follows h:2"
        );
        let rogue = server(
            1,
            1,
            "h:2",
            pb::ServerSummary {
                role: "master".into(),
                ..Default::default()
            },
        );
        assert_eq!(
            server_status(&rogue, Some("h:1")),
            "expected replica, is master"
        );
        let failed = pb::ServerStats {
            stats: Some(pb::RedisStats {
                error: "ECONNREFUSED".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(server_status(&failed, None), "error: ECONNREFUSED");
    }

    #[test]
    fn snapshot_header() {
        let snap = pb::StatsSnapshot {
            round: 3,
            slot_action: Some(pb::SlotActionStats {
                disabled: true,
                interval_us: 100,
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = render_snapshot(&snap);
        assert!(
            text.starts_with("round 3  slot-action: disabled, interval 100us, 0 running\n"),
            "{text}"
        );
    }

    fn round(n: u64) -> Result<pb::WatchStatsResponse, tonic::Status> {
        Ok(pb::WatchStatsResponse {
            round: n,
            servers: vec![server(1, 0, "h:1", pb::ServerSummary::default())],
            ..Default::default()
        })
    }

    /// Runs `follow` over `items`, returning what it printed and its result.
    async fn follow_items(
        items: Vec<Result<pb::WatchStatsResponse, tonic::Status>>,
        view: WatchView,
        stop_early: bool,
    ) -> (Vec<String>, Result<(), CliError>) {
        let mut printed = Vec::new();
        let stop = async move {
            if !stop_early {
                std::future::pending::<()>().await;
            }
        };
        let stream = futures::stream::iter(items);
        let result = follow(stream, view, stop, &mut |t: &str| {
            printed.push(t.to_string());
            Ok(())
        })
        .await;
        (printed, result)
    }

    #[tokio::test]
    async fn watch_prints_rounds_and_gaps() {
        let view = WatchView {
            json: false,
            redraw: true,
        };
        let (printed, result) = follow_items(vec![round(4), round(5), round(8)], view, false).await;
        assert!(result.is_ok());
        assert_eq!(printed.len(), 3);
        assert!(printed[0].starts_with("\x1b[H\x1b[2Jround 4  skipped 0 (0 total)"));
        assert!(
            printed[2].contains("round 8  skipped 2 (2 total)"),
            "{}",
            printed[2]
        );
        assert!(printed[2].contains("h:1"));
    }

    #[tokio::test]
    async fn watch_json_lines_and_errors() {
        let view = WatchView {
            json: true,
            redraw: false,
        };
        let items = vec![round(1), Err(tonic::Status::unavailable("lost ownership"))];
        let (printed, result) = follow_items(items, view, false).await;
        assert_eq!(printed.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&printed[0]).unwrap();
        assert_eq!(v["round"], "1");
        let err = result.err().unwrap();
        assert_eq!(
            err.message().as_deref(),
            Some("UNAVAILABLE: lost ownership")
        );
    }

    #[tokio::test]
    async fn watch_stops_on_signal() {
        let view = WatchView {
            json: false,
            redraw: false,
        };
        // The stop future is ready at once, so nothing is printed.
        let (printed, result) = follow_items(vec![round(1)], view, true).await;
        assert!(result.is_ok());
        assert!(printed.is_empty());
    }

    #[test]
    fn skipped_rounds() {
        let mut c = RoundCounter::default();
        assert_eq!(c.observe(5), 0);
        assert_eq!(c.observe(6), 0);
        assert_eq!(c.observe(9), 2);
        assert_eq!(c.observe(1), 0);
        assert_eq!(c.skipped_total, 2);
    }
}
